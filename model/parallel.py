"""Where independent tasks run: in this process, in a local process pool, or on a Dask cluster.

``scheduler`` is ``None``/``"threads"`` (in this process: the batch engine already uses every core through
numba threads), ``"processes"`` (a local process pool of ``workers``, default: every core), a Dask scheduler
address ``"tcp://host:port"``, or a ``dask.distributed.Client``. Results come back in input order whatever the
backend, so a seeded computation gives the same answer everywhere. Tasks must be picklable top-level functions.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from typing import Any

from .errors import Il2alsError

Progress = Callable[[int, int], None]


def describe(scheduler: object) -> str:
    if scheduler in (None, "threads"):
        return f"this process ({os.cpu_count()} cores via numba threads)"
    if scheduler == "processes":
        return f"a local process pool ({os.cpu_count()} workers)"
    return f"Dask at {getattr(scheduler, 'scheduler', None) and scheduler.scheduler.address or scheduler}"


def _client(scheduler: object):
    try:
        from dask.distributed import Client
    except ImportError:
        raise Il2alsError("a Dask scheduler needs dask.distributed: pip install 'il2als[parallel]'") from None
    if isinstance(scheduler, Client):
        return scheduler, False
    if isinstance(scheduler, str) and scheduler.startswith(("tcp://", "tls://", "inproc://")):
        try:
            return Client(scheduler, timeout="10s"), True
        except OSError as exc:
            raise Il2alsError(f"cannot reach the Dask scheduler at {scheduler} ({exc}); start one with "
                              "'dask scheduler' or drop --scheduler") from None
    raise Il2alsError(f"scheduler '{scheduler}' is not known; use threads, processes or a tcp://host:port address")


def _one_thread_per_worker() -> None:
    """Process-pool initialiser: each worker runs one numba thread (the pool already fills the cores)."""
    try:
        import numba

        numba.set_num_threads(1)
    except Exception:  # pragma: no cover - numba missing or already initialised differently
        pass


def run_tasks(fn: Callable[..., Any], args: Sequence[tuple], *, scheduler: object = None, workers: int | None = None,
              progress: Progress | None = None) -> list[Any]:
    """``[fn(*a) for a in args]`` on the chosen backend, in input order; ``progress(done, total)`` as they finish."""
    n = len(args)
    out: list[Any] = [None] * n
    if scheduler in (None, "threads"):
        for i, a in enumerate(args):
            out[i] = fn(*a)
            if progress:
                progress(i + 1, n)
        return out
    if scheduler == "processes":
        # spawn, not fork: numba's thread pool in this process does not survive a fork
        ctx = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(max_workers=workers or os.cpu_count(), mp_context=ctx,
                                 initializer=_one_thread_per_worker) as pool:
            futures = {pool.submit(fn, *a): i for i, a in enumerate(args)}
            try:
                for k, f in enumerate(as_completed(futures)):
                    out[futures[f]] = f.result()
                    if progress:
                        progress(k + 1, n)
            except KeyboardInterrupt:
                pool.shutdown(wait=False, cancel_futures=True)  # stop now: the pending replicates are not started
                raise
            except BrokenProcessPool:
                raise Il2alsError("a worker process died (out of memory, or killed); rerun with fewer workers or "
                                  "--scheduler threads") from None
        return out
    client, own = _client(scheduler)
    try:
        from dask.distributed import as_completed as dask_completed

        futures = client.map(fn, *zip(*args), pure=False) if args else []
        index = {f.key: i for i, f in enumerate(futures)}
        for k, f in enumerate(dask_completed(futures)):
            out[index[f.key]] = f.result()
            if progress:
                progress(k + 1, n)
        return out
    finally:
        if own:
            client.close()
