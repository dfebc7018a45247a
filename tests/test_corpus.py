"""The bad-input corpus (issue #7), command by command: exit 2, one error line naming the problem, no traceback,
nothing written. Cases live in tests/bad_input/corpus.toml; run in-process for speed (the CLI's own main)."""

import tomllib
from pathlib import Path

import pytest

from il2als.cli import main

BAD = Path(__file__).parent / "bad_input"
CASES = tomllib.loads((BAD / "corpus.toml").read_text())["case"]


@pytest.mark.parametrize("case", CASES, ids=[" ".join(c["args"][:2]) + f"-{i}" for i, c in enumerate(CASES)])
def test_corpus_case_exits_2_with_one_line_and_writes_nothing(case, tmp_path, capsys):
    out = tmp_path / "out"
    args = [a.replace("{bad}", str(BAD)).replace("{out}", str(out)) for a in case["args"]]
    rc = main(args)
    err = capsys.readouterr().err
    lines = [ln for ln in err.splitlines() if ln.startswith("il2als: error:")]
    assert rc == 2, err
    assert len(lines) == 1 and case["message"] in lines[0], err
    assert "Traceback" not in err
    assert list(tmp_path.iterdir()) == [], "bad input must write nothing"
