import logging
import os
import os.path as osp
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from mmengine.registry import init_default_scope
from mmengine.structures import BaseDataElement

import mmunseg.datasets.folder_dataset as folder_dataset
from mmunseg.datasets import FolderMaskDataset
from mmunseg.registry import DATASETS

DATA_ROOT = os.environ.get(
    'MMUNSEG_DATA', str(Path(__file__).parents[2].parent / 'shared' / 'data'))
COCO128 = osp.join(DATA_ROOT, 'coco128_objects')


def _write_folder(root, img_stems, mask_stems, mask_area=None):
    """Write 8x8 images and masks named by their stems under ``root``."""
    (root / 'im').mkdir(parents=True, exist_ok=True)
    (root / 'gt').mkdir(parents=True, exist_ok=True)
    img = np.full((8, 8, 3), 100, np.uint8)
    for stem in img_stems:
        cv2.imwrite(str(root / 'im' / f'{stem}.jpg'), img)
    for stem in mask_stems:
        mask = np.zeros((8, 8), np.uint8)
        area = (mask_area or {}).get(stem, 16)
        mask.flat[:area] = 255
        cv2.imwrite(str(root / 'gt' / f'{stem}.png'), mask)


@pytest.fixture
def warnings(monkeypatch):
    """Collect the messages that the dataset logs as warnings."""
    messages = []

    def fake_print_log(msg, logger=None, level=None):
        if level == logging.WARNING:
            messages.append(msg)

    monkeypatch.setattr(folder_dataset, 'print_log', fake_print_log)
    return messages


def _pairs(dataset):
    return sorted(
        (osp.basename(info['img_path']), osp.basename(info['mask_path']),
         info['object_id'])
        for info in (dataset.get_data_info(i) for i in range(len(dataset))))


def test_pairing_single_and_multi_mask(tmp_path, warnings):
    _write_folder(tmp_path, ['a', 'b', 'foo', 'foo_01'],
                  ['a', 'b_00', 'b_01', 'b_12', 'foo_01', 'foo_01_03'])
    dataset = FolderMaskDataset(str(tmp_path))
    # foo_01.png belongs to image foo_01 (exact stem), not to object 1 of foo.
    assert _pairs(dataset) == [
        ('a.jpg', 'a.png', None),
        ('b.jpg', 'b_00.png', 0),
        ('b.jpg', 'b_01.png', 1),
        ('b.jpg', 'b_12.png', 12),
        ('foo_01.jpg', 'foo_01.png', None),
        ('foo_01.jpg', 'foo_01_03.png', 3),
    ]
    assert len(warnings) == 1
    assert 'Skipped 1 images without a mask' in warnings[0]
    assert 'foo.jpg' in warnings[0]


def test_orphan_masks_warn_once(tmp_path, warnings):
    orphans = [f'lost{i}_00' for i in range(7)]
    _write_folder(tmp_path, ['a'], ['a_00', 'a_x'] + orphans)
    dataset = FolderMaskDataset(str(tmp_path))
    assert _pairs(dataset) == [('a.jpg', 'a_00.png', 0)]
    assert len(warnings) == 1
    assert 'Skipped 8 masks without an image' in warnings[0]
    assert 'a_x.png' in warnings[0] and '(3 more)' in warnings[0]


def test_empty_and_missing_dirs(tmp_path):
    _write_folder(tmp_path, ['a'], ['b'])
    with pytest.raises(ValueError, match='No \\(image, mask\\) pair') as err:
        FolderMaskDataset(str(tmp_path))
    assert str(tmp_path) in str(err.value)
    assert osp.join(str(tmp_path), 'gt') in str(err.value)

    with pytest.raises(FileNotFoundError, match='mask directory') as err:
        FolderMaskDataset(str(tmp_path), mask_dir='masks')
    assert osp.join(str(tmp_path), 'masks') in str(err.value)
    with pytest.raises(FileNotFoundError, match='image directory') as err:
        FolderMaskDataset(str(tmp_path / 'nowhere'))
    assert osp.join(str(tmp_path), 'nowhere', 'im') in str(err.value)

    # lazy_init defers listing the folders to full_init.
    dataset = FolderMaskDataset(str(tmp_path / 'nowhere'), lazy_init=True)
    with pytest.raises(FileNotFoundError):
        dataset.full_init()


