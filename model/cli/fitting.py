"""Commands that check and fit parameter sets."""

from __future__ import annotations

import argparse
from pathlib import Path

from il2als import __version__
from il2als.cli._common import _split, _with_sets, _write_rows
from il2als.errors import Il2alsError

__all__ = ["cmd_check", "cmd_fit"]


def _check_rows(params_name: str, targets_name: str, n_population: int, sets: list[str] = ()):
    from il2als.fitting.targets import check_parameter_set, load_targets
    from il2als.inputs.parameters import load_parameters
    from il2als.inputs.population_spec import load_population_spec

    ts = load_targets(targets_name)
    return ts, check_parameter_set(_with_sets(load_parameters(params_name), list(sets)), ts, load_population_spec(), n_population)


def cmd_check(args: argparse.Namespace) -> int:
    from il2als.cli.fitting_runs import print_check
    from il2als.export.run_folder import atomic_dir, finish_run

    ts, rows = _check_rows(args.params, args.targets, args.n_population, args.set)
    print_check(rows)
    if args.out:
        out = Path(args.out)
        with atomic_dir(out) as tmp:
            _write_rows(tmp / "check.csv", rows)
            if not args.no_plot:
                from il2als.plot._common import save_figure
                from il2als.plot.fitting import plot_check

                ax = plot_check(rows, title=f"il2als {__version__}: parameter set '{args.params}' vs targets '{args.targets}'")
                save_figure(ax, tmp / "check.png")
            finish_run(tmp, params=args.params, overrides=args.set, targets=args.targets, passed=sum(r["pass"] for r in rows),
                           total=len(rows), outputs=["check.csv", "check.png"])
        print(f"il2als: wrote {out}/check.csv{'' if args.no_plot else ', check.png'}, manifest.json")
    return 0


def cmd_fit(args: argparse.Namespace) -> int:
    from il2als.cli.fitting_runs import run_data_fit, run_problem_file

    if (args.problem is None) == (args.data is None):
        raise Il2alsError("give either --problem FILE (literature targets) or --data FILE --free a,b (time series)")
    if args.data is not None:
        free = _split(args.free or "")
        if not free:
            raise Il2alsError("--data needs --free with the parameters to estimate, e.g. --free ka,treg_max_proliferation")
        if args.random:
            from il2als.cli.fitting_runs import run_population_fit

            run_population_fit(args.data, free, _split(args.random), Path(args.out), params=(args.params, args.set),
                               error=args.error, n_starts=args.n_starts or 3, seed=args.seed, plot=not args.no_plot,
                               vpc_replicates=args.vpc_replicates)
            return 0
        run_data_fit(args.data, free, Path(args.out), params=(args.params, args.set), error=args.error,
                     n_starts=args.n_starts or 3, seed=args.seed, plot=not args.no_plot)
        return 0
    if args.random:
        raise Il2alsError("--random needs --data (random effects are fitted to individual time series)")
    run_problem_file(args.problem, Path(args.out), params=(args.params, args.set), n_starts=args.n_starts, seed=args.seed,
                     plot=not args.no_plot)
    return 0
