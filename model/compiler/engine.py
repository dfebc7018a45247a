"""Compile the batch engine: the generated model and the kernels in one numba module, cached on disk.

The module text is the model's generated source (:mod:`il2als.compiler.codegen`) followed by the kernels'
source (:mod:`il2als.compiler.kernels`) and a footer that compiles each function with ``numba.njit(cache=True)``. It is
written once per model version to ``$IL2ALS_CACHE_DIR`` (default ``~/.cache/il2als``) under a name hashing its
text, so a new process loads the machine code instead of compiling for ~20 s. If the folder is not writable a
temporary one is used (no cache across processes).
"""

from __future__ import annotations

import atexit
import functools
import hashlib
import importlib.util
import inspect
import os
import shutil
import sys
import tempfile
import time
import warnings
from pathlib import Path
from types import ModuleType

from il2als._cache import cache_root, write_atomically
from il2als.compiler import kernels as _kernels_src
from il2als.compiler.codegen import CompiledModel
from il2als.errors import Il2alsError

__all__ = ["STATUS_TEXT", "NEGATIVE_STATE", "cache_dir", "lane_width", "module_source", "load_engine", "report_compiled"]

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
#: Status of a patient whose states went below zero beyond the negative-state policy (set after the kernel).
NEGATIVE_STATE = 5
STATUS_TEXT[NEGATIVE_STATE] = "negative state beyond the round-off policy"


#: engines announced as compiling in this process: module name -> (start time, cache folder); numba compiles at a
#: kernel's first call, so the time is reported after it (:func:`report_compiled`)
_COLD: dict[str, tuple[float, str]] = {}


def report_compiled(eng: ModuleType) -> None:
    """After an engine's first kernel call: say how long its cold compile took (once; nothing when it was cached)."""
    started = _COLD.pop(eng.__name__, None)
    if started is not None:
        print(f"il2als: batch engine compiled in {time.perf_counter() - started[0]:.0f} s and cached in {started[1]}",
              file=sys.stderr, flush=True)


def _writable(d: Path) -> bool:
    try:
        d.mkdir(parents=True, exist_ok=True)
        probe = d / f".probe-{os.getpid()}"
        probe.write_text("")
        probe.unlink()
        return True
    except OSError:
        return False


@functools.lru_cache(maxsize=1)
def _scratch_dir() -> Path:
    """A private temporary cache for this process, removed when it exits."""
    d = Path(tempfile.mkdtemp(prefix="il2als-engine-"))
    atexit.register(shutil.rmtree, d, ignore_errors=True)
    return d


def cache_dir() -> Path:
    """Where compiled engines are kept: ``$IL2ALS_CACHE_DIR`` or ``~/.cache/il2als``.

    When that folder cannot be written, a temporary folder removed at exit is used instead, with a warning
    (every process then compiles afresh)."""
    d = cache_root()
    if _writable(d):
        return d
    warnings.warn(f"the engine cache '{d}' cannot be written; compiling in a temporary folder for this run "
                  "(set IL2ALS_CACHE_DIR to a writable folder to keep the compiled engine)", RuntimeWarning, stacklevel=2)
    return _scratch_dir()


@functools.lru_cache(maxsize=1)
def lane_width() -> int:
    """Patients per lane group of the lanes kernel: ``$IL2ALS_LANES`` if set, else 32 where the CPU has AVX2 or
    AVX-512 and 16 otherwise.

    From 16 lanes on, LLVM vectorises the lane loops (with fewer, it unrolls them into scalar code); 32 lanes
    filled both cores' pipelines best here (``benchmarks/run.py --lanes`` compares widths: 8, 16, 32, 64 gave
    1.9x, 2.8x, 3.2x, 3.3x the scalar kernel per core on 1,000 MIROCALS patients)."""
    env = os.environ.get("IL2ALS_LANES")
    if env is not None:
        if not (env.isdigit() and 1 <= int(env) <= 256):
            raise Il2alsError(f"IL2ALS_LANES = {env!r} must be a whole number from 1 to 256, e.g. 32; or unset it")
        return int(env)
    try:
        import llvmlite.binding as ll

        features = ll.get_host_cpu_features()
    except Exception:  # no llvmlite (numba absent) or an unknown CPU: the narrower width
        return 16
    return 32 if features.get("avx2") or features.get("avx512f") else 16


