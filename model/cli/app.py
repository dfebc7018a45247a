"""The ``il2als`` command line: the parser and the entry point. Bad input prints one line naming the problem and the fix, and exits 2."""

from __future__ import annotations

import argparse
import os
import sys
import warnings

from il2als import __version__
from il2als.cli._common import EXIT_BAD_INPUT, _params_flag, _set_flag, _study_options, _warn_one_line
from il2als.cli.fitting import cmd_check, cmd_fit
from il2als.cli.simulate import cmd_equations, cmd_export_petab, cmd_export_sbml, cmd_params, cmd_regimens, cmd_simulate
from il2als.cli.studies import (cmd_biology, cmd_compare, cmd_design_phase3, cmd_population, cmd_power, cmd_scenario,
                                cmd_sensitivity, cmd_trial)
from il2als.errors import Il2alsError

__all__ = ["build_parser", "console", "main"]


class _Parser(argparse.ArgumentParser):
    """argparse with the house rule for bad input: one line naming the problem and the fix, exit 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        sys.stderr.write(f"il2als: error: {self.prog}: {message}; see '{self.prog} --help'\n")
        raise SystemExit(EXIT_BAD_INPUT)


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
    _set_flag(s)
    s.add_argument("--method", default="engine", help="solver: engine (the compiled batch engine the studies use; "
                                                    "default), or LSODA, BDF or Radau (scipy, the reference)")
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
    c.add_argument("--days", type=float, default=640.0, help="duration in days (default 640)")
    _params_flag(c)
    _study_options(c, 200, "virtual patients per group (slow-vs-fast) or in all (strata)")
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
    cr.add_argument("--days", type=float, default=640.0, help="duration in days (default 640)")
    _params_flag(cr)
    _study_options(cr, 300, "virtual patients (split by stratum)")
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
    _params_flag(po, default=None)
    _study_options(po, 2000, "eligible virtual patients to sample")
    po.set_defaults(func=cmd_population)

    ck = sub.add_parser("check", help="compare a parameter set with every calibration target (table, CSV, figure)")
    _params_flag(ck, default="default", what="to check")
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
    _params_flag(ft, default="default", what="to start from")
    ft.add_argument("--n-starts", type=int, default=None, help="override the problem's number of starts")
    ft.add_argument("--seed", type=int, default=0)
    ft.add_argument("--out", required=True)
    ft.add_argument("--no-plot", action="store_true")
    ft.set_defaults(func=cmd_fit)

    xs = sub.add_parser("export-sbml", help="write the model, a parameter set and a regimen as SBML L3V2 (libSBML-validated)")
    _params_flag(xs, default="default", what="to export")
    xs.add_argument("--regimen", default="mirocals", help="regimen (name, CSV, sentence); 'placebo' for none")
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
    _set_flag(se)
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
    _params_flag(bi, default=None)
    _study_options(bi, 3000, "virtual patients (each simulated in both arms)")
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


#: the library's argument names (written `name` in its messages) -> this command line's flag and its dest
_FLAG_OF = {"free": ("--free", "free"), "random": ("--random", "random"), "scheduler": ("--scheduler", "scheduler"),
            "error_model": ("--error", "error"), "parameters": ("--parameters", "parameters"), "seed": ("--seed", "seed"),
            "params": ("--params", "params")}


def _advice(message: str, args: argparse.Namespace) -> str:
    """A library message with its advice in this command's terms: flags it has, nothing it lacks. The library names
    its arguments as `name`; here each becomes the flag this command takes (or the plain name if it has none)."""
    import re

    from il2als.solve.batch import SKIP_ADVICE

    def flag(m: re.Match) -> str:
        name = m.group(1)
        f = _FLAG_OF.get(name)
        return f[0] if f and hasattr(args, f[1]) else name

    message = re.sub(r"`([a-z_]+)`", flag, message)

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
        parallel = sys.modules.get("il2als.studies.parallel")
        if parallel is not None:  # the command's results are in (or it failed): its workers have nothing left to do
            parallel.end_pool()
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
    # the command line writes figures to files: no display backend (the library never chooses one)
    os.environ.setdefault("MPLBACKEND", "Agg")
    try:
        _check_common(args)
        if getattr(args, "out", None) is not None:  # before any work: never compute what cannot be written
            from il2als.export.run_folder import check_output

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


#: seconds an interrupted or terminated command may spend in the interpreter's exit before it is ended at once
_EXIT_GRACE_SECONDS = 15.0


def console() -> None:
    """The ``il2als`` program: :func:`main`, then exit with its code.

    After Ctrl-C or SIGTERM the output has already been removed and the worker pool ended; the interpreter's own
    exit then joins the process pool's internal threads without a time limit, so a watchdog ends the process with
    the same code if that exit takes longer than ``_EXIT_GRACE_SECONDS`` (workers end with their parent)."""
    rc = main()
    if rc in (130, 143):
        import threading

        def _exit_now() -> None:
            sys.stderr.flush()
            os._exit(rc)

        watchdog = threading.Timer(_EXIT_GRACE_SECONDS, _exit_now)
        watchdog.daemon = True
        watchdog.start()
    sys.exit(rc)


if __name__ == "__main__":  # pragma: no cover
    console()
