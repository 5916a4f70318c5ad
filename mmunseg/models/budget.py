"""The noise budget: the one place where unit-range noise becomes a bounded
perturbation. Training, validation, protection and the transforms use it."""
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


def scale_noise(noise, object_mask, eps_object, eps_background):
    """Resize unit-range noise to the mask's size and apply the budget.

    Args:
        noise (Tensor): Noise in [-1, 1], (B, C, h, w).
        object_mask (Tensor): Binary mask in {0, 1}, (B, 1, H, W).

    Returns:
        Tensor: Perturbation with ``|delta| <= budget``, (B, C, H, W).
    """
    if noise.shape[-2:] != object_mask.shape[-2:]:
        noise = F.interpolate(
            noise,
            size=object_mask.shape[-2:],
            mode='bilinear',
            align_corners=False)
    return noise * budget_map(object_mask, eps_object, eps_background)


def add_noise(images, noise, object_mask, eps_object, eps_background):
    """Perturb [0, 1] images within the budget and clamp to [0, 1].

    Args:
        images (Tensor): (B, C, H, W) in [0, 1].
        noise (Tensor): Noise in [-1, 1], (B, C, h, w), resized bilinearly.
        object_mask (Tensor): Binary mask in {0, 1}, (B, 1, H, W).

    Returns:
        Tensor: Perturbed images, (B, C, H, W).
    """
    delta = scale_noise(noise, object_mask, eps_object, eps_background)
    return (images + delta).clamp(0, 1)
