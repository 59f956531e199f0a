"""A GPT (decoder-only transformer language model), written from the equations.

The familiar interface::

    model = GPT(GPTConfig(vocab_size=50257, block_size=64, n_layer=12, n_head=12, n_embd=768))
    logits, loss = model(idx, targets)          # idx, targets: (B, T) token ids

One block is pre-LayerNorm::

    x = x + Attn(LN1(x))        Attn: causal multi-head self-attention, softmax(Q K^T / sqrt(d_head)) V
    x = x + MLP(LN2(x))         MLP:  Linear(d, 4d) -> GELU -> Linear(4d, d)

The input is ``wte[idx] + wpe[position]``; the output head shares its weight with ``wte`` (tied embeddings).
Two additions for the lab:

* ``model(inputs_embeds=E)`` takes vectors ``E`` of shape (B, T, n_embd) in place of ``wte[idx]`` (the
  token-embedding output); positions are still added. Optimising ``E`` with the model frozen is "inversion".
* ``model(idx, return_attn=True)`` also returns each block's attention probabilities (B, heads, T, T),
  computed explicitly. Without it the fused ``F.scaled_dot_product_attention`` kernel runs, which never
  materialises the T x T matrix.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn


@dataclass
class GPTConfig:
    vocab_size: int = 50257
    block_size: int = 64
    n_layer: int = 12
    n_head: int = 12
    n_embd: int = 768
    dropout: float = 0.0
    bias: bool = True

    def __post_init__(self) -> None:
        if self.n_embd % self.n_head:
            from genlab.errors import ConfigError

            raise ConfigError(f"n_embd={self.n_embd} must be a multiple of n_head={self.n_head}")


# Model shapes of the presets (the lab's config adds training settings to them).
MODEL_PRESETS: dict[str, dict[str, int]] = {
    "nano": dict(n_layer=2, n_head=2, n_embd=64, block_size=64),
    "mini": dict(n_layer=4, n_head=4, n_embd=128, block_size=64),
    "lab": dict(n_layer=6, n_head=6, n_embd=384, block_size=64),
    "gpt2": dict(n_layer=12, n_head=12, n_embd=768, block_size=64),
}


class _CrossEntropy(torch.autograd.Function):
    """``F.cross_entropy(logits.float(), targets)`` (mean over targets != -100) computed a few rows at a time.

    The same maths in float32, but the (rows, vocab) float32 copies of the logits, their log-softmax and the
    zero-filled gradient are never made whole: each block of rows is upcast while it is in cache, and the
    backward writes ``(softmax - onehot) / n`` straight into a gradient of the logits' own dtype (bfloat16
    under autocast). With GPT-2's 50257 tokens these whole-tensor passes took more time than the output
    layer's matmul on a CPU.
    """

    @staticmethod
    def forward(ctx, logits: torch.Tensor, targets: torch.Tensor, rows: int) -> torch.Tensor:
        lse = torch.cat([torch.logsumexp(c.float(), -1) for c in logits.split(rows)])
        valid = targets != -100
        tgt = targets.clamp(min=0)
        picked = logits.gather(1, tgt[:, None]).squeeze(1).float()
        n = valid.sum()
        ctx.save_for_backward(logits, tgt, valid, lse, n)
        ctx.rows = rows
        return torch.where(valid, lse - picked, 0.0).sum() / n

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        logits, tgt, valid, lse, n = ctx.saved_tensors
        out = torch.empty_like(logits)
        scale = (valid.float() * (grad / n))[:, None]
        for i in range(0, logits.size(0), ctx.rows):
            j = slice(i, i + ctx.rows)
            p = (logits[j].float() - lse[j, None]).exp_()  # softmax of the rows
            p.scatter_add_(1, tgt[j, None], torch.full_like(p[:, :1], -1.0))  # minus the one-hot target
            out[j] = p.mul_(scale[j])
        return out, None, None


def cross_entropy(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy of ``logits`` (N, V) to ``targets`` (N,), in float32 whatever the logits' dtype;
    targets equal to -100 are left out, as in ``F.cross_entropy``."""
    return _CrossEntropy.apply(logits, targets, max(1, 2**18 // logits.size(-1)))


class CausalSelfAttention(nn.Module):
    """Multi-head self-attention where position t only sees positions <= t."""

    def __init__(self, cfg: GPTConfig):
        super().__init__()
        self.n_head = cfg.n_head
        self.qkv = nn.Linear(cfg.n_embd, 3 * cfg.n_embd, bias=cfg.bias)  # Q, K, V for all heads at once
        self.proj = nn.Linear(cfg.n_embd, cfg.n_embd, bias=cfg.bias)  # the residual branch's last layer
        self.dropout = cfg.dropout
        self.resid_drop = nn.Dropout(cfg.dropout)

    def forward(self, x: torch.Tensor, return_attn: bool = False):
        B, T, C = x.shape
        q, k, v = self.qkv(x).split(C, dim=2)
        # (B, T, C) -> (B, heads, T, d_head)
        q, k, v = (t.view(B, T, self.n_head, C // self.n_head).transpose(1, 2) for t in (q, k, v))
        att = None
        if return_attn:
            scores = (q @ k.transpose(-2, -1)) / math.sqrt(q.size(-1))
            mask = torch.ones(T, T, dtype=torch.bool, device=x.device).tril()
            att = scores.masked_fill(~mask, float("-inf")).softmax(dim=-1)  # each row sums to 1
            y = att @ v
        else:
            y = F.scaled_dot_product_attention(
                q, k, v, is_causal=True, dropout_p=self.dropout if self.training else 0.0
            )
        y = y.transpose(1, 2).reshape(B, T, C)  # heads side by side again
        return self.resid_drop(self.proj(y)), att


class MLP(nn.Module):
    def __init__(self, cfg: GPTConfig):
        super().__init__()
        self.fc = nn.Linear(cfg.n_embd, 4 * cfg.n_embd, bias=cfg.bias)
        self.proj = nn.Linear(4 * cfg.n_embd, cfg.n_embd, bias=cfg.bias)
        self.drop = nn.Dropout(cfg.dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.drop(self.proj(F.gelu(self.fc(x))))  # exact GELU: faster on CPUs than the tanh form


class Block(nn.Module):
    """Pre-LN transformer block: x + Attn(LN(x)), then x + MLP(LN(x))."""

    def __init__(self, cfg: GPTConfig):
        super().__init__()
        self.ln1 = nn.LayerNorm(cfg.n_embd, bias=cfg.bias)
        self.attn = CausalSelfAttention(cfg)
        self.ln2 = nn.LayerNorm(cfg.n_embd, bias=cfg.bias)
        self.mlp = MLP(cfg)

    def forward(self, x: torch.Tensor, return_attn: bool = False):
        a, att = self.attn(self.ln1(x), return_attn)
        x = x + a
        x = x + self.mlp(self.ln2(x))
        return x, att


class GPT(nn.Module):
    def __init__(self, cfg: GPTConfig):
        super().__init__()
        self.config = cfg
        self.wte = nn.Embedding(cfg.vocab_size, cfg.n_embd)
        self.wpe = nn.Embedding(cfg.block_size, cfg.n_embd)
        self.drop = nn.Dropout(cfg.dropout)
        self.blocks = nn.ModuleList(Block(cfg) for _ in range(cfg.n_layer))
        self.ln_f = nn.LayerNorm(cfg.n_embd, bias=cfg.bias)
        self.lm_head = nn.Linear(cfg.n_embd, cfg.vocab_size, bias=False)
        self.lm_head.weight = self.wte.weight  # tied: the same matrix reads tokens in and writes them out
        self.apply(self._init)
        # Residual-branch outputs start small (std 0.02 / sqrt(2 n_layer)) and zero-mean, so E[F(u)] = 0 and
        # the residual stream's variance does not grow with depth at initialisation.
        for name, p in self.named_parameters():
            if name.endswith("proj.weight"):
                nn.init.normal_(p, 0.0, 0.02 / math.sqrt(2 * cfg.n_layer))

    @staticmethod
    def _init(m: nn.Module) -> None:
        if isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, 0.0, 0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Embedding):
            nn.init.normal_(m.weight, 0.0, 0.02)

    def num_params(self, non_embedding: bool = True) -> int:
        n = sum(p.numel() for p in self.parameters())
        return n - self.wpe.weight.numel() if non_embedding else n

    def flops_per_token(self, T: int | None = None) -> float:
        """Training FLOPs per token (forward + backward = 3 x forward), as nanoGPT's ``estimate_mfu``: 6 N for
        the weights (N without ``wpe``) plus 12 L T d for the two attention matmuls, ``Q K^T`` and ``A V``
        (2 T d FLOPs each per token and layer forward, x 3 with the backward), counted densely: the causal mask
        halves the useful work, but the kernels (and torch's FLOP counter) do the full T x T products."""
        cfg = self.config
        T = T or cfg.block_size
        N = sum(p.numel() for p in self.parameters()) - self.wpe.weight.numel()
        return 6 * N + 12 * cfg.n_layer * T * cfg.n_embd

    def forward(
        self,
        idx: torch.Tensor | None = None,
        targets: torch.Tensor | None = None,
        *,
        inputs_embeds: torch.Tensor | None = None,
        return_attn: bool = False,
    ):
        """Logits (B, T, vocab) and the mean cross-entropy to ``targets`` (or None).

        Give either token ids ``idx`` (B, T) or ``inputs_embeds`` (B, T, n_embd). With ``return_attn`` the
        result is ``(logits, loss, attentions)``, a list of one (B, heads, T, T) tensor per block.
        """
        if (idx is None) == (inputs_embeds is None):
            raise ValueError("give exactly one of idx or inputs_embeds")
        tok = self.wte(idx) if inputs_embeds is None else inputs_embeds
        T = tok.size(1)
        if self.config.block_size < T:
            from genlab.errors import ConfigError

            raise ConfigError(
                f"sequence of {T} tokens is longer than the model's block_size {self.config.block_size}; shorten it"
            )
        x = self.drop(tok + self.wpe(torch.arange(T, device=tok.device)))
        atts = []
        for block in self.blocks:
            x, att = block(x, return_attn)
            atts.append(att)
        logits = self.lm_head(self.ln_f(x))
        loss = None
        if targets is not None:
            loss = cross_entropy(logits.reshape(-1, logits.size(-1)), targets.reshape(-1))
        if return_attn:
            return logits, loss, atts
        return logits, loss

    @torch.no_grad()
    def stream(
        self,
        idx: torch.Tensor,
        max_new_tokens: int,
        *,
        temperature: float = 1.0,
        top_k: int | None = None,
        top_p: float | None = None,
        greedy: bool = False,
        generator: torch.Generator | None = None,
    ) -> Iterator[int]:
        """Yield ``max_new_tokens`` new token ids one at a time, continuing ``idx`` (1, T)."""
        for _ in range(max_new_tokens):
            logits, _ = self(idx[:, -self.config.block_size :])
            nxt = next_token(
                logits[0, -1], temperature=temperature, top_k=top_k, top_p=top_p, greedy=greedy, generator=generator
            )
            idx = torch.cat([idx, torch.tensor([[nxt]], device=idx.device)], dim=1)
            yield nxt

    def generate(self, idx: torch.Tensor, max_new_tokens: int, **kw) -> torch.Tensor:
        """``idx`` (1, T) followed by ``max_new_tokens`` sampled tokens."""
        new = list(self.stream(idx, max_new_tokens, **kw))
        return torch.cat([idx, torch.tensor([new], dtype=idx.dtype, device=idx.device)], dim=1)


def next_token(
    logits: torch.Tensor,
    *,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
    greedy: bool = False,
    generator: torch.Generator | None = None,
) -> int:
    """Choose the next token from one position's logits (V,).

    greedy: the arg-max. Otherwise sample from softmax(logits / temperature), restricted to the ``top_k`` most
    likely tokens and/or to the smallest set whose probability reaches ``top_p`` (nucleus sampling).
    """
    logits = logits.float()
    if greedy or temperature == 0:
        return int(logits.argmax())
    logits = logits / temperature
    if top_k is not None and top_k > 0:
        kth = torch.topk(logits, min(top_k, logits.numel())).values[-1]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    probs = logits.softmax(-1)
    if top_p is not None and 0 < top_p < 1:
        sorted_p, order = probs.sort(descending=True)
        before = sorted_p.cumsum(0) - sorted_p  # probability mass of the tokens ranked above each one
        sorted_p = sorted_p.masked_fill(before >= top_p, 0.0)  # the top token is always kept
        probs = torch.zeros_like(probs).scatter(0, order, sorted_p)
        probs = probs / probs.sum()
    return int(torch.multinomial(probs.cpu(), 1, generator=generator))
