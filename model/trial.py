"""Virtual trials: replicate a randomised trial in silico and analyse it as the trialists did.

Per replicate: sample eligible patients (:mod:`il2als.cohort`), randomise 1:1, simulate each patient under
the arm's regimen with the batch engine, draw each death time from the patient's own simulated cumulative
hazard (inverse transform of one exponential deviate), take ALSFRS-R at scheduled visits with measurement noise
until death, and stratify by baseline CSF-pNfH. Cox proportional hazards uses lifelines, not a hand-written
fit; the Kaplan-Meier point estimates and log-rank tests, run many times per replicate, are vectorised here and
tested equal to lifelines'. Across replicates: distributions and power.

Nothing here knows the real trial's results; the outcome is whatever the model predicts.
"""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from .cohort import DAYS_PER_MONTH, Cohort, PopulationSpec, sample_population
from .compile import CompiledModel, default_model
from .dosing import Regimen, none, regimen as as_regimen
from .errors import Il2alsError
from .parallel import run_tasks
from .population import BatchOptions, simulate_population

STRATA = ("very_low", "low", "high")
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
    pnfh_cutoffs: tuple[float, float] = (750.0, 3700.0)
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
    from .errors import did_you_mean

    if name not in DESIGNS:
        raise Il2alsError(f"unknown trial design '{name}'{did_you_mean(name, DESIGNS)}")
    return DESIGNS[name]


def stratum_of(pnfh: np.ndarray, cutoffs: tuple[float, float]) -> np.ndarray:
    """0 = very_low (< lower cut-off), 1 = low, 2 = high (> upper cut-off)."""
    return np.where(pnfh < cutoffs[0], 0, np.where(pnfh > cutoffs[1], 2, 1))


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
    out = np.full(len(alsfrs), np.nan)
    m = visits / DAYS_PER_MONTH
    for i in range(len(alsfrs)):
        k = visits < death[i]
        if k.sum() >= 2:
            out[i] = np.polyfit(m[k], obs[i, k], 1)[0]
    return out, visits, np.where(visits[None, :] < death[:, None], obs, np.nan)


def _reml_random_slopes(y: np.ndarray, X: np.ndarray, Z: np.ndarray, pid: np.ndarray):
    """REML fit of ``y = X beta + Z b_patient + e``, ``b ~ N(0, G)`` (2 x 2, unstructured), ``e ~ N(0, sigma^2)``:
    (beta, two-sided normal Wald p of each beta), or None when the optimiser does not converge or the fixed-effect
    information is singular (the caller then uses statsmodels' MixedLM).

    The restricted likelihood is statsmodels' (Woodbury per patient: each evaluation is a few batched 2 x 2 and
    p x p products over the patients' sufficient statistics, ~0.2 ms), so beta is the same to the optimiser's
    tolerance (tested, 1e-4); it takes 20-60 ms where MixedLM took 0.3-0.8 s, four times per trial replicate. The
    Wald p uses the model-based covariance ``(X' V^-1 X)^-1`` (what nlme and lme4 report); statsmodels inverts the
    full observed information, which moves p by up to ~1% relative."""
    from scipy.optimize import minimize
    from scipy.stats import norm

    ids, inv = np.unique(pid, return_inverse=True)
    N, p = len(ids), X.shape[1]

    def per(a, b):  # sum over each patient's rows of a_r b_r^T
        out = np.zeros((N, a.shape[1], b.shape[1]))
        np.add.at(out, inv, a[:, :, None] * b[:, None, :])
        return out

    XX, XZ, ZZ = per(X, X), per(X, Z), per(Z, Z)
    Xy, Zy = per(X, y[:, None])[..., 0], per(Z, y[:, None])[..., 0]
    yy = np.bincount(inv, y * y, N)
    n = np.bincount(inv, minlength=N).astype(float)

    def parts(theta):
        s2 = math.exp(theta[0])
        L = np.array([[math.exp(theta[1]), 0.0], [theta[2], math.exp(theta[3])]])
        G = L @ L.T
        Gi = np.linalg.inv(G)
        M = Gi[None] + ZZ / s2  # (N, 2, 2)
        Mi = np.linalg.inv(M)
        XVX = XX.sum(0) / s2 - np.einsum("npa,nab,nqb->pq", XZ, Mi, XZ) / s2 ** 2
        XVy = Xy.sum(0) / s2 - np.einsum("npa,nab,nb->p", XZ, Mi, Zy) / s2 ** 2
        yVy = yy.sum() / s2 - np.einsum("na,nab,nb->", Zy, Mi, Zy) / s2 ** 2
        logdetV = float(np.sum(n) * math.log(s2) + N * np.linalg.slogdet(G)[1] + np.sum(np.linalg.slogdet(M)[1]))
        return XVX, XVy, yVy, logdetV

    def objective(theta):
        try:
            XVX, XVy, yVy, logdetV = parts(theta)
            sign, logdet_x = np.linalg.slogdet(XVX)
            beta = np.linalg.solve(XVX, XVy)
        except np.linalg.LinAlgError:
            return 1e300
        if sign <= 0:
            return 1e300
        return float(logdetV + logdet_x + yVy - XVy @ beta)

    beta_ols, *_ = np.linalg.lstsq(X, y, rcond=None)
    s0 = float(np.var(y - X @ beta_ols)) or 1.0
    theta0 = np.array([math.log(s0 / 2), math.log(math.sqrt(s0 / 2)), 0.0, math.log(0.1 * math.sqrt(s0))])
    opts = {"maxiter": 500, "ftol": 1e-12, "gtol": 1e-7}
    res = minimize(objective, theta0, method="L-BFGS-B", options=opts)
    if not res.success and res.fun < 1e299:  # a line search stopped by finite-difference noise: restart there
        again = minimize(objective, res.x, method="L-BFGS-B", options=opts)
        if again.success or abs(again.fun - res.fun) < 1e-6:
            res = again
            res.success = True
    if res.fun >= 1e299 or not res.success:
        return None
    XVX, XVy, _, _ = parts(res.x)
    try:
        cov = np.linalg.inv(XVX)
    except np.linalg.LinAlgError:
        return None
    beta = cov @ XVy
    z = beta / np.sqrt(np.diag(cov))
    return beta, 2 * norm.sf(np.abs(z))


