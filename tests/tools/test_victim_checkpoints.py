"""Victim checkpoints load safely, resume, and can be evaluated on any split
with tools/test.py; a checkpoint cannot make the runner execute code
(issue 11, items 1 and 9)."""
import glob
import os
import os.path as osp
import subprocess
import sys

import pytest
import torch
from mmengine.config import Config

from mmunseg.engine.hooks import SafeResumeHook, ensure_safe_resume
from mmunseg.evaluation.split_test import use_split_for_test
from mmunseg.utils import load_checkpoint_file
from tests.utils import REPO_ROOT, data_path

VICTIM = osp.join(REPO_ROOT, 'configs', 'eval',
                  'fcn-unet-s5-d16-c16_4xb8-500it_camvid-240x176.py')
# Two iterations of two images, two validation images: seconds on a CPU.
SMALL = [
    'train_cfg.max_iters=2', 'train_cfg.val_interval=2',
    'param_scheduler.0.end=2', 'default_hooks.checkpoint.interval=1',
    'train_dataloader.batch_size=2', 'train_dataloader.num_workers=0',
    'train_dataloader.persistent_workers=False',
    'val_dataloader.num_workers=0', 'val_dataloader.persistent_workers=False',
    'val_dataloader.dataset.indices=2'
]
CONFIGS = sorted(
    glob.glob(osp.join(REPO_ROOT, 'configs', '**', '*.py'), recursive=True) +
    glob.glob(osp.join(REPO_ROOT, 'projects', '*', 'configs', '*.py')))


def tool(name, *args):
    result = subprocess.run(
        [sys.executable, osp.join(REPO_ROOT, 'tools', name)] +
        [str(a) for a in args],
        env=dict(os.environ, PYTHONPATH=REPO_ROOT),
        capture_output=True,
        text=True,
        timeout=900)
    assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]
    return result.stdout + result.stderr


def trains(path):
    cfg = Config.fromfile(path)
    return all(
        key in cfg for key in ('model', 'train_cfg', 'train_dataloader'))


@pytest.mark.parametrize(
    'path', [p for p in CONFIGS if trains(p)],
    ids=lambda p: osp.relpath(p, REPO_ROOT))
def test_every_shipped_training_config_saves_safe_checkpoints(path):
    hooks = Config.fromfile(path).get('custom_hooks', [])
    assert any(
        hook['type'] in ('SafeResumeHook', 'mmunseg.SafeResumeHook')
        for hook in hooks), f'{path} saves checkpoints that getattr-pickle'


def test_victim_checkpoints_load_safely_resume_and_test_on_any_split(tmp_path):
    data_path('camvid')
    work = tmp_path / 'victim'
    tool('train.py', VICTIM, '--work-dir', work, '--cfg-options', *SMALL)
    first, last = work / 'iter_1.pth', work / 'iter_2.pth'
    for path in (first, last):
        checkpoint = load_checkpoint_file(str(path))  # weights_only=True
        assert 'message_hub' in checkpoint and 'state_dict' in checkpoint
    # A checkpoint whose meta.config MMEngine's resume would execute.
    marker = tmp_path / 'ran'
    crafted = tmp_path / 'crafted.pth'
    checkpoint = load_checkpoint_file(str(first))
    checkpoint['meta']['config'] = f'open({str(marker)!r}, "w").close()\n'
    torch.save(checkpoint, crafted)
    resumed = tmp_path / 'resumed'
    log = tool('train.py', VICTIM, '--work-dir', resumed, '--resume', crafted,
               '--cfg-options', *SMALL)
    assert 'resumed epoch: 0, iter: 1' in log
    assert 'ignored meta.config' in log
    assert not marker.exists()
    assert osp.isfile(resumed / 'iter_2.pth')
    # One command evaluates the victim on each split.
    for split, images in (('train', 3), ('val', 2)):
        log = tool('test.py', VICTIM, last, '--split', split, '--work-dir',
                   tmp_path / f'test_{split}', '--cfg-options',
                   f'train_dataloader.dataset.indices={images}',
                   'val_dataloader.dataset.indices=2',
                   'test_dataloader.dataset.indices=2',
                   'val_dataloader.num_workers=0',
                   'val_dataloader.persistent_workers=False')
        assert f'[{images}/{images}]' in log and 'mIoU' in log


class Payload:
    """An arbitrary class: unpickling it could run code."""


def test_test_tool_refuses_an_unsafe_checkpoint(tmp_path):
    path = tmp_path / 'unsafe.pth'
    torch.save({'state_dict': {}, 'code': Payload()}, path)
    result = subprocess.run([
        sys.executable,
        osp.join(REPO_ROOT, 'tools', 'test.py'), VICTIM,
        str(path)
    ],
                            env=dict(os.environ, PYTHONPATH=REPO_ROOT),
                            capture_output=True,
                            text=True,
                            timeout=300)
    assert result.returncode == 1
    assert 'unsafe.pth' in result.stderr and 'allow-list' in result.stderr


def test_splits_for_testing():
    cfg = Config.fromfile(VICTIM)
    use_split_for_test(cfg, 'train')
    dataset = cfg.test_dataloader.dataset
    assert dataset.data_prefix.img_path == 'img_dir/train'
    assert dataset.pipeline == cfg.val_dataloader.dataset.pipeline
    assert dataset.test_mode
    cfg = Config.fromfile(VICTIM)
    use_split_for_test(cfg, 'val')
    assert cfg.test_dataloader == cfg.val_dataloader
    with pytest.raises(ValueError, match='split must be one of'):
        use_split_for_test(cfg, 'holdout')
    nwpu = Config.fromfile(
        osp.join(REPO_ROOT, 'configs', 'eval',
                 'mask-rcnn_r18-fpn_1xb4-500it_nwpu-320.py'))
    use_split_for_test(nwpu, 'train')
    # COCO scoring reads the training annotations.
    assert nwpu.test_evaluator.ann_file.endswith(
        nwpu.train_dataloader.dataset.ann_file)


def test_any_config_gets_the_safe_resume_hook_once():
    cfg = Config(dict(custom_hooks=[dict(type='EMAHook')]))
    ensure_safe_resume(cfg)
    ensure_safe_resume(cfg)
    assert [h['type'] for h in cfg.custom_hooks
            ] == ['EMAHook', 'mmunseg.SafeResumeHook']
    cfg = Config(dict())
    ensure_safe_resume(cfg)
    assert cfg.custom_hooks == [dict(type='mmunseg.SafeResumeHook')]
    cfg = Config(dict(custom_hooks=[SafeResumeHook()]))
    ensure_safe_resume(cfg)
    assert len(cfg.custom_hooks) == 1
