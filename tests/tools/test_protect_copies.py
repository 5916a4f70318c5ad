"""tools/protect.py never overwrites, mixes or silently breaks a copy: a
non-empty folder needs --resume, a resume needs the same settings, budgets
follow one rule, arguments are checked first, images that cannot be
protected (too large, unreadable) are reported and the exit status says so
(issue 11, items 2, 3, 4, 5, 7 and 8)."""
import argparse
import glob
import hashlib
import importlib.util
import json
import os
import os.path as osp
import shutil
import struct
import subprocess
import sys
import zlib

import pytest

from mmunseg.models.budget import BUDGET_PRESETS, format_eps
from mmunseg.protect.manifest import (EXIT_FAILED, EXIT_FAILED_AND_OVER_BUDGET,
                                      EXIT_OVER_BUDGET, exit_status, summarize)
from mmunseg.protect.options import parse_budget, parse_size
from tests.utils import REPO_ROOT, data_path, save_micro_generator

PROTECT = osp.join(REPO_ROOT, 'tools', 'protect.py')
CAMVID_CFG = osp.join(REPO_ROOT, 'configs', '_base_', 'datasets', 'camvid.py')


def load_tool():
    spec = importlib.util.spec_from_file_location('protect_tool', PROTECT)
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    return tool


TOOL = load_tool()


def small_camvid(folder, count=3):
    """``count`` real CamVid training images and labels under ``folder``,
    and a dataset config reading them."""
    root = data_path('camvid')
    names = sorted(
        osp.basename(p)[:-4]
        for p in glob.glob(osp.join(root, 'img_dir', 'train', '*.jpg')))
    for name in names[:count]:
        for sub, ext in (('img_dir', '.jpg'), ('ann_dir', '.png')):
            os.makedirs(folder / sub / 'train', exist_ok=True)
            shutil.copy(
                osp.join(root, sub, 'train', name + ext),
                folder / sub / 'train' / (name + ext))
    config = folder / 'dataset.py'
    config.write_text(f'_base_ = [{CAMVID_CFG!r}]\n'
                      'train_dataloader = dict(dataset=dict('
                      f'data_root={str(folder)!r}))\n')
    return str(config), names[:count]


def tree(folder):
    """Path -> sha256 of every file under ``folder``."""
    files = {}
    for path in glob.glob(osp.join(folder, '**', '*'), recursive=True):
        if osp.isfile(path):
            with open(path, 'rb') as f:
                files[osp.relpath(path, folder)] = hashlib.sha256(
                    f.read()).hexdigest()
    return files


def protect(*args):
    """tools/protect.py in this process; its exit status."""
    return TOOL.main([str(a) for a in args])


def refused(capsys, *args):
    """The message of a run that stops with an error before writing."""
    with pytest.raises(SystemExit) as error:
        protect(*args)
    assert error.value.code not in (0, None)
    return str(error.value.code) + capsys.readouterr().err


@pytest.fixture
def dataset(tmp_path):
    return small_camvid(tmp_path / 'camvid')


@pytest.fixture(scope='module')
def checkpoints(tmp_path_factory):
    folder = tmp_path_factory.mktemp('generators')
    return (save_micro_generator(folder / 'a.pth', seed=0),
            save_micro_generator(folder / 'b.pth', seed=1))


def test_a_non_empty_folder_is_never_written_without_resume(
        dataset, tmp_path, capsys):
    config, _ = dataset
    out = tmp_path / 'out'
    # What an earlier, unrelated run left: no manifest, no settings.
    os.makedirs(out / 'ann_dir' / 'train')
    (out / 'ann_dir' / 'train' / 'x.png').write_bytes(b'annotation')
    (out / 'summary.json').write_text('{}')
    (out / 'protected_dataset.py').write_text('# mine\n')
    before = tree(str(out))
    message = refused(capsys, config, '--method', 'uniform', '--out-dir', out)
    assert 'not empty' in message and '--resume' in message
    assert tree(str(out)) == before
    # --resume cannot tell what made it: refused as well.
    message = refused(capsys, config, '--method', 'uniform', '--out-dir', out,
                      '--resume')
    assert 'protect_settings.json' in message
    assert tree(str(out)) == before