def module_source(model: CompiledModel) -> str:
    """Text of the engine module for ``model``: generated model + kernels + compilation footer."""
    k = inspect.getsource(_kernels_src)
    footer = ["", "import numba as _nb", "prange = _nb.prange", f"LANES = {lane_width()}"]
    footer += [f"{f} = _nb.njit(cache=True, nogil=True)({f})" for f in ("rhs", "rhs_into", "jac", "w_fill", "w_freeze", "lu_sparse", "solve_sparse")]
    footer += [f"{f} = _nb.njit(cache=True, nogil=True)({f})" for f in _kernels_src.SERIAL]
    footer += [f"{f} = _nb.njit(cache=True, nogil=True, error_model='numpy')({f})"
               for f in ("rhs_lanes", "w_fill_lanes", "lu_lanes", "solve_lanes", *_kernels_src.LANES_SERIAL)]
    footer += [f"{f} = _nb.njit(cache=True, parallel=True)({f})" for f in _kernels_src.PARALLEL]
    return model.source + "\n\n# ---- kernels (il2als/compiler/kernels.py) ----\n" + k + "\n".join(footer) + "\n"


def _load(name: str, path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    try:
        spec.loader.exec_module(mod)
    except BaseException:
        sys.modules.pop(name, None)
        raise
    return mod


def _unreadable(files: list[Path]) -> Path | None:
    """The first of numba's cache files (``.nbi`` index, ``.nbc`` code) that cannot be unpickled as numba reads
    them, or None. numba would otherwise fail on the first call with an unpickling error, in every process."""
    import io
    import pickle
    import pickletools

    for f in files:
        try:
            with open(f, "rb") as fh:
                if f.suffix == ".nbi":
                    pickle.load(fh)  # the numba version (a string), then the pickled index
                    pickle.loads(fh.read())  # stamps and file names: plain data
                elif f.suffix == ".nbc":
                    data = fh.read()  # code: checked opcode by opcode, not executed (it imports the engine)
                    for _ in pickletools.genops(io.BytesIO(data)):
                        pass
        except Exception:  # truncated, garbage or unreadable: pickle raises many types
            return f
    return None


def _remove(files: list[Path]) -> None:
    for f in files:
        try:
            f.unlink()
        except OSError:
            pass


@functools.lru_cache(maxsize=4)
def load_engine(model: CompiledModel) -> ModuleType:
    """The compiled engine module for ``model`` (functions ``population``, ``baselines``, ``patient``, ...).

    The generated source and numba's compiled code are cached on disk, keyed by the source's hash. A cache
    that cannot be read back (a corrupt or truncated file) is removed and rebuilt, with a warning."""
    try:
        import numba  # noqa: F401
    except ImportError:  # pragma: no cover
        raise Il2alsError("the batch engine needs numba; install it with: pip install numba") from None
    text = module_source(model)
    digest = hashlib.sha256(text.encode()).hexdigest()[:16]
    name = f"il2als_engine_{digest}"
    folder = cache_dir()
    path = folder / f"{name}.py"
    try:
        current = path.read_text(encoding="utf-8") if path.exists() else None
    except (OSError, UnicodeDecodeError):
        current = None
    if current != text:
        write_atomically(path, text)
    cached = sorted((folder / "__pycache__").glob(f"{name}*")) if (folder / "__pycache__").is_dir() else []
    broken = _unreadable(cached)
    if broken is not None:
        warnings.warn(f"the engine cache in '{folder}' is corrupt ('{broken.name}' cannot be read); removing this "
                      "engine's cached files and compiling it again", RuntimeWarning, stacklevel=2)
        _remove(cached)
        cached = []
    if not any(f.suffix == ".nbi" for f in cached):
        print(f"il2als: compiling the batch engine (first run with this model; about 20-40 s, then cached in {folder})",
              file=sys.stderr, flush=True)
        _COLD[name] = (time.perf_counter(), str(folder))
    try:
        return _load(name, path)
    except Exception as exc:  # numba raises many types for an unreadable cache (EOFError, pickle errors ...)
        warnings.warn(f"the engine cache in '{folder}' could not be loaded ({type(exc).__name__}); removing this "
                      "engine's cached files and compiling it again", RuntimeWarning, stacklevel=2)
        _remove([path, *(folder / "__pycache__").glob(f"{name}*")])
        write_atomically(path, text)
        return _load(name, path)
