"""Writing files so that a reader never sees half of one: every write goes
to a temporary sibling that is renamed into place."""
import os
import os.path as osp
import shutil
from typing import Callable, Union

import cv2
import numpy as np

PathLike = Union[str, os.PathLike]

#: Output image format -> file suffix.
SUFFIXES = {'png': '.png', 'jpg': '.jpg'}


def _replace_atomic(path: PathLike, write: Callable) -> int:
    """Write a file through a temporary sibling and rename it into place.

    Readers (and a resumed job) see either the old file or the complete new
    one, never a partial file; on any failure the temporary file is removed
    and ``path`` is left as it was.

    Args:
        path (str | os.PathLike): Final file; missing parents are created.
        write (Callable): Called with the temporary binary file object; it
            writes the content.

    Returns:
        int: Size of the written file in bytes.
    """
    path = os.fspath(path)
    folder, name = osp.split(osp.abspath(path))
    os.makedirs(folder, exist_ok=True)
    tmp_path = osp.join(folder, f'.{name}.{os.getpid()}.tmp')
    try:
        with open(tmp_path, 'wb') as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
            size = f.tell()
        os.replace(tmp_path, path)
    except BaseException:
        if osp.lexists(tmp_path):
            os.remove(tmp_path)
        raise
    _fsync_dir(folder)
    return size


def _fsync_dir(folder: str) -> None:
    """Persist a rename; folders cannot be opened for this on Windows."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_bytes_atomic(path: PathLike, data: bytes) -> int:
    """Write ``data`` to ``path`` atomically (temporary file + rename).

    Args:
        path (str | os.PathLike): Final file; missing parents are created.
        data (bytes): File content.

    Returns:
        int: Number of bytes written.
    """
    return _replace_atomic(path, lambda f: f.write(data))


def write_image_atomic(path: PathLike,
                       rgb: np.ndarray,
                       fmt: str = 'png',
                       jpeg_quality: int = 95) -> int:
    """Encode an RGB image and write it atomically.

    PNG is lossless, so the saved pixels are exactly ``rgb``. JPEG is lossy:
    check budgets on the decoded file, not on ``rgb``.

    Args:
        path (str | os.PathLike): Final file; missing parents are created.
        rgb (np.ndarray): uint8 image, (H, W, 3), RGB order.
        fmt (str): 'png' or 'jpg'. Defaults to 'png'.
        jpeg_quality (int): JPEG quality in [0, 100], used for 'jpg'.
            Defaults to 95.

    Returns:
        int: Number of bytes written.
    """
    if (not isinstance(rgb, np.ndarray) or rgb.dtype != np.uint8
            or rgb.ndim != 3 or rgb.shape[2] != 3):
        raise ValueError(
            f'{path}: expected a uint8 (H, W, 3) RGB array, got '
            f'{getattr(rgb, "dtype", type(rgb).__name__)} of shape '
            f'{getattr(rgb, "shape", None)}')
    if fmt not in SUFFIXES:
        raise ValueError(
            f'fmt must be one of {sorted(SUFFIXES)}, but got {fmt!r}')
    if not 0 <= jpeg_quality <= 100:
        raise ValueError(
            f'jpeg_quality must be in [0, 100], but got {jpeg_quality}')
    params = []
    if fmt == 'jpg':
        params = [cv2.IMWRITE_JPEG_QUALITY, int(jpeg_quality)]
    ok, buf = cv2.imencode(SUFFIXES[fmt], cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR),
                           params)
    if not ok:
        raise ValueError(f'{path}: cannot encode the image as {fmt}')
    return write_bytes_atomic(path, buf.tobytes())


def copy_file_atomic(src: PathLike, dst: PathLike) -> int:
    """Copy the bytes of ``src`` to ``dst`` atomically.

    Only the content is copied (no permissions, times or other metadata).

    Args:
        src (str | os.PathLike): File to copy; it is only read.
        dst (str | os.PathLike): Final file; missing parents are created.

    Returns:
        int: Number of bytes written.
    """
    if osp.exists(dst) and osp.samefile(src, dst):
        # Replacing a file by a copy of itself would still swap its inode.
        raise ValueError(f'{dst}: refusing to copy {src} onto itself')
    with open(src, 'rb') as fsrc:
        return _replace_atomic(dst, lambda f: shutil.copyfileobj(fsrc, f))
