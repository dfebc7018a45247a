"""Simulating many patients at once with the compiled batch engine.

``simulate_population(params, regimens, duration, step=..., outputs=[...])`` runs N patients (each with its own
parameters and regimen) through the numba Rosenbrock engine, in parallel over both cores, in chunks so that
memory stays bounded, and returns only the outputs asked for on the output grid. It gives the same answers as
:func:`il2als.simulate` (tested within 1e-4 relative).
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from il2als.compiler.codegen import CompiledModel, default_model
from il2als.compiler.engine import NEGATIVE_STATE, NOT_FINITE, OK, STATUS_TEXT, load_engine, report_compiled
from il2als.errors import Il2alsError, SolverError, did_you_mean
from il2als.inputs.parameters import ParameterSet
from il2als.inputs.regimens import Regimen, as_regimen
from il2als.results.batch import PopulationResult
from il2als.results.trajectory import _factor
from il2als.solve.events import BOLUS, DoseEvents, dose_events, plain_boluses
from il2als.solve.single import (NEGATIVE_TOLERANCE, _fixed_mask, _held_mask, _scales, absolute_tolerances,
                                 clip_negative, suspect_states, time_grid)

__all__ = ["BatchOptions", "parameter_matrix", "population_baselines",
           "simulate_population", "SKIP_ADVICE", "diagnose"]


@dataclass(frozen=True)
class BatchOptions:
    """Settings of the batch engine: relative tolerance, absolute tolerance relative to each state's scale (a
    state starting away from zero is held to the smaller of the two times its start,
    :func:`il2als.solve.single.absolute_tolerances`),
    first step after a dose (days), step budget per patient, patients per chunk, what to do when a patient
    fails: ``"fail"`` (raise) or ``"skip"`` (report it, fill its outputs with NaN), and the kernel:
    ``"lanes"`` (patients side by side in lanes, :func:`il2als.compiler.lane_width` of them per group),
    ``"scalar"`` (one patient at a time per core) or ``"auto"`` (lanes when a chunk has at least that many
    patients). Both kernels take the same steps with the same arithmetic: their results are identical (tested)."""

    rtol: float = 1e-5
    atol: float = 1e-4
    first_step: float = 1e-2
    max_steps: int = 200_000
    chunk: int = 1024
    on_failure: str = "fail"
    kernel: str = "auto"

    def __post_init__(self) -> None:
        for name in ("rtol", "atol"):
            v = getattr(self, name)
            if not (isinstance(v, (int, float)) and math.isfinite(v) and 0 < v < 1):
                raise Il2alsError(f"batch {name} = {v!r} must be a number between 0 and 1, e.g. 1e-6")
        if self.on_failure not in ("fail", "skip"):
            raise Il2alsError(f"on_failure = {self.on_failure!r} must be 'fail' or 'skip'")
        if self.kernel not in ("auto", "lanes", "scalar"):
            raise Il2alsError(f"kernel = {self.kernel!r} must be 'auto', 'lanes' or 'scalar'")
        if not (self.chunk >= 1 and self.max_steps >= 1 and self.first_step > 0):
            raise Il2alsError("chunk, max_steps and first_step must be positive")


def parameter_matrix(params: "Sequence[ParameterSet] | np.ndarray", model: CompiledModel) -> np.ndarray:
    """Parameters as an ``(N, n_parameters)`` array in canonical units."""
    if isinstance(params, np.ndarray):
        P = np.atleast_2d(np.asarray(params, dtype=float))
        if P.shape[1] != len(model.parameter_names):
            raise Il2alsError(f"parameter array has {P.shape[1]} columns; the model has {len(model.parameter_names)} parameters")
        if not np.all(np.isfinite(P)):
            raise Il2alsError("parameter array has non-finite values; give finite numbers")
        return P
    if isinstance(params, ParameterSet):
        params = [params]
    return np.array([ps.vector(model) for ps in params], dtype=float)


def _events(P: np.ndarray, regs: list[Regimen], model: CompiledModel, T: float):
    """Every patient's :func:`il2als.solve.dose_events` up to ``T``, flattened: (time, kind, target, value, period)
    arrays, per-patient offsets, and each patient's input peaks (for tolerance scales).

    Patients on a plain regimen (SC boluses only: every named regimen and sentence) get theirs by regimen, all at
    once (:func:`il2als.solve.events.plain_boluses`); the others one by one, those who share a regimen and the
    parameters dosing depends on sharing their events."""
    N = len(P)
    count = np.zeros(N, dtype=np.int64)
    peaks: list[dict[int, float]] = [{} for _ in range(N)]
    plain: dict[int, tuple[Regimen, list[int]]] = {}
    other: dict[int, tuple[DoseEvents, dict]] = {}
    cache: dict = {}
    used = _dosing_parameters(model)
    for i, reg in enumerate(regs):
        if reg.plain:
            plain.setdefault(id(reg), (reg, []))[1].append(i)
            continue
        key = (id(reg), *P[i, used])
        if key not in cache:
            ev = dose_events(P[i], reg, model).until(T)
            cache[key] = (ev, ev.peaks())
        other[i] = cache[key]
        count[i] = len(cache[key][0])
        peaks[i] = cache[key][1]
    groups = []
    for reg, rows in plain.values():
        rows = np.array(rows)
        target, time, value = plain_boluses(P[rows], reg, model)
        kept = time <= T
        count[rows] = kept.sum(axis=1)
        top = np.where(kept, value, -np.inf).max(axis=1, initial=-np.inf)
        for i, c, v in zip(rows, count[rows], top):
            if c:
                peaks[i] = {target: float(v)}
        groups.append((rows, target, time[kept], value[kept]))
    ptr = np.zeros(N + 1, dtype=np.int64)
    np.cumsum(count, out=ptr[1:])
    t, kind = np.empty(ptr[-1]), np.full(ptr[-1], BOLUS, dtype=np.int64)
    target_, value, period = np.empty(ptr[-1], dtype=np.int64), np.empty(ptr[-1]), np.zeros(ptr[-1])
    for rows, target, tk, vk in groups:  # row-major: patient by patient, in dose order
        c = count[rows]
        at = np.repeat(ptr[rows] - np.cumsum(c) + c, c) + np.arange(c.sum())
        t[at], target_[at], value[at] = tk, target, vk
    for i, (ev, _) in other.items():
        sl = slice(ptr[i], ptr[i + 1])
        t[sl], kind[sl], target_[sl], value[sl], period[sl] = ev.time, ev.kind, ev.target, ev.value, ev.period
    return t, kind, target_, value, period, ptr, peaks


def _lane_groups(n: int, lanes: int) -> int:
    """Groups of patients for the lanes kernel (one per numba thread, each with at least one full set of lanes
    where there are enough patients): every group ends with lanes going idle, so fewer, larger groups waste less."""
    import numba

    return max(1, min(numba.get_num_threads(), n // lanes))


#: this thread's buffer for the engine's raw output (see _nan_output); one per thread, so that simulations in
#: several threads never share it
_OUTPUT_BUFFER = threading.local()

#: the largest buffer kept between calls, in float64 values (128 MiB: a full chunk of 1,024 patients at 641 times)
_KEEP_AT_MOST = 16 * 2**20


def _output_buffer(shape: tuple[int, int, int]) -> np.ndarray:
    """A float64 array of ``shape`` for the engine to write into (each patient's rows are set to NaN by the
    engine as it starts that patient, so rows a failure leaves unreached are NaN), reusing this thread's buffer
    from an earlier chunk or call: a fresh array of ~100 MB costs ~0.1 s of page faults on some hosts (the
    2,000-patient expected effect paid it four times). The array never leaves :func:`simulate_population` (what
    it returns is copied out of it)."""
    size = int(np.prod(shape))
    if size > _KEEP_AT_MOST:
        return np.empty(shape)
    buf = getattr(_OUTPUT_BUFFER, "values", None)
    if buf is None or buf.size < size:
        buf = _OUTPUT_BUFFER.values = np.empty(size)
    return buf[:size].reshape(shape)


#: patients per call of the generated ``observe`` after a chunk (bounds its temporaries: the stacked states of
#: 64 patients at 641 times are 5.6 MB)
_OBSERVE_BLOCK = 64


class _RowParameters:
    """Patients' parameters ``(n, n_parameters)`` seen by the generated ``observe`` as one value per row of a
    stacked trajectory (``n * n_times`` rows): ``p[k]`` repeats patient i's value n_times times; only the
    parameters an observable uses are ever expanded."""

    __slots__ = ("P", "n_times")

    def __init__(self, P: np.ndarray, n_times: int):
        self.P, self.n_times = P, n_times

    def __getitem__(self, k: int) -> np.ndarray:
        return np.repeat(self.P[:, k], self.n_times)


def _stacked(peaks: Sequence[dict[int, float]]) -> dict[int, np.ndarray]:
    """Patients' :meth:`~il2als.solve.events.DoseEvents.peaks` as one mapping of ``(N,)`` arrays (0 where a
    patient has no input into that state)."""
    keys = set().union(*peaks) if len(peaks) else set()
    return {j: np.array([pk.get(j, 0.0) for pk in peaks]) for j in keys}


def _dosing_parameters(model: CompiledModel) -> list[int]:
    """Indices of the parameters dose events depend on: dose conversion, the routes' bioavailabilities, lags and
    scales (e.g. the volume, for an IV dose)."""
    names = set(model.card.dose_parameter_names)
    for r in model.card.dose_routes:
        names |= {n for n in (r.bioavailability, r.lag) if n} | set(r.scale_parameters)
    return sorted(model.parameter_index(n) for n in names)


def population_baselines(P: np.ndarray, model: CompiledModel | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Baseline states ``(N, n_states)`` (steady free states, fixed states at their initial values) and status."""
    model = model or default_model()
    eng = load_engine(model)
    fixed = _fixed_mask(model)
    Yinit = np.array([model.initial(0.0, None, p) for p in P])
    atol = np.maximum(np.abs(Yinit), 1e-3) * 1e-6
    Y0 = np.empty_like(Yinit)
    status = np.zeros(len(P), dtype=np.int64)
    eng.baselines(Yinit, P, fixed, atol, Y0, status)
    return Y0, status


