"""Simulation: a patient's baseline, then piecewise stiff integration between dose events.

A dose is a discontinuity: the depot jumps by ``F * amount`` at ``t_dose + lag``, and the solver restarts
there, so no pulse is missed and no step is wasted chasing one. Between doses the compiled right-hand side
and analytic Jacobian go to a stiff solver (LSODA by default). The numerics here are pure functions of a
compiled model, a parameter set and a regimen; nothing is read or written."""

from __future__ import annotations

import functools
import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from il2als.compiler.codegen import CompiledModel, default_model
from il2als.compiler.kernels import MAX_SS_CYCLES, SS_CONVERGENCE
from il2als.errors import Il2alsError, SolverError
from il2als.inputs.parameters import ParameterSet
from il2als.inputs.regimens import Regimen, as_regimen
from il2als.inputs.units import to_unit
from il2als.results.trajectory import Trajectory
from il2als.solve.events import BOLUS, RESET, STEADY_STATE, DoseEvents, dose_events

if TYPE_CHECKING:
    from il2als.results.batch import PopulationResult

__all__ = ["METHODS", "DurationWarning", "SolverOptions", "baseline_state", "output_grid", "output_times", "time_grid", "integrate",
           "NEGATIVE_TOLERANCE", "clip_negative", "check_grid", "suspect_states", "simulate"]


#: ``engine``: the compiled Rosenbrock batch engine (the one every study uses); the others are scipy's stiff solvers,
#: the reference the engine is tested against
METHODS = ("LSODA", "BDF", "Radau", "engine")


class DurationWarning(UserWarning):
    """Doses fall after the end of the simulation and are ignored."""


@dataclass(frozen=True)
class SolverOptions:
    """Stiff-solver settings: ``method`` (``engine``, the compiled batch engine the studies use, the default; or
    scipy's LSODA, BDF or Radau, the reference it is tested against), relative tolerance, absolute tolerance
    relative to each state's scale, and the largest step in days (``inf`` = solver's choice; scipy's solvers
    only)."""

    method: str = "engine"
    rtol: float = 1e-7
    atol: float = 1e-9
    max_step: float = math.inf

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise Il2alsError(f"solver method '{self.method}' is not one of {', '.join(METHODS)}")
        for name in ("rtol", "atol"):
            v = getattr(self, name)
            if not (isinstance(v, (int, float)) and math.isfinite(v) and 0 < v < 1):
                raise Il2alsError(f"solver {name} = {v!r} must be a number between 0 and 1, e.g. 1e-7")
        if not (self.max_step > 0):
            raise Il2alsError(f"solver max_step = {self.max_step!r} must be positive")
        if self.method == "engine" and self.max_step != math.inf:
            raise Il2alsError("solver max_step is a setting of scipy's solvers (the engine chooses its own steps); "
                              "give method='LSODA' (or BDF, Radau) with it")


def _fixed_mask(model: CompiledModel) -> np.ndarray:
    """The states the baseline holds at their declared initial values."""
    return np.array([s.baseline == "fixed" for s in model.card.states])


def _held_mask(model: CompiledModel) -> np.ndarray:
    """The states a steady-state dose holds where they are: all but the dosing-driven modules' (the disease)."""
    return ~np.isin(model.state_names, model.card.dosing_driven_states)


