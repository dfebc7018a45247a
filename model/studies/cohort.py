"""Virtual populations: patients sampled from a population specification, with covariates and trial eligibility."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from il2als.compiler.codegen import CompiledModel, default_model
from il2als.errors import ParameterError
from il2als.inputs.population_spec import PopulationSpec
from il2als.results.metrics import DAYS_PER_MONTH, slope_from_baseline, stratum_of

__all__ = ["Cohort", "MAX_PATIENTS", "sample_population", "describe_cohort"]


@dataclass(frozen=True, eq=False)
class Cohort:
    """N sampled eligible patients: parameters ``(N, n_parameters)`` in canonical units and covariates ``(N,)``.

    Covariates: ``age`` [year], ``male`` [bool], ``symptom_duration`` [month] at screening, ``run_in`` [week],
    ``reserve_at_onset`` [1], ``loss_rate`` [1/day] at baseline, ``alsfrs_r_screening`` [points].
    """

    params: np.ndarray
    covariates: dict[str, np.ndarray]
    spec_name: str
    n_screened: int
    states: np.ndarray | None = None  # baseline states (N, n_states), canonical units, when known

    def __len__(self) -> int:
        return len(self.params)

    def subset(self, mask: np.ndarray) -> "Cohort":
        return Cohort(self.params[mask], {k: v[mask] for k, v in self.covariates.items()}, self.spec_name,
                      self.n_screened, None if self.states is None else self.states[mask])


def _observe_each(model: CompiledModel, Y: np.ndarray, P: np.ndarray, name: str) -> np.ndarray:
    """The mechanism's observable ``name`` for each patient at one state: ``Y (N, n_states)``, ``P (N,
    n_parameters)`` -> ``(N,)`` (the generated ``observe`` broadcasts over patients given ``P`` transposed)."""
    return model.observe(np.zeros(len(Y)), Y, P.T, [model.observable_names.index(name)])[:, 0]


#: At most this many patients in one population (the parameter matrix alone is ~440 bytes a patient).
MAX_PATIENTS = 1_000_000


def _vary(centre: np.ndarray, factor: np.ndarray, omega: np.ndarray, z: np.ndarray, upper: np.ndarray) -> np.ndarray:
    """Patients' values ``(m, k)`` from the centre values: log-normal, ``c * factor * exp(omega * z)``, for
    parameters bounded only below (by 0); logit-normal on ``(0, upper)`` for parameters with a finite upper
    bound (a fraction, a reserve), so that no patient is sampled outside the mechanism's physical bounds."""
    out = centre * factor * np.exp(omega * z)
    bounded = np.isfinite(upper)
    if np.any(bounded):
        u = upper[bounded]
        med = np.clip(centre[:, bounded] * factor[bounded], 1e-12 * u, u * (1 - 1e-9))
        logit = np.log(med / (u - med)) + omega[bounded] * z[:, bounded]
        out[:, bounded] = u / (1.0 + np.exp(-logit))
    return out


