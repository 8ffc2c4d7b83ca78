"""The one training loop of every neural logsieve detector, and its base class.

A neural model subclasses :class:`TorchDetector` and supplies only:

``_prepare_fit(train)`` / ``_prepare(windows)``
    windows table -> dict of equal-length NumPy arrays (one row per training
    example). ``_prepare_fit`` may fit data-dependent state (vocabulary ``vocab_``);
    ``_prepare`` reuses it. An optional ``"weight"`` array gives per-example weights
    (e.g. counts of distinct examples); the loss is the weighted mean.
``build_module()``
    the ``torch.nn.Module`` (may use fitted state such as ``vocab_``).
``training_step(module, batch)``
    the per-example loss, shape ``(batch,)``, for a batch dict of tensors.
``_score(windows)``
    scores of distinct windows; :meth:`TorchDetector._infer` runs a function over
    arrays in no-grad batches on the right device.

:func:`train_module` owns batching, shuffling, Adam, early stopping on the validation
loss (``patience`` epochs without improvement; the best weights are restored), the
per-epoch log line with its duration, and progress reports through an optional
callback (:class:`EpochReport`); it never prints.

A whole model, for example a window autoencoder over event counts (sketch)::

    @register_detector("count-ae")          # + one DetectorInfo line in registry.BUILTIN
    class CountAE(TorchDetector):
        description = "autoencoder over event counts; score = reconstruction error"
        input_kind = "counts"
        citation = "..."
        hidden_size: int = 32               # parameters: annotated class attributes

        def _prepare_fit(self, train):
            self.vocab_ = EventVocab.fit(train)
            return self._prepare(train)

        def _prepare(self, windows):
            return {"x": count_matrix(windows, self.vocab_).astype(np.float32)}

        def build_module(self):
            n = len(self.vocab_)
            return nn.Sequential(nn.Linear(n, self.hidden_size), nn.ReLU(),
                                 nn.Linear(self.hidden_size, n))

        def training_step(self, module, batch):
            return ((module(batch["x"]) - batch["x"]) ** 2).mean(1)

        def _score(self, windows):
            out = self._infer(self.training_step, self._prepare(windows))
            return torch.cat(out).numpy()

        def _get_state(self): ...           # add vocab_ to the state, and restore it in
        def _set_state(self, state, arrays): ...  # _set_state before super()._set_state

Randomness and global state (documented contract): :func:`torch_session` runs the
work inside ``torch.random.fork_rng`` and seeds it with ``random_state`` (weight
initialisation and dropout draw from the forked global generator; shuffling uses a
private ``torch.Generator``), so the caller's global RNG state is restored
afterwards. It also lowers ``torch.set_num_threads`` to ``num_threads`` (default:
the number of usable cores) for the duration and restores the previous value; it
changes no other global flag (no ``cudnn.deterministic``: CUDA runs are
reproducible only up to non-deterministic kernels).
"""

from __future__ import annotations

import contextlib
import copy
import logging
import math
import os
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Self

import numpy as np
import polars as pl
import torch
from torch import nn

from logsieve.detectors.base import (
    BaseDetector,
    ProgressCallback,
    check_positive_ints,
    resolve_seed,
)
from logsieve.detectors.neural.distributed import (
    Checkpoint,
    all_sum,
    average_gradients,
    broadcast_parameters,
    shard,
    world,
)
from logsieve.errors import LogsieveError
from logsieve.schema import LABEL

logger = logging.getLogger(__name__)

Batch = dict[str, torch.Tensor]
StepFn = Callable[[nn.Module, Batch], torch.Tensor]

__all__ = [
    "Batch",
    "EpochReport",
    "TorchDetector",
    "available_cores",
    "infer_batches",
    "resolve_device",
    "torch_session",
    "train_module",
]


