"""Compile the symbolic mechanism into plain numeric functions.

From the one sympy definition this derives, by common-subexpression elimination and code printing:

* ``rhs(t, y, p) -> dy/dt``, shape ``(n_states,)``, canonical units per day;
* ``jac(t, y, p) -> d(dy/dt)/dy``, shape ``(n_states, n_states)``, the analytic Jacobian;
* ``observe(t, Y, p, columns=None) -> (n_times, n_observables)`` for a whole trajectory ``Y`` of shape
  ``(n_times, n_states)`` (only the observables numbered in ``columns``, in that order, if given).

The generated source is kept on the compiled model (``source``), so it can be read, tested, or handed to a
JIT compiler, and on disk beside the compiled engine (``$IL2ALS_CACHE_DIR/generated``), keyed by the hash of the
expanded equations, the names, this module's code and the sympy version: a new process skips the Jacobian, CSE
and printing (~0.2 s). Parameters stay inputs: a fit or a population changes ``p`` without recompiling.

The package's own model (:func:`default_model`) is also kept as its card (:mod:`il2als.compiler.card`: names,
units, bounds, routes) beside that source, keyed by the hash of the mechanism's and this code's source files:
a new process then loads it without importing sympy or building the mechanism (~0.3 s; a trial's workers and
the command line itself only simulate). sympy is imported here only where the mechanism is compiled.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable

import numpy as np

from il2als.compiler.card import ModelCard, card_of

if TYPE_CHECKING:
    import sympy as sp

    from il2als.compiler.card import ExpressionCard, StateCard
    from il2als.mechanism import Mechanism

__all__ = ["CompiledModel", "compile_mechanism", "default_model"]


def _codegen(name: str, args: list[str], exprs: list[sp.Expr], shape: tuple[int, ...], printer, array_mod: str,
             n_time_vector: bool = False, lanes: bool = False) -> str:
    """Python source of ``def name(t, y, p)`` returning ``exprs`` in an array of ``shape``.

    With ``lanes``, ``def name(_t, y, p, _out, _nl)`` instead evaluates the same statements for the first ``_nl``
    lanes ``_l`` of ``y`` (n_states, LANES) and ``p`` (n_parameters, LANES) into ``_out`` (n_exprs, LANES), all flat
    (index ``i * LANES + _l``, the engine's constant ``LANES``): one loop whose body is the scalar code, so
    patients in lanes get the very same arithmetic."""
    import sympy as sp

    replacements, reduced = sp.cse(exprs, symbols=sp.numbered_symbols("_x"), optimizations="basic")
    used = set().union(*(e.free_symbols for e in exprs)) | set().union(*(e.free_symbols for _, e in replacements)) if exprs else set()
    used = {str(u) for u in used}
    if lanes:
        lines = [f"def {name}(_t, y, p, _out, _nl):", "    for _l in range(_nl):"]
        ind, lane = "        ", " * LANES + _l"
        if "t" in used:
            lines.append(f"{ind}t = _t[_l]")
    else:
        lines = [f"def {name}(t, y, p, columns=None):" if n_time_vector else f"def {name}(t, y, p):"]
        ind, lane = "    ", ""
    # Indexed reads (not tuple unpacking) so that numba can compile the same source.
    for i, a in enumerate(args[0]):
        if a in used:
            lines.append(f"{ind}{a} = y[:, {i}]" if n_time_vector else f"{ind}{a} = y[{i}{lane}]")
    for i, a in enumerate(args[1]):
        if a in used:
            lines.append(f"{ind}{a} = p[{i}{lane}]")
    for sym, e in replacements:
        lines.append(f"{ind}{sym} = {printer.doprint(e)}")
    if lanes:
        lines += [f"{ind}_out[{i} * LANES + _l] = {printer.doprint(e) if e != 0 else '0.0'}" for i, e in enumerate(reduced)]
        return "\n".join(lines)
    if n_time_vector:  # ``columns``: only those expressions, in that order (the rest are never computed)
        lines.append("    _n = y.shape[0]")
        lines.append(f"    _cols = range({len(exprs)}) if columns is None else columns")
        lines.append(f"    _out = {array_mod}.empty((_n, len(_cols)))")
        lines.append("    for _j, _c in enumerate(_cols):")
        for i, e in enumerate(reduced):
            lines.append(f"        {'if' if i == 0 else 'elif'} _c == {i}:")
            lines.append(f"            _out[:, _j] = {printer.doprint(e)}")
        lines.append("        else:")
        lines.append("            raise IndexError(f'observable column {_c} out of range')")
    else:
        lines.append(f"    _out = {array_mod}.zeros({shape})")
        for i, e in enumerate(reduced):
            if e == 0:
                continue
            idx = i if len(shape) == 1 else f"{i // shape[1]}, {i % shape[1]}"
            lines.append(f"    _out[{idx}] = {printer.doprint(e)}")
    lines.append("    return _out")
    return "\n".join(lines)


@dataclass(frozen=True, eq=False)
class CompiledModel:
    """The mechanism compiled to numeric functions over canonical plain floats.

    ``rhs(t, y, p)`` and ``jac(t, y, p)`` take ``y`` of shape ``(n_states,)`` in the states' units and ``p`` of
    shape ``(n_parameters,)`` in the parameters' units (see ``state_units``, ``parameter_units``); time in days.
    ``card`` holds the declarations (names, units, bounds, routes: :class:`il2als.compiler.card.ModelCard`);
    ``mechanism``, the symbolic mechanism itself, is built on first use when the model was loaded from its card.
    """

    card: ModelCard
    rhs: Callable[[float, np.ndarray, np.ndarray], np.ndarray]
    jac: Callable[[float, np.ndarray, np.ndarray], np.ndarray]
    observe: Callable[..., np.ndarray]
    initial: Callable[[float, np.ndarray, np.ndarray], np.ndarray]
    source: str = field(repr=False)
    #: route name -> (target state index, scale(p) in state unit per IU, bioavailability index or -1, lag index or -1)
    routes: dict = field(default_factory=dict, repr=False)
    _mechanism: "Mechanism | None" = field(default=None, repr=False)

    @property
    def mechanism(self) -> "Mechanism":
        """The symbolic mechanism (sympy): the one compiled, or, for the package's model loaded from its card,
        the package's mechanism assembled on first use (the card is that mechanism's, by its key)."""
        if self._mechanism is None:
            from il2als.mechanism import MODULES, build_mechanism

            object.__setattr__(self, "_mechanism", build_mechanism(MODULES))
        return self._mechanism

    @property
    def state_names(self) -> tuple[str, ...]:
        return self.card.state_names

    @property
    def parameter_names(self) -> tuple[str, ...]:
        return self.card.parameter_names

    @property
    def observable_names(self) -> tuple[str, ...]:
        return tuple(o.name for o in self.card.observables)

    @property
    def state_units(self) -> tuple[str, ...]:
        return tuple(s.unit for s in self.card.states)

    @property
    def parameter_units(self) -> tuple[str, ...]:
        return tuple(p.unit for p in self.card.parameters)

    @property
    def observables(self) -> "tuple[StateCard | ExpressionCard, ...]":
        return self.card.observables

    def state_index(self, name: str) -> int:
        return self.state_names.index(name)

    def parameter_index(self, name: str) -> int:
        return self.parameter_names.index(name)


def _markowitz(pattern: np.ndarray) -> tuple[list[int], np.ndarray]:
    """Elimination order (greedy Markowitz) and the LU pattern with fill-in, for a boolean pattern."""
    n = len(pattern)
    P = pattern.copy()
    remaining = list(range(n))
    order: list[int] = []
    while remaining:
        best = min(remaining, key=lambda k: (sum(P[i, k] for i in remaining if i != k)
                                             * sum(P[k, j] for j in remaining if j != k), k))
        remaining.remove(best)
        for i in remaining:
            if P[i, best]:
                for j in remaining:
                    if P[best, j]:
                        P[i, j] = True
        order.append(best)
    return order, P


def _sparse_lu_source(jac: sp.Matrix, ynames: list[str], pnames: list[str], printer, lanes: bool = False) -> str:
    """Straight-line code for the Rosenbrock matrix ``W = c I - J`` on the Jacobian's sparsity pattern:
    ``w_fill(t, y, p, c, a)`` writes W (and zeros at fill-in) into ``a``; ``w_freeze(a, frozen, c)`` turns
    the rows of frozen states into ``c`` on the diagonal (their rates are held at zero, for the baseline); ``lu_sparse(a)`` factorises it in
    place without pivoting in a fill-reducing order (False on a zero pivot: the caller falls back to dense,
    pivoted LU); ``solve_sparse(a, b)`` solves in place. Entries outside the pattern are never read.

    With ``lanes``: ``w_fill_lanes(_t, y, p, _c, a, _nl)``, ``lu_lanes(a, ok, _nl)`` and ``solve_lanes(a, b, _nl)``
    do the same, statement for statement, for the first ``_nl`` lanes ``_l`` of flat arrays laid out as ``a`` (n, n, LANES), ``b`` and ``y``
    (n, LANES), ``p`` (n_parameters, LANES) (flat, with the constant ``LANES`` inner, so that LLVM can see that
    the lanes never overlap and vectorise the loop); ``lu_lanes`` never stops early (no branch in the loop) but sets ``ok[_l]`` False where the
    scalar code would have returned False, and the caller redoes that lane's step with the dense fallback."""
    import sympy as sp

    n = jac.shape[0]
    pattern = np.array([[jac[i, j] != 0 or i == j for j in range(n)] for i in range(n)])
    order, lu = _markowitz(pattern)
    entries = [(i, j) for i in range(n) for j in range(n) if pattern[i, j]]
    exprs = [(-jac[i, j]) for i, j in entries]
    replacements, reduced = sp.cse(exprs, symbols=sp.numbered_symbols("_x"), optimizations="basic")
    used = {str(u) for e in [*exprs] for u in e.free_symbols}
    ind = "        " if lanes else "    "

    def fn(header: str) -> list[str]:
        return [header, "    for _l in range(_nl):"] if lanes else [header]

    def A(i: int, j: int) -> str:  # W's entry (i, j): a[i, j], or flat a[(i n + j) LANES + l] for the lanes
        return f"a[{i * n + j} * LANES + _l]" if lanes else f"a[{i}, {j}]"

    def V(name: str, i: int) -> str:  # a vector's entry i
        return f"{name}[{i} * LANES + _l]" if lanes else f"{name}[{i}]"

    lines = fn("def w_fill_lanes(_t, y, p, _c, a, _nl):") if lanes else ["def w_fill(t, y, p, c, a):"]
    if lanes:
        lines.append(f"{ind}c = _c[_l]")
        if "t" in used:
            lines.append(f"{ind}t = _t[_l]")
    lines += [f"{ind}{a} = {V('y', i)}" for i, a in enumerate(ynames) if a in used]
    lines += [f"{ind}{a} = {V('p', i)}" for i, a in enumerate(pnames) if a in used]
    lines += [f"{ind}{sym} = {printer.doprint(e)}" for sym, e in replacements]
    for (i, j), e in zip(entries, reduced):
        lines.append(f"{ind}{A(i, j)} = {printer.doprint(e)}" + (" + c" if i == j else ""))
    for i in range(n):
        for j in range(n):
            if lu[i, j] and not pattern[i, j]:
                lines.append(f"{ind}{A(i, j)} = 0.0")
    if not lanes:
        lines += ["", "", "def w_freeze(a, frozen, c):"]
        for i in range(n):
            row = [j for j in range(n) if lu[i, j] and j != i]
            lines.append(f"    if frozen[{i}]:")
            lines += [f"        a[{i}, {j}] = 0.0" for j in row]
            lines.append(f"        a[{i}, {i}] = c")
    lines += ["", ""] + (fn("def lu_lanes(a, ok, _nl):") + [f"{ind}_ok = True"] if lanes
                         else ["def lu_sparse(a):"])
    done: list[int] = []
    for k in order:
        if lanes:
            lines.append(f"{ind}_ok = _ok & ({A(k, k)} != 0.0) & (abs({A(k, k)}) < math.inf)")
        else:
            lines.append(f"    if a[{k}, {k}] == 0.0 or not math.isfinite(a[{k}, {k}]):")
            lines.append("        return False")
        rows = [i for i in range(n) if i not in done and i != k and lu[i, k]]
        cols = [j for j in range(n) if j not in done and j != k and lu[k, j]]
        if rows:
            lines.append(f"{ind}inv = 1.0 / {A(k, k)}")
        for i in rows:
            lines.append(f"{ind}{A(i, k)} *= inv")
            for j in cols:
                lines.append(f"{ind}{A(i, j)} -= {A(i, k)} * {A(k, j)}")
        done.append(k)
    lines += ([f"{ind}ok[_l] = _ok"] if lanes else ["    return True"]) + ["", ""]
    lines += fn("def solve_lanes(a, b, _nl):") if lanes else ["def solve_sparse(a, b):"]
    pos = {k: r for r, k in enumerate(order)}
    for r, i in enumerate(order):  # forward: L has unit diagonal, entries (i, k) with k eliminated before i
        for k in order[:r]:
            if lu[i, k]:
                lines.append(f"{ind}{V('b', i)} -= {A(i, k)} * {V('b', k)}")
    for i in reversed(order):  # backward: U entries (i, j) with j eliminated after i
        for j in order[pos[i] + 1:]:
            if lu[i, j]:
                lines.append(f"{ind}{V('b', i)} -= {A(i, j)} * {V('b', j)}")
        lines.append(f"{ind}{V('b', i)} /= {A(i, i)}")
    return "\n".join(lines)


