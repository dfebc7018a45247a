"""SBML export: generated from the mechanism, valid, and reproduced by an independent simulator (libRoadRunner)."""

import subprocess
import sys

import numpy as np
import pytest
import sympy as sp

libsbml = pytest.importorskip("libsbml", reason="python-libsbml not installed (pip install 'il2als[formats]')")

from il2als.compiler import default_model
from il2als.export import HOLD, to_sbml
from il2als.inputs import load_parameters, named, parse_regimen
from il2als.solve import SolverOptions, simulate


def _roadrunner(xml):
    rr_mod = pytest.importorskip("roadrunner", reason="libroadrunner cannot be installed here (pip install libroadrunner)")
    rr_mod.Logger.setLevel(rr_mod.Logger.LOG_ERROR)
    rr = rr_mod.RoadRunner(xml)
    rr.integrator.relative_tolerance = 1e-10
    rr.integrator.absolute_tolerance = 1e-12
    rr.integrator.setValue("maximum_num_steps", 200000)
    return rr


def test_export_is_valid_sbml_with_consistent_units():
    ex = to_sbml(load_parameters("default"), named("mirocals"))
    assert ex.errors == () and ex.warnings == ()  # includes libSBML's unit-consistency checks
    doc = libsbml.readSBMLFromString(ex.xml)
    assert doc.getNumErrors(libsbml.LIBSBML_SEV_ERROR) == 0
    m = doc.getModel()
    mech = default_model().mechanism
    assert (doc.getLevel(), doc.getVersion()) == (3, 2)
    assert m.getNumRules() == len(mech.states) + len(mech.expressions)
    assert m.getNumEvents() == 90 == ex.n_dose_slots
    for s in mech.states:
        ann = m.getParameter(s.name).getAnnotationString()
        assert f'module="{s.module}"' in ann and f'unit="{s.unit}"' in ann
    assert m.getUnitDefinition(m.getParameter("il2_plasma").getUnits()).getName() == "IU/mL"


def test_rate_rules_are_the_mechanism_not_a_copy():
    """Each rate rule, read back from the SBML, equals the module's own rate law symbolically."""
    ex = to_sbml(load_parameters("default"), named("placebo"))
    m = libsbml.readSBMLFromString(ex.xml).getModel()
    mech = default_model().mechanism
    ns = {n: sp.Symbol(n, real=True) for n in [*mech.state_names, *mech.parameter_names, *(e.name for e in mech.expressions), HOLD]}
    ns["time"] = sp.Symbol("t", real=True)
    fixed = {s.name for s in mech.states if s.baseline == "fixed"}
    for s in mech.states:
        text = libsbml.formulaToL3String(m.getRateRule(s.name).getMath()).replace(" dimensionless", "").replace("^", "**")
        got = sp.sympify(text, locals=ns)
        want = mech.rates[s.name] * ((1 - ns[HOLD]) if s.name in fixed else 1)
        assert sp.simplify(got - want) == 0, s.name


@pytest.mark.parametrize("profile, regimen", [("default", "mirocals"), ("fast", "1 MIU/m**2 daily for 5 days every 14 days, 6 cycles"),
                                              ("slow", "placebo")])
def test_roadrunner_reproduces_il2als_within_1e4(profile, regimen):
    params = load_parameters(profile)
    reg = named(regimen) if regimen in ("mirocals", "placebo") else parse_regimen(regimen)
    days = 640 if regimen != "placebo" else 400
    rr = _roadrunner(to_sbml(params, reg).xml)
    model = default_model()
    names = list(model.observable_names)
    rr.timeCourseSelections = ["time", *names]
    res = np.asarray(rr.simulate(0, days, days * 4 + 1))
    tr = simulate(params, reg, f"{days} day", step="0.25 day", options=SolverOptions(method="Radau", rtol=1e-10, atol=1e-12))
    assert np.allclose(res[:, 0], tr.time)
    for i, name in enumerate(names):
        a, b = res[:, i + 1], tr.observables[:, i]
        floor = max(1e-6 * np.max(np.abs(b)), 1e-9)  # values that stay at zero (IL-2 on placebo) are compared absolutely
        rel = np.max(np.abs(a - b) / np.maximum(np.abs(b), floor))
        assert rel <= 1e-4, f"{name}: {rel:.2e}"


def test_hold_parameter_freezes_the_fixed_states_for_preequilibration():
    rr = _roadrunner(to_sbml(load_parameters("fast"), named("placebo")).xml)
    rr[HOLD] = 1.0
    res = rr.simulate(0, 300, 4, selections=["time", "mn_reserve", "cumulative_hazard", "nfl_serum"])
    assert np.ptp(res[:, 1]) == 0 and np.ptp(res[:, 2]) == 0
    assert np.ptp(res[:, 3]) / res[0, 3] < 1e-6  # the baseline is the steady state with those states held


def test_cli_export_sbml(tmp_path):
    out = tmp_path / "m" / "model.xml"
    r = subprocess.run([sys.executable, "-m", "il2als", "export-sbml", "--params", "slow", "--regimen",
                        "2 MIU daily for 5 days every 28 days, 3 cycles", "--out", str(out)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert "15 dose events" in r.stdout and "0 errors" in r.stdout
    doc = libsbml.readSBML(str(out))
    assert doc.getNumErrors(libsbml.LIBSBML_SEV_ERROR) == 0 and doc.getModel().getNumEvents() == 15
    bad = subprocess.run([sys.executable, "-m", "il2als", "export-sbml", "--regimen", "2 kg daily for 5 days",
                          "--out", str(tmp_path / "bad.xml")], capture_output=True, text=True)
    assert bad.returncode == 2 and "Traceback" not in bad.stderr and not (tmp_path / "bad.xml").exists()