def test_resume_with_other_settings_is_refused_naming_them(
        dataset, tmp_path, capsys, checkpoints):
    config, _ = dataset
    first, other = checkpoints
    out = tmp_path / 'out'
    base = [config, first, '--out-dir', out, '--limit', 2]
    assert protect(*base) == 0
    before = tree(str(out))
    cases = [
        (['--eps-object', '4/255'], 'eps_object 8/255 (this run: 4/255)'),
        (['--format', 'jpg'], 'format "png" (this run: "jpg")'),
        (['--prompt', 'box'], 'prompt "union" (this run: "box")'),
        (['--no-antialias'], 'method_options'),
        (['--method-options', 'forward_batch=2'], 'forward_batch'),
        (['--save-noise'], 'save_noise'),
    ]
    for extra, difference in cases:
        assert difference in refused(capsys, *base, '--resume', *extra)
        assert tree(str(out)) == before
    # Another generator file: another copy.
    message = refused(capsys, config, other, '--out-dir', out, '--resume')
    assert 'checkpoint_sha256' in message
    message = refused(capsys, config, '--method', 'uniform', '--out-dir', out,
                      '--resume')
    assert 'method "UnSegGenerator" (this run: "UniformNoise")' in message
    assert tree(str(out)) == before
    # The same settings continue the copy, whatever the batch size.
    assert protect(*base[:-1], 3, '--resume', '--batch-size', 1) == 0
    summary = json.load(open(out / 'summary.json'))
    assert summary['counts'] == {'protected': 3}
    assert len(os.listdir(out / 'img_dir' / 'train')) == 3


def test_seeded_method_settings_include_the_seed(dataset, tmp_path, capsys):
    config, _ = dataset
    out = tmp_path / 'uniform'
    assert protect(config, '--method', 'uniform', '--out-dir', out, '--limit',
                   1) == 0
    settings = json.load(open(out / 'protect_settings.json'))
    assert settings['method_options'] == {'seed': 0}
    message = refused(capsys, config, '--method', 'uniform', '--out-dir', out,
                      '--resume', '--seed', 1)
    assert 'method_options {"seed": 0} (this run: {"seed": 1})' in message


# EM with one surrogate for all images, or for groups of two images.
@pytest.mark.parametrize('option', ['reset_surrogate=False', 'batch_size=2'])
def test_a_method_that_learns_in_order_cannot_resume(dataset, tmp_path, capsys,
                                                     option):
    config, _ = dataset
    out = tmp_path / 'em'
    args = [
        config, '--method', 'em', '--out-dir', out, '--limit', 1,
        '--method-options', 'rounds=1', 'train_steps=1', 'steps=1',
        'craft_stride=4', option
    ]
    assert protect(*args) == 0
    assert 'learns across images in order' in refused(capsys, *args,
                                                      '--resume')


@pytest.mark.parametrize('text,levels', [('8', 8), ('1', 1), ('0', 0),
                                         ('255', 255), ('8/255', 8),
                                         ('5.5/255', 5.5), ('.5/255', 0.5),
                                         ('1/32', 255 / 32)])
def test_budgets_follow_one_rule(text, levels):
    assert parse_budget(text) * 255 == pytest.approx(levels, abs=1e-9)
    assert parse_budget(format_eps(parse_budget(text))) == pytest.approx(
        parse_budget(text), abs=1e-15)


@pytest.mark.parametrize('text,message',
                         [('0.03', 'is ambiguous'),
                          ('1.0', 'Write 1.0/255 for 1.0 grey levels'),
                          ('1e-2', 'not a budget'), ('eight', 'not a budget'),
                          ('300', '300 grey levels, more than the 255'),
                          ('300/255', 'more than the 255'),
                          ('-2', 'is negative'), ('-2/255', 'is negative'),
                          ('8/0', 'divides by zero')])
def test_ambiguous_or_impossible_budgets_are_refused(text, message):
    with pytest.raises(argparse.ArgumentTypeError, match=message):
        parse_budget(text)


def test_every_budget_option_is_explained_in_help(capsys):
    with pytest.raises(SystemExit):
        TOOL.build_parser().parse_args(['--help'])
    text = ' '.join(capsys.readouterr().out.split())
    for option in ('--budget', '--eps-object', '--eps-background'):
        assert option in text
    assert 'a whole number N is N grey levels' in text
    assert '5.5/255' in text and 'exit status' in text


def test_a_whole_number_budget_is_grey_levels(dataset, tmp_path):
    config, _ = dataset
    out = tmp_path / 'out'
    assert protect(config, '--method', 'uniform', '--out-dir', out, '--limit',
                   1, '--eps-object', 1, '--eps-background', '0') == 0
    summary = json.load(open(out / 'summary.json'))
    assert summary['allowed_object'] == 1 and summary['linf_object'] == 1
    assert summary['allowed_background'] == 0
    assert summary['linf_background'] == 0
    assert summary['psnr']['min'] > 40


@pytest.mark.parametrize('option,value,message',
                         [('--limit', '-1', '-1 is not >= 1'),
                          ('--limit', '0', '0 is not >= 1'),
                          ('--batch-size', '0', '0 is not >= 1'),
                          ('--vis', '-2', '-2 is not >= 0'),
                          ('--jpeg-quality', '500', '500 is not in [0, 100]'),
                          ('--seed', '-1', '-1 is not >= 0'),
                          ('--max-memory', 'lots', 'not a memory size'),
                          ('--device', 'bogus', "'bogus' is not a device"),
                          ('--splits', 'bogus', "invalid choice: 'bogus'"),
                          ('--splits', 'test', 'has no test_dataloader')])
