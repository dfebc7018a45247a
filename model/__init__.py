"""il2als: a mechanistic model of low-dose IL-2 in ALS.

IL-2 dosing -> Tregs -> neuroinflammation -> motor-neuron loss, observed as neurofilament, ALSFRS-R and survival.

The packages follow the pipeline: :mod:`il2als.mechanism` (symbols) -> :mod:`il2als.compiler` (generated code,
batch engine) -> :mod:`il2als.inputs` (units, parameters, regimens, populations, datasets) -> :mod:`il2als.solve.events`
-> :mod:`il2als.results` -> :mod:`il2als.studies` / :mod:`il2als.fitting` -> :mod:`il2als.export` /
:mod:`il2als.plot` -> :mod:`il2als.cli`. The verbs a modeller uses are importable from here.

The names load on first use (PEP 562), so ``import il2als`` and ``il2als --version`` do not pay for sympy, scipy
or the compiled engine; ``from il2als import simulate`` loads what ``simulate`` needs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from il2als._lazy import attach

__version__ = "0.1.0"

#: public name -> the module (relative to il2als) that defines it
_EXPORTS = {
    **dict.fromkeys(("CompiledModel", "compile_mechanism", "default_model"), "compiler.codegen"),
    **dict.fromkeys(("Dose", "Regimen", "bolus", "course", "custom", "cycles", "named", "none", "parse_regimen",
                     "read_regimen_csv", "as_regimen", "regimen"), "inputs.regimens"),
    **dict.fromkeys(("Il2alsError", "ModelError", "ParameterError", "RegimenError", "SolverError", "UnitError"),
                    "errors"),
    **dict.fromkeys(("ParameterSet", "PlausibilityWarning", "available", "load_parameters"), "inputs.parameters"),
    **dict.fromkeys(("PopulationSpec", "load_population_spec"), "inputs.population_spec"),
    **dict.fromkeys(("Dataset", "read_dataset"), "inputs.datasets"),
    **dict.fromkeys(("Q_", "ureg"), "inputs.units"),
    **dict.fromkeys(("DurationWarning", "SolverOptions", "baseline_state", "simulate"), "solve.single"),
    **dict.fromkeys(("BatchOptions", "simulate_population"), "solve.batch"),
    **dict.fromkeys(("PopulationResult",), "results.batch"),
    **dict.fromkeys(("Trajectory", "summarise"), "results.trajectory"),
    **dict.fromkeys(("Cohort", "sample_population"), "studies.cohort"),
    **dict.fromkeys(("ScenarioResult", "run_scenario", "compare_regimens"), "studies.scenario"),
    **dict.fromkeys(("TrialDesign", "TrialResult", "design", "run_trial", "power_curve"), "studies.trial"),
    **dict.fromkeys(("FitResult", "fit", "make_problem", "profile"), "fitting.optimize"),
    **dict.fromkeys(("PopulationFit", "fit_population", "make_population_problem", "visual_predictive_check"),
                    "fitting.population_fit"),
    **dict.fromkeys(("load_targets", "check_parameter_set"), "fitting.targets"),
    **dict.fromkeys(("to_sbml",), "export.sbml"),
    **dict.fromkeys(("write_petab",), "export.petab"),
}

_all, __getattr__, __dir__ = attach(__name__, _EXPORTS)
__all__ = sorted([*_all, "__version__"])
del _all

if TYPE_CHECKING:  # for type checkers and IDEs: the same names, eagerly
    from il2als.compiler.codegen import CompiledModel, compile_mechanism, default_model  # noqa: F401
    from il2als.errors import (Il2alsError, ModelError, ParameterError, RegimenError, SolverError,  # noqa: F401
                               UnitError)
    from il2als.export.petab import write_petab  # noqa: F401
    from il2als.export.sbml import to_sbml  # noqa: F401
    from il2als.fitting.optimize import FitResult, fit, make_problem, profile  # noqa: F401
    from il2als.fitting.population_fit import (PopulationFit, fit_population, make_population_problem,  # noqa: F401
                                               visual_predictive_check)
    from il2als.fitting.targets import check_parameter_set, load_targets  # noqa: F401
    from il2als.inputs.datasets import Dataset, read_dataset  # noqa: F401
    from il2als.inputs.parameters import ParameterSet, PlausibilityWarning, available, load_parameters  # noqa: F401
    from il2als.inputs.population_spec import PopulationSpec, load_population_spec  # noqa: F401
    from il2als.inputs.regimens import (Dose, Regimen, as_regimen, bolus, course, custom, cycles, named,  # noqa: F401
                                        none, parse_regimen, read_regimen_csv, regimen)
    from il2als.inputs.units import Q_, ureg  # noqa: F401
    from il2als.results.batch import PopulationResult  # noqa: F401
    from il2als.results.trajectory import Trajectory, summarise  # noqa: F401
    from il2als.solve.batch import BatchOptions, simulate_population  # noqa: F401
    from il2als.solve.single import DurationWarning, SolverOptions, baseline_state, simulate  # noqa: F401
    from il2als.studies.cohort import Cohort, sample_population  # noqa: F401
    from il2als.studies.scenario import ScenarioResult, compare_regimens, run_scenario  # noqa: F401
    from il2als.studies.trial import TrialDesign, TrialResult, design, power_curve, run_trial  # noqa: F401
