"""Bursic, Cuculo, D'Amelio (FM 2019 workshops): two LSTM autoencoders over RAW log text.

No parser and no hand-crafted features: a text autoencoder learns an encoding of every
raw line, a second autoencoder models a window's sequence of those encodings, and the
reconstruction errors make the score (the rarity of a line in content and context).
Paper: LNCS 12232, pp. 200-207 (2020); authors' code: sathya-ml/deep-log-anomaly-detection
(only its README and configuration files were read).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from typing import Any, ClassVar, cast

import numpy as np
import polars as pl
import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence

from logsieve.detectors.base import (
    ProgressCallback,
    _line_at,
    check_choice,
    check_positive_ints,
    explanations_by_row,
)
from logsieve.detectors.neural.autoencoder_parts import chunk_sequences
from logsieve.detectors.neural.trainer import Batch, TorchDetector, train_module
from logsieve.detectors.registry import register_detector
from logsieve.errors import LogsieveError
from logsieve.features.sequence import (
    PAD,
    EncodedWindows,
    EventVocab,
    append_marker,
    check_windows,
    pad_sequences,
    unique_rows,
)
from logsieve.grouping.text import MESSAGES
from logsieve.schema import EVENT_IDS, LINE_IDS

logger = logging.getLogger(__name__)

__all__ = ["Bursic", "LinesTable", "TextAE", "VectorSeqAE"]

CITATION = (
    "Sathya Bursic, Vittorio Cuculo, Alessandro D'Amelio. Anomaly detection from log files using "
    "unsupervised deep learning. Formal Methods. FM 2019 International Workshops, LNCS 12232, "
    "pp. 200-207, 2020. https://doi.org/10.1007/978-3-030-54994-7_15"
)
TEXT_SOURCES = ("auto", "messages", "templates")
#: value of the flag column in the end-of-window marker row of the part-2 input
END_FLAG = 3.0
BLANK = "<blank>"
#: what ``clean_digits`` replaces by "0": runs of two or more digits (ids, sizes, ports,
#: counters); single digits are kept, as they are often part of the wording ("step 1")
NUMBER = r"\d{2,}"


# ====================================================================== networks
class TextAE(nn.Module):
    """Word-level seq2seq LSTM autoencoder; the encoder's final state is the line encoding.

    The decoder starts from the encoder's final ``(h, c)`` and is fed the previous
    token (teacher forcing; a begin token first) to predict the next.
    """

    def __init__(self, n_tokens: int, embedding_dim: int, hidden_size: int) -> None:
        super().__init__()
        self.bos = n_tokens
        self.embedding = nn.Embedding(n_tokens + 1, embedding_dim, padding_idx=PAD)
        self.encoder = nn.LSTM(embedding_dim, hidden_size, batch_first=True)
        self.decoder = nn.LSTM(embedding_dim, hidden_size, batch_first=True)
        self.out = nn.Linear(hidden_size, n_tokens)

    def state(
        self, codes: torch.Tensor, lengths: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        packed = pack_padded_sequence(
            self.embedding(codes),
            lengths.clamp_min(1).cpu(),
            batch_first=True,
            enforce_sorted=False,
        )
        _, (h, c) = self.encoder(packed)
        return h, c

    def encode(self, codes: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        return self.state(codes, lengths)[0][-1]

    def forward(self, codes: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        h, c = self.state(codes, lengths)
        start = torch.full((len(codes), 1), self.bos, dtype=codes.dtype, device=codes.device)
        hidden, _ = self.decoder(self.embedding(torch.cat([start, codes[:, :-1]], dim=1)), (h, c))
        return self.out(hidden)


def _text_nll(module: nn.Module, batch: Batch) -> torch.Tensor:
    codes, lengths = batch["codes"], batch["lengths"]
    logits = module(codes, lengths)
    nll = nn.functional.cross_entropy(logits.transpose(1, 2), codes, reduction="none")
    mask = torch.arange(codes.shape[1], device=codes.device)[None, :] < lengths[:, None]
    return (nll * mask).sum(dim=1) / lengths.clamp_min(1)


class VectorSeqAE(nn.Module):
    """LSTM autoencoder over sequences of vectors gathered from ``table`` by index.

    ``table`` (row 0 = padding) is a non-persistent buffer set before training or
    scoring: the encodings of the distinct lines at hand.
    """

    table: torch.Tensor

    def __init__(self, dim: int, hidden_size: int, latent_dim: int) -> None:
        super().__init__()
        self.encoder = nn.LSTM(dim, hidden_size, batch_first=True)
        self.to_latent = nn.Linear(hidden_size, latent_dim)
        self.from_latent = nn.Linear(latent_dim, hidden_size)
        self.decoder = nn.LSTM(hidden_size, hidden_size, batch_first=True)
        self.out = nn.Linear(hidden_size, dim)
        self.register_buffer("table", torch.zeros(1, dim), persistent=False)

    def forward(
        self, codes: torch.Tensor, lengths: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.table[codes]
        hidden, _ = self.encoder(x)
        last = hidden[torch.arange(len(codes), device=codes.device), (lengths - 1).clamp_min(0)]
        z = self.from_latent(torch.tanh(self.to_latent(last)))
        out, _ = self.decoder(z[:, None, :].expand(-1, codes.shape[1], -1))
        return self.out(out), x


def _position_errors(module: nn.Module, batch: Batch) -> torch.Tensor:
    codes, lengths = batch["codes"], batch["lengths"]
    recon, x = module(codes, lengths)
    err = ((recon - x) ** 2).mean(dim=2)
    mask = torch.arange(codes.shape[1], device=codes.device)[None, :] < lengths[:, None]
    return err * mask


def _seq_loss(module: nn.Module, batch: Batch) -> torch.Tensor:
    return _position_errors(module, batch).sum(dim=1) / batch["lengths"].clamp_min(1)


class _BursicNet(nn.Module):
    def __init__(
        self, n_tokens: int, embedding_dim: int, text_hidden: int, hidden_size: int, latent_dim: int
    ) -> None:
        super().__init__()
        self.text = TextAE(n_tokens, embedding_dim, text_hidden)
        self.seq = VectorSeqAE(text_hidden + 1, hidden_size, latent_dim)


# ====================================================================== lines
class LinesTable:
    """The lines of some windows: distinct cleaned texts and each window's line sequence.

    Attributes
    ----------
    texts : pl.Series
        Distinct cleaned line texts (first-appearance order).
    raw : list[str]
        One raw text per distinct line (its first occurrence), for explanations.
    encoded : EncodedWindows
        Per window, the 1-based indices of its lines into ``texts`` (0 is padding).
    counts : ndarray of float64
        Occurrences of every distinct line in these windows.
    """

    def __init__(
        self, texts: pl.Series, raw: list[str], encoded: EncodedWindows, counts: np.ndarray
    ) -> None:
        self.texts, self.raw, self.encoded, self.counts = texts, raw, encoded, counts


def _lines_from(column: pl.Series, clean_digits: bool) -> LinesTable:
    """Explode a list[str] column, clean, and find the distinct lines (vectorized)."""
    lengths = column.list.len().fill_null(0).to_numpy().astype(np.int64)
    flat = (
        column.explode().drop_nulls() if int(lengths.sum()) else pl.Series("t", [], dtype=pl.String)
    )
    if len(flat) != int(lengths.sum()):
        raise LogsieveError("line texts must not contain null entries")
    frame = pl.DataFrame({"raw": flat.cast(pl.String)})
    clean = pl.col("raw").str.replace_all(r"\s+", " ").str.strip_chars()
    if clean_digits:
        clean = clean.str.replace_all(NUMBER, "0")
    frame = frame.with_columns(clean.alias("clean"))
    firsts = (
        frame.with_row_index("_i")
        .group_by("clean", maintain_order=True)
        .agg(pl.col("_i").first(), pl.len().alias("_n"))
        .with_row_index("_u")
    )
    inverse = (
        frame.join(firsts.select("clean", "_u"), on="clean", how="left", maintain_order="left")
        .get_column("_u")
        .to_numpy()
        .astype(np.int32)
    )
    raw = frame.get_column("raw").gather(firsts.get_column("_i")).to_list()
    encoded = EncodedWindows((inverse + 1).astype(np.int32), lengths)
    return LinesTable(
        firsts.get_column("clean"),
        raw,
        encoded,
        firsts.get_column("_n").to_numpy().astype(np.float64),
    )


@register_detector("bursic")
class Bursic(TorchDetector):
    """Raw-text two-part LSTM autoencoder (Bursic, Cuculo, D'Amelio, FM 2019 workshops).

    Defaults of the authors' configuration files, and ours:

    ============================  ==========================  ==========================
    setting                       authors' config             here (default)
    ============================  ==========================  ==========================
    text tokens                   words (whitespace split),   words (whitespace split)
                                  min frequency 10
    longest line                  200 tokens                  ``max_tokens`` 32
    embedding / LSTM units        100 / 50, one direction     ``embedding_dim`` 32 /
                                                              ``text_hidden`` 32
    text AE training              lr 0.01, batch 64,          Adam lr 5e-3, batch 64,
                                  5 epochs, dropout 0.25      ``text_epochs`` 50, patience
    part 2                        bidirectional LSTM (64),    LSTM autoencoder (32 units,
                                  batch 64, 10 epochs         latent 16) over the window's
                                                              line encodings, 20 epochs
    ============================  ==========================  ==========================

    Deviations, and why:

    - Part 2 unit. In the authors' code the second model reads ONE line at a time: the
      vector ``[timestamp, line encoding]`` fed to a bidirectional LSTM as a sequence of
      scalars. logsieve scores windows, so part 2 here is a sequence autoencoder over the
      encodings of a window's lines, in order (LSTM encoder -> latent -> LSTM decoder ->
      the encodings, after standardising them, with an end-of-window marker appended so
      that a window that stops early is visible); the window score is its mean squared
      reconstruction error per position plus ``line_weight`` (default 1) times the
      window's mean part-1 line reconstruction loss, so both the context (part 2) and the
      content (part 1) of lines count. No timestamp feature is used (windows carry no
      per-line times).
    - Cleaning. Every run of two or more digits becomes ``0`` before tokenising
      (``clean_digits``), so lines differing only in ids, sizes, ports or counters become
      one, while single digits, often part of the wording ("step 1", "core 0"), stay; both
      autoencoders only ever run on DISTINCT cleaned lines (a few hundred to a few thousand
      on the benchmark samples; see docs/results.md), which keeps the model small and fast
      on a CPU. The authors' word-frequency cut-off does the same job
      less effectively (block ids are rare, but ports and sizes are not).
    - Sizes and epochs are smaller (CPU), and an epoch is a pass over DISTINCT lines or
      windows, weighted by their counts, hence more epochs with early stopping.

    Input: the ``messages`` column (list[str], one raw message per line, in order), added to
    a windows table by :func:`logsieve.grouping.text.attach_messages`. With ``text="auto"``
    (default) and no ``messages`` column, the template text of each event (from
    ``templates=`` given to :meth:`fit`) or, failing that, the event id stands in for the
    line, with a warning; ``text="messages"`` makes the column mandatory.

    Parameters
    ----------
    text : {"auto", "messages", "templates"}, default "auto"
        Where line texts come from: the ``messages`` column (raw lines), the events'
        template texts, or ``"auto"``: messages when present, else templates (else
        event ids), with a warning.
    clean_digits : bool, default True
        Replace every run of two or more digits by ``0`` in raw messages (not in
        template text).
    max_tokens : int, default 32
        Words kept per line (the first ones).
    min_token_count : int, default 1
        Words seen fewer times in the training lines are unknown.
    embedding_dim : int, default 32
    text_hidden : int, default 32
        LSTM units of the text autoencoder = size of a line encoding.
    text_epochs : int, default 50
        Epochs of the text autoencoder (over distinct lines, weighted by counts).
    hidden_size : int, default 32
        LSTM units of the window autoencoder (part 2).
    latent_dim : int, default 16
    max_len : int, default 50
        Longer windows are cut into consecutive chunks of ``max_len`` lines.
    line_weight : float, default 1.0
        Window score = part-2 error + ``line_weight`` * mean part-1 line loss (the
        paper's score reflects both the content and the context of lines; 0 keeps
        part 2 only; docs/results.md compares the two).
    epochs, batch_size, lr, weight_decay, patience, device, num_threads
        Training (``epochs`` is for part 2; both parts share the rest). Defaults: 20
        epochs, batch 64 (the authors' batch size), Adam 5e-3, patience 5, one CPU
        thread.
    threshold, contamination, valid_fraction, include_anomalies, random_state
        See :class:`~logsieve.detectors.base.BaseDetector`.

    Attributes
    ----------
    words_ : EventVocab
        Word vocabulary of the training lines.
    text_source_ : str
        ``"messages"``, ``"templates"`` or ``"event_ids"``: what training read.
    """

    description = (
        "two LSTM autoencoders over raw log lines: line encodings, then the window's "
        "sequence of them"
    )
    citation = CITATION
    input_kind = "raw"
    requires_labels = False
    #: identical event ids do not mean identical text: windows are de-duplicated by their
    #: cleaned lines inside _score
    score_key: ClassVar[str | None] = None

    text: str = "auto"
    clean_digits: bool = True
    max_tokens: int = 32
    min_token_count: int = 1
    embedding_dim: int = 32
    text_hidden: int = 32
    text_epochs: int = 50
    hidden_size: int = 32
    latent_dim: int = 16
    max_len: int = 50
    line_weight: float = 1.0
    epochs: int = 20
    batch_size: int = 64
    lr: float = 5e-3
    patience: int | None = 5
    num_threads: int | None = 1

    @classmethod
    def _test_params(cls) -> dict[str, Any]:
        return {
            "embedding_dim": 8,
            "text_hidden": 8,
            "text_epochs": 40,
            "hidden_size": 16,
            "latent_dim": 8,
            "max_len": 16,
            "epochs": 100,
            "batch_size": 16,
            "lr": 2e-2,
            "patience": 1000,
        }

    def _validate_params(self) -> None:
        super()._validate_params()
        check_choice(self, "text", TEXT_SOURCES)
        check_positive_ints(
            self,
            "max_tokens",
            "min_token_count",
            "embedding_dim",
            "text_hidden",
            "text_epochs",
            "hidden_size",
            "latent_dim",
            "max_len",
        )
        if not (math.isfinite(float(self.line_weight)) and float(self.line_weight) >= 0):
            raise LogsieveError(f"line_weight must be >= 0, not {self.line_weight!r}")

    # ------------------------------------------------------------------ text
    def _source(self, windows: pl.DataFrame) -> str:
        if self.text == "messages" or (self.text == "auto" and MESSAGES in windows.columns):
            if MESSAGES not in windows.columns:
                raise LogsieveError(
                    "bursic reads raw lines from a 'messages' column: attach it with "
                    "logsieve.grouping.text.attach_messages(windows, events) "
                    "(or pass text='templates')"
                )
            return "messages"
        return "templates" if self.templates_ else "event_ids"

    def _lines(self, windows: pl.DataFrame, warn: bool = True) -> tuple[LinesTable, str]:
        source = self._source(windows)
        if source == "messages":
            column = windows.get_column(MESSAGES)
            if not isinstance(column.dtype, pl.List) or column.dtype.inner not in (
                pl.String,
                pl.Null,
            ):
                raise LogsieveError(f"'messages' must be a list of strings, not {column.dtype}")
            if column.null_count():
                column = column.fill_null(pl.lit([], dtype=pl.List(pl.String)))
            fitted = getattr(self, "text_source_", "messages")
            if fitted != "messages" and warn:
                logger.warning("bursic was trained on %s but scores raw messages", fitted)
            return _lines_from(column, bool(self.clean_digits)), source
        ids = windows.get_column(EVENT_IDS)
        if source == "templates":
            table = pl.DataFrame(
                {"id": list(self.templates_), "text": list(self.templates_.values())},
                schema={"id": pl.String, "text": pl.String},
            )
            flat = pl.DataFrame({"id": ids.explode().drop_nulls()}).join(
                table, on="id", how="left", maintain_order="left"
            )
            texts = flat.select(pl.col("text").fill_null(pl.col("id"))).to_series()
            column = _split_by_lengths(texts, ids.list.len().fill_null(0).to_numpy())
        else:
            column = ids
        if warn and getattr(self, "_warned_source", None) != source:
            logger.warning(
                "bursic: no 'messages' column; using %s as line text (attach raw lines with "
                "logsieve.grouping.text.attach_messages)",
                "template text" if source == "templates" else "event ids",
            )
            self._warned_source = source
        return _lines_from(column, False), source

    def _tokens(self, texts: pl.Series) -> pl.Series:
        """Whitespace tokens of each distinct line (first ``max_tokens``; blank -> one marker)."""
        tokens = texts.str.extract_all(r"\S+").list.head(int(self.max_tokens))
        return pl.select(
            pl.when(tokens.list.len() > 0)
            .then(tokens)
            .otherwise(pl.lit([BLANK], dtype=pl.List(pl.String)))
        ).to_series()

    def _token_arrays(self, texts: pl.Series) -> dict[str, np.ndarray]:
        enc = self.words_.encode(self._tokens(texts))
        return {
            "codes": pad_sequences(enc, max_len=int(self.max_tokens)).astype(np.int64),
            "lengths": enc.lengths.astype(np.int64),
        }

    def _fit_words(self, texts: pl.Series, counts: np.ndarray) -> EventVocab:
        frame = pl.DataFrame({"t": self._tokens(texts), "n": counts}).explode("t")
        freq = (
            frame.group_by("t").agg(pl.col("n").sum()).filter(pl.col("n") >= self.min_token_count)
        )
        freq = freq.sort(["n", "t"], descending=[True, False])
        return EventVocab(freq.get_column("t").to_list())

    # ------------------------------------------------------------------ fitting
    def build_module(self) -> _BursicNet:
        return _BursicNet(
            len(self.words_),
            self.embedding_dim,
            self.text_hidden,
            self.hidden_size,
            self.latent_dim,
        )

    def _encode_lines(
        self, module: _BursicNet, texts: pl.Series, device: torch.device
    ) -> tuple[np.ndarray, np.ndarray]:
        """(line encodings, part-1 loss per line) of distinct line texts."""
        arrays = self._token_arrays(texts)
        codes, nll = [], []
        module.eval()
        with torch.inference_mode():
            for lo in range(0, len(texts), self.score_batch_size):
                batch = {
                    k: torch.from_numpy(v[lo : lo + self.score_batch_size]).to(device)
                    for k, v in arrays.items()
                }
                codes.append(module.text.encode(batch["codes"], batch["lengths"]).cpu().numpy())
                nll.append(_text_nll(module.text, batch).cpu().numpy())
        enc = (
            np.concatenate(codes)
            if codes
            else np.zeros((0, int(self.text_hidden)), dtype=np.float32)
        )
        return enc.astype(np.float32), (np.concatenate(nll) if nll else np.zeros(0)).astype(
            np.float64
        )

    def _seq_input(
        self, encodings: np.ndarray, lines: EncodedWindows
    ) -> tuple[np.ndarray, EncodedWindows]:
        """Part-2 gather table and the windows' line sequences with the end marker appended.

        Table rows: 0 padding (zeros), ``1..N`` the standardised line encodings with a 0
        flag column, ``N + 1`` the end-of-window marker (zeros, flag ``END_FLAG``).
        """
        n, dim = encodings.shape
        table = np.zeros((n + 2, dim + 1), dtype=np.float32)
        table[1 : n + 1, :dim] = (encodings - self.enc_mean_) / self.enc_std_
        table[n + 1, dim] = END_FLAG
        return table, append_marker(lines, n + 1)

    def _chunk_arrays(
        self, encoded: EncodedWindows, weights: np.ndarray | None = None
    ) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray, np.ndarray]:
        """Distinct chunks (+ weights); per chunk of ``encoded``: distinct row, length, window."""
        codes, lengths, owner = chunk_sequences(encoded, int(self.max_len))
        uniq, inverse = unique_rows(codes) if len(codes) else (codes, np.zeros(0, dtype=np.int64))
        w = np.ones(len(codes)) if weights is None else weights[owner]
        arrays = {
            "codes": uniq.astype(np.int64),
            "lengths": (uniq != PAD).sum(axis=1).astype(np.int64),
            "weight": np.bincount(inverse, weights=w, minlength=len(uniq)).astype(np.float32),
        }
        return arrays, inverse, lengths, owner

    def _fit(
        self, train: pl.DataFrame, valid: pl.DataFrame, progress: ProgressCallback | None
    ) -> None:
        vwin = self._valid_for_loss(valid)
        both = (
            pl.concat(
                [train.select(self._columns(train)), vwin.select(self._columns(train))],
                how="vertical_relaxed",
            )
            if vwin.height
            else train
        )
        lines, source = self._lines(both)
        self.text_source_ = source
        n_train = train.height
        enc = lines.encoded
        per_line = np.repeat(np.arange(len(enc)), enc.lengths)
        line_idx = enc.codes.astype(np.int64) - 1
        in_train = per_line < n_train
        train_counts = np.bincount(line_idx[in_train], minlength=len(lines.texts)).astype(
            np.float64
        )
        valid_counts = np.bincount(line_idx[~in_train], minlength=len(lines.texts)).astype(
            np.float64
        )
        self.words_ = self._fit_words(
            lines.texts.filter(pl.Series(train_counts > 0)), train_counts[train_counts > 0]
        )
        tokens = self._token_arrays(lines.texts)
        seen = train_counts > 0
        text_train = {k: v[seen] for k, v in tokens.items()} | {
            "weight": train_counts[seen].astype(np.float32)
        }
        vseen = valid_counts > 0
        text_valid = (
            {k: v[vseen] for k, v in tokens.items()}
            | {"weight": valid_counts[vseen].astype(np.float32)}
            if vseen.any()
            else None
        )
        common: dict[str, Any] = {
            "batch_size": self.batch_size,
            "lr": self.lr,
            "weight_decay": self.weight_decay,
            "patience": self.patience,
            "progress": progress,
        }
        with self._session() as (device, generator):
            module = self.build_module()
            hist1 = train_module(
                module.text,
                _text_nll,
                text_train,
                valid=text_valid,
                epochs=self.text_epochs,
                device=device,
                generator=generator,
                name="Bursic.text",
                **common,
            )
            encodings, _ = self._encode_lines(module, lines.texts, device)
            w = train_counts / train_counts.sum()
            self.enc_mean_ = (encodings * w[:, None]).sum(axis=0).astype(np.float32)
            spread = np.sqrt((((encodings - self.enc_mean_) ** 2) * w[:, None]).sum(axis=0))
            self.enc_std_ = np.maximum(spread, 1e-3).astype(np.float32)
            table, marked = self._seq_input(encodings, enc)
            module.seq.table = torch.from_numpy(table)
            seq_train, *_ = self._chunk_arrays(_rows(marked, 0, n_train))
            seq_valid = (
                self._chunk_arrays(_rows(marked, n_train, len(marked)))[0] if vwin.height else None
            )
            logger.info(
                "Bursic: %d distinct lines (%d words) from %s, %d distinct training chunks",
                int(seen.sum()),
                self.words_.n_keys,
                source,
                len(seq_train["codes"]),
            )
            hist2 = train_module(
                module.seq,
                _seq_loss,
                seq_train,
                valid=seq_valid,
                epochs=self.epochs,
                device=device,
                generator=generator,
                name="Bursic.windows",
                **common,
            )
        module.cpu().eval()
        self.module_ = module
        self.history_ = [dict(r.to_dict(), stage="text") for r in hist1] + [
            dict(r.to_dict(), stage="windows") for r in hist2
        ]

    @staticmethod
    def _columns(windows: pl.DataFrame) -> list[str]:
        return [c for c in (EVENT_IDS, MESSAGES) if c in windows.columns]

    # ------------------------------------------------------------------ scoring
    def _analyse(self, windows: pl.DataFrame) -> dict[str, Any]:
        """Lines, per-line part-1 loss, and per-position part-2 errors of ``windows``."""
        lines, _ = self._lines(windows)
        net = cast(_BursicNet, self.module_)
        with self._session() as (device, _):
            net.to(device)
            encodings, line_nll = self._encode_lines(net, lines.texts, device)
            table, marked = self._seq_input(encodings, lines.encoded)
            arrays, inverse, lengths, owner = self._chunk_arrays(marked)
            arrays.pop("weight")
            net.seq.table = torch.from_numpy(table).to(device)
            errors = np.zeros((0, int(self.max_len)))
            if len(arrays["codes"]):
                out = []
                net.eval()
                with torch.inference_mode():
                    for lo in range(0, len(arrays["codes"]), self.score_batch_size):
                        batch = {
                            k: torch.from_numpy(v[lo : lo + self.score_batch_size]).to(device)
                            for k, v in arrays.items()
                        }
                        out.append(_position_errors(net.seq, batch).cpu().numpy())
                errors = np.concatenate(out).astype(np.float64)[inverse]
            net.seq.table = torch.zeros(1, int(self.text_hidden) + 1)
        return {
            "lines": lines,
            "line_nll": line_nll,
            "errors": errors,
            "lengths": lengths,
            "owner": owner,
        }

    def _score(self, windows: pl.DataFrame) -> np.ndarray:
        a = self._analyse(windows)
        n = windows.height
        owner, lengths = a["owner"], a["lengths"]
        total = np.bincount(owner, weights=a["errors"].sum(axis=1), minlength=n)
        count = np.bincount(owner, weights=lengths.astype(np.float64), minlength=n)
        scores = np.zeros(n, dtype=np.float64)
        np.divide(total, count, out=scores, where=count > 0)
        if float(self.line_weight) > 0:
            enc = a["lines"].encoded
            per = np.bincount(
                enc.owner, weights=a["line_nll"][enc.codes.astype(np.int64) - 1], minlength=n
            )
            mean_nll = np.divide(per, enc.lengths, out=np.zeros(n), where=enc.lengths > 0)
            scores += float(self.line_weight) * mean_nll
        return scores

    def explain(self, windows: pl.DataFrame, top: int | None = None) -> list[dict[str, Any]]:
        """Per window: score, threshold, is_anomaly and ``lines``: the ``top`` (default 3) lines
        whose encoding part 2 reconstructs worst (``position``, ``line_id`` when the
        windows have ``line_ids``, ``text`` (raw), ``error`` (part 2), ``line_loss``
        (part 1: how unusual the line's text is))."""
        self._check_fitted()
        windows = check_windows(windows)
        scores = self.decision_function(windows)
        a = self._analyse(windows)
        lines, errors, owner = a["lines"], a["errors"], a["owner"]
        enc = lines.encoded
        k = max(1, int(top) if top is not None else 3)
        line_ids = windows.get_column(LINE_IDS).to_list() if LINE_IDS in windows.columns else None
        texts = windows.get_column(MESSAGES).to_list() if MESSAGES in windows.columns else None
        first_chunk = np.searchsorted(owner, np.arange(windows.height))
        details = []  # per row (score_key is None: every window is scored on its own)
        for i in range(windows.height):
            n = int(enc.lengths[i])
            pos = np.arange(n)
            err = (
                errors[first_chunk[i] + pos // int(self.max_len), pos % int(self.max_len)]
                if n
                else np.zeros(0)
            )
            codes = enc.codes[enc.offsets[i] : enc.offsets[i] + n].astype(np.int64) - 1
            worst = np.argsort(-err, kind="stable")[:k].tolist()
            details.append(
                [
                    {
                        "position": p,
                        "line_id": _line_at(line_ids[i] if line_ids else None, p),
                        "text": texts[i][p] if texts else lines.raw[codes[p]],
                        "error": float(err[p]),
                        "line_loss": float(a["line_nll"][codes[p]]),
                    }
                    for p in worst
                ]
            )
        return explanations_by_row(
            self, windows, np.arange(windows.height), scores, details, "lines", line_ids=False
        )

    # ------------------------------------------------------------------ persistence
    def _get_state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        state, arrays = super()._get_state()
        state["words_"] = self.words_.to_list()
        state["text_source_"] = self.text_source_
        arrays["enc_mean"] = self.enc_mean_
        arrays["enc_std"] = self.enc_std_
        return state, arrays

    def _set_state(self, state: Mapping[str, Any], arrays: Mapping[str, np.ndarray]) -> None:
        self.words_ = EventVocab.from_list(list(state["words_"]))
        self.text_source_ = str(state["text_source_"])
        self.enc_mean_ = np.asarray(arrays["enc_mean"], dtype=np.float32)
        self.enc_std_ = np.asarray(arrays["enc_std"], dtype=np.float32)
        super()._set_state(state, arrays)


def _split_by_lengths(flat: pl.Series, lengths: np.ndarray) -> pl.Series:
    """A list column from a flat Series and per-row lengths (vectorized)."""
    owner = np.repeat(np.arange(len(lengths), dtype=np.int64), lengths)
    frame = pl.DataFrame({"_w": owner, "t": flat}).group_by("_w", maintain_order=True).agg("t")
    full = pl.DataFrame({"_w": np.arange(len(lengths), dtype=np.int64)}).join(
        frame, on="_w", how="left", maintain_order="left"
    )
    return full.get_column("t").fill_null(pl.lit([], dtype=pl.List(pl.String))).alias(MESSAGES)


def _rows(encoded: EncodedWindows, lo: int, hi: int) -> EncodedWindows:
    """Windows ``lo:hi`` of an encoding."""
    offsets = np.concatenate([encoded.offsets, [len(encoded.codes)]])
    return EncodedWindows(encoded.codes[offsets[lo] : offsets[hi]], encoded.lengths[lo:hi])
