"""The files of a protected copy that training reads back: the manifest
that maps each source image to its copy, and the perturbations that
``tools/protect.py --save-noise`` stores. The writer
(:mod:`mmunseg.protect`) and the readers (:class:`PartiallyProtectedDataset`,
``AddUnlearnableNoise``) share these definitions, so the layout is written
down once."""
import io
import json
import os
import os.path as osp
import zipfile
import zlib
from typing import Dict

import numpy as np

from mmunseg.utils.atomic_files import PathLike, write_bytes_atomic

#: The copy's manifest, in its root: one JSON record per image.
MANIFEST_FILE = 'manifest.jsonl'
#: Manifest statuses whose output file is a complete image.
WRITTEN = ('protected', 'copied_empty_mask')
#: The folder of the stored perturbations, in the copy's root.
NOISE_DIR = 'noise'


def load_manifest(path: PathLike) -> Dict[str, dict]:
    """Read a JSONL manifest.

    Args:
        path (str | os.PathLike): Manifest file.

    Returns:
        dict[str, dict]: Records keyed by their ``file``, the last record of
        a file winning (a retried image). A partial last line without a
        newline (a killed job) is ignored; blank lines are skipped.

    Raises:
        ValueError: A complete line is not a JSON object with a str
            ``file``; the message gives the path and line number.
    """
    path = os.fspath(path)
    with open(path, 'rb') as f:
        lines = f.read().split(b'\n')
    # The last element follows the last newline: empty or a partial line.
    records = {}
    for lineno, line in enumerate(lines[:-1], start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except ValueError as err:
            raise ValueError(
                f'{path}:{lineno}: corrupt manifest line ({err})') from None
        if not isinstance(record, dict) or not isinstance(
                record.get('file'), str):
            raise ValueError(f'{path}:{lineno}: manifest line is not a record '
                             'with a str "file"')
        records[record['file']] = record
    return records


def noise_file(img_path, data_root, noise_root):
    """Where the perturbation of a source image is stored.

    Args:
        img_path (str): The source image, under ``data_root``.
        data_root (str): The dataset root the copy mirrors.
        noise_root (str): ``<copy>/noise``.

    Returns:
        str: ``noise_root/<img_path relative to data_root>.npz`` (the
        image's own suffix kept: ``a/b.jpg`` -> ``a/b.jpg.npz``).
    """
    relative = osp.relpath(osp.abspath(img_path), osp.abspath(data_root))
    return osp.join(noise_root, relative + '.npz')


def save_perturbation(path, delta):
    """Write an int8 (H, W, 3) RGB perturbation in grey levels, atomically."""
    buffer = io.BytesIO()
    np.savez_compressed(buffer, delta=delta.astype(np.int8))
    write_bytes_atomic(path, buffer.getvalue())


def read_perturbation(path):
    """The stored int8 perturbation of ``path`` as int16, (H, W, 3) RGB; a
    file that is not such a perturbation is an error naming it."""
    try:
        with np.load(path, allow_pickle=False) as data:
            delta = data['delta']
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile,
            zlib.error) as error:
        raise ValueError(f'{path}: not a stored perturbation of '
                         f'tools/protect.py --save-noise (an .npz with '
                         f'an int8 "delta"): {error}') from None
    if delta.dtype != np.int8 or delta.ndim != 3:
        raise ValueError(f'{path}: the stored perturbation is '
                         f'{delta.dtype} of shape {delta.shape}, expected '
                         'int8 (H, W, 3)')
    return delta.astype(np.int16)
