"""Exception types raised by il2als.

Every error raised on bad input is an :class:`Il2alsError`; its message is one line naming the input, the
problem and the fix. The command line prints that line and exits with code 2.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class Il2alsError(Exception):
    """Base class of every il2als error: a one-line message naming the problem and the fix."""


class UnitError(Il2alsError):
    """A quantity has the wrong dimension, cannot be parsed, or a model term is dimensionally inconsistent."""


class ParameterError(Il2alsError):
    """A parameter file or parameter value is unknown, missing, malformed or non-physical."""


class RegimenError(Il2alsError):
    """A dosing regimen or dose is malformed (negative, NaN, unsorted, unknown name ...)."""


class ModelError(Il2alsError):
    """The symbolic mechanism is inconsistent (undeclared symbol, state without a rate ...)."""


class SolverError(Il2alsError):
    """The ODE solver failed; the message names the time and the states that went wrong."""


def did_you_mean(name: str, choices: Iterable[str]) -> str:
    """Return ' (did you mean 'x'?)' for the closest valid name, or a list of valid names."""
    choices = sorted(choices)
    close = difflib.get_close_matches(name, choices, n=1, cutoff=0.6)
    if close:
        return f" (did you mean '{close[0]}'?)"
    if len(choices) <= 12:
        return f" (valid: {', '.join(choices)})"
    return ""
