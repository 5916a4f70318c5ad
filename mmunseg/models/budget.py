"""The noise budget: the one place where unit-range noise becomes a bounded
perturbation, and the rule that writes and reads a budget.

A :class:`Budget` holds the L-inf bounds of the two regions of an image, the
objects and the background, in [0, 1] units. Training, validation, the
diagnostics, protection and the transforms all perturb images through it,
and every saved copy keeps it in whole grey levels after quantisation
(:func:`quantize_within_budget`).
"""
import re
from dataclasses import dataclass
from fractions import Fraction
from typing import Dict, Mapping, Union

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

# Budgets are compared in grey levels, ``floor(255 * eps + LEVEL_TOL)``. The
# tolerance absorbs float32 rounding of budget maps (up to ~2e-5 levels) so
# eps = k / 255 allows exactly k levels, and is far below any fractional
# budget anyone would choose on purpose.
LEVEL_TOL = 1e-3

_NUMBER = r'(?:\d+(?:\.\d*)?|\.\d+)'
_WHOLE = re.compile(r'\d+')
_FRACTION = re.compile(rf'({_NUMBER})/({_NUMBER})')

#: How a budget is written, for help texts and errors.
BUDGET_RULE = ('a whole number N is N grey levels out of 255 (8 = 8/255); '
               'anything else is written as a fraction of the 8-bit range, '
               'N/255 (8/255, 5.5/255); a bare decimal such as 0.03 or 1.0 '
               'is refused, since it could be read either way')


def parse_eps(text: str) -> float:
    """One L-inf budget in [0, 1] units from its text.

    One rule, no guessing (:data:`BUDGET_RULE`): ``8`` is 8 grey levels,
    ``8/255`` and ``5.5/255`` are fractions of the 8-bit range; ``0.03``,
    ``1.0`` or ``1e-2`` are refused.

    Args:
        text (str): The value as typed.

    Returns:
        float: The budget, ``N / 255`` for ``N`` grey levels.

    Raises:
        ValueError: The value is malformed, ambiguous, negative or larger
            than the whole range.
    """
    text = text.strip()
    if text.startswith('-'):
        raise ValueError(
            f'budget {text} is negative; budgets are 0 to 255 grey levels')
    if _WHOLE.fullmatch(text):
        levels = int(text)
        if levels > 255:
            raise ValueError(f'budget {text} is {levels} grey levels, more '
                             'than the 255 of the 8-bit range')
        return levels / 255
    if re.fullmatch(_NUMBER, text):
        raise ValueError(
            f'budget {text} is ambiguous: grey levels or a fraction of the '
            f'range? Write {text}/255 for {text} grey levels, or the '
            f'fraction as N/255 ({BUDGET_RULE})')
    match = _FRACTION.fullmatch(text)
    if match is None:
        raise ValueError(f'budget {text!r} is not a budget: {BUDGET_RULE}')
    numerator, denominator = (Fraction(part) for part in match.groups())
    if denominator == 0:
        raise ValueError(f'budget {text} divides by zero')
    value = numerator / denominator
    if value > 1:
        raise ValueError(
            f'budget {text} is {float(value * 255):g} grey levels, more than '
            'the 255 of the 8-bit range')
    return float(value)


def format_eps(eps: float) -> str:
    """``8/255`` or ``5.5/255``: a budget in the form :func:`parse_eps`
    reads (back exactly for whole grey levels, to the last bit otherwise)."""
    levels = eps * 255
    if abs(levels - round(levels)) < 1e-9:
        return f'{round(levels)}/255'
    return f'{levels!r}/255'


def budget_levels(eps: float) -> int:
    """The largest whole number of grey levels within an L-inf budget.

    Args:
        eps (float): Budget in [0, 1] units.

    Returns:
        int: ``floor(255 * eps)``, e.g. 8 for 8/255 and 2 for 2.5/255.
    """
    return int(np.floor(255 * eps + LEVEL_TOL))


