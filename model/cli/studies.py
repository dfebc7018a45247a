"""Commands for studies: scenarios, trials, regimen comparisons, power, phase 3 design, population, biology, sensitivity."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from il2als import __version__
from il2als.cli._common import _positive_int, _progress, _scheduler, _set_record, _spec, _split, _with_sets, _write_rows
from il2als.errors import Il2alsError

__all__ = ["cmd_sensitivity", "cmd_scenario", "cmd_trial", "cmd_compare", "cmd_power", "cmd_design_phase3",
           "cmd_population", "cmd_biology"]


def cmd_sensitivity(args: argparse.Namespace) -> int:
    from il2als.export.run_folder import atomic_dir, finish_run
    from il2als.studies.parallel import describe
    from il2als.studies.sensitivity import DEFAULT_PARAMETERS, check_outputs, global_sensitivity, local_sensitivity

    outputs = check_outputs(_split(args.output))
    profiles = _split(args.profile)
    if not profiles:
        raise Il2alsError("--profile is empty; give slow, fast or both (slow,fast)")
    names = _split(args.parameters) if args.parameters else list(DEFAULT_PARAMETERS)
    if not (args.days > 0):
        raise Il2alsError(f"--days {args.days:g} must be positive, e.g. --days 640")
    from il2als.inputs.parameters import load_parameters
    from il2als.studies.sensitivity import space

    bases = {prof: _with_sets(load_parameters(prof), args.set) for prof in profiles}
    for base in bases.values():  # check names and ranges before any long work
        space(base, names)
    globals_, locals_ = [], []
    t0 = time.perf_counter()
    if args.method != "none":
        n_eval = args.base_samples * (len(names) + 2) if args.method == "sobol" else args.base_samples * (len(names) + 1)
        print(f"il2als: {args.method} over {len(names)} parameters, {args.base_samples} base samples = {n_eval} "
              f"patients per profile ({', '.join(profiles)}), on {describe(args.scheduler)} ...", file=sys.stderr, flush=True)
        for prof in profiles:
            globals_.append(global_sensitivity(bases[prof], outputs, method=args.method, parameters=names,
                                               n_base=args.base_samples, regimen=args.regimen, duration=args.days,
                                               seed=args.seed, scheduler=args.scheduler,
                                               progress=_progress(f"{prof} chunks")))
    if not args.no_local:
        print("il2als: local normalised sensitivities (central differences, all parameters) ...", file=sys.stderr, flush=True)
        for prof in profiles:
            locals_.append(local_sensitivity(bases[prof], outputs, regimen=args.regimen, duration=args.days))
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
            from il2als.plot._common import save_figure
            from il2als.plot.sensitivity import plot_sobol, plot_tornado

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


def _write_scenario_tables(folder: Path, name: str, res, spec) -> None:  # noqa: ANN001
    """A ScenarioResult's summary table as ``name`` and its paired effects as effects.csv, each row naming the
    parameter set behind it."""
    _write_rows(folder / name, [{"parameter_set": spec.centre.name, **r} for r in res.to_rows()])
    _write_rows(folder / "effects.csv", [{"parameter_set": spec.centre.name, **r} for r in res.effect_rows()])


def cmd_scenario(args: argparse.Namespace) -> int:
    from il2als.export.run_folder import atomic_dir, finish_run
    from il2als.inputs.regimens import as_regimen
    from il2als.studies.scenario import SCENARIOS

    if args.name not in SCENARIOS:
        from il2als.errors import did_you_mean

        raise Il2alsError(f"unknown scenario '{args.name}'{did_you_mean(args.name, SCENARIOS)}")
    if not (args.days > 0):
        raise Il2alsError(f"--days {args.days:g} must be positive, e.g. --days 640")
    reg = as_regimen(args.regimen)
    if len(reg) == 0:
        raise Il2alsError("--regimen has no doses; a scenario compares a regimen with placebo")
    spec = _spec(args.population, args.params, args.set)
    t0 = time.perf_counter()
    print(f"il2als: scenario {args.name}: {args.n} patients per group, placebo vs {reg.name}, {args.days:g} days ...",
          file=sys.stderr, flush=True)
    from il2als.inputs.parameters import load_parameters

    kw = {"profiles": {p: load_parameters(p) for p in ("slow", "fast")}} if args.name == "slow-vs-fast" else {}
    res = SCENARIOS[args.name](reg, spec, args.n, args.seed, args.days, **kw)
    print(f"il2als:   done in {time.perf_counter() - t0:.1f} s", file=sys.stderr)
    out = Path(args.out)
    with atomic_dir(out) as tmp:
        _write_scenario_tables(tmp, "scenario.csv", res, spec)
        if not args.no_plot:
            from il2als.plot._common import save_figure
            from il2als.plot.studies import plot_scenario

            who = (f"{args.n} virtual patients per profile" if args.name == "slow-vs-fast" else
                   f"{args.n} virtual patients split by baseline CSF-pNfH stratum")
            fig = plot_scenario(res, title=f"il2als {__version__}: scenario {args.name}, {who}, "
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


def cmd_trial(args: argparse.Namespace) -> int:
    import json
    from dataclasses import replace

    from il2als.studies.parallel import start_pool, submit

    scheduler = _scheduler(args)
    if scheduler == "processes":  # the workers start (import, load the engine) while this process does too
        start_pool(warm="il2als.studies.trial:warm_up")

    from il2als.export.run_folder import atomic_dir, finish_run
    from il2als.inputs.regimens import as_regimen
    from il2als.studies.trial import TRIAL_OPTIONS, design, run_trial

    d = replace(design(args.design), alsfrs_analysis=args.alsfrs_analysis)
    if args.n_per_arm is not None:
        d = replace(d, n_per_arm=_positive_int(args.n_per_arm, "--n-per-arm"))
    if args.dropout_per_year is not None:
        if not (0 <= args.dropout_per_year < 10):
            raise Il2alsError(f"--dropout-per-year {args.dropout_per_year:g} must lie in [0, 10), e.g. 0.05")
        d = replace(d, dropout_per_year=args.dropout_per_year)
    reg = as_regimen(args.regimen)
    spec = _spec(args.population, args.params, args.set)
    print(f"il2als: {args.replicates} virtual {d.name} trial(s), {2 * d.n_per_arm} patients, {reg.name} vs placebo, "
          f"seed {args.seed} ...", file=sys.stderr, flush=True)
    expected = None
    if args.expected_n:
        from il2als.studies.biology import expected_hazard_ratio

        said = (f"il2als: paired expected effect ({args.expected_n} patients in both arms, common random numbers)"
                + (", beside the replicates ..." if scheduler == "processes" else " ..."))
        if scheduler == "processes":  # queued first: one worker runs it while the others start the replicates
            print(said, file=sys.stderr, flush=True)
        expected = submit(expected_hazard_ratio, reg, spec, args.expected_n, args.seed, design=d, scheduler=scheduler)
    if scheduler == "processes":  # the workers are still starting: load what writing the outputs needs meanwhile
        from il2als.export.run_folder import prepare_outputs

        prepare_outputs()
    res = run_trial(d, reg, spec, args.replicates, args.seed, scheduler=scheduler,
                    options=replace(TRIAL_OPTIONS, on_failure=args.on_failure),
                    progress=_progress("replicates") if args.replicates > 1 else None)
    summary = {"parameter_set": spec.centre.name, **res.summary()}
    if expected is not None:
        if scheduler != "processes":
            print(said, file=sys.stderr, flush=True)
        eff = expected.result()
        summary["expected_hr_overall"] = eff.hr["overall"]
        summary["expected_hr_by_stratum"] = {s: eff.hr[s] for s in ("very_low", "low", "high")}
        summary["expected_n"] = eff.n
    out = Path(args.out)
    with atomic_dir(out) as tmp:
        (tmp / "summary.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
        _write_rows(tmp / "summary_table.csv", res.summary_rows(summary))
        _write_rows(tmp / "replicates.csv", [{"parameter_set": spec.centre.name, **r} for r in res.replicate_rows()])
        if args.nonmem:
            from il2als.inputs.datasets import dataset_csv, replicate_dataset

            (tmp / "dataset.csv").write_text(dataset_csv(replicate_dataset(res.replicates[0], reg, d)), encoding="utf-8")
        if not args.no_plot:
            from il2als.plot._common import save_figure
            from il2als.plot.trial import plot_forest, plot_km

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
    from il2als.export.run_folder import atomic_dir, finish_run
    from il2als.inputs.regimens import as_regimen
    from il2als.studies.scenario import compare_regimens

    names = [r.strip() for r in args.regimens.split(";") if r.strip()] if ";" in args.regimens else _split(args.regimens)
    if not names:
        raise Il2alsError("--regimens is empty; give names, CSV paths or sentences, e.g. --regimens mirocals,imodals-1miu")
    regs = [as_regimen(r) for r in names]
    if not (args.days > 0):
        raise Il2alsError(f"--days {args.days:g} must be positive")
    spec = _spec(args.population, args.params, args.set)
    t0 = time.perf_counter()
    print(f"il2als: comparing {len(regs)} regimens with placebo in {args.n} virtual patients by CSF-pNfH stratum ...",
          file=sys.stderr, flush=True)
    res = compare_regimens(regs, spec, args.n, args.seed, args.days)
    print(f"il2als:   done in {time.perf_counter() - t0:.1f} s", file=sys.stderr)
    out = Path(args.out)
    with atomic_dir(out) as tmp:
        _write_scenario_tables(tmp, "regimens.csv", res, spec)
        if not args.no_plot:
            from il2als.plot._common import save_figure
            from il2als.plot.studies import plot_regimen_comparison

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

    from il2als.export.run_folder import atomic_dir, finish_run
    from il2als.inputs.regimens import as_regimen
    from il2als.studies.survival import POWER_TEST
    from il2als.studies.trial import design, power_curve

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
    spec = _spec(args.population, args.params, args.set)
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
            from il2als.plot._common import save_figure
            from il2als.plot.trial import plot_power

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

    from il2als.export.run_folder import atomic_dir, finish_run
    from il2als.results.metrics import PNFH_CUTOFFS
    from il2als.studies.phase3 import FAMILY, design_rows, optimise_schedule
    from il2als.studies.survival import POWER_TEST, power_share
    from il2als.studies.trial import run_trial

    for flag, v, lo in (("--n-search", args.n_search, 10), ("--n-expected", args.n_expected, 100),
                        ("--maxiter", args.maxiter, 1), ("--popsize", args.popsize, 2)):
        if v < lo:
            raise Il2alsError(f"{flag} {v} must be a whole number >= {lo}")
    if not 0 <= args.verify_replicates <= 100_000:
        raise Il2alsError(f"--verify-replicates {args.verify_replicates} must be a whole number from 0 to 100,000")
    t0 = time.perf_counter()
    spec = _spec(args.population, args.params, args.set)
    chosen = spec.centre.name
    print(f"il2als: (a) schedule search in high-pNfH patients (> {PNFH_CUTOFFS[1]:g} pg/mL), {args.n_search} virtual patients, "
          f"differential evolution ({args.maxiter} generations of {args.popsize * 5}) ...", file=sys.stderr, flush=True)
    if args.max_total_miu is not None and not (args.max_total_miu > 0 and math.isfinite(args.max_total_miu)):
        raise Il2alsError(f"--max-total-miu {args.max_total_miu:g} must be a positive number of MIU, e.g. 180")
    search = optimise_schedule(spec.enriched(PNFH_CUTOFFS[1]), args.n_search, args.seed, maxiter=args.maxiter,
                               popsize=args.popsize, max_total_miu=args.max_total_miu,
                               progress=lambda g, f: print(f"il2als:   generation {g}/{args.maxiter}: best objective "
                                                           f"{f:.4f}", file=sys.stderr, flush=True))
    print(f"il2als:   best: {search.best.name} (cumulative-hazard ratio {search.hazard_ratio:.3f} vs MIROCALS "
          f"{search.reference_hazard_ratio:.3f}; effector peak {search.effector_peak:.4f} <= {search.reference_effector_peak:.4f})",
          file=sys.stderr, flush=True)
    sets = {chosen: spec}
    if not args.no_sensitivity:
        from il2als.inputs.parameters import load_parameters
        from il2als.inputs.population_spec import load_population_spec

        sets["calibrated (literature-only)"] = load_population_spec(args.population or "population").centred_on(
            load_parameters("calibrated"))
        if chosen == "mirocals-informed":
            from il2als.inputs.variants import trial_informed

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
        from il2als.studies.phase3 import PHASE3_DESIGNS, design_population
        from il2als.studies.trial import TrialDesign

        _, lo, hi, which = next(x for x in PHASE3_DESIGNS if x[0] == best["design"])
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
               "schedule_search": {"population": f"CSF pNfH > {PNFH_CUTOFFS[1]:g} pg/mL", "n_patients": search.n_patients,
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
            from il2als.plot._common import save_figure
            from il2als.plot.trial import plot_sample_size, plot_schedule_search

            fig = plot_schedule_search(search.evaluations, (search.reference_effector_peak, search.reference_hazard_ratio),
                                       (search.effector_peak, search.hazard_ratio),
                                       title=f"il2als {__version__}: schedules searched for CSF pNfH > {PNFH_CUTOFFS[1]:g} pg/mL "
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
    print(f"(a) best schedule for CSF pNfH > {PNFH_CUTOFFS[1]:g} pg/mL: {search.best.name}")
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

    from il2als.fitting.targets import load_targets
    from il2als.inputs.units import unit_label

    # what the virtual population is compared with: the literature targets it is calibrated to
    ref = {t.id: t for t in load_targets("literature")}
    shares = ("pnfh_share_below_750", "pnfh_share_750_3700", "pnfh_share_above_3700")

    from il2als.compiler.codegen import default_model
    from il2als.export.run_folder import atomic_dir, finish_run
    from il2als.results.metrics import DAYS_PER_MONTH, stratum_labels, stratum_of
    from il2als.solve.batch import simulate_population
    from il2als.studies.cohort import sample_population

    spec = _spec(args.population, args.params, args.set)
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
                row[f"{name} [{unit_label(model.card.parameter(name).unit)}]"] = cohort.params[i, model.parameter_index(name)]
            for name in ("alsfrs_r", "pnfh_csf", "nfl_serum", "nfl_csf", "treg_pct_cd4", "ccl2_csf"):
                row[f"{name}_baseline [{unit_label(res.units[name])}]"] = res[name][i, 0]
            row["alsfrs_r_slope_placebo [points/month]"] = slope[i]
            rows.append(row)
        _write_rows(tmp / "cohort.csv", rows)
        if not args.no_plot:
            from il2als.plot._common import save_figure
            from il2als.plot.studies import plot_population

            fig = plot_population(slope, res["pnfh_csf"][:, 0], res["nfl_serum"][:, 0], cohort.covariates["age"],
                                  targets={"slope": ref["population_alsfrs_slope"].value,
                                           "shares": tuple(ref[k].value for k in shares)},
                                  title=f"il2als {__version__}: virtual population '{spec.name}', {args.n} eligible patients "
                                        f"(screened {cohort.n_screened}), seed {args.seed}")
            save_figure(fig, tmp / "population.png")
        finish_run(tmp, population={"name": spec.name, "omega": spec.omega, "factor": spec.factor}, n=args.n,
                       seed=args.seed, screened=cohort.n_screened, outputs=["cohort.csv", "population.png"])
    pn = res["pnfh_csf"][:, 0]
    slope_ref = ref["population_alsfrs_slope"]
    print(f"{len(cohort)} eligible of {cohort.n_screened} screened; ALSFRS-R slope mean {slope.mean():.3f} points/month "
          f"({slope_ref.source} {slope_ref.value:g}); CSF-pNfH {' / '.join(stratum_labels().values())}: "
          f"{' / '.join(f'{s:.3f}' for s in np.bincount(stratum_of(pn), minlength=3) / len(pn))} "
          f"({ref[shares[0]].source} {' / '.join(f'{ref[k].value:g}' for k in shares)})")
    print(f"il2als: wrote {out}/cohort.csv{'' if args.no_plot else ', population.png'}, manifest.json")
    return 0


def cmd_biology(args: argparse.Namespace) -> int:
    from il2als.export.run_folder import atomic_dir, finish_run
    from il2als.inputs.regimens import as_regimen
    from il2als.studies.biology import expected_hazard_ratio, stratum_biology

    reg = as_regimen(args.regimen)
    if len(reg) == 0:
        raise Il2alsError("--regimen has no doses; the expected effect compares a regimen with placebo")
    spec = _spec(args.population, args.params, args.set)
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
            from il2als.plot._common import save_figure
            from il2als.plot.studies import plot_stratum_biology

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
