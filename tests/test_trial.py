"""Virtual population, scenarios and virtual trials (issue #4)."""

import json
import subprocess
import sys

import numpy as np
import pytest

from il2als.errors import Il2alsError, ParameterError
from il2als.inputs import load_parameters, load_population_spec
from il2als.results import stratum_of
from il2als.studies import METRICS, death_times, describe_cohort, design, run_trial, sample_population, slow_vs_fast
from il2als.studies.survival import _cox


@pytest.fixture(scope="module")
def spec():
    return load_population_spec()


def test_population_matches_published_natural_history(spec):
    d = describe_cohort(sample_population(spec, 3000, np.random.default_rng(2024)))
    assert d["alsfrs_slope_mean"] == pytest.approx(-0.99, abs=0.08)  # PRO-ACT 2018
    assert d["pnfh_below_750"] == pytest.approx(0.09, abs=0.03)  # MIROCALS strata shares
    assert d["pnfh_750_3700"] == pytest.approx(0.70, abs=0.04)
    assert d["pnfh_above_3700"] == pytest.approx(0.21, abs=0.03)


def test_population_respects_eligibility_and_is_reproducible(spec):
    a = sample_population(spec, 300, np.random.default_rng(5))
    b = sample_population(spec, 300, np.random.default_rng(5))
    assert np.array_equal(a.params, b.params)
    cov = a.covariates
    assert np.all((cov["age"] >= 18) & (cov["age"] <= 76))
    assert np.all(cov["symptom_duration"] <= 24)
    assert np.all(cov["alsfrs_r_screening"] >= 30)
    assert np.all((cov["run_in"] >= 12) & (cov["run_in"] <= 18))
    assert a.n_screened > 300  # some screened patients were ineligible


def test_cox_on_our_death_times_recovers_a_known_hazard_ratio():
    rng = np.random.default_rng(11)
    n, lam, hr = 4000, 1.5e-3, 0.6
    t = np.arange(0, 641.0)
    arm = np.repeat([0, 1], n // 2)
    H = np.outer(lam * np.where(arm == 1, hr, 1.0), t)  # cumulative hazards, known HR
    T, E = death_times(H, t, rng)
    est, lo, hi = _cox(T, E, arm)
    assert lo < hr < hi
    assert est == pytest.approx(hr, rel=0.1)
    # and the exponential death times have the right mean hazard
    assert E[arm == 0].mean() == pytest.approx(1 - np.exp(-lam * 640), abs=0.03)


def test_strata_by_pnfh_cutoffs():
    assert list(stratum_of(np.array([100, 750, 2000, 3700, 5000.0]), (750, 3700))) == [0, 1, 1, 1, 2]


def test_scenario_table_compares_arms_within_groups(spec):
    res = slow_vs_fast("mirocals", spec, 40, seed=3, profiles={p: load_parameters(p) for p in ("slow", "fast")})
    rows = {(r["group"], r["arm"]): r for r in res.rows}
    assert set(rows) == {("slow", "placebo"), ("slow", "mirocals"), ("fast", "placebo"),
                         ("fast", "mirocals")}
    for k, u in METRICS.items():
        assert f"{k} [{u}] median" in rows[("slow", "placebo")]
    for g in ("slow", "fast"):
        assert rows[(g, "placebo")]["treg_peak_fold [1] median"] == pytest.approx(1.0)
        assert rows[(g, "mirocals")]["treg_peak_fold [1] median"] > 1.3
        assert rows[(g, "mirocals")]["ccl2_csf_change [%] median"] < 0
        assert rows[(g, "mirocals")]["effector_peak [1] median"] < 1.15
    # fast patients: higher neurofilament, faster decline, worse survival
    assert rows[("fast", "placebo")]["pnfh_csf_baseline [pg/mL] median"] > rows[("slow", "placebo")]["pnfh_csf_baseline [pg/mL] median"]
    assert rows[("fast", "placebo")]["alsfrs_r_slope [points/month] median"] < -1.0 < rows[("slow", "placebo")]["alsfrs_r_slope [points/month] median"]
    eff = {e["group"]: e for e in res.effects}
    assert eff["slow"]["delta_ccl2_csf_change [%] median"] < 0
    assert eff["slow"]["delta_mn_loss [%] median"] <= 0  # IL-2 can only slow the inflammatory part of the loss


def test_trial_is_reproducible_by_seed_and_summarised(spec):
    d = design("mirocals")
    a = run_trial(d, "mirocals", spec, 2, seed=42).summary()
    b = run_trial(d, "mirocals", spec, 2, seed=42).summary()
    assert "seconds" not in a  # timings live in the manifest: the same seed gives byte-identical results
    assert json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)
    for key in ("n_per_arm", "replicates", "seed", "survival_640d", "hr_overall", "hr_by_stratum", "alsfrs_slope",
                "power_overall", "power_by_stratum"):
        assert key in a
    assert set(a["hr_by_stratum"]) == {"very_low", "low", "high"}
    assert a["n_per_arm"] == 110
    assert 0 <= a["power_overall"] <= 1
    assert 0.2 < a["survival_640d"]["placebo"] < 0.95


