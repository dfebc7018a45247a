"""Studies built on il2als: calibration, population matching, the trial-informed step, the example dataset.

Each is a module run with ``python -m il2als.experiments.NAME``; :func:`run_script` gives them the command
line's behaviour on bad input (one line, exit code 2, no traceback)."""

from __future__ import annotations

import sys
from collections.abc import Callable

__all__ = ["run_script"]


def run_script(main: Callable[[], int], label: str) -> None:
    """Run a study's ``main`` and exit with its code; an :class:`il2als.errors.Il2alsError` is one line on
    stderr, ``label: error: ...``, and exit code 2."""
    from il2als.errors import Il2alsError

    try:
        sys.exit(main())
    except Il2alsError as exc:
        print(f"{label}: error: {exc}", file=sys.stderr)
        sys.exit(2)
