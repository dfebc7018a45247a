"""Fitting at the command line's edge: read a problem file, run the fit with progress, write the report and a parameter file."""

from __future__ import annotations

import json
import sys
import time
import tomllib
from pathlib import Path

import numpy as np

from il2als.errors import ParameterError
from il2als.fitting.optimize import FitResult, fit, make_problem, profile
from il2als.fitting.targets import Evaluator, load_targets
from il2als.inputs.parameters import _is_path, load_parameters
from il2als.inputs.units import unit_label

__all__ = ["read_problem", "data_problem", "run_data_fit", "population_problem", "run_population_fit",
           "run_problem_file", "print_check", "write_fit_report"]


_PROBLEM_KEYS = {"name": str, "targets": str, "select": list, "free": list, "n_starts": int, "max_nfev": int,
                 "profiles": bool, "profile_points": int, "profile_nfev": int, "n_population": int, "seed": int,
                 "prior_weight": float}


def _problem_value(d: dict, key: str, default: object, path: object) -> object:
    """``d[key]`` checked against :data:`_PROBLEM_KEYS` (a one-line error names the key and the fix)."""
    if key not in d:
        return default
    v, want = d[key], _PROBLEM_KEYS[key]
    ok = (isinstance(v, want) and not (want is int and isinstance(v, bool))) or (
        want is float and isinstance(v, int) and not isinstance(v, bool))
    if want is list:
        ok = isinstance(v, list) and all(isinstance(x, str) and x for x in v)
    if not ok:
        example = {list: '["a", "b"] (a list of names)', str: '"text"', int: "a whole number", bool: "true or false",
                   float: "a number"}[want]
        raise ParameterError(f"problem file '{path}': {key} = {v!r} must be {example}")
    if want is int and key != "seed" and v < 1:
        raise ParameterError(f"problem file '{path}': {key} = {v} must be >= 1")
    if key == "seed" and v < 0:
        raise ParameterError(f"problem file '{path}': seed = {v} must be >= 0")
    return v


def _base_set(params: "str | tuple[str, list[str]]"):
    """The parameter set a fit starts from: a name or file, or ``(name, ["NAME=QUANTITY", ...])`` with --set
    overrides applied."""
    from il2als.cli._common import _with_sets

    name, sets = (params, []) if isinstance(params, (str, Path)) else params
    return _with_sets(load_parameters(name), list(sets))


def _override_lines(params: "str | tuple[str, list[str]]", ps, fitted: set[str]) -> list[str]:  # noqa: ANN001
    """fitted.toml lines for the --set overrides the fit ran with (those not estimated), read from ``ps`` (the
    parameter set the fit started from), so that loading the file gives the parameters the fit used."""
    if isinstance(params, (str, Path)) or not params[1]:
        return []
    from il2als.cli._common import _parse_sets

    out = []
    for name in _parse_sets(list(params[1])):
        if name in fitted:
            continue
        v = ps.get(name)
        out.append(f'{name} = {{ value = {v.value:.10g}, unit = "{v.unit}", range = [{v.plausible[0]:.6g}, '
                   f'{v.plausible[1]:.6g}], source = "user: --set {name} at fit time (held fixed)" }}')
    return out


def _base_name(params: "str | tuple[str, list[str]]") -> str:
    name = params if isinstance(params, (str, Path)) else params[0]
    return str(Path(name).resolve()) if _is_path(str(name)) else str(name)  # fitted.toml lives elsewhere


