"""Grayscale training images: the ISS squeezer for colour-coded noise."""
import numpy as np
from mmcv.transforms import BaseTransform

from mmunseg.registry import TRANSFORMS

#: ITU-R BT.601 luma weights of R, G, B (PIL's and torchvision's
#: ``Grayscale``).
LUMA = (0.299, 0.587, 0.114)


@TRANSFORMS.register_module()
class Grayscale(BaseTransform):
    """Replace ``results['img']`` by its luma on 3 equal channels.

    As ISS's ``Grayscale(num_output_channels=3)`` before crop and flip
    (``../shared/docs/baselines_and_defenses.md`` §3); labels untouched.
    uint8 images are rounded; other dtypes are kept.

    Required keys: img. Modified keys: img.

    Args:
        channel_order (str): Of the image: ``bgr`` (MMCV's loader) or
            ``rgb``.
    """

    def __init__(self, channel_order='bgr'):
        if channel_order not in ('bgr', 'rgb'):
            raise ValueError(f'channel_order must be bgr or rgb, got '
                             f'{channel_order!r}')
        self.channel_order = channel_order

    def transform(self, results):
        img = results['img']
        if img.ndim == 2 or img.shape[2] == 1:
            return results
        weights = LUMA if self.channel_order == 'rgb' else LUMA[::-1]
        luma = img[..., :3].astype(np.float32) @ np.asarray(
            weights, np.float32)
        if np.issubdtype(img.dtype, np.integer):
            luma = np.round(luma)
        results['img'] = np.repeat(luma[..., None], 3, 2).astype(img.dtype)
        return results

    def __repr__(self):
        return (f'{self.__class__.__name__}'
                f'(channel_order={self.channel_order!r})')
