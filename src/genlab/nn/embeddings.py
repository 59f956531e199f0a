"""Sinusoidal embeddings of a scalar (a diffusion time step, or a token position)."""

from __future__ import annotations

import math

import torch
from torch import nn


def sinusoidal_embedding(x: torch.Tensor, dim: int, max_period: float = 10000.0) -> torch.Tensor:
    """Embed each value of ``x`` as ``[sin(x w_i), cos(x w_i)]`` with ``w_i`` geometric from 1 to 1/max_period.

    Returns shape ``(*x.shape, dim)``; ``dim`` must be even. As in "Attention is all you need" for positions
    and in DDPM for time steps.
    """
    if dim % 2:
        raise ValueError(f"sinusoidal embedding dim must be even, got {dim}")
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, device=x.device, dtype=torch.float32) / half)
    angles = x.float().unsqueeze(-1) * freqs
    return torch.cat([torch.sin(angles), torch.cos(angles)], dim=-1)


class SinusoidalEmbedding(nn.Module):
    """Module form of :func:`sinusoidal_embedding`, with a ``scale`` applied to the input first."""

    def __init__(self, dim: int, scale: float = 1.0, max_period: float = 10000.0):
        super().__init__()
        self.dim, self.scale, self.max_period = dim, scale, max_period

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return sinusoidal_embedding(x * self.scale, self.dim, self.max_period)