def baseline_state(params: ParameterSet | np.ndarray, model: CompiledModel | None = None) -> np.ndarray:
    """The patient's untreated steady state (the pre-treatment state).

    Parameters
    ----------
    params : ParameterSet or (n_parameters,) array in canonical units
    model : CompiledModel, optional

    Returns
    -------
    (n_states,) array
        Canonical units; disease states at their declared starting values, the others at steady state.
    """
    model = model or default_model()
    p = params.vector(model) if isinstance(params, ParameterSet) else np.asarray(params, float)
    fixed = _fixed_mask(model)
    free = ~fixed
    y = np.asarray(model.initial(0.0, np.zeros(len(fixed)), p), float)

    def frozen(t: float, x: np.ndarray) -> np.ndarray:
        d = model.rhs(t, x, p)
        d[fixed] = 0.0
        return d

    def frozen_jac(t: float, x: np.ndarray) -> np.ndarray:
        j = model.jac(t, x, p)
        j[fixed, :] = 0.0
        return j

    # Relax towards the steady state, then polish it with Newton on the free states.
    from scipy.integrate import solve_ivp
    from scipy.optimize import root

    sol = solve_ivp(frozen, (0.0, 5000.0), y, method="LSODA", jac=frozen_jac, rtol=1e-8, atol=1e-10)
    if sol.status < 0 or not np.all(np.isfinite(sol.y[:, -1])):
        why = sol.message if sol.status < 0 else "non-finite values"
        raise SolverError(f"baseline: relaxation to the steady state failed ({why}); check the parameters")
    y = sol.y[:, -1].copy()

    def resid(x: np.ndarray) -> np.ndarray:
        z = y.copy()
        z[free] = x
        return model.rhs(0.0, z, p)[free]

    def rjac(x: np.ndarray) -> np.ndarray:
        z = y.copy()
        z[free] = x
        return model.jac(0.0, z, p)[np.ix_(free, free)]

    r = root(resid, y[free], jac=rjac, method="hybr", options={"xtol": 1e-13})
    scale = np.maximum(np.abs(r.x), 1e-6)
    if not np.all(np.isfinite(r.x)) or np.max(np.abs(resid(r.x)) / scale) > 1e-8:
        bad = [n for n, ok in zip(np.array(model.state_names)[free], np.abs(resid(r.x)) / scale <= 1e-8) if not ok]
        raise SolverError(f"baseline: no steady state found for {', '.join(bad)}; check the parameters")
    y[free] = r.x
    return y


@functools.lru_cache(maxsize=8)
def _tolerance_floor(model: CompiledModel) -> np.ndarray:
    """Each state's declared ``tolerance_scale``, 1e-3 where none is declared: ``(n_states,)``, read-only."""
    floor = np.array([1e-3 if s.tolerance_scale is None else s.tolerance_scale for s in model.card.states])
    floor.flags.writeable = False
    return floor


def _scales(model: CompiledModel, y0: np.ndarray, p: np.ndarray, peaks: dict) -> np.ndarray:
    """Typical magnitude of each state, for absolute tolerances: ``y0`` ``(n_states,)`` or ``(N, n_states)``, ``p``
    its parameters ``(n_parameters,)`` or ``(N, n_parameters)``; ``peaks`` maps a state's index to the largest
    single input into it (:meth:`DoseEvents.peaks`; a float, or ``(N,)`` for N patients). At least each state's
    declared ``tolerance_scale`` (1e-3 where none is declared)."""
    s = np.maximum(np.abs(y0), _tolerance_floor(model))
    depot = model.state_index("il2_depot")
    conc = model.state_index("il2_plasma")
    v = p[..., model.parameter_index("volume")]
    s[..., depot] = np.maximum(np.maximum(s[..., depot], peaks.get(depot, 0.0)), 1.0)
    # Plasma IL-2 matters to the Tregs on the scale of their EC50, whatever the dose: a scale growing with the
    # dose let large doses' tails (and so the Treg expansion) drift by 2e-4 relative; capped, 2e-5 (+4% steps).
    ec50 = p[..., model.parameter_index("ec50_treg")]
    grown = np.maximum(np.maximum(s[..., conc], peaks.get(depot, 0.0) / v * 0.1),
                       np.maximum(peaks.get(conc, 0.0) * 0.1, 1e-3))
    s[..., conc] = np.minimum(grown, np.maximum(ec50, 1e-3))
    return s


def absolute_tolerances(model: CompiledModel, y0: np.ndarray, scale: np.ndarray, rtol: float,
                        atol: float) -> np.ndarray:
    """Absolute tolerance of each state (its canonical unit; shapes as :func:`_scales`): ``atol`` times the
    state's ``scale`` (from :func:`_scales`), except that a state starting away from zero (other than the IL-2
    depot and plasma, whose scales follow the doses) is held to ``min(rtol, atol)`` times its starting size.

    Such states (Tregs, microglia, neurofilament, motor-neuron reserve...) stay near their starting size, so
    ``atol`` times that size is in effect a relative tolerance; when it is looser than ``rtol`` it, not ``rtol``,
    decides their accuracy: at rtol 1e-5 and atol 1e-4 serum NfL was 1.2e-5 off a tight reference, with this
    rule 2.7e-6, for +0.05% steps (the doses' fast states set the step size, not these slow ones)."""
    tol = scale * atol
    if atol > rtol:
        size = np.abs(y0)
        own = size > 1e-3
        own[..., [model.state_index("il2_depot"), model.state_index("il2_plasma")]] = False
        tol = np.where(own, rtol * size, tol)
    return tol


