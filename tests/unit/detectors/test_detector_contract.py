"""The detector contract, checked for every registered detector (list_detectors()).

Each detector runs with its own tiny ``_test_params()`` on the synthetic windows of
``tests/detector_fixtures.py``. Fitted detectors are cached per module so the suite
stays fast.
"""

from __future__ import annotations

import dataclasses
import logging
import subprocess
import sys

import numpy as np
import polars as pl
import pytest
from detector_fixtures import TEMPLATES, make_windows

from logsieve.detectors.base import BaseDetector
from logsieve.detectors.registry import (
    BUILTIN,
    create_detector,
    describe_detectors,
    detector_info,
    get_detector_class,
    list_detectors,
    load_detector,
    register_detector,
)
from logsieve.errors import LogsieveError, NotFittedError
from logsieve.evaluation.metrics import roc_auc

NAMES = list_detectors()
AUC_FLOOR = 0.8


@pytest.fixture(scope="module")
def train_windows() -> pl.DataFrame:
    return make_windows(seed=0)


@pytest.fixture(scope="module")
def test_windows() -> pl.DataFrame:
    return make_windows(seed=1, prefix="t")


def _fresh(name: str, **extra) -> BaseDetector:
    cls = get_detector_class(name)
    return create_detector(name, **{**cls._test_params(), **extra})


_FITTED: dict[str, BaseDetector] = {}


def _fitted(name: str, train: pl.DataFrame) -> BaseDetector:
    if name not in _FITTED:
        _FITTED[name] = _fresh(name).fit(train, templates=TEMPLATES)
    return _FITTED[name]


