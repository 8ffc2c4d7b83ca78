"""Where a Dask run computes: an existing scheduler or a LocalCluster of worker processes.

Dask is an extra (``pip install logsieve[dask]``) and is imported only here, inside the
functions, so the local path never needs it. Workers import logsieve themselves: a
LocalCluster's processes inherit this process's environment (``PYTHONPATH`` included); on
a real cluster every worker needs the same logsieve version installed, and the input and
output paths must be on a file system every worker sees.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator
from typing import Any

from logsieve.errors import LogsieveError

log = logging.getLogger(__name__)

ENGINES = ("local", "dask")

__all__ = ["ENGINES", "check_engine", "dask_client"]


def check_engine(engine: str, scheduler: str | None, workers: int | None) -> str:
    """The engine name, checked together with its options (one-line error otherwise)."""
    if engine not in ENGINES:
        raise LogsieveError(f"--engine is local or dask, not {engine!r}")
    if engine == "local" and (scheduler is not None or workers is not None):
        raise LogsieveError("--scheduler and --workers need --engine dask")
    if scheduler is not None and workers is not None:
        raise LogsieveError("give --scheduler (an existing cluster) or --workers, not both")
    if workers is not None and (isinstance(workers, bool) or workers < 1):
        raise LogsieveError(f"--workers must be a positive integer, not {workers!r}")
    if scheduler is not None and not scheduler.startswith(("tcp://", "tls://", "inproc://")):
        raise LogsieveError(f"--scheduler wants an address like tcp://HOST:8786, not {scheduler!r}")
    return engine


def _import_distributed() -> Any:
    try:
        import distributed
    except ImportError as exc:
        raise LogsieveError(
            "--engine dask needs Dask: pip install 'logsieve[dask]' (or make setup)"
        ) from exc
    return distributed


@contextlib.contextmanager
def dask_client(scheduler: str | None = None, workers: int | None = None) -> Iterator[Any]:
    """A ``distributed.Client``: connected to ``scheduler``, or to a LocalCluster of
    ``workers`` single-threaded worker processes (default 2) closed on exit."""
    distributed = _import_distributed()
    if scheduler is not None:
        try:
            client = distributed.Client(scheduler, timeout="30s")
        except (OSError, TimeoutError) as exc:
            raise LogsieveError(f"cannot reach the Dask scheduler {scheduler}: {exc}") from exc
        with client:
            yield client
        return
    n = 2 if workers is None else workers
    # one thread per worker process; torch/BLAS and Polars must not oversubscribe the cores
    share = str(max(1, (os.cpu_count() or 1) // n))
    env = {
        "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1"),
        "POLARS_MAX_THREADS": os.environ.get("POLARS_MAX_THREADS", share),
    }
    with (
        distributed.LocalCluster(
            n_workers=n,
            threads_per_worker=1,
            processes=True,
            dashboard_address=None,
            memory_limit=0,
            env=env,
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        log.info("dask: LocalCluster of %d worker processes", n)
        yield client
