import pytest
import torch

from mmunseg.models import SAMNoiseGenerator, UnSegNoiseHead
from mmunseg.models.sam import resolve_arch
from tests.utils import MICRO_ARCH


def micro_generator(**kwargs):
    return SAMNoiseGenerator(arch=MICRO_ARCH, img_size=128, **kwargs)


def test_noise_shape_and_range_for_every_prompt_combination():
    torch.manual_seed(0)
    generator = micro_generator()
    images = torch.rand(2, 3, 128, 128)
    boxes = torch.tensor([[10., 10., 60., 90.], [0., 0., 127., 127.]])
    points = (torch.randint(0, 128, (2, 4, 2)).float(), torch.ones(2, 4))
    masks = torch.zeros(2, 1, 32, 32)
    masks[:, :, 8:20, 8:20] = 255
    for prompts in [
            dict(boxes=boxes),
            dict(points=points),
            dict(masks=masks),
            dict(points=points, boxes=boxes, masks=masks),
            dict(),
    ]:
        noise = generator(images, **prompts)
        assert noise.shape == (2, 3, 32, 32)
        assert noise.abs().max() < 1


def test_prompt_steers_the_noise():
    torch.manual_seed(0)
    generator = micro_generator()
    images = torch.rand(1, 3, 128, 128)
    first = generator(images, boxes=torch.tensor([[0., 0., 30., 30.]]))
    second = generator(images, boxes=torch.tensor([[60., 60., 120., 120.]]))
    assert not torch.allclose(first, second)


def test_only_the_noise_head_is_trainable_and_encoder_builds_no_graph():
    generator = micro_generator()
    trainable = {n for n, p in generator.named_parameters() if p.requires_grad}
    assert trainable and all(n.startswith('noise_head.') for n in trainable)
    embedding, feature = generator.encode_image(torch.rand(1, 3, 128, 128))
    assert not embedding.requires_grad and not feature.requires_grad


def test_trainable_sam_parts_option():
    generator = micro_generator(trainable_sam_parts=('image_encoder', ))
    assert all(p.requires_grad for p in generator.image_encoder.parameters())
    assert not any(p.requires_grad
                   for p in generator.mask_decoder.parameters())
    embedding, _ = generator.encode_image(torch.rand(1, 3, 128, 128))
    assert embedding.requires_grad
    with pytest.raises(ValueError, match='not SAM parts'):
        micro_generator(trainable_sam_parts=('backbone', ))


def test_vit_b_sizes_match_the_paper():
    # Parameter counts of the official modules (spec section 7.1).
    head = UnSegNoiseHead(vit_dim=768, transformer_dim=256)
    assert sum(p.numel() for p in head.parameters()) == 7_252_544
    assert resolve_arch('vit_b')['global_attn_indexes'] == (2, 5, 8, 11)


def test_token_slice_official_reads_last_mask_token():
    head = UnSegNoiseHead(vit_dim=8, transformer_dim=32, num_sam_tokens=5)
    tokens = torch.arange(10.).view(1, 10, 1).expand(1, 10, 32)
    assert head.select_token_outputs(tokens)[0, :, 0].tolist() == [4, 5, 6]
    head.token_slice = 'fixed'
    assert head.select_token_outputs(tokens)[0, :, 0].tolist() == [5, 6, 7]
    with pytest.raises(ValueError, match='token_slice'):
        UnSegNoiseHead(token_slice='other')


def test_input_size_is_checked():
    with pytest.raises(ValueError, match='128x128'):
        micro_generator()(torch.rand(1, 3, 64, 64))


def test_generate_noise_joins_object_and_background_codes():
    """The one path from image to noise: codes on the object, code 0 on
    the background of whole-image prompts, as separate calls would give."""
    from mmunseg.models.generators import NoiseGenerator
    from mmunseg.models.generators.generate import generate_noise
    torch.manual_seed(0)
    generator = micro_generator(num_codes=3, texture_period=4).eval()
    assert isinstance(generator, NoiseGenerator)
    images = torch.rand(3, 3, 128, 128)
    masks = torch.zeros(3, 1, 32, 32)
    masks[:, :, 4:20, 6:26] = 255
    codes = torch.tensor([1, 2, 3])
    whole = torch.tensor([True, False, True])
    with torch.no_grad():
        joined = generate_noise(generator, images, dict(masks=masks), codes,
                                masks / 255, whole)
        objects = generator(images, masks=masks, codes=codes)
        background = generator(
            images[whole], masks=masks[whole], codes=torch.zeros(2).long())
    inside = masks[0, 0] > 0
    assert torch.allclose(joined[1], objects[1], atol=1e-6)
    for row, index in ((0, 0), (2, 1)):
        assert torch.allclose(
            joined[row][:, inside], objects[row][:, inside], atol=1e-6)
        assert torch.allclose(
            joined[row][:, ~inside], background[index][:, ~inside], atol=1e-6)
    # Without codes, or without masks to join along: one plain call.
    assert torch.equal(
        generate_noise(generator, images, dict(masks=masks), codes),
        generator(images, masks=masks, codes=codes))
    plain = micro_generator().eval()
    assert torch.equal(
        generate_noise(plain, images, dict(masks=masks)),
        plain(images, masks=masks))
