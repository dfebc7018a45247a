"""The result of a simulation: time, states and observables with their units.

Arrays follow one convention, ``(n_times, n_columns)``, with names attached. Indexing by name returns plain
floats in the column's output unit (``traj["treg_pct_cd4"]`` is in %); :meth:`Trajectory.quantity` returns
a pint Quantity; :meth:`to_csv` writes headers ``name [unit]``.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import pint

from il2als.errors import Il2alsError, did_you_mean
from il2als.inputs.units import Q_, unit_label

if TYPE_CHECKING:
    from il2als.compiler.codegen import CompiledModel
    from il2als.inputs.parameters import ParameterSet
    from il2als.inputs.regimens import Regimen

__all__ = ["Trajectory", "summarise"]


def _factor(unit: str, output_unit: str) -> float:
    return float(Q_(1.0, unit).to(output_unit).magnitude)


@dataclass(frozen=True, eq=False)
class Trajectory:
    """Time course of one patient. ``time`` in days ``(n_times,)``; ``states`` ``(n_times, n_states)`` and
    ``observables`` ``(n_times, n_observables)`` in canonical units; ``columns`` maps name -> (unit, label)."""

    time: np.ndarray
    states: np.ndarray
    observables: np.ndarray
    state_names: tuple[str, ...]
    observable_names: tuple[str, ...]
    units: dict[str, tuple[str, str]]  # name -> (canonical unit, output unit)
    params: "ParameterSet | None" = None
    regimen: "Regimen | None" = None
    dose_times: np.ndarray = field(default_factory=lambda: np.empty(0))
    dose_amounts_iu: np.ndarray = field(default_factory=lambda: np.empty(0))

    @classmethod
    def build(cls, model: "CompiledModel", t: np.ndarray, Y: np.ndarray, p: np.ndarray, **kw: object) -> "Trajectory":
        obs = model.observe(t, Y, p)
        units = {s.name: (s.unit, s.output_unit or s.unit) for s in model.card.states}
        units.update({o.name: (o.unit, o.output_unit or o.unit) for o in model.observables})
        for a in (t, Y, obs):
            a.setflags(write=False)
        return cls(t, Y, obs, model.state_names, model.observable_names, units, **kw)  # type: ignore[arg-type]

    @property
    def names(self) -> tuple[str, ...]:
        """Observables first, then the states that are not observables."""
        return self.observable_names + tuple(s for s in self.state_names if s not in self.observable_names)

    def unit(self, name: str) -> str:
        """Output unit of a column."""
        self._check(name)
        return self.units[name][1]

    def _check(self, name: str) -> None:
        if name not in self.units:
            raise Il2alsError(f"unknown output '{name}'{did_you_mean(name, self.names)}")

    def __getitem__(self, name: str) -> np.ndarray:
        """Values of ``name`` (observable or state) in its output unit, shape ``(n_times,)``."""
        self._check(name)
        if name in self.observable_names:
            v = self.observables[:, self.observable_names.index(name)]
        else:
            v = self.states[:, self.state_names.index(name)]
        unit, out = self.units[name]
        return v * _factor(unit, out) if unit != out else v

    def quantity(self, name: str) -> pint.Quantity:
        """Values of ``name`` as a pint Quantity array in its output unit."""
        return Q_(self[name], self.unit(name))

    def at(self, name: str, day: float) -> float:
        """Value of ``name`` (output unit) at the output time nearest ``day`` [day].

        Raises
        ------
        Il2alsError
            When ``day`` lies outside the simulated time range (by more than half an output step): a value
            there was not computed, so none is returned.
        """
        t = self.time
        half = 0.5 * float(np.min(np.diff(t))) if len(t) > 1 else 0.0
        if not np.isfinite(day) or day < t[0] - half - 1e-9 or day > t[-1] + half + 1e-9:
            raise Il2alsError(f"day {day:g} is outside the simulated time range [{t[0]:g}, {t[-1]:g}] day; "
                              "simulate for longer")
        return float(self[name][int(np.argmin(np.abs(t - day)))])

    def header(self, name: str) -> str:
        return f"{name} [{unit_label(self.unit(name))}]"

    def to_numpy(self, names: list[str] | None = None) -> tuple[np.ndarray, list[str]]:
        """Array ``(n_times, 1 + n_columns)`` with time first, and the matching headers."""
        names = list(names or self.names)
        cols = [self.time] + [self[n] for n in names]
        return np.column_stack(cols), ["time [day]"] + [self.header(n) for n in names]

    def to_csv(self, path: "str | None" = None, names: list[str] | None = None, extra: dict[str, str] | None = None) -> str:
        """CSV text (and file at ``path`` if given) with headers ``name [unit]``; ``extra`` adds constant columns."""
        arr, headers = self.to_numpy(names)
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(list(extra or {}) + headers)
        lead = list((extra or {}).values())
        for row in arr:
            w.writerow(lead + [f"{x:.10g}" for x in row])
        text = buf.getvalue()
        if path is not None:
            with open(path, "w", encoding="utf-8", newline="") as fh:
                fh.write(text)
        return text

    def plot(self, names: "list[str] | tuple[str, ...]" = ("treg_pct_cd4", "ccl2_plasma", "nfl_serum", "alsfrs_r"),
             ax=None):
        """One panel per output against days, with units and dose ticks (:func:`il2als.plot.plot_trajectory`)."""
        from il2als.plot.trajectories import plot_trajectory

        return plot_trajectory(self, names, ax=ax)

    def to_dataframe(self, names: list[str] | None = None):
        """A pandas DataFrame with headers ``name [unit]`` (needs pandas)."""
        try:
            import pandas as pd
        except ImportError:  # pragma: no cover - depends on the environment
            raise Il2alsError("to_dataframe needs pandas; install it with: pip install 'il2als[pandas]'") from None
        arr, headers = self.to_numpy(names)
        return pd.DataFrame(arr, columns=headers)


def summarise(tr: Trajectory) -> dict[str, tuple[float, str]]:
    """Key figures of one trajectory.

    Parameters
    ----------
    tr : Trajectory

    Returns
    -------
    dict
        name -> ``(value, unit)``: baselines, peaks, means and end values, the ALSFRS-R slope [points/month].
    """
    t = tr.time
    months = t / 30.4375
    out: dict[str, tuple[float, str]] = {}
    tp = tr["treg_pct_cd4"]
    out["treg_pct_cd4_baseline"] = (float(tp[0]), "%")
    out["treg_pct_cd4_peak"] = (float(tp.max()), "%")
    out["treg_fold_peak"] = (float(tp.max() / tp[0]), "1")
    out["effector_activation_peak"] = (float(tr["effector_activation"].max()), "1")
    for n in ("ccl2_plasma", "ccl2_csf", "nfl_csf", "pnfh_csf", "nfl_serum"):
        out[f"{n}_baseline"] = (float(tr[n][0]), tr.unit(n))
        out[f"{n}_mean"] = (float(np.mean(tr[n])), tr.unit(n))
    out["mn_reserve_baseline"] = (float(tr["mn_reserve"][0]), "%")
    out["mn_reserve_end"] = (float(tr["mn_reserve"][-1]), "%")
    a = tr["alsfrs_r"]
    out["alsfrs_r_baseline"] = (float(a[0]), "points")
    out["alsfrs_r_end"] = (float(a[-1]), "points")
    slope = float(np.polyfit(months, a, 1)[0]) if len(t) > 2 else float("nan")
    out["alsfrs_r_slope"] = (slope, "points/month")
    out["survival_end"] = (float(tr["survival"][-1]), "1")
    out["duration"] = (float(t[-1]), "day")
    return out