def test_arguments_are_checked_before_anything_runs(tmp_path, capsys, option,
                                                    value, message):
    # CamVid without a test split.
    config = tmp_path / 'camvid.py'
    config.write_text(f'_base_ = [{CAMVID_CFG!r}]\ntest_dataloader = None\n')
    out = tmp_path / 'out'
    with pytest.raises(SystemExit) as error:
        protect(config, '--method', 'uniform', '--out-dir', out, option, value)
    assert error.value.code == 2
    # The last line (after argparse's usage) names the option and problem.
    error_line = capsys.readouterr().err.strip().splitlines()[-1]
    assert option in error_line and message in error_line
    assert not out.exists()


def test_memory_sizes():
    assert parse_size('8G') == 8 * 2**30
    assert parse_size('512MiB') == 512 * 2**20
    assert parse_size('1.5gb') == 3 * 2**29
    assert parse_size('4096') == 4096
    for text in ('0', '-1G', '8X', ''):
        with pytest.raises(argparse.ArgumentTypeError):
            parse_size(text)


def write_png(path, width, height, channels):
    """A valid 8-bit PNG of one colour, streamed row by row: a 144 MP file
    in about a second and a few MB of memory."""
    kind = {1: 0, 3: 2}[channels]

    def chunk(tag, data):
        body = tag + data
        return struct.pack('>I', len(data)) + body + struct.pack(
            '>I', zlib.crc32(body))

    compressor = zlib.compressobj(1)
    row = b'\x00' + bytes(width * channels)
    data = b''.join(compressor.compress(row) for _ in range(height))
    data += compressor.flush()
    with open(path, 'wb') as f:
        f.write(b'\x89PNG\r\n\x1a\n')
        f.write(
            chunk(b'IHDR',
                  struct.pack('>IIBBBBB', width, height, 8, kind, 0, 0, 0)))
        f.write(chunk(b'IDAT', data))
        f.write(chunk(b'IEND', b''))


def test_a_huge_image_fails_alone_and_the_job_goes_on(dataset, tmp_path):
    config, names = dataset
    root = osp.dirname(config)
    # 12000 x 12000 = 144 MP, under PIL's 179 MP limit: tens of GB to
    # protect, refused from its header without being decoded.
    write_png(osp.join(root, 'img_dir', 'train', 'huge.jpg'), 12000, 12000, 3)
    write_png(osp.join(root, 'ann_dir', 'train', 'huge.png'), 12000, 12000, 1)
    out = tmp_path / 'out'
    result = subprocess.run([
        sys.executable, PROTECT, config, '--method', 'uniform', '--out-dir',
        out, '--max-memory', '2G'
    ],
                            env=dict(os.environ, PYTHONPATH=REPO_ROOT),
                            capture_output=True,
                            text=True,
                            timeout=600)
    assert result.returncode == EXIT_FAILED, result.stderr[-2000:]
    assert (f'protected {len(names)}/{len(names) + 1} images '
            '(1 failed: 1 too large)') in result.stdout
    assert 'huge.jpg' in result.stdout and '12000x12000' in result.stdout
    assert 'exit status 3' in result.stderr
    records = [json.loads(line) for line in open(out / 'manifest.jsonl')]
    (huge, ) = [r for r in records if r['status'] == 'failed']
    assert huge['reason'] == 'too_large' and 'GiB' in huge['error']
    assert not (out / 'img_dir' / 'train' / 'huge.png').exists()


def test_exit_status_tells_failed_and_over_budget_images(dataset, tmp_path):
    config, names = dataset
    root = osp.dirname(config)
    with open(osp.join(root, 'img_dir', 'train', 'broken.jpg'), 'wb') as f:
        f.write(b'\xff\xd8 not a jpeg')
    shutil.copy(
        osp.join(root, 'ann_dir', 'train', names[0] + '.png'),
        osp.join(root, 'ann_dir', 'train', 'broken.png'))
    out = tmp_path / 'out'
    # JPEG re-compression at a 2-level background budget exceeds it.
    assert protect(config, '--method', 'uniform', '--out-dir', out, '--format',
                   'jpg') == EXIT_FAILED_AND_OVER_BUDGET
    summary = json.load(open(out / 'summary.json'))
    assert summary['counts'] == {'protected': len(names), 'failed': 1}
    assert summary['failed_reasons'] == {'unreadable_image': 1}
    assert not summary['budget_ok']


@pytest.mark.parametrize('records,status', [
    ([], 0),
    ([dict(file='a', status='protected', linf_object=8)], 0),
    ([dict(file='a', status='failed', reason='too_large')], EXIT_FAILED),
    ([dict(file='a', status='protected', linf_object=9)], EXIT_OVER_BUDGET),
    ([
        dict(file='a', status='failed'),
        dict(file='b', status='protected', linf_background=3)
    ], EXIT_FAILED_AND_OVER_BUDGET),
])
def test_exit_status_codes(records, status):
    assert exit_status(summarize(records, BUDGET_PRESETS['paper'])) == status
