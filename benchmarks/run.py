"""Speed, memory and accuracy of the engines, printed as figures and ratios (not a test).

    python benchmarks/run.py            # engines, N = 1 ... 10,000, libRoadRunner, one trial, 20 replicates,
                                        # a 2^8 Sobol run (extrapolated to 2^12)
    python benchmarks/run.py --full     # also 200 trial replicates and the full 2^12 Sobol analysis

Per-patient times are wall-clock on this machine for a 640-day MIROCALS trajectory (90 doses) with a daily output
grid. The batch engine uses both cores (numba threads); the scipy path is one patient at a time.
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import time
from pathlib import Path

import numpy as np


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--full", action="store_true", help="also run 200 trial replicates")
    ap.add_argument("--max-n", type=int, default=10_000)
    a = ap.parse_args()

    from il2als import SolverOptions, load_parameters, simulate
    from il2als.inputs.population_spec import load_population_spec
    from il2als.solve.batch import simulate_population
    from il2als.studies.cohort import sample_population
    from il2als.studies.trial import design, run_trial

    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}")
    startup()
    spec = load_population_spec()
    t0 = time.perf_counter()
    simulate_population([load_parameters("default")], "mirocals", "640 day", outputs=["nfl_serum"])
    print(f"batch engine load (compile on first use, else disk cache): {time.perf_counter() - t0:.1f} s")

    outputs = ["nfl_serum", "treg_count", "mn_reserve", "alsfrs_r", "survival"]
    pool = sample_population(spec, a.max_n, np.random.default_rng(1))

    # accuracy against a tight-tolerance reference
    ref_opts = SolverOptions(method="Radau", rtol=1e-10, atol=1e-13)
    acc = []
    sub = pool.params[:3]
    res = simulate_population(sub, "mirocals", "640 day", outputs=outputs)
    base = load_parameters("default")
    for i in range(len(sub)):
        ps = base.with_vector(sub[i], name=f"patient {i}")
        tr = simulate(ps, "mirocals", "640 day", options=ref_opts)
        acc.append(max(np.max(np.abs(res[n][i] - tr[n]) / np.abs(tr[n])) for n in ("nfl_serum", "treg_count", "mn_reserve")))
    print(f"batch engine vs Radau rtol 1e-10: max relative error on NfL, Tregs, reserve = {max(acc):.2e} (target <= 1e-4)")

    # scipy per patient (Python right-hand side, LSODA, piecewise)
    n_sc = 3
    t0 = time.perf_counter()
    for i in range(n_sc):
        simulate(load_parameters("default"), "mirocals", "640 day")
    t_scipy = (time.perf_counter() - t0) / n_sc
    print(f"scipy solve_ivp (LSODA, analytic Jacobian, Python RHS): {1e3 * t_scipy:.1f} ms per patient")

    t_rr, rr_note = roadrunner_per_patient(pool.params[:50], outputs)
    print(f"libRoadRunner {rr_note}")

    rows = []
    for n in (1, 100, 1000, 10_000):
        if n > a.max_n:
            break
        rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        t0 = time.perf_counter()
        simulate_population(pool.params[:n], "mirocals", "640 day", outputs=outputs)
        dt = time.perf_counter() - t0
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        rows.append((n, dt / n))
        vs_rr = f", {t_rr / (dt / n):5.1f}x libRoadRunner" if t_rr else ""
        print(f"batch engine N = {n:>6}: {1e3 * dt / n:7.2f} ms per patient ({dt:.1f} s), "
              f"{t_scipy / (dt / n):6.0f}x scipy{vs_rr}; peak RSS {rss / 1024:.0f} MiB (+{(rss - rss0) / 1024:.0f})")
    if t_rr:
        print(f"targets: >= 100x scipy, >= 10x libRoadRunner at N = 1,000 (ratios above, pair by pair)")

    d = design("mirocals")
    run_trial(d, "mirocals", spec, 1, 1)
    t0 = time.perf_counter()
    run_trial(d, "mirocals", spec, 1, 5)
    print(f"one 220-patient virtual trial (sample, simulate, analyse): {time.perf_counter() - t0:.2f} s (target < 1 s)")
    for sched in (None, "processes"):
        t0 = time.perf_counter()
        run_trial(d, "mirocals", spec, 20, 2, scheduler=sched)
        dt = time.perf_counter() - t0
        print(f"20 replicates on {sched or 'threads'}: {dt:.1f} s -> 200 replicates ~ {10 * dt:.0f} s "
              "(targets: < 10 min, issue #4; < 1 min, issue #5)")
    if a.full:
        t0 = time.perf_counter()
        run_trial(d, "mirocals", spec, 200, 3, scheduler="processes")
        print(f"200 replicates (process pool): {time.perf_counter() - t0:.0f} s")

    from il2als.studies.sensitivity import global_sensitivity

    n_base = 4096 if a.full else 256
    t0 = time.perf_counter()
    r = global_sensitivity(load_parameters("fast"), ["survival_640d", "alsfrs_slope", "treg_peak"], n_base=n_base)
    dt = time.perf_counter() - t0
    scale = 4096 / n_base
    print(f"Sobol, 10 parameters, {n_base} base samples ({r.n_evaluations} patients): {dt:.0f} s"
          + (f" -> 2^12 ~ {dt * scale / 60:.1f} min" if scale > 1 else f" = {dt / 60:.1f} min") + " (target < 10 min)")


def startup(repeats: int = 5) -> None:
    """Wall time of the commands that should answer at once, against a bare numpy import (medians)."""
    import subprocess
    import sys

    def median(cmd: list[str], env: dict | None = None, before=None) -> float:  # noqa: ANN001
        times = []
        for _ in range(repeats):
            if before is not None:
                before()
            t0 = time.perf_counter()
            subprocess.run(cmd, capture_output=True, check=True, env=env)
            times.append(time.perf_counter() - t0)
        return float(np.median(times))

    ref = median([sys.executable, "-c", "import numpy"])
    print(f"start-up: python -c 'import numpy' {ref:.2f} s")
    for args in (["--version"], ["regimens"], ["params"]):
        t = median([sys.executable, "-m", "il2als", *args])
        print(f"start-up: il2als {' '.join(args):<10} {t:.2f} s = {t / ref:.1f}x the numpy import (target <= 5x)")
    # the compiled model in a new process: generated source re-derived through sympy (cold) or read back (warm)
    import tempfile

    code = [sys.executable, "-c", "from il2als.compiler import default_model; default_model()"]
    with tempfile.TemporaryDirectory() as d:
        env = {**os.environ, "IL2ALS_CACHE_DIR": d}

        def forget() -> None:
            for f in Path(d).glob("generated/*"):
                f.unlink()

        c = median(code, env, before=forget)
        w = median(code, env)
    print(f"start-up: the compiled model in a new process {c:.2f} s without / {w:.2f} s with the cached generated "
          f"source ({c - w:.2f} s saved a process)")


def roadrunner_per_patient(P, outputs):
    """Seconds per patient for libRoadRunner (CVODE, its default tolerances) on the model's own SBML export:
    load once, then per patient set parameters and baseline state, simulate 640 days on the daily grid."""
    try:
        import roadrunner
    except ImportError:
        return None, "not installed (pip install libroadrunner): not measured"
    from il2als import load_parameters
    from il2als.compiler.codegen import default_model
    from il2als.export.sbml import to_sbml
    from il2als.inputs.regimens import named
    from il2als.solve.single import baseline_state

    roadrunner.Logger.setLevel(roadrunner.Logger.LOG_ERROR)
    m = default_model()
    rr = roadrunner.RoadRunner(to_sbml(load_parameters("default"), named("mirocals")).xml)
    rtol = rr.integrator.relative_tolerance
    Y0 = [baseline_state(p) for p in P]  # the batch engine's time includes its baselines; this is set-up here
    sel = ["time", *outputs]
    t0 = time.perf_counter()
    for p, y0 in zip(P, Y0):
        rr.resetAll()
        rr.setValues(list(m.parameter_names), list(p))
        rr.setValues(list(m.state_names), list(y0))
        rr.simulate(0, 640, 641, selections=sel)
    dt = (time.perf_counter() - t0) / len(P)
    return dt, f"{roadrunner.__version__} (CVODE, rtol {rtol:g}, SBML export, one core): {1e3 * dt:.1f} ms per patient"


if __name__ == "__main__":
    main()
