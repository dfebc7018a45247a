"""The result of a batch simulation: N patients' outputs on one time grid, with their units."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from il2als.errors import Il2alsError, did_you_mean
from il2als.inputs.units import unit_label

__all__ = ["PopulationResult"]


@dataclass(frozen=True, eq=False)
class PopulationResult:
    """Outputs of N patients on a common grid: ``values[name]`` has shape ``(N, n_times)`` in ``units[name]``.

    ``status[i]`` is 0 for a patient that ran, otherwise the engine's failure code; ``failures`` lists the
    failed patients with the reason (only with ``on_failure="skip"``).
    """

    time: np.ndarray
    values: dict[str, np.ndarray]
    units: dict[str, str]
    status: np.ndarray
    failures: tuple[str, ...] = ()
    steps: np.ndarray = field(default_factory=lambda: np.empty(0))

    def __getitem__(self, name: str) -> np.ndarray:
        try:
            return self.values[name]
        except KeyError:
            raise Il2alsError(f"output '{name}' was not asked for{did_you_mean(name, self.values)}") from None

    @property
    def n(self) -> int:
        return len(self.status)

    def header(self, name: str) -> str:
        return f"{name} [{unit_label(self.units[name])}]"

    def to_dataframe(self, outputs: "Sequence[str] | None" = None, ids: "Sequence[object] | None" = None):
        """A long pandas DataFrame: one row per patient and output time, columns ``ID``, ``time [day]``,
        ``status`` (0 = ran; otherwise the engine's failure code) and ``name [unit]`` for each output.

        ``ids`` names the patients (default 1..N, as in a NONMEM dataset); ``outputs`` picks and orders the
        columns (default: every output asked for)."""
        try:
            import pandas as pd
        except ImportError:  # pragma: no cover - depends on the environment
            raise Il2alsError("to_dataframe needs pandas; install it with: pip install pandas") from None
        names = list(outputs) if outputs is not None else list(self.values)
        for name in names:
            self[name]  # unknown names: one line with a suggestion
        ids = list(ids) if ids is not None else list(range(1, self.n + 1))
        if len(ids) != self.n:
            raise Il2alsError(f"{len(ids)} ids for {self.n} patients; give one id per patient")
        T = len(self.time)
        cols = {"ID": np.repeat(np.asarray(ids, dtype=object if not all(isinstance(i, (int, np.integer)) for i in ids)
                                          else np.int64), T),
                "time [day]": np.tile(self.time, self.n),
                "status": np.repeat(self.status, T)}
        for name in names:
            cols[self.header(name)] = self.values[name].reshape(-1)
        return pd.DataFrame(cols)

