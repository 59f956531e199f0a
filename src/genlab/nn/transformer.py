"""The transformer of "Attention is all you need", small enough to read in one sitting and train in seconds.

An encoder-decoder for sequence-to-sequence tasks (here: copy or reverse a sequence of symbols)::

    encoder layer:  x = AddNorm(x, SelfAttn(x));          x = AddNorm(x, FFN(x))
    decoder layer:  y = AddNorm(y, CausalSelfAttn(y));    y = AddNorm(y, CrossAttn(y, memory));
                    y = AddNorm(y, FFN(y))
    AddNorm(x, F) = LayerNorm(x + F(x))                    (post-LN, as in the paper)
    FFN(x) = W2 relu(W1 x + b1) + b2
    input = sqrt(d) * embedding(token) + sinusoidal(position)

Attention is written out: ``softmax(Q K^T / sqrt(d_k) + mask) V``, the causal mask setting entries above the
diagonal to -inf so a position never sees the future. :func:`attention_multiplications` is its cost,
T^2 (D + M) multiplications for T positions, key width D and value width M (the tests check it against
``torch.utils.flop_counter``).

:func:`init_residual_branch` gives a residual branch F a zero-mean output at initialisation (E[F(u)] = 0):
zero biases and zero-mean weights in its last layer, scaled by 1/sqrt(2 * n_layers) so the residual stream's
variance stays bounded as layers are added.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from genlab.nn.embeddings import sinusoidal_embedding


def causal_mask(T: int, device: torch.device | str | None = None) -> torch.Tensor:
    """(T, T) boolean: True where query i may attend key j, i.e. j <= i."""
    return torch.ones(T, T, dtype=torch.bool, device=device).tril()


def attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor | None = None):
    """softmax(Q K^T / sqrt(d_k)) V with an optional boolean ``mask`` (False = not allowed).

    q: (..., Tq, D), k: (..., Tk, D), v: (..., Tk, M). Returns the output (..., Tq, M) and the weights.
    """
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.size(-1))
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf"))
    weights = scores.softmax(dim=-1)
    return weights @ v, weights


def attention_multiplications(T: int, D: int, M: int) -> int:
    """Multiplications of single-head attention over T positions: Q K^T costs T*T*D, weights @ V T*T*M."""
    return T * T * (D + M)


class MultiHeadAttention(nn.Module):
    def __init__(self, d_model: int, n_head: int):
        super().__init__()
        self.n_head = n_head
        self.q = nn.Linear(d_model, d_model)
        self.k = nn.Linear(d_model, d_model)
        self.v = nn.Linear(d_model, d_model)
        self.out = nn.Linear(d_model, d_model)

    def forward(self, x: torch.Tensor, memory: torch.Tensor | None = None, mask: torch.Tensor | None = None):
        src = x if memory is None else memory  # self-attention, or cross-attention to the encoder's output
        B, T, C = x.shape
        h = self.n_head

        def heads(t: torch.Tensor) -> torch.Tensor:
            return t.view(B, -1, h, C // h).transpose(1, 2)

        y, _ = attention(heads(self.q(x)), heads(self.k(src)), heads(self.v(src)), mask)
        return self.out(y.transpose(1, 2).reshape(B, T, C))


class FeedForward(nn.Module):
    """Position-wise FFN(x) = W2 relu(W1 x + b1) + b2, applied to every position alone."""

    def __init__(self, d_model: int, d_ff: int):
        super().__init__()
        self.w1 = nn.Linear(d_model, d_ff)
        self.w2 = nn.Linear(d_ff, d_model)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.w2(F.relu(self.w1(x)))


class AddNorm(nn.Module):
    """LayerNorm(x + F(x)): the residual connection followed by layer normalisation."""

    def __init__(self, d_model: int, residual: bool = True):
        super().__init__()
        self.norm = nn.LayerNorm(d_model)
        self.residual = residual  # False: LayerNorm(F(x)) only, the ablation without the skip connection

    def forward(self, x: torch.Tensor, fx: torch.Tensor) -> torch.Tensor:
        return self.norm(x + fx if self.residual else fx)


class EncoderLayer(nn.Module):
    def __init__(self, d_model: int, n_head: int, d_ff: int):
        super().__init__()
        self.attn, self.ffn = MultiHeadAttention(d_model, n_head), FeedForward(d_model, d_ff)
        self.an1, self.an2 = AddNorm(d_model), AddNorm(d_model)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.an1(x, self.attn(x))
        return self.an2(x, self.ffn(x))


class DecoderLayer(nn.Module):
    def __init__(self, d_model: int, n_head: int, d_ff: int, causal: bool = True):
        super().__init__()
        self.causal = causal
        self.self_attn = MultiHeadAttention(d_model, n_head)
        self.cross_attn = MultiHeadAttention(d_model, n_head)
        self.ffn = FeedForward(d_model, d_ff)
        self.an1, self.an2, self.an3 = AddNorm(d_model), AddNorm(d_model), AddNorm(d_model)

    def forward(self, y: torch.Tensor, memory: torch.Tensor) -> torch.Tensor:
        mask = causal_mask(y.size(1), y.device) if self.causal else None
        y = self.an1(y, self.self_attn(y, mask=mask))
        y = self.an2(y, self.cross_attn(y, memory))
        return self.an3(y, self.ffn(y))


class Seq2SeqTransformer(nn.Module):
    """Encoder-decoder transformer. Token 0 is the decoder's start symbol (BOS).

    Three switches exist for the ablations of the theory lab: ``positional=False`` drops the positional
    encoding (the model then sees a bag of tokens), ``causal=False`` drops the decoder's mask (each target
    position may look at the tokens after it, which in training are the answers), ``residual=False`` drops
    the skip connection of every Add&Norm (LayerNorm(F(x)) instead of LayerNorm(x + F(x))).
    """

    def __init__(
        self,
        vocab: int,
        d_model: int = 32,
        n_head: int = 4,
        d_ff: int = 64,
        n_layers: int = 2,
        positional: bool = True,
        causal: bool = True,
        residual: bool = True,
    ):
        super().__init__()
        self.d_model, self.positional = d_model, positional
        self.embed = nn.Embedding(vocab, d_model)
        # std d^-1/2, times sqrt(d) below: unit scale, like the sinusoidal positions
        nn.init.normal_(self.embed.weight, 0.0, d_model**-0.5)
        self.encoder = nn.ModuleList(EncoderLayer(d_model, n_head, d_ff) for _ in range(n_layers))
        self.decoder = nn.ModuleList(DecoderLayer(d_model, n_head, d_ff, causal) for _ in range(n_layers))
        for m in self.modules():
            if isinstance(m, AddNorm):
                m.residual = residual
        self.head = nn.Linear(d_model, vocab)

    def _inputs(self, tokens: torch.Tensor) -> torch.Tensor:
        x = self.embed(tokens) * math.sqrt(self.d_model)
        if not self.positional:
            return x
        return x + sinusoidal_embedding(torch.arange(tokens.size(1), device=tokens.device), self.d_model)

    def encode(self, src: torch.Tensor) -> torch.Tensor:
        x = self._inputs(src)
        for layer in self.encoder:
            x = layer(x)
        return x

    def decode(self, tgt_in: torch.Tensor, memory: torch.Tensor) -> torch.Tensor:
        y = self._inputs(tgt_in)
        for layer in self.decoder:
            y = layer(y, memory)
        return self.head(y)

    def forward(self, src: torch.Tensor, tgt_in: torch.Tensor) -> torch.Tensor:
        """Logits (B, T, vocab) for the next target token at each position (teacher forcing)."""
        return self.decode(tgt_in, self.encode(src))

    @torch.no_grad()
    def greedy(self, src: torch.Tensor, length: int, bos: int = 0) -> torch.Tensor:
        """Decode ``length`` tokens one at a time, each the arg-max given the ones before."""
        memory = self.encode(src)
        out = torch.full((src.size(0), 1), bos, dtype=torch.long, device=src.device)
        for _ in range(length):
            nxt = self.decode(out, memory)[:, -1].argmax(-1, keepdim=True)
            out = torch.cat([out, nxt], dim=1)
        return out[:, 1:]


def toy_batch(task: str, batch: int, length: int, vocab: int, generator: torch.Generator | None = None):
    """Source symbols in 1..vocab-1 (0 is BOS); target = the source (``copy``) or the source reversed."""
    src = torch.randint(1, vocab, (batch, length), generator=generator)
    tgt = src if task == "copy" else src.flip(1)
    tgt_in = torch.cat([torch.zeros(batch, 1, dtype=torch.long), tgt[:, :-1]], dim=1)
    return src, tgt_in, tgt


@torch.no_grad()
def toy_accuracy(model: Seq2SeqTransformer, src: torch.Tensor, tgt_in: torch.Tensor, tgt: torch.Tensor) -> dict:
    """How well ``model`` does the toy task: with the true previous tokens given (teacher forcing, as in
    training) and generating its own (greedy). Exact-sequence and per-token accuracies."""
    forced = model(src, tgt_in).argmax(-1) == tgt
    greedy = model.greedy(src, tgt.size(1)) == tgt
    return {
        "forced_token_acc": float(forced.float().mean()),
        "forced_seq_acc": float(forced.all(1).float().mean()),
        "greedy_token_acc": float(greedy.float().mean()),
        "greedy_seq_acc": float(greedy.all(1).float().mean()),
    }


def measured_attention_flops(T: int, D: int, M: int) -> int:
    """FLOPs of :func:`attention` on (T, D) queries/keys and (T, M) values, counted by torch's FLOP counter
    (a matmul of m x k by k x n counts 2 m k n: one multiply and one add per term)."""
    from torch.utils.flop_counter import FlopCounterMode

    q, k, v = torch.randn(T, D), torch.randn(T, D), torch.randn(T, M)
    with FlopCounterMode(display=False) as counter:
        attention(q, k, v)
    return int(counter.get_total_flops())


def init_residual_branch(last: nn.Linear, n_layers: int, std: float = 0.02) -> None:
    """Initialise the last layer of a residual branch so that E[F(u)] = 0 and Var grows only O(1) with depth.

    With zero bias and zero-mean weights, every output coordinate is a sum of zero-mean terms, so its
    expectation over the initialisation is 0 for any input u; x + F(x) then starts as the identity in
    expectation. The 1/sqrt(2 n_layers) factor (two branches per layer) keeps the total variance added to
    the residual stream about std^2 * |h|^2, whatever the depth.
    """
    nn.init.normal_(last.weight, 0.0, std / math.sqrt(2 * n_layers))
    if last.bias is not None:
        nn.init.zeros_(last.bias)


RESIDUAL_INITS = ("zero_mean", "nonzero_mean", "gpt")


@torch.no_grad()
def residual_stream_growth(
    depth: int,
    init: str,
    *,
    width: int = 64,
    d_ff: int = 128,
    n: int = 256,
    inits: int = 8,
    mean: float = 0.01,
    seed: int = 0,
) -> torch.Tensor:
    """Mean square E[x_l^2] of the residual stream ``x_{l+1} = x_l + F_l(LN(x_l))`` for l = 0..depth.

    ``F(u) = W2 relu(W1 u + b1) + b2`` (a pre-LN feed-forward branch, W1 and b1 as torch's default init),
    averaged over ``n`` unit-variance inputs and ``inits`` draws of the weights. The last layer decides:

    * ``zero_mean``: W2 ~ N(0, 1/d_ff), b2 = 0, so E[F(u) | u] = 0; the branches' outputs are uncorrelated
      and their variances add up: E[x_l^2] grows linearly in l;
    * ``nonzero_mean``: W2 ~ N(mean, 1/d_ff), so E[F(u) | u] = mean * sum_j relu_j(u) != 0 in the same
      direction at every layer: the means add up coherently and E[x_l^2] grows quadratically;
    * ``gpt``: :func:`init_residual_branch` (std 0.02 / sqrt(2 depth), zero bias): zero mean and a small
      variance, so the stream stays near its input at any depth.
    """
    if init not in RESIDUAL_INITS:
        from genlab.errors import choose

        choose("residual init", init, RESIDUAL_INITS)
    g = torch.Generator().manual_seed(seed)
    out = torch.zeros(depth + 1, dtype=torch.float64)
    for _ in range(inits):
        x = torch.randn(n, width, generator=g, dtype=torch.float64)
        out[0] += x.pow(2).mean()
        for layer in range(depth):
            bound = width**-0.5
            w1 = (torch.rand(d_ff, width, generator=g, dtype=torch.float64) * 2 - 1) * bound
            b1 = (torch.rand(d_ff, generator=g, dtype=torch.float64) * 2 - 1) * bound
            if init == "gpt":
                w2 = torch.randn(width, d_ff, generator=g, dtype=torch.float64) * (0.02 / math.sqrt(2 * depth))
            else:
                w2 = torch.randn(width, d_ff, generator=g, dtype=torch.float64) * d_ff**-0.5
                w2 += mean if init == "nonzero_mean" else 0.0
            u = F.layer_norm(x, (width,))
            x = x + F.relu(u @ w1.T + b1) @ w2.T  # b2 = 0
            out[layer + 1] += x.pow(2).mean()
    return out / inits
