"""Nothing read from a file chooses which code runs: crafted checkpoints,
configs the tools write and read back, manifests and stored noise
(issue 11, items 1 and 8)."""
import glob
import hashlib
import json
import os
import os.path as osp
import re
import subprocess
import sys
from collections import Counter

import numpy as np
import pytest
import torch
from mmengine.config import Config

from mmunseg.datasets import AddUnlearnableNoise, PartiallyProtectedDataset
from mmunseg.protect import UnSegGenerator, load_split, write_config_override
from mmunseg.protect.methods import generator_config_from_checkpoint
from mmunseg.protect.safe_config import (UnsafeConfig, check_own_types,
                                         parse_config_text)
from mmunseg.registry import MODELS
from tests.utils import MICRO_ARCH, REPO_ROOT, data_path

PROTECT = osp.join(REPO_ROOT, 'tools', 'protect.py')
CAMVID_CFG = osp.join(REPO_ROOT, 'configs', '_base_', 'datasets', 'camvid.py')
GENERATOR = dict(type='SAMNoiseGenerator', arch=MICRO_ARCH, img_size=128)


def crafted(path, meta):
    """A checkpoint of strings and a tensor: it passes weights_only=True."""
    torch.save(dict(meta=meta, state_dict=dict(x=torch.zeros(1))), path)
    return str(path)


def tree(folder):
    digest = hashlib.sha256()
    for path in sorted(glob.glob(osp.join(folder, '**', '*'), recursive=True)):
        digest.update(path.encode())
        if osp.isfile(path):
            with open(path, 'rb') as f:
                digest.update(f.read())
    return digest.hexdigest()


def protect_with(checkpoint, out):
    return subprocess.run([
        sys.executable, PROTECT, CAMVID_CFG, checkpoint, '--out-dir', out,
        '--limit', '1'
    ],
                          env=dict(os.environ, PYTHONPATH=REPO_ROOT),
                          capture_output=True,
                          text=True,
                          timeout=600)


def test_a_checkpoint_cannot_make_protect_run_code(tmp_path):
    data_path('camvid')
    # torch.hub.load on a local folder imports its hubconf.py.
    hub = tmp_path / 'hub'
    hub.mkdir()
    marker = tmp_path / 'hubconf_ran'
    (hub / 'hubconf.py').write_text(f'open({str(marker)!r}, "w").close()\n'
                                    'def x():\n    return None\n')
    # logging.basicConfig(filemode='w') truncates the file it is given.
    victim = tmp_path / 'precious.txt'
    victim.write_text('keep me')
    cases = {
        'hub.pth':
        dict(
            generator_cfg=dict(
                type='torch.hub.load',
                repo_or_dir=str(hub),
                model='x',
                source='local')),
        'logging.pth':
        dict(
            generator_cfg=dict(
                type='logging.basicConfig',
                filename=str(victim),
                filemode='w',
                force=True)),
        # The same through the config text of a training checkpoint.
        'text.pth':
        dict(cfg=f'model = dict(generator=dict(type="torch.hub.load", '
             f'repo_or_dir={str(hub)!r}, model="x", source="local"))\n'),
        # A dotted path inside our own package reaches anything it imports.
        'dotted.pth':
        dict(
            generator_cfg=dict(
                type='mmunseg.utils.checkpoint.torch.hub.load',
                repo_or_dir=str(hub),
                model='x',
                source='local')),
    }
    for name, meta in cases.items():
        checkpoint = crafted(tmp_path / name, meta)
        before = tree(str(tmp_path))
        out = tmp_path / f'out_{name}'
        result = protect_with(checkpoint, out)
        assert result.returncode == 1, result.stderr[-2000:]
        assert name in result.stderr
        assert 'not a module registered in mmunseg' in result.stderr
        assert not marker.exists() and not out.exists()
        assert victim.read_text() == 'keep me'
        assert tree(str(tmp_path)) == before


@pytest.mark.parametrize(
    'cfg,message',
    [
        (dict(GENERATOR, _scope_='mmseg'), "_scope_ is 'mmseg'"),
        (dict(type='mmseg.EncoderDecoder'), 'mmseg.EncoderDecoder'),
        # MMEngine's parent registries: not ours either.
        (dict(GENERATOR, init_cfg=dict(type='Pretrained', checkpoint='x')),
         "cfg.init_cfg.type is 'Pretrained'"),
        (dict(GENERATOR, parts=[dict(type='os.system')
                                ]), "cfg.parts[0].type is 'os.system'"),
        # An allow-listed class unpickles as itself, not as a name.
        (dict(type=Counter), 'Counter'),
        # Ours, but not a model.
        (dict(type='SafeResumeHook'), 'not a registered mmunseg model'),
    ])
def test_only_our_registered_types_pass(cfg, message):
    with pytest.raises(UnsafeConfig, match=re.escape(message)) as error:
        check_own_types(cfg, 'file.pth', top_level=MODELS)
    assert 'file.pth' in str(error.value)


def test_our_generators_pass_in_either_spelling():
    check_own_types(GENERATOR, 'file.pth', top_level=MODELS)
    check_own_types(
        dict(GENERATOR, type='mmunseg.SAMNoiseGenerator', _scope_='mmunseg'),
        'file.pth',
        top_level=MODELS)


