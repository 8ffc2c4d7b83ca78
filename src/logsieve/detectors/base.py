"""The detector contract every logsieve model follows (pyod / scikit-learn spirit).

Writing a detector
------------------
Subclass :class:`BaseDetector` (or :class:`logsieve.detectors.neural.trainer.TorchDetector`
for a neural model) and declare the hyperparameters as annotated class attributes
with defaults. Every subclass is turned into a keyword-only dataclass automatically,
so the generated ``__init__`` only stores parameters (no logic, no device choice, no
seeding) and :meth:`get_params` reads its signature. Rules:

- class-level metadata is annotated ``ClassVar`` (``input_kind``, ``requires_labels``,
  ``description``, ``citation``); anything else annotated is a parameter;
- parameter defaults are immutable (numbers, strings, None, tuples);
- fitted attributes end in ``_`` and are set only by :meth:`fit` (never annotated at
  class level);
- implement :meth:`_fit` and :meth:`_score`; optionally :meth:`_natural_threshold`,
  :meth:`explain`, :meth:`_get_state` / :meth:`_set_state` (persistence), and
  :meth:`_test_params` (tiny settings the contract tests use);
- register it with :func:`logsieve.detectors.registry.register_detector` and add a
  line to the registry's static table.

Conventions
-----------
- Input: a windows table (:data:`logsieve.schema.WINDOW_SCHEMA`, ``event_ids`` list[str]).
- Scores: one float per window, HIGHER = MORE ANOMALOUS. Windows with the same
  ``event_ids`` are scored once (:attr:`BaseDetector.score_key`) and the score is
  mapped back, which matters on repetitive data such as HDFS.
- Predictions: ``1`` (anomaly) when ``score > threshold_``, else ``0``.
- The threshold is chosen on VALIDATION windows, never on test data: the ``valid=``
  table given to :meth:`fit`, else the chronologically last ``valid_fraction`` of the
  training windows. Strategies (``threshold`` parameter): ``"auto"`` (the model's
  natural rule when it has one, e.g. DeepLog's top-g, else ``"quantile"``),
  ``"quantile"`` (the ``1 - contamination`` quantile of the scores of normal
  validation windows, i.e. ``contamination`` is the tolerated false-alarm rate),
  ``"best_f1"`` (maximise F1 on a labelled validation set), or a number (fixed).
- Labels: unsupervised / semi-supervised models train on windows labelled 0 or null
  unless ``include_anomalies=True``; supervised models (``requires_labels``) need
  the ``label`` column (or ``y``).
"""

from __future__ import annotations

import abc
import contextlib
import dataclasses
import functools
import inspect
import logging
import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar, Literal, Self, dataclass_transform

import numpy as np
import polars as pl

from logsieve.detectors.known_windows import KnownWindows
from logsieve.detectors.persistence import MODEL_FILE, jsonable, read_model_dir, write_model_dir
from logsieve.detectors.thresholds import (
    best_f1_threshold,
    check_threshold,
    quantile_threshold,
)
from logsieve.errors import LogsieveError, NotFittedError
from logsieve.features.sequence import check_windows, distinct_windows
from logsieve.schema import EVENT_IDS, LABEL, LINE_IDS, START, WINDOW_ID

logger = logging.getLogger(__name__)

InputKind = Literal["sequence", "counts", "semantic", "raw"]
#: top-level model.json keys holding these fitted attributes (readable without the state)
_HOISTED = {"vocabulary": "vocab_", "templates": "templates_"}
ProgressCallback = Callable[[Any], None]

__all__ = [
    "BaseDetector",
    "InputKind",
    "ProgressCallback",
    "check_choice",
    "check_positive_ints",
    "explanations_by_row",
    "resolve_labels",
    "resolve_seed",
    "split_valid",
]


def check_positive_ints(obj: Any, *names: str, minimum: int = 1) -> None:
    """Raise :class:`LogsieveError` unless each attribute ``names`` is an int >= ``minimum``.

    The one integer check of every detector's parameters (bools are not integers here).
    """
    for key in names:
        value = getattr(obj, key)
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
            what = "a positive integer" if minimum == 1 else f"an integer >= {minimum}"
            raise LogsieveError(f"{key} must be {what}, not {value!r}")


