"""Studies built on the solvers: virtual cohorts, scenarios, virtual trials and their survival statistics, stratum
biology, the phase 3 design, sensitivity analysis and where independent tasks run.
"""

from il2als._lazy import attach

#: public name -> the submodule that defines it
_EXPORTS = {
    **dict.fromkeys(("StratumBiology", "stratum_biology", "ExpectedEffect", "expected_hazard_ratio",
                    "BIOLOGY_UNITS",), "biology"),
    **dict.fromkeys(("Cohort", "MAX_PATIENTS", "sample_population", "describe_cohort",), "cohort"),
    **dict.fromkeys(("describe", "end_pool", "run_tasks", "start_pool", "submit",), "parallel"),
    **dict.fromkeys(("ScheduleFamily", "FAMILY", "schedule", "ScheduleSearch", "optimise_schedule", "events_needed",
                    "sample_size", "PHASE3_DESIGNS", "design_population", "design_rows",), "phase3"),
    **dict.fromkeys(("METRICS", "ScenarioResult", "run_scenario", "slow_vs_fast", "by_stratum", "compare_regimens",
                    "SCENARIOS",), "scenario"),
    **dict.fromkeys(("DEFAULT_PARAMETERS", "check_outputs", "Space", "space", "evaluate", "GlobalResult",
                    "global_sensitivity", "LocalResult", "local_sensitivity",), "sensitivity"),
    **dict.fromkeys(("kaplan_meier", "alsfrs_mixed_model", "cafs_test", "interaction_p", "POWER_TEST", "power_share",), "survival"),
    **dict.fromkeys(("SUMMARY_UNITS", "summary_unit", "TRIAL_OPTIONS", "TrialDesign", "DESIGNS", "design", "death_times", "alsfrs_slopes",
                    "Replicate", "analyse", "run_replicate", "TrialResult", "run_trial", "power_curve", "warm_up",), "trial"),
}

__all__, __getattr__, __dir__ = attach(__name__, _EXPORTS)
