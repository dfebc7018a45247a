"""Dose records with NONMEM semantics (issue #14): SC and IV boluses, zero-order infusions (RATE > 0 and RATE -2
with DUR), steady-state doses (SS 1), resets (EVID 3/4). With the receptor sink off, plasma IL-2 is a linear
one-compartment model with first-order absorption, so the batch engine is checked against closed forms
(superposition, the periodic steady state, infusions); the full model is checked against the scipy reference
path."""

import math
import warnings

import numpy as np
import pytest

from il2als.errors import Il2alsError
from il2als.inputs import Dose, Regimen, dataset_csv, load_parameters, parse_dataset
from il2als.solve import BatchOptions, SolverOptions, simulate, simulate_population

TIGHT = BatchOptions(rtol=1e-9, atol=1e-9)


@pytest.fixture(scope="module")
def linear():
    """The calibrated set with the receptor sink off: (parameter set, F, lag, ka, CL, V, k)."""
    with warnings.catch_warnings():  # 0 is outside the plausible range, on purpose
        warnings.simplefilter("ignore")
        ps = load_parameters("calibrated").updated(name="no sink", il2_uptake_per_treg="0 IU*uL/(day*cell)")
    g = lambda n: ps.get(n).value  # noqa: E731
    return ps, g("bioavailability"), g("absorption_lag"), g("ka"), g("clearance"), g("volume"), g("clearance") / g("volume")


def _plasma(ps, reg, times):
    res = simulate_population([ps], [reg], times=times, outputs=["il2_plasma"], options=TIGHT)
    return res["il2_plasma"][0, np.searchsorted(res.time, times)]


def _bateman(t, dose, F, lag, ka, V, k):
    tau = np.clip(t - lag, 0, None)
    return F * dose * ka / (V * (ka - k)) * (np.exp(-k * tau) - np.exp(-ka * tau))


def test_sc_boluses_superpose_as_the_closed_form(linear):
    ps, F, lag, ka, CL, V, k = linear
    times = np.array([0.05, 0.3, 1.0, 2.2, 3.7, 6.0, 10.0])
    doses = ((0.0, 2e6), (1.0, 1e6), (2.5, 3e6))
    reg = Regimen(tuple(Dose(t, a, "IU") for t, a in doses))
    want = sum(_bateman(times - t, a, F, lag, ka, V, k) for t, a in doses)
    # relative 1e-6 where the level matters; in the far tail the absolute tolerance (1e-6 of the peak) rules
    assert _plasma(ps, reg, times) == pytest.approx(want, rel=1e-6, abs=1e-6 * want.max())


def test_steady_state_dose_is_the_periodic_closed_form(linear):
    """SS 1, 2 MIU every day: just after the record the level is the infinite-history sum."""
    ps, F, lag, ka, CL, V, k = linear
    tau, dose = 1.0, 2e6
    reg = Regimen((Dose(0.0, dose, "IU", steady_state_interval=tau),))
    s = np.array([0.1, 0.3, 0.7, 1.5, 3.0])  # days after the (lag-shifted) dose
    c = F * dose * ka / (V * (ka - k))
    want = c * (np.exp(-k * s) / (1 - np.exp(-k * tau)) - np.exp(-ka * s) / (1 - np.exp(-ka * tau)))
    assert _plasma(ps, reg, lag + s) == pytest.approx(want, rel=1e-5)


def test_iv_bolus_and_infusions_are_the_closed_forms(linear):
    ps, F, lag, ka, CL, V, k = linear
    t = np.array([0.01, 0.05, 0.1, 0.2, 0.5])  # IV IL-2 has a half-life of about an hour
    want = 1e6 / V * np.exp(-k * t)
    assert _plasma(ps, Regimen((Dose(0.0, 1e6, "IU", "iv"),)), t) == pytest.approx(want, rel=1e-6, abs=1e-6 * want.max())
    t = np.array([0.1, 0.5, 1.0, 1.5, 1.55, 1.7])
    amount, T = 3e6, 1.5  # IV infusion of 3 MIU over 1.5 days
    R = amount / T
    during = R / CL * (1 - np.exp(-k * t))
    after = R / CL * (1 - math.exp(-k * T)) * np.exp(-k * (t - T))
    want = np.where(t <= T, during, after)
    got = _plasma(ps, Regimen((Dose(0.0, amount, "IU", "iv", duration=T),)), t)
    assert got == pytest.approx(want, rel=1e-6, abs=1e-6 * want.max())
    # SC infusion into the depot: C = R F / CL [1 - (ka e^-k s - k e^-ka s) / (ka - k)] while it runs
    s = np.array([0.1, 0.4, 0.9])
    want = R * F / CL * (1 - (ka * np.exp(-k * s) - k * np.exp(-ka * s)) / (ka - k))
    assert _plasma(ps, Regimen((Dose(0.0, amount, "IU", duration=T),)), lag + s) == pytest.approx(want, rel=1e-6)


