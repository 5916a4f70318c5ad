"""Train on a protected copy, or on a mix of protected and clean images."""
import os.path as osp
import zlib

import numpy as np
from mmengine.logging import print_log

from mmunseg.registry import DATASETS
from mmunseg.utils.dataset_configs import dataset_scope
from .protected_copy import MANIFEST_FILE, WRITTEN, load_manifest


def in_own_scope(dataset_cfg):
    """Build ``mmseg.X`` / ``mmdet.X`` (or a wrapper of them) in that
    scope, pipelines included: their transforms have no prefix."""
    dataset_cfg = dict(dataset_cfg)
    scope = dataset_scope(dataset_cfg)
    if scope and '_scope_' not in dataset_cfg:
        dataset_cfg['_scope_'] = scope
    return dataset_cfg


def leaf_of(dataset, idx):
    """The dataset that holds sample ``idx`` of a (wrapped) dataset, and the
    sample's index there (MMEngine's Concat / Repeat / ClassBalanced
    wrappers have no pipeline of their own)."""
    while not hasattr(dataset, 'pipeline'):
        if hasattr(dataset, 'datasets'):
            child, idx = dataset._get_ori_dataset_idx(idx)
            dataset = dataset.datasets[child]
        else:
            idx = dataset._get_ori_dataset_idx(idx)
            dataset = dataset.dataset
    return dataset, idx


def _key(path):
    return osp.normcase(osp.realpath(path))


@DATASETS.register_module()
class PartiallyProtectedDataset:
    """A dataset whose images are replaced by their protected copies.

    The wrapped dataset is the clean one (its annotations, pipeline and
    classes are used unchanged); the ``manifest.jsonl`` that
    ``tools/protect.py`` wrote in ``protected_root`` maps each clean image to
    its protected copy. ``clean_fraction`` of the images (the paper's mixed
    settings: 0, 0.2, ..., 0.8) keep their clean pixels; which ones is fixed
    by ``seed`` and the image paths, so every run of an evaluation agrees.
    Images the manifest does not cover (failed or not yet protected) stay
    clean and are counted in :attr:`summary`.

    Args:
        dataset (dict | BaseDataset): The clean training dataset.
        protected_root (str): Output folder of ``tools/protect.py``.
        clean_fraction (float): Share of images left clean, in [0, 1].
        seed (int): Chooses the clean share.
        lazy_init (bool): Defer reading the manifest to first use.
    """

    def __init__(self,
                 dataset,
                 protected_root,
                 clean_fraction=0.0,
                 seed=0,
                 lazy_init=False):
        if not 0 <= clean_fraction <= 1:
            raise ValueError(
                f'clean_fraction must be in [0, 1], got {clean_fraction}')
        if isinstance(dataset, dict):
            dataset = DATASETS.build(in_own_scope(dataset))
        self.dataset = dataset
        self.protected_root = protected_root
        self.clean_fraction = clean_fraction
        self.seed = seed
        self.protected = {}
        self.summary = {}
        self._fully_initialized = False
        if not lazy_init:
            self.full_init()

    @property
    def metainfo(self):
        return self.dataset.metainfo

    def _protected_files(self):
        manifest = osp.join(self.protected_root, MANIFEST_FILE)
        if not osp.isfile(manifest):
            raise FileNotFoundError(
                f'{manifest}: no manifest; is {self.protected_root} an output '
                'folder of tools/protect.py?')
        root = osp.realpath(self.protected_root)
        files = {}
        for record in load_manifest(manifest).values():
            if record.get('status') not in WRITTEN or 'source' not in record:
                continue
            path = osp.join(self.protected_root, record['file'])
            # The manifest is read back from disk: it may only point at
            # files of the copy.
            if osp.commonpath([osp.realpath(path), root]) != root:
                raise ValueError(f'{manifest}: record {record["file"]!r} '
                                 f'points outside {self.protected_root}')
            files[_key(record['source'])] = path
        return files

    def full_init(self):
        """Read the manifest and choose the images that stay clean."""
        if self._fully_initialized:
            return
        self.dataset.full_init()
        files = self._protected_files()
        paths = [
            self.dataset.get_data_info(i)['img_path']
            for i in range(len(self.dataset))
        ]
        covered = [i for i, path in enumerate(paths) if _key(path) in files]
        if paths and not covered:
            raise ValueError(
                f'{self.protected_root}: its manifest covers none of the '
                f'{len(paths)} training images (first: {paths[0]}); was it '
                'written from this dataset?')
        # A stable order from the paths alone: the same clean share for
        # every run and process.
        order = sorted(
            covered,
            key=lambda i: zlib.crc32(f'{self.seed}:{paths[i]}'.encode()))
        num_clean = int(round(self.clean_fraction * len(covered)))
        self.protected = {i: files[_key(paths[i])] for i in order[num_clean:]}
        self.summary = dict(
            images=len(paths),
            protected=len(self.protected),
            clean_by_choice=num_clean,
            clean_not_in_manifest=len(paths) - len(covered))
        if len(covered) < len(paths):
            print_log(
                f'{len(paths) - len(covered)} of {len(paths)} training images '
                f'have no protected copy in {self.protected_root}; they are '
                'used clean',
                logger='current',
                level=30)
        self._fully_initialized = True

    def get_data_info(self, idx):
        """The clean dataset's record with the image path swapped."""
        info = self.dataset.get_data_info(idx)
        if idx in self.protected:
            info['img_path'] = self.protected[idx]
        return info

    def __len__(self):
        self.full_init()
        return len(self.dataset)

    def __getitem__(self, idx):
        self.full_init()
        rng = np.random.default_rng(idx)
        leaf, _ = leaf_of(self.dataset, idx)
        for _ in range(leaf.max_refetch + 1):
            leaf, _ = leaf_of(self.dataset, idx)
            data = leaf.pipeline(self.get_data_info(idx))
            if data is not None:
                return data
            if leaf.test_mode:
                break
            # As BaseDataset does: a sample its pipeline drops is replaced.
            idx = int(rng.integers(len(self)))
        raise RuntimeError(
            f'{self.protected_root}: the pipeline dropped sample {idx} and '
            'every replacement')