@dataclass(frozen=True)
class Budget:
    """The L-inf budgets of the objects and of the background.

    Args:
        object (float): Budget inside the objects, in [0, 1] units.
        background (float): Budget outside them.

    Raises:
        ValueError: A budget is not a number in [0, 1].
    """

    object: float
    background: float

    def __post_init__(self):
        for region in ('object', 'background'):
            eps = getattr(self, region)
            number = isinstance(eps,
                                (int, float)) and not isinstance(eps, bool)
            if not number or not 0 <= eps <= 1:
                raise ValueError(f'the {region} budget must be a number in '
                                 f'[0, 1] (e.g. 8/255), got {eps!r}')

    @classmethod
    def preset(cls, name: str) -> 'Budget':
        """One of :data:`BUDGET_PRESETS` (``paper``, ``medical``,
        ``train``)."""
        if name not in BUDGET_PRESETS:
            raise ValueError(f'unknown budget preset {name!r}; expected one '
                             f'of {sorted(BUDGET_PRESETS)}')
        return BUDGET_PRESETS[name]

    @classmethod
    def parse(cls, object: str, background: str) -> 'Budget':
        """A budget from its two texts, such as ``'8/255'`` and ``'2'``
        (:func:`parse_eps`)."""
        return cls(parse_eps(object), parse_eps(background))

    @classmethod
    def of(cls, value: Union['Budget', Mapping[str, float], str]) -> 'Budget':
        """A budget from a config value.

        Args:
            value (Budget | dict | str): A budget, a dict with exactly the
                keys ``object`` and ``background``, or a preset name.

        Returns:
            Budget: The checked budget.
        """
        if isinstance(value, Budget):
            return value
        if isinstance(value, str):
            return cls.preset(value)
        if not isinstance(value, Mapping) or set(value) != {
                'object', 'background'
        }:
            raise ValueError('a budget is dict(object=eps, background=eps) '
                             'with eps in [0, 1], or a preset name '
                             f'{sorted(BUDGET_PRESETS)}; got {value!r}')
        return cls(value['object'], value['background'])

    def to_dict(self) -> Dict[str, float]:
        """``dict(object=..., background=...)``, the config form."""
        return dict(object=self.object, background=self.background)

    def times(self, factor: float) -> 'Budget':
        """Both budgets multiplied by ``factor`` (the result is checked
        like any budget, so it must stay within [0, 1])."""
        return Budget(self.object * factor, self.background * factor)

    @property
    def largest(self) -> float:
        """The larger of the two budgets."""
        return max(self.object, self.background)

    def map(self, object_mask: Tensor) -> Tensor:
        """Per-pixel budgets of a mask, (B, 1, H, W); see
        :func:`budget_map`."""
        return budget_map(object_mask, self.object, self.background)

    def scale(self,
              noise: Tensor,
              object_mask: Tensor,
              dc_free: bool = False) -> Tensor:
        """The perturbation of unit-range noise; see :func:`scale_noise`."""
        return scale_noise(noise, object_mask, self.object, self.background,
                           dc_free)

    def add(self,
            images: Tensor,
            noise: Tensor,
            object_mask: Tensor,
            dc_free: bool = False) -> Tensor:
        """Perturbed [0, 1] images; see :func:`add_noise`."""
        return add_noise(images, noise, object_mask, self.object,
                         self.background, dc_free)


#: Object / background budgets by name: the paper's protection budget, the
#: medical one (Kvasir) and the paper's training budget.
BUDGET_PRESETS = {
    'paper': Budget(8 / 255, 2 / 255),
    'medical': Budget(4 / 255, 1 / 255),
    'train': Budget(1 / 255, 0.25 / 255),
}


def budget_map(object_mask: Tensor, eps_object: float,
               eps_background: float) -> Tensor:
    """Per-pixel L-inf budget.

    Args:
        object_mask (Tensor): Binary object mask in {0, 1}, (B, 1, H, W).
        eps_object (float): Budget inside the object, in [0, 1] units.
        eps_background (float): Budget outside it.

    Returns:
        Tensor: (B, 1, H, W) budgets.
    """
    return eps_background + (eps_object - eps_background) * object_mask


def remove_dc(noise: Tensor, region_mask: Tensor) -> Tensor:
    """Remove each channel's mean inside and outside a region.

    A network under a min-min objective readily finds a constant colour
    cast (one value per channel), which is a photometric shift rather than a
    learnable shortcut. Without its mean a region's noise cannot be a cast.
    Where removing the mean pushes a value past +-1, the region is rescaled
    (keeping its mean at zero) so the result stays unit-range.

    Args:
        noise (Tensor): Noise in [-1, 1], (B, C, H, W).
        region_mask (Tensor): Binary mask in {0, 1}, (B, 1, H, W); the
            region and its complement are centred separately.

    Returns:
        Tensor: (B, C, H, W) in [-1, 1], zero mean per channel and region.
    """
    out = torch.zeros_like(noise)
    for region in (region_mask, 1 - region_mask):
        area = region.sum((2, 3), keepdim=True)
        mean = (noise * region).sum((2, 3), keepdim=True) / area.clamp(min=1)
        centred = (noise - mean) * region
        peak = centred.abs().amax((2, 3), keepdim=True)
        out = out + centred / peak.clamp(min=1)
    return out


