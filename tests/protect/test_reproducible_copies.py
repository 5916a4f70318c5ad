"""A protected copy is the same bytes however it was made: any order, batch
size, sharding, or a kill followed by a resume (issue 11, item 6)."""
import glob
import os.path as osp

import cv2
import numpy as np
import pytest

from mmunseg.models.budget import Budget
from mmunseg.protect import (ManifestWriter, ProtectItem, Protector,
                             UniformNoise, UnSegGenerator, load_manifest)
from mmunseg.protect import protector as protector_module
from mmunseg.protect.methods import Prompt, sample_seed
from mmunseg.protect.protector import (manifest_shard_path, previous_records,
                                       shard)
from mmunseg.registry import NOISE_METHODS
from tests.utils import save_micro_generator

BUDGET = Budget(8 / 255, 2 / 255)

# Every method, seeded ones with per-image draws; EM tiny enough for a test.
METHODS = {
    'unseg':
    None,  # built from the micro generator checkpoint
    'uniform':
    dict(type='UniformNoise', seed=3),
    'shift':
    dict(type='ConstantShift'),
    'synper':
    dict(type='SyntheticNoise', sample_wise=True, grid=8),
    'ar':
    dict(type='AutoregressiveNoise', sample_wise=True, grid=2),
    'cuda':
    dict(type='ConvolutionNoise', kernel_size=5),
    'em':
    dict(
        type='ErrorMinimizingNoise',
        num_classes=11,
        surrogate=dict(
            type='Conv2d',
            in_channels=3,
            out_channels=11,
            kernel_size=3,
            padding=1),
        rounds=1,
        train_steps=2,
        steps=2,
        random_start=True),
}
# (method, prompt mode): per-class calls carry keys of their own.
CASES = [(name, 'union') for name in METHODS] + [('uniform', 'per-class'),
                                                 ('unseg', 'per-class')]

# Where a killed process stops: asking for the noise of an image, right
# after writing an image (its record not yet written), or at a record.
KILLS = ('noise', 'image', 'record')
# Random runs of each case: each kill point at least once.
DRAWS = 5
# The image without objects: copied as it is, without calling the method.
EMPTY = 'img3'


class Killed(Exception):
    """Stands in for a kill: the process stops at once."""


class KilledAfter:
    """A method that dies when asked for the noise of more than ``images``
    images (the per-object calls of an image count with it)."""

    def __init__(self, method, images):
        self.method = method
        self.images = images
        self.seen = set()

    def __getattr__(self, name):
        return getattr(self.method, name)

    def generate(self, images, prompts):
        self.seen.update(prompt.key.partition('#')[0] for prompt in prompts)
        if len(self.seen) > self.images:
            raise Killed
        return self.method.generate(images, prompts)


def kill_switch(monkeypatch, kind, at, method):
    """Make the process die at the ``at``-th (from 0) image of ``kind``
    (:data:`KILLS`); the method to run, wrapped for a ``noise`` kill."""
    if kind == 'noise':
        return KilledAfter(method, at)
    written = []
    if kind == 'image':
        write = protector_module.write_image_atomic

        def write_then_die(path, *args, **kwargs):
            write(path, *args, **kwargs)
            written.append(path)
            if len(written) > at:
                raise Killed

        monkeypatch.setattr(protector_module, 'write_image_atomic',
                            write_then_die)
    else:

        class DyingWriter(ManifestWriter):

            def write(self, record):
                if len(written) == at:
                    raise Killed
                written.append(record['file'])
                super().write(record)

        monkeypatch.setattr(protector_module, 'ManifestWriter', DyingWriter)
    return method


@pytest.fixture(scope='module')
def items(tmp_path_factory):
    """Seven 48x64 images with CamVid-like labels (classes of 11, 255
    void), small enough for many runs; :data:`EMPTY` has no object."""
    root = tmp_path_factory.mktemp('tiny')
    rng = np.random.default_rng(0)
    items = []
    for index in range(7):
        name = f'img{index}'
        image = cv2.GaussianBlur(
            rng.integers(0, 256, (48, 64, 3), dtype=np.uint8), (5, 5), 0)
        labels = np.full((48, 64), 255, np.uint8)
        if name != EMPTY:
            # Two of the first classes: class-wise methods (AR) set up a
            # process for each class up to the largest.
            for label in rng.choice(4, 2, replace=False):
                y, x = rng.integers(0, 40), rng.integers(0, 56)
                labels[y:y + rng.integers(8, 30),
                       x:x + rng.integers(8, 40)] = label
        paths = []
        for folder, array in (('img_dir', image), ('ann_dir', labels)):
            (root / folder).mkdir(exist_ok=True)
            paths.append(str(root / folder / f'{name}.png'))
            cv2.imwrite(paths[-1], array)
        items.append(
            ProtectItem(
                img_path=paths[0], root=str(root), seg_map_path=paths[1]))
    return items


@pytest.fixture(scope='module')
def checkpoint(tmp_path_factory):
    return save_micro_generator(tmp_path_factory.mktemp('g') / 'g.pth')


def build(name, checkpoint):
    if name == 'unseg':
        return UnSegGenerator(checkpoint)
    return NOISE_METHODS.build(METHODS[name])


def copy_bytes(out_dir):
    """Every file of the copy (images and stored noise), by path."""
    files = {}
    for path in glob.glob(osp.join(out_dir, '**', '*.*'), recursive=True):
        if path.endswith(('.png', '.npz')):
            with open(path, 'rb') as f:
                files[osp.relpath(path, out_dir)] = f.read()
    return files


