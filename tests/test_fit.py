"""Calibration targets, fitting, intervals, identifiability and recovery (issue #3)."""

import dataclasses
import subprocess
import sys

import pytest

from il2als.errors import ParameterError
from il2als.fitting import Evaluator, configuration, fit, load_targets, make_problem, profile


@pytest.fixture(scope="module")
def targets():
    return load_targets()


def test_targets_cover_the_literature_and_are_valid(targets):
    ids = {t.id for t in targets}
    for needed in ("pk_tmax", "pk_half_life", "treg_single_dose_10pct", "treg_ms_il2_day15", "cd25_ms_il2_day5",
                   "treg_every_3_days", "treg_return_before_next_cycle", "treg_deficit_rapid_vs_slow", "ccl2_csf_als",
                   "nfl_serum_slow", "nfl_serum_fast", "nfl_csf_turnover", "alsfrs_slope_slow", "mune_decline",
                   "munix_lead", "pnfh_share_750_3700", "placebo_survival_640d", "survival_q4_fastest"):
        assert needed in ids
    # trial treatment outcomes are never targets
    assert not any("hazard_ratio" in t.statistic or "il2" in t.subject for t in targets)


@pytest.mark.parametrize("body, match", [
    ('[[target]]\nid="a"\nstatistic="tmaxx"\noutput="il2_plasma"\nsubject="default"\nunit="hour"\nsource="x"\nvalue=1\nsd=1',
     "did you mean 'tmax'"),
    ('[[target]]\nid="a"\nstatistic="tmax"\noutput="il2_plasma"\nsubject="default"\nunit="hour"\nsource="x"\nvalue=1',
     "value and sd"),
    ('[[target]]\nid="a"\nstatistic="tmax"\noutput="il2_plasmo"\nsubject="default"\nunit="hour"\nsource="x"\nvalue=1\nsd=1',
     "unknown output"),
    ('[[target]]\nid="a"\nstatistic="tmax"\noutput="il2_plasma"\nsubject="nobody"\nunit="hour"\nsource="x"\nvalue=1\nsd=1',
     "subject"),
])
def test_bad_target_files(tmp_path, body, match):
    p = tmp_path / "t.toml"
    p.write_text(body)
    with pytest.raises(ParameterError, match=match):
        load_targets(str(p))


def _check(targets, name):
    from il2als.cli.fitting import _check_rows

    return _check_rows(name, "literature", 400)[1]


def test_the_calibrated_default_passes_85_percent_and_beats_the_handset(targets):
    cal, hand = _check(targets, "calibrated"), _check(targets, "handset")
    n_cal, n_hand = sum(r["pass"] for r in cal), sum(r["pass"] for r in hand)
    assert n_cal >= 0.85 * len(cal)
    assert n_cal > n_hand
    by = {r["id"]: r for r in cal}
    assert 2.0 <= by["pk_tmax"]["model"] <= 8.0
    assert by["treg_deficit_rapid_vs_slow"]["pass"] and by["placebo_survival_640d"]["pass"]


def _base():
    from il2als.inputs import load_parameters

    return load_parameters("default").profiles()


def _synthetic(targets, truth_changes):
    """Targets whose values are the model's own output at known parameters (2% tolerance)."""
    from il2als.inputs import load_parameters

    sub = tuple(t for t in targets if t.id.startswith(("pk_", "treg_ms", "cd25_ms", "treg_every", "treg_peak")))
    truth = load_parameters("default").updated(**truth_changes)
    sets = {"default": truth, "slow": load_parameters("slow"), "fast": load_parameters("fast")}
    vals = Evaluator(sub).evaluate(configuration(sets))[0]
    return tuple(dataclasses.replace(t, value=float(v), sd=0.02 * abs(float(v)), low=None, high=None)
                 for t, v in zip(sub, vals)), truth


def test_identifiable_parameters_are_recovered_within_their_intervals(targets):
    syn, truth = _synthetic(targets, {"ka": "0.15 1/hour", "treg_max_proliferation": "0.55 1/day"})
    pb = make_problem(syn, ["ka", "treg_max_proliferation"], _base(), prior_weight=1e-6)
    res = fit(pb, n_starts=2, seed=1, max_nfev=40)
    assert res.converged
    est = res.estimates
    ci = res.covariance_ci()
    for name in ("ka", "treg_max_proliferation"):
        true = truth.value(name)
        assert est[name][0] == pytest.approx(true, rel=0.03), name
        assert ci[name][0] <= true <= ci[name][1], name
    res = profile(res, ["ka"], n_points=5, max_nfev=10)
    lo, hi, verdict = res.profile_ci()["ka"]
    assert verdict == "identifiable" and lo <= truth.value("ka") <= hi


def test_a_parameter_the_targets_cannot_see_has_a_flat_profile(targets):
    syn, _ = _synthetic(targets, {})
    pb = make_problem(syn[:3], ["ka", "k_ccl2_plasma"], _base(), prior_weight=1e-6)  # PK targets do not see CCL2 turnover
    res = profile(fit(pb, n_starts=1, max_nfev=20), ["k_ccl2_plasma"], n_points=4, max_nfev=5)
    assert res.profile_ci()["k_ccl2_plasma"][2].startswith("not identifiable")


def test_a_fit_stopped_early_is_not_reported_as_converged(targets):
    syn, _ = _synthetic(targets, {"ka": "0.12 1/hour"})
    res = fit(make_problem(syn, ["ka", "ec50_treg"], _base(), prior_weight=1e-6), n_starts=1, max_nfev=1)
    assert not res.converged


def test_check_and_fit_commands(tmp_path):
    run = lambda *a: subprocess.run([sys.executable, "-m", "il2als", *a], capture_output=True, text=True, timeout=900)
    r = run("check", "--params", "default", "--n-population", "200", "--out", str(tmp_path / "c"))
    assert r.returncode == 0, r.stderr
    assert "targets within tolerance" in r.stdout
    head = (tmp_path / "c" / "check.csv").read_text().splitlines()[0]
    assert head.startswith("id,subject,statistic,output,model,target,unit,residual,pass")
    assert (tmp_path / "c" / "check.png").stat().st_size > 10_000
    prob = tmp_path / "p.toml"
    prob.write_text('[problem]\nname = "tiny"\nselect = ["pk_"]\nfree = ["ka", "clearance"]\nn_starts = 2\nmax_nfev = 10\n')
    r = run("fit", "--problem", str(prob), "--out", str(tmp_path / "f"))
    assert r.returncode == 0, r.stderr
    est = (tmp_path / "f" / "estimates.csv").read_text()
    assert est.startswith("parameter,estimate,unit") and "ka" in est
    fitted = tmp_path / "f" / "fitted.toml"
    r = run("params", str(fitted))
    assert r.returncode == 0, r.stderr  # the fitted file is a loadable parameter set
    r = run("fit", "--problem", str(tmp_path / "missing.toml"), "--out", str(tmp_path / "g"))
    assert r.returncode == 2 and "not found" in r.stderr and not (tmp_path / "g").exists()