def read_problem(path: str | Path, params: str = "default"):
    """(Problem, settings) from a problem TOML file; every key is checked (see :data:`_PROBLEM_KEYS`)."""
    from importlib import resources

    from il2als.inputs.population_spec import load_population_spec
    from il2als.inputs.textfiles import read_text

    p = Path(path)
    cand = resources.files("il2als.params") / "problems" / f"{path}.toml"
    if not p.exists() and not _is_path(str(path)) and cand.is_file():
        text = cand.read_text(encoding="utf-8")  # a shipped problem by name
    else:
        text = read_text(p, "problem file", "a path or one of: pk_treg, natural_history, survival", ParameterError)
    try:
        d = tomllib.loads(text)["problem"]
    except tomllib.TOMLDecodeError as exc:
        raise ParameterError(f"problem file '{path}' is not valid TOML ({exc}); fix the line it names") from None
    except KeyError:
        raise ParameterError(f"problem file '{path}' has no [problem] table; see params/problems/ for examples") from None
    if not isinstance(d, dict):
        raise ParameterError(f"problem file '{path}': [problem] must be a table")
    unknown = sorted(set(d) - set(_PROBLEM_KEYS))
    if unknown:
        from il2als.errors import did_you_mean

        raise ParameterError(f"problem file '{path}': unknown key '{unknown[0]}'{did_you_mean(unknown[0], _PROBLEM_KEYS)}")
    g = lambda key, default: _problem_value(d, key, default, path)  # noqa: E731
    ts = load_targets(g("targets", "literature"))
    sel = g("select", None)
    if sel:
        ts = tuple(t for t in ts if t.id.startswith(tuple(sel)))
    if not ts:
        raise ParameterError(f"problem file '{path}': the selection matches no target")
    free = g("free", None)
    if not free:
        raise ParameterError(f"problem file '{path}': give the free parameters as free = [...]")
    base = _base_set(params).profiles()
    ev = Evaluator(ts, population=load_population_spec(), n_population=g("n_population", 400), seed=g("seed", 11))
    problem = make_problem(ts, list(free), base, evaluator=ev, prior_weight=float(g("prior_weight", 1.0)))
    settings = {"name": g("name", Path(str(path)).stem), "n_starts": g("n_starts", 4),
                "max_nfev": g("max_nfev", 30), "profiles": g("profiles", True),
                "profile_points": g("profile_points", 7), "profile_nfev": g("profile_nfev", 10)}
    return problem, settings


def data_problem(data_path: str, free: list[str], params: str = "default", error: str = "proportional:0.1"):
    """The pooled time-series problem for ``fit --data`` and ``export-petab``; ``error`` is ``MODEL[:SD]``."""
    from il2als.fitting.dataset_fit import make_data_problem
    from il2als.inputs.datasets import read_dataset

    kind, sdv = _error_spec(error)
    if not free:
        raise ParameterError("--free is empty; name the parameters to estimate, e.g. --free ka,ec50_treg")
    return make_data_problem(read_dataset(data_path), free, _base_set(params), error_model=kind, sd=sdv)


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


def population_problem(data_path: str, free: list[str], random: list[str], params: str = "default",
                       error: str = "proportional:0.1"):
    """The random-effects problem for ``fit --data --random``; ``error`` is ``MODEL[:SD]`` (SD: sigma's start)."""
    from il2als.fitting.population_fit import make_population_problem
    from il2als.inputs.datasets import read_dataset

    kind, sd = _error_spec(error)
    return make_population_problem(read_dataset(data_path), free, random, _base_set(params), error_model=kind,
                                   sigma0=sd)


def _error_spec(error: str) -> tuple[str, float]:
    kind, _, sd = error.partition(":")
    try:
        return kind, (float(sd) if sd else 0.1)
    except ValueError:
        raise ParameterError(f"--error '{error}' must be MODEL[:SD], e.g. 'proportional:0.1' or 'lognormal:0.2'") from None


