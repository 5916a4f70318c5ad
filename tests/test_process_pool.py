"""WatchedProcessPool: its workers end with the process that made them,
killed or not, and run the pool's own initializer."""
import multiprocessing
import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from mmunseg.utils.process_pool import WatchedProcessPool, run_with_parent
from tests.utils import REPO_ROOT

# A main process that starts a pool (as benchmarks/methods_table.py starts
# its victim trainings), prints its worker's pid and keeps it busy.
MAIN = textwrap.dedent("""
    import multiprocessing, os, sys, time
    sys.path.insert(0, {repo!r})
    from mmunseg.utils.process_pool import WatchedProcessPool, run_with_parent
    if __name__ == '__main__':
        pool = WatchedProcessPool(1, multiprocessing.get_context({method!r}))
        print(pool.submit(os.getpid).result(), flush=True)
        pool.submit(time.sleep, 300)
        time.sleep(300)
""")

# A main process that runs a long command to completion (as
# benchmarks/methods_table.py trains a generator); the command prints its pid.
RUNNER = textwrap.dedent("""
    import sys
    sys.path.insert(0, {repo!r})
    from mmunseg.utils.process_pool import run_with_parent
    run_with_parent([sys.executable, '-c', 'import os, time; '
                     'print(os.getpid(), flush=True); time.sleep(300)'])
""")


def running(pid):
    """Whether ``pid`` runs (a zombie, dead but not yet reaped, does not)."""
    try:
        with open(f'/proc/{pid}/stat') as stat:
            return stat.read().rsplit(')', 1)[1].split()[0] != 'Z'
    except FileNotFoundError:
        return False


def assert_child_ends_with_main(script):
    """Run ``script``, which prints the pid of a child it keeps busy; kill
    it and check that the child ends within 20 s."""
    main = subprocess.Popen([sys.executable, str(script)],
                            stdout=subprocess.PIPE,
                            text=True)
    child = None
    try:
        child = int(main.stdout.readline())
        assert running(child)
        os.kill(main.pid, signal.SIGKILL)
        main.wait()
        deadline = time.monotonic() + 20
        while running(child) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not running(child), 'the child outlived its main process'
    finally:
        main.kill()
        main.stdout.close()
        if child is not None and running(child):
            # A failed check must not leave an orphan behind.
            os.kill(child, signal.SIGKILL)


@pytest.mark.skipif(
    not os.path.isdir('/proc'), reason='reads process states from /proc')
@pytest.mark.parametrize('method', ['spawn', 'forkserver'])
def test_a_busy_worker_exits_when_its_main_process_is_killed(method, tmp_path):
    if method not in multiprocessing.get_all_start_methods():
        pytest.skip(f'no {method} here')
    script = tmp_path / 'main.py'
    script.write_text(MAIN.format(repo=str(REPO_ROOT), method=method))
    assert_child_ends_with_main(script)


@pytest.mark.skipif(
    not sys.platform.startswith('linux'), reason='a Linux parent-death signal')
def test_a_command_ends_when_the_process_running_it_is_killed(tmp_path):
    script = tmp_path / 'runner.py'
    script.write_text(RUNNER.format(repo=str(REPO_ROOT)))
    assert_child_ends_with_main(script)


def test_run_with_parent_returns_as_subprocess_run():
    done = run_with_parent([sys.executable, '-c', 'print(6 * 7)'],
                           capture_output=True,
                           text=True,
                           check=True)
    assert done.stdout == '42\n'


def remember(path, value):
    with open(path, 'w') as file:
        file.write(value)


def test_runs_the_initializer_and_ends_cleanly(tmp_path):
    marker = tmp_path / 'initialized'
    with WatchedProcessPool(
            2,
            multiprocessing.get_context('spawn'),
            initializer=remember,
            initargs=(str(marker), 'yes')) as pool:
        assert sorted(pool.map(abs, [-2, -1])) == [1, 2]
    assert marker.read_text() == 'yes'
    assert all(end.closed for end in pool._parent_alive)


def test_refuses_fork():
    if 'fork' not in multiprocessing.get_all_start_methods():
        pytest.skip('no fork here')
    with pytest.raises(ValueError, match='spawn or forkserver'):
        WatchedProcessPool(1, multiprocessing.get_context('fork'))
