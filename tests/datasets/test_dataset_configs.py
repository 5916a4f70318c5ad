"""One walker over wrapped dataset configs and one guess of their scope
(issue 13, item 3)."""
import copy

from mmunseg.utils.dataset_configs import (dataset_pipelines, dataset_scope,
                                           leaf_datasets, map_leaves)

LOAD = [dict(type='LoadImageFromFile')]
MOSAIC = [dict(type='Mosaic')]


def wrapped():
    """Concat of (a Repeat of a mmseg leaf) and a bare leaf, under a
    mix wrapper with its own pipeline."""
    return dict(
        type='MultiImageMixDataset',
        pipeline=MOSAIC,
        dataset=dict(
            type='ConcatDataset',
            datasets=[
                dict(
                    type='RepeatDataset',
                    times=2,
                    dataset=dict(
                        type='mmseg.ADE20KDataset', name='a', pipeline=LOAD)),
                dict(type='ADE20KDataset', name='b', pipeline=LOAD),
            ]))


def test_leaves_in_order_and_changeable_in_place():
    cfg = wrapped()
    assert [leaf['name'] for leaf in leaf_datasets(cfg)] == ['a', 'b']
    for leaf in leaf_datasets(cfg):
        leaf['data_root'] = 'x'
    assert [leaf['data_root'] for leaf in leaf_datasets(cfg)] == ['x', 'x']
    assert list(leaf_datasets(dict(type='X'))) == [dict(type='X')]


def test_pipelines_of_wrappers_and_leaves():
    pipelines = list(dataset_pipelines(wrapped()))
    assert pipelines == [MOSAIC, LOAD, LOAD]
    assert list(dataset_pipelines(None)) == []


def test_map_leaves_copies():
    cfg = wrapped()
    before = copy.deepcopy(cfg)
    names = iter(['A', 'B'])
    mapped = map_leaves(cfg, lambda leaf: dict(leaf, name=next(names)))
    assert [leaf['name'] for leaf in leaf_datasets(mapped)] == ['A', 'B']
    assert cfg == before
    assert mapped['pipeline'] is cfg['pipeline']


def test_scope_from_scope_key_then_first_dotted_type():
    assert dataset_scope(wrapped()) == 'mmseg'
    assert dataset_scope(dict(wrapped(), _scope_='mmdet')) == 'mmdet'
    assert dataset_scope(dict(type='mmdet.CocoDataset')) == 'mmdet'
    # Only the first dataset's chain counts; none named: no guess.
    second = wrapped()
    second['dataset']['datasets'].reverse()
    assert dataset_scope(second) is None
    assert dataset_scope(dict(type='ConcatDataset', datasets=[])) is None
