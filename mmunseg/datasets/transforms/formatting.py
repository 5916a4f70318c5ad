from typing import Sequence

import numpy as np
import torch
from mmengine.structures import BaseDataElement

from mmunseg.registry import TRANSFORMS


@TRANSFORMS.register_module()
class PackUnSegInputs:
    """Pack an image and its mask into the inputs of UnSeg's models.

    Required keys: ``img`` (uint8 RGB, shape (H, W, 3)).

    Optional keys: ``gt_mask`` (float32 on the 0..255 scale, shape (H, W)),
    and the keys in ``meta_keys``.

    The output is a dict with:

    - inputs (torch.Tensor): uint8 RGB image, shape (3, H, W), contiguous.
    - data_samples (BaseDataElement): ``gt_mask`` as a float32 tensor on the
      0..255 scale, shape (1, H, W), when the input has one, and the
      metainfo of the ``meta_keys`` present in the input.

    Args:
        meta_keys (Sequence[str]): Keys copied to the metainfo of the data
            sample when present.
    """

    def __init__(
        self,
        meta_keys: Sequence[str] = ('img_path', 'mask_path', 'object_id',
                                    'class_id', 'ori_shape', 'img_shape',
                                    'pad_shape', 'scale_factor', 'flip')
    ) -> None:
        self.meta_keys = tuple(meta_keys)

    def __call__(self, results: dict) -> dict:
        """Pack ``results``.

        Args:
            results (dict): Result dict from the loading and geometric
                transforms.

        Returns:
            dict: ``inputs`` and ``data_samples``.
        """
        img = results['img']
        if img.dtype != np.uint8 or img.ndim != 3 or img.shape[2] != 3:
            raise TypeError('img must be a uint8 array of shape (H, W, 3), '
                            f'but got {img.dtype} {img.shape}')
        inputs = torch.from_numpy(img).permute(2, 0, 1).contiguous()
        data_sample = BaseDataElement(metainfo={
            key: results[key]
            for key in self.meta_keys if key in results
        })
        if 'gt_mask' in results:
            gt_mask = np.ascontiguousarray(results['gt_mask'], np.float32)
            data_sample.gt_mask = torch.from_numpy(gt_mask[None])
        return dict(inputs=inputs, data_samples=data_sample)

    def __repr__(self) -> str:
        return f'{self.__class__.__name__}(meta_keys={self.meta_keys})'