def test_bad_trial_and_population_input(spec):
    with pytest.raises(Il2alsError, match="did you mean 'mirocals'"):
        design("mirocal")
    with pytest.raises(Il2alsError, match="replicates"):
        run_trial(design("mirocals"), "mirocals", spec, 0, 1)
    with pytest.raises(ParameterError, match="whole number"):
        sample_population(spec, 0, np.random.default_rng(0))


def test_trial_and_scenario_commands(tmp_path):
    run = lambda *a: subprocess.run([sys.executable, "-m", "il2als", *a], capture_output=True, text=True, timeout=900)
    r = run("trial", "--replicates", "2", "--seed", "4", "--out", str(tmp_path / "t"))
    assert r.returncode == 0, r.stderr
    s = json.loads((tmp_path / "t" / "summary.json").read_text())
    assert s["replicates"] == 2 and s["seed"] == 4
    for f in ("km.png", "forest.png", "replicates.csv", "manifest.json"):
        assert (tmp_path / "t" / f).stat().st_size > 100
    r = run("scenario", "slow-vs-fast", "--n", "20", "--days", "120", "--out", str(tmp_path / "s"))
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "s" / "scenario.png").read_bytes()[:4] == b"\x89PNG"
    head = (tmp_path / "s" / "scenario.csv").read_text().splitlines()[0]
    assert "alsfrs_r_slope [points/month] median" in head
    for bad, msg in ((("trial", "--replicates", "0"), "--replicates"), (("scenario", "slwo-vs-fast"), "did you mean"),
                     (("trial", "--design", "x"), "unknown trial design"), (("scenario", "strata", "--regimen", "none"), "no doses")):
        r = run(*bad, "--out", str(tmp_path / "bad"))
        assert r.returncode == 2 and msg in r.stderr and "Traceback" not in r.stderr
        assert not (tmp_path / "bad").exists()


def test_compare_regimens_power_and_population_commands(tmp_path):
    run = lambda *a: subprocess.run([sys.executable, "-m", "il2als", *a], capture_output=True, text=True, timeout=900)
    r = run("compare-regimens", "--regimens", "mirocals,mirocals-6miu", "--n", "60", "--days", "90", "--out", str(tmp_path / "c"))
    assert r.returncode == 0, r.stderr
    rows = (tmp_path / "c" / "effects.csv").read_text().splitlines()
    assert rows[0].startswith("parameter_set,group,arm,versus") and len(rows) >= 1 + 2 * 2
    assert all(r.startswith("mirocals-informed,") for r in rows[1:])  # the default set, named on every row
    assert (tmp_path / "c" / "regimens.png").stat().st_size > 10_000
    r = run("power", "--n-per-arm", "20,40", "--replicates", "2", "--enrich", ":3700", "--days", "120", "--out", str(tmp_path / "p"))
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "p" / "power.csv").read_text().splitlines()[0].startswith("parameter_set,n_per_arm,power")
    assert "parameter set 'mirocals-informed'" in r.stderr
    r = run("population", "--n", "150", "--seed", "3", "--out", str(tmp_path / "q"))
    assert r.returncode == 0, r.stderr
    head = (tmp_path / "q" / "cohort.csv").read_text().splitlines()[0]
    assert "age [year]" in head and "pnfh_csf_baseline [pg/mL]" in head and "k_autonomous [1/day]" in head
    r = run("power", "--n-per-arm", "10,x", "--out", str(tmp_path / "bad"))
    assert r.returncode == 2 and "whole numbers" in r.stderr and not (tmp_path / "bad").exists()


