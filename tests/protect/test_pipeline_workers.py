"""Worker processes load and finish the images while the method makes the
noise: the copy, its records and their order are the same for any number
of workers, and a killed run with workers resumes to the same bytes, with
another worker count too (issue 14, item 1)."""
import collections
import json
import os
import pathlib
import pickle
import shutil
import signal
import subprocess
import sys
import time
from multiprocessing.shared_memory import SharedMemory

import cv2
import numpy as np
import pytest

from mmunseg.protect import (Prompt, Protector, UniformNoise, UnSegGenerator,
                             load_manifest, read_image, shared_arrays)
from mmunseg.protect.pipeline import StagePool, default_workers
from mmunseg.protect.protector import Loaded, previous_records
from mmunseg.protect.shared_arrays import SharedArray, ship, take_shared
from tests.protect.test_protector import BUDGET, camvid, items_of
from tests.protect.test_reproducible_copies import (Killed, KilledAfter,
                                                    copy_bytes, kill_switch,
                                                    statuses)
from tests.tools.test_protect_copies import protect, small_camvid
from tests.utils import REPO_ROOT, save_micro_generator

assert camvid  # a fixture, used by name


@pytest.fixture(scope='module')
def checkpoint(tmp_path_factory):
    return save_micro_generator(tmp_path_factory.mktemp('g') / 'g.pth')


@pytest.fixture
def sources(camvid):
    """Four real CamVid images, one of them without objects, and a corrupt
    one: every kind of record."""
    src, names = camvid
    names = names[:4]
    shape = read_image(str(src / 'img_dir' / 'train' / f'{names[3]}.jpg'))
    cv2.imwrite(
        str(src / 'ann_dir' / 'train' / f'{names[3]}.png'),
        np.full(shape.shape[:2], 255, np.uint8))
    (src / 'img_dir' / 'train' / 'broken.jpg').write_bytes(b'\xff\xd8 no')
    shutil.copy(src / 'ann_dir' / 'train' / f'{names[0]}.png',
                src / 'ann_dir' / 'train' / 'broken.png')
    return src, names[:2] + ['broken'] + names[2:]


def protector(checkpoint, out, workers, resume=False, batch_size=2):
    return Protector(
        UnSegGenerator(checkpoint),
        str(out),
        BUDGET,
        batch_size=batch_size,
        resume=resume,
        save_noise=True,
        workers=workers)


def manifest_lines(path):
    """The records as written, in order, without the method's timing."""
    with open(path) as f:
        records = [json.loads(line) for line in f]
    for record in records:
        record.pop('seconds', None)
    return records


def test_any_worker_count_writes_the_same_bytes_and_records(
        sources, tmp_path, checkpoint):
    src, names = sources
    copies, manifests = [], []
    for workers in (0, 1, 2):
        out = tmp_path / f'workers{workers}'
        counts = protector(checkpoint, out, workers).run(
            items_of(src, names),
            str(out / 'manifest.jsonl'),
            show_progress=False)
        assert counts == dict(protected=3, failed=1, copied_empty_mask=1)
        copies.append(copy_bytes(str(out)))
        manifests.append(manifest_lines(str(out / 'manifest.jsonl')))
    # Three images and their noise, the empty one's copy.
    assert len(copies[0]) == 7
    assert copies[1] == copies[0] and copies[2] == copies[0]
    files = [f'img_dir/train/{name}.png' for name in names]
    assert [record['file'] for record in manifests[0]] == files
    assert manifests[1] == manifests[0] and manifests[2] == manifests[0]


@pytest.mark.parametrize('kind,at', [('noise', 3), ('record', 2)])
def test_a_killed_run_with_workers_resumes_to_the_same_bytes(
        camvid, tmp_path, checkpoint, monkeypatch, kind, at):
    """Killed in this process at the noise of an image or at a record, with
    images being finished in the workers; resumed with another count."""
    src, names = camvid
    items = items_of(src, names)
    reference = tmp_path / 'reference'
    protector(checkpoint, reference, 0).run(
        items, str(reference / 'manifest.jsonl'), show_progress=False)
    out = tmp_path / 'killed'
    manifest = str(out / 'manifest.jsonl')
    with monkeypatch.context() as patch:
        killed = protector(checkpoint, out, 2)
        killed.method = kill_switch(patch, kind, at, killed.method)
        with pytest.raises(Killed):
            killed.run(items, manifest, show_progress=False)
    recorded = load_manifest(manifest)
    assert len(recorded) < len(items)
    resumed = protector(checkpoint, out, 1, resume=True)
    counts = resumed.run(
        items, manifest, done=previous_records(str(out)), show_progress=False)
    assert sum(counts.values()) == len(items) - len(recorded)
    assert copy_bytes(str(out)) == copy_bytes(str(reference))
    assert statuses(load_manifest(manifest)) == statuses(
        load_manifest(str(reference / 'manifest.jsonl')))


