"""Speed, memory and accuracy of the engines, printed as figures and ratios (not a test).

    python benchmarks/run.py            # start-up, accuracy, engines at N = 1 ... 10,000 (lanes and scalar) against
                                        # libRoadRunner and scipy, peak memory, one trial, il2als trial with 20
                                        # and 200 replicates, a 2^8 Sobol run (extrapolated to 2^12)
    python benchmarks/run.py --full     # the full 2^12 Sobol analysis
    python benchmarks/run.py --lanes    # also the lanes kernel at widths 8, 16, 32, 64

Per-patient times are wall-clock on this machine for a 640-day MIROCALS trajectory (90 doses) with a daily output
grid. The batch engine uses both cores (numba threads); the scipy path is one patient at a time.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--full", action="store_true", help="also the full 2^12 Sobol analysis")
    ap.add_argument("--max-n", type=int, default=10_000)
    ap.add_argument("--lanes", action="store_true", help="also compare lane widths 8/16/32/64 (compiles each)")
    a = ap.parse_args()

    from il2als import SolverOptions, load_parameters, simulate
    from il2als.compiler import lane_width
    from il2als.inputs.population_spec import load_population_spec
    from il2als.solve.batch import BatchOptions, simulate_population
    from il2als.studies.cohort import sample_population
    from il2als.studies.trial import design, run_trial

    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}")
    startup()
    spec = load_population_spec()
    t0 = time.perf_counter()
    simulate_population([load_parameters("default")], "mirocals", "640 day", outputs=["nfl_serum"])
    print(f"batch engine load (compile on first use, else disk cache): {time.perf_counter() - t0:.1f} s; "
          f"{lane_width()} lanes")

    outputs = ["nfl_serum", "treg_count", "mn_reserve", "alsfrs_r", "survival"]
    pool = sample_population(spec, a.max_n, np.random.default_rng(1))
    accuracy(pool.params[:20], outputs)

    # scipy per patient (Python right-hand side, LSODA, piecewise)
    n_sc = 3
    t0 = time.perf_counter()
    for i in range(n_sc):
        simulate(load_parameters("default"), "mirocals", "640 day", options=SolverOptions(method="LSODA"))
    t_scipy = (time.perf_counter() - t0) / n_sc
    print(f"scipy solve_ivp (LSODA, analytic Jacobian, Python RHS): {1e3 * t_scipy:.1f} ms per patient")
    t0 = time.perf_counter()
    for i in range(20):
        simulate(load_parameters("default"), "mirocals", "640 day", options=SolverOptions(method="engine"))
    print(f"single-patient simulate on the engine: {1e3 * (time.perf_counter() - t0) / 20:.1f} ms")

    rr = roadrunner_per_patient(pool.params[:50], outputs)
    if rr is None:
        print("libRoadRunner: not installed (pip install libroadrunner): not measured")
    else:
        print(f"libRoadRunner {rr['version']} (CVODE, rtol {rr['rtol']:g}, il2als's SBML export, one core): "
              f"{1e3 * rr['wall']:.1f} ms wall, {1e3 * rr['cpu']:.1f} ms CPU per patient (MIROCALS); "
              f"{1e3 * rr['wall_placebo']:.1f} ms on placebo; {1e3 * rr['wall_rtol_1e-5']:.1f} ms at the engine's "
              f"rtol 1e-5; CVODE printed {rr['warnings']} step-size warnings (t + h = t at dose times)")

    print("batch engine, 640-day MIROCALS patients, baselines included (ms per patient; CPU = both cores' time):")
    for n in (1, 100, 1000, 10_000):
        if n > a.max_n:
            break
        for kernel in ("auto", "scalar"):  # auto: lanes from one full lane group, the scalar kernel below that
            if kernel == "scalar" and (n > 1000 or n < lane_width()):
                continue
            opts = BatchOptions(kernel=kernel)
            simulate_population(pool.params[:min(n, 64)], "mirocals", "640 day", outputs=outputs, options=opts)
            w0, c0 = time.perf_counter(), time.process_time()
            simulate_population(pool.params[:n], "mirocals", "640 day", outputs=outputs, options=opts)
            wall, cpu = (time.perf_counter() - w0) / n, (time.process_time() - c0) / n
            label = kernel if kernel == "scalar" else ("lanes" if n >= lane_width() else "scalar")
            line = (f"  N = {n:>6} {label:>6}: {1e3 * wall:6.2f} wall, {1e3 * cpu:6.2f} CPU; "
                    f"{t_scipy / wall:5.0f}x scipy")
            if rr is not None:
                line += f", {rr['wall'] / wall:5.1f}x libRoadRunner wall, {rr['cpu'] / cpu:5.1f}x per core"
            print(line)
    if rr is not None:
        print("  targets (#16): >= 12x libRoadRunner per core for the engine at N = 1,000")
    if a.max_n >= 10_000:
        print(f"peak memory, 10,000 patients x 641 days, 5 outputs, in a fresh process: {peak_memory(10_000):.0f} MiB "
              "(target <= 1 GiB)")

    d = design("mirocals")
    run_trial(d, "mirocals", spec, 1, 1)
    t0 = time.perf_counter()
    for s in range(5):
        run_trial(d, "mirocals", spec, 1, s)
    print(f"one 220-patient virtual trial in this process (sample, simulate, analyse): "
          f"{(time.perf_counter() - t0) / 5:.2f} s")
    # the command's own work: 20 x 220 patients, and the paired expected effect (--expected-n patients, each in
    # both arms); libRoadRunner would simulate them all to give the same answer, on one core, nothing else
    from il2als.cli.app import build_parser

    n_exp = build_parser().parse_args(["trial", "--out", "unused"]).expected_n
    for extra, n_paired in (([], n_exp), (["--expected-n", "0"], 0)):
        args = ["trial", "--replicates", "20", "--seed", "2025", "--no-plot", *extra]
        what = (f"20 x {2 * d.n_per_arm} patients and the expected effect's {n_paired:,} in both arms" if n_paired
                else f"20 x {2 * d.n_per_arm} patients, no expected effect: --expected-n 0")
        if rr is None:
            t20 = command(args, repeat=3)
            print(f"il2als trial --replicates 20 (whole command, start-up included, median of 3; {what}): {t20:.1f} s")
            continue
        # libRoadRunner is timed again just before each run (on 20 of the patients): this host's speed drifts
        # between minutes, and a ratio should compare the two at the same moment
        runs = []
        for _ in range(3):
            now = roadrunner_per_patient(pool.params[:20], outputs)
            t_rr = (20 * d.n_per_arm + n_paired) * (now["wall"] + now["wall_placebo"])
            t20 = command(args)
            runs.append((t20, t_rr, t_rr / t20))
        t20, t_rr, ratio = sorted(runs, key=lambda r: r[2])[1]
        print(f"  ({' '.join(args)}: runs {', '.join(f'{r[0]:.1f} s against {r[1]:.0f} s = {r[2]:.1f}x' for r in runs)};"
              " the median ratio below)")
        print(f"il2als trial --replicates 20 (whole command, start-up included; {what}): {t20:.1f} s; libRoadRunner "
              f"simulating the same patients alone, timed just before: {t_rr:.0f} s = {ratio:.1f}x (target >= 25x)")
    t200 = command(["trial", "--replicates", "200", "--seed", "2025", "--no-plot"], repeat=3)
    print(f"il2als trial --replicates 200 (whole command, start-up included; median of 3): {t200:.1f} s "
          "(target <= 30 s)")
    if a.lanes:
        lane_widths(pool.params[:1000], outputs)

    from il2als.studies.sensitivity import global_sensitivity

    n_base = 4096 if a.full else 256
    t0 = time.perf_counter()
    r = global_sensitivity(load_parameters("fast"), ["survival_640d", "alsfrs_slope", "treg_peak"], n_base=n_base)
    dt = time.perf_counter() - t0
    scale = 4096 / n_base
    print(f"Sobol, 10 parameters, {n_base} base samples ({r.n_evaluations} patients): {dt:.0f} s"
          + (f" -> 2^12 ~ {dt * scale / 60:.1f} min" if scale > 1 else f" = {dt / 60:.1f} min") + " (target < 10 min)")


def accuracy(P, outputs) -> None:
    """Largest relative error against Radau at rtol 1e-10 (the tight reference), for the batch engine at its
    default tolerance and the trial's, and for the single-patient scipy path at its default."""
    from il2als import SolverOptions, load_parameters, simulate
    from il2als.solve.batch import BatchOptions, simulate_population

    ref_opts = SolverOptions(method="Radau", rtol=1e-10, atol=1e-13)
    base = load_parameters("default")
    refs = [simulate(base.with_vector(P[i], name=f"patient {i}"), "mirocals", "640 day", options=ref_opts)
            for i in range(len(P))]
    names = ("nfl_serum", "treg_count", "mn_reserve", "alsfrs_r", "survival")

    def worst(get) -> float:  # noqa: ANN001
        return max(float(np.max(np.abs(get(i, n) - refs[i][n]) / np.abs(refs[i][n]))) for i in range(len(P))
                   for n in names)

    for label, opts in (("default rtol 1e-5", BatchOptions()), ("trial rtol 1e-4", BatchOptions(rtol=1e-4))):
        res = simulate_population(P, "mirocals", "640 day", outputs=list(names), options=opts)
        print(f"accuracy, batch engine at its {label} vs Radau rtol 1e-10, {len(P)} patients, {', '.join(names)}: "
              f"max relative error {worst(lambda i, n: res[n][i]):.1e}" + (" (target <= 1e-5)" if "default" in label else ""))
    rr = _roadrunner("mirocals")
    if rr is not None:
        from il2als.solve.single import baseline_state

        warned: list = []
        with _count_solver_warnings(warned):
            got = [rr[0](P[i], baseline_state(P[i]), names) for i in range(len(P))]
        print(f"accuracy, libRoadRunner at its default rtol {rr[1]:g} vs the same reference, {len(P)} patients: "
              f"{worst(lambda i, n: got[i][:, names.index(n)]):.1e}")
    sc = [simulate(base.with_vector(P[i], name=f"patient {i}"), "mirocals", "640 day",
                   options=SolverOptions(method="LSODA")) for i in range(3)]
    print(f"accuracy, scipy path at its default (LSODA) vs the same reference, 3 patients: "
          f"{max(float(np.max(np.abs(sc[i][n] - refs[i][n]) / np.abs(refs[i][n]))) for i in range(3) for n in names):.1e}")


