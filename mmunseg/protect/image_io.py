"""Reading source images, and placing a copy's files without ever touching
the source data set (writing them atomically is
:mod:`mmunseg.utils.atomic_files`)."""
import os
import os.path as osp
import warnings
from typing import Iterable, Optional, Tuple, Union

import cv2
import numpy as np

PathLike = Union[str, os.PathLike]

# PIL's decompression-bomb limit (twice ``Image.MAX_IMAGE_PIXELS``).
MAX_PIXELS = 178956970


class ImageReadError(ValueError):
    """An image file exists but cannot be used as an 8-bit RGB image."""


class ImageTooLarge(ImageReadError):
    """An image has more pixels than allowed, or needs more memory."""


def read_image(path: PathLike, max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """Read an image file as an 8-bit RGB array.

    Gray and gray-alpha images are replicated to three channels, the alpha
    channel of RGBA images is dropped, palette images give their palette
    colours and 16-bit images are scaled to 8 bits with rounding (``/ 257``).
    The EXIF orientation of JPEG files is applied, as ``cv2.imread`` and
    ``mmcv.imread`` do, so the pixels line up with the annotations.

    Args:
        path (str | os.PathLike): Image file. Bytes are read with
            ``np.fromfile``, so any path the OS accepts works.
        max_pixels (int): Refuse images with more pixels than this, which
            guards the float copies made downstream against decompression
            bombs. Defaults to :data:`MAX_PIXELS`, PIL's limit.

    Returns:
        np.ndarray: uint8 image, (H, W, 3), RGB order.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        ImageReadError: The file is empty, cannot be decoded, has an
            unsupported pixel type or is larger than ``max_pixels``.
    """
    path = os.fspath(path)
    try:
        buf = np.fromfile(path, dtype=np.uint8)
    except FileNotFoundError:
        raise FileNotFoundError(f'{path}: image is missing') from None
    if buf.size == 0:
        raise ImageReadError(f'{path}: cannot decode an empty file')
    # Refuse a bomb from its header, before decoding allocates it.
    size = image_size(path)
    if size is not None:
        _check_pixels(path, *size, max_pixels)
    try:
        # Not IMREAD_UNCHANGED: that flag also skips the EXIF orientation.
        img = cv2.imdecode(buf, cv2.IMREAD_ANYDEPTH | cv2.IMREAD_ANYCOLOR)
    except cv2.error as err:
        raise ImageReadError(f'{path}: cannot decode ({err.err})') from err
    if img is None:
        raise ImageReadError(f'{path}: cannot decode (corrupt or not an '
                             'image format that OpenCV reads)')
    _check_pixels(path, img.shape[1], img.shape[0], max_pixels)
    if img.dtype == np.uint16:
        img = ((img.astype(np.uint32) + 128) // 257).astype(np.uint8)
    elif img.dtype != np.uint8:
        raise ImageReadError(
            f'{path}: cannot decode {img.dtype} pixels, only 8 and 16 bits')
    if img.ndim == 2:
        return cv2.cvtColor(img, cv2.COLOR_GRAY2RGB)
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


def _check_pixels(path, width, height, max_pixels):
    if height * width > max_pixels:
        raise ImageTooLarge(
            f'{path}: image is {width}x{height} = {height * width} pixels, '
            f'more than max_pixels={max_pixels}')


def image_size(path: PathLike) -> Optional[Tuple[int, int]]:
    """An image's (width, height) from its header, without decoding it.

    Args:
        path (str | os.PathLike): Image file.

    Returns:
        tuple[int, int] | None: The size, or None when the header cannot be
        read (a missing or corrupt file: :func:`read_image` then reports
        what is wrong).
    """
    from PIL import Image
    with warnings.catch_warnings():
        # PIL warns about (and refuses) large images; the size is all we
        # want, and read_image applies its own limit.
        warnings.simplefilter('ignore', Image.DecompressionBombWarning)
        saved, Image.MAX_IMAGE_PIXELS = Image.MAX_IMAGE_PIXELS, None
        try:
            with Image.open(os.fspath(path)) as image:
                return image.size
        except (OSError, ValueError, SyntaxError):
            return None
        finally:
            Image.MAX_IMAGE_PIXELS = saved


def _is_within(path: str, root: str) -> bool:
    path, root = osp.normcase(path), osp.normcase(root)
    try:
        return osp.commonpath([path, root]) == root
    except ValueError:  # different drives on Windows
        return False


def ensure_outside(
        out_path: PathLike,
        protected_roots: Union[PathLike, Iterable[PathLike]]) -> None:
    """Refuse an output path equal to or inside a source folder.

    Paths are compared after ``os.path.realpath``, so symbolic links (of the
    output or of a source) cannot smuggle writes into a source data set. A
    source folder inside the output folder is allowed.

    Args:
        out_path (str | os.PathLike): Output folder or file; it need not
            exist yet.
        protected_roots (str | os.PathLike | Iterable): Source folder(s)
            that must stay untouched.

    Raises:
        ValueError: ``out_path`` is equal to or inside a source folder.
    """
    if isinstance(protected_roots, (str, os.PathLike)):
        protected_roots = [protected_roots]
    real_out = osp.realpath(out_path)
    for root in protected_roots:
        if _is_within(real_out, osp.realpath(root)):
            raise ValueError(
                f'output {out_path} is inside the source folder {root} '
                f'(resolved: {real_out}); sources are read-only, choose an '
                'output folder outside them')


def mirrored_path(path: PathLike,
                  root: PathLike,
                  out_root: PathLike,
                  suffix: Optional[str] = None) -> str:
    """Mirror a source file's place under ``root`` below ``out_root``.

    Args:
        path (str | os.PathLike): Source file under ``root``.
        root (str | os.PathLike): Source folder.
        out_root (str | os.PathLike): Output folder.
        suffix (str, optional): Replace the file's suffix, e.g. ``'.png'``.

    Returns:
        str: ``out_root/<path relative to root>``, e.g. ``a/b.jpeg`` ->
        ``out_root/a/b.png`` with ``suffix='.png'``.

    Raises:
        ValueError: ``path`` is not strictly inside ``root``.
    """
    src_abs, root_abs = osp.abspath(path), osp.abspath(root)
    if src_abs == root_abs or not _is_within(src_abs, root_abs):
        raise ValueError(f'{path} is not inside {root}')
    relative = osp.relpath(src_abs, root_abs)
    if suffix is not None:
        relative = osp.splitext(relative)[0] + suffix
    return osp.join(os.fspath(out_root), relative)
