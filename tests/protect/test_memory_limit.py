"""Images are sized from their headers before they are read: one that
cannot fit in memory is a failed record, batches stay under the limit, and
one that runs out of memory all the same fails alone (issue 11, item 5)."""
import os.path as osp

import cv2
import numpy as np
import pytest
import torch

from mmunseg.protect import UniformNoise, load_manifest
from mmunseg.protect import protector as protector_module
from mmunseg.protect import read_image
from mmunseg.protect.image_io import ImageTooLarge, image_size
from mmunseg.protect.memory import PROTECTOR_BYTES_PER_PIXEL, available_memory
from tests.protect.test_protector import BUDGET, camvid, items_of

assert camvid  # a fixture, used by name


class Recording(UniformNoise):
    """Uniform noise that records how many images each call had."""

    def __init__(self):
        super().__init__()
        self.calls = []

    def generate(self, images, prompts):
        self.calls.append(len(images))
        return super().generate(images, prompts)


def run(method, src, names, out, **kwargs):
    # In this process: the tests patch the stages' module, which worker
    # processes do not see.
    kwargs.setdefault('workers', 0)
    protector = protector_module.Protector(method, str(out), BUDGET, **kwargs)
    protector.run(
        items_of(src, names), str(out / 'manifest.jsonl'), show_progress=False)
    return protector, load_manifest(str(out / 'manifest.jsonl'))


def test_batches_are_cut_to_fit_the_memory_limit(camvid, tmp_path):
    src, names = camvid
    method = Recording()
    one = protector_module.Protector(method, str(tmp_path),
                                     BUDGET).memory_needed(480, 360)
    _, records = run(
        method,
        src,
        names,
        tmp_path / 'out',
        batch_size=4,
        max_memory=int(2.5 * one))
    assert method.calls == [2, 2, 2]
    assert all(r['status'] == 'protected' for r in records.values())


def test_an_image_over_the_limit_fails_unread_and_the_rest_go_on(
        camvid, tmp_path, monkeypatch):
    src, names = camvid
    big = src / 'img_dir' / 'train' / 'big.jpg'
    cv2.imwrite(str(big), np.zeros((1200, 1600, 3), np.uint8))
    cv2.imwrite(
        str(src / 'ann_dir' / 'train' / 'big.png'),
        np.zeros((1200, 1600), np.uint8))
    read = []

    def reading(path, *args):
        read.append(str(path))
        return read_image(path, *args)

    monkeypatch.setattr(protector_module, 'read_image', reading)
    method = UniformNoise()
    limit = protector_module.Protector(method, str(tmp_path),
                                       BUDGET).memory_needed(800, 600)
    _, records = run(
        method, src, names[:2] + ['big'], tmp_path / 'out', max_memory=limit)
    (failed, ) = [r for r in records.values() if r['status'] == 'failed']
    assert failed['reason'] == 'too_large'
    assert 'big.jpg' in failed['error'] and '1600x1200' in failed['error']
    assert str(big) not in read
    assert sum(r['status'] == 'protected' for r in records.values()) == 2


class OutOfMemoryOn(UniformNoise):
    """Uniform noise that runs out of memory on any call with an image
    whose key holds ``name``."""

    def __init__(self, name, error):
        super().__init__()
        self.name = name
        self.error = error

    def generate(self, images, prompts):
        if any(self.name in prompt.key for prompt in prompts):
            raise self.error
        return super().generate(images, prompts)


@pytest.mark.parametrize('stage,error', [
    ('load', MemoryError()),
    ('noise', MemoryError()),
    ('noise', torch.cuda.OutOfMemoryError('CUDA out of memory')),
    ('write', MemoryError()),
])
def test_an_image_that_runs_out_of_memory_fails_alone_and_the_job_goes_on(
        camvid, tmp_path, monkeypatch, stage, error):
    """The estimate was too low for one image: wherever it runs out of
    memory, that image gets a failed record and no file; the others of its
    batch are protected, the same bytes as without it."""
    src, names = camvid
    names = names[:4]
    victim = names[1]
    clean, _ = run(UniformNoise(), src, names, tmp_path / 'clean')
    method = UniformNoise()
    if stage == 'load':

        def reading(path, *args):
            if victim in str(path):
                raise error
            return read_image(path, *args)

        monkeypatch.setattr(protector_module, 'read_image', reading)
    elif stage == 'noise':
        method = OutOfMemoryOn(victim, error)
    else:
        save = protector_module.save_perturbation

        # After the image is written: it must not stay behind.
        def saving(path, delta):
            if victim in path:
                raise error
            save(path, delta)

        monkeypatch.setattr(protector_module, 'save_perturbation', saving)
    protector, records = run(
        method, src, names, tmp_path / 'out', batch_size=4, save_noise=True)
    (failed, ) = [r for r in records.values() if r['status'] == 'failed']
    assert failed['reason'] == 'out_of_memory'
    assert victim in failed['error'] and 'out of memory' in failed['error']
    assert sum(r['status'] == 'protected' for r in records.values()) == 3
    for item in items_of(src, names):
        path = protector.output_file(item)
        if victim in path:
            assert not osp.exists(path)
            continue
        with open(path, 'rb') as f, open(clean.output_file(item), 'rb') as g:
            assert f.read() == g.read()


def test_the_estimate_covers_the_protector_and_the_method():
    method = UniformNoise()
    protector = protector_module.Protector(method, '/tmp/x', BUDGET)
    assert protector.memory_needed(
        1000,
        500) == (PROTECTOR_BYTES_PER_PIXEL + method.bytes_per_pixel) * 500000
    per_class = protector_module.Protector(
        method, '/tmp/x', BUDGET, prompt_mode='per-class', batch_size=4)
    # A chunk of 4 per-object calls of the one image.
    assert per_class.memory_needed(
        1000, 500) == (PROTECTOR_BYTES_PER_PIXEL +
                       4 * method.bytes_per_pixel) * 500000
    assert available_memory() > 0


def test_sizes_come_from_headers_and_bombs_are_refused_before_decoding(
        tmp_path, monkeypatch):
    path = tmp_path / 'a.png'
    cv2.imwrite(str(path), np.zeros((30, 40, 3), np.uint8))
    assert image_size(path) == (40, 30)
    (tmp_path / 'bad.png').write_bytes(b'not an image')
    assert image_size(tmp_path / 'bad.png') is None
    monkeypatch.setattr(cv2, 'imdecode', None)  # never reached
    with pytest.raises(ImageTooLarge, match='40x30 = 1200 pixels'):
        read_image(path, max_pixels=1000)


@pytest.mark.parametrize(
    'bad', [dict(batch_size=0),
            dict(jpeg_quality=500),
            dict(max_memory=0)])
def test_protector_options_are_checked(bad):
    with pytest.raises(ValueError, match=next(iter(bad))):
        protector_module.Protector(UniformNoise(), '/tmp/x', BUDGET, **bad)
