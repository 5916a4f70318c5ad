import copy
import os.path as osp
import time

import cv2
import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.registry import DATASETS, DefaultScope
from mmengine.runner import Runner

from mmunseg.defenses import (DEFENSE_NAMES, BitDepthReduction,
                              DDCAdversarialTraining, GaussianSmoothing,
                              JPEGCompression, PGDAdversarialTraining,
                              apply_defense)
from mmunseg.defenses.ddc_adversarial_training import head_features
from mmunseg.protect import psnr
from tests.utils import REPO_ROOT, data_path

VICTIM = osp.join(REPO_ROOT, 'configs', 'eval',
                  'fcn-unet-s5-d16-c16_4xb8-500it_camvid-240x176.py')
DATASET_CONFIGS = {
    'mmseg': ('camvid', 'camvid.py', [dict(type='LoadAnnotations')]),
    'mmdet': ('nwpu_vhr10', 'nwpu_vhr10_instance.py',
              [dict(type='LoadAnnotations', with_bbox=True, with_mask=True)]),
}
TRANSFORMS = {
    'gaussian': dict(kernel_size=5, sigma=1.0),
    'jpeg': dict(quality=10),
    'grayscale': dict(),
    'bit_depth': dict(bits=2),
}


def load_sample(scope, defense=None):
    """Sample 0 of a real dataset of ``scope`` after loading (and the
    defense transform, right after the image)."""
    folder, name, annotations = DATASET_CONFIGS[scope]
    data_path(folder)
    __import__(f'{scope}.registry')
    cfg = Config.fromfile(
        osp.join(REPO_ROOT, 'configs', '_base_', 'datasets', name))
    dataset_cfg = copy.deepcopy(cfg.train_dataloader.dataset)
    dataset_cfg.pipeline = [dict(type='LoadImageFromFile')] + annotations
    if defense is not None:
        name, options = defense
        apply_defense(cfg, name, **options)
        dataset_cfg.pipeline.insert(1,
                                    cfg.train_dataloader.dataset.pipeline[1])
    with DefaultScope.overwrite_default_scope(scope):
        return DATASETS.build(dataset_cfg)[0]


def labels_of(sample):
    if 'gt_seg_map' in sample:
        return [sample['gt_seg_map']]
    return [
        sample['gt_bboxes'].tensor.numpy(), sample['gt_bboxes_labels'],
        sample['gt_masks'].to_ndarray()
    ]


@pytest.mark.parametrize('scope', sorted(DATASET_CONFIGS))
@pytest.mark.parametrize('name', sorted(TRANSFORMS))
def test_transform_changes_the_image_as_specified_and_keeps_labels(
        scope, name):
    clean = load_sample(scope)
    defended = load_sample(scope, (name, TRANSFORMS[name]))
    before, after = clean['img'], defended['img']
    assert after.shape == before.shape and after.dtype == before.dtype
    assert not np.array_equal(after, before)
    for expected, kept in zip(labels_of(clean), labels_of(defended)):
        np.testing.assert_array_equal(kept, expected)
    if name == 'gaussian':
        np.testing.assert_array_equal(after,
                                      cv2.GaussianBlur(before, (5, 5), 1.0))
    elif name == 'jpeg':
        mild = JPEGCompression(quality=90)(dict(img=before))['img']
        assert psnr(before, after) < psnr(before, mild) < 60
    elif name == 'grayscale':
        assert (after == after[..., :1]).all()
        luma = cv2.cvtColor(before, cv2.COLOR_BGR2GRAY)
        assert np.abs(after[..., 0].astype(int) - luma).max() <= 1
    else:
        assert set(np.unique(after)) <= {0, 64, 128, 192}
        assert ((before - after) < 64).all() and (after <= before).all()


