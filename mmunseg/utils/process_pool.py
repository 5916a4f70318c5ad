"""A process pool whose workers end with the process that made it.

A :class:`concurrent.futures.ProcessPoolExecutor`'s workers notice that
their main process is gone only when they next talk to it. A main process
killed by a signal (``kill PID``, an out-of-memory kill) therefore leaves
its busy workers running: a victim training of a benchmark runs on for an
hour, a protect worker finishes its queue, holding the CPU, memory and any
lock they took. :class:`WatchedProcessPool` gives every worker a thread
that waits on a pipe only the main process can write to; the kernel closes
it when the main process ends, however it ends, and the worker exits then.
"""
import os
import threading
from concurrent.futures import ProcessPoolExecutor


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
