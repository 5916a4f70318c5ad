"""tools/setup_env.sh without the 15-minute build: a stub interpreter and pip
record their calls and fake the mmcv sdist, its wheel and the imports."""
import os
import os.path as osp
import stat
import subprocess

import pytest

from tests.utils import REPO_ROOT

SCRIPT = osp.join(REPO_ROOT, 'tools', 'setup_env.sh')

# Stands for the base python3 and, copied by "-m venv", for the venv's
# interpreter. Every call is logged with its working directory.
STUB = r'''#!/usr/bin/env bash
printf '%s :: %s\n' "$PWD" "$*" >> "$STUB_LOG"
if [ "$1" = -m ] && [ "$2" = venv ]; then
  mkdir -p "$3/bin" && cp "$0" "$3/bin/python" && exit 0
fi
if [ "$1" = -c ]; then
  case $2 in
    *torch.__version__*) echo 2.14.1 ;;
    *version_info*) echo cp311 ;;
  esac
  exit 0
fi
if [ "$1" = -m ] && [ "$2" = pip ]; then
  sub=$3
  dest=
  while [ $# -gt 0 ]; do
    case $1 in -d|-w) dest=$2 ;; esac
    last=$1
    shift
  done
  case $sub in
    download)
      tmp=$(mktemp -d)
      mkdir -p "$tmp/mmcv-2.1.0" "$dest"
      echo "extra_compile_args = ['-std=c++17']" > "$tmp/mmcv-2.1.0/setup.py"
      tar -czf "$dest/mmcv-2.1.0.tar.gz" -C "$tmp" mmcv-2.1.0 ;;
    wheel)
      [ -z "${STUB_FAIL_WHEEL:-}" ] || exit 7
      grep -q "c++20" "$last/setup.py" || exit 3
      mkdir -p "$dest"
      touch "$dest/mmcv-2.1.0-cp311-cp311-linux_x86_64.whl" ;;
  esac
  exit 0
fi
exit 0
'''


@pytest.fixture
def stub(tmp_path):
    path = tmp_path / 'bin' / 'python3'
    path.parent.mkdir()
    path.write_text(STUB)
    path.chmod(path.stat().st_mode | stat.S_IEXEC)
    return path


def run_setup(tmp_path, stub, venv, cwd, **extra):
    log = tmp_path / 'calls.log'
    env = dict(
        os.environ,
        BASE_PYTHON=str(stub),
        STUB_LOG=str(log),
        HOME=str(tmp_path / 'home'),
        MMUNSEG_CACHE=str(tmp_path / 'cache'),
        **extra)
    env.pop('MMUNSEG_VENV', None)
    result = subprocess.run(['bash', SCRIPT, venv],
                            cwd=cwd,
                            env=env,
                            capture_output=True,
                            text=True)
    calls = log.read_text().splitlines() if log.exists() else []
    return result, calls


@pytest.mark.parametrize('venv', ['.venv', 'envs/with space/.venv'])
def test_relative_venv_from_another_directory(tmp_path, stub, venv):
    """A relative venv path is taken from the caller's directory and still
    works after the script enters the unpacked sdist (the fresh-machine
    bug: `.venv/bin/python: No such file or directory`)."""
    cwd = tmp_path / 'work dir'
    cwd.mkdir()
    result, calls = run_setup(tmp_path, stub, venv, cwd)
    assert result.returncode == 0, result.stderr
    venv_dir = cwd / venv
    stamps = [n for n in os.listdir(venv_dir) if n.startswith('.mmunseg-env')]
    assert len(stamps) == 1
    wheels = list((tmp_path / 'cache' / 'wheels').rglob('mmcv-2.1.0-*.whl'))
    assert len(wheels) == 1
    # The sdist came through pip (so a mirror or wheelhouse applies), with
    # the digest pinned in requirements/mmcv.txt, never from a URL.
    downloads = [c for c in calls if ' -m pip download ' in c]
    assert len(downloads) == 1
    assert 'requirements/mmcv.txt' in downloads[0]
    assert '--no-binary :all:' in downloads[0]
    assert '://' not in '\n'.join(calls)
    # The wheel was built from the patched sdist by the venv's interpreter.
    wheel_calls = [c for c in calls if ' -m pip wheel ' in c]
    assert len(wheel_calls) == 1 and wheel_calls[0].endswith('mmcv-2.1.0')
    assert 'ready: ' + str(venv_dir) in result.stderr

    # A second run reuses the stamped environment: no pip install of torch.
    result, calls_after = run_setup(tmp_path, stub, venv, cwd)
    assert result.returncode == 0, result.stderr
    assert 'reusing' in result.stderr
    new = calls_after[len(calls):]
    assert not any('requirements/torch.txt' in c for c in new)


def test_failed_build_is_never_taken_for_an_environment(tmp_path, stub):
    cwd = tmp_path / 'repo'
    cwd.mkdir()
    result, _ = run_setup(tmp_path, stub, '.venv', cwd, STUB_FAIL_WHEEL='1')
    assert result.returncode != 0
    failed = [line for line in result.stderr.splitlines() if 'FAILED' in line]
    assert len(failed) == 1 and 'building mmcv' in failed[0]
    venv_dir = cwd / '.venv'
    assert not any(n.startswith('.mmunseg-env') for n in os.listdir(venv_dir))
    assert not list((tmp_path / 'cache').rglob('*.whl'))
    # The next run starts the environment again and finishes it.
    result, calls = run_setup(tmp_path, stub, '.venv', cwd)
    assert result.returncode == 0, result.stderr
    assert 'reusing' not in result.stderr
    assert any(n.startswith('.mmunseg-env') for n in os.listdir(venv_dir))


def test_cached_wheel_skips_the_build(tmp_path, stub):
    cwd = tmp_path / 'repo'
    cwd.mkdir()
    result, first = run_setup(tmp_path, stub, 'a', cwd)
    assert result.returncode == 0, result.stderr
    result, calls = run_setup(tmp_path, stub, 'b', cwd)
    assert result.returncode == 0, result.stderr
    assert 'using the cached mmcv wheel' in result.stderr
    assert not any(' -m pip wheel ' in c or ' -m pip download ' in c
                   for c in calls[len(first):])
