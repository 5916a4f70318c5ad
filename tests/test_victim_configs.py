"""Victim configs: the CPU ones train two iterations on the real data, the
paper-size ones build their models and point at $MMUNSEG_DATA."""
import os.path as osp

import pytest
from mmengine.config import Config
from mmengine.registry import DefaultScope
from mmengine.runner import Runner

from tests.utils import REPO_ROOT, data_path

CPU_VICTIMS = {
    'fcn-unet-s5-d16-c16_4xb8-500it_camvid-240x176.py': 'camvid',
    'fcn-unet-s5-d16-c16-mfb_1xb8-1200it_camvid-240x176.py': 'camvid',
    'fcn-unet-s5-d16-c16-mfb-pmd_1xb8-1200it_camvid-240x176.py': 'camvid',
    'deeplabv3plus_r18-d8_4xb8-500it_camvid-240x176.py': 'camvid',
    'pspnet_r18-d8_4xb8-500it_camvid-240x176.py': 'camvid',
    'segformer_mit-b0_4xb8-500it_camvid-240x176.py': 'camvid',
    'fcn-unet-s5-d16-c16_4xb8-500it_kvasir-224x224.py': 'kvasir_seg',
}
PAPER_VICTIMS = {
    'deeplabv3_r50-d8_4xb4-20k_voc12aug-512x512.py': 21,
    'deeplabv3plus_r50-d8_4xb2-80k_cityscapes-512x1024.py': 19,
    'pspnet_r50-d8_4xb4-80k_ade20k-512x512.py': 150,
    'segformer_mit-b0_8xb2-160k_ade20k-512x512.py': 150,
}


def config(name):
    return Config.fromfile(osp.join(REPO_ROOT, 'configs', 'eval', name))


@pytest.mark.parametrize('name', sorted(CPU_VICTIMS))
def test_cpu_victim_trains_two_iterations_on_real_data(name, tmp_path):
    data_path(CPU_VICTIMS[name])
    cfg = config(name)
    assert cfg.model.get('pretrained') is None, 'trains from scratch'
    cfg.merge_from_dict({
        'work_dir': str(tmp_path),
        'train_cfg.max_iters': 2,
        'train_cfg.val_interval': 2,
        'param_scheduler.0.end': 2,
        'train_dataloader.batch_size': 2,
        'train_dataloader.num_workers': 0,
        'train_dataloader.persistent_workers': False,
        'val_dataloader.num_workers': 0,
        'val_dataloader.persistent_workers': False,
        'val_dataloader.dataset.indices': 2,
        'default_hooks.logger.interval': 1,
    })
    runner = Runner.from_cfg(cfg)
    runner.train()
    losses = runner.message_hub.get_scalar('train/loss').current()
    assert losses > 0
    assert 0 <= runner.message_hub.get_scalar('val/mIoU').current() <= 100


@pytest.mark.parametrize('name', sorted(PAPER_VICTIMS))
def test_paper_victim_builds_and_reads_the_paper_dataset(name):
    import mmseg.registry  # noqa: F401
    from mmengine.registry import MODELS
    cfg = config(name)
    with DefaultScope.overwrite_default_scope('mmseg'):
        model = MODELS.build(cfg.model)
    assert model.decode_head.num_classes == PAPER_VICTIMS[name]
    dataset = cfg.train_dataloader.dataset
    leaves = dataset.get('datasets', [dataset])
    for leaf in leaves:
        # Resolvable from any working directory, unlike MMSeg's 'data/...'.
        assert leaf.type.startswith('mmseg.') and osp.isabs(leaf.data_root)
