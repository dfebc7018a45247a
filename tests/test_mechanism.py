import dataclasses

import numpy as np
import pytest
import sympy as sp

from il2als.compiler import compile_mechanism, default_model
from il2als.errors import ModelError, UnitError
from il2als.inputs import load_parameters
from il2als.mechanism import MODULES, Mechanism, ModuleBuilder, build_mechanism
from il2als.solve import baseline_state


def test_every_state_has_a_rate_and_units_check():
    mech = build_mechanism()
    assert set(mech.rates) == set(mech.state_names)
    assert len(mech.states) == 17  # v2: Treg suppressive function is a state


def _replace_param_unit(name, unit):
    mods = []
    for m in MODULES:
        params = tuple(dataclasses.replace(p, unit=unit) if p.name == name else p for p in m.parameters)
        mods.append(dataclasses.replace(m, parameters=params))
    return tuple(mods)


def test_a_wrong_scale_fails_at_build_time_naming_the_term():
    # volume in L while clearance is in mL/day: same dimension, wrong scale
    with pytest.raises(UnitError, match="dil2_plasma/dt"):
        Mechanism.assemble(_replace_param_unit("volume", "L"))


def test_a_wrong_dimension_fails_naming_the_term():
    with pytest.raises(UnitError, match="k_cd25"):
        Mechanism.assemble(_replace_param_unit("k_cd25", "1/mL"))


def test_undeclared_symbols_and_missing_rates_are_model_errors():
    b = ModuleBuilder("x", "X", "test")
    s = b.state("x_state", "dimensionless", "a state")
    b.rate(s, -sp.Symbol("nowhere", real=True) * s)
    with pytest.raises(ModelError, match="nowhere"):
        Mechanism.assemble(MODULES + (b.build(),))
    b2 = ModuleBuilder("y", "Y", "test")
    b2.state("y_state", "dimensionless", "a state without a rate")
    with pytest.raises(ModelError, match="no rate law"):
        Mechanism.assemble(MODULES + (b2.build(),))


def test_analytic_jacobian_matches_finite_differences():
    model = default_model()
    p = load_parameters("fast").vector(model)
    y = baseline_state(p, model)
    y[model.state_index("il2_depot")] = 6e5
    y[model.state_index("il2_plasma")] = 5.0
    y[model.state_index("treg_signal_2")] = 0.3
    J = model.jac(0.0, y, p)
    Jn = np.empty_like(J)
    for k in range(len(y)):
        h = 1e-6 * max(abs(y[k]), 1e-3)
        yp, ym = y.copy(), y.copy()
        yp[k] += h
        ym[k] -= h
        Jn[:, k] = (model.rhs(0, yp, p) - model.rhs(0, ym, p)) / (2 * h)
    np.testing.assert_allclose(J, Jn, rtol=1e-5, atol=1e-8 * np.abs(J).max())


def test_rhs_is_derived_from_the_sympy_rates():
    mech = build_mechanism()
    model = compile_mechanism(mech)
    p = load_parameters("default").vector(model)
    y = baseline_state(p, model) * 1.1 + 0.01
    subs = {**dict(zip([s.sym for s in mech.states], y)), **dict(zip([q.sym for q in mech.parameters], p))}
    for i, s in enumerate(mech.states):
        expected = float(mech.expand(mech.rates[s.name]).evalf(subs=subs))
        assert model.rhs(0.0, y, p)[i] == pytest.approx(expected, rel=1e-9, abs=1e-12)


def test_baseline_is_a_steady_state_for_the_free_states():
    model = default_model()
    for prof in ("slow", "fast"):
        p = load_parameters(prof).vector(model)
        y = baseline_state(p, model)
        d = model.rhs(0.0, y, p)
        for s, dy, v in zip(model.mechanism.states, d, y):
            if s.baseline == "steady":
                assert abs(dy) <= 1e-8 * max(abs(v), 1.0), s.name


def test_readme_equations_are_the_generated_ones():
    from pathlib import Path

    from il2als.compiler import equations_markdown

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    start, end = "<!-- equations:start -->", "<!-- equations:end -->"
    assert start in readme and end in readme
    block = readme.split(start)[1].split(end)[0].strip()
    assert block == equations_markdown().strip(), "README equations are stale: run `il2als equations` and paste"


def test_a_dose_route_whose_scale_has_the_wrong_unit_fails_at_build_time():
    from il2als.mechanism.core import DoseRoute

    mods = []
    for m in MODULES:
        if m.routes:
            m = dataclasses.replace(m, routes=tuple(dataclasses.replace(r, scale=sp.Integer(1)) if r.name == "iv" else r
                                                    for r in m.routes))
        mods.append(m)
    with pytest.raises(UnitError, match="dose route iv: scale x IU comes out in IU"):
        Mechanism.assemble(tuple(mods))
    assert DoseRoute("x", "il2_depot", "").scale == 1