def available_cores() -> int:
    """CPU cores this process may use (affinity-aware)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


def resolve_device(device: str) -> torch.device:
    """``"auto"`` -> CUDA when available, else CPU; explicit names are checked."""
    name = str(device).lower()
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(name)
    except RuntimeError as exc:
        raise LogsieveError(f"unknown device {device!r} (use auto, cpu, cuda or cuda:N)") from exc
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise LogsieveError(
            f"device {device!r} requested but CUDA is not available (use device='auto' or 'cpu')"
        )
    if dev.type == "mps" and not torch.backends.mps.is_available():
        raise LogsieveError(f"device {device!r} requested but MPS is not available")
    return dev


@contextlib.contextmanager
def torch_session(
    random_state: int | None, device: str = "auto", num_threads: int | None = None
) -> Iterator[tuple[torch.device, torch.Generator]]:
    """Seeded, thread-limited torch context; yields ``(device, cpu_generator)``.

    Global RNG state (CPU, and CUDA of the used device) and the thread count are
    restored on exit. ``random_state=None`` seeds from fresh OS entropy.
    """
    dev = resolve_device(device)
    seed = resolve_seed(random_state)
    cores = available_cores()
    threads = min(int(num_threads), cores) if num_threads else min(torch.get_num_threads(), cores)
    old_threads = torch.get_num_threads()
    cuda_devices = (
        [dev.index if dev.index is not None else torch.cuda.current_device()]
        if dev.type == "cuda"
        else []
    )
    with torch.random.fork_rng(devices=cuda_devices):
        # seed only the forked generators (CPU, and the one CUDA device used); restored on exit
        torch.default_generator.manual_seed(seed)
        if cuda_devices:
            with torch.cuda.device(cuda_devices[0]):
                torch.cuda.manual_seed(seed)
        generator = torch.Generator().manual_seed(seed)
        if threads != old_threads:
            torch.set_num_threads(max(1, threads))
        try:
            yield dev, generator
        finally:
            if torch.get_num_threads() != old_threads:
                torch.set_num_threads(old_threads)


@dataclass(frozen=True)
class EpochReport:
    """One progress report: sent to the ``progress`` callback after every epoch."""

    epoch: int
    epochs: int
    train_loss: float
    valid_loss: float | None
    seconds: float
    best_epoch: int
    stopped: bool = False  # early stopping fired after this epoch

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def _to_tensors(arrays: Mapping[str, np.ndarray]) -> dict[str, torch.Tensor]:
    n = {len(v) for v in arrays.values()}
    if len(n) > 1:
        raise ValueError(
            f"prepared arrays differ in length: { {k: len(v) for k, v in arrays.items()} }"
        )
    return {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in arrays.items()}


def _batch(
    data: Mapping[str, torch.Tensor], idx: torch.Tensor | slice, device: torch.device
) -> Batch:
    return {k: v[idx].to(device, non_blocking=True) for k, v in data.items()}


def _weighted(loss: torch.Tensor, batch: Batch) -> tuple[torch.Tensor, torch.Tensor]:
    """(weighted mean loss, total weight) of a per-example loss vector."""
    if loss.dim() != 1:
        raise RuntimeError(
            f"training_step must return a per-example loss vector, got shape {tuple(loss.shape)}"
        )
    w = batch.get("weight")
    if w is None:
        return loss.mean(), torch.tensor(float(loss.numel()), device=loss.device)
    w = w.to(loss.dtype)
    total = w.sum()
    return (loss * w).sum() / total.clamp_min(1e-12), total


def _shard_loss(
    module: nn.Module,
    step: StepFn,
    data: Mapping[str, torch.Tensor],
    idx: torch.Tensor,
    device: torch.device,
) -> tuple[torch.Tensor, torch.Tensor]:
    """(weighted loss sum, weight sum) of this process's share of a batch; an empty share
    gives a zero loss that still reaches every parameter (so every process reduces)."""
    if len(idx) == 0:
        zero = sum((p.sum() * 0.0 for p in module.parameters()), torch.zeros((), device=device))
        return zero, torch.zeros((), device=device)
    batch = _batch(data, idx, device)
    loss = step(module, batch)
    _weighted(loss, batch)  # checks the shape
    w = batch.get("weight")
    if w is None:
        return loss.sum(), torch.tensor(float(loss.numel()), device=loss.device)
    w = w.to(loss.dtype)
    return (loss * w).sum(), w.sum()


def _evaluate(
    module: nn.Module,
    step: StepFn,
    data: Mapping[str, torch.Tensor],
    batch_size: int,
    device: torch.device,
) -> float:
    module.eval()
    total, weight = 0.0, 0.0
    n = len(next(iter(data.values())))
    with torch.no_grad():
        for start in range(0, n, batch_size):
            batch = _batch(data, slice(start, start + batch_size), device)
            mean, w = _weighted(step(module, batch), batch)
            total += float(mean) * float(w)
            weight += float(w)
    return total / weight if weight else math.nan


def train_module(
    module: nn.Module,
    step: StepFn,
    train: Mapping[str, np.ndarray],
    *,
    valid: Mapping[str, np.ndarray] | None = None,
    epochs: int = 10,
    batch_size: int = 256,
    lr: float = 1e-3,
    weight_decay: float = 0.0,
    patience: int | None = None,
    device: torch.device | None = None,
    generator: torch.Generator | None = None,
    progress: ProgressCallback | None = None,
    on_epoch_start: Callable[[int], None] | None = None,
    name: str = "model",
) -> list[EpochReport]:
    """Train ``module`` in place with Adam; returns one :class:`EpochReport` per epoch.

    ``train``/``valid`` are dicts of equal-length arrays; an optional ``"weight"``
    array weights each example. Early stopping needs ``valid`` and ``patience``: it
    stops after ``patience`` epochs without a lower validation loss and restores the
    best weights. ``on_epoch_start(epoch)`` (1-based) runs before each epoch, for
    schedules that depend on it. Call inside :func:`torch_session` for seeding and
    thread limits.

    Under a ``torch.distributed`` process group (``logsieve train --ddp N``) each process
    takes its share of every batch and the gradients are combined into the one-process
    gradient of that batch (see :mod:`~logsieve.detectors.neural.distributed`).
    Inside ``distributed.checkpointing(DIR)`` every epoch is
    checkpointed and a restarted run resumes.
    """
    device = device or torch.device("cpu")
    data = _to_tensors(train)
    vdata = (
        _to_tensors(valid) if valid is not None and len(next(iter(valid.values()), ())) else None
    )
    n = len(next(iter(data.values())))
    if n == 0:
        raise LogsieveError(f"{name}: no training examples (windows too short or empty?)")
    module.to(device)
    rank, procs = world()
    broadcast_parameters(module)
    if procs > 1:  # same weights everywhere, but each process its own dropout masks
        torch.manual_seed(int(torch.randint(0, 2**31 - 1, (1,)).item()) + rank)
    optimizer = torch.optim.Adam(module.parameters(), lr=lr, weight_decay=weight_decay)
    history: list[EpochReport] = []
    best_loss, best_epoch, best_state = math.inf, 0, None
    ckpt = Checkpoint(name)
    fingerprint = {"n": n, "epochs": int(epochs), "batch_size": batch_size, "world": procs}
    first = 1
    resumed = ckpt.load(module, optimizer, fingerprint, generator)
    if resumed is not None:
        history = [EpochReport(**h) for h in resumed["history"]]
        best_loss, best_epoch = resumed["best_loss"], resumed["best_epoch"]
        best_state = resumed["best_state"]
        first = int(resumed["epoch"]) + 1 if not (history and history[-1].stopped) else epochs + 1
    for epoch in range(first, int(epochs) + 1):
        t0 = time.perf_counter()
        if on_epoch_start is not None:
            on_epoch_start(epoch)
        module.train()
        order = torch.randperm(n, generator=generator)
        total, weight = 0.0, 0.0
        for start in range(0, n, batch_size):
            idx = order[start : start + batch_size]
            optimizer.zero_grad(set_to_none=True)
            if procs == 1:
                batch = _batch(data, idx, device)
                loss, w = _weighted(step(module, batch), batch)
                loss.backward()
                total += float(loss.detach()) * float(w)
            else:
                loss_sum, w = _shard_loss(module, step, data, shard(idx, rank, procs), device)
                loss_sum.backward()
                average_gradients(module, float(w))
                total += float(loss_sum.detach())
            optimizer.step()
            weight += float(w)
        total, weight = all_sum([total, weight], device)
        train_loss = total / weight if weight else math.nan
        valid_loss = (
            _evaluate(module, step, vdata, batch_size, device) if vdata is not None else None
        )
        monitored = valid_loss if valid_loss is not None else train_loss
        if monitored < best_loss - 1e-6 * max(
            1.0, abs(best_loss) if math.isfinite(best_loss) else 1.0
        ):
            best_loss, best_epoch = monitored, epoch
            if vdata is not None and patience is not None:
                best_state = copy.deepcopy(module.state_dict())
        stop = bool(vdata is not None and patience is not None and epoch - best_epoch >= patience)
        report = EpochReport(
            epoch, int(epochs), train_loss, valid_loss, time.perf_counter() - t0, best_epoch, stop
        )
        history.append(report)
        ckpt.save(
            module,
            optimizer,
            {
                "fingerprint": fingerprint,
                "epoch": epoch,
                "best_loss": best_loss,
                "best_epoch": best_epoch,
                "history": [h.to_dict() for h in history],
            },
            best_state,
            generator,
        )
        logger.info(
            "%s epoch %d/%d: train_loss=%.4f%s (%.2fs)",
            name,
            epoch,
            epochs,
            train_loss,
            f" valid_loss={valid_loss:.4f}" if valid_loss is not None else "",
            report.seconds,
        )
        if progress is not None:
            progress(report)
        if stop:
            logger.info("%s: early stop after epoch %d (best epoch %d)", name, epoch, best_epoch)
            break
    if best_state is not None and best_epoch != history[-1].epoch:
        module.load_state_dict(best_state)
    module.eval()
    return history


def infer_batches(
    module: nn.Module,
    fn: Callable[[nn.Module, Batch], Any],
    arrays: Mapping[str, np.ndarray],
    *,
    batch_size: int,
    device: torch.device,
) -> list[Any]:
    """Run ``fn(module, batch)`` over ``arrays`` in order, without gradients; list of results."""
    data = _to_tensors(arrays)
    n = len(next(iter(data.values()))) if data else 0
    module.eval()
    out = []
    with torch.inference_mode():
        for start in range(0, n, batch_size):
            out.append(fn(module, _batch(data, slice(start, start + batch_size), device)))
    return out


class TorchDetector(BaseDetector):
    """Base class of neural detectors: shared parameters, fit/update/persistence plumbing.

    Parameters (besides :class:`BaseDetector`'s)
    ---------------------------------------------
    epochs : int, default 10
    batch_size : int, default 256
    lr : float, default 1e-3
        Adam learning rate.
    weight_decay : float, default 0.0
    patience : int or None, default 3
        Early stopping: epochs without a lower validation loss before stopping
        (only when there are validation windows); None trains all epochs.
    device : str, default "auto"
        "auto" (CUDA when available, else CPU), "cpu", "cuda", "cuda:N".
    num_threads : int or None, default None
        Torch CPU threads during fit/scoring (capped at the usable cores).

    Attributes
    ----------
    module_ : torch.nn.Module
        The trained network (on CPU after :meth:`load`; moved to ``device`` on use).
    history_ : list[dict]
        Per-epoch reports of the last fit (:class:`EpochReport` as dicts).
    """

    epochs: int = 10
    batch_size: int = 256
    lr: float = 1e-3
    weight_decay: float = 0.0
    patience: int | None = 3
    device: str = "auto"
    num_threads: int | None = None

    #: batch size used for scoring (inference has no gradients; larger is faster)
    score_batch_size: ClassVar[int] = 8192

    # ---- hooks for subclasses
    def _prepare_fit(self, train: pl.DataFrame) -> dict[str, np.ndarray]:
        """Fit data-dependent state (vocabulary, ...) and return training arrays."""
        raise NotImplementedError

    def _prepare(self, windows: pl.DataFrame) -> dict[str, np.ndarray]:
        """Training-style arrays for ``windows`` using the fitted state (validation, update)."""
        raise NotImplementedError

    def build_module(self) -> nn.Module:
        """The network, built from parameters and fitted state."""
        raise NotImplementedError

    def training_step(self, module: nn.Module, batch: Batch) -> torch.Tensor:
        """Per-example loss, shape (batch,)."""
        raise NotImplementedError

    # ---- plumbing
    def _validate_params(self) -> None:
        super()._validate_params()
        check_positive_ints(self, "epochs", "batch_size")
        if not float(self.lr) > 0:
            raise LogsieveError(f"lr must be positive, not {self.lr!r}")
        if self.patience is not None and int(self.patience) < 1:
            raise LogsieveError(f"patience must be >= 1 or None, not {self.patience!r}")
        resolve_device(self.device)

    def _session(self) -> contextlib.AbstractContextManager[tuple[torch.device, torch.Generator]]:
        return torch_session(self.random_state, self.device, self.num_threads)

    def _valid_for_loss(self, valid: pl.DataFrame) -> pl.DataFrame:
        """Validation windows used for the early-stopping loss (normal ones when unsupervised)."""
        if valid.height == 0 or self.requires_labels or self.include_anomalies:
            return valid
        labels = valid.get_column(LABEL)
        return valid.filter(labels.is_null() | (labels == 0))

    def _fit(
        self, train: pl.DataFrame, valid: pl.DataFrame, progress: ProgressCallback | None
    ) -> None:
        arrays = self._prepare_fit(train)
        vwin = self._valid_for_loss(valid)
        varrays = self._prepare(vwin) if vwin.height else None
        with self._session() as (device, generator):
            arrays, varrays = self._filter_training_rows(arrays, varrays, device, generator)
            module, reports = self._train_new(arrays, varrays, device, generator, progress)
        self.module_ = module
        self.history_ = [r.to_dict() for r in reports]

    def _train_new(
        self,
        arrays: Mapping[str, np.ndarray],
        varrays: Mapping[str, np.ndarray] | None,
        device: torch.device,
        generator: torch.Generator,
        progress: ProgressCallback | None = None,
        name: str | None = None,
    ) -> tuple[nn.Module, list[EpochReport]]:
        """A freshly built module trained on ``arrays`` with this detector's settings."""
        module = self.build_module()
        reports = train_module(
            module,
            self.training_step,
            arrays,
            valid=varrays,
            epochs=self.epochs,
            batch_size=self.batch_size,
            lr=self.lr,
            weight_decay=self.weight_decay,
            patience=self.patience,
            device=device,
            generator=generator,
            progress=progress,
            on_epoch_start=self._on_epoch_start,
            name=name or type(self).__name__,
        )
        return module, reports

    def _filter_training_rows(
        self,
        arrays: dict[str, np.ndarray],
        varrays: dict[str, np.ndarray] | None,
        device: torch.device,
        generator: torch.Generator,
    ) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray] | None]:
        """Hook: the training and validation rows actually used (default: all); see robust.py."""
        return arrays, varrays

    def _on_epoch_start(self, epoch: int) -> None:
        """Hook called before every training epoch (1-based); default: nothing."""

    def update(
        self,
        windows: pl.DataFrame,
        *,
        epochs: int = 5,
        lr: float | None = None,
        progress: ProgressCallback | None = None,
    ) -> Self:
        """Online update (DeepLog section 3.3): fine-tune on windows marked normal.

        Typical use: windows a user flagged as false positives. The vocabulary and
        the threshold are kept (keys never seen in training stay unknown).
        """
        from logsieve.features.sequence import check_windows

        self._check_fitted()
        windows = check_windows(windows)
        arrays = self._prepare(windows)
        with self._session() as (device, generator):
            reports = train_module(
                self.module_,
                self.training_step,
                arrays,
                epochs=epochs,
                batch_size=self.batch_size,
                lr=self.lr if lr is None else lr,
                weight_decay=self.weight_decay,
                patience=None,
                device=device,
                generator=generator,
                progress=progress,
                name=f"{type(self).__name__}.update",
            )
        self.history_ = [
            *getattr(self, "history_", []),
            *(dict(r.to_dict(), update=True) for r in reports),
        ]
        return self

    def _infer(
        self, fn: Callable[[nn.Module, Batch], Any], arrays: Mapping[str, np.ndarray]
    ) -> list[Any]:
        """Run ``fn`` over ``arrays`` in no-grad batches on the configured device."""
        with self._session() as (device, _):
            self.module_.to(device)
            return infer_batches(
                self.module_, fn, arrays, batch_size=self.score_batch_size, device=device
            )

    # ---- persistence
    def _get_state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        state, arrays = super()._get_state()
        for key, tensor in self.module_.state_dict().items():
            arrays[f"module.{key}"] = tensor.detach().cpu().contiguous().numpy()
        # wall-clock seconds are not part of the model: leaving them out keeps the saved
        # files of two identical trainings byte for byte equal
        state["history_"] = [
            {k: v for k, v in report.items() if k != "seconds"}
            for report in getattr(self, "history_", [])
        ]
        return state, arrays

    def _set_state(self, state: Mapping[str, Any], arrays: Mapping[str, np.ndarray]) -> None:
        """Restore base state, build the module and load its weights.

        Subclasses restore what :meth:`build_module` needs (e.g. ``vocab_``) BEFORE
        calling ``super()._set_state``.
        """
        super()._set_state(state, arrays)
        module = self.build_module()
        tensors = {
            k[len("module.") :]: torch.from_numpy(np.array(v))
            for k, v in arrays.items()
            if k.startswith("module.")
        }
        try:
            module.load_state_dict(tensors, strict=True)
        except RuntimeError as exc:
            first = str(exc).strip().splitlines()[0]
            raise LogsieveError(
                f"saved weights do not match the {type(self).__name__} network: {first}"
            ) from exc
        module.eval()
        self.module_ = module
        self.history_ = list(state.get("history_") or [])
