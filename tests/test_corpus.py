"""The bad-input corpus (issues #7, #11), command by command: exit 2, one error line naming the problem, no
traceback, nothing written and nothing deleted. Cases live in tests/bad_input/corpus.toml; a case may lay out
user files first (``files``: path -> text, or ``@link:target`` for a symbolic link), which must be left exactly
as they were. Run in-process for speed (the CLI's own main)."""

import os
import tomllib
from pathlib import Path

import pytest

from il2als.cli import main

BAD = Path(__file__).parent / "bad_input"
CASES = tomllib.loads((BAD / "corpus.toml").read_text())["case"]


def _snapshot(root: Path) -> dict[str, str]:
    """Every path under ``root`` with its content (files), target (links) or '<dir>'."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        for name in dirnames + filenames:
            p = Path(dirpath) / name
            rel = str(p.relative_to(root))
            if p.is_symlink():
                out[rel] = "@link:" + os.readlink(p)
            elif p.is_dir():
                out[rel] = "<dir>"
            else:
                out[rel] = p.read_bytes().hex()
    return out


def test_corpus_is_large_and_covers_every_command():
    commands = {c["args"][0] for c in CASES if c["args"]}
    assert len(CASES) >= 150
    assert commands >= {"simulate", "scenario", "trial", "compare-regimens", "power", "population", "check", "fit",
                        "export-sbml", "export-petab", "sensitivity", "params", "design-phase3"}


@pytest.mark.parametrize("case", CASES, ids=[" ".join(c["args"][:2]) + f"-{i}" for i, c in enumerate(CASES)])
def test_corpus_case_exits_2_with_one_line_and_writes_nothing(case, tmp_path, capsys, monkeypatch):
    for rel, content in case.get("files", {}).items():
        p = tmp_path / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        if content.startswith("@link:"):
            p.symlink_to(tmp_path / content[len("@link:"):])
        else:
            p.write_text(content, encoding="utf-8")
    before = _snapshot(tmp_path)
    out = tmp_path / "out"
    args = [a.replace("{bad}", str(BAD)).replace("{out}", str(out)).replace("{tmp}", str(tmp_path)) for a in case["args"]]
    monkeypatch.chdir(tmp_path)  # relative outputs (model.txt) and '.' land here, where the test looks
    rc = main(args)
    err = capsys.readouterr().err
    lines = [ln for ln in err.splitlines() if ln.startswith("il2als: error:")]
    assert rc == 2, err
    assert len(lines) == 1 and case["message"] in lines[0], err
    assert "Traceback" not in err
    assert _snapshot(tmp_path) == before, "bad input must write nothing and delete nothing"