def test_enrichment_restricts_baseline_pnfh(spec):
    from il2als.solve import simulate_population

    c = sample_population(spec.enriched(0, 3700), 200, np.random.default_rng(8))
    pn = simulate_population(c.params, "placebo", "1 day", outputs=["pnfh_csf"])["pnfh_csf"][:, 0]
    assert pn.max() <= 3700 * (1 + 1e-6)


def test_fast_kaplan_meier_and_logrank_equal_lifelines():
    """The vectorised KM point estimate and log-rank test used per replicate agree with lifelines, ties included."""
    import numpy as np
    from lifelines import KaplanMeierFitter
    from lifelines.statistics import logrank_test

    from il2als.studies.survival import _km_at, _logrank

    rng = np.random.default_rng(4)
    for _ in range(20):
        n = int(rng.integers(5, 200))
        T = np.minimum(np.round(rng.exponential(400, n), int(rng.integers(0, 2))), 640.0)  # rounding makes ties
        E = (T < 640) & (rng.random(n) < 0.9)
        arm = (rng.random(n) < 0.5).astype(int)
        for day in (100.0, 640.0):
            assert _km_at(T, E, day) == pytest.approx(float(KaplanMeierFitter().fit(T, E).predict(day)), abs=1e-12)
        if len(np.unique(arm)) == 2 and E.sum():
            ref = logrank_test(T[arm == 1], T[arm == 0], E[arm == 1], E[arm == 0]).p_value
            assert _logrank(T, E, arm) == pytest.approx(ref, rel=1e-9, abs=1e-15)


def _survival_data(seed, n=220, tie=False):
    rng = np.random.default_rng(seed)
    arm = rng.integers(0, 2, n).astype(float)
    cov = rng.normal(size=n)
    stratum = rng.integers(0, 3, n)
    T = rng.exponential(1 / (0.05 * np.exp(-0.3 * arm + 0.2 * cov + 0.3 * stratum)))
    C = np.minimum(rng.uniform(5, 40, n), 21.0)
    E = T <= C
    T = np.minimum(T, C)
    if tie:
        T = np.round(T)  # tied deaths: Efron's likelihood, lifelines' fit
    return T, E, arm, cov, stratum


@pytest.mark.parametrize("n1, n2, ties", [(110, 110, True), (110, 95, False), (12, 30, True), (5, 40, False),
                                          (3, 7, False), (6, 6, True), (2, 2, True), (1, 1, False)])
