"""Model directories on disk: a JSON description and named arrays, without pickle.

A model directory holds two files:

``weights.safetensors``
    Named arrays (network weights, numeric tables), written with ``safetensors``
    (which cannot execute code on load) in a deterministic byte layout: the same
    arrays and description always give the same file.
``model.json``
    ``format`` / ``format_version``, the caller's description (for detectors, see
    :meth:`~logsieve.detectors.base.BaseDetector.save`), the ``versions`` of the
    libraries that wrote it and ``weights`` = ``{file, sha256, bytes}``.

This module knows no detector class: :meth:`BaseDetector.save` / :meth:`BaseDetector.load`
build and read the description, and :func:`logsieve.detectors.registry.load_detector`
picks the class from it. Reading checks the size and SHA-256 of the weights before
parsing them and turns every failure into a one-line :class:`LogsieveError`; files are
written atomically, weights first, so a directory with a ``model.json`` is complete.
"""

from __future__ import annotations

import hashlib
import json
import logging
import platform
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from logsieve._version import __version__
from logsieve.errors import LogsieveError
from logsieve.io.atomic import atomic_path, write_json

logger = logging.getLogger(__name__)

FORMAT = "logsieve-model"
FORMAT_VERSION = 1
MODEL_FILE = "model.json"
WEIGHTS_FILE = "weights.safetensors"

__all__ = [
    "FORMAT_VERSION",
    "MODEL_FILE",
    "WEIGHTS_FILE",
    "file_sha256",
    "jsonable",
    "read_model_dir",
    "read_model_doc",
    "safetensors_bytes",
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


def jsonable(value: Any, where: str) -> Any:
    """Check that ``value`` survives a JSON round trip (tuples become lists)."""
    try:
        return json.loads(json.dumps(value, allow_nan=True))
    except (TypeError, ValueError) as exc:
        raise LogsieveError(f"cannot save {where}: not JSON-serialisable ({exc})") from exc


def write_model_dir(
    path: str | Path, doc: Mapping[str, Any], arrays: Mapping[str, np.ndarray]
) -> Path:
    """Write ``arrays`` to ``weights.safetensors``, ``doc`` (+ versions, hash) to ``model.json``."""
    out = Path(path)
    if out.exists() and not out.is_dir():
        raise LogsieveError(f"{out}: exists and is not a directory")
    out.mkdir(parents=True, exist_ok=True)
    arrays = {k: np.ascontiguousarray(v) for k, v in arrays.items()}
    for k, v in arrays.items():
        if v.dtype == object:
            raise LogsieveError(f"cannot save array {k!r}: object arrays are not supported")
    weights = out / WEIGHTS_FILE
    payload = safetensors_bytes(arrays, {"format": FORMAT, "name": str(doc.get("name", ""))})
    with atomic_path(weights, suffix=".safetensors") as tmp:
        Path(tmp).write_bytes(payload)
    full = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        **jsonable(dict(doc), "model description"),
    }
    full["versions"] = versions()
    full["weights"] = {
        "file": WEIGHTS_FILE,
        "sha256": file_sha256(weights),
        "bytes": weights.stat().st_size,
    }
    write_json(out / MODEL_FILE, full)
    return out


def safetensors_bytes(arrays: Mapping[str, np.ndarray], metadata: Mapping[str, str]) -> bytes:
    """A safetensors file of ``arrays`` and string ``metadata``, byte for byte reproducible.

    safetensors lays the tensors out in a fixed order, but writes ``__metadata__`` from a
    hash map whose key order changes from call to call; the header is therefore
    rewritten here as JSON with sorted keys (the layout of the data is untouched).
    """
    from safetensors.numpy import save

    raw = save(dict(arrays))
    size = int.from_bytes(raw[:8], "little")
    header = json.loads(raw[8 : 8 + size])
    header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
    text = json.dumps(header, sort_keys=True, separators=(",", ":")).encode("utf-8")
    text += b" " * (-len(text) % 8)  # the data starts 8-byte aligned, as safetensors pads it
    return len(text).to_bytes(8, "little") + text + raw[8 + size :]


def read_model_doc(path: str | Path) -> dict[str, Any]:
    """The checked ``model.json`` of a model directory (the weights are not read)."""
    return _read_doc(Path(path))


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
    _check_doc_types(manifest, doc)
    return doc


#: the JSON type of every top-level ``model.json`` field (optional ones may also be null)
_DOC_TYPES: dict[str, tuple[tuple[type, ...], str]] = {
    "name": ((str,), "a string"),
    "class": ((str,), "a string"),
    "params": ((dict,), "an object"),
    "weights": ((dict,), "an object"),
    "state": ((dict,), "an object"),
    "versions": ((dict,), "an object"),
    "threshold": ((int, float), "a number"),
    "templates": ((dict,), "an object"),
    "vocabulary": ((list,), "an array"),
}
_REQUIRED = ("name", "params", "weights")


def _check_doc_types(manifest: Path, doc: Mapping[str, Any]) -> None:
    """One-line error for a ``model.json`` field of the wrong JSON type (edited or damaged)."""
    for key, (types, label) in _DOC_TYPES.items():
        value = doc.get(key)
        if value is None and key not in _REQUIRED:
            continue
        if not isinstance(value, types) or isinstance(value, bool):
            raise LogsieveError(
                f"{manifest}: field {key!r} must be {label}, not {json.dumps(value)[:40]}"
            )
    templates = doc.get("templates") or {}
    if not all(isinstance(v, str) for v in templates.values()):
        raise LogsieveError(f"{manifest}: field 'templates' must map event ids to template text")
    weights = doc["weights"]
    for key, want, label in (("file", str, "a string"), ("sha256", str, "a string"),
                             ("bytes", int, "an integer")):  # fmt: skip
        value = weights.get(key)
        if key in weights and (not isinstance(value, want) or isinstance(value, bool)):
            raise LogsieveError(f"{manifest}: field 'weights.{key}' must be {label}")


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
