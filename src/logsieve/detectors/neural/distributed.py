"""Data-parallel training and per-epoch checkpoints for the shared training loop.

:func:`~logsieve.detectors.neural.trainer.train_module` calls these helpers. When a
``torch.distributed`` process group is initialised (by ``logsieve train --ddp N``, which
:mod:`logsieve.scale.ddp` launches, or by ``torchrun``), every process draws the same
seeded order of examples as one process would, and each batch of it is cut among the
processes as ``DistributedSampler`` cuts a data set (every ``world``-th example from the
process's rank). Each process backpropagates the weighted loss *sum* of its share; one
all-reduce adds the gradients and the weights, and dividing by the batch's total weight
gives exactly the gradient one process computes for that batch (up to the order of float
additions). So ``--ddp N`` trains the same model as one process, N times wider per step.
Gradients are reduced explicitly rather than through the DDP wrapper because model steps
call submodules directly, not ``module.forward``. Without a process group every helper is
a no-op and single-process training is unchanged.

Checkpoints: inside :func:`checkpointing` (a directory), rank 0 writes after every epoch the
module and optimizer tensors (safetensors) and the loop's counters (JSON), atomically.
A restarted run (torchrun restarts every worker) finds them and resumes after the last
finished epoch. Each ``train_module`` call of a run numbers its own checkpoint, so models
that train several networks resume each one. Nothing is pickled.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
from torch import nn

logger = logging.getLogger(__name__)

__all__ = [
    "Checkpoint",
    "all_sum",
    "average_gradients",
    "broadcast_parameters",
    "checkpointing",
    "is_rank0",
    "shard",
    "world",
]

_state: dict[str, Any] = {"dir": None, "calls": 0}


def world() -> tuple[int, int]:
    """``(rank, world size)``: ``(0, 1)`` without an initialised process group."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def is_rank0() -> bool:
    return world()[0] == 0


def shard(batch: torch.Tensor, rank: int, size: int) -> torch.Tensor:
    """This process's share of a batch: every ``size``-th example from ``rank`` (the cut
    ``DistributedSampler`` makes, applied to each batch of the one-process order)."""
    return batch[rank::size]


def broadcast_parameters(module: nn.Module) -> None:
    """Give every process rank 0's initial weights."""
    if world()[1] == 1:
        return
    import torch.distributed as dist

    for p in module.state_dict().values():
        dist.broadcast(p, src=0)


def average_gradients(module: nn.Module, weight: float) -> None:
    """Turn each process's gradient of its weighted loss *sum* into the gradient of the
    batch's weighted *mean*: sum over the processes (one all-reduce of a flat buffer, with
    the weights), divided by the batch's total weight, as one process computes it."""
    import torch.distributed as dist

    params = [p for p in module.parameters() if p.requires_grad]
    grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in params]
    flat = torch.cat([g.reshape(-1) for g in grads] + [grads[0].new_tensor([weight])])
    dist.all_reduce(flat)
    total = float(flat[-1])
    flat /= total if total > 0 else 1.0
    offset = 0
    for p, g in zip(params, grads, strict=True):
        p.grad = flat[offset : offset + g.numel()].view_as(g).clone()
        offset += g.numel()


def all_sum(values: list[float], device: torch.device) -> list[float]:
    """Element-wise sum of ``values`` over the processes."""
    if world()[1] == 1:
        return values
    import torch.distributed as dist

    t = torch.tensor(values, dtype=torch.float64, device=device)
    dist.all_reduce(t)
    return [float(v) for v in t.tolist()]


@contextlib.contextmanager
def checkpointing(directory: str | Path | None) -> Iterator[None]:
    """Checkpoint every epoch of the training loops run inside, in ``directory``."""
    old = dict(_state)
    _state.update(dir=None if directory is None else Path(directory), calls=0)
    try:
        yield
    finally:
        _state.update(old)


class Checkpoint:
    """The checkpoint of one ``train_module`` call (inactive outside :func:`checkpointing`)."""

    def __init__(self, name: str) -> None:
        directory = _state["dir"]
        self.path: Path | None = None
        if directory is not None:
            _state["calls"] += 1
            self.path = Path(directory) / f"{_state['calls']:03d}-{_slug(name)}"

    def load(
        self,
        module: nn.Module,
        optimizer: torch.optim.Optimizer,
        fingerprint: dict[str, Any],
        generator: torch.Generator | None,
    ) -> dict[str, Any] | None:
        """Restore module and optimizer; the saved counters, or None (nothing to resume)."""
        if self.path is None or not (self.path / "state.json").exists():
            return None
        from safetensors.torch import load_file

        info = json.loads((self.path / "state.json").read_text())
        if info.get("fingerprint") != fingerprint:
            logger.warning("%s: checkpoint is for other data or settings; starting over", self.path)
            return None
        tensors = load_file(str(self.path / "tensors.safetensors"))
        module.load_state_dict({k[2:]: v for k, v in tensors.items() if k.startswith("m.")})
        opt = optimizer.state_dict()
        for key, pid in info["optimizer_keys"]:
            slot, name = key.split("/", 1)
            opt["state"].setdefault(pid, {})[name] = tensors[f"o.{key}"]
        optimizer.load_state_dict(opt)
        info["best_state"] = {k[2:]: v for k, v in tensors.items() if k.startswith("b.")} or None
        if "rng" in tensors:
            torch.set_rng_state(tensors["rng"])
        if generator is not None and "gen" in tensors:
            generator.set_state(tensors["gen"])
        logger.info("%s: resuming after epoch %d", self.path, info["epoch"])
        return info

    def save(
        self,
        module: nn.Module,
        optimizer: torch.optim.Optimizer,
        info: dict[str, Any],
        best_state: dict[str, torch.Tensor] | None,
        generator: torch.Generator | None,
    ) -> None:
        """Rank 0 writes the state after an epoch (atomically: a new directory swapped in)."""
        if self.path is None or not is_rank0():
            return
        from safetensors.torch import save_file

        tensors = {f"m.{k}": v.detach().cpu().contiguous() for k, v in module.state_dict().items()}
        keys = []
        for pid, slots in optimizer.state_dict()["state"].items():
            for name, value in slots.items():
                key = f"{pid}/{name}"
                tensors[f"o.{key}"] = torch.as_tensor(value).detach().cpu().contiguous()
                keys.append((key, pid))
        for k, v in (best_state or {}).items():
            tensors[f"b.{k}"] = v.detach().cpu().contiguous()
        tensors["rng"] = torch.get_rng_state()
        if generator is not None:
            tensors["gen"] = generator.get_state()
        tmp = self.path.with_name(self.path.name + f".tmp-{os.getpid()}")
        tmp.mkdir(parents=True, exist_ok=True)
        save_file(tensors, str(tmp / "tensors.safetensors"))
        (tmp / "state.json").write_text(json.dumps({**info, "optimizer_keys": keys}))
        old = self.path.with_name(self.path.name + f".old-{os.getpid()}")
        if self.path.exists():
            os.replace(self.path, old)
        os.replace(tmp, self.path)
        if old.exists():
            for f in old.iterdir():
                f.unlink()
            old.rmdir()


def _slug(name: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in name)[:40] or "model"
