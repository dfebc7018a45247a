"""The ``il2als`` command line. Bad input prints one line naming the problem and the fix, and exits 2."""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path

from . import __version__
from .errors import Il2alsError

EXIT_BAD_INPUT = 2


def _warn_one_line(message, category, filename, lineno, file=None, line=None) -> None:  # noqa: ANN001
    print(f"il2als: warning: {message}", file=sys.stderr)


def _with_sets(params, items: list[str]):  # noqa: ANN001, ANN202
    """``params`` with the ``--set NAME=QUANTITY`` overrides applied (unchanged when there are none)."""
    sets = _parse_sets(items)
    return params.updated(**sets) if sets else params


def _scheduler(args: argparse.Namespace):  # noqa: ANN202
    """``--scheduler``: ``auto`` is the process pool from 8 replicates, else this process."""
    if args.scheduler != "auto":
        return args.scheduler
    return "processes" if getattr(args, "replicates", getattr(args, "verify_replicates", 0)) >= 8 else None


def _split(value: str) -> list[str]:
    return [v.strip() for v in value.split(",") if v.strip()]


def _parse_sets(items: list[str]) -> dict[str, str]:
    out = {}
    for it in items:
        if "=" not in it:
            raise Il2alsError(f"--set '{it}' must be name=quantity, e.g. --set \"ec50_treg=2 IU/mL\"")
        k, v = it.split("=", 1)
        out[k.strip()] = v.strip()
    return out


def cmd_simulate(args: argparse.Namespace) -> int:
    from .dosing import regimen as as_regimen
    from .io import atomic_dir, finish_run
    from .parameters import load_parameters
    from .solve import SolverOptions, check_grid, simulate
    from .trajectory import summarise

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
        from .dosing import none

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
            from .plots import plot_trajectories, save_figure

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

    from .data import observation_values, predict_observations, read_dataset
    from .io import atomic_dir, finish_run
    from .parameters import load_parameters
    from .population import PopulationResult, simulate_population
    from .solve import check_grid, output_grid

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
            from .plots import plot_population_fit, save_figure

            save_figure(plot_population_fit(res, ds, title=f"il2als {__version__}: {Path(args.data).name}, "
                                                             f"{len(ds.ids)} IDs, {base.name} parameters"), tmp / "data.png")
        finish_run(tmp, data=str(args.data), ids=ds.ids, base_parameters=base.name, duration=duration, step=step,
                       references=base.cited(),
                       outputs=["trajectory.csv", "predictions.csv"] + ([] if args.no_plot else ["data.png"]))
    print(f"il2als: wrote {out}/trajectory.csv, predictions.csv ({len(preds)} observations){'' if args.no_plot else ', data.png'}, manifest.json")
    return 0


def _print_summary(runs) -> None:  # noqa: ANN001
    from .trajectory import summarise

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
    from .dosing import NAMED, SENTENCE_FORMS, named

    print(f"{'name':<14}{'doses':>6}  description")
    for name in NAMED:
        r = named(name)
        print(f"{name:<14}{len(r):>6}  {r.description}")
    print("\nA regimen can also be a CSV event table (columns 'time [h]', 'amount [MIU]') or a sentence, e.g.:")
    for s in SENTENCE_FORMS:
        print(f"  {s}")
    return 0


def cmd_params(args: argparse.Namespace) -> int:
    from .parameters import available, load_parameters

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
    from .docs import equations_markdown

    print(equations_markdown())
    return 0


def cmd_export_sbml(args: argparse.Namespace) -> int:
    from .dosing import regimen as as_regimen
    from .io import atomic_file
    from .parameters import load_parameters
    from .sbml import to_sbml

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
    from .fitting_io import data_problem
    from .io import atomic_dir
    from .petab_export import lint, write_petab

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


def cmd_sensitivity(args: argparse.Namespace) -> int:
    from .io import atomic_dir, finish_run
    from .parallel import describe
    from .sensitivity import DEFAULT_PARAMETERS, check_outputs, global_sensitivity, local_sensitivity

    outputs = check_outputs(_split(args.output))
    profiles = _split(args.profile)
    if not profiles:
        raise Il2alsError("--profile is empty; give slow, fast or both (slow,fast)")
    names = _split(args.parameters) if args.parameters else list(DEFAULT_PARAMETERS)
    if not (args.days > 0):
        raise Il2alsError(f"--days {args.days:g} must be positive, e.g. --days 640")
    from .parameters import load_parameters
    from .sensitivity import space

    for prof in profiles:  # check names and ranges before any long work
        space(load_parameters(prof), names)
    globals_, locals_ = [], []
    t0 = time.perf_counter()
    if args.method != "none":
        n_eval = args.base_samples * (len(names) + 2) if args.method == "sobol" else args.base_samples * (len(names) + 1)
        print(f"il2als: {args.method} over {len(names)} parameters, {args.base_samples} base samples = {n_eval} "
              f"patients per profile ({', '.join(profiles)}), on {describe(args.scheduler)} ...", file=sys.stderr, flush=True)
        for prof in profiles:
            globals_.append(global_sensitivity(prof, outputs, method=args.method, parameters=names,
                                               n_base=args.base_samples, regimen=args.regimen, duration=args.days,
                                               seed=args.seed, scheduler=args.scheduler,
                                               progress=_progress(f"{prof} chunks")))
    if not args.no_local:
        print("il2als: local normalised sensitivities (central differences, all parameters) ...", file=sys.stderr, flush=True)
        for prof in profiles:
            locals_.append(local_sensitivity(prof, outputs, regimen=args.regimen, duration=args.days))
    seconds = time.perf_counter() - t0
    out = Path(args.out)
    files = []
    with atomic_dir(out) as tmp:
        if globals_:
            _write_rows(tmp / f"{args.method}.csv", [r for g in globals_ for r in g.rows()])
            files.append(f"{args.method}.csv")
        if locals_:
            _write_rows(tmp / "local.csv", [r for lr in locals_ for r in lr.rows()])
            files.append("local.csv")
        if not args.no_plot:
            from .plots import plot_sobol, plot_tornado, save_figure

            if globals_ and args.method == "sobol":
                save_figure(plot_sobol(globals_, title=f"Sobol indices under {args.regimen}, {args.days:g} days "
                                                      f"({args.base_samples} base samples)"), tmp / "sobol.png")
                files.append("sobol.png")
            if locals_:
                save_figure(plot_tornado(locals_, title=f"Local sensitivities at the profile values, {args.regimen}"),
                            tmp / "tornado.png")
                files.append("tornado.png")
        finish_run(tmp, method=args.method, outputs=files, sensitivity_outputs=outputs, parameters=names,
                       profiles=profiles, base_samples=args.base_samples, regimen=args.regimen, days=args.days,
                       seed=args.seed, seconds=seconds,
                       failed_samples={g.profile: g.n_failed for g in globals_})
    for g in globals_:
        key = "ST" if g.method == "sobol" else "mu_star"
        for o in g.outputs:
            top = sorted(zip(g.indices[o][key], g.space.names), reverse=True)[:3]
            print(f"{g.profile:>5} {o:<14} top {key}: " + ", ".join(f"{n} {v:.2f}" for v, n in top))
    print(f"il2als: wrote {out}/{', '.join(files)}, manifest.json ({seconds:.0f} s)")
    return 0


def _write_rows(path: Path, rows: list[dict]) -> None:
    from .io import write_rows

    write_rows(path, rows)


def _progress(label: str):
    def cb(done: int, total: int) -> None:
        print(f"il2als: {label}: {done}/{total}", file=sys.stderr, flush=True)
    return cb


#: The parameter set of the trial-facing commands (scenario, trial, compare-regimens, power): the trial-informed
#: one; ``--params calibrated`` gives the literature-only set.
TRIAL_FACING_PARAMS = "mirocals-informed"


