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


def test_pixel_cross_entropy_balances_classes():
    """A small object weighs as much as the background."""
    logits = torch.zeros(1, 3, 10, 10)
    logits[:, 0] = 5  # "background everywhere"
    labels = torch.zeros(1, 1, 10, 10)
    labels[..., :2, :2] = 2  # a 4-pixel object
    labels[..., 9, 9] = 255
    plain = MODELS.build(
        dict(type='PixelCrossEntropyLoss', class_balanced=False))
    balanced = MODELS.build(dict(type='PixelCrossEntropyLoss'))
    flat = labels[0, 0].long()
    pixels = F.cross_entropy(
        logits, flat[None], ignore_index=255, reduction='none')[0]
    assert torch.allclose(
        plain(logits, labels)['loss_ce'], pixels[flat != 255].mean())
    expected = (pixels[flat == 0].mean() + pixels[flat == 2].mean()) / 2
    assert torch.allclose(balanced(logits, labels)['loss_ce'], expected)
    assert balanced(logits,
                    labels)['loss_ce'] > 2 * plain(logits, labels)['loss_ce']