def test_cafs_mann_whitney_equals_scipy(n1, n2, ties):
    """Issue #16: the CAFS rank test without scipy.stats (~0.4 s of a worker's start): U and the two-sided p of
    scipy.stats.mannwhitneyu's defaults: normal approximation with tie and continuity corrections, exact for a
    small arm without ties; all values tied gives p = 1."""
    from scipy.stats import mannwhitneyu

    from il2als.studies.survival import _mann_whitney

    rng = np.random.default_rng(n1 * 100 + n2)
    for _ in range(20):
        x, y = rng.normal(0.3, 1, n1), rng.normal(0, 1, n2)
        if ties:  # ALSFRS-R changes are whole points; deaths tie rarely
            x, y = np.round(2 * x), np.round(2 * y)
        want = mannwhitneyu(x, y, alternative="two-sided")
        u, p = _mann_whitney(x, y)
        assert u == want.statistic and p == pytest.approx(want.pvalue, rel=1e-12, abs=1e-300), (x, y)
    assert _mann_whitney(np.zeros(9), np.zeros(12)) == (54.0, 1.0) == tuple(mannwhitneyu(np.zeros(9), np.zeros(12)))


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("tie", [False, True])
def test_numpy_cox_equals_lifelines(seed, tie):
    """Issue #16: the per-replicate Cox fits run in numpy (0.3 ms instead of 17 ms); the same hazard ratio,
    interval and interaction likelihood-ratio p as lifelines (within its own convergence tolerance)."""
    import warnings

    import pandas as pd
    from lifelines import CoxPHFitter
    from scipy.stats import chi2

    from il2als.studies import interaction_p
    from il2als.studies.survival import _cox

    T, E, arm, cov, stratum = _survival_data(seed, tie=tie)
    df = pd.DataFrame({"T": T, "E": E.astype(int), "arm": arm, "cov": cov})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        c = CoxPHFitter().fit(df, "T", "E")
    want = (c.hazard_ratios_["arm"], *np.exp(c.confidence_intervals_.loc["arm"].to_numpy()))
    assert _cox(T, E, arm, {"cov": cov}) == pytest.approx(want, rel=1e-5)
    d = pd.DataFrame({"T": T, "E": E.astype(int), "arm": arm, "s1": (stratum == 1) * 1.0, "s2": (stratum == 2) * 1.0})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        l0 = CoxPHFitter().fit(d, "T", "E").log_likelihood_
        d["arm_s1"], d["arm_s2"] = d.arm * d.s1, d.arm * d.s2
        l1 = CoxPHFitter().fit(d, "T", "E").log_likelihood_
    assert interaction_p(T, E, arm, stratum) == pytest.approx(chi2.sf(2 * (l1 - l0), 2), abs=1e-5)


def _random_slopes_data(seed: int = 3):
    """A random-intercept, random-slope dataset with unequal visits per patient: y, X, Z, patient ids."""
    rng = np.random.default_rng(seed)
    N, V = 60, 7
    pid, t = np.repeat(np.arange(N), V), np.tile(np.arange(V) * 3.0, N)
    arm = np.repeat(rng.integers(0, 2, N), V)
    X, Z = np.column_stack([np.ones_like(t), t, arm, arm * t]), np.column_stack([np.ones_like(t), t])
    b = rng.normal(0, [2.0, 0.3], (N, 2))
    y = 40 - 0.9 * t + 0.2 * arm * t + b[pid, 0] + b[pid, 1] * t + rng.normal(0, 1.0, len(t))
    keep = rng.uniform(size=len(t)) > 0.2
    return y[keep], X[keep], Z[keep], pid[keep]


def test_normal_and_chi_squared_tails_equal_scipys():
    """Issue #16: the statistics' distribution tails in closed form equal scipy.special's (the normal survival
    function, and chi-squared with 1-8 degrees of freedom), from the centre to 1e-300; bad degrees of freedom are
    refused rather than approximated."""
    from scipy.special import chdtrc, ndtr

    from il2als.studies import survival

    for z in np.linspace(-8.0, 37.0, 901):
        assert survival._normal_sf(float(z)) == pytest.approx(ndtr(-z), rel=1e-12)
    for df in range(1, 9):
        assert survival._chi2_sf(df, 0.0) == 1.0
        for x in np.geomspace(1e-8, 300.0, 300):
            assert survival._chi2_sf(df, float(x)) == pytest.approx(chdtrc(df, x), rel=1e-12, abs=1e-300)
    for bad in (0, 1.5, -1):
        with pytest.raises(ValueError, match="whole number of degrees of freedom"):
            survival._chi2_sf(bad, 1.0)


def test_reml_gradient_is_the_derivative_of_the_restricted_likelihood():
    """Issue #16: the optimiser gets the analytic REML gradient (Harville's formula, chained through G = L L' and
    the scale identity for the residual variance); it equals central differences of the same objective."""
    from il2als.studies import survival

    f, _, _ = survival._reml_objective(*_random_slopes_data())
    for theta in (np.array([0.0, 0.7, 0.0, -1.2]), np.array([0.1, 0.5, -0.2, -1.0]), np.array([1.0, 1.5, 0.3, 0.2])):
        value, grad = f(theta)
        fd = [(f(theta + h)[0] - f(theta - h)[0]) / 2e-4 for h in np.eye(4) * 1e-4]
        assert grad == pytest.approx(fd, rel=1e-6, abs=1e-5)


