"""Scenarios: groups of virtual patients x regimens x duration, compared arm against arm.

A group is a subpopulation: patients sampled around the ``slow`` or ``fast`` profile (with the population's
variability and eligibility), or the trial population split by baseline CSF-pNfH stratum. Every patient is
simulated under every arm (placebo first), so IL-2 effects are paired within patients. The result is a tidy
table, one row per (group, arm), with medians and 5-95% ranges across patients, plus the trajectories for the
band figure.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from il2als.compiler.codegen import CompiledModel, default_model
from il2als.errors import Il2alsError
from il2als.inputs.parameters import ParameterSet
from il2als.inputs.population_spec import PopulationSpec
from il2als.inputs.regimens import Regimen, as_regimen, none
from il2als.results.metrics import PNFH_CUTOFFS, STRATA, least_squares_slope, stratum_of
from il2als.solve.batch import BatchOptions, simulate_population
from il2als.studies.cohort import Cohort, sample_population

__all__ = ["OUTPUTS", "METRICS", "ScenarioResult", "run_scenario", "slow_vs_fast", "by_stratum",
           "compare_regimens", "SCENARIOS"]

OUTPUTS = ["treg_pct_cd4", "effector_activation", "ccl2_plasma", "ccl2_csf", "nfl_serum", "nfl_csf", "pnfh_csf",
           "mn_reserve", "alsfrs_r", "survival"]
#: table columns: name -> unit
METRICS = {
    "treg_exposure": "%*day",  # area of treg_pct_cd4 above the patient's baseline
    "treg_peak_fold": "1",
    "effector_peak": "1",
    "ccl2_plasma_change": "%",  # time-averaged change from baseline
    "ccl2_csf_change": "%",
    "nfl_serum_change": "%",
    "pnfh_csf_baseline": "pg/mL",
    "mn_loss": "%",  # reserve lost over the scenario, in % of the healthy complement
    "alsfrs_r_slope": "points/month",
    "survival_end": "%",
}


@dataclass(frozen=True, eq=False)
class ScenarioResult:
    """``rows``: list of dicts (group, arm, n, metric medians and 5-95% ranges); ``curves[(group, arm)]``:
    dict output -> (N, n_times) arrays; ``time`` in days; ``effects``: paired IL-2 minus placebo per group."""

    name: str
    time: np.ndarray
    rows: list[dict]
    effects: list[dict]
    curves: dict
    units: dict[str, str]
    regimens: tuple[Regimen, ...]

    def to_rows(self) -> list[dict]:
        """The summary table: one row per group and arm, each metric's median and 5-95% range of patients, the
        unit in every header (``alsfrs_r_slope [points/month] median``)."""
        return [dict(r) for r in self.rows]

    def effect_rows(self) -> list[dict]:
        """Paired effects (each patient under IL-2 minus the same patient under the reference arm) per group."""
        return [dict(r) for r in self.effects]

    def to_dataframe(self, outputs: "list[str] | None" = None):
        """The curves as a long pandas DataFrame: ``group, arm, patient, time [day]`` and one ``name [unit]``
        column per output (default: every simulated output). Needs pandas."""
        import pandas as pd

        from il2als.inputs.units import unit_label

        frames = []
        for (g, arm), values in self.curves.items():
            names = outputs or list(values)
            n, T = values[names[0]].shape
            cols = {"group": g, "arm": arm, "patient": np.repeat(np.arange(1, n + 1), T),
                    "time [day]": np.tile(self.time, n)}
            for name in names:
                if name not in values:
                    raise Il2alsError(f"output '{name}' was not simulated; give one of {', '.join(values)}")
                cols[f"{name} [{unit_label(self.units[name])}]"] = values[name].reshape(-1)
            frames.append(pd.DataFrame(cols))
        return pd.concat(frames, ignore_index=True)


def _metrics(v: dict[str, np.ndarray], t: np.ndarray) -> dict[str, np.ndarray]:
    tp = v["treg_pct_cd4"]
    return {
        "treg_exposure": np.trapezoid(np.clip(tp - tp[:, :1], 0, None), t, axis=1),
        "treg_peak_fold": tp.max(axis=1) / tp[:, 0],
        "effector_peak": v["effector_activation"].max(axis=1),
        "ccl2_plasma_change": 100 * (v["ccl2_plasma"].mean(axis=1) / v["ccl2_plasma"][:, 0] - 1),
        "ccl2_csf_change": 100 * (v["ccl2_csf"].mean(axis=1) / v["ccl2_csf"][:, 0] - 1),
        "nfl_serum_change": 100 * (v["nfl_serum"][:, -1] / v["nfl_serum"][:, 0] - 1),
        "pnfh_csf_baseline": v["pnfh_csf"][:, 0],
        "mn_loss": v["mn_reserve"][:, 0] - v["mn_reserve"][:, -1],
        "alsfrs_r_slope": least_squares_slope(v["alsfrs_r"], t),
        "survival_end": 100 * v["survival"][:, -1],
    }


def run_scenario(groups: dict[str, Cohort], regimens: list[Regimen], duration_days: float, name: str = "scenario",
                 *, model: CompiledModel | None = None, options: BatchOptions = BatchOptions(),
                 step: str = "1 day") -> ScenarioResult:
    """Simulate every patient of every group under every regimen (the first is the reference arm).

    Parameters
    ----------
    groups : dict of str to Cohort
    regimens : list of Regimen
        The first is the reference (placebo); each other is compared with it patient by patient.
    duration_days : float
        Days simulated.
    name : str
    options : BatchOptions
    step : str
        Output step.

    Returns
    -------
    ScenarioResult
        Per group and arm the medians and 5-95% ranges of the metrics (:data:`METRICS`, units in the headers),
        paired effects, and the curves.
    """
    model = model or default_model()
    # rows are keyed by arm label, so two regimens with one name (two sentences, or the same file twice) get
    # distinct labels instead of one overwriting the other
    labels, seen = [], {}
    for reg in regimens:
        seen[reg.name] = seen.get(reg.name, 0) + 1
        labels.append(reg.name if seen[reg.name] == 1 else f"{reg.name} ({seen[reg.name]})")
    regimens = [r if r.name == lab else replace(r, name=lab) for r, lab in zip(regimens, labels)]
    rows, effects, curves = [], [], {}
    units = {}
    t = None
    for g, cohort in groups.items():
        if len(cohort) == 0:
            continue
        per_arm = {}
        for reg in regimens:
            res = simulate_population(cohort.params, reg, f"{duration_days} day", step=step, outputs=OUTPUTS,
                                      model=model, options=options)
            t = res.time
            units = res.units
            curves[(g, reg.name)] = res.values
            m = _metrics(res.values, t)
            per_arm[reg.name] = m
            row = {"group": g, "arm": reg.name, "n": len(cohort)}
            for k, u in METRICS.items():
                row[f"{k} [{u}] median"] = float(np.median(m[k]))
                row[f"{k} [{u}] p05"] = float(np.percentile(m[k], 5))
                row[f"{k} [{u}] p95"] = float(np.percentile(m[k], 95))
            rows.append(row)
        ref = regimens[0].name
        for reg in regimens[1:]:
            eff = {"group": g, "arm": reg.name, "versus": ref, "n": len(cohort)}
            for k in ("alsfrs_r_slope", "survival_end", "mn_loss", "nfl_serum_change", "ccl2_csf_change"):
                d = per_arm[reg.name][k] - per_arm[ref][k]
                eff[f"delta_{k} [{METRICS[k]}] median"] = float(np.median(d))
                eff[f"delta_{k} [{METRICS[k]}] p05"] = float(np.percentile(d, 5))
                eff[f"delta_{k} [{METRICS[k]}] p95"] = float(np.percentile(d, 95))
            effects.append(eff)
    return ScenarioResult(name, t, rows, effects, curves, units, tuple(regimens))


def slow_vs_fast(regimen: "Regimen | str", spec: PopulationSpec, n: int, seed: int, duration_days: float = 640.0, *,
                 profiles: dict[str, ParameterSet], **kw) -> ScenarioResult:
    """Subpopulations centred on each of ``profiles`` (group name -> parameter set, e.g. the ``slow`` and ``fast``
    sets), placebo vs ``regimen``."""
    reg = as_regimen(regimen)
    if len(reg) == 0:
        raise Il2alsError("the scenario compares a regimen with placebo; give a regimen with doses")
    ss = np.random.SeedSequence(seed).spawn(len(profiles))
    groups = {name: sample_population(spec.centred_on(ps), n, np.random.default_rng(s))
              for (name, ps), s in zip(profiles.items(), ss)}
    return run_scenario(groups, [Regimen((), "placebo", "placebo"), reg], duration_days, "slow-vs-fast", **kw)


def by_stratum(regimen: "Regimen | str | list", spec: PopulationSpec, n: int, seed: int,
               duration_days: float = 640.0, cutoffs: tuple[float, float] = PNFH_CUTOFFS, **kw) -> ScenarioResult:
    """The trial population split by baseline CSF-pNfH stratum, placebo vs ``regimen`` (or several regimens)."""
    regs = [as_regimen(r) for r in (regimen if isinstance(regimen, (list, tuple)) else [regimen])]
    empty = next((r for r in regs if not len(r)), None)
    if empty is not None:
        raise Il2alsError(f"regimen '{empty.name}' has no doses; placebo is always the reference arm, so drop it "
                          "and give regimens with doses")
    cohort = sample_population(spec, n, np.random.default_rng(seed))
    base = simulate_population(cohort.params, none(), "1 day", step="1 day", outputs=["pnfh_csf"])
    s = stratum_of(base["pnfh_csf"][:, 0], cutoffs)
    groups = {name: cohort.subset(s == i) for i, name in enumerate(STRATA)}
    return run_scenario(groups, [Regimen((), "placebo", "placebo"), *regs], duration_days, "strata", **kw)


def compare_regimens(regimens: list, spec: PopulationSpec, n: int, seed: int, duration_days: float = 640.0,
                     **kw) -> ScenarioResult:
    """Several regimens against placebo in the same virtual patients, per CSF-pNfH stratum.

    Parameters
    ----------
    regimens : list of Regimen or str
    spec : PopulationSpec
    n : int
        Virtual patients (split by baseline CSF pNfH at the MIROCALS cut-offs).
    seed : int
    duration_days : float

    Returns
    -------
    ScenarioResult
    """
    res = by_stratum(list(regimens), spec, n, seed, duration_days, **kw)
    return ScenarioResult("compare-regimens", res.time, res.rows, res.effects, res.curves, res.units, res.regimens)


SCENARIOS = {"slow-vs-fast": slow_vs_fast, "strata": by_stratum}
