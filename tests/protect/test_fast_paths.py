"""The generator's fast paths (autocast, channels_last, torch.compile) give
the plain fp32 path's noise within stated tolerances, and keep the bound.

Tolerances are on unit-range noise (the budget multiplies it; at 8/255 one
unit is 8 grey levels). bf16 keeps 8 mantissa bits (relative error 2**-8
per rounding) and a SAM-shaped network rounds a few dozen times on the way,
so 0.05 unit (0.4 grey level at 8/255: a saved pixel moves by at most one
level, where rounding flips); measured 0.023 on the micro generator. fp16
keeps 10 bits: 0.01 (measured 0.003). channels_last only reorders fp32
sums: 1e-5 (measured 2e-6).
"""
import glob
import os
import os.path as osp

import numpy as np
import pytest
import torch

from mmunseg.models.budget import Budget
from mmunseg.protect import (ProtectItem, Protector, UnSegGenerator,
                             load_manifest, read_image)
from mmunseg.protect.methods import autocast_dtype
from mmunseg.protect.objects import union
from mmunseg.protect.protector import prompts_for
from tests.utils import data_path, save_micro_generator

BUDGET = Budget(8 / 255, 2 / 255)
TOLERANCES = {
    (('precision', 'bf16'), ): 0.05,
    (('precision', 'fp16'), ): 0.01,
    (('channels_last', True), ): 1e-5,
    (('channels_last', True), ('precision', 'bf16')): 0.05,
}


@pytest.fixture(scope='module')
def checkpoint(tmp_path_factory):
    return save_micro_generator(
        tmp_path_factory.mktemp('ckpt') / 'generator.pth')


@pytest.fixture(scope='module')
def camvid_items():
    """Three real CamVid images with their annotations (read only)."""
    root = data_path('camvid')
    paths = sorted(glob.glob(osp.join(root, 'img_dir', 'train', '*.jpg')))[:3]
    return [
        ProtectItem(
            img_path=path,
            root=root,
            seg_map_path=path.replace('img_dir', 'ann_dir')[:-4] + '.png')
        for path in paths
    ]


@pytest.fixture(scope='module')
def batch(camvid_items):
    """Images and their union mask prompts, as the protector builds them."""
    images, prompts = [], []
    for item in camvid_items:
        objects = item.objects()
        image = read_image(item.img_path)
        mask = union(objects.values(), image.shape[:2])
        images.append(image)
        prompts.append(
            prompts_for('union', objects, mask, item.img_path)[0][1])
    return images, prompts


@pytest.fixture(scope='module')
def reference(checkpoint, batch):
    """The plain fp32 path's noise."""
    return UnSegGenerator(checkpoint).generate(*batch)


def max_difference(method, reference, batch):
    images, prompts = batch
    fast = method.generate(images, prompts)
    assert all(noise.dtype == np.float32 for noise in fast)
    return max(float(np.abs(a - b).max()) for a, b in zip(fast, reference))


@pytest.mark.parametrize(
    'options',
    list(TOLERANCES),
    ids=lambda o: '-'.join(f'{k}={v}' for k, v in o))
def test_fast_path_matches_fp32(checkpoint, batch, reference, options):
    method = UnSegGenerator(checkpoint, **dict(options))
    assert max_difference(method, reference, batch) <= TOLERANCES[options]


@pytest.mark.skipif(
    not os.environ.get('MMUNSEG_TEST_COMPILE'),
    reason='torch.compile of even the micro generator takes about 100 s on '
    '2 CPU cores (inductor C++ code generation); set MMUNSEG_TEST_COMPILE=1 '
    'to run it')
def test_compiled_generator_matches_eager(checkpoint, batch, reference):
    method = UnSegGenerator(checkpoint, compile=True)
    assert max_difference(method, reference, batch) <= 1e-5


def test_protector_with_bf16_keeps_the_bound(checkpoint, camvid_items,
                                             tmp_path):
    """Saved images satisfy the per-region bound and differ from the fp32
    path's by at most one grey level (rounding flips)."""
    outputs = {}
    for precision in ('fp32', 'bf16'):
        out_dir = tmp_path / precision
        method = UnSegGenerator(
            checkpoint, precision=precision, channels_last=True)
        protector = Protector(method, str(out_dir), BUDGET)
        manifest = str(out_dir / 'manifest.jsonl')
        protector.run(camvid_items, manifest, show_progress=False)
        records = load_manifest(manifest)
        assert len(records) == len(camvid_items)
        for record in records.values():
            assert record['status'] == 'protected'
            assert record['linf_object'] <= 8
            assert record['linf_background'] <= 2
        outputs[precision] = [
            read_image(protector.output_file(item)) for item in camvid_items
        ]
    for item, fp32, bf16 in zip(camvid_items, outputs['fp32'],
                                outputs['bf16']):
        source = read_image(item.img_path).astype(int)
        mask = union(item.objects().values(), source.shape[:2])
        delta = bf16.astype(int) - source
        assert np.abs(delta[mask]).max() <= 8
        assert np.abs(delta[~mask]).max() <= 2
        assert np.abs(bf16.astype(int) - fp32.astype(int)).max() <= 1


@pytest.mark.parametrize('options, message', [
    (dict(precision='fp64'), 'precision must be one of'),
    (dict(channels_last='yes'), 'channels_last must be True or False'),
    (dict(compile=1), 'compile must be True or False'),
    (dict(device='cuda'), 'CUDA is not available'),
])
def test_invalid_options_are_clear_errors(checkpoint, options, message):
    if options.get('device') == 'cuda' and torch.cuda.is_available():
        pytest.skip('CUDA is available here')
    with pytest.raises(ValueError, match=message):
        UnSegGenerator(checkpoint, **options)


def test_bf16_on_a_gpu_without_it_is_an_error(monkeypatch):
    monkeypatch.setattr(torch.cuda, 'is_bf16_supported', lambda: False)
    monkeypatch.setattr(torch.cuda, 'get_device_name', lambda _: 'old GPU')
    with pytest.raises(ValueError, match='bf16 is not supported by cuda'):
        autocast_dtype(torch.device('cuda'), 'bf16')


def test_cpu_defaults_stay_fp32(checkpoint):
    method = UnSegGenerator(checkpoint)
    assert method.autocast_dtype is None
    assert method.network is method.generator
    weight = method.generator.noise_head.noise_compress_vit_feat[0].weight
    assert weight.dtype == torch.float32
    assert weight.is_contiguous()
