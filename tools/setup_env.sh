#!/usr/bin/env bash
# Create (or reuse) the virtual environment with the verified stack and install mmunseg.
#
#   tools/setup_env.sh [VENV_DIR]
#   tools/setup_env.sh --key      # print the requirements' hash and exit
#
# VENV_DIR defaults to $MMUNSEG_VENV, else .venv in the repository; a relative path is
# taken from the current directory, and any path (spaces included) works from anywhere.
# The environment is stamped with a hash of requirements/*.txt and this script, and the
# stamp is written last: a second run with the same requirements only refreshes the
# editable install (seconds); a changed requirement, or a build that failed or was
# interrupted, rebuilds it. mmcv has no wheel for this torch, so it is built once from
# its sdist with the compiled ops and the wheel is kept in $MMUNSEG_CACHE (default
# ~/.cache/mmunseg), outside the checkout; nothing here relies on that cache existing.
# Every package comes through pip, so the user's pip configuration (index mirror, proxy,
# local wheelhouse) applies. BASE_PYTHON (default python3) makes the environment.
set -eEuo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CACHE=${MMUNSEG_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/mmunseg}
BASE_PYTHON=${BASE_PYTHON:-python3}
STEP="starting"

log() { printf '[setup_env] %s\n' "$*" >&2; }
step() { STEP=$1; log "$1"; }
# One line on failure, from the main shell only (command substitutions inherit
# the trap and would print it twice).
trap 'status=$?; [ "$BASHPID" = "$$" ] && log "FAILED while ${STEP}: \`${BASH_COMMAND}\` exited with $status; nothing was stamped, the next run starts this step again"' ERR

absolute() {  # absolute PATH -> PATH from /, without resolving links
  case $1 in
    /*) printf '%s\n' "$1" ;;
    *) printf '%s\n' "$PWD/${1#./}" ;;
  esac
}

env_key() {
  cat "$ROOT"/requirements/*.txt "$ROOT/tools/setup_env.sh" | sha256sum | cut -c1-16
}

pinned() {  # pinned NAME FILE -> version pinned with == in FILE
  sed -n "s/^$1==\([^ ;#\\]*\).*/\1/p" "$2" | head -n1
}

build_mmcv_wheel() {  # build_mmcv_wheel VENV_PY WHEELHOUSE
  local py=$1 wheelhouse=$2 version src archive built
  version=$(pinned mmcv "$ROOT/requirements/mmcv.txt")
  src=$(mktemp -d)
  step "downloading the mmcv $version sdist through pip (digest pinned in requirements/mmcv.txt)"
  # The sdist's metadata step imports torch, hence no build isolation; the pinned
  # --hash makes pip verify the archive.
  "$py" -m pip download -q --no-deps --no-binary :all: --no-build-isolation \
    -r "$ROOT/requirements/mmcv.txt" -d "$src/sdist" >&2
  archive=$(ls "$src"/sdist/mmcv-"$version".tar.gz)
  tar -xzf "$archive" -C "$src"
  # torch >= 2.10 headers need C++20; mmcv 2.1.0 hard-codes C++17.
  sed -i "s/'-std=c++17'/'-std=c++20'/g" "$src/mmcv-$version/setup.py"
  step "building mmcv $version with compiled ops (about 15 minutes on 2 cores, once)"
  MMCV_WITH_OPS=1 MAX_JOBS=${MAX_JOBS:-2} "$py" -m pip wheel -q --no-deps \
    --no-build-isolation -w "$src/dist" "$src/mmcv-$version" >&2
  # Publish atomically so a killed build never leaves a broken wheel in the cache.
  built=$(ls "$src"/dist/mmcv-*.whl)
  mkdir -p "$wheelhouse"
  cp "$built" "$wheelhouse/.$(basename "$built").part"
  mv "$wheelhouse/.$(basename "$built").part" "$wheelhouse/$(basename "$built")"
  rm -rf "$src"
}

create_env() {  # create_env VENV
  local venv=$1 py torch_version py_tag wheelhouse mmcv_version
  step "creating $venv"
  rm -rf "$venv"
  mkdir -p "$(dirname "$venv")"
  "$BASE_PYTHON" -m venv "$venv"
  py=$venv/bin/python
  step "installing pip tools and torch"
  "$py" -m pip install -q --upgrade pip 'setuptools<80' wheel
  "$py" -m pip install -q -r "$ROOT/requirements/torch.txt"

  torch_version=$("$py" -c 'import torch; print(torch.__version__.split("+")[0])')
  py_tag=$("$py" -c 'import sys; print(f"cp{sys.version_info[0]}{sys.version_info[1]}")')
  mmcv_version=$(pinned mmcv "$ROOT/requirements/mmcv.txt")
  wheelhouse=$CACHE/wheels/torch-$torch_version-$py_tag
  if ! ls "$wheelhouse"/mmcv-"$mmcv_version"-*.whl >/dev/null 2>&1; then
    build_mmcv_wheel "$py" "$wheelhouse"
  else
    log "using the cached mmcv wheel in $wheelhouse"
  fi
  step "installing mmcv and the runtime and test requirements"
  "$py" -m pip install -q --no-deps "$wheelhouse"/mmcv-"$mmcv_version"-*.whl
  # mmcv's runtime dependencies (addict, yapf, ...) come with mmengine and the rest.
  "$py" -m pip install -q -r "$ROOT/requirements/runtime.txt" -r "$ROOT/requirements/tests.txt" \
    addict packaging pyyaml
  step "checking that the environment imports"
  "$py" -c 'import mmcv.ops, mmseg.models, mmdet.models, segment_anything'
}

main() {
  if [ "${1:-}" = --key ]; then
    env_key
    return
  fi
  local venv stamp
  venv=$(absolute "${1:-${MMUNSEG_VENV:-$ROOT/.venv}}")
  stamp=$venv/.mmunseg-env-$(env_key)
  if [ -f "$stamp" ]; then
    log "reusing $venv"
  else
    create_env "$venv"
    touch "$stamp"  # last: only a finished environment is ever stamped
  fi
  # Cheap, and keeps the editable install pointing at this checkout even when the
  # environment is shared between clones (as CI does).
  step "installing mmunseg (editable) from $ROOT"
  "$venv/bin/python" -m pip install -q --no-deps --no-build-isolation -e "$ROOT"
  touch "$venv"  # marks it as in use for cache pruning
  log "ready: $venv"
}

main "$@"
