from typing import Optional

import cv2
import numpy as np
from mmengine import fileio

from mmunseg.registry import TRANSFORMS


def _decode(path: str, flags: int, kind: str,
            backend_args: Optional[dict]) -> np.ndarray:
    """Read and decode an image file.

    Args:
        path (str): File path.
        flags (int): ``cv2.imdecode`` flags.
        kind (str): 'image' or 'mask', for error messages.
        backend_args (dict, optional): Arguments of the file backend.

    Returns:
        np.ndarray: The decoded array.
    """
    try:
        data = fileio.get(path, backend_args=backend_args)
    except FileNotFoundError:
        raise FileNotFoundError(f'The {kind} file {path} is missing') from None
    array = None
    if data:
        array = cv2.imdecode(np.frombuffer(data, np.uint8), flags)
    if array is None:
        raise ValueError(f'Cannot decode the {kind} file {path}: '
                         f'it is empty, corrupt or not an image')
    return array


def read_label_map(path, label_map=None, reduce_zero_label=False):
    """A semantic annotation as the MMSeg dataset sees it, (H, W) int64.

    Args:
        path (str): The annotation PNG.
        label_map (dict, optional): Old to new label ids (MMSeg's
            ``label_map``).
        reduce_zero_label (bool): 0 becomes the ignore index 255 and every
            other label drops by one (ADE20K's convention).

    Raises:
        FileNotFoundError / ValueError: The file is missing or undecodable,
        naming it.
    """
    raw = cv2.imread(path, cv2.IMREAD_UNCHANGED)
    if raw is None:
        raise ValueError(f'{path}: annotation is missing or cannot be '
                         'decoded')
    if raw.ndim == 3:
        raw = raw[..., 0]
    labels = raw.astype(np.int64)
    if label_map:
        mapped = labels.copy()
        for old, new in label_map.items():
            mapped[labels == old] = new
        labels = mapped
    if reduce_zero_label:
        labels = np.where(labels == 0, 255, labels - 1)
        labels[labels == 254] = 255
    return labels


@TRANSFORMS.register_module()
class LoadImageAndMask:
    """Load an RGB image and its object mask.

    Required keys: ``img_path``, ``mask_path``.

    Added keys:

    - img (np.ndarray): uint8 RGB image, shape (H, W, 3). Gray images are
      repeated to three channels, an alpha channel is dropped and 16-bit
      images are scaled to 8 bits.
    - gt_mask (np.ndarray): float32 mask on the 0..255 scale, shape (H, W).
      The first channel of a multi-channel mask is used, and a mask stored as
      0/1 is scaled to 0/255.
    - ori_shape (tuple[int, int]): (H, W).
    - img_shape (tuple[int, int]): (H, W).

    Args:
        backend_args (dict, optional): Arguments to instantiate the file
            backend of :func:`mmengine.fileio.get`. Defaults to None (local
            files).
    """

    def __init__(self, backend_args: Optional[dict] = None) -> None:
        self.backend_args = backend_args

    def __call__(self, results: dict) -> dict:
        """Load the image and mask of ``results``.

        Args:
            results (dict): Result dict with ``img_path`` and ``mask_path``.

        Returns:
            dict: ``results`` with the added keys.
        """
        img_path = results['img_path']
        mask_path = results['mask_path']
        # IMREAD_COLOR turns gray, BGRA and 16-bit files into 8-bit BGR.
        # EXIF orientation is ignored because masks are drawn on the stored
        # pixels (as skimage.io.imread reads them in SAM-HQ's loader).
        img = _decode(img_path,
                      cv2.IMREAD_COLOR | cv2.IMREAD_IGNORE_ORIENTATION,
                      'image', self.backend_args)
        img = cv2.cvtColor(img, cv2.COLOR_BGR2RGB)

        mask = _decode(mask_path, cv2.IMREAD_UNCHANGED, 'mask',
                       self.backend_args)
        if mask.ndim == 3:
            mask = mask[..., 0]
        if mask.dtype == np.uint16:
            mask = mask / 257
        mask = mask.astype(np.float32)
        if mask.max() <= 1:
            mask *= 255

        if img.shape[:2] != mask.shape:
            raise ValueError(
                f'Image {img_path} has size (H, W) = {img.shape[:2]} but its '
                f'mask {mask_path} has size {mask.shape}')
        results['img'] = img
        results['gt_mask'] = mask
        results['ori_shape'] = img.shape[:2]
        results['img_shape'] = img.shape[:2]
        return results

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}'
                f'(backend_args={self.backend_args})')


@TRANSFORMS.register_module()
class LoadImageAndClassMask(LoadImageAndMask):
    """Load an RGB image and one class of its semantic annotation as mask.

    Required keys: ``img_path``, ``seg_map_path``, ``class_id`` (an int,
    or None for the union of ``object_classes``), ``object_classes``, and
    optionally ``label_map`` and ``reduce_zero_label``
    (:class:`mmunseg.datasets.SemanticObjectsDataset` gives them).

    Added keys: ``img``, ``gt_mask`` (float32, 0 / 255, (H, W)),
    ``ori_shape`` and ``img_shape``, as :class:`LoadImageAndMask`.
    """

    def __call__(self, results: dict) -> dict:
        img_path = results['img_path']
        img = _decode(img_path,
                      cv2.IMREAD_COLOR | cv2.IMREAD_IGNORE_ORIENTATION,
                      'image', self.backend_args)
        img = cv2.cvtColor(img, cv2.COLOR_BGR2RGB)
        labels = read_label_map(results['seg_map_path'],
                                results.get('label_map'),
                                results.get('reduce_zero_label', False))
        if img.shape[:2] != labels.shape:
            raise ValueError(
                f'Image {img_path} has size (H, W) = {img.shape[:2]} but its '
                f'annotation {results["seg_map_path"]} has size '
                f'{labels.shape}')
        class_id = results['class_id']
        classes = [class_id
                   ] if class_id is not None else results['object_classes']
        results['img'] = img
        results['gt_mask'] = np.isin(labels, classes).astype(np.float32) * 255
        results['ori_shape'] = img.shape[:2]
        results['img_shape'] = img.shape[:2]
        return results
