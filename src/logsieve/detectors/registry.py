"""Detector registry: names -> classes, without importing heavy libraries up front.

Two sources, merged:

1. :data:`BUILTIN`, a static table ``name -> DetectorInfo("module:Class", metadata)``.
   :func:`list_detectors` and :func:`detector_info` read it without importing the
   model modules, so ``logsieve models`` never imports torch. A contract test checks
   that each entry resolves to a class whose metadata matches.
2. Classes decorated with :func:`register_detector` (built-ins and user code), plus
   third-party plugins exposed through the entry-point group ``logsieve.detectors``
   (``name = "package.module:Class"``); a plugin is imported when it is first used or
   described.

Adding a built-in model: decorate the class with ``@register_detector("name")`` and add
one :class:`DetectorInfo` line to :data:`BUILTIN`.
"""

from __future__ import annotations

import fnmatch
import importlib
import logging
from collections.abc import Callable
from dataclasses import asdict, dataclass
from importlib.metadata import entry_points
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from logsieve.detectors.persistence import read_model_doc
from logsieve.errors import LogsieveError

if TYPE_CHECKING:
    from logsieve.detectors.base import BaseDetector

logger = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "logsieve.detectors"

__all__ = [
    "BUILTIN",
    "DetectorInfo",
    "create_detector",
    "describe_detectors",
    "detector_info",
    "get_detector_class",
    "list_detectors",
    "load_detector",
    "register_detector",
]


@dataclass(frozen=True)
class DetectorInfo:
    """What ``logsieve models`` shows about a detector (JSON-able via :meth:`to_dict`)."""

    name: str
    target: str  # "module:Class"
    description: str
    input_kind: str  # "sequence" | "counts" | "semantic" | "raw"
    requires_labels: bool
    citation: str = ""
    needs: str = ""  # optional extra, e.g. "torch"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