def protector(method, out_dir, prompt, batch_size, resume=False, workers=0):
    """A protector of the copies compared here; in this process by default,
    where the kill switches patch its module."""
    return Protector(
        method,
        str(out_dir),
        BUDGET,
        prompt_mode=prompt,
        batch_size=batch_size,
        resume=resume,
        save_noise=True,
        workers=workers)


def statuses(records):
    return {file: record['status'] for file, record in records.items()}


@pytest.mark.parametrize('name,prompt', CASES, ids=lambda v: str(v))
def test_any_order_batching_sharding_and_resume_give_the_same_bytes(
        items, tmp_path, checkpoint, monkeypatch, name, prompt):
    reference = tmp_path / 'reference'
    protector(build(name, checkpoint), reference, prompt, 1).run(
        items, str(reference / 'manifest.jsonl'), show_progress=False)
    expected = copy_bytes(str(reference))
    # Image and noise of each image with objects, the empty one's copy.
    assert len(expected) == 2 * len(items) - 1
    expected_statuses = statuses(
        load_manifest(str(reference / 'manifest.jsonl')))

    rng = np.random.default_rng(7)
    mid_run = 0
    for draw in range(DRAWS):
        kind = KILLS[draw % len(KILLS)]
        order = [items[i] for i in rng.permutation(len(items))]
        batch_size = int(rng.integers(1, 5))
        killed_rank = int(rng.integers(2))
        killed = shard(order, killed_rank, 2)
        # A noise kill needs an image that asks for noise.
        kill_points = len([
            item for item in killed
            if kind != 'noise' or EMPTY not in item.img_path
        ])
        kill_at = int(rng.integers(kill_points))
        out = tmp_path / f'copy{draw}'
        # A fresh instance per process, as two ranks would have.
        for rank in range(2):
            with monkeypatch.context() as patch:
                method = build(name, checkpoint)
                if rank == killed_rank:
                    method = kill_switch(patch, kind, kill_at, method)
                try:
                    protector(method, out, prompt, batch_size).run(
                        shard(order, rank, 2),
                        manifest_shard_path(str(out), rank),
                        show_progress=False)
                except Killed:
                    assert rank == killed_rank
                else:
                    assert rank != killed_rank, 'the kill did not land'
        # The killed process also left half a manifest line behind.
        manifest = manifest_shard_path(str(out), killed_rank)
        with open(manifest, 'a') as f:
            f.write('{"file": "img_dir/im')
        recorded = load_manifest(manifest)
        resumed = protector(
            build(name, checkpoint),
            out,
            prompt,
            int(rng.integers(1, 5)),
            resume=True)
        written = [
            item for item in killed if osp.isfile(resumed.output_file(item))
        ]
        if kind == 'image':
            # The image it was writing made it to disk, its record did not.
            assert len(written) > len(recorded)
        if kill_at > 0 and written:
            mid_run += 1
        counts = resumed.run(
            killed,
            manifest,
            done=previous_records(str(out)),
            show_progress=False)
        # The resume does exactly the images without a record.
        assert sum(counts.values()) == len(killed) - len(recorded)
        assert copy_bytes(str(out)) == expected, (draw, kind, kill_at)
        records = {}
        for rank in range(2):
            records.update(load_manifest(manifest_shard_path(str(out), rank)))
        assert statuses(records) == expected_statuses
    # The kills landed in the middle of runs that had written images.
    assert mid_run > 0


@pytest.mark.parametrize('prompt', ['union', 'per-class', 'points'])
def test_generator_passes_filled_up_give_the_same_bytes(
        items, tmp_path, prompt):
    """``forward_batch > 1``: every pass of the network has that many calls,
    the last filled up with copies (``fill_batch``), so the batch size and
    order do not change a byte; the noise is that of one call per pass up
    to float rounding. A generator with codes makes a second, partial pass
    for the background of whole-image prompts."""
    checkpoint = save_micro_generator(
        tmp_path / 'coded.pth',
        num_codes=4,
        texture_period=4,
        dc_free=True,
        token_slice='fixed')
    copies = []
    for forward_batch, batch_size, order in ((1, 1, items), (3, 4, items),
                                             (3, 1, items[::-1]),
                                             (3, 2, items[1::2] + items[::2])):
        out = tmp_path / f'fb{forward_batch}_b{batch_size}_{len(copies)}'
        method = UnSegGenerator(checkpoint, forward_batch=forward_batch)
        protector(method, out, prompt, batch_size).run(
            order, str(out / 'manifest.jsonl'), show_progress=False)
        copies.append(copy_bytes(str(out)))
    single, *filled = copies
    assert len(single) == 2 * len(items) - 1
    assert all(copy == filled[0] for copy in filled)
    assert filled[0] == single


def test_uniform_noise_is_drawn_per_image_from_its_key():
    image = np.zeros((6, 8, 3), np.uint8)
    method = UniformNoise(seed=0)
    a, b, a_again = method.generate(
        [image] * 3,
        [Prompt(key='a.png'),
         Prompt(key='b.png'),
         Prompt(key='a.png')])
    # Image 'b' does not get (a shifted stream of) image 'a''s noise, and
    # 'a' gets the same noise wherever it comes.
    assert np.array_equal(a, a_again)
    assert np.abs(a - b).mean() > 0.3
    assert not np.array_equal(
        UniformNoise(seed=1).generate([image], [Prompt(key='a.png')])[0], a)
    # Without a key the pixels identify the image.
    other = image + 1
    first = method.generate([image, other], [Prompt(), Prompt()])
    assert np.array_equal(method.generate([image], [Prompt()])[0], first[0])
    assert not np.array_equal(first[0], first[1])
    assert sample_seed(Prompt(key='a.png'),
                       image) != sample_seed(Prompt(key='b.png'), image)
