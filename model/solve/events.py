"""Dose events: a regimen turned into sorted bolus, infusion-rate, steady-state and reset events for one patient."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from il2als.compiler.codegen import CompiledModel
from il2als.errors import RegimenError, did_you_mean
from il2als.inputs.regimens import Regimen

__all__ = ["DoseEvents", "dose_events", "plain_boluses"]


#: Kinds of event: a bolus (``value`` added to the target state), a change of an infusion's input rate (``value``
#: added to d(target)/dt), a steady-state dose (reset to the periodic steady state of ``value`` every ``period``,
#: then the bolus) and a reset of every state to the baseline. At one time they apply in the order reset,
#: steady state, bolus, rate.
BOLUS, RATE, STEADY_STATE, RESET = 0, 1, 2, 3


_ORDER = {RESET: 0, STEADY_STATE: 1, BOLUS: 2, RATE: 3}


@dataclass(frozen=True)
class DoseEvents:
    """A patient's events, sorted: ``time`` (days, lag-shifted), ``kind``, ``target`` (state index), ``value``
    (state unit, or state unit per day for a rate) and ``period`` (days, steady-state doses), each ``(n_events,)``."""

    time: np.ndarray
    kind: np.ndarray
    target: np.ndarray
    value: np.ndarray
    period: np.ndarray

    def __len__(self) -> int:
        return len(self.time)

    def until(self, t_end: float) -> "DoseEvents":
        """The events at or before ``t_end``."""
        k = self.time <= t_end
        return DoseEvents(self.time[k], self.kind[k], self.target[k], self.value[k], self.period[k])

    def peaks(self) -> dict[int, float]:
        """Largest single input per target state (a bolus, a steady-state dose, or an infusion's whole amount),
        in the state's unit: the scale of its absolute tolerance."""
        out: dict[int, float] = {}
        bolus = (self.kind == BOLUS) | (self.kind == STEADY_STATE)
        for j in np.unique(self.target[bolus]):
            out[int(j)] = float(self.value[bolus & (self.target == j)].max())
        for i in np.nonzero((self.kind == RATE) & (self.value > 0))[0]:  # an infusion: rate x its duration
            j, v = self.target[i], self.value[i]
            ends = np.nonzero((self.kind == RATE) & (self.target == j) & np.isclose(self.value, -v) &
                              (self.time > self.time[i]))[0]
            v = v * ((self.time[ends[0]] if len(ends) else self.time[i] + 1.0) - self.time[i])
            out[int(j)] = max(out.get(int(j), 0.0), float(v))
        return out


def dose_events(params_vector: np.ndarray, reg: Regimen, model: CompiledModel) -> DoseEvents:
    """The regimen as events for a patient with parameters ``params_vector``: each dose goes by its route (the
    mechanism's :class:`~il2als.mechanism.core.DoseRoute`: target state, ``scale x F``, lag); an infusion is a rate
    step up at its start and down at its end."""
    p = params_vector
    if reg.plain:  # SC boluses only (every named regimen and sentence)
        target, time, value = plain_boluses(p[None, :], reg, model)
        n = time.shape[1]
        return DoseEvents(time[0], np.full(n, BOLUS, np.int64), np.full(n, target, np.int64), value[0], np.zeros(n))
    bsa = p[model.parameter_index("body_surface_area")]
    sa = p[model.parameter_index("aldesleukin_specific_activity")]
    amounts = reg.amounts_iu(bsa, sa)
    rows: list[tuple[float, int, int, float, float]] = [(float(r), RESET, 0, 0.0, 0.0) for r in reg.resets]
    for d, a in zip(reg.doses, amounts):
        target, factors, lags = _route(model, p[None, :], d.route)
        factor, lag = factors[0], lags[0]
        t = d.time + lag
        if d.duration > 0:
            rate = factor * a / d.duration
            rows += [(t, RATE, target, rate, 0.0), (t + d.duration, RATE, target, -rate, 0.0)]
        elif d.steady_state_interval > 0:
            rows.append((t, STEADY_STATE, target, factor * a, d.steady_state_interval))
        else:
            rows.append((t, BOLUS, target, factor * a, 0.0))
    rows.sort(key=lambda r: (r[0], _ORDER[r[1]]))
    cols = list(zip(*rows)) if rows else [[], [], [], [], []]
    return DoseEvents(np.array(cols[0], float), np.array(cols[1], np.int64), np.array(cols[2], np.int64),
                      np.array(cols[3], float), np.array(cols[4], float))


def plain_boluses(P: np.ndarray, reg: Regimen, model: CompiledModel) -> tuple[int, np.ndarray, np.ndarray]:
    """A plain regimen's (:attr:`~il2als.inputs.regimens.Regimen.plain`: SC boluses only) doses for patients
    ``P`` ``(N, n_parameters)`` at once: the target state's index, and the times (days, lag-shifted) and amounts
    (the target state's unit) ``(N, n_doses)``, in dose order; row i is :func:`dose_events` for patient i."""
    P = np.asarray(P, dtype=float)
    amounts = reg.amounts_iu(P[:, model.parameter_index("body_surface_area")],
                             P[:, model.parameter_index("aldesleukin_specific_activity")])
    target, factor, lag = _route(model, P, "sc")
    return target, reg.times()[None, :] + lag[:, None], factor[:, None] * amounts


def _route(model: CompiledModel, P: np.ndarray, name: str) -> tuple[int, np.ndarray, np.ndarray]:
    """A dose route for patients ``P`` ``(N, n_parameters)``: the target state's index, and ``(N,)`` arrays of
    state units per IU given (scale x bioavailability) and lags (days)."""
    if name not in model.routes:
        raise RegimenError(f"dose route '{name}' is not declared by the mechanism{did_you_mean(name, list(model.routes))}")
    target, scale, i_f, i_lag = model.routes[name]
    factor = np.array([scale(p) for p in P], dtype=float)
    if i_f >= 0:
        factor = factor * P[:, i_f]
    return target, factor, (P[:, i_lag] if i_lag >= 0 else np.zeros(len(P)))
