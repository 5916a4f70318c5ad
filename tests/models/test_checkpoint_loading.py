import pytest
import torch
from segment_anything.modeling import MaskDecoder, Sam

from mmunseg.models import SAMNoiseGenerator, SAMSurrogate
from mmunseg.utils import load_checkpoint_file
from tests.utils import MICRO_ARCH


def official_sam_file(tmp_path, generator):
    """A randomly initialised SAM saved exactly as the official files are:
    a bare state dict of a ``segment_anything`` ``Sam`` module."""
    sam = Sam(
        image_encoder=type(generator.image_encoder)(
            depth=2,
            embed_dim=32,
            img_size=128,
            num_heads=2,
            use_rel_pos=True,
            global_attn_indexes=(1, ),
            window_size=2,
            out_chans=32,
            norm_layer=generator.image_encoder.blocks[0].norm1.__class__),
        prompt_encoder=type(generator.prompt_encoder)(
            embed_dim=32,
            image_embedding_size=(8, 8),
            input_image_size=(128, 128),
            mask_in_chans=16),
        mask_decoder=MaskDecoder(
            transformer_dim=32,
            transformer=type(generator.mask_decoder.transformer)(
                depth=2, embedding_dim=32, mlp_dim=64, num_heads=2),
            num_multimask_outputs=3),
        pixel_mean=[123.675, 116.28, 103.53],
        pixel_std=[58.395, 57.12, 57.375])
    path = tmp_path / 'sam_micro_official.pth'
    torch.save(sam.state_dict(), path)
    return path, sam


def test_official_sam_layout_loads_through_init_weights(tmp_path):
    generator = SAMNoiseGenerator(arch=MICRO_ARCH, img_size=128)
    path, sam = official_sam_file(tmp_path, generator)
    head_before = generator.noise_head.noise_token.weight.clone()
    generator.sam_checkpoint = str(path)
    generator.init_weights()
    for name, value in sam.state_dict().items():
        sam_part = name.split('.')[0] in ('image_encoder', 'prompt_encoder',
                                          'mask_decoder')
        if sam_part:
            assert torch.equal(generator.state_dict()[name], value), name
    # The head keeps its own initialisation.
    assert generator.noise_head.noise_token.weight.shape == head_before.shape


def test_generator_checkpoint_round_trip_and_training_layout(tmp_path):
    torch.manual_seed(0)
    trained = SAMNoiseGenerator(arch=MICRO_ARCH, img_size=128)
    fresh = SAMNoiseGenerator(arch=MICRO_ARCH, img_size=128)
    path = tmp_path / 'run.pth'
    # An MMEngine training checkpoint: the generator under 'generator.'.
    torch.save(
        dict(
            meta=dict(epoch=3),
            state_dict={
                f'generator.{k}': v
                for k, v in trained.state_dict().items()
            }), path)
    parts = fresh.load_weights(str(path))
    assert parts == {
        'image_encoder', 'prompt_encoder', 'mask_decoder', 'noise_head'
    }
    images = torch.rand(1, 3, 128, 128)
    box = torch.tensor([[5., 5., 70., 70.]])
    assert torch.equal(trained(images, boxes=box), fresh(images, boxes=box))


def test_released_unseg_layout_maps_head_from_mask_decoder(tmp_path):
    source = SAMNoiseGenerator(arch=MICRO_ARCH, img_size=128)
    state = {
        k.replace('noise_head.', 'mask_decoder.', 1): v
        for k, v in source.state_dict().items()
    }
    path = tmp_path / 'Generator_unseg_final.pth'
    torch.save(state, path)
    target = SAMNoiseGenerator(arch=MICRO_ARCH, img_size=128)
    target.load_weights(str(path))
    assert torch.equal(target.noise_head.noise_token.weight,
                       source.noise_head.noise_token.weight)


def test_bad_checkpoints_give_clear_errors(tmp_path):
    generator = SAMNoiseGenerator(arch=MICRO_ARCH, img_size=128)
    with pytest.raises(FileNotFoundError, match='missing.pth'):
        generator.load_weights(str(tmp_path / 'missing.pth'))
    unknown = tmp_path / 'unknown.pth'
    torch.save({'backbone.conv.weight': torch.zeros(1)}, unknown)
    with pytest.raises(ValueError, match='unknown checkpoint layout'):
        generator.load_weights(str(unknown))
    wrong_size = tmp_path / 'vit_b_like.pth'
    state = generator.state_dict()
    state['image_encoder.pos_embed'] = torch.zeros(1, 64, 64, 32)
    torch.save(state, wrong_size)
    with pytest.raises(ValueError, match='mismatched shapes'):
        generator.load_weights(str(wrong_size))
    corrupt = tmp_path / 'corrupt.pth'
    corrupt.write_bytes(b'not a checkpoint')
    with pytest.raises(ValueError, match='corrupt.pth'):
        load_checkpoint_file(str(corrupt))


