import hashlib
import importlib.util
import json
import os
import os.path as osp
import subprocess
import sys

import pytest
from mmengine.config import Config

from tests.utils import REPO_ROOT, data_path, save_micro_generator

PROTECT = osp.join(REPO_ROOT, 'tools', 'protect.py')
CAMVID_CFG = osp.join(REPO_ROOT, 'configs', '_base_', 'datasets', 'camvid.py')
NWPU_CFG = osp.join(REPO_ROOT, 'configs', '_base_', 'datasets',
                    'nwpu_vhr10_instance.py')


def run(args, processes=None):
    """tools/protect.py, or tools/dist_protect.sh with ``processes``."""
    env = dict(
        os.environ,
        PYTHONPATH=REPO_ROOT,
        PYTHON=sys.executable,
        OMP_NUM_THREADS='1',
        PORT='29531')
    args = [str(a) for a in args]
    if processes is None:
        command = [sys.executable, PROTECT] + args
    else:
        command = [
            'bash',
            osp.join(REPO_ROOT, 'tools', 'dist_protect.sh'), args[0], args[1],
            str(processes)
        ] + args[2:]
    result = subprocess.run(
        command, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]
    return result.stdout


def md5(path):
    return hashlib.md5(open(path, 'rb').read()).hexdigest()


@pytest.fixture(scope='module')
def checkpoint(tmp_path_factory):
    return save_micro_generator(tmp_path_factory.mktemp('g') / 'g.pth')


def test_protect_camvid_and_train_config_points_at_the_copy(
        tmp_path, checkpoint):
    root = data_path('camvid')
    before = {
        name: md5(osp.join(root, 'ann_dir', 'train', name))
        for name in sorted(os.listdir(osp.join(root, 'ann_dir', 'train')))[:6]
    }
    out = tmp_path / 'out'
    stdout = run(
        [CAMVID_CFG, checkpoint, '--out-dir', out, '--limit', 6, '--vis', 1])
    assert 'protected 6/6 images' in stdout
    assert 'L-inf object' in stdout
    summary = json.load(open(out / 'summary.json'))
    assert summary['budget_ok'] and summary['counts'] == {'protected': 6}
    # Annotations byte-identical, and the source untouched.
    for name, digest in before.items():
        assert md5(out / 'ann_dir' / 'train' / name) == digest
        assert md5(osp.join(root, 'ann_dir', 'train', name)) == digest
    assert len(os.listdir(out / 'vis')) == 1

    from mmengine.registry import DefaultScope
    from mmseg.registry import DATASETS
    cfg = Config.fromfile(str(out / 'protected_dataset.py'))
    with DefaultScope.overwrite_default_scope('mmseg'):
        dataset = DATASETS.build(cfg.train_dataloader.dataset)
    assert len(dataset) == 6
    sample = dataset[0]
    assert sample['data_samples'].img_path.startswith(str(out))
    assert sample['data_samples'].img_path.endswith('.png')


def test_refuses_to_write_into_the_source(tmp_path, checkpoint):
    root = data_path('camvid')
    result = subprocess.run([
        sys.executable, PROTECT, CAMVID_CFG, checkpoint, '--out-dir',
        osp.join(root, 'img_dir', 'protected'), '--limit', '1'
    ],
                            env=dict(os.environ, PYTHONPATH=REPO_ROOT),
                            capture_output=True,
                            text=True)
    assert result.returncode != 0
    assert 'inside' in result.stderr or 'source' in result.stderr
    assert not osp.exists(osp.join(root, 'img_dir', 'protected'))


def test_instance_dataset_per_instance_prompts(tmp_path, checkpoint):
    data_path('nwpu_vhr10')
    out = tmp_path / 'nwpu'
    run([
        NWPU_CFG, checkpoint, '--out-dir', out, '--limit', 3, '--prompt',
        'per-instance'
    ])
    records = [json.loads(line) for line in open(out / 'manifest.jsonl')]
    assert len(records) == 3
    assert all(r['status'] == 'protected' for r in records)
    coco = json.load(open(out / 'annotations' / 'NWPU_instances_train.json'))
    assert coco['images'][0]['file_name'].endswith('.png')


@pytest.mark.slow
def test_two_process_sharding_covers_every_image_once(tmp_path, checkpoint):
    out = tmp_path / 'dist'
    stdout = run([CAMVID_CFG, checkpoint, '--out-dir', out, '--limit', 9],
                 processes=2)
    assert 'protected 9/9 images' in stdout
    files = [json.loads(line)['file'] for line in open(out / 'manifest.jsonl')]
    assert len(files) == len(set(files)) == 9
    pngs = os.listdir(out / 'img_dir' / 'train')
    assert sorted(pngs) == sorted(osp.basename(f) for f in files)


def test_everything_mode_on_unlabelled_images(tmp_path, checkpoint):
    data_path('camvid')
    out = tmp_path / 'everything'
    stdout = run([
        CAMVID_CFG, checkpoint, '--out-dir', out, '--limit', 1, '--prompt',
        'everything'
    ])
    (record, ) = [json.loads(line) for line in open(out / 'manifest.jsonl')]
    # A random micro SAM may find no confident mask: then the image is
    # copied unchanged; either way it is reported.
    assert record['status'] in ('protected', 'copied_empty_mask')
    assert 'images' in stdout


def test_baseline_method_with_options_fills_dataset_defaults(tmp_path):
    data_path('camvid')
    out = tmp_path / 'em'
    stdout = run([
        CAMVID_CFG, '--out-dir', out, '--limit', 2, '--method', 'em',
        '--method-options', 'rounds=1', 'train_steps=1', 'steps=1',
        '--batch-size', 2
    ])
    assert 'protected 2/2 images' in stdout
    summary = json.load(open(out / 'summary.json'))
    assert summary['budget_ok'] and summary['method'] == 'em'
    assert summary['method_options'] == dict(rounds=1, train_steps=1, steps=1)


def test_bad_method_options_and_prompts_are_refused(tmp_path, checkpoint,
                                                    monkeypatch):
    data_path('camvid')
    spec = importlib.util.spec_from_file_location('protect_tool', PROTECT)
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    out = str(tmp_path / 'out')
    cases = [
        (['--method', 'ar', '--method-options', 'nonsense=1'], 'nonsense'),
        (['--method', 'synper', '--prompt', 'per-class'], '--prompt union'),
        # The options reach the generator's constructor.
        ([checkpoint, '--method-options', 'precision=fp64'], 'fp64'),
        # A device torch cannot parse is a one-line error, not a traceback.
        ([checkpoint, '--method-options', 'device=bogus'], 'bogus'),
    ]
    for args, message in cases:
        monkeypatch.setattr(sys, 'argv', ['protect.py', CAMVID_CFG] + args +
                            ['--out-dir', out, '--limit', '1'])
        with pytest.raises(SystemExit, match=message):
            tool.main()
        assert not osp.exists(osp.join(out, 'manifest.jsonl'))