def peak_memory(n: int) -> float:
    """Peak RSS (MiB) of a fresh process that simulates n patients (sampling and baselines included)."""
    import subprocess

    code = ("import numpy as np, resource\n"
            "from il2als.inputs.population_spec import load_population_spec\n"
            "from il2als.studies.cohort import sample_population\n"
            "from il2als.solve.batch import simulate_population\n"
            f"P = sample_population(load_population_spec(), {n}, np.random.default_rng(1)).params\n"
            "simulate_population(P, 'mirocals', '640 day', outputs=['nfl_serum', 'treg_count', 'mn_reserve', "
            "'alsfrs_r', 'survival'])\n"
            "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    return int(out.split()[-1]) / 1024


def command(args: list[str], repeat: int = 1) -> float:
    """Wall time of an ``il2als`` command in a new process, writing to a temporary folder: the median of ``repeat``
    runs (this host's speed drifts by +-15% from minute to minute; each run's time is printed when repeat > 1)."""
    import subprocess

    times = []
    for _ in range(repeat):
        with tempfile.TemporaryDirectory() as d:
            t0 = time.perf_counter()
            subprocess.run([sys.executable, "-m", "il2als", *args, "--out", str(Path(d) / "run")], check=True,
                           capture_output=True)
            times.append(time.perf_counter() - t0)
    if repeat > 1:
        print(f"  ({' '.join(args)}: runs {', '.join(f'{t:.1f}' for t in times)} s; median below)")
    return float(np.median(times))


def lane_widths(P, outputs) -> None:
    """The lanes kernel at several widths, each in a new process with its own engine (compiled once per width,
    ~35 s each, then cached), against the scalar kernel: CPU time per patient at N = len(P)."""
    import subprocess

    code = ("import time, numpy as np\n"
            "from il2als.inputs.population_spec import load_population_spec\n"
            "from il2als.studies.cohort import sample_population\n"
            "from il2als.solve.batch import BatchOptions, simulate_population\n"
            f"P = sample_population(load_population_spec(), {len(P)}, np.random.default_rng(1)).params\n"
            "for k in ('scalar', 'lanes'):\n"
            f"    simulate_population(P[:64], 'mirocals', '640 day', outputs={outputs!r}, options=BatchOptions(kernel=k))\n"
            "    c = time.process_time()\n"
            f"    simulate_population(P, 'mirocals', '640 day', outputs={outputs!r}, options=BatchOptions(kernel=k))\n"
            "    print((time.process_time() - c) / len(P))\n")
    for w in (8, 16, 32, 64):
        env = {**os.environ, "IL2ALS_LANES": str(w)}
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env)
        scalar, lanes = (float(x) for x in out.stdout.split()[-2:])
        print(f"lanes {w:>2}: {1e3 * lanes:.2f} ms CPU per patient = {scalar / lanes:.2f}x the scalar kernel")


