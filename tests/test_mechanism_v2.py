"""Mechanism v2 (issue #12): Treg function as a state with a ceiling, unsaturated suppression, a Treg-refractory
drive; the paired expected hazard ratio and the per-stratum biology built on them."""


import numpy as np
import pytest

from il2als.compiler import default_model
from il2als.inputs import load_parameters, load_population_spec
from il2als.solve import baseline_state, simulate
from il2als.studies import expected_hazard_ratio, stratum_biology

FARIDAR = "1 MIU daily for 5 days every 30 days, 4 cycles"


def test_treg_function_rises_course_after_course_holds_between_and_fades_below_its_ceiling():
    ps = load_parameters("default")
    tr = simulate(ps, FARIDAR, "170 day")
    f = tr["treg_suppressive_function"]
    f0, ceiling = ps.value("treg_function"), ps.value("treg_function_ceiling")
    assert f[0] == pytest.approx(f0, rel=1e-9)
    rise = lambda day: tr.at("treg_suppressive_function", day) - f0  # noqa: E731
    assert rise(98) > rise(68) > rise(38) > rise(8) > 0  # cumulative over the four courses
    assert rise(60) > 0.5 * rise(38)  # held between courses while the counts fall back
    assert rise(168) < rise(98)  # fades after the last course
    assert np.all(f <= ceiling + 1e-12) and np.all(f >= f0 - 1e-12)
    placebo = simulate(ps, "placebo", "170 day")["treg_suppressive_function"]
    assert np.allclose(placebo, f0, rtol=1e-9)


def test_suppression_is_proportional_to_functional_tregs_not_saturated():
    """Evaluate the mechanism's own suppression expression (sympy) at two baselines."""
    import sympy as sp

    from il2als.mechanism import build_mechanism

    mech = build_mechanism()
    expr = next(e for e in mech.expressions if e.name == "treg_suppression").formula
    tf = next(e for e in mech.expressions if e.name == "functional_treg").formula
    m = default_model()
    ps = load_parameters("default")
    p1 = ps.vector(m)
    p2 = p1.copy()
    p2[m.parameter_index("treg_function")] *= 2  # twice the function per Treg, same count
    sup, activation = [], []
    for p in (p1, p2):
        y = baseline_state(p, m)
        values = {sp.Symbol(n, real=True): v for n, v in zip(m.parameter_names, p)}
        values.update({sp.Symbol(n, real=True): v for n, v in zip(m.state_names, y)})
        full = expr.subs(sp.Symbol("functional_treg", real=True), tf)
        sup.append(float(full.subs(values)))
        activation.append(y[m.state_index("microglia_activation")])
    assert sup[1] == pytest.approx(2 * sup[0], rel=1e-9)  # linear: no saturation at baseline
    assert activation[1] < activation[0]  # more functional Tregs, less activation at baseline


def test_il2_cannot_touch_loss_that_is_not_microglial():
    ps = load_parameters("fast").updated(k_inflammatory="0 1/day")
    a = simulate(ps, "placebo", "200 day")["mn_loss_rate"]
    b = simulate(ps, "mirocals", "200 day")["mn_loss_rate"]
    assert np.allclose(a, b, rtol=1e-9, atol=0)  # cell-autonomous + Treg-refractory only: IL-2 changes nothing


def test_paired_expected_hr_is_exactly_one_when_il2_has_no_path_to_the_loss():
    spec = load_population_spec()
    centre = spec.centre.updated(k_inflammatory="0 1/day")
    e = expected_hazard_ratio("mirocals", spec.centred_on(centre), 200, 3)
    # the same deaths in both arms (common random numbers), up to the batch engine's tolerance (rtol 1e-4): the doses
    # of the IL-2 arm change the solver's steps, so the cumulative hazards agree to ~1e-4, not to round-off
    assert e.hr["overall"] == pytest.approx(1.0, abs=2e-3)
    assert abs(e.deaths["overall"]["placebo"] - e.deaths["overall"]["il2"]) <= 1 and e.deaths["overall"]["placebo"] > 0
    assert e.loss_slowing["overall"] == pytest.approx(0.0, abs=1e-4)


