from typing import Dict

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from mmunseg.registry import MODELS


def point_sample(maps: Tensor, coords: Tensor) -> Tensor:
    """Bilinearly sample maps at normalised points.

    Args:
        maps (Tensor): (B, C, H, W).
        coords (Tensor): (B, N, 2) as (x, y) in [0, 1].

    Returns:
        Tensor: (B, C, N).
    """
    grid = (2 * coords - 1).unsqueeze(2)
    return F.grid_sample(maps, grid, align_corners=False).squeeze(3)


def uncertain_point_coords(logits: Tensor, num_points: int,
                           oversample_ratio: float,
                           importance_sample_ratio: float) -> Tensor:
    """PointRend sampling: most uncertain oversampled points plus uniform.

    Args:
        logits (Tensor): (B, 1, H, W).

    Returns:
        Tensor: (B, num_points, 2) coordinates in [0, 1].
    """
    batch = logits.shape[0]
    num_sampled = int(num_points * oversample_ratio)
    coords = torch.rand(batch, num_sampled, 2, device=logits.device)
    uncertainty = -point_sample(logits, coords)[:, 0].abs()
    num_uncertain = int(importance_sample_ratio * num_points)
    index = uncertainty.topk(num_uncertain, dim=1).indices
    uncertain = coords.gather(1, index.unsqueeze(-1).expand(-1, -1, 2))
    uniform = torch.rand(
        batch, num_points - num_uncertain, 2, device=logits.device)
    return torch.cat([uncertain, uniform], dim=1)


@MODELS.register_module()
class PointSampledMaskLoss(nn.Module):
    """BCE + Dice evaluated at uncertainty-sampled points (Mask2Former).

    Both terms are summed over masks and divided by the number of masks.

    Args:
        num_points (int): Points per mask (112 ** 2).
        oversample_ratio (float): Candidates per kept point (3).
        importance_sample_ratio (float): Share of points chosen by
            uncertainty (0.75); the rest are uniform.
        loss_bce_weight (float): Weight of the BCE term.
        loss_dice_weight (float): Weight of the Dice term.
    """

    def __init__(self,
                 num_points=112 * 112,
                 oversample_ratio=3.0,
                 importance_sample_ratio=0.75,
                 loss_bce_weight=1.0,
                 loss_dice_weight=1.0):
        super().__init__()
        self.num_points = num_points
        self.oversample_ratio = oversample_ratio
        self.importance_sample_ratio = importance_sample_ratio
        self.loss_bce_weight = loss_bce_weight
        self.loss_dice_weight = loss_dice_weight

    def forward(self, logits: Tensor, targets: Tensor) -> Dict[str, Tensor]:
        """Compute the losses.

        Args:
            logits (Tensor): Predicted logits, (B, 1, h, w).
            targets (Tensor): Soft targets in [0, 1], (B, 1, H, W); any size.

        Returns:
            dict[str, Tensor]: ``loss_bce`` and ``loss_dice``.
        """
        num_masks = max(logits.shape[0], 1)
        with torch.no_grad():
            coords = uncertain_point_coords(logits, self.num_points,
                                            self.oversample_ratio,
                                            self.importance_sample_ratio)
            point_targets = point_sample(targets.to(logits.dtype), coords)[:,
                                                                           0]
        point_logits = point_sample(logits, coords)[:, 0]
        bce = F.binary_cross_entropy_with_logits(
            point_logits, point_targets, reduction='none').mean(1)
        probs = point_logits.sigmoid()
        numerator = 2 * (probs * point_targets).sum(-1)
        denominator = probs.sum(-1) + point_targets.sum(-1)
        dice = 1 - (numerator + 1) / (denominator + 1)
        return dict(
            loss_bce=self.loss_bce_weight * bce.sum() / num_masks,
            loss_dice=self.loss_dice_weight * dice.sum() / num_masks)
