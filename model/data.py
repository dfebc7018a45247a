"""Individual time series in a NONMEM-style CSV, and fitting the model to them.

Columns (units in the headers, as everywhere): ``ID``, ``TIME [h|day|...]``, ``AMT [MIU|IU|ug|MIU/m**2]`` (a
dose row when positive), ``DV [unit]`` and ``observable`` (which output the DV measures, e.g. ``treg_pct_cd4``,
``nfl_serum``) on observation rows; an optional ``EVID`` (1 dose, 0 observation). Every ID gets its own regimen
from its dose rows; the free parameters are shared by all IDs (a pooled fit). Residuals follow an error model:
``additive`` (sd in the DV unit), ``proportional`` (sd relative) or ``lognormal`` (sd of the log).
"""

from __future__ import annotations

import csv
import math
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .compile import default_model
from .dosing import Dose, Regimen
from .errors import Il2alsError, RegimenError, did_you_mean
from .fit import FreeParameter, FreeVector, free_parameters
from .parameters import ParameterSet, load_parameters
from .population import simulate_population
from .units import Q_, dose_to_iu

_HEADER = re.compile(r"^\s*(?P<name>[A-Za-z_]+)\s*(?:\[(?P<unit>[^\]]+)\])?\s*$")
ERROR_MODELS = ("additive", "proportional", "lognormal")


@dataclass(frozen=True)
class Observation:
    id: str
    time: float  # day
    observable: str
    value: float  # in the observable's output unit


@dataclass(frozen=True)
class Dataset:
    """Per-ID regimens and all observations (times in days, values in the observables' output units)."""

    regimens: dict[str, Regimen]
    observations: tuple[Observation, ...]
    source: str

    @property
    def ids(self) -> list[str]:
        return list(self.regimens)


