"""Collapse is visible while training: noise statistics, panels, cast check."""
import json
import os.path as osp
import subprocess
import sys

import pytest
import torch

from mmunseg.engine import NoiseCastError, noise_statistics
from mmunseg.engine.noise_diagnostics import NoiseDiagnosticsHook
from tests.utils import MICRO_ARCH, REPO_ROOT, data_path


def test_statistics_of_a_cast_and_of_a_texture():
    mask = torch.zeros(2, 1, 32, 32)
    mask[..., 8:24, 8:24] = 1
    eps = 8 / 255
    cast = torch.tensor([1., -1., 1.]).view(1, 3, 1, 1).expand(2, 3, 32, 32)
    stats = noise_statistics(cast, cast * eps, mask)
    assert stats['cast_fraction'] == 1
    assert stats['object_mean_R'] == pytest.approx(8)
    assert stats['object_mean_G'] == pytest.approx(-8)
    assert stats['object_std_B'] == pytest.approx(0, abs=1e-6)
    assert stats['saturated'] == 1
    stripes = torch.ones(2, 3, 32, 32)
    stripes[..., ::2] = -1
    stats = noise_statistics(stripes, stripes * eps, mask)
    assert stats['cast_fraction'] == 0
    assert abs(stats['object_mean_R']) < 1e-6
    assert stats['object_std_R'] == pytest.approx(8)
    # The background carries the same unit noise at 2/255 here.
    stats = noise_statistics(stripes, stripes * (2 / 255 + mask * 6 / 255),
                             mask)
    assert stats['energy_ratio'] == pytest.approx(16)


def test_cast_check_warns_or_stops():
    cast = dict(
        cast_fraction=1.,
        object_mean_R=8.,
        object_std_R=0.,
        object_mean_G=-8.,
        object_std_G=0.,
        object_mean_B=8.,
        object_std_B=0.)
    NoiseDiagnosticsHook(cast_check=None).check_cast(cast)
    NoiseDiagnosticsHook(cast_check='warn').check_cast(cast)
    with pytest.raises(NoiseCastError, match='colour cast'):
        NoiseDiagnosticsHook(cast_check='stop').check_cast(cast)
    NoiseDiagnosticsHook(cast_check='stop').check_cast(
        dict(cast, cast_fraction=0.1))
    with pytest.raises(ValueError, match='cast_check'):
        NoiseDiagnosticsHook(cast_check='loud')


def test_short_real_training_of_the_recipe_shows_a_texture(tmp_path):
    """The protecting recipe (codes, DC-free, augmentation, CNN surrogate),
    shrunk to the micro model, on real coco128_objects images: every
    validation logs the noise statistics and writes a panel, and the noise
    is no cast (spatial std above |mean| on every channel)."""
    data_root = data_path('coco128_objects')
    base = osp.join(REPO_ROOT, 'configs', 'unseg',
                    'unseg-codes_sam-tiny_unet-c16_coco128-objects.py')
    arch = dict(MICRO_ARCH, _delete_=True)
    cfg = tmp_path / 'micro_codes.py'
    cfg.write_text(f"""
_base_ = [{base!r}]
model = dict(generator=dict(arch={arch!r}, img_size=128),
             surrogate=dict(img_size=64))
train_pipeline = [
    dict(type='LoadImageAndMask'),
    dict(type='RandomHorizontalFlip', prob=0.5),
    dict(type='LargeScaleJitter', output_size=128, scale_range=(0.5, 1.5)),
    dict(type='PackUnSegInputs'),
]
val_pipeline = [
    dict(type='LoadImageAndMask'),
    dict(type='ResizePad', output_size=128),
    dict(type='PackUnSegInputs'),
]
train_dataloader = dict(
    batch_size=2, num_workers=0, persistent_workers=False,
    dataset=dict(data_root={data_root!r}, indices=8,
                 pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=2, num_workers=0, persistent_workers=False,
    dataset=dict(data_root={data_root!r}, indices=4,
                 pipeline=val_pipeline))
test_dataloader = val_dataloader
train_cfg = dict(max_iters=12, surrogate_iters=3, generator_iters=3,
                 val_interval=6)
custom_hooks = [
    dict(type='SafeResumeHook'),
    dict(type='NoiseDiagnosticsHook', num_images=4, cast_check='stop')
]
""")
    work_dir = tmp_path / 'work'
    result = subprocess.run([
        sys.executable,
        osp.join(REPO_ROOT, 'tools', 'train.py'),
        str(cfg), '--work-dir',
        str(work_dir)
    ],
                            cwd=REPO_ROOT,
                            capture_output=True,
                            text=True,
                            timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    assert sorted(p.name for p in (work_dir / 'noise_panels').iterdir()) == [
        'iter_12.png', 'iter_6.png'
    ]
    scalars = [
        json.loads(line)
        for line in next(work_dir.rglob('vis_data/scalars.json')).open()
    ]
    validations = [s for s in scalars if 'noise_saturated' in s]
    assert len(validations) == 2
    for stats in validations:
        for region in ('object', 'background'):
            for channel in 'RGB':
                mean = stats[f'noise_{region}_mean_{channel}']
                std = stats[f'noise_{region}_std_{channel}']
                assert std > 0.05 and std >= 2 * abs(mean)
        assert stats['noise_cast_fraction'] == 0
        assert stats['noise_energy_ratio'] > 1
