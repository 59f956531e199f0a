"""Two 2D domains whose points come in known pairs, for the question "which GAN learns the pairing?".

Domain A is an annulus around the origin (radius 0.5 to 1); every point a has one true partner b = f(a) in
domain B, an annulus of radius 0.5 to 1 around (3, 0)::

    a = r (cos t, sin t)  ->  f(a) = (3, 0) + (1.5 - r) (cos(t + pi/2), sin(t + pi/2))

f turns the annulus by a quarter and swaps its inner and outer edges. Both domains are rotation-symmetric,
so the two marginal distributions say nothing about which b belongs to which a: a shifted copy (no turn,
no swap) reaches B's distribution just as well. Only paired data can tell f apart from the many maps that
carry A's distribution onto B's.
"""

from __future__ import annotations

import math

import torch

CENTRE_B = (3.0, 0.0)


def sample_a(n: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """``n`` points of domain A (uniform in area over the annulus 0.5 <= |a| <= 1)."""
    r = torch.sqrt(0.25 + 0.75 * torch.rand(n, generator=generator))
    t = 2 * math.pi * torch.rand(n, generator=generator)
    return torch.stack([r * torch.cos(t), r * torch.sin(t)], 1)


def partner(a: torch.Tensor) -> torch.Tensor:
    """The true partner f(a) in domain B of each point of A."""
    r = a.norm(dim=1)
    t = torch.atan2(a[:, 1], a[:, 0]) + math.pi / 2
    return torch.stack([CENTRE_B[0] + (1.5 - r) * torch.cos(t), CENTRE_B[1] + (1.5 - r) * torch.sin(t)], 1)


def sample_b(n: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """``n`` points of domain B, drawn independently of any A sample (unpaired data)."""
    return partner(sample_a(n, generator))


def pairs(n: int, generator: torch.Generator | None = None, *, paired: bool = True) -> tuple[torch.Tensor, ...]:
    """``(a, b)``: true pairs, or (``paired=False``) an A sample and an independent B sample."""
    a = sample_a(n, generator)
    return a, partner(a) if paired else sample_b(n, generator)
