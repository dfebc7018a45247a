"""Imported once by the process pool's fork server (multiprocessing's ``forkserver`` preload), before it forks any
worker: il2als, its statistics' scipy modules and the engine's machine code are then loaded once per command, and
each worker starts with them in memory instead of importing and loading them itself (~2.5 s of CPU a worker).

Numba runs the workers' parallel loops on its ``workqueue`` layer with one thread: they are forked from this
process, which loads the parallel kernels by running them, and GNU OpenMP (numba's default layer on Linux)
aborts a forked child of a process that has used it; one thread because the pool already fills the cores.

The server ends within a second of the command that started it, even a killed one (its workers, which watch
the server, then end too): multiprocessing would keep it while any worker lives, and the workers while it lives.
"""

import os
import sys
import threading

os.environ["NUMBA_THREADING_LAYER"] = "workqueue"
os.environ["NUMBA_NUM_THREADS"] = "1"
# pint imports dask when it is installed (~0.15 s of this server's start); no task of this pool uses dask (the Dask
# backend runs on Dask's own workers), so it is hidden here, as if absent
sys.modules.setdefault("dask", None)

from il2als.studies.parallel import _watch_parent  # noqa: E402 - after the environment above is set (stdlib only)

threading.Thread(target=_watch_parent, args=(os.getppid(),), daemon=True, name="il2als-command-watch").start()

try:
    from il2als.studies.trial import warm_up

    warm_up()
except Exception:  # noqa: BLE001 - a worker that needs what failed to load reports it as its task's error
    pass
