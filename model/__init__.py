"""il2als: a mechanistic model of low-dose IL-2 in ALS.

IL-2 dosing -> Tregs -> neuroinflammation -> motor-neuron loss, observed as neurofilament, ALSFRS-R and survival.
Public names are re-exported here; plotting, I/O and the command line live at the edges (``il2als.plots``,
``il2als.io``, ``il2als.cli``).

The names load on first use (PEP 562), so ``import il2als`` and ``il2als --version`` do not pay for sympy, scipy
or the compiled engine; ``from il2als import simulate`` works as before.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

__version__ = "0.1.0"

#: public name -> the module that defines it
_EXPORTS = {
    **dict.fromkeys(("CompiledModel", "compile_mechanism", "default_model"), "compile"),
    **dict.fromkeys(("Dose", "Regimen", "bolus", "course", "custom", "cycles", "named", "none", "parse_regimen",
                     "read_regimen_csv", "regimen"), "dosing"),
    **dict.fromkeys(("Il2alsError", "ModelError", "ParameterError", "RegimenError", "SolverError", "UnitError"),
                    "errors"),
    **dict.fromkeys(("ParameterSet", "PlausibilityWarning", "available", "load_parameters"), "parameters"),
    **dict.fromkeys(("DurationWarning", "SolverOptions", "baseline_state", "simulate"), "solve"),
    **dict.fromkeys(("Trajectory", "summarise"), "trajectory"),
    **dict.fromkeys(("Q_", "ureg"), "units"),
}

__all__ = sorted([*_EXPORTS, "__version__"])


def __getattr__(name: str):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'il2als' has no attribute '{name}'")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value  # later lookups are plain attribute reads
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))


if TYPE_CHECKING:  # for type checkers and IDEs: the same names, eagerly
    from .compile import CompiledModel, compile_mechanism, default_model  # noqa: F401
    from .dosing import (Dose, Regimen, bolus, course, custom, cycles, named, none, parse_regimen,  # noqa: F401
                         read_regimen_csv, regimen)
    from .errors import Il2alsError, ModelError, ParameterError, RegimenError, SolverError, UnitError  # noqa: F401
    from .parameters import ParameterSet, PlausibilityWarning, available, load_parameters  # noqa: F401
    from .solve import DurationWarning, SolverOptions, baseline_state, simulate  # noqa: F401
    from .trajectory import Trajectory, summarise  # noqa: F401
    from .units import Q_, ureg  # noqa: F401
