"""The efficacy levers of the generator recipe: DC-free noise, crafting
augmentation, object codes and an MMSeg segmentor as surrogate."""
import pytest
import torch
from mmengine.config import Config
from mmengine.optim import build_optim_wrapper
from mmengine.structures import BaseDataElement

from mmunseg.models import CraftingAugmentation, add_noise, remove_dc
from mmunseg.models.generators.noise_head import (CHROMA_GRATING_COLOURS,
                                                  LUMA_GRATING_COLOURS)
from mmunseg.registry import MODELS
from tests.utils import MICRO_ARCH, micro_unseg_cfg

OPTIM = dict(
    constructor='MultiOptimWrapperConstructor',
    generator=dict(optimizer=dict(type='Adam', lr=1e-3)),
    surrogate=dict(optimizer=dict(type='Adam', lr=1e-3)))

NORM = dict(type='BN', requires_grad=True)


def micro_cnn_surrogate(num_classes, img_size=64):
    """A two-stage MMSeg UNet: the CNN surrogate, tiny."""
    return dict(
        type='MMSegSurrogate',
        img_size=img_size,
        segmentor=dict(
            type='mmseg.EncoderDecoder',
            backbone=dict(
                type='UNet',
                in_channels=3,
                base_channels=4,
                num_stages=2,
                strides=(1, 1),
                enc_num_convs=(1, 1),
                dec_num_convs=(1, ),
                downsamples=(True, ),
                enc_dilations=(1, 1),
                dec_dilations=(1, ),
                norm_cfg=NORM,
                upsample_cfg=dict(type='InterpConv')),
            decode_head=dict(
                type='FCNHead',
                in_channels=4,
                in_index=1,
                channels=4,
                num_convs=1,
                concat_input=False,
                num_classes=num_classes,
                norm_cfg=NORM,
                loss_decode=dict(type='CrossEntropyLoss')),
            train_cfg=dict(),
            test_cfg=dict(mode='whole')))


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


def coded_cfg(**generator):
    return dict(
        generator=dict(
            type='SAMNoiseGenerator',
            arch=MICRO_ARCH,
            img_size=128,
            num_codes=4,
            texture_period=4,
            **generator),
        surrogate=micro_cnn_surrogate(num_classes=5),
        loss=dict(type='PixelCrossEntropyLoss'),
        label_modification=False,
        generator_prompt=dict(prompt_types=('mask', )),
        surrogate_prompt=dict(prompt_types=('mask', )),
        val_prompt=dict(prompt_types=('mask', ), boundary_noise=False))


def test_dc_free_noise_has_zero_mean_per_region():
    torch.manual_seed(0)
    # A strong cast plus a texture, on an irregular region.
    noise = (0.8 + 0.3 * torch.randn(2, 3, 40, 50)).clamp(-1, 1)
    mask = (torch.rand(2, 1, 40, 50) > 0.6).float()
    out = remove_dc(noise, mask)
    assert out.abs().max() <= 1 + 1e-6
    for region in (mask, 1 - mask):
        mean = (out * region).sum((2, 3)) / region.sum((2, 3))
        assert mean.abs().max() < 1e-5
    # The texture survives: what is left is the noise minus its means.
    std = ((out * mask)**2).sum((2, 3)) / mask.sum((2, 3))
    assert (std.sqrt() > 0.1).all()


def test_dc_free_perturbation_cannot_be_a_cast():
    """A constant unit noise (the collapsed generator) perturbs nothing."""
    images = torch.full((1, 3, 32, 32), 0.5)
    mask = torch.zeros(1, 1, 32, 32)
    mask[..., 8:24, 8:24] = 1
    constant = torch.ones(1, 3, 8, 8)
    cast = add_noise(images, constant, mask, 8 / 255, 2 / 255)
    assert (cast - images).abs().max() > 7 / 255
    dc_free = add_noise(images, constant, mask, 8 / 255, 2 / 255, True)
    assert torch.allclose(dc_free, images)


