"""Where il2als keeps what it can rebuild (the compiled engine, the generated model source, pint's parsed unit
definitions)."""

from __future__ import annotations

import os
from pathlib import Path


def write_atomically(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary sibling and an atomic rename, so that another process reading
    the cache sees the old file or the new one, never half of one."""
    tmp = path.with_suffix(f".tmp-{os.getpid()}")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def cache_root() -> Path:
    """``$IL2ALS_CACHE_DIR``, or ``~/.cache/il2als``."""
    return Path(os.environ.get("IL2ALS_CACHE_DIR") or Path.home() / ".cache" / "il2als")
