import logging
import os
import os.path as osp
import re
import zlib
from typing import List, Optional, Tuple

import cv2
from mmengine.dataset import BaseDataset
from mmengine.logging import print_log

from mmunseg.registry import DATASETS

# ``NAME_KK`` where ``KK`` is the object index within image ``NAME``.
_OBJECT_SUFFIX = re.compile(r'^(?P<stem>.+)_(?P<object_id>\d+)$')


@DATASETS.register_module()
class FolderMaskDataset(BaseDataset):
    """Images and binary object masks in two flat folders (HQSeg-44K layout).

    The layout is ``data_root/img_dir/NAME{img_suffix}`` for images and
    either ``data_root/mask_dir/NAME{mask_suffix}`` (one object per image, as
    in HQSeg-44K) or ``data_root/mask_dir/NAME_KK{mask_suffix}`` (several
    objects per image, ``KK`` being a decimal object index) for masks. A mask
    is paired with the image of exactly the same stem when there is one, and
    otherwise with the image named by its stem minus a trailing ``_KK``, so an
    image called ``foo_01`` keeps its own mask ``foo_01.png``.

    Every (image, mask) pair is one sample, a dict with keys ``img_path``,
    ``mask_path`` and ``object_id`` (the int ``KK``, or None for a mask named
    after its image). Images without a mask and masks without an image are
    skipped with one warning each.

    Args:
        data_root (str): Root folder of the data set.
        img_dir (str): Image folder, relative to ``data_root`` unless
            absolute. Defaults to 'im'.
        mask_dir (str): Mask folder, relative to ``data_root`` unless
            absolute. Defaults to 'gt'.
        img_suffix (str): Suffix of image files. Defaults to '.jpg'.
        mask_suffix (str): Suffix of mask files. Defaults to '.png'.
        split (str, optional): None for all samples, 'train' or 'val' for a
            deterministic split by image: an image (with all its masks) is in
            'val' when the CRC32 of its stem falls in the lowest
            ``val_fraction`` of the 32-bit range, so the split is the same on
            every machine and stable when images are added or removed.
            Defaults to None.
        val_fraction (float): Fraction of images in the 'val' split, in
            [0, 1]. Only used when ``split`` is given. Defaults to 0.1.
        min_mask_area (int): Skip masks with fewer foreground (> 0) pixels.
        min_mask_ratio (float): Skip masks whose foreground covers less than
            this fraction of the image (small objects teach a small
            from-scratch surrogate only to predict background).
            Values above 0 read every mask once in :meth:`full_init`, which
            takes a few seconds per thousand masks; 0 reads none.
            Defaults to 0.
        **kwargs: Other arguments of :class:`mmengine.dataset.BaseDataset`,
            such as ``pipeline``, ``test_mode``, ``lazy_init``, ``indices``,
            ``serialize_data`` and ``max_refetch``.
    """

    def __init__(self,
                 data_root: str,
                 img_dir: str = 'im',
                 mask_dir: str = 'gt',
                 img_suffix: str = '.jpg',
                 mask_suffix: str = '.png',
                 split: Optional[str] = None,
                 val_fraction: float = 0.1,
                 min_mask_area: int = 0,
                 min_mask_ratio: float = 0.,
                 **kwargs) -> None:
        if split not in (None, 'train', 'val'):
            raise ValueError(
                f"split must be None, 'train' or 'val', but got {split!r}")
        if not 0 <= val_fraction <= 1:
            raise ValueError(
                f'val_fraction must be in [0, 1], but got {val_fraction}')
        if min_mask_area < 0:
            raise ValueError(
                f'min_mask_area must be >= 0, but got {min_mask_area}')
        self.img_suffix = img_suffix
        self.mask_suffix = mask_suffix
        self.split = split
        self.val_fraction = val_fraction
        if not 0 <= min_mask_ratio < 1:
            raise ValueError(
                f'min_mask_ratio must be in [0, 1), but got {min_mask_ratio}')
        self.min_mask_area = min_mask_area
        self.min_mask_ratio = min_mask_ratio
        super().__init__(
            data_root=data_root,
            data_prefix=dict(img_path=img_dir, mask_path=mask_dir),
            **kwargs)

    def load_data_list(self) -> List[dict]:
        """Pair every image with all its masks.

        Returns:
            list[dict]: One dict per (image, mask) pair, sorted by mask file
            name, with keys ``img_path``, ``mask_path`` and ``object_id``.
        """
        img_dir = self.data_prefix['img_path']
        mask_dir = self.data_prefix['mask_path']
        img_stems = self._list_stems(img_dir, self.img_suffix, 'image')
        mask_stems = self._list_stems(mask_dir, self.mask_suffix, 'mask')

        data_list = []
        paired_imgs = set()
        orphan_masks = []
        for mask_stem in sorted(mask_stems):
            img_stem, object_id = self._match_image(mask_stem, img_stems)
            if img_stem is None:
                orphan_masks.append(mask_stem + self.mask_suffix)
                continue
            paired_imgs.add(img_stem)
            if self.split is not None and \
                    self._split_of(img_stem) != self.split:
                continue
            data_list.append(
                dict(
                    img_path=osp.join(img_dir, img_stem + self.img_suffix),
                    mask_path=osp.join(mask_dir, mask_stem + self.mask_suffix),
                    object_id=object_id))

        orphan_imgs = [
            stem + self.img_suffix for stem in sorted(img_stems - paired_imgs)
        ]
        self._warn_skipped(orphan_imgs, f'images without a mask in {mask_dir}')
        self._warn_skipped(orphan_masks,
                           f'masks without an image in {img_dir}')

        if not paired_imgs:
            raise ValueError(
                f'No (image, mask) pair found under data_root '
                f'{self.data_root!r}: {len(img_stems)} "*{self.img_suffix}" '
                f'images in {img_dir} and {len(mask_stems)} '
                f'"*{self.mask_suffix}" masks in {mask_dir} share no name')
        if not data_list:
            raise ValueError(
                f'The {self.split!r} split of data_root {self.data_root!r} '
                f'is empty: with val_fraction={self.val_fraction} none of '
                f'its {len(paired_imgs)} paired images falls in it')
        return data_list

    def filter_data(self) -> List[dict]:
        """Drop masks smaller than ``min_mask_area`` / ``min_mask_ratio``.

        Returns:
            list[dict]: The kept samples.
        """
        if self.min_mask_area == 0 and self.min_mask_ratio == 0:
            return self.data_list
        kept = []
        for data_info in self.data_list:
            mask = cv2.imread(data_info['mask_path'], cv2.IMREAD_UNCHANGED)
            if mask is None:
                raise ValueError(
                    f'Cannot decode mask {data_info["mask_path"]}')
            if mask.ndim == 3:
                mask = mask[..., 0]
            area = cv2.countNonZero(mask)
            if area >= max(self.min_mask_area,
                           self.min_mask_ratio * mask.size):
                kept.append(data_info)
        print_log(
            f'{len(self.data_list) - len(kept)} of {len(self.data_list)} '
            f'masks have fewer than {self.min_mask_area} foreground pixels '
            f'or cover less than {self.min_mask_ratio:.0%} of the image, and '
            'are skipped',
            logger='current',
            level=logging.INFO)
        if not kept:
            raise ValueError(
                f'All {len(self.data_list)} masks under data_root '
                f'{self.data_root!r} are smaller than min_mask_area='
                f'{self.min_mask_area} / min_mask_ratio={self.min_mask_ratio}')
        return kept

    @staticmethod
    def _list_stems(folder: str, suffix: str, kind: str) -> set:
        """Names of the files in ``folder`` ending in ``suffix``, without it.

        Args:
            folder (str): Folder to list.
            suffix (str): File name suffix to keep.
            kind (str): 'image' or 'mask', for the error message.

        Returns:
            set[str]: File stems.
        """
        if not osp.isdir(folder):
            raise FileNotFoundError(
                f'The {kind} directory {folder} is missing')
        return {
            name[:-len(suffix)]
            for name in os.listdir(folder)
            if name.endswith(suffix) and len(name) > len(suffix)
        }

    @staticmethod
    def _match_image(mask_stem: str,
                     img_stems: set) -> Tuple[Optional[str], Optional[int]]:
        """Find the image of a mask.

        Args:
            mask_stem (str): Mask file name without suffix.
            img_stems (set[str]): Image file names without suffix.

        Returns:
            tuple: The image stem (None when there is no image) and the object
            index (None for a mask named exactly after its image).
        """
        if mask_stem in img_stems:
            return mask_stem, None
        match = _OBJECT_SUFFIX.match(mask_stem)
        if match is not None and match['stem'] in img_stems:
            return match['stem'], int(match['object_id'])
        return None, None

    def _split_of(self, img_stem: str) -> str:
        """Deterministic split of an image from the CRC32 of its stem."""
        # Python's hash() of str is salted per process, CRC32 is not.
        crc = zlib.crc32(img_stem.encode('utf-8'))
        return 'val' if crc < self.val_fraction * 2**32 else 'train'

    @staticmethod
    def _warn_skipped(names: List[str], what: str, shown: int = 5) -> None:
        """Warn once about skipped files, naming the first few.

        Args:
            names (list[str]): Skipped file names.
            what (str): What the files lack, for the message.
            shown (int): How many names to list. Defaults to 5.
        """
        if not names:
            return
        listed = ', '.join(names[:shown])
        if len(names) > shown:
            listed += f', ... ({len(names) - shown} more)'
        print_log(
            f'Skipped {len(names)} {what}: {listed}',
            logger='current',
            level=logging.WARNING)
