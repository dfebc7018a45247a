"""What the model says about each CSF-pNfH stratum: its biology, and the expected effect of a regimen there.

:func:`stratum_biology` describes a virtual population by baseline CSF-pNfH stratum (< 750, 750-3700,
> 3700 pg/mL): the motor-neuron loss rate and how it splits into the Treg-suppressible (microglial) part, the
Treg-refractory inflammatory part and the cell-autonomous rest; the share of the loss IL-2 could reach (the
fall of the loss rate if every Treg worked at the patient's ceiling, the steady state of the model with
``treg_function`` set to ``treg_function_ceiling``); Treg function, its ceiling and the functional Treg count.

:func:`expected_hazard_ratio` is the paired virtual trial: the same patients in both arms with the same
Exp(1) death deviates (common random numbers), so the Cox hazard ratio estimates the treatment effect the model
implies, with little Monte-Carlo noise, overall and by stratum.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from il2als.compiler.codegen import CompiledModel, default_model
from il2als.errors import Il2alsError
from il2als.inputs.population_spec import PopulationSpec
from il2als.inputs.regimens import Regimen, as_regimen, none
from il2als.results.metrics import DAYS_PER_MONTH, PNFH_CUTOFFS, STRATA, slope_from_baseline, stratum_of
from il2als.solve.batch import population_baselines, simulate_population
from il2als.studies.cohort import sample_population
from il2als.studies.survival import _cox
from il2als.studies.trial import TRIAL_OPTIONS, TrialDesign, death_times

__all__ = ["StratumBiology", "stratum_biology", "ExpectedEffect", "expected_hazard_ratio", "BIOLOGY_UNITS"]

#: Units of the :class:`StratumBiology` columns.
BIOLOGY_UNITS = {"n": "1", "share": "1", "pnfh_csf": "pg/mL", "loss_rate": "percent/month",
                 "microglial_share": "1", "refractory_share": "1", "autonomous_share": "1", "reachable_share": "1",
                 "treg_function": "1", "treg_function_ceiling": "1", "functional_treg": "cell/uL",
                 "alsfrs_r": "points"}


@dataclass(frozen=True)
class StratumBiology:
    """Medians per stratum (see :data:`BIOLOGY_UNITS`); ``rows()`` gives them as table rows with units."""

    strata: tuple[str, ...]
    values: dict[str, dict[str, float]]  # stratum -> column -> median
    cutoffs: tuple[float, float] = PNFH_CUTOFFS  # CSF-pNfH stratum boundaries [pg/mL]

    def rows(self) -> list[dict[str, object]]:
        return [{"stratum": s, **{f"{k} [{BIOLOGY_UNITS[k]}]": v for k, v in self.values[s].items()}}
                for s in self.strata]


def stratum_biology(spec: PopulationSpec, n: int, seed: int, *, model: CompiledModel | None = None,
                    cutoffs: tuple[float, float] = PNFH_CUTOFFS) -> StratumBiology:
    """Sample ``n`` eligible patients (seeded) and describe each CSF-pNfH stratum at baseline (no IL-2)."""
    model = model or default_model()
    cohort = sample_population(spec, n, np.random.default_rng(seed), model)
    P = cohort.params
    Y = cohort.states
    obs = np.array([model.observe(np.zeros(1), Y[i:i + 1], P[i])[0] for i in range(len(P))])
    names = list(model.observable_names)
    loss = obs[:, names.index("mn_loss_rate")]  # 1/day, canonical
    micro = obs[:, names.index("microglial_loss_rate")]
    ix = model.parameter_index
    refractory = P[:, ix("k_refractory")] * P[:, ix("refractory_drive")]
    at_ceiling = P.copy()
    at_ceiling[:, ix("treg_function")] = P[:, ix("treg_function_ceiling")]
    Yc, st = population_baselines(at_ceiling, model)
    loss_c = np.array([model.observe(np.zeros(1), Yc[i:i + 1], at_ceiling[i])[0, names.index("mn_loss_rate")]
                       for i in range(len(P))])
    pnfh = Y[:, model.state_index("pnfh_csf")]
    s = stratum_of(pnfh, cutoffs)
    alsfrs = obs[:, names.index("alsfrs_r")]
    fn = Y[:, model.state_index("treg_suppressive_function")]
    treg = Y[:, model.state_index("treg")]
    out = {}
    for k, name in enumerate(STRATA):
        m = s == k
        med = (lambda x: float(np.median(x[m])) if m.any() else math.nan)  # noqa: E731
        out[name] = {"n": int(m.sum()), "share": float(m.mean()), "pnfh_csf": med(pnfh),
                     "loss_rate": med(loss * 100 * DAYS_PER_MONTH),
                     "microglial_share": med(micro / loss), "refractory_share": med(refractory / loss),
                     "autonomous_share": med(P[:, ix("k_autonomous")] / loss),
                     "reachable_share": med(np.where(st == 0, 1 - loss_c / loss, np.nan)),
                     "treg_function": med(fn), "treg_function_ceiling": med(P[:, ix("treg_function_ceiling")]),
                     "functional_treg": med(fn * treg), "alsfrs_r": med(alsfrs)}
    return StratumBiology(STRATA, out)


@dataclass(frozen=True)
class ExpectedEffect:
    """The paired virtual trial: hazard ratios (IL-2 vs placebo) overall and by stratum, with the patients and
    deaths behind them, and the mean ALSFRS-R slope per arm [points/month] over the follow-up."""

    regimen: str
    n: int
    follow_up_days: float
    hr: dict[str, float]
    n_by_stratum: dict[str, int]
    deaths: dict[str, dict[str, int]]
    alsfrs_slope: dict[str, dict[str, float]]
    loss_slowing: dict[str, float]
    treg_peak_fold: dict[str, float]
    ccl2_plasma_change: dict[str, float]

    def rows(self) -> list[dict[str, object]]:
        out = []
        for g in ("overall", *STRATA):
            out.append({"group": g, "n": self.n if g == "overall" else self.n_by_stratum[g],
                        "expected_hr [1]": self.hr[g], "deaths_placebo": self.deaths[g]["placebo"],
                        "deaths_il2": self.deaths[g]["il2"],
                        "alsfrs_slope_placebo [points/month]": self.alsfrs_slope[g]["placebo"],
                        "alsfrs_slope_il2 [points/month]": self.alsfrs_slope[g]["il2"],
                        "loss_rate_slowing [1]": self.loss_slowing[g],
                        "treg_peak_fold [1]": self.treg_peak_fold[g],
                        "ccl2_plasma_change [percent]": self.ccl2_plasma_change[g]})
        return out


def expected_hazard_ratio(regimen: "Regimen | str", spec: PopulationSpec, n: int = 3000, seed: int = 1, *,
                          design: TrialDesign | None = None, model: CompiledModel | None = None) -> ExpectedEffect:
    """The expected effect of ``regimen`` from ``n`` patients simulated in both arms with common random numbers.

    Each patient's death time in each arm is where that arm's cumulative hazard reaches the *same* Exp(1)
    deviate; the Cox model (:func:`il2als.studies.survival._cox`: numpy, lifelines on tied deaths) then estimates
    the hazard ratio the mechanism implies, free of the between-arm sampling noise of a randomised trial.
    ``loss_rate_slowing`` is the median relative fall of the mean motor-neuron loss rate over the follow-up
    (IL-2 vs placebo, paired).
    """
    reg = as_regimen(regimen)
    if len(reg) == 0:
        raise Il2alsError("the expected effect compares a regimen with placebo; give a regimen with doses")
    model = model or default_model()
    design = design or TrialDesign()
    rng = np.random.default_rng(seed)
    cohort = sample_population(spec, n, rng, model)
    days = design.follow_up_days
    outs = ["cumulative_hazard", "alsfrs_r", "pnfh_csf", "mn_loss_rate", "treg_count", "ccl2_plasma"]
    arms = {}
    for arm, r in (("placebo", none()), ("il2", reg)):
        arms[arm] = simulate_population(cohort.params, r, f"{days} day", step="1 day", outputs=outs, model=model,
                                        options=TRIAL_OPTIONS, initial=cohort.states)
    ok = (arms["placebo"].status == 0) & (arms["il2"].status == 0)
    e = rng.exponential(1.0, n)[ok]
    t = arms["placebo"].time
    times, events, slopes, loss = {}, {}, {}, {}
    treg_fold = arms["il2"]["treg_count"][ok].max(axis=1) / arms["placebo"]["treg_count"][ok].max(axis=1)
    ccl2_change = 100 * (arms["il2"]["ccl2_plasma"][ok].mean(axis=1) / arms["placebo"]["ccl2_plasma"][ok].mean(axis=1) - 1)
    for arm, res in arms.items():
        T, ev = death_times(res["cumulative_hazard"][ok], t, deviates=e)  # the same deviates in both arms
        times[arm], events[arm] = T, ev
        a = res["alsfrs_r"][ok]
        # ALSFRS-R slope over follow-up while alive (the last score before death carried no further)
        end = np.clip(np.searchsorted(t, T) - 1, 1, len(t) - 1)
        slopes[arm] = slope_from_baseline(a, t, end)
        loss[arm] = res["mn_loss_rate"][ok].mean(axis=1)
    strat = stratum_of(arms["placebo"]["pnfh_csf"][ok][:, 0], design.pnfh_cutoffs)
    hr, n_by, deaths, slope_out, slowing, tfold, cchange = {}, {}, {}, {}, {}, {}, {}
    for g in ("overall", *STRATA):
        m = np.ones(len(e), bool) if g == "overall" else strat == STRATA.index(g)
        if g != "overall":
            n_by[g] = int(m.sum())
        T = np.concatenate([times["placebo"][m], times["il2"][m]])
        E = np.concatenate([events["placebo"][m], events["il2"][m]])
        A = np.concatenate([np.zeros(m.sum(), int), np.ones(m.sum(), int)])
        hr[g] = _cox(T, E, A)[0] if E.sum() >= 5 else math.nan
        deaths[g] = {"placebo": int(events["placebo"][m].sum()), "il2": int(events["il2"][m].sum())}
        slope_out[g] = {arm: float(np.mean(slopes[arm][m])) if m.any() else math.nan for arm in ("placebo", "il2")}
        med = (lambda x: float(np.median(x[m])) if m.any() else math.nan)  # noqa: E731
        slowing[g] = med(1 - loss["il2"] / loss["placebo"])
        tfold[g], cchange[g] = med(treg_fold), med(ccl2_change)
    return ExpectedEffect(reg.name, int(ok.sum()), days, hr, n_by, deaths, slope_out, slowing, tfold, cchange)
