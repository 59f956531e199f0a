"""Small dataset helpers labs share: which training examples get a label in a few-label experiment (one draw,
or every draw of several schemes), and random batches of tensors that live on the device."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

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


def label_draws(
    y: torch.Tensor, n: int, schemes: tuple[str, ...], draws: int, seed: int = 0, num_classes: int = 10
) -> dict[tuple[str, int], torch.Tensor]:
    """:func:`label_indices` of every ``(scheme, draw)``, schemes first, in that order."""
    return {(s, d): label_indices(y, n, s, d, seed, num_classes) for s in schemes for d in range(draws)}


def random_batches(*tensors: torch.Tensor, batch_size: int) -> Callable[[int], Any]:
    """``batches(step)`` for ``genlab.train.fit``: the same ``batch_size`` random rows (drawn with replacement, on
    the first tensor's device) of each of ``tensors``; a tensor for one, a tuple for several."""
    n, dev = len(tensors[0]), tensors[0].device

    def batches(step: int) -> Any:
        i = torch.randint(n, (batch_size,), device=dev)
        return tensors[0][i] if len(tensors) == 1 else tuple(t[i] for t in tensors)

    return batches