def _spec(path: str | None, params: str | None = None):
    """The population spec (``--population``), centred on ``--params`` when given (announced on stderr)."""
    from .cohort import load_population_spec

    spec = load_population_spec(path or "population")
    if params is None:
        return spec
    from .parameters import load_parameters

    ps = load_parameters(params)
    spec = spec.centred_on(ps)
    kind = ("trial-informed: fitted to the MIROCALS low-stratum HR, so that number is a fit here, not a prediction"
            if ps.name == TRIAL_FACING_PARAMS else "literature-only" if ps.name == "calibrated" else ps.title or ps.name)
    print(f"il2als: parameter set '{ps.name}' ({kind})", file=sys.stderr, flush=True)
    return spec


def _set_record(spec) -> dict:  # noqa: ANN001
    """What a manifest says about the parameter set behind a run."""
    c = spec.centre
    return {"name": c.name, "title": c.title, "files": list(c.files)}


def _positive_int(value: int, flag: str) -> int:
    if value < 1:
        raise Il2alsError(f"{flag} {value} must be a whole number >= 1")
    return value


def cmd_scenario(args: argparse.Namespace) -> int:
    from .dosing import regimen as as_regimen
    from .io import atomic_dir, finish_run
    from .scenario import SCENARIOS

    if args.name not in SCENARIOS:
        from .errors import did_you_mean

        raise Il2alsError(f"unknown scenario '{args.name}'{did_you_mean(args.name, SCENARIOS)}")
    if not (args.days > 0):
        raise Il2alsError(f"--days {args.days:g} must be positive, e.g. --days 640")
    reg = as_regimen(args.regimen)
    if len(reg) == 0:
        raise Il2alsError("--regimen has no doses; a scenario compares a regimen with placebo")
    spec = _spec(args.population, args.params)
    t0 = time.perf_counter()
    print(f"il2als: scenario {args.name}: {args.n} patients per group, placebo vs {reg.name}, {args.days:g} days ...",
          file=sys.stderr, flush=True)
    res = SCENARIOS[args.name](reg, spec, args.n, args.seed, args.days)
    print(f"il2als:   done in {time.perf_counter() - t0:.1f} s", file=sys.stderr)
    out = Path(args.out)
    with atomic_dir(out) as tmp:
        _write_rows(tmp / "scenario.csv", [{"parameter_set": spec.centre.name, **r} for r in res.rows])
        _write_rows(tmp / "effects.csv", [{"parameter_set": spec.centre.name, **r} for r in res.effects])
        if not args.no_plot:
            from .plots import plot_scenario, save_figure

            fig = plot_scenario(res, title=f"il2als {__version__}: scenario {args.name}, {args.n} virtual patients per group, "
                                           f"parameter set '{spec.centre.name}'\n"
                                           f"placebo (dashed) vs {reg.description or reg.summary()}")
            save_figure(fig, tmp / "scenario.png")
        finish_run(tmp, parameter_set=_set_record(spec), scenario=args.name, n_per_group=args.n, seed=args.seed, days=args.days,
                       regimen={"name": reg.name, "description": reg.description, "summary": reg.summary()},
                       population={"name": spec.name, "omega": spec.omega, "factor": spec.factor},
                       references=spec.centre.cited(),
                       outputs=["scenario.csv", "effects.csv"] + ([] if args.no_plot else ["scenario.png"]))
    cols = [("alsfrs_r_slope [points/month] median", "ALSFRS-R slope [points/month]"),
            ("survival_end [%] median", f"survival d{args.days:g} [%]"), ("treg_peak_fold [1] median", "Treg peak [fold]"),
            ("ccl2_csf_change [%] median", "CSF CCL2 change [%]"), ("nfl_serum_change [%] median", "sNfL change [%]"),
            ("pnfh_csf_baseline [pg/mL] median", "CSF pNfH [pg/mL]")]
    heads = [h for _, h in cols]
    print(f"{'group':<10}{'arm':<12}{'n':>5}" + "".join(f"{h:>{len(h) + 2}}" for h in heads))
    for r in res.rows:
        print(f"{r['group']:<10}{r['arm']:<12}{r['n']:>5}" + "".join(f"{r[k]:>{len(h) + 2}.4g}" for k, h in cols))
    print(f"il2als: wrote {out}/scenario.csv, effects.csv{'' if args.no_plot else ', scenario.png'}, manifest.json (medians; 5-95% in the CSV)")
    return 0


def _flatten_summary(summary: dict) -> list[dict]:
    """A trial summary as rows ``quantity, value, unit`` (nested keys joined by '.'), for tables and Parquet."""
    def unit(key: str) -> str:
        leaf = key.split(".")
        if "alsfrs_slope" in key:
            return "points/month"
        if key.startswith(("survival", "hr", "power", "expected_hr", "interaction_p", "alpha")) or ".survival_end" in key \
                or "hr" in leaf[0]:
            return "" if key.endswith(".test") or key == "power_test" else "1"
        return {"follow_up_days": "day"}.get(leaf[0], "")

    rows: list[dict] = []

    def walk(prefix: str, v: object) -> None:
        if isinstance(v, dict):
            for k, x in v.items():
                if prefix == "" and k == "units":
                    continue
                walk(f"{prefix}.{k}" if prefix else str(k), x)
        elif isinstance(v, (list, tuple)) and len(v) == 2 and all(isinstance(x, (int, float)) for x in v):
            walk(f"{prefix}.low", v[0])
            walk(f"{prefix}.high", v[1])
        else:
            rows.append({"quantity": prefix, "value": v, "unit": unit(prefix)})

    walk("", summary)
    return rows


