"""Nothing lost, nothing silently wrong (issue #11): what a run may replace, what it refuses, and results that
are honest about what they are (byte-identical by seed, manifests that list what exists, no values outside the
computed range, one policy for negative states)."""

import errno
import json
import math
import subprocess
import sys
import warnings

import numpy as np
import pytest

from il2als.cli import main
from il2als.errors import Il2alsError, RegimenError
from il2als.export import OutputError, atomic_dir, check_output
from il2als.inputs import cycles, load_parameters, parse_regimen, regimen
from il2als.solve import NEGATIVE_TOLERANCE, clip_negative
from il2als.studies import power_share


def _tree(root):
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


def test_an_il2als_run_folder_is_replaced_atomically_but_a_user_file_in_it_blocks_the_run(tmp_path, capsys):
    out = tmp_path / "run"
    args = ["population", "--n", "30", "--no-plot", "--out", str(out)]
    assert main(args) == 0
    first = _tree(out)
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["written_by"].startswith("il2als ")
    assert sorted(manifest["outputs"]) == sorted(p for p in first if p != "manifest.json")  # exactly what exists
    assert main(args) == 0  # our own folder: replaced
    assert _tree(out) == first
    (out / "my_notes.txt").write_text("mine")
    capsys.readouterr()
    assert main(args) == 2
    assert "holds 'my_notes.txt'" in capsys.readouterr().err
    assert (out / "my_notes.txt").read_text() == "mine"
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no partial folders anywhere


def test_manifest_lists_only_the_files_written(tmp_path):
    out = tmp_path / "sim"
    assert main(["simulate", "--profile", "slow", "--days", "20", "--no-plot", "--out", str(out)]) == 0
    m = json.loads((out / "manifest.json").read_text())
    assert "trajectory.png" not in m["outputs"]
    assert all((out / name).exists() for name in m["outputs"])


def test_same_seed_gives_byte_identical_result_files(tmp_path):
    runs = []
    for k in range(2):
        out = tmp_path / f"t{k}"
        assert main(["trial", "--replicates", "2", "--n-per-arm", "15", "--scheduler", "threads", "--no-plot",
                     "--seed", "3", "--out", str(out)]) == 0
        runs.append(out)
    names = sorted(p.name for p in runs[0].iterdir() if p.name != "manifest.json")
    assert "summary.json" in names and "summary_table.csv" in names
    for name in names:
        assert (runs[0] / name).read_bytes() == (runs[1] / name).read_bytes(), name
    summary = json.loads((runs[0] / "summary.json").read_text())
    assert "seconds" not in summary and "seconds" in json.loads((runs[0] / "manifest.json").read_text())


def test_check_output_refuses_what_it_must_and_probes_writability(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for bad, what in [("", "empty"), (".", "current folder"), ("..", "parents"), ("/", "root folder")]:
        with pytest.raises(OutputError, match=what):
            check_output(bad)
    # a place the probe cannot write (as root, permission bits do not stop us: simulate the refusal of the OS)
    import tempfile

    def refuse(*a, **k):
        raise PermissionError(errno.EACCES, "Permission denied")

    monkeypatch.setattr(tempfile, "mkdtemp", refuse)
    with pytest.raises(OutputError, match="cannot be written .*Permission denied"):
        check_output(tmp_path / "new")


def test_a_full_disk_is_one_line_keeps_the_earlier_output_and_leaves_no_debris(tmp_path, monkeypatch, capsys):
    out = tmp_path / "pop"
    args = ["population", "--n", "20", "--no-plot", "--out", str(out)]
    assert main(args) == 0
    before = (out / "cohort.csv").read_bytes()
    import il2als.cli.studies as cli

    def full(path, rows):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(cli, "_write_rows", full)
    capsys.readouterr()
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "disk is full" in err and "earlier output is kept" in err and "Traceback" not in err
    assert (out / "cohort.csv").read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pop"]


def test_a_real_full_disk_if_this_machine_lets_us_mount_one(tmp_path):
    mnt = tmp_path / "small"
    mnt.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mnt)], capture_output=True).returncode:
        pytest.skip("cannot mount a small tmpfs here")
    try:
        r = subprocess.run([sys.executable, "-m", "il2als", "simulate", "--profile", "slow", "--step", "1 hour",
                            "--days", "60", "--out", str(mnt / "run")], capture_output=True, text=True)
        assert r.returncode == 2 and "disk is full" in r.stderr and "Traceback" not in r.stderr
        assert list(mnt.iterdir()) == []
    finally:
        subprocess.run(["umount", str(mnt)])


