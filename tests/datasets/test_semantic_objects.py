"""A semantic dataset's objects as generator training samples (fine-tuning
a generator on the target dataset)."""
import numpy as np
import pytest
import torch
from mmengine.structures import BaseDataElement

from mmunseg.datasets import SemanticObjectsDataset
from mmunseg.datasets.transforms import read_label_map
from mmunseg.registry import MODELS
from tests.models.test_levers import coded_cfg
from tests.utils import data_path, micro_unseg_cfg


def camvid(per_class=True, **kwargs):
    root = data_path('camvid')
    return SemanticObjectsDataset(
        dataset=dict(
            type='mmseg.BaseSegDataset',
            data_root=root,
            img_suffix='.jpg',
            seg_map_suffix='.png',
            data_prefix=dict(
                img_path='img_dir/val', seg_map_path='ann_dir/val'),
            indices=3),
        per_class=per_class,
        pipeline=[
            dict(type='LoadImageAndClassMask'),
            dict(type='ResizePad', output_size=128),
            dict(type='PackUnSegInputs'),
        ],
        **kwargs)


def test_one_sample_per_class_present_with_its_mask():
    dataset = camvid()
    infos = [dataset.get_data_info(i) for i in range(len(dataset))]
    images = sorted({info['img_path'] for info in infos})
    assert len(images) == 3
    for image in images:
        mine = [i for i in infos if i['img_path'] == image]
        labels = read_label_map(mine[0]['seg_map_path'])
        present = sorted(set(np.unique(labels).tolist()) - {255})
        assert sorted(i['class_id'] for i in mine) == present
    sample = dataset[0]
    info = infos[0]
    labels = read_label_map(info['seg_map_path'])
    mask = sample['data_samples'].gt_mask[0].numpy()
    # ResizePad scales the longest side to 128: the class covers about the
    # same share of the padded image as of the original.
    share = (labels == info['class_id']).mean() * labels.shape[0] / max(
        labels.shape)
    assert mask.max() == 255
    assert abs((mask > 127).mean() - share) < 0.02
    assert sample['data_samples'].metainfo['class_id'] == info['class_id']


def test_union_of_classes_and_minimum_size():
    union = camvid(per_class=False)
    assert len(union) == 3
    sample = union[0]
    assert sample['data_samples'].metainfo['class_id'] is None
    small = camvid(min_mask_ratio=0.2)
    assert 0 < len(small) < len(camvid())
    with pytest.raises(ValueError, match='min_mask_ratio'):
        camvid(min_mask_ratio=1.5)


def test_class_ids_choose_the_codes():
    torch.manual_seed(0)
    model = MODELS.build(micro_unseg_cfg(**coded_cfg()))
    samples = [BaseDataElement(metainfo=dict(class_id=c)) for c in (0, 3, 9)]
    assert model.draw_codes(samples, 'cpu').tolist() == [1, 4, 2]
    random = model.draw_codes([BaseDataElement()] * 64, 'cpu')
    assert random.min() >= 1 and random.max() <= 4
    assert len(set(random.tolist())) == 4
    val = model.draw_codes([BaseDataElement()] * 5, 'cpu', training=False)
    assert val.tolist() == [1, 2, 3, 4, 1]