def check_choice(obj: Any, name: str, choices: Sequence[str]) -> None:
    """Raise :class:`LogsieveError` unless attribute ``name`` of ``obj`` is one of ``choices``."""
    value = getattr(obj, name)
    if value not in choices:
        raise LogsieveError(f"{name} must be one of {', '.join(map(repr, choices))}, not {value!r}")


def resolve_seed(random_state: int | None, *, default: int | None = None) -> int:
    """The int seed every random step of a fit uses (the one place seeds are chosen).

    ``random_state`` itself when given; when None, ``default`` if set, else a fresh seed
    from OS entropy (below 2**31, which scikit-learn, torch and gensim all accept).
    """
    if random_state is not None:
        return int(random_state)
    if default is not None:
        return int(default)
    return int(np.random.SeedSequence().generate_state(1)[0] % (2**31))


def resolve_labels(windows: pl.DataFrame, y: Any = None, what: str = "windows") -> np.ndarray:
    """Window labels as float64 (0.0, 1.0, nan = unknown) from ``y`` or the ``label`` column."""
    if y is not None:
        arr = pl.Series("y", y, strict=False).cast(pl.Float64).to_numpy()
        if arr.shape != (windows.height,):
            raise LogsieveError(f"y has {arr.size} labels for {windows.height} {what}")
    elif LABEL in windows.columns:
        arr = windows.get_column(LABEL).cast(pl.Float64).to_numpy()
    else:
        arr = np.full(windows.height, np.nan)
    arr = np.asarray(arr, dtype=np.float64)
    known = arr[~np.isnan(arr)]
    if known.size and not np.isin(known, (0.0, 1.0)).all():
        raise LogsieveError(f"labels of {what} must be 0, 1 or null")
    return arr


