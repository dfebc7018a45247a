"""Virtual trials: replicate a randomised trial in silico and analyse it as the trialists did.

Per replicate: sample eligible patients (:mod:`il2als.studies.cohort`), randomise 1:1, simulate each patient under
the arm's regimen with the batch engine, draw each death time from the patient's own simulated cumulative
hazard (inverse transform of one exponential deviate), take ALSFRS-R at scheduled visits with measurement noise
until death, and stratify by baseline CSF-pNfH. The Cox fits, Kaplan-Meier point estimates and log-rank tests,
run many times per replicate, are vectorised in numpy and tested equal to lifelines' (lifelines itself fits the
Cox models when deaths are tied). Across replicates: distributions and power.

Nothing here knows the real trial's results; the outcome is whatever the model predicts."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from il2als.compiler.codegen import CompiledModel, default_model
from il2als.errors import Il2alsError
from il2als.inputs.population_spec import PopulationSpec
from il2als.inputs.regimens import Regimen, as_regimen, none
from il2als.results.metrics import DAYS_PER_MONTH, PNFH_CUTOFFS, STRATA, stratum_of
from il2als.solve.batch import BatchOptions, simulate_population
from il2als.studies.cohort import Cohort, sample_population
from il2als.studies.parallel import run_tasks
from il2als.studies.survival import (POWER_TEST, _cox, _km_at, _logrank, alsfrs_mixed_model, cafs_test, interaction_p,
                                     kaplan_meier, power_share)

__all__ = ["SUMMARY_UNITS", "summary_unit", "TRIAL_OPTIONS", "TrialDesign", "DESIGNS", "design", "death_times", "alsfrs_slopes", "Replicate",
           "analyse", "run_replicate", "TrialResult", "run_trial", "power_curve", "warm_up"]


#: The batch engine's settings for trials: rtol 1e-4 keeps the outputs within 2e-5 of a tight reference
#: (benchmarks/run.py), far below the trial's Monte Carlo noise, and takes a third fewer steps than the default.
TRIAL_OPTIONS = BatchOptions(rtol=1e-4)


@dataclass(frozen=True)
class TrialDesign:
    """A two-arm parallel design: patients per arm, follow-up, CSF-pNfH strata cut-offs (pg/mL), ALSFRS-R
    visit interval (days) and measurement noise (points), significance level, loss to follow-up other than
    death (exponential, per year; a patient lost is censored for survival and has no visits from then on), and
    how ALSFRS-R is analysed: ``"mixed"`` (a linear mixed model of the repeated scores, as trialists report it,
    with a CAFS rank test that combines death and function) or ``"slopes"`` (per-patient least-squares slopes
    only: cheap, for power runs that report survival only)."""

    name: str = "mirocals"
    n_per_arm: int = 110
    follow_up_days: float = 640.0
    pnfh_cutoffs: tuple[float, float] = PNFH_CUTOFFS
    visit_interval_days: float = 28.0
    alsfrs_noise_sd: float = 1.5
    alpha: float = 0.05
    dropout_per_year: float = 0.05  # assumed: 5% of patients a year lost to follow-up for reasons other than death
    alsfrs_analysis: str = "mixed"
    description: str = ""

    def __post_init__(self) -> None:
        if not (isinstance(self.n_per_arm, (int, np.integer)) and self.n_per_arm >= 2):
            raise Il2alsError(f"n_per_arm = {self.n_per_arm!r} must be a whole number >= 2")
        if not (self.follow_up_days > 0 and math.isfinite(self.follow_up_days)):
            raise Il2alsError(f"follow_up_days = {self.follow_up_days!r} must be positive")
        if not (0 < self.alpha < 1):
            raise Il2alsError(f"alpha = {self.alpha!r} must lie in (0, 1)")
        if not (0 <= self.dropout_per_year < 10):
            raise Il2alsError(f"dropout_per_year = {self.dropout_per_year!r} must lie in [0, 10), e.g. 0.05")
        if self.alsfrs_analysis not in ("mixed", "slopes"):
            raise Il2alsError(f"alsfrs_analysis = {self.alsfrs_analysis!r} must be 'mixed' or 'slopes'")


DESIGNS = {
    "mirocals": TrialDesign(description="MIROCALS (Bensimon 2025): 220 randomised 1:1, 640-day follow-up, "
                                        "strata by CSF-pNfH at 750 and 3700 pg/mL; 5%/year lost to follow-up (assumed)"),
}


def design(name: str) -> TrialDesign:
    """A trial design by name.

    Parameters
    ----------
    name : str
        ``mirocals`` (220 patients randomised 1:1, 640-day follow-up, strata by CSF pNfH at 750 and 3700 pg/mL,
        5%/year lost to follow-up, assumed).

    Returns
    -------
    TrialDesign

    References
    ----------
    Bensimon G, et al. Low-dose interleukin-2 in ALS (MIROCALS): a phase 2b trial. Lancet 2025.
    """
    from il2als.errors import did_you_mean

    if name not in DESIGNS:
        raise Il2alsError(f"unknown trial design '{name}'{did_you_mean(name, DESIGNS)}")
    return DESIGNS[name]


def death_times(cumhaz: np.ndarray, t: np.ndarray, rng: np.random.Generator | None = None, *,
                deviates: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Death time where the cumulative hazard (N, n_times) first reaches an Exp(1) deviate; (time, event).

    The deviates are drawn from ``rng``, or given (``deviates``, shape ``(N,)``) to share them between arms."""
    e = rng.exponential(1.0, len(cumhaz)) if deviates is None else np.asarray(deviates, float)
    T = np.full(len(cumhaz), t[-1])
    event = cumhaz[:, -1] >= e
    for i in np.nonzero(event)[0]:
        T[i] = float(np.interp(e[i], cumhaz[i], t))
    return T, event


