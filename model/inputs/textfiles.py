"""Reading the user's text files (CSV tables, TOML) with one-line errors for every way they can be wrong.

Every reader in il2als goes through :func:`read_text` (missing file, a folder, no permission, not UTF-8) and CSV
readers through :func:`csv_rows` (semicolon-separated, ragged rows). A UTF-8 byte-order mark, as spreadsheet
programs write it, is accepted and removed.
"""

from __future__ import annotations

import csv
from pathlib import Path

from il2als.errors import Il2alsError

__all__ = ["read_text", "csv_rows"]


def read_text(path: str | Path, what: str, example: str, error: type[Il2alsError] = Il2alsError) -> str:
    """The text of ``path`` (UTF-8, BOM removed), or a one-line ``error`` naming ``what`` and the fix.

    Parameters
    ----------
    path : the file to read.
    what : what the file is, e.g. ``"data file"``; starts the error message.
    example : what to give instead, e.g. ``"a CSV with ID, TIME [unit], ..."``.
    error : the :class:`Il2alsError` subclass to raise.
    """
    p = Path(path)
    try:
        return p.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise error(f"{what} '{path}' not found; give {example}") from None
    except IsADirectoryError:
        raise error(f"{what} '{path}' is a folder; give {example}") from None
    except PermissionError:
        raise error(f"{what} '{path}' cannot be read (permission denied); check its permissions") from None
    except UnicodeDecodeError:
        raise error(f"{what} '{path}' is not UTF-8 text; save it as UTF-8 ({example})") from None
    except OSError as exc:
        raise error(f"{what} '{path}' cannot be read ({exc.strerror}); give {example}") from None


def csv_rows(text: str, source: str, error: type[Il2alsError] = Il2alsError) -> list[list[str]]:
    """Rows of a comma-separated table (blank lines and ``#`` comments skipped), header first.

    Every row must have as many fields as the header; a table separated by semicolons or tabs is refused with
    a message that says so. A leading byte-order mark (text not read by :func:`read_text`) is removed.
    """
    lines = [ln for ln in text.lstrip("\ufeff").splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
    rows = list(csv.reader(lines))
    if not rows:
        return rows
    head = rows[0]
    if len(head) == 1:
        for sep, name in ((";", "semicolons"), ("\t", "tabs")):
            if sep in head[0]:
                raise error(f"{source}: the table is separated by {name}; il2als reads comma-separated CSV "
                            "(save it with ',' as the separator)")
    for n, r in enumerate(rows[1:], start=2):
        if len(r) != len(head):
            raise error(f"{source}: row {n} has {len(r)} fields but the header has {len(head)}; "
                        "give every row one field per column (empty for none)")
    return rows
