"""Lazy public names for il2als's packages (PEP 562): a name's module is imported on first use.

This keeps ``import il2als`` and the quick commands (``--version``, ``regimens``, ``params``) free of sympy, scipy's
solvers and the compiled engine, while each package still lists its public names in ``__all__``.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable


def attach(package: str, exports: dict[str, str]) -> tuple[list[str], Callable, Callable]:
    """``__all__``, ``__getattr__`` and ``__dir__`` for ``package`` whose public ``name`` lives in the submodule
    ``exports[name]`` (relative to the package)."""
    namespace = importlib.import_module(package).__dict__

    def __getattr__(name: str):
        module = exports.get(name)
        if module is None:
            raise AttributeError(f"module '{package}' has no attribute '{name}'")
        value = getattr(importlib.import_module(f"{package}.{module}"), name)
        namespace[name] = value  # later lookups are plain attribute reads
        return value

    def __dir__() -> list[str]:
        return sorted(set(namespace) | set(exports))

    return sorted(exports), __getattr__, __dir__
