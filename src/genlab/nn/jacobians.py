"""Closed-form Jacobians of the building blocks of a recurrent cell (the lab's theory questions).

For ``y = f(x)``, x in R^n and y in R^m, the Jacobian is the ``(m, n)`` matrix ``J_ij = dy_i/dx_j``.

* ``y = A x``             ->  ``J = A``
* ``y = x + b``           ->  ``J = I``  (a constant shift changes nothing about how y moves with x)
* ``y = x * f`` (``f`` a constant vector, elementwise) -> ``J = diag(f)``
* ``y = x * f(x)`` (``f`` elementwise, e.g. a gate computed from x) -> ``J = diag(f(x) + x * f'(x))``
  (product rule on each coordinate; the off-diagonal entries vanish because coordinate i only sees x_i)

Chaining them is backpropagation through time: ``dh_T/dh_t`` is the product of the per-step Jacobians, so
its norm shrinks or grows geometrically with ``T - t`` (see the lab's BPTT figure). The tests check every
formula here against ``torch.autograd.functional.jacobian``.
"""

from __future__ import annotations

from collections.abc import Callable

import torch


def jacobian_linear(a: torch.Tensor) -> torch.Tensor:
    """Jacobian of ``x -> A x``: ``A`` itself, ``(m, n)``."""
    return a.clone()


def jacobian_shift(n: int, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """Jacobian of ``x -> x + b`` in R^n: the identity."""
    return torch.eye(n, dtype=dtype)


def jacobian_scale(f: torch.Tensor) -> torch.Tensor:
    """Jacobian of ``x -> x * f`` with ``f`` a constant vector: ``diag(f)``."""
    return torch.diag(f)


def jacobian_gated(x: torch.Tensor, f: Callable[[torch.Tensor], torch.Tensor],
                   f_prime: Callable[[torch.Tensor], torch.Tensor]) -> torch.Tensor:
    """Jacobian of ``x -> x * f(x)`` for an elementwise ``f`` with derivative ``f_prime``:
    ``diag(f(x) + x * f'(x))``."""
    return torch.diag(f(x) + x * f_prime(x))


def jacobian_elman_step(h: torch.Tensor, x: torch.Tensor, w_h: torch.Tensor, w_x: torch.Tensor,
                        b: torch.Tensor) -> torch.Tensor:
    """``d h_{t+1} / d h_t`` of a tanh Elman step ``h' = tanh(W_x x + W_h h + b)``: ``diag(1 - h'^2) W_h``.

    The chain rule on the three blocks above: an affine map (``A x`` then ``+ b``) then an elementwise tanh.
    """
    pre = w_x @ x + w_h @ h + b
    return torch.diag(1 - torch.tanh(pre) ** 2) @ w_h
