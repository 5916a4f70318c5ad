import cv2
import numpy as np
import pytest
import torch
from mmengine.structures import BaseDataElement

from mmunseg.datasets.transforms import (LargeScaleJitter, LoadImageAndMask,
                                         PackUnSegInputs, RandomHorizontalFlip,
                                         ResizePad)


def _asymmetric_sample(height=60, width=80):
    """An image with a horizontal ramp and a mask on its left third."""
    ramp = np.linspace(0, 255, width).astype(np.uint8)
    img = np.repeat(np.tile(ramp, (height, 1))[..., None], 3, axis=2)
    mask = np.zeros((height, width), np.float32)
    mask[10:50, :width // 3] = 255
    return dict(img=img, gt_mask=mask)


def _load(img_path, mask_path):
    return LoadImageAndMask()(
        dict(img_path=str(img_path), mask_path=str(mask_path)))


def test_load_image_and_mask(tmp_path):
    img = np.random.default_rng(0).integers(0, 256, (5, 7, 3), np.uint8)
    mask = np.zeros((5, 7), np.uint8)
    mask[1:3, 2:5] = 255
    cv2.imwrite(str(tmp_path / 'x.png'), img)
    cv2.imwrite(str(tmp_path / 'x_mask.png'), mask)
    results = _load(tmp_path / 'x.png', tmp_path / 'x_mask.png')
    assert results['img'].dtype == np.uint8
    np.testing.assert_array_equal(results['img'], img[..., ::-1])
    assert results['gt_mask'].dtype == np.float32
    np.testing.assert_array_equal(results['gt_mask'], mask)
    assert results['ori_shape'] == results['img_shape'] == (5, 7)


def test_load_gray_alpha_16bit_and_01_mask(tmp_path):
    cv2.imwrite(str(tmp_path / 'gray.png'), np.full((4, 6), 9, np.uint8))
    cv2.imwrite(str(tmp_path / 'rgba.png'), np.full((4, 6, 4), 9, np.uint8))
    cv2.imwrite(
        str(tmp_path / 'deep.png'), np.full((4, 6, 3), 9 * 257, np.uint16))
    mask = np.zeros((4, 6, 3), np.uint8)
    mask[:2] = 1
    cv2.imwrite(str(tmp_path / 'mask01.png'), mask)
    for name in ('gray.png', 'rgba.png', 'deep.png'):
        results = _load(tmp_path / name, tmp_path / 'mask01.png')
        assert results['img'].shape == (4, 6, 3), name
        assert results['img'].dtype == np.uint8, name
        assert (results['img'] == 9).all(), name
    assert results['gt_mask'].shape == (4, 6)
    assert set(np.unique(results['gt_mask'])) == {0, 255}


def test_load_errors_name_the_path(tmp_path):
    good = tmp_path / 'good.png'
    cv2.imwrite(str(good), np.zeros((4, 6), np.uint8))
    corrupt = tmp_path / 'x.jpg'
    corrupt.write_bytes(b'this is not a jpeg')
    empty = tmp_path / 'empty.png'
    empty.write_bytes(b'')
    with pytest.raises(ValueError, match='Cannot decode') as err:
        _load(corrupt, good)
    assert str(corrupt) in str(err.value)
    with pytest.raises(ValueError, match='Cannot decode') as err:
        _load(good, empty)
    assert str(empty) in str(err.value)
    with pytest.raises(IOError, match='missing') as err:
        _load(good, tmp_path / 'gone.png')
    assert str(tmp_path / 'gone.png') in str(err.value)

    small = tmp_path / 'small.png'
    cv2.imwrite(str(small), np.zeros((3, 6), np.uint8))
    with pytest.raises(ValueError, match='size') as err:
        _load(good, small)
    for text in (str(good), str(small), '(4, 6)', '(3, 6)'):
        assert text in str(err.value)


def test_random_horizontal_flip():
    sample = _asymmetric_sample()
    flipped = RandomHorizontalFlip(prob=1)(dict(sample))
    assert flipped['flip'] is True
    np.testing.assert_array_equal(flipped['img'], sample['img'][:, ::-1])
    np.testing.assert_array_equal(flipped['gt_mask'],
                                  sample['gt_mask'][:, ::-1])
    # The mask moved to the right but still covers the dark end of the ramp.
    assert flipped['gt_mask'][:,
                              -1].any() and not flipped['gt_mask'][:, 0].any()
    assert flipped['img'][flipped['gt_mask'] > 0].max() < 100
    kept = RandomHorizontalFlip(prob=0)(dict(sample))
    assert kept['flip'] is False
    np.testing.assert_array_equal(kept['img'], sample['img'])
    with pytest.raises(ValueError):
        RandomHorizontalFlip(prob=2)
    assert repr(RandomHorizontalFlip()) == 'RandomHorizontalFlip(prob=0.5)'


def test_large_scale_jitter_shapes_and_padding():
    np.random.seed(0)
    transform = LargeScaleJitter(output_size=64, scale_range=(0.3, 2.0))
    for _ in range(20):
        results = transform(_asymmetric_sample())
        img, mask = results['img'], results['gt_mask']
        assert img.shape == (64, 64, 3) and img.dtype == np.uint8
        assert mask.shape == (64, 64) and mask.dtype == np.float32
        assert 0 <= mask.min() and mask.max() <= 255
        h, w = results['img_shape']
        assert h <= 64 and w <= 64
        assert not img[h:].any() and not img[:, w:].any()
        assert not mask[h:].any() and not mask[:, w:].any()
        assert results['pad_shape'] == (64, 64)
        w_scale, h_scale = results['scale_factor']
        assert w_scale == pytest.approx(h_scale, rel=0.05)
        assert (mask > 128).sum() >= 16


def test_large_scale_jitter_keeps_small_object():
    sample = dict(
        img=np.full((100, 100, 3), 50, np.uint8),
        gt_mask=np.zeros((100, 100), np.float32))
    sample['gt_mask'][90:98, 2:10] = 255
    np.random.seed(1)
    transform = LargeScaleJitter(
        output_size=100, scale_range=(0.5, 2.0), min_mask_area=30)
    for _ in range(10):
        assert (transform(dict(sample))['gt_mask'] > 128).sum() >= 30

    # No draw can keep 1000 pixels: fall back to the whole image at r = 1.
    transform = LargeScaleJitter(output_size=50, min_mask_area=1000)
    results = transform(dict(sample))
    assert results['img_shape'] == (50, 50)
    assert results['scale_factor'] == (0.5, 0.5)
    assert 'LargeScaleJitter(output_size=50' in repr(transform)


def test_resize_pad():
    results = ResizePad(output_size=40)(_asymmetric_sample(60, 80))
    assert results['img'].shape == (40, 40, 3)
    assert results['gt_mask'].shape == (40, 40)
    assert results['img_shape'] == (30, 40)
    assert results['scale_factor'] == (0.5, 0.5)
    assert not results['img'][30:].any() and not results['gt_mask'][30:].any()
    assert results['gt_mask'][:30].max() == 255


def test_pack_contract():
    results = ResizePad(output_size=32)(_asymmetric_sample())
    results.update(img_path='a.jpg', object_id=None, unused=1)
    packed = PackUnSegInputs()(results)
    inputs, data_sample = packed['inputs'], packed['data_samples']
    assert inputs.dtype == torch.uint8 and inputs.shape == (3, 32, 32)
    assert inputs.is_contiguous()
    np.testing.assert_array_equal(inputs.numpy(),
                                  results['img'].transpose(2, 0, 1))
    assert isinstance(data_sample, BaseDataElement)
    assert data_sample.gt_mask.dtype == torch.float32
    assert data_sample.gt_mask.shape == (1, 32, 32)
    assert set(data_sample.metainfo_keys()) == {
        'img_path', 'object_id', 'img_shape', 'pad_shape', 'scale_factor'
    }
    with pytest.raises(TypeError, match='uint8'):
        PackUnSegInputs()(dict(img=results['img'].astype(np.float32)))


def test_load_converts_bgr_to_rgb(tmp_path):
    img = np.zeros((20, 30, 3), np.uint8)
    img[..., 2] = 200  # red in OpenCV's BGR order
    cv2.imwrite(str(tmp_path / 'red.jpg'), img)
    cv2.imwrite(str(tmp_path / 'red.png'), np.full((20, 30), 255, np.uint8))
    results = _load(tmp_path / 'red.jpg', tmp_path / 'red.png')
    assert results['img'][..., 0].mean() > 190
    assert results['img'][..., 2].mean() < 10
