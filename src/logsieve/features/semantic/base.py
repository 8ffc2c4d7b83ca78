"""The embedder interface shared by every semantic embedder, and its input helpers.

:class:`TextEmbedder` fixes ``fit`` / ``embed`` / persistence so detectors can treat all
embedders alike; the helpers normalise text inputs and validate saved state.
"""

from __future__ import annotations

import abc
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar, Self

import numpy as np
import polars as pl

from logsieve.errors import LogsieveError, NotFittedError


def _as_series(texts: Sequence[str] | pl.Series, what: str = "texts") -> pl.Series:
    if isinstance(texts, pl.Series):
        s = texts
    elif isinstance(texts, str):
        raise LogsieveError(f"{what} must be a sequence of strings, not one string")
    else:
        s = pl.Series("text", list(texts), dtype=pl.String)
    if s.dtype == pl.Null:
        s = s.cast(pl.String)
    if s.dtype != pl.String:
        raise LogsieveError(f"{what} must be strings, not {s.dtype}")
    return s.fill_null("").rename("text")


def _distinct(texts: pl.Series) -> tuple[pl.Series, np.ndarray]:
    """Distinct texts in first-seen order and the row of each input text among them."""
    df = pl.DataFrame({"text": texts}).with_row_index("_row")
    firsts = (
        df.group_by("text", maintain_order=True).agg(pl.col("_row").first()).with_row_index("_u")
    )
    inverse = (
        df.join(firsts.select("text", "_u"), on="text", how="left", maintain_order="left")
        .get_column("_u")
        .to_numpy()
        .astype(np.int64)
    )
    return firsts.get_column("text"), inverse


class TextEmbedder(abc.ABC):
    """Common interface: ``fit(texts) -> self``, ``embed(texts) -> (n, dim_)`` float32.

    ``embed`` embeds each distinct text once and maps the result back, so repeated texts
    cost nothing. Subclasses implement :meth:`_fit` and :meth:`_embed_distinct`, and the
    persistence hooks.
    """

    kind: ClassVar[str] = ""
    dim_: int

    def fit(self, texts: Sequence[str] | pl.Series) -> Self:
        """Fit on training texts (templates or distinct messages); returns ``self``."""
        s = _as_series(texts)
        if len(s) == 0:
            raise LogsieveError("cannot fit a text embedder on zero texts")
        distinct, _ = _distinct(s)
        self._fit(distinct)
        return self

    def embed(self, texts: Sequence[str] | pl.Series) -> np.ndarray:
        """Vectors of ``texts``, shape ``(len(texts), dim_)``, float32."""
        self._check_fitted()
        s = _as_series(texts)
        if len(s) == 0:
            return np.zeros((0, self.dim_), dtype=np.float32)
        distinct, inverse = _distinct(s)
        vectors = np.asarray(self._embed_distinct(distinct), dtype=np.float32)
        if vectors.shape != (len(distinct), self.dim_):
            raise LogsieveError(
                f"{type(self).__name__} returned shape {vectors.shape}, "
                f"expected ({len(distinct)}, {self.dim_})"
            )
        return vectors[inverse]

    def fit_embed(self, texts: Sequence[str] | pl.Series) -> np.ndarray:
        """``fit(texts).embed(texts)``."""
        return self.fit(texts).embed(texts)

    def _check_fitted(self) -> None:
        if not hasattr(self, "dim_"):
            raise NotFittedError(f"{type(self).__name__} is not fitted; call fit(texts) first")

    @abc.abstractmethod
    def _fit(self, texts: pl.Series) -> None: ...

    @abc.abstractmethod
    def _embed_distinct(self, texts: pl.Series) -> np.ndarray: ...

    @abc.abstractmethod
    def get_params(self) -> dict[str, Any]:
        """Constructor parameters (JSON-able)."""

    @abc.abstractmethod
    def to_dict(self) -> dict[str, Any]:
        """JSON-able fitted state, with ``kind`` and ``params``."""

    def to_arrays(self) -> dict[str, np.ndarray]:
        """Named arrays of the fitted state (for safetensors)."""
        return {}

    @classmethod
    @abc.abstractmethod
    def from_dict(
        cls, doc: Mapping[str, Any], arrays: Mapping[str, np.ndarray] | None = None
    ) -> Self:
        """Rebuild a fitted embedder from :meth:`to_dict` / :meth:`to_arrays`."""

    def __repr__(self) -> str:
        params = self.get_params()
        args = ", ".join(
            f"{k}={v!r}" for k, v in params.items() if k not in ("synonyms", "antonyms")
        )
        return f"{type(self).__name__}({args})"


def _pairs(pairs: Sequence[Sequence[str]] | None, what: str) -> tuple[tuple[str, str], ...]:
    if not pairs:
        return ()
    out = []
    for p in pairs:
        if isinstance(p, str) or len(p) != 2:
            raise LogsieveError(f"{what} must be pairs of words, got {p!r}")
        out.append((str(p[0]).lower(), str(p[1]).lower()))
    return tuple(out)


def _check_kind(doc: Mapping[str, Any], kind: str) -> None:
    if doc.get("kind") != kind:
        raise LogsieveError(f"saved embedder is a {doc.get('kind')!r}, not a {kind!r}")


def _need(arrays: Mapping[str, np.ndarray], key: str, kind: str) -> np.ndarray:
    if key not in arrays:
        raise LogsieveError(f"saved {kind} embedder lacks the {key!r} array")
    return np.asarray(arrays[key])
