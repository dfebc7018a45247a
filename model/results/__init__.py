"""Results and their read-outs: a patient's :class:`Trajectory`, and the one definition of slopes and strata.
"""

from il2als._lazy import attach

#: public name -> the submodule that defines it
_EXPORTS = {
    **dict.fromkeys(("PopulationResult",), "batch"),
    **dict.fromkeys(("DAYS_PER_MONTH", "STRATA", "PNFH_CUTOFFS", "stratum_of", "stratum_labels",
                    "slope_from_baseline", "least_squares_slope",), "metrics"),
    **dict.fromkeys(("Trajectory", "summarise",), "trajectory"),
}

__all__, __getattr__, __dir__ = attach(__name__, _EXPORTS)
