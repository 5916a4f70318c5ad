import torch.nn as nn
import torch.nn.functional as F

from mmunseg.registry import MODELS


@MODELS.register_module()
class PixelCrossEntropyLoss(nn.Module):
    """Per-pixel cross-entropy of class logits against a label map.

    The loss of code maps (:class:`mmunseg.models.UnSeg` with
    ``num_codes``): the logits are resized bilinearly to the labels.

    Args:
        ignore_index (int): Label value that counts nowhere.
        loss_weight (float): Weight of the loss.
    """

    def __init__(self, ignore_index=255, loss_weight=1.0):
        super().__init__()
        self.ignore_index = ignore_index
        self.loss_weight = loss_weight

    def forward(self, logits, labels):
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
        loss = F.cross_entropy(
            logits,
            labels[:, 0].round().long(),
            ignore_index=self.ignore_index)
        return dict(loss_ce=self.loss_weight * loss)
