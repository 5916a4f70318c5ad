import glob
import os.path as osp
import shutil

import pytest
from mmengine.config import Config

from mmunseg.models.budget import BUDGET_PRESETS
from mmunseg.protect import Protector, UniformNoise, load_split
from tests.utils import data_path


@pytest.fixture(scope='module')
def camvid_subset(tmp_path_factory):
    """Eight CamVid training and four validation images, clean and
    protected with uniform noise (8/255, 2/255)."""
    source = data_path('camvid')
    root = tmp_path_factory.mktemp('camvid')
    for split, count in (('train', 8), ('val', 4)):
        names = sorted(
            osp.basename(p)[:-4] for p in glob.glob(
                osp.join(source, 'img_dir', split, '*.jpg')))[:count]
        for name in names:
            for sub, ext in (('img_dir', '.jpg'), ('ann_dir', '.png')):
                target = root / sub / split
                target.mkdir(parents=True, exist_ok=True)
                shutil.copy(
                    osp.join(source, sub, split, name + ext),
                    target / (name + ext))
    cfg = Config.fromfile('configs/_base_/datasets/camvid.py')
    cfg.train_dataloader.dataset.data_root = str(root)
    items = load_split(cfg, 'train')[0].items
    protected = tmp_path_factory.mktemp('camvid_protected')
    Protector(UniformNoise(), str(protected), BUDGET_PRESETS['paper']).run(
        items, str(protected / 'manifest.jsonl'), show_progress=False)
    return root, protected
