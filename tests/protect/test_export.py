from mmengine.config import Config

from mmunseg.protect import load_split, write_config_override
from tests.utils import data_path


def test_override_of_a_concatenated_split_points_every_leaf_at_the_copy(
        tmp_path):
    # VOC train + aug style: one training set made of two datasets.
    camvid = Config.fromfile('configs/_base_/datasets/camvid.py')
    leaf = camvid.train_dataloader.dataset
    leaf.data_root = data_path('camvid')
    second = leaf.copy()
    second.data_prefix = camvid.val_dataloader.dataset.data_prefix
    config = tmp_path / 'concat.py'
    config.write_text(camvid.pretty_text +
                      '\ntrain_dataloader = dict(dataset=dict('
                      '_delete_=True, type="ConcatDataset", datasets=[' +
                      repr(leaf.to_dict()) + ', ' + repr(second.to_dict()) +
                      ']))\n')
    cfg = Config.fromfile(str(config))
    splits = load_split(cfg, 'train')
    assert len(splits) == 2
    out = tmp_path / 'protected'
    out.mkdir()
    path = write_config_override(str(config), splits, str(out), 'png')
    protected = Config.fromfile(path)
    dataset = protected.train_dataloader.dataset
    assert dataset.type == 'ConcatDataset'
    prefixes = []
    for child in dataset.datasets:
        assert child.data_root == str(out)
        assert child.img_suffix == '.png'
        prefixes.append(child.data_prefix.img_path)
        # Everything else is the user's own.
        assert child.pipeline == leaf.pipeline
    assert prefixes == ['img_dir/train', 'img_dir/val']
