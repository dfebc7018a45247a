"""Tidy outputs (issue #6): every CSV table of a run also as Parquet, units preserved in the metadata."""

import csv
import json
import subprocess
import sys

import numpy as np
import pytest

pq = pytest.importorskip("pyarrow.parquet", reason="pyarrow not installed (pip install 'il2als[formats]')")


def test_simulate_and_trial_tables_come_as_parquet_with_units(tmp_path):
    out = tmp_path / "sim"
    r = subprocess.run([sys.executable, "-m", "il2als", "simulate", "--profile", "slow", "--days", "30", "--no-plot",
                        "--out", str(out)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    rows = list(csv.DictReader(open(out / "trajectory.csv")))
    t = pq.read_table(out / "trajectory.parquet")
    units = json.loads(t.schema.metadata[b"il2als.units"])
    assert units["nfl_serum"] == "pg/mL" and units["treg_pct_cd4"] == "%" and units["time"] == "day"
    assert t.schema.field("nfl_serum").metadata[b"unit"] == b"pg/mL"
    assert np.allclose(t.column("nfl_serum").to_numpy(), [float(x["nfl_serum [pg/mL]"]) for x in rows])
    assert "trajectory.parquet" in json.loads((out / "manifest.json").read_text())["outputs"]

    out = tmp_path / "trial"
    r = subprocess.run([sys.executable, "-m", "il2als", "trial", "--replicates", "1", "--n-per-arm", "20", "--no-plot",
                        "--out", str(out)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    s = pq.read_table(out / "summary_table.parquet").to_pydict()
    summary = json.loads((out / "summary.json").read_text())
    k = s["quantity"].index("hr_overall.median")
    assert float(s["value"][k]) == pytest.approx(summary["hr_overall"]["median"], rel=1e-5) and s["unit"][k] == "1"
    assert pq.read_table(out / "replicates.parquet").num_rows == 1