def simulate_population(params: "Sequence[ParameterSet] | ParameterSet | np.ndarray",
                        regimens: "Regimen | str | Sequence[Regimen | str]", duration: object = "640 day", *,
                        step: object = "1 day", outputs: Sequence[str] | None = None,
                        options: BatchOptions = BatchOptions(), model: CompiledModel | None = None,
                        progress: Callable[[int, int], None] | None = None,
                        initial: np.ndarray | None = None, times: object = None) -> PopulationResult:
    """Simulate N patients; each gets its own parameters and (optionally) its own regimen.

    Parameters
    ----------
    params : N parameter sets, or an ``(N, n_parameters)`` array in canonical units.
    regimens : one regimen for all, or a sequence of N (names, sentences, CSV paths or Regimen objects).
    duration, step : time quantities (``"640 day"``, ``"1 day"``).
    outputs : names of observables or states to return (default: all observables).
    options : :class:`BatchOptions` (tolerances, chunk size, failure policy).
    progress : called as ``progress(done, total)`` after each chunk.
    initial : optional ``(N, n_states)`` starting states (canonical units) instead of each patient's baseline,
        e.g. to change parameters part-way (start from the state reached under other parameters).
    times : optional output times instead of the ``duration``/``step`` grid: a pint Quantity array or days,
        finite, >= 0 and increasing (0 is added if absent); outputs are the solver's dense output *at* those
        times (error-controlled Hermite interpolation inside each accepted step), not an interpolation of a
        coarser grid — what observation-time predictions need.

    Returns
    -------
    PopulationResult with ``values[name]`` of shape ``(N, n_times)`` in the output units.
    """
    model = model or default_model()
    T, t_out = time_grid(duration, step, times)
    P = parameter_matrix(params, model)
    N = len(P)
    if isinstance(regimens, (Regimen, str)):
        regs = [as_regimen(regimens)] * N
    else:
        regs = [as_regimen(r) for r in regimens]
        if len(regs) != N:
            raise Il2alsError(f"{len(regs)} regimens for {N} patients; give one regimen, or one per patient")
    names = list(outputs) if outputs is not None else list(model.observable_names)
    obs_names, state_names = model.observable_names, model.state_names
    for n in names:
        if n not in obs_names and n not in state_names:
            raise Il2alsError(f"unknown output '{n}'{did_you_mean(n, obs_names + state_names)}")
    units_all = {s.name: (s.unit, s.output_unit or s.unit) for s in model.card.states}
    units_all.update({o.name: (o.unit, o.output_unit or o.unit) for o in model.observables})
    factors = {n: _factor(*units_all[n]) for n in names}
    if initial is not None and np.shape(initial) != (N, len(model.state_names)):
        raise Il2alsError(f"initial states must have shape ({N}, {len(model.state_names)})")
    ev_t, ev_kind, ev_target, ev_value, ev_period, ev_ptr, peaks = _events(P, regs, model, T)
    eng = load_engine(model)
    held = _held_mask(model)  # during steady-state doses
    values = {n: np.empty((N, len(t_out))) for n in names}
    status = np.zeros(N, dtype=np.int64)
    t_fail = np.zeros(N)
    steps = np.zeros(N, dtype=np.int64)
    failures: list[str] = []
    ns = len(state_names)
    for c0 in range(0, N, options.chunk):
        c1 = min(N, c0 + options.chunk)
        Pc = P[c0:c1]
        if initial is not None:
            Y0 = np.ascontiguousarray(initial[c0:c1], dtype=float)
            st0 = np.zeros(c1 - c0, dtype=np.int64)
        else:
            Y0, st0 = population_baselines(Pc, model)
        scale = _scales(model, Y0, Pc, _stacked(peaks[c0:c1]))
        atol = absolute_tolerances(model, Y0, scale, options.rtol, options.atol)
        out = _output_buffer((c1 - c0, len(t_out), ns))
        ptr = ev_ptr[c0:c1 + 1] - ev_ptr[c0]
        e0, e1 = ev_ptr[c0], ev_ptr[c1]
        st = np.zeros(c1 - c0, dtype=np.int64)
        args = (Y0, Pc, ev_t[e0:e1], ev_kind[e0:e1], ev_target[e0:e1], ev_value[e0:e1], ev_period[e0:e1], ptr, held,
                t_out, options.rtol, atol, options.first_step, options.max_steps, out, st, t_fail[c0:c1],
                steps[c0:c1])
        if options.kernel == "lanes" or (options.kernel == "auto" and c1 - c0 >= eng.LANES):
            eng.population_lanes(*args, _lane_groups(c1 - c0, eng.LANES))
        else:
            eng.population(*args)
        report_compiled(eng)
        st = np.where(st0 != OK, st0, st)
        flag = np.empty(c1 - c0, dtype=np.int64)  # the outputs' checks, one compiled pass (kernels.screen)
        eng.screen(out, st, atol, NEGATIVE_TOLERANCE, flag)
        st[flag == 1] = NOT_FINITE
        messages: dict[int, tuple[str, Callable[[], str]]] = {}
        for j in np.nonzero(st != OK)[0]:
            messages[j] = (f"patient {c0 + j}: {STATUS_TEXT.get(int(st[j]), 'failure')} at t = {t_fail[c0 + j]:.6g} "
                           f"day (regimen {regs[c0 + j].name})",
                           lambda j=j: diagnose(model, Pc[j], out[j], t_out, Y0[j], scale[j]))
        for j in np.nonzero(flag == 2)[0]:  # a state went negative beyond round-off: name it (nothing left to clip)
            neg, k = clip_negative(out[j], atol[j])
            if neg:
                st[j] = NEGATIVE_STATE
                messages[j] = (f"patient {c0 + j}: negative state(s) {', '.join(state_names[q] for q in neg)} at "
                               f"t = {t_out[k]:.6g} day (beyond {NEGATIVE_TOLERANCE:g} x the absolute tolerance; "
                               f"regimen {regs[c0 + j].name})", lambda: "tighten rtol/atol of the batch options")
        status[c0:c1] = st
        for j in sorted(messages):  # one policy for every failure: raise, or exclude and report
            msg, detail = messages[j]
            if options.on_failure == "fail":
                raise SolverError(msg + "; " + detail() + SKIP_ADVICE)
            failures.append(msg)
        bad = st != OK
        good = np.nonzero(~bad)[0]
        for n in names:  # one pass an output: a state's values scaled to its output unit; a failed patient's NaN
            v = values[n][c0:c1]
            if n in state_names:
                np.multiply(out[:, :, state_names.index(n)], factors[n], out=v)
            v[bad] = np.nan  # (an observable's other rows are written below)
        wanted = [n for n in names if n in obs_names and n not in state_names]
        for b0 in range(0, len(good) if wanted else 0, _OBSERVE_BLOCK):
            rows = good[b0:b0 + _OBSERVE_BLOCK]
            block = out[rows[0]:rows[-1] + 1] if rows[-1] - rows[0] + 1 == len(rows) else out[rows]  # a view if it can
            obs = model.observe(np.tile(t_out, len(rows)), block.reshape(-1, ns),
                                _RowParameters(Pc[rows], len(t_out)), [obs_names.index(n) for n in wanted])
            for q, n in enumerate(wanted):
                values[n][c0 + rows] = obs[:, q].reshape(len(rows), -1) * factors[n]
        if progress is not None:
            progress(c1, N)
    return PopulationResult(t_out, values, {n: units_all[n][1] for n in names}, status, tuple(failures), steps)