def run_population_fit(data_path: str, free: list[str], random: list[str], out: Path, params: str = "default",
                       error: str = "proportional:0.1", n_starts: int = 3, seed: int = 0, plot: bool = True,
                       vpc_replicates: int = 200):
    """Population fit (FOCE-I) of a NONMEM-style CSV and its report: estimates (RSE%), correlations, EBEs,
    per-observation diagnostics, a VPC, figures, fitted.toml (typical values and a [population] table)."""
    from il2als.export.run_folder import atomic_dir, finish_run, write_rows
    from il2als.fitting.population_fit import fit_population, visual_predictive_check

    if vpc_replicates < 20:
        raise ParameterError(f"--vpc-replicates {vpc_replicates}: a VPC needs at least 20 replicates for its intervals")
    problem = population_problem(data_path, free, random, params, error)
    t0 = time.perf_counter()
    print(f"il2als: population fit (FOCE-I) of {len(free)} typical values, {len(problem.random)} random effects and "
          f"{len(problem.sigma_names)} residual sd(s) to {problem.n_obs} observations of {len(problem.data.ids)} "
          f"patients, {n_starts} starts ...", file=sys.stderr, flush=True)
    res = fit_population(problem, n_starts=n_starts, seed=seed,
                         progress=lambda line: print(f"il2als:   {line} ({time.perf_counter() - t0:.0f} s)",
                                                     file=sys.stderr, flush=True))
    fit_seconds = time.perf_counter() - t0
    print(f"il2als: visual predictive check ({vpc_replicates} replicates) ...", file=sys.stderr, flush=True)
    vpc = visual_predictive_check(res, n_replicates=vpc_replicates, seed=seed + 1)
    if vpc.failed:
        print(f"il2als: warning: the VPC left out {vpc.failed} of {vpc_replicates * len(problem.data.ids)} simulated "
              "patients the engine could not solve (drawn far in the tails of the random effects)", file=sys.stderr)
    rows = res.estimate_rows()
    names = res.names
    corr = res.correlation
    ebe_rows = []
    ind = res.individual_parameters()
    for i, pid in enumerate(problem.data.ids):
        r = {"ID": pid}
        r.update({f"eta_{n} [1]": float(res.eta[i, j]) for j, n in enumerate(problem.random)})
        r.update({f"{f.name} [{f.unit}]": float(ind[i, j]) for j, f in enumerate(problem.free)})
        ebe_rows.append(r)
    diag = res.diagnostic_rows()
    status = "converged" if res.converged else "NOT CONVERGED (do not use as an estimate)"
    stem = Path(data_path).stem
    with atomic_dir(out) as tmp:
        write_rows(tmp / "estimates.csv", rows)
        write_rows(tmp / "correlations.csv", [{"name": a, **{b: float(corr[i, j]) for j, b in enumerate(names)}}
                                              for i, a in enumerate(names)])
        write_rows(tmp / "individual.csv", ebe_rows)
        write_rows(tmp / "diagnostics.csv", [{"ID": d["ID"], "time [day]": d["time_day"], "observable": d["observable"],
                                              "DV": d["DV"], "unit": d["unit"], "PRED": d["PRED"], "IPRED": d["IPRED"],
                                              "IWRES [1]": d["IWRES"], "CWRES [1]": d["CWRES"]} for d in diag])
        write_rows(tmp / "vpc.csv", [{"observable": v["observable"], "time [day]": v["time_day"], "n_obs": v["n_obs"],
                                      "unit": v["unit"], **{k: v[k] for k in v if k.startswith(("obs_", "sim_"))}}
                                     for v in vpc.rows])
        write_rows(tmp / "starts.csv", [{"start": i + 1, "ofv": o, "converged": c, "iterations": n}
                                        for i, (o, c, n) in enumerate(res.starts)])
        base = _base_name(params)
        lines = ["[meta]", f'name = "{stem}-population"',
                 f'title = "Population fit (FOCE-I) by il2als fit --data {stem}, {status}"', f"base = {json.dumps(base)}",
                 "", "[parameters]"]
        for r, f in zip(rows, problem.free):
            src = (f"calibrated: population fit by il2als fit --data {stem} (FOCE-I, {problem.n_obs} observations of "
                   f"{len(problem.data.ids)} patients), typical value, RSE {r['rse_pct']:.3g}%")
            lines.append(f'{f.name} = {{ value = {r["estimate"]:.6g}, unit = "{f.unit}", '
                         f'range = [{f.lower:.6g}, {f.upper:.6g}], source = "{src}" }}')
        lines += _override_lines(params, problem.base, {f.name for f in problem.free})
        lines += ["", "# between-patient SDs of the log-normal random effects, estimated by the same fit", "[population.omega]"]
        lines += [f"{n} = {w:.6g}" for n, w in res.omega.items()]
        (tmp / "fitted.toml").write_text("\n".join(lines) + "\n", encoding="utf-8")
        if plot:
            _population_figures(res, vpc, diag, tmp)
        finish_run(tmp, data=str(data_path), params=params, method="FOCE-I (Lindstrom-Bates alternation)",
                   status=status, message=res.message, ofv=res.ofv, ofv_nonmem=res.ofv_nonmem, aic=res.aic, bic=res.bic,
                   n_ids=len(problem.data.ids), n_obs=problem.n_obs, n_estimated=problem.n_estimated,
                   error_model=problem.error_model, shrinkage_pct={k: 100 * v for k, v in res.shrinkage.items()},
                   vpc_prediction_corrected=vpc.prediction_corrected, vpc_failed_simulations=vpc.failed, fit_seconds=round(fit_seconds, 2),
                   seconds=round(time.perf_counter() - t0, 2))
    print(f"population fit '{stem}': {status}; -2LL {res.ofv:.3f} (NONMEM-style, without n log 2pi: "
          f"{res.ofv_nonmem:.3f}); AIC {res.aic:.2f}; BIC {res.bic:.2f}; {problem.n_estimated} estimated, "
          f"{problem.n_obs} observations, {len(problem.data.ids)} patients; {fit_seconds:.0f} s")
    print(f"{'name':<32}{'estimate':>12}  {'unit':<28}{'RSE %':>8}  {'95% CI':>22}")
    for r in rows:
        ci = f"[{r['ci95_low']:.3g}, {r['ci95_high']:.3g}]"
        print(f"{r['name']:<32}{r['estimate']:>12.4g}  {r['unit']:<28}{r['rse_pct']:>8.1f}  {ci:>22}"
              f"{'  AT BOUND' if r['at_bound'] else ''}")
    print("eta-shrinkage: " + ", ".join(f"{k} {100 * v:.0f}%" for k, v in res.shrinkage.items()))
    if not res.converged:
        print(f"il2als: warning: {res.message}", file=sys.stderr)
    for r in rows:
        if r["at_bound"]:
            print(f"il2als: warning: {r['name']} = {r['estimate']:.4g} is at its bound; the estimate is limited by the "
                  "bound, not the data (fix it, or drop its random effect)", file=sys.stderr)
    print(f"il2als: wrote {out}/estimates.csv, correlations.csv, individual.csv, diagnostics.csv, vpc.csv, starts.csv, "
          f"fitted.toml{', figures' if plot else ''}, manifest.json")
    return res


