"""NONMEM-style datasets (issue #6): EVID/CMT/MDV/ADDL semantics, writing and reading back, virtual-trial export."""

import csv
import subprocess
import sys

import numpy as np
import pytest

from il2als import load_parameters, simulate
from il2als.errors import Il2alsError
from il2als.inputs import (Dataset, Dose, Observation, Regimen, compartments, dataset_csv, load_population_spec, named,
                           parse_dataset, read_dataset, replicate_dataset)
from il2als.studies import TrialDesign, run_replicate

CMT = {v: k for k, v in compartments().items()}


def test_nonmem_columns_addl_mdv_cmt_and_covariates():
    text = (
        "ID,TIME [h],AMT [MIU],EVID,CMT,DV,MDV,ADDL,II,body_surface_area [m**2],SEX\n"
        f"7,0,1,1,1,.,1,4,24,2.0,F\n"
        f"7,0,.,0,{CMT['treg_pct_cd4']},5.1,0,.,.,2.0,F\n"
        f"7,48,.,2,.,.,1,.,.,2.0,F\n"
        f"7,72,.,0,{CMT['treg_pct_cd4']},6.9,0,.,.,2.0,F\n"
        f"7,96,.,0,{CMT['nfl_serum']},.,1,.,.,2.0,F\n"
        f"7,120,.,0,{CMT['nfl_serum']},41,0,.,.,2.0,F\n"
    )
    ds = parse_dataset(text)
    assert ds.regimens["7"].times().tolist() == [0, 1, 2, 3, 4]
    assert ds.regimens["7"].amounts_iu(1.9, 1.64e7).tolist() == [1e6] * 5
    assert [(o.time, o.observable, o.value) for o in ds.observations] == [
        (0, "treg_pct_cd4", 5.1), (3, "treg_pct_cd4", 6.9), (5, "nfl_serum", 41.0)]  # MDV=1 and EVID=2 rows skipped
    assert ds.parameters["7"] == {"body_surface_area": 2.0}
    assert ds.covariates["7"] == {"SEX": "F"}


@pytest.mark.parametrize("row, match", [
    ("1,0,1,1,5,.,1", "CMT 1"),
    ("1,0,1,1,99,.,1", "not a compartment"),
    ("1,0,-1,1,1,.,1", "positive"),
    ("1,0,1,7,1,.,1", "EVID '7'"),
])
def test_bad_nonmem_records_name_the_row_and_fix(row, match):
    text = f"ID,TIME [day],AMT [MIU],EVID,CMT,DV,MDV\n{row}\n1,1,.,0,{CMT['treg_count']},40,0\n"
    with pytest.raises(Il2alsError, match=match) as e:
        parse_dataset(text, "d.csv")
    assert "row 2" in str(e.value)


def test_a_written_dataset_reads_back_into_the_same_regimens_and_observations(tmp_path):
    regs = {"a": Regimen(tuple(Dose(float(t), 2e6, "IU") for t in (0, 1, 2, 28.5)), "ID a"), "b": Regimen((), "ID b")}
    obs = (Observation("a", 0.0, "treg_pct_cd4", 5.25), Observation("a", 3.25, "nfl_serum", 40.5),
           Observation("b", 10.0, "alsfrs_r", 38.0), Observation("b", 10.0, "pnfh_csf", 1234.5))
    ds = Dataset(regs, obs, "test", {"a": {"k_autonomous": 1.5e-3}, "b": {"k_autonomous": 2e-3}},
                 {"a": {"ARM": "IL-2"}, "b": {"ARM": "placebo"}})
    path = tmp_path / "d.csv"
    path.write_text(dataset_csv(ds, time_unit="h"))
    back = read_dataset(path)
    assert back.regimens == regs
    assert back.observations == obs
    assert back.parameters == ds.parameters and back.covariates == ds.covariates
    header = next(csv.reader(open(path)))
    assert header[:9] == ["ID", "TIME [h]", "AMT [IU]", "EVID", "CMT", "DV", "MDV", "observable", "DVUNIT"]


def test_virtual_trial_dataset_round_trips_and_reproduces_the_simulation(tmp_path):
    design = TrialDesign(n_per_arm=6, follow_up_days=200.0)
    reg = named("mirocals")
    rep = run_replicate(design, reg, load_population_spec(), np.random.default_rng(3))
    ds = replicate_dataset(rep, reg, design)
    path = tmp_path / "trial.csv"
    path.write_text(dataset_csv(ds))
    back = read_dataset(path)
    assert back.regimens == ds.regimens and back.observations == ds.observations
    on_il2 = [pid for pid in back.ids if back.covariates[pid]["ARM"] == "IL-2"]
    assert len(on_il2) == 6 and all(len(back.regimens[p]) == len(reg) for p in on_il2)
    for pid, (i, e) in zip(back.ids, enumerate(rep.event)):
        assert back.covariates[pid]["DEATH"] == str(int(e))
    # the dataset's patient 1, simulated on its own, has the baseline CSF pNfH that was recorded
    pid = back.ids[0]
    tr = simulate(back.params_for(pid, load_parameters("default")), back.regimens[pid], "1 day")
    first = next(o for o in back.observations if o.id == pid and o.observable == "pnfh_csf")
    assert tr.at("pnfh_csf", 0.0) == pytest.approx(first.value, rel=1e-6)


def test_cli_simulate_from_a_dataset_uses_its_doses(tmp_path):
    data = tmp_path / "d.csv"
    data.write_text("ID,TIME [day],AMT [MIU],DV [%],observable\n1,0,2,,\n1,1,2,,\n1,2,.,6.0,treg_pct_cd4\n"
                    "2,0,.,5.0,treg_pct_cd4\n2,2,.,5.0,treg_pct_cd4\n")
    r = subprocess.run([sys.executable, "-m", "il2als", "simulate", "--data", str(data), "--step", "0.5 day", "--no-plot",
                        "--out", str(tmp_path / "o")], capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    rows = list(csv.DictReader(open(tmp_path / "o" / "predictions.csv")))
    want = simulate(load_parameters("default"), "2 MIU daily for 2 days", "2 day", step="0.5 day").at("treg_pct_cd4", 2.0)
    assert float(rows[0]["PRED"]) == pytest.approx(want, rel=1e-4)
    assert float(rows[1]["PRED"]) == pytest.approx(float(rows[2]["PRED"]), rel=1e-9)  # ID 2 got no doses
