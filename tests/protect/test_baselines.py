import glob
import os.path as osp
import time

import cv2
import numpy as np
import pytest
import torch

from mmunseg.models.budget import budget_levels, perturb_image
from mmunseg.protect import (ErrorMinimizingNoise, Prompt, ProtectItem,
                             UniformNoise, read_image)
from mmunseg.protect.baselines.autoregressive import ar_patterns
from mmunseg.protect.objects import class_map
from mmunseg.registry import NOISE_METHODS
from tests.protect.test_protector import BUDGET, camvid, items_of, protect
from tests.utils import data_path

assert camvid  # a fixture, used by name

# A per-pixel linear classifier: the tiny surrogate of the EM tests.
LINEAR_SURROGATE = dict(
    type='Conv2d', in_channels=3, out_channels=11, kernel_size=3, padding=1)
# Short EM settings for protecting whole images in a test.
QUICK_EM = dict(
    type='ErrorMinimizingNoise',
    num_classes=11,
    rounds=1,
    train_steps=1,
    steps=1)
# A 128 px AR canvas (4 x 4 tiles) keeps the tests quick.
SMALL_AR = dict(type='AutoregressiveNoise', grid=4)
BASELINES = [
    dict(type='SyntheticNoise'), SMALL_AR,
    dict(type='ConvolutionNoise', kernel_size=5), QUICK_EM
]


def camvid_samples(count, size=None):
    """Real CamVid images and prompts (union mask, class map), optionally
    resized (area for images, nearest for labels)."""
    root = data_path('camvid')
    paths = sorted(glob.glob(osp.join(root, 'img_dir', 'train',
                                      '*.jpg')))[:count]
    images, prompts = [], []
    for path in paths:
        name = osp.basename(path)[:-4]
        item = ProtectItem(
            img_path=path,
            root=root,
            seg_map_path=osp.join(root, 'ann_dir', 'train', name + '.png'))
        image = read_image(path)
        labels = class_map(item.objects(), image.shape[:2])
        if size is not None:
            image = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
            labels = cv2.resize(
                labels.astype(np.int16), size,
                interpolation=cv2.INTER_NEAREST).astype(np.int64)
        images.append(image)
        prompts.append(Prompt(mask=labels >= 0, labels=labels))
    return images, prompts


@pytest.mark.parametrize('cfg', BASELINES, ids=lambda c: c['type'])
def test_bound_holds_per_region_through_the_protector(camvid, tmp_path, cfg):
    src, names = camvid
    names = names[:2]
    method = NOISE_METHODS.build(cfg)
    protector, records = protect(
        method, src, names, tmp_path / 'out', batch_size=2)
    for item in items_of(src, names):
        record = records[osp.relpath(
            protector.output_file(item), str(tmp_path / 'out'))]
        assert record['status'] == 'protected'
        clean = read_image(item.img_path)
        protected = read_image(protector.output_file(item))
        mask = np.zeros(clean.shape[:2], bool)
        for m in item.objects().values():
            mask |= m
        diff = np.abs(protected.astype(int) - clean.astype(int)).max(-1)
        assert diff[mask].max() <= budget_levels(BUDGET.object) == 8
        assert diff[~mask].max() <= budget_levels(BUDGET.background) == 2
        assert record['linf_object'] == diff[mask].max() > 0
        assert record['psnr'] > 30


@pytest.mark.parametrize(
    'cfg', [dict(type='SyntheticNoise'), SMALL_AR], ids=lambda c: c['type'])
def test_class_wise_noise_is_the_same_for_the_same_class(cfg):
    images, prompts = camvid_samples(2)
    method = NOISE_METHODS.build(cfg)
    first, second = method.generate(images, prompts)
    assert np.isfinite(first).all() and np.abs(first).max() <= 1
    shared = 0
    for key in set(np.unique(prompts[0].labels)) & set(
            np.unique(prompts[1].labels)):
        both = (prompts[0].labels == key) & (prompts[1].labels == key)
        np.testing.assert_array_equal(first[both], second[both])
        shared += both.sum()
    assert shared > 10000
    # Another instance with the same seed agrees; another seed does not.
    again = NOISE_METHODS.build(cfg).generate(images[:1], prompts[:1])[0]
    np.testing.assert_array_equal(again, first)
    other = NOISE_METHODS.build(dict(cfg,
                                     seed=1)).generate(images[:1],
                                                       prompts[:1])[0]
    assert not np.allclose(other, first)
    # Different classes get different patterns.
    road, sky = prompts[0].labels == 3, prompts[0].labels == 0
    assert not np.allclose(first[road][:100], first[sky][:100])


@pytest.mark.parametrize(
    'cfg', [dict(type='SyntheticNoise'), SMALL_AR], ids=lambda c: c['type'])
def test_sample_wise_draws_differ_per_image_and_repeat(cfg):
    images, prompts = camvid_samples(2)
    method = NOISE_METHODS.build(dict(cfg, sample_wise=True))
    first, second = method.generate(images, prompts)
    sky = (prompts[0].labels == 0) & (prompts[1].labels == 0)
    assert not np.allclose(first[sky], second[sky])
    np.testing.assert_array_equal(
        method.generate(images[:1], prompts[:1])[0], first)


