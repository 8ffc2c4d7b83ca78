"""Fuzz suite (issue 16): every generated case must exit 0 or 2, print no traceback, finish
within a bound and leave no partial output. ``check_case`` counts the cases; the count is
printed at the end of the run (and written to $LOGSIEVE_FUZZ_COUNT when set)."""

from __future__ import annotations

import os
import signal
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from typer.testing import CliRunner

from logsieve.cli.app import app

CASES: Counter[str] = Counter()
RUNNER = CliRunner()
#: seconds one case may take (in process); a hang fails the case instead of the suite
CASE_TIMEOUT = 20.0


class CaseTimeout(Exception):
    pass


@contextmanager
def time_bound(seconds: float) -> Iterator[None]:
    """Raise :class:`CaseTimeout` in the main thread when the block runs too long."""

    def _alarm(signum: int, frame: Any) -> None:
        raise CaseTimeout(f"case ran longer than {seconds} s")

    old = signal.signal(signal.SIGALRM, _alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


def leftovers(folder: Path) -> list[str]:
    """Temp files a run must not leave behind."""
    return sorted(
        p.name
        for p in folder.iterdir()
        if p.name.startswith(".logsieve-") or (p.name.startswith(".") and p.name.endswith(".tmp"))
    )


def check_case(
    kind: str, args: Sequence[str | Path], outputs: Sequence[Path] = (), timeout: float = CASE_TIMEOUT
) -> Any:
    """Run the CLI in process on ``args`` and assert the promise; returns the result."""
    CASES[kind] += 1
    before = {p: p.exists() for p in outputs}
    with time_bound(timeout):
        res = RUNNER.invoke(app, [str(a) for a in args])
    exc = res.exception
    shown = f"args={list(map(str, args))!r}\noutput={res.output[-2000:]!r}"
    assert exc is None or isinstance(exc, SystemExit), f"{type(exc).__name__}: {exc}\n{shown}"
    assert res.exit_code in (0, 2), f"exit {res.exit_code}\n{shown}"
    assert "Traceback" not in res.output, shown
    if res.exit_code == 2:
        lines = [ln for ln in res.output.splitlines() if ln.startswith("logsieve: error:")]
        assert len(lines) == 1, shown
    for out in outputs:
        assert not leftovers(out.parent), f"temp files left: {leftovers(out.parent)}\n{shown}"
        if res.exit_code == 2 and not before[out]:
            assert not out.exists(), f"partial output {out} left by a failed run\n{shown}"
        if res.exit_code == 0 and out.suffix == ".parquet":
            pl.read_parquet(out)  # complete and readable
    return res


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if not CASES:
        return
    total = sum(CASES.values())
    detail = ", ".join(f"{k} {v}" for k, v in sorted(CASES.items()))
    terminalreporter.write_line(f"fuzz: {total} cases ({detail})")
    target = os.environ.get("LOGSIEVE_FUZZ_COUNT")
    if target:
        Path(target).write_text(f"{total}\n{detail}\n", encoding="utf-8")


@pytest.fixture(scope="session")
def fuzz_data(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A small synthetic HDFS log, its events and windows tables and a trained PCA model."""
    root = tmp_path_factory.mktemp("fuzzdata")
    log, ev, win, model = root / "s.log", root / "ev.parquet", root / "win.parquet", root / "m"
    for args in (
        ["synth", "-o", log, "-n", "3000", "-q"],
        ["parse", log, "--format", "hdfs", "-o", ev, "-q"],
        ["group", ev, "--labels", root / "s.labels.csv", "-o", win, "-q"],
        ["train", win, "-m", "pca", "-o", model, "-q"],
    ):
        res = RUNNER.invoke(app, [str(a) for a in args])
        assert res.exit_code == 0, res.output
    return {"log": log, "events": ev, "windows": win, "model": model, "root": root}
