import glob
import os.path as osp

import pytest
from mmengine.config import Config
from mmengine.dataset import pseudo_collate
from mmengine.registry import DefaultScope

from tests.utils import REPO_ROOT, data_path

CONFIGS = sorted(
    glob.glob(osp.join(REPO_ROOT, 'configs', '**', '*.py'), recursive=True))


@pytest.mark.parametrize(
    'path', CONFIGS, ids=[osp.relpath(p, REPO_ROOT) for p in CONFIGS])
def test_every_config_loads(path):
    cfg = Config.fromfile(path)
    assert cfg.filename == path


@pytest.mark.parametrize(
    'name', ['coco128_objects', 'camvid', 'kvasir_seg', 'nwpu_vhr10_instance'])
def test_shared_data_configs_build_a_sample(name):
    data_path(name.replace('_instance', ''))
    cfg = Config.fromfile(
        osp.join(REPO_ROOT, 'configs', '_base_', 'datasets', f'{name}.py'))
    dataset_cfg = cfg.train_dataloader.dataset
    scope = dataset_cfg.type.split('.')[0] if '.' in dataset_cfg.type \
        else 'mmunseg'
    __import__(f'{scope}.registry')
    from mmengine.registry import DATASETS
    with DefaultScope.overwrite_default_scope(scope):
        dataset = DATASETS.build(dataset_cfg)
        sample = dataset[0]
    assert len(dataset) > 0 and 'inputs' in sample


def test_task_configs_build_their_models_and_run_a_step():
    from mmunseg.registry import MODELS
    data_path('coco128_objects')
    cfg = Config.fromfile(
        osp.join(REPO_ROOT, 'configs', 'unseg',
                 'unseg_sam_tiny_coco128-objects.py'))
    model = MODELS.build(cfg.model)
    from mmunseg.registry import DATASETS
    dataset = DATASETS.build(cfg.val_dataloader.dataset)
    outputs = model.val_step(pseudo_collate([dataset[0], dataset[1]]))
    assert len(outputs) == 2
    paper = Config.fromfile(
        osp.join(REPO_ROOT, 'configs', 'unseg', 'unseg_sam_b_hqseg.py'))
    assert paper.model.generator.img_size == 1024
    assert paper.model.surrogate.img_size == 512
    assert paper.train_dataloader.batch_size == 4
    assert paper.train_cfg.max_epochs == 27
    assert paper.model.train_budget == dict(
        object=1 / 255, background=0.25 / 255)


def test_victim_config_trains_one_step_on_camvid():
    data_path('camvid')
    import mmseg.registry  # noqa: F401
    from mmengine.registry import DATASETS, MODELS
    cfg = Config.fromfile(
        osp.join(REPO_ROOT, 'configs', 'eval',
                 'fcn-unet-s5-d16-c16_4xb8-500it_camvid-240x176.py'))
    with DefaultScope.overwrite_default_scope('mmseg'):
        model = MODELS.build(cfg.model)
        dataset = DATASETS.build(cfg.train_dataloader.dataset)
        batch = pseudo_collate([dataset[0], dataset[1]])
        losses = model.loss(**model.data_preprocessor(batch, True))
    assert float(losses['decode.loss_ce']) > 0
