"""What a protected copy was made with, and when a run may write into a
folder.

A copy is only a copy if every image in it was made the same way. The first
run records its settings (method and options, generator checkpoint hash,
budgets, prompt, format, ...) in ``protect_settings.json`` before writing
any image; ``--resume`` continues a copy only with the same settings, and a
non-empty folder is never written into without ``--resume``.
"""
import hashlib
import json
import os
import os.path as osp

from mmunseg.models.budget import format_eps
from mmunseg.utils.atomic_files import write_bytes_atomic

#: The settings record in the output folder.
SETTINGS_FILE = 'protect_settings.json'


class OutDirError(ValueError):
    """The output folder cannot take this run without breaking a copy."""


def file_sha256(path, chunk=1 << 20):
    """Hex SHA-256 of a file's bytes (read in chunks: checkpoints are big).
    """
    digest = hashlib.sha256()
    with open(path, 'rb') as f:
        for block in iter(lambda: f.read(chunk), b''):
            digest.update(block)
    return digest.hexdigest()


def normalize(value):
    """A JSON round trip: tuples become lists, keys strings, so recorded and
    current settings compare equal exactly when their JSON does."""
    return json.loads(json.dumps(value, sort_keys=True, default=str))


def setting_differences(recorded, current):
    """``key: recorded -> current`` for every setting that differs.

    Args:
        recorded (dict): Settings read from the folder.
        current (dict): This run's settings.

    Returns:
        list[str]: One entry per differing key, sorted.
    """
    current = normalize(current)

    def shown(key, value):
        if key.startswith('eps_') and isinstance(value, float):
            return format_eps(value)
        return json.dumps(value)

    return [
        f'{key} {shown(key, recorded.get(key))} (this run: '
        f'{shown(key, current.get(key))})'
        for key in sorted(set(recorded) | set(current))
        if recorded.get(key) != current.get(key)
    ]


def check_out_dir(out_dir, settings, resume):
    """Refuse an output folder this run could overwrite or mix up.

    Args:
        out_dir (str): The output folder; it need not exist.
        settings (dict): This run's settings (JSON-serialisable).
        resume (bool): Whether ``--resume`` was given.

    Returns:
        bool: True when the folder holds a copy made with the same
        settings (to be continued), False when it is new or empty.

    Raises:
        OutDirError: The folder is not empty and ``resume`` is False, or it
            holds no settings record, or one with other settings; the
            message names the differences.
    """
    if osp.exists(out_dir) and not osp.isdir(out_dir):
        raise OutDirError(f'--out-dir {out_dir} is not a folder')
    entries = sorted(os.listdir(out_dir)) if osp.isdir(out_dir) else []
    if not entries:
        return False
    if not resume:
        raise OutDirError(
            f'--out-dir {out_dir} is not empty ({len(entries)} entries, '
            f'e.g. {entries[0]}); pass --resume to continue the copy there, '
            'or choose a new or empty folder (nothing is overwritten)')
    path = osp.join(out_dir, SETTINGS_FILE)
    if not osp.isfile(path):
        raise OutDirError(
            f'--out-dir {out_dir} is not empty and has no {SETTINGS_FILE}: '
            'it is not a copy this version of tools/protect.py made, so '
            '--resume cannot tell whether it would mix two copies; choose a '
            'new or empty folder')
    try:
        with open(path, encoding='utf-8') as f:
            recorded = json.load(f)
    except ValueError as error:
        raise OutDirError(
            f'{path}: corrupt settings record ({error})') from None
    if not isinstance(recorded, dict):
        raise OutDirError(f'{path}: the settings record is not an object')
    differences = setting_differences(recorded, settings)
    if differences:
        raise OutDirError(
            f'--resume with other settings than the copy in {out_dir} was '
            'made with would mix two copies: ' + '; '.join(differences) +
            f' (recorded in {path}); use the same settings, or a new folder')
    return True


def write_settings(out_dir, settings):
    """Record this run's settings in the output folder, atomically."""
    write_bytes_atomic(
        osp.join(out_dir, SETTINGS_FILE),
        json.dumps(normalize(settings), indent=1, sort_keys=True).encode())
