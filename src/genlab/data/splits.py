"""Small dataset helpers labs share: which training examples get a label in a few-label experiment."""

from __future__ import annotations

import torch

from genlab.errors import ConfigError


def label_indices(
    y: torch.Tensor, n: int, scheme: str, draw: int, seed: int = 0, num_classes: int = 10
) -> torch.Tensor:
    """Indices of the ``n`` labelled examples of one draw.

    ``first``: draw 0 is the first ``n`` training examples, draw d the d-th block of ``n`` after them.
    ``balanced``: ``n / classes`` random examples of each class (the remainder to the lowest classes).
    """
    if n > len(y):
        raise ConfigError(
            f"labels={n} is larger than the training set ({len(y)} images); use --labels {len(y)} or fewer"
        )
    if scheme == "first":
        start = (draw * n) % len(y)
        return (torch.arange(start, start + n) % len(y)).long()
    if scheme != "balanced":
        raise ConfigError(f"unknown label draw {scheme!r}; choose one of: first, balanced")
    gen = torch.Generator().manual_seed(seed * 1000 + draw)
    yc = y.cpu()
    out = []
    for c in range(num_classes):
        want = n // num_classes + (1 if c < n % num_classes else 0)
        pool = (yc == c).nonzero().flatten()
        if want > len(pool):
            raise ConfigError(
                f"labels={n} asks for {want} images of class {c} but the training set has {len(pool)}; use fewer labels"
            )
        out.append(pool[torch.randperm(len(pool), generator=gen)[:want]])
    return torch.cat(out)