def test_records_in_a_dataset_build_the_same_regimen_as_the_api():
    text = ("ID,TIME [h],AMT [MIU],EVID,CMT,RATE,DUR [h],SS,II,ADDL,DV [%],observable\n"
            "1,0,2,1,1,0,.,1,24,2,.,\n"        # SS 1 SC dose, then 2 more daily
            "1,72,1,1,2,.,.,.,.,.,.,\n"        # IV bolus
            "1,96,3,1,2,0.5,.,.,.,.,.,\n"      # IV infusion at 0.5 MIU/h: 6 h
            "1,120,2,1,1,-2,12,.,.,.,.,\n"     # SC infusion over DUR 12 h
            "1,168,.,3,.,.,.,.,.,.,.,\n"       # reset
            "1,192,.,0,.,.,.,.,.,.,5.0,treg_pct_cd4\n")
    reg = parse_dataset(text).regimens["1"]
    want = Regimen((Dose(0.0, 2e6, "IU", steady_state_interval=1.0), Dose(1.0, 2e6), Dose(2.0, 2e6),
                    Dose(3.0, 1e6, "IU", "iv"), Dose(4.0, 3e6, "IU", "iv", duration=0.25),
                    Dose(5.0, 2e6, "IU", duration=0.5)), resets=(7.0,))
    assert reg.doses == want.doses and reg.resets == want.resets
    again = parse_dataset(dataset_csv(parse_dataset(text))).regimens["1"]  # and it writes back
    assert again.doses == want.doses and again.resets == want.resets


def test_engine_matches_the_scipy_reference_with_every_record_kind():
    ps = load_parameters("calibrated")
    reg = Regimen((Dose(0.0, 2e6, "IU", steady_state_interval=1.0), Dose(1.0, 2e6), Dose(3.0, 1e6, "IU", "iv"),
                   Dose(4.0, 3e6, "IU", "iv", duration=0.25), Dose(5.0, 2e6, "IU", duration=0.5)), resets=(8.0,))
    ref = simulate(ps, reg, "12 day", step="0.25 day", options=SolverOptions(rtol=1e-9, atol=1e-10, method="LSODA"))
    res = simulate_population([ps], [reg], "12 day", step="0.25 day", options=TIGHT,
                              outputs=["il2_plasma", "treg_pct_cd4", "ccl2_plasma"])
    for name in ("il2_plasma", "treg_pct_cd4", "ccl2_plasma"):
        assert res[name][0] == pytest.approx(ref[name], rel=2e-5, abs=1e-6 * np.max(ref[name])), name


def test_a_reset_starts_the_patient_again_from_baseline():
    ps = load_parameters("calibrated")
    course = tuple(Dose(float(d), 2e6) for d in range(5))
    reg = Regimen(course + tuple(Dose(d.time + 20.0, d.amount) for d in course), resets=(20.0,))
    res = simulate_population([ps], [reg], "30 day", step="0.5 day", options=TIGHT, outputs=["treg_pct_cd4"])
    y = res["treg_pct_cd4"][0]
    assert y[40:61] == pytest.approx(y[0:21], rel=1e-7)  # day 20-30 repeats day 0-10
    assert y[39] != pytest.approx(y[0], rel=1e-3)  # and it was not at baseline before


@pytest.mark.parametrize("row, match", [
    ("1,0,2,1,1,-1,.,.,.", "RATE -1"),
    ("1,0,2,1,1,0,.,2,24", "SS 2 adds a steady state"),
    ("1,0,2,1,1,0,.,1,.", "SS 1 needs a positive II"),
    ("1,0,2,1,1,0.5,.,1,24", "steady-state infusion"),
    ("1,0,2,1,1,-2,0,.,.", "DUR 0 must be a positive duration"),
    ("1,0,2,1,4,0,.,.,.", "not CMT 4"),
])
def test_records_il2als_cannot_represent_are_refused_with_the_row(row, match):
    text = f"ID,TIME [h],AMT [MIU],EVID,CMT,RATE,DUR,SS,II,DV [%],observable\n{row},.,\n1,24,.,0,.,.,.,.,.,5,treg_pct_cd4\n"
    with pytest.raises(Il2alsError, match=match) as e:
        parse_dataset(text, "d.csv")
    assert "row 2" in str(e.value)


def test_an_output_exactly_at_a_step_end_is_written():
    """From a steady baseline the engine's steps grow 0.01, 0.03, 0.09, 0.27 days: the step ends at t = 0.4, an
    output time on a 0.1-day grid, which the next step used to skip (leaving NaN: a spurious failure)."""
    ps = load_parameters("default")
    reg = Regimen((Dose(1.0, 1e6, "IU", "iv", duration=1 / 12),))
    res = simulate_population([ps], [reg], "2 day", step="0.1 day", outputs=["treg_pct_cd4", "il2_plasma"])
    assert np.all(np.isfinite(res["treg_pct_cd4"])) and res["il2_plasma"][0, 4] == pytest.approx(
        res["il2_plasma"][0, 0], rel=1e-6)  # still at baseline before the infusion