def output_grid(duration: float, step: float) -> np.ndarray:
    """Times 0, step, 2 step, ... up to and including ``duration`` (days)."""
    n = int(math.floor(duration / step + 1e-9))
    t = np.arange(n + 1) * step
    if duration - t[-1] > 1e-9 * max(1.0, duration):
        t = np.append(t, duration)
    return t


def output_times(times: object) -> np.ndarray:
    """Explicit output times in days (from a pint Quantity array or plain days): finite, >= 0, strictly
    increasing, starting at 0 (added when absent), and ending after 0."""
    import pint

    if isinstance(times, pint.Quantity):
        try:
            t = np.asarray(times.to("day").magnitude, dtype=float).ravel()
        except pint.DimensionalityError:
            raise Il2alsError(f"output times in '{times.units}' are not times; give days, hours, ...") from None
    else:
        try:
            t = np.asarray(times, dtype=float).ravel()
        except (TypeError, ValueError):
            raise Il2alsError("output times must be numbers (days) or a pint time array") from None
    if len(t) == 0 or not np.all(np.isfinite(t)) or np.any(t < 0):
        raise Il2alsError("output times must be finite, >= 0 and not empty")
    if np.any(np.diff(t) <= 0):
        raise Il2alsError("output times must be strictly increasing; sort them and drop repeats")
    if t[0] > 0:
        t = np.concatenate([[0.0], t])
    if t[-1] <= 0:
        raise Il2alsError("output times must reach beyond 0")
    return t


def time_grid(duration: object, step: object, times: object = None) -> tuple[float, np.ndarray]:
    """The end ``T`` [day] and output times ``(n_times,)`` [day] of a simulation: the explicit ``times`` when given
    (see :func:`output_times`), else every ``step`` over ``duration`` (see :func:`output_grid`)."""
    if times is not None:
        t_out = output_times(times)
        return float(t_out[-1]), t_out
    T, dt = check_grid(duration, step)
    return T, output_grid(T, dt)


def integrate(model: CompiledModel, p: np.ndarray, y0: np.ndarray, events: DoseEvents, t_out: np.ndarray,
              options: SolverOptions, label: str = "") -> np.ndarray:
    """Piecewise integration from ``y0`` at t=0 through ``events``; returns states at ``t_out``, shape
    ``(n_times, n_states)``. Values at an event time are those just after the event. The scipy reference path:
    the batch engine (:mod:`il2als.compiler.kernels`) implements the same events and is tested against it.
    ``options.method`` is one of scipy's (LSODA, BDF, Radau)."""
    if options.method == "engine":
        raise Il2alsError("integrate() is the scipy reference path: give SolverOptions(method='LSODA') (or BDF, Radau); "
                          "simulate() runs one patient on the engine")
    duration = float(t_out[-1])
    ev = events.until(duration)
    scale = _scales(model, y0, p, ev.peaks())
    atol = absolute_tolerances(model, y0, scale, options.rtol, options.atol)
    held = _held_mask(model)
    n = len(y0)
    out = np.empty((len(t_out), n))
    y = y0.copy()
    u = np.zeros(n)
    bounds = np.unique(np.concatenate([[0.0], ev.time, [duration]]))

    def solve(a: float, b: float, x: np.ndarray, rate: np.ndarray, t_eval, frozen=None):
        def f(t: float, z: np.ndarray) -> np.ndarray:
            d = model.rhs(t, z, p) + rate
            if frozen is not None:
                d[frozen] = 0.0
            return d

        def j(t: float, z: np.ndarray) -> np.ndarray:
            m = model.jac(t, z, p)
            if frozen is not None:
                m[frozen, :] = 0.0
            return m

        from scipy.integrate import solve_ivp

        sol = solve_ivp(f, (a, b), x, method=options.method, jac=j, t_eval=t_eval, rtol=options.rtol, atol=atol,
                        max_step=options.max_step)
        if sol.status < 0 or not np.all(np.isfinite(np.asarray(sol.y, dtype=float))):
            raise _failure(model, p, sol, a, x, scale, label)
        return sol

    for k in range(len(bounds) - 1):
        a, b = bounds[k], bounds[k + 1]
        for e in np.nonzero(ev.time == a)[0]:
            kind, target, value = int(ev.kind[e]), int(ev.target[e]), float(ev.value[e])
            if kind == RESET:
                y, u = y0.copy(), np.zeros(n)
            elif kind == STEADY_STATE:
                y = _periodic(lambda x, tau: solve(0.0, tau, x, np.zeros(n), [tau], held).y[:, -1], y, target, value,
                              float(ev.period[e]), held, atol, options.rtol, label)
                y[target] += value
            elif kind == BOLUS:
                y = y.copy()
                y[target] += value
            else:
                u = u.copy()
                u[target] += value
        last = k == len(bounds) - 2
        idx = np.nonzero((t_out >= a) & ((t_out <= b) if last else (t_out < b)))[0]
        if b <= a:
            out[idx] = y
            continue
        t_eval = np.unique(np.concatenate([t_out[idx], [b]]))  # the segment's end too: no second integration
        sol = solve(a, b, y, u, t_eval)
        keep = np.isin(sol.t, t_out[idx])
        out[idx] = sol.y.T[keep]
        y = sol.y[:, -1]
    bad, i = clip_negative(out, atol)
    if bad:
        raise SolverError(f"{label}negative state(s) {', '.join(model.state_names[k] for k in bad)} at "
                          f"t = {t_out[i]:.6g} day; tighten the tolerance (rtol) or use method Radau")
    return out


