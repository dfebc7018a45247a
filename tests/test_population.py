"""The compiled batch engine: same answers as the single-patient path, order of accuracy, failures, memory."""

import numpy as np
import pytest

from il2als import load_parameters, simulate
from il2als.compiler import default_model, load_engine
from il2als.errors import Il2alsError, SolverError
from il2als.solve import BatchOptions, baseline_state, simulate_population

NAMES = ["nfl_serum", "nfl_csf", "pnfh_csf", "treg_count", "treg_pct_cd4", "mn_reserve", "ccl2_csf", "alsfrs_r",
         "survival"]


@pytest.fixture(scope="module")
def patients():
    return [load_parameters(x) for x in ("slow", "default", "fast")]


@pytest.mark.parametrize("reg", ["mirocals", "placebo", "imodals-1miu", "0.26 MIU/m**2 every 3 days for 12 weeks"])
def test_batch_equals_single_patient_path(patients, reg):
    res = simulate_population(patients, reg, "640 day", outputs=NAMES)
    assert np.all(res.status == 0)
    for i, ps in enumerate(patients):
        tr = simulate(ps, reg, "640 day")
        for n in NAMES:
            np.testing.assert_allclose(res[n][i], tr[n], rtol=1e-4, err_msg=f"{ps.name} {n}")
    assert res.units["nfl_serum"] == "pg/mL" and res.header("treg_pct_cd4") == "treg_pct_cd4 [%]"


def test_per_patient_regimens_and_parameter_arrays(patients):
    P = np.array([ps.vector() for ps in patients])
    res = simulate_population(P, ["mirocals", "placebo", "mirocals"], "100 day", outputs=["treg_count"])
    assert res["treg_count"].shape == (3, 101)
    assert np.ptp(res["treg_count"][1]) < 1e-6 * res["treg_count"][1, 0]  # placebo: flat
    assert res["treg_count"][0].max() > 1.3 * res["treg_count"][0, 0]


def test_rosenbrock_method_converges_at_fourth_order():
    model = default_model()
    eng = load_engine(model)
    p = load_parameters("fast").vector(model)
    y0 = baseline_state(p, model)
    y0[model.state_index("il2_depot")] = 6e5  # a dose in the depot: the stiff PK transient
    ref = eng.fixed_step_solve(y0, p, 1.0, 8000)
    errs = []
    for n in (40, 80, 160):
        y = eng.fixed_step_solve(y0, p, 1.0, n)
        errs.append(np.max(np.abs(y - ref) / np.maximum(np.abs(ref), 1e-3)))
    orders = np.log2(np.array(errs[:-1]) / np.array(errs[1:]))
    assert np.all(orders > 3.5), orders


def test_a_failing_patient_is_reported_or_raises(patients):
    bad = patients[0].vector().copy()
    bad[default_model().parameter_index("k_microglia_activation")] = 1e300  # overflows
    P = np.array([patients[1].vector(), bad])
    with pytest.raises(SolverError, match="patient 1"):
        simulate_population(P, "ms-il2", "30 day", outputs=["treg_count"])
    res = simulate_population(P, "ms-il2", "30 day", outputs=["treg_count"], options=BatchOptions(on_failure="skip"))
    assert res.status[0] == 0 and res.status[1] != 0
    assert len(res.failures) == 1 and "patient 1" in res.failures[0]
    assert np.all(np.isnan(res["treg_count"][1])) and np.all(np.isfinite(res["treg_count"][0]))


def test_bad_population_input():
    with pytest.raises(Il2alsError, match="did you mean 'nfl_serum'"):
        simulate_population([load_parameters("slow")], "mirocals", "10 day", outputs=["nfl_serun"])
    with pytest.raises(Il2alsError, match="one per patient"):
        simulate_population([load_parameters("slow")] * 2, ["mirocals"] * 3, "10 day")
    with pytest.raises(Il2alsError, match="between 0 and 1"):
        BatchOptions(rtol=2.0)


def test_cohort_baseline_states_are_each_patients_own_baseline():
    """The sampler's screening solve doubles as the baseline (the steady states do not depend on the reserve)."""
    import numpy as np

    from il2als.inputs import load_population_spec
    from il2als.solve import population_baselines
    from il2als.studies import sample_population

    c = sample_population(load_population_spec(), 40, np.random.default_rng(9))
    Y, st = population_baselines(c.params)
    assert np.all(st == 0)
    assert np.allclose(c.states, Y, rtol=1e-12, atol=0)
