"""Faults (issue #7): failing patients are reported or excluded by policy, never dropped silently; a killed run
leaves the previous complete output, and its leftovers are cleaned by the next run."""

import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from il2als.cohort import load_population_spec, sample_population
from il2als.errors import SolverError
from il2als.population import BatchOptions, simulate_population
from il2als.trial import TrialDesign, run_replicate, run_trial


def _starved(on_failure):
    # a step budget too small for the patients who need the most steps: a controlled, reproducible failure
    return BatchOptions(max_steps=4200, on_failure=on_failure)


def test_failing_patient_stops_the_run_naming_patient_time_states_and_parameters():
    pop = sample_population(load_population_spec(), 40, np.random.default_rng(0))
    with pytest.raises(SolverError) as e:
        simulate_population(pop.params, "mirocals", "640 day", outputs=["nfl_serum"], options=_starved("fail"))
    msg = str(e.value)
    assert msg.startswith("patient ") and "too many steps at t = " in msg and "day" in msg
    assert "parameters outside their plausible ranges" in msg and "on_failure='skip'" in msg
    assert "\n" not in msg


def test_skip_policy_reports_and_excludes_failing_patients_from_the_trial():
    design = TrialDesign(n_per_arm=20, follow_up_days=640.0)
    spec = load_population_spec()
    rep = run_replicate(design, __import__("il2als.dosing", fromlist=["named"]).named("mirocals"), spec,
                        np.random.default_rng(5), options=_starved("skip"))
    n_failed = len(rep.excluded)
    assert 0 < n_failed < 40, "the budget should fail some patients, not all"
    assert len(rep.arm) == len(rep.time) == 40 - n_failed  # excluded explicitly, the rest analysed
    assert all(m.startswith("patient ") and "too many steps" in m for m in rep.excluded)
    res = run_trial(design, "mirocals", spec, 2, 5, options=_starved("skip"))
    s = res.summary()
    assert s["excluded_patients"]["total"] == sum(len(r.excluded) for r in res.replicates) > 0


def test_a_killed_run_leaves_the_previous_output_and_no_debris(tmp_path):
    out = tmp_path / "trial"
    cmd = [sys.executable, "-m", "il2als", "trial", "--replicates", "1", "--n-per-arm", "10", "--no-plot", "--out", str(out)]
    assert subprocess.run(cmd, capture_output=True).returncode == 0
    before = (out / "summary.json").read_text()
    p = subprocess.Popen(cmd[:4] + ["200"] + cmd[5:], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 60
    while time.time() < deadline and not list(tmp_path.glob(".trial.partial-*")):
        time.sleep(0.05)
    time.sleep(0.5)
    os.kill(p.pid, signal.SIGKILL)
    p.wait()
    assert (out / "summary.json").read_text() == before  # the previous complete output is untouched
    # the next run removes what the killed one left behind
    assert subprocess.run(cmd, capture_output=True).returncode == 0
    assert sorted(x.name for x in tmp_path.iterdir()) == ["trial"]


@pytest.mark.parametrize("scheduler", ["threads", "processes"])
def test_ctrl_c_writes_nothing_and_says_so(tmp_path, scheduler):
    out = tmp_path / "trial"
    p = subprocess.Popen([sys.executable, "-m", "il2als", "trial", "--replicates", "200", "--n-per-arm", "40",
                          "--scheduler", scheduler, "--no-plot", "--out", str(out)], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True,
                         # as from a terminal: a shell's background job (e.g. a CI runner) may start us with SIGINT ignored
                         preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.time() + 180
    err = ""
    while time.time() < deadline:
        line = p.stderr.readline()
        err += line
        if "replicates:" in line:
            break
    p.send_signal(signal.SIGINT)
    err += p.communicate(timeout=60)[1]
    assert p.returncode == 130 and "interrupted; no output was written" in err and "Traceback" not in err
    assert list(tmp_path.iterdir()) == []
