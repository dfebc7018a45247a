"""Issue #14, first part: predictions are computed *at* the observation times, whatever the output step."""

import csv
import subprocess
import sys

import numpy as np
import pytest

from il2als import load_parameters, simulate
from il2als.errors import Il2alsError
from il2als.fitting import make_data_problem
from il2als.inputs import read_dataset
from il2als.solve import SolverOptions, output_times, predict_observations, simulate_population

HOURS = (2.0, 6.0, 12.0, 30.0)


def _dataset(path):
    rows = [["ID", "TIME [h]", "AMT [MIU]", "DV [IU/mL]", "observable"], ["1", 0, 2, "", ""]]
    rows += [["1", h, "", 1.0, "il2_plasma"] for h in HOURS]
    with open(path, "w", newline="") as fh:
        csv.writer(fh).writerows(rows)
    return path


def _reference():
    ps = load_parameters("default")
    tr = simulate(ps, "2 MIU once", "4 day", step="1 min", options=SolverOptions(method="LSODA"))  # scipy, fine grid
    return np.array([tr.at("il2_plasma", h / 24) for h in HOURS])


def test_predictions_at_observation_times_match_the_reference_whatever_the_step(tmp_path):
    data = read_dataset(_dataset(tmp_path / "pk.csv"))
    ref = _reference()
    got = predict_observations(data, data.parameter_matrix(load_parameters("default")))[0]
    tol = 1e-4 * ref.max()  # below that the level is at the solvers' absolute tolerance
    assert got == pytest.approx(ref, rel=2e-3, abs=tol)
    # the pooled-fit problem uses the same exact predictions
    prob = make_data_problem(data, ["clearance"], load_parameters("default"), error_model="lognormal", sd=0.2)
    x = np.array([f.to_scale(prob.base.value(f.name)) for f in prob.free])
    assert prob.predictions(x[None, :])[0] == pytest.approx(ref, rel=2e-3, abs=tol)
    # and the command line, with a one-day output step that would have missed the 2-hour peak by far
    r = subprocess.run([sys.executable, "-m", "il2als", "simulate", "--data", str(tmp_path / "pk.csv"), "--step", "1 day",
                        "--no-plot", "--out", str(tmp_path / "out")], capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    pred = [float(row["PRED"]) for row in csv.DictReader(open(tmp_path / "out" / "predictions.csv"))]
    assert pred == pytest.approx(ref, rel=2e-3, abs=tol)
    grid = simulate_population(load_parameters("default"), "2 MIU once", "2 day", step="1 day", outputs=["il2_plasma"])
    assert np.interp(2 / 24, grid.time, grid["il2_plasma"][0]) < ref[0] / 10  # what reading off the grid gave


def test_explicit_output_times_are_checked_and_agree_with_the_grid():
    ps = load_parameters("default")
    grid = simulate_population(ps, "mirocals", "10 day", step="0.5 day", outputs=["treg_count"])
    exact = simulate_population(ps, "mirocals", times=[0.5, 3.0, 9.5], outputs=["treg_count"])
    assert exact.time.tolist() == [0.0, 0.5, 3.0, 9.5]
    assert exact["treg_count"][0, 1:] == pytest.approx(grid["treg_count"][0, [1, 6, 19]], rel=1e-4)
    for bad in ([3.0, 1.0], [1.0, 1.0], [-1.0, 2.0], [float("nan")], []):
        with pytest.raises(Il2alsError, match="output times"):
            output_times(bad)


def test_interleaved_addl_series_are_merged_and_ss2_records_are_refused(tmp_path):
    rows = [["ID", "TIME [h]", "AMT [MIU]", "ADDL", "II", "SS", "DV [%]", "observable"],
            ["1", 0, 1, 4, 24, 0, "", ""],     # 08:00 daily for 5 days
            ["1", 12, 1, 4, 24, 0, "", ""],    # 20:00 daily for 5 days: interleaves with the first series
            ["1", 96, 0.5, 0, 0, 0, "", ""],   # the same time as the first series' last dose: they add up
            ["1", 120, "", "", "", "", 5.0, "treg_pct_cd4"]]
    p = tmp_path / "bid.csv"
    with open(p, "w", newline="") as fh:
        csv.writer(fh).writerows(rows)
    reg = read_dataset(p).regimens["1"]
    assert len(reg) == 10 and reg.times().tolist() == [h / 24 for h in (0, 12, 24, 36, 48, 60, 72, 84, 96, 108)]
    assert reg.doses[8].amount == pytest.approx(1.5e6)
    rows[1][5] = 1  # SS 1: a steady-state dose, then its 4 additional doses
    with open(p, "w", newline="") as fh:
        csv.writer(fh).writerows(rows)
    reg = read_dataset(p).regimens["1"]
    assert reg.doses[0].steady_state_interval == 1.0 and sum(d.steady_state_interval > 0 for d in reg.doses) == 1
    rows[1][5] = 2
    with open(p, "w", newline="") as fh:
        csv.writer(fh).writerows(rows)
    with pytest.raises(Il2alsError, match="row 2: SS 2 adds a steady state .* not"):
        read_dataset(p)


def test_the_shipped_example_dataset_is_what_its_script_writes_and_a_fit_runs_on_it(tmp_path):
    from importlib import resources

    from il2als.experiments.make_example_data import make_dataset
    from il2als.inputs import dataset_csv

    shipped = resources.files("il2als.experiments") / "data" / "imodals_like_simulated.csv"
    text = shipped.read_text(encoding="utf-8")
    assert text == dataset_csv(make_dataset())  # reproducible byte for byte from the seed
    rows = list(csv.DictReader(text.splitlines()))
    assert all(r["data"].startswith("simulated") for r in rows)  # labelled on every row
    assert not [c for c in rows[0] if c.split(" [")[0] not in
                ("ID", "TIME", "AMT", "EVID", "CMT", "DV", "MDV", "observable", "DVUNIT", "body_surface_area", "arm", "data")]
    ds = read_dataset(str(shipped))
    assert len(ds.ids) == 16 and len(ds.observations) == 16 * 17 * 2 and len(ds.regimens["02"]) == 15
    r = subprocess.run([sys.executable, "-m", "il2als", "fit", "--data", str(shipped), "--free", "treg_max_proliferation",
                        "--error", "lognormal:0.1", "--no-plot", "--out", str(tmp_path / "f")],
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    est = list(csv.DictReader(open(tmp_path / "f" / "estimates.csv")))
    assert est[0]["parameter"] == "treg_max_proliferation" and float(est[0]["estimate"]) > 0
