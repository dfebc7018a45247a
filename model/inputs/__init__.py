"""What a simulation is given: units, parameter sets, regimens and their sentence / CSV forms, population
specifications, hypotheses (variants) and NONMEM-style datasets. Everything read from a file is checked here.
"""

from il2als._lazy import attach

#: public name -> the submodule that defines it
_EXPORTS = {
    **dict.fromkeys(("CMT_DEPOT", "compartments", "Observation", "Dataset", "read_dataset", "parse_dataset",
                    "replicate_dataset", "dataset_csv",), "datasets"),
    **dict.fromkeys(("SOURCE_PREFIXES", "PROFILES", "PlausibilityWarning", "ParameterValue", "ParameterSet",
                    "available", "load_parameters",), "parameters"),
    **dict.fromkeys(("PopulationSpec", "correlation_matrix", "load_population_spec",), "population_spec"),
    **dict.fromkeys(("MAX_DOSE_IU", "LOW_DOSE_WARN_IU", "MAX_DOSES", "check_dose_count", "DoseWarning", "Dose",
                    "Regimen", "none", "bolus", "course", "cycles", "on_days", "custom", "WEEKLY_DAYS", "SENTENCE_FORMS",
                    "parse_regimen", "NAMED", "named", "read_regimen_csv", "as_regimen", "regimen",), "regimens"),
    **dict.fromkeys(("read_text", "csv_rows",), "textfiles"),
    **dict.fromkeys(("ureg", "Q_", "ALDESLEUKIN_SPECIFIC_ACTIVITY", "ACTIVITY", "MASS", "ACTIVITY_PER_AREA",
                    "MASS_PER_AREA", "TIME", "VOCABULARY", "SPELLINGS", "parse_unit", "quantity", "to_unit",
                    "dose_to_iu", "unit_label",), "units"),
    **dict.fromkeys(("Variant", "VARIANTS", "MAX_COUPLINGS", "load_variant", "trial_informed",), "variants"),
}

__all__, __getattr__, __dir__ = attach(__name__, _EXPORTS)
