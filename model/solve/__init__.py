"""Solving: dose events, baselines, the single-patient reference path (scipy) and the compiled batch engine for one
or many patients, and predictions at a dataset's observation times.
"""

from il2als._lazy import attach

#: public name -> the submodule that defines it
_EXPORTS = {
    **dict.fromkeys(("BatchOptions", "parameter_matrix", "population_baselines",
                    "simulate_population", "SKIP_ADVICE", "diagnose",), "batch"),
    **dict.fromkeys(("DoseEvents", "dose_events", "plain_boluses",), "events"),
    **dict.fromkeys(("predict_observations", "observation_values",), "observations"),
    **dict.fromkeys(("METHODS", "DurationWarning", "SolverOptions", "baseline_state", "output_grid", "output_times", "time_grid", "integrate",
                    "NEGATIVE_TOLERANCE", "clip_negative", "check_grid", "suspect_states", "simulate",), "single"),
}

__all__, __getattr__, __dir__ = attach(__name__, _EXPORTS)
