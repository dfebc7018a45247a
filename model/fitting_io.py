"""Fitting at the edge: read a problem file, run the fit with progress, write the report and a parameter file.

A problem file (TOML, see ``params/problems/``) names the targets (and an id-prefix selection), the free
parameters, the number of starts, the evaluation budget, whether to profile, and the virtual population size.
"""

from __future__ import annotations

import sys
import time
import tomllib
from pathlib import Path

import numpy as np

from .calibration import Evaluator, load_targets
from .errors import ParameterError
from .fit import FitResult, fit, make_problem, profile
from .parameters import load_parameters


def read_problem(path: str | Path, params: str = "default"):
    """(Problem, settings) from a problem TOML file."""
    p = Path(path)
    if not p.is_file():
        # a shipped problem by name
        from importlib import resources

        cand = resources.files("il2als.params") / "problems" / f"{path}.toml"
        if not cand.is_file():
            raise ParameterError(f"problem file '{path}' not found; give a path or one of: pk_treg, natural_history, survival")
        text = cand.read_text(encoding="utf-8")
    else:
        text = p.read_text(encoding="utf-8")
    try:
        d = tomllib.loads(text)["problem"]
    except tomllib.TOMLDecodeError as exc:
        raise ParameterError(f"problem file '{path}' is not valid TOML ({exc}); fix the line it names") from None
    except KeyError:
        raise ParameterError(f"problem file '{path}' has no [problem] table; see params/problems/ for examples") from None
    ts = load_targets(d.get("targets", "literature"))
    sel = d.get("select")
    if sel:
        ts = tuple(t for t in ts if t.id.startswith(tuple(sel)))
    if not ts:
        raise ParameterError(f"problem file '{path}': the selection matches no target")
    if not d.get("free"):
        raise ParameterError(f"problem file '{path}': give the free parameters as free = [...]")
    default = load_parameters(params)
    base = {"default": default, "slow": default.with_profile("slow"), "fast": default.with_profile("fast")}
    ev = Evaluator(ts, n_population=int(d.get("n_population", 400)), seed=int(d.get("seed", 11)))
    problem = make_problem(ts, list(d["free"]), base=base, evaluator=ev, prior_weight=float(d.get("prior_weight", 1.0)))
    settings = {"name": d.get("name", Path(str(path)).stem), "n_starts": int(d.get("n_starts", 4)),
                "max_nfev": int(d.get("max_nfev", 30)), "profiles": bool(d.get("profiles", True)),
                "profile_points": int(d.get("profile_points", 7)), "profile_nfev": int(d.get("profile_nfev", 10))}
    return problem, settings


def data_problem(data_path: str, free: list[str], params: str = "default", error: str = "proportional:0.1"):
    """The pooled time-series problem for ``fit --data`` and ``export-petab``; ``error`` is ``MODEL[:SD]``."""
    from .data import make_data_problem, read_dataset

    kind, _, sd = error.partition(":")
    try:
        sdv = float(sd) if sd else 0.1
    except ValueError:
        raise ParameterError(f"--error '{error}' must be MODEL[:SD], e.g. 'proportional:0.1' or 'lognormal:0.2'") from None
    if not free:
        raise ParameterError("--free is empty; name the parameters to estimate, e.g. --free ka,ec50_treg")
    return make_data_problem(read_dataset(data_path), free, params=params, error_model=kind, sd=sdv)


def run_data_fit(data_path: str, free: list[str], out: Path, params: str = "default", error: str = "proportional:0.1",
                 n_starts: int = 3, seed: int = 0, plot: bool = True) -> FitResult:
    """Fit shared parameters to a NONMEM-style CSV of individual time series, with profiles, and write the report."""
    problem = data_problem(data_path, free, params, error)
    t0 = time.perf_counter()
    print(f"il2als: fitting {len(free)} parameters to {len(problem.data.observations)} observations of "
          f"{len(problem.data.ids)} patients, {n_starts} starts ...", file=sys.stderr, flush=True)
    res = fit(problem, n_starts=n_starts, seed=seed, max_nfev=30,
              progress=lambda k, m, c: print(f"il2als:   start {k}/{m}: cost {c:.4g}", file=sys.stderr, flush=True))
    if not res.interrupted:
        res = profile(res, n_points=5, max_nfev=8)
    write_fit_report(res, out, Path(data_path).stem, params, time.perf_counter() - t0, plot)
    return res


