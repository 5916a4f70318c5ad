"""Quantising protected images within their noise budget, and measuring
what the noise did to them."""
from typing import Dict, Optional

import cv2
import numpy as np

# Budgets are compared in grey levels, ``floor(255 * eps + _LEVEL_TOL)``. The
# tolerance absorbs float32 rounding of budget maps (up to ~2e-5 levels) so
# eps = k / 255 allows exactly k levels, and is far below any fractional
# budget anyone would choose on purpose.
_LEVEL_TOL = 1e-3

# SSIM constants of Wang et al. 2004 for 8-bit images.
_SSIM_C1 = (0.01 * 255)**2
_SSIM_C2 = (0.03 * 255)**2
_SSIM_WIN = 11
_SSIM_SIGMA = 1.5


class BudgetViolation(RuntimeError):
    """A protected image differs from its original by more than allowed."""


def budget_levels(eps: float) -> int:
    """The largest whole number of grey levels within an L-inf budget.

    Args:
        eps (float): Budget in [0, 1] units.

    Returns:
        int: ``floor(255 * eps)``, e.g. 8 for 8/255 and 2 for 2.5/255.
    """
    return int(np.floor(255 * eps + _LEVEL_TOL))


def _check_pair(a: np.ndarray, b: np.ndarray) -> None:
    if a.shape != b.shape or a.dtype != np.uint8 or b.dtype != np.uint8:
        raise ValueError('expected two uint8 images of the same shape, got '
                         f'{a.dtype} {a.shape} and {b.dtype} {b.shape}')


def quantize_within_budget(original: np.ndarray, protected_float: np.ndarray,
                           budget_map: np.ndarray) -> np.ndarray:
    """Round a protected image to 8 bits without exceeding its budget.

    The image is rounded and clipped to [0, 255], then each pixel's
    difference from the original is clipped to its budget in whole grey
    levels, ``floor(255 * budget)``. When ``255 * budget`` is integral (eps
    = k / 255) a float image within budget only ever rounds to within
    budget, so this is plain rounding; for fractional budgets such as
    2.5 / 255 rounding alone could reach 3 levels, and the clip keeps the
    saved image within the bound that :func:`check_budget` enforces.

    Args:
        original (np.ndarray): uint8 image, (H, W, 3).
        protected_float (np.ndarray): Protected image on the 0..255 scale,
            ``original + 255 * delta``, float, (H, W, 3).
        budget_map (np.ndarray): Per-pixel L-inf budgets in [0, 1] units,
            float, (H, W).

    Returns:
        np.ndarray: uint8 protected image, (H, W, 3), with
        ``|result - original| <= floor(255 * budget_map)`` at every pixel.
    """
    if (original.dtype != np.uint8 or original.ndim != 3
            or protected_float.shape != original.shape
            or budget_map.shape != original.shape[:2]):
        raise ValueError(
            'expected a uint8 (H, W, 3) original, an (H, W, 3) protected '
            f'image and an (H, W) budget map, got {original.dtype} '
            f'{original.shape}, {protected_float.shape} and '
            f'{budget_map.shape}')
    if not np.isfinite(protected_float).all():
        raise ValueError('the protected image has NaN or infinite values')
    if budget_map.min() < 0 or budget_map.max() > 1:
        raise ValueError('budgets must be in [0, 1], got values in '
                         f'[{budget_map.min()}, {budget_map.max()}]')
    allowed = np.floor(255 * budget_map.astype(np.float64) + _LEVEL_TOL)
    allowed = allowed[..., None]
    quantized = np.clip(np.rint(protected_float), 0, 255)
    diff = np.clip(quantized - original, -allowed, allowed)
    # Between the original and the rounded value, so still within [0, 255].
    return (original + diff).astype(np.uint8)


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
                 object_mask: np.ndarray, eps_object: float,
                 eps_background: float) -> Dict[str, Optional[int]]:
    """Verify that a protected image keeps both L-inf budgets.

    Args:
        original (np.ndarray): uint8 image, (H, W, C).
        protected (np.ndarray): uint8 image, (H, W, C), as saved.
        object_mask (np.ndarray): Object pixels (non-zero), (H, W).
        eps_object (float): Object budget in [0, 1] units.
        eps_background (float): Background budget in [0, 1] units.

    Returns:
        dict: The achieved L-inf per region, see :func:`linf_by_region`.

    Raises:
        BudgetViolation: A region differs by more than
            ``floor(255 * eps)`` grey levels; the message names each such
            region with its achieved and allowed levels.
    """
    linf = linf_by_region(original, protected, object_mask)
    errors = []
    budgets = dict(object=eps_object, background=eps_background)
    for region, eps in budgets.items():
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
