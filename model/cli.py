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
    from .io import atomic_dir, write_manifest
    from .parameters import load_parameters
    from .simulate import SolverOptions, check_grid, simulate
    from .trajectory import summarise

    if args.days is not None and args.duration is not None:
        raise Il2alsError("give either --days or --duration, not both")
    if args.days is not None:
        if not (args.days > 0):
            raise Il2alsError(f"--days {args.days:g} must be positive, e.g. --days 640")
        duration = f"{args.days} day"
    else:
        duration = args.duration or "640 day"
    check_grid(duration, args.step)
    reg = as_regimen(args.regimen)
    profiles = _split(args.profile)
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
        _write_summary_csv(tmp / "summary.csv", summary_rows)
        if not args.no_plot:
            from .plots import plot_trajectories

            fig = plot_trajectories(runs, title=f"il2als {__version__}: {reg.description or reg.summary()} — {duration}")
            fig.savefig(tmp / "trajectory.png", dpi=110)
            import matplotlib.pyplot as plt

            plt.close(fig)
        write_manifest(
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


def _write_summary_csv(path: Path, rows: list[dict]) -> None:
    import csv

    with open(path, "w", encoding="utf-8", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]), lineterminator="\n")
        w.writeheader()
        for r in rows:
            w.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in r.items()})


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


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="il2als", description="Mechanistic model of low-dose IL-2 in ALS.")
    p.add_argument("--version", action="version", version=f"il2als {__version__}")
    sub = p.add_subparsers(dest="command", required=True)

    s = sub.add_parser("simulate", help="simulate patients under a regimen; write CSV, figure and manifest")
    s.add_argument("--regimen", default="mirocals", help="name (see 'il2als regimens'), CSV event table, or sentence")
    s.add_argument("--profile", default="slow,fast", help="slow, fast, default or a parameter file; comma-separated for several")
    s.add_argument("--days", type=float, default=None, help="duration in days (default 640)")
    s.add_argument("--duration", default=None, help="duration as a quantity, e.g. '18 months'")
    s.add_argument("--step", default="1 day", help="output step, e.g. '1 hour' to resolve PK peaks (default 1 day)")
    s.add_argument("--out", required=True, help="output folder (replaced atomically)")
    s.add_argument("--placebo", action="store_true", help="also simulate each profile without IL-2 (dashed lines)")
    s.add_argument("--set", action="append", default=[], metavar="NAME=QUANTITY", help="override a parameter, e.g. 'ec50_treg=2 IU/mL'")
    s.add_argument("--method", default="LSODA", help="stiff solver: LSODA, BDF or Radau")
    s.add_argument("--rtol", type=float, default=1e-7, help="relative tolerance (default 1e-7)")
    s.add_argument("--atol", type=float, default=1e-9, help="absolute tolerance relative to each state's scale (default 1e-9)")
    s.add_argument("--no-plot", action="store_true", help="skip the figure")
    s.set_defaults(func=cmd_simulate)

    r = sub.add_parser("regimens", help="list the named regimens and the sentence forms")
    r.set_defaults(func=cmd_regimens)

    q = sub.add_parser("params", help="list parameter sets, or show one with units, ranges and references")
    q.add_argument("name", nargs="?", default=None)
    q.set_defaults(func=cmd_params)

    e = sub.add_parser("equations", help="print the model equations (Markdown + LaTeX), generated from the mechanism")
    e.set_defaults(func=cmd_equations)
    return p


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    warnings.showwarning = _warn_one_line
    try:
        return int(args.func(args) or 0)
    except Il2alsError as exc:
        print(f"il2als: error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print("\nil2als: interrupted; no output was written", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