def test_registry_lists_builtins_without_importing_torch():
    code = (
        "import sys; from logsieve.detectors.registry import list_detectors, describe_detectors;"
        "names = list_detectors(); rows = describe_detectors();"
        "assert 'deeplog' in names and rows;"
        "assert 'torch' not in sys.modules, 'torch imported';"
        "assert 'logsieve.detectors.deeplog' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_describe_detectors_fields():
    rows = describe_detectors()
    assert [r["name"] for r in rows] == NAMES
    for r in rows:
        assert r["description"] and r["input_kind"] in ("sequence", "counts", "semantic", "raw")
        assert isinstance(r["requires_labels"], bool)


@pytest.mark.parametrize("name", sorted(BUILTIN))
def test_static_table_matches_class(name):
    info = BUILTIN[name]
    cls = get_detector_class(name)
    assert f"{cls.__module__}:{cls.__qualname__}" == info.target
    assert cls.name == name
    assert cls.input_kind == info.input_kind
    assert cls.requires_labels == info.requires_labels
    assert cls.description == info.description
    assert cls.citation


def test_unknown_detector_lists_names():
    with pytest.raises(LogsieveError, match="unknown detector 'nope'.*deeplog"):
        create_detector("nope")


def test_unknown_param_is_named():
    with pytest.raises(LogsieveError, match="unknown parameter 'hiden_size'.*hidden_size"):
        create_detector("deeplog", hiden_size=3)


def test_explicit_none_params_are_kept():
    # `logsieve train --set patience=null` must reach the model: None is a value, not "unset"
    det = create_detector("deeplog", patience=None, num_threads=None, random_state=None, epochs=3)
    assert det.patience is None and det.num_threads is None and det.random_state is None
    assert det.epochs == 3
    default = create_detector("deeplog")  # a parameter left out keeps its default
    assert default.patience == 3 and default.num_threads == 1 and default.random_state == 0


def test_register_detector_decorator_and_duplicates():
    @register_detector("contract-dummy")
    class Dummy(BaseDetector):
        description = "dummy"
        scale: float = 1.0

        def _fit(self, train, valid, progress):
            self.mean_ = float(np.mean(train.get_column("event_ids").list.len().to_numpy()))

        def _score(self, windows):
            return self.scale * np.abs(
                windows.get_column("event_ids").list.len().to_numpy() - self.mean_
            )

    assert "contract-dummy" in list_detectors()
    assert detector_info("contract-dummy").description == "dummy"
    det = create_detector("contract-dummy", scale=2.0)
    assert det.get_params()["scale"] == 2.0
    with pytest.raises(LogsieveError, match="already registered"):

        @register_detector("contract-dummy")
        class Other(BaseDetector):
            def _fit(self, train, valid, progress): ...

            def _score(self, windows): ...


def test_subclass_params_are_keyword_only_dataclass_fields():
    cls = get_detector_class("deeplog")
    with pytest.raises(TypeError):
        cls(10)  # positional arguments are refused
    assert {f.name for f in dataclasses.fields(cls)} == set(cls._get_param_names())


@pytest.mark.parametrize("name", NAMES)
class TestContract:
    def test_fit_returns_self_and_sets_fitted_attributes(self, name, train_windows):
        det = _fresh(name)
        assert det.fit(train_windows, templates=TEMPLATES) is det
        assert np.isfinite(det.threshold_)
        assert det.threshold_source_ in ("model", "fixed", "valid", "train")
        assert det.n_train_windows_ > 0

    def test_scores_shape_dtype_finite(self, name, train_windows, test_windows):
        det = _fitted(name, train_windows)
        scores = det.decision_function(test_windows)
        assert scores.shape == (test_windows.height,)
        assert scores.dtype == np.float64
        assert np.isfinite(scores).all()
        pred = det.predict(test_windows)
        assert set(np.unique(pred)) <= {0, 1}
        np.testing.assert_array_equal(pred, (scores > det.threshold_).astype(np.int8))

    def test_direction_higher_is_more_anomalous(self, name, train_windows, test_windows):
        det = _fitted(name, train_windows)
        auc = roc_auc(
            test_windows.get_column("label").to_numpy(), det.decision_function(test_windows)
        )
        assert auc >= AUC_FLOOR

    def test_duplicate_windows_get_identical_scores(self, name, train_windows, test_windows):
        det = _fitted(name, train_windows)
        doubled = pl.concat([test_windows, test_windows])
        s = det.decision_function(doubled)
        np.testing.assert_array_equal(s[: test_windows.height], s[test_windows.height :])

    def test_determinism_with_seed(self, name, train_windows, test_windows):
        a = _fresh(name, random_state=7).fit(train_windows, templates=TEMPLATES)
        b = _fresh(name, random_state=7).fit(train_windows, templates=TEMPLATES)
        a, b = a.decision_function(test_windows), b.decision_function(test_windows)
        np.testing.assert_array_equal(a, b)

    def test_save_load_identical_scores(self, name, train_windows, test_windows, tmp_path):
        det = _fitted(name, train_windows)
        det.save(tmp_path / "m")
        again = load_detector(tmp_path / "m")
        assert type(again) is type(det)
        assert again.get_params() == det.get_params()
        assert again.threshold_ == det.threshold_
        assert again.templates_ == det.templates_
        np.testing.assert_array_equal(
            again.decision_function(test_windows), det.decision_function(test_windows)
        )
        assert type(det).load(tmp_path / "m").threshold_ == det.threshold_

    def test_not_fitted_errors(self, name, test_windows, tmp_path):
        det = _fresh(name)
        with pytest.raises(NotFittedError):
            det.decision_function(test_windows)
        with pytest.raises(NotFittedError):
            det.predict(test_windows)
        with pytest.raises(NotFittedError):
            det.save(tmp_path / "x")

    def test_get_params_round_trip(self, name):
        det = _fresh(name)
        params = det.get_params()
        clone = create_detector(name, **params)
        assert clone.get_params() == params
        assert det.clone().get_params() == params
        assert det.set_params(random_state=3) is det and det.random_state == 3
        with pytest.raises(LogsieveError):
            det.set_params(no_such_param=1)

    def test_constructor_stores_only(self, name):
        cls = get_detector_class(name)
        det = cls()
        assert not [k for k in vars(det) if k.endswith("_")], "fitted attributes set in __init__"
        for f in dataclasses.fields(cls):
            assert not isinstance(getattr(det, f.name), (list, dict, set)), (
                f"mutable default {f.name}"
            )

    def test_input_is_not_mutated(self, name, train_windows, test_windows):
        before = test_windows.clone()
        _fitted(name, train_windows).decision_function(test_windows)
        assert test_windows.equals(before)

    def test_explain_one_entry_per_window(self, name, train_windows, test_windows):
        det = _fitted(name, train_windows)
        out = det.explain(test_windows.head(5))
        assert [e["window_id"] for e in out] == test_windows.head(5).get_column(
            "window_id"
        ).to_list()
        scores = det.decision_function(test_windows.head(5))
        for e, s in zip(out, scores, strict=True):
            assert e["score"] == pytest.approx(s)
            assert e["is_anomaly"] == bool(s > det.threshold_)


def test_threshold_strategies(train_windows, test_windows):
    fixed = _fresh("deeplog", threshold=3.0).fit(train_windows)
    assert fixed.threshold_ == 3.0 and fixed.threshold_source_ == "fixed"

    quant = _fresh("deeplog", threshold="quantile", contamination=0.05).fit(train_windows)
    assert quant.threshold_source_ == "valid"

    labelled_valid = make_windows(n_normal=60, n_anomalous=12, seed=5, prefix="v")
    best = _fresh("deeplog", threshold="best_f1").fit(train_windows, valid=labelled_valid)
    assert best.threshold_source_ == "valid"
    pred = best.predict(labelled_valid)
    assert (pred == labelled_valid.get_column("label").to_numpy()).mean() > 0.9

    with pytest.raises(LogsieveError, match="best_f1"):
        _fresh("deeplog", threshold="best_f1", valid_fraction=0.0).fit(train_windows)
    with pytest.raises(LogsieveError, match="threshold must be"):
        _fresh("deeplog", threshold="median").fit(train_windows)


def test_quantile_without_validation_falls_back_to_train(train_windows):
    records: list[logging.LogRecord] = []
    handler = logging.Handler(logging.WARNING)
    handler.emit = records.append
    log = logging.getLogger("logsieve.detectors.base")
    old_level = log.level
    log.addHandler(handler)  # direct: works whatever other tests did to propagation / levels
    log.setLevel(logging.WARNING)
    try:
        det = _fresh("deeplog", threshold="quantile", valid_fraction=0.0).fit(train_windows)
    finally:
        log.removeHandler(handler)
        log.setLevel(old_level)
    assert det.threshold_source_ == "train"
    assert any("no normal validation windows" in r.getMessage() for r in records)


def test_unsupervised_training_drops_anomalies(train_windows):
    det = _fresh("deeplog", valid_fraction=0.0).fit(train_windows)
    assert det.n_train_windows_ == int((train_windows.get_column("label") == 0).sum())
    assert "E99" not in det.vocab_
    all_in = _fresh("deeplog", valid_fraction=0.0, include_anomalies=True).fit(train_windows)
    assert all_in.n_train_windows_ == train_windows.height
    assert "E99" in all_in.vocab_


def test_y_overrides_label_column(train_windows):
    y = np.zeros(train_windows.height)
    det = _fresh("deeplog", valid_fraction=0.0).fit(train_windows, y=y)
    assert det.n_train_windows_ == train_windows.height


def test_chronological_validation_split(train_windows):
    reversed_rows = train_windows.reverse()  # the split follows `start`, not row order
    a = _fresh("deeplog", valid_fraction=0.25, epochs=1).fit(train_windows)
    b = _fresh("deeplog", valid_fraction=0.25, epochs=1).fit(reversed_rows)
    assert a.n_train_windows_ == b.n_train_windows_


def test_bad_input_is_a_clear_error():
    det = _fresh("deeplog")
    with pytest.raises(LogsieveError, match="event_ids"):
        det.fit(pl.DataFrame({"x": [1]}))
    with pytest.raises(LogsieveError, match="Polars DataFrame"):
        det.fit([["E1"]])


# ---------------------------------------------------------------------- feedback (issue 12)
@pytest.mark.parametrize("name", NAMES)
def test_feedback_every_detector(name, train_windows, test_windows, tmp_path):
    """Each registered detector says what feedback does, or refuses in one line; marked
    normal windows are no longer flagged afterwards, nor after save/load, and the
    threshold stays where it was (scope "window")."""
    import copy

    from logsieve.detectors.feedback import FeedbackRefused, feedback_policy, learn_feedback

    det = copy.deepcopy(_fitted(name, train_windows))
    for label in ("normal", "anomaly"):
        try:
            policy = feedback_policy(det, label)
        except FeedbackRefused as exc:
            assert label == "anomaly" and not det.requires_labels
            assert "\n" not in str(exc) and "cannot learn" in str(exc)
        else:
            assert "\n" not in policy and policy.startswith(det.name)
    scores = det.decision_function(test_windows)
    normal = test_windows["label"].to_numpy() == 0
    worst = np.flatnonzero(normal)[np.argsort(-scores[normal])[:2]]
    marked = test_windows[worst]
    threshold = det.threshold_
    report = learn_feedback(det, marked, "normal", train=train_windows, valid=None)
    assert report["flagged_after"] == 0 and report["still_wrong"] == 0
    assert not det.predict(marked).any()
    assert det.threshold_ == threshold or report["action"].startswith("refit")
    det.save(tmp_path / "m")
    assert not load_detector(tmp_path / "m").predict(marked).any()
