"""Conditioning and classifier-free guidance: turn a network ``model(x, t, y)`` into an ``eps_fn``.

Classifier-free guidance (Ho & Salimans) trains one network both with and without the label: during training
the label is replaced by a "null" label with some probability (see :func:`drop_labels`). At sampling time the
two predictions are mixed,

    eps = eps(x, t, null) + w * (eps(x, t, y) - eps(x, t, null)),

so ``w = 1`` is the plain conditional model, ``w = 0`` the unconditional one and ``w > 1`` pushes samples
further towards what makes the label likely. Both predictions come from one batched forward pass.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

Tensor = torch.Tensor


def drop_labels(labels: Tensor, p: float, null_label: int, generator: torch.Generator | None = None) -> Tensor:
    """Replace each label by ``null_label`` with probability ``p`` (label dropout for guidance)."""
    if p <= 0:
        return labels
    drop = torch.rand(labels.shape, generator=generator, device=labels.device) < p
    return torch.where(drop, torch.full_like(labels, null_label), labels)


def model_eps_fn(
    model: nn.Module, labels: Tensor | None = None, *, guidance: float = 1.0, null_label: int | None = None
) -> Callable[..., Tensor]:
    """An ``eps_fn(x, t, cond=None)`` for the samplers and likelihoods.

    ``labels`` (shape ``(B,)``) are fixed for a sampler run; the likelihood functions, which expand and chunk
    the batch, pass the matching labels as ``cond`` instead. With ``guidance != 1`` the conditional and the
    unconditional (``null_label``, default ``model.null_label``) predictions are mixed as above.
    """
    null = null_label if null_label is not None else getattr(model, "null_label", None)

    def eps_fn(x: Tensor, t: Tensor, cond: Tensor | None = None) -> Tensor:
        y = cond if cond is not None else labels
        if y is None:
            return model(x, t)
        if guidance == 1.0:
            return model(x, t, y)
        if null is None:
            raise ValueError("guidance needs a model with a null label (trained with label dropout)")
        both = model(torch.cat([x, x]), torch.cat([t, t]), torch.cat([y, torch.full_like(y, null)]))
        cond_eps, uncond_eps = both.chunk(2)
        return uncond_eps + guidance * (cond_eps - uncond_eps)

    return eps_fn
