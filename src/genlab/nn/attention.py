"""Restricted (windowed) self-attention: each word attends only to the ``k`` words on each side of it.

For a review ``x_1..x_T`` (``(B, T, D)``) and a single head of width ``H``::

    q_i = W_q x_i,   k_j = W_k x_j,   v_j = W_v x_j                       (learnable, no bias)
    a_ij = softmax_j( q_i . k_j / sqrt(H) )   over  j in [i-k, i+k], j a real word (never padding)
    out_i = sum_j a_ij v_j

Vectorised, with no Python loop over positions: keys and values are padded with ``k`` zeros on each side
and cut into windows of ``2k + 1`` with ``Tensor.unfold``, giving ``(B, T, 2k+1, H)``; the padding mask
is unfolded the same way, so window slots outside the review or on padding get ``-inf`` before the softmax.
A real word always sees itself, so every real row of the softmax is well defined; rows of padding
positions are set to zero.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from genlab.errors import ConfigError


def windows(x: torch.Tensor, k: int, value: float = 0.0) -> torch.Tensor:
    """``(B, T, ...) -> (B, T, 2k+1, ...)``: slot ``w`` of row ``i`` holds position ``i - k + w``."""
    b, t = x.shape[:2]
    rest = x.shape[2:]
    flat = x.reshape(b, t, -1)
    padded = nn.functional.pad(flat.transpose(1, 2), (k, k), value=value)  # (B, F, T + 2k)
    win = padded.unfold(2, 2 * k + 1, 1)  # (B, F, T, 2k+1)
    return win.permute(0, 2, 3, 1).reshape(b, t, 2 * k + 1, *rest)


class RestrictedSelfAttention(nn.Module):
    """Single-head self-attention over a window of ``k`` words on each side, scaled by ``sqrt(H)``."""

    def __init__(self, dim: int, hidden: int, k: int = 5):
        super().__init__()
        if k < 1:
            raise ConfigError(f"bad attention window {k}; it must be >= 1 (words on each side)")
        self.k, self.hidden = k, hidden
        self.q = nn.Linear(dim, hidden, bias=False)
        self.key = nn.Linear(dim, hidden, bias=False)
        self.v = nn.Linear(dim, hidden, bias=False)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``x (B, T, D)``, ``mask (B, T)`` bool -> ``(out (B, T, H), weights (B, T, 2k+1))``."""
        q, kk, v = self.q(x), self.key(x), self.v(x)
        kw, vw = windows(kk, self.k), windows(v, self.k)  # (B, T, W, H)
        valid = windows(mask.to(torch.float32), self.k) > 0.5  # (B, T, W): slot holds a real word
        scores = (q.unsqueeze(2) * kw).sum(-1) / math.sqrt(self.hidden)  # (B, T, W)
        scores = scores.masked_fill(~valid, float("-inf"))
        rows = mask.unsqueeze(-1)  # padding queries: all slots may be -inf; give them zeros instead of NaN
        weights = torch.softmax(scores.masked_fill(~rows, 0.0), dim=-1) * rows
        out = (weights.unsqueeze(-1) * vw).sum(2)
        return out, weights


def window_to_matrix(weights: torch.Tensor, k: int) -> torch.Tensor:
    """Window weights ``(T, 2k+1)`` of one review -> the full ``(T, T)`` matrix (row i attends to col j)."""
    t = weights.shape[0]
    full = torch.zeros(t, t + 2 * k, dtype=weights.dtype)
    rows = torch.arange(t)[:, None]
    cols = rows + torch.arange(2 * k + 1)[None, :]
    full[rows, cols] = weights
    return full[:, k : k + t]
