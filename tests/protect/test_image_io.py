import os
import os.path as osp
import struct

import cv2
import numpy as np
import pytest

from mmunseg.protect.image_io import (ImageReadError, ensure_outside,
                                      mirrored_path, read_image)
from mmunseg.utils import atomic_files
from mmunseg.utils.atomic_files import copy_file_atomic, write_image_atomic


def _rgb(height=6, width=7, seed=0):
    return np.random.default_rng(seed).integers(
        0, 256, (height, width, 3), dtype=np.uint8)


def _encode(img, suffix='.png'):
    return cv2.imencode(suffix, img)[1].tobytes()


def test_png_round_trip_is_lossless_rgb(tmp_path):
    rgb = _rgb()
    path = tmp_path / 'a' / 'b' / 'img.png'
    size = write_image_atomic(path, rgb)
    assert size == osp.getsize(path)
    np.testing.assert_array_equal(read_image(path), rgb)
    # Stored as BGR like any other PNG writer, so other readers agree.
    np.testing.assert_array_equal(cv2.imread(str(path))[..., ::-1], rgb)
    assert os.listdir(path.parent) == ['img.png']


def test_jpeg_is_lossy(tmp_path):
    rgb = _rgb(32, 32)
    path = tmp_path / 'img.jpg'
    write_image_atomic(path, rgb, fmt='jpg', jpeg_quality=90)
    decoded = read_image(path)
    assert decoded.shape == rgb.shape and (decoded != rgb).any()
    with open(path, 'rb') as f:
        assert f.read(2) == b'\xff\xd8'


def test_write_overwrites_atomically(tmp_path):
    path = tmp_path / 'img.png'
    write_image_atomic(path, _rgb(seed=0))
    write_image_atomic(path, _rgb(seed=1))
    np.testing.assert_array_equal(read_image(path), _rgb(seed=1))
    assert os.listdir(tmp_path) == ['img.png']


@pytest.mark.parametrize('bad', [
    np.zeros((4, 4), np.uint8),
    np.zeros((4, 4, 4), np.uint8),
    np.zeros((4, 4, 3), np.float32), [[0, 0, 0]]
])
def test_write_rejects_bad_arrays(tmp_path, bad):
    path = tmp_path / 'img.png'
    with pytest.raises(ValueError, match='img.png: expected a uint8'):
        write_image_atomic(path, bad)
    assert os.listdir(tmp_path) == []


def test_failed_write_keeps_old_file_and_no_temp(tmp_path, monkeypatch):
    path = tmp_path / 'img.png'
    write_image_atomic(path, _rgb(seed=0))

    def broken_fsync(fd):
        raise OSError('disk full')

    monkeypatch.setattr(atomic_files.os, 'fsync', broken_fsync)
    with pytest.raises(OSError, match='disk full'):
        write_image_atomic(path, _rgb(seed=1))
    assert os.listdir(tmp_path) == ['img.png']
    np.testing.assert_array_equal(read_image(path), _rgb(seed=0))


def test_write_options_are_checked(tmp_path):
    with pytest.raises(ValueError, match='fmt'):
        write_image_atomic(tmp_path / 'a.webp', _rgb(), fmt='webp')
    with pytest.raises(ValueError, match='jpeg_quality'):
        write_image_atomic(tmp_path / 'a.jpg', _rgb(), 'jpg', 101)


def test_read_missing_empty_and_corrupt(tmp_path):
    with pytest.raises(FileNotFoundError, match='nope.png: image is missing'):
        read_image(tmp_path / 'nope.png')
    (tmp_path / 'empty.png').write_bytes(b'')
    with pytest.raises(ImageReadError, match='empty.png: cannot decode'):
        read_image(tmp_path / 'empty.png')
    # A PNG signature followed by garbage, and a truncated JPEG header.
    (tmp_path / 'bad.png').write_bytes(b'\x89PNG\r\n\x1a\n' + b'x' * 64)
    (tmp_path / 'bad.jpg').write_bytes(_encode(_rgb(), '.jpg')[:20])
    for name in ('bad.png', 'bad.jpg'):
        with pytest.raises(ImageReadError, match=f'{name}: cannot decode'):
            read_image(tmp_path / name)
    assert issubclass(ImageReadError, ValueError)


def test_read_converts_gray_alpha_and_16_bit(tmp_path):
    gray = _rgb()[..., 0]
    (tmp_path / 'gray.png').write_bytes(_encode(gray))
    np.testing.assert_array_equal(
        read_image(tmp_path / 'gray.png'), np.stack([gray] * 3, axis=2))

    bgra = np.dstack([_rgb(), np.full((6, 7), 7, np.uint8)])
    (tmp_path / 'rgba.png').write_bytes(_encode(bgra))
    np.testing.assert_array_equal(
        read_image(tmp_path / 'rgba.png'), bgra[..., 2::-1])

    gray16 = np.array([[0, 128, 129, 385], [386, 65406, 65407, 65535]],
                      np.uint16)
    (tmp_path / 'gray16.png').write_bytes(_encode(gray16))
    img = read_image(tmp_path / 'gray16.png')
    assert img.dtype == np.uint8 and img.shape == (2, 4, 3)
    # Rounded, not truncated: 129/257 -> 1, 385/257 -> 1, 386/257 -> 2.
    np.testing.assert_array_equal(img[..., 0],
                                  [[0, 0, 1, 1], [2, 254, 255, 255]])

    bgr16 = _rgb().astype(np.uint16) * 257
    (tmp_path / 'rgb16.png').write_bytes(_encode(bgr16))
    np.testing.assert_array_equal(
        read_image(tmp_path / 'rgb16.png'),
        _rgb()[..., ::-1])