def test_atomic_dir_refuses_a_folder_that_gained_a_user_file_while_computing(tmp_path):
    out = tmp_path / "run"
    with pytest.raises(OutputError, match="did not write"):
        with atomic_dir(out) as tmp:
            (tmp / "a.csv").write_text("x\n")
            out.mkdir()
            (out / "thesis.tex").write_text("mine")
    assert (out / "thesis.tex").read_text() == "mine"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]


def test_relative_base_resolves_against_the_file_not_the_working_directory(tmp_path, monkeypatch):
    sub = tmp_path / "sets"
    sub.mkdir()
    (sub / "parent.toml").write_text('[meta]\nbase = "default"\n[parameters]\n'
                                     'ka = { value = 7.5, unit = "1/day", range = [1, 20], source = "assumed: test" }\n')
    (sub / "child.toml").write_text('[meta]\nbase = "parent.toml"\n[parameters]\n')
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    assert load_parameters(str(sub / "child.toml")).value("ka") == pytest.approx(7.5)


def test_csv_with_a_byte_order_mark_is_read_as_written(tmp_path):
    p = tmp_path / "reg.csv"
    p.write_bytes("time [h],amount [MIU]\n0,2\n24,2\n".encode("utf-8-sig"))
    assert len(regimen(str(p))) == 2


def test_units_are_read_from_il2als_vocabulary_only():
    from il2als.inputs import quantity

    with pytest.raises(Il2alsError, match="did you mean 'MIU'"):
        parse_regimen("2 Miu daily for 5 days")  # pint alone reads this as mebi-atomic-mass-units: a placebo
    with pytest.raises(Il2alsError, match="not a unit il2als works in"):
        quantity("3 kat")
    assert quantity("122 ug").to("ug").magnitude == pytest.approx(122)
    with pytest.raises(Il2alsError, match="no unit; give an amount with its unit, e.g. '2 MIU'"):
        cycles(2, days_on=5, period="28 day", n_cycles=3)


def test_the_dose_ceiling_does_not_suggest_what_was_typed():
    with pytest.raises(RegimenError) as e:
        parse_regimen("2000 MIU once")
    assert "did you mean '2000 MIU'" not in str(e.value) and "check the amount" in str(e.value)


def test_sentence_regimens_are_named_by_their_sentence_and_never_merged(tmp_path):
    a, b = parse_regimen("1 MIU daily for 5 days"), parse_regimen("3 MIU daily for 5 days")
    assert a.name == "1 MIU daily for 5 days" and a.name != b.name
    from il2als.inputs import load_population_spec
    from il2als.studies import compare_regimens

    res = compare_regimens([a, a], load_population_spec(), 30, 1, 60.0)  # the same regimen twice: two rows
    arms = {r["arm"] for r in res.rows}
    assert {a.name, f"{a.name} (2)", "placebo"} <= arms


def test_trajectory_at_refuses_times_it_did_not_compute(sim):
    tr = sim("slow", "placebo", 30.0)
    assert math.isfinite(tr.at("nfl_serum", 30.0))
    with pytest.raises(Il2alsError, match="outside the simulated time range"):
        tr.at("nfl_serum", 400.0)


