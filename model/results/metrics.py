"""The one definition of the read-outs studies share: months, ALSFRS-R slopes and CSF-pNfH strata.

Every study (scenario, trial, biology, calibration targets, sensitivity, cohort description) takes its slopes and
strata from here, so that "ALSFRS-R slope" or "the low stratum" means one thing across the package.

References
----------
Bensimon G, et al. Low-dose interleukin-2 in amyotrophic lateral sclerosis (MIROCALS): a randomised,
double-blind, placebo-controlled, phase 2b trial. Lancet 2025 (strata by baseline CSF pNfH at 750 and 3700 pg/mL).
"""

from __future__ import annotations

import numpy as np

__all__ = ["DAYS_PER_MONTH", "STRATA", "PNFH_CUTOFFS", "stratum_of", "stratum_labels", "slope_from_baseline",
           "least_squares_slope"]

#: days in a month (365.25 / 12), the month of ALSFRS-R slopes in points/month
DAYS_PER_MONTH = 30.4375

#: the CSF-pNfH strata, in order
STRATA = ("very_low", "low", "high")

#: the MIROCALS stratum boundaries of baseline CSF pNfH [pg/mL] (Bensimon et al. 2025)
PNFH_CUTOFFS = (750.0, 3700.0)


def stratum_of(pnfh: np.ndarray, cutoffs: tuple[float, float] = PNFH_CUTOFFS) -> np.ndarray:
    """Stratum index of each baseline CSF pNfH [pg/mL]: 0 = very_low (< lower cut-off), 1 = low (between, both
    ends included), 2 = high (> upper cut-off); same shape as ``pnfh``."""
    return np.where(pnfh < cutoffs[0], 0, np.where(pnfh > cutoffs[1], 2, 1))


def stratum_labels(cutoffs: tuple[float, float] = PNFH_CUTOFFS) -> dict[str, str]:
    """Each stratum's name with its CSF-pNfH range, e.g. ``{"low": "low (750-3700 pg/mL)", ...}``."""
    lo, hi = (f"{c:g}" for c in cutoffs)
    return {"very_low": f"very low (< {lo} pg/mL)", "low": f"low ({lo}-{hi} pg/mL)", "high": f"high (> {hi} pg/mL)"}


def slope_from_baseline(values: np.ndarray, t: np.ndarray, end: int | np.ndarray = -1) -> np.ndarray:
    """Change from the first column to column ``end`` per month: ``(values[:, end] - values[:, 0]) / months``.

    Parameters
    ----------
    values : (N, T) array, e.g. ALSFRS-R [points]
    t : (T,) array of days
    end : one column for everyone, or ``(N,)`` columns (e.g. each patient's last visit alive)

    Returns
    -------
    (N,) array in ``values``' unit per month.
    """
    values = np.asarray(values, float)
    t = np.asarray(t, float)
    end = np.asarray(end)
    rows = np.arange(len(values))
    return (values[rows, end] - values[:, 0]) / ((t[end] - t[0]) / DAYS_PER_MONTH)


def least_squares_slope(values: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Ordinary least-squares slope per month of each row of ``values`` (N, T) against days ``t`` (T,), -> (N,)."""
    months = np.asarray(t, float) / DAYS_PER_MONTH
    A = np.column_stack([np.ones_like(months), months])
    return np.linalg.lstsq(A, np.asarray(values, float).T, rcond=None)[0][1]
