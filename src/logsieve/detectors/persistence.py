"""Saving and loading fitted detectors, without pickle.

A model directory holds two files:

``weights.safetensors``
    Every array of the fitted state (network weights, numeric tables), written with
    ``safetensors.numpy`` (safetensors cannot execute code on load).
``model.json``
    ``format`` / ``format_version``, the registry ``name`` and ``class``, the
    constructor ``params``, the decision ``threshold``, the event ``vocabulary`` and
    ``templates`` when the model has them, the rest of the JSON-able fitted ``state``,
    the ``versions`` of logsieve / numpy / torch / safetensors / Python that wrote it,
    and ``weights`` = ``{file, sha256, bytes}``.

Loading re-creates the detector through the registry (``create_detector(name,
**params)``), checks the SHA-256 and size of the weights file before reading it, and
turns every failure (missing or tampered file, bad JSON, shape mismatch) into a
one-line :class:`LogsieveError`. A newer ``format_version`` is refused; different
library versions are only logged.

Files are written atomically (weights first, ``model.json`` last), so a directory
with a ``model.json`` is always complete.
"""

from __future__ import annotations

import hashlib
import json
import logging
import platform
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from logsieve._version import __version__
from logsieve.errors import LogsieveError
from logsieve.io.atomic import atomic_path, write_json

if TYPE_CHECKING:
    from logsieve.detectors.base import BaseDetector

logger = logging.getLogger(__name__)

FORMAT = "logsieve-model"
FORMAT_VERSION = 1
MODEL_FILE = "model.json"
WEIGHTS_FILE = "weights.safetensors"
_HOISTED = {"vocabulary": "vocab_", "templates": "templates_"}  # top-level model.json keys

__all__ = [
    "FORMAT_VERSION",
    "MODEL_FILE",
    "WEIGHTS_FILE",
    "file_sha256",
    "load_detector",
    "read_model_dir",
    "save_detector",
    "versions",
    "write_model_dir",
]


