"""A conditional MLP denoiser for latent diffusion: codes ``(B, D)`` (e.g. autoencoder codes) instead of pixels.

Residual blocks ``x + Linear(SiLU(FiLM(LayerNorm(Linear(x)))))`` whose FiLM scale and shift come from the
sinusoidal time embedding plus the condition vector (a one-hot class or a sentence embedding; a dropped
condition uses a learned null vector), as in :class:`~genlab.nn.unet.UNet`. A code has no pixels to attend
from, so this denoiser only has the pooled-sentence path; the output layer starts at zero.

:class:`Space` is where a diffusion model works: pixels scaled to [-1, 1], or an autoencoder's codes with each
coordinate standardised over the training set (decoded back to images in [0, 1]).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from genlab.nn.autoencoder import ConvAutoencoder, encode_all
from genlab.nn.unet import Cond, timestep_embedding


class _Block(nn.Module):
    def __init__(self, width: int, emb: int):
        super().__init__()
        self.inp = nn.Linear(width, width)
        self.norm = nn.LayerNorm(width)
        self.film = nn.Linear(emb, 2 * width)
        self.out = nn.Linear(width, width)

    def forward(self, h: torch.Tensor, e: torch.Tensor) -> torch.Tensor:
        scale, shift = self.film(e).chunk(2, dim=-1)
        return h + self.out(F.silu(self.norm(self.inp(h)) * (1 + scale) + shift))


class CodeDenoiser(nn.Module):
    """``model(z, t, cond) -> prediction`` for codes ``z`` of shape (B, dim)."""

    def __init__(self, dim: int = 64, width: int = 512, depth: int = 4, vec_dim: int = 0, emb: int = 128):
        super().__init__()
        self.vec_dim, self.emb = vec_dim, emb
        self.t_mlp = nn.Sequential(nn.Linear(emb, emb), nn.SiLU(), nn.Linear(emb, emb))
        if vec_dim:
            self.c_mlp = nn.Sequential(nn.Linear(vec_dim, emb), nn.SiLU(), nn.Linear(emb, emb))
            self.null_vec = nn.Parameter(torch.zeros(vec_dim))
        self.inp = nn.Linear(dim, width)
        self.blocks = nn.ModuleList(_Block(width, emb) for _ in range(depth))
        self.norm = nn.LayerNorm(width)
        self.out = nn.Linear(width, dim)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def forward(self, z: torch.Tensor, t: torch.Tensor, cond: Cond | None = None) -> torch.Tensor:
        e = self.t_mlp(timestep_embedding(t, self.emb).to(z.dtype))
        if cond is not None and self.vec_dim:
            vec = cond.vec
            if cond.drop is not None:
                vec = torch.where(cond.drop[:, None], self.null_vec.to(vec.dtype), vec)
            e = e + self.c_mlp(vec)
        e = F.silu(e)
        h = self.inp(z)
        for block in self.blocks:
            h = block(h, e)
        return self.out(F.silu(self.norm(h)))


@dataclass
class Space:
    """Where diffusion runs: ``pixel`` (images scaled to [-1, 1]) or ``latent`` (autoencoder codes, each
    coordinate standardised over the training set)."""

    kind: str
    ae: ConvAutoencoder | None = None
    mean: torch.Tensor | None = None
    std: torch.Tensor | None = None

    @torch.no_grad()
    def encode(self, x: torch.Tensor) -> torch.Tensor:
        if self.ae is None:
            return x * 2 - 1
        return (encode_all(self.ae.encoder, x) - self.mean) / self.std

    @torch.no_grad()
    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Model-space tensors -> images in [0, 1] (on the CPU)."""
        if self.ae is None:
            return ((z.clamp(-1, 1) + 1) / 2).cpu()
        return torch.cat([self.ae.decode(z[i : i + 1000] * self.std + self.mean).cpu() for i in range(0, len(z), 1000)])