class SigKilledAfter(KilledAfter):
    """Dies at once (SIGKILL, no clean-up) when asked for the noise of more
    than ``images`` images."""

    def generate(self, images, prompts):
        try:
            return super().generate(images, prompts)
        except Killed:
            os.kill(os.getpid(), signal.SIGKILL)


def killed_run(src, names, out, checkpoint, at):
    """What the killed process runs: a copy with two workers, one image a
    batch (four batches in flight), killed when asked for the noise of the
    image after ``at``: images are being loaded and finished then."""
    from mmunseg.utils import register_all_modules
    register_all_modules()
    run = protector(checkpoint, out, 2, batch_size=1)
    run.method = SigKilledAfter(run.method, at)
    run.run(
        items_of(pathlib.Path(src), names),
        os.path.join(out, 'manifest.jsonl'),
        show_progress=False)


def wait_for_group_to_end(group, timeout=60):
    """Wait for the processes a killed process left (its workers and their
    server) to end; kill what remains after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.killpg(group, 0)
        except ProcessLookupError:
            return
        time.sleep(0.2)
    os.killpg(group, signal.SIGKILL)


def test_a_run_killed_by_a_signal_mid_pipeline_resumes_to_the_same_bytes(
        camvid, tmp_path, checkpoint):
    src, names = camvid
    items = items_of(src, names)
    reference = tmp_path / 'reference'
    protector(checkpoint, reference, 0).run(
        items, str(reference / 'manifest.jsonl'), show_progress=False)
    out = tmp_path / 'killed'
    call = (f'from tests.protect.test_pipeline_workers import killed_run; '
            f'killed_run({str(src)!r}, {names!r}, {str(out)!r}, '
            f'{checkpoint!r}, 4)')
    process = subprocess.Popen([sys.executable, '-c', call],
                               cwd=REPO_ROOT,
                               env=dict(
                                   os.environ,
                                   PYTHONPATH=REPO_ROOT,
                                   OMP_NUM_THREADS='1'),
                               stderr=subprocess.PIPE,
                               text=True,
                               start_new_session=True)
    _, stderr = process.communicate(timeout=600)
    assert process.returncode == -signal.SIGKILL, stderr[-3000:]
    wait_for_group_to_end(process.pid)
    manifest = str(out / 'manifest.jsonl')
    recorded = load_manifest(manifest)
    assert len(recorded) < len(items)
    resumed = protector(checkpoint, out, 1, resume=True)
    counts = resumed.run(
        items, manifest, done=previous_records(str(out)), show_progress=False)
    assert sum(counts.values()) == len(items) - len(recorded)
    assert copy_bytes(str(out)) == copy_bytes(str(reference))
    # Its pool removed what shared memory the killed one left in flight.
    assert not [
        name for name in os.listdir(shared_arrays.SHARED_MEMORY_DIR)
        if name.startswith(f'mmunseg_{process.pid}_')
    ]


def test_the_pool_runs_stages_in_other_processes():
    with StagePool(2) as pool:
        pids = {pool.submit(os.getpid).result() for _ in range(4)}
    assert os.getpid() not in pids
    with StagePool(0) as pool:
        assert pool.submit(os.getpid).result() == os.getpid()
    assert 1 <= default_workers() <= 4
    assert default_workers(local_processes=10**6) == 1
    with pytest.raises(ValueError, match='workers'):
        Protector(UniformNoise(), '/tmp/x', BUDGET, workers=-1)


def segment_exists(name):
    try:
        SharedMemory(name=name).close()
    except FileNotFoundError:
        return False
    return True


def test_an_array_crosses_through_shared_memory_which_is_then_removed():
    noise = np.random.default_rng(0).uniform(-1, 1, (720, 960, 3))
    noise = noise.astype(np.float32).transpose(1, 0, 2)  # not contiguous
    rebuild, (name, shape, dtype) = SharedArray(noise).__reduce__()
    assert rebuild is take_shared and segment_exists(name)
    received = rebuild(name, shape, dtype)
    assert received.dtype == np.float32 and received.shape == (960, 720, 3)
    assert np.array_equal(received, noise)
    assert not segment_exists(name)
    # Through a real pickle, as the pool sends it: a plain array arrives.
    received = pickle.loads(pickle.dumps(SharedArray(noise)))
    assert type(received) is np.ndarray and np.array_equal(received, noise)


def test_small_arrays_and_a_full_shared_memory_cross_in_the_pipe(monkeypatch):
    mask = np.ones((100, 100), bool)
    assert SharedArray(mask).__reduce__()[0] is np.asarray
    image = np.zeros((720, 960, 3), np.uint8)
    assert SharedArray(image).__reduce__()[0] is take_shared
    pickle.loads(pickle.dumps(SharedArray(image)))  # its segment removed
    usage = collections.namedtuple('usage', 'total used free')
    monkeypatch.setattr(shared_arrays.shutil, 'disk_usage',
                        lambda path: usage(64 << 20, 63 << 20, 1 << 20))
    rebuild, (array, ) = SharedArray(image).__reduce__()
    assert rebuild is np.asarray and array is image


#: A process that leaves a segment behind, as one killed with its resource
#: tracker does.
LEAVE_A_SEGMENT = """
import os
from multiprocessing import resource_tracker
from multiprocessing.shared_memory import SharedMemory
left = SharedMemory(f'mmunseg_{os.getpid()}_0a1b', create=True, size=16)
resource_tracker.unregister(left._name, 'shared_memory')
print(left.name)
"""


def test_a_pool_removes_the_segments_of_a_main_process_that_is_gone():
    left = subprocess.run([sys.executable, '-c', LEAVE_A_SEGMENT],
                          capture_output=True,
                          text=True,
                          check=True).stdout.strip()
    assert segment_exists(left)
    live = shared_arrays.create_segment(16)
    assert live.name.startswith(f'mmunseg_{os.getpid()}_')
    try:
        with StagePool(1):
            assert not segment_exists(left)
            assert segment_exists(live.name)
    finally:
        live.close()
        live.unlink()


def test_ship_wraps_the_arrays_of_a_loaded_image_and_nothing_else():
    image = np.zeros((720, 960, 3), np.uint8)
    mask = np.ones((720, 960), bool)
    labels = np.zeros((720, 960), np.int64)
    box = np.zeros(4, np.float32)
    calls = [(None, Prompt(mask=mask, labels=labels, key='a')),
             (mask, Prompt(mask=mask, class_id=3, key='a#class_3')),
             (None, Prompt(box=box, key='b'))]
    loaded = Loaded(image, mask, calls)
    shipped = ship(loaded)
    assert isinstance(shipped.image, SharedArray)
    assert shipped.object_mask is shipped.calls[1][0]  # once, for all uses
    assert shipped.calls[1][1].mask is shipped.object_mask
    assert isinstance(shipped.calls[0][1].labels, SharedArray)
    # A small array crosses in the pipe, when pickled (its size decides).
    assert isinstance(shipped.calls[2][1].box, SharedArray)
    assert shipped.calls[2][1].box.__reduce__()[0] is np.asarray
    assert loaded.image is image and loaded.calls[0][1].labels is labels
    received = pickle.loads(pickle.dumps(shipped))
    assert np.array_equal(received.image, image)
    assert received.calls[0][1].mask is received.object_mask
    assert np.array_equal(received.calls[0][1].labels, labels)
    assert received.calls[0][1].key == 'a'
    assert received.calls[1][1].class_id == 3
    assert np.array_equal(received.calls[2][1].box, box)
    record = {'status': 'failed'}
    assert ship(record) is record and ship(3) == 3
    spec = ('x', [1, 2.0])
    assert ship(spec) is spec


def test_the_tool_checks_workers_and_resumes_with_another_count(
        tmp_path, capsys):
    config, _ = small_camvid(tmp_path / 'camvid', count=2)
    out = tmp_path / 'out'
    with pytest.raises(SystemExit) as error:
        protect(config, '--method', 'uniform', '--out-dir', out, '--workers',
                -1)
    assert error.value.code == 2
    assert '--workers: -1 is not >= 0' in capsys.readouterr().err
    assert not out.exists()
    assert protect(config, '--method', 'uniform', '--out-dir', out, '--limit',
                   1, '--workers', 0) == 0
    assert 'workers' not in json.load(open(out / 'protect_settings.json'))
    assert protect(config, '--method', 'uniform', '--out-dir', out, '--resume',
                   '--workers', 2) == 0
    summary = json.load(open(out / 'summary.json'))
    assert summary['counts'] == {'protected': 2}
    at_once = tmp_path / 'at_once'
    assert protect(config, '--method', 'uniform', '--out-dir', at_once,
                   '--workers', 2) == 0
    assert copy_bytes(str(out)) == copy_bytes(str(at_once))
