"""Partitioned Parquet datasets, committed whole.

A Dask run writes its parts (``part-000000.parquet``, ...) into a private temporary
directory beside the target; only when every part is written is that directory renamed
onto the target. A failed or killed run leaves no half-written dataset and never damages
the one it would replace. :func:`logsieve.io.tables.read_table` reads such a directory as
one table, parts in name order.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from logsieve.errors import InputError
from logsieve.io.atomic import temp_dir
from logsieve.io.tables import PART_GLOB

__all__ = ["atomic_dataset", "check_dataset_output", "part_name"]


def part_name(i: int) -> str:
    """The file name of part ``i`` of a dataset."""
    return f"part-{i:06d}.parquet"


def check_dataset_output(path: str | Path, inputs: list[Path]) -> Path:
    """Refuse a dataset target that is an input, a file, or a directory of anything else."""
    target = Path(path)
    for src in inputs:
        if src.resolve() == target.resolve():
            raise InputError(target, "output is one of the inputs; write the output elsewhere")
    if target.is_symlink() or (target.exists() and not target.is_dir()):
        raise InputError(
            target, "exists and is not a dataset directory; --engine dask writes a directory"
        )
    if target.is_dir():
        others = [p for p in target.iterdir() if not p.match(PART_GLOB)]
        if others:
            raise InputError(
                target,
                f"a directory holding {others[0].name!r}: not a dataset; refusing to replace it",
            )
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(target.parent, f"cannot create: {exc.strerror or exc}") from exc
    return target


@contextlib.contextmanager
def atomic_dataset(path: str | Path) -> Iterator[Path]:
    """Yield a temporary directory for the parts; rename it onto ``path`` on success."""
    target = Path(path)
    with temp_dir(target.parent, "dataset") as tmp:
        yield tmp
        os.chmod(tmp, 0o777 & ~_umask())
        if not target.exists():
            os.replace(tmp, target)
            return
        old = Path(tempfile.mkdtemp(prefix=f".logsieve-old-{os.getpid()}-", dir=target.parent))
        old.rmdir()
        os.replace(target, old)
        try:
            os.replace(tmp, target)
        except BaseException:
            os.replace(old, target)
            raise
        shutil.rmtree(old, ignore_errors=True)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
