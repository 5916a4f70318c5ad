#!/usr/bin/env bash
# Create (or reuse) the virtual environment with the verified stack and install mmunseg.
#
#   tools/setup_env.sh [VENV_DIR]
#   tools/setup_env.sh --key      # print the requirements' hash and exit
#
# VENV_DIR defaults to $MMUNSEG_VENV, else .venv in the repository. The environment is
# stamped with a hash of requirements/*.txt and this script: a second run with the same
# requirements only refreshes the editable install (seconds); a changed requirement
# rebuilds it. mmcv has no wheel for this torch, so it is built once from source with its
# compiled ops and the wheel is kept in $MMUNSEG_CACHE (default ~/.cache/mmunseg),
# outside the checkout; nothing here relies on that cache already existing.
# BASE_PYTHON (default python3) is the interpreter the environment is made from.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
VENV=${MMUNSEG_VENV:-$ROOT/.venv}
[ "${1:-}" != --key ] && VENV=${1:-$VENV}
CACHE=${MMUNSEG_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/mmunseg}
BASE_PYTHON=${BASE_PYTHON:-python3}

log() { printf '[setup_env] %s\n' "$*" >&2; }

env_key() {
  cat "$ROOT"/requirements/*.txt "$ROOT/tools/setup_env.sh" | sha256sum | cut -c1-16
}

pinned() {  # pinned NAME FILE -> version pinned with == in FILE
  sed -n "s/^$1==\([^ ;#]*\).*/\1/p" "$2" | head -n1
}

build_mmcv_wheel() {  # build_mmcv_wheel VENV_PY WHEELHOUSE
  local py=$1 wheelhouse=$2 version src
  version=$(pinned mmcv "$ROOT/requirements/mmcv.txt")
  src=$(mktemp -d)
  log "building mmcv $version with compiled ops (about 15 minutes on 2 cores, once)"
  # The sdist's metadata step imports torch, so fetch the archive itself and verify the
  # digest the index publishes with it.
  local link url digest
  link=$(curl -fsSL https://pypi.org/simple/mmcv/ |
    grep -o "href=\"[^\"]*mmcv-$version.tar.gz#sha256=[0-9a-f]*\"" | head -n1)
  [ -n "$link" ] || { log "mmcv-$version.tar.gz not found on the package index"; return 1; }
  link=${link#href=\"}; link=${link%\"}
  url=${link%%#*}; digest=${link##*sha256=}
  curl -fsSL "$url" -o "$src/mmcv.tar.gz"
  echo "$digest  $src/mmcv.tar.gz" | sha256sum -c --quiet -
  tar -xzf "$src/mmcv.tar.gz" -C "$src"
  # torch >= 2.10 headers need C++20; mmcv 2.1.0 hard-codes C++17.
  sed -i "s/'-std=c++17'/'-std=c++20'/g" "$src/mmcv-$version/setup.py"
  mkdir -p "$wheelhouse"
  (cd "$src/mmcv-$version" &&
    MMCV_WITH_OPS=1 MAX_JOBS=${MAX_JOBS:-2} "$py" -m pip wheel --no-deps --no-build-isolation \
      -w "$src/dist" . >&2)
  # Publish atomically so a killed build never leaves a broken wheel in the cache.
  local built
  built=$(ls "$src"/dist/mmcv-*.whl)
  cp "$built" "$wheelhouse/.$(basename "$built").part"
  mv "$wheelhouse/.$(basename "$built").part" "$wheelhouse/$(basename "$built")"
  rm -rf "$src"
}

create_env() {
  log "creating $VENV"
  rm -rf "$VENV"
  "$BASE_PYTHON" -m venv "$VENV"
  local py=$VENV/bin/python
  "$py" -m pip install -q --upgrade pip 'setuptools<80' wheel
  "$py" -m pip install -q -r "$ROOT/requirements/torch.txt"

  local torch_version py_tag wheelhouse
  torch_version=$("$py" -c 'import torch; print(torch.__version__.split("+")[0])')
  py_tag=$("$py" -c 'import sys; print(f"cp{sys.version_info[0]}{sys.version_info[1]}")')
  wheelhouse=$CACHE/wheels/torch-$torch_version-$py_tag
  if ! ls "$wheelhouse"/mmcv-"$(pinned mmcv "$ROOT/requirements/mmcv.txt")"-*.whl >/dev/null 2>&1; then
    build_mmcv_wheel "$py" "$wheelhouse"
  fi
  "$py" -m pip install -q --no-deps "$wheelhouse"/mmcv-*.whl
  # mmcv's runtime dependencies (addict, yapf, ...) come with mmengine and the rest.
  "$py" -m pip install -q -r "$ROOT/requirements/runtime.txt" -r "$ROOT/requirements/tests.txt" \
    addict packaging pyyaml
  "$py" -c 'import mmcv.ops, mmseg.models, mmdet.models, segment_anything' ||
    { log "the environment in $VENV does not import; see the messages above"; return 1; }
}

main() {
  if [ "${1:-}" = --key ]; then
    env_key
    return
  fi
  local stamp
  stamp=$VENV/.mmunseg-env-$(env_key)
  if [ -f "$stamp" ]; then
    log "reusing $VENV"
  else
    create_env
    touch "$stamp"
  fi
  # Cheap, and keeps the editable install pointing at this checkout even when the
  # environment is shared between clones (as CI does).
  "$VENV/bin/python" -m pip install -q --no-deps --no-build-isolation -e "$ROOT"
  touch "$VENV"  # marks it as in use for cache pruning
  log "ready: $VENV"
}

main "$@"
