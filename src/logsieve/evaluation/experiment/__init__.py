"""The evaluation study as one command: a TOML grid of cells, run resumably into a run directory.

``logsieve experiment CONFIG.toml -o RUN_DIR`` runs every *cell* of the grid that is
not finished yet; ``logsieve report RUN_DIR`` turns the results into ``report.md`` /
``report.html`` (:mod:`logsieve.evaluation.report`). Every key of the config file is
documented in ``experiments/README.md``; in short::

    [run]                      # name, description, seeds, valid, jobs
    [params.MODEL]             # model parameters for every aspect
    [datasets.NAME]            # a raw log (log, format, labels, ...) or pre-parsed sequences
    [datasets.NAME.params.MODEL]
    [aspects.NAME]             # one question of the study: a grid over the knobs below
    [aspects.NAME.params.MODEL]

A cell is one combination of (dataset, grouping, parsing noise, split method, train
fraction, class ratio, label noise, robust training, model, seed) inside an aspect.

What happens in a cell (nothing is chosen on the test part):

1. the windows of (dataset, grouping, parsing noise) come from the data cache in
   ``RUN_DIR/data/`` (parsed and grouped once, Parquet);
2. :func:`logsieve.grouping.split_windows` cuts train / validation / test
   (chronologically, or at random with the cell's seed); anomalous windows stay in
   train and validation, the detectors themselves train unsupervised and
   semi-supervised models on the normal windows (their contract);
3. optional class-ratio resampling of the training part
   (:mod:`logsieve.evaluation.resample`) and label noise on the training and
   validation labels (:func:`logsieve.evaluation.noise.flip_labels`); test labels
   stay clean;
4. ``create_detector(model, random_state=seed, **params).fit(train, valid=valid,
   templates=...)``: thresholds, top-g and early stopping come from the validation
   part; raw-text models get ``messages`` attached from the events table;
5. the test part is scored once; metrics (:func:`logsieve.evaluation.metrics.evaluate`)
   on the labelled test windows; optional early detection
   (:mod:`logsieve.evaluation.early`).

Store (resumable): a finished cell is one row in ``RUN_DIR/cells/<key>.parquet``,
written atomically after its test scores (``scores/<key>.parquet``) and early-detection
list (``early/<key>.parquet``). The key hashes the cell's resolved settings plus the
checksum of the dataset's input files and the model's defaults for every parameter the
config leaves unset, so identical cells of two aspects are computed once, a rerun skips
every finished cell, and a cell whose model default has changed since is computed again
rather than reused. ``plan.json`` lists the (aspect, key)
pairs of the current config; ``results.parquet`` is their rows (written at the end of
every run, also an interrupted one, and by ``logsieve report``).

Modules: :mod:`.specs` (config objects), :mod:`.readers` (typed TOML readers, grouping
strings), :mod:`.config` (:func:`load_config`), :mod:`.hashing` (the hashes behind
keys and data ids), :mod:`.plan` (:class:`Cell`, :func:`plan_cells`), :mod:`.data`
(the data cache), :mod:`.store` (cell rows, ``plan.json``), :mod:`.cell` (one cell),
:mod:`.results` (:func:`collect_results`, :class:`RunSummary`) and :mod:`.runner`
(:func:`run_experiment`, worker processes).
"""

from __future__ import annotations

from logsieve.evaluation.experiment.cell import EARLY_NORMAL_MAX as EARLY_NORMAL_MAX
from logsieve.evaluation.experiment.cell import run_cell as run_cell
from logsieve.evaluation.experiment.cell import versions as versions
from logsieve.evaluation.experiment.config import load_config
from logsieve.evaluation.experiment.data import DataStore as DataStore
from logsieve.evaluation.experiment.data import Prepared as Prepared
from logsieve.evaluation.experiment.data import windows_checksum as windows_checksum
from logsieve.evaluation.experiment.plan import Cell, plan_cells
from logsieve.evaluation.experiment.readers import parse_grouping
from logsieve.evaluation.experiment.results import RunSummary, collect_results
from logsieve.evaluation.experiment.runner import CellEvent, run_experiment
from logsieve.evaluation.experiment.specs import EARLY_METHODS as EARLY_METHODS
from logsieve.evaluation.experiment.specs import HDFS_BLOCK_PATTERN as HDFS_BLOCK_PATTERN
from logsieve.evaluation.experiment.specs import ORDERS as ORDERS
from logsieve.evaluation.experiment.specs import SCOPES as SCOPES
from logsieve.evaluation.experiment.specs import SPLITS as SPLITS
from logsieve.evaluation.experiment.specs import AspectSpec, DatasetSpec, ExperimentConfig

__all__ = [
    "AspectSpec",
    "Cell",
    "CellEvent",
    "DatasetSpec",
    "ExperimentConfig",
    "RunSummary",
    "collect_results",
    "load_config",
    "parse_grouping",
    "plan_cells",
    "run_experiment",
]