def alsfrs_mixed_model(visit_days: np.ndarray, scores: np.ndarray, arm: np.ndarray,
                      groups: np.ndarray | None = None, n_groups: int = 1,
                      engine: str = "numpy") -> list[dict[str, float]]:
    """ALSFRS-R slopes by arm from a linear mixed model of the repeated scores, as trials report them.

    ``score ~ group x (1 + month + arm + month:arm)`` with a random intercept and a random slope per patient
    (REML: :func:`_reml_random_slopes`, statsmodels' MixedLM likelihood in numpy, ``engine="statsmodels"`` for
    MixedLM itself), fitted to every recorded score: visits stop at death or loss to follow-up and
    are not imputed, so the estimate is valid when missingness depends on the observed course (missing at random;
    the CAFS test, :func:`cafs_test`, ranks deaths explicitly). ``scores`` is ``(N, V)`` with NaN where no visit
    took place, ``visit_days`` ``(V,)``, ``groups`` ``(N,)`` in ``0..n_groups-1`` (strata; None: one group).

    Returns, per group, ``{"il2", "placebo", "difference"}`` in points/month and ``"p"`` (Wald test of the
    month:arm term); NaNs for a group with fewer than three patients with two visits in an arm, and for all
    groups when the fit fails or does not converge (never a silently wrong slope).
    """
    import warnings as _w

    if engine not in ("numpy", "statsmodels"):
        raise ValueError("engine must be 'numpy' or 'statsmodels'")
    groups = np.zeros(len(arm), int) if groups is None else np.asarray(groups, int)
    month = np.asarray(visit_days, float) / DAYS_PER_MONTH
    n_visits = np.isfinite(scores).sum(axis=1)
    nan = {"il2": math.nan, "placebo": math.nan, "difference": math.nan, "p": math.nan}
    fit_groups = [g for g in range(n_groups)
                  if all(((groups == g) & (arm == a) & (n_visits >= 2)).sum() >= 3 for a in (0, 1))]
    out = [dict(nan) for _ in range(n_groups)]
    if not fit_groups:
        return out
    keep = np.isin(groups, fit_groups) & (n_visits >= 1)
    pid, vis = np.nonzero(np.isfinite(scores) & keep[:, None])
    y = scores[pid, vis]
    m, a, g = month[vis], arm[pid].astype(float), groups[pid]
    cols = []
    for k in fit_groups:
        ind = (g == k).astype(float)
        cols += [ind, ind * m, ind * a, ind * m * a]
    X = np.column_stack(cols)
    Z = np.column_stack([np.ones(len(y)), m])
    fit = _reml_random_slopes(y, X, Z, pid) if engine == "numpy" else None
    if fit is not None:
        beta, pv = fit
    else:  # statsmodels itself, also when the numpy fit does not converge
        from statsmodels.regression.mixed_linear_model import MixedLM

        try:
            with _w.catch_warnings():
                _w.simplefilter("ignore")
                r = MixedLM(y, X, groups=pid, exog_re=Z).fit(reml=True, method=["lbfgs"])
        except (np.linalg.LinAlgError, ValueError):
            return out
        if not r.converged:
            return out
        beta, pv = np.asarray(r.fe_params), np.asarray(r.pvalues)
    for j, k in enumerate(fit_groups):
        slope_p, diff = beta[4 * j + 1], beta[4 * j + 3]
        out[k] = {"il2": float(slope_p + diff), "placebo": float(slope_p), "difference": float(diff),
                  "p": float(pv[4 * j + 3])}
    return out