def test_one_negative_state_policy_for_both_engines():
    atol = np.array([1.0, 1.0])
    out = np.array([[0.5, -0.5 * NEGATIVE_TOLERANCE], [1.0, 2.0]])
    bad, _ = clip_negative(out, atol)
    assert bad == [] and out[0, 1] == 0.0  # round-off of the error control: set to zero
    out = np.array([[0.5, -2 * NEGATIVE_TOLERANCE], [1.0, 2.0]])
    bad, i = clip_negative(out, atol)
    assert bad == [1] and i == 0 and out[0, 1] < 0  # a real dip is a fault, reported, not hidden


def test_batch_engine_never_returns_negative_states_at_the_edges_of_the_plausible_ranges():
    from il2als.solve import BatchOptions, simulate_population
    from il2als.studies import TRIAL_OPTIONS

    base = load_parameters("default")
    names = ["ka", "clearance", "volume", "sink_km", "il2_uptake_per_treg", "ec50_treg"]
    rows = []
    for corner in range(8):
        vals = {n: base.get(n).plausible[(corner >> (k % 3)) & 1] for k, n in enumerate(names)}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ps = base.updated(**{n: f"{v!r} {base.get(n).unit}" for n, v in vals.items()})
        rows.append(ps.vector())
    res = simulate_population(np.array(rows), "6 MIU daily for 5 days every 14 days, 4 cycles", "60 day", step="1 hour",
                              outputs=["il2_plasma", "il2_depot", "treg_count"],
                              options=BatchOptions(rtol=TRIAL_OPTIONS.rtol, atol=TRIAL_OPTIONS.atol, on_failure="skip"))
    for name in ("il2_plasma", "il2_depot", "treg_count"):
        v = res[name][res.status == 0]
        assert np.all(v >= 0), name
    assert all("negative state" in f for f in res.failures)


def test_power_counts_only_significant_benefit_with_its_interval():
    p = [0.01, 0.01, 0.2, 0.01]
    hr = [0.6, 1.7, 0.7, 0.5]  # the second is a significant harm: not a success
    power, ci = power_share(p, hr, 0.05)
    assert power == pytest.approx(0.5)
    assert 0.0 < ci[0] < 0.5 < ci[1] < 1.0
    # Wilson interval of 0/4 starts at 0 and of 4/4 ends at 1
    assert power_share([0.5] * 4, [0.5] * 4, 0.05)[1][0] == 0.0
    assert power_share([0.01] * 4, [0.5] * 4, 0.05)[1][1] == 1.0


def test_advice_names_only_flags_the_command_has(monkeypatch, capsys):
    import il2als.studies.scenario as scenario
    from il2als.errors import SolverError
    from il2als.solve import SKIP_ADVICE

    def failing(*a, **k):
        raise SolverError("patient 3: too many steps at t = 5 day" + SKIP_ADVICE)

    monkeypatch.setitem(scenario.SCENARIOS, "slow-vs-fast", failing)
    assert main(["scenario", "slow-vs-fast", "--n", "5", "--out", "unused"]) == 2
    err = capsys.readouterr().err
    assert "on_failure" not in err and "--on-failure" not in err and "too many steps" in err


def test_a_fit_at_its_bound_says_so(tmp_path, capsys):
    from il2als.cli.fitting_runs import write_fit_report
    from il2als.fitting import fit, make_data_problem
    from il2als.inputs import parse_dataset

    data = parse_dataset("ID,TIME [h],AMT [MIU],DV [%],observable\n1,0,2,,\n1,96,,40,treg_pct_cd4\n", "tiny.csv")
    problem = make_data_problem(data, ["treg_max_proliferation"], load_parameters("default"), error_model="additive", sd=0.5)
    res = fit(problem, n_starts=1, seed=0, max_nfev=15)
    write_fit_report(res, tmp_path / "fit", "tiny", "default", 0.0, plot=False)
    out = capsys.readouterr()
    est = [r for r in (tmp_path / "fit" / "estimates.csv").read_text().splitlines()[1:]]
    assert est and ",True" in est[0], "a Treg % of 40 cannot be reached: the estimate must sit at its bound"
    assert "at its bound" in out.err and "AT BOUND" in out.out