def run_problem_file(path, out: Path, params: str = "default", n_starts: int | None = None, seed: int = 0,
                     plot: bool = True) -> FitResult:
    problem, st = read_problem(path, params)
    n = n_starts or st["n_starts"]
    t0 = time.perf_counter()
    print(f"il2als: fitting {len(problem.free)} parameters to {len(problem.targets)} targets, {n} starts ...",
          file=sys.stderr, flush=True)
    res = fit(problem, n_starts=n, seed=seed, max_nfev=st["max_nfev"],
              progress=lambda k, m, c: print(f"il2als:   start {k}/{m}: cost {c:.4g} ({time.perf_counter() - t0:.0f} s)",
                                             file=sys.stderr, flush=True))
    if res.interrupted:
        print("il2als: interrupted: reporting the finished starts only", file=sys.stderr)
    if st["profiles"] and not res.interrupted:
        res = profile(res, n_points=st["profile_points"], max_nfev=st["profile_nfev"], progress=lambda name: print(f"il2als:   profiled {name}", file=sys.stderr, flush=True))
    seconds = time.perf_counter() - t0
    write_fit_report(res, out, st["name"], params, seconds, plot)
    return res


def write_fit_report(res: FitResult, out: Path, name: str, params: str, seconds: float, plot: bool = True) -> None:
    from . import __version__
    from .cli import _print_check, _write_rows
    from .io import atomic_dir, write_manifest

    problem = res.problem
    cov = res.covariance_ci()
    prof = res.profile_ci()
    rows = []
    for f, xi in zip(problem.free, res.x):
        v = float(f.from_scale(xi))
        pr = prof.get(f.name, (np.nan, np.nan, "not profiled"))
        rows.append({"parameter": f.name, "estimate": v, "unit": f.unit, "start": f.nominal,
                     "cov_ci95_low": cov[f.name][0], "cov_ci95_high": cov[f.name][1],
                     "profile_ci95_low": pr[0], "profile_ci95_high": pr[1], "identifiability": pr[2],
                     "lower_bound": f.lower, "upper_bound": f.upper,
                     "at_bound": bool(np.isclose(v, f.lower, rtol=1e-3) or np.isclose(v, f.upper, rtol=1e-3))})
    table = res.table()
    status = "converged" if res.converged else "NOT CONVERGED (do not use as an estimate)"
    with atomic_dir(out) as tmp:
        _write_rows(tmp / "estimates.csv", rows)
        _write_rows(tmp / "targets.csv", table)
        _write_rows(tmp / "starts.csv", [{"start": i + 1, "cost": s.cost, "converged": s.converged, "nfev": s.nfev,
                                          "seconds": s.seconds, "message": s.message} for i, s in enumerate(res.starts)])
        lines = ["[meta]", f'name = "{name}"', f'title = "Fitted by il2als fit ({name}), {status}"', f'base = "{params}"', "",
                 "[parameters]"]
        for r in rows:
            what = (f"{len(problem.data.observations)} observations in {problem.data.source}" if hasattr(problem, "data")
                    else f"{len(problem.targets)} literature targets")
            src = (f"calibrated: il2als fit problem '{name}', {what}; "
                   f"profile 95% CI [{r['profile_ci95_low']:.4g}, {r['profile_ci95_high']:.4g}], {r['identifiability']}")
            f = problem.free[problem.names.index(r["parameter"])]
            lines.append(f'{r["parameter"]} = {{ value = {r["estimate"]:.6g}, unit = "{r["unit"]}", '
                         f'range = [{f.lower:.6g}, {f.upper:.6g}], source = "{src}" }}')
        (tmp / "fitted.toml").write_text("\n".join(lines) + "\n", encoding="utf-8")
        if plot:
            from .plots import plot_check, plot_profiles, plot_waterfall, save_figure

            ax = plot_waterfall(res)
            save_figure(ax, tmp / "waterfall.png")
            if res.profiles:
                fig = plot_profiles(res)
                save_figure(fig, tmp / "profiles.png")
            ax = plot_check(table, title=f"il2als {__version__}: fit '{name}' at the optimum")
            save_figure(ax, tmp / "targets.png")
        write_manifest(tmp, problem=name, params=params, status=status, cost=res.cost, seconds=seconds,
                       starts=len(res.starts), interrupted=res.interrupted,
                       outputs=["estimates.csv", "targets.csv", "starts.csv", "fitted.toml", "waterfall.png",
                                "profiles.png", "targets.png"])
    print(f"fit '{name}': {status}; cost {res.cost:.4g}; {len(res.starts)} starts; {seconds:.0f} s")
    print(f"{'parameter':<26}{'estimate':>12}  {'unit':<18}{'profile 95% CI':>26}  identifiability")
    for r in rows:
        ci = f"[{r['profile_ci95_low']:.3g}, {r['profile_ci95_high']:.3g}]"
        print(f"{r['parameter']:<26}{r['estimate']:>12.4g}  {r['unit']:<18}{ci:>26}  {r['identifiability']}")
    _print_check(table)
    print(f"il2als: wrote {out}/estimates.csv, targets.csv, starts.csv, fitted.toml, figures, manifest.json")
