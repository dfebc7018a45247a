"""Population (random-effects) fits of a dataset: FOCE-I, estimated by the Lindstrom-Bates alternation.

Model. Patient ``i`` has individual parameters ``log p_i = log theta + eta_i`` for the random parameters (log-normal
between-patient variability, ``eta_i ~ N(0, diag(omega**2))``) and ``log p = log theta`` for the other free
parameters; everything else comes from the base parameter set and the dataset's parameter columns. Each observable
``o`` has its own residual sd ``sigma_o`` under the error model: ``additive`` (``y = f + sigma e``), ``proportional``
(``y = f (1 + sigma e)``) or ``lognormal`` (``log y = log f + sigma e``).

Objective. ``-2 log L`` by the first-order conditional estimation with interaction (FOCE-I: the Laplace
approximation of each patient's integral over ``eta``, with the Gauss-Newton Hessian ``J'V^-1 J + Omega^-1`` and the
residual variance ``V`` at the individual prediction), the objective NONMEM reports for METHOD=1 INTERACTION.

Algorithm (Lindstrom & Bates 1990, as R's nlme): alternate (1) the individual step, every patient's empirical Bayes
estimate ``eta_i`` (Newton on the patient's conditional objective, all patients in one batch-engine call per
iteration, finite-difference sensitivities) and (2) the population step, the exact marginal likelihood of the
model linearised around those estimates (a linear mixed model: cheap, numpy only) maximised over ``theta``,
``omega`` and ``sigma`` within a trust region; a step is kept only if the FOCE-I objective of the nonlinear model
falls. At convergence the linearised and FOCE-I objectives coincide. Why FOCE-I and not SAEM: with 10-100 patients
and a few random effects it is deterministic (reproducible to the digit, no chain tuning), its objective is the one
modellers compare across models (AIC/BIC, likelihood-ratio tests), and each iteration needs only ``(1 + p) x N``
simulations, which the batch engine does in milliseconds.

Uncertainty. The covariance of the estimates is ``2 H^-1``, ``H`` the Hessian of the linearised ``-2 log L`` at the
optimum (finite differences; nlme's approximation); RSE% = 100 x the standard error of the log estimate (delta
method: the estimates are on log scale). A Hessian that is not positive definite gives NaN RSEs and says so.

References
----------
Lindstrom ML, Bates DM (1990) Nonlinear mixed effects models for repeated measures data. Biometrics 46:673-687.
Wang Y (2007) Derivation of various NONMEM estimation methods. J Pharmacokinet Pharmacodyn 34:575-593.
Hooker AC, Staatz CE, Karlsson MO (2007) Conditional weighted residuals (CWRES). Pharm Res 24:2187-2197.
Savic RM, Karlsson MO (2009) Importance of shrinkage in empirical Bayes estimates for diagnostics. AAPS J 11:558-569.
Bergstrand M et al. (2011) Prediction-corrected visual predictive checks. AAPS J 13:143-151.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import minimize

from il2als.compiler.codegen import CompiledModel, default_model
from il2als.errors import Il2alsError, did_you_mean
from il2als.fitting.dataset_fit import check_error_model
from il2als.fitting.optimize import FreeParameter, free_parameters
from il2als.inputs.datasets import Dataset
from il2als.inputs.parameters import ParameterSet
from il2als.inputs.units import unit_label
from il2als.solve.batch import BatchOptions, simulate_population

__all__ = ["PopulationProblem", "PopulationFit", "VisualPredictiveCheck", "make_population_problem",
           "fit_population", "foce_objective", "visual_predictive_check", "OMEGA_BOUNDS", "SIGMA_BOUNDS", "FIT_OPTIONS"]

#: Bounds of the between-patient SDs (log scale) and of the residual sds (relative or log; additive sds: times
#: the observable's median |DV|).
OMEGA_BOUNDS = (0.01, 3.0)
SIGMA_BOUNDS = (1e-4, 10.0)
#: Tighter than the default batch tolerance: finite-difference sensitivities need smooth predictions.
FIT_OPTIONS = BatchOptions(rtol=1e-8, atol=1e-7, on_failure="skip")
_SIM_OPTIONS = BatchOptions(on_failure="skip")  # simulation only (VPC, curves): the default tolerance
_H_FD = 1e-3  # finite-difference step of the sensitivities, in log-parameter units
_TRUST = 1.0  # largest change of a log estimate in one population step


@dataclass(frozen=True, eq=False)
class PopulationProblem:
    """A dataset, the free parameters (fixed effects, log scale), which of them vary between patients, the base
    parameter set and the error model. Build it with :func:`make_population_problem`."""

    data: Dataset
    free: tuple[FreeParameter, ...]
    random: tuple[str, ...]
    base: ParameterSet
    error_model: str = "proportional"
    sigma0: float = 0.1
    options: BatchOptions = FIT_OPTIONS
    model: CompiledModel = field(default_factory=default_model)

    def __post_init__(self) -> None:
        d, m = self.data, self.model
        ids = d.ids
        per_id = {pid: [] for pid in ids}
        for j, o in enumerate(d.observations):
            per_id[o.id].append(j)
        empty = [pid for pid in ids if not per_id[pid]]
        if empty:
            raise Il2alsError(f"{d.source}: ID {empty[0]} has no observations; a population fit needs at least one per ID "
                              "(drop the ID or add its observations)")
        n_max = max(len(v) for v in per_id.values())
        obs_names = sorted({o.observable for o in d.observations})
        times = np.unique(np.concatenate([[0.0], [o.time for o in d.observations]]))
        if times[-1] <= 0:
            times = np.array([0.0, 1e-6])
        N = len(ids)
        Y = np.zeros((N, n_max))
        mask = np.zeros((N, n_max), bool)
        kind = np.zeros((N, n_max), int)
        col = np.zeros((N, n_max), int)
        flat = np.full((N, n_max), -1)
        for i, pid in enumerate(ids):
            for s, j in enumerate(per_id[pid]):
                o = d.observations[j]
                Y[i, s], mask[i, s], kind[i, s] = o.value, True, obs_names.index(o.observable)
                col[i, s] = int(np.searchsorted(times, o.time))
                flat[i, s] = j
        object.__setattr__(self, "_layout", dict(Y=Y, mask=mask, kind=kind, col=col, flat=flat, times=times,
                                                 obs_names=obs_names, P=d.parameter_matrix(self.base, m),
                                                 idx=np.array([m.parameter_index(f.name) for f in self.free]),
                                                 regs=[d.regimens[pid] for pid in ids]))

    # -- layout ----------------------------------------------------------------------------------------------
    @property
    def names(self) -> list[str]:
        return [f.name for f in self.free]

    @property
    def random_index(self) -> np.ndarray:
        return np.array([self.names.index(r) for r in self.random], int)

    @property
    def observables(self) -> list[str]:
        return list(self._layout["obs_names"])

    @property
    def sigma_names(self) -> list[str]:
        obs = self.observables
        return ["sigma"] if len(obs) == 1 else [f"sigma_{o}" for o in obs]

    @property
    def n_obs(self) -> int:
        return int(self._layout["mask"].sum())

    @property
    def n_estimated(self) -> int:
        return len(self.free) + len(self.random) + len(self.observables)

    def pack(self, log_theta: np.ndarray, omega: np.ndarray, sigma: np.ndarray) -> np.ndarray:
        return np.concatenate([log_theta, np.log(omega), np.log(sigma)])

    def unpack(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        p, k = len(self.free), len(self.random)
        return x[:p], np.exp(x[p:p + k]), np.exp(x[p + k:])

    def bounds(self) -> list[tuple[float, float]]:
        b = [(math.log(f.lower), math.log(f.upper)) for f in self.free]
        b += [tuple(math.log(v) for v in OMEGA_BOUNDS)] * len(self.random)
        b += [(math.log(SIGMA_BOUNDS[0] * c), math.log(SIGMA_BOUNDS[1] * c)) for c in self.sigma_scale]
        return b

    @property
    def sigma_scale(self) -> np.ndarray:
        """What the sigma bounds scale with, per observable: 1 (relative or log errors), or the median |DV| for
        additive errors (in the DV unit)."""
        if self.error_model != "additive":
            return np.ones(len(self.observables))
        L = self._layout
        return np.array([float(np.median(np.abs(L["Y"][L["mask"] & (L["kind"] == q)]))) or 1.0
                         for q in range(len(self.observables))])

    def x0(self, omega0: float = 0.3) -> np.ndarray:
        """The start: base values, omega ``omega0``, sigma ``sigma0`` (additive errors with several observables:
        10% of each observable's median |DV|, since one number cannot be the start in several units)."""
        if self.error_model == "additive" and len(self.observables) > 1:
            sig = 0.1 * self.sigma_scale
        else:
            lo, hi = SIGMA_BOUNDS[0] * self.sigma_scale, SIGMA_BOUNDS[1] * self.sigma_scale
            sig = np.clip(np.full(len(self.observables), self.sigma0), lo * 1.0001, hi / 1.0001)
        return self.pack(np.array([math.log(f.nominal) for f in self.free]), np.full(len(self.random), omega0), sig)

    # -- the model at the observations -------------------------------------------------------------------------
    def predict(self, rows: np.ndarray, phi: np.ndarray, options: BatchOptions | None = None,
                times: np.ndarray | None = None) -> np.ndarray:
        """Predictions ``(M, n_max)`` (output units; NaN where a patient failed or a slot is padding) for the IDs
        ``rows`` (indices into ``data.ids``) with free log-parameters ``phi`` ``(M, n_free)``."""
        L = self._layout
        res = simulate_population(self.parameter_matrix(rows, phi), [L["regs"][r] for r in rows],
                                  times=L["times"] if times is None else times, outputs=L["obs_names"],
                                  options=options or self.options, model=self.model)
        if times is not None:
            return res
        F = np.full((len(rows), L["Y"].shape[1]), np.nan)
        r_ix = np.arange(len(rows))[:, None]
        for q, name in enumerate(L["obs_names"]):
            vals = res[name][r_ix, L["col"][rows]]
            F = np.where((L["kind"][rows] == q) & L["mask"][rows], vals, F)
        return F

    def parameter_matrix(self, rows: np.ndarray, phi: np.ndarray) -> np.ndarray:
        """``(M, n_parameters)`` canonical values: each ID's base row with the free parameters at ``exp(phi)``
        (held inside the parameters' physical bounds)."""
        L, m = self._layout, self.model
        P = L["P"][rows].copy()
        lo = np.array([m.card.parameter(f.name).lower for f in self.free])
        hi = np.array([m.card.parameter(f.name).upper for f in self.free])
        P[:, L["idx"]] = np.clip(np.exp(phi), lo, hi)
        return P

    def sensitivities(self, rows: np.ndarray, phi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Predictions ``(M, n_max)`` and forward-difference sensitivities ``dF/dlog p`` ``(M, n_max, n_free)``
        in one batch-engine call of ``M (1 + n_free)`` patients."""
        p = len(self.free)
        M = len(rows)
        Phi = np.repeat(phi[None], p + 1, axis=0)
        for j in range(p):
            Phi[j + 1, :, j] += _H_FD
        F = self.predict(np.tile(rows, p + 1), Phi.reshape(-1, p)).reshape(p + 1, M, -1)
        return F[0], np.moveaxis((F[1:] - F[0]) / _H_FD, 0, -1)

    # -- error model -------------------------------------------------------------------------------------------
    def _transform(self, v: np.ndarray) -> np.ndarray:
        if self.error_model == "lognormal":
            with np.errstate(all="ignore"):
                return np.log(np.where(v > 0, v, np.nan))
        return v

    def _transform_sensitivity(self, J: np.ndarray, F: np.ndarray) -> np.ndarray:
        """Sensitivities ``J = dF/dlog p`` (``(..., n_max, q)``) on the error model's scale: ``J / F`` for log errors."""
        return J / F[..., None] if self.error_model == "lognormal" else J

    def _sd(self, F: np.ndarray, sigma: np.ndarray, rows: np.ndarray) -> np.ndarray:
        s = sigma[self._layout["kind"][rows]]
        if self.error_model == "proportional":
            return s * np.maximum(np.abs(F), 1e-12)
        return s * np.ones_like(F)


def make_population_problem(data: Dataset, free: list[str], random: list[str], base: ParameterSet, *,
                            error_model: str = "proportional", sigma0: float = 0.1) -> PopulationProblem:
    """A population (random-effects) problem, its names and error model checked.

    Parameters
    ----------
    data : Dataset
    free : list of str
        Typical values to estimate.
    random : list of str
        The free parameters that vary between patients (log-normal random effects).
    base : ParameterSet
        The fixed parameters and the starting typical values.
    error_model : str
        ``additive``, ``proportional`` or ``lognormal``.
    sigma0 : float
        Start of the residual sd (relative, or of the log).

    Returns
    -------
    PopulationProblem
    """
    check_error_model(data, error_model)
    if not (math.isfinite(sigma0) and sigma0 > 0) or (error_model != "additive" and
                                                       not SIGMA_BOUNDS[0] <= sigma0 <= SIGMA_BOUNDS[1]):
        raise Il2alsError(f"residual sd {sigma0:g} must lie in [{SIGMA_BOUNDS[0]:g}, {SIGMA_BOUNDS[1]:g}] (the start of "
                          f"sigma, relative or of the log, e.g. {error_model}:0.1)")
    fps = free_parameters(list(free), base)
    if not random:
        raise Il2alsError("no random effects; name the parameters that vary between patients in `random`, e.g. ec50_treg "
                          "(without random effects the fit is pooled)")
    for r in random:
        if r not in free:
            raise Il2alsError(f"random effect '{r}' is not a free parameter{did_you_mean(r, free)}; a random effect needs "
                              "its typical value estimated: add it to `free`")
    if len(set(random)) != len(random):
        raise Il2alsError("a random effect is named twice; name each once")
    check_error_model(data, error_model)
    order = [f.name for f in fps]
    return PopulationProblem(data, fps, tuple(sorted(random, key=order.index)), base, error_model, float(sigma0))


# -- one patient's conditional objective, vectorised over patients ---------------------------------------------
def _conditional(problem: PopulationProblem, rows: np.ndarray, eta: np.ndarray, F: np.ndarray, J: np.ndarray,
                 omega: np.ndarray, sigma: np.ndarray):
    """Per patient: the conditional objective ``sum(e^2/s^2 + log(2 pi s^2)) + eta' Omega^-1 eta``, its gradient and
    expected Hessian in eta, the FOCE-I Hessian ``J'V^-1 J + Omega^-1`` (without the 2), residuals and sds."""
    L = problem._layout
    mask = L["mask"][rows]
    ri = problem.random_index
    hy = problem._transform(L["Y"][rows])
    hF = problem._transform(F)
    Jr = J[:, :, ri]
    dh = problem._transform_sensitivity(Jr, F)
    s = problem._sd(F, sigma, rows)
    e = np.where(mask, hy - hF, 0.0)
    dh = np.where(mask[..., None], dh, 0.0)
    ds = (sigma[L["kind"][rows]] * np.sign(F))[..., None] * Jr if problem.error_model == "proportional" else np.zeros_like(dh)
    ds = np.where(mask[..., None], ds, 0.0)
    s = np.where(mask, s, 1.0)
    w = 1.0 / omega ** 2
    data = np.sum(np.where(mask, e ** 2 / s ** 2 + np.log(2 * np.pi * s ** 2), 0.0), axis=1)
    ofv = data + np.sum(eta ** 2 * w, axis=1)
    g = (np.einsum("ij,ijk->ik", -2 * e / s ** 2, dh) + np.einsum("ij,ijk->ik", -2 * e ** 2 / s ** 3 + 2 / s, ds)
         + 2 * eta * w)
    info = np.einsum("ijk,ijl->ikl", dh / s[..., None], dh / s[..., None])
    H = 2 * (info + 2 * np.einsum("ijk,ijl->ikl", ds / s[..., None], ds / s[..., None])) + 2 * np.diag(w)[None]
    foce = info + np.diag(w)[None]
    return ofv, g, H, foce


@dataclass
class _State:
    """The individual step's result at population estimates ``x``."""

    x: np.ndarray
    eta: np.ndarray  # (N, k)
    F: np.ndarray  # (N, n_max)
    J: np.ndarray  # (N, n_max, p)
    ofv: float  # FOCE-I -2 log L
    ofv_i: np.ndarray
    inner_iterations: int


def _individual_step(problem: PopulationProblem, x: np.ndarray, eta0: np.ndarray, max_iter: int = 40,
                     tol: float = 1e-6) -> _State:
    """Every patient's EBE at population estimates ``x`` (damped Newton, warm-started at ``eta0``)."""
    log_theta, omega, sigma = problem.unpack(x)
    N, ri = len(problem.data.ids), problem.random_index
    rows = np.arange(N)

    def evaluate(r, eta):
        phi = np.repeat(log_theta[None], len(r), axis=0)
        phi[:, ri] += eta
        F, J = problem.sensitivities(r, phi)
        ofv, g, H, _ = _conditional(problem, r, eta, F, J, omega, sigma)
        bad = ~np.isfinite(ofv) | ~np.all(np.isfinite(g), axis=1)
        ofv = np.where(bad, np.inf, ofv)
        return F, J, ofv, g, H

    eta = eta0.copy()
    F, J, ofv, g, H = evaluate(rows, eta)
    if not np.all(np.isfinite(ofv)):
        i = int(np.nonzero(~np.isfinite(ofv))[0][0])
        raise Il2alsError(f"ID {problem.data.ids[i]}: the model cannot be evaluated at the start (the engine failed or a "
                          "prediction is not positive under a log error model); start nearer the data or change the `params`")
    damp = np.ones(N)
    active = np.ones(N, bool)
    it = 0
    for it in range(1, max_iter + 1):
        a = np.nonzero(active)[0]
        if not len(a):
            break
        try:
            step = -np.linalg.solve(H[a], g[a][..., None])[..., 0]
        except np.linalg.LinAlgError:
            step = -g[a] * 0.1
        step = np.clip(step, -2.0, 2.0) * damp[a, None]
        trial = eta[a] + step
        Ft, Jt, ot, gt, Ht = evaluate(a, trial)
        acc = ot <= ofv[a] + 1e-9
        gain = np.where(acc, ofv[a] - ot, 0.0)
        ia = a[acc]
        eta[ia], F[ia], J[ia], ofv[ia], g[ia], H[ia] = trial[acc], Ft[acc], Jt[acc], ot[acc], gt[acc], Ht[acc]
        damp[ia] = np.minimum(1.0, damp[ia] * 2)
        damp[a[~acc]] *= 0.25
        small = np.max(np.abs(step), axis=1) < 1e-5
        active[a[(acc & ((gain < tol) | small)) | (damp[a] < 1e-4)]] = False
    _, _, _, foce = _conditional(problem, rows, eta, F, J, omega, sigma)
    _, logdet = np.linalg.slogdet(foce * (omega ** 2)[None, :, None])
    ofv_i = ofv + logdet
    return _State(x, eta, F, J, float(np.sum(ofv_i)), ofv_i, it)


# -- the population step: the linearised model's exact marginal likelihood -------------------------------------
def _linearised(problem: PopulationProblem, st: _State):
    """``-2 log L`` of the model linearised at ``st`` as a function of ``x`` (numpy only)."""
    L = problem._layout
    rows = np.arange(len(problem.data.ids))
    mask = L["mask"]
    ri = problem.random_index
    hy = problem._transform(L["Y"])
    hF = problem._transform(st.F)
    D = problem._transform_sensitivity(st.J, st.F)
    D = np.where(mask[..., None], D, 0.0)
    A = D[:, :, ri]
    base_mean = np.where(mask, hF - np.einsum("ijk,ik->ij", A, st.eta), 0.0)
    hy = np.where(mask, hy, 0.0)
    theta0 = st.x[:len(problem.free)]
    n_log2pi = problem.n_obs * math.log(2 * math.pi)

    def f(x: np.ndarray) -> float:
        log_theta, omega, sigma = problem.unpack(x)
        r = hy - base_mean - np.einsum("ijk,k->ij", D, log_theta - theta0)
        s = np.where(mask, problem._sd(st.F, sigma, rows), 1.0)
        vi = np.where(mask, 1.0 / s ** 2, 0.0)
        w = 1.0 / omega ** 2
        M = np.einsum("ijk,ij,ijl->ikl", A, vi, A) + np.diag(w)[None]
        u = np.einsum("ijk,ij->ik", A, vi * r)
        _, logdet_m = np.linalg.slogdet(M)
        quad = np.sum(vi * r ** 2) - np.sum(u * np.linalg.solve(M, u[..., None])[..., 0])
        logdet = np.sum(np.where(mask, np.log(s ** 2), 0.0)) + len(rows) * np.sum(np.log(omega ** 2)) + np.sum(logdet_m)
        return float(quad + logdet + n_log2pi)

    return f


def _population_step(problem: PopulationProblem, st: _State) -> np.ndarray:
    f = _linearised(problem, st)
    b = problem.bounds()
    tb = [(max(lo, xi - _TRUST), min(hi, xi + _TRUST)) for (lo, hi), xi in zip(b, st.x)]
    res = minimize(f, np.clip(st.x, [lo for lo, _ in tb], [hi for _, hi in tb]), method="L-BFGS-B", bounds=tb,
                   options={"maxiter": 200})
    return res.x


def _hessian(f: Callable[[np.ndarray], float], x: np.ndarray, h: float = 1e-3) -> np.ndarray:
    n = len(x)
    H = np.empty((n, n))
    f0 = f(x)
    for i in range(n):
        for j in range(i, n):
            if i == j:
                e = np.zeros(n)
                e[i] = h
                H[i, i] = (f(x + e) - 2 * f0 + f(x - e)) / h ** 2
            else:
                ei, ej = np.zeros(n), np.zeros(n)
                ei[i], ej[j] = h, h
                H[i, j] = H[j, i] = (f(x + ei + ej) - f(x + ei - ej) - f(x - ei + ej) + f(x - ei - ej)) / (4 * h * h)
    return H


@dataclass(frozen=True, eq=False)
class PopulationFit:
    """The result of :func:`fit_population`.

    Attributes
    ----------
    problem : the :class:`PopulationProblem`.
    x : the estimates on the estimation scale (log typical values, log omegas, log sigmas).
    ofv : the FOCE-I objective ``-2 log L`` at ``x`` (with the ``n log 2 pi`` constant, as NONMEM omits it: see
        :attr:`ofv_nonmem`).
    eta : ``(n_ids, n_random)`` empirical Bayes estimates; ``F`` ``(n_ids, n_max)`` individual predictions.
    covariance : covariance of ``x`` (``2 H^-1``); NaN when the Hessian is not positive definite.
    """

    problem: PopulationProblem
    x: np.ndarray
    ofv: float
    eta: np.ndarray
    F: np.ndarray
    J: np.ndarray
    covariance: np.ndarray
    converged: bool
    message: str
    iterations: int
    starts: tuple[tuple[float, bool, int], ...]
    seconds: float

    @property
    def theta(self) -> dict[str, float]:
        """Typical values in canonical units."""
        return {f.name: float(math.exp(v)) for f, v in zip(self.problem.free, self.x[:len(self.problem.free)])}

    @property
    def omega(self) -> dict[str, float]:
        """SDs of the log-normal random effects."""
        _, om, _ = self.problem.unpack(self.x)
        return dict(zip(self.problem.random, om.tolist()))

    @property
    def sigma(self) -> dict[str, float]:
        _, _, sg = self.problem.unpack(self.x)
        return dict(zip(self.problem.sigma_names, sg.tolist()))

    @property
    def ofv_nonmem(self) -> float:
        """The objective without the constant ``n_obs log(2 pi)``: what NONMEM prints."""
        return self.ofv - self.problem.n_obs * math.log(2 * math.pi)

    @property
    def aic(self) -> float:
        return self.ofv + 2 * self.problem.n_estimated

    @property
    def bic(self) -> float:
        return self.ofv + self.problem.n_estimated * math.log(self.problem.n_obs)

    @property
    def names(self) -> list[str]:
        return self.problem.names + [f"omega_{r}" for r in self.problem.random] + self.problem.sigma_names

    @property
    def standard_errors(self) -> np.ndarray:
        """Standard errors on the estimation (log) scale; NaN if the covariance step failed."""
        return np.sqrt(np.clip(np.diag(self.covariance), 0, None)) if np.all(np.isfinite(self.covariance)) \
            else np.full(len(self.x), np.nan)

    @property
    def correlation(self) -> np.ndarray:
        se = self.standard_errors
        with np.errstate(all="ignore"):
            return self.covariance / np.outer(se, se)

    @property
    def shrinkage(self) -> dict[str, float]:
        """eta-shrinkage ``1 - sd(EBE)/omega`` per random effect (Savic & Karlsson 2009)."""
        return {r: float(1 - np.std(self.eta[:, j], ddof=1) / w) if len(self.eta) > 1 else math.nan
                for j, (r, w) in enumerate(self.omega.items())}

    def individual_parameters(self) -> np.ndarray:
        """``(n_ids, n_free)`` individual values (canonical units)."""
        phi = np.repeat(self.x[None, :len(self.problem.free)], len(self.eta), axis=0)
        phi[:, self.problem.random_index] += self.eta
        return np.exp(phi)

    def estimate_rows(self) -> list[dict]:
        """One row per estimated quantity: name, estimate, unit, rse_pct, 95% CI (log-normal), and the bound flag."""
        pr = self.problem
        se = self.standard_errors
        units = [f.unit for f in pr.free] + ["1 (sd of log)"] * len(pr.random)
        units += ["1 (sd of log)" if pr.error_model == "lognormal" else
                  ("1 (relative sd)" if pr.error_model == "proportional" else
                   f"{_obs_unit(pr, o)}") for o in pr.observables]
        kinds = ["typical value"] * len(pr.free) + ["between-patient sd"] * len(pr.random) + ["residual sd"] * len(pr.observables)
        bounds = pr.bounds()
        rows = []
        for name, xi, s, u, kind, (lo, hi) in zip(self.names, self.x, se, units, kinds, bounds):
            rows.append({"name": name, "estimate": float(math.exp(xi)), "unit": unit_label(u), "rse_pct": float(100 * s),
                         "ci95_low": float(math.exp(xi - 1.96 * s)), "ci95_high": float(math.exp(xi + 1.96 * s)),
                         "kind": kind, "at_bound": bool(min(xi - lo, hi - xi) < 1e-3)})
        return rows

    def diagnostics(self) -> dict[str, np.ndarray]:
        """Per observation (in ``data.observations`` order): PRED (eta = 0), IPRED (at the EBE), IWRES and CWRES
        (Hooker 2007: on the FOCE linearisation at the EBE), on the error model's scale for the residuals."""
        pr = self.problem
        L = pr._layout
        N = len(pr.data.ids)
        rows = np.arange(N)
        log_theta, omega, sigma = pr.unpack(self.x)
        pred = pr.predict(rows, np.repeat(log_theta[None], N, axis=0))
        mask = L["mask"]
        hy, hF = pr._transform(L["Y"]), pr._transform(self.F)
        s = pr._sd(self.F, sigma, rows)
        ri = pr.random_index
        A = pr._transform_sensitivity(self.J[:, :, ri], self.F)
        iwres = (hy - hF) / s
        cwres = np.full_like(hF, np.nan)
        for i in rows:
            m = mask[i]
            Ai = A[i][m]
            C = Ai @ np.diag(omega ** 2) @ Ai.T + np.diag(s[i][m] ** 2)
            r = hy[i][m] - (hF[i][m] - Ai @ self.eta[i])
            cwres[i, m] = np.linalg.solve(np.linalg.cholesky(C), r)
        n = len(pr.data.observations)
        out = {k: np.full(n, np.nan) for k in ("PRED", "IPRED", "IWRES", "CWRES")}
        flat = L["flat"]
        for k, v in (("PRED", pred), ("IPRED", self.F), ("IWRES", iwres), ("CWRES", cwres)):
            out[k][flat[mask]] = v[mask]
        return out


    def diagnostic_rows(self) -> list[dict]:
        """One row per observation: ID, time (day), observable, DV and its unit, PRED, IPRED, IWRES, CWRES."""
        d = self.diagnostics()
        return [{"ID": o.id, "time_day": o.time, "observable": o.observable, "DV": o.value,
                 "unit": _obs_unit(self.problem, o.observable), "PRED": float(d["PRED"][j]),
                 "IPRED": float(d["IPRED"][j]), "IWRES": float(d["IWRES"][j]), "CWRES": float(d["CWRES"][j])}
                for j, o in enumerate(self.problem.data.observations)]

    def curves(self, n_points: int = 241):
        """Dense individual (at the EBE) and population (eta = 0) predictions for plots: ``(time (T,) in days,
        {observable: (n_ids, T)} individual, {observable: (n_ids, T)} population)``."""
        pr = self.problem
        N = len(pr.data.ids)
        t_end = max(o.time for o in pr.data.observations)
        grid = np.linspace(0.0, max(t_end, 1e-3), n_points)
        phi_i = np.log(self.individual_parameters())
        phi_0 = np.repeat(self.x[None, :len(pr.free)], N, axis=0)
        res = pr.predict(np.tile(np.arange(N), 2), np.vstack([phi_i, phi_0]), options=_SIM_OPTIONS, times=grid)
        return (res.time, {o: res[o][:N] for o in pr.observables}, {o: res[o][N:] for o in pr.observables})


def _obs_unit(pr: PopulationProblem, name: str) -> str:
    o = next(o for o in pr.model.observables if o.name == name)
    return unit_label(o.output_unit or o.unit)


def _run(problem: PopulationProblem, x0: np.ndarray, max_outer: int, tol: float,
         progress: Callable[[str], None] | None) -> tuple[_State, bool, str, int]:
    N, k = len(problem.data.ids), len(problem.random)
    st = _individual_step(problem, x0, np.zeros((N, k)))
    ri = problem.random_index
    for it in range(1, max_outer + 1):
        x_new = _population_step(problem, st)
        f_lin = _linearised(problem, st)
        promised = f_lin(st.x) - f_lin(x_new)  # the decrease the linearised model expects
        for _ in range(8):
            eta0 = st.eta - (x_new[ri] - st.x[ri])[None]  # keep each patient's individual values as the start
            new = _individual_step(problem, x_new, eta0)
            if new.ofv <= st.ofv + 1e-6:
                break
            x_new = st.x + 0.5 * (x_new - st.x)
        else:  # at the optimum up to the sensitivities' noise when the promised decrease was already tiny
            ok = promised < 10 * tol
            return st, ok, (f"converged: no step lowers -2LL and the linearised model expects {promised:.2g} at most" if ok
                            else f"stopped: no step lowers -2LL although the linearised model expects {promised:.2g}"), it
        gain, move = st.ofv - new.ofv, float(np.max(np.abs(new.x - st.x)))
        st = new
        if progress is not None:
            progress(f"iteration {it}: -2LL {st.ofv:.4f}")
        if gain < tol and move < 1e-3:
            return st, True, f"converged: -2LL changed by {gain:.2g} and the estimates by {move:.2g} (log)", it
    return st, False, f"not converged in {max_outer} iterations", max_outer


def foce_objective(problem: PopulationProblem, x: np.ndarray) -> float:
    """The FOCE-I ``-2 log L`` (with the ``n log 2 pi`` constant) at estimates ``x`` (the estimation scale of
    :meth:`PopulationProblem.pack`), the EBEs re-estimated from zero."""
    x = np.asarray(x, float)
    if x.shape != (problem.n_estimated,):
        raise Il2alsError(f"x has shape {x.shape}; it needs ({problem.n_estimated},): log typical values, log omegas, "
                          "log sigmas")
    return _individual_step(problem, x, np.zeros((len(problem.data.ids), len(problem.random)))).ofv


def fit_population(problem: PopulationProblem, *, n_starts: int = 3, seed: int = 0, max_outer: int = 60,
                   tol: float = 1e-3, progress: Callable[[str], None] | None = None) -> PopulationFit:
    """Estimate typical values, between-patient SDs and residual sds by FOCE-I (see the module docstring).

    Parameters
    ----------
    problem : a :class:`PopulationProblem`.
    n_starts : starts; the first at the base set's values (omega 0.3, sigma ``problem.sigma0``), the others with
        typical values drawn log-uniformly within +-0.7 (log) of it, inside the bounds; the best objective wins.
    seed : seeds the starts.
    max_outer, tol : population steps at most, and the -2LL change that ends the alternation.
    progress : called with a line of text after each population step.

    Returns
    -------
    PopulationFit
    """
    if n_starts < 1:
        raise Il2alsError(f"n_starts = {n_starts} must be >= 1")
    t0 = time.perf_counter()
    rng = np.random.default_rng(seed)
    b = np.array(problem.bounds())
    best = None
    starts = []
    p = len(problem.free)
    for s in range(n_starts):
        x0 = problem.x0()
        if s:
            x0[:p] = np.clip(x0[:p] + rng.uniform(-0.7, 0.7, p), b[:p, 0] + 1e-6, b[:p, 1] - 1e-6)
        say = (lambda line, s=s: progress(f"start {s + 1}/{n_starts}, {line}")) if progress else None
        st, ok, msg, it = _run(problem, x0, max_outer, tol, say)
        starts.append((st.ofv, ok, it))
        if best is None or st.ofv < best[0].ofv:
            best = (st, ok, msg, it)
    st, ok, msg, it = best
    f = _linearised(problem, st)
    H = _hessian(f, st.x)
    try:
        np.linalg.cholesky(H)
        cov = 2 * np.linalg.inv(H)
    except np.linalg.LinAlgError:
        cov = np.full_like(H, np.nan)
        msg += "; covariance step failed (the Hessian is not positive definite: a parameter is not identifiable)"
    return PopulationFit(problem, st.x, st.ofv, st.eta, st.F, st.J, cov, ok, msg, it, tuple(starts),
                         time.perf_counter() - t0)


# -- visual predictive check -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class VisualPredictiveCheck:
    """Binned percentiles of the observations and of ``n_replicates`` simulated replicates of the dataset.

    ``rows`` has one dict per observable and time bin: the bin's mid time (day), number of observations, the observed
    5th/50th/95th percentiles and, for each, the 2.5/50/97.5 percentiles of the simulated one (its 95% simulation
    interval). ``prediction_corrected`` says whether values were normalised by the population prediction
    (Bergstrand 2011), which mixed regimens need."""

    rows: tuple[dict, ...]
    prediction_corrected: bool
    n_replicates: int
    observed: dict[str, tuple[np.ndarray, np.ndarray]]  # observable -> (time, value as plotted)
    #: simulated patients the engine could not solve (their values are left out of the percentiles, and said)
    failed: int = 0


def visual_predictive_check(fit: PopulationFit, *, n_replicates: int = 200, n_bins: int = 8, seed: int = 1,
                            prediction_corrected: bool | None = None) -> VisualPredictiveCheck:
    """Visual predictive check of a population fit.

    The dataset's design is simulated ``n_replicates`` times from the fitted model (random effects and residual
    error); binned 5/50/95 percentiles of the observations are set against the simulations' 95% intervals,
    prediction-corrected when the regimens differ.

    Parameters
    ----------
    fit : PopulationFit
    n_replicates : int
    n_bins : int
    seed : int
    prediction_corrected : bool, optional
        Default: automatic.

    Returns
    -------
    VisualPredictiveCheck
        ``rows`` per observable and bin; ``failed``, simulated patients the engine could not solve (left out).
    """
    if n_replicates < 20:
        raise Il2alsError(f"n_replicates = {n_replicates}: a VPC needs at least 20 replicates for its intervals")
    pr = fit.problem
    L = pr._layout
    N, ids = len(pr.data.ids), pr.data.ids
    if prediction_corrected is None:
        regs = [tuple((d.time, d.amount) for d in pr.data.regimens[i].doses) for i in ids]
        prediction_corrected = len(set(regs)) > 1
    rng = np.random.default_rng(seed)
    log_theta, omega, sigma = pr.unpack(fit.x)
    phi = np.repeat(log_theta[None], N * n_replicates, axis=0)
    phi[:, pr.random_index] += rng.normal(size=(N * n_replicates, len(pr.random))) * omega
    rows_all = np.tile(np.arange(N), n_replicates)
    F = pr.predict(rows_all, phi, options=_SIM_OPTIONS).reshape(n_replicates, N, -1)
    e = rng.normal(size=F.shape) * sigma[L["kind"]][None]
    if pr.error_model == "additive":
        Ysim = F + e
    elif pr.error_model == "proportional":
        Ysim = F * (1 + e)
    else:
        Ysim = F * np.exp(e)
    failed = int(np.sum(np.any(~np.isfinite(np.where(L["mask"][None], F, 0.0)), axis=2)))
    Y, mask = L["Y"], L["mask"]
    pred = pr.predict(np.arange(N), np.repeat(log_theta[None], N, axis=0))
    t_obs = L["times"][L["col"]]
    out, observed = [], {}
    for q, name in enumerate(pr.observables):
        m = mask & (L["kind"] == q)
        t = t_obs[m]
        uniq = np.unique(t)
        if len(uniq) <= max(2 * n_bins, 25):  # a design with nominal times: one bin per time
            edges = np.concatenate([[-np.inf], (uniq[1:] + uniq[:-1]) / 2, [np.inf]])
        else:
            edges = np.unique(np.quantile(t, np.linspace(0, 1, n_bins + 1)))
            edges[0], edges[-1] = -np.inf, np.inf
        b = np.clip(np.searchsorted(edges, t, side="right") - 1, 0, len(edges) - 2)
        yo, ys, pp = Y[m], Ysim[:, m], pred[m]
        if prediction_corrected:
            med = np.array([np.median(pp[b == k]) if np.any(b == k) else np.nan for k in range(len(edges) - 1)])[b]
            if pr.error_model == "additive":
                yo, ys = yo + (med - pp), ys + (med - pp)[None]
            else:
                yo, ys = yo * med / pp, ys * (med / pp)[None]
        observed[name] = (t, yo)
        for k in range(len(edges) - 1):
            sel = b == k
            if not np.any(sel):
                continue
            row = {"observable": name, "time_day": float(np.median(t[sel])), "n_obs": int(sel.sum()),
                   "unit": _obs_unit(pr, name)}
            for pct in (5, 50, 95):
                sim = np.nanpercentile(ys[:, sel], pct, axis=1)
                row[f"obs_p{pct}"] = float(np.percentile(yo[sel], pct))
                lo, mid, hi = np.nanpercentile(sim, [2.5, 50, 97.5])
                row.update({f"sim_p{pct}_lo": float(lo), f"sim_p{pct}_median": float(mid), f"sim_p{pct}_hi": float(hi)})
            out.append(row)
    return VisualPredictiveCheck(tuple(out), bool(prediction_corrected), n_replicates, observed, failed)
