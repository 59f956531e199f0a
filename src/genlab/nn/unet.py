"""A small conditional U-Net for diffusion on grey images (about 0.5-4 M parameters).

Shape: an input convolution, then ``len(widths)`` resolutions (e.g. 28 -> 14 -> 7 pixels), each with
``blocks`` residual blocks on the way down and up (skip connections concatenated on the way up), stride-2
convolutions down and nearest-neighbour upsampling + convolution up, and an output convolution that starts at
zero (so the untrained network predicts 0).

* Residual block: ``GroupNorm -> SiLU -> conv3x3 -> FiLM -> SiLU -> conv3x3`` plus a 1x1 skip when the width
  changes. FiLM (``h * (1 + scale) + shift``) takes its scale and shift from one embedding per image: the
  sinusoidal embedding of the time ``t`` through an MLP, **plus** the condition vector (a one-hot class or a
  sentence embedding) through a linear layer. This is the "pooled" conditioning path.
* Cross-attention (at the resolutions listed in ``attn``): every pixel's features form a query; the condition
  tokens (e.g. MiniLM's per-token vectors of the prompt) give the keys and values. A learned "nothing" token
  is always present, so a pixel may attend to no word at all, and an empty (dropped) prompt is just all tokens
  masked. Its output projection starts at zero: the block begins as the identity.
* ``coords=True`` adds two input channels holding each pixel's position (-1..1 across and down), so that a pixel
  knows which part of the canvas it is in: what a prompt like "a 3 in the top left" needs (the 2x2 canvases).

A dropped condition (classifier-free guidance) is a boolean per image: its vector becomes a learned null
vector and all its tokens are masked.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn


@dataclass
class Cond:
    """The condition of a batch: a vector per image ``(B, Dv)``, tokens ``(B, T, Dt)`` with their mask ``(B, T)``
    (True = a real token), and ``drop`` ``(B,)`` (True = unconditional). Any part may be None."""

    vec: torch.Tensor | None = None
    tokens: torch.Tensor | None = None
    mask: torch.Tensor | None = None
    drop: torch.Tensor | None = None

    def __len__(self) -> int:
        for v in (self.vec, self.tokens, self.drop):
            if v is not None:
                return v.shape[0]
        return 0

    def index(self, idx: torch.Tensor) -> Cond:
        return Cond(*(None if v is None else v[idx] for v in (self.vec, self.tokens, self.mask, self.drop)))

    def cat(self, other: Cond) -> Cond:
        """Both batches in one (a missing ``drop`` counts as all False)."""
        a, b = self.with_drop(), other.with_drop()
        return Cond(
            *(
                None if u is None else torch.cat([u, v])
                for u, v in zip((a.vec, a.tokens, a.mask, a.drop), (b.vec, b.tokens, b.mask, b.drop))
            )
        )

    def with_drop(self) -> Cond:
        if self.drop is not None:
            return self
        ref = self.vec if self.vec is not None else self.tokens
        return Cond(self.vec, self.tokens, self.mask, torch.zeros(len(self), dtype=torch.bool, device=ref.device))

    def dropped(self, drop: torch.Tensor) -> Cond:
        """The same condition with ``drop`` (or-ed with any existing drop flags)."""
        old = self.drop if self.drop is not None else torch.zeros_like(drop)
        return Cond(self.vec, self.tokens, self.mask, old | drop)


def timestep_embedding(t: torch.Tensor, dim: int, max_period: float = 10000.0) -> torch.Tensor:
    """Sinusoidal features of ``t`` in [0, 1] (scaled by 1000, as DDPM step numbers): ``(B,) -> (B, dim)``."""
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, device=t.device, dtype=torch.float32) / half)
    args = 1000.0 * t.float()[:, None] * freqs[None]
    return torch.cat([torch.cos(args), torch.sin(args)], dim=-1)


def _norm(c: int) -> nn.GroupNorm:
    return nn.GroupNorm(min(8, c), c)


class ResBlock(nn.Module):
    def __init__(self, cin: int, cout: int, emb: int):
        super().__init__()
        self.n1, self.c1 = _norm(cin), nn.Conv2d(cin, cout, 3, padding=1)
        self.film = nn.Linear(emb, 2 * cout)
        self.n2, self.c2 = _norm(cout), nn.Conv2d(cout, cout, 3, padding=1)
        self.skip = nn.Conv2d(cin, cout, 1) if cin != cout else nn.Identity()

    def forward(self, x: torch.Tensor, e: torch.Tensor) -> torch.Tensor:
        h = self.c1(F.silu(self.n1(x)))
        scale, shift = self.film(e)[:, :, None, None].chunk(2, dim=1)
        h = self.c2(F.silu(self.n2(h) * (1 + scale) + shift))
        return h + self.skip(x)


class CrossAttention(nn.Module):
    """Pixels (queries) attend to condition tokens (keys/values) plus one learned 'nothing' token."""

    def __init__(self, c: int, token_dim: int, heads: int = 4):
        super().__init__()
        self.heads = heads
        self.norm = _norm(c)
        self.q = nn.Linear(c, c)
        self.kv = nn.Linear(token_dim, 2 * c)
        self.nothing = nn.Parameter(torch.randn(1, 1, token_dim) * 0.02)
        self.out = nn.Linear(c, c)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)
        self.last_weights: torch.Tensor | None = None  # (B, heads, HW, 1 + T) when record=True
        self.record = False

    def forward(self, x: torch.Tensor, tokens: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        b, c, hh, ww = x.shape
        q = self.q(self.norm(x).flatten(2).transpose(1, 2))  # (B, HW, c)
        toks = torch.cat([self.nothing.expand(b, 1, -1).to(tokens.dtype), tokens], dim=1)
        keep = torch.cat([torch.ones(b, 1, dtype=torch.bool, device=x.device), mask], dim=1)
        k, v = self.kv(toks).chunk(2, dim=-1)
        split = lambda z: z.view(b, -1, self.heads, c // self.heads).transpose(1, 2)  # noqa: E731
        q, k, v = split(q), split(k), split(v)
        # plain matmul + softmax: for a few keys this is much faster on the CPU than SDPA's backward
        w = (q @ k.transpose(-1, -2)) * (c // self.heads) ** -0.5
        w = w.masked_fill(~keep[:, None, None, :], float("-inf")).softmax(-1)
        if self.record:
            self.last_weights = w.detach().float().cpu()
        a = w @ v
        a = a.transpose(1, 2).reshape(b, hh * ww, c)
        return x + self.out(a).transpose(1, 2).reshape(b, c, hh, ww)


class UNet(nn.Module):
    """``model(x, t, cond) -> prediction`` of ``x``'s shape (``cond`` a :class:`Cond`, or None)."""

    def __init__(
        self,
        channels: int = 1,
        widths: Sequence[int] = (32, 64, 96),
        blocks: int = 1,
        attn: Sequence[int] = (2,),
        vec_dim: int = 0,
        token_dim: int = 0,
        emb: int = 128,
        heads: int = 4,
        coords: bool = False,
    ):
        super().__init__()
        self.widths, self.vec_dim, self.token_dim = tuple(widths), vec_dim, token_dim
        self.coords = coords
        self.t_dim = widths[0]
        self.t_mlp = nn.Sequential(nn.Linear(self.t_dim, emb), nn.SiLU(), nn.Linear(emb, emb))
        if vec_dim:
            self.c_mlp = nn.Sequential(nn.Linear(vec_dim, emb), nn.SiLU(), nn.Linear(emb, emb))
            self.null_vec = nn.Parameter(torch.zeros(vec_dim))
        self.inp = nn.Conv2d(channels + 2 * coords, widths[0], 3, padding=1)
        use_attn = bool(token_dim)
        self.down, self.down_attn, self.downsample = nn.ModuleList(), nn.ModuleDict(), nn.ModuleList()
        skips, c = [widths[0]], widths[0]
        for i, w in enumerate(widths):
            for j in range(blocks):
                self.down.append(ResBlock(c, w, emb))
                c = w
                skips.append(c)
                if use_attn and i in attn:
                    self.down_attn[f"{i}_{j}"] = CrossAttention(c, token_dim, heads)
            if i < len(widths) - 1:
                self.downsample.append(nn.Conv2d(c, c, 3, stride=2, padding=1))
                skips.append(c)
        self.mid = ResBlock(c, c, emb)
        self.mid_attn = CrossAttention(c, token_dim, heads) if use_attn else None
        self.up, self.up_attn, self.upsample = nn.ModuleList(), nn.ModuleDict(), nn.ModuleList()
        for i in reversed(range(len(widths))):
            for j in range(blocks + 1):
                self.up.append(ResBlock(c + skips.pop(), widths[i], emb))
                c = widths[i]
                if use_attn and i in attn:
                    self.up_attn[f"{i}_{j}"] = CrossAttention(c, token_dim, heads)
            if i > 0:
                self.upsample.append(nn.Conv2d(c, c, 3, padding=1))
        self.out_norm = _norm(c)
        self.out = nn.Conv2d(c, channels, 3, padding=1)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)
        self.blocks = blocks

    def attention_layers(self) -> list[CrossAttention]:
        return [m for m in self.modules() if isinstance(m, CrossAttention)]

    def forward(self, x: torch.Tensor, t: torch.Tensor, cond: Cond | None = None) -> torch.Tensor:
        e = self.t_mlp(timestep_embedding(t, self.t_dim).to(x.dtype))
        tokens = mask = None
        if cond is not None and self.vec_dim:
            vec = cond.vec
            if cond.drop is not None:
                vec = torch.where(cond.drop[:, None], self.null_vec.to(vec.dtype), vec)
            e = e + self.c_mlp(vec)
        if cond is not None and self.token_dim:
            tokens, mask = cond.tokens, cond.mask
            if cond.drop is not None:
                mask = mask & ~cond.drop[:, None]
        elif self.token_dim:  # no condition at all: only the 'nothing' token
            tokens = x.new_zeros(x.shape[0], 1, self.token_dim)
            mask = torch.zeros(x.shape[0], 1, dtype=torch.bool, device=x.device)
        if self.coords:  # two channels that say where a pixel is: -1..1 across and down
            b, _, hh, ww = x.shape
            yy = torch.linspace(-1, 1, hh, device=x.device, dtype=x.dtype)[:, None].expand(hh, ww)
            xx = torch.linspace(-1, 1, ww, device=x.device, dtype=x.dtype)[None, :].expand(hh, ww)
            x = torch.cat([x, torch.stack([xx, yy]).expand(b, 2, hh, ww)], dim=1)
        h = self.inp(x)
        hs = [h]
        k = 0
        for i in range(len(self.widths)):
            for j in range(self.blocks):
                h = self.down[k](h, e)
                k += 1
                if f"{i}_{j}" in self.down_attn:
                    h = self.down_attn[f"{i}_{j}"](h, tokens, mask)
                hs.append(h)
            if i < len(self.widths) - 1:
                h = self.downsample[i](h)
                hs.append(h)
        h = self.mid(h, e)
        if self.mid_attn is not None:
            h = self.mid_attn(h, tokens, mask)
        k = 0
        for n, i in enumerate(reversed(range(len(self.widths)))):
            for j in range(self.blocks + 1):
                h = self.up[k](torch.cat([h, hs.pop()], dim=1), e)
                k += 1
                if f"{i}_{j}" in self.up_attn:
                    h = self.up_attn[f"{i}_{j}"](h, tokens, mask)
            if i > 0:
                h = self.upsample[n](F.interpolate(h, scale_factor=2, mode="nearest"))
        return self.out(F.silu(self.out_norm(h)))