def _periodic(cycle, y: np.ndarray, target: int, value: float, period: float, held: np.ndarray, atol: np.ndarray,
              rtol: float, label: str) -> np.ndarray:
    """The state just before a dose of ``value`` into ``target`` repeated every ``period`` days has reached its
    periodic steady state, the ``held`` states (the disease) held; ``cycle(x, period)`` integrates one period.
    Cycles repeat until no free state moves by more than SS_CONVERGENCE of its error tolerance from one cycle to
    the next, and fail after MAX_SS_CYCLES: the engine's rule (:func:`il2als.compiler.kernels.periodic`)."""
    y = y.copy()
    for _ in range(MAX_SS_CYCLES):
        start = y.copy()
        x = y.copy()
        x[target] += value
        y = cycle(x, period)
        if np.all(np.abs(y - start)[~held] <= SS_CONVERGENCE * (atol + rtol * np.abs(y))[~held]):
            return y
    raise SolverError(f"{label}steady-state dose every {period:g} day: no periodic steady state after {MAX_SS_CYCLES} "
                      "cycles; give the doses that led to it (ADDL/II) instead of SS")


#: A state may dip below zero by up to this many times its absolute tolerance (the solver's error control
#: allows errors of that order) and is then set to 0; a deeper dip is a solver fault. One policy for the
#: single-patient path and the batch engine (each with its own tolerances).
NEGATIVE_TOLERANCE = 1e3


def clip_negative(out: np.ndarray, atol: np.ndarray) -> tuple[list[int], int]:
    """Apply the negative-state policy in place to ``out`` ``(n_times, n_states)`` with the states' absolute
    tolerances ``atol`` ``(n_states,)``: set negatives within ``NEGATIVE_TOLERANCE * atol`` to 0; return (indices
    of states that went deeper, the time index of the worst), ``([], -1)`` when none did."""
    neg = out < 0
    if not np.any(neg):
        return [], -1
    rel = out / np.expand_dims(atol, -2)
    worst = rel.min(axis=-2)
    bad = sorted({int(k) for k in np.nonzero(worst < -NEGATIVE_TOLERANCE)[-1]})
    i = int(np.unravel_index(np.argmin(rel), rel.shape)[-2]) if bad else -1
    out[neg & (rel >= -NEGATIVE_TOLERANCE)] = 0.0
    return bad, i


def check_grid(duration: object, step: object) -> tuple[float, float]:
    """(duration, step) in days, checked: both times, positive, step <= duration, a bounded number of points."""
    T = to_unit(duration, "day", "duration")
    dt = to_unit(step, "day", "step")
    if not (T > 0) or not math.isfinite(T):
        raise Il2alsError(f"duration {duration} must be positive and finite, e.g. '640 day'")
    if not (0 < dt <= T):
        raise Il2alsError(f"step {step} must be positive and no longer than the duration {duration}")
    if T / dt > 5e6:
        raise Il2alsError(f"step {step} over {duration} gives {T / dt:.3g} output points; use a coarser step")
    return T, dt


