"""Fitting: literature targets and their evaluator, the optimiser with profiles, pooled fits of a dataset and
population (FOCE-I) fits with their diagnostics.
"""

from il2als._lazy import attach

#: public name -> the submodule that defines it
_EXPORTS = {
    **dict.fromkeys(("ERROR_MODELS", "PASS_LIMIT", "DataProblem", "check_error_model", "make_data_problem",),
                    "dataset_fit"),
    **dict.fromkeys(("CHI2_95", "FreeParameter", "FreeVector", "free_parameters", "Problem", "make_problem",
                    "Start", "FitResult", "fit", "profile",), "optimize"),
    **dict.fromkeys(("PopulationProblem", "PopulationFit", "VisualPredictiveCheck", "make_population_problem",
                    "fit_population", "foce_objective", "visual_predictive_check", "OMEGA_BOUNDS", "SIGMA_BOUNDS",
                    "FIT_OPTIONS",), "population_fit"),
    **dict.fromkeys(("SUBJECTS", "STATISTICS", "Target", "load_targets", "Configuration", "configuration",
                    "Evaluator", "check_table", "check_parameter_set",), "targets"),
}

__all__, __getattr__, __dir__ = attach(__name__, _EXPORTS)