def _generate_source(ys: list, ynames: list[str], pnames: list[str], f: list, obs: list, init: list,
                     route_scales: list) -> str:
    """Python source of ``rhs``, ``rhs_into``, ``jac``, ``observe``, ``initial``, ``route_scales`` (the dose routes'
    scales, in route order) and the sparse LU."""
    import sympy as sp
    from sympy.printing.numpy import NumPyPrinter
    from sympy.printing.pycode import PythonCodePrinter

    jac = sp.Matrix(f).jacobian(ys)
    scalar = PythonCodePrinter({"fully_qualified_modules": True})
    vector = NumPyPrinter({"fully_qualified_modules": True})
    n = len(ys)
    rhs_src = _codegen("rhs", [ynames, pnames], f, (n,), scalar, "numpy")
    return "\n\n".join([
        "import math\nimport numpy",
        rhs_src,
        # the same code writing into a work array, for the batch engine's step loop (no allocation)
        rhs_src.replace("def rhs(t, y, p):", "def rhs_into(t, y, p, _out):").replace(
            f"    _out = numpy.zeros(({n},))", "    _out[:] = 0.0"),
        _codegen("jac", [ynames, pnames], list(jac), (n, n), scalar, "numpy"),
        # observables that are constant (a plain state) still need a column per time point
        _codegen("observe", [ynames, pnames], [o + 0 * ys[0] for o in obs], (len(obs),), vector, "numpy",
                 n_time_vector=True),
        _codegen("initial", [ynames, pnames], init, (n,), scalar, "numpy"),
        _codegen("route_scales", [ynames, pnames], [sp.Float(1.0) * r for r in route_scales],
                 (max(len(route_scales), 1),), scalar, "numpy"),
        _sparse_lu_source(jac, ynames, pnames, scalar),
        # the same statements over lanes of patients, for the lanes kernel (il2als.compiler.kernels)
        _codegen("rhs_lanes", [ynames, pnames], f, (n,), scalar, "numpy", lanes=True),
        _sparse_lu_source(jac, ynames, pnames, scalar, lanes=True),
    ])