def cafs_test(T: np.ndarray, E: np.ndarray, change: np.ndarray, arm: np.ndarray) -> tuple[float, float]:
    """Combined Assessment of Function and Survival (Berry 2013): ranks every patient, deaths first by time of
    death (earlier is worse), then everyone alive at their last contact by the change of ALSFRS-R from entry;
    returns (two-sided Mann-Whitney p, probability that an IL-2 patient ranks above a placebo patient).
    Patients without a change (no second visit) and alive are left out; NaNs when an arm is empty."""
    from scipy.stats import mannwhitneyu

    ok = E | np.isfinite(change)
    score = np.where(E, T - 1e6, np.nan_to_num(change, nan=0.0))  # any death ranks below any survivor
    x, y = score[ok & (arm == 1)], score[ok & (arm == 0)]
    if len(x) == 0 or len(y) == 0:
        return math.nan, math.nan
    u, p = mannwhitneyu(x, y, alternative="two-sided")
    return float(p), float(u / (len(x) * len(y)))


_Z975 = 1.959963984540054  # the normal quantile lifelines uses for 95% intervals


def _cox_newton(T, E, X, max_iter: int = 50) -> tuple[np.ndarray, np.ndarray, float] | None:
    """Cox partial-likelihood fit by Newton-Raphson with step halving, vectorised in numpy: (coefficients,
    their standard errors, log partial likelihood), or None when there are tied death times (Efron's and
    Breslow's likelihoods then differ, and lifelines' Efron fit is used instead) or the fit does not converge.

    Without tied deaths this is the likelihood lifelines maximises; the tests check coefficients, intervals and
    likelihoods against it. A replicate makes seven Cox fits, which in lifelines took a fifth of its time."""
    T, E, X = np.asarray(T, float), np.asarray(E, bool), np.atleast_2d(np.asarray(X, float).T).T
    if len(np.unique(T[E])) < int(E.sum()):
        return None
    order = np.argsort(T, kind="stable")
    T, E, X = T[order], E[order], X[order]
    start = np.searchsorted(T, T, side="left")[E]  # an event's risk set: everyone with T >= its time
    Xe = X[E]
    p = X.shape[1]
    beta = np.zeros(p)

    def terms(b):
        eta = X @ b
        c = eta.max()
        w = np.exp(eta - c)
        s0 = np.cumsum(w[::-1])[::-1][start]
        s1 = np.cumsum((w[:, None] * X)[::-1], axis=0)[::-1][start]
        s2 = np.cumsum((w[:, None, None] * X[:, :, None] * X[:, None, :])[::-1], axis=0)[::-1][start]
        ll = float(np.sum(Xe @ b) - np.sum(np.log(s0) + c))
        m = s1 / s0[:, None]
        grad = np.sum(Xe - m, axis=0)
        info = np.sum(s2 / s0[:, None, None] - m[:, :, None] * m[:, None, :], axis=0)
        return ll, grad, info

    ll, grad, info = terms(beta)
    for _ in range(max_iter):
        try:
            step = np.linalg.solve(info, grad)
        except np.linalg.LinAlgError:
            return None
        t = 1.0
        while True:
            new = terms(beta + t * step)
            if new[0] >= ll - 1e-12 or t < 1e-8:
                break
            t *= 0.5
        beta = beta + t * step
        converged = abs(new[0] - ll) < 1e-10 and np.max(np.abs(t * step)) < 1e-8
        ll, grad, info = new
        if converged:
            break
    else:
        return None
    if not np.all(np.isfinite(beta)) or np.max(np.abs(beta)) > 20:
        return None  # separation: the likelihood has no finite maximum
    try:
        se = np.sqrt(np.diag(np.linalg.inv(info)))
    except np.linalg.LinAlgError:
        return None
    return beta, se, ll


