"""il2als: a mechanistic model of low-dose IL-2 in ALS.

IL-2 dosing -> Tregs -> neuroinflammation -> motor-neuron loss, observed as neurofilament, ALSFRS-R and survival.
Public names are re-exported here; plotting, I/O and the command line live at the edges (``il2als.plots``,
``il2als.io``, ``il2als.cli``).
"""

__version__ = "0.1.0"

from .compile import CompiledModel, compile_mechanism, default_model
from .dosing import Dose, Regimen, bolus, course, custom, cycles, named, none, parse_regimen, read_regimen_csv, regimen
from .errors import Il2alsError, ModelError, ParameterError, RegimenError, SolverError, UnitError
from .parameters import ParameterSet, PlausibilityWarning, available, load_parameters
from .simulate import DurationWarning, SolverOptions, baseline_state, simulate
from .trajectory import Trajectory, summarise
from .units import Q_, ureg

__all__ = [
    "CompiledModel", "Dose", "DurationWarning", "Il2alsError", "ModelError", "ParameterError", "ParameterSet",
    "PlausibilityWarning", "Q_", "Regimen", "RegimenError", "SolverError", "SolverOptions", "Trajectory", "UnitError",
    "__version__", "available", "baseline_state", "bolus", "compile_mechanism", "course", "custom", "cycles",
    "default_model", "load_parameters", "named", "none", "parse_regimen", "read_regimen_csv", "regimen", "simulate",
    "summarise", "ureg",
]
