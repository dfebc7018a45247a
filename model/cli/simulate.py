"""Commands that simulate one patient or a dataset, list regimens and parameters, and export the model."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from il2als import __version__
from il2als.cli._common import _parse_sets, _progress, _split, _with_sets, _write_rows
from il2als.errors import Il2alsError

__all__ = ["cmd_simulate", "cmd_regimens", "cmd_params", "cmd_equations", "cmd_export_sbml", "cmd_export_petab"]


def cmd_simulate(args: argparse.Namespace) -> int:
    from il2als.export.run_folder import atomic_dir, finish_run
    from il2als.inputs.parameters import load_parameters
    from il2als.inputs.regimens import as_regimen
    from il2als.results.trajectory import summarise
    from il2als.solve.single import SolverOptions, check_grid, simulate

    if args.days is not None and args.duration is not None:
        raise Il2alsError("give either --days or --duration, not both")
    if args.data is not None:
        return _simulate_dataset(args)
    args.step = args.step or "1 day"
    if args.days is not None:
        if not (args.days > 0):
            raise Il2alsError(f"--days {args.days:g} must be positive, e.g. --days 640")
        duration = f"{args.days} day"
    else:
        duration = args.duration or "640 day"
    check_grid(duration, args.step)
    reg = as_regimen(args.regimen)
    profiles = _split(args.profile if args.profile is not None else "slow,fast")
    if not profiles:
        raise Il2alsError("--profile is empty; give slow, fast, default or a parameter file")
    sets = _parse_sets(args.set)
    options = SolverOptions(method=args.method, rtol=args.rtol, atol=args.atol)
    params = []
    for prof in profiles:
        ps = load_parameters(prof)
        if sets:
            ps = ps.updated(**sets)
        params.append((prof if "/" not in prof and not prof.endswith(".toml") else ps.name, ps))
    arms = [(reg.name, reg)]
    if args.placebo and len(reg):
        from il2als.inputs.regimens import none

        arms.append(("placebo", none()))
    runs = []
    for label, ps in params:
        for arm, r in arms:
            t0 = time.perf_counter()
            print(f"il2als: simulating {label} under {arm} for {duration} ...", file=sys.stderr, flush=True)
            tr = simulate(ps, r, duration, step=args.step, options=options)
            print(f"il2als:   done in {time.perf_counter() - t0:.1f} s", file=sys.stderr)
            runs.append((label, arm, tr))
    out = Path(args.out)
    with atomic_dir(out) as tmp:
        with open(tmp / "trajectory.csv", "w", encoding="utf-8", newline="") as fh:
            for i, (label, arm, tr) in enumerate(runs):
                text = tr.to_csv(extra={"profile": label, "regimen": arm})
                fh.write(text if i == 0 else text.split("\n", 1)[1])
        summary_rows = []
        for label, arm, tr in runs:
            s = summarise(tr)
            summary_rows.append({"profile": label, "regimen": arm, **{f"{k} [{u}]": v for k, (v, u) in s.items()}})
        _write_rows(tmp / "summary.csv", summary_rows)
        if not args.no_plot:
            from il2als.plot._common import save_figure
            from il2als.plot.trajectories import plot_trajectories

            fig = plot_trajectories(runs, title=f"il2als {__version__}: {reg.description or reg.summary()} — {duration}")
            save_figure(fig, tmp / "trajectory.png")
        finish_run(
            tmp,
            regimen={"name": reg.name, "description": reg.description, "summary": reg.summary(),
                     "doses": [[d.time, d.amount, d.unit] for d in reg.doses]},
            placebo_arm=bool(args.placebo and len(reg)),
            duration=duration, step=args.step,
            solver={"method": options.method, "rtol": options.rtol, "atol": options.atol},
            overrides=sets,
            parameter_sets={label: {"name": ps.name, "title": ps.title, "files": list(ps.files),
                                    "values": {k: [v.value, v.unit, v.source] for k, v in ps.values.items()}}
                            for label, ps in params},
            references={k: v for _, ps in params for k, v in ps.cited().items()},
            outputs=["trajectory.csv", "summary.csv"] + ([] if args.no_plot else ["trajectory.png"]),
        )
    _print_summary(runs)
    print(f"il2als: wrote {out}/trajectory.csv, summary.csv{'' if args.no_plot else ', trajectory.png'}, manifest.json")
    return 0


def _simulate_dataset(args: argparse.Namespace) -> int:
    """``simulate --data``: each ID under its own doses and covariates; observed vs predicted."""
    import csv

    import numpy as np

    from il2als.export.run_folder import atomic_dir, finish_run
    from il2als.inputs.datasets import read_dataset
    from il2als.inputs.parameters import load_parameters
    from il2als.results.batch import PopulationResult
    from il2als.solve.batch import simulate_population
    from il2als.solve.observations import observation_values, predict_observations
    from il2als.solve.single import check_grid, output_grid

    ds = read_dataset(args.data)
    profiles = _split(args.profile if args.profile is not None else "default")
    if len(profiles) != 1:
        raise Il2alsError(f"with --data give one --profile (the base parameters for every ID), not '{args.profile}'")
    base = _with_sets(load_parameters(profiles[0]), args.set)
    last = max([o.time for o in ds.observations] + [r.end for r in ds.regimens.values() if len(r)])
    duration = args.duration or f"{args.days if args.days is not None else max(last, 1.0)} day"
    T, _ = check_grid(duration, "1 day")
    step = args.step or f"{min(1.0, T / 400):.6g} day"  # a short study gets a fine grid, a long one days
    T, dt = check_grid(duration, step)
    print(f"il2als: simulating {len(ds.ids)} IDs from {args.data} for {duration} (output every {step}) ...",
          file=sys.stderr, flush=True)
    P = ds.parameter_matrix(base)
    grid = output_grid(T, dt)
    obs_t = np.array([o.time for o in ds.observations])
    # one engine run writes both the trajectory grid and the observation times themselves (predictions are never
    # read off the grid); observations after the end need their own run
    times = np.unique(np.concatenate([grid, obs_t[obs_t <= T]]))
    res_all = simulate_population(P, [ds.regimens[i] for i in ds.ids], times=times,
                                  progress=_progress("patients") if len(ds.ids) > 50 else None)
    pred = (observation_values(ds, res_all)[0] if np.all(obs_t <= T) else predict_observations(ds, P)[0])
    on_grid = np.isin(res_all.time, grid)
    res = PopulationResult(res_all.time[on_grid], {n: v[:, on_grid] for n, v in res_all.values.items()},
                           res_all.units, res_all.status, res_all.failures, res_all.steps)
    names = list(res.values)
    preds = [{"ID": o.id, "TIME [day]": o.time, "observable": o.observable, "DV": o.value, "PRED": float(v),
              "unit": res.units.get(o.observable, "")} for o, v in zip(ds.observations, pred)]
    out = Path(args.out)
    with atomic_dir(out) as tmp:
        with open(tmp / "trajectory.csv", "w", encoding="utf-8", newline="") as fh:
            w = csv.writer(fh, lineterminator="\n")
            w.writerow(["ID", "time [day]", *(res.header(n) for n in names)])
            for i, pid in enumerate(ds.ids):
                for k, t in enumerate(res.time):
                    w.writerow([pid, f"{t:.10g}", *(f"{res[n][i, k]:.8g}" for n in names)])
        _write_rows(tmp / "predictions.csv", preds)
        if not args.no_plot:
            from il2als.plot._common import save_figure
            from il2als.plot.fitting import plot_population_fit

            save_figure(plot_population_fit(res, ds, title=f"il2als {__version__}: {Path(args.data).name}, "
                                                             f"{len(ds.ids)} IDs, {base.name} parameters"), tmp / "data.png")
        finish_run(tmp, data=str(args.data), ids=ds.ids, base_parameters=base.name, duration=duration, step=step,
                       references=base.cited(),
                       outputs=["trajectory.csv", "predictions.csv"] + ([] if args.no_plot else ["data.png"]))
    print(f"il2als: wrote {out}/trajectory.csv, predictions.csv ({len(preds)} observations){'' if args.no_plot else ', data.png'}, manifest.json")
    return 0


def _print_summary(runs) -> None:  # noqa: ANN001
    from il2als.results.trajectory import summarise

    cols = [("treg_pct_cd4_peak", "Treg peak"), ("ccl2_csf_mean", "CSF CCL2 mean"), ("nfl_serum_mean", "sNfL mean"),
            ("pnfh_csf_baseline", "CSF pNfH at start"), ("alsfrs_r_slope", "ALSFRS-R slope"),
            ("alsfrs_r_end", "ALSFRS-R end"), ("survival_end", "survival end")]
    sums = [(label, arm, summarise(tr)) for label, arm, tr in runs]
    heads = [f"{lab} [{sums[0][2][k][1]}]" for k, lab in cols]
    widths = [len(h) + 2 for h in heads]
    print(f"{'profile':<10}{'regimen':<14}" + "".join(f"{h:>{w}}" for h, w in zip(heads, widths)))
    for label, arm, s in sums:
        print(f"{label:<10}{arm:<14}" + "".join(f"{s[k][0]:>{w}.4g}" for (k, _), w in zip(cols, widths)))


def cmd_regimens(args: argparse.Namespace) -> int:
    from il2als.inputs.regimens import NAMED, SENTENCE_FORMS, named

    w = max(len("name"), *map(len, NAMED)) + 2  # the longest name sets the column
    print(f"{'name':<{w}}{'doses':>6}  description")
    for name in NAMED:
        r = named(name)
        print(f"{name:<{w}}{len(r):>6}  {r.description}")
    print("\nA regimen can also be a CSV event table (columns 'time [h]', 'amount [MIU]') or a sentence, e.g.:")
    for s in SENTENCE_FORMS:
        print(f"  {s}")
    return 0


def cmd_params(args: argparse.Namespace) -> int:
    from il2als.inputs.parameters import available, load_parameters

    if not args.name:
        print("parameter sets and profiles: " + ", ".join(available()))
        print("show one with: il2als params NAME  (or a path to a .toml file)")
        return 0
    ps = load_parameters(args.name)
    print(f"# {ps.name}: {ps.title}  (files: {', '.join(ps.files)})")
    print(f"{'parameter':<32}{'value':>12}  {'unit':<18}{'plausible range':<24}source")
    for v in ps.values.values():
        rng = f"[{v.plausible[0]:.3g}, {v.plausible[1]:.3g}]"
        print(f"{v.name:<32}{v.value:>12.4g}  {v.unit:<18}{rng:<24}{v.source[:70]}")
    print("\nReferences behind these values:")
    for k, c in ps.cited().items():
        print(f"  [{k}] {c}")
    return 0


def cmd_equations(args: argparse.Namespace) -> int:
    from il2als.compiler.equations import equations_markdown

    print(equations_markdown())
    return 0


def cmd_export_sbml(args: argparse.Namespace) -> int:
    from il2als.export.run_folder import atomic_file
    from il2als.export.sbml import to_sbml
    from il2als.inputs.parameters import load_parameters
    from il2als.inputs.regimens import as_regimen

    if not args.out.endswith((".xml", ".sbml")):
        raise Il2alsError(f"--out '{args.out}' should end in .xml or .sbml, e.g. --out model.xml")
    params = _with_sets(load_parameters(args.params), args.set)
    reg = as_regimen(args.regimen)
    ex = to_sbml(params, reg, dose_slots=args.dose_slots)
    if ex.errors:
        raise Il2alsError(f"libSBML found {len(ex.errors)} error(s) in the export, first: {ex.errors[0]}; please report it")
    with atomic_file(args.out) as tmp:
        tmp.write_text(ex.xml, encoding="utf-8")
    print(f"il2als: wrote {args.out}: SBML L3V2, {len(params.values)} parameters ({params.name}), "
          f"{ex.n_dose_slots} dose events ({reg.summary()}); libSBML: 0 errors, {len(ex.warnings)} warnings")
    for w in ex.warnings[:5]:
        print(f"il2als:   {w.splitlines()[0]}", file=sys.stderr)
    return 0


def cmd_export_petab(args: argparse.Namespace) -> int:
    from il2als.cli.fitting_runs import data_problem
    from il2als.export.petab import lint, write_petab
    from il2als.export.run_folder import atomic_dir

    problem = data_problem(args.data, _split(args.free or ""), args.params, args.error)
    out = Path(args.out)
    with atomic_dir(out) as tmp:
        files = write_petab(problem, tmp)
        try:
            ok = lint(tmp)
        except Il2alsError:
            ok = None
        if ok is False:
            raise Il2alsError("the petab linter rejected the export (messages above); please report it")
    n = len(problem.data.observations)
    print(f"il2als: wrote {out}/ ({', '.join(files)}): {len(problem.free)} free parameters, {n} measurements, "
          f"{len(problem.data.ids)} conditions; petab lint: {'passed' if ok else 'not run (pip install petab)'}")
    return 0