def split_valid(windows: pl.DataFrame, fraction: float) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Chronological split: the last ``fraction`` of windows (by ``start``, else row order).

    Windows with a null ``start`` keep their row order relative to each other and sort
    first. Returns ``(train, valid)``; ``valid`` is empty when ``fraction`` is 0 or the
    table too small for one validation window.
    """
    n_valid = int(math.floor(windows.height * fraction))
    if n_valid < 1 or n_valid >= windows.height:
        return windows, windows.head(0)
    ordered = windows
    if START in windows.columns and windows.get_column(START).null_count() < windows.height:
        ordered = windows.sort(START, nulls_last=False, maintain_order=True)
    cut = windows.height - n_valid
    return ordered.head(cut), ordered.slice(cut)


@dataclass_transform(kw_only_default=True, eq_default=False)
@dataclasses.dataclass(kw_only=True, eq=False)
class BaseDetector(abc.ABC):
    """Base class of all window anomaly detectors.

    Parameters
    ----------
    threshold : {"auto", "quantile", "best_f1"} or float, default "auto"
        How :attr:`threshold_` is chosen (see the module docstring).
    contamination : float, default 0.01
        For ``"quantile"``: the share of normal validation windows allowed above
        the threshold.
    valid_fraction : float, default 0.1
        Share of the training windows (the chronologically last ones) held out for
        validation when no ``valid=`` table is given to :meth:`fit`; 0 disables.
    include_anomalies : bool, default False
        Unsupervised models: also train on windows labelled 1 (ignored by
        supervised models, which always use every labelled window).
    random_state : int or None, default 0
        Seed for everything random inside :meth:`fit`; None draws a fresh seed.

    Attributes
    ----------
    threshold_ : float
        Decision threshold: ``predict`` is ``decision_function > threshold_``.
    threshold_source_ : str
        ``"model"``, ``"fixed"``, ``"valid"`` (chosen on validation windows) or
        ``"train"`` (no validation window was available; logged as a warning).
    templates_ : dict[str, str]
        Event id -> template, when given to :meth:`fit` (used in explanations).
    n_train_windows_ : int
        Windows the model was trained on (after label filtering).
    n_dropped_train_windows_ : int
        Training windows the label filter left out (reported in training summaries).
    known_windows_ : KnownWindows or None
        Window contents an operator labelled through feedback (None after :meth:`fit`);
        see :mod:`logsieve.detectors.known_windows`.
    """

    # --- class metadata (read by the registry and `logsieve models`) ---
    name: ClassVar[str] = ""
    input_kind: ClassVar[InputKind] = "sequence"
    requires_labels: ClassVar[bool] = False
    description: ClassVar[str] = ""
    citation: ClassVar[str] = ""
    #: windows with equal values in this column are scored once; None scores every row
    score_key: ClassVar[str | None] = EVENT_IDS

    # --- parameters shared by every detector ---
    threshold: str | float = "auto"
    contamination: float = 0.01
    valid_fraction: float = 0.1
    include_anomalies: bool = False
    random_state: int | None = 0

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        # make every subclass a keyword-only dataclass: the constructor stores parameters only
        dataclasses.dataclass(cls, kw_only=True, eq=False)
        if "explain" in cls.__dict__:  # explanations agree with the operator's labels
            cls.explain = _with_known_windows(cls.__dict__["explain"])  # type: ignore[method-assign]

    # ------------------------------------------------------------------ params
    @classmethod
    def _get_param_names(cls) -> list[str]:
        """Constructor parameter names, from the signature (scikit-learn style)."""
        sig = inspect.signature(cls.__init__)
        names = []
        for p in sig.parameters.values():
            if p.name == "self":
                continue
            if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
                raise TypeError(f"{cls.__name__}.__init__ must not take *args or **kwargs")
            names.append(p.name)
        return sorted(names)

    def get_params(self, deep: bool = False) -> dict[str, Any]:
        """Parameters of this detector (the constructor arguments)."""
        return {name: getattr(self, name) for name in self._get_param_names()}

    def set_params(self, **params: Any) -> Self:
        """Set parameters; unknown names raise :class:`LogsieveError`. Returns self."""
        valid = set(self._get_param_names())
        for key, value in params.items():
            if key not in valid:
                raise LogsieveError(
                    f"unknown parameter {key!r} for {type(self).__name__}; "
                    f"valid: {', '.join(sorted(valid))}"
                )
            setattr(self, key, value)
        return self

    def clone(self) -> Self:
        """A new unfitted detector with the same parameters."""
        return type(self)(**self.get_params())

    @classmethod
    def _test_params(cls) -> dict[str, Any]:
        """Tiny, fast parameters for the contract tests (override in subclasses)."""
        return {}

    # ------------------------------------------------------------------ fitting
    def fit(
        self,
        windows: pl.DataFrame,
        y: Any = None,
        *,
        valid: pl.DataFrame | None = None,
        templates: Mapping[str, str] | pl.DataFrame | None = None,
        progress: ProgressCallback | None = None,
    ) -> Self:
        """Fit on a windows table and choose the threshold on validation windows.

        Parameters
        ----------
        windows : pl.DataFrame
            Training windows (``event_ids`` and, for label use, ``label``).
        y : array-like of 0/1/None, optional
            Labels overriding the ``label`` column.
        valid : pl.DataFrame, optional
            Validation windows (threshold, early stopping). When None, the last
            ``valid_fraction`` of ``windows`` is split off chronologically.
        templates : mapping event id -> template, or a DataFrame with ``event_id`` and
            ``template`` columns, optional
            Stored with the model as ``templates_`` (set before :meth:`_fit`, so
            semantic models can embed them); explanations show them.
        progress : callable, optional
            Called with progress reports (neural models: one per epoch). The library
            never prints; the CLI turns these into a progress bar.

        Returns
        -------
        self
        """
        self._validate_params()
        windows = check_windows(windows)
        labels = resolve_labels(windows, y)
        windows = windows.with_columns(pl.Series(LABEL, labels, nan_to_null=True).cast(pl.Int8))
        if valid is None:
            train, valid_w = split_valid(windows, self.valid_fraction)
        else:
            valid_w = check_windows(valid, "validation windows")
            valid_w = valid_w.with_columns(
                pl.Series(LABEL, resolve_labels(valid_w), nan_to_null=True).cast(pl.Int8)
            )
            train = windows
        selected = self._select_training(train)
        self.n_dropped_train_windows_ = int(train.height - selected.height)
        train = selected
        if train.height == 0:
            raise LogsieveError(
                "no training windows left (unsupervised models train on windows labelled 0 or null)"
            )
        self.templates_ = _templates_dict(templates)
        logger.info(
            "%s: fitting on %d windows (%d validation)",
            type(self).__name__,
            train.height,
            valid_w.height,
        )
        try:
            self._fit(train, valid_w, progress)
        except (MemoryError, RuntimeError) as exc:
            if not _is_allocation_failure(exc):
                raise
            raise LogsieveError(
                f"{self.name or type(self).__name__}: out of memory building or training the "
                f"model ({_first_line(exc)[:120]}); choose smaller size parameters"
            ) from exc
        self.n_train_windows_ = int(train.height)
        self.known_windows_: KnownWindows | None = None
        self._fit_threshold(train, valid_w)
        return self

    def _select_training(self, train: pl.DataFrame) -> pl.DataFrame:
        labels = train.get_column(LABEL)
        if self.requires_labels:
            train = train.filter(labels.is_not_null())
            present = set(train.get_column(LABEL).unique().to_list())
            if present != {0, 1}:
                raise LogsieveError(
                    f"{self.name or type(self).__name__} is supervised: "
                    "training windows need labels 0 and 1 "
                    f"(found {sorted(present) or 'none'})"
                )
            return train
        if self.include_anomalies:
            return train
        return train.filter(labels.is_null() | (labels == 0))

    def _validate_params(self) -> None:
        self._check_param_types()
        check_threshold(self.threshold)
        if not 0.0 <= float(self.contamination) < 1.0:
            raise LogsieveError(f"contamination must be in [0, 1), not {self.contamination!r}")
        if not 0.0 <= float(self.valid_fraction) < 1.0:
            raise LogsieveError(f"valid_fraction must be in [0, 1), not {self.valid_fraction!r}")

    def _check_param_types(self) -> None:
        """Each parameter (unless None) has the JSON type of its default: a number where the
        default is a number, true/false for a flag, a string or a number for a named choice;
        ``random_state`` and ``num_threads`` are integers. Catches a wrong-typed ``--set``
        value or an edited model.json before they fail deep inside a fit or a score."""
        for p in inspect.signature(type(self).__init__).parameters.values():
            value = getattr(self, p.name, None)
            if p.name == "self" or value is None:
                continue
            default, number = p.default, (int, float, np.integer, np.floating)
            if p.name in ("random_state", "num_threads"):
                ok = isinstance(value, (int, np.integer)) and not isinstance(value, bool)
                ok = ok and (p.name == "random_state" or value >= 1)
                want = "an integer" if p.name == "random_state" else "a positive integer"
            elif isinstance(default, bool):
                ok, want = isinstance(value, bool), "true or false"
            elif isinstance(default, number):
                ok, want = isinstance(value, number) and not isinstance(value, bool), "a number"
            elif isinstance(default, str):
                ok = isinstance(value, (str, *number)) and not isinstance(value, bool)
                want = "a string or a number"
            else:
                continue
            if not ok:
                raise LogsieveError(f"{p.name} must be {want}, not {value!r}")

    def _natural_threshold(self) -> float | None:
        """The model's own decision rule as a threshold (None: use the quantile rule)."""
        return None

    def _fit_threshold(self, train: pl.DataFrame, valid: pl.DataFrame) -> None:
        strategy = self.threshold
        if not isinstance(strategy, str):
            self.threshold_, self.threshold_source_ = float(strategy), "fixed"
            return
        if strategy == "auto":
            natural = self._natural_threshold()
            if natural is not None:
                self.threshold_, self.threshold_source_ = float(natural), "model"
                return
            strategy = "quantile"
        labels = valid.get_column(LABEL) if valid.height else None
        if strategy == "best_f1":
            known = valid.filter(labels.is_not_null()) if labels is not None else valid
            if known.height == 0 or known.get_column(LABEL).n_unique() < 2:
                raise LogsieveError(
                    "threshold='best_f1' needs validation windows labelled both 0 and 1"
                )
            scores = self._score_distinct(known)
            self.threshold_, _ = best_f1_threshold(known.get_column(LABEL).to_numpy(), scores)
            self.threshold_source_ = "valid"
            return
        normal = valid.filter(labels.is_null() | (labels == 0)) if labels is not None else valid
        source = "valid"
        if normal.height == 0:
            logger.warning(
                "%s: no normal validation windows; threshold taken from the training "
                "windows' scores "
                "(optimistic). Pass valid= or valid_fraction > 0.",
                type(self).__name__,
            )
            normal, source = train, "train"
        self.threshold_ = quantile_threshold(self._score_distinct(normal), self.contamination)
        self.threshold_source_ = source

    @abc.abstractmethod
    def _fit(
        self, train: pl.DataFrame, valid: pl.DataFrame, progress: ProgressCallback | None
    ) -> None:
        """Learn from ``train`` (already label-filtered; ``label`` column is Int8).

        ``valid`` holds the validation windows (possibly empty; all labels).
        """

    # ------------------------------------------------------------------ scoring
    @abc.abstractmethod
    def _score(self, windows: pl.DataFrame) -> np.ndarray:
        """Scores of ``windows`` (distinct by :attr:`score_key`), higher = more anomalous."""

    def _check_fitted(self) -> None:
        if not hasattr(self, "threshold_"):
            raise NotFittedError(f"this {type(self).__name__} is not fitted yet: call fit() first")

    def __sklearn_is_fitted__(self) -> bool:
        return hasattr(self, "threshold_")

    def _score_distinct(self, windows: pl.DataFrame) -> np.ndarray:
        if windows.height == 0:
            return np.zeros(0, dtype=np.float64)
        if self.score_key is None:
            return np.asarray(self._score(windows), dtype=np.float64)
        distinct, inverse, _ = distinct_windows(windows, self.score_key)
        scores = np.asarray(self._score(distinct), dtype=np.float64)
        if scores.shape != (distinct.height,):
            raise RuntimeError(
                f"{type(self).__name__}._score returned shape {scores.shape} "
                f"for {distinct.height} windows"
            )
        return scores[inverse]

    def decision_function(self, windows: pl.DataFrame) -> np.ndarray:
        """Anomaly score of every window: float64, shape (n_windows,), higher = more anomalous.

        A window whose content an operator labelled (:attr:`known_windows_`, see
        :mod:`logsieve.detectors.known_windows`) scores on its label's side of the threshold.
        """
        self._check_fitted()
        windows = check_windows(windows)
        scores = self._score_distinct(windows)
        known = getattr(self, "known_windows_", None)
        return known.apply(scores, windows, self.threshold_) if known else scores

    def predict(self, windows: pl.DataFrame) -> np.ndarray:
        """0/1 (int8) per window: 1 when the score is above :attr:`threshold_`."""
        return (self.decision_function(windows) > self.threshold_).astype(np.int8)

    def fit_predict(self, windows: pl.DataFrame, y: Any = None, **fit_kwargs: Any) -> np.ndarray:
        """``fit(windows, y, **fit_kwargs).predict(windows)``."""
        return self.fit(windows, y, **fit_kwargs).predict(windows)

    @contextlib.contextmanager
    def reusing_scores(self) -> Iterator[None]:
        """Within this block the detector may reuse what it computed for earlier calls (e.g.
        :meth:`explain` right after :meth:`decision_function` on the same windows); the model
        must not change meanwhile. The base version reuses nothing."""
        yield

    def explain(self, windows: pl.DataFrame, top: int | None = None) -> list[dict[str, Any]]:
        """One JSON-able explanation per window (models override with richer content).

        The base version gives ``window_id``, ``score``, ``threshold`` and
        ``is_anomaly``; ``top`` is model specific and unused here.
        """
        windows = check_windows(windows)
        scores = self.decision_function(windows)
        ids = _window_ids(windows)
        return [
            {
                "window_id": wid,
                "score": float(s),
                "threshold": self.threshold_,
                "is_anomaly": bool(s > self.threshold_),
            }
            for wid, s in zip(ids, scores, strict=True)
        ]

    # ------------------------------------------------------------------ persistence
    def _get_state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        """Fitted state: a JSON-able dict and named arrays (subclasses extend via super())."""
        state = {
            "threshold_": self.threshold_,
            "threshold_source_": self.threshold_source_,
            "templates_": dict(self.templates_),
            "n_train_windows_": self.n_train_windows_,
        }
        known = getattr(self, "known_windows_", None)
        if known:
            state["known_windows_"] = known.to_state()
        return state, {}

    def _set_state(self, state: Mapping[str, Any], arrays: Mapping[str, np.ndarray]) -> None:
        """Restore what :meth:`_get_state` returned (subclasses extend via super())."""
        self.threshold_ = float(state["threshold_"])
        self.threshold_source_ = str(state["threshold_source_"])
        self.templates_ = dict(state.get("templates_") or {})
        self.n_train_windows_ = int(state["n_train_windows_"])
        known = state.get("known_windows_")
        self.known_windows_ = KnownWindows.from_state(known) if known else None

    def save(self, path: str | Path) -> Path:
        """Write this fitted detector to directory ``path`` (``model.json`` + weights).

        ``model.json`` holds the registry ``name``, the constructor ``params``, the
        ``threshold``, the ``vocabulary`` and ``templates`` when the model has them and
        the rest of the JSON-able fitted ``state``; the arrays go to the weights file
        (see :mod:`logsieve.detectors.persistence`).
        """
        self._check_fitted()
        state, arrays = self._get_state()
        state = dict(state)
        doc: dict[str, Any] = {
            "name": self.name,
            "class": f"{type(self).__module__}:{type(self).__qualname__}",
            "params": jsonable(self.get_params(), "params"),
            "threshold": state.get("threshold_"),
        }
        for key, attr in _HOISTED.items():
            if attr in state:
                doc[key] = state.pop(attr)
        doc["state"] = jsonable(state, "fitted state")
        out = write_model_dir(path, doc, arrays)
        logger.info("saved %s to %s (%d arrays)", self.name, out, len(arrays))
        return out

    @classmethod
    def load(cls, path: str | Path) -> Self:
        """Load a detector saved with :meth:`save` (checks the weights' size and hash).

        The saved detector must be of this class or of an imported subclass (matched by
        registry name); :func:`logsieve.detectors.registry.load_detector` loads any.
        """
        path = Path(path)
        doc, arrays = read_model_dir(path)
        name = str(doc["name"])
        target = cls._class_named(name)
        if target is None:
            raise LogsieveError(
                f"{path}: holds a {name!r} detector, not a {cls.__name__} "
                "(logsieve.detectors.load_detector loads any saved detector)"
            )
        return target._restore(path, doc, arrays)

    @classmethod
    def _class_named(cls, name: str) -> type[Self] | None:
        """``cls`` or its nearest imported subclass whose registry name is ``name``."""
        level: list[type[Self]] = [cls]
        while level:
            for klass in level:
                if klass.name == name and not inspect.isabstract(klass):
                    return klass
            level = [sub for klass in level for sub in klass.__subclasses__()]
        return None

    @classmethod
    def _restore(cls, path: Path, doc: Mapping[str, Any], arrays: Mapping[str, np.ndarray]) -> Self:
        """A detector of this class from a read model directory (see :meth:`load`)."""
        manifest = path / MODEL_FILE
        params = doc["params"]
        if not isinstance(params, dict):
            raise LogsieveError(f"{manifest}: 'params' must be an object")
        unknown = sorted(set(params) - set(cls._get_param_names()))
        if unknown:
            raise LogsieveError(
                f"{manifest}: unknown parameter(s) {', '.join(unknown)} for {cls.__name__}"
            )
        try:
            detector = cls(**params)  # a saved None (e.g. random_state=None) stays None
            detector._validate_params()
        except (LogsieveError, TypeError, ValueError) as exc:
            raise LogsieveError(f"{manifest}: bad parameters ({exc})") from exc
        state = dict(doc.get("state") or {})
        for key, attr in _HOISTED.items():
            if key in doc:
                state[attr] = doc[key]
        try:
            detector._set_state(state, arrays)
        except LogsieveError:
            raise
        except (KeyError, ValueError, TypeError, RuntimeError, IndexError, AttributeError) as exc:
            raise LogsieveError(
                f"{path}: saved state does not fit a {cls.__name__} ({type(exc).__name__}: {exc})"
            ) from exc
        logger.info("loaded %s from %s", doc["name"], path)
        return detector


