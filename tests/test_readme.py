"""The README's promises: its Python example runs, its commands exist, its figure is there."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")


def test_readme_python_example_runs(tmp_path, monkeypatch):
    block = re.search(r"```python\n(.*?)```", README, re.S).group(1)
    monkeypatch.chdir(tmp_path)
    exec(compile(block, "README.md", "exec"), {})
    assert (tmp_path / "fast.csv").read_text().startswith("time [day],il2_plasma [IU/mL]")


def test_readme_opens_with_the_two_commands_and_ci_runs_the_test_one():
    cmds = re.search(r"```bash\n(.*?)```", README, re.S).group(1).strip().splitlines()
    assert len(cmds) == 2 and "il2als scenario slow-vs-fast" in cmds[0] and "pytest" in cmds[1]
    ci = (ROOT / ".ci" / "run").read_text()
    test_cmd = cmds[1].split("&&")[1].strip()
    assert test_cmd in ci


def test_readme_figures_exist():
    figs = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", README)
    assert len(figs) >= 4
    for f in figs:
        assert (ROOT / f).read_bytes()[:4] == b"\x89PNG", f