def read_dataset(path: str | Path) -> Dataset:
    """Read and check a NONMEM-style CSV (see the module docstring); errors name the row and the fix."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except (FileNotFoundError, IsADirectoryError):
        raise Il2alsError(f"data file '{path}' not found; give a CSV with ID, TIME [unit], AMT [unit], DV [unit], observable") from None
    rows = list(csv.reader(ln for ln in text.splitlines() if ln.strip() and not ln.lstrip().startswith("#")))
    if len(rows) < 2:
        raise Il2alsError(f"{path}: no data rows; give a header and one row per dose or observation")
    cols: dict[str, tuple[int, str | None]] = {}
    for i, h in enumerate(rows[0]):
        m = _HEADER.match(h)
        if not m:
            raise Il2alsError(f"{path}: header '{h}' must be 'NAME' or 'NAME [unit]'")
        cols[m["name"].upper()] = (i, m["unit"])
    for need in ("ID", "TIME", "DV", "OBSERVABLE"):
        if need not in cols:
            raise Il2alsError(f"{path}: no '{need}' column; the columns are ID, TIME [unit], AMT [unit], DV [unit], observable")
    if cols["TIME"][1] is None:
        raise Il2alsError(f"{path}: TIME needs a unit in its header, e.g. 'TIME [h]'")
    model = default_model()
    out_units = {o.name: (o.output_unit or o.unit) for o in model.observables}
    doses: dict[str, list[Dose]] = {}
    obs: list[Observation] = []
    last_t: dict[str, float] = {}
    for n, r in enumerate(rows[1:], start=2):
        get = lambda c: r[cols[c][0]].strip() if c in cols and cols[c][0] < len(r) else ""
        pid = get("ID")
        if not pid:
            raise Il2alsError(f"{path}: row {n} has no ID")
        try:
            t = float(Q_(float(get("TIME")), cols["TIME"][1]).to("day").magnitude)
        except ValueError:
            raise Il2alsError(f"{path}: row {n}: TIME '{get('TIME')}' is not a number") from None
        if not math.isfinite(t) or t < 0:
            raise Il2alsError(f"{path}: row {n}: TIME must be finite and >= 0")
        if t < last_t.get(pid, -1.0):
            raise Il2alsError(f"{path}: row {n}: TIME goes back for ID {pid}; sort the rows by ID and time")
        last_t[pid] = t
        doses.setdefault(pid, [])
        amt = get("AMT")
        evid = get("EVID")
        is_dose = (evid == "1") if evid else (amt not in ("", "0", "0.0", ".") and float(amt) != 0)
        if is_dose:
            if cols.get("AMT", (0, None))[1] is None:
                raise Il2alsError(f"{path}: AMT needs a unit in its header, e.g. 'AMT [MIU]'")
            a = float(amt)
            if not math.isfinite(a) or a <= 0:
                raise RegimenError(f"{path}: row {n}: dose AMT {amt} must be positive and finite")
            iu = dose_to_iu(Q_(a, cols["AMT"][1]), body_surface_area=Q_(1.9, "m**2"))
            if doses[pid] and doses[pid][-1].time == t:
                raise RegimenError(f"{path}: row {n}: two doses at the same time for ID {pid}; combine them")
            doses[pid].append(Dose(t, iu, "IU"))
            continue
        name = get("OBSERVABLE")
        if name not in out_units:
            raise Il2alsError(f"{path}: row {n}: unknown observable '{name}'{did_you_mean(name, out_units)}")
        try:
            v = float(get("DV"))
        except ValueError:
            raise Il2alsError(f"{path}: row {n}: DV '{get('DV')}' is not a number") from None
        if not math.isfinite(v):
            raise Il2alsError(f"{path}: row {n}: DV is not finite")
        unit = cols["DV"][1] or out_units[name]
        try:
            v = float(Q_(v, unit).to(out_units[name]).magnitude)
        except Exception:
            raise Il2alsError(f"{path}: row {n}: DV unit '{unit}' does not convert to {name}'s unit '{out_units[name]}'") from None
        obs.append(Observation(pid, t, name, v))
    if not obs:
        raise Il2alsError(f"{path}: no observation rows (rows with DV and observable)")
    return Dataset({k: Regimen(tuple(v), f"ID {k}") for k, v in doses.items()}, tuple(obs), str(path))


@dataclass(frozen=True, eq=False)
class DataProblem(FreeVector):
    """Fit shared free parameters to a dataset: the same interface as :class:`il2als.fit.Problem`."""

    data: Dataset
    free: tuple[FreeParameter, ...]
    base: ParameterSet
    error_model: str = "proportional"
    sd: float = 0.1
    prior_weight: float = 1.0
    targets: tuple = ()

    def predictions(self, X: np.ndarray) -> np.ndarray:
        """(K, n_observations) model values at the observations."""
        model = default_model()
        X = np.atleast_2d(X)
        ids = self.data.ids
        P = np.tile(self.base.vector(model), (len(X) * len(ids), 1))
        for j, f in enumerate(self.free):
            P[:, model.parameter_index(f.name)] = np.repeat(f.from_scale(X[:, j]), len(ids))
        T = max(o.time for o in self.data.observations)
        outputs = sorted({o.observable for o in self.data.observations})
        res = simulate_population(P, [self.data.regimens[i] for i in ids] * len(X), f"{max(T, 1e-3)} day",
                                  step=f"{max(T, 1e-3) / max(1, int(np.ceil(T / 0.05)))} day", outputs=outputs)
        out = np.empty((len(X), len(self.data.observations)))
        for k in range(len(X)):
            for m, o in enumerate(self.data.observations):
                row = k * len(ids) + ids.index(o.id)
                out[k, m] = np.interp(o.time, res.time, res[o.observable][row])
        return out

    def residuals(self, X: np.ndarray) -> np.ndarray:
        X = np.atleast_2d(X)
        pred = self.predictions(X)
        obs = np.array([o.value for o in self.data.observations])
        if self.error_model == "additive":
            r = (pred - obs) / self.sd
        elif self.error_model == "proportional":
            r = (pred - obs) / (self.sd * np.abs(obs))
        else:
            r = (np.log(np.clip(pred, 1e-300, None)) - np.log(obs)) / self.sd
        r = np.where(np.isfinite(r), r, 1e3)
        return np.hstack([r, self.prior_residuals(X)])

    def table(self, x: np.ndarray) -> list[dict]:
        pred = self.predictions(x[None, :])[0]
        r = self.residuals(x[None, :])[0][: len(pred)]
        units = {o.name: (o.output_unit or o.unit) for o in default_model().observables}
        return [{"id": f"ID {o.id} day {o.time:g} {o.observable}", "subject": o.id, "statistic": "observation",
                 "output": o.observable, "model": float(p), "target": f"{o.value:.4g}", "unit": units[o.observable],
                 "residual": float(ri), "pass": bool(abs(ri) <= 2.0), "source": self.data.source, "quality": ""}
                for o, p, ri in zip(self.data.observations, pred, r)]


def make_data_problem(data: Dataset, free: list[str], *, params: str = "default", error_model: str = "proportional",
                      sd: float = 0.1, prior_weight: float = 1e-3) -> DataProblem:
    """A pooled fit of ``free`` (log scale, bounds from the plausible ranges) to ``data``."""
    if error_model not in ERROR_MODELS:
        raise Il2alsError(f"error model '{error_model}' must be one of {', '.join(ERROR_MODELS)}")
    if not (sd > 0 and math.isfinite(sd)):
        raise Il2alsError(f"error sd {sd} must be positive")
    base = load_parameters(params)
    return DataProblem(data, free_parameters(free, base), base, error_model, sd, prior_weight)
