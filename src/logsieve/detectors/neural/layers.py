"""Transformer building blocks shared by logsieve's attention models.

A small encoder written out instead of ``torch.nn.TransformerEncoder`` so that every
block can return its attention maps (``nn.TransformerEncoderLayer`` never asks its
attention for weights), which the explanations need:

- :class:`PositionalEncoding`: fixed sinusoidal (Vaswani et al., 2017; NeuralLog's
  ``PositionEmbedding``), learned, or none;
- :class:`EncoderBlock`: multi-head self-attention and a ReLU feed-forward layer, each
  with dropout and a residual connection, post-norm (NeuralLog's ``TransformerBlock``,
  the original Transformer) or pre-norm;
- :class:`Encoder`: optional input projection, positional encoding, a stack of blocks;
  ``forward(x, pad_mask, need_weights)`` returns the hidden states and, on request, the
  per-head attention of every block;
- :func:`masked_mean`: mean over the non-padding positions;
- :func:`attention_rollout`: how much each input position contributes to a mean-pooled
  output, by attention rollout (Abnar & Zuidema, ACL 2020): per block the head-averaged
  attention plus the identity (the residual path), row-normalised, multiplied through
  the blocks.

Padding masks follow PyTorch: ``True`` marks a padding position (ignored as a key).
A row that is all padding (an empty window) would make softmax undefined, so
:meth:`Encoder.forward` unmasks its first position (a zero vector plus the position
code): the window still gets a finite, constant representation.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from logsieve.detectors.base import check_positive_ints
from logsieve.errors import LogsieveError

__all__ = [
    "POSITIONAL",
    "Encoder",
    "EncoderBlock",
    "PositionalEncoding",
    "attention_rollout",
    "check_encoder_params",
    "check_heads",
    "masked_mean",
    "sinusoidal_table",
    "top_positions",
    "unmask_empty",
]

POSITIONAL = ("sinusoidal", "learned", "none")


def sinusoidal_table(length: int, dim: int) -> torch.Tensor:
    """``(length, dim)`` sinusoidal codes: ``sin`` on even, ``cos`` on odd dimensions."""
    pos = torch.arange(length, dtype=torch.float32)[:, None]
    idx = torch.arange(dim, dtype=torch.float32)[None, :]
    angle = pos / torch.pow(10000.0, (2.0 * torch.div(idx, 2, rounding_mode="floor")) / dim)
    table = torch.empty(length, dim)
    table[:, 0::2] = torch.sin(angle[:, 0::2])
    table[:, 1::2] = torch.cos(angle[:, 1::2])
    return table


class PositionalEncoding(nn.Module):
    """Adds a position code to ``(batch, length, dim)`` inputs.

    ``kind="sinusoidal"`` needs no parameters and accepts any length; ``"learned"`` is
    one trained vector per position up to ``max_len``; ``"none"`` is the identity.
    """

    table: torch.Tensor  # the sinusoidal codes (a non-persistent buffer)

    def __init__(self, dim: int, kind: str = "sinusoidal", max_len: int = 512) -> None:
        super().__init__()
        if kind not in POSITIONAL:
            raise ValueError(f"positional encoding must be one of {POSITIONAL}, not {kind!r}")
        self.kind = kind
        self.dim = dim
        self.max_len = max_len
        self.learned = nn.Parameter(torch.zeros(max_len, dim)) if kind == "learned" else None
        if self.learned is not None:
            nn.init.normal_(self.learned, std=0.02)
        # fixed codes are recomputed on load, so they stay out of the state dict
        self.register_buffer("table", sinusoidal_table(max_len, dim), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.kind == "none":
            return x
        length = x.shape[1]
        if self.learned is not None:
            if length > self.max_len:
                raise ValueError(
                    f"sequence of {length} positions exceeds the learned max_len {self.max_len}"
                )
            return x + self.learned[:length].to(x.dtype)
        if length > self.table.shape[0]:
            self.table = sinusoidal_table(length, self.dim).to(self.table.device)
        return x + self.table[:length].to(x.dtype)


class EncoderBlock(nn.Module):
    """Self-attention + feed-forward, each with dropout, a residual and layer norm.

    ``norm_first=False`` (post-norm) normalises after each residual sum, as NeuralLog
    and the original Transformer do; ``True`` normalises the input of each sub-layer.
    """

    def __init__(
        self,
        d_model: int,
        num_heads: int,
        ff_dim: int,
        dropout: float = 0.1,
        norm_first: bool = False,
    ) -> None:
        super().__init__()
        self.attention = nn.MultiheadAttention(
            d_model, num_heads, dropout=dropout, batch_first=True
        )
        self.feed_forward = nn.Sequential(
            nn.Linear(d_model, ff_dim), nn.ReLU(), nn.Linear(ff_dim, d_model)
        )
        self.norm1 = nn.LayerNorm(d_model, eps=1e-6)
        self.norm2 = nn.LayerNorm(d_model, eps=1e-6)
        self.dropout1 = nn.Dropout(dropout)
        self.dropout2 = nn.Dropout(dropout)
        self.norm_first = norm_first

    def _attend(
        self, x: torch.Tensor, pad_mask: torch.Tensor | None, need_weights: bool
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        out, weights = self.attention(
            x,
            x,
            x,
            key_padding_mask=pad_mask,
            need_weights=need_weights,
            average_attn_weights=False,
        )
        return self.dropout1(out), weights

    def forward(
        self, x: torch.Tensor, pad_mask: torch.Tensor | None = None, need_weights: bool = False
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """``x``: ``(batch, length, d_model)`` -> ``(x, weights or None)``.

        ``weights``: per-head attention, ``(batch, heads, length, length)``.
        """
        if self.norm_first:
            attended, weights = self._attend(self.norm1(x), pad_mask, need_weights)
            x = x + attended
            x = x + self.dropout2(self.feed_forward(self.norm2(x)))
        else:
            attended, weights = self._attend(x, pad_mask, need_weights)
            x = self.norm1(x + attended)
            x = self.norm2(x + self.dropout2(self.feed_forward(x)))
        return x, weights


class Encoder(nn.Module):
    """Input projection (when ``input_dim`` is given), positions, ``num_layers`` blocks."""

    def __init__(
        self,
        d_model: int,
        num_heads: int,
        num_layers: int,
        ff_dim: int,
        *,
        input_dim: int | None = None,
        dropout: float = 0.1,
        positional: str = "sinusoidal",
        max_len: int = 512,
        norm_first: bool = False,
    ) -> None:
        super().__init__()
        self.projection = nn.Linear(input_dim, d_model) if input_dim is not None else None
        self.positional = PositionalEncoding(d_model, positional, max_len)
        self.input_dropout = nn.Dropout(dropout)
        self.blocks = nn.ModuleList(
            EncoderBlock(d_model, num_heads, ff_dim, dropout, norm_first) for _ in range(num_layers)
        )
        self.final_norm = nn.LayerNorm(d_model, eps=1e-6) if norm_first else None

    def forward(
        self, x: torch.Tensor, pad_mask: torch.Tensor | None = None, need_weights: bool = False
    ) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """Hidden states ``(batch, length, d_model)`` and each block's attention (if asked)."""
        if self.projection is not None:
            x = self.projection(x)
        x = self.input_dropout(self.positional(x))
        if pad_mask is not None:
            pad_mask = unmask_empty(pad_mask)
        weights: list[torch.Tensor] = []
        for block in self.blocks:
            x, w = block(x, pad_mask, need_weights)
            if w is not None:
                weights.append(w)
        if self.final_norm is not None:
            x = self.final_norm(x)
        return x, weights