def test_read_applies_exif_orientation(tmp_path):
    # Left half white; EXIF orientation 6 means "rotate 90 degrees
    # clockwise to display", which puts the left column on top.
    img = np.zeros((8, 16, 3), np.uint8)
    img[:, :8] = 255
    tiff = (b'II*\x00' + struct.pack('<IH', 8, 1) +
            struct.pack('<HHII', 0x0112, 3, 1, 6) + struct.pack('<I', 0))
    exif = b'Exif\x00\x00' + tiff
    app1 = b'\xff\xe1' + struct.pack('>H', len(exif) + 2) + exif
    jpeg = _encode(img, '.jpg')
    jpeg = jpeg[:2] + app1 + jpeg[2:]  # right after the start-of-image
    (tmp_path / 'rotated.jpg').write_bytes(jpeg)
    rgb = read_image(tmp_path / 'rotated.jpg')
    assert rgb.shape == (16, 8, 3)
    assert rgb[:4].min() > 240 and rgb[-4:].max() < 15


def test_read_refuses_too_many_pixels(tmp_path):
    write_image_atomic(tmp_path / 'big.png', _rgb(10, 20))
    assert read_image(
        tmp_path / 'big.png', max_pixels=200).shape[:2] == (10, 20)
    with pytest.raises(ImageReadError, match='big.png: image is 20x10'):
        read_image(tmp_path / 'big.png', max_pixels=199)


def test_copy_file_atomic(tmp_path):
    src = tmp_path / 'src' / 'mask.png'
    src.parent.mkdir()
    src.write_bytes(b'\x00\x01annotation\xff')
    os.chmod(src, 0o444)
    dst = tmp_path / 'out' / 'deep' / 'mask.png'
    assert copy_file_atomic(src, dst) == 13
    assert dst.read_bytes() == src.read_bytes()
    # Content only: the copy does not inherit the read-only mode.
    assert os.stat(dst).st_mode & 0o200
    dst.write_bytes(b'old')
    copy_file_atomic(src, dst)
    assert dst.read_bytes() == src.read_bytes()
    assert sorted(os.listdir(dst.parent)) == ['mask.png']
    with pytest.raises(ValueError, match='onto itself'):
        copy_file_atomic(src, tmp_path / 'src' / '.' / 'mask.png')
    with pytest.raises(FileNotFoundError):
        copy_file_atomic(tmp_path / 'missing.png', tmp_path / 'x.png')
    assert not (tmp_path / 'x.png').exists()


def test_ensure_outside(tmp_path):
    src = tmp_path / 'data'
    (src / 'images').mkdir(parents=True)
    other = tmp_path / 'other'
    other.mkdir()
    ensure_outside(tmp_path / 'protected', [src])
    ensure_outside(tmp_path / 'data_protected', src)  # a prefix, not inside
    ensure_outside(tmp_path, [src])  # the source inside the output is fine
    for out in (src, src / 'images', src / 'new' / 'out',
                tmp_path / 'other' / '..' / 'data'):
        with pytest.raises(ValueError, match='inside the source folder'):
            ensure_outside(out, [other, src])
    # A link outside the source that points into it is still inside.
    os.symlink(src / 'images', tmp_path / 'link')
    with pytest.raises(ValueError, match='resolved'):
        ensure_outside(tmp_path / 'link' / 'out', [src])
    # And a source given through a link protects its target.
    os.symlink(src, tmp_path / 'src_link')
    with pytest.raises(ValueError, match='inside'):
        ensure_outside(src / 'out', [tmp_path / 'src_link'])


def test_mirrored_path_mirrors_layout():
    out = mirrored_path('/d/src/im/a/x.jpeg', '/d/src', '/d/out', '.png')
    assert out == osp.join('/d/out', 'im', 'a', 'x.png')
    assert mirrored_path('/d/src/x.PNG', '/d/src/', 'o',
                         '.jpg') == osp.join('o', 'x.jpg')
    assert mirrored_path('/d/src/v1.2/x', '/d/src', 'o',
                         '.png') == osp.join('o', 'v1.2', 'x.png')
    # Annotations keep their own suffix.
    assert mirrored_path('/d/src/ann/x.png', '/d/src',
                         'o') == osp.join('o', 'ann', 'x.png')
    for src_path in ('/d/other/x.jpg', '/d/src', '/d/src_2/x.jpg',
                     '/d/src/../x.jpg'):
        with pytest.raises(ValueError, match='is not inside'):
            mirrored_path(src_path, '/d/src', '/d/out', '.png')
