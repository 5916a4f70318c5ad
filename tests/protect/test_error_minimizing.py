"""EM that a user can afford (issue 14, item 3): several images per
surrogate step, noise crafted at a chosen resolution, on tiny images."""
import json
import os.path as osp

import cv2
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from mmunseg.models.budget import Budget, budget_levels
from mmunseg.protect import (ErrorMinimizingNoise, Prompt, ProtectItem,
                             Protector, load_manifest, read_image)
from mmunseg.protect.objects import class_map
from tests.utils import data_path, run_benchmark

EPS_OBJECT, EPS_BACKGROUND = 8 / 255, 2 / 255
# A per-pixel linear classifier keeps each pass cheap.
LINEAR_SURROGATE = dict(
    type='Conv2d', in_channels=3, out_channels=11, kernel_size=3, padding=1)
QUICK = dict(
    num_classes=11,
    surrogate=LINEAR_SURROGATE,
    rounds=1,
    train_steps=2,
    steps=3,
    budget=Budget(EPS_OBJECT, EPS_BACKGROUND))


def tiny_sample(rng, height, width):
    """A blurred random image and a class map of two rectangles (classes of
    11, -1 elsewhere), with its union-mask prompt."""
    image = cv2.GaussianBlur(
        rng.integers(0, 256, (height, width, 3), dtype=np.uint8), (5, 5), 0)
    labels = np.full((height, width), -1, np.int64)
    for label in rng.choice(11, 2, replace=False):
        y, x = rng.integers(0, height - 8), rng.integers(0, width - 8)
        labels[y:y + rng.integers(6, 20), x:x + rng.integers(6, 24)] = label
    return image, Prompt(mask=labels >= 0, labels=labels)


def samples(shapes, seed=0):
    rng = np.random.default_rng(seed)
    images, prompts = zip(*(tiny_sample(rng, *shape) for shape in shapes))
    return list(images), list(prompts)


def test_batching_gives_each_image_its_noise_within_the_unit_range():
    shapes = [(40, 56)] * 3 + [(33, 45)] * 2
    images, prompts = samples(shapes)
    em = ErrorMinimizingNoise(**QUICK, batch_size=2, random_start=True)
    assert em.batched and not em.order_independent
    noises = em.generate(images, prompts)
    assert [n.shape for n in noises] == [s + (3, ) for s in shapes]
    for noise in noises:
        assert noise.dtype == np.float32 and np.isfinite(noise).all()
        assert np.abs(noise).max() <= 1 and np.abs(noise).mean() > 0.1
    # Groups of at most two images of one size: (2 + 1) + 1 groups.
    assert em.passes == 3 * (2 + 3)
    assert len(em.accuracies) == 3
    # A group shares its surrogate: an image's noise depends on the other
    # image of its group ...
    alone = ErrorMinimizingNoise(
        **QUICK, batch_size=2,
        random_start=True).generate(images[:1], prompts[:1])[0]
    assert not np.array_equal(alone, noises[0])
    # ... and one image per group (the default) does not.
    single = ErrorMinimizingNoise(**QUICK, random_start=True)
    assert not single.batched and single.order_independent
    together = single.generate(images, prompts)
    np.testing.assert_array_equal(
        single.generate(images[:1], prompts[:1])[0], together[0])
    assert single.passes == 6 * (2 + 3)


