"""The shared trainer's data-parallel pieces: shards, per-epoch checkpoints and resuming,
and `--ddp 2` (gloo on CPU) end to end."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from logsieve.detectors.neural.distributed import checkpointing, shard, world
from logsieve.detectors.neural.trainer import torch_session, train_module


def _data(n: int = 200) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(n, 4)).astype(np.float32)
    return {"x": x, "y": (x @ np.array([1.0, -2.0, 0.5, 3.0], dtype=np.float32))}


def _step(module: nn.Module, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    return (module(batch["x"]).squeeze(-1) - batch["y"]) ** 2


class _Stop(Exception):
    pass


def _train(epochs: int, ckpt: Path | None, stop_after: int | None = None):
    def progress(report) -> None:
        if stop_after is not None and report.epoch == stop_after:
            raise _Stop

    with torch_session(0, "cpu", 1) as (dev, gen), checkpointing(ckpt):
        module = nn.Linear(4, 1)
        history = train_module(module, _step, _data(), epochs=epochs, batch_size=32, lr=0.05,
                               device=dev, generator=gen, progress=progress, name="lin")  # fmt: skip
    return module.state_dict(), history


def test_shares_of_a_batch_cover_it_once() -> None:
    assert world() == (0, 1)
    batch = torch.randperm(11, generator=torch.Generator().manual_seed(1))
    shares = [shard(batch, r, 3) for r in range(3)]
    assert sorted(torch.cat(shares).tolist()) == list(range(11))
    assert [len(s) for s in shares] == [4, 4, 3]


def test_interrupted_run_resumes_to_the_same_weights(tmp_path: Path) -> None:
    straight, hist = _train(4, None)
    with pytest.raises(_Stop):
        _train(4, tmp_path / "ckpt", stop_after=2)
    saved = list((tmp_path / "ckpt").iterdir())
    assert [p.name for p in saved] == ["001-lin"]
    assert sorted(f.name for f in saved[0].iterdir()) == ["state.json", "tensors.safetensors"]
    resumed, hist2 = _train(4, tmp_path / "ckpt")
    assert [h.epoch for h in hist2] == [1, 2, 3, 4]
    for k in straight:
        assert torch.equal(straight[k], resumed[k])
    assert [h.train_loss for h in hist2] == pytest.approx([h.train_loss for h in hist])


def test_ddp_two_processes_train_and_rank0_writes(tmp_path: Path) -> None:
    from logsieve.grouping.windows import Sessions
    from logsieve.parsing.parser import LogParser
    from logsieve.pipeline.jobs import group_job
    from logsieve.scale.ddp import ddp_train
    from logsieve.synth import generate

    generate(tmp_path / "s.log", 20_000, seed=2, labels_path=tmp_path / "labels.csv")
    LogParser("hdfs").parse_files([tmp_path / "s.log"], tmp_path / "ev.parquet")
    group_job(tmp_path / "ev.parquet", tmp_path / "w.parquet", Sessions(),
              labels=tmp_path / "labels.csv")  # fmt: skip
    args = dict(windows_path=str(tmp_path / "w.parquet"), model="deeplog",
                params={"epochs": 2, "hidden_size": 16, "num_threads": 1},
                output_dir=str(tmp_path / "model"), split="0.7,0.1,0.2", seed=0)  # fmt: skip
    summary = ddp_train(2, args)
    assert summary["ddp"] == {"processes": 2, "backend": "gloo"}
    assert (tmp_path / "model" / "model.json").exists()
    assert not (tmp_path / ".model.ddp-ckpt").exists()  # checkpoints go after success
    assert not any(p.name.startswith(".logsieve") for p in tmp_path.iterdir())


def _weighted_data() -> dict[str, np.ndarray]:
    data = _data(203)
    data["weight"] = np.random.default_rng(1).integers(1, 1000, size=203).astype(np.float32)
    return data


def _train_plain() -> dict[str, torch.Tensor]:
    with torch_session(0, "cpu", 1) as (dev, gen):
        module = nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 1))
        train_module(module, _step, _weighted_data(), epochs=3, batch_size=32, lr=0.05,
                     device=dev, generator=gen)  # fmt: skip
    return module.state_dict()


def _ddp_rank(rank: int, port: int, out: str) -> None:
    import torch.distributed as dist
    from safetensors.torch import save_file

    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=2)
    try:
        state = _train_plain()
        if rank == 0:
            save_file({k: v.contiguous() for k, v in state.items()}, out)
    finally:
        dist.destroy_process_group()


def test_two_processes_compute_the_one_process_gradients(tmp_path: Path) -> None:
    """Same order, same batches, weighted losses: the weights match one process's."""
    import torch.multiprocessing as mp
    from safetensors.torch import load_file

    from logsieve.scale.ddp import _free_port

    single = _train_plain()
    out = str(tmp_path / "rank0.safetensors")
    mp.start_processes(_ddp_rank, args=(_free_port(), out), nprocs=2, start_method="spawn")
    ddp = load_file(out)
    for k, v in single.items():
        torch.testing.assert_close(ddp[k], v, rtol=1e-5, atol=1e-5)
