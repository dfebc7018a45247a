"""Fitting: a problem (targets, free parameters, bounds, priors) -> ``fit(problem, n_starts=...)`` -> FitResult.

Free parameters are estimated on a flat vector in estimation scale (log by default) within bounds taken from
their plausible ranges, with a weak log-normal prior centred on the starting value (sd: a quarter of the
log-range), which keeps weakly informed parameters near their literature values. The objective is
``0.5 * sum(residual**2)`` over targets and priors. scipy's ``least_squares`` (trust-region reflective)
solves from a Latin-hypercube multi-start; the Jacobian is a forward finite difference evaluated in one batch
(all perturbed parameter vectors simulated together by the batch engine). Intervals: from the covariance
``inv(J'J)`` at the optimum and from profile likelihoods (re-optimising the other parameters); a flat profile
means the parameter is not identifiable from these targets.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import least_squares
from scipy.stats import qmc

from il2als.compiler.codegen import default_model
from il2als.errors import Il2alsError, ParameterError, did_you_mean
from il2als.fitting.targets import Configuration, Evaluator, Target, check_table
from il2als.inputs.parameters import ParameterSet

__all__ = ["CHI2_95", "FreeParameter", "FreeVector", "free_parameters", "Problem", "make_problem", "Start",
           "FitResult", "fit", "profile"]

CHI2_95 = 3.841  # 95% quantile of chi-square with 1 degree of freedom


@dataclass(frozen=True)
class FreeParameter:
    """A parameter to estimate: bounds in canonical units, estimation scale, prior sd (in scale units)."""

    name: str
    lower: float
    upper: float
    nominal: float
    unit: str
    scale: str = "log"
    prior_sd: float | None = None

    def to_scale(self, v):
        return np.log(v) if self.scale == "log" else np.asarray(v, float)

    def from_scale(self, x):
        return np.exp(x) if self.scale == "log" else np.asarray(x, float)


class FreeVector:
    """The estimation vector of a problem with a ``free`` tuple and a ``prior_weight``: names, start, bounds
    and the prior residuals (shared by literature-target and time-series problems)."""

    free: tuple[FreeParameter, ...]
    prior_weight: float

    @property
    def names(self) -> list[str]:
        return [f.name for f in self.free]

    @property
    def x0(self) -> np.ndarray:
        return np.array([f.to_scale(f.nominal) for f in self.free])

    @property
    def bounds(self) -> tuple[np.ndarray, np.ndarray]:
        return (np.array([f.to_scale(f.lower) for f in self.free]), np.array([f.to_scale(f.upper) for f in self.free]))

    def prior_residuals(self, X: np.ndarray) -> np.ndarray:
        """(K, n_free): weak log-normal prior around the start, in units of the prior sd."""
        X = np.atleast_2d(X)
        return np.column_stack([
            (X[:, j] - self.x0[j]) / f.prior_sd * math.sqrt(self.prior_weight) if f.prior_sd else np.zeros(len(X))
            for j, f in enumerate(self.free)])


def free_parameters(names: list[str], base: ParameterSet) -> tuple[FreeParameter, ...]:
    """Free parameters on log scale, bounded by their plausible ranges in ``base``, prior sd a quarter of the
    log-range, starting at the base value."""
    model = default_model()
    if isinstance(names, str):
        raise ParameterError(f"free parameters must be a list of names, not the string '{names}'; e.g. [\"{names}\"]")
    if not names:
        raise ParameterError("no free parameters; name at least one in `free`, e.g. ka")
    dup = next((n for i, n in enumerate(names) if n in names[:i]), None)
    if dup is not None:
        raise ParameterError(f"free parameter '{dup}' is named twice; name each parameter once")
    fps = []
    for name in names:
        if name not in model.parameter_names:
            raise ParameterError(f"free parameter '{name}' is unknown{did_you_mean(name, model.parameter_names)}")
        v = base.get(name)
        lo, hi = v.plausible
        if not (lo > 0 and hi > lo):
            raise ParameterError(f"free parameter '{name}' needs a positive plausible range for log-scale estimation")
        nominal = min(max(v.value, lo * 1.0001), hi / 1.0001)
        fps.append(FreeParameter(name, lo, hi, nominal, v.unit, "log", math.log(hi / lo) / 4))
    return tuple(fps)


@dataclass(frozen=True, eq=False)
class Problem(FreeVector):
    """Targets, free parameters and the parameter sets they modify (``default``; ``slow``/``fast`` follow it
    except for the parameters their profile files set)."""

    targets: tuple[Target, ...]
    free: tuple[FreeParameter, ...]
    base: dict[str, ParameterSet]
    evaluator: Evaluator
    prior_weight: float = 1.0

    def configuration(self, X: np.ndarray) -> Configuration:
        """Parameter vectors for every subject for each row of ``X`` (K, n_free) in estimation scale."""
        model = default_model()
        X = np.atleast_2d(X)
        vecs = {s: np.tile(self.base[s].vector(model), (len(X), 1)) for s in ("default", "slow", "fast")}
        own = {s: {n for n in model.parameter_names if self.base[s].values[n] != self.base["default"].values[n]}
               for s in ("slow", "fast")}
        for j, f in enumerate(self.free):
            i = model.parameter_index(f.name)
            v = f.from_scale(X[:, j])
            vecs["default"][:, i] = v
            for s in ("slow", "fast"):
                if f.name not in own[s]:
                    vecs[s][:, i] = v
        return Configuration(vecs)

    def model_values(self, X: np.ndarray) -> np.ndarray:
        """(K, n_targets) model values."""
        return self.evaluator.evaluate(self.configuration(X))

    def residuals(self, X: np.ndarray) -> np.ndarray:
        """(K, n_targets + n_free): target residuals, then prior residuals; failed simulations give 1e3."""
        X = np.atleast_2d(X)
        vals = self.model_values(X)
        r = np.column_stack([t.residual(vals[:, j]) for j, t in enumerate(self.targets)])
        r = np.where(np.isfinite(r), r, 1e3)
        return np.hstack([r, self.prior_residuals(X)])


def make_problem(targets: tuple[Target, ...], free: list[str], base: dict[str, ParameterSet], *,
                 evaluator: Evaluator | None = None, prior_weight: float = 1.0) -> Problem:
    """A fitting problem from target and parameter names.

    Parameters
    ----------
    targets : tuple of Target
    free : list of str
        Parameters to estimate (log scale; bounds are the plausible ranges in the default set).
    base : dict of str to ParameterSet
        The ``default``, ``slow`` and ``fast`` sets (e.g. ``load_parameters("default").profiles()``).
    evaluator : Evaluator, optional
    prior_weight : float
        Weight of the log-normal priors at the base values.

    Returns
    -------
    Problem
    """
    return Problem(tuple(targets), free_parameters(free, base["default"]), base, evaluator or Evaluator(tuple(targets)), prior_weight)


@dataclass(frozen=True)
class Start:
    """One multi-start run: start and end points (estimation scale), cost, convergence, evaluations, seconds."""

    x0: np.ndarray
    x: np.ndarray
    cost: float
    converged: bool
    message: str
    nfev: int
    seconds: float


@dataclass(frozen=True, eq=False)
class FitResult:
    """Best estimate, all starts (for the waterfall), covariance intervals, profiles and verdicts."""

    problem: Problem
    starts: tuple[Start, ...]
    x: np.ndarray
    cost: float
    converged: bool
    jacobian: np.ndarray
    interrupted: bool = False
    profiles: dict = field(default_factory=dict)

    @property
    def estimates(self) -> dict[str, tuple[float, str]]:
        return {f.name: (float(f.from_scale(xi)), f.unit) for f, xi in zip(self.problem.free, self.x)}

    def covariance_ci(self) -> dict[str, tuple[float, float]]:
        """95% intervals from inv(J'J) at the optimum (in canonical units)."""
        J = self.jacobian
        try:
            cov = np.linalg.pinv(J.T @ J)
        except np.linalg.LinAlgError:
            cov = np.full((len(self.x), len(self.x)), np.inf)
        sd = np.sqrt(np.clip(np.diag(cov), 0, None))
        return {f.name: (float(f.from_scale(xi - 1.96 * s)), float(f.from_scale(xi + 1.96 * s)))
                for f, xi, s in zip(self.problem.free, self.x, sd)}

    def profile_ci(self) -> dict[str, tuple[float, float, str]]:
        """95% profile-likelihood intervals and an identifiability verdict per profiled parameter."""
        out = {}
        for name, (grid, costs) in self.profiles.items():
            f = self.problem.free[self.problem.names.index(name)]
            g = np.asarray(grid)
            d = 2 * (np.asarray(costs) - self.cost)
            ok = d <= CHI2_95
            i0 = int(np.argmin(np.abs(g - self.x[self.problem.names.index(name)])))
            # walk out from the optimum; interpolate where the profile crosses the threshold
            lo_x, hi_x = g[0], g[-1]
            for i in range(i0, 0, -1):
                if not ok[i - 1]:
                    lo_x = g[i] + (CHI2_95 - d[i]) * (g[i - 1] - g[i]) / (d[i - 1] - d[i]) if d[i - 1] != d[i] else g[i]
                    break
            for i in range(i0, len(g) - 1):
                if not ok[i + 1]:
                    hi_x = g[i] + (CHI2_95 - d[i]) * (g[i + 1] - g[i]) / (d[i + 1] - d[i]) if d[i + 1] != d[i] else g[i]
                    break
            lo, hi = float(f.from_scale(lo_x)), float(f.from_scale(hi_x))
            left, right = bool(ok[0]), bool(ok[-1])
            verdict = ("not identifiable (flat profile)" if left and right else
                       "practically non-identifiable (one-sided)" if left or right else "identifiable")
            out[name] = (lo, hi, verdict)
        return out

    def table(self) -> list[dict]:
        if hasattr(self.problem, "table"):  # data problems tabulate their observations
            return self.problem.table(self.x)
        vals = self.problem.model_values(self.x[None, :])[0]
        return check_table(self.problem.targets, vals)


def _fd_jacobian(problem: Problem, x: np.ndarray, f0: np.ndarray, h: float = 0.02) -> np.ndarray:
    X = np.tile(x, (len(x), 1)) + h * np.eye(len(x))
    lo, hi = problem.bounds
    over = X[np.arange(len(x)), np.arange(len(x))] > hi
    X[over, np.arange(len(x))[over]] -= 2 * h
    F = problem.residuals(X)
    steps = np.where(over, -h, h)
    return ((F - f0[None, :]) / steps[:, None]).T


def _solve(problem: Problem, x0: np.ndarray, max_nfev: int) -> tuple[np.ndarray, float, bool, str, int, np.ndarray]:
    cache: dict = {}

    def fun(x):
        key = x.tobytes()
        if key not in cache:
            cache.clear()
            cache[key] = problem.residuals(x[None, :])[0]
        return cache[key]

    def jac(x):
        return _fd_jacobian(problem, x, fun(x))

    lo, hi = problem.bounds
    x0 = np.clip(x0, lo + 1e-9, hi - 1e-9)
    r = least_squares(fun, x0, jac=jac, bounds=(lo, hi), method="trf", max_nfev=max_nfev, x_scale="jac",
                      ftol=1e-6, xtol=1e-6, gtol=1e-6)
    return r.x, float(r.cost), bool(r.status > 0), r.message, int(r.nfev), r.jac


def fit(problem: Problem, n_starts: int = 4, seed: int = 0, max_nfev: int = 30,
        progress: Callable[[int, int, float], None] | None = None) -> FitResult:
    """Multi-start least squares; the first start is the nominal point, the others a Latin hypercube.

    Ctrl-C stops after the current start and returns the finished ones (``interrupted=True``). A result whose
    best start did not converge is returned with ``converged=False``: report it as such, never as an estimate.

    Parameters
    ----------
    problem : Problem
    n_starts : int
    seed : int
        Of the Latin hypercube.
    max_nfev : int
        Evaluations per start.
    progress : callable, optional
        ``progress(start, n_starts, cost)``.

    Returns
    -------
    FitResult
        Estimates, covariance-based and (after :func:`profile`) profile intervals, every start.
    """
    if n_starts < 1:
        raise Il2alsError(f"n_starts = {n_starts} must be >= 1")
    lo, hi = problem.bounds
    starts_x = [problem.x0]
    if n_starts > 1:
        # LHS in the central half of the bounds: the extremes of plausible ranges are poor starting points
        u = qmc.LatinHypercube(d=len(lo), seed=seed).random(n_starts - 1)
        starts_x += list(lo + (hi - lo) * (0.25 + 0.5 * u))
    starts, interrupted = [], False
    best = None
    for k, x0 in enumerate(starts_x):
        t0 = time.perf_counter()
        try:
            x, cost, ok, msg, nfev, J = _solve(problem, np.asarray(x0, float), max_nfev)
        except KeyboardInterrupt:
            interrupted = True
            break
        starts.append(Start(np.asarray(x0), x, cost, ok, msg, nfev, time.perf_counter() - t0))
        if best is None or cost < best[1]:
            best = (x, cost, ok, J)
        if progress is not None:
            progress(k + 1, len(starts_x), cost)
    if best is None:
        raise Il2alsError("the fit was interrupted before any start finished; nothing to report")
    x, cost, ok, J = best
    return FitResult(problem, tuple(starts), x, cost, ok, J, interrupted)


def profile(result: FitResult, names: list[str] | None = None, n_points: int = 7, max_nfev: int = 10,
            progress: Callable[[str], None] | None = None) -> FitResult:
    """Profile likelihoods: for each parameter, a grid across its bounds, re-optimising the others.

    Parameters
    ----------
    result : FitResult
    names : list of str, optional
        Parameters to profile (default: all free).
    n_points : int
    max_nfev : int
        Evaluations per re-optimisation.

    Returns
    -------
    FitResult
        ``result`` with ``profiles`` and profile-likelihood 95% intervals (Δχ² = 3.84).
    """
    from dataclasses import replace

    problem = result.problem
    names = names or problem.names
    profiles = dict(result.profiles)
    lo, hi = problem.bounds
    for name in names:
        j = problem.names.index(name)
        grid = np.linspace(lo[j], hi[j], n_points)
        grid = np.sort(np.append(grid, result.x[j]))
        costs = []
        for g in grid:
            free = [f for i, f in enumerate(problem.free) if i != j]
            if not free:
                costs.append(0.5 * float(np.sum(problem.residuals(np.array([[g]]))[0] ** 2)))
                continue
            sub = _SubProblem(problem, j, g)
            x0 = np.delete(result.x, j)
            x, cost, *_ = _solve(sub, x0, max_nfev)
            costs.append(cost)
        profiles[name] = (grid, costs)
        if progress is not None:
            progress(name)
    return replace(result, profiles=profiles)


class _SubProblem:
    """The problem with parameter ``j`` fixed at ``value`` (for profiles)."""

    def __init__(self, problem: Problem, j: int, value: float):
        self.p, self.j, self.value = problem, j, value

    @property
    def bounds(self):
        lo, hi = self.p.bounds
        return np.delete(lo, self.j), np.delete(hi, self.j)

    def residuals(self, X):
        X = np.atleast_2d(X)
        full = np.insert(X, self.j, self.value, axis=1)
        return self.p.residuals(full)
