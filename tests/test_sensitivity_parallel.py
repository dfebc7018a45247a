"""Global/local sensitivity (issue #5) and the parallel backends: same answers on every backend."""

import csv
import math
import os
import subprocess
import sys
import time

import numpy as np
import pytest

from il2als.inputs import load_parameters, load_population_spec
from il2als.studies import TrialDesign, evaluate, global_sensitivity, local_sensitivity, run_trial

pytest.importorskip("SALib", reason="SALib not installed (pip install 'il2als[sensitivity]')")


def test_sobol_finds_the_treg_drivers_and_ignores_what_cannot_matter():
    r = global_sensitivity(load_parameters("fast"), ["treg_peak", "survival_640d"], n_base=64, seed=3,
                           parameters=["treg_max_proliferation", "ec50_treg", "hazard_max", "k_inflammatory"])
    tp = dict(zip(r.space.names, r.indices["treg_peak"]["ST"]))
    assert max(tp, key=tp.get) == "treg_max_proliferation" and tp["treg_max_proliferation"] > 0.5
    # hazard and inflammation sit downstream of the Tregs: no path back to the Treg peak
    assert abs(tp["hazard_max"]) < 1e-6 and abs(tp["k_inflammatory"]) < 1e-6
    s = dict(zip(r.space.names, r.indices["survival_640d"]["ST"]))
    assert s["hazard_max"] + s["k_inflammatory"] > 0.5
    for o in r.outputs:
        ix = r.indices[o]
        assert np.all(ix["ST"] >= ix["S1"] - ix["S1_conf"] - ix["ST_conf"] - 0.05)  # total >= first order
    assert r.n_evaluations == 64 * 6 and r.n_failed == 0


def test_local_sensitivities_are_zero_off_path_and_converged():
    a = local_sensitivity(load_parameters("slow"), ["treg_peak", "alsfrs_slope"], parameters=["treg_death", "hazard_max", "nfl_csf_healthy",
                                                                            "k_inflammatory"], h=0.05)
    b = local_sensitivity(load_parameters("slow"), ["treg_peak", "alsfrs_slope"], parameters=list(a.names), h=0.01)
    i = {n: k for k, n in enumerate(a.names)}
    # off-path parameters: zero up to the step-size noise of the shared adaptive integration
    assert abs(a.S[i["hazard_max"], 0]) < 1e-6 and abs(a.S[i["nfl_csf_healthy"], 1]) < 1e-6 and abs(a.S[i["hazard_max"], 1]) < 1e-6
    assert a.S[i["treg_death"], 0] < -0.5  # faster Treg death, lower peak
    assert np.allclose(a.S, b.S, rtol=0.05, atol=1e-3)  # central differences: the step does not matter


def test_dask_local_cluster_and_process_pool_give_the_threads_answer():
    distributed = pytest.importorskip("dask.distributed", reason="dask.distributed not installed")
    d = TrialDesign(n_per_arm=15, follow_up_days=300.0)
    spec = load_population_spec()
    ref = run_trial(d, "mirocals", spec, 3, 11)
    pool = run_trial(d, "mirocals", spec, 3, 11, scheduler="processes")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
        with distributed.Client(cluster) as client:
            dk = run_trial(d, "mirocals", spec, 3, 11, scheduler=client)
            P = np.tile(spec.centre.vector(), (5, 1)) * np.linspace(0.8, 1.2, 5)[:, None]
            y_dask = evaluate(P, "mirocals", 100.0, ["treg_peak", "slope_gain"], chunk=2, scheduler=client)
        by_address = run_trial(d, "mirocals", spec, 2, 11, scheduler=cluster.scheduler_address)
    for other in (pool, dk):
        for a, b in zip(ref.replicates, other.replicates):
            assert np.array_equal(a.time, b.time) and np.array_equal(a.slope, b.slope, equal_nan=True)
    for a, b in zip(ref.replicates, by_address.replicates):
        assert np.array_equal(a.time, b.time) and np.array_equal(a.event, b.event)
    assert np.array_equal(y_dask, evaluate(P, "mirocals", 100.0, ["treg_peak", "slope_gain"]))


def test_a_task_submitted_to_the_pool_runs_beside_later_ones_and_gives_the_in_process_answer():
    # what il2als trial does with the paired expected effect: queued first, run beside the replicates
    from il2als.errors import Il2alsError
    from il2als.studies import expected_hazard_ratio, start_pool, submit
    from il2als.studies.parallel import run_tasks

    start_pool(warm="il2als.studies.trial:warm_up")
    spec = load_population_spec()
    d = TrialDesign(n_per_arm=15, follow_up_days=300.0)
    pending = submit(expected_hazard_ratio, "mirocals", spec, 60, 5, design=d, scheduler="processes")
    rest = run_tasks(abs, [(-2,), (-3,)], scheduler="processes")
    here = submit(expected_hazard_ratio, "mirocals", spec, 60, 5, design=d).result()
    there = pending.result()
    assert rest == [2, 3] and there.n == here.n == 60 and math.isfinite(here.hr["overall"])
    np.testing.assert_equal(there.hr, here.hr)  # NaN (a stratum without deaths) equal to NaN
    with pytest.raises(Il2alsError, match="give a regimen with doses"):  # a task's error comes back as itself
        submit(expected_hazard_ratio, "placebo", spec, 60, 5, scheduler="processes").result()