def test_min_mask_area(tmp_path):
    _write_folder(
        tmp_path, ['a'], ['a_00', 'a_01', 'a_02'],
        mask_area=dict(a_00=3, a_01=4, a_02=40))
    assert len(FolderMaskDataset(str(tmp_path))) == 3
    dataset = FolderMaskDataset(str(tmp_path), min_mask_area=4)
    assert [p[1] for p in _pairs(dataset)] == ['a_01.png', 'a_02.png']
    with pytest.raises(ValueError, match='min_mask_area=41'):
        FolderMaskDataset(str(tmp_path), min_mask_area=41)
    # A ratio of the image's pixels (masks here are 8x8 = 64 pixels).
    dataset = FolderMaskDataset(str(tmp_path), min_mask_ratio=0.5)
    assert [p[1] for p in _pairs(dataset)] == ['a_02.png']
    with pytest.raises(ValueError, match='min_mask_ratio'):
        FolderMaskDataset(str(tmp_path), min_mask_ratio=1.5)


def test_split_validation(tmp_path):
    _write_folder(tmp_path, ['a'], ['a'])
    with pytest.raises(ValueError, match='split'):
        FolderMaskDataset(str(tmp_path), split='test')
    with pytest.raises(ValueError, match="'val' split .* is empty"):
        FolderMaskDataset(str(tmp_path), split='val', val_fraction=0)


@pytest.fixture
def coco128():
    if not osp.isdir(COCO128):
        pytest.skip(f'real data not found at {COCO128}; set MMUNSEG_DATA to '
                    'the folder holding coco128_objects/')
    return COCO128


def test_real_data_pairs_and_split(coco128):
    img_stems = {
        osp.splitext(n)[0]
        for n in os.listdir(osp.join(coco128, 'im'))
    }
    masks_with_img = [
        name for name in os.listdir(osp.join(coco128, 'gt'))
        if name.rsplit('_', 1)[0] in img_stems
    ]
    assert len(masks_with_img) == 524

    full = FolderMaskDataset(coco128)
    assert len(full) == len(masks_with_img)
    splits = {
        split: FolderMaskDataset(coco128, split=split)
        for split in ('train', 'val')
    }
    train, val = (set(_pairs(splits[s])) for s in ('train', 'val'))
    assert train and val and not train & val
    assert train | val == set(_pairs(full))
    # Every mask of an image falls in the same split.
    assert not ({p[0] for p in train} & {p[0] for p in val})
    assert set(_pairs(FolderMaskDataset(coco128, split='val'))) == val
    # CRC32 of the stems, not the process's salted hash(), decides the split.
    assert len(val) == 68


def test_build_from_config_and_fetch(coco128):
    init_default_scope('mmunseg')
    dataset = DATASETS.build(
        dict(
            type='FolderMaskDataset',
            data_root=coco128,
            split='val',
            pipeline=[
                dict(type='LoadImageAndMask'),
                dict(type='RandomHorizontalFlip', prob=0.5),
                dict(type='LargeScaleJitter', output_size=256),
                dict(type='PackUnSegInputs'),
            ]))
    item = dataset[0]
    assert item['inputs'].dtype == torch.uint8
    assert item['inputs'].shape == (3, 256, 256)
    data_sample = item['data_samples']
    assert isinstance(data_sample, BaseDataElement)
    assert data_sample.gt_mask.dtype == torch.float32
    assert data_sample.gt_mask.shape == (1, 256, 256)
    assert (data_sample.gt_mask > 128).sum() >= 16
    assert data_sample.img_path.startswith(coco128)
    assert data_sample.pad_shape == (256, 256)
