import pytest
import torch
import torch.nn.functional as F

from mmunseg.registry import MODELS


def test_weighted_cross_entropy_ignores_void_pixels():
    """MMSeg's CrossEntropyLoss with class_weight fails on label 255; this
    one is PyTorch's weighted mean over the labelled pixels."""
    torch.manual_seed(0)
    logits = torch.randn(2, 3, 4, 5)
    labels = torch.randint(0, 3, (2, 4, 5))
    labels[0, 0] = 255
    weights = [0.5, 1.0, 3.0]
    loss = MODELS.build(
        dict(
            type='WeightedCrossEntropyLoss',
            class_weight=weights,
            loss_weight=0.4))
    expected = F.cross_entropy(
        logits, labels, weight=torch.tensor(weights), ignore_index=255)
    assert torch.allclose(loss(logits, labels), 0.4 * expected)
    assert loss.loss_name.startswith('loss_')
    with pytest.raises(ValueError, match='3 class weights for 4 classes'):
        loss(torch.randn(1, 4, 2, 2), torch.zeros(1, 2, 2, dtype=torch.long))