def alsfrs_slopes(alsfrs: np.ndarray, t: np.ndarray, death: np.ndarray, design_: TrialDesign,
                  rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-patient OLS slope (points/month) of noisy ALSFRS-R visits before death (NaN with < 2 visits), the
    visit days ``(V,)`` and the recorded scores ``(N, V)`` (points; NaN from death on)."""
    visits = np.arange(0.0, t[-1] + 1e-9, design_.visit_interval_days)
    idx = np.searchsorted(t, visits).clip(0, len(t) - 1)
    obs = alsfrs[:, idx] + rng.normal(0.0, design_.alsfrs_noise_sd, (len(alsfrs), len(visits)))
    obs = np.clip(np.round(obs), 0, 48)
    m = visits / DAYS_PER_MONTH
    w = (visits[None, :] < death[:, None]).astype(float)  # the visits each patient lived to
    n = w.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):  # patients with < 2 visits: NaN, as documented
        dm = m[None, :] - (w @ m / n)[:, None]
        dy = obs - ((w * obs).sum(axis=1) / n)[:, None]
        out = (w * dm * dy).sum(axis=1) / (w * dm * dm).sum(axis=1)
    out[n < 2] = np.nan
    return out, visits, np.where(w > 0, obs, np.nan)




@dataclass(frozen=True, eq=False)
class Replicate:
    """One virtual trial: per-patient arrays (arm 1 = IL-2, stratum, death time [day], event, slope
    [points/month], baseline pNfH [pg/mL]) and its analysis."""

    arm: np.ndarray
    stratum: np.ndarray
    time: np.ndarray
    event: np.ndarray
    slope: np.ndarray
    pnfh: np.ndarray
    analysis: dict
    visit_days: np.ndarray | None = None
    visit_alsfrs: np.ndarray | None = None
    params: np.ndarray | None = None
    excluded: tuple[str, ...] = ()


def _nanmean(x: np.ndarray) -> float:
    return float(np.mean(x[np.isfinite(x)])) if np.any(np.isfinite(x)) else math.nan


def analyse(arm, stratum, T, E, slope, covariates, design_: TrialDesign, visit_days=None, visits=None) -> dict:
    """Kaplan-Meier at the end of follow-up, log-rank p and Cox HR overall and by stratum; ALSFRS-R.

    ``slope`` holds per-patient least-squares slopes (``alsfrs_slope_per_patient``). With ``visit_days`` and
    ``visits`` (the recorded scores, NaN where no visit) and ``design_.alsfrs_analysis == "mixed"``, the
    reported ``alsfrs_slope`` are the mixed model's (:func:`alsfrs_mixed_model`) and the CAFS test is added."""
    end = design_.follow_up_days
    mixed = design_.alsfrs_analysis == "mixed" and visits is not None
    if mixed:
        overall = alsfrs_mixed_model(visit_days, visits, arm)[0]
        strata = alsfrs_mixed_model(visit_days, visits, arm, stratum, len(STRATA))
        n_vis = np.isfinite(visits).sum(axis=1)
        last = visits[np.arange(len(visits)), np.maximum(n_vis - 1, 0)]
        change = np.where(n_vis >= 2, last - visits[:, 0], np.nan)
    ols = {"il2": _nanmean(slope[arm == 1]), "placebo": _nanmean(slope[arm == 0])}
    out = {
        "survival_end": {"il2": _km_at(T[arm == 1], E[arm == 1], end), "placebo": _km_at(T[arm == 0], E[arm == 0], end)},
        "logrank_p": _logrank(T, E, arm),
        "hr": _cox(T, E, arm),
        "hr_adjusted": _cox(T, E, arm, covariates),
        "alsfrs_slope": ({k: overall[k] for k in ("il2", "placebo")} if mixed else ols),
        "alsfrs_slope_per_patient": ols,
        "interaction_p": interaction_p(T, E, arm, stratum),
        "by_stratum": {},
    }
    if mixed:
        out["alsfrs_mixed"] = overall
        out["cafs"] = cafs_test(T, E, change, arm)
    for s, name in enumerate(STRATA):
        k = stratum == s
        out["by_stratum"][name] = {
            "n": int(k.sum()),
            "deaths": int(E[k].sum()),
            "hr": _cox(T[k], E[k], arm[k]),
            "logrank_p": _logrank(T[k], E[k], arm[k]),
            "survival_end": {"il2": _km_at(T[k & (arm == 1)], E[k & (arm == 1)], end),
                             "placebo": _km_at(T[k & (arm == 0)], E[k & (arm == 0)], end)},
            "alsfrs_slope": ({a: strata[s][a] for a in ("il2", "placebo")} if mixed else
                             {"il2": _nanmean(slope[k & (arm == 1)]), "placebo": _nanmean(slope[k & (arm == 0)])}),
        }
        if mixed:
            out["by_stratum"][name]["alsfrs_mixed"] = strata[s]
            out["by_stratum"][name]["cafs"] = cafs_test(T[k], E[k], change[k], arm[k])
    return out


def run_replicate(design_: TrialDesign, reg: Regimen, spec: PopulationSpec, rng: np.random.Generator,
                  model: CompiledModel | None = None, options: BatchOptions = TRIAL_OPTIONS,
                  cohort: Cohort | None = None) -> Replicate:
    """Sample, randomise, simulate and analyse one virtual trial."""
    model = model or default_model()
    n = 2 * design_.n_per_arm
    cohort = cohort or sample_population(spec, n, rng, model)
    arm = np.zeros(n, dtype=int)
    arm[rng.permutation(n)[: design_.n_per_arm]] = 1
    placebo = none()
    res = simulate_population(cohort.params, [reg if a else placebo for a in arm], f"{design_.follow_up_days} day",
                              step="1 day", outputs=["cumulative_hazard", "alsfrs_r", "pnfh_csf"], model=model,
                              options=options, initial=cohort.states)
    # on_failure="skip": failed patients are excluded from the analysis, explicitly and reported
    ok = res.status == 0
    params = cohort.params[ok]
    arm = arm[ok]
    cumhaz, alsfrs, pnfh_all = (res[n][ok] for n in ("cumulative_hazard", "alsfrs_r", "pnfh_csf"))
    T, E = death_times(cumhaz, res.time, rng)
    if design_.dropout_per_year > 0:  # loss to follow-up other than death: censored there, no visits after
        lost = rng.exponential(365.25 / design_.dropout_per_year, len(T))
        E = E & (T <= lost)
        T = np.minimum(T, lost)
    slope, visit_days, visits = alsfrs_slopes(alsfrs, res.time, T, design_, rng)
    pnfh = pnfh_all[:, 0]
    stratum = stratum_of(pnfh, design_.pnfh_cutoffs)
    # adjusted for what drives death in the simulation (ALSFRS-R at entry, via the reserve; CSF pNfH, via the loss
    # rate); age is sampled for eligibility but has no effect on the simulated hazard, so it is not adjusted for
    cov = {"alsfrs_r0": alsfrs[:, 0], "log_pnfh": np.log(pnfh)}
    return Replicate(arm, stratum, T, E, slope, pnfh, analyse(arm, stratum, T, E, slope, cov, design_, visit_days, visits),
                     visit_days, visits, params, res.failures)


def _pct(x, q):
    x = np.asarray([v for v in x if np.isfinite(v)])
    return [float(np.percentile(x, q[0])), float(np.percentile(x, q[1]))] if len(x) else [math.nan, math.nan]


def _median(x):
    x = np.asarray([v for v in x if np.isfinite(v)])
    return float(np.median(x)) if len(x) else math.nan


@dataclass(frozen=True, eq=False)
class TrialResult:
    """Replicates of a virtual trial and their summary (see :meth:`summary`)."""

    design: TrialDesign
    regimen: Regimen
    seed: int
    replicates: tuple[Replicate, ...]
    seconds: float = 0.0
    failures: tuple[str, ...] = field(default_factory=tuple)

    def summary(self) -> dict:
        """Medians across replicates, 2.5-97.5 percentiles of the replicate estimates, and power."""
        A = [r.analysis for r in self.replicates]
        a = self.design.alpha

        def hr_block(hrs, ps, ns=None, deaths=None):
            est = [h[0] for h in hrs]
            d = {"median": _median(est), "ci95": _pct(est, (2.5, 97.5)),
                 "median_within_trial_ci95": [_median([h[1] for h in hrs]), _median([h[2] for h in hrs])],
                 "estimable_replicates": int(np.sum(np.isfinite(est)))}
            if ns is not None:
                d["n_median"] = _median(ns)
                d["deaths_median"] = _median(deaths)
            return d

        by = {s: hr_block([x["by_stratum"][s]["hr"] for x in A], None, [x["by_stratum"][s]["n"] for x in A],
                          [x["by_stratum"][s]["deaths"] for x in A]) for s in STRATA}
        for s in STRATA:
            by[s]["survival_end"] = {k: _median([x["by_stratum"][s]["survival_end"][k] for x in A]) for k in ("il2", "placebo")}
            by[s]["alsfrs_slope"] = {k: _median([x["by_stratum"][s]["alsfrs_slope"][k] for x in A]) for k in ("il2", "placebo")}
        end = int(round(self.design.follow_up_days))
        power_all = power_share([x["logrank_p"] for x in A], [x["hr"][0] for x in A], a)
        power_by = {s: power_share([x["by_stratum"][s]["logrank_p"] for x in A],
                                   [x["by_stratum"][s]["hr"][0] for x in A], a) for s in STRATA}
        extra = {}
        if all("alsfrs_mixed" in x for x in A):
            def effect(blocks):
                d = [b["difference"] for b in blocks]
                return {"median": _median(d), "ci95": _pct(d, (2.5, 97.5)),
                        "share_significant_benefit": float(np.mean([b["p"] < a and b["difference"] > 0 for b in blocks])),
                        "estimable_replicates": int(np.sum(np.isfinite(d)))}
            extra["alsfrs_slope_effect"] = {"overall": effect([x["alsfrs_mixed"] for x in A]),
                                            **{s: effect([x["by_stratum"][s]["alsfrs_mixed"] for x in A]) for s in STRATA}}

            def cafs(pairs):
                return {"median_p": _median([c[0] for c in pairs]),
                        "share_significant_benefit": float(np.mean([c[0] < a and c[1] > 0.5 for c in pairs])),
                        "median_probability_il2_ranks_higher": _median([c[1] for c in pairs])}
            extra["cafs"] = {"overall": cafs([x["cafs"] for x in A]),
                             **{s: cafs([x["by_stratum"][s]["cafs"] for x in A]) for s in STRATA},
                             "test": "CAFS (Berry 2013): deaths ranked by time, survivors by ALSFRS-R change; Mann-Whitney"}
        core = {
            "design": self.design.name,
            "regimen": {"name": self.regimen.name, "description": self.regimen.description, "summary": self.regimen.summary()},
            "n_per_arm": self.design.n_per_arm,
            "follow_up_days": self.design.follow_up_days,
            "replicates": len(self.replicates),
            "seed": self.seed,
            f"survival_{end}d": {k: _median([x["survival_end"][k] for x in A]) for k in ("il2", "placebo")},
            "hr_overall": hr_block([x["hr"] for x in A], None),
            "hr_overall_adjusted": hr_block([x["hr_adjusted"] for x in A], None),
            "hr_by_stratum": by,
            "alsfrs_slope": {k: _median([x["alsfrs_slope"][k] for x in A]) for k in ("il2", "placebo")},
            "power_overall": power_all[0],
            "power_overall_ci95": power_all[1],
            "power_test": POWER_TEST,
            "alpha": a,
            "excluded_patients": {"total": sum(len(r.excluded) for r in self.replicates),
                                  "first": [f"replicate {k}: {m}" for k, r in enumerate(self.replicates)
                                            for m in r.excluded][:10]},
            "interaction_p": {"median": _median([x.get("interaction_p", math.nan) for x in A]),
                              "share_below_alpha": float(np.mean([x.get("interaction_p", math.nan) < a for x in A])),
                              "test": "Cox likelihood ratio, arm x CSF-pNfH stratum (strata with deaths in both arms)"},
            "alsfrs_slope_by_stratum": {s: by[s]["alsfrs_slope"] for s in STRATA},
            "alsfrs_analysis": ("linear mixed model of repeated scores (statsmodels MixedLM, REML; random intercept and "
                                "slope per patient; scores until death or loss to follow-up)"
                                if self.design.alsfrs_analysis == "mixed" else "per-patient least-squares slopes"),
            "dropout_per_year": self.design.dropout_per_year,
            "power_by_stratum": {s: power_by[s][0] for s in STRATA},
            "power_by_stratum_ci95": {s: power_by[s][1] for s in STRATA},
            "units": {"survival": "1 (Kaplan-Meier)", "hr": "1 (IL-2 vs placebo, Cox)", "alsfrs_slope": "points/month",
                      "alsfrs_slope_effect": "points/month (IL-2 minus placebo)",
                      "follow_up_days": "day", "power": "1 (share of replicates)"},
        }
        return {**core, **extra}

    def summary_rows(self, summary: dict | None = None) -> list[dict]:
        """:meth:`summary` (or a summary extended by the caller) as rows ``quantity, value, unit``: nested keys joined
        by '.', a ``[low, high]`` pair as ``.low`` / ``.high``; each unit from :data:`SUMMARY_UNITS`."""
        rows: list[dict] = []

        def walk(prefix: str, v: object) -> None:
            if isinstance(v, dict):
                for k, x in v.items():
                    if not (prefix == "" and k == "units"):
                        walk(f"{prefix}.{k}" if prefix else str(k), x)
            elif isinstance(v, (list, tuple)) and len(v) == 2 and all(isinstance(x, (int, float)) for x in v):
                walk(f"{prefix}.low", v[0])
                walk(f"{prefix}.high", v[1])
            else:
                rows.append({"quantity": prefix, "value": v, "unit": summary_unit(prefix)})

        walk("", self.summary() if summary is None else summary)
        return rows

    def replicate_rows(self) -> list[dict]:
        """One row per replicate: overall Cox HR with its 95% interval, log-rank p, Kaplan-Meier survival at the end
        of follow-up, mean ALSFRS-R slopes, and per stratum n, deaths, HR and log-rank p (units in the headers)."""
        rows = []
        for k, r in enumerate(self.replicates):
            a = r.analysis
            row = {"replicate": k, "hr [1]": a["hr"][0], "hr_lo [1]": a["hr"][1], "hr_hi [1]": a["hr"][2],
                   "logrank_p [1]": a["logrank_p"], "survival_end_il2 [1]": a["survival_end"]["il2"],
                   "survival_end_placebo [1]": a["survival_end"]["placebo"],
                   "alsfrs_slope_il2 [points/month]": a["alsfrs_slope"]["il2"],
                   "alsfrs_slope_placebo [points/month]": a["alsfrs_slope"]["placebo"]}
            for st, b in a["by_stratum"].items():
                row.update({f"{st}_n [patients]": b["n"], f"{st}_deaths [deaths]": b["deaths"], f"{st}_hr [1]": b["hr"][0],
                            f"{st}_logrank_p [1]": b["logrank_p"]})
            rows.append(row)
        return rows

    def km_curves(self, step_days: float = 7.0) -> dict:
        """Kaplan-Meier curves per replicate, summarised across replicates (not pooled: the band is how much one
        trial of this size varies), for ``overall`` and each stratum by arm (``placebo`` / ``il2``).

        Returns ``{"time": (G,) days, (key, arm): {"median", "low", "high": (G,) survival [1] (2.5-97.5% of
        replicates), "at_risk": (G,) median patients at risk, "n": median patients}}``."""
        grid = np.arange(0.0, self.design.follow_up_days + 1e-9, step_days)
        out: dict = {"time": grid}
        for key in ("overall", *STRATA):
            for a, arm in ((0, "placebo"), (1, "il2")):
                S, R, n = [], [], []
                for r in self.replicates:
                    k = (r.arm == a) if key == "overall" else (r.arm == a) & (r.stratum == STRATA.index(key))
                    if k.sum() == 0:
                        continue
                    s_, at = kaplan_meier(r.time[k], r.event[k], grid)
                    S.append(s_)
                    R.append(at)
                    n.append(int(k.sum()))
                if not S:
                    continue
                S = np.array(S)
                out[(key, arm)] = {"median": np.median(S, 0), "low": np.percentile(S, 2.5, 0),
                                   "high": np.percentile(S, 97.5, 0), "at_risk": np.median(np.array(R), 0),
                                   "n": float(np.median(n)), "replicates": len(S)}
        return out

    def to_dataframe(self):
        """:meth:`replicate_rows` as a pandas DataFrame (needs pandas)."""
        import pandas as pd

        return pd.DataFrame(self.replicate_rows())


#: the unit of each quantity of :meth:`TrialResult.summary`, by the last part of its key that names one (first
#: match from the end: ``hr_by_stratum.low.alsfrs_slope.il2`` is a slope); '' for text and identifiers
SUMMARY_UNITS = {
    "alsfrs_slope": "points/month", "alsfrs_slope_effect": "points/month", "alsfrs_slope_by_stratum": "points/month",
    "share_significant_benefit": "1", "estimable_replicates": "replicates", "n_median": "patients",
    "deaths_median": "deaths", "n_per_arm": "patients", "expected_n": "patients", "total": "patients",
    "follow_up_days": "day", "dropout_per_year": "1/year", "replicates": "replicates", "alpha": "1",
    "median_p": "1", "median_probability_il2_ranks_higher": "1", "share_below_alpha": "1",
    "hr_overall": "1", "hr_overall_adjusted": "1", "hr_by_stratum": "1", "expected_hr_overall": "1",
    "expected_hr_by_stratum": "1", "interaction_p": "1", "cafs": "1", "power_overall": "1",
    "power_overall_ci95": "1", "power_by_stratum": "1", "power_by_stratum_ci95": "1", "survival_end": "1",
}


def summary_unit(key: str) -> str:
    """The unit of summary quantity ``key`` (see :data:`SUMMARY_UNITS`); survival_<days>d blocks are shares."""
    parts = key.split(".")
    if parts[-1] in ("test", "first", "description", "summary", "name") or key in (
            "design", "seed", "power_test", "alsfrs_analysis", "parameter_set"):
        return ""
    for part in reversed(parts):
        if part in SUMMARY_UNITS:
            return SUMMARY_UNITS[part]
        if part.startswith("survival_") and part.endswith("d"):
            return "1"
    return ""


_WARM: list[bool] = []  # [True] once warm_up has run in this process (or in the fork server it was forked from)


def warm_up() -> None:
    """Load what a replicate needs (the engine and its kernels) without running one: a process-pool worker's start
    (:func:`il2als.studies.parallel.start_pool`), done while the parent starts; once per process. The statistics
    need no scipy module (their optimiser and distribution tails are il2als's own, tested equal to scipy's)."""
    if _WARM:
        return
    from il2als.compiler import lane_width
    from il2als.inputs.parameters import load_parameters

    model = default_model()
    P = np.tile(load_parameters("default").vector(model), (lane_width(), 1))
    simulate_population(P, "mirocals", "1 day", outputs=["survival"], model=model, options=BatchOptions(kernel="lanes"))
    _WARM.append(True)


def _replicate_task(design_: TrialDesign, reg: Regimen, spec: PopulationSpec, ss: np.random.SeedSequence,
                    options: BatchOptions, model: CompiledModel | None) -> Replicate:
    return run_replicate(design_, reg, spec, np.random.default_rng(ss), model, options)


def run_trial(design_: TrialDesign, regimen: "Regimen | str", spec: PopulationSpec, replicates: int, seed: int,
              *, model: CompiledModel | None = None, options: BatchOptions = TRIAL_OPTIONS,
              progress: Callable[[int, int], None] | None = None, scheduler: object = None) -> TrialResult:
    """Run ``replicates`` virtual trials of ``design_`` and analyse each as the trialists did.

    Replicate k uses the generator spawned from ``seed`` as its k-th child, so results are reproducible by seed,
    whatever the backend, and a replicate does not depend on how many others run.

    Parameters
    ----------
    design_ : TrialDesign
    regimen : Regimen or str
        The active arm; the control arm is placebo.
    spec : PopulationSpec
        The virtual population patients are drawn from (eligibility as the design's).
    replicates : int
    seed : int
    options : BatchOptions
    progress : callable, optional
        ``progress(done, total)``.
    scheduler : optional
        ``None``/``"threads"``, ``"processes"`` or a Dask address (:func:`il2als.studies.parallel.run_tasks`).

    Returns
    -------
    TrialResult
        ``summary()``, ``summary_rows()`` (a unit on every number), ``replicate_rows()``, ``km_curves()``.

    Notes
    -----
    Nothing here knows the real trial's results: the outcome is whatever the model predicts.
    """
    if not (isinstance(replicates, (int, np.integer)) and replicates >= 1):
        raise Il2alsError(f"replicates = {replicates!r} must be a whole number >= 1")
    if not (isinstance(seed, (int, np.integer)) and seed >= 0):
        raise Il2alsError(f"seed = {seed!r} must be a whole number >= 0")
    reg = as_regimen(regimen)
    model = model or default_model()
    t0 = time.perf_counter()
    children = np.random.SeedSequence(seed).spawn(replicates)
    # the compiled model does not pickle: other processes build their own
    local = model if scheduler in (None, "threads") else None
    reps = run_tasks(_replicate_task, [(design_, reg, spec, ss, options, local) for ss in children],
                     scheduler=scheduler, progress=progress)
    return TrialResult(design_, reg, seed, tuple(reps), time.perf_counter() - t0)


def power_curve(design_: TrialDesign, regimen: "Regimen | str", spec: PopulationSpec, n_per_arm: list[int],
                replicates: int, seed: int, *, progress: Callable[[int, int], None] | None = None,
                **kw) -> list[dict]:
    """Power with its Monte-Carlo interval, and the median hazard ratio, for each trial size.

    Parameters
    ----------
    design_ : TrialDesign
    regimen : Regimen or str
    spec : PopulationSpec
    n_per_arm : list of int
    replicates : int
        Virtual trials per size.
    seed : int

    Returns
    -------
    list of dict
        One row per size: ``n_per_arm``, ``power`` [1] (:data:`POWER_TEST`) and its 95% Wilson interval, the median HR.
    """
    from dataclasses import replace

    rows = []
    for k, n in enumerate(n_per_arm):
        res = run_trial(replace(design_, n_per_arm=int(n), alsfrs_analysis="slopes"), regimen, spec, replicates, seed + k, **kw)
        s = res.summary()
        rows.append({"n_per_arm": int(n), "power": s["power_overall"], "power_ci95_low": s["power_overall_ci95"][0],
                     "power_ci95_high": s["power_overall_ci95"][1], "hr_median": s["hr_overall"]["median"],
                     "hr_p2.5": s["hr_overall"]["ci95"][0], "hr_p97.5": s["hr_overall"]["ci95"][1],
                     "replicates": replicates, "alpha": design_.alpha})
        if progress is not None:
            progress(k + 1, len(n_per_arm))
    return rows
