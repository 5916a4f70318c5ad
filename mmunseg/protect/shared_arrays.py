"""Numpy arrays that cross between processes through shared memory.

A protect job's worker processes send each image's pixels to the main
process and receive them back with its noise. Pickled into the pool's pipe
(64 KiB at a time), an 8 MB noise array costs the sender and the receiver
a copy each and a hundred wake-ups: on two busy cores 53 ms per crossing,
against 15 ms through shared memory. A :class:`SharedArray` instead
pickles into the name of a shared memory segment holding the array; the
receiver copies it out and removes the segment.

Segments are named after the pool's main process
(``mmunseg_<pid>_<random>``), so that those of a job killed with its whole
process group (multiprocessing's resource tracker too) are removed by the
next pool on this machine (:func:`remove_orphaned_segments`).
"""
import dataclasses
import os
import re
import secrets
import shutil
from multiprocessing.shared_memory import SharedMemory

import numpy as np

#: Arrays smaller than this cross in the pipe: a shared memory segment
#: costs a few system calls and a page fault per 4 KiB.
SHARED_MIN_BYTES = 1 << 20

#: Where Linux keeps shared memory segments (a tmpfs, 64 MiB in a default
#: Docker container): an array that does not fit its free space crosses in
#: the pipe, as writing past a full tmpfs would kill the process (SIGBUS).
SHARED_MEMORY_DIR = '/dev/shm'

SEGMENT_PREFIX = 'mmunseg_'
SEGMENT_NAME = re.compile(rf'{SEGMENT_PREFIX}(\d+)_[0-9a-f]+')

#: The pid segments are named after: the pool's main process, set in its
#: workers (their parent is a fork server); None: this process.
segment_owner = None


class SharedArray:
    """A numpy array that, when pickled, moves into a shared memory
    segment; the receiver unpickles a plain array, copied out of the
    segment, which it then removes.

    Small arrays, or any where shared memory is short, pickle as they are.
    A segment whose pickle is never unpickled (its receiver killed first)
    is removed by multiprocessing's resource tracker when the processes
    end, or, if that is killed too, by :func:`remove_orphaned_segments`.

    Args:
        array (np.ndarray): Any shape and dtype.
    """

    def __init__(self, array):
        self.array = array

    def __reduce__(self):
        array = np.ascontiguousarray(self.array)
        if array.nbytes < SHARED_MIN_BYTES or not shared_memory_free(
                array.nbytes):
            return np.asarray, (array, )
        segment = create_segment(array.nbytes)
        try:
            np.ndarray(array.shape, array.dtype, buffer=segment.buf)[...] = \
                array
        except BaseException:
            segment.close()
            segment.unlink()
            raise
        segment.close()
        return take_shared, (segment.name, array.shape, array.dtype.str)


def create_segment(size):
    """A new shared memory segment of ``size`` bytes, named after
    :data:`segment_owner` (macOS allows names of 31 characters)."""
    owner = segment_owner or os.getpid()
    while True:
        try:
            return SharedMemory(
                f'{SEGMENT_PREFIX}{owner}_{secrets.token_hex(6)}',
                create=True,
                size=size)
        except FileExistsError:
            continue


def shared_memory_free(size):
    """Whether ``size`` bytes fit twice in the free shared memory (always,
    where segments do not live in :data:`SHARED_MEMORY_DIR`)."""
    if not os.path.isdir(SHARED_MEMORY_DIR):
        return True
    return shutil.disk_usage(SHARED_MEMORY_DIR).free >= 2 * size


def take_shared(name, shape, dtype):
    """A copy of the array in the segment ``name``, which is then removed
    (the unpickling half of :class:`SharedArray`)."""
    segment = SharedMemory(name)
    try:
        return np.ndarray(shape, dtype, buffer=segment.buf).copy()
    finally:
        segment.close()
        segment.unlink()


def ship(value, shipped=None):
    """``value`` ready to cross to another process: its numpy arrays as
    :class:`SharedArray` s, found in it and in its lists, tuples and
    dataclasses (an image's prompts hold its masks and an int64 class map);
    anything else as it is.

    Args:
        value: What to send.
        shipped (dict, optional): ``id(array) -> SharedArray`` of the
            arrays shipped so far: an array met twice (the object mask and
            the union prompt's) crosses once and arrives as one array.

    Returns:
        ``value``, or a copy with its arrays wrapped.
    """
    shipped = {} if shipped is None else shipped
    if isinstance(value, np.ndarray):
        return shipped.setdefault(id(value), SharedArray(value))
    if type(value) in (list, tuple):
        items = [ship(item, shipped) for item in value]
        if any(new is not old for new, old in zip(items, value)):
            return type(value)(items)
    elif dataclasses.is_dataclass(value) and not isinstance(value, type):
        changes = {}
        for field in dataclasses.fields(value):
            old = getattr(value, field.name)
            new = ship(old, shipped)
            if new is not old:
                changes[field.name] = new
        if changes:
            return dataclasses.replace(value, **changes)
    return value


def remove_orphaned_segments():
    """Remove the segments whose pool's main process is gone.

    Returns:
        list[str]: Their names.
    """
    if not os.path.isdir(SHARED_MEMORY_DIR):
        return []
    removed = []
    for name in sorted(os.listdir(SHARED_MEMORY_DIR)):
        owner = SEGMENT_NAME.fullmatch(name)
        if owner is None or process_alive(int(owner.group(1))):
            continue
        try:
            os.unlink(os.path.join(SHARED_MEMORY_DIR, name))
        except FileNotFoundError:  # another pool was quicker
            continue
        removed.append(name)
    return removed


def process_alive(pid):
    """Whether a process ``pid`` runs on this machine (as far as this
    process may see)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's
        return True
    return True