def sample_population(spec: PopulationSpec, n: int, rng: np.random.Generator, model: CompiledModel | None = None,
                      max_screened: int = 100) -> Cohort:
    """Draw ``n`` eligible virtual patients.

    Parameters
    ----------
    spec : PopulationSpec
        Centre, spreads, correlations, covariates and eligibility (see :func:`load_population_spec`).
    n : int
        Eligible patients wanted.
    rng : numpy.random.Generator
        The only source of randomness: the same seed gives the same patients.
    model : CompiledModel, optional
    max_screened : int
        At most ``max_screened * n`` patients are screened before giving up (one-line error).

    Returns
    -------
    Cohort
        ``params (N, n_parameters)`` in canonical units, covariates ``(N,)`` and baseline states.
    """
    from il2als.solve.batch import population_baselines

    if not isinstance(n, (int, np.integer)) or n < 1:
        raise ParameterError(f"population size {n!r} must be a whole number >= 1")
    if n > MAX_PATIENTS:
        raise ParameterError(f"population size {n:,} is above the cap of {MAX_PATIENTS:,} patients for one run "
                             "(il2als.studies.cohort.MAX_PATIENTS); sample in several runs")
    model = model or default_model()
    centre = spec.centre.vector(model)
    idx = [model.parameter_index(k) for k in spec.varied]
    omega = np.array([spec.omega[k] for k in spec.varied])
    factor = np.array([spec.factor[k] for k in spec.varied])
    L = np.linalg.cholesky(spec.correlation)
    upper = np.array([model.card.parameter(k).upper for k in spec.varied])
    i_res = model.parameter_index("mn_reserve_start")
    kept_P, kept_Y, kept_cov, screened, kept = [], [], [], 0, 0
    while kept < n:
        if screened >= max_screened * n:
            raise ParameterError(f"only {kept} of {screened} screened patients were eligible; "
                                 "relax the eligibility rules or check the spec")
        m = max(64, 2 * (n - kept))
        screened += m
        z = rng.standard_normal((m, len(idx))) @ L.T
        P = np.tile(centre, (m, 1))
        P[:, idx] = _vary(P[:, idx], factor, omega, z, upper)
        age = rng.normal(spec.age[0], spec.age[1], m)
        male = rng.random(m) < spec.male_fraction
        dur = spec.symptom_duration_months[0] * np.exp(spec.symptom_duration_months[1] * rng.standard_normal(m))
        onset = np.minimum(spec.reserve_at_onset[0] * np.exp(spec.reserve_at_onset[1] * rng.standard_normal(m)),
                           spec.reserve_at_onset[2])
        run_in = rng.uniform(spec.run_in_weeks[0], spec.run_in_weeks[1], m)
        # eligibility that needs no model first; then baselines, in order, only until enough are eligible (the
        # patients are kept in draw order, so those after the n-th eligible were never used: the same cohort)
        cand = np.nonzero((age >= spec.eligible_age[0]) & (age <= spec.eligible_age[1])
                          & (dur <= spec.max_symptom_duration_months))[0]
        start = 0
        while start < len(cand) and kept < n:
            block = cand[start:start + max(32, int(1.2 * (n - kept)))]
            start += len(block)
            Pb = P[block]
            # the baseline loss rate does not depend on the reserve, so one baseline solve gives it
            Y0, st = population_baselines(Pb, model)
            loss = _observe_each(model, Y0, Pb, "mn_loss_rate")
            screen_reserve = onset[block] * np.exp(-loss * dur[block] * DAYS_PER_MONTH)
            rand_reserve = screen_reserve * np.exp(-loss * run_in[block] * 7.0)
            Pb[:, i_res] = rand_reserve
            Y_screen = Y0.copy()
            Y_screen[:, model.state_index("mn_reserve")] = screen_reserve
            alsfrs_screen = _observe_each(model, Y_screen, Pb, "alsfrs_r")
            pnfh = Y0[:, model.state_index("pnfh_csf")]
            ok = ((st == 0) & (pnfh >= spec.pnfh_range[0]) & (pnfh <= spec.pnfh_range[1])
                  & (alsfrs_screen >= spec.min_alsfrs_r) & np.isfinite(rand_reserve) & (rand_reserve > 0))
            # the steady states do not depend on the reserve (tested), so the screening solve is the baseline too
            Y0[:, model.state_index("mn_reserve")] = rand_reserve
            kept_Y.append(Y0[ok])
            kept_P.append(Pb[ok])
            kept += int(ok.sum())
            k = block[ok]
            kept_cov.append({"age": age[k], "male": male[k], "symptom_duration": dur[k], "run_in": run_in[k],
                             "reserve_at_onset": onset[k], "loss_rate": loss[ok],
                             "alsfrs_r_screening": alsfrs_screen[ok]})
    P = np.concatenate(kept_P)[:n]
    cov = {k: np.concatenate([c[k] for c in kept_cov])[:n] for k in kept_cov[0]}
    return Cohort(P, cov, spec.name, screened, np.concatenate(kept_Y)[:n])


def describe_cohort(cohort: Cohort, model: CompiledModel | None = None, months: float = 12.0) -> dict[str, float]:
    """Natural-history summary of a cohort on placebo: ALSFRS-R slope over ``months`` (mean, shares of slow
    < 0.5 and fast > 1 point/month), baseline CSF-pNfH strata shares (< 750, 750-3700, > 3700 pg/mL), and the
    correlation of log CSF pNfH with the log rate of ALSFRS-R decline."""
    from il2als.solve.batch import simulate_population

    days = months * DAYS_PER_MONTH
    r = simulate_population(cohort.params, "placebo", f"{days} day", step=f"{days} day",
                            outputs=["alsfrs_r", "pnfh_csf", "nfl_serum"], model=model)
    a = r["alsfrs_r"]
    slope = slope_from_baseline(a, r.time)
    pn = r["pnfh_csf"][:, 0]
    share = np.bincount(stratum_of(pn), minlength=3) / len(pn)
    return {
        "alsfrs_slope_mean": float(np.mean(slope)),
        "share_slow": float(np.mean(slope > -0.5)),
        "share_fast": float(np.mean(slope < -1.0)),
        "pnfh_below_750": float(share[0]),
        "pnfh_750_3700": float(share[1]),
        "pnfh_above_3700": float(share[2]),
        "pnfh_median": float(np.median(pn)),
        "nfl_serum_median": float(np.median(r["nfl_serum"][:, 0])),
        "alsfrs_r_median": float(np.median(a[:, 0])),
        "corr_log_pnfh_log_progression": _log_corr(pn, -slope),
        "sd_log_progression": float(np.std(np.log(-slope[slope < 0]))) if np.sum(slope < 0) > 2 else math.nan,
    }


def _log_corr(x: np.ndarray, y: np.ndarray) -> float:
    """Pearson correlation of log x with log y over the patients where both are positive (NaN if < 3)."""
    ok = (x > 0) & (y > 0)
    return float(np.corrcoef(np.log(x[ok]), np.log(y[ok]))[0, 1]) if ok.sum() >= 3 else math.nan