def file_sha256(path: Path) -> str:
    """Hex SHA-256 of a file, read in chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def versions() -> dict[str, str | None]:
    """Versions of the libraries a saved model depends on (None when not importable)."""
    out: dict[str, str | None] = {
        "logsieve": __version__,
        "numpy": np.__version__,
        "python": platform.python_version(),
    }
    for mod in ("torch", "safetensors"):
        try:
            out[mod] = __import__(mod).__version__
        except ImportError:
            out[mod] = None
    return out


def _jsonable(value: Any, where: str) -> Any:
    """Check that ``value`` survives a JSON round trip (tuples become lists)."""
    try:
        return json.loads(json.dumps(value, allow_nan=True))
    except (TypeError, ValueError) as exc:
        raise LogsieveError(f"cannot save {where}: not JSON-serialisable ({exc})") from exc


def write_model_dir(
    path: str | Path, doc: Mapping[str, Any], arrays: Mapping[str, np.ndarray]
) -> Path:
    """Write ``arrays`` to ``weights.safetensors``, ``doc`` (+ versions, hash) to ``model.json``."""
    from safetensors.numpy import save_file

    out = Path(path)
    if out.exists() and not out.is_dir():
        raise LogsieveError(f"{out}: exists and is not a directory")
    out.mkdir(parents=True, exist_ok=True)
    arrays = {k: np.ascontiguousarray(v) for k, v in arrays.items()}
    for k, v in arrays.items():
        if v.dtype == object:
            raise LogsieveError(f"cannot save array {k!r}: object arrays are not supported")
    weights = out / WEIGHTS_FILE
    with atomic_path(weights, suffix=".safetensors") as tmp:
        save_file(arrays, str(tmp), metadata={"format": FORMAT, "name": str(doc.get("name", ""))})
    full = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        **_jsonable(dict(doc), "model description"),
    }
    full["versions"] = versions()
    full["weights"] = {
        "file": WEIGHTS_FILE,
        "sha256": file_sha256(weights),
        "bytes": weights.stat().st_size,
    }
    write_json(out / MODEL_FILE, full)
    return out


def read_model_dir(path: str | Path) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """Read and verify a directory written by :func:`write_model_dir`: ``(doc, arrays)``."""
    path = Path(path)
    doc = _read_doc(path)
    drift = {
        k: v
        for k, v in (doc.get("versions") or {}).items()
        if k in ("logsieve", "torch", "numpy") and v != versions().get(k)
    }
    if drift:
        logger.warning("%s was saved with other library versions: %s", path, drift)
    return doc, _read_weights(path, doc)


def save_detector(detector: BaseDetector, path: str | Path) -> Path:
    """Write a fitted detector to directory ``path`` (created if needed); returns it."""
    detector._check_fitted()
    state, arrays = detector._get_state()
    state = dict(state)
    doc: dict[str, Any] = {
        "name": detector.name,
        "class": f"{type(detector).__module__}:{type(detector).__qualname__}",
        "params": _jsonable(detector.get_params(), "params"),
        "threshold": state.get("threshold_"),
    }
    for key, attr in _HOISTED.items():
        if attr in state:
            doc[key] = state.pop(attr)
    doc["state"] = _jsonable(state, "fitted state")
    out = write_model_dir(path, doc, arrays)
    logger.info("saved %s to %s (%d arrays)", detector.name, out, len(arrays))
    return out


def _read_doc(path: Path) -> dict[str, Any]:
    manifest = path / MODEL_FILE
    if not path.is_dir():
        raise LogsieveError(f"{path}: not a model directory")
    if not manifest.is_file():
        raise LogsieveError(f"{path}: no {MODEL_FILE} (not a saved logsieve model)")
    try:
        doc = json.loads(manifest.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise LogsieveError(f"{manifest}: unreadable or invalid JSON ({exc})") from exc
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise LogsieveError(f"{manifest}: not a logsieve model file")
    version = doc.get("format_version")
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise LogsieveError(
            f"{manifest}: model format version {version!r} is newer than this logsieve "
            f"supports ({FORMAT_VERSION})"
        )
    for key in ("name", "params", "weights"):
        if key not in doc:
            raise LogsieveError(f"{manifest}: missing {key!r}")
    return doc


def _read_weights(path: Path, doc: Mapping[str, Any]) -> dict[str, np.ndarray]:
    from safetensors import SafetensorError
    from safetensors.numpy import load_file

    info = doc["weights"]
    name = info.get("file", WEIGHTS_FILE) if isinstance(info, dict) else WEIGHTS_FILE
    if not isinstance(name, str) or Path(name).name != name:
        raise LogsieveError(f"{path / MODEL_FILE}: bad weights file name {name!r}")
    weights = path / name
    if not weights.is_file():
        raise LogsieveError(f"{weights}: weights file is missing")
    size = weights.stat().st_size
    if isinstance(info, dict) and "bytes" in info and size != info["bytes"]:
        raise LogsieveError(
            f"{weights}: size {size} differs from the recorded {info['bytes']} bytes "
            "(truncated or replaced)"
        )
    digest = file_sha256(weights)
    if not isinstance(info, dict) or digest != info.get("sha256"):
        raise LogsieveError(
            f"{weights}: SHA-256 does not match model.json (file modified or corrupted)"
        )
    try:
        return load_file(str(weights))
    except (SafetensorError, OSError, ValueError) as exc:
        raise LogsieveError(f"{weights}: not a valid safetensors file ({exc})") from exc


def load_detector(path: str | Path) -> BaseDetector:
    """Load a detector directory written by :func:`save_detector`."""
    from logsieve.detectors.registry import get_detector_class

    path = Path(path)
    doc, arrays = read_model_dir(path)
    params = doc["params"]
    if not isinstance(params, dict):
        raise LogsieveError(f"{path / MODEL_FILE}: 'params' must be an object")
    cls = get_detector_class(str(doc["name"]))
    unknown = sorted(set(params) - set(cls._get_param_names()))
    if unknown:
        raise LogsieveError(
            f"{path / MODEL_FILE}: unknown parameter(s) {', '.join(unknown)} for {cls.__name__}"
        )
    try:
        # not create_detector: a saved None (e.g. random_state=None) must stay None
        detector = cls(**params)
    except TypeError as exc:
        raise LogsieveError(f"{path / MODEL_FILE}: bad parameters ({exc})") from exc
    state = dict(doc.get("state") or {})
    for key, attr in _HOISTED.items():
        if key in doc:
            state[attr] = doc[key]
    try:
        detector._set_state(state, arrays)
    except LogsieveError:
        raise
    except (KeyError, ValueError, TypeError, RuntimeError, IndexError) as exc:
        raise LogsieveError(
            f"{path}: saved state does not fit a {type(detector).__name__} "
            f"({type(exc).__name__}: {exc})"
        ) from exc
    logger.info("loaded %s from %s", doc["name"], path)
    return detector