def test_rms_scaling_and_background_mode():
    images, prompts = camvid_samples(1)
    noise = NOISE_METHODS.build(dict(type='SyntheticNoise',
                                     rms=0.5)).generate(images, prompts)[0]
    assert np.sqrt(np.mean(noise**2)) == pytest.approx(0.5, rel=0.05)
    void = prompts[0].labels < 0
    assert void.any()
    quiet = NOISE_METHODS.build(dict(SMALL_AR, background='none')).generate(
        images, prompts)[0]
    assert not quiet[void].any() and quiet[~void].any()


def test_convolution_noise_is_the_filtered_image_minus_the_image():
    images, prompts = camvid_samples(2)
    method = NOISE_METHODS.build(dict(type='ConvolutionNoise', seed=3))
    # The same filter for a class in every instance; one per class.
    again = NOISE_METHODS.build(dict(type='ConvolutionNoise', seed=3))
    np.testing.assert_array_equal(method.kernel(4), again.kernel(4))
    assert not np.array_equal(method.kernel(4), method.kernel(5))
    kernel = method.kernel(4)
    assert kernel.max() == 1 and (kernel < 1).sum() == 8
    assert kernel.min() >= 0 and np.sort(kernel.ravel())[-2] <= 0.3
    # One class over the whole image: x' = (k * x) / max, noise ~ x' - x.
    image = images[0]
    labels = np.full(image.shape[:2], 4)
    noise = method.generate([image], [Prompt(labels=labels)])[0]
    clean = image.astype(np.float32) / 255
    blurred = cv2.filter2D(clean, -1, kernel, borderType=cv2.BORDER_CONSTANT)
    expected = blurred / blurred.max() - clean
    np.testing.assert_allclose(
        noise, expected / np.abs(expected).max(), atol=1e-4)
    # Per class region: each region uses its class's filter.
    noise = method.generate(images[1:], prompts[1:])[0]
    assert np.abs(noise).max() == pytest.approx(1)


def test_ar_recursion_is_vectorised_and_exact():
    rng = np.random.default_rng(0)
    coefficients = rng.standard_normal((2, 3, 3, 3)) / 8
    start = rng.standard_normal((2, 3, 9, 7))
    reference = start.copy()
    for i in range(2, 9):  # the paper's raster scan, pixel by pixel
        for j in range(2, 7):
            window = reference[:, :, i - 2:i + 1, j - 2:j + 1].copy()
            window[:, :, 2, 2] = 0
            reference[:, :, i, j] = (window * coefficients).sum((2, 3))
    np.testing.assert_allclose(ar_patterns(coefficients, start), reference)
    # A whole CamVid image with all its classes: far from the minutes a
    # per-pixel loop over 480 x 360 x 3 values takes.
    images, prompts = camvid_samples(1)
    method = NOISE_METHODS.build(dict(type='AutoregressiveNoise'))
    for key in method.keys_of(prompts[0].labels):
        method.process(key)  # the one-time process search
    started = time.perf_counter()
    noise = method.generate(images, prompts)[0]
    assert time.perf_counter() - started < 5
    assert np.isfinite(noise).all() and noise.std() > 0.3


def test_class_wise_methods_need_labels():
    images, _ = camvid_samples(1)
    for cfg in BASELINES:
        with pytest.raises(ValueError, match='Prompt.labels'):
            NOISE_METHODS.build(cfg).generate(
                images, [Prompt(mask=np.ones(images[0].shape[:2], bool))])


def test_em_noise_lowers_the_training_loss_versus_uniform_noise():
    images, prompts = camvid_samples(4, size=(64, 48))
    settings = dict(
        num_classes=11,
        surrogate=LINEAR_SURROGATE,
        rounds=3,
        train_steps=5,
        steps=10,
        stop_accuracy=1.0,
        batch_size=4)
    em = ErrorMinimizingNoise(**settings, seed=0)
    em_noise = em.generate(images, prompts)
    assert em.passes == 3 * (5 + 10)
    assert all(np.abs(n).max() <= 1 for n in em_noise)
    uniform_noise = UniformNoise(seed=0).generate(images, prompts)

    def training_loss(noises, seed):
        """Mean loss of the last 5 of 30 steps of a fresh surrogate (not
        the one the noise was made with) on the protected images."""
        protected = [
            perturb_image(image, prompt.mask, noise, BUDGET)
            for image, prompt, noise in zip(images, prompts, noises)
        ]
        fresh = ErrorMinimizingNoise(**settings, seed=seed)
        inputs = torch.from_numpy(np.stack(protected)).permute(0, 3, 1,
                                                               2) / 255
        targets, _ = fresh.targets_of(prompts, images[0].shape[:2])
        losses = []
        for _ in range(30):
            loss = fresh.loss(inputs, targets)
            fresh.optimizer.zero_grad()
            loss.backward()
            fresh.optimizer.step()
            losses.append(loss.item())
        return np.mean(losses[-5:])

    for seed in (1, 2):
        assert training_loss(em_noise,
                             seed) < training_loss(uniform_noise, seed) - 0.2
