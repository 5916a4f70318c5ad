"""A protected copy is the same bytes however it was made: any order, batch
size, sharding, or a kill followed by a resume (issue 11, item 6)."""
import glob
import os.path as osp

import numpy as np
import pytest

from mmunseg.protect import (Protector, UniformNoise, UnSegGenerator,
                             load_manifest, shard)
from mmunseg.protect.methods import Prompt, sample_seed
from mmunseg.protect.protector import manifest_shard_path, previous_records
from mmunseg.registry import NOISE_METHODS
from tests.protect.test_protector import (EPS_BACKGROUND, EPS_OBJECT, camvid,
                                          items_of)
from tests.utils import save_micro_generator

assert camvid  # a fixture, used by name

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


class Killed(Exception):
    """Stands in for a kill: the run stops between two writes."""


class KilledAfter:
    """A method that dies when asked for noise beyond ``images`` images."""

    def __init__(self, method, images):
        self.method = method
        self.images = images

    def __getattr__(self, name):
        return getattr(self.method, name)

    def generate(self, images, prompts):
        if len(images) > self.images:
            raise Killed
        self.images -= len(images)
        return self.method.generate(images, prompts)


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


def protector(method, out_dir, prompt, batch_size, resume=False):
    return Protector(
        method,
        str(out_dir),
        EPS_OBJECT,
        EPS_BACKGROUND,
        prompt_mode=prompt,
        batch_size=batch_size,
        resume=resume,
        save_noise=True)


@pytest.mark.parametrize('seed', [0, 1])
@pytest.mark.parametrize('name,prompt', CASES, ids=lambda v: str(v))
def test_any_order_batching_sharding_and_resume_give_the_same_bytes(
        camvid, tmp_path, checkpoint, name, prompt, seed):
    src, names = camvid
    items = items_of(src, names[:5])
    reference = tmp_path / 'reference'
    protector(build(name, checkpoint), reference, prompt, 1).run(
        items, str(reference / 'manifest.jsonl'), show_progress=False)
    expected = copy_bytes(str(reference))
    assert len(expected) == 2 * len(items)  # image and noise of each

    rng = np.random.default_rng(seed)
    order = [items[i] for i in rng.permutation(len(items))]
    batch_size = int(rng.integers(2, 5))
    killed_rank = int(rng.integers(2))
    kill_at = int(rng.integers(len(shard(order, killed_rank, 2))))
    out = tmp_path / 'sharded'
    # A fresh instance per process, as two ranks would have.
    for rank in range(2):
        method = build(name, checkpoint)
        if rank == killed_rank:
            method = KilledAfter(method, kill_at)
        try:
            protector(method, out, prompt, batch_size).run(
                shard(order, rank, 2),
                manifest_shard_path(str(out), rank),
                show_progress=False)
        except Killed:
            assert rank == killed_rank
    # The killed process also left half a manifest line behind.
    with open(manifest_shard_path(str(out), killed_rank), 'a') as f:
        f.write('{"file": "img_dir/tra')
    resumed = protector(
        build(name, checkpoint),
        out,
        prompt,
        int(rng.integers(1, 4)),
        resume=True)
    counts = resumed.run(
        shard(order, killed_rank, 2),
        manifest_shard_path(str(out), killed_rank),
        done=previous_records(str(out)),
        show_progress=False)
    assert sum(counts.values()) == len(shard(order, killed_rank, 2)) - kill_at
    assert copy_bytes(str(out)) == expected
    records = {}
    for rank in range(2):
        records.update(load_manifest(manifest_shard_path(str(out), rank)))
    assert sorted(records) == sorted(
        load_manifest(str(reference / 'manifest.jsonl')))
    assert all(r['status'] == 'protected' for r in records.values())


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
