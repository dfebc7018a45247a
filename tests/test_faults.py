"""Faults (issue #7): failing patients are reported or excluded by policy, never dropped silently; a killed run
leaves the previous complete output, and its leftovers are cleaned by the next run."""

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from il2als.errors import SolverError
from il2als.inputs import load_population_spec
from il2als.solve import BatchOptions, simulate_population
from il2als.studies import TrialDesign, run_replicate, run_trial, sample_population


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
    rep = run_replicate(design, __import__("il2als.inputs.regimens", fromlist=["named"]).named("mirocals"), spec,
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
    p = subprocess.Popen(cmd[:5] + ["60"] + cmd[6:], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while time.time() < deadline and p.poll() is None and not list(tmp_path.glob(".trial.partial-*")):
        time.sleep(0.005)
    os.kill(p.pid, signal.SIGKILL)  # while it writes its run folder (or, if it was faster, just after)
    p.wait()
    # the output is one complete run, the previous or (when the kill came after the swap) the new: never a mix
    now = (out / "summary.json").read_text()
    assert now == before or json.loads(now)["replicates"] == 60
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


def _children(pid: int) -> list[int]:
    kids = []
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:  # gone
        return []
    for task in tasks:
        try:
            with open(f"/proc/{pid}/task/{task}/children") as fh:
                kids += [int(x) for x in fh.read().split()]
        except OSError:
            pass
    return kids


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


def _start_pool_trial(out):
    """A process-pool trial long enough to be interrupted; returns (process, worker pids) once workers run."""
    p = subprocess.Popen([sys.executable, "-m", "il2als", "trial", "--replicates", "400", "--n-per-arm", "60",
                          "--scheduler", "processes", "--no-plot", "--out", str(out)], stdout=subprocess.DEVNULL,
                         stderr=subprocess.PIPE, text=True,
                         preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.time() + 180
    while time.time() < deadline:
        line = p.stderr.readline()
        if "replicates:" in line:
            break
    workers, more = [], _children(p.pid)
    while more:  # and their children: the fork server's workers
        workers += more
        more = [k for w in more for k in _children(w)]
    assert len(workers) > 1, "the pool should have started worker processes"
    return p, workers


@pytest.mark.parametrize("how", ["SIGKILL", "SIGTERM", "SIGINT"])
def test_no_worker_outlives_its_parent_and_nothing_is_written(tmp_path, how):
    out = tmp_path / "trial"
    p, workers = _start_pool_trial(out)
    t0 = time.time()
    p.send_signal(getattr(signal, how))
    err = p.communicate(timeout=60)[1]
    parent_seconds = time.time() - t0
    deadline = time.time() + 10
    while time.time() < deadline and any(_alive(w) for w in workers):
        time.sleep(0.2)
    assert not [w for w in workers if _alive(w)], f"workers alive 10 s after the parent got {how}"
    if how == "SIGTERM":
        assert p.returncode == 143 and "terminated; no output was written" in err and "Traceback" not in err
    if how == "SIGINT":
        assert p.returncode == 130 and "interrupted; no output was written" in err and "Traceback" not in err
        assert parent_seconds < 20, f"Ctrl-C took {parent_seconds:.0f} s to return"
    if how != "SIGKILL":
        assert list(tmp_path.iterdir()) == []


def test_second_ctrl_c_gives_no_traceback(tmp_path):
    p, workers = _start_pool_trial(tmp_path / "trial")
    p.send_signal(signal.SIGINT)
    time.sleep(0.3)
    if p.poll() is None:
        p.send_signal(signal.SIGINT)
    err = p.communicate(timeout=60)[1]
    assert p.returncode == 130 and "Traceback" not in err
    time.sleep(2)
    assert not [w for w in workers if _alive(w)]


def test_an_interrupted_command_exits_even_when_the_interpreter_exit_would_hang():
    # the interpreter joins the process pool's internal threads at exit without a time limit; stand-in: a thread
    # that never ends. The program must still end, with the interrupt's exit code, after the grace period.
    code = ("import sys, threading, time\n"
            "import il2als.cli.app as app\n"
            "app._EXIT_GRACE_SECONDS = 1.0\n"
            "app.main = lambda argv=None: 130\n"
            "threading.Thread(target=time.sleep, args=(3600,)).start()\n"
            "app.console()\n")
    t0 = time.time()
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert r.returncode == 130 and time.time() - t0 < 30, r.stderr
    r = subprocess.run([sys.executable, "-c", code.replace("130", "0").replace("3600", "2")], capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 0  # a command that was not interrupted exits normally, after its threads


def test_corrupt_engine_cache_is_rebuilt_with_a_warning_and_the_compile_says_what_it_does(tmp_path):
    """A corrupt cache is removed and the engine compiled again; #16: a compile takes ~20-40 s, so it must not be
    silent (it says so when it starts, and when it ends how long it took and where it cached), and a cached run
    says nothing. A first run's empty cache takes the same path (no compiled index: compile, and say so)."""
    import hashlib
    import shutil

    from il2als.compiler import cache_dir, default_model, load_engine, module_source

    load_engine(default_model())  # this model's engine is compiled and cached
    digest = hashlib.sha256(module_source(default_model()).encode()).hexdigest()[:16]
    cache = tmp_path / "cache"
    shutil.copytree(cache_dir(), cache, ignore=shutil.ignore_patterns(".probe-*", "*.tmp-*"))
    cached = sorted((cache / "__pycache__").glob(f"il2als_engine_{digest}*"))
    assert cached, "the session's engine should be cached"
    for f in cached[:6]:
        f.write_bytes(b"\x80\x04garbage")
    env = {**os.environ, "IL2ALS_CACHE_DIR": str(cache)}
    cmd = [sys.executable, "-m", "il2als", "population", "--n", "20", "--no-plot", "--out", str(tmp_path / "pop")]
    r = subprocess.run(cmd, capture_output=True, text=True, env=env)
    assert r.returncode == 0, r.stderr
    assert "is corrupt" in r.stderr and "compiling it again" in r.stderr
    lines = r.stderr.splitlines()
    start = next(i for i, s in enumerate(lines) if "compiling the batch engine" in s)
    done = next(i for i, s in enumerate(lines) if s.startswith("il2als: batch engine compiled in "))
    assert done > start and str(cache) in lines[done]
    one = [sys.executable, "-m", "il2als", "simulate", "--method", "engine", "--profile", "default", "--days", "3",
           "--no-plot", "--out", str(tmp_path / "one")]
    for again in (cmd, one):  # the rebuilt cache now loads quietly
        r2 = subprocess.run(again, capture_output=True, text=True, env=env)
        assert r2.returncode == 0 and "corrupt" not in r2.stderr and "compil" not in r2.stderr, r2.stderr


def test_unwritable_engine_cache_falls_back_to_a_temporary_folder_and_leaves_none(tmp_path):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the cache folder should be")
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    env = {**os.environ, "IL2ALS_CACHE_DIR": str(blocker / "cache"), "TMPDIR": str(tmp)}
    r = subprocess.run([sys.executable, "-c", "from il2als.compiler.engine import cache_dir; print(cache_dir())"],
                       capture_output=True, text=True, env=env)
    assert r.returncode == 0 and "cannot be written" in r.stderr
    assert r.stdout.strip().startswith(str(tmp))
    assert list(tmp.iterdir()) == [], "the temporary engine folder must be removed at exit"