def _population_figures(res, vpc, diag: list[dict], folder: Path, max_ids: int = 12) -> None:
    import matplotlib.pyplot as plt

    from il2als import __version__
    from il2als.plot._common import save_figure
    from il2als.plot.fitting import (plot_ebe_distribution, plot_individual_fit, plot_observed_vs_predicted,
                                     plot_residuals, plot_vpc)

    pr = res.problem
    obs = pr.observables
    fig, axes = plt.subplots(len(obs), 4, figsize=(16, 3.8 * len(obs)), constrained_layout=True, squeeze=False)
    for row, o in zip(axes, obs):
        plot_observed_vs_predicted(diag, o, "PRED", ax=row[0])
        plot_observed_vs_predicted(diag, o, "IPRED", ax=row[1])
        plot_residuals(diag, o, "time", ax=row[2])
        plot_residuals(diag, o, "PRED", ax=row[3])
    fig.suptitle(f"il2als {__version__}: goodness of fit (FOCE-I), {len(pr.data.ids)} patients", fontsize=10)
    save_figure(fig, folder / "gof.png")
    t, ind, pop = res.curves()
    ids = pr.data.ids[:max_ids]
    pairs = [(pid, o) for pid in ids for o in obs]
    ncol = 4
    nrow = int(np.ceil(len(pairs) / ncol))
    fig, axes = plt.subplots(nrow, ncol, figsize=(3.6 * ncol, 2.6 * nrow), constrained_layout=True, squeeze=False)
    for ax, (pid, o) in zip(axes.flat, pairs):
        i = pr.data.ids.index(pid)
        pts = [(x.time, x.value) for x in pr.data.observations if x.id == pid and x.observable == o]
        plot_individual_fit(t, ind[o][i], pop[o][i], tuple(zip(*pts)), [d.time for d in pr.data.regimens[pid].doses],
                            ax=ax, title=f"ID {pid}: {o}", unit=next(d["unit"] for d in diag if d["observable"] == o))
    for ax in list(axes.flat)[len(pairs):]:
        ax.axis("off")
    axes.flat[0].legend(fontsize=6)
    fig.suptitle("individual fits: IPRED (solid, at the EBE), PRED (dashed), observations (dots), doses (red ticks)"
                 + (f"; first {max_ids} of {len(pr.data.ids)} IDs" if len(pr.data.ids) > max_ids else ""), fontsize=9)
    save_figure(fig, folder / "individual_fits.png")
    k = len(pr.random)
    fig, axes = plt.subplots(1, k, figsize=(4.2 * k, 3.4), constrained_layout=True, squeeze=False)
    for j, (ax, (name, w)) in enumerate(zip(axes[0], res.omega.items())):
        plot_ebe_distribution(res.eta[:, j], w, name, res.shrinkage[name], ax=ax)
    save_figure(fig, folder / "ebes.png")
    fig, axes = plt.subplots(1, len(obs), figsize=(6 * len(obs), 4.2), constrained_layout=True, squeeze=False)
    for ax, o in zip(axes[0], obs):
        plot_vpc(vpc, o, ax=ax)
    save_figure(fig, folder / "vpc.png")


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


