"""Global (Sobol, Morris; SALib) and local (normalised finite-difference) sensitivity of trial-level outputs.

Outputs per virtual patient, in output units, under a regimen for ``duration`` (default MIROCALS, 640 days):

* ``survival_640d`` [%]: model survival probability at the end, on IL-2;
* ``alsfrs_slope`` [points/month]: mean ALSFRS-R slope over follow-up, on IL-2;
* ``treg_peak`` [%]: highest Treg share of CD4 T cells, on IL-2;
* ``survival_gain`` [percentage points] and ``slope_gain`` [points/month]: IL-2 minus placebo (the treatment
  effect; the placebo runs carry no doses and cost little).

The parameters vary over their plausible ranges (``params/``), log-uniformly when the range is positive. The
profile (``slow``, ``fast``) fixes the others, so running both shows which parameters decide the response in
slow and in fast progressors. The default set is the IL-2 -> Treg -> inflammation axis (the profile-defining
parameters stay at the profile's values, since varying them over their ranges would erase the profile).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from il2als.compiler.codegen import default_model
from il2als.errors import Il2alsError, did_you_mean
from il2als.inputs.parameters import ParameterSet
from il2als.inputs.regimens import Regimen, as_regimen, none
from il2als.results.metrics import slope_from_baseline
from il2als.solve.batch import BatchOptions, simulate_population
from il2als.studies.parallel import run_tasks

__all__ = ["OUTPUTS", "DEFAULT_PARAMETERS", "check_outputs", "Space", "space", "evaluate", "GlobalResult",
           "global_sensitivity", "LocalResult", "local_sensitivity"]

OUTPUTS = {
    "survival_640d": ("%", "survival at the end of follow-up on IL-2"),
    "alsfrs_slope": ("points/month", "ALSFRS-R slope on IL-2"),
    "treg_peak": ("%", "peak Treg share of CD4 on IL-2"),
    "survival_gain": ("percentage points", "survival at the end, IL-2 minus placebo"),
    "slope_gain": ("points/month", "ALSFRS-R slope, IL-2 minus placebo"),
}
DEFAULT_PARAMETERS = ("ka", "ec50_treg", "k_desensitisation", "treg_max_proliferation", "treg_capacity",
                      "treg_suppression_gain", "treg_function_ceiling", "k_treg_function_gain", "k_treg_function_loss",
                      "k_refractory", "effector_gain", "k_inflammatory")
_NEEDS_PLACEBO = {"survival_gain", "slope_gain"}


def check_outputs(outputs: Sequence[str]) -> list[str]:
    out = list(outputs)
    if not out:
        raise Il2alsError(f"no outputs asked for; choose from {', '.join(OUTPUTS)}")
    for o in out:
        if o not in OUTPUTS:
            raise Il2alsError(f"unknown sensitivity output '{o}'{did_you_mean(o, OUTPUTS)}; choose from {', '.join(OUTPUTS)}")
    return out


@dataclass(frozen=True)
class Space:
    """Parameters varied, their bounds in canonical units, and whether each is sampled on a log scale."""

    names: tuple[str, ...]
    lower: np.ndarray
    upper: np.ndarray
    log: np.ndarray

    def salib_problem(self) -> dict:
        lo = np.where(self.log, np.log(np.where(self.log, self.lower, 1.0)), self.lower)
        hi = np.where(self.log, np.log(np.where(self.log, self.upper, 1.0)), self.upper)
        return {"num_vars": len(self.names), "names": list(self.names), "bounds": np.column_stack([lo, hi]).tolist()}

    def to_values(self, X: np.ndarray) -> np.ndarray:
        return np.where(self.log, np.exp(X), X)


def space(params: ParameterSet, names: Sequence[str]) -> Space:
    """Plausible ranges of ``names`` in ``params`` (checked: known, distinct, a real range)."""
    model = default_model()
    names = list(names)
    if len(set(names)) != len(names):
        raise Il2alsError("a parameter is listed twice in `parameters`; list each once")
    lo, hi = [], []
    for n in names:
        if n not in model.parameter_names:
            raise Il2alsError(f"unknown parameter '{n}'{did_you_mean(n, model.parameter_names)}")
        a, b = params.get(n).plausible
        if not (math.isfinite(a) and math.isfinite(b) and b > a):
            raise Il2alsError(f"parameter '{n}' has no finite plausible range in {params.name}; give it one or drop it")
        lo.append(a)
        hi.append(b)
    lo, hi = np.array(lo), np.array(hi)
    return Space(tuple(names), lo, hi, lo > 0)


def _outputs_chunk(P: np.ndarray, regimen: Regimen, duration: float, outputs: tuple[str, ...]) -> np.ndarray:
    """(K, n_outputs) for a chunk of parameter rows (a task: picklable, runs on any backend)."""
    opts = BatchOptions(on_failure="skip")
    res = simulate_population(P, regimen, f"{duration} day", step="1 day",
                              outputs=["survival", "alsfrs_r", "treg_pct_cd4"], options=opts)
    surv = res["survival"][:, -1] * 100.0
    slope = slope_from_baseline(res["alsfrs_r"], res.time)
    cols = {"survival_640d": surv, "alsfrs_slope": slope, "treg_peak": np.max(res["treg_pct_cd4"], axis=1)}
    if _NEEDS_PLACEBO & set(outputs):
        pl = simulate_population(P, none(), f"{duration} day", step=f"{duration} day",
                                 outputs=["survival", "alsfrs_r"], options=opts)
        cols["survival_gain"] = surv - pl["survival"][:, -1] * 100.0
        cols["slope_gain"] = slope - slope_from_baseline(pl["alsfrs_r"], pl.time)
    Y = np.column_stack([cols[o] for o in outputs])
    Y[res.status != 0] = np.nan
    return Y


def evaluate(P: np.ndarray, regimen: "Regimen | str", duration: float, outputs: Sequence[str], *, chunk: int = 2048,
             scheduler: object = None, progress: Callable[[int, int], None] | None = None) -> np.ndarray:
    """Outputs ``(K, n_outputs)`` for parameter rows ``P`` ``(K, n_parameters)``, in chunks on ``scheduler``."""
    reg = as_regimen(regimen)
    outs = tuple(check_outputs(outputs))
    tasks = [(P[i:i + chunk], reg, float(duration), outs) for i in range(0, len(P), chunk)]
    parts = run_tasks(_outputs_chunk, tasks, scheduler=scheduler, progress=progress)
    return np.vstack(parts) if parts else np.empty((0, len(outs)))


@dataclass(frozen=True, eq=False)
class GlobalResult:
    """Indices per output: ``indices[output][key]`` arrays over ``space.names`` (Sobol: S1, S1_conf, ST, ST_conf;
    Morris: mu_star, mu_star_conf, sigma), with the samples' outputs ``Y`` for inspection."""

    method: str
    profile: str
    space: Space
    outputs: tuple[str, ...]
    indices: dict[str, dict[str, np.ndarray]]
    n_evaluations: int
    n_failed: int
    Y: np.ndarray

    def rows(self) -> list[dict]:
        out = []
        for o in self.outputs:
            for j, n in enumerate(self.space.names):
                out.append({"profile": self.profile, "output": o, "unit": OUTPUTS[o][0], "parameter": n,
                            **{k: float(v[j]) for k, v in self.indices[o].items()}})
        return out


