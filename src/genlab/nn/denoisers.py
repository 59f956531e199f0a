"""The noise-prediction network of the 2D diffusion lab: an MLP over (x, t), optionally with a class label.

``MLPDenoiser(x, t, y=None) -> eps_hat`` takes points ``x`` of shape (B, dim), times ``t`` of shape (B,) in
[0, 1] and optional integer labels ``y`` of shape (B,). The time enters as

* ``raw``: the number t itself, concatenated to x (the lab's 3 -> ... -> 2 network);
* ``sinusoidal``: the Transformer/DDPM embedding of ``1000 t`` (the DDPM step index);
* ``fourier``: random Fourier features ``[sin(2 pi w t), cos(2 pi w t)]`` with fixed Gaussian ``w``.

The point itself enters as its coordinates, and optionally (``x_features > 0``) also as random Fourier
features ``[sin(2 pi x B), cos(2 pi x B)]`` with a fixed Gaussian ``B`` of std ``x_scale`` (Tancik et al.,
2020). A plain MLP on raw 2D coordinates learns smooth functions first ("spectral bias"); for thin, curved
data such as the spiral it fits the denoiser at low noise far too slowly, and its samples fill the inside of
the spiral with a haze. The features let it draw sharp, curved structure in a few thousand steps.

A label enters through a learned embedding table with one extra row, ``null_label = num_classes``, which
stands for "no label" (classifier-free guidance trains with it and samples with it).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from genlab.errors import choose
from genlab.nn.embeddings import sinusoidal_embedding

TIME_EMBEDDINGS = ("raw", "sinusoidal", "fourier")


class MLPDenoiser(nn.Module):
    """LeakyReLU MLP predicting the noise ``eps`` from ``[x, features(x), embed(t), embed(y)]``."""

    def __init__(
        self,
        dim: int = 2,
        hidden: int = 128,
        depth: int = 3,
        *,
        time_embedding: str = "raw",
        time_dim: int = 32,
        num_classes: int = 0,
        class_dim: int = 16,
        fourier_scale: float = 4.0,
        x_features: int = 0,
        x_scale: float = 2.0,
        seed: int = 0,
    ):
        super().__init__()
        choose("time embedding", time_embedding, TIME_EMBEDDINGS)
        self.dim, self.time_embedding, self.num_classes = dim, time_embedding, num_classes
        self.time_dim = 1 if time_embedding == "raw" else time_dim
        if time_embedding == "fourier":
            g = torch.Generator().manual_seed(seed)
            self.register_buffer("freqs", torch.randn(time_dim // 2, generator=g) * fourier_scale)
        self.x_features = int(x_features)
        if self.x_features:
            g = torch.Generator().manual_seed(seed + 1)
            self.register_buffer("x_freqs", torch.randn(dim, self.x_features, generator=g) * x_scale)
        self.null_label = num_classes if num_classes else None
        self.label_embedding = nn.Embedding(num_classes + 1, class_dim) if num_classes else None
        width_in = dim + 2 * self.x_features + self.time_dim + (class_dim if num_classes else 0)
        layers: list[nn.Module] = []
        for i in range(depth):
            layers += [nn.Linear(width_in if i == 0 else hidden, hidden), nn.LeakyReLU(0.1)]
        layers.append(nn.Linear(hidden if depth else width_in, dim))
        self.net = nn.Sequential(*layers)

    def embed_time(self, t: torch.Tensor) -> torch.Tensor:
        t = t.reshape(-1).float()
        if self.time_embedding == "raw":
            return t[:, None]
        if self.time_embedding == "sinusoidal":
            return sinusoidal_embedding(1000 * t, self.time_dim)
        angles = 2 * math.pi * t[:, None] * self.freqs
        return torch.cat([torch.sin(angles), torch.cos(angles)], dim=-1)

    def embed_x(self, x: torch.Tensor) -> list[torch.Tensor]:
        """The random Fourier features of the points ``x`` (B, dim) as ``[sin, cos]`` (none when off)."""
        if not self.x_features:
            return []
        angles = 2 * math.pi * x @ self.x_freqs.to(x.dtype)
        return [torch.sin(angles), torch.cos(angles)]

    def forward(self, x: torch.Tensor, t: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        if t.dim() == 0:
            t = t.expand(x.shape[0])
        flat = x.reshape(x.shape[0], -1)
        parts = [flat, *self.embed_x(flat), self.embed_time(t).to(x.dtype)]
        if self.label_embedding is not None:
            if y is None:
                y = torch.full((x.shape[0],), self.null_label, dtype=torch.long, device=x.device)
            parts.append(self.label_embedding(y.long()).to(x.dtype))
        return self.net(torch.cat(parts, dim=-1)).reshape(x.shape)
