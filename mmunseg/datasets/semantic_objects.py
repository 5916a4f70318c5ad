"""The objects of an MMSeg semantic dataset as UnSeg training samples."""
import copy
import logging

import numpy as np
from mmengine.dataset import BaseDataset
from mmengine.logging import print_log

from mmunseg.registry import DATASETS
from .transforms.loading import read_label_map


@DATASETS.register_module()
class SemanticObjectsDataset(BaseDataset):
    """A semantic segmentation dataset's objects, to train a generator on.

    Fine-tunes a generator on a target dataset's own training images:
    ``tools/train.py`` with this dataset wrapping any MMSeg dataset config.
    Each (image, class present) pair is one sample whose object mask is
    that class and whose ``class_id`` gives a generator with object codes
    the code protection gives the class (``--prompt per-class``); with
    ``per_class=False`` each image is one sample, the union of its classes.

    Args:
        dataset (dict): Config of the MMSeg dataset (e.g. CamVid's
            ``train_dataloader.dataset``); its pipeline is not used.
        per_class (bool): One sample per class present, or per image.
        ignore_index (int): Void label, never an object.
        background_ids (Sequence[int]): Classes that are not objects.
        min_mask_ratio (float): Skip objects covering less of the image.
        **kwargs: Arguments of :class:`mmengine.dataset.BaseDataset`
            (``pipeline``, ``indices``, ``test_mode``, ...).
    """

    def __init__(self,
                 dataset,
                 per_class=True,
                 ignore_index=255,
                 background_ids=(),
                 min_mask_ratio=0.,
                 **kwargs):
        if not 0 <= min_mask_ratio < 1:
            raise ValueError(
                f'min_mask_ratio must be in [0, 1), got {min_mask_ratio}')
        self.source_cfg = copy.deepcopy(dict(dataset))
        self.per_class = per_class
        self.ignore_index = ignore_index
        self.background_ids = tuple(background_ids)
        self.min_mask_ratio = min_mask_ratio
        super().__init__(**kwargs)

    def build_source(self):
        """The wrapped dataset, without its pipeline."""
        cfg = dict(self.source_cfg, pipeline=[], lazy_init=False)
        cfg.setdefault('_scope_', 'mmseg')
        return DATASETS.build(cfg)

    def load_data_list(self):
        """One dict per object: the image, its annotation and ``class_id``
        (None for the union of an image's classes)."""
        source = self.build_source()
        skip = {self.ignore_index, *self.background_ids}
        data_list = []
        for index in range(len(source)):
            info = source.get_data_info(index)
            labels = read_label_map(info['seg_map_path'],
                                    info.get('label_map'),
                                    info.get('reduce_zero_label', False))
            counts = np.bincount(labels[labels >= 0].ravel())
            classes = [
                c for c in np.flatnonzero(counts)
                if int(c) not in skip and counts[c] >= self.min_mask_ratio *
                labels.size
            ]
            common = dict(
                img_path=info['img_path'],
                seg_map_path=info['seg_map_path'],
                label_map=info.get('label_map'),
                reduce_zero_label=info.get('reduce_zero_label', False),
                object_classes=[int(c) for c in classes])
            if self.per_class:
                data_list += [dict(common, class_id=int(c)) for c in classes]
            elif classes:
                data_list.append(dict(common, class_id=None))
        if not data_list:
            raise ValueError(
                f'no object of at least {self.min_mask_ratio:.0%} of an '
                f'image in {len(source)} images of {self.source_cfg}')
        print_log(
            f'{len(data_list)} objects from {len(source)} images',
            logger='current',
            level=logging.INFO)
        return data_list
