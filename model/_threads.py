"""One BLAS thread where il2als already fills the cores.

il2als's linear algebra is on small matrices (REML's 12 x 12 systems, Cox's few covariates), while the batch engine
runs numba threads and the process pool one worker per core. OpenBLAS's own threads then only compete with them for
the two cores (a 40-replicate trial took 9.4 s with them and 7.8 s without on threads, 11.3 s and 7.6 s on
processes). The variables must be set before numpy is imported, so the command line sets them at its start and the
pool for its workers; a value the user has set is kept.

The pool's workers also run without numpy's transparent-huge-page hint (:func:`pool_worker_environment`): they
allocate large, short-lived result arrays (the expected effect's, ~60 MB an arm), and where the kernel compacts
memory on such a fault (THP ``defrag = madvise``, a common default) touching them first cost ~0.1 s each; the
2,000-patient expected effect took 3.35 s of CPU with the hint and 2.94 s without, the replicates the same.
"""

from __future__ import annotations

import os
from collections.abc import MutableMapping

__all__: list[str] = []

#: the variables the BLAS builds numpy and scipy ship with read for their thread count
BLAS_THREAD_VARIABLES = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")


def one_blas_thread(env: MutableMapping[str, str] = os.environ) -> dict[str, str | None]:
    """Set each BLAS thread variable to 1 in ``env`` unless already set; returns the previous values."""
    old = {k: env.get(k) for k in BLAS_THREAD_VARIABLES}
    for k in BLAS_THREAD_VARIABLES:
        env.setdefault(k, "1")
    return old


#: set for the process pool's workers (numpy reads it at import): no madvise(MADV_HUGEPAGE) on large arrays
WORKER_VARIABLES = {"NUMPY_MADVISE_HUGEPAGE": "0"}


def pool_worker_environment(env: MutableMapping[str, str] = os.environ) -> dict[str, str | None]:
    """:func:`one_blas_thread` and :data:`WORKER_VARIABLES` in ``env``, each unless already set: what the pool's
    workers (and the fork server they come from) start with. Returns the previous values, for :func:`restore`."""
    old = one_blas_thread(env)
    for k, v in WORKER_VARIABLES.items():
        old[k] = env.get(k)
        env.setdefault(k, v)
    return old


def restore(old: dict[str, str | None], env: MutableMapping[str, str] = os.environ) -> None:
    """Undo :func:`one_blas_thread` or :func:`pool_worker_environment`."""
    for k, v in old.items():
        if v is None:
            env.pop(k, None)
        else:
            env[k] = v
