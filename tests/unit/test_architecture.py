"""The house rules that a linter does not check: module size and where the stages live.

The import rules themselves (no module imports a later stage, no cycles) are import-linter
contracts in pyproject.toml, run by `make lint` in CI.
"""

from __future__ import annotations

from pathlib import Path

import logsieve

SRC = Path(logsieve.__file__).resolve().parent
MAX_LINES = 800


def test_no_module_is_over_800_lines() -> None:
    big = {
        str(p.relative_to(SRC)): n
        for p in SRC.rglob("*.py")
        if (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_LINES
    }
    assert big == {}, f"modules over {MAX_LINES} lines: {big}"


def test_library_code_never_prints() -> None:
    offenders = []
    for p in SRC.rglob("*.py"):
        if p.parent.name == "cli":
            continue
        for i, line in enumerate(p.read_text(encoding="utf-8").splitlines(), start=1):
            if line.lstrip().startswith("print("):
                offenders.append(f"{p.relative_to(SRC)}:{i}")
    assert offenders == []


def test_nothing_outside_the_cli_imports_it() -> None:
    """The CLI is the top layer: no library module and no benchmark script reaches into it."""
    repo = SRC.parents[1]
    files = [p for p in SRC.rglob("*.py") if not p.is_relative_to(SRC / "cli")]
    files = [p for p in files if p.name != "__main__.py"]  # `python -m logsieve` runs the CLI
    offenders = [
        f"{p.relative_to(repo)}:{i}"
        for p in [*files, *(repo / "benchmarks").glob("*.py")]
        for i, line in enumerate(p.read_text(encoding="utf-8").splitlines(), start=1)
        if line.strip().startswith(("from logsieve.cli", "import logsieve.cli"))
    ]
    assert offenders == []