def unmask_empty(pad_mask: torch.Tensor) -> torch.Tensor:
    """``pad_mask`` with position 0 unmasked in rows that are all padding."""
    empty = pad_mask.all(dim=1)
    if not bool(empty.any()):
        return pad_mask
    pad_mask = pad_mask.clone()
    pad_mask[empty, 0] = False
    return pad_mask


def masked_mean(x: torch.Tensor, pad_mask: torch.Tensor | None) -> torch.Tensor:
    """Mean of ``x`` ``(batch, length, dim)`` over the positions not masked as padding."""
    if pad_mask is None:
        return x.mean(dim=1)
    pad_mask = unmask_empty(pad_mask)
    keep = (~pad_mask).to(x.dtype)[:, :, None]
    return (x * keep).sum(dim=1) / keep.sum(dim=1).clamp_min(1.0)


def attention_rollout(
    weights: list[torch.Tensor], pad_mask: torch.Tensor | None = None
) -> torch.Tensor:
    """Share of each input position in the mean-pooled output, ``(batch, length)``, rows sum to 1.

    ``weights``: per block ``(batch, heads, length, length)`` attention (query x key).
    Padding positions get 0. With no block the positions share equally.
    """
    if not weights:
        raise ValueError("attention_rollout needs the attention of at least one block")
    batch, _, length, _ = weights[0].shape
    eye = torch.eye(length, dtype=weights[0].dtype, device=weights[0].device)
    rollout = eye.expand(batch, length, length)
    for w in weights:
        a = 0.5 * w.mean(dim=1) + 0.5 * eye
        a = a / a.sum(dim=-1, keepdim=True)
        rollout = a @ rollout
    if pad_mask is None:
        share = rollout.mean(dim=1)
    else:
        pad_mask = unmask_empty(pad_mask)
        keep = (~pad_mask).to(rollout.dtype)
        share = (rollout * keep[:, :, None]).sum(dim=1) / keep.sum(dim=1, keepdim=True).clamp_min(
            1.0
        )
        share = share * keep
    total = share.sum(dim=1, keepdim=True)
    return share / torch.where(total > 0, total, torch.ones_like(total))


def check_heads(d_model: int, num_heads: int) -> str | None:
    """Error text when ``d_model`` is not divisible by ``num_heads`` (None when fine)."""
    if d_model % num_heads:
        return f"d_model ({d_model}) must be divisible by num_heads ({num_heads})"
    return None


def check_encoder_params(obj: Any) -> None:
    """Check the encoder parameters of a Transformer detector (``d_model``, ``num_heads``,
    ``num_layers``, ``ff_dim``, ``dropout``, ``positional``)."""
    check_positive_ints(obj, "d_model", "num_heads", "num_layers", "ff_dim")
    problem = check_heads(int(obj.d_model), int(obj.num_heads))
    if problem:
        raise LogsieveError(problem)
    if not 0.0 <= float(obj.dropout) < 1.0:
        raise LogsieveError(f"dropout must be in [0, 1), not {obj.dropout!r}")
    if obj.positional not in POSITIONAL:
        raise LogsieveError(
            f"positional must be one of {', '.join(POSITIONAL)}, not {obj.positional!r}"
        )


def top_positions(weights: np.ndarray, k: int) -> np.ndarray:
    """Indices of the ``k`` largest weights, largest first (ties: lower index first)."""
    order = np.argsort(-weights, kind="stable")
    return order[: max(0, int(k))]