def test_transform_options_are_checked():
    with pytest.warns(UserWarning, match='near identity'):
        smoothing = GaussianSmoothing(kernel_size=3, sigma=0.1)
    image = np.random.default_rng(0).integers(0, 256, (32, 48, 3), np.uint8)
    np.testing.assert_array_equal(smoothing(dict(img=image))['img'], image)
    for build in (lambda: GaussianSmoothing(kernel_size=4),
                  lambda: JPEGCompression(quality=0),
                  lambda: BitDepthReduction(bits=9)):
        with pytest.raises(ValueError):
            build()
    # Float images keep their dtype; RGB images are squeezed alike.
    as_float = JPEGCompression(quality=10)(
        dict(img=image.astype(np.float32)))['img']
    assert as_float.dtype == np.float32
    rgb = JPEGCompression(
        quality=10, channel_order='rgb')(dict(img=image[..., ::-1]))['img']
    np.testing.assert_array_equal(rgb[..., ::-1], as_float.astype(np.uint8))


def victim():
    data_path('camvid')
    return Config.fromfile(VICTIM)


@pytest.mark.parametrize('name', sorted(TRANSFORMS))
def test_apply_defense_inserts_right_after_image_loading(name):
    cfg = victim()
    train = copy.deepcopy(cfg.train_dataloader.dataset.pipeline)
    val = copy.deepcopy(cfg.val_dataloader.dataset.pipeline)
    apply_defense(cfg, name, **TRANSFORMS[name])
    pipeline = cfg.train_dataloader.dataset.pipeline
    assert len(pipeline) == len(train) + 1
    assert pipeline[0] == train[0] and pipeline[2:] == train[1:]
    cls = {
        'gaussian': 'GaussianSmoothing',
        'jpeg': 'JPEGCompression',
        'grayscale': 'Grayscale',
        'bit_depth': 'BitDepthReduction'
    }[name]
    assert pipeline[1] == dict(type=f'mmunseg.{cls}', **TRANSFORMS[name])
    assert cfg.val_dataloader.dataset.pipeline == val
    # The victim's own (mmseg) scope resolves it, through its whole
    # training pipeline.
    with DefaultScope.overwrite_default_scope('mmseg'):
        sample = DATASETS.build(cfg.train_dataloader.dataset)[0]
    assert sample['inputs'].shape[0] == 3


def test_apply_defense_finds_pipelines_in_dataset_wrappers():
    cfg = victim()
    clean = copy.deepcopy(cfg.train_dataloader.dataset)
    clean.pipeline.insert(
        1,
        dict(
            type='mmunseg.AddUnlearnableNoise', noise_root='n', data_root='d'))
    # How the evaluation tool trains on protected copies, inside a concat.
    cfg.train_dataloader.dataset = dict(
        type='ConcatDataset',
        datasets=[
            dict(
                type='mmunseg.PartiallyProtectedDataset',
                dataset=copy.deepcopy(clean),
                protected_root='p'),
            dict(type='RepeatDataset', times=2, dataset=clean)
        ])
    apply_defense(cfg, 'jpeg', quality=30, test=True)
    datasets = cfg.train_dataloader.dataset.datasets
    for wrapper in datasets:
        pipeline = wrapper.dataset.pipeline
        # After the protection noise, so it squeezes the protected image.
        assert [step['type'] for step in pipeline[:3]] == [
            'LoadImageFromFile', 'mmunseg.AddUnlearnableNoise',
            'mmunseg.JPEGCompression'
        ]
    # test=True: validation too (once, though test_dataloader shares it).
    for key in ('val_dataloader', 'test_dataloader'):
        types = [step['type'] for step in cfg[key].dataset.pipeline]
        assert types.count('mmunseg.JPEGCompression') == 1
        assert types.index('mmunseg.JPEGCompression') == 1


def test_apply_defense_rejects_bad_names_and_options():
    cfg = victim()
    before = copy.deepcopy(cfg._cfg_dict.to_dict())
    cases = [
        (('blur', ), {}, "unknown defense 'blur'"),
        (('jpeg', ), dict(qualty=10), "'jpeg' has no option 'qualty'"),
        (('jpeg', ), dict(quality=0), "'jpeg'.*got 0"),
        (('gaussian', ), dict(sigma=-1.0), "'gaussian'.*-1.0"),
        (('pgd_at', ), dict(epsilon=0), "'pgd_at'.*epsilon.*got 0"),
        (('pgd_at', ), dict(steps=2.5), "'pgd_at'.*steps.*2.5"),
        (('ddc_at', ), dict(step_size=300), "'ddc_at'.*step_size.*300"),
        (('grayscale', ), dict(test='yes'), "'grayscale'.*'yes'"),
    ]
    for args, options, message in cases:
        with pytest.raises(ValueError, match=message):
            apply_defense(cfg, *args, **options)
    assert cfg._cfg_dict.to_dict() == before
    cfg.train_dataloader.dataset.pipeline = [dict(type='LoadAnnotations')]
    with pytest.raises(ValueError, match='loads images'):
        apply_defense(cfg, 'grayscale')
    assert set(DEFENSE_NAMES) == set(TRANSFORMS) | {'pgd_at', 'ddc_at'}