BUILTIN: dict[str, DetectorInfo] = {
    info.name: info
    for info in (
        DetectorInfo(
            name="deeplog",
            target="logsieve.detectors.deeplog:DeepLog",
            description="LSTM next-key model: a window is anomalous when a key is outside top-g",
            input_kind="sequence",
            requires_labels=False,
            citation="Du, Li, Zheng, Srikumar. DeepLog: Anomaly Detection and Diagnosis from "
            "System Logs through Deep Learning. ACM CCS 2017.",
            needs="torch",
        ),
        DetectorInfo(
            name="transformer",
            target="logsieve.detectors.transformer:NeuralLogTransformer",
            description="NeuralLog-style supervised Transformer over raw messages (no parser)",
            input_kind="raw",
            requires_labels=True,
            citation="Le, Zhang. Log-based Anomaly Detection Without Log Parsing. ASE 2021.",
            needs="torch",
        ),
        DetectorInfo(
            name="transformer_nextlog",
            target="logsieve.detectors.transformer_nextlog:NextLogTransformer",
            description="Transformer next-event model (deep-loglizer): anomalous when a key is "
            "outside top-k",
            input_kind="sequence",
            requires_labels=False,
            citation="Chen, Liu, Gu, Su, Lyu. Experience Report: Deep Learning-based System Log "
            "Analysis for Anomaly Detection. arXiv:2107.05908, 2021.",
            needs="torch",
        ),
        DetectorInfo(
            name="logrobust",
            target="logsieve.detectors.logrobust:LogRobust",
            description="Supervised attention Bi-LSTM over TF-IDF-weighted FastText template "
            "vectors; robust to unseen events",
            input_kind="semantic",
            requires_labels=True,
            citation="Zhang et al. Robust Log-based Anomaly Detection on Unstable Log Data. "
            "ESEC/FSE 2019.",
            needs="torch",
        ),
        DetectorInfo(
            name="cnn",
            target="logsieve.detectors.cnn:CNN",
            description="Supervised CNN over event embeddings (logkey2vec), parallel 1-D "
            "convolutions and max-pooling",
            input_kind="sequence",
            requires_labels=True,
            citation="Lu, Wei, Li, Wang. Detecting Anomaly in Big Data System Logs Using "
            "Convolutional Neural Network. IEEE DASC 2018.",
            needs="torch",
        ),
        # classical baselines on event-count vectors (the classical/ package)
        DetectorInfo(
            name="pca",
            target="logsieve.detectors.classical.pca:PCADetector",
            description="PCA on event-count vectors; score = squared error off the normal subspace "
            "(Q-statistic)",
            input_kind="counts",
            requires_labels=False,
            citation="Xu, Huang, Fox, Patterson, Jordan. Detecting Large-Scale System Problems by "
            "Mining Console Logs. SOSP 2009.",
            needs="ml",
        ),
        DetectorInfo(
            name="iforest",
            target="logsieve.detectors.classical.iforest:IsolationForestDetector",
            description="Isolation Forest on event-count vectors; score = 2^(-mean path length / "
            "c(psi))",
            input_kind="counts",
            requires_labels=False,
            citation="Liu, Ting, Zhou. Isolation Forest. ICDM 2008.",
            needs="ml",
        ),
        DetectorInfo(
            name="ocsvm",
            target="logsieve.detectors.classical.ocsvm:OneClassSVMDetector",
            description="One-Class SVM on event-count vectors; score = distance outside the "
            "learned support",
            input_kind="counts",
            requires_labels=False,
            citation="Schölkopf, Platt, Shawe-Taylor, Smola, Williamson. Estimating the Support of "
            "a High-Dimensional Distribution. Neural Computation 2001.",
            needs="ml",
        ),
        DetectorInfo(
            name="lof",
            target="logsieve.detectors.classical.lof:LOFDetector",
            description="Local Outlier Factor (novelty) on event-count vectors; score = LOF",
            input_kind="counts",
            requires_labels=False,
            citation="Breunig, Kriegel, Ng, Sander. LOF: Identifying Density-Based Local Outliers. "
            "SIGMOD 2000.",
            needs="ml",
        ),
        DetectorInfo(
            name="lr",
            target="logsieve.detectors.classical.supervised:LogisticRegressionDetector",
            description="logistic regression on TF-IDF event counts (supervised); score = log-odds "
            "of anomaly",
            input_kind="counts",
            requires_labels=True,
            citation="He, Zhu, He, Lyu. Experience Report: System Log Analysis for Anomaly "
            "Detection. ISSRE 2016.",
            needs="ml",
        ),
        DetectorInfo(
            name="svm",
            target="logsieve.detectors.classical.supervised:SVMDetector",
            description="linear SVM on TF-IDF event counts (supervised); score = signed margin",
            input_kind="counts",
            requires_labels=True,
            citation="He, Zhu, He, Lyu. Experience Report: System Log Analysis for Anomaly "
            "Detection. ISSRE 2016.",
            needs="ml",
        ),
        DetectorInfo(
            name="dtree",
            target="logsieve.detectors.classical.supervised:DecisionTreeDetector",
            description="decision tree on TF-IDF event counts (supervised); score = leaf anomaly "
            "probability",
            input_kind="counts",
            requires_labels=True,
            citation="He, Zhu, He, Lyu. Experience Report: System Log Analysis for Anomaly "
            "Detection. ISSRE 2016.",
            needs="ml",
        ),
        DetectorInfo(
            name="invariants",
            target="logsieve.detectors.classical.invariants:InvariantsMining",
            description="sparse integer invariants among event counts; score = number of violated "
            "invariants",
            input_kind="counts",
            requires_labels=False,
            citation="Lou, Fu, Yang, Xu, Li. Mining Invariants from Console Logs for System "
            "Problem Detection. USENIX ATC 2010.",
        ),
        DetectorInfo(
            name="logclustering",
            target="logsieve.detectors.classical.logclustering:LogClustering",
            description="hierarchical clustering of weighted event vectors; score = cosine "
            "distance to the nearest known cluster",
            input_kind="counts",
            requires_labels=False,
            citation="Lin, Zhang, Lou, Zhang, Chen. Log Clustering based Problem Identification "
            "for Online Service Systems. ICSE 2016.",
            needs="ml",
        ),
        DetectorInfo(
            name="loganomaly",
            target="logsieve.detectors.loganomaly:LogAnomaly",
            description="semantic (template2vec) and quantitative (count) LSTMs predict the next "
            "event; top-g rule",
            input_kind="semantic",
            requires_labels=False,
            citation="Meng et al. LogAnomaly: Unsupervised Detection of Sequential and "
            "Quantitative Anomalies in Unstructured Logs. IJCAI 2019.",
            needs="torch",
        ),
        DetectorInfo(
            name="plelog",
            target="logsieve.detectors.plelog:PLELog",
            description="semi-supervised: HDBSCAN probabilistic labels from known normals, "
            "attention-GRU classifier",
            input_kind="semantic",
            requires_labels=False,
            citation="Yang et al. Semi-Supervised Log-Based Anomaly Detection via Probabilistic "
            "Label Estimation. ICSE 2021.",
            needs="torch",
        ),
        # autoencoder family (autoencoders.py, lstm_ae.py, ae_farzad.py, ae_bursic.py)
        DetectorInfo(
            name="ae",
            target="logsieve.detectors.autoencoders:Autoencoder",
            description="dense autoencoder over window count vectors; score = reconstruction error",
            input_kind="counts",
            requires_labels=False,
            citation="Pettry. AI-Autoencoder-for-HTTP-Log-Anomaly-Detection (GitHub).",
            needs="torch",
        ),
        DetectorInfo(
            name="lstm_ae",
            target="logsieve.detectors.lstm_ae:LSTMAutoencoder",
            description="LSTM sequence autoencoder over event ids; score = reconstruction negative "
            "log-likelihood",
            input_kind="sequence",
            requires_labels=False,
            citation="Pettry. AI-Autoencoder-for-HTTP-Log-Anomaly-Detection (GitHub).",
            needs="torch",
        ),
        DetectorInfo(
            name="iforest_ae",
            target="logsieve.detectors.autoencoders:IsolationForestAE",
            description="dense autoencoder trained on the windows an isolation forest keeps; score "
            "= reconstruction error",
            input_kind="counts",
            requires_labels=False,
            citation="Pettry. AI-Autoencoder-for-HTTP-Log-Anomaly-Detection (GitHub).",
            needs="torch",
        ),
        DetectorInfo(
            name="farzad",
            target="logsieve.detectors.ae_farzad:FarzadGulliver",
            description="isolation forest picks likely-normal windows from an autoencoder's codes; "
            "a second autoencoder scores",
            input_kind="counts",
            requires_labels=False,
            citation="Farzad, Gulliver. Unsupervised log message anomaly detection. ICT Express "
            "2020.",
            needs="torch",
        ),
        DetectorInfo(
            name="bursic",
            target="logsieve.detectors.ae_bursic:Bursic",
            description="two LSTM autoencoders over raw log lines: line encodings, then the "
            "window's sequence of them",
            input_kind="raw",
            requires_labels=False,
            citation="Bursic, Cuculo, D'Amelio. Anomaly detection from log files using "
            "unsupervised deep learning. FM 2019 workshops.",
            needs="torch",
        ),
    )
}