#: The end of a batch failure message; the command line names its own flag instead, or drops it.
SKIP_ADVICE = "; or report and exclude failing patients with on_failure='skip'"


def diagnose(model: CompiledModel, p: np.ndarray, Y: np.ndarray, t_out: np.ndarray, y_start: np.ndarray,
             scale: np.ndarray) -> str:
    """Why one patient failed, from what the engine produced (cheap and bounded): the suspect states at the last
    good output (:func:`il2als.solve.suspect_states`, ``scale`` the states' typical magnitudes) and the
    parameters in play (those outside the plausible ranges of the default set)."""
    from il2als.inputs.parameters import load_parameters

    good = np.nonzero(np.all(np.isfinite(Y), axis=1))[0]
    y, t = (Y[good[-1]], t_out[good[-1]]) if len(good) else (y_start, 0.0)
    with np.errstate(all="ignore"):
        d = model.rhs(t, np.where(np.isfinite(y), y, 0.0), p)
    bad = suspect_states(model, y, [d], scale)
    base = load_parameters("default", model)
    odd = [f"{n} = {v:.4g} {base.get(n).unit}" for n, v in zip(model.parameter_names, p)
           if not (base.get(n).plausible[0] <= v <= base.get(n).plausible[1])]
    return (f"states gone wrong after t = {t:.6g} day: {', '.join(bad)}; parameters outside their plausible ranges: "
            f"{'; '.join(odd) if odd else 'none'}")
