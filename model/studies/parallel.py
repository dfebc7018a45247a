"""Where independent tasks run: in this process, in a local process pool, or on a Dask cluster.

``scheduler`` is ``None``/``"threads"`` (in this process: the batch engine already uses every core through
numba threads), ``"processes"`` (a local process pool of ``workers``, default: every core), a Dask scheduler
address ``"tcp://host:port"``, or a ``dask.distributed.Client``. Results come back in input order whatever the
backend, so a seeded computation gives the same answer everywhere. Tasks must be picklable top-level functions.
"""

from __future__ import annotations

import atexit
import contextlib
import multiprocessing
import os
import signal
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from typing import Any

from il2als._threads import pool_worker_environment, restore
from il2als.errors import Il2alsError

__all__ = ["describe", "end_pool", "run_tasks", "start_pool", "submit"]

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
                              "'dask scheduler' or drop `scheduler`") from None
    raise Il2alsError(f"scheduler '{scheduler}' is not known; use threads, processes or a tcp://host:port address")


def _watch_parent(parent: int) -> None:
    """End this process within a second of its parent's death, even by SIGKILL: a worker's parent is the fork server
    (or, spawned, the command); the fork server's is the command."""
    while True:
        if os.getppid() != parent:
            os._exit(1)
        time.sleep(0.5)


def _worker_init(warm: str | None = None) -> None:
    """Process-pool initialiser: each worker runs one numba thread (the pool already fills the cores), ignores
    Ctrl-C (the parent decides and ends the pool) and ends itself within a second of its parent's death (the fork
    server's, which ends with the command); then calls ``warm`` (``"module:function"``), if given, to import and
    load what its tasks will need (already loaded, and so at once, in a worker forked from a warmed fork server).
    A failing warm-up is ignored: the task that needs the same thing reports it."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    threading.Thread(target=_watch_parent, args=(os.getppid(),), daemon=True, name="il2als-parent-watch").start()
    try:
        import numba

        numba.set_num_threads(1)
    except Exception:  # pragma: no cover - numba missing or already initialised differently
        pass
    if warm:
        try:
            import importlib

            module, _, name = warm.partition(":")
            getattr(importlib.import_module(module), name)()
        except Exception:  # noqa: BLE001 - see the docstring
            pass


@contextlib.contextmanager
def _no_ctrl_c():
    """Hold off Ctrl-C (on the main thread) while a pool is being ended, so that a second Ctrl-C can neither leave
    workers behind nor print a traceback."""
    old = None
    if threading.current_thread() is threading.main_thread():
        old = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        if old is not None:
            signal.signal(signal.SIGINT, old)


def _end_pool(pool: ProcessPoolExecutor) -> None:
    """Stop a pool now: kill the workers and reap them, then cancel what has not started and let the pool's
    manager thread end.

    The workers die first: the manager thread then sees a broken pool and closes its queues' pipes itself. Shut
    down first, it may instead take the orderly path and wait on a queue feeder that writes to dead workers,
    and the interpreter, which joins that thread at exit without a timeout, would never exit."""
    with _no_ctrl_c():
        procs = list((getattr(pool, "_processes", None) or {}).values())
        queue = getattr(pool, "_call_queue", None)
        if queue is not None:  # its feeder thread may be writing to workers that are about to die: never wait on it
            queue.cancel_join_thread()
        for proc in procs:
            try:
                proc.kill()
            except Exception:  # already gone
                pass
        for proc in procs:
            proc.join(timeout=10)
        # read before shutdown, which forgets it: the pool's manager thread closes its wake-up pipe as it ends and
        # interpreter exit writes to that pipe, so let the thread end first (else a race prints "Bad file
        # descriptor" from concurrent.futures at exit, or the exit waits on the thread without a time limit)
        manager = getattr(pool, "_executor_manager_thread", None)
        pool.shutdown(wait=False, cancel_futures=True)
        if manager is not None and manager is not threading.current_thread():
            manager.join(timeout=10)


#: the process pool of this process, kept between calls (workers start once per command, not once per study:
#: a worker's start, importing il2als and loading the engine, costs ~2.5 s of CPU); [(size, pool)]
_POOL: list = []

#: what the fork server loads before it forks a worker (see il2als.studies._forkserver)
_PRELOAD = "il2als.studies._forkserver"


def _context() -> multiprocessing.context.BaseContext:
    """Where workers come from: forked from a fork server that has loaded il2als and the engine once (where the
    platform has one: Linux, macOS), else spawned, each importing and loading for itself. Never forked from this
    process: numba's thread pool in it would not survive a fork."""
    if "forkserver" not in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("spawn")
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload([_PRELOAD])  # no effect on a server already running: its workers warm up themselves
    from multiprocessing import forkserver

    forkserver.ensure_running()  # spawns the server (with this environment) and returns: it loads meanwhile
    return ctx