def test_crafting_augmentation_keeps_masks_aligned_and_the_bound():
    torch.manual_seed(0)
    augment = CraftingAugmentation(scale_range=(0.5, 2.0), flip_prob=0.5)
    size = 64
    masks = torch.zeros(8, 1, size, size)
    for i in range(8):
        masks[i, :, 5 + i:40 + i, 10:30 + 3 * i] = 1
    # Images that are their masks: aligned outputs stay equal to them.
    images = masks.expand(-1, 3, -1, -1).clone()
    eps = 8 / 255
    delta = eps * torch.sign(torch.randn(8, 3, size, size))
    # The same draw for the clean and the perturbed image.
    torch.manual_seed(1)
    aug_images, aug_masks = augment(images, masks)
    torch.manual_seed(1)
    aug_noised, aug_masks2 = augment(images + delta, masks)
    assert torch.equal(aug_masks, aug_masks2)
    assert set(aug_masks.unique().tolist()) <= {0., 1.}
    # Away from edges (where bilinear sampling mixes), the image is its
    # mask: the two stay aligned.
    interior = (aug_images[:, :1] - 0.5).abs() > 0.49
    assert interior.float().mean() > 0.8
    assert torch.equal((aug_images[:, :1] > 0.5)[interior], (aug_masks
                                                             > 0.5)[interior])
    # The L-inf bound of the perturbation holds after resampling.
    assert (aug_noised - aug_images).abs().max() <= eps + 1e-6
    # The transforms vary: scale and flips change the masks.
    assert not torch.equal(aug_masks, masks)


def test_crafting_augmentation_grayscale_and_blur():
    torch.manual_seed(0)
    augment = CraftingAugmentation(
        scale_range=(1.0, 1.0), flip_prob=0., grayscale_prob=1., blur_prob=1.)
    images = torch.rand(2, 3, 32, 32)
    out, _ = augment(images, torch.zeros(2, 1, 32, 32))
    assert torch.allclose(out[:, 0], out[:, 1]) and torch.allclose(
        out[:, 1], out[:, 2])
    # Blur lowers the pixel-to-pixel variation of noise.
    assert out.diff(dim=-1).abs().mean() < images.diff(dim=-1).abs().mean()


def test_object_codes_change_the_noise_per_code():
    torch.manual_seed(0)
    generator = MODELS.build(
        dict(
            type='SAMNoiseGenerator',
            arch=MICRO_ARCH,
            img_size=128,
            num_codes=4,
            texture_period=4))
    images = torch.rand(1, 3, 128, 128).repeat(5, 1, 1, 1)
    masks = torch.zeros(5, 1, 32, 32)
    masks[..., 8:24, 8:24] = 255
    with torch.no_grad():
        noise = generator(images, masks=masks, codes=torch.arange(5))
    for a in range(5):
        for b in range(a + 1, 5):
            assert (noise[a] - noise[b]).abs().mean() > 1e-3
    # Same code, same image, same prompt: the same noise.
    with torch.no_grad():
        again = generator(images[:1], masks=masks[:1], codes=torch.tensor([2]))
    assert torch.allclose(again[0], noise[2], atol=1e-4)
    with pytest.raises(ValueError, match='codes must be in'):
        generator(images[:1], masks=masks[:1], codes=torch.tensor([5]))


def test_object_codes_are_trained_parameters():
    model, optim = build(**coded_cfg())
    model.set_phase('generator')
    before = model.generator.noise_head.noise_code_embedding.weight.clone()
    texture = model.generator.noise_head.noise_texture.clone()
    model.train_step(batch(), optim)
    assert not torch.equal(
        before, model.generator.noise_head.noise_code_embedding.weight)
    assert not torch.equal(texture, model.generator.noise_head.noise_texture)


