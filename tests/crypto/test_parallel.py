"""run_chunks: in order, in-process for one chunk, on worker processes by default, and on
the process's kernel threads for kernels that release the GIL."""

from __future__ import annotations

import os
import signal
import threading

from riskfed.crypto import parallel
from riskfed.crypto.parallel import chunk_bounds, run_chunks


def where(tag: int) -> tuple[int, int, str]:
    return tag, os.getpid(), threading.current_thread().name


def test_one_chunk_runs_in_the_calling_thread():
    [(tag, pid, name)] = run_chunks(where, [(7,)], n_jobs=2, threads=True)
    assert (tag, pid, name) == (7, os.getpid(), threading.current_thread().name)


def test_threads_share_one_pool_and_keep_the_order():
    first = run_chunks(where, [(k,) for k in range(6)], n_jobs=2, threads=True)
    assert [t for t, _, _ in first] == list(range(6))
    assert {pid for _, pid, _ in first} == {os.getpid()}
    assert all(name.startswith("riskfed-kernel") for _, _, name in first)
    pool = parallel._POOL
    run_chunks(where, [(1,), (2,)], n_jobs=2, threads=True)
    assert parallel._POOL is pool  # no new pool per call


def test_processes_by_default():
    out = run_chunks(where, [(1,), (2,)], n_jobs=2)
    assert [t for t, _, _ in out] == [1, 2]
    assert {pid for _, pid, _ in out} != {os.getpid()}


def test_chunk_bounds_cover_the_range():
    assert chunk_bounds(10, 3, 1) == [(0, 4), (4, 7), (7, 10)]
    assert chunk_bounds(10, 3, 8) == [(0, 10)]
    assert chunk_bounds(0, 3, 1) == []


def test_a_forked_child_gets_its_own_threads():
    """After fork the parent's kernel threads do not exist in the child; the child must
    not queue work on the parent's dead pool."""
    run_chunks(where, [(1,), (2,)], n_jobs=2, threads=True)  # the parent's pool exists
    pid = os.fork()
    if pid == 0:  # child: exit 0 only if the kernels ran on fresh threads
        signal.alarm(20)  # a child stuck on the parent's dead pool dies of SIGALRM
        try:
            out = run_chunks(where, [(1,), (2,)], n_jobs=2, threads=True)
            os._exit(0 if [t for t, _, _ in out] == [1, 2] else 1)
        except BaseException:
            os._exit(2)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
