"""Helpers shared by the tests."""
import os
import os.path as osp
import subprocess
import sys

import pytest

REPO_ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
DATA_ROOT = os.environ.get('MMUNSEG_DATA',
                           osp.join(REPO_ROOT, '..', 'shared', 'data'))

# A SAM-shaped network of a few thousand parameters: same topology as ViT-B
# (windowed + global blocks, neck, two-way decoder), 128 px input.
MICRO_ARCH = dict(
    base='tiny',
    embed_dim=32,
    depth=2,
    num_heads=2,
    global_attn_indexes=(1, ),
    window_size=2,
    prompt_embed_dim=32,
    decoder_mlp_dim=64,
    decoder_num_heads=2)


def micro_unseg_cfg(**overrides):
    """Config of an UnSeg model small enough for unit tests."""
    cfg = dict(
        type='UnSeg',
        generator=dict(
            type='SAMNoiseGenerator', arch=MICRO_ARCH, img_size=128),
        surrogate=dict(type='SAMSurrogate', arch=MICRO_ARCH, img_size=64),
        loss=dict(type='PointSampledMaskLoss', num_points=256))
    cfg.update(overrides)
    return cfg


def run_benchmark(script, *args, timeout=600):
    """Run ``benchmarks/<script>`` with one thread; assert it exits 0.

    Returns:
        subprocess.CompletedProcess: With ``stdout`` and ``stderr`` text.
    """
    result = subprocess.run([
        sys.executable,
        osp.join(REPO_ROOT, 'benchmarks', script), *map(str, args)
    ],
                            env=dict(os.environ, OMP_NUM_THREADS='1'),
                            capture_output=True,
                            text=True,
                            timeout=timeout)
    assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]
    return result


def data_path(*parts):
    """Path into the shared real data; skips the test when it is absent."""
    path = osp.join(DATA_ROOT, *parts)
    if not osp.exists(path):
        pytest.skip(f'shared data not found at {path} (set MMUNSEG_DATA)')
    return path


def write_micro_train_config(path, max_epochs=2, num_images=8):
    """Write a training config: the tiny CPU recipe on the real
    coco128_objects data, shrunk to the micro model and a few images."""
    base = osp.join(REPO_ROOT, 'configs', 'unseg',
                    'unseg_sam_tiny_coco128-objects.py')
    data_root = data_path('coco128_objects')
    arch = dict(MICRO_ARCH, _delete_=True)
    text = f"""
_base_ = [{base!r}]
model = dict(
    generator=dict(arch={arch!r}, img_size=128),
    surrogate=dict(arch={arch!r}, img_size=64),
    loss=dict(num_points=256))
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
    dataset=dict(data_root={data_root!r}, indices={num_images},
                 pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=2, num_workers=0, persistent_workers=False,
    dataset=dict(data_root={data_root!r}, indices=4,
                 pipeline=val_pipeline))
test_dataloader = val_dataloader
train_cfg = dict(max_epochs={max_epochs}, val_interval=1)
param_scheduler = dict(
    generator=[dict(type='MultiStepLR', by_epoch=True, milestones=[20])],
    surrogate=[dict(type='MultiStepLR', by_epoch=True, milestones=[20])])
default_hooks = dict(logger=dict(interval=1),
                     checkpoint=dict(interval=1, max_keep_ckpts=5))
"""
    with open(path, 'w') as f:
        f.write(text)
    return str(path)


def save_micro_generator(path, seed=0, **options):
    """A randomly initialised micro generator saved as an exported file;
    ``options`` are further generator arguments (``num_codes``, ...)."""
    import torch

    from mmunseg.models import SAMNoiseGenerator
    torch.manual_seed(seed)
    cfg = dict(arch=MICRO_ARCH, img_size=128, **options)
    generator = SAMNoiseGenerator(**cfg)
    torch.save(
        dict(
            meta=dict(generator_cfg=dict(type='SAMNoiseGenerator', **cfg)),
            state_dict=generator.state_dict()), path)
    return str(path)