def test_workers_are_forked_with_the_engine_loaded_and_stop_with_the_command():
    # #16: a worker's own start (importing il2als, loading the engine) cost ~2.5 s of CPU; forked from the fork
    # server, which loaded them once, it starts with them (no warm-up asked of this pool)
    from il2als.studies import parallel

    parallel.end_pool()
    loaded = "__import__('il2als.studies.trial', fromlist=['_WARM'])._WARM"
    assert parallel.submit(eval, loaded, scheduler="processes", workers=1).result() == [True]
    worker = next(iter(parallel._POOL[0][1]._processes.values()))
    parallel.end_pool()
    assert not worker.is_alive()
    # the fork server itself ends with the command that started it, even a killed one
    code = ("import os, sys\n"
            "from il2als.studies import parallel\n"
            "print(parallel.submit(os.getppid, scheduler='processes', workers=1).result(), flush=True)\n"
            "os.kill(os.getpid(), 9)\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    server = int(r.stdout.split()[0])

    def alive() -> bool:  # neither gone nor a zombie
        try:
            with open(f"/proc/{server}/stat") as fh:
                return fh.read().split(")")[-1].split()[0] != "Z"
        except OSError:
            return False

    deadline = time.time() + 10
    while time.time() < deadline and alive():
        time.sleep(0.2)
    assert not alive(), "the fork server outlived its command"


def test_a_command_ends_its_workers_when_its_results_are_in(tmp_path):
    # #16: left to the interpreter's exit, the workers would be asked to stop and waited for (~0.7 s a command)
    from il2als.cli.app import main
    from il2als.studies import parallel

    rc = main(["trial", "--replicates", "2", "--n-per-arm", "10", "--scheduler", "processes", "--expected-n", "0",
               "--no-plot", "--out", str(tmp_path / "t")])
    assert rc == 0 and (tmp_path / "t" / "summary.json").is_file()
    assert parallel._POOL == []  # ended, not kept for the interpreter's exit
    parallel.start_pool(1)  # forked workers start with the first task
    assert parallel.submit(os.getpid, scheduler="processes", workers=1).result() != os.getpid()
    procs = list(parallel._POOL[0][1]._processes.values())
    parallel.end_pool()
    assert parallel._POOL == [] and procs and all(not p.is_alive() for p in procs)


def test_cli_sensitivity_writes_tables_and_figures(tmp_path):
    out = tmp_path / "s"
    r = subprocess.run([sys.executable, "-m", "il2als", "sensitivity", "--method", "sobol", "--base-samples", "16",
                        "--parameters", "ec50_treg,treg_max_proliferation,k_inflammatory", "--output",
                        "treg_peak,slope_gain", "--days", "200", "--out", str(out)], capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stderr
    rows = list(csv.DictReader(open(out / "sobol.csv")))
    assert {(x["profile"], x["output"]) for x in rows} == {(p, o) for p in ("slow", "fast") for o in ("treg_peak", "slope_gain")}
    assert {"S1", "S1_conf", "ST", "ST_conf", "unit"} <= set(rows[0])
    for png in ("sobol.png", "tornado.png"):
        assert (out / png).read_bytes()[:4] == b"\x89PNG"
    for args, msg in ((["--output", "survival"], "did you mean"), (["--base-samples", "100"], "power of 2"),
                      (["--parameters", "ec50"], "unknown parameter"), (["--scheduler", "nowhere"], "scheduler")):
        bad = subprocess.run([sys.executable, "-m", "il2als", "sensitivity", "--base-samples", "16", "--no-local", *args,
                              "--out", str(tmp_path / "bad")], capture_output=True, text=True, timeout=300)
        assert bad.returncode == 2 and msg in bad.stderr and "Traceback" not in bad.stderr, (args, bad.stderr)
        assert not (tmp_path / "bad").exists()


def test_pool_workers_start_with_one_blas_thread_and_no_huge_page_hint_and_the_caller_keeps_its_environment():
    """#16: the process pool's workers (forked from the fork server, or spawned) run one BLAS thread and numpy without
    its transparent-huge-page hint (their large short-lived result arrays cost ~0.1 s each to fault in where the
    kernel compacts memory for them); the calling process's own environment is left as it was."""
    import os

    from il2als.studies import end_pool, run_tasks

    before = {k: os.environ.get(k) for k in ("NUMPY_MADVISE_HUGEPAGE", "OPENBLAS_NUM_THREADS")}
    if before["NUMPY_MADVISE_HUGEPAGE"] is not None:
        pytest.skip("NUMPY_MADVISE_HUGEPAGE is set by the caller, whose value the pool keeps")
    try:
        got = run_tasks(os.getenv, [("NUMPY_MADVISE_HUGEPAGE",), ("OPENBLAS_NUM_THREADS",)], scheduler="processes",
                        workers=1)
    finally:
        end_pool()
    assert got == ["0", before["OPENBLAS_NUM_THREADS"] or "1"]
    assert {k: os.environ.get(k) for k in before} == before
