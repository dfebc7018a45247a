"""Issue #13: populations carried by parameter sets, two-coupling variants, the trial-informed fit's surface
algebra, the trialists' ALSFRS-R analysis (mixed model, CAFS), loss to follow-up, and the phase 3 tools."""

import json
import math
import subprocess
import sys

import numpy as np
import pytest

from il2als.errors import Il2alsError, ParameterError
from il2als.inputs import load_parameters, load_population_spec
from il2als.results import DAYS_PER_MONTH
from il2als.studies import TrialDesign, alsfrs_mixed_model, cafs_test


def _ix(spec, a, b):
    return spec.correlation[spec.varied.index(a), spec.varied.index(b)]


def test_a_parameter_sets_population_table_changes_the_population_and_recentring_undoes_it(tmp_path):
    plain = load_population_spec()
    from importlib import resources

    ps = load_parameters(str(resources.files("il2als.params") / "variants" / "refractory.toml"))
    spec = plain.centred_on(ps)
    assert spec.omega["refractory_drive"] == 0.9 and _ix(spec, "k_autonomous", "refractory_drive") == pytest.approx(0.65)
    assert plain.omega["refractory_drive"] != 0.9
    back = spec.centred_on(load_parameters("calibrated"))  # a set without the table: the file's spreads again
    assert back.omega == plain.omega and np.array_equal(back.correlation, plain.correlation)
    again = spec.centred_on(ps)  # idempotent
    assert again.omega == spec.omega and np.array_equal(again.correlation, spec.correlation)
    bad = tmp_path / "bad.toml"
    bad.write_text('[meta]\nbase = "calibrated"\n[parameters]\n[population.omegas]\nk_autonomous = 1\n', encoding="utf-8")
    with pytest.raises(ParameterError, match="unknown table 'omegas'.*omega"):
        load_parameters(str(bad))
    bad.write_text('[meta]\nbase = "calibrated"\n[parameters]\n[population.omega]\ntreg_death = 0.3\n', encoding="utf-8")
    with pytest.raises(ParameterError, match="'treg_death', which has no variability"):
        plain.centred_on(load_parameters(str(bad)))


def test_variants_carry_two_bounded_couplings_and_the_informed_set_records_its_fit():
    from il2als.inputs import load_variant, trial_informed

    v = load_variant("restorable")
    assert v.couplings == ("treg_suppression_gain", "treg_function_ceiling") and v.bounds[1] == (1.0, 2.0)
    w = v.with_couplings(treg_suppression_gain=5.0, treg_function_ceiling=1.7)
    assert w.params.value("treg_function_ceiling") == 1.7 and w.spec.centre is w.params
    assert _ix(w.spec, "k_autonomous", "treg_function_ceiling") == pytest.approx(-0.7)  # the variant's population kept
    with pytest.raises(ParameterError, match="cannot set 'ka'"):
        v.with_couplings(ka=3.0)
    info = trial_informed("mirocals-informed")
    assert info["variant"] in ("restorable", "refractory", "time_to_benefit")
    informed = load_parameters("mirocals-informed")
    fit = info["fits"][info["variant"]]
    for c in load_variant(info["variant"]).couplings:  # the shipped set is the chosen variant at its recorded fit
        assert informed.value(c) == pytest.approx(fit.params.value(c), rel=1e-9)
        assert "trial-informed" in informed.get(c).source
    with pytest.raises(ParameterError, match="no \\[trial_informed\\] table"):
        trial_informed("calibrated")


def test_fit_surface_recovers_a_known_crossing_and_reports_an_unreachable_target_at_its_bound():
    from il2als.experiments.learn_and_confirm import HR_LOW_STRATUM, SE_LOG_HR, fit_surface

    g = np.geomspace(0.5, 50, 7)
    # log HR linear in log gain: HR = 0.9 at gain 0.5 falling to 0.3 at 50; crosses 0.52 at a known gain
    lh = np.interp(np.log(g), [np.log(0.5), np.log(50)], [np.log(0.9), np.log(0.3)])
    f = fit_surface([g], lh, {"gain": 1.0}, ("gain",))
    want = math.exp(np.log(0.5) + (np.log(0.52) - np.log(0.9)) / (np.log(0.3) - np.log(0.9)) * (np.log(50) - np.log(0.5)))
    assert f["value"]["gain"] == pytest.approx(want, rel=0.03) and f["z2"] < 1e-3 and not f["at_bound"]["gain"]
    lo, hi = f["interval"]["gain"]
    assert lo < want < hi and f["weak_end"]["hr_interpolated"] == pytest.approx(HR_LOW_STRATUM * math.exp(1.96 * SE_LOG_HR), rel=0.02)
    # a surface that never falls below 0.8: the estimate sits at the bound, with the trial's misfit reported
    flat = np.interp(np.log(g), [np.log(0.5), np.log(50)], [np.log(0.99), np.log(0.8)])
    f = fit_surface([g], flat, {"gain": 1.0}, ("gain",))
    assert f["at_bound"]["gain"] and f["value"]["gain"] == pytest.approx(50)
    assert f["z2"] == pytest.approx(((np.log(0.8) - np.log(0.52)) / SE_LOG_HR) ** 2, rel=1e-6)


