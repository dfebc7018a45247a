"""The phase 3 question: a schedule for high-neurofilament patients, and the size of a confirmatory trial.

:func:`schedule` builds one member of a schedule family — courses of a daily dose for a number of days, a
course starting every so many days, and optionally a maintenance dose every few days between courses — over
the MIROCALS treatment period. :func:`optimise_schedule` searches that family with an optimiser (scipy's
differential evolution, integer course length, spacing and maintenance interval) for the largest fall of the
cumulative hazard of death in a fixed virtual cohort (common random numbers: the same patients for every
candidate), subject to an effector/NK activation ceiling: the cohort's median peak effector activation may not
exceed the MIROCALS regimen's in the same patients (the reason the dose is low).

:func:`events_needed` and :func:`sample_size` are Schoenfeld's formula (two-sided log-rank, 1:1) applied to
the paired expected hazard ratio and the simulated probability of death by the end of follow-up, for a design
enriched or stratified by CSF pNfH.

References: Schoenfeld 1983 (Biometrics 39:499) for the number of events; Bensimon 2025 (MIROCALS regimen and
strata).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from il2als.compiler.codegen import CompiledModel, default_model
from il2als.errors import Il2alsError
from il2als.inputs.population_spec import PopulationSpec
from il2als.inputs.regimens import Dose, Regimen, as_regimen, none
from il2als.results.metrics import PNFH_CUTOFFS
from il2als.solve.batch import simulate_population
from il2als.studies.cohort import sample_population
from il2als.studies.trial import TRIAL_OPTIONS

__all__ = ["ScheduleFamily", "FAMILY", "schedule", "ScheduleSearch", "optimise_schedule", "events_needed",
           "sample_size", "PHASE3_DESIGNS", "design_population", "design_rows"]

#: Days of treatment of MIROCALS (18 courses, one every 28 days: the last course starts on day 476).
TREATMENT_DAYS = 18 * 28


@dataclass(frozen=True)
class ScheduleFamily:
    """Bounds of the searched schedules: course dose [MIU/day], course length [day], course spacing (start to
    start) [day], maintenance interval [day] (0: none) and maintenance dose [MIU]."""

    dose_miu: tuple[float, float] = (0.5, 6.0)
    course_days: tuple[int, int] = (1, 10)
    spacing_days: tuple[int, int] = (14, 56)
    maintenance_every_days: tuple[int, int] = (0, 14)
    maintenance_miu: tuple[float, float] = (0.25, 2.0)

    @property
    def bounds(self) -> list[tuple[float, float]]:
        return [self.dose_miu, self.course_days, self.spacing_days, self.maintenance_every_days, self.maintenance_miu]


FAMILY = ScheduleFamily()


def schedule(dose_miu: float, course_days: int, spacing_days: int, maintenance_every_days: int = 0,
             maintenance_miu: float = 0.0, treatment_days: float = TREATMENT_DAYS) -> Regimen:
    """One schedule: ``course_days`` daily doses of ``dose_miu`` MIU, a course starting every ``spacing_days``
    days over ``treatment_days``; with ``maintenance_every_days`` >= 2, a ``maintenance_miu`` dose every that
    many days between courses (from that interval after a course's last dose until the next course).

    >>> schedule(2, 5, 28).summary()
    '90 doses of 2 MIU from day 0 to day 480'
    """
    for v, what in ((dose_miu, "dose"), (maintenance_miu, "maintenance dose")):
        if not (isinstance(v, (int, float)) and math.isfinite(v) and v >= 0):
            raise Il2alsError(f"{what} {v!r} MIU must be a finite number >= 0")
    if not (dose_miu > 0 and 1 <= int(course_days) < int(spacing_days)):
        raise Il2alsError(f"schedule needs a positive dose and 1 <= course days ({course_days}) < spacing ({spacing_days})")
    L, P, k = int(course_days), int(spacing_days), int(maintenance_every_days)
    times: dict[float, float] = {}
    for start in range(0, int(treatment_days), P):
        for d in range(L):
            times[float(start + d)] = dose_miu
        if k >= 2 and maintenance_miu > 0:
            t = start + L - 1 + k
            while t < start + P:
                times[float(t)] = maintenance_miu
                t += k
    doses = tuple(Dose(t, a * 1e6, "IU") for t, a in sorted(times.items()))
    n = len(range(0, int(treatment_days), P))
    text = f"{dose_miu:.3g} MIU daily for {L} days every {P} days, {n} cycles"
    if k >= 2 and maintenance_miu > 0:
        text += f", with {maintenance_miu:.3g} MIU every {k} days between courses"
    return Regimen(doses, text, text)


@dataclass(frozen=True)
class ScheduleSearch:
    """The optimiser's result: the best schedule, its efficacy and effector peak, the reference regimen's, and
    every evaluated candidate (rows with units in the keys)."""

    best: Regimen
    best_x: tuple[float, int, int, int, float]
    hazard_ratio: float  # cumulative-hazard ratio at the end of follow-up, IL-2 vs placebo (same patients) [1]
    effector_peak: float  # cohort median of the peak effector activation [1]
    reference: Regimen
    reference_hazard_ratio: float
    reference_effector_peak: float
    evaluations: list[dict]
    n_patients: int
    converged: bool
    message: str


def _cohort_metrics(P: np.ndarray, Y0: np.ndarray, reg: Regimen, placebo_cumhaz: np.ndarray, days: float,
                    model: CompiledModel) -> tuple[float, float, float]:
    res = simulate_population(P, reg, f"{days} day", step="1 day", outputs=["cumulative_hazard", "effector_activation"],
                              model=model, options=TRIAL_OPTIONS, initial=Y0)
    if np.any(res.status != 0):
        return math.nan, math.nan, math.nan
    ratio = float(res["cumulative_hazard"][:, -1].sum() / placebo_cumhaz.sum())
    peak = float(np.median(res["effector_activation"].max(axis=1)))
    return ratio, peak, float(sum(d.amount for d in reg.doses) / 1e6)


def optimise_schedule(spec: PopulationSpec, n: int = 120, seed: int = 1, *, family: ScheduleFamily = FAMILY,
                      reference: "Regimen | str" = "mirocals", days: float = 640.0, maxiter: int = 12,
                      popsize: int = 8, max_total_miu: float | None = None, model: CompiledModel | None = None,
                      progress: Callable[[int, float], None] | None = None) -> ScheduleSearch:
    """Search ``family`` for the schedule with the lowest cumulative-hazard ratio in ``n`` patients of ``spec``
    (sampled once, seeded: common random numbers across candidates) under the effector ceiling of
    ``reference``. Differential evolution (scipy), integer course length, spacing and maintenance interval;
    a candidate over the ceiling is penalised (10 x its relative excess), so the best is feasible or flagged.
    ``max_total_miu`` caps the total IL-2 over the treatment period the same way (e.g. the MIROCALS 180 MIU:
    the same drug budget, which also bounds the injection burden the ceiling alone does not).
    ``progress(generation, best objective)`` is called after each generation."""
    from scipy.optimize import differential_evolution

    model = model or default_model()
    ref = as_regimen(reference)
    cohort = sample_population(spec, n, np.random.default_rng(seed), model)
    P, Y0 = cohort.params, cohort.states
    pl = simulate_population(P, none(), f"{days} day", step="1 day", outputs=["cumulative_hazard"], model=model,
                             options=TRIAL_OPTIONS, initial=Y0)
    if np.any(pl.status != 0):
        raise Il2alsError("the placebo arm of the schedule search failed for some patients; change the `seed`")
    lam0 = pl["cumulative_hazard"][:, -1]
    ref_ratio, ref_peak, ref_total = _cohort_metrics(P, Y0, ref, lam0, days, model)
    if not math.isfinite(ref_ratio):
        raise Il2alsError("the reference regimen could not be simulated in the search cohort; change the `seed`")
    evals: list[dict] = []
    cache: dict[tuple, float] = {}

    def unpack(x) -> tuple[float, int, int, int, float]:
        d, L, S, k, m = x
        L, S, k = int(round(L)), int(round(S)), int(round(k))
        k = 0 if k < 2 else k
        return round(float(d), 2), L, max(S, L + 1), k, (round(float(m), 2) if k else 0.0)

    def objective(x) -> float:
        key = unpack(x)
        if key in cache:
            return cache[key]
        reg = schedule(*key)
        ratio, peak, total = _cohort_metrics(P, Y0, reg, lam0, days, model)
        excess = max(0.0, peak / ref_peak - 1.0) if math.isfinite(peak) else math.inf
        if max_total_miu is not None:
            excess += max(0.0, total / max_total_miu - 1.0)
        f = (ratio + 10.0 * excess) if math.isfinite(ratio) else 10.0
        evals.append({"dose [MIU]": key[0], "course [day]": key[1], "spacing [day]": key[2],
                      "maintenance_every [day]": key[3], "maintenance_dose [MIU]": key[4],
                      "total_dose [MIU]": total, "hazard_ratio [1]": ratio, "effector_peak [1]": peak,
                      "feasible": bool(excess == 0.0), "schedule": reg.name})
        cache[key] = f
        return f

    gen = [0]

    def callback(xk, convergence=None) -> None:  # noqa: ANN001
        gen[0] += 1
        if progress is not None:
            progress(gen[0], objective(xk))

    res = differential_evolution(objective, family.bounds, integrality=[False, True, True, True, False],
                                 maxiter=maxiter, popsize=popsize, seed=seed, polish=False, tol=1e-4,
                                 callback=callback, init="sobol")
    feasible = [e for e in evals if e["feasible"] and math.isfinite(e["hazard_ratio [1]"])]
    if not feasible:
        raise Il2alsError("no evaluated schedule stays under the effector ceiling; widen the family's bounds")
    best = min(feasible, key=lambda e: e["hazard_ratio [1]"])
    x = (best["dose [MIU]"], best["course [day]"], best["spacing [day]"], best["maintenance_every [day]"],
         best["maintenance_dose [MIU]"])
    return ScheduleSearch(schedule(*x), x, best["hazard_ratio [1]"], best["effector_peak [1]"], ref, ref_ratio, ref_peak,
                          evals, n, bool(res.success), str(res.message))


def events_needed(hazard_ratio: float, power: float, alpha: float = 0.05) -> float:
    """Deaths needed to detect ``hazard_ratio`` with a two-sided log-rank test at ``alpha``, 1:1 allocation
    (Schoenfeld 1983): ``4 (z_{1-alpha/2} + z_power)^2 / (log HR)^2``. Refused for HR >= 1 (no benefit to detect)."""
    from scipy.stats import norm

    if not (0 < power < 1 and 0 < alpha < 1):
        raise Il2alsError(f"power {power} and alpha {alpha} must lie in (0, 1)")
    if not (math.isfinite(hazard_ratio) and 0 < hazard_ratio < 1):
        raise Il2alsError(f"hazard ratio {hazard_ratio:.3g} shows no benefit to detect; no sample size is defined")
    z = norm.ppf(1 - alpha / 2) + norm.ppf(power)
    return 4 * z * z / math.log(hazard_ratio) ** 2


def sample_size(hazard_ratio: float, death_probability: float, power: float, alpha: float = 0.05,
                dropout_fraction: float = 0.0) -> dict[str, float]:
    """Patients (total, 1:1) for ``power``: events from :func:`events_needed` over the probability that a
    patient's death is observed (``death_probability`` averaged over both arms, times the share not lost to
    follow-up first, ``1 - dropout_fraction``)."""
    if not (0 < death_probability <= 1):
        raise Il2alsError(f"death probability {death_probability} must lie in (0, 1]")
    if not (0 <= dropout_fraction < 1):
        raise Il2alsError(f"dropout fraction {dropout_fraction} must lie in [0, 1)")
    d = events_needed(hazard_ratio, power, alpha)
    n = d / (death_probability * (1 - dropout_fraction))
    return {"events": math.ceil(d), "patients": 2 * math.ceil(n / 2), "per_arm": math.ceil(n / 2)}


#: Confirmatory designs compared: (label, CSF-pNfH low, high [pg/mL], which schedule: "reference" or "optimised").
_LO, _HI = PNFH_CUTOFFS
PHASE3_DESIGNS = (
    ("all-comers, MIROCALS schedule", 0.0, math.inf, "reference"),
    (f"enriched {_LO:g}-{_HI:g} pg/mL, MIROCALS schedule", _LO, _HI, "reference"),
    (f"enriched <= {_HI:g} pg/mL, MIROCALS schedule", 0.0, _HI, "reference"),
    (f"high > {_HI:g} pg/mL, MIROCALS schedule", _HI, math.inf, "reference"),
    (f"high > {_HI:g} pg/mL, optimised schedule", _HI, math.inf, "optimised"),
    ("all-comers, optimised schedule", 0.0, math.inf, "optimised"),
)


def design_population(spec: PopulationSpec, low: float, high: float) -> PopulationSpec:
    """``spec`` restricted to baseline CSF pNfH in [low, high] pg/mL (unchanged for all-comers, 0 to inf)."""
    return spec if (low == 0 and math.isinf(high)) else spec.enriched(low, high)


def design_rows(sets: dict[str, PopulationSpec], regimens: dict[str, Regimen], n: int, seed: int, *,
                powers: tuple[float, ...] = (0.8, 0.9), alpha: float = 0.05, dropout_per_year: float = 0.05,
                follow_up_days: float = 640.0, designs=PHASE3_DESIGNS,
                progress: Callable[[str], None] | None = None) -> list[dict]:
    """For each parameter set (label -> population) and design: the paired expected HR (overall in the design's
    eligible patients), the probability of death by the end of follow-up (both arms), and Schoenfeld's
    events and patients for each power. A design whose expected HR shows no benefit gets no sample size (its
    ``note`` says why) rather than a number."""
    from il2als.studies.biology import expected_hazard_ratio
    from il2als.studies.trial import TrialDesign

    d = TrialDesign(follow_up_days=follow_up_days, alpha=alpha, dropout_per_year=dropout_per_year)
    lost = 1 - math.exp(-dropout_per_year * follow_up_days / 365.25)
    rows = []
    for label, spec in sets.items():
        for name, lo, hi, which in designs:
            if progress is not None:
                progress(f"{label}: {name}")
            e = expected_hazard_ratio(regimens[which], design_population(spec, lo, hi), n, seed, design=d)
            p_death = (e.deaths["overall"]["placebo"] + e.deaths["overall"]["il2"]) / (2 * e.n)
            row = {"parameter_set": label, "design": name, "schedule": regimens[which].name,
                   "expected_hr [1]": e.hr["overall"], "death_probability [1]": p_death,
                   "dropout_fraction [1]": lost, "note": ""}
            for pw in powers:
                key = f"{round(100 * pw)}"
                try:
                    ss = sample_size(e.hr["overall"], p_death, pw, alpha, lost)
                    row[f"events_{key}"], row[f"patients_{key}"] = ss["events"], ss["patients"]
                except Il2alsError as exc:
                    row[f"events_{key}"], row[f"patients_{key}"] = None, None
                    row["note"] = str(exc)
            rows.append(row)
    return rows
