"""Options and helpers the command groups share."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from il2als.errors import Il2alsError

__all__ = ["EXIT_BAD_INPUT", "TRIAL_FACING_PARAMS"]


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


def _write_rows(path: Path, rows: list[dict]) -> None:
    from il2als.export.run_folder import write_rows

    write_rows(path, rows)


def _progress(label: str):
    def cb(done: int, total: int) -> None:
        print(f"il2als: {label}: {done}/{total}", file=sys.stderr, flush=True)
    return cb


#: The parameter set of the trial-facing commands (scenario, trial, compare-regimens, power): the trial-informed
#: one; ``--params calibrated`` gives the literature-only set.
TRIAL_FACING_PARAMS = "mirocals-informed"


def _spec(path: str | None, params: str | None = None, sets: list[str] = ()):
    """The population spec (``--population``), centred on ``--params`` when given, with the ``--set`` overrides
    applied to its centre (announced on stderr)."""
    from il2als.inputs.population_spec import load_population_spec

    spec = load_population_spec(path or "population")
    if params is None:
        if sets:
            spec = spec.centred_on(_with_sets(spec.centre, list(sets)))
            print(f"il2als: parameter set '{spec.centre.name}' with --set {', '.join(sets)}", file=sys.stderr, flush=True)
        return spec
    from il2als.inputs.parameters import load_parameters

    ps = load_parameters(params)
    spec = spec.centred_on(_with_sets(ps, list(sets)))
    kind = ("trial-informed: fitted to the MIROCALS low-stratum HR, so that number is a fit here, not a prediction"
            if ps.name == TRIAL_FACING_PARAMS else "literature-only" if ps.name == "calibrated" else ps.title or ps.name)
    extra = f"; with --set {', '.join(sets)}" if sets else ""
    print(f"il2als: parameter set '{ps.name}' ({kind}{extra})", file=sys.stderr, flush=True)
    return spec


def _set_record(spec) -> dict:  # noqa: ANN001
    """What a manifest says about the parameter set behind a run."""
    c = spec.centre
    return {"name": c.name, "title": c.title, "files": list(c.files)}


def _positive_int(value: int, flag: str) -> int:
    if value < 1:
        raise Il2alsError(f"{flag} {value} must be a whole number >= 1")
    return value


def _set_flag(parser: argparse.ArgumentParser) -> None:
    """``--set NAME=QUANTITY``, repeatable: every command that simulates takes it."""
    parser.add_argument("--set", action="append", default=[], metavar="NAME=QUANTITY",
                        help="override a parameter of the set (repeatable), e.g. --set 'ec50_treg=2 IU/mL'")


def _params_flag(parser: argparse.ArgumentParser, default: str | None = TRIAL_FACING_PARAMS,
                 what: str = "at the population's centre") -> None:
    """``--params`` (the parameter set) and ``--set`` (overrides of it), the same on every command."""
    if default == TRIAL_FACING_PARAMS:
        text = (f"parameter set {what} (default: {TRIAL_FACING_PARAMS}, fitted to the MIROCALS low-stratum HR; "
                "'calibrated' for the literature-only set)")
    else:
        text = f"parameter set {what} (default: {default or 'the population spec' + chr(39) + 's own centre'})"
    parser.add_argument("--params", default=default, help=text)
    _set_flag(parser)


def _study_options(parser: argparse.ArgumentParser, n: int, n_help: str, seed: int = 1) -> None:
    """The options every population study shares: its size, seed, population spec, output folder and --no-plot."""
    parser.add_argument("--n", type=int, default=n, help=n_help)
    parser.add_argument("--seed", type=int, default=seed, help="random seed (reproduces the population exactly)")
    parser.add_argument("--population", default=None, help="population spec TOML (default: params/population.toml)")
    parser.add_argument("--out", required=True, help="output folder (replaced atomically)")
    parser.add_argument("--no-plot", action="store_true", help="skip the figures")