def test_reml_newton_reaches_the_optimum_scipy_finds_and_trial_workers_need_no_scipy_optimize():
    """Issue #16: the REML fit's own Newton minimiser stops where the gradient vanishes, at the optimum that
    scipy's L-BFGS-B finds from the same start (same -2 log-likelihood to 1e-9, same variance parameters to 1e-4);
    from a poor start too; the two-stage start (each patient's own line) is within a few steps of it; a function with no minimum is reported as not converged; and a trial replicate's
    analysis leaves scipy.optimize unimported (its import cost every worker ~0.13 s)."""
    import subprocess
    import sys

    from scipy.optimize import minimize

    from il2als.studies import survival

    f, _, theta0 = survival._reml_objective(*_random_slopes_data())
    for start in (theta0, theta0 + np.array([2.0, -1.5, 0.8, 1.0])):
        theta, ok = survival._newton_minimise(f, start)
        assert ok and np.max(np.abs(f(theta)[1])) < 1e-4  # at the optimum, to the rounding of f's gradient
        ref = minimize(f, start, jac=True, method="L-BFGS-B", options={"maxiter": 500, "ftol": 1e-14, "gtol": 1e-9})
        assert f(theta)[0] == pytest.approx(ref.fun, rel=1e-9)
        assert theta == pytest.approx(ref.x, rel=1e-4, abs=1e-4)
    calls = []
    theta, ok = survival._newton_minimise(lambda x: calls.append(1) or f(x), theta0)
    assert ok and len(calls) <= 30  # the two-stage start is a few Newton steps from the optimum
    assert np.max(np.abs(theta - theta0)) < 0.5
    x, ok = survival._newton_minimise(lambda x: (float(-x @ x), -2 * x), np.array([0.5, 0.1]), max_iter=20)
    assert not ok  # unbounded below: never "converged"
    code = ("import sys, numpy as np\n"
            "from il2als.studies.trial import design, run_trial\n"
            "from il2als.inputs.population_spec import load_population_spec\n"
            "r = run_trial(design('mirocals'), 'mirocals', load_population_spec(), 1, 5)\n"
            "assert 'alsfrs_mixed' in r.replicates[0].analysis\n"
            "print([m for m in ('scipy.optimize', 'scipy.special', 'statsmodels') if m in sys.modules])\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split("\n")[-2] == "[]"


@pytest.mark.parametrize("seed", range(3))
def test_numpy_reml_slopes_equal_statsmodels_mixedlm(seed):
    """Issue #16: the ALSFRS-R mixed model (random intercept and slope, REML) in numpy gives statsmodels' slopes
    (1e-4 relative or 2e-5 points/month: both optimisers' tolerance) and Wald p within 2% relative (model-based vs full observed-information covariance)."""
    from il2als.studies import alsfrs_mixed_model

    rng = np.random.default_rng(seed)
    N, V = 220, 8
    days = np.arange(V) * 91.0
    arm = rng.integers(0, 2, N)
    strat = rng.integers(0, 3, N)
    b0, b1 = rng.normal(40, 4, N), rng.normal(-1.0, 0.5, N) + 0.2 * arm
    sc = b0[:, None] + b1[:, None] * days[None] / 30.4375 + rng.normal(0, 1.5, (N, V))
    sc[np.arange(V)[None] >= rng.integers(2, V + 1, N)[:, None]] = np.nan  # visits stop (death, loss)
    for g, ng in ((None, 1), (strat, 3)):
        ours = alsfrs_mixed_model(days, sc, arm, g, ng)
        ref = alsfrs_mixed_model(days, sc, arm, g, ng, engine="statsmodels")
        for a, b in zip(ours, ref):
            assert [a[k] for k in ("il2", "placebo", "difference")] == pytest.approx(
                [b[k] for k in ("il2", "placebo", "difference")], rel=1e-4, abs=2e-5)
            assert a["p"] == pytest.approx(b["p"], rel=2e-2, abs=1e-4)
