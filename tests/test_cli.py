"""The command line as a new user runs it: the main job, and a corpus of bad input."""

import csv
import json
import subprocess
import sys
from pathlib import Path

import pytest

BAD = Path(__file__).parent / "bad_input"


def il2als(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "il2als", *args], capture_output=True, text=True, cwd=cwd, timeout=600)


def test_simulate_writes_table_figure_and_manifest(tmp_path):
    out = tmp_path / "run"
    r = il2als("simulate", "--regimen", "mirocals", "--profile", "slow,fast", "--days", "60", "--step", "1 hour",
               "--placebo", "--out", str(out))
    assert r.returncode == 0, r.stderr
    assert "simulating slow under mirocals" in r.stderr  # progress
    with open(out / "trajectory.csv") as fh:
        rows = list(csv.DictReader(fh))
    header = list(rows[0])
    for col in ("profile", "regimen", "time [day]", "il2_plasma [IU/mL]", "treg_count [cell/uL]", "treg_pct_cd4 [%]",
                "ccl2_plasma [pg/mL]", "ccl2_csf [pg/mL]", "mn_reserve [%]", "nfl_csf [pg/mL]", "pnfh_csf [pg/mL]",
                "nfl_serum [pg/mL]", "alsfrs_r [points]", "survival [1]"):
        assert col in header, col
    assert {(r_["profile"], r_["regimen"]) for r_ in rows} == {("slow", "mirocals"), ("slow", "placebo"),
                                                            ("fast", "mirocals"), ("fast", "placebo")}
    assert len(rows) == 4 * (60 * 24 + 1)
    png = (out / "trajectory.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 50_000
    m = json.loads((out / "manifest.json").read_text())
    assert m["regimen"]["name"] == "mirocals" and len(m["regimen"]["doses"]) == 90
    assert m["environment"]["il2als"] and "Konrad1990" in m["references"]
    assert m["parameter_sets"]["fast"]["values"]["k_autonomous"][1] == "1/day"
    assert (out / "summary.csv").exists()
    assert not list(tmp_path.glob(".run.partial-*"))


def test_regimen_from_csv_and_sentence(tmp_path):
    table = tmp_path / "doses.csv"
    table.write_text("time [h],amount [MIU]\n0,1\n24,1\n48,1\n")
    r1 = il2als("simulate", "--regimen", str(table), "--profile", "default", "--days", "10", "--no-plot", "--out", str(tmp_path / "a"))
    r2 = il2als("simulate", "--regimen", "1 MIU daily for 3 days", "--profile", "default", "--days", "10", "--no-plot",
                "--out", str(tmp_path / "b"))
    assert r1.returncode == 0 and r2.returncode == 0, r1.stderr + r2.stderr
    a = (tmp_path / "a" / "trajectory.csv").read_text().splitlines()
    b = (tmp_path / "b" / "trajectory.csv").read_text().splitlines()
    strip = lambda lines: [ln.split(",", 2)[2] for ln in lines]  # drop the regimen label column
    assert strip(a) == strip(b)


def test_listing_commands():
    r = il2als("regimens")
    assert r.returncode == 0 and "mirocals" in r.stdout and "imodals-1miu" in r.stdout
    table = r.stdout.split("\n\n")[0].splitlines()  # the doses column lines up, whatever the names' lengths
    ends = {ln.index(ln.split()[1], len(ln.split()[0])) + len(ln.split()[1]) for ln in table}
    assert len(table) > 5 and len(ends) == 1, r.stdout
    r = il2als("params", "fast")
    assert r.returncode == 0 and "Beers2011" in r.stdout and "1/day" in r.stdout
    r = il2als("equations")
    assert r.returncode == 0 and r"\frac{d\,\mathrm{mn\_reserve}}{dt}" in r.stdout


BAD_CASES = [
    (["--regimen", str(BAD / "unsorted.csv")], "sort the rows"),
    (["--regimen", str(BAD / "negative_dose.csv")], "positive"),
    (["--regimen", str(BAD / "nan_dose.csv")], "NaN"),
    (["--regimen", str(BAD / "wrong_unit.csv")], "dimension"),
    (["--regimen", str(BAD / "no_units.csv")], "name [unit]"),
    (["--regimen", str(BAD / "empty.csv")], "empty"),
    (["--regimen", "nonexistent.csv"], "not found"),
    (["--regimen", "mirocal"], "did you mean 'mirocals'"),
    (["--regimen", "2 kg daily for 5 days"], "ceiling"),
    (["--regimen", "-2 MIU once"], "positive"),
    (["--regimen", "2 day once"], "dimension"),
    (["--profile", "slwo"], "did you mean 'slow'"),
    (["--profile", str(BAD / "typo_param.toml")], "did you mean 'clearance'"),
    (["--profile", str(BAD / "wrong_dimension_param.toml")], "dimension"),
    (["--profile", str(BAD / "negative_param.toml")], "non-physical"),
    (["--profile", str(BAD / "malformed.toml")], "not valid TOML"),
    (["--days", "-5"], "positive"),
    (["--days", "nan"], "positive"),
    (["--step", "1 kg"], "convertible"),
    (["--step", "0 day"], "positive"),
    (["--set", "ec50_treg=2 kg"], "dimension"),
    (["--set", "ec50_tre=2 IU/mL"], "did you mean 'ec50_treg'"),
    (["--set", "novalue"], "name=quantity"),
    (["--rtol", "5"], "between 0 and 1"),
    (["--method", "Euler"], "not one of"),
]


@pytest.mark.parametrize("extra, message", BAD_CASES, ids=[c[1] + "-" + str(i) for i, c in enumerate(BAD_CASES)])
def test_bad_input_exits_2_with_one_line_and_writes_nothing(tmp_path, extra, message):
    out = tmp_path / "out"
    r = il2als("simulate", "--days", "5", "--no-plot", "--out", str(out), *extra)
    assert r.returncode == 2, (r.returncode, r.stderr)
    lines = [ln for ln in r.stderr.splitlines() if ln.startswith("il2als: error:")]
    assert len(lines) == 1 and message in lines[0], r.stderr
    assert "Traceback" not in r.stderr
    assert not out.exists() and not list(tmp_path.iterdir())


def test_previous_output_survives_a_failed_run(tmp_path):
    out = tmp_path / "out"
    assert il2als("simulate", "--days", "5", "--no-plot", "--profile", "slow", "--out", str(out)).returncode == 0
    before = (out / "trajectory.csv").read_text()
    r = il2als("simulate", "--days", "5", "--no-plot", "--profile", "slwo", "--out", str(out))
    assert r.returncode == 2
    assert (out / "trajectory.csv").read_text() == before


@pytest.mark.parametrize("args", [["--version"], ["regimens"], ["params"]])
def test_quick_commands_import_no_sympy_scipy_or_engine(args):
    """Issue #16: what answers at once must not pay for the model's code generation, the solvers or the engine (the
    timing itself is the benchmark's, benchmarks/run.py). pint imports the bare scipy package itself, so the check
    is on scipy's solver modules."""
    import subprocess
    import sys

    code = (f"import sys\nfrom il2als.cli import main\ntry:\n    main({args!r})\nexcept SystemExit:\n    pass\n"
            "print(sorted(m for m in ('sympy', 'scipy.integrate', 'scipy.optimize', 'numba', 'il2als.compiler.engine', "
            "'il2als.compiler.codegen') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip().splitlines()[-1] == "[]", out