def _source_key(f: list, obs: list, init: list, route_scales: list, ynames: list[str], pnames: list[str]) -> str:
    """Hash of everything the generated source depends on: the expanded equations, the names, this module's code
    (the printers and their settings) and the sympy version."""
    import hashlib
    import inspect
    import sys

    import sympy as sp

    text = "\n".join([sp.srepr((f, obs, init, route_scales)), ",".join(ynames), ",".join(pnames), sp.__version__,
                      inspect.getsource(sys.modules[__name__])])
    return hashlib.sha256(text.encode()).hexdigest()[:20]


def _source_path(key: str):
    from il2als._cache import cache_root

    return cache_root() / "generated" / f"model_{key}.py"


def _card_path(key: str):
    from il2als._cache import cache_root

    return cache_root() / "generated" / f"card_{key}.json"


#: first line of a cached source or card: the hash of the rest, so a truncated or edited file is never used
_STAMP = "# il2als generated model, sha256 "


def _cached_text(path) -> str | None:  # noqa: ANN001
    """The text kept at ``path``, or None (absent, unreadable or not matching its stamp)."""
    import hashlib

    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None
    head, _, body = text.partition("\n")
    if head != _STAMP + hashlib.sha256(body.encode()).hexdigest():
        return None
    return body


def _store_text(path, text: str) -> None:  # noqa: ANN001
    """Keep ``text`` at ``path`` with its stamp (atomically; silently skipped where the cache cannot be written)."""
    import hashlib

    from il2als._cache import write_atomically

    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomically(path, _STAMP + hashlib.sha256(text.encode()).hexdigest() + "\n" + text)
    except OSError:
        pass


