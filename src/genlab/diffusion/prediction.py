"""What a network predicts, and how the samplers' ``eps`` follows from it (any schedule, tensors ``(B, ...)``).

With ``x_t = alpha x_0 + sigma eps`` a network may predict

* ``eps``: the noise (DDPM);
* ``v = alpha eps - sigma x_0`` (Salimans & Ho): for a VP schedule (``alpha^2 + sigma^2 = 1``) its target has
  unit variance at every time, and ``x_0 = alpha x_t - sigma v`` stays well defined where ``alpha -> 0``;
* ``x0``: the clean data itself.

The samplers in :mod:`genlab.diffusion.samplers` take an ``eps_fn``; :func:`to_eps` converts, optionally
clipping the implied ``x0_hat`` to the data range first (static thresholding, as in Imagen): with strong
classifier-free guidance the guess overshoots the range, and clipping it keeps samples from saturating.
"""

from __future__ import annotations

import torch

from genlab.diffusion.schedules import Schedule
from genlab.errors import choose

Tensor = torch.Tensor
PREDICTIONS = ("eps", "v", "x0")


def coefficients(schedule: Schedule, t: Tensor, like: Tensor) -> tuple[Tensor, Tensor]:
    """``alpha(t)``, ``sigma(t)`` for times ``t`` of shape (B,), shaped to broadcast over ``like`` (B, ...)."""
    shape = (-1,) + (1,) * (like.dim() - 1)
    return (schedule.alpha(t).to(like.dtype).reshape(shape), schedule.sigma(t).to(like.dtype).reshape(shape))


def target(prediction: str, schedule: Schedule, x0: Tensor, eps: Tensor, t: Tensor) -> Tensor:
    """The training target of ``prediction`` for clean data ``x0``, noise ``eps`` and times ``t``."""
    choose("prediction", prediction, PREDICTIONS)
    if prediction == "eps":
        return eps
    if prediction == "x0":
        return x0
    a, s = coefficients(schedule, t, x0)
    return a * eps - s * x0


def to_eps(
    prediction: str, schedule: Schedule, x: Tensor, t: Tensor, out: Tensor, clip: tuple[float, float] | None = None
) -> Tensor:
    """The ``eps`` implied by a network output ``out`` at ``(x, t)``; with ``clip``, x0_hat is clamped first."""
    a, s = coefficients(schedule, t, x)
    if prediction == "v":
        x0, eps = a * x - s * out, s * x + a * out
    elif prediction == "x0":
        x0, eps = out, (x - a * out) / s
    else:
        x0, eps = None, out
    if clip is None:
        return eps
    if x0 is None:
        x0 = (x - s * eps) / a
    return (x - a * x0.clamp(*clip)) / s
