"""Invariants over random regimens and parameter draws within the plausible ranges (hypothesis)."""

import warnings

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from il2als.dosing import Dose, Regimen
from il2als.parameters import PlausibilityWarning, load_parameters
from il2als.simulate import simulate

BASE = load_parameters("default")
# the parameters that make patients differ, and the PK
VARIED = ["k_autonomous", "k_inflammatory", "inflammatory_drive", "treg_production", "treg_function", "debris_gain",
          "ka", "clearance", "bioavailability", "ec50_treg", "treg_max_proliferation", "mn_reserve_start"]


@st.composite
def patients(draw):
    changes = {}
    for name in VARIED:
        v = BASE.get(name)
        lo, hi = v.plausible
        if lo > 0:
            x = float(np.exp(draw(st.floats(np.log(lo), np.log(hi)))))
        else:
            x = draw(st.floats(lo, hi))
        changes[name] = f"{x!r} {v.unit}" if v.unit != "dimensionless" else f"{x!r}"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PlausibilityWarning)
        return BASE.updated(**changes)


regimens = st.lists(
    st.tuples(st.floats(0, 100), st.floats(0.1, 20)), min_size=0, max_size=12, unique_by=lambda d: round(d[0], 6)
).map(lambda ds: Regimen(tuple(sorted(Dose(round(t, 6), a * 1e6) for t, a in ds))))


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(params=patients(), reg=regimens)
def test_invariants_hold_for_any_plausible_patient_and_regimen(params, reg):
    tr = simulate(params, reg, "150 day", step="6 hour")
    assert np.all(np.isfinite(tr.states))
    assert np.all(tr.states >= 0)
    assert np.all(np.diff(tr["mn_reserve"]) <= 1e-12)
    a = tr["alsfrs_r"]
    assert np.all((a >= 0) & (a <= 48))
    assert np.all(np.diff(tr["survival"]) <= 1e-15)
    assert np.all(tr["treg_pct_cd4"] < 100)


@settings(max_examples=5, deadline=None)
@given(params=patients())
def test_same_inputs_give_identical_results(params):
    a = simulate(params, "imodals-1miu", "70 day")
    b = simulate(params, "imodals-1miu", "70 day")
    assert np.array_equal(a.states, b.states)
