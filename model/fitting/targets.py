"""Calibration targets as data, and their evaluation for many parameter configurations at once.

A target is a published figure expressed as a summary statistic of a simulation (``params/targets/*.toml``):
which output, in which subject (the ``default`` patient, the ``slow`` or ``fast`` profile, or the virtual
``population``), under which regimen and for how long, with a value and a tolerance (``sd``) or a range. The
residual is ``(model - value) / sd`` (for a range: ``(model - middle) / half-width``), so a target passes when
``|residual| <= 1``.

Evaluation is batched: targets sharing an experiment (subject, regimen, duration, grid, modification) are
simulated once for all K configurations with the batch engine, which is what makes finite-difference
Jacobians and multi-start fits affordable.
"""

from __future__ import annotations

import math
import tomllib
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import numpy as np

from il2als.compiler.codegen import CompiledModel, default_model
from il2als.errors import Il2alsError, ParameterError, did_you_mean
from il2als.inputs.parameters import ParameterSet
from il2als.inputs.population_spec import PopulationSpec
from il2als.inputs.regimens import as_regimen
from il2als.inputs.units import Q_, parse_unit, unit_label
from il2als.results.metrics import slope_from_baseline
from il2als.solve.batch import BatchOptions, simulate_population
from il2als.studies.cohort import sample_population

__all__ = ["SUBJECTS", "STATISTICS", "Target", "load_targets", "Configuration", "configuration", "Evaluator",
           "check_table", "check_parameter_set"]

SUBJECTS = ("default", "slow", "fast", "population")
STATISTICS = ("tmax", "half_life", "max", "cmax_ratio", "peak_fold", "fold_at", "mean_fold", "excess_ratio", "baseline",
              "baseline_ratio", "relative_deficit", "fall_after_change", "slope", "m50_d50_lead", "parameter_median",
              "population_slope_mean", "population_share", "population_survival", "median_survival_by_slope_quartile")
_FIELDS = {"id", "statistic", "output", "output2", "subject", "subject2", "regimen", "duration", "step", "value", "sd",
           "low", "high", "unit", "source", "quality", "note", "day", "day_a", "day_b", "window", "modify", "aggregate",
           "range_of_values", "quartile"}


@dataclass(frozen=True)
class Target:
    """One calibration target (see the module docstring). ``value``/``sd`` or ``low``/``high`` are in ``unit``."""

    id: str
    statistic: str
    output: str
    subject: str
    regimen: str
    duration: str
    step: str
    unit: str
    source: str
    value: float | None = None
    sd: float | None = None
    low: float | None = None
    high: float | None = None
    quality: str = ""
    note: str = ""
    args: dict = field(default_factory=dict)

    @property
    def centre(self) -> float:
        return self.value if self.value is not None else 0.5 * (self.low + self.high)

    @property
    def scale(self) -> float:
        return self.sd if self.sd is not None else 0.5 * (self.high - self.low)

    def residual(self, model_value: np.ndarray) -> np.ndarray:
        return (np.asarray(model_value) - self.centre) / self.scale

    def describe(self) -> str:
        if self.value is not None:
            return f"{self.value:g} ± {self.sd:g}"
        return f"{self.low:g}–{self.high:g}"

    @property
    def experiment(self) -> tuple:
        mod = tuple(sorted(self.args.get("modify", {}).items()))
        return (self.subject, self.regimen, self.duration, self.step, mod)