@pytest.mark.parametrize('phase', ['surrogate', 'generator'])
@pytest.mark.parametrize('coded', [False, True])
def test_mmseg_segmentor_works_as_surrogate_in_both_phases(phase, coded):
    """A CNN built from an MMSeg config trains (surrogate phase) and passes
    gradients to the generator (generator phase)."""
    if coded:
        cfg = coded_cfg(dc_free=True)
        cfg['augmentation'] = dict(type='CraftingAugmentation')
    else:
        cfg = dict(
            surrogate=micro_cnn_surrogate(num_classes=1),
            generator_prompt=dict(prompt_types=('mask', )),
            surrogate_prompt=dict(prompt_types=('mask', )))
    model, optim = build(**cfg)
    model.set_phase(phase)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    losses = model.train_step(batch(), optim)
    assert all(torch.isfinite(v) for v in losses.values())
    assert all(key.startswith(phase) for key in losses)
    changed = {
        n
        for n, p in model.named_parameters()
        if not torch.equal(before[n], p.detach())
    }
    trained = 'surrogate.segmentor.' if phase == 'surrogate' else (
        'generator.noise_head.')
    assert changed and all(n.startswith(trained) for n in changed)
    outputs = model.val_step(batch())
    assert {'iou_clean', 'iou_noised'} <= set(outputs[0])


def test_codes_need_a_class_loss():
    cfg = coded_cfg()
    cfg['loss'] = dict(type='PointSampledMaskLoss', num_points=64)
    with pytest.raises(ValueError, match='class loss'):
        MODELS.build(micro_unseg_cfg(**cfg))


def test_code_targets():
    model, _ = build(**coded_cfg())
    masks = torch.zeros(2, 1, 4, 4)
    masks[:, :, :2] = 1
    codes = torch.tensor([3, 1])
    truth = model.target(masks, codes, truth=True)
    assert truth[0].unique().tolist() == [0, 3]
    assert truth[1, 0, 0].tolist() == [1] * 4 and truth[1, 0, 3].sum() == 0
    model.label_modification = True
    everywhere = model.target(masks, codes, truth=False)
    assert (everywhere[0] == 3).all() and (everywhere[1] == 1).all()
    # The surrogate's own target stays the truth under label modification.
    assert torch.equal(model.target(masks, codes, truth=True), truth)


def code_book(**head_args):
    """A micro code book generator initialised with gratings."""
    return MODELS.build(
        dict(
            type='SAMNoiseGenerator',
            arch=MICRO_ARCH,
            img_size=128,
            image_features=False,
            texture_init='gratings',
            **head_args))


def test_code_book_paints_one_texture_per_code_in_every_image():
    torch.manual_seed(0)
    generator = code_book(num_codes=8, texture_period=8)
    images = torch.rand(2, 3, 128, 128)
    with torch.no_grad():
        first = generator(images, codes=torch.tensor([3, 3]))
        codes = generator(
            images[:1].expand(9, -1, -1, -1), codes=torch.arange(9))
    # The same code gives the same texture whatever the image.
    assert torch.equal(first[0], first[1])
    flat = codes.flatten(1) - codes.flatten(1).mean(1, keepdim=True)
    corr = (flat @ flat.T) / (
        flat.norm(dim=1)[:, None] * flat.norm(dim=1)[None])
    assert (corr - torch.eye(9)).abs().max() < 0.5
    # Gratings survive grey conversion: the luma of each code is a texture
    # (weaker for the chromatic sign vectors, whose luma is 17%).
    luma = (codes *
            torch.tensor([0.299, 0.587, 0.114])[None, :, None, None]).sum(1)
    assert (luma.flatten(1).std(1) > 0.1).all()
    assert not any(
        name.startswith(('noise_mlp', 'noise_token', 'noise_embedding'))
        for name, _ in generator.noise_head.named_parameters())
    with pytest.raises(ValueError, match='code book'):
        MODELS.build(
            dict(
                type='SAMNoiseGenerator',
                arch=MICRO_ARCH,
                img_size=128,
                image_features=False))


