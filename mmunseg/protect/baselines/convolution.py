"""CUDA: convolution-based unlearnable datasets (Sadasivan et al., CVPR
2023), re-implemented from the paper (the reference code's licence forbids
copying it), per class region."""
import numpy as np
import torch
import torch.nn.functional as F

from mmunseg.registry import NOISE_METHODS
from .class_wise import ClassWiseNoise, paint, unit_scale


@NOISE_METHODS.register_module(name=['ConvolutionNoise', 'cuda'])
class ConvolutionNoise(ClassWiseNoise):
    """The perturbation a class-wise random blur makes.

    Class ``c`` owns a depthwise ``kernel_size`` filter (the same on the 3
    channels) with taps drawn from U(0, ``blur``) and one random tap set to
    1. As the paper: ``x' = sum_c M_c * (k_c * x)`` (zero padding), divided
    by its maximum over the image so it stays in range. The noise is
    ``x' - x`` normalised by its peak over the image (one scale shared by
    the regions, as the doc advises), so the protector's per-region budget
    bounds a perturbation shaped like the blur, which the paper leaves
    unbounded: compare by PSNR / SSIM as well.

    Args:
        kernel_size (int): Odd filter side (the paper's 3 at 32 px; grow it
            with the resolution).
        blur (float): p_b, upper end of the random taps (the paper's 0.3).
        seed (int): Secret key of the filters.
        background (str): ``class``: non-object pixels are one more class
            with their own filter; ``none``: they keep their pixels.
    """

    def __init__(self, kernel_size=3, blur=0.3, seed=0, background='class'):
        super().__init__(seed=seed, background=background)
        if kernel_size < 1 or kernel_size % 2 == 0:
            raise ValueError(f'kernel_size must be odd, got {kernel_size}')
        if blur < 0:
            raise ValueError(f'blur must be >= 0, got {blur}')
        self.kernel_size = kernel_size
        self.blur = blur

    def kernel(self, key):
        """(k, k) float32 filter of class ``key`` (-1: background)."""
        rng = self.rng(key)
        size = self.kernel_size
        kernel = rng.uniform(0, self.blur, (size, size))
        kernel.flat[rng.integers(size * size)] = 1.0
        return kernel.astype(np.float32)

    def filtered(self, x, key):
        """(H, W, 3) image ``x`` (1, 3, H, W) filtered by class ``key``'s
        kernel, the same on every channel (a depthwise conv)."""
        kernel = torch.from_numpy(self.kernel(key))
        return F.conv2d(
            x,
            kernel.expand(3, 1, -1, -1),
            padding=self.kernel_size // 2,
            groups=3)[0].permute(1, 2, 0).numpy()

    def noise_of(self, image, labels, keys, sample):
        x = torch.from_numpy(image).permute(2, 0, 1)[None].float() / 255
        clean = image.astype(np.float32) / 255
        # One class at a time: a single full-size filtered image in memory.
        maps = (self.filtered(x, key) for key in keys)
        blurred = paint(clean.copy(), labels, keys, maps)
        blurred /= max(blurred.max(), 1e-6)
        noise = blurred - clean
        noise[~np.isin(labels, keys)] = 0
        return unit_scale(noise)
