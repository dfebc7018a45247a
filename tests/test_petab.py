"""PEtab export (issue #6): the problem lints, and its likelihood is il2als's own objective."""

import subprocess
import sys

import numpy as np
import pytest

petab = pytest.importorskip("petab.v1", reason="petab not installed (pip install 'il2als[formats]')")
pytest.importorskip("libsbml", reason="python-libsbml not installed")

from il2als import load_parameters
from il2als.export import lint, write_petab
from il2als.fitting import make_data_problem
from il2als.inputs import read_dataset

sys.path.insert(0, __file__.rsplit("/", 1)[0])
from test_data_fit import _write_synthetic  # noqa: E402


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    path = tmp_path_factory.mktemp("d") / "patients.csv"
    _write_synthetic(path, load_parameters("default").updated(treg_max_proliferation="0.6 1/day"))
    return read_dataset(path)


@pytest.mark.parametrize("error", ["proportional", "additive", "lognormal"])
def test_petab_chi2_equals_il2als_residuals(tmp_path, data, error):
    """Simulate every PEtab condition with libRoadRunner; PEtab's chi2 must equal il2als's sum of squares."""
    rr_mod = pytest.importorskip("roadrunner", reason="libroadrunner cannot be installed here")
    rr_mod.Logger.setLevel(rr_mod.Logger.LOG_ERROR)
    problem = make_data_problem(data, ["treg_max_proliferation", "ec50_treg"], load_parameters("default"), error_model=error,
                                sd={"proportional": 0.05, "additive": 0.3, "lognormal": 0.05}[error])
    write_petab(problem, tmp_path)
    assert lint(tmp_path)
    pp = petab.Problem.from_yaml(str(tmp_path / "problem.yaml"))
    sim = pp.measurement_df.copy()
    values = []
    for _, row in sim.iterrows():
        rr = rr_mod.RoadRunner(str(tmp_path / "model.xml"))
        rr.integrator.relative_tolerance, rr.integrator.absolute_tolerance = 1e-10, 1e-12
        cond = pp.condition_df.loc[row["simulationConditionId"]]
        for k, v in cond.items():
            if k != "conditionName":
                rr[k] = float(v)
        formula = pp.observable_df.loc[row["observableId"], "observableFormula"]
        factor, name = (float(formula.split("*")[0]), formula.split("*")[1].strip()) if "*" in formula else (1.0, formula)
        t = float(row["time"])
        res = rr.simulate(0, max(t, 1e-6), 2, selections=["time", name])
        values.append(factor * res[-1, 1])
    sim["simulation"] = values
    chi2 = petab.calculate_chi2(pp.measurement_df, sim, pp.observable_df, pp.parameter_df)
    r = problem.residuals(problem.x0[None, :])[0][: len(data.observations)]
    assert chi2 == pytest.approx(float(np.sum(r ** 2)), rel=1e-4)
    assert chi2 > 1.0  # the data were made with another treg_max_proliferation: a real misfit, not zero


def test_cli_export_petab(tmp_path, data):
    out = tmp_path / "petab"
    r = subprocess.run([sys.executable, "-m", "il2als", "export-petab", "--data", data.source, "--free",
                        "treg_max_proliferation", "--error", "lognormal:0.1", "--out", str(out)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert "petab lint: passed" in r.stdout
    assert sorted(p.name for p in out.iterdir()) == ["conditions.tsv", "measurements.tsv", "model.xml", "observables.tsv",
                                                     "parameters.tsv", "problem.yaml"]
    bad = subprocess.run([sys.executable, "-m", "il2als", "export-petab", "--data", data.source, "--free", "tregmax",
                          "--out", str(tmp_path / "bad")], capture_output=True, text=True)
    assert bad.returncode == 2 and "unknown" in bad.stderr and "Traceback" not in bad.stderr
    assert not (tmp_path / "bad").exists()
