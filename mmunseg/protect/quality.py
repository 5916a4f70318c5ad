"""Checking protected images against their noise budget, and measuring
what the noise did to them (quantising them within it is
:func:`mmunseg.models.budget.quantize_within_budget`)."""
from typing import Dict, Optional

import cv2
import numpy as np

from mmunseg.models.budget import Budget, budget_levels

# SSIM constants of Wang et al. 2004 for 8-bit images.
_SSIM_C1 = (0.01 * 255)**2
_SSIM_C2 = (0.03 * 255)**2
_SSIM_WIN = 11
_SSIM_SIGMA = 1.5


class BudgetViolation(RuntimeError):
    """A protected image differs from its original by more than allowed."""


def _check_pair(a: np.ndarray, b: np.ndarray) -> None:
    if a.shape != b.shape or a.dtype != np.uint8 or b.dtype != np.uint8:
        raise ValueError('expected two uint8 images of the same shape, got '
                         f'{a.dtype} {a.shape} and {b.dtype} {b.shape}')


def linf_by_region(original: np.ndarray, protected: np.ndarray,
                   object_mask: np.ndarray) -> Dict[str, Optional[int]]:
    """Largest absolute difference inside and outside the object.

    Args:
        original (np.ndarray): uint8 image, (H, W, C).
        protected (np.ndarray): uint8 image, (H, W, C).
        object_mask (np.ndarray): Object pixels (non-zero), (H, W).

    Returns:
        dict: ``object`` and ``background``: the L-inf distance in grey
        levels (int) over that region's pixels and channels, or None when
        the region has no pixels.
    """
    _check_pair(original, protected)
    object_mask = np.asarray(object_mask, dtype=bool)
    if object_mask.shape != original.shape[:2]:
        raise ValueError(f'object mask of shape {object_mask.shape} does not '
                         f'match the image of shape {original.shape}')
    diff = np.abs(original.astype(np.int16) - protected)
    if diff.ndim == 3:
        diff = diff.max(axis=2)
    result = {}
    for region, pixels in (('object', diff[object_mask]),
                           ('background', diff[~object_mask])):
        result[region] = int(pixels.max()) if pixels.size else None
    return result


def check_budget(original: np.ndarray, protected: np.ndarray,
                 object_mask: np.ndarray,
                 budget: Budget) -> Dict[str, Optional[int]]:
    """Verify that a protected image keeps both L-inf budgets.

    Args:
        original (np.ndarray): uint8 image, (H, W, C).
        protected (np.ndarray): uint8 image, (H, W, C), as saved.
        object_mask (np.ndarray): Object pixels (non-zero), (H, W).
        budget (Budget): The L-inf budgets of the two regions.

    Returns:
        dict: The achieved L-inf per region, see :func:`linf_by_region`.

    Raises:
        BudgetViolation: A region differs by more than
            ``floor(255 * eps)`` grey levels; the message names each such
            region with its achieved and allowed levels.
    """
    linf = linf_by_region(original, protected, object_mask)
    errors = []
    for region, eps in budget.to_dict().items():
        allowed = budget_levels(eps)
        if linf[region] is not None and linf[region] > allowed:
            errors.append(f'{region} L-inf is {linf[region]} grey levels, '
                          f'more than the {allowed} allowed by '
                          f'eps_{region}={eps:.6g}')
    if errors:
        raise BudgetViolation('; '.join(errors))
    return linf


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    """Peak signal-to-noise ratio of two 8-bit images.

    Args:
        a (np.ndarray): uint8 image, any shape.
        b (np.ndarray): uint8 image of the same shape.

    Returns:
        float: PSNR in dB, ``inf`` for identical images.
    """
    _check_pair(a, b)
    mse = np.mean((a.astype(np.float64) - b)**2)
    if mse == 0:
        return float('inf')
    return float(10 * np.log10(255**2 / mse))


def ssim(a: np.ndarray, b: np.ndarray) -> float:
    """Mean structural similarity of two 8-bit images (Wang et al. 2004).

    Each channel is filtered with an 11x11 Gaussian window (sigma 1.5) with
    K1 = 0.01, K2 = 0.03 and L = 255, using population (co)variances; the
    SSIM map is averaged over all pixels at least 5 pixels from the border
    and then over channels. This is the definition of scikit-image's
    ``structural_similarity(a, b, gaussian_weights=True, sigma=1.5,
    use_sample_covariance=False, data_range=255, channel_axis=-1)``, with
    the same reflected border (``cv2.BORDER_REFLECT``), so the two agree up
    to floating-point error. Images smaller than 11 pixels on a side, which
    scikit-image rejects, are averaged over all pixels instead.

    Args:
        a (np.ndarray): uint8 image, (H, W) or (H, W, C).
        b (np.ndarray): uint8 image of the same shape.

    Returns:
        float: SSIM, 1.0 for identical images.
    """
    _check_pair(a, b)
    x = a.astype(np.float64)
    y = b.astype(np.float64)

    def blur(img):
        return cv2.GaussianBlur(
            img, (_SSIM_WIN, _SSIM_WIN),
            _SSIM_SIGMA,
            borderType=cv2.BORDER_REFLECT)

    mu_x, mu_y = blur(x), blur(y)
    var_x = blur(x * x) - mu_x * mu_x
    var_y = blur(y * y) - mu_y * mu_y
    cov_xy = blur(x * y) - mu_x * mu_y
    ssim_map = ((2 * mu_x * mu_y + _SSIM_C1) * (2 * cov_xy + _SSIM_C2) /
                ((mu_x * mu_x + mu_y * mu_y + _SSIM_C1) *
                 (var_x + var_y + _SSIM_C2)))
    pad = _SSIM_WIN // 2
    if min(a.shape[:2]) >= _SSIM_WIN:
        ssim_map = ssim_map[pad:-pad, pad:-pad]
    return float(ssim_map.mean())