def startup(repeats: int = 5) -> None:
    """Wall time of the commands that should answer at once, against a bare numpy import (medians)."""
    import subprocess

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
    # the compiled model in a new process: built through sympy (cold) or read back from the model card and the
    # generated source (warm: no sympy)
    code = [sys.executable, "-c", "from il2als.compiler import default_model; default_model()"]
    with tempfile.TemporaryDirectory() as d:
        env = {**os.environ, "IL2ALS_CACHE_DIR": d}

        def forget() -> None:
            for f in Path(d).glob("generated/*"):
                f.unlink()

        c = median(code, env, before=forget)
        w = median(code, env)
        print(f"start-up: the compiled model in a new process {c:.2f} s built through sympy / {w:.2f} s from the "
              f"cached model card and generated source, no sympy ({c - w:.2f} s saved a process)")
        one = [sys.executable, "-c", "from il2als import load_parameters, simulate_population; "
               "simulate_population([load_parameters('default')] * 40, 'mirocals', '640 day')"]
        t0 = time.perf_counter()
        subprocess.run(one, capture_output=True, check=True, env=env)
        cold = time.perf_counter() - t0
        warm = median(one, env, before=None)
    print(f"start-up: 40 patients in a new process, engine compiled cold (empty cache) {cold:.1f} s / "
          f"loaded from the disk cache {warm:.1f} s")


