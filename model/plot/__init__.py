"""Figures, one module per kind of result. Each function takes the result (and ``ax=None`` where it draws one
panel) and returns the Axes or Figure; matplotlib is imported inside the functions, and no backend is chosen here.
"""

from il2als._lazy import attach

#: public name -> the submodule that defines it
_EXPORTS = {
    **dict.fromkeys(("plot_waterfall", "plot_profiles", "plot_check", "plot_population_fit", "plot_observed_vs_predicted", "plot_residuals",
                    "plot_individual_fit", "plot_ebe_distribution", "plot_vpc",), "fitting"),
    **dict.fromkeys(("plot_sobol", "plot_tornado",), "sensitivity"),
    **dict.fromkeys(("plot_scenario", "plot_regimen_comparison", "plot_population", "plot_stratum_biology",), "studies"),
    **dict.fromkeys(("plot_trajectories", "plot_trajectory",), "trajectories"),
    **dict.fromkeys(("plot_km", "plot_forest", "plot_power", "plot_schedule_search", "plot_sample_size",), "trial"),
}

__all__, __getattr__, __dir__ = attach(__name__, _EXPORTS)
