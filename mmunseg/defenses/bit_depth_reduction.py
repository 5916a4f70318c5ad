"""Bit-depth reduction of training images: the ISS squeezer (APBench's
"BDR") that erases noise below the kept grey levels."""
import numpy as np
from mmcv.transforms import BaseTransform

from mmunseg.registry import TRANSFORMS


@TRANSFORMS.register_module()
class BitDepthReduction(BaseTransform):
    """Keep the ``bits`` most significant bits of each 8-bit value.

    As torchvision's ``RandomPosterize(bits, p=1)`` that ISS and APBench use
    (APBench: 2 bits, ``../shared/docs/baselines_and_defenses.md`` §3);
    labels untouched. Float images are rounded to 8 bits first and returned
    in their dtype.

    Required keys: img. Modified keys: img.

    Args:
        bits (int): Bits kept, 1 to 8 (8 is the identity).
    """

    def __init__(self, bits=2):
        if not isinstance(bits, int) or not 1 <= bits <= 8:
            raise ValueError(f'bits must be an int in [1, 8], got {bits!r}')
        self.bits = bits

    def transform(self, results):
        img = results['img']
        pixels = np.clip(np.round(img), 0, 255).astype(np.uint8)
        mask = np.uint8((0xFF << (8 - self.bits)) & 0xFF)
        results['img'] = (pixels & mask).astype(img.dtype)
        return results

    def __repr__(self):
        return f'{self.__class__.__name__}(bits={self.bits})'
