"""Compile the batch engine: the generated model and the kernels in one numba module, cached on disk.

The module text is the model's generated source (:mod:`il2als.compile`) followed by the kernels'
source (:mod:`il2als.kernels`) and a footer that compiles each function with ``numba.njit(cache=True)``. It is
written once per model version to ``$IL2ALS_CACHE_DIR`` (default ``~/.cache/il2als``) under a name hashing its
text, so a new process loads the machine code instead of compiling for ~20 s. If the folder is not writable a
temporary one is used (no cache across processes).
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import inspect
import os
import sys
import tempfile
from pathlib import Path
from types import ModuleType

from . import kernels as _kernels_src
from .compile import CompiledModel
from .errors import Il2alsError

OK, TOO_MANY_STEPS, STEP_TOO_SMALL, NOT_FINITE, NO_STEADY_STATE = (
    _kernels_src.OK, _kernels_src.TOO_MANY_STEPS, _kernels_src.STEP_TOO_SMALL, _kernels_src.NOT_FINITE,
    _kernels_src.NO_STEADY_STATE)
STATUS_TEXT = {
    OK: "ok",
    TOO_MANY_STEPS: "too many steps",
    STEP_TOO_SMALL: "step size collapsed",
    NOT_FINITE: "non-finite values",
    NO_STEADY_STATE: "no steady state found for the baseline",
}


def cache_dir() -> Path:
    """Where compiled engines are kept: ``$IL2ALS_CACHE_DIR`` or ``~/.cache/il2als`` (a temp folder if unwritable)."""
    d = Path(os.environ.get("IL2ALS_CACHE_DIR") or Path.home() / ".cache" / "il2als")
    try:
        d.mkdir(parents=True, exist_ok=True)
        probe = d / f".probe-{os.getpid()}"
        probe.write_text("")
        probe.unlink()
        return d
    except OSError:
        return Path(tempfile.mkdtemp(prefix="il2als-"))


def module_source(model: CompiledModel) -> str:
    """Text of the engine module for ``model``: generated model + kernels + compilation footer."""
    k = inspect.getsource(_kernels_src)
    footer = ["", "import numba as _nb"]
    footer += [f"{f} = _nb.njit(cache=True, nogil=True)({f})" for f in ("rhs", "rhs_into", "jac", "w_fill", "w_freeze", "lu_sparse", "solve_sparse")]
    footer += [f"{f} = _nb.njit(cache=True, nogil=True)({f})" for f in _kernels_src.SERIAL]
    footer += [f"{f} = _nb.njit(cache=True, parallel=True)({f})" for f in _kernels_src.PARALLEL]
    return model.source + "\n\n# ---- kernels (il2als/kernels.py) ----\n" + k + "\n".join(footer) + "\n"


@functools.lru_cache(maxsize=4)
def engine(model: CompiledModel) -> ModuleType:
    """The compiled engine module for ``model`` (functions ``population``, ``baselines``, ``patient``, ...)."""
    try:
        import numba  # noqa: F401
    except ImportError:  # pragma: no cover
        raise Il2alsError("the batch engine needs numba; install it with: pip install numba") from None
    text = module_source(model)
    digest = hashlib.sha256(text.encode()).hexdigest()[:16]
    name = f"il2als_engine_{digest}"
    path = cache_dir() / f"{name}.py"
    if not path.exists() or path.read_text(encoding="utf-8") != text:
        tmp = path.with_suffix(f".tmp-{os.getpid()}")
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    spec.loader.exec_module(mod)
    return mod
