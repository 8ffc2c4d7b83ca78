"""``run_experiment``: plan, skip finished cells, run the rest in order or in a process pool.

Worker processes are spawned (fresh interpreters); each loads the config itself and
exits as soon as its parent process ends.
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import logging
import multiprocessing
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from logsieve.errors import LogsieveError
from logsieve.evaluation.experiment.cell import _execute, versions
from logsieve.evaluation.experiment.config import load_config
from logsieve.evaluation.experiment.data import DataStore
from logsieve.evaluation.experiment.plan import Cell, plan_cells
from logsieve.evaluation.experiment.results import RunSummary, _estimate, collect_results
from logsieve.evaluation.experiment.specs import ExperimentConfig
from logsieve.evaluation.experiment.store import _finished, _write_plan
from logsieve.io.atomic import write_json

logger = logging.getLogger(__name__)


_WORKER: dict[str, Any] = {}


def _exit_with_parent() -> None:
    """In a worker process: exit as soon as the parent process ends.

    A parent killed by a signal runs no clean-up, and an idle pool worker would then wait
    on its task queue forever. A daemon thread waits on the parent's sentinel instead.
    """
    parent = multiprocessing.parent_process()
    if parent is None:
        return

    def watch() -> None:
        parent.join()
        os._exit(1)

    threading.Thread(target=watch, name="logsieve-parent-watch", daemon=True).start()


def _worker_init(config_path: str, run_dir: str) -> None:
    _exit_with_parent()
    try:  # one torch thread per worker: the workers already use the cores
        import torch

        torch.set_num_threads(1)
    except ImportError:  # pragma: no cover - torch is optional
        pass
    config = load_config(config_path)
    _WORKER.update(
        config=config,
        store=DataStore(config, Path(run_dir)),
        run_dir=Path(run_dir),
        versions=versions(),
    )


def _worker_run(aspect: str, cell_settings: dict[str, Any]) -> dict[str, Any]:
    settings = dict(cell_settings)
    settings["params"] = tuple(
        sorted((k, tuple(v) if isinstance(v, list) else v) for k, v in settings["params"].items())
    )
    cell = Cell(**settings)
    row = _execute(cell, aspect, _WORKER["store"], _WORKER["run_dir"], _WORKER["versions"])
    return {k: row[k] for k in ("key", "status", "error", "seconds")}


ExecutorFactory = Callable[
    [int, Callable[..., None], tuple[Any, ...]], contextlib.AbstractContextManager[cf.Executor]
]
"""``(jobs, initializer, initargs) -> context manager of an Executor`` that runs the cells
(``--engine dask``: :func:`logsieve.scale.experiment.dask_executor`)."""


def _process_pool(
    n_jobs: int, initializer: Callable[..., None], initargs: tuple[Any, ...]
) -> contextlib.AbstractContextManager[cf.Executor]:
    ctx = multiprocessing.get_context("spawn")
    return cf.ProcessPoolExecutor(
        n_jobs, mp_context=ctx, initializer=initializer, initargs=initargs
    )


@dataclass(frozen=True)
class CellEvent:
    """Progress report: sent when a cell starts (``status="running"``) and when it ends."""

    done: int
    total: int
    aspect: str
    label: str
    status: str  # running | ok | error
    seconds: float = 0.0


def run_experiment(
    config: ExperimentConfig | str | Path,
    run_dir: str | Path,
    *,
    only: Sequence[str] | None = None,
    max_cells: int | None = None,
    dry_run: bool = False,
    retry_errors: bool = False,
    jobs: int | None = None,
    progress: Callable[[CellEvent], None] | None = None,
    executor: ExecutorFactory | None = None,
) -> RunSummary:
    """Run (or resume) an experiment.

    Parameters
    ----------
    config
        An :class:`ExperimentConfig` or the path of a TOML config.
    run_dir
        Where the data cache, the per-cell results and ``results.parquet`` go.
    only
        Aspect names to run (others are kept in the plan, not computed).
    max_cells
        Stop after computing this many cells (finished ones do not count).
    dry_run
        Plan only: count cells and finished ones, and estimate the time of the rest
        from the CPU time of finished cells of the same model and dataset
        (``estimated_cpu_seconds``; ``estimated_seconds`` = that / jobs, the wall time
        on an otherwise idle machine); writes nothing.
    retry_errors
        Recompute cells stored with ``status = "error"`` (they are skipped otherwise).
    jobs
        Worker processes (default: the config's ``[run] jobs``). Each uses one
        torch thread. They are *spawned* (fresh interpreters), so a script that calls
        this with ``jobs > 1`` needs the usual ``if __name__ == "__main__":`` guard; the
        ``logsieve`` command and ``python -m logsieve`` are fine. Detectors registered
        at run time (not importable by name) need ``jobs=1``.
    progress
        Called with a :class:`CellEvent` when each cell starts and ends.
    executor
        Runs the cells elsewhere than in a local process pool: called as
        ``executor(jobs, initializer, initargs)``, it gives a context manager of a
        ``concurrent.futures.Executor`` whose workers ran ``initializer(*initargs)``.
    """
    if not isinstance(config, ExperimentConfig):
        config = load_config(config)
    run_dir = Path(run_dir)
    if max_cells is not None and max_cells < 0:
        raise LogsieveError(f"max_cells must be >= 0, not {max_cells}")
    started = time.perf_counter()
    all_cells = plan_cells(config)
    planned = plan_cells(config, only) if only else all_cells
    aspects_count: dict[str, int] = {}
    for a, _ in planned:
        aspects_count[a] = aspects_count.get(a, 0) + 1
    unique: OrderedDict[str, tuple[str, Cell]] = OrderedDict()
    for a, c in planned:
        unique.setdefault(c.key, (a, c))
    finished = _finished(run_dir, retry_errors) if run_dir.exists() else set()
    todo = [(a, c) for k, (a, c) in unique.items() if k not in finished]
    todo.sort(
        key=lambda ac: (
            ac[1].data_key[0],
            ac[1].data_key[1],
            ac[1].data_key[2],
            ac[1].data_key[3] or 0,
        )
    )
    summary = RunSummary(
        run_dir=str(run_dir),
        config=str(config.path),
        aspects=aspects_count,
        planned=len(planned),
        unique=len(unique),
        done_before=len(unique) - len(todo),
        remaining=len(todo),
        dry_run=dry_run,
    )
    n_jobs = max(1, int(jobs or config.jobs))
    if dry_run:
        cpu = _estimate(run_dir, [c for _, c in todo])
        summary.estimated_cpu_seconds = cpu
        summary.estimated_seconds = None if cpu is None else cpu / n_jobs
        return summary
    run_dir.mkdir(parents=True, exist_ok=True)
    _write_plan(config, run_dir, all_cells)
    if max_cells is not None:
        todo = todo[:max_cells]
    logger.info(
        "experiment %s: %d cells planned (%d distinct), %d finished, running %d with %d job(s)",
        config.name,
        len(planned),
        len(unique),
        summary.done_before,
        len(todo),
        n_jobs,
    )
    total = len(todo)
    done = 0

    def report(event: CellEvent) -> None:
        if progress is not None:
            progress(event)

    try:
        if (n_jobs == 1 or total <= 1) and executor is None:
            store = DataStore(config, run_dir)
            vers = versions()
            for aspect, cell in todo:
                report(CellEvent(done, total, aspect, cell.label(), "running"))
                row = _execute(cell, aspect, store, run_dir, vers)
                done += 1
                summary.computed += 1
                summary.errors += row["status"] == "error"
                report(CellEvent(done, total, aspect, cell.label(), row["status"], row["seconds"]))
        else:
            store = DataStore(config, run_dir)
            for key in dict.fromkeys(
                c.data_key for _, c in todo
            ):  # prepare every dataset once, here
                try:
                    store.get(*key)
                except Exception as exc:  # noqa: BLE001 - the cells report it
                    logger.warning("data %s: %s", key, exc)
            make = executor if executor is not None else _process_pool
            with make(n_jobs, _worker_init, (str(config.path), str(run_dir))) as pool:
                futures = {pool.submit(_worker_run, a, c.settings()): (a, c) for a, c in todo}
                try:
                    for fut in cf.as_completed(futures):
                        aspect, cell = futures[fut]
                        out = fut.result()
                        done += 1
                        summary.computed += 1
                        summary.errors += out["status"] == "error"
                        report(
                            CellEvent(
                                done, total, aspect, cell.label(), out["status"], out["seconds"]
                            )
                        )
                except BaseException:
                    pool.shutdown(wait=False, cancel_futures=True)
                    raise
    finally:
        summary.remaining = len(unique) - len(_finished(run_dir, False) & set(unique))
        summary.stopped_early = summary.remaining > 0
        results = collect_results(run_dir)
        summary.results = str(run_dir / "results.parquet")
        summary.seconds = time.perf_counter() - started
        write_json(
            run_dir / "run.json",
            {**summary.to_dict(), "rows": results.height, "versions": versions()},
        )
    return summary
