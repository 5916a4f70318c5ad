from typing import Optional

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from mmunseg.registry import MODELS


@MODELS.register_module()
class WeightedCrossEntropyLoss(nn.Module):
    """Class-weighted cross-entropy for MMSeg decode heads (victims).

    MMSeg 1.2's ``CrossEntropyLoss`` with ``class_weight`` indexes the
    weights with every label, the ignore index included, and fails on any
    dataset with void pixels (CamVid). This is the same loss through
    PyTorch's own weighted mean over the labelled pixels. It follows MMSeg's
    loss interface, so a victim config uses it as
    ``loss_decode=dict(type='mmunseg.WeightedCrossEntropyLoss', ...)``.

    Args:
        class_weight (Sequence[float]): One weight per class (e.g. the
            square root of median-frequency balancing).
        loss_weight (float): Weight of the loss.
        loss_name (str): Name in the logs; MMSeg sums terms whose name
            starts with ``loss_``.
    """

    def __init__(self,
                 class_weight,
                 loss_weight=1.0,
                 loss_name='loss_ce_weighted'):
        super().__init__()
        self.register_buffer('class_weight',
                             torch.tensor(class_weight, dtype=torch.float32),
                             False)
        self.loss_weight = loss_weight
        self._loss_name = loss_name

    def forward(self,
                cls_score: Tensor,
                label: Tensor,
                weight: Optional[Tensor] = None,
                ignore_index: int = 255,
                **kwargs) -> Tensor:
        """Weighted mean cross-entropy over the pixels that are labelled.

        Args:
            cls_score (Tensor): (B, C, H, W) logits.
            label (Tensor): (B, H, W) class ids.
            weight (Tensor, optional): Unsupported per-pixel weights.
            ignore_index (int): Label of void pixels.

        Returns:
            Tensor: The scalar loss.
        """
        if weight is not None:
            raise ValueError('WeightedCrossEntropyLoss takes no per-pixel '
                             'weights')
        if cls_score.shape[1] != len(self.class_weight):
            raise ValueError(f'{len(self.class_weight)} class weights for '
                             f'{cls_score.shape[1]} classes')
        return self.loss_weight * F.cross_entropy(
            cls_score,
            label,
            weight=self.class_weight.to(cls_score),
            ignore_index=ignore_index)

    @property
    def loss_name(self) -> str:
        return self._loss_name