@contextlib.contextmanager
def _count_solver_warnings(counter: list):
    """Send what native code prints on stdout (SUNDIALS's CVODE warnings from libRoadRunner, which its Logger
    level does not reach) to a temporary file, and append how many warning lines it printed to ``counter``."""
    sys.stdout.flush()
    saved = os.dup(1)
    with tempfile.TemporaryFile(mode="w+b") as tmp:
        os.dup2(tmp.fileno(), 1)
        try:
            yield
        finally:
            sys.stdout.flush()
            os.dup2(saved, 1)
            os.close(saved)
            tmp.seek(0)
            counter.append(sum(b"[WARNING]" in line for line in tmp))


def _roadrunner(reg: str, rtol: float | None = None):
    """libRoadRunner loaded with il2als's SBML export of ``reg``; returns (run, rtol, version), where
    ``run(p, y0, outputs)`` simulates one patient 640 days on the daily grid and returns (641, len(outputs)).
    None when libRoadRunner is not installed."""
    try:
        import roadrunner
    except ImportError:
        return None
    from il2als import load_parameters
    from il2als.compiler.codegen import default_model
    from il2als.export.sbml import to_sbml
    from il2als.inputs.regimens import named
    from il2als.inputs.units import Q_

    roadrunner.Logger.setLevel(roadrunner.Logger.LOG_ERROR)
    m = default_model()
    rr = roadrunner.RoadRunner(to_sbml(load_parameters("default"), named(reg)).xml)
    if rtol is not None:
        rr.integrator.relative_tolerance = rtol
    pnames, snames = list(m.parameter_names), list(m.state_names)
    # the SBML holds the model's canonical units; il2als reports some outputs in others (mn_reserve in %): the
    # factors are worked out here, once, so that the timed loop holds libRoadRunner's own work only
    factor = {x.name: Q_(1.0, x.unit).to(x.output_unit or x.unit).magnitude
              for x in (*m.mechanism.states, *m.observables)}

    def run(p, y0, outputs):  # noqa: ANN001
        rr.resetAll()
        rr.setValues(pnames, list(p))
        rr.setValues(snames, list(y0))
        out = np.asarray(rr.simulate(0, 640, 641, selections=list(outputs)))
        return out * [factor[n] for n in outputs]

    return run, rr.integrator.relative_tolerance, roadrunner.__version__


def roadrunner_per_patient(P, outputs):
    """libRoadRunner (CVODE, at its default tolerances and at the engine's rtol 1e-5) on the model's own SBML export,
    one core: load once, then per patient set parameters and baseline state, simulate 640 days on the daily grid.
    Seconds per patient (wall and CPU on MIROCALS, wall on placebo), the CVODE warnings it printed, or None when
    it is not installed."""
    if importlib.util.find_spec("roadrunner") is None:
        return None
    from il2als.solve.single import baseline_state

    Y0 = [baseline_state(p) for p in P]  # the batch engine's time includes its baselines; this is set-up here
    res: dict = {}
    warned: list = []
    with _count_solver_warnings(warned):
        for reg, rtol, key in (("mirocals", None, "wall"), ("placebo", None, "wall_placebo"),
                               ("mirocals", 1e-5, "wall_rtol_1e-5")):
            run, res_rtol, res["version"] = _roadrunner(reg, rtol)
            res.setdefault("rtol", res_rtol)
            w0, c0 = time.perf_counter(), time.process_time()
            for p, y0 in zip(P, Y0):
                run(p, y0, outputs)
            res[key], res[key.replace("wall", "cpu")] = ((time.perf_counter() - w0) / len(P),
                                                         (time.process_time() - c0) / len(P))
    res["warnings"] = sum(warned)
    return res


if __name__ == "__main__":
    main()