def test_grating_periods_set_every_code_to_one_period():
    generator = code_book(
        num_codes=16, texture_period=16, grating_periods=(4, ))
    with torch.no_grad():
        noise = generator.noise_head.code_book(torch.arange(17), 32)
    # Each code's pattern repeats every 4 noise pixels along x and y, and
    # no sample sits at a zero of its sine (full energy at the budget).
    assert torch.allclose(noise, noise.roll(4, dims=-1), atol=1e-5)
    assert torch.allclose(noise, noise.roll(4, dims=-2), atol=1e-5)
    assert noise.abs().min() > 0.9
    # Sixteen codes: four orientations times four colour sign vectors, all
    # distinct; code 16 comes back to code 0's grating and colour.
    flat = noise.flatten(1)
    corr = (flat @ flat.T) / (
        flat.norm(dim=1)[:, None] * flat.norm(dim=1)[None])
    assert (corr[:16, :16] - torch.eye(16)).abs().max() < 0.5
    assert torch.equal(noise[16], noise[0])
    for periods in ((2, ), (5, ), ()):
        with pytest.raises(ValueError, match='grating_periods'):
            code_book(num_codes=16, texture_period=16, grating_periods=periods)


def p4_codes(colours=None):
    """The 16 codes of a p4 code book with ``colours``, (16, 3, 16, 16)."""
    generator = code_book(
        num_codes=15,
        texture_period=16,
        grating_periods=(4, ),
        grating_colours=colours)
    with torch.no_grad():
        return generator.noise_head.code_book(torch.arange(16), 16)


def test_grating_colours_order_the_codes_by_the_luma_they_keep():
    luma = torch.tensor([0.299, 0.587, 0.114])

    def grey_energy(noise):
        grey = torch.einsum('c,nchw->nhw', luma, noise)
        return grey.pow(2).mean((1, 2)) / noise.pow(2).mean((1, 2, 3))

    default = grey_energy(p4_codes())
    by_luma = grey_energy(p4_codes(LUMA_GRATING_COLOURS))
    # Four codes per colour; a grey conversion keeps about 1.0, 0.77, 0.40
    # and 0.17 of the amplitude of the colours in luma order.
    kept = by_luma.view(4, 4).mean(1).sqrt()
    assert kept == pytest.approx([1.0, 0.772, 0.402, 0.174], abs=0.03)
    assert torch.equal(by_luma[:4], default[:4])
    assert by_luma[4:8].mean() > 10 * default[4:8].mean()
    config = Config.fromfile('configs/unseg/unseg-codebook_gratings-p4-luma_'
                             'unet-c16_coco128-objects.py')
    assert [tuple(c) for c in config.model.generator.grating_colours
            ] == list(LUMA_GRATING_COLOURS)
    for colours in ((), ((1, 1), ), ((1, 0, 1), )):
        with pytest.raises(ValueError, match='grating_colours'):
            code_book(num_codes=15, texture_period=16, grating_colours=colours)


def test_chroma_grating_colours_give_every_one_of_twelve_codes_a_colour():

    def chroma_share(noise):
        chroma = noise - noise.mean(1, keepdim=True)
        return chroma.pow(2).mean((1, 2, 3)) / noise.pow(2).mean((1, 2, 3))

    default = chroma_share(p4_codes())
    chromatic = chroma_share(p4_codes(CHROMA_GRATING_COLOURS))
    # The default's codes 0-3 are grey (no chroma); here codes 0-11 carry
    # at least two thirds of their energy in chroma, codes 12-15 none.
    assert default[:4].max() < 1e-6
    assert chromatic[:12].min() > 0.6
    assert chromatic[12:].max() < 1e-6
    config = Config.fromfile('configs/unseg/unseg-codebook_gratings-p4-'
                             'chroma_unet-c16_coco128-objects.py')
    assert [tuple(c) for c in config.model.generator.grating_colours
            ] == list(CHROMA_GRATING_COLOURS)