def global_sensitivity(base: ParameterSet, outputs: Sequence[str], *, method: str = "sobol",
                       parameters: Sequence[str] = DEFAULT_PARAMETERS, n_base: int = 4096,
                       regimen: "Regimen | str" = "mirocals", duration: float = 640.0, seed: int = 1,
                       scheduler: object = None, progress: Callable[[int, int], None] | None = None,
                       morris_levels: int = 4) -> GlobalResult:
    """Sobol (Saltelli sampling, first and total order with bootstrap 95% intervals) or Morris (elementary
    effects, ``n_base`` trajectories) indices of ``outputs`` over ``parameters`` for one profile."""
    try:
        from SALib.analyze import morris as morris_analyze
        from SALib.analyze import sobol as sobol_analyze
        from SALib.sample import morris as morris_sample
        from SALib.sample import sobol as sobol_sample
    except ImportError:
        raise Il2alsError("global sensitivity needs SALib: pip install 'il2als[sensitivity]'") from None
    if method not in ("sobol", "morris"):
        raise Il2alsError(f"method '{method}' must be sobol or morris")
    if not (isinstance(n_base, (int, np.integer)) and n_base >= 8):
        raise Il2alsError(f"base samples {n_base!r} must be a whole number >= 8 (Sobol: a power of 2, e.g. 4096)")
    if method == "sobol" and n_base & (n_base - 1):
        raise Il2alsError(f"Sobol base samples {n_base} must be a power of 2 (e.g. 1024, 4096)")
    outs = tuple(check_outputs(outputs))
    sp_ = space(base, parameters)
    problem = sp_.salib_problem()
    if method == "sobol":
        X = sobol_sample.sample(problem, n_base, calc_second_order=False, seed=seed)
    else:
        X = morris_sample.sample(problem, n_base, num_levels=morris_levels, seed=seed)
    model = default_model()
    P = np.tile(base.vector(model), (len(X), 1))
    idx = [model.parameter_index(n) for n in sp_.names]
    P[:, idx] = sp_.to_values(X)
    Y = evaluate(P, regimen, duration, outs, scheduler=scheduler, progress=progress)
    failed = int(np.sum(~np.all(np.isfinite(Y), axis=1)))
    if failed > 0.01 * len(Y):
        raise Il2alsError(f"{failed} of {len(Y)} samples failed to simulate; narrow the parameter ranges")
    Yf = np.where(np.isfinite(Y), Y, np.nanmean(Y, axis=0))  # a handful of failures: fill with the mean, reported
    indices = {}
    for k, o in enumerate(outs):
        if method == "sobol":
            r = sobol_analyze.analyze(problem, Yf[:, k], calc_second_order=False, seed=seed)
            indices[o] = {key: np.asarray(r[key]) for key in ("S1", "S1_conf", "ST", "ST_conf")}
        else:
            r = morris_analyze.analyze(problem, X, Yf[:, k], num_levels=morris_levels, seed=seed)
            indices[o] = {key: np.asarray(r[key]) for key in ("mu_star", "mu_star_conf", "sigma")}
    return GlobalResult(method, base.name, sp_, outs, indices, len(Y), failed, Y)