def train_tiny(tmp_path, defense, batch_size=1, **options):
    """Two iterations of the victim config with a defense, and a validation
    on MMSeg's evaluator, at a quarter of the image size (the same model
    and pipelines, 4x faster)."""
    cfg = victim()
    apply_defense(cfg, defense, **options)
    cfg.work_dir = str(tmp_path)
    cfg.experiment_name = f'{defense}_{time.time_ns()}'
    cfg.log_level = 'WARNING'
    for key, images in (('train_dataloader', 2 * batch_size),
                        ('val_dataloader', 1)):
        cfg[key].update(
            batch_size=batch_size, num_workers=0, persistent_workers=False)
        cfg[key].dataset.indices = images
    cfg.test_dataloader = cfg.val_dataloader
    cfg.model.segmentor.data_preprocessor.size = (80, 112)
    for step in cfg.train_dataloader.dataset.pipeline + \
            cfg.val_dataloader.dataset.pipeline:
        if 'scale' in step:
            step.scale = (120, 88)
        if 'crop_size' in step:
            step.crop_size = (80, 112)
    cfg.train_cfg = dict(
        type='IterBasedTrainLoop', max_iters=2, val_interval=2)
    cfg.default_hooks.checkpoint = dict(
        type='CheckpointHook', by_epoch=False, interval=2)
    runner = Runner.from_cfg(cfg)
    runner.train()
    assert np.isfinite(runner.message_hub.get_scalar('train/loss').current())
    assert 'val/mIoU' in runner.message_hub.log_scalars
    data = runner.model.data_preprocessor(
        next(iter(runner.train_dataloader)), True)
    return runner.model, data['inputs'], data['data_samples']


def test_pgd_at_trains_and_evaluates_with_the_mmseg_runner(tmp_path):
    model, inputs, samples = train_tiny(
        tmp_path, 'pgd_at', epsilon=8, step_size=4, steps=1)
    assert isinstance(model, PGDAdversarialTraining)
    # The attack: in pixel space, within epsilon grey levels, and harmful.
    torch.manual_seed(0)
    model.steps = 2
    adversarial = model.attack(inputs, samples)
    std = model.data_preprocessor.std
    change = (adversarial - inputs) * std
    assert change.abs().max() <= 8 + 1e-3 and change.abs().max() > 7
    pixels = inputs * std + model.data_preprocessor.mean
    assert (pixels + change).min() >= -1e-3
    assert (pixels + change).max() <= 255 + 1e-3
    model.eval()
    with torch.no_grad():
        clean_loss = model.attack_loss(inputs, samples)
        attacked = model.attack_loss(adversarial, samples)
    assert attacked > clean_loss
    assert model.training is False and model.segmentor.training is False


def test_ddc_at_trains_and_evaluates_with_the_mmseg_runner(tmp_path):
    model, inputs, samples = train_tiny(
        tmp_path, 'ddc_at', batch_size=2, steps=1)
    assert isinstance(model, DDCAdversarialTraining)
    head = model.segmentor.decode_head
    model.eval()
    with torch.no_grad():
        features = model.segmentor.extract_feat(inputs)
        torch.testing.assert_close(
            head.cls_seg(head_features(head, features)), head(features))
        # Testing is the segmentor's own classifier.
        torch.testing.assert_close(
            model(inputs, samples, mode='tensor'),
            model.segmentor(inputs, samples, mode='tensor'))
    model.train()
    losses = model.loss(inputs, samples)
    assert {'decode.loss_ce', 'router.loss_ce', 'aux.loss_ce'} <= set(losses)
    total, _ = model.parse_losses(losses)
    total.backward()
    assert model.router[-1].weight.grad.abs().sum() > 0
    assert model.second_classifier[-1].weight.grad is not None
