"""Fan kernels out over cores (joblib) or a Dask cluster (joblib's Dask backend).

Kernels call :func:`run_chunks` with a module-level function and one argument tuple per
chunk. With one chunk the function runs in-process (no serialisation). Otherwise kernels
that release the GIL run on a pool of this process's threads, and the others through
joblib with whatever backend is active: loky worker processes by default, or a Dask
cluster inside :func:`dask_backend` (which takes every kernel's chunks). Only public
values and the calling party's own data go to workers, and workers belong to that party
(its cores or its cluster).
"""

from __future__ import annotations

import contextlib
import contextvars
import os
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import joblib

from riskfed.errors import ConfigurationError


def effective_jobs(n_jobs: int | None) -> int:
    """Number of workers ``n_jobs`` means under the active joblib backend."""
    if n_jobs is None or n_jobs == 0:
        n_jobs = 1
    return max(1, int(joblib.effective_n_jobs(n_jobs)))


def local_jobs(n_jobs: int | None) -> int:
    """Local worker processes ``n_jobs`` means on this machine, whatever joblib backend is
    active (joblib semantics: ``-1`` all cores, ``-2`` all but one)."""
    if n_jobs is None or n_jobs == 0:
        return 1
    return n_jobs if n_jobs > 0 else max(1, joblib.cpu_count() + 1 + n_jobs)


def chunk_bounds(total: int, n_jobs: int | None, min_items: int) -> list[tuple[int, int]]:
    """Split ``range(total)`` into at most ``effective_jobs(n_jobs)`` near-equal chunks
    of at least ``min_items`` each (one chunk when the work is small)."""
    if total <= 0:
        return []
    chunks = max(1, min(effective_jobs(n_jobs), total // max(1, min_items)))
    step, extra = divmod(total, chunks)
    bounds, start = [], 0
    for i in range(chunks):
        stop = start + step + (1 if i < extra else 0)
        bounds.append((start, stop))
        start = stop
    return bounds


def run_chunks(func: Callable[..., Any], arg_tuples: Sequence[tuple], *, n_jobs: int | None = 1, threads: bool = False) -> list:
    """Run ``func(*args)`` for each tuple, in order, in parallel when there are several.

    ``threads=True`` is for kernels that spend their time in C with the GIL released
    (riskfed's IFMA kernels): local threads then share the arguments instead of pickling
    them to worker processes, which for a batch of ciphertexts costs as much as the
    kernel saves. Inside :func:`dask_backend` the chunks still go to the cluster.
    """
    if len(arg_tuples) <= 1:
        return [func(*args) for args in arg_tuples]
    if threads and not _ON_DASK.get():
        return list(_thread_pool(local_jobs(n_jobs)).map(lambda args: func(*args), arg_tuples))
    return joblib.Parallel(n_jobs=n_jobs)(joblib.delayed(func)(*args) for args in arg_tuples)


_ON_DASK: contextvars.ContextVar[bool] = contextvars.ContextVar("riskfed_on_dask", default=False)
_POOL: ThreadPoolExecutor | None = None
_POOL_SIZE = 0
_POOL_LOCK = threading.Lock()


def _forget_pool_in_child() -> None:
    """A forked child has none of the parent's threads: start a fresh pool if needed."""
    global _POOL, _POOL_SIZE, _POOL_LOCK
    _POOL, _POOL_SIZE, _POOL_LOCK = None, 0, threading.Lock()


os.register_at_fork(after_in_child=_forget_pool_in_child)


def _thread_pool(size: int) -> ThreadPoolExecutor:
    """One long-lived pool of kernel threads per process (a new pool per call would cost
    about as much as a batch's kernel)."""
    global _POOL, _POOL_SIZE
    with _POOL_LOCK:
        if _POOL is None or _POOL_SIZE < size:
            old = _POOL
            _POOL, _POOL_SIZE = ThreadPoolExecutor(max_workers=size, thread_name_prefix="riskfed-kernel"), size
            if old is not None:
                old.shutdown(wait=False)
        return _POOL


@contextlib.contextmanager
def dask_backend(scheduler_address: str | None) -> Iterator[None]:
    """Run every kernel inside the block on the Dask cluster at ``scheduler_address``.

    ``None`` leaves the local backend in place. The cluster must belong to the calling
    party: its workers see that party's data and public values.
    """
    if scheduler_address is None:
        yield
        return
    try:
        from dask.distributed import Client
    except ImportError as exc:  # pragma: no cover - dask is a declared dependency
        raise ConfigurationError("Dask support needs the 'dask[distributed]' package.") from exc
    try:
        client = Client(scheduler_address, timeout="10s")
    except OSError as exc:
        raise ConfigurationError(
            f"Cannot reach the Dask scheduler at {scheduler_address!r}: {exc}."
        ) from exc
    token = _ON_DASK.set(True)
    try:
        with joblib.parallel_config(backend="dask"):
            yield
    finally:
        _ON_DASK.reset(token)
        client.close()