def _synthetic_visits(n=240, seed=0, effect=0.3):
    rng = np.random.default_rng(seed)
    arm = np.tile([0, 1], n // 2)
    days = np.arange(0, 640, 28.0)
    m = days / DAYS_PER_MONTH
    slope = -1.0 + effect * arm + rng.normal(0, 0.3, n)
    y = 40 + rng.normal(0, 3, n)[:, None] + slope[:, None] * m[None, :] + rng.normal(0, 1.0, (n, len(days)))
    death = rng.uniform(100, 900, n)
    y[days[None, :] >= death[:, None]] = np.nan
    return days, y, arm


def test_mixed_model_recovers_the_slopes_of_a_known_model():
    days, y, arm = _synthetic_visits()
    r = alsfrs_mixed_model(days, y, arm)[0]
    assert r["placebo"] == pytest.approx(-1.0, abs=0.1) and r["difference"] == pytest.approx(0.3, abs=0.1)
    assert r["p"] < 1e-3
    by = alsfrs_mixed_model(days, y, arm, np.repeat([0, 1, 2], 80), 3)
    assert all(b["difference"] == pytest.approx(0.3, abs=0.2) for b in by)
    # a group too small to fit gets NaNs, not a number
    tiny = alsfrs_mixed_model(days, y, arm, np.r_[np.zeros(236, int), np.full(4, 1)], 2)
    assert math.isfinite(tiny[0]["difference"]) and math.isnan(tiny[1]["difference"])


def test_cafs_ranks_every_death_below_every_survivor():
    T = np.array([100.0, 200, 640, 640, 300, 640, 640, 640])
    E = np.array([True, True, False, False, True, False, False, False])
    change = np.array([np.nan, np.nan, -20, -30, np.nan, -2, -1, -3])
    arm = np.array([0, 0, 0, 0, 1, 1, 1, 1])
    p, prob = cafs_test(T, E, change, arm)
    # IL-2: one death (day 300, later than both placebo deaths) and survivors who lost less function
    assert prob == pytest.approx(14 / 16) and 0 < p < 1


def test_loss_to_follow_up_censors_deaths_and_stops_visits():
    from il2als.inputs import regimen
    from il2als.studies import run_replicate

    spec = load_population_spec()
    d = TrialDesign(n_per_arm=60, follow_up_days=400, dropout_per_year=3.0, alsfrs_analysis="slopes")
    rep = run_replicate(d, regimen("mirocals"), spec, np.random.default_rng(4))
    lost = (~rep.event) & (rep.time < 400 - 1e-9)
    assert lost.mean() > 0.6  # 1 - exp(-3 x 400/365) ~ 96% lost before day 400 or dead
    for i in np.nonzero(lost)[0][:20]:
        assert np.all(np.isnan(rep.visit_alsfrs[i][rep.visit_days >= rep.time[i]]))
    with pytest.raises(Il2alsError, match="dropout_per_year"):
        TrialDesign(dropout_per_year=float("nan"))


def test_schedule_family_builds_the_mirocals_regimen_and_schoenfeld_matches_its_formula():
    from il2als.inputs import regimen
    from il2als.studies import events_needed, sample_size, schedule

    assert schedule(2, 5, 28) == regimen("mirocals")
    r = schedule(1, 3, 14, maintenance_every_days=4, maintenance_miu=0.5)
    gaps = np.diff(r.times())
    assert r.times()[:5].tolist() == [0, 1, 2, 6, 10] and gaps.min() == 1 and "0.5 MIU every 4 days" in r.name
    # Schoenfeld: HR 0.7, 80% power, two-sided 5%: 4 (1.95996 + 0.84162)^2 / log(0.7)^2 = 246.8 deaths
    assert events_needed(0.7, 0.8) == pytest.approx(246.8, abs=0.1)
    ss = sample_size(0.7, 0.5, 0.9, dropout_fraction=0.1)
    assert ss["events"] == math.ceil(events_needed(0.7, 0.9)) and ss["patients"] == 2 * math.ceil(events_needed(0.7, 0.9) / 0.45 / 2)
    with pytest.raises(Il2alsError, match="no benefit to detect"):
        sample_size(1.02, 0.5, 0.8)


def test_schedule_search_stays_under_the_effector_ceiling():
    from il2als.studies import optimise_schedule

    spec = load_population_spec().enriched(3700)
    s = optimise_schedule(spec, n=12, seed=2, maxiter=1, popsize=2)
    assert s.effector_peak <= s.reference_effector_peak + 1e-12
    assert s.hazard_ratio == min(e["hazard_ratio [1]"] for e in s.evaluations if e["feasible"])
    assert len(s.evaluations) >= 10 and all(e["effector_peak [1]"] >= 1.0 for e in s.evaluations)


def test_trial_command_names_its_parameter_set_everywhere_and_design_phase3_runs(tmp_path):
    run = lambda *a: subprocess.run([sys.executable, "-m", "il2als", *a], capture_output=True, text=True, timeout=900)
    r = run("trial", "--params", "calibrated", "--n-per-arm", "40", "--replicates", "2", "--expected-n", "0",
            "--out", str(tmp_path / "t"))
    assert r.returncode == 0, r.stderr
    assert "parameter set 'calibrated' (literature-only)" in r.stderr and "mixed model" in r.stdout
    s = json.loads((tmp_path / "t" / "summary.json").read_text())
    assert s["parameter_set"] == "calibrated" and s["dropout_per_year"] == 0.05
    assert set(s["alsfrs_slope_effect"]) == {"overall", "very_low", "low", "high"} and "cafs" in s
    assert json.loads((tmp_path / "t" / "manifest.json").read_text())["parameter_set"]["name"] == "calibrated"
    assert (tmp_path / "t" / "replicates.csv").read_text().splitlines()[1].startswith("calibrated,")
    r = run("design-phase3", "--n-search", "10", "--maxiter", "1", "--popsize", "2", "--n-expected", "200",
            "--verify-replicates", "0", "--no-sensitivity", "--out", str(tmp_path / "p3"))
    assert r.returncode == 0, r.stderr
    s = json.loads((tmp_path / "p3" / "summary.json").read_text())
    b = s["schedule_search"]["best"]
    assert b["effector_peak"] <= s["schedule_search"]["reference"]["effector_peak"]
    assert s["parameter_set"] == "mirocals-informed" and len(s["designs"]) == 6
    for row in s["designs"]:  # a sample size is given exactly when there is a benefit to detect
        assert (row["patients_80"] is not None) == (0 < row["expected_hr [1]"] < 1)
    assert (tmp_path / "p3" / "sample_size.png").stat().st_size > 20_000
    r = run("design-phase3", "--n-search", "0", "--out", str(tmp_path / "bad"))
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "--n-search" in r.stderr and not (tmp_path / "bad").exists()


def test_learn_and_confirm_runs_end_to_end_and_its_reuse_writes_a_loadable_informed_set(tmp_path):
    from il2als.experiments.learn_and_confirm import main

    small = ["--n", "200", "--n-predict", "200", "--grid", "2,2", "--replicates", "0", "--no-check",
             "--variants", "restorable,null"]
    assert main([*small, "--out", str(tmp_path / "a")]) == 0
    v = json.loads((tmp_path / "a" / "variants.json").read_text())
    assert v["fact"]["hr_low_stratum"] == 0.52 and v["best_supported"] == "restorable"
    assert "fit" in v["variants"]["restorable"] and "fit" not in v["variants"]["null"]
    assert (tmp_path / "a" / "variants_forest.png").stat().st_size > 20_000
    rows = (tmp_path / "a" / "variants.csv").read_text().splitlines()
    assert rows[1].startswith("literature-only,") and len(rows) == 4
    out = tmp_path / "informed.toml"
    assert main(["--reuse", str(tmp_path / "a" / "variants.json"), "--variants", "restorable,null",
                 "--out", str(tmp_path / "b"), "--write-params", str(out)]) == 0
    ps = load_parameters(str(out))
    fit = v["variants"]["restorable"]["fit"]["value"]
    assert ps.name == "mirocals-informed" and ps.value("treg_function_ceiling") == pytest.approx(fit["treg_function_ceiling"])
    assert ps.population["correlations"]["k_autonomous,treg_function_ceiling"] == -0.7
    # the informed file is il2als's own: a second run may replace it, a user's file is refused
    assert main(["--reuse", str(tmp_path / "a" / "variants.json"), "--variants", "restorable,null",
                 "--out", str(tmp_path / "b"), "--write-params", str(out)]) == 0
    mine = tmp_path / "mine.toml"
    mine.write_text("# my notes\n", encoding="utf-8")
    with pytest.raises(Il2alsError):
        main(["--reuse", str(tmp_path / "a" / "variants.json"), "--variants", "restorable,null",
              "--out", str(tmp_path / "c"), "--write-params", str(mine)])
    assert mine.read_text() == "# my notes\n"
