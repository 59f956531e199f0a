"""Review classifiers: recurrent (Elman / GRU), token-wise MLP, and MLP + restricted self-attention.

Every model maps token ids ``(B, T)`` and a padding mask ``(B, T)`` to two logits ``(B, 2)`` =
(negative, positive). Words enter through :class:`WordEmbedding`: frozen GloVe vectors (zero for unknown words
and padding; kept out of the checkpoint, since they are the fetched file) or a learned table.

* :class:`RecurrentClassifier`: run the cells over the words, take the state after the last real word, then a
  small MLP head.
* :class:`TokenMLP`: each word gets its own 2-class sub-score ``s_i = MLP(x_i)``; the review's scores are the
  mean of the sub-scores over its real words. The sub-scores *are* the explanation: a word pushes the review
  toward the class whose sub-score it raises.
* :class:`AttentionMLP`: each word first attends to its ``k`` neighbours on each side
  (:class:`~genlab.nn.attention.RestrictedSelfAttention`), then the token-wise MLP reads the attention output,
  so a word's sub-score can depend on its context ("not good").
"""

from __future__ import annotations

import torch
from torch import nn

from genlab.nn.attention import RestrictedSelfAttention
from genlab.nn.recurrent import Recurrent

MODELS = ("rnn", "gru", "mlp", "attention")


class WordEmbedding(nn.Module):
    """Token id -> vector. With ``table``: frozen (non-persistent buffer); else a learned ``nn.Embedding``."""

    def __init__(self, vocab_size: int, dim: int, table: torch.Tensor | None = None):
        super().__init__()
        self.frozen = table is not None
        if table is not None:
            self.register_buffer("table", table, persistent=False)
            self.dim = table.shape[1]
        else:
            self.emb = nn.Embedding(vocab_size, dim, padding_idx=0)
            nn.init.normal_(self.emb.weight, std=0.3)
            with torch.no_grad():
                self.emb.weight[0].zero_()
            self.dim = dim

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return self.table[ids] if self.frozen else self.emb(ids)


def mlp(sizes: list[int], act: type[nn.Module] = nn.ReLU) -> nn.Sequential:
    """Linear layers between ``sizes`` with ``act`` between them (not after the last)."""
    layers: list[nn.Module] = []
    for i in range(len(sizes) - 1):
        layers.append(nn.Linear(sizes[i], sizes[i + 1]))
        if i < len(sizes) - 2:
            layers.append(act())
    return nn.Sequential(*layers)


class RecurrentClassifier(nn.Module):
    """Elman RNN or GRU over the words; the last real word's state -> MLP head -> 2 logits."""

    def __init__(
        self,
        embed: WordEmbedding,
        cell: str = "gru",
        hidden: int = 64,
        layers: int = 1,
        activation: str = "tanh",
        tbptt: int = 0,
        reset_after: bool = False,
    ):
        super().__init__()
        self.embed = embed
        self.rnn = Recurrent(
            embed.dim, hidden, layers, cell, activation, reset_after=reset_after, tbptt=tbptt
        )
        self.head = mlp([hidden, hidden, 2])

    def forward(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        _, last = self.rnn(self.embed(ids), mask)
        return self.head(last)


class TokenMLP(nn.Module):
    """Per-word sub-scores ``MLP(x_i) -> (neg, pos)``; the review score is their mean over real words."""

    def __init__(self, embed: WordEmbedding, widths: tuple[int, ...] = (64, 32), in_dim: int | None = None):
        super().__init__()
        self.embed = embed
        self.mlp = mlp([in_dim or embed.dim, *widths, 2])

    def features(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return self.embed(ids)

    def sub_scores(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """``(B, T, 2)`` per-word (negative, positive) scores; zero at padding."""
        return self.mlp(self.features(ids, mask)) * mask.unsqueeze(-1)

    def forward(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        s = self.sub_scores(ids, mask)
        return s.sum(1) / mask.sum(1, keepdim=True).clamp(min=1)


class AttentionMLP(TokenMLP):
    """Restricted self-attention (window ``k`` each side, width ``hidden``) and then the token-wise MLP."""

    def __init__(
        self, embed: WordEmbedding, hidden: int = 64, k: int = 5, widths: tuple[int, ...] = (64, 32)
    ):
        super().__init__(embed, widths, in_dim=hidden)
        self.attn = RestrictedSelfAttention(embed.dim, hidden, k)
        self.last_weights: torch.Tensor | None = None

    def features(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        out, w = self.attn(self.embed(ids), mask)
        self.last_weights = w.detach()
        return out
