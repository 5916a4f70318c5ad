from typing import Dict

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from mmunseg.registry import MODELS


@MODELS.register_module()
class PixelCrossEntropyLoss(nn.Module):
    """Per-pixel cross-entropy of class logits against a label map.

    The loss of code maps (:class:`mmunseg.models.UnSeg` with
    ``num_codes``): the logits are resized bilinearly to the labels.

    Args:
        ignore_index (int): Label value that counts nowhere.
        class_balanced (bool): Average the pixels of each class present in
            the batch first, then the classes, so a small object weighs as
            much as the background. Without it a surrogate trained from
            scratch on mostly-background maps settles on "background
            everywhere", and the generator gets no signal.
        loss_weight (float): Weight of the loss.
    """

    def __init__(self, ignore_index=255, class_balanced=True, loss_weight=1.0):
        super().__init__()
        self.ignore_index = ignore_index
        self.class_balanced = class_balanced
        self.loss_weight = loss_weight

    def forward(self, logits: Tensor, labels: Tensor) -> Dict[str, Tensor]:
        """Compute the loss.

        Args:
            logits (Tensor): (B, C, h, w).
            labels (Tensor): (B, 1, H, W) integer class ids (any dtype).

        Returns:
            dict[str, Tensor]: ``loss_ce``.
        """
        if logits.shape[-2:] != labels.shape[-2:]:
            logits = F.interpolate(
                logits,
                labels.shape[-2:],
                mode='bilinear',
                align_corners=False)
        labels = labels[:, 0].round().long()
        if not self.class_balanced:
            loss = F.cross_entropy(
                logits, labels, ignore_index=self.ignore_index)
            return dict(loss_ce=self.loss_weight * loss)
        pixels = F.cross_entropy(
            logits, labels, ignore_index=self.ignore_index, reduction='none')
        valid = labels != self.ignore_index
        classes = labels[valid].unique()
        per_class = torch.stack([pixels[labels == c].mean() for c in classes
                                 ]) if len(classes) else pixels.sum()[None] * 0
        return dict(loss_ce=self.loss_weight * per_class.mean())
