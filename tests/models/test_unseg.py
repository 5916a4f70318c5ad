import pytest
import torch
from mmengine.optim import build_optim_wrapper
from mmengine.structures import BaseDataElement

from mmunseg.models import add_noise, budget_map
from mmunseg.models.prompts import (PromptSampler, masks_to_boxes,
                                    noisy_mask_prompt, sample_points)
from mmunseg.registry import MODELS
from tests.utils import micro_unseg_cfg

OPTIM = dict(
    constructor='MultiOptimWrapperConstructor',
    generator=dict(optimizer=dict(type='Adam', lr=1e-3)),
    surrogate=dict(optimizer=dict(type='Adam', lr=1e-3)))


def batch(num=2, size=128):
    masks = torch.zeros(num, 1, size, size)
    masks[:, :, 30:90, 20:100] = 255
    return dict(
        inputs=[
            torch.randint(0, 256, (3, size, size), dtype=torch.uint8)
            for _ in range(num)
        ],
        data_samples=[BaseDataElement(gt_mask=m) for m in masks])


def build(**overrides):
    torch.manual_seed(0)
    model = MODELS.build(micro_unseg_cfg(**overrides))
    model.init_weights()
    return model, build_optim_wrapper(model, OPTIM)


def changed_parameters(model, step):
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    grads = {}
    step()
    for name, param in model.named_parameters():
        grads[name] = param.grad is not None and bool(param.grad.abs().sum())
        if not torch.equal(before[name], param.detach()):
            grads[name] = True
    return {name for name, changed in grads.items() if changed}


@pytest.mark.parametrize('phase, trained', [
    ('surrogate', 'surrogate.'),
    ('generator', 'generator.noise_head.'),
])
def test_each_phase_trains_only_its_player(phase, trained):
    """Surrogate phase: only the surrogate; generator phase: only the noise
    head; the frozen SAM never."""
    model, optim = build()
    model.set_phase(phase)
    changed = changed_parameters(model,
                                 lambda: model.train_step(batch(), optim))
    assert changed
    assert all(name.startswith(trained) for name in changed)
    # Parameters frozen for the step are trainable again afterwards.
    assert all(p.requires_grad for p in model.surrogate.parameters())


def test_losses_are_named_by_phase():
    model, optim = build()
    model.set_phase('generator')
    losses = model.train_step(batch(), optim)
    assert set(losses) == {
        'generator_loss', 'generator_loss_bce', 'generator_loss_dice'
    }
    with pytest.raises(ValueError, match='phase'):
        model.set_phase('both')


def test_label_modification_changes_the_generator_target():
    masks = torch.zeros(1, 1, 8, 8)
    masks[..., 2:4, 2:4] = 1
    modified, _ = build(label_modification=True)
    faithful, _ = build(label_modification=False)
    assert torch.equal(
        modified.target(masks, None, truth=False), torch.ones_like(masks))
    assert torch.equal(faithful.target(masks, None, truth=False), masks)
    # The surrogate always learns the true mask.
    assert torch.equal(modified.target(masks, None, truth=True), masks)


def test_training_budget_bounds_the_perturbation_per_region():
    images = torch.rand(2, 3, 64, 64)
    noise = torch.rand(2, 3, 16, 16) * 2 - 1
    mask = torch.zeros(2, 1, 64, 64)
    mask[..., 10:40, 10:40] = 1
    out = add_noise(images, noise, mask, 8 / 255, 2 / 255)
    delta = (out - images).abs()
    assert delta[mask.expand_as(delta) > 0].max() <= 8 / 255 + 1e-6
    assert delta[mask.expand_as(delta) == 0].max() <= 2 / 255 + 1e-6
    assert out.min() >= 0 and out.max() <= 1
    assert torch.allclose(
        budget_map(mask, 0.5, 0.1).unique(), torch.tensor([0.1, 0.5]))


def test_bad_budget_is_rejected():
    with pytest.raises(ValueError, match='budget'):
        build(train_budget=dict(object=8, background=2))


def test_prompts_from_masks():
    masks = torch.zeros(2, 1, 32, 32, dtype=torch.bool)
    masks[0, 0, 4:10, 6:20] = True
    boxes = masks_to_boxes(masks)
    assert boxes[0].tolist() == [6, 4, 19, 9]
    assert boxes[1].tolist() == [0, 0, 31, 31]  # empty mask: whole frame
    coords, labels = sample_points(masks, 10)
    assert coords.shape == (2, 10, 2) and labels.eq(1).all()
    x, y = coords[0, :, 0].long(), coords[0, :, 1].long()
    assert masks[0, 0, y, x].all()
    prompt = noisy_mask_prompt(masks.float(), 8)
    assert prompt.shape == (2, 1, 8, 8)
    assert set(prompt.unique().tolist()) <= {0.0, 255.0}
    sampler = PromptSampler(combine=True)
    drawn = [frozenset(sampler.draw_types()) for _ in range(200)]
    assert len(set(drawn)) == 7  # every non-empty subset of 3 types
    with pytest.raises(ValueError, match='prompt_types'):
        PromptSampler(prompt_types=('scribble', ))


def test_val_step_reports_clean_and_noised_iou():
    model, _ = build()
    outputs = model.val_step(batch())
    assert len(outputs) == 2
    for out in outputs:
        assert 0 <= out['iou_clean'] <= 1 and 0 <= out['iou_noised'] <= 1


def test_forward_tensor_mode_gives_noise():
    model, _ = build()
    data = model.data_preprocessor(batch(), False)
    noise = model(data['inputs'], data['data_samples'])
    assert noise.shape == (2, 3, 32, 32)
