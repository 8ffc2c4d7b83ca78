"""``experiment --engine dask``: the experiment's cells as tasks on a Dask cluster.

The runner (:func:`logsieve.evaluation.experiment.run_experiment`) hands its cells to any
``concurrent.futures`` executor; this one is the Dask client's. Each worker first loads the
config and opens the run's data store, as a local pool worker does; each cell still writes
its own result file in the run directory, so an interrupted run resumes the same way. On a
real cluster the run directory must be on a file system every worker sees.
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
from collections.abc import Callable, Iterator
from typing import Any

from logsieve.scale.cluster import dask_client

__all__ = ["dask_executor"]


class _Executor(cf.Executor):
    """A Dask ``ClientExecutor`` that also takes ``shutdown(cancel_futures=...)``."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> cf.Future[Any]:
        future: cf.Future[Any] = self._inner.submit(fn, *args, **kwargs)
        return future

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        self._inner.shutdown(wait=wait and not cancel_futures)


def dask_executor(
    scheduler: str | None, workers: int | None
) -> Callable[[int, Callable[..., None], tuple[Any, ...]], contextlib.AbstractContextManager[Any]]:
    """An executor factory for :func:`~logsieve.evaluation.experiment.run_experiment`."""

    @contextlib.contextmanager
    def make(
        jobs: int, initializer: Callable[..., None], initargs: tuple[Any, ...]
    ) -> Iterator[cf.Executor]:
        with dask_client(scheduler, workers if workers is not None else jobs) as client:
            client.run(initializer, *initargs)
            yield _Executor(client.get_executor(pure=False))

    return make
