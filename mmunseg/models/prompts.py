"""Prompts of the object to protect, sampled from its (soft) mask."""
import random
from typing import Any, Callable, Dict, Optional, Set, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor

from mmunseg.registry import TASK_UTILS

PROMPT_TYPES = ('box', 'points', 'mask')


def masks_to_boxes(masks: Tensor) -> Tensor:
    """Tight xyxy boxes of binary masks; an empty mask gives the full frame.

    Args:
        masks (Tensor): Binary masks, (B, 1, H, W).

    Returns:
        Tensor: (B, 4) float boxes in pixels.
    """
    batch, _, height, width = masks.shape
    boxes = masks.new_zeros(batch, 4, dtype=torch.float32)
    for i, mask in enumerate(masks[:, 0]):
        ys, xs = torch.nonzero(mask, as_tuple=True)
        if len(xs):
            boxes[i] = torch.stack([xs.min(),
                                    ys.min(),
                                    xs.max(),
                                    ys.max()]).float()
        else:
            boxes[i] = boxes.new_tensor([0, 0, width - 1, height - 1])
    return boxes


def sample_points(masks: Tensor, num_points: int) -> Tuple[Tensor, Tensor]:
    """Positive points drawn uniformly from each mask.

    Sampled without replacement, or with replacement when the object has
    fewer pixels than ``num_points`` (so every sample keeps its points); an
    empty mask draws from the whole frame.

    Args:
        masks (Tensor): Binary masks, (B, 1, H, W).
        num_points (int): Points per mask.

    Returns:
        tuple[Tensor, Tensor]: Coordinates (B, N, 2) as (x, y) and labels
        (B, N), all 1.
    """
    batch, _, height, width = masks.shape
    coords = masks.new_zeros(batch, num_points, 2, dtype=torch.float32)
    for i, mask in enumerate(masks[:, 0]):
        flat = torch.nonzero(mask.flatten(), as_tuple=True)[0]
        if not len(flat):
            flat = torch.arange(height * width, device=masks.device)
        if len(flat) >= num_points:
            pick = torch.randperm(len(flat), device=masks.device)[:num_points]
        else:
            pick = torch.randint(
                len(flat), (num_points, ), device=masks.device)
        index = flat[pick]
        coords[i, :, 0] = (index % width).float()
        coords[i, :, 1] = (index // width).float()
    labels = coords.new_ones(batch, num_points)
    return coords, labels


def noisy_mask_prompt(soft_masks: Tensor,
                      size: int,
                      boundary_noise: bool = True) -> Tensor:
    """Mask prompt at ``size`` with a perturbed boundary, values 0 / 255.

    Gaussian noise N(0, 1) is added in the boundary band, where the mask
    differs from its 1/8 down- and up-sampled copy, before thresholding at
    0.5 (the Mask Transfiner recipe UnSeg trains with).

    Args:
        soft_masks (Tensor): Masks in [0, 1], (B, 1, H, W).
        size (int): Side of the prompt.
        boundary_noise (bool): Perturb the boundary (training) or not.

    Returns:
        Tensor: (B, 1, size, size) with values 0 or 255.
    """
    masks = F.interpolate(
        soft_masks, size=(size, size), mode='bilinear', align_corners=False)
    if boundary_noise:
        coarse = F.interpolate(
            F.interpolate(
                masks,
                size=(max(size // 8, 1), ) * 2,
                mode='bilinear',
                align_corners=False),
            size=(size, size),
            mode='bilinear',
            align_corners=False)
        band = ((masks - coarse).abs() >= 0.01).to(masks.dtype)
        masks = masks + torch.randn_like(masks) * band
    return (masks > 0.5).to(soft_masks.dtype) * 255


def map_prompts(prompts: Dict[str, Any],
                function: Callable[[Tensor], Tensor]) -> Dict[str, Any]:
    """Apply ``function`` to every prompt tensor of a batch.

    Args:
        prompts (dict): ``points`` (tuple of tensors or None), ``boxes`` and
            ``masks`` (tensors or None), as :class:`PromptSampler` returns.
        function (callable): Tensor -> tensor along the batch axis (select,
            repeat).

    Returns:
        dict: The same keys, with the mapped tensors.
    """

    def apply(value):
        if value is None:
            return None
        if isinstance(value, tuple):
            return tuple(function(item) for item in value)
        return function(value)

    return {key: apply(value) for key, value in prompts.items()}


@TASK_UTILS.register_module()
class PromptSampler:
    """Draws the prompt types and the prompts for a batch.

    Args:
        prompt_types (Sequence[str]): Available types, from
            :data:`PROMPT_TYPES`.
        combine (bool): Draw a random non-empty subset of the types and
            combine them (the generator's prompts) instead of a single type
            (the surrogate's).
        num_points (int): Positive points of a point prompt (10).
        boundary_noise (bool): Perturb the mask prompt's boundary.
    """

    def __init__(self,
                 prompt_types=PROMPT_TYPES,
                 combine=False,
                 num_points=10,
                 boundary_noise=True):
        unknown = set(prompt_types) - set(PROMPT_TYPES)
        if unknown or not prompt_types:
            raise ValueError(f'prompt_types must be a non-empty subset of '
                             f'{PROMPT_TYPES}, got {prompt_types}')
        self.prompt_types = tuple(prompt_types)
        self.combine = combine
        self.num_points = num_points
        self.boundary_noise = boundary_noise

    def draw_types(self) -> Set[str]:
        if not self.combine:
            return {random.choice(self.prompt_types)}
        count = random.randint(1, len(self.prompt_types))
        return set(random.sample(self.prompt_types, count))

    def __call__(self,
                 soft_masks: Tensor,
                 mask_prompt_size: int,
                 types: Optional[Set[str]] = None) -> Dict[str, Any]:
        """Sample prompts from masks given in the model's input frame.

        Args:
            soft_masks (Tensor): Masks in [0, 1], (B, 1, S, S).
            mask_prompt_size (int): Side of the mask prompt (S / 4).
            types (set[str], optional): Force these types.

        Returns:
            dict: ``points`` (tuple or None), ``boxes`` (Tensor or None) and
            ``masks`` (Tensor or None), keyword arguments of the generator
            and the surrogate.
        """
        types = self.draw_types() if types is None else set(types)
        binary = soft_masks > 0.5
        prompts = dict(points=None, boxes=None, masks=None)
        if 'box' in types:
            prompts['boxes'] = masks_to_boxes(binary)
        if 'points' in types:
            prompts['points'] = sample_points(binary, self.num_points)
        if 'mask' in types:
            prompts['masks'] = noisy_mask_prompt(soft_masks, mask_prompt_size,
                                                 self.boundary_noise)
        return prompts
