"""The images (and annotations) of an MMSeg or MMDet dataset config."""
import os.path as osp
from dataclasses import dataclass
from typing import List, Optional

import cv2
import numpy as np
from mmengine.config import ConfigDict
from mmengine.registry import DATASETS, DefaultScope

from mmunseg.utils.dataset_configs import dataset_scope, leaf_datasets
from .objects import instance_objects, semantic_objects


@dataclass
class ProtectItem:
    """One image to protect and what is known about its objects.

    ``seg_map_path`` is set for semantic datasets, ``instances`` for
    instance datasets; neither for image folders without annotations.
    """
    img_path: str
    root: str
    seg_map_path: Optional[str] = None
    reduce_zero_label: bool = False
    label_map: Optional[dict] = None
    instances: Optional[list] = None
    height: Optional[int] = None
    width: Optional[int] = None

    def objects(self, ignore_index=255, background_ids=()):
        """Object masks keyed by a name (``class_3``, ``instance_0``).

        Raises:
            FileNotFoundError / ValueError: The annotation is missing or
                cannot be decoded, naming the file.
        """
        if self.seg_map_path is not None:
            labels = self.read_label_map()
            return {
                f'class_{label}': mask
                for label, mask in semantic_objects(labels, ignore_index,
                                                    background_ids).items()
            }
        if self.instances is not None:
            return {
                f'instance_{i}_class_{label}': mask
                for i, (label, mask) in enumerate(
                    instance_objects(self.instances, self.height, self.width))
            }
        return {}

    def read_label_map(self):
        """The label map as the dataset sees it (reduce_zero_label and
        label_map applied), (H, W) int64."""
        if not osp.isfile(self.seg_map_path):
            raise FileNotFoundError(
                f'{self.seg_map_path}: annotation is missing')
        raw = cv2.imdecode(
            np.fromfile(self.seg_map_path, dtype=np.uint8),
            cv2.IMREAD_UNCHANGED)
        if raw is None:
            raise ValueError(f'{self.seg_map_path}: cannot decode annotation')
        if raw.ndim == 3:
            raw = raw[..., 0]
        labels = raw.astype(np.int64)
        if self.label_map:
            mapped = labels.copy()
            for old, new in self.label_map.items():
                mapped[labels == old] = new
            labels = mapped
        if self.reduce_zero_label:
            labels = np.where(labels == 0, 255, labels - 1)
            labels[labels == 254] = 255
        return labels


@dataclass
class DatasetSplit:
    """The items of one split of a dataset config and where they live."""
    name: str
    dataset_cfg: ConfigDict
    items: List[ProtectItem]
    root: str
    ann_files: List[str]
    is_instance: bool


def build_annotations_only(cfg, dataset_cfg):
    """Build a dataset without its pipeline or filters: every image."""
    dataset_cfg = ConfigDict(dataset_cfg.copy())
    scope = dataset_scope(dataset_cfg) or cfg.get('default_scope') or 'mmseg'
    dataset_cfg.pop('_scope_', None)
    dataset_cfg['pipeline'] = []
    dataset_cfg['lazy_init'] = False
    if 'filter_cfg' in dataset_cfg:
        # Protect every image, annotated or not.
        dataset_cfg['filter_cfg'] = None
    dataset_cfg.pop('indices', None)
    __import__(f'{scope}.registry')
    with DefaultScope.overwrite_default_scope(scope):
        return DATASETS.build(dataset_cfg)


def load_split(cfg, split):
    """Collect the images of ``{split}_dataloader.dataset`` in ``cfg``.

    Args:
        cfg (Config): An MMSeg or MMDet dataset config.
        split (str): ``train``, ``val`` or ``test``.

    Returns:
        list[DatasetSplit]: One entry per leaf dataset of the split.
    """
    key = f'{split}_dataloader'
    if key not in cfg:
        raise ValueError(
            f'the config has no {key} (splits present: '
            f'{[k[:-11] for k in cfg if k.endswith("_dataloader")]})')
    splits = []
    for index, dataset_cfg in enumerate(leaf_datasets(cfg[key]['dataset'])):
        dataset = build_annotations_only(cfg, dataset_cfg)
        infos = [dataset.get_data_info(i) for i in range(len(dataset))]
        is_instance = bool(infos) and 'instances' in infos[0]
        root = dataset.data_root or osp.commonpath(
            [osp.dirname(info['img_path']) for info in infos])
        items = [
            ProtectItem(
                img_path=info['img_path'],
                root=root,
                seg_map_path=info.get('seg_map_path'),
                reduce_zero_label=bool(info.get('reduce_zero_label', False)),
                label_map=info.get('label_map'),
                instances=info.get('instances') if is_instance else None,
                height=info.get('height'),
                width=info.get('width')) for info in infos
        ]
        ann_file = getattr(dataset, 'ann_file', None)
        ann_files = [ann_file] if ann_file and osp.isfile(ann_file) else []
        splits.append(
            DatasetSplit(
                name=split if index == 0 else f'{split}{index}',
                dataset_cfg=dataset_cfg,
                items=items,
                root=root,
                ann_files=ann_files,
                is_instance=is_instance))
    return splits


def background_class_ids(metainfo_classes):
    """Classes named like 'background' are not objects to protect."""
    return tuple(i for i, name in enumerate(metainfo_classes or ())
                 if str(name).lower() in ('background', 'bg', '_background_'))
