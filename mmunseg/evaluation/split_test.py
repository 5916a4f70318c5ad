"""Evaluate a trained model on any split of its config.

MMEngine's test loop reads ``test_dataloader`` and ``test_evaluator``;
:func:`use_split_for_test` points them at the validation set or the
training set of the same config, so one command scores a victim checkpoint
on whichever split is asked for.
"""
import copy
import os.path as osp

#: The splits a config can be tested on.
SPLITS = ('train', 'val', 'test')


def _leaves(dataset_cfg):
    """The leaf datasets of a config, without Repeat / ClassBalanced
    wrappers (each image once) and with ConcatDataset's children."""
    if 'datasets' in dataset_cfg:
        return [
            leaf for child in dataset_cfg['datasets']
            for leaf in _leaves(child)
        ]
    if 'dataset' in dataset_cfg:
        return _leaves(dataset_cfg['dataset'])
    return [dataset_cfg]


def _ann_file(dataset_cfg):
    ann_file = dataset_cfg.get('ann_file')
    if not ann_file or osp.isabs(ann_file):
        return ann_file
    return osp.join(dataset_cfg.get('data_root') or '', ann_file)


def use_split_for_test(cfg, split):
    """Make the config's test loop evaluate ``split``, in place.

    - ``test``: the config's own test set.
    - ``val``: the validation dataloader and evaluator.
    - ``train``: every training image once (dataset wrappers that repeat
      or rebalance removed), through the validation pipeline in test mode,
      scored by the validation evaluator; a COCO evaluator reads the
      training annotations.

    Args:
        cfg (Config): A runner config with the dataloaders and evaluators
            of the split (``train`` uses the validation pipeline and
            evaluator).
        split (str): One of :data:`SPLITS`.

    Raises:
        ValueError: For an unknown split, or a config without the
            dataloaders that split needs.
    """
    if split not in SPLITS:
        raise ValueError(f'split must be one of {SPLITS}, got {split!r}')
    needed = dict(
        train=['train_dataloader', 'val_dataloader', 'val_evaluator'],
        val=['val_dataloader', 'val_evaluator'],
        test=['test_dataloader', 'test_evaluator'])[split]
    missing = [key for key in needed if not cfg.get(key)]
    if missing:
        raise ValueError(f'{cfg.filename}: cannot test on the {split} split '
                         f'without {", ".join(missing)}')
    cfg.test_cfg = cfg.get('test_cfg') or dict(type='TestLoop')
    if split == 'test':
        return
    loader = copy.deepcopy(cfg.val_dataloader)
    evaluator = copy.deepcopy(cfg.val_evaluator)
    if split == 'train':
        pipeline = _leaves(loader.dataset)[0]['pipeline']
        leaves = copy.deepcopy(_leaves(cfg.train_dataloader.dataset))
        for leaf in leaves:
            leaf['pipeline'] = pipeline
            leaf['test_mode'] = True
        loader.dataset = leaves[0] if len(leaves) == 1 else dict(
            type='ConcatDataset', datasets=leaves)
        if isinstance(evaluator, dict) and evaluator.get('ann_file'):
            files = {_ann_file(leaf) for leaf in leaves}
            if len(files) != 1:
                raise ValueError(
                    f'{cfg.filename}: the training split has {len(files)} '
                    'annotation files; its evaluator reads one')
            evaluator.ann_file = files.pop()
    cfg.test_dataloader = loader
    cfg.test_evaluator = evaluator