class Payload:
    """An arbitrary class: unpickling it could run code."""


def test_unsafe_pickle_is_refused(tmp_path):
    path = tmp_path / 'evil.pth'
    torch.save({'state_dict': {'x': torch.zeros(1)}, 'obj': Payload()}, path)
    with pytest.raises(ValueError, match='allow-list'):
        load_checkpoint_file(str(path))


def test_surrogate_encoder_init_reports_and_rejects_mismatch(tmp_path):
    surrogate = SAMSurrogate(arch=MICRO_ARCH, img_size=64)
    encoder_state = {
        k: torch.full_like(v, 0.5)
        for k, v in surrogate.image_encoder.state_dict().items()
        if k.startswith('blocks.0.')
    }
    path = tmp_path / 'mae.pth'
    torch.save({'model': encoder_state}, path)
    surrogate.encoder_checkpoint = str(path)
    surrogate.init_weights()
    assert torch.all(surrogate.image_encoder.blocks[0].norm1.weight == 0.5)
    bad = tmp_path / 'bad.pth'
    torch.save({'pos_embed': torch.zeros(1, 14, 14, 32)}, bad)
    with pytest.raises(ValueError, match='does not fit'):
        surrogate.load_encoder(str(bad))


def test_one_part_loader_checks_every_part_before_loading_any(tmp_path):
    from mmunseg.models.weights import load_parts, read_state_dict
    source = SAMNoiseGenerator(arch=MICRO_ARCH, img_size=128)
    target = SAMNoiseGenerator(arch=MICRO_ARCH, img_size=128)
    for param in source.parameters():
        param.data.add_(1)
    state = source.state_dict()
    state['noise_head.noise_token.weight'] = torch.zeros(1)
    path = tmp_path / 'half_bad.pth'
    torch.save(state, path)
    before = {k: v.clone() for k, v in target.state_dict().items()}
    parts = {
        'prompt_encoder.': target.prompt_encoder,
        'noise_head.': target.noise_head
    }
    with pytest.raises(ValueError, match='half_bad.pth.*mismatched shapes'):
        load_parts(parts, read_state_dict(str(path)), str(path))
    for key, value in target.state_dict().items():
        assert torch.equal(value, before[key]), key
    with pytest.raises(ValueError, match="starts with 'backbone.'"):
        load_parts({'backbone.': target.noise_head}, state, str(path))
    # allow_missing keeps absent tensors and reports them.
    partial = {'noise_token.weight': state['noise_head.noise_token.weight']}
    with pytest.raises(ValueError, match='missing keys'):
        load_parts({'': target.noise_head}, partial, 'p')
    good = {'noise_token.weight': source.noise_head.noise_token.weight}
    kept = load_parts({'': target.noise_head}, good, 'p', allow_missing=True)
    assert 'noise_token.weight' not in kept[''] and kept['']
    assert torch.equal(target.noise_head.noise_token.weight,
                       source.noise_head.noise_token.weight)


def test_noise_head_config_keeps_the_flat_form_and_parameter_names():
    torch.manual_seed(0)
    flat = SAMNoiseGenerator(arch=MICRO_ARCH, img_size=128, num_codes=2)
    torch.manual_seed(0)
    nested = SAMNoiseGenerator(
        arch=MICRO_ARCH,
        img_size=128,
        noise_head=dict(type='UnSegNoiseHead', num_codes=2))
    assert flat.num_codes == nested.num_codes == 2
    for (name, a), (other, b) in zip(flat.state_dict().items(),
                                     nested.state_dict().items()):
        assert name == other and torch.equal(a, b)
    with pytest.raises(ValueError, match='both flat and in noise_head'):
        SAMNoiseGenerator(
            arch=MICRO_ARCH,
            img_size=128,
            noise_head=dict(type='UnSegNoiseHead', num_codes=2),
            num_codes=2)