def suspect_states(model: CompiledModel, y: np.ndarray, rates: list[np.ndarray], scale: np.ndarray) -> list[str]:
    """The states to blame for a failure at state ``y``: non-finite or negative (beyond 1e-6 of their ``scale``)
    values, or a non-finite rate in any of ``rates``; if none, the three fastest-moving relative to their scale
    (a blow-up from finite rates)."""
    names = model.state_names
    bad = [n for i, (n, v, s) in enumerate(zip(names, y, scale))
           if not np.isfinite(v) or v < -1e-6 * s or not all(np.isfinite(r[i]) for r in rates)]
    if not bad:
        with np.errstate(all="ignore"):
            rel = np.abs(rates[0]) / scale
        bad = [f"{names[i]} (fastest)" for i in np.argsort(rel)[::-1][:3]]
    return bad


def _failure(model: CompiledModel, p: np.ndarray, sol, a: float, y_start: np.ndarray, scale: np.ndarray,
             label: str) -> SolverError:
    """A one-line error naming when the solution went wrong and which states' rates were at fault."""
    t_last, y_last = a, y_start
    # scipy returns plain lists when a solve fails before the first requested output time
    Y, T = np.asarray(sol.y, dtype=float), np.asarray(sol.t, dtype=float)
    if Y.ndim == 2 and Y.size and len(T):
        good = np.all(np.isfinite(Y), axis=0)
        bad_at = np.nonzero(~good)[0]
        first_bad = int(bad_at[0]) if len(bad_at) else Y.shape[1]
        if first_bad > 0:
            t_last, y_last = T[first_bad - 1], Y[:, first_bad - 1]
        t_fail = T[first_bad] if first_bad < len(T) else T[-1]
    else:
        t_fail = a
    # probe the rates from the last good state at times up to just past the failure
    probes = np.append(np.linspace(t_last, t_fail, 5)[1:], t_fail + 1e-6 * max(1.0, abs(t_fail)))
    with np.errstate(all="ignore"):
        rates = [model.rhs(tp, y_last, p) for tp in probes]
    bad = suspect_states(model, y_last, rates, scale)
    why = sol.message.strip() if sol.status < 0 else "non-finite values"
    return SolverError(
        f"{label}solver failed at t = {t_fail:.6g} day ({why}); states whose rates went wrong after t = {t_last:.6g} day: "
        f"{', '.join(bad) or 'none found (step size collapsed)'}; try method Radau (tighter rtol) or check the parameters"
    )


def _initial_state_name(initial: str) -> bool:
    """True for the name of the untreated steady state; a one-line error for any other name."""
    if initial.strip().lower().replace("_", "-") in ("steady-state", "baseline"):
        return True
    raise Il2alsError(f"initial '{initial}' is not known; give 'steady-state', a state vector or a Trajectory")


def _initial_state(initial: object, p: np.ndarray, model: CompiledModel) -> np.ndarray:
    """The starting state named or given by ``initial`` (see :func:`simulate`), checked."""
    if isinstance(initial, str):
        _initial_state_name(initial)
        return baseline_state(p, model)
    if isinstance(initial, Trajectory):
        if initial.state_names != model.state_names:
            raise Il2alsError("initial: the Trajectory comes from another model (its states differ); start from "
                              "'steady-state' or give a state vector")
        y0 = np.array(initial.states[-1], dtype=float)
    else:
        y0 = np.asarray(initial, dtype=float)
    if y0.shape != (len(model.state_names),) or not np.all(np.isfinite(y0)) or np.any(y0 < 0):
        raise Il2alsError(f"initial state must be {len(model.state_names)} finite, non-negative numbers (canonical "
                          f"units, in the order {', '.join(model.state_names[:3])}, ...)")
    return y0


def _on_engine(model: CompiledModel, p: np.ndarray, y0: np.ndarray, reg: Regimen, t_out: np.ndarray,
               options: SolverOptions, name: str) -> np.ndarray:
    """One patient's states ``(n_times, n_states)`` in canonical units at ``t_out``, from the batch engine (dense
    output at those times), at the tolerances of ``options``."""
    from il2als.results.trajectory import _factor
    from il2als.solve.batch import BatchOptions, simulate_population

    try:
        res = simulate_population(p[None, :], reg, times=t_out, outputs=list(model.state_names), initial=y0[None, :],
                                  options=BatchOptions(rtol=options.rtol, atol=options.atol), model=model)
    except SolverError as exc:
        raise SolverError(f"{name}: {exc}") from None
    return np.column_stack([res[s.name][0] / _factor(s.unit, s.output_unit or s.unit) for s in model.card.states])