def _pool(size: int, warm: str | None = None, wait: bool = True) -> ProcessPoolExecutor:
    """The process pool of ``size`` workers, started on first use and reused by later calls; ended at exit.
    ``warm``: see :func:`_worker_init`; ``wait=False`` returns at once: spawned workers are started now and load
    while this process goes on; forked ones are forked when the first tasks arrive (the fork server, loading
    meanwhile, forks them when it is ready)."""
    if _POOL and _POOL[0][0] == size:
        return _POOL[0][1]
    end_pool()
    # the workers' environment: forked ones have the fork server's (started in _context), spawned ones inherit it
    # as they start (in submit)
    old = pool_worker_environment()
    pool = None
    try:
        ctx = _context()
        pool = ProcessPoolExecutor(max_workers=size, mp_context=ctx, initializer=_worker_init, initargs=(warm,))
        if wait or ctx.get_start_method() == "spawn":  # start every worker now, with that environment
            started = [pool.submit(os.getpid) for _ in range(size)]
            for f in started if wait else ():
                f.result()
    except BaseException:
        if pool is not None:
            _end_pool(pool)
        raise
    finally:
        restore(old)
    if not _POOL:
        atexit.register(end_pool)
    _POOL[:] = [(size, pool)]
    return pool


def end_pool() -> None:
    """End the kept pool, if any, at once (its workers are killed): after an error or interrupt, at exit, and
    at the end of a command line's command, whose results are in by then. Ended at exit only, its workers would
    first be asked to stop and waited for (concurrent.futures' own exit hook runs before ``atexit``'s), ~0.7 s of
    each command spent on workers tearing down their interpreters."""
    with _no_ctrl_c():
        if _POOL:
            _end_pool(_POOL.pop()[1])


def _size(workers: int | None) -> int:
    """Workers of the process pool: as asked, else one per core."""
    return workers or os.cpu_count() or 1


@contextlib.contextmanager
def _pool_failures():
    """Around waiting on the pool's results: a dead worker becomes a one-line error; that, Ctrl-C, SIGTERM or an
    error in a task ends the pool, so that no worker outlives the run."""
    try:
        yield
    except BrokenProcessPool:
        end_pool()
        raise Il2alsError("a worker process died (out of memory, or killed); rerun with fewer workers or "
                          "`scheduler` threads") from None
    except BaseException:
        end_pool()
        raise


def start_pool(workers: int | None = None, warm: str | None = None) -> None:
    """Start the process pool now, without waiting for it: its workers import and load (``warm``,
    ``"module:function"``, e.g. ``"il2als.studies.trial:warm_up"``) while this process goes on with its own
    start-up; :func:`run_tasks` and :func:`submit` with ``scheduler="processes"`` then find it ready."""
    _pool(_size(workers), warm, wait=False)


class _Deferred:
    """A task run in this process when its result is asked for (the in-process and Dask backends of
    :func:`submit`)."""

    def __init__(self, fn: Callable[..., Any], args: tuple, kwargs: dict):
        self._call = (fn, args, kwargs)

    def result(self) -> Any:
        fn, args, kwargs = self._call
        return fn(*args, **kwargs)


def submit(fn: Callable[..., Any], *args: Any, scheduler: object = None, workers: int | None = None,
           **kwargs: Any) -> Any:
    """Start ``fn(*args, **kwargs)`` where it can run beside later work; returns an object whose ``result()``
    gives its value (or raises its error). With ``scheduler="processes"`` it goes to the process pool now, ahead
    of tasks submitted after it (a study can run one long task beside its replicates); otherwise it runs in
    this process when ``result()`` is called."""
    if scheduler != "processes":
        return _Deferred(fn, args, kwargs)
    return _Pending(_pool(_size(workers)).submit(fn, *args, **kwargs))


class _Pending:
    """A pool future whose ``result()`` ends the pool on a broken worker or an interrupt, as :func:`run_tasks`."""

    def __init__(self, future):
        self._future = future

    def result(self) -> Any:
        with _pool_failures():
            return self._future.result()


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
        pool = _pool(_size(workers))
        with _pool_failures():
            futures = {pool.submit(fn, *a): i for i, a in enumerate(args)}
            for k, f in enumerate(as_completed(futures)):
                out[futures[f]] = f.result()
                if progress:
                    progress(k + 1, n)
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