def _cox(T, E, arm, covariates=None) -> tuple[float, float, float]:
    """Hazard ratio IL-2 vs placebo with 95% CI (the numpy fit :func:`_cox_newton`, or lifelines' CoxPHFitter
    when deaths are tied or it does not converge); NaNs when not estimable."""
    if E[arm == 1].sum() < 1 or E[arm == 0].sum() < 1 or len(np.unique(arm)) < 2:
        return math.nan, math.nan, math.nan
    X = np.column_stack([arm, *(np.asarray(v, float) for v in (covariates or {}).values())])
    fast = _cox_newton(T, E, X)
    if fast is not None:
        b, se = fast[0][0], fast[1][0]
        return float(math.exp(b)), float(math.exp(b - _Z975 * se)), float(math.exp(b + _Z975 * se))
    import pandas as pd
    from lifelines import CoxPHFitter

    df = pd.DataFrame({"T": T, "E": E.astype(int), "arm": arm})
    if covariates:
        for k, v in covariates.items():
            df[k] = v
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            c = CoxPHFitter().fit(df, "T", "E")
        hr = float(c.hazard_ratios_["arm"])
        lo, hi = np.exp(c.confidence_intervals_.loc["arm"].to_numpy())
        return hr, float(lo), float(hi)
    except Exception:  # lifelines raises ConvergenceError and others on degenerate strata
        return math.nan, math.nan, math.nan


def interaction_p(T, E, arm, stratum) -> float:
    """Likelihood-ratio p-value of the treatment x stratum interaction in a Cox model (lifelines).

    Model 0: arm + stratum indicators; model 1: + arm x stratum indicators; twice the log-likelihood difference
    is chi-squared with (strata - 1) degrees of freedom. Only strata with a death in each arm enter (a stratum
    without one carries no information on its own effect); NaN when fewer than two do.
    """
    import pandas as pd
    from lifelines import CoxPHFitter
    from scipy.stats import chi2

    used = [k for k in np.unique(stratum) if E[(stratum == k) & (arm == 1)].sum() > 0
            and E[(stratum == k) & (arm == 0)].sum() > 0]
    if len(used) < 2:
        return math.nan
    m = np.isin(stratum, used)
    df = pd.DataFrame({"T": T[m], "E": E[m].astype(int), "arm": arm[m]})
    for k in used[1:]:
        df[f"s{k}"] = (stratum[m] == k).astype(float)
    base_cols = list(df.columns)
    for k in used[1:]:
        df[f"arm_s{k}"] = df["arm"] * df[f"s{k}"]
    X = df.drop(columns=["T", "E"]).to_numpy(float)
    f0 = _cox_newton(T[m], E[m], X[:, :len(base_cols) - 2])
    f1 = _cox_newton(T[m], E[m], X) if f0 is not None else None
    if f1 is not None:
        return float(chi2.sf(max(0.0, 2 * (f1[2] - f0[2])), len(used) - 1))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            l0 = CoxPHFitter().fit(df[base_cols], "T", "E").log_likelihood_
            l1 = CoxPHFitter().fit(df, "T", "E").log_likelihood_
    except Exception:  # degenerate data: lifelines raises ConvergenceError and others
        return math.nan
    return float(chi2.sf(max(0.0, 2 * (l1 - l0)), len(used) - 1))


