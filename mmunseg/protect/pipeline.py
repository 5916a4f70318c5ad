"""Where the per-image stages of a protect job run: in this process, or in a
pool of worker processes beside it.

Decoding, quantising, verifying and encoding an image take a CPU core for a
fraction of a second each, while the noise method waits on its device. A
:class:`StagePool` runs those stages in worker processes so that the method
(which stays in the main process, with its model and device) is not kept
waiting. Workers receive plain values only (numpy arrays, paths and
dataclasses of them) and start from a fresh interpreter (``forkserver``
where the platform has it, else ``spawn``), never as a ``fork`` of a
process that may hold CUDA or threads.

An image's arrays (its pixels, its noise) go to and from the workers
through shared memory (:mod:`~mmunseg.protect.shared_arrays`), not through
the pool's pipe.
"""
import multiprocessing
import os
from concurrent.futures import Future

from ..utils.process_pool import WatchedProcessPool
from . import shared_arrays
from .shared_arrays import remove_orphaned_segments, ship

#: The most workers :func:`default_workers` chooses: beyond this the main
#: process (the method, and sending arrays to and fro) is the bottleneck.
MAX_DEFAULT_WORKERS = 4

#: The module whose functions the workers run; a ``forkserver`` imports it
#: once, so that each worker starts as a cheap fork of it.
STAGES_MODULE = 'mmunseg.protect.protector'


def call_shipped(fn, *args):
    """``fn(*args)`` in a worker, its result's arrays shipped back."""
    return ship(fn(*args))


def default_workers(local_processes=None):
    """Workers for one protect process: its share of the CPU cores, at
    least 1, at most :data:`MAX_DEFAULT_WORKERS`.

    Args:
        local_processes (int, optional): Protect processes on this machine
            (``torchrun`` ranks); default ``$LOCAL_WORLD_SIZE`` or 1.

    Returns:
        int: The number of workers.
    """
    if local_processes is None:
        local_processes = int(os.environ.get('LOCAL_WORLD_SIZE', 1))
    cores = (os.cpu_count() or 1) // max(local_processes, 1)
    return min(MAX_DEFAULT_WORKERS, max(1, cores))


def check_workers(workers):
    """``workers`` if it is an int >= 0, else a ValueError."""
    whole = isinstance(workers, int) and not isinstance(workers, bool)
    if not whole or workers < 0:
        raise ValueError(f'workers must be an int >= 0, got {workers!r}')
    return workers


def start_context():
    """The multiprocessing context of the workers: ``forkserver``, with the
    stages preloaded, or ``spawn`` where there is no forkserver."""
    if 'forkserver' not in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context('spawn')
    context = multiprocessing.get_context('forkserver')
    # Only read when the server starts (the first pool of this process).
    context.set_forkserver_preload([STAGES_MODULE])
    return context


def init_worker(owner):
    """Set up a worker: one thread (the pool, not each worker, uses the
    cores) and its shared memory named after the main process, whose pid
    is ``owner``."""
    import cv2
    import torch
    torch.set_num_threads(1)
    cv2.setNumThreads(1)
    shared_arrays.segment_owner = owner


class StagePool:
    """Runs stage functions in ``workers`` processes, or here for 0.

    Use as a context manager; :meth:`submit` returns a
    :class:`concurrent.futures.Future` either way. In this process the
    function runs at once and its exceptions propagate from
    :meth:`submit`, exactly as a direct call.

    Args:
        workers (int): Worker processes, >= 0.
    """

    def __init__(self, workers):
        self.workers = check_workers(workers)
        self._executor = None

    def __enter__(self):
        if self.workers:
            # What a job killed with its process group left behind.
            remove_orphaned_segments()
            # Its workers end with this process, however it ends.
            self._executor = WatchedProcessPool(
                self.workers,
                start_context(),
                initializer=init_worker,
                initargs=(os.getpid(), ))
        return self

    def __exit__(self, kind, error, traceback):
        if self._executor is not None:
            # On an error, the queued tasks are dropped; running ones end.
            self._executor.shutdown(wait=True, cancel_futures=kind is not None)
            self._executor = None

    def submit(self, fn, *args):
        """Run ``fn(*args)`` (a module-level function of picklable values)
        in a worker, their arrays and its result's through shared memory,
        or here without workers."""
        if self._executor is not None:
            return self._executor.submit(call_shipped, fn, *map(ship, args))
        future = Future()
        future.set_result(fn(*args))
        return future
