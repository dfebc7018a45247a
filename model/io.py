"""Writing run folders: atomically, with a manifest of what produced them.

:func:`atomic_dir` yields a temporary sibling folder; only when the block finishes is it moved into place,
replacing any previous output. An error or an interrupt leaves the previous complete output (or none).
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import hashlib
import json
import os
import platform
import re
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path

from .errors import Il2alsError


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _remove_stale(parent: Path, name: str) -> None:
    """Remove temporaries left by killed runs (``.name.partial-PID`` / ``.name.old-PID`` of dead processes)."""
    for p in parent.glob(f".{name}.*-*"):
        kind, _, pid = p.name[len(name) + 2:].rpartition("-")
        if kind in ("partial", "old") and pid.isdigit() and not _alive(int(pid)):
            shutil.rmtree(p, ignore_errors=True) if p.is_dir() else p.unlink(missing_ok=True)


def _prepare(final: Path) -> tuple[Path, Path]:
    """(parent folder, temporary path) for writing ``final``: the parent made, killed runs' leftovers removed."""
    parent = final.parent if str(final.parent) else Path(".")
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise Il2alsError(f"cannot create the output folder '{parent}' ({exc.strerror}); choose another --out") from None
    _remove_stale(parent, final.name)
    return parent, parent / f".{final.name}.partial-{os.getpid()}"


@contextlib.contextmanager
def atomic_dir(path: str | Path) -> Iterator[Path]:
    """Write a folder atomically: ``with atomic_dir("out") as tmp: ...`` then ``tmp`` becomes ``out``."""
    final = Path(path)
    if final.exists() and not final.is_dir():
        raise Il2alsError(f"output '{final}' exists and is not a folder; choose another --out")
    parent, tmp = _prepare(final)
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir()
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    old = parent / f".{final.name}.old-{os.getpid()}"
    if final.exists():
        os.replace(final, old)
    os.replace(tmp, final)
    if old.exists():
        shutil.rmtree(old, ignore_errors=True)


@contextlib.contextmanager
def atomic_file(path: str | Path) -> Iterator[Path]:
    """Write one file atomically: ``with atomic_file("m.xml") as tmp: tmp.write_text(...)``."""
    final = Path(path)
    if final.is_dir():
        raise Il2alsError(f"output '{final}' is a folder; give a file name, e.g. --out model.xml")
    _, tmp = _prepare(final)
    try:
        yield tmp
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    os.replace(tmp, final)


def file_sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def environment() -> dict[str, str]:
    """Versions of the package, Python and the numerical libraries."""
    from importlib.metadata import PackageNotFoundError, version

    out = {"python": sys.version.split()[0], "platform": platform.platform()}
    for pkg in ("il2als", "numpy", "scipy", "sympy", "pint", "matplotlib"):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            out[pkg] = "not installed"
    return out


_UNIT_HEADER = re.compile(r"^(?P<name>.*?)\s*\[(?P<unit>[^\]]+)\]\s*(?P<rest>.*)$")


def csv_to_parquet(path: Path) -> Path | None:
    """Write ``path`` (a CSV with ``name [unit]`` headers) as Parquet beside it, with plain column names and each
    column's unit in the field metadata (``unit``) and in the schema metadata (``il2als.units``, JSON).
    Returns the new path, or None when pyarrow is not installed."""
    try:
        import pyarrow as pa
        import pyarrow.csv as pcsv
        import pyarrow.parquet as pq
    except ImportError:
        return None
    table = pcsv.read_csv(path, convert_options=pcsv.ConvertOptions(null_values=["", "nan", "NaN", "."],
                                                                    strings_can_be_null=True))
    fields, units = [], {}
    for f in table.schema:
        m = _UNIT_HEADER.match(f.name)
        name, unit = (m["name"] + (f"_{m['rest'].strip()}" if m["rest"].strip() else ""), m["unit"]) if m else (f.name, "")
        units[name] = unit
        fields.append(pa.field(name, f.type, metadata={"unit": unit} if unit else None))
    if len(set(units)) != len(fields):
        fields = [pa.field(f.name, f.type, metadata=g.metadata) for f, g in zip(table.schema, fields)]
    table = pa.Table.from_arrays(table.columns, schema=pa.schema(fields, metadata={
        "il2als.units": json.dumps(units), "il2als.source": path.name}))
    out = path.with_suffix(".parquet")
    pq.write_table(table, out)
    return out


def write_manifest(folder: Path, **content: object) -> Path:
    """Write ``manifest.json``: what produced the run (command, versions, time) plus ``content``.

    Every CSV table in ``folder`` is also written as Parquet (units in its metadata) when pyarrow is installed."""
    parquet = [p.name for p in (csv_to_parquet(c) for c in sorted(Path(folder).glob("*.csv"))) if p is not None]
    if parquet and isinstance(content.get("outputs"), list):
        content["outputs"] = [*content["outputs"], *parquet]
    manifest = {
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "command": " ".join(["il2als", *sys.argv[1:]]) if sys.argv else "",
        "environment": environment(),
        **content,
    }
    p = folder / "manifest.json"
    p.write_text(json.dumps(manifest, indent=2, default=str) + "\n", encoding="utf-8")
    return p