_REGISTERED: dict[str, type[BaseDetector]] = {}
T = TypeVar("T", bound="type[BaseDetector]")


def register_detector(name: str, *, replace: bool = False) -> Callable[[T], T]:
    """Class decorator: register a detector class under ``name`` (lower-case).

    Sets ``cls.name``. Registering another class under a taken name raises
    :class:`LogsieveError` unless ``replace=True``.
    """
    key = name.lower()

    def deco(cls: T) -> T:
        old = _REGISTERED.get(key)
        if (
            old is not None
            and old is not cls
            and not replace
            and old.__qualname__ != cls.__qualname__
        ):
            raise LogsieveError(
                f"detector name {key!r} is already registered by "
                f"{old.__module__}.{old.__qualname__}"
            )
        cls.name = key
        _REGISTERED[key] = cls
        return cls

    return deco


def _plugin_targets() -> dict[str, str]:
    try:
        eps = entry_points(group=ENTRY_POINT_GROUP)
    except Exception:  # pragma: no cover - broken installation metadata
        logger.warning("could not read entry points of group %s", ENTRY_POINT_GROUP, exc_info=True)
        return {}
    return {ep.name.lower(): ep.value for ep in eps if ep.name.lower() not in BUILTIN}


def list_detectors(pattern: str | None = None, input_kind: str | None = None) -> list[str]:
    """Sorted names of every available detector (imports no model module for built-ins).

    ``pattern`` filters names with shell wildcards (``"log*"``); ``input_kind`` filters
    by input kind (plugins are imported to know theirs).
    """
    names = set(BUILTIN) | set(_REGISTERED) | set(_plugin_targets())
    if pattern:
        names = {n for n in names if fnmatch.fnmatch(n, pattern.lower())}
    if input_kind:
        names = {n for n in names if detector_info(n).input_kind == input_kind}
    return sorted(names)


