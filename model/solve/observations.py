"""Predictions at a dataset's own observation times, on the batch engine."""

from __future__ import annotations

import numpy as np

from il2als.compiler.codegen import CompiledModel, default_model
from il2als.errors import Il2alsError
from il2als.inputs.datasets import Dataset
from il2als.solve.batch import simulate_population

__all__ = ["predict_observations", "observation_values"]


def predict_observations(data: Dataset, P: np.ndarray, k: int = 1, model: CompiledModel | None = None,
                         options=None) -> np.ndarray:  # noqa: ANN001
    """Model values *at* each observation's time, shape ``(k, n_observations)``, in the observables' output units.

    ``P`` is ``(k x n_ids, n_parameters)``: ``k`` parameter sets for the dataset's IDs, in ``data.ids`` order.
    The batch engine writes its dense output at exactly the observation times (no grid interpolation), so a
    level two hours after a dose is the level two hours after the dose whatever any output step would be."""
    from il2als.solve.batch import BatchOptions

    model = model or default_model()
    ids = data.ids
    obs_t = np.array([o.time for o in data.observations])
    times = np.unique(np.concatenate([[0.0], obs_t]))
    if times[-1] <= 0:
        times = np.array([0.0, 1e-6])
    outputs = sorted({o.observable for o in data.observations})
    res = simulate_population(P, [data.regimens[i] for i in ids] * k, times=times, outputs=outputs, model=model,
                              options=options or BatchOptions())
    return observation_values(data, res, k)


def observation_values(data: Dataset, res, k: int = 1) -> np.ndarray:  # noqa: ANN001
    """``(k, n_observations)`` values of a :class:`~il2als.results.batch.PopulationResult` over ``k x`` the dataset's
    IDs whose output times include every observation time (checked: never an interpolation)."""
    ids = data.ids
    obs_t = np.array([o.time for o in data.observations])
    col = np.searchsorted(res.time, obs_t)
    if np.any(col >= len(res.time)) or not np.allclose(res.time[np.minimum(col, len(res.time) - 1)], obs_t, rtol=0,
                                                       atol=1e-12):
        raise Il2alsError("the simulation's output times do not include every observation time")
    row = np.array([ids.index(o.id) for o in data.observations])
    out = np.empty((k, len(data.observations)))
    for m, o in enumerate(data.observations):
        out[:, m] = res[o.observable][row[m] + len(ids) * np.arange(k), col[m]]
    return out