def load_targets(spec: str | Path = "literature") -> tuple[Target, ...]:
    """Read a targets file by name or path; every field is checked.

    Parameters
    ----------
    spec : str or Path
        ``literature`` (the shipped natural-history, pharmacology and biomarker targets) or a path.

    Returns
    -------
    tuple of Target
        Each with its statistic, subject, regimen, value and tolerance in its unit, and its source.
    """
    s = str(spec)
    path = Path(s) if (s.endswith(".toml") or "/" in s) else resources.files("il2als.params") / "targets" / f"{s}.toml"
    try:
        data = tomllib.loads(Path(str(path)).read_text(encoding="utf-8") if isinstance(path, Path) else path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        names = [p.name[:-5] for p in (resources.files("il2als.params") / "targets").iterdir() if p.name.endswith(".toml")]
        raise ParameterError(f"targets file '{spec}' not found{did_you_mean(s, names)}; give one of {', '.join(names)} "
                             "or a path to a .toml file") from None
    except tomllib.TOMLDecodeError as exc:
        raise ParameterError(f"targets file '{spec}' is not valid TOML ({exc}); fix the syntax") from None
    model = default_model()
    outs = set(model.observable_names) | set(model.state_names) | set(model.parameter_names)
    targets, seen = [], set()
    for i, t in enumerate(data.get("target", [])):
        where = f"{path}: target {t.get('id', i + 1)}"
        extra = set(t) - _FIELDS
        if extra:
            k = sorted(extra)[0]
            raise ParameterError(f"{where}: unknown field '{k}'{did_you_mean(k, _FIELDS)}")
        for req in ("id", "statistic", "output", "subject", "unit", "source"):
            if req not in t:
                raise ParameterError(f"{where}: missing '{req}'")
        if t["id"] in seen:
            raise ParameterError(f"{where}: duplicate id; give each target its own id")
        seen.add(t["id"])
        if t["statistic"] not in STATISTICS:
            raise ParameterError(f"{where}: unknown statistic '{t['statistic']}'{did_you_mean(t['statistic'], STATISTICS)}")
        if t["subject"] not in SUBJECTS:
            raise ParameterError(f"{where}: subject '{t['subject']}' must be one of {', '.join(SUBJECTS)}")
        if t["output"] not in outs:
            raise ParameterError(f"{where}: unknown output '{t['output']}'{did_you_mean(t['output'], outs)}")
        has_value = "value" in t and "sd" in t
        has_range = "low" in t and "high" in t
        if has_value == has_range:
            raise ParameterError(f"{where}: give either value and sd, or low and high")
        if has_value and not t["sd"] > 0:
            raise ParameterError(f"{where}: sd must be positive")
        if has_range and not t["low"] < t["high"]:
            raise ParameterError(f"{where}: low must be below high")
        parse_unit(t["unit"], f"{where}: unit", ParameterError)
        as_regimen(t.get("regimen", "none"))
        args = {k: t[k] for k in ("output2", "subject2", "day", "day_a", "day_b", "window", "modify", "aggregate",
                                  "range_of_values", "quartile") if k in t}
        targets.append(Target(t["id"], t["statistic"], t["output"], t["subject"], t.get("regimen", "none"),
                              t.get("duration", "1 day"), t.get("step", "1 day"), t["unit"], str(t["source"]),
                              t.get("value"), t.get("sd"), t.get("low"), t.get("high"), t.get("quality", ""),
                              t.get("note", ""), args))
    if not targets:
        raise ParameterError(f"{path}: no [[target]] entries")
    return tuple(targets)


@dataclass(frozen=True)
class Configuration:
    """Parameter vectors for each subject, K configurations: ``vectors[subject]`` has shape ``(K, n_parameters)``."""

    vectors: dict[str, np.ndarray]

    @property
    def k(self) -> int:
        return len(self.vectors["default"])


def configuration(sets: dict[str, ParameterSet], model: CompiledModel | None = None) -> Configuration:
    """One configuration from the ``default``, ``slow`` and ``fast`` parameter sets (e.g. ``ParameterSet.profiles()``)."""
    model = model or default_model()
    return Configuration({s: sets[s].vector(model)[None, :] for s in ("default", "slow", "fast")})


def _to_unit(values: np.ndarray, from_unit: str, to_unit: str) -> np.ndarray:
    if from_unit == to_unit:
        return values
    return values * float(Q_(1.0, from_unit).to(to_unit).magnitude)


class Evaluator:
    """Evaluates targets for K configurations; population targets use a fixed seed (common random numbers)."""

    def __init__(self, targets: tuple[Target, ...], *, population: PopulationSpec | None = None, n_population: int = 400,
                 seed: int = 11, model: CompiledModel | None = None, options: BatchOptions = BatchOptions()):
        self.targets = targets
        self.model = model or default_model()
        self.options = options
        self.seed = seed
        self.n_population = n_population
        self._spec = population

    @property
    def spec(self) -> PopulationSpec:
        if self._spec is None:
            raise Il2alsError("population targets need a population specification: pass "
                              "population=load_population_spec() (or your own spec) to the Evaluator")
        return self._spec

    def _outputs_for(self, ts: list[Target]) -> list[str]:
        m = self.model
        names = set()
        for t in ts:
            for o in (t.output, t.args.get("output2")):
                if o and (o in m.observable_names or o in m.state_names):
                    names.add(o)
        if any(t.statistic in ("population_slope_mean", "median_survival_by_slope_quartile") for t in ts):
            names |= {"alsfrs_r", "survival"}
        if any(t.statistic == "m50_d50_lead" for t in ts):
            names.add("mn_loss_rate")
        return sorted(names)

    def _simulate(self, P: np.ndarray, t0: Target, outputs: list[str]):
        reg = as_regimen(t0.regimen)
        initial = None
        mod = t0.args.get("modify")
        if mod:
            from il2als.solve.batch import population_baselines
            from il2als.solve.single import _fixed_mask

            initial, _ = population_baselines(P, self.model)
            P = P.copy()
            for name, factor in mod.items():
                P[:, self.model.parameter_index(name)] *= float(factor)
            # the free states start from the unmodified steady state (a change at t = 0), but held states whose
            # start is a parameter (the reserve: mn_reserve_start) take the modified value
            fixed = _fixed_mask(self.model)
            initial[:, fixed] = np.array([self.model.initial(0.0, None, p) for p in P])[:, fixed]
        return simulate_population(P, reg, t0.duration, step=t0.step, outputs=outputs, model=self.model,
                                   options=self.options, initial=initial), P

    def evaluate(self, conf: Configuration) -> np.ndarray:
        """Model values of every target in its unit, shape ``(K, n_targets)`` (NaN where a simulation failed)."""
        K = conf.k
        out = np.full((K, len(self.targets)), np.nan)
        groups: dict[tuple, list[int]] = {}
        for j, t in enumerate(self.targets):
            groups.setdefault(t.experiment, []).append(j)
        cache_pop: dict = {}
        for key, idx in groups.items():
            ts = [self.targets[j] for j in idx]
            t0 = ts[0]
            outputs = self._outputs_for(ts)
            if t0.subject == "population":
                for j, t in zip(idx, ts):
                    out[:, j] = self._population_stat(conf, t, outputs, cache_pop)
                continue
            subjects = {t0.subject} | {t.args["subject2"] for t in ts if "subject2" in t.args}
            res = {}
            for s in subjects:
                P = conf.vectors[s]
                r, Pm = self._simulate(P, t0, outputs) if outputs else (None, P)
                res[s] = (r, Pm)
            for j, t in zip(idx, ts):
                out[:, j] = self._stat(t, res)
        return out

    # -- statistics -----------------------------------------------------------------------------------
    def _stat(self, t: Target, res: dict) -> np.ndarray:
        r, P = res[t.subject]
        m = self.model
        st = t.statistic
        if st == "m50_d50_lead":
            lam = r["mn_loss_rate"][:, 0]  # in output unit
            lam_day = _to_unit(lam, r.units["mn_loss_rate"], "1/day")
            n50 = P[:, m.parameter_index("alsfrs_reserve_half")]
            return _to_unit(np.log(0.5 / n50) / lam_day, "day", t.unit)
        v = r[t.output]
        unit = r.units[t.output]
        time = r.time
        if st == "tmax":
            return _to_unit(time[np.argmax(v, axis=1)], "day", t.unit)
        if st == "half_life":
            i = np.argmax(v, axis=1)
            out = np.empty(len(v))
            for k in range(len(v)):
                w = (time > time[i[k]] + 0.25) & (time < time[i[k]] + 1.0) & (v[k] > 0)
                slope = np.polyfit(time[w], np.log(v[k, w]), 1)[0] if w.sum() > 2 else np.nan
                out[k] = math.log(2) / -slope if slope < 0 else np.nan
            return _to_unit(out, "day", t.unit)
        if st == "max":
            return _to_unit(v.max(axis=1), unit, t.unit)
        if st == "cmax_ratio":
            a, b = t.args["day_a"], t.args["day_b"]
            wa = (time >= a) & (time < a + 1)
            wb = (time >= b) & (time < b + 1)
            return v[:, wb].max(axis=1) / v[:, wa].max(axis=1)
        if st == "peak_fold":
            return v.max(axis=1) / v[:, 0]
        if st == "fold_at":
            i = int(np.argmin(np.abs(time - t.args["day"])))
            return v[:, i] / v[:, 0]
        if st == "excess_ratio":
            # the rise above baseline at day_a over the rise at day_b: the shape of a cumulative response
            ia = int(np.argmin(np.abs(time - t.args["day_a"])))
            ib = int(np.argmin(np.abs(time - t.args["day_b"])))
            with np.errstate(all="ignore"):
                return (v[:, ia] - v[:, 0]) / (v[:, ib] - v[:, 0])
        if st == "mean_fold":
            a, b = t.args["window"]
            w = (time >= a) & (time <= b)
            return v[:, w].mean(axis=1) / v[:, 0]
        if st == "baseline":
            return _to_unit(v[:, 0], unit, t.unit)
        if st == "baseline_ratio":
            return v[:, 0] / r[t.args["output2"]][:, 0]
        if st == "relative_deficit":
            r2, _ = res[t.args["subject2"]]
            return 1.0 - v[:, 0] / r2[t.output][:, 0]
        if st == "fall_after_change":
            return 1.0 - v[:, -1] / v[:, 0]
        if st == "slope":
            return _to_unit(slope_from_baseline(v, time), "1/month", t.unit)
        raise Il2alsError(f"target {t.id}: statistic '{st}' needs subject 'population'")

    def _population(self, conf: Configuration, k: int, cache: dict):
        if ("cohort", k) not in cache:
            base = self.spec.centre.with_vector(conf.vectors["default"][k], name="calibration")
            cache[("cohort", k)] = sample_population(self.spec.centred_on(base), self.n_population,
                                                     np.random.default_rng(self.seed), self.model)
        return cache[("cohort", k)]

    def _population_stat(self, conf: Configuration, t: Target, outputs: list[str], cache: dict) -> np.ndarray:
        out = np.full(conf.k, np.nan)
        for k in range(conf.k):
            try:
                c = self._population(conf, k, cache)
            except ParameterError:
                continue
            st = t.statistic
            if st == "parameter_median":
                out[k] = float(np.median(c.params[:, self.model.parameter_index(t.output)]))
                continue
            key = ("sim", k, t.duration, t.step, tuple(outputs))
            if key not in cache:
                cache[key] = simulate_population(c.params, "none", t.duration, step=t.step, outputs=outputs,
                                                 model=self.model, options=BatchOptions(on_failure="skip"))
            r = cache[key]
            time = r.time
            if st == "baseline":
                agg = np.nanmedian if t.args.get("aggregate", "median") == "median" else np.nanmean
                out[k] = _to_unit(agg(r[t.output][:, 0]), r.units[t.output], t.unit)
            elif st == "population_share":
                lo, hi = t.args["range_of_values"]
                v = r[t.output][:, 0]
                out[k] = float(np.mean((v >= lo) & (v < hi)))
            elif st == "population_slope_mean":
                a = r["alsfrs_r"]
                i = int(np.argmin(np.abs(time - 365.25)))
                out[k] = _to_unit(np.nanmean(slope_from_baseline(a, time, i)), "1/month", t.unit)
            elif st == "population_survival":
                out[k] = float(np.nanmean(r["survival"][:, -1]))
            elif st == "median_survival_by_slope_quartile":
                a, s = r["alsfrs_r"], r["survival"]
                i = int(np.argmin(np.abs(time - 365.25)))
                slope = a[:, i] - a[:, 0]
                q = np.quantile(slope, [0.25, 0.5, 0.75])
                # quartile 1 = slowest (least negative slope)
                bins = np.digitize(slope, q)  # 0: fastest ... 3: slowest
                sel = bins == (4 - t.args["quartile"])
                t50 = np.array([np.interp(0.5, s[p][::-1], time[::-1]) if s[p, -1] < 0.5 else time[-1] for p in np.nonzero(sel)[0]])
                out[k] = _to_unit(np.median(t50), "day", t.unit) if len(t50) else np.nan
            else:
                raise Il2alsError(f"target {t.id}: statistic '{st}' is not defined for the population")
        return out


def check_table(targets: tuple[Target, ...], values: np.ndarray) -> list[dict]:
    """Rows of the check: id, subject, statistic, model, target, unit, residual, pass, source."""
    rows = []
    for t, v in zip(targets, values):
        r = float(t.residual(v)) if np.isfinite(v) else math.nan
        rows.append({"id": t.id, "subject": t.subject, "statistic": t.statistic, "output": t.output,
                     "model": float(v), "target": t.describe(), "unit": unit_label(t.unit), "residual": r,
                     "pass": bool(np.isfinite(r) and abs(r) <= 1.0), "source": t.source, "quality": t.quality})
    return rows


def check_parameter_set(params: ParameterSet, targets: tuple[Target, ...], population: PopulationSpec | None = None,
                        n_population: int = 400) -> list[dict]:
    """Compare a parameter set with calibration targets.

    Parameters
    ----------
    params : ParameterSet
        Used as ``default``; the slow and fast profiles are applied to it as deltas.
    targets : tuple of Target
    population : PopulationSpec, optional
        Needed when there are population targets.
    n_population : int
        Virtual patients for the population targets.

    Returns
    -------
    list of dict
        One row per target: model value, target, unit, normalised residual, pass, source.
    """
    ev = Evaluator(targets, population=population, n_population=n_population)
    return check_table(targets, ev.evaluate(configuration(params.profiles()))[0])