def _assemble(card: ModelCard, src: str, mech: "Mechanism | None") -> CompiledModel:
    """The compiled model of ``card`` from its generated source (executed here)."""
    namespace: dict = {}
    exec(compile(src, "<il2als generated model>", "exec"), namespace)
    scales = namespace["route_scales"]
    pnames, ynames = card.parameter_names, card.state_names
    routes = {r.name: (ynames.index(r.state), functools.partial(_route_scale, scales, k),
                       pnames.index(r.bioavailability) if r.bioavailability else -1,
                       pnames.index(r.lag) if r.lag else -1) for k, r in enumerate(card.dose_routes)}
    return CompiledModel(card, namespace["rhs"], namespace["jac"], namespace["observe"], namespace["initial"], src,
                         routes, mech)


def _route_scale(scales: Callable, k: int, p: np.ndarray) -> float:
    """Route ``k``'s scale (state unit per IU) for parameters ``p``."""
    return float(scales(0.0, None, p)[k])


def compile_mechanism(mech: "Mechanism") -> CompiledModel:
    """Generate and compile the numeric functions of a mechanism.

    Parameters
    ----------
    mech : Mechanism
        The assembled, unit-checked symbolic mechanism.

    Returns
    -------
    CompiledModel
        ``rhs``, the analytic ``jac``, ``observe`` (vectorised over times, or patients with ``p`` transposed),
        ``initial``, the dose routes' scales and the sparse LU of the Rosenbrock matrix; parameters stay inputs.
    """
    return _compile(mech)[0]


