"""The noise budget: the one place where unit-range noise becomes a bounded
perturbation. Training, validation, protection and the transforms use it."""
import torch
import torch.nn.functional as F


def budget_map(object_mask, eps_object, eps_background):
    """Per-pixel L-inf budget.

    Args:
        object_mask (Tensor): Binary object mask in {0, 1}, (B, 1, H, W).
        eps_object (float): Budget inside the object, in [0, 1] units.
        eps_background (float): Budget outside it.

    Returns:
        Tensor: (B, 1, H, W) budgets.
    """
    return eps_background + (eps_object - eps_background) * object_mask


def remove_dc(noise, region_mask):
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


def scale_noise(noise, object_mask, eps_object, eps_background, dc_free=False):
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


def add_noise(images,
              noise,
              object_mask,
              eps_object,
              eps_background,
              dc_free=False):
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
