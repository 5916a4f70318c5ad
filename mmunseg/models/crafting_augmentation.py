"""Victim-like augmentation inside the crafting loop.

Victims rescale, crop and flip their training images (and some defenses drop
colour or blur). Noise crafted against a surrogate that always sees it at
one scale and phase need not survive that; applying the same kind of
transforms to the perturbed image (and its target) before the surrogate, in
both phases, makes the generator find noise that does.
"""
from typing import Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from mmunseg.registry import MODELS

# ITU-R BT.601 luma, as OpenCV's and PIL's RGB -> grey conversions use.
LUMA = (0.299, 0.587, 0.114)


def gaussian_kernel(sigma: float, radius: int) -> Tensor:
    """A normalised 1-D Gaussian, (2 * radius + 1, )."""
    x = torch.arange(-radius, radius + 1, dtype=torch.float32)
    kernel = torch.exp(-x**2 / (2 * sigma**2))
    return kernel / kernel.sum()


@MODELS.register_module()
class CraftingAugmentation(nn.Module):
    """Random rescale + crop + flip, grey and blur of perturbed images.

    Geometry is one affine resampling per sample (differentiable in the
    image): zoom by a factor drawn log-uniformly from ``scale_range``
    (above 1 crops a window, below 1 shows more than the frame, filled by
    reflection), shift the window at random within the frame, and flip
    horizontally. Images are sampled bilinearly, targets with nearest
    neighbours, so masks and label maps stay aligned and keep their values.
    Bilinear weights are a convex combination: the change a perturbation
    makes to an augmented pixel is bounded by the largest budget among the
    pixels it mixes (only pixels at a region's border mix two budgets).

    Args:
        scale_range (tuple[float, float]): Zoom factors, as victims'
            ``RandomResize`` ratios relative to the surrogate's view.
        flip_prob (float): Probability of a horizontal flip.
        grayscale_prob (float): Probability of replacing a sample by its
            luma in all channels (the grayscale defense).
        blur_prob (float): Probability of a Gaussian blur (a stand-in for
            smoothing and JPEG defenses).
        blur_sigma (tuple[float, float]): Range of the blur's sigma, pixels.
    """

    def __init__(self,
                 scale_range=(0.5, 2.0),
                 flip_prob=0.5,
                 grayscale_prob=0.,
                 blur_prob=0.,
                 blur_sigma=(0.5, 1.5)):
        super().__init__()
        low, high = scale_range
        if not 0 < low <= high:
            raise ValueError(f'scale_range must be 0 < low <= high, got '
                             f'{scale_range}')
        for name, prob in (('flip_prob', flip_prob),
                           ('grayscale_prob', grayscale_prob), ('blur_prob',
                                                                blur_prob)):
            if not 0 <= prob <= 1:
                raise ValueError(f'{name} must be in [0, 1], got {prob}')
        if not 0 < blur_sigma[0] <= blur_sigma[1]:
            raise ValueError(f'blur_sigma must be 0 < low <= high, got '
                             f'{blur_sigma}')
        self.scale_range = (float(low), float(high))
        self.flip_prob = flip_prob
        self.grayscale_prob = grayscale_prob
        self.blur_prob = blur_prob
        self.blur_sigma = blur_sigma

    def random_affine(self, batch: int, device: torch.device) -> Tensor:
        """Per-sample sampling grids' affine matrices, (B, 2, 3).

        ``affine_grid`` maps output coordinates to input ones, so a zoom by
        ``s`` is a matrix entry of ``1 / s``.
        """
        low, high = torch.log(torch.tensor(self.scale_range))
        scale = torch.exp(low + (high - low) * torch.rand(batch))
        extent = 1 / scale  # half-size of the window in input coordinates
        shift = (torch.rand(batch, 2) * 2 - 1) * (1 - extent).abs()[:, None]
        flip = torch.where(torch.rand(batch) < self.flip_prob, -1., 1.)
        theta = torch.zeros(batch, 2, 3)
        theta[:, 0, 0] = extent * flip
        theta[:, 1, 1] = extent
        theta[:, :, 2] = shift
        return theta.to(device)

    def grayscale(self, images: Tensor) -> Tensor:
        """Some samples replaced by their luma, (B, 3, H, W)."""
        pick = torch.rand(images.shape[0], device=images.device)
        pick = (pick < self.grayscale_prob).to(images.dtype)[:, None, None,
                                                             None]
        luma = (images * images.new_tensor(LUMA)[None, :, None, None]).sum(
            1, keepdim=True)
        return images * (1 - pick) + luma.expand_as(images) * pick

    def blur(self, images: Tensor) -> Tensor:
        """Some samples blurred with a random-sigma Gaussian."""
        out = []
        for image in images:
            if torch.rand(()) >= self.blur_prob:
                out.append(image)
                continue
            low, high = self.blur_sigma
            sigma = low + (high - low) * float(torch.rand(()))
            radius = max(1, int(round(2 * sigma)))
            kernel = gaussian_kernel(sigma, radius).to(image)
            channels = image.shape[0]
            padded = F.pad(image[None], (radius, ) * 4, mode='reflect')
            padded = F.conv2d(
                padded,
                kernel.view(1, 1, 1, -1).repeat(channels, 1, 1, 1),
                groups=channels)
            padded = F.conv2d(
                padded,
                kernel.view(1, 1, -1, 1).repeat(channels, 1, 1, 1),
                groups=channels)
            out.append(padded[0])
        return torch.stack(out)

    def forward(self, images: Tensor,
                targets: Tensor) -> Tuple[Tensor, Tensor]:
        """Augment images and their targets alike.

        Args:
            images (Tensor): Perturbed images in [0, 1], (B, 3, H, W).
            targets (Tensor): Masks or label maps, (B, 1, H, W).

        Returns:
            tuple[Tensor, Tensor]: Augmented images (B, 3, H, W) in [0, 1]
            and targets (B, 1, H, W) with the values of ``targets``.
        """
        theta = self.random_affine(images.shape[0], images.device)
        grid = F.affine_grid(theta, list(images.shape), align_corners=False)
        images = F.grid_sample(
            images,
            grid,
            mode='bilinear',
            padding_mode='reflection',
            align_corners=False)
        targets = F.grid_sample(
            targets.to(images.dtype),
            grid,
            mode='nearest',
            padding_mode='reflection',
            align_corners=False)
        if self.grayscale_prob:
            images = self.grayscale(images)
        if self.blur_prob:
            images = self.blur(images)
        return images, targets