def _with_known_windows(
    explain: Callable[..., list[dict[str, Any]]],
) -> Callable[..., list[dict[str, Any]]]:
    """``explain`` whose scores are clamped like :meth:`BaseDetector.decision_function`."""

    @functools.wraps(explain)
    def wrapped(self: BaseDetector, windows: pl.DataFrame, *args: Any, **kw: Any) -> Any:
        out = explain(self, windows, *args, **kw)
        known = getattr(self, "known_windows_", None)
        if known and isinstance(windows, pl.DataFrame):
            known.annotate(out, windows)
        return out

    return wrapped


def _is_allocation_failure(exc: BaseException) -> bool:
    """A MemoryError, or torch's allocator failing (CPU or CUDA out of memory)."""
    if isinstance(exc, MemoryError):
        return True
    text = str(exc).lower()
    return "can't allocate memory" in text or "out of memory" in text


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _templates_dict(templates: Mapping[str, str] | pl.DataFrame | None) -> dict[str, str]:
    if templates is None:
        return {}
    if isinstance(templates, pl.DataFrame):
        if not {"event_id", "template"} <= set(templates.columns):
            raise LogsieveError("templates table needs 'event_id' and 'template' columns")
        return dict(
            zip(
                templates.get_column("event_id").to_list(),
                templates.get_column("template").to_list(),
                strict=True,
            )
        )
    return {str(k): str(v) for k, v in templates.items()}


