"""JPEG re-compression of training images (ISS, Liu et al., ICML 2023)."""
import cv2
import numpy as np
from mmcv.transforms import BaseTransform

from mmunseg.registry import TRANSFORMS


@TRANSFORMS.register_module()
class JPEGCompression(BaseTransform):
    """Encode ``results['img']`` as JPEG and decode it; labels untouched.

    ISS, APBench and UEraser use quality 10; sweep {10, 30, 50, 70, 90} at
    segmentation resolutions (``../shared/docs/baselines_and_defenses.md``
    §3). Float images are rounded to uint8 for the codec and returned in
    their dtype.

    Required keys: img. Modified keys: img.

    Args:
        quality (int): JPEG quality, 1 to 100.
        channel_order (str): Of the image: ``bgr`` (MMCV's loader) or
            ``rgb``; the codec's colour transform expects to know it.
    """

    def __init__(self, quality=10, channel_order='bgr'):
        if not isinstance(quality, int) or not 1 <= quality <= 100:
            raise ValueError(f'quality must be an int in [1, 100], got '
                             f'{quality!r}')
        if channel_order not in ('bgr', 'rgb'):
            raise ValueError(f'channel_order must be bgr or rgb, got '
                             f'{channel_order!r}')
        self.quality = quality
        self.channel_order = channel_order

    def transform(self, results):
        img = results['img']
        pixels = np.clip(np.round(img), 0, 255).astype(np.uint8)
        colour = pixels.ndim == 3 and pixels.shape[2] == 3
        if colour and self.channel_order == 'rgb':
            pixels = pixels[..., ::-1]
        ok, encoded = cv2.imencode('.jpg', pixels,
                                   [cv2.IMWRITE_JPEG_QUALITY, self.quality])
        if not ok:
            raise RuntimeError(f'JPEG encoding failed for {pixels.shape} '
                               f'{results.get("img_path", "")}')
        decoded = cv2.imdecode(encoded, cv2.IMREAD_UNCHANGED)
        if colour and self.channel_order == 'rgb':
            decoded = decoded[..., ::-1]
        results['img'] = np.ascontiguousarray(decoded.reshape(
            img.shape)).astype(img.dtype)
        return results

    def __repr__(self):
        return (f'{self.__class__.__name__}(quality={self.quality}, '
                f'channel_order={self.channel_order!r})')