def _compile(mech: "Mechanism") -> tuple[CompiledModel, str]:
    """:func:`compile_mechanism`, and the key under which its generated source is kept."""
    from il2als.mechanism.core import State

    ys = [s.sym for s in mech.states]
    ynames = [s.name for s in mech.states]
    pnames = [p.name for p in mech.parameters]
    f = [mech.expand(mech.rates[s.name]) for s in mech.states]
    obs = [mech.expand(o.sym if isinstance(o, State) else o.formula) for o in mech.observables]
    init = [mech.expand(s.initial) for s in mech.states]
    scales = [mech.expand(r.scale) for r in mech.dose_routes]
    key = _source_key(f, obs, init, scales, ynames, pnames)
    src = _cached_text(_source_path(key))
    if src is None:  # the Jacobian, CSE and printing: ~0.2 s a process, so their text is kept on disk
        src = _generate_source(ys, ynames, pnames, f, obs, init, scales)
        _store_text(_source_path(key), src)
    return _assemble(card_of(mech), src, mech), key


def _files_key() -> str:
    """Hash of what the package's model is made from, read without importing it: the source files of the
    mechanism's modules (:mod:`il2als.mechanism`), of this module and of the card, and the sympy version (which
    prints the generated code). Any edit of one of them gives a new key, and so a fresh build."""
    import hashlib
    import importlib.util
    from pathlib import Path

    here = Path(__file__).resolve().parent
    mech_dir = Path(importlib.util.find_spec("il2als.mechanism").submodule_search_locations[0])
    sympy_spec = importlib.util.find_spec("sympy")
    h = hashlib.sha256()
    for path in [*sorted(mech_dir.glob("*.py")), here / "codegen.py", here / "card.py",
                 Path(sympy_spec.origin).parent / "release.py"]:
        h.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return h.hexdigest()[:20]


@functools.lru_cache(maxsize=4)
def default_model() -> CompiledModel:
    """The package's mechanism, assembled, unit-checked and compiled once per process; loaded from its card and
    generated source on disk when they were kept for the same source files (no sympy then)."""
    try:
        key = _files_key()
    except (OSError, TypeError, AttributeError):  # a source file unreadable: build it, keep nothing
        key = None
    if key is not None:
        text = _cached_text(_card_path(key))
        if text is not None:
            try:
                head, _, card_json = text.partition("\n")
                src = _cached_text(_source_path(head.removeprefix("source ")))
                if src is not None:
                    return _assemble(ModelCard.from_json(card_json), src, None)
            except (ValueError, KeyError, TypeError, SyntaxError):  # not a card of this version: rebuild it
                pass
    from il2als.mechanism import MODULES, build_mechanism

    model, source_key = _compile(build_mechanism(MODULES))
    if key is not None:  # the card names the source it goes with
        _store_text(_card_path(key), f"source {source_key}\n{model.card.to_json()}")
    return model