@pytest.mark.parametrize('stride', [1, 2, 3])
def test_crafted_noise_is_what_the_images_shrunk_by_the_stride_show(stride):
    """The saved noise is constant on stride x stride blocks, at the
    image's size; the block means of the saved perturbed image are the
    perturbed image EM optimised (no clipping here), budgets and targets
    align with their blocks, also when the sides are not multiples."""
    height, width = 31, 44
    rng = np.random.default_rng(stride)
    em = ErrorMinimizingNoise(**QUICK, craft_stride=stride)
    images = torch.from_numpy(rng.uniform(0.1, 0.9, (2, 3, height, width)))
    labels = np.full((2, height, width), -1)
    labels[:, 5:20, 7:30] = 4
    targets, budgets = em.targets_of(
        [Prompt(labels=label) for label in labels], (height, width))
    small, small_targets, small_budgets = em.to_craft(images, targets, budgets)
    size = (-(-height // stride), -(-width // stride))
    assert small.shape[-2:] == small_targets.shape[-2:] == \
        small_budgets.shape[-2:] == size
    np.testing.assert_array_equal(small_targets,
                                  targets[:, ::stride, ::stride])
    # Blocks wholly on the object get its budget, wholly off it the other.
    assert small_budgets.max() == pytest.approx(EPS_OBJECT)
    assert small_budgets.min() == pytest.approx(EPS_BACKGROUND)
    assert small_budgets[0, 0, 10 // stride,
                         15 // stride] == pytest.approx(EPS_OBJECT)

    unit = torch.from_numpy(rng.uniform(-1, 1, (2, 3) + size))
    noise = em.from_craft(unit, height, width)
    assert noise.shape == images.shape and noise.abs().max() <= 1
    for dy in range(stride):
        for dx in range(stride):
            block = noise[..., dy::stride, dx::stride]
            np.testing.assert_array_equal(
                block, unit[..., :block.shape[-2], :block.shape[-1]])
    saved = images + budgets * noise
    seen, _, _ = em.to_craft(saved, targets, budgets)
    torch.testing.assert_close(seen, small + small_budgets * unit)
    if stride > 1:
        # A shift by one pixel would break it.
        shifted, _, _ = em.to_craft(saved.roll(1, -1), targets, budgets)
        assert not torch.allclose(shifted, small + small_budgets * unit)


def test_crafting_resolution_keeps_the_bound_per_region_through_the_protector(
        tmp_path):
    """Odd-sized images, blocks of 3, groups of 2 in batches of 3: the
    protector's quantised copies stay within the budget of each region."""
    rng = np.random.default_rng(1)
    items = []
    for index in range(3):
        image, prompt = tiny_sample(rng, 37, 53)
        name = f'img{index}'
        paths = []
        for folder, array in (('img_dir', image[..., ::-1]),
                              ('ann_dir',
                               np.where(prompt.labels >= 0, prompt.labels,
                                        255).astype(np.uint8))):
            (tmp_path / folder).mkdir(exist_ok=True)
            paths.append(str(tmp_path / folder / f'{name}.png'))
            cv2.imwrite(paths[-1], array)
        items.append(
            ProtectItem(
                img_path=paths[0], root=str(tmp_path), seg_map_path=paths[1]))
    method = ErrorMinimizingNoise(
        **QUICK, batch_size=2, craft_stride=3, random_start=True)
    out = tmp_path / 'out'
    protector = Protector(
        method,
        str(out),
        Budget(EPS_OBJECT, EPS_BACKGROUND),
        batch_size=3,
        workers=0)
    manifest = str(out / 'manifest.jsonl')
    protector.run(items, manifest, show_progress=False)
    records = load_manifest(manifest)
    assert method.passes == 2 * (2 + 3)
    for item in items:
        record = records[osp.relpath(protector.output_file(item), str(out))]
        assert record['status'] == 'protected'
        clean = read_image(item.img_path).astype(int)
        protected = read_image(protector.output_file(item)).astype(int)
        mask = class_map(item.objects(), clean.shape[:2]) >= 0
        diff = np.abs(protected - clean).max(-1)
        assert diff[mask].max() <= budget_levels(EPS_OBJECT)
        assert diff[~mask].max() <= budget_levels(EPS_BACKGROUND)
        assert diff[mask].max() > budget_levels(EPS_BACKGROUND)


@pytest.mark.parametrize('name', ['batch_size', 'craft_stride'])
@pytest.mark.parametrize('value', [0, -2, 1.5, '8', True, None])
def test_bad_options_are_refused_with_their_name(name, value):
    with pytest.raises(ValueError, match=f'{name} must be an int >= 1'):
        ErrorMinimizingNoise(**QUICK, **{name: value})


def test_budget_is_a_budget_value():
    settings = dict(QUICK)
    settings.pop('budget')
    assert ErrorMinimizingNoise(**settings).budget == Budget.preset('paper')
    assert ErrorMinimizingNoise(
        **settings, budget='medical').budget == Budget.preset('medical')
    with pytest.raises(ValueError, match='object budget must be a number'):
        ErrorMinimizingNoise(**settings, budget=dict(object=8, background=2))


def test_memory_estimate_follows_the_crafting_resolution():
    full = ErrorMinimizingNoise(**QUICK, craft_stride=1)
    half = ErrorMinimizingNoise(**QUICK, craft_stride=2)
    assert full.memory_bytes(360, 480) > 3 * half.memory_bytes(360, 480)
    assert half.memory_bytes(361, 481) == (700 * 181 * 241 + 80 * 361 * 481)


def test_crafting_at_a_lower_resolution_still_minimises_the_error():
    """On the shrunk view, a fresh copy of the surrogate learns the images
    with EM's noise faster than with none (the min-min objective)."""
    images, prompts = samples([(48, 64)] * 2, seed=3)
    settings = dict(QUICK, rounds=3, train_steps=5, steps=10)
    em = ErrorMinimizingNoise(**settings, batch_size=2, craft_stride=2)
    noises = em.generate(images, prompts)

    def loss_after_training(noise):
        fresh = ErrorMinimizingNoise(**settings, craft_stride=2, seed=1)
        batch = torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2) / 255
        targets, budgets = fresh.targets_of(prompts, images[0].shape[:2])
        unit = torch.from_numpy(np.stack(noise)).permute(0, 3, 1, 2)
        inputs, targets, _ = fresh.to_craft(
            (batch + budgets * unit).clamp(0, 1), targets, budgets)
        for _ in range(15):
            fresh.optimizer.zero_grad()
            loss = fresh.loss(inputs, targets)
            loss.backward()
            fresh.optimizer.step()
        return F.cross_entropy(
            fresh.logits(inputs), targets, ignore_index=255).item()

    zero = [np.zeros_like(n) for n in noises]
    assert loss_after_training(noises) < loss_after_training(zero) - 0.1


def test_cost_benchmark_writes_its_table(tmp_path):
    data_path('camvid')
    out = tmp_path / 'em_cost.json'
    run_benchmark('em_cost.py', '--images', 1, '--old-images', 0,
                  '--batched-images', 2, '--group', 2, '--out', out)
    record = json.load(open(out))
    assert record['split_images'] == 367
    defaults, batched = record['rows']
    assert defaults['options'] == {} and defaults['passes_per_image'] == 60
    assert batched['groups'] == 1 and batched['passes_per_image'] == 60
    for row in record['rows']:
        assert row['linf_object_max'] <= 8
        assert row['linf_background_max'] <= 2
        assert 0 < row['surrogate_accuracy'] <= 1
    assert (tmp_path / 'em_cost.md').read_text().startswith('| EM setting')