def cmd_trial(args: argparse.Namespace) -> int:
    import json

    from .dosing import regimen as as_regimen
    from .io import atomic_dir, finish_run
    from .trial import design, run_trial

    from dataclasses import replace

    from .trial import TRIAL_OPTIONS

    d = replace(design(args.design), alsfrs_analysis=args.alsfrs_analysis)
    if args.n_per_arm is not None:
        d = replace(d, n_per_arm=_positive_int(args.n_per_arm, "--n-per-arm"))
    if args.dropout_per_year is not None:
        if not (0 <= args.dropout_per_year < 10):
            raise Il2alsError(f"--dropout-per-year {args.dropout_per_year:g} must lie in [0, 10), e.g. 0.05")
        d = replace(d, dropout_per_year=args.dropout_per_year)
    reg = as_regimen(args.regimen)
    spec = _spec(args.population, args.params)
    print(f"il2als: {args.replicates} virtual {d.name} trial(s), {2 * d.n_per_arm} patients, {reg.name} vs placebo, "
          f"seed {args.seed} ...", file=sys.stderr, flush=True)
    res = run_trial(d, reg, spec, args.replicates, args.seed, scheduler=_scheduler(args),
                    options=replace(TRIAL_OPTIONS, on_failure=args.on_failure),
                    progress=_progress("replicates") if args.replicates > 1 else None)
    summary = {"parameter_set": spec.centre.name, **res.summary()}
    if args.expected_n:
        from .biology import expected_hazard_ratio

        print(f"il2als: paired expected effect ({args.expected_n} patients in both arms, common random numbers) ...",
              file=sys.stderr, flush=True)
        eff = expected_hazard_ratio(reg, spec, args.expected_n, args.seed, design=d)
        summary["expected_hr_overall"] = eff.hr["overall"]
        summary["expected_hr_by_stratum"] = {s: eff.hr[s] for s in ("very_low", "low", "high")}
        summary["expected_n"] = eff.n
    out = Path(args.out)
    with atomic_dir(out) as tmp:
        (tmp / "summary.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
        _write_rows(tmp / "summary_table.csv", _flatten_summary(summary))
        rows = []
        for k, r in enumerate(res.replicates):
            a = r.analysis
            row = {"parameter_set": spec.centre.name, "replicate": k, "hr": a["hr"][0], "hr_lo": a["hr"][1], "hr_hi": a["hr"][2], "logrank_p": a["logrank_p"],
                   "survival_end_il2": a["survival_end"]["il2"], "survival_end_placebo": a["survival_end"]["placebo"],
                   "alsfrs_slope_il2 [points/month]": a["alsfrs_slope"]["il2"],
                   "alsfrs_slope_placebo [points/month]": a["alsfrs_slope"]["placebo"]}
            for s, b in a["by_stratum"].items():
                row.update({f"{s}_n": b["n"], f"{s}_deaths": b["deaths"], f"{s}_hr": b["hr"][0], f"{s}_logrank_p": b["logrank_p"]})
            rows.append(row)
        _write_rows(tmp / "replicates.csv", rows)
        if args.nonmem:
            from .data import dataset_csv, replicate_dataset

            (tmp / "dataset.csv").write_text(dataset_csv(replicate_dataset(res.replicates[0], reg, d)), encoding="utf-8")
        if not args.no_plot:
            from .plots import plot_forest, plot_km, save_figure

            fig = plot_km(res, title=f"il2als {__version__}: virtual {d.name} trial, parameter set '{spec.centre.name}'\n"
                                     f"{reg.description or reg.summary()}")
            save_figure(fig, tmp / "km.png")
            ax = plot_forest(summary)
            save_figure(ax, tmp / "forest.png")
        finish_run(tmp, parameter_set=_set_record(spec), design=d.__dict__,
                   regimen={"name": reg.name, "description": reg.description, "summary": reg.summary()},
                       population={"name": spec.name, "omega": spec.omega, "factor": spec.factor},
                       seed=args.seed, replicates=args.replicates, references=spec.centre.cited(),
                       seconds=round(res.seconds, 2), power_test=summary["power_test"],
                       outputs=["summary.json", "summary_table.csv", "replicates.csv"] + (["dataset.csv"] if args.nonmem else [])
                       + ([] if args.no_plot else ["km.png", "forest.png"]))
    s = summary
    end = int(round(d.follow_up_days))
    print(f"survival at day {end} (KM, median over replicates): IL-2 {s[f'survival_{end}d']['il2']:.3f}, "
          f"placebo {s[f'survival_{end}d']['placebo']:.3f}")
    h = s["hr_overall"]
    print(f"hazard ratio overall: {h['median']:.3f} (2.5-97.5% across replicates {h['ci95'][0]:.3f}-{h['ci95'][1]:.3f}); "
          f"power {s['power_overall']:.2f}")
    for k, b in s["hr_by_stratum"].items():
        print(f"  stratum {k:<9} n~{b['n_median']:.0f}: HR {b['median']:.3f} ({b['ci95'][0]:.3f}-{b['ci95'][1]:.3f}); "
              f"power {s['power_by_stratum'][k]:.2f}")
    print(f"ALSFRS-R slope [points/month] ({'mixed model' if 'alsfrs_slope_effect' in s else 'per-patient slopes'}): "
          f"IL-2 {s['alsfrs_slope']['il2']:.3f}, placebo {s['alsfrs_slope']['placebo']:.3f}")
    if "alsfrs_slope_effect" in s:
        for k, b in s["alsfrs_slope_effect"].items():
            print(f"  slope effect {k:<9}: {b['median']:+.3f} points/month ({b['ci95'][0]:+.3f} to {b['ci95'][1]:+.3f}); "
                  f"significant benefit in {b['share_significant_benefit']:.0%}; CAFS median p {s['cafs'][k]['median_p']:.3f}")
    print(f"treatment x stratum interaction (Cox likelihood ratio): median p {s['interaction_p']['median']:.3f}, "
          f"p < {d.alpha:g} in {s['interaction_p']['share_below_alpha']:.0%} of replicates")
    if "expected_hr_overall" in s:
        e = s["expected_hr_by_stratum"]
        print(f"expected HR (paired arms, {s['expected_n']} patients): overall {s['expected_hr_overall']:.3f}; "
              f"very low {e['very_low']:.3f}, low {e['low']:.3f}, high {e['high']:.3f}")
    if s["excluded_patients"]["total"]:
        print(f"il2als: warning: {s['excluded_patients']['total']} patient(s) excluded after solver failures "
              f"(--on-failure skip), first: {s['excluded_patients']['first'][0]}", file=sys.stderr)
    print(f"il2als: wrote {out}/summary.json, summary_table.csv, replicates.csv{', dataset.csv' if args.nonmem else ''}"
          f"{'' if args.no_plot else ', km.png, forest.png'}, manifest.json "
          f"({res.seconds:.1f} s)")
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    from .dosing import regimen as as_regimen
    from .io import atomic_dir, finish_run
    from .scenario import compare_regimens

    names = [r.strip() for r in args.regimens.split(";") if r.strip()] if ";" in args.regimens else _split(args.regimens)
    if not names:
        raise Il2alsError("--regimens is empty; give names, CSV paths or sentences, e.g. --regimens mirocals,imodals-1miu")
    regs = [as_regimen(r) for r in names]
    if not (args.days > 0):
        raise Il2alsError(f"--days {args.days:g} must be positive")
    spec = _spec(args.population, args.params)
    t0 = time.perf_counter()
    print(f"il2als: comparing {len(regs)} regimens with placebo in {args.n} virtual patients by CSF-pNfH stratum ...",
          file=sys.stderr, flush=True)
    res = compare_regimens(regs, spec, args.n, args.seed, args.days)
    print(f"il2als:   done in {time.perf_counter() - t0:.1f} s", file=sys.stderr)
    out = Path(args.out)
    with atomic_dir(out) as tmp:
        _write_rows(tmp / "regimens.csv", [{"parameter_set": spec.centre.name, **r} for r in res.rows])
        _write_rows(tmp / "effects.csv", [{"parameter_set": spec.centre.name, **r} for r in res.effects])
        if not args.no_plot:
            from .plots import plot_regimen_comparison, save_figure

            fig = plot_regimen_comparison(res, title=f"il2als {__version__}: regimens vs placebo by CSF-pNfH stratum, "
                                                     f"{args.n} virtual patients, {args.days:g} days (medians), "
                                                     f"parameter set '{spec.centre.name}'")
            save_figure(fig, tmp / "regimens.png")
        finish_run(tmp, parameter_set=_set_record(spec), regimens=[{"name": r.name, "description": r.description, "summary": r.summary()} for r in regs],
                       n=args.n, seed=args.seed, days=args.days, population={"name": spec.name},
                       references=spec.centre.cited(), outputs=["regimens.csv", "effects.csv", "regimens.png"])
    rows = {(r["group"], r["arm"]): r for r in res.rows}
    print(f"{'stratum':<10}{'regimen':<20}{'Treg exposure [%*day]':>23}{'effector peak [1]':>19}"
          f"{'d survival [pp]':>17}{'d ALSFRS-R slope [points/month]':>33}")
    for e in res.effects:
        r = rows[(e["group"], e["arm"])]
        print(f"{e['group']:<10}{e['arm']:<20}{r['treg_exposure [%*day] median']:>23.4g}{r['effector_peak [1] median']:>19.4g}"
              f"{e['delta_survival_end [%] median']:>17.3g}{e['delta_alsfrs_r_slope [points/month] median']:>33.3g}")
    print(f"il2als: wrote {out}/regimens.csv, effects.csv, regimens.png, manifest.json")
    return 0


def cmd_power(args: argparse.Namespace) -> int:
    import math

    from .dosing import regimen as as_regimen
    from .io import atomic_dir, finish_run
    from .trial import POWER_TEST, design, power_curve

    t0 = time.perf_counter()
    d = design(args.design)
    try:
        ns = [int(x) for x in _split(args.n_per_arm)]
    except ValueError:
        raise Il2alsError(f"--n-per-arm '{args.n_per_arm}' must be whole numbers separated by commas, e.g. 100,200,300") from None
    if not ns:
        raise Il2alsError(f"--n-per-arm '{args.n_per_arm}' names no size; give whole numbers, e.g. 100,200,300")
    for n in ns:
        _positive_int(n, "--n-per-arm")
    if args.days is not None:
        from dataclasses import replace

        if not args.days > 0:
            raise Il2alsError(f"--days {args.days:g} must be positive")
        d = replace(d, follow_up_days=args.days)
    reg = as_regimen(args.regimen)
    spec = _spec(args.population, args.params)
    if args.enrich:
        try:
            lo, hi = (float(x) if x.strip() else None for x in args.enrich.split(":"))
        except ValueError:
            raise Il2alsError(f"--enrich '{args.enrich}' must be LOW:HIGH in pg/mL of CSF pNfH, e.g. ':3700' or '750:3700'") from None
        spec = spec.enriched(lo or 0.0, hi if hi is not None else math.inf)
    print(f"il2als: power for {ns} patients per arm, {args.replicates} virtual trials each ...", file=sys.stderr, flush=True)
    rows = power_curve(d, reg, spec, ns, args.replicates, args.seed, progress=_progress("sizes"),
                       scheduler=_scheduler(args))
    out = Path(args.out)
    with atomic_dir(out) as tmp:
        _write_rows(tmp / "power.csv", [{"parameter_set": spec.centre.name, **r} for r in rows])
        if not args.no_plot:
            from .plots import plot_power, save_figure

            ax = plot_power([r["n_per_arm"] for r in rows], [r["power"] for r in rows],
                            label=f"{reg.name} vs placebo, {d.follow_up_days:g} days, {spec.name}",
                            ci=[(r["power_ci95_low"], r["power_ci95_high"]) for r in rows], alpha=d.alpha)
            ax.set_title(f"il2als {__version__}: power from {args.replicates} virtual trials per size, "
                         f"parameter set '{spec.centre.name}'", fontsize=10)
            save_figure(ax, tmp / "power.png")
        finish_run(tmp, parameter_set=_set_record(spec), design=d.__dict__, regimen={"name": reg.name, "summary": reg.summary()},
                       population={"name": spec.name, "pnfh_range": list(spec.pnfh_range)}, seed=args.seed,
                       replicates=args.replicates, power_test=POWER_TEST, seconds=round(time.perf_counter() - t0, 2))
    print(f"power: {POWER_TEST}, alpha {d.alpha:g}")
    for r in rows:
        print(f"n per arm {r['n_per_arm']:>5}: power {r['power']:.2f} (95% MC {r['power_ci95_low']:.2f}-"
              f"{r['power_ci95_high']:.2f}), median HR {r['hr_median']:.3f}")
    print(f"il2als: wrote {out}/power.csv, power.png, manifest.json")
    return 0


def cmd_design_phase3(args: argparse.Namespace) -> int:
    import json
    import math

    from .io import atomic_dir, finish_run
    from .phase3 import FAMILY, design_rows, optimise_schedule
    from .trial import POWER_TEST, power_share, run_trial

    for flag, v, lo in (("--n-search", args.n_search, 10), ("--n-expected", args.n_expected, 100),
                        ("--maxiter", args.maxiter, 1), ("--popsize", args.popsize, 2)):
        if v < lo:
            raise Il2alsError(f"{flag} {v} must be a whole number >= {lo}")
    if not 0 <= args.verify_replicates <= 100_000:
        raise Il2alsError(f"--verify-replicates {args.verify_replicates} must be a whole number from 0 to 100,000")
    t0 = time.perf_counter()
    spec = _spec(args.population, args.params)
    chosen = spec.centre.name
    print(f"il2als: (a) schedule search in high-pNfH patients (> 3700 pg/mL), {args.n_search} virtual patients, "
          f"differential evolution ({args.maxiter} generations of {args.popsize * 5}) ...", file=sys.stderr, flush=True)
    if args.max_total_miu is not None and not (args.max_total_miu > 0 and math.isfinite(args.max_total_miu)):
        raise Il2alsError(f"--max-total-miu {args.max_total_miu:g} must be a positive number of MIU, e.g. 180")
    search = optimise_schedule(spec.enriched(3700.0), args.n_search, args.seed, maxiter=args.maxiter,
                               popsize=args.popsize, max_total_miu=args.max_total_miu,
                               progress=lambda g, f: print(f"il2als:   generation {g}/{args.maxiter}: best objective "
                                                           f"{f:.4f}", file=sys.stderr, flush=True))
    print(f"il2als:   best: {search.best.name} (cumulative-hazard ratio {search.hazard_ratio:.3f} vs MIROCALS "
          f"{search.reference_hazard_ratio:.3f}; effector peak {search.effector_peak:.4f} <= {search.reference_effector_peak:.4f})",
          file=sys.stderr, flush=True)
    sets = {chosen: spec}
    if not args.no_sensitivity:
        from .cohort import load_population_spec
        from .parameters import load_parameters

        sets["calibrated (literature-only)"] = load_population_spec(args.population or "population").centred_on(
            load_parameters("calibrated"))
        if chosen == "mirocals-informed":
            from .variants import trial_informed

            info = trial_informed(args.params)
            for name, v in info["fits"].items():
                if name != info["variant"]:
                    sets[f"{name} (fitted)"] = v.spec
            if info["weak_end"] is not None:
                sets[f"{info['variant']} at the trial's weakest coupling"] = info["weak_end"].spec
    print(f"il2als: (b, c) expected HR and sample size: {len(sets)} parameter set(s) x 6 designs, "
          f"{args.n_expected} patients in both arms each ...", file=sys.stderr, flush=True)
    schedules = {"reference": search.reference, "optimised": search.best}
    rows = design_rows(sets, schedules, args.n_expected, args.seed,
                       progress=lambda m: print(f"il2als:   {m}", file=sys.stderr, flush=True))
    mine = [r for r in rows if r["parameter_set"] == chosen and r.get("patients_80")]
    check = None
    if mine and args.verify_replicates:
        best = min(mine, key=lambda r: r["patients_80"])
        from .phase3 import DESIGNS, design_population
        from .trial import TrialDesign

        _, lo, hi, which = next(x for x in DESIGNS if x[0] == best["design"])
        n_arm = best["patients_80"] // 2
        print(f"il2als: checking Schoenfeld's 80% by simulation: {args.verify_replicates} virtual trials of "
              f"{2 * n_arm} patients ({best['design']}) ...", file=sys.stderr, flush=True)
        res = run_trial(TrialDesign(name="phase3", n_per_arm=n_arm, alsfrs_analysis="slopes"), schedules[which],
                        design_population(spec, lo, hi), args.verify_replicates, args.seed, scheduler=_scheduler(args))
        A = [r.analysis for r in res.replicates]
        pw, ci = power_share([x["logrank_p"] for x in A], [x["hr"][0] for x in A], 0.05)
        check = {"design": best["design"], "patients": 2 * n_arm, "nominal_power": 0.8, "simulated_power": pw,
                 "simulated_power_ci95": ci, "replicates": args.verify_replicates, "test": POWER_TEST}
    summary = {"parameter_set": chosen,
               "schedule_search": {"population": "CSF pNfH > 3700 pg/mL", "n_patients": search.n_patients,
                                   "family": {k: list(v) for k, v in FAMILY.__dict__.items()},
                                   "constraint": "median peak effector activation <= the MIROCALS schedule's, same patients"
                                                 + (f"; total dose <= {args.max_total_miu:g} MIU" if args.max_total_miu else ""),
                                   "best": {"schedule": search.best.name, "doses": len(search.best),
                                            "total_dose_miu": sum(d.amount for d in search.best.doses) / 1e6,
                                            "cumulative_hazard_ratio": search.hazard_ratio,
                                            "effector_peak": search.effector_peak},
                                   "reference": {"schedule": search.reference.name,
                                                 "cumulative_hazard_ratio": search.reference_hazard_ratio,
                                                 "effector_peak": search.reference_effector_peak},
                                   "evaluations": len(search.evaluations), "optimiser_converged": search.converged,
                                   "optimiser_message": search.message},
               "designs": rows, "simulated_power_check": check,
               "sample_size_method": "Schoenfeld 1983: events = 4 (z_0.975 + z_power)^2 / log(HR)^2, patients = events / "
                                     "(P(death by day 640) x (1 - loss to follow-up, 5%/year)); HR = paired expected HR",
               "units": {"expected_hr": "1", "death_probability": "1", "patients": "1 (total, 1:1)",
                         "cumulative_hazard_ratio": "1", "effector_peak": "1 (relative to baseline)"}}
    out = Path(args.out)
    with atomic_dir(out) as tmp:
        (tmp / "summary.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
        _write_rows(tmp / "sample_size.csv", rows)
        _write_rows(tmp / "schedules.csv", [{"parameter_set": chosen, **e} for e in search.evaluations])
        if not args.no_plot:
            from .plots import plot_sample_size, plot_schedule_search, save_figure

            fig = plot_schedule_search(search.evaluations, (search.reference_effector_peak, search.reference_hazard_ratio),
                                       (search.effector_peak, search.hazard_ratio),
                                       title=f"il2als {__version__}: schedules searched for CSF pNfH > 3700 pg/mL "
                                             f"({search.n_patients} virtual patients, parameter set '{chosen}')\n"
                                             f"best: {search.best.name}")
            save_figure(fig, tmp / "schedule_search.png")
            fig = plot_sample_size(rows, chosen, title=f"il2als {__version__}: confirmatory trial size (Schoenfeld, "
                                                       f"two-sided 5%, 640 days, 5%/year lost), parameter set '{chosen}'")
            save_figure(fig, tmp / "sample_size.png")
        finish_run(tmp, parameter_set=_set_record(spec), seed=args.seed, n_search=args.n_search,
                   n_expected=args.n_expected, seconds=round(time.perf_counter() - t0, 1),
                   outputs=["summary.json", "sample_size.csv", "schedules.csv"]
                   + ([] if args.no_plot else ["schedule_search.png", "sample_size.png"]))
    print(f"(a) best schedule for CSF pNfH > 3700 pg/mL: {search.best.name}")
    print(f"    cumulative-hazard ratio {search.hazard_ratio:.3f} (MIROCALS schedule {search.reference_hazard_ratio:.3f}); "
          f"median peak effector activation {search.effector_peak:.4f} (ceiling {search.reference_effector_peak:.4f})")
    print(f"(b) {'design':<46}{'expected HR':>12}{'P(death)':>10}{'N 80%':>9}{'N 90%':>9}   [{chosen}]")
    for r in rows:
        if r["parameter_set"] == chosen:
            n80, n90 = r["patients_80"], r["patients_90"]
            print(f"    {r['design']:<46}{r['expected_hr [1]']:>12.3f}{r['death_probability [1]']:>10.3f}"
                  f"{(f'{n80:,}' if n80 else '-'):>9}{(f'{n90:,}' if n90 else '-'):>9}")
    if len(sets) > 1:
        print("(c) sensitivity, patients for 80% power:")
        for label in sets:
            if label != chosen:
                vals = "; ".join(f"{r['design']}: {r['patients_80']:,}" if r["patients_80"] else f"{r['design']}: -"
                                 for r in rows if r["parameter_set"] == label)
                print(f"    {label}: {vals}")
    if check:
        print(f"simulated power at {check['patients']} patients ({check['design']}): {check['simulated_power']:.2f} "
              f"(95% MC {check['simulated_power_ci95'][0]:.2f}-{check['simulated_power_ci95'][1]:.2f}; nominal 0.80)")
    print(f"il2als: wrote {out}/summary.json, sample_size.csv, schedules.csv"
          f"{'' if args.no_plot else ', schedule_search.png, sample_size.png'}, manifest.json "
          f"({time.perf_counter() - t0:.0f} s)")
    return 0


def cmd_population(args: argparse.Namespace) -> int:
    import numpy as np

    from .cohort import DAYS_PER_MONTH, sample_population
    from .compile import default_model
    from .io import atomic_dir, finish_run
    from .population import simulate_population

    spec = _spec(args.population)
    cohort = sample_population(spec, args.n, np.random.default_rng(args.seed))
    res = simulate_population(cohort.params, "placebo", f"{DAYS_PER_MONTH * 12} day", step=f"{DAYS_PER_MONTH * 12} day",
                              outputs=["alsfrs_r", "pnfh_csf", "nfl_serum", "nfl_csf", "treg_pct_cd4", "ccl2_csf"])
    slope = (res["alsfrs_r"][:, -1] - res["alsfrs_r"][:, 0]) / 12.0
    model = default_model()
    out = Path(args.out)
    with atomic_dir(out) as tmp:
        rows = []
        for i in range(len(cohort)):
            row = {"id": i, "age [year]": cohort.covariates["age"][i], "male": bool(cohort.covariates["male"][i]),
                   "symptom_duration [month]": cohort.covariates["symptom_duration"][i],
                   "run_in [week]": cohort.covariates["run_in"][i]}
            for name in spec.varied + ["mn_reserve_start"]:
                row[f"{name} [{model.mechanism.parameter(name).unit}]"] = cohort.params[i, model.parameter_index(name)]
            for name in ("alsfrs_r", "pnfh_csf", "nfl_serum", "nfl_csf", "treg_pct_cd4", "ccl2_csf"):
                row[f"{name}_baseline [{res.units[name]}]".replace("percent", "%").replace("alsfrs_point", "points")] = res[name][i, 0]
            row["alsfrs_r_slope_placebo [points/month]"] = slope[i]
            rows.append(row)
        _write_rows(tmp / "cohort.csv", rows)
        if not args.no_plot:
            from .plots import plot_population, save_figure

            fig = plot_population(slope, res["pnfh_csf"][:, 0], res["nfl_serum"][:, 0], cohort.covariates["age"],
                                  targets={"slope": -0.99, "shares": (0.09, 0.70, 0.21)},
                                  title=f"il2als {__version__}: virtual population '{spec.name}', {args.n} eligible patients "
                                        f"(screened {cohort.n_screened}), seed {args.seed}")
            save_figure(fig, tmp / "population.png")
        finish_run(tmp, population={"name": spec.name, "omega": spec.omega, "factor": spec.factor}, n=args.n,
                       seed=args.seed, screened=cohort.n_screened, outputs=["cohort.csv", "population.png"])
    pn = res["pnfh_csf"][:, 0]
    print(f"{len(cohort)} eligible of {cohort.n_screened} screened; ALSFRS-R slope mean {slope.mean():.3f} points/month "
          f"(PRO-ACT -0.99); CSF-pNfH < 750 / 750-3700 / > 3700 pg/mL: {np.mean(pn < 750):.3f} / "
          f"{np.mean((pn >= 750) & (pn <= 3700)):.3f} / {np.mean(pn > 3700):.3f} (MIROCALS 0.09 / 0.70 / 0.21)")
    print(f"il2als: wrote {out}/cohort.csv{'' if args.no_plot else ', population.png'}, manifest.json")
    return 0


def cmd_biology(args: argparse.Namespace) -> int:
    from .biology import expected_hazard_ratio, stratum_biology
    from .dosing import regimen as as_regimen
    from .io import atomic_dir, finish_run
    from .parameters import load_parameters

    reg = as_regimen(args.regimen)
    if len(reg) == 0:
        raise Il2alsError("--regimen has no doses; the expected effect compares a regimen with placebo")
    spec = _spec(args.population)
    if args.params is not None:
        spec = spec.centred_on(_with_sets(load_parameters(args.params), args.set))
    elif args.set:
        spec = spec.centred_on(_with_sets(spec.centre, args.set))
    t0 = time.perf_counter()
    print(f"il2als: stratum biology of {args.n} virtual patients ({spec.centre.name}) and the paired expected effect "
          f"of {reg.name} ...", file=sys.stderr, flush=True)
    bio = stratum_biology(spec, args.n, args.seed)
    eff = expected_hazard_ratio(reg, spec, args.n, args.seed)
    out = Path(args.out)
    with atomic_dir(out) as tmp:
        _write_rows(tmp / "biology.csv", bio.rows())
        _write_rows(tmp / "expected_effect.csv", eff.rows())
        if not args.no_plot:
            from .plots import plot_stratum_biology, save_figure

            save_figure(plot_stratum_biology(bio, eff, title=f"il2als {__version__}: biology by CSF-pNfH stratum, "
                                                              f"parameters '{spec.centre.name}'"), tmp / "biology.png")
        finish_run(tmp, parameters=spec.centre.name, population=spec.name, regimen=reg.name, n=args.n, seed=args.seed,
                   references=spec.centre.cited(), seconds=round(time.perf_counter() - t0, 2))
    print(f"{'stratum':<10}{'n':>6}{'loss [%/month]':>16}{'microglial':>12}{'refractory':>12}{'reachable':>11}"
          f"{'Treg fn':>9}{'ceiling':>9}{'expected HR':>13}")
    for s in bio.strata:
        v = bio.values[s]
        print(f"{s:<10}{v['n']:>6}{v['loss_rate']:>16.3g}{v['microglial_share']:>12.3f}{v['refractory_share']:>12.3f}"
              f"{v['reachable_share']:>11.3f}{v['treg_function']:>9.3f}{v['treg_function_ceiling']:>9.3f}{eff.hr[s]:>13.3f}")
    print(f"overall expected HR {eff.hr['overall']:.3f} ({eff.n} patients in each arm, common random numbers); shares are of "
          "the loss rate [1], medians")
    print(f"il2als: wrote {out}/biology.csv, expected_effect.csv{'' if args.no_plot else ', biology.png'}, manifest.json")
    return 0


def _check_rows(params_name: str, targets_name: str, n_population: int):
    from .calibration import check_parameter_set, load_targets
    from .parameters import load_parameters

    ts = load_targets(targets_name)
    return ts, check_parameter_set(load_parameters(params_name), ts, n_population)


def cmd_check(args: argparse.Namespace) -> int:
    from .io import atomic_dir, finish_run

    from .fitting_io import print_check

    ts, rows = _check_rows(args.params, args.targets, args.n_population)
    print_check(rows)
    if args.out:
        out = Path(args.out)
        with atomic_dir(out) as tmp:
            _write_rows(tmp / "check.csv", rows)
            if not args.no_plot:
                from .plots import plot_check, save_figure

                ax = plot_check(rows, title=f"il2als {__version__}: parameter set '{args.params}' vs targets '{args.targets}'")
                save_figure(ax, tmp / "check.png")
            finish_run(tmp, params=args.params, targets=args.targets, passed=sum(r["pass"] for r in rows),
                           total=len(rows), outputs=["check.csv", "check.png"])
        print(f"il2als: wrote {out}/check.csv{'' if args.no_plot else ', check.png'}, manifest.json")
    return 0


def cmd_fit(args: argparse.Namespace) -> int:
    from .fitting_io import run_data_fit, run_problem_file

    if (args.problem is None) == (args.data is None):
        raise Il2alsError("give either --problem FILE (literature targets) or --data FILE --free a,b (time series)")
    if args.data is not None:
        free = _split(args.free or "")
        if not free:
            raise Il2alsError("--data needs --free with the parameters to estimate, e.g. --free ka,treg_max_proliferation")
        if args.random:
            from .fitting_io import run_population_fit

            run_population_fit(args.data, free, _split(args.random), Path(args.out), params=args.params,
                               error=args.error, n_starts=args.n_starts or 3, seed=args.seed, plot=not args.no_plot,
                               vpc_replicates=args.vpc_replicates)
            return 0
        run_data_fit(args.data, free, Path(args.out), params=args.params, error=args.error,
                     n_starts=args.n_starts or 3, seed=args.seed, plot=not args.no_plot)
        return 0
    if args.random:
        raise Il2alsError("--random needs --data (random effects are fitted to individual time series)")
    run_problem_file(args.problem, Path(args.out), params=args.params, n_starts=args.n_starts, seed=args.seed,
                     plot=not args.no_plot)
    return 0


class _Parser(argparse.ArgumentParser):
    """argparse with the house rule for bad input: one line naming the problem and the fix, exit 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        sys.stderr.write(f"il2als: error: {self.prog}: {message}; see '{self.prog} --help'\n")
        raise SystemExit(EXIT_BAD_INPUT)


def _params_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--params", default=TRIAL_FACING_PARAMS,
                        help=f"parameter set at the population's centre (default: {TRIAL_FACING_PARAMS}, fitted to the "
                             "MIROCALS low-stratum HR; 'calibrated' for the literature-only set)")


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="il2als", description="Mechanistic model of low-dose IL-2 in ALS.")
    p.add_argument("--version", action="version", version=f"il2als {__version__}")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)

    s = sub.add_parser("simulate", help="simulate patients under a regimen; write CSV, figure and manifest")
    s.add_argument("--regimen", default="mirocals", help="name (see 'il2als regimens'), CSV event table, or sentence")
    s.add_argument("--profile", default=None, help="slow, fast, default or a parameter file; comma-separated for several "
                                                   "(default slow,fast; with --data: default)")
    s.add_argument("--days", type=float, default=None, help="duration in days (default 640)")
    s.add_argument("--duration", default=None, help="duration as a quantity, e.g. '18 months'")
    s.add_argument("--step", default=None, help="output step, e.g. '1 hour' to resolve PK peaks (default 1 day; with "
                                                 "--data the study's span / 400, at most 1 day)")
    s.add_argument("--out", required=True, help="output folder (replaced atomically)")
    s.add_argument("--placebo", action="store_true", help="also simulate each profile without IL-2 (dashed lines)")
    s.add_argument("--set", action="append", default=[], metavar="NAME=QUANTITY", help="override a parameter, e.g. 'ec50_treg=2 IU/mL'")
    s.add_argument("--method", default="LSODA", help="stiff solver: LSODA, BDF or Radau")
    s.add_argument("--rtol", type=float, default=1e-7, help="relative tolerance (default 1e-7)")
    s.add_argument("--atol", type=float, default=1e-9, help="absolute tolerance relative to each state's scale (default 1e-9)")
    s.add_argument("--no-plot", action="store_true", help="skip the figure")
    s.add_argument("--data", default=None, help="NONMEM-style CSV: simulate each ID with its doses and covariates "
                                                "(--regimen is then ignored); writes observed vs predicted")
    s.set_defaults(func=cmd_simulate)

    r = sub.add_parser("regimens", help="list the named regimens and the sentence forms")
    r.set_defaults(func=cmd_regimens)

    q = sub.add_parser("params", help="list parameter sets, or show one with units, ranges and references")
    q.add_argument("name", nargs="?", default=None)
    q.set_defaults(func=cmd_params)

    c = sub.add_parser("scenario", help="compare placebo and a regimen in slow vs fast (or CSF-pNfH strata) virtual patients")
    c.add_argument("name", help="slow-vs-fast or strata")
    c.add_argument("--regimen", default="mirocals", help="regimen to compare with placebo (name, CSV, sentence)")
    c.add_argument("--n", type=int, default=200, help="virtual patients per group (slow-vs-fast) or in all (strata)")
    c.add_argument("--seed", type=int, default=1, help="random seed (reproduces the population exactly)")
    c.add_argument("--days", type=float, default=640.0, help="duration in days (default 640)")
    c.add_argument("--population", default=None, help="population spec TOML (default: params/population.toml)")
    _params_flag(c)
    c.add_argument("--out", required=True, help="output folder (replaced atomically)")
    c.add_argument("--no-plot", action="store_true")
    c.set_defaults(func=cmd_scenario)

    tr = sub.add_parser("trial", help="replicate a randomised trial in silico (KM, log-rank, Cox, power)")
    tr.add_argument("--design", default="mirocals", help="trial design (mirocals)")
    tr.add_argument("--regimen", default="mirocals", help="regimen of the active arm")
    tr.add_argument("--replicates", type=int, default=20, help="number of virtual trials")
    tr.add_argument("--seed", type=int, default=1, help="random seed")
    tr.add_argument("--n-per-arm", type=int, default=None, help="override the design's patients per arm")
    tr.add_argument("--population", default=None, help="population spec TOML (default: params/population.toml)")
    _params_flag(tr)
    tr.add_argument("--out", required=True, help="output folder (replaced atomically)")
    tr.add_argument("--no-plot", action="store_true")
    tr.add_argument("--scheduler", default="auto", help="auto (default: a process pool on every core from 8 replicates, "
                                                        "else this process), threads, processes, or a Dask address tcp://host:port")
    tr.add_argument("--on-failure", default="fail", choices=["fail", "skip"],
                    help="a patient the solver cannot integrate: stop (fail) or exclude and report (skip)")
    tr.add_argument("--dropout-per-year", type=float, default=None,
                    help="loss to follow-up other than death, per year (default: the design's, 0.05 for mirocals)")
    tr.add_argument("--alsfrs-analysis", default="mixed", choices=["mixed", "slopes"],
                    help="ALSFRS-R: mixed model of repeated scores + CAFS (default), or per-patient slopes (faster)")
    tr.add_argument("--expected-n", type=int, default=2000, help="patients of the paired expected effect (both arms, "
                                                               "common random numbers; 0 to skip)")
    tr.add_argument("--nonmem", action="store_true", help="also write the first replicate as a NONMEM-style dataset.csv "
                                                          "(doses, ALSFRS-R visits, CSF pNfH, death times, covariates)")
    tr.set_defaults(func=cmd_trial)

    cr = sub.add_parser("compare-regimens", help="compare regimens with placebo per CSF-pNfH stratum (efficacy vs effector activation)")
    cr.add_argument("--regimens", default="mirocals,imodals-1miu,mirocals-10day,mirocals-biweekly,mirocals-6miu,maintenance-q3d",
                    help="comma-separated names or CSV paths (use ';' to separate sentences)")
    cr.add_argument("--n", type=int, default=300, help="virtual patients (split by stratum)")
    cr.add_argument("--seed", type=int, default=1)
    cr.add_argument("--days", type=float, default=640.0)
    cr.add_argument("--population", default=None)
    _params_flag(cr)
    cr.add_argument("--out", required=True)
    cr.add_argument("--no-plot", action="store_true")
    cr.set_defaults(func=cmd_compare)

    pw = sub.add_parser("power", help="power / sample size of a design from replicate virtual trials")
    pw.add_argument("--design", default="mirocals")
    pw.add_argument("--regimen", default="mirocals")
    pw.add_argument("--n-per-arm", default="110,200,300,400", help="comma-separated patients per arm")
    pw.add_argument("--replicates", type=int, default=50)
    pw.add_argument("--days", type=float, default=None, help="follow-up in days (default: the design's)")
    pw.add_argument("--scheduler", default="auto", help="auto, threads, processes, or a Dask address tcp://host:port")
    pw.add_argument("--enrich", default=None, help="eligible baseline CSF-pNfH LOW:HIGH in pg/mL, e.g. ':3700'")
    pw.add_argument("--seed", type=int, default=1)
    pw.add_argument("--population", default=None)
    _params_flag(pw)
    pw.add_argument("--out", required=True)
    pw.add_argument("--no-plot", action="store_true")
    pw.set_defaults(func=cmd_power)

    d3 = sub.add_parser("design-phase3", help="the phase 3 question: a schedule for high-pNfH patients under the effector "
                                              "ceiling, and trial size for 80/90% power by design and hypothesis")
    _params_flag(d3)
    d3.add_argument("--population", default=None, help="population spec TOML (default: params/population.toml)")
    d3.add_argument("--n-search", type=int, default=120, help="virtual high-pNfH patients of the schedule search")
    d3.add_argument("--maxiter", type=int, default=10, help="generations of the differential evolution")
    d3.add_argument("--popsize", type=int, default=6, help="population of the differential evolution per parameter")
    d3.add_argument("--max-total-miu", type=float, default=None,
                    help="also cap the total IL-2 over 18 months [MIU], e.g. 180 (the MIROCALS budget)")
    d3.add_argument("--n-expected", type=int, default=1500, help="patients (both arms) per expected HR")
    d3.add_argument("--verify-replicates", type=int, default=40,
                    help="virtual trials to check Schoenfeld's 80%% by simulation (0 to skip)")
    d3.add_argument("--no-sensitivity", action="store_true", help="only the chosen parameter set (no variants)")
    d3.add_argument("--scheduler", default="auto", help="auto, threads, processes, or a Dask address tcp://host:port")
    d3.add_argument("--seed", type=int, default=1)
    d3.add_argument("--out", required=True)
    d3.add_argument("--no-plot", action="store_true")
    d3.set_defaults(func=cmd_design_phase3)

    po = sub.add_parser("population", help="sample a virtual population; write its patients and distributions")
    po.add_argument("--n", type=int, default=2000)
    po.add_argument("--seed", type=int, default=1)
    po.add_argument("--population", default=None, help="population spec TOML (default: params/population.toml)")
    po.add_argument("--out", required=True)
    po.add_argument("--no-plot", action="store_true")
    po.set_defaults(func=cmd_population)

    ck = sub.add_parser("check", help="compare a parameter set with every calibration target (table, CSV, figure)")
    ck.add_argument("--params", default="default", help="parameter set name or file")
    ck.add_argument("--targets", default="literature", help="targets name or file")
    ck.add_argument("--n-population", type=int, default=400, help="virtual patients for population targets")
    ck.add_argument("--out", default=None, help="folder for check.csv and check.png")
    ck.add_argument("--no-plot", action="store_true")
    ck.set_defaults(func=cmd_check)

    ft = sub.add_parser("fit", help="fit free parameters to targets (multi-start least squares, intervals, profiles)")
    ft.add_argument("--problem", default=None, help="problem TOML (see params/problems/)")
    ft.add_argument("--data", default=None, help="NONMEM-style CSV: ID, TIME [unit], AMT [unit], DV [unit], observable")
    ft.add_argument("--free", default=None, help="with --data: parameters to estimate, comma-separated")
    ft.add_argument("--random", default=None, help="with --data: free parameters that vary between patients "
                                                    "(log-normal random effects): a population fit by FOCE-I")
    ft.add_argument("--error", default="proportional:0.1", help="with --data: error model and sd, e.g. lognormal:0.2 "
                                                                "(with --random the sd is the start of sigma, estimated)")
    ft.add_argument("--vpc-replicates", type=int, default=200, help="with --random: replicates of the visual "
                                                                     "predictive check (>= 20)")
    ft.add_argument("--params", default="default", help="parameter set to start from")
    ft.add_argument("--n-starts", type=int, default=None, help="override the problem's number of starts")
    ft.add_argument("--seed", type=int, default=0)
    ft.add_argument("--out", required=True)
    ft.add_argument("--no-plot", action="store_true")
    ft.set_defaults(func=cmd_fit)

    xs = sub.add_parser("export-sbml", help="write the model, a parameter set and a regimen as SBML L3V2 (libSBML-validated)")
    xs.add_argument("--params", default="default", help="parameter set name or file")
    xs.add_argument("--regimen", default="mirocals", help="regimen (name, CSV, sentence); 'placebo' for none")
    xs.add_argument("--set", action="append", default=[], metavar="NAME=QUANTITY", help="override a parameter")
    xs.add_argument("--dose-slots", type=int, default=None, help="dose events to reserve (default: the regimen's doses)")
    xs.add_argument("--out", required=True, help="output file, e.g. model.xml (written atomically)")
    xs.set_defaults(func=cmd_export_sbml)

    xp = sub.add_parser("export-petab", help="write a time-series fitting problem as PEtab v1 (for pyPESTO, AMICI, ...)")
    xp.add_argument("--data", required=True, help="NONMEM-style CSV (as for fit --data)")
    xp.add_argument("--free", required=True, help="parameters to estimate, comma-separated")
    xp.add_argument("--error", default="proportional:0.1", help="error model and sd: additive:SD, proportional:SD, lognormal:SD")
    xp.add_argument("--params", default="default", help="parameter set for the fixed parameters and the start")
    xp.add_argument("--out", required=True, help="output folder (replaced atomically)")
    xp.set_defaults(func=cmd_export_petab)

    se = sub.add_parser("sensitivity", help="global (Sobol, Morris) and local sensitivity of outputs, per profile")
    se.add_argument("--output", default="survival_640d,alsfrs_slope,treg_peak",
                    help="comma-separated: survival_640d, alsfrs_slope, treg_peak, survival_gain, slope_gain")
    se.add_argument("--method", default="sobol", choices=["sobol", "morris", "none"], help="global method (none: local only)")
    se.add_argument("--profile", default="slow,fast", help="profiles to analyse, comma-separated")
    se.add_argument("--parameters", default=None, help="parameters to vary over their plausible ranges (default: the "
                                                     "IL-2/Treg/inflammation axis, 12 parameters)")
    se.add_argument("--base-samples", type=int, default=1024, help="Sobol: power of 2 (2^12 = 4096 for the full "
                                                                  "analysis); Morris: trajectories")
    se.add_argument("--regimen", default="mirocals")
    se.add_argument("--days", type=float, default=640.0)
    se.add_argument("--seed", type=int, default=1)
    se.add_argument("--scheduler", default=None, help="threads (default), processes, or a Dask address tcp://host:port")
    se.add_argument("--no-local", action="store_true", help="skip the local sensitivities and tornado plot")
    se.add_argument("--out", required=True)
    se.add_argument("--no-plot", action="store_true")
    se.set_defaults(func=cmd_sensitivity)

    bi = sub.add_parser("biology", help="biology by CSF-pNfH stratum (loss shares, IL-2-reachable share, Treg function) "
                                        "and the paired expected hazard ratio of a regimen")
    bi.add_argument("--regimen", default="mirocals")
    bi.add_argument("--params", default=None, help="parameter set at the population's centre (default: the population's)")
    bi.add_argument("--set", action="append", default=[], metavar="NAME=QUANTITY", help="override a parameter")
    bi.add_argument("--n", type=int, default=3000, help="virtual patients (each simulated in both arms)")
    bi.add_argument("--seed", type=int, default=1)
    bi.add_argument("--population", default=None)
    bi.add_argument("--out", required=True)
    bi.add_argument("--no-plot", action="store_true")
    bi.set_defaults(func=cmd_biology)

    e = sub.add_parser("equations", help="print the model equations (Markdown + LaTeX), generated from the mechanism")
    e.set_defaults(func=cmd_equations)
    return p


#: Whole-number options that must be >= 1 wherever a command has them, and the most one run may ask for.
_COUNTS = {"n": ("--n", 1_000_000), "replicates": ("--replicates", 100_000), "n_starts": ("--n-starts", 1_000),
           "n_population": ("--n-population", 1_000_000), "base_samples": ("--base-samples", 1_048_576),
           "dose_slots": ("--dose-slots", 10_000), "n_search": ("--n-search", 100_000),
           "n_expected": ("--n-expected", 1_000_000), "maxiter": ("--maxiter", 1_000), "popsize": ("--popsize", 100)}


def _check_common(args: argparse.Namespace) -> None:
    """Checks shared by every command: counts >= 1 and below their caps, seeds >= 0."""
    for key, (flag, cap) in _COUNTS.items():
        v = getattr(args, key, None)
        if v is None:
            continue
        if v < 1:
            raise Il2alsError(f"{flag} {v} must be a whole number >= 1")
        if v > cap:
            raise Il2alsError(f"{flag} {v:,} is above the cap of {cap:,} for one run; split the work into several runs")
    seed = getattr(args, "seed", None)
    if seed is not None and not 0 <= seed < 2**63:
        raise Il2alsError(f"--seed {seed} must be a whole number >= 0, e.g. --seed 1")


def _advice(message: str, args: argparse.Namespace) -> str:
    """A library message with its advice in this command's terms: flags it has, nothing it lacks."""
    from .population import SKIP_ADVICE

    if SKIP_ADVICE in message:
        message = message.replace(SKIP_ADVICE, "; or exclude failing patients with --on-failure skip"
                                  if hasattr(args, "on_failure") else "")
    if "method Radau" in message and hasattr(args, "method"):
        message = message.replace("method Radau", "--method Radau")
    return " ".join(message.split())


#: Commands whose ``--out`` is one file rather than a run folder.
_FILE_OUTPUTS = {"export-sbml"}


class _Terminated(BaseException):
    """SIGTERM, turned into an exception so that partial output and worker processes are cleaned up."""


def _on_sigterm(signum, frame) -> None:  # noqa: ANN001
    raise _Terminated()


def main(argv: list[str] | None = None) -> int:
    import signal
    import threading

    on_main = threading.current_thread() is threading.main_thread()
    old_int = signal.getsignal(signal.SIGINT)
    old_term = signal.signal(signal.SIGTERM, _on_sigterm) if on_main else None
    rc = None
    try:
        rc = _main(argv)
        return rc
    finally:
        # after an interrupt, Ctrl-C stays ignored: the process is ending, and a second one during the
        # interpreter's exit would otherwise kill it with a traceback
        if old_term is not None and rc not in (130, 143):
            signal.signal(signal.SIGTERM, old_term)
            signal.signal(signal.SIGINT, old_int)


def _main(argv: list[str] | None) -> int:
    import signal

    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse: --help / --version (0) or a usage error, already printed as one line
        return int(exc.code or 0)
    warnings.showwarning = _warn_one_line
    try:
        _check_common(args)
        if getattr(args, "out", None) is not None:  # before any work: never compute what cannot be written
            from .io import check_output

            check_output(args.out, kind="file" if args.command in _FILE_OUTPUTS else "folder")
        return int(args.func(args) or 0)
    except Il2alsError as exc:
        print(f"il2als: error: {_advice(str(exc), args)}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except MemoryError:
        print("il2als: error: out of memory; ask for fewer patients, replicates or a shorter run", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C while we report must not print a traceback
        print("\nil2als: interrupted; no output was written", file=sys.stderr)
        return 130
    except _Terminated:
        print("il2als: terminated; no output was written", file=sys.stderr)
        return 143


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
