"""The grid: expand a config into cells, and the cell key that names each result.

The key hashes a cell's resolved settings (including the dataset's ``data_id`` and a
digest of the model's defaults for every parameter the config leaves unset).
"""

from __future__ import annotations

import hashlib
import inspect
import itertools
import logging
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from logsieve.errors import LogsieveError
from logsieve.evaluation.experiment.hashing import _hash_json
from logsieve.evaluation.experiment.specs import AspectSpec, DatasetSpec, ExperimentConfig

logger = logging.getLogger(__name__)


def _jsonable(value: Any) -> Any:
    if isinstance(value, tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    return value


@dataclass(frozen=True)
class Cell:
    """One computation: everything that determines its result (the key hashes it)."""

    dataset: str
    data_id: str
    grouping: str
    parsing_noise: str
    split: str
    train: float
    valid: float
    test: float | None
    class_ratio: float | None
    class_ratio_scope: str
    label_noise: float
    robust: str
    model: str
    params: tuple[tuple[str, Any], ...]
    seed: int
    early: bool = False
    early_method: str = "auto"
    early_max_prefix: int = 0
    #: digest of the model's defaults for the parameters not in ``params`` (see _defaults_digest)
    defaults: str = ""

    def settings(self) -> dict[str, Any]:
        """JSON-able resolved settings (what the key hashes, plus nothing else)."""
        out = {k: _jsonable(v) for k, v in asdict(self).items() if k != "params"}
        out["params"] = {k: _jsonable(v) for k, v in self.params}
        return out

    @property
    def key(self) -> str:
        return _hash_json(self.settings())[:20]

    @property
    def data_key(self) -> tuple[str, str, str, int | None]:
        """Which prepared windows the cell reads (the noise realisation depends on the seed)."""
        return (
            self.dataset,
            self.grouping,
            self.parsing_noise,
            None if self.parsing_noise == "none" else self.seed,
        )

    def label(self) -> str:
        bits = [self.model, self.dataset, self.grouping, self.split, f"train={self.train:g}"]
        if self.class_ratio is not None:
            bits.append(f"ratio={self.class_ratio:g}")
        if self.label_noise:
            bits.append(f"label_noise={self.label_noise:g}")
        if self.robust != "none":
            bits.append(f"robust={self.robust}")
        if self.parsing_noise != "none":
            bits.append(f"parsing={self.parsing_noise}")
        bits.append(f"seed={self.seed}")
        return " ".join(bits)


def _defaults_digest(model: str, configured: Iterable[str]) -> str:
    """Digest of ``model``'s constructor defaults for the parameters not in ``configured``.

    Part of every cell key: a cell finished before such a default changed (a new default
    number of folds, say) is computed again instead of being reused. ``random_state`` is
    left out: the cell's seed sets it.
    """
    from logsieve.detectors.registry import get_detector_class

    skip = {"self", "random_state", *configured}
    signature = inspect.signature(get_detector_class(model).__init__)
    defaults = {
        name: _jsonable(p.default) for name, p in signature.parameters.items() if name not in skip
    }
    return _hash_json(defaults)[:16]


def _resolved_params(
    config: ExperimentConfig, aspect: AspectSpec, dataset: DatasetSpec, model: str
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for layer in (config.params, dataset.params, aspect.params):
        out.update(layer.get(model, {}))
    return out


def plan_cells(
    config: ExperimentConfig, only: Sequence[str] | None = None
) -> list[tuple[str, Cell]]:
    """Every (aspect, cell) of the grid, in a data-friendly order.

    ``only`` restricts to the named aspects. Cells asking robust training of a model
    without a ``robust`` parameter are left out (logged); for the others the method
    becomes the model's ``robust`` parameter.
    """
    from logsieve.detectors.registry import get_detector_class

    if only:
        unknown = [a for a in only if a not in config.aspects]
        if unknown:
            raise LogsieveError(
                f"unknown aspect {unknown[0]!r}; the config defines: {', '.join(config.aspects)}"
            )
    out: list[tuple[str, Cell]] = []
    skipped = 0
    for name, asp in config.aspects.items():
        if only and name not in only:
            continue
        for ds_name in asp.datasets:
            ds = config.datasets[ds_name]
            for (
                grouping,
                noise,
                split,
                train,
                ratio,
                lnoise,
                robust,
                model,
                seed,
            ) in itertools.product(
                asp.grouping[ds_name],
                asp.parsing_noise,
                asp.split,
                asp.train,
                asp.class_ratio,
                asp.label_noise,
                asp.robust,
                asp.models,
                asp.seeds,
            ):
                if (model, ds_name) in asp.incompatible:
                    skipped += 1
                    continue
                params = _resolved_params(config, asp, ds, model)
                has_robust = "robust" in get_detector_class(model)._get_param_names()
                if robust != "none":
                    if not has_robust:
                        skipped += 1
                        continue
                    params["robust"] = robust
                out.append(
                    (
                        name,
                        Cell(
                            dataset=ds_name,
                            data_id=ds.data_id,
                            grouping=grouping,
                            parsing_noise=noise,
                            split=split,
                            train=train,
                            valid=asp.valid,
                            test=asp.test,
                            class_ratio=ratio,
                            class_ratio_scope=asp.class_ratio_scope
                            if ratio is not None
                            else "train",
                            label_noise=lnoise,
                            robust=robust,
                            model=model,
                            params=tuple(sorted(params.items())),
                            seed=seed,
                            early=asp.early,
                            early_method=asp.early_method if asp.early else "auto",
                            early_max_prefix=asp.early_max_prefix if asp.early else 0,
                            defaults=_defaults_digest(model, params),
                        ),
                    )
                )
    if skipped:
        logger.info(
            "%d cells left out: robust training asked of a model without a robust option, "
            "or a model that cannot read the dataset (raw-text model on sequences, "
            "semantic model without templates)",
            skipped,
        )
    return out


def _seed_for(seed: int, what: str) -> int:
    """A seed for one random step of a cell, derived from the cell seed (independent streams)."""
    return int.from_bytes(hashlib.sha256(f"{seed}:{what}".encode()).digest()[:4], "little")