def _logrank(T, E, arm) -> float:
    """Two-group log-rank p-value (the Mantel-Haenszel statistic, ties as in lifelines' ``logrank_test``, which
    the tests check it against to 1e-9). Vectorised: the replicates run it four times each."""
    from scipy.stats import chi2

    if len(np.unique(arm)) < 2 or E.sum() == 0:
        return math.nan
    T, E, g = np.asarray(T, float), np.asarray(E, bool), np.asarray(arm) == 1
    times = np.unique(T[E])
    at_risk = T[None, :] >= times[:, None]
    n, n1 = at_risk.sum(1), (at_risk & g[None, :]).sum(1)
    died = (T[None, :] == times[:, None]) & E[None, :]
    d, d1 = died.sum(1), (died & g[None, :]).sum(1)
    e1 = d * n1 / n
    v = np.where(n > 1, d * (n1 / n) * (1 - n1 / n) * (n - d) / np.maximum(n - 1, 1), 0.0)
    if v.sum() <= 0:
        return math.nan
    return float(chi2.sf((d1.sum() - e1.sum()) ** 2 / v.sum(), 1))


def _km_at(T, E, day) -> float:
    """Kaplan-Meier survival at ``day`` (right-continuous, as lifelines' ``KaplanMeierFitter.predict``; the tests
    check it against lifelines to 1e-12). Vectorised: the replicates run it eight times each."""
    if len(T) == 0:
        return math.nan
    T, E = np.asarray(T, float), np.asarray(E, bool)
    times = np.unique(T[E & (T <= day)])
    if len(times) == 0:
        return 1.0
    n = (T[None, :] >= times[:, None]).sum(1)
    d = ((T[None, :] == times[:, None]) & E[None, :]).sum(1)
    return float(np.prod(1.0 - d / n))


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


#: How power is counted, said on every output that reports it.
POWER_TEST = ("two-sided log-rank p < alpha with the Cox hazard ratio below 1 (benefit of IL-2); "
              "95% Monte-Carlo interval: Wilson score over replicates")


def power_share(p_values, hazard_ratios, alpha: float) -> tuple[float, list[float]]:
    """Share of replicates significant in the direction of benefit, and its 95% Wilson interval.

    A replicate counts when its log-rank p is below ``alpha`` *and* its hazard ratio (IL-2 vs placebo) is
    below 1: a significant harm is not a success. Replicates whose p or HR is not estimable count as failures.
    """
    p = np.asarray(p_values, float)
    hr = np.asarray(hazard_ratios, float)
    hits = np.isfinite(p) & np.isfinite(hr) & (p < alpha) & (hr < 1.0)
    n = len(p)
    if n == 0:
        return math.nan, [math.nan, math.nan]
    k = float(hits.sum())
    z = 1.959963984540054
    phat = k / n
    den = 1 + z * z / n
    centre = (phat + z * z / (2 * n)) / den
    half = z * math.sqrt(phat * (1 - phat) / n + z * z / (4 * n * n)) / den
    return phat, [max(0.0, centre - half), min(1.0, centre + half)]


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


def _replicate_task(design_: TrialDesign, reg: Regimen, spec: PopulationSpec, ss: np.random.SeedSequence,
                    options: BatchOptions, model: CompiledModel | None) -> Replicate:
    return run_replicate(design_, reg, spec, np.random.default_rng(ss), model, options)


def run_trial(design_: TrialDesign, regimen: "Regimen | str", spec: PopulationSpec, replicates: int, seed: int,
              *, model: CompiledModel | None = None, options: BatchOptions = TRIAL_OPTIONS,
              progress: Callable[[int, int], None] | None = None, scheduler: object = None) -> TrialResult:
    """Run ``replicates`` virtual trials; replicate k uses the generator spawned from ``seed`` as its k-th child,
    so results are reproducible by seed, whatever the backend, and a replicate does not depend on how many
    others run. ``scheduler``: see :func:`il2als.parallel.run_tasks` (default: this process, numba threads)."""
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
    """Power (:data:`POWER_TEST`, overall) with its Monte-Carlo interval and the median hazard ratio for each
    number of patients per arm. Survival only: ALSFRS-R is summarised by per-patient slopes, not the mixed model."""
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