def _unknown(name: str) -> LogsieveError:
    return LogsieveError(
        f"unknown detector {name!r}; available: {', '.join(list_detectors()) or 'none'}"
    )


def _import_target(name: str, target: str) -> type[BaseDetector]:
    module_name, _, attr = target.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        missing = exc.name or "a dependency"
        if missing == module_name or missing.split(".")[0] == "logsieve":
            raise LogsieveError(f"detector {name!r}: module {missing!r} not found") from exc
        extra = BUILTIN[name].needs if name in BUILTIN else ""
        if not extra and missing.split(".")[0] in ("torch", "safetensors"):
            extra = "torch"
        hint = f" (pip install 'logsieve[{extra}]')" if extra else ""
        raise LogsieveError(f"detector {name!r} needs the package {missing!r}{hint}") from exc
    try:
        cls = getattr(module, attr)
    except AttributeError as exc:
        raise LogsieveError(f"detector {name!r}: {module_name} has no class {attr!r}") from exc
    return cls


def get_detector_class(name: str) -> type[BaseDetector]:
    """The class registered under ``name`` (imports its module on first use)."""
    from logsieve.detectors.base import BaseDetector

    key = name.lower()
    if key in _REGISTERED:
        return _REGISTERED[key]
    if key in BUILTIN:
        target = BUILTIN[key].target
    else:
        target = _plugin_targets().get(key, "")
        if not target:
            raise _unknown(name)
    cls = _import_target(key, target)
    if not (isinstance(cls, type) and issubclass(cls, BaseDetector)):
        raise LogsieveError(f"detector {key!r} ({target}) is not a BaseDetector subclass")
    _REGISTERED.setdefault(key, cls)
    if not cls.name:
        cls.name = key
    return cls


def detector_info(name: str) -> DetectorInfo:
    """Metadata of one detector (static for built-ins; read from the class otherwise)."""
    key = name.lower()
    if key in BUILTIN:
        return BUILTIN[key]
    cls = get_detector_class(key)
    return DetectorInfo(
        name=key,
        target=f"{cls.__module__}:{cls.__qualname__}",
        description=cls.description,
        input_kind=cls.input_kind,
        requires_labels=cls.requires_labels,
        citation=cls.citation,
    )


def describe_detectors() -> list[dict[str, Any]]:
    """:meth:`DetectorInfo.to_dict` of every detector, sorted by name."""
    return [detector_info(n).to_dict() for n in list_detectors()]


def create_detector(name: str, **params: Any) -> BaseDetector:
    """Build an unfitted detector by name.

    Every given parameter is set, None included (``--set patience=null`` means None);
    leave a parameter out to keep its default. An unknown parameter raises
    :class:`LogsieveError` naming it and the valid ones.
    """
    cls = get_detector_class(name)
    valid = cls._get_param_names()
    unknown = sorted(set(params) - set(valid))
    if unknown:
        raise LogsieveError(
            f"unknown parameter{'s' if len(unknown) > 1 else ''} {', '.join(map(repr, unknown))} "
            f"for detector {cls.name!r}; valid: {', '.join(valid)}"
        )
    return cls(**params)


def load_detector(path: str | Path) -> BaseDetector:
    """Load a saved detector directory: the class registered under its ``model.json``
    ``name`` restores it (:meth:`~logsieve.detectors.base.BaseDetector.load`)."""
    doc = read_model_doc(path)
    return get_detector_class(str(doc["name"])).load(path)
