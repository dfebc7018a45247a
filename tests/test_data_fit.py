"""Fitting a user's own time series from a NONMEM-style CSV (issue #3)."""

import csv
import subprocess
import sys

import pytest

from il2als import load_parameters, simulate
from il2als.errors import Il2alsError
from il2als.inputs import read_dataset


def _write_synthetic(path, truth):
    rows = [["ID", "TIME [h]", "AMT [MIU]", "DV [%]", "observable"]]
    for pid, reg in (("1", "1 MIU daily for 5 days"), ("2", "2 MIU daily for 5 days")):
        tr = simulate(truth, reg, "30 day", step="1 day")
        events = [(24 * d, 0, [pid, 24 * d, 1 if pid == "1" else 2, "", ""]) for d in range(5)]
        events += [(24 * day, 1, [pid, 24 * day, "", f"{tr.at('treg_pct_cd4', day):.6g}", "treg_pct_cd4"])
                   for day in (0, 3, 7, 10, 14, 21, 28)]
        rows += [e[2] for e in sorted(events, key=lambda e: (e[0], e[1]))]
    # a serum NfL observation in its own unit column would need another file; pg/mL is the output unit
    with open(path, "w", newline="") as fh:
        csv.writer(fh).writerows(rows)


def test_a_user_fits_their_own_treg_series_with_one_command(tmp_path):
    truth = load_parameters("default").updated(treg_max_proliferation="0.6 1/day", ec50_treg="2 IU/mL")
    data = tmp_path / "patients.csv"
    _write_synthetic(data, truth)
    ds = read_dataset(data)
    assert ds.ids == ["1", "2"] and len(ds.regimens["2"]) == 5 and len(ds.observations) == 14
    r = subprocess.run([sys.executable, "-m", "il2als", "fit", "--data", str(data), "--free",
                        "treg_max_proliferation,ec50_treg", "--error", "proportional:0.02", "--out", str(tmp_path / "f")],
                       capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stderr
    est = {row["parameter"]: row for row in csv.DictReader(open(tmp_path / "f" / "estimates.csv"))}
    for name, true in (("treg_max_proliferation", 0.6), ("ec50_treg", 2.0)):
        assert float(est[name]["estimate"]) == pytest.approx(true, rel=0.05), name
        assert float(est[name]["profile_ci95_low"]) <= true <= float(est[name]["profile_ci95_high"]), name
    assert "converged" in r.stdout and "NOT CONVERGED" not in r.stdout


@pytest.mark.parametrize("body, match", [
    ("ID,TIME [h],AMT [MIU],DV [%],observable\n1,24,,5,treg_pct_cd4\n1,0,,5,treg_pct_cd4\n", "sort the rows"),
    ("ID,TIME [h],AMT [MIU],DV [%],observable\n1,0,,5,treg_pct\n", "did you mean 'treg_pct_cd4'"),
    ("ID,TIME [h],AMT [MIU],DV [kg],observable\n1,0,,5,treg_pct_cd4\n", "does not convert"),
    ("ID,TIME,AMT [MIU],DV [%],observable\n1,0,,5,treg_pct_cd4\n", "TIME needs a unit"),
    ("ID,TIME [h],AMT [MIU],DV [%],observable\n1,0,-2,,\n1,1,,5,treg_pct_cd4\n", "positive"),
    ("ID,TIME [h],AMT [MIU]\n1,0,2\n", "no 'DV' column"),
])
def test_bad_datasets_are_rejected_with_one_line(tmp_path, body, match):
    p = tmp_path / "d.csv"
    p.write_text(body)
    with pytest.raises(Il2alsError, match=match) as exc:
        read_dataset(p)
    assert "\n" not in str(exc.value)
