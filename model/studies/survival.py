"""Survival and longitudinal statistics of a trial replicate: Cox, log-rank, Kaplan-Meier, REML random slopes, CAFS."""

from __future__ import annotations

import math
import warnings

import numpy as np

from il2als.results.metrics import DAYS_PER_MONTH

__all__ = ["kaplan_meier", "alsfrs_mixed_model", "cafs_test", "interaction_p", "POWER_TEST", "power_share"]


_Z975 = 1.959963984540054  # the normal quantile lifelines uses for 95% intervals


def _normal_sf(z: float) -> float:
    """P(Z > z) for a standard normal Z: ``erfc(z / sqrt 2) / 2``, what ``scipy.special.ndtr(-z)`` gives (tested
    to 1e-12 relative). The statistics take their tails from :mod:`math`: importing scipy.special cost every trial
    worker ~0.16 s."""
    return 0.5 * math.erfc(z / math.sqrt(2.0))


def _chi2_sf(df: int, x: float) -> float:
    """P(X > x) for X chi-squared with a whole number ``df`` >= 1 of degrees of freedom, in closed form: the
    regularised upper incomplete gamma function Q(df/2, x/2) as a finite sum (with erfc for odd ``df``); what
    ``scipy.special.chdtrc`` gives (tested to 1e-12 relative for df 1-8).

    References
    ----------
    Abramowitz M, Stegun IA. Handbook of Mathematical Functions, 26.4.4-26.4.5 (1964).
    """
    if not (isinstance(df, (int, np.integer)) and df >= 1):
        raise ValueError(f"df = {df!r}: the closed form needs a whole number of degrees of freedom >= 1")
    if not x > 0:
        return 1.0 if x == x else math.nan
    h = 0.5 * x
    if df % 2 == 0:  # Q(m, h) = e^-h sum_{k<m} h^k / k!
        term, total = 1.0, 1.0
        for k in range(1, df // 2):
            term *= h / k
            total += term
        return min(1.0, math.exp(-h) * total)
    # Q(m + 1/2, h) = erfc(sqrt h) + e^-h sum_{k<m} h^(k+1/2) / Gamma(k + 3/2)
    total, term = math.erfc(math.sqrt(h)), math.sqrt(h) / math.gamma(1.5)
    for k in range(df // 2):
        total += math.exp(-h) * term
        term *= h / (k + 1.5)
    return min(1.0, total)


def _reml_objective(y: np.ndarray, X: np.ndarray, Z: np.ndarray, pid: np.ndarray):
    """The restricted likelihood of ``y = X beta + Z b_patient + e``, ``b ~ N(0, G)`` (2 x 2, unstructured),
    ``e ~ N(0, sigma^2)``, over ``theta = (log sigma^2, log L00, L10, log L11)`` with ``G = L L'``.

    Returns ``(objective, parts, theta0)``: ``objective(theta)`` is -2 REML log-likelihood (constants dropped) and
    its analytic gradient ``(4,)`` (1e300 and zeros where the covariance is not positive definite); ``parts(theta)``
    gives ``X' V^-1 X`` and ``X' V^-1 y`` (and more) for the estimates; ``theta0`` is the starting point
    (:func:`_two_stage_start`).
    The likelihood is statsmodels' (Woodbury per patient over the patients' sufficient statistics: each evaluation
    is a few 2 x 2 and p x p products over the patients, ~30 us)."""
    ids, inv = np.unique(pid, return_inverse=True)
    N = len(ids)

    order = np.argsort(inv, kind="stable")
    starts = np.searchsorted(inv[order], np.arange(N))

    def per(a, b):  # sum over each patient's rows of a_r b_r^T (rows grouped by patient: one reduceat)
        return np.add.reduceat((a[:, :, None] * b[:, None, :])[order], starts, axis=0)

    XX, XZ, ZZ = per(X, X), per(X, Z), per(Z, Z)
    Xy, Zy = per(X, y[:, None])[..., 0], per(Z, y[:, None])[..., 0]
    yy = np.bincount(inv, y * y, N)
    n = np.bincount(inv, minlength=N).astype(float)

    A, B = XZ[:, :, 0], XZ[:, :, 1]  # (N, p): X' Z by patient, intercept and slope columns
    Zy0, Zy1 = Zy[:, 0], Zy[:, 1]
    XXs, Xys, yys, ns = XX.sum(0), Xy.sum(0), yy.sum(), float(np.sum(n))
    zz00, zz01, zz11 = ZZ[:, 0, 0], ZZ[:, 0, 1], ZZ[:, 1, 1]

    p = X.shape[1]

    def parts(theta):
        # M = G^-1 + Z'Z / s2 per patient, inverted in closed form (2 x 2); the sums over patients are matrix
        # products (no batched inverse, no einsum: ~20x faster, the same numbers to round-off)
        s2 = math.exp(theta[0])
        L = np.array([[math.exp(theta[1]), 0.0], [theta[2], math.exp(theta[3])]])
        Gi = np.linalg.inv(L @ L.T)
        m00, m01, m11 = Gi[0, 0] + zz00 / s2, Gi[0, 1] + zz01 / s2, Gi[1, 1] + zz11 / s2
        det = m00 * m11 - m01 * m01
        if not np.all(det > 0):
            raise np.linalg.LinAlgError("M is not positive definite")
        i00, i01, i11 = m11 / det, -m01 / det, m00 / det
        W0, W1 = A * i00[:, None] + B * i01[:, None], A * i01[:, None] + B * i11[:, None]
        XVX = XXs / s2 - (W0.T @ A + W1.T @ B) / s2 ** 2
        XVy = Xys / s2 - (W0.T @ Zy0 + W1.T @ Zy1) / s2 ** 2
        yVy = yys / s2 - float(np.sum(Zy0 * Zy0 * i00 + 2 * Zy0 * Zy1 * i01 + Zy1 * Zy1 * i11)) / s2 ** 2
        logdetV = ns * theta[0] + N * 2 * (theta[1] + theta[3]) + float(np.sum(np.log(det)))
        return XVX, XVy, yVy, logdetV, (s2, L, i00, i01, i11)

    def objective(theta):
        """-2 REML log-likelihood (constants dropped) and its gradient in ``theta``.

        With P = V^-1 - V^-1 X C X' V^-1 (C = (X'V^-1X)^-1) and r = y - X beta, d/dG = S, the sum over patients
        of Z'PZ - (Z'V^-1 r)(Z'V^-1 r)' (Harville 1977); G = L L' gives d/dL = 2 S L; and because V is
        homogeneous of degree one in (s2, G), s2 d/ds2 = (n - p) - r'V^-1 r - tr(G S)."""
        try:
            XVX, XVy, yVy, logdetV, (s2, L, i00, i01, i11) = parts(theta)
            sign, logdet_x = np.linalg.slogdet(XVX)
            C = np.linalg.inv(XVX)
        except (np.linalg.LinAlgError, OverflowError):
            return 1e300, np.zeros(4)
        if sign <= 0:
            return 1e300, np.zeros(4)
        beta = C @ XVy
        rVr = yVy - float(XVy @ beta)
        # K M^-1 per patient (K = Z'Z), then Z'V^-1 Z, Z'V^-1 X (two rows) and Z'V^-1 r
        k00, k01 = zz00 * i00 + zz01 * i01, zz00 * i01 + zz01 * i11
        k10, k11 = zz01 * i00 + zz11 * i01, zz01 * i01 + zz11 * i11
        q = s2 ** 2
        a00 = zz00 / s2 - (k00 * zz00 + k01 * zz01) / q
        a01 = zz01 / s2 - (k00 * zz01 + k01 * zz11) / q
        a11 = zz11 / s2 - (k10 * zz01 + k11 * zz11) / q
        b0 = A / s2 - (k00[:, None] * A + k01[:, None] * B) / q
        b1 = B / s2 - (k10[:, None] * A + k11[:, None] * B) / q
        u0 = Zy0 / s2 - (k00 * Zy0 + k01 * Zy1) / q - b0 @ beta
        u1 = Zy1 / s2 - (k10 * Zy0 + k11 * Zy1) / q - b1 @ beta
        b0C = b0 @ C
        S = np.empty((2, 2))
        S[0, 0] = a00.sum() - float(np.sum(b0C * b0)) - float(u0 @ u0)
        S[0, 1] = S[1, 0] = a01.sum() - float(np.sum(b0C * b1)) - float(u0 @ u1)
        S[1, 1] = a11.sum() - float(np.sum((b1 @ C) * b1)) - float(u1 @ u1)
        dL = 2 * S @ L
        G = L @ L.T
        grad = np.array([(ns - p) - rVr - float(np.sum(G * S)), dL[0, 0] * L[0, 0], dL[1, 0], dL[1, 1] * L[1, 1]])
        value = float(logdetV + logdet_x + rVr)
        return (value, grad) if math.isfinite(value) and np.all(np.isfinite(grad)) else (1e300, np.zeros(4))

    return objective, parts, _two_stage_start(zz00, zz01, zz11, Zy0, Zy1, yy, n, XXs, Xys, X, y)


def _two_stage_start(zz00, zz01, zz11, Zy0, Zy1, yy, n, XXs, Xys, X, y) -> np.ndarray:
    """A starting ``theta`` for the REML fit from each patient's own least-squares line (the two-stage
    estimates, from the per-patient sums): the pooled residual variance, and the covariance of the patients'
    intercepts and slopes as G. It starts the fit within a few Newton steps of the optimum (half the likelihood
    evaluations of a start from the ordinary least-squares fit). That start is the fallback when fewer than three
    patients have three scores or the estimates are degenerate."""
    det = zz00 * zz11 - zz01 * zz01
    own = (n >= 3) & (det > 1e-9 * zz00 * zz11)
    if own.sum() >= 3:
        d = det[own]
        b0 = (zz11[own] * Zy0[own] - zz01[own] * Zy1[own]) / d
        b1 = (zz00[own] * Zy1[own] - zz01[own] * Zy0[own]) / d
        s2 = float(np.sum(yy[own] - b0 * Zy0[own] - b1 * Zy1[own]) / np.sum(n[own] - 2))
        try:
            L = np.linalg.cholesky(np.cov(np.vstack([b0, b1])))
            theta = np.array([math.log(s2), math.log(L[0, 0]), L[1, 0], math.log(L[1, 1])])
            if np.all(np.isfinite(theta)):
                return theta
        except (np.linalg.LinAlgError, ValueError):
            pass
    beta_ols, *_ = np.linalg.lstsq(XXs, Xys, rcond=None)  # the normal equations, from the sums already made
    s0 = float(np.var(y - X @ beta_ols)) or 1.0
    return np.array([math.log(s0 / 2), math.log(math.sqrt(s0 / 2)), 0.0, math.log(0.1 * math.sqrt(s0))])


def _newton_minimise(fun, x0: np.ndarray, *, gtol: float = 1e-7, ftol: float = 1e-12,
                     max_iter: int = 100) -> tuple[np.ndarray, bool]:
    """Minimise a smooth function of a few variables from its value and analytic gradient, ``fun(x) -> (f, g)``.

    Newton steps on the Hessian from forward differences of the gradient (n more gradients an iteration), its
    eigenvalues taken in absolute value and bounded away from zero (so every step goes downhill, also where the
    function is not convex), and a backtracking (Armijo) line search. Returns ``(x, converged)``: converged when
    the largest gradient component is below ``gtol``, when a step lowered ``f`` by no more than
    ``ftol * max(|f|, 1)`` (L-BFGS-B's test, at the same ``ftol`` the fit used with it), or when even a full
    Newton step would lower it by less than a hundredth of that (the Newton decrement ``g' H^-1 g / 2``: the
    gradient of a likelihood summed over ~1e4 terms is itself only good to ~1e-4). For the REML fit's four
    variance parameters it takes 3-5 iterations from :func:`_two_stage_start`."""
    x = np.asarray(x0, float).copy()
    f, g = fun(x)
    if f >= 1e299:
        return x, False
    n = len(x)
    for _ in range(max_iter):
        if np.max(np.abs(g)) < gtol:
            return x, True
        H = np.empty((n, n))
        for i in range(n):
            h = 1e-6 * max(1.0, abs(x[i]))
            xi = x.copy()
            xi[i] += h
            fi, gi = fun(xi)
            if fi >= 1e299:  # the difference left the domain: take it on the other side
                xi[i] = x[i] - h
                gi = -fun(xi)[1]
                H[:, i] = (gi + g) / h
            else:
                H[:, i] = (gi - g) / h
        w, U = np.linalg.eigh((H + H.T) / 2)
        w = np.maximum(np.abs(w), 1e-8 * max(1.0, float(np.max(np.abs(w)))))
        step = -U @ ((U.T @ g) / w)
        slope = float(g @ step)  # -(g' H^-1 g): twice the decrement, negated
        if -0.5 * slope <= 0.01 * ftol * max(1.0, abs(f)):
            return x, True
        t = 1.0
        while True:
            fn, gn = fun(x + t * step)
            if fn <= f + 1e-4 * t * slope:
                break
            t *= 0.5
            if t < 1e-12:
                return x, -0.5 * slope <= ftol * max(1.0, abs(f))
        reduction = f - fn
        x, f, g = x + t * step, fn, gn
        if reduction <= ftol * max(1.0, abs(f), abs(f + reduction)):
            return x, True
    return x, False


def _reml_random_slopes(y: np.ndarray, X: np.ndarray, Z: np.ndarray, pid: np.ndarray):
    """REML fit of ``y = X beta + Z b_patient + e``, ``b ~ N(0, G)`` (2 x 2, unstructured), ``e ~ N(0, sigma^2)``
    (:func:`_reml_objective`, minimised by :func:`_newton_minimise`): (beta, two-sided normal Wald p of each beta),
    or None when the optimiser does not converge or the fixed-effect information is singular (the caller then uses
    statsmodels' MixedLM).

    beta is statsmodels' to the optimisers' tolerance (tested, 1e-4); the fit takes a few ms where MixedLM took
    0.3-0.8 s, four times per trial replicate, and needs no scipy.optimize (whose import cost every trial worker
    ~0.13 s). The Wald p uses the model-based covariance ``(X' V^-1 X)^-1`` (what nlme and lme4 report);
    statsmodels inverts the full observed information, which moves p by up to ~1% relative."""
    objective, parts, theta0 = _reml_objective(y, X, Z, pid)
    theta, converged = _newton_minimise(objective, theta0)
    if not converged:
        return None
    XVX, XVy, *_ = parts(theta)
    try:
        cov = np.linalg.inv(XVX)
    except np.linalg.LinAlgError:
        return None
    beta = cov @ XVy
    z = beta / np.sqrt(np.diag(cov))
    return beta, np.array([2 * _normal_sf(abs(float(v))) for v in z])


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
    ok = E | np.isfinite(change)
    score = np.where(E, T - 1e6, np.nan_to_num(change, nan=0.0))  # any death ranks below any survivor
    x, y = score[ok & (arm == 1)], score[ok & (arm == 0)]
    if len(x) == 0 or len(y) == 0:
        return math.nan, math.nan
    u, p = _mann_whitney(x, y)
    return float(p), float(u / (len(x) * len(y)))


def _mann_whitney(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """Two-sided Mann-Whitney test of ``x`` against ``y``: (U of ``x``, p), what ``scipy.stats.mannwhitneyu``
    returns with its defaults (tested equal): the normal approximation with the tie and continuity corrections,
    or, when an arm has at most 8 values and none are tied, scipy's exact distribution. Written out because
    importing scipy.stats costs ~0.4 s of every worker's start for this one test.

    References
    ----------
    Mann HB, Whitney DR. Ann Math Stat 1947;18:50-60 (U); the tie-corrected variance as in scipy.stats.
    """
    n1, n2 = len(x), len(y)
    _, inverse, t = np.unique(np.concatenate([x, y]), return_inverse=True, return_counts=True)
    ranks = (np.cumsum(t) - (t - 1) / 2.0)[inverse]  # average ranks of tied values
    U1 = float(np.sum(ranks[:n1])) - n1 * (n1 + 1) / 2
    U = max(U1, n1 * n2 - U1)
    if (n1 <= 8 or n2 <= 8) and np.all(t == 1):
        from scipy.stats import mannwhitneyu

        return U1, float(mannwhitneyu(x, y, alternative="two-sided").pvalue)
    n = n1 + n2
    tf = t.astype(float)
    with np.errstate(divide="ignore", invalid="ignore"):  # all values tied: s = 0, p = 1 (as scipy)
        s = np.sqrt(np.float64(n1 * n2 / 12 * ((n + 1) - float(np.sum(tf ** 3 - tf)) / (n * (n - 1)))))
        z = np.float64(U - n1 * n2 / 2 - 0.5) / s
    return U1, float(np.clip(2 * _normal_sf(float(z)), 0.0, 1.0))


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
    used = [k for k in np.unique(stratum) if E[(stratum == k) & (arm == 1)].sum() > 0
            and E[(stratum == k) & (arm == 0)].sum() > 0]
    if len(used) < 2:
        return math.nan
    m = np.isin(stratum, used)
    s = [(stratum[m] == k).astype(float) for k in used[1:]]
    a = arm[m].astype(float)
    X = np.column_stack([a, *s, *(a * v for v in s)])  # arm, stratum indicators, arm x stratum
    n_base = 1 + len(s)
    f0 = _cox_newton(T[m], E[m], X[:, :n_base])
    f1 = _cox_newton(T[m], E[m], X) if f0 is not None else None
    if f1 is not None:
        return _chi2_sf(len(used) - 1, max(0.0, 2 * (f1[2] - f0[2])))
    # tied deaths or no convergence: lifelines (imported only here: it costs ~1.4 s a process)
    import pandas as pd
    from lifelines import CoxPHFitter

    names = ["arm", *(f"s{k}" for k in used[1:]), *(f"arm_s{k}" for k in used[1:])]
    df = pd.DataFrame({"T": T[m], "E": E[m].astype(int), **dict(zip(names, X.T))})
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            l0 = CoxPHFitter().fit(df[["T", "E", *names[:n_base]]], "T", "E").log_likelihood_
            l1 = CoxPHFitter().fit(df, "T", "E").log_likelihood_
    except Exception:  # degenerate data: lifelines raises ConvergenceError and others
        return math.nan
    return _chi2_sf(len(used) - 1, max(0.0, 2 * (l1 - l0)))


def _logrank(T, E, arm) -> float:
    """Two-group log-rank p-value (the Mantel-Haenszel statistic, ties as in lifelines' ``logrank_test``, which
    the tests check it against to 1e-9). Vectorised: the replicates run it four times each."""
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
    return _chi2_sf(1, float((d1.sum() - e1.sum()) ** 2 / v.sum()))


def kaplan_meier(T: np.ndarray, E: np.ndarray, grid: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Kaplan-Meier survival and the number at risk at each day of ``grid``.

    Parameters
    ----------
    T : (n,) event or censoring times [day]; E : (n,) True where the patient died; grid : (G,) days.

    Returns
    -------
    survival (G,) [1], right-continuous as lifelines' estimate (equal to :func:`_km_at` at every point), and
    at_risk (G,) [patients], the patients with ``T >= day``."""
    T, E, grid = np.asarray(T, float), np.asarray(E, bool), np.asarray(grid, float)
    at_risk = (T[None, :] >= grid[:, None]).sum(1)
    times = np.unique(T[E])
    if len(times) == 0:
        return np.ones(len(grid)), at_risk
    n = (T[None, :] >= times[:, None]).sum(1)
    d = ((T[None, :] == times[:, None]) & E[None, :]).sum(1)
    S = np.cumprod(1.0 - d / n)
    k = np.searchsorted(times, grid, side="right") - 1
    return np.where(k >= 0, S[np.maximum(k, 0)], 1.0), at_risk


def _km_at(T, E, day) -> float:
    """Kaplan-Meier survival at ``day`` (:func:`kaplan_meier` at one time; NaN for no patients). The replicates
    run it eight times each."""
    if len(T) == 0:
        return math.nan
    return float(kaplan_meier(T, E, np.array([float(day)]))[0][0])


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