def print_check(rows: list[dict]) -> None:
    """The target-by-target table of a check or a fit, with the pass count."""
    print(f"{'target':<32}{'subject':<11}{'model':>11}  {'target':>16}  {'unit':<14}{'residual':>9}  result  source")
    for r in rows:
        print(f"{r['id']:<32}{r['subject']:<11}{r['model']:>11.4g}  {r['target']:>16}  {r['unit']:<14}"
              f"{r['residual']:>9.2f}  {'pass' if r['pass'] else 'FAIL':<6}  {r['source']}")
    n = sum(r["pass"] for r in rows)
    print(f"{n} of {len(rows)} targets within tolerance ({100 * n / len(rows):.0f}%)")


def write_fit_report(res: FitResult, out: Path, name: str, params: str, seconds: float, plot: bool = True) -> None:
    from il2als import __version__
    from il2als.export.run_folder import atomic_dir, finish_run
    from il2als.export.run_folder import write_rows as _write_rows

    problem = res.problem
    cov = res.covariance_ci()
    prof = res.profile_ci()
    rows = []
    for f, xi in zip(problem.free, res.x):
        v = float(f.from_scale(xi))
        pr = prof.get(f.name, (np.nan, np.nan, "not profiled"))
        rows.append({"parameter": f.name, "estimate": v, "unit": unit_label(f.unit), "start": f.nominal,
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
                                          "message": s.message} for i, s in enumerate(res.starts)])
        base = _base_name(params)
        lines = ["[meta]", f'name = "{name}"', f'title = "Fitted by il2als fit ({name}), {status}"',
                 f'base = {json.dumps(base)}', "",
                 "[parameters]"]
        for r in rows:
            what = (f"{len(problem.data.observations)} observations in {problem.data.source}" if hasattr(problem, "data")
                    else f"{len(problem.targets)} literature targets")
            src = (f"calibrated: il2als fit problem '{name}', {what}; "
                   f"profile 95% CI [{r['profile_ci95_low']:.4g}, {r['profile_ci95_high']:.4g}], {r['identifiability']}")
            f = problem.free[problem.names.index(r["parameter"])]
            lines.append(f'{r["parameter"]} = {{ value = {r["estimate"]:.6g}, unit = "{r["unit"]}", '
                         f'range = [{f.lower:.6g}, {f.upper:.6g}], source = "{src}" }}')
        used = problem.base["default"] if isinstance(problem.base, dict) else problem.base  # targets / data problem
        lines += _override_lines(params, used, set(problem.names))
        (tmp / "fitted.toml").write_text("\n".join(lines) + "\n", encoding="utf-8")
        if plot:
            from il2als.plot._common import save_figure
            from il2als.plot.fitting import plot_check, plot_profiles, plot_waterfall

            ax = plot_waterfall(res)
            save_figure(ax, tmp / "waterfall.png")
            if res.profiles:
                fig = plot_profiles(res)
                save_figure(fig, tmp / "profiles.png")
            ax = plot_check(table, title=f"il2als {__version__}: fit '{name}' at the optimum")
            save_figure(ax, tmp / "targets.png")
        finish_run(tmp, problem=name, params=params, status=status, cost=res.cost, seconds=seconds,
                   start_seconds=[round(s.seconds, 2) for s in res.starts],
                       starts=len(res.starts), interrupted=res.interrupted,
                       outputs=["estimates.csv", "targets.csv", "starts.csv", "fitted.toml", "waterfall.png",
                                "profiles.png", "targets.png"])
    print(f"fit '{name}': {status}; cost {res.cost:.4g}; {len(res.starts)} starts; {seconds:.0f} s")
    print(f"{'parameter':<26}{'estimate':>12}  {'unit':<18}{'profile 95% CI':>26}  identifiability")
    for r in rows:
        ci = f"[{r['profile_ci95_low']:.3g}, {r['profile_ci95_high']:.3g}]"
        print(f"{r['parameter']:<26}{r['estimate']:>12.4g}  {r['unit']:<18}{ci:>26}  {r['identifiability']}"
              f"{'  AT BOUND' if r['at_bound'] else ''}")
    for r in rows:
        if r["at_bound"]:
            print(f"il2als: warning: {r['parameter']} = {r['estimate']:.4g} {r['unit']} is at its bound "
                  f"[{r['lower_bound']:.4g}, {r['upper_bound']:.4g}]; the estimate is limited by the bound, not the data "
                  "(widen the range or fix the parameter)", file=sys.stderr)
    print_check(table)
    print(f"il2als: wrote {out}/estimates.csv, targets.csv, starts.csv, fitted.toml, figures, manifest.json")