@dataclass(frozen=True, eq=False)
class LocalResult:
    """Normalised local sensitivities ``S[i, k] = d ln|y_k| / d ln p_i`` at the profile's values (central
    differences, relative step ``h``); ``y0`` the outputs there."""

    profile: str
    names: tuple[str, ...]
    outputs: tuple[str, ...]
    S: np.ndarray
    y0: np.ndarray

    def rows(self) -> list[dict]:
        return [{"profile": self.profile, "output": o, "parameter": n, "normalised_sensitivity": float(self.S[i, k]),
                 "output_value": float(self.y0[k]), "unit": OUTPUTS[o][0]}
                for k, o in enumerate(self.outputs) for i, n in enumerate(self.names)]


def local_sensitivity(base: ParameterSet, outputs: Sequence[str], *, parameters: Sequence[str] | None = None,
                      h: float = 0.05, regimen: "Regimen | str" = "mirocals", duration: float = 640.0) -> LocalResult:
    """Normalised sensitivities of ``outputs`` to every parameter (default: all with a positive value)."""
    outs = tuple(check_outputs(outputs))
    model = default_model()
    p0 = base.vector(model)
    names = tuple(parameters) if parameters else tuple(n for n, v in zip(model.parameter_names, p0)
                                                       if v > 0 and n not in ("aldesleukin_specific_activity",))
    for n in names:
        if n not in model.parameter_names:
            raise Il2alsError(f"unknown parameter '{n}'{did_you_mean(n, model.parameter_names)}")
    idx = [model.parameter_index(n) for n in names]
    P = np.tile(p0, (2 * len(names) + 1, 1))
    for i, j in enumerate(idx):
        P[1 + 2 * i, j] *= math.exp(h)
        P[2 + 2 * i, j] *= math.exp(-h)
    Y = evaluate(P, regimen, duration, outs)
    y0 = Y[0]
    scale = np.where(np.abs(y0) > 1e-9, np.abs(y0), 1.0)
    S = (Y[1::2] - Y[2::2]) / (2 * h) / scale
    return LocalResult(base.name, names, outs, S, y0)
