"""``logsieve train --ddp N``: the shared trainer in N processes under torch.distributed.

Every process runs the same :func:`logsieve.pipeline.jobs.train_job` on the same windows:
the same split, the same seeded initial weights. Inside the training loop each process
takes its ``DistributedSampler``-style share of every batch and the gradients are combined
into the batch's one-process gradient after each backward pass
(:mod:`logsieve.detectors.neural.distributed`), so every process ends with the same
weights; only rank 0 writes the model directory (the others write to a
private temporary directory that is removed).

Backends: ``gloo`` on CPU, ``nccl`` when CUDA is available (one GPU per process, chosen
by the local rank). Every epoch is checkpointed in ``--checkpoint-dir`` (default: beside
the output, removed after success), so a restarted job resumes after the last finished
epoch.

Two ways to start it:

* ``logsieve train ... --ddp N`` spawns N local processes (rendezvous on a free local port);
* under ``torchrun`` (``RANK``/``WORLD_SIZE``/``MASTER_ADDR`` set) the same command runs as
  the rank torchrun gave it, so one node or many::

      torchrun --nnodes 2 --nproc-per-node 4 --rdzv-backend c10d \\
          --rdzv-endpoint HOST:29500 -m logsieve train windows/ -m deeplog -o model/ \\
          --ddp 4 --checkpoint-dir /shared/ckpt

  (windows, model and checkpoint paths on a file system every node sees).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import socket
import tempfile
from pathlib import Path
from typing import Any

from logsieve.errors import LogsieveError

log = logging.getLogger(__name__)

__all__ = ["ddp_train", "under_torchrun"]


def under_torchrun() -> bool:
    """True inside a process started by torchrun (or any launcher that sets the env)."""
    return all(k in os.environ for k in ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT"))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _backend() -> str:
    import torch

    return "nccl" if torch.cuda.is_available() else "gloo"


def _run_rank(
    rank: int,
    world: int,
    local_rank: int,
    init_method: str,
    train_args: dict[str, Any],
    checkpoint_dir: str,
) -> dict[str, Any] | None:
    """One process: join the group, train, rank 0 writes the model; returns its summary."""
    import torch
    import torch.distributed as dist

    from logsieve.detectors.neural.distributed import checkpointing
    from logsieve.pipeline.jobs import train_job

    backend = _backend()
    if backend == "nccl":
        torch.cuda.set_device(local_rank)
    dist.init_process_group(backend, init_method=init_method, rank=rank, world_size=world)
    scratch = None
    try:
        args = dict(train_args)
        if rank != 0:
            scratch = tempfile.mkdtemp(prefix=f".logsieve-ddp-{rank}-")
            args["output_dir"] = str(Path(scratch) / "model")
        with checkpointing(checkpoint_dir):
            summary = train_job(**args)
        dist.barrier()
        return {**summary, "ddp": {"processes": world, "backend": backend}} if rank == 0 else None
    finally:
        dist.destroy_process_group()
        if scratch is not None:
            shutil.rmtree(scratch, ignore_errors=True)


def _spawned(
    local_rank: int, world: int, port: int, train_args: dict[str, Any], ckpt: str, result: str
) -> None:
    """Entry of a process spawned by :func:`ddp_train` (rank = local rank)."""
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    summary = _run_rank(local_rank, world, local_rank, f"tcp://127.0.0.1:{port}", train_args, ckpt)
    if summary is not None:
        Path(result).write_text(json.dumps(summary, default=str))


def ddp_train(
    processes: int, train_args: dict[str, Any], checkpoint_dir: str | Path | None = None
) -> dict[str, Any]:
    """Run ``train_job(**train_args)`` data-parallel in ``processes`` processes.

    Under torchrun this process is one rank of the job (``processes`` is then taken from
    ``WORLD_SIZE``). Returns rank 0's summary (other ranks under torchrun get a short one).
    """
    if isinstance(processes, bool) or not isinstance(processes, int) or processes < 1:
        raise LogsieveError(f"--ddp needs a positive number of processes, not {processes!r}")
    from logsieve.detectors.neural.trainer import TorchDetector
    from logsieve.detectors.registry import get_detector_class

    if not issubclass(get_detector_class(train_args["model"]), TorchDetector):
        raise LogsieveError(f"--ddp trains neural models; {train_args['model']!r} is not one")
    out = Path(train_args["output_dir"])
    ckpt = Path(checkpoint_dir) if checkpoint_dir else out.with_name(f".{out.name}.ddp-ckpt")
    train_args = {**train_args, "progress": None}
    if under_torchrun():
        rank, world = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
        local = int(os.environ.get("LOCAL_RANK", rank))
        summary = _run_rank(rank, world, local, "env://", train_args, str(ckpt))
        if summary is None:
            return {"rank": rank, "world": world, "output_dir": None}
        shutil.rmtree(ckpt, ignore_errors=True)
        return summary
    import torch.multiprocessing as mp

    ckpt.mkdir(parents=True, exist_ok=True)
    result = ckpt / "rank0-summary.json"
    result.unlink(missing_ok=True)
    try:
        mp.start_processes(
            _spawned,
            args=(processes, _free_port(), train_args, str(ckpt), str(result)),
            nprocs=processes,
            start_method="spawn",
        )
    except mp.ProcessRaisedException as exc:
        lines = [ln for ln in str(exc).strip().splitlines() if ln.strip()]
        raise LogsieveError(f"--ddp: a training process failed: {lines[-1].strip()}") from None
    except mp.ProcessExitedException as exc:
        raise LogsieveError(
            f"--ddp: a training process died ({exc}); run again to resume"
        ) from None
    summary = json.loads(result.read_text())
    shutil.rmtree(ckpt, ignore_errors=True)
    return dict(summary)
