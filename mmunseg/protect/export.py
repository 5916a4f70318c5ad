"""What goes beside the protected images: annotations, config, report."""
import json
import os.path as osp

import cv2
import numpy as np
from mmengine.config import Config

from mmunseg.utils.atomic_files import copy_file_atomic, write_bytes_atomic
from .image_io import mirrored_path, read_image
from .safe_config import parse_config_text


def copy_annotations(split, out_dir, fmt):
    """Copy a split's annotations unchanged into the mirrored layout.

    Semantic maps and split lists are copied byte for byte. A COCO JSON is
    rewritten with only the images' ``file_name`` suffixes changed to the
    protected format; every annotation stays as it was.

    Returns:
        list[str]: The written files.
    """
    written = []
    for item in split.items:
        if item.seg_map_path and osp.isfile(item.seg_map_path):
            target = mirrored_path(item.seg_map_path, split.root, out_dir)
            copy_file_atomic(item.seg_map_path, target)
            written.append(target)
    for ann_file in split.ann_files:
        target = mirrored_path(ann_file, split.root, out_dir)
        if split.is_instance and ann_file.endswith('.json'):
            with open(ann_file) as f:
                coco = json.load(f)
            for image in coco.get('images', []):
                image['file_name'] = osp.splitext(
                    image['file_name'])[0] + '.' + fmt
            write_bytes_atomic(target, json.dumps(coco).encode())
        else:
            copy_file_atomic(ann_file, target)
        written.append(target)
    return written


def _override_leaf(dataset_cfg, out_dir, fmt, is_instance):
    override = dict(data_root=osp.abspath(out_dir))
    if not is_instance:
        override['img_suffix'] = '.' + fmt
    return override


def _replace_leaves(dataset_cfg, leaves):
    """A copy of a (wrapped) dataset config with its leaves updated in
    order from ``leaves`` (an iterator of override dicts)."""
    dataset_cfg = dict(dataset_cfg)
    if 'datasets' in dataset_cfg:
        dataset_cfg['datasets'] = [
            _replace_leaves(child, leaves) for child in dataset_cfg['datasets']
        ]
    elif 'dataset' in dataset_cfg:
        dataset_cfg['dataset'] = _replace_leaves(dataset_cfg['dataset'],
                                                 leaves)
    else:
        dataset_cfg.update(next(leaves))
    return dataset_cfg


def python_literal(value):
    """Config source of a plain value: ``dict(...)`` for dicts with
    identifier keys, else Python literals written with ``repr``, so no
    string (a path, say) can end up as code.

    Raises:
        TypeError: For values other than dicts, lists, tuples, strings,
            numbers, booleans and None.
    """
    if isinstance(value, dict):
        if all(isinstance(key, str) and key.isidentifier() for key in value):
            return 'dict({})'.format(', '.join(
                f'{key}={python_literal(child)}'
                for key, child in value.items()))
        return '{{{}}}'.format(', '.join(
            f'{python_literal(key)}: {python_literal(child)}'
            for key, child in value.items()))
    if isinstance(value, (list, tuple)):
        items = ', '.join(python_literal(child) for child in value)
        if isinstance(value, list):
            return f'[{items}]'
        return f'({items},)' if len(value) == 1 else f'({items})'
    if value is None or isinstance(value, (str, bool, int, float)):
        return repr(value)
    raise TypeError(f'cannot write a {type(value).__name__} into a config: '
                    f'{value!r}')


def write_config_override(config_path, splits, out_dir, fmt):
    """A dataset config that reads the protected copy.

    It inherits the original config and changes only where the images are
    (``data_root``) and their suffix, so pipelines, classes and evaluators
    stay the user's own. A split made of several datasets (a
    ``ConcatDataset`` such as VOC train + aug) is written out whole, with
    every leaf pointed at the copy.

    The file holds only literal assignments (checked by reading it back
    with :func:`~mmunseg.protect.safe_config.parse_config_text` before it
    is written): whatever a path or a dataset setting contains, it cannot
    become code in the file.

    Returns:
        str: Path of the written config.
    """
    overrides = {}
    for split in splits:
        key = f'{split.name.rstrip("0123456789")}_dataloader'
        leaf = _override_leaf(split.dataset_cfg, out_dir, fmt,
                              split.is_instance)
        overrides.setdefault(key, []).append(leaf)
    expected = dict(_base_=[osp.abspath(config_path)])
    source = None
    for key, leaves in overrides.items():
        if len(leaves) == 1:
            dataset = leaves[0]
        else:
            source = source or Config.fromfile(config_path)
            dataset = _replace_leaves(source[key]['dataset'].to_dict(),
                                      iter(leaves))
            dataset['_delete_'] = True
        expected[key] = dict(dataset=dataset)
    lines = [
        '# Generated by tools/protect.py: the dataset of the config below,',
        '# with its images replaced by their protected copies.',
    ] + [
        f'{key} = {python_literal(value)}' for key, value in expected.items()
    ]
    text = '\n'.join(lines) + '\n'
    # Compared as JSON: tuples and lists alike.
    if json.dumps(parse_config_text(text)) != json.dumps(expected):
        raise ValueError('the protected dataset config does not read back '
                         'as written')
    path = osp.join(out_dir, 'protected_dataset.py')
    write_bytes_atomic(path, text.encode())
    return path


def protection_panel(clean, protected, object_mask):
    """Side by side: clean, protected, amplified noise, object mask.

    Args:
        clean (np.ndarray): uint8 (H, W, 3) RGB.
        protected (np.ndarray): uint8 (H, W, 3) RGB.
        object_mask (np.ndarray): (H, W) bool.

    Returns:
        np.ndarray: uint8 (H, 4W, 3) RGB panel.
    """
    diff = protected.astype(np.int16) - clean.astype(np.int16)
    scale = 127.0 / max(int(np.abs(diff).max()), 1)
    noise = np.clip(diff * scale + 128, 0, 255).astype(np.uint8)
    mask = np.repeat(object_mask[..., None].astype(np.uint8) * 255, 3, 2)
    return np.concatenate([clean, protected, noise, mask], axis=1)


def write_panels(records, items_by_file, out_dir, vis_dir, num, options):
    """Write ``num`` panels of protected images as PNG; returns paths."""
    written = []
    for record in records:
        if len(written) >= num:
            break
        if record['status'] != 'protected':
            continue
        item = items_by_file[record['file']]
        clean = read_image(item.img_path)
        protected = read_image(osp.join(out_dir, record['file']))
        objects = item.objects(options['ignore_index'],
                               options['background_ids'])
        mask = np.zeros(clean.shape[:2], bool)
        for object_mask in objects.values():
            mask |= object_mask
        panel = protection_panel(clean, protected, mask)
        path = osp.join(
            vis_dir,
            osp.splitext(record['file'])[0].replace('/', '__') + '.png')
        ok, encoded = cv2.imencode('.png', panel[..., ::-1])
        write_bytes_atomic(path, encoded.tobytes())
        written.append(path)
    return written