def test_paired_expected_hr_shows_a_benefit_when_tregs_act_strongly():
    spec = load_population_spec()
    strong = spec.centre.updated(treg_suppression_gain="6")
    e = expected_hazard_ratio("mirocals", spec.centred_on(strong), 300, 3)
    assert e.hr["overall"] < 0.97 and e.loss_slowing["overall"] > 0
    assert e.alsfrs_slope["overall"]["il2"] > e.alsfrs_slope["overall"]["placebo"]


def test_stratum_biology_shares_add_up_and_pnfh_orders_the_loss_rate():
    b = stratum_biology(load_population_spec(), 600, 2)
    vals = b.values
    for s in b.strata:
        v = vals[s]
        if v["n"] == 0:
            continue
        total = v["microglial_share"] + v["refractory_share"] + v["autonomous_share"]
        assert total == pytest.approx(1.0, abs=0.05)  # medians of shares that add to 1 per patient
        assert 0 <= v["reachable_share"] <= v["microglial_share"] + 1e-9
        assert v["treg_function"] <= v["treg_function_ceiling"] + 1e-9
    present = [s for s in b.strata if vals[s]["n"] >= 5]
    loss = [vals[s]["loss_rate"] for s in present]
    assert loss == sorted(loss), "higher CSF pNfH must mean faster loss"
    rows = b.rows()
    assert "loss_rate [percent/month]" in rows[0] and "reachable_share [1]" in rows[0]


def test_variants_load_and_a_coupling_change_keeps_the_natural_history():
    from il2als.inputs import VARIANTS, load_variant

    m = default_model()
    for name in VARIANTS:
        v = load_variant(name)
        assert v.hypothesis and v.support and v.params.name == name
    v = load_variant("restorable")
    y0 = baseline_state(v.params.vector(m), m)
    y1 = baseline_state(v.with_coupling(10.0).params.vector(m), m)
    i = m.state_index("microglia_activation")
    assert y1[i] == pytest.approx(y0[i], rel=1e-6)  # baseline activation held: the natural history is unchanged
    assert load_variant("null").coupling is None
    with pytest.raises(Exception, match="unknown variant"):
        load_variant("restorabel")


def test_interaction_test_detects_an_effect_in_one_stratum_only():
    from il2als.studies import interaction_p

    rng = np.random.default_rng(0)
    n = 800
    arm = np.tile([0, 1], n // 2)
    stratum = np.repeat([1, 2], n // 2)
    hr = np.where((arm == 1) & (stratum == 1), 0.4, 1.0)  # benefit in stratum 1 only
    T = rng.exponential(1.0 / hr)
    E = T < 1.5
    T = np.minimum(T, 1.5)
    assert interaction_p(T, E, arm, stratum) < 1e-3
    hr_same = np.where(arm == 1, 0.6, 1.0)  # the same effect in both strata: no interaction
    T2 = rng.exponential(1.0 / hr_same)
    E2 = T2 < 1.5
    assert interaction_p(np.minimum(T2, 1.5), E2, arm, stratum) > 0.01
    assert np.isnan(interaction_p(T, np.zeros(n, bool), arm, stratum))  # no deaths: no test


def test_trial_summary_carries_the_expected_and_interaction_keys(tmp_path):
    import json

    from il2als.cli import main

    out = tmp_path / "t"
    assert main(["trial", "--replicates", "2", "--n-per-arm", "20", "--expected-n", "200", "--scheduler", "threads",
                 "--no-plot", "--out", str(out)]) == 0
    s = json.loads((out / "summary.json").read_text())
    for key in ("expected_hr_overall", "expected_hr_by_stratum", "hr_overall", "hr_by_stratum", "interaction_p",
                "alsfrs_slope_by_stratum"):
        assert key in s, key
    assert set(s["expected_hr_by_stratum"]) == {"very_low", "low", "high"}
    assert {"median", "ci95"} <= set(s["hr_by_stratum"]["low"])
    assert set(s["alsfrs_slope_by_stratum"]["low"]) == {"il2", "placebo"}