def test_config_text_in_a_checkpoint_is_never_executed(tmp_path):
    marker = tmp_path / 'ran'
    for text in (f'import os\nos.system("touch {marker}")\n',
                 f'model = open({str(marker)!r}, "w")\n'):
        with pytest.raises(ValueError, match='e.pth'):
            generator_config_from_checkpoint(
                dict(meta=dict(cfg=text)), 'e.pth')
    assert not marker.exists()
    assert generator_config_from_checkpoint(
        dict(meta=dict(cfg=f'model = dict(generator={GENERATOR!r})\n')),
        'e.pth') == GENERATOR
    for meta in ('text', dict(generator_cfg='SAMNoiseGenerator')):
        with pytest.raises(ValueError, match='e.pth'):
            generator_config_from_checkpoint(dict(meta=meta), 'e.pth')


def test_a_checkpoint_config_must_build_a_generator(tmp_path):
    checkpoint = crafted(
        tmp_path / 'surrogate.pth',
        dict(
            generator_cfg=dict(
                type='SAMSurrogate', arch=MICRO_ARCH, img_size=64)))
    with pytest.raises(ValueError, match='not a noise generator'):
        UnSegGenerator(checkpoint)


def test_the_written_dataset_config_is_data_whatever_the_paths(
        tmp_path, monkeypatch):
    data_path('camvid')
    cfg = Config.fromfile(CAMVID_CFG)
    splits = load_split(cfg, 'train')
    monkeypatch.chdir(tmp_path)
    marker = tmp_path / 'ran'
    # A folder name that would close the string and run a statement if it
    # were pasted into the config text (and an " = " that formatting the
    # text must not touch).
    out = tmp_path / "x = y')\nopen('ran', 'w')\n#"
    out.mkdir()
    path = write_config_override(CAMVID_CFG, splits, str(out), 'png')
    with open(path) as f:
        text = f.read()
    assert parse_config_text(
        text)['train_dataloader']['dataset']['data_root'] == str(out)
    protected = Config.fromfile(path)
    assert protected.train_dataloader.dataset.data_root == str(out)
    assert not marker.exists()


def test_a_manifest_cannot_point_outside_its_copy(tmp_path):
    root = data_path('camvid')
    protected = tmp_path / 'copy'
    protected.mkdir()
    source = sorted(glob.glob(osp.join(root, 'img_dir', 'train', '*.jpg')))[0]
    (protected / 'manifest.jsonl').write_text(
        json.dumps(
            dict(
                file='../../elsewhere.png', source=source, status='protected'))
        + '\n')
    clean = dict(
        type='mmseg.BaseSegDataset',
        data_root=root,
        img_suffix='.jpg',
        seg_map_suffix='.png',
        data_prefix=dict(
            img_path='img_dir/train', seg_map_path='ann_dir/train'),
        pipeline=[])
    with pytest.raises(ValueError, match='points outside'):
        PartiallyProtectedDataset(clean, str(protected))


def test_browsing_a_copy_never_runs_the_config_its_summary_names(tmp_path):
    data_path('camvid')
    out = tmp_path / 'out'
    env = dict(os.environ, PYTHONPATH=REPO_ROOT)
    subprocess.run([
        sys.executable, PROTECT, CAMVID_CFG, '--method', 'uniform',
        '--out-dir', out, '--limit', '1'
    ],
                   env=env,
                   check=True,
                   capture_output=True)
    marker = tmp_path / 'ran'
    evil = tmp_path / 'evil.py'
    evil.write_text(f'open({str(marker)!r}, "w").close()\n')
    summary = json.load(open(out / 'summary.json'))
    summary['source_config'] = str(evil)
    (out / 'summary.json').write_text(json.dumps(summary))
    result = subprocess.run([
        sys.executable,
        osp.join(REPO_ROOT, 'tools', 'analysis_tools', 'browse_protection.py'),
        CAMVID_CFG,
        str(out), '--num', '1'
    ],
                            env=env,
                            capture_output=True,
                            text=True)
    assert result.returncode == 0, result.stderr[-2000:]
    assert not marker.exists()
    assert len(os.listdir(out / 'vis')) == 1


def test_a_corrupt_stored_noise_names_its_file(tmp_path):
    noise_root = tmp_path / 'noise'
    (noise_root / 'img').mkdir(parents=True)
    image = np.zeros((4, 5, 3), np.uint8)
    transform = AddUnlearnableNoise(str(noise_root), str(tmp_path))
    path = noise_root / 'img' / 'a.jpg.npz'
    for content in (b'not an npz', b'PK\x03\x04 truncated zip'):
        path.write_bytes(content)
        with pytest.raises(ValueError, match='a.jpg.npz'):
            transform(dict(img=image, img_path=str(tmp_path / 'img/a.jpg')))
    np.savez(path, other=np.zeros(1))
    with pytest.raises(ValueError, match='a.jpg.npz'):
        transform(dict(img=image, img_path=str(tmp_path / 'img/a.jpg')))
    np.savez(path, delta=np.zeros((4, 5, 3), np.float64))
    with pytest.raises(ValueError, match='a.jpg.npz.*float64'):
        transform(dict(img=image, img_path=str(tmp_path / 'img/a.jpg')))