def scale_noise(noise: Tensor,
                object_mask: Tensor,
                eps_object: float,
                eps_background: float,
                dc_free: bool = False) -> Tensor:
    """Resize unit-range noise to the mask's size and apply the budget.

    Args:
        noise (Tensor): Noise in [-1, 1], (B, C, h, w).
        object_mask (Tensor): Binary mask in {0, 1}, (B, 1, H, W).
        eps_object (float): Budget inside the object, in [0, 1] units.
        eps_background (float): Budget outside it.
        dc_free (bool): Remove the noise's mean per channel on the object
            and on the background first (:func:`remove_dc`).

    Returns:
        Tensor: Perturbation with ``|delta| <= budget``, (B, C, H, W).
    """
    if noise.shape[-2:] != object_mask.shape[-2:]:
        noise = F.interpolate(
            noise,
            size=object_mask.shape[-2:],
            mode='bilinear',
            align_corners=False)
    if dc_free:
        noise = remove_dc(noise, object_mask)
    return noise * budget_map(object_mask, eps_object, eps_background)


def add_noise(images: Tensor,
              noise: Tensor,
              object_mask: Tensor,
              eps_object: float,
              eps_background: float,
              dc_free: bool = False) -> Tensor:
    """Perturb [0, 1] images within the budget and clamp to [0, 1].

    Args:
        images (Tensor): (B, C, H, W) in [0, 1].
        noise (Tensor): Noise in [-1, 1], (B, C, h, w), resized bilinearly.
        object_mask (Tensor): Binary mask in {0, 1}, (B, 1, H, W).
        eps_object (float): Budget inside the object, in [0, 1] units.
        eps_background (float): Budget outside it.
        dc_free (bool): See :func:`scale_noise`.

    Returns:
        Tensor: Perturbed images, (B, C, H, W).
    """
    delta = scale_noise(noise, object_mask, eps_object, eps_background,
                        dc_free)
    return (images + delta).clamp(0, 1)


def quantize_within_budget(original: np.ndarray, protected_float: np.ndarray,
                           budget_map: np.ndarray) -> np.ndarray:
    """Round a protected image to 8 bits without exceeding its budget.

    The image is rounded and clipped to [0, 255], then each pixel's
    difference from the original is clipped to its budget in whole grey
    levels, ``floor(255 * budget)``. When ``255 * budget`` is integral (eps
    = k / 255) a float image within budget only ever rounds to within
    budget, so this is plain rounding; for fractional budgets such as
    2.5 / 255 rounding alone could reach 3 levels, and the clip keeps the
    saved image within the bound that the protector verifies.

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
    allowed = np.floor(255 * budget_map.astype(np.float64) + LEVEL_TOL)
    allowed = allowed[..., None]
    quantized = np.clip(np.rint(protected_float), 0, 255)
    diff = np.clip(quantized - original, -allowed, allowed)
    # Between the original and the rounded value, so still within [0, 255].
    return (original + diff).astype(np.uint8)


def perturb_image(image: np.ndarray, object_mask: np.ndarray,
                  noise: np.ndarray, budget: Budget) -> np.ndarray:
    """Add unit-range noise to an 8-bit image within its budget.

    The budget is applied in fp32 (:func:`scale_noise`) and the result
    quantised (:func:`quantize_within_budget`) so that the L-inf bound
    holds in grey levels.

    Args:
        image (np.ndarray): uint8 (H, W, C).
        object_mask (np.ndarray): (H, W) bool.
        noise (np.ndarray): float (H, W, C) in [-1, 1].
        budget (Budget): The object and background budgets.

    Returns:
        np.ndarray: The protected uint8 (H, W, C) image.
    """
    mask = torch.from_numpy(object_mask)[None, None].float()
    delta = budget.scale(
        torch.from_numpy(noise).permute(2, 0, 1)[None].float(),
        mask)[0].permute(1, 2, 0).numpy()
    return quantize_within_budget(image,
                                  image.astype(np.float32) + 255 * delta,
                                  budget.map(mask)[0, 0].numpy())
