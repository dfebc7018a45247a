"""Pooled fits of a NONMEM-style dataset: the objective, its error models and the problem built from a file."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from il2als.compiler.codegen import default_model
from il2als.errors import Il2alsError
from il2als.fitting.optimize import FreeParameter, FreeVector, free_parameters
from il2als.inputs.datasets import Dataset
from il2als.inputs.parameters import ParameterSet
from il2als.inputs.units import unit_label
from il2als.solve.observations import predict_observations

__all__ = ["ERROR_MODELS", "PASS_LIMIT", "DataProblem", "check_error_model", "make_data_problem"]


ERROR_MODELS = ("additive", "proportional", "lognormal")


#: An observation is fitted when its residual is within this many error-model standard deviations.
PASS_LIMIT = 2.0


@dataclass(frozen=True, eq=False)
class DataProblem(FreeVector):
    """Fit shared free parameters to a dataset: the same interface as :class:`il2als.fitting.optimize.Problem`."""

    data: Dataset
    free: tuple[FreeParameter, ...]
    base: ParameterSet
    error_model: str = "proportional"
    sd: float = 0.1
    prior_weight: float = 1.0
    targets: tuple = ()

    def predictions(self, X: np.ndarray) -> np.ndarray:
        """(K, n_observations) model values at the observations."""
        model = default_model()
        X = np.atleast_2d(X)
        ids = self.data.ids
        P = np.tile(self.data.parameter_matrix(self.base, model), (len(X), 1))
        for j, f in enumerate(self.free):
            P[:, model.parameter_index(f.name)] = np.repeat(f.from_scale(X[:, j]), len(ids))
        return predict_observations(self.data, P, len(X), model)

    def residuals(self, X: np.ndarray) -> np.ndarray:
        X = np.atleast_2d(X)
        pred = self.predictions(X)
        obs = np.array([o.value for o in self.data.observations])
        if self.error_model == "additive":
            r = (pred - obs) / self.sd
        elif self.error_model == "proportional":
            r = (pred - obs) / (self.sd * np.abs(obs))
        else:
            r = (np.log(np.clip(pred, 1e-300, None)) - np.log(obs)) / self.sd
        r = np.where(np.isfinite(r), r, 1e3)
        return np.hstack([r, self.prior_residuals(X)])

    def table(self, x: np.ndarray) -> list[dict]:
        pred = self.predictions(x[None, :])[0]
        r = self.residuals(x[None, :])[0][: len(pred)]
        units = {o.name: unit_label(o.output_unit or o.unit) for o in default_model().observables}
        return [{"id": f"ID {o.id} day {o.time:g} {o.observable}", "subject": o.id, "statistic": "observation",
                 "output": o.observable, "model": float(p), "target": f"{o.value:.4g}", "unit": units[o.observable],
                 "residual": float(ri), "pass": bool(abs(ri) <= PASS_LIMIT), "pass_limit": PASS_LIMIT,
                 "residual_unit": "error sd", "source": self.data.source, "quality": ""}
                for o, p, ri in zip(self.data.observations, pred, r)]


def check_error_model(data: Dataset, error_model: str) -> None:
    """The error model is one il2als knows, and relative or log errors get positive observations only."""
    if error_model not in ERROR_MODELS:
        raise Il2alsError(f"error model '{error_model}' must be one of {', '.join(ERROR_MODELS)}")
    if error_model in ("lognormal", "proportional"):
        bad = next((o for o in data.observations if not o.value > 0), None)
        if bad is not None:
            raise Il2alsError(f"{data.source}: ID {bad.id} at day {bad.time:g} has {bad.observable} = {bad.value:g}; the "
                              f"{error_model} error model needs positive observations: use the `error_model` additive, or "
                              "drop the row (MDV 1)")


def make_data_problem(data: Dataset, free: list[str], base: ParameterSet, *, error_model: str = "proportional",
                      sd: float = 0.1, prior_weight: float = 1e-3) -> DataProblem:
    """A pooled fit of ``free`` (log scale, bounds from the plausible ranges) to ``data``."""
    check_error_model(data, error_model)
    if not (sd > 0 and math.isfinite(sd)):
        raise Il2alsError(f"error sd {sd} must be positive")
    return DataProblem(data, free_parameters(free, base), base, error_model, sd, prior_weight)