def explanations_by_row(
    detector: BaseDetector,
    windows: pl.DataFrame,
    inverse: np.ndarray,
    scores: np.ndarray,
    details: Mapping[int, list[dict[str, Any]]] | Sequence[list[dict[str, Any]]],
    key: str,
    *,
    extra: Sequence[Mapping[str, Any]] | None = None,
    nested: str | None = None,
    line_ids: bool = True,
) -> list[dict[str, Any]]:
    """One explanation per window row from per-distinct-window details.

    Parameters
    ----------
    detector : BaseDetector
        The fitted detector (its ``threshold_``).
    windows : pl.DataFrame
        The explained windows (``window_id`` and ``line_ids`` are read when present).
    inverse : ndarray of int
        Index into ``scores`` / ``details`` / ``extra`` of every row of ``windows``
        (the ``inverse`` of :func:`~logsieve.features.sequence.distinct_windows`, or
        ``arange(n)`` for details computed per row).
    scores : ndarray
        Score of each distinct window.
    details : mapping or sequence, index -> list of dicts
        The entries shown under ``key`` (a missing index in a mapping: none).
    key : str
        Name of the entries' field.
    extra : sequence of mappings, optional
        Per distinct window, fields placed between ``is_anomaly`` and ``key``.
    nested : str, optional
        A field of every entry holding a list of dicts with a ``position``; they gain a
        ``line_id`` too.
    line_ids : bool, default True
        Give every entry (a dict with a ``position``, possibly None) the ``line_id`` at
        that position of its window (None when unknown). False copies the entries as
        they are.

    Returns
    -------
    list of dict
        ``window_id``, ``score``, ``threshold``, ``is_anomaly``, the ``extra`` fields
        and ``key``, in the order of ``windows``.
    """
    ids = _window_ids(windows)
    all_lines = (
        windows.get_column(LINE_IDS).to_list() if line_ids and LINE_IDS in windows.columns else None
    )
    by_index = details.get if isinstance(details, Mapping) else None
    result = []
    for row, u in enumerate(inverse.tolist()):
        items = by_index(u, []) if by_index is not None else details[u]
        if line_ids:
            lines = all_lines[row] if all_lines is not None else None
            entries = []
            for d in items:
                d = dict(d)
                d["line_id"] = _line_at(lines, d["position"])
                if nested is not None:
                    d[nested] = [dict(a, line_id=_line_at(lines, a["position"])) for a in d[nested]]
                entries.append(d)
        else:
            entries = [dict(d) for d in items]
        score = float(scores[u])
        result.append(
            {
                "window_id": ids[row],
                "score": score,
                "threshold": detector.threshold_,
                "is_anomaly": bool(score > detector.threshold_),
                **(extra[u] if extra is not None else {}),
                key: entries,
            }
        )
    return result


def _line_at(lines: Sequence[Any] | None, pos: int | None) -> int | None:
    """The line id at ``pos`` of a window's ``line_ids`` (None when unknown)."""
    if lines is None or pos is None or pos >= len(lines):
        return None
    return int(lines[pos])


def _window_ids(windows: pl.DataFrame) -> list[str]:
    if WINDOW_ID in windows.columns:
        return [str(x) for x in windows.get_column(WINDOW_ID).to_list()]
    return [str(i) for i in range(windows.height)]