def simulate(params: "ParameterSet | Sequence[ParameterSet] | np.ndarray", regimen: "Regimen | str",
             duration: object = "640 day", *, step: object = "1 day", times: object = None,
             initial: "str | np.ndarray | Trajectory" = "steady-state", outputs: "Sequence[str] | None" = None,
             options: "SolverOptions | None" = None, model: CompiledModel | None = None) -> "Trajectory | PopulationResult":
    """Simulate one patient (or many) from ``initial`` under ``regimen`` for ``duration``, reporting every ``step``.

    One patient gives a :class:`Trajectory` (every state and observable); ``options.method`` chooses the solver:
    ``"engine"``, the compiled batch engine the studies use (default; ~5x faster than scipy for a 640-day MIROCALS
    trajectory), or scipy's LSODA, BDF or Radau (the reference the engine is tested against).
    Many patients (a sequence of parameter sets, or an ``(N, n_parameters)`` array) run on the batch engine and
    give a :class:`~il2als.results.batch.PopulationResult`, exactly as :func:`~il2als.solve.batch.simulate_population`
    (``options`` is then a :class:`~il2als.solve.batch.BatchOptions`; ``regimen`` may be one per patient).

    Parameters
    ----------
    params : the patient's parameter set (e.g. ``load_parameters("slow")``), or many.
    regimen : a :class:`Regimen`, a name (``"mirocals"``), a CSV path or a sentence; dose times count from the
        start of this simulation.
    duration, step : quantities with a time unit (``"640 day"``, ``"1 hour"``).
    times : optional output times instead of the ``duration``/``step`` grid: a pint Quantity array or days,
        increasing (0 is added if absent); the simulation ends at the last one.
    initial : where the patient starts: ``"steady-state"`` (the untreated baseline of ``params``, the default), a
        state vector ``(n_states,)`` in canonical units, or a :class:`Trajectory` (continue from its last state,
        e.g. with other parameters or another regimen).
    outputs : the outputs to return (many patients; default all observables); one patient's Trajectory has all.
    options : solver settings (keyword only).

    Returns
    -------
    Trajectory with ``time`` (n_times,) in days, states (n_times, n_states) and observables; or, for many
    patients, a PopulationResult with ``values[name]`` of shape ``(N, n_times)``.
    """
    model = model or default_model()
    if not isinstance(params, ParameterSet):
        from il2als.solve.batch import BatchOptions, simulate_population

        if options is not None and not isinstance(options, BatchOptions):
            raise Il2alsError("many patients run on the batch engine: give `options` as BatchOptions (or none)")
        start = None if isinstance(initial, str) and _initial_state_name(initial) else initial
        return simulate_population(params, regimen, duration, step=step, outputs=outputs, times=times,
                                   initial=start, options=options or BatchOptions(), model=model)
    options = options or SolverOptions()
    if not isinstance(options, SolverOptions):
        raise Il2alsError("one patient: give `options` as SolverOptions(method=..., rtol=..., atol=...)")
    reg = as_regimen(regimen)
    T, t_out = time_grid(duration, step, times)
    p = params.vector(model)
    ev = dose_events(p, reg, model)
    late = reg.times() > T
    if np.any(late):
        warnings.warn(f"{int(late.sum())} of {len(reg)} doses fall after the end of the simulation (day {T:g}) and are "
                      "ignored", DurationWarning, stacklevel=2)
    y0 = _initial_state(initial, p, model)
    if options.method == "engine":
        Y = _on_engine(model, p, y0, reg, t_out, options, params.name)
    else:
        Y = integrate(model, p, y0, ev, t_out, options, label=f"{params.name}: ")
    amounts = reg.amounts_iu(p[model.parameter_index("body_surface_area")],
                             p[model.parameter_index("aldesleukin_specific_activity")])
    return Trajectory.build(model, t_out, Y, p, params=params, regimen=reg, dose_times=reg.times()[~late],
                            dose_amounts_iu=amounts[~late])
