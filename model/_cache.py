"""Where il2als keeps what it can rebuild (the compiled engine, the generated model source, pint's parsed unit
definitions)."""

from __future__ import annotations

import os
from pathlib import Path


def cache_root() -> Path:
    """``$IL2ALS_CACHE_DIR``, or ``~/.cache/il2als``."""
    return Path(os.environ.get("IL2ALS_CACHE_DIR") or Path.home() / ".cache" / "il2als")
