"""Child processes that end with the process that made them.

A :class:`concurrent.futures.ProcessPoolExecutor`'s workers notice that
their main process is gone only when they next talk to it. A main process
killed by a signal (``kill PID``, an out-of-memory kill) therefore leaves
its busy workers running: a victim training of a benchmark runs on for an
hour, a protect worker finishes its queue, holding the CPU, memory and any
lock they took. :class:`WatchedProcessPool` gives every worker a thread
that waits on a pipe only the main process can write to; the kernel closes
it when the main process ends, however it ends, and the worker exits then.
:func:`run_with_parent` does the same for a command run to completion (a
generator training a benchmark starts), through the kernel's parent-death
signal.
"""
import ctypes
import os
import signal
import subprocess
import sys
import threading
from concurrent.futures import ProcessPoolExecutor

# prctl(2) option: the signal a child receives when its parent ends.
PR_SET_PDEATHSIG = 1


class WatchedProcessPool(ProcessPoolExecutor):
    """A :class:`~concurrent.futures.ProcessPoolExecutor` whose workers exit
    once this process is gone.

    Args:
        workers (int): Worker processes.
        context (multiprocessing.context.BaseContext): ``spawn`` or
            ``forkserver``. Not ``fork``: a forked worker would inherit the
            pipe's write end and never see it close.
        initializer (Callable, optional): Run in each worker at its start,
            as the executor's own ``initializer`` (a module-level function).
        initargs (tuple): Its arguments.
    """

    def __init__(self, workers, context, initializer=None, initargs=()):
        if context.get_start_method() == 'fork':
            raise ValueError('WatchedProcessPool needs a spawn or forkserver '
                             'context: forked workers inherit the pipe '
                             'that tells them this process is gone')
        # Only this process holds the write end, and never writes to it.
        self._parent_alive = context.Pipe(duplex=False)
        super().__init__(
            workers,
            mp_context=context,
            initializer=start_worker,
            initargs=(self._parent_alive[0], initializer, initargs))

    def shutdown(self, wait=True, *, cancel_futures=False):
        super().shutdown(wait=wait, cancel_futures=cancel_futures)
        if wait:
            # The workers are gone; without waiting, closing the pipe now
            # would end those still running their last task.
            for end in self._parent_alive:
                end.close()


def start_worker(parent_alive, initializer, initargs):
    """A worker's start: the watch on its parent, then ``initializer``."""
    threading.Thread(
        target=exit_with_parent, args=(parent_alive, ), daemon=True).start()
    if initializer is not None:
        initializer(*initargs)


def exit_with_parent(parent_alive):
    """Wait until the pipe's write end is closed (the parent process is
    gone), then end this process at once."""
    try:
        parent_alive.recv()
    except (EOFError, OSError):
        pass
    os._exit(1)


def run_with_parent(command, **kwargs):
    """:func:`subprocess.run` whose child gets SIGTERM when this process
    ends, however it ends (Linux; elsewhere a plain run).

    Call it from the thread that lives as long as the child should: the
    kernel sends the signal when the thread that started the child exits.

    Args:
        command (list[str]): The program and its arguments.
        **kwargs: Passed to :func:`subprocess.run`.

    Returns:
        subprocess.CompletedProcess: As :func:`subprocess.run`.
    """
    if sys.platform.startswith('linux'):
        kwargs['preexec_fn'] = terminate_with(os.getpid())
    return subprocess.run(command, **kwargs)


def terminate_with(parent):
    """A ``preexec_fn`` that asks for SIGTERM when ``parent`` ends, and
    exits at once if it has already ended.

    Args:
        parent (int): The pid of the process starting the child.
    """
    # Resolved before the fork: the child of a threaded process should not
    # load libraries.
    prctl = ctypes.CDLL(None, use_errno=True).prctl

    def arm():
        if prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), 'prctl(PR_SET_PDEATHSIG)')
        if os.getppid() != parent:
            # The parent died between the fork and the request.
            os._exit(1)

    return arm
