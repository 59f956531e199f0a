"""Closed-form Jacobians of the building blocks of networks (the theory lab's questions).

For ``y = f(x)``, x in R^n and y in R^m, the Jacobian is the ``(m, n)`` matrix ``J_ij = dy_i/dx_j``.

* ``y = A x``             ->  ``J = A``
* ``y = x + b``           ->  ``J = I``  (a constant shift changes nothing about how y moves with x)
* ``y = x * f``, the convolution layer with kernel ``f`` (what ``torch.nn.functional.conv1d`` computes:
  ``y_i = sum_k f_k x_{i s + k - p}`` for stride ``s`` and zero padding ``p``) -> a banded (Toeplitz) matrix:
  row ``i`` holds the kernel's entries ``f_0 .. f_{K-1}`` starting at column ``i s - p`` (entries that fall
  on the padding are dropped), so each row is the row above shifted by ``s`` columns. In 2D the same holds
  per image row and column: a block-Toeplitz matrix of Toeplitz blocks (:func:`jacobian_conv2d`).
  It is NOT ``diag(f)``: that is the Jacobian of the *elementwise* product ``x (.) f``
  (:func:`jacobian_elementwise`), where output i sees input i only.
* ``y = x (.) f(x)`` (``f`` elementwise, e.g. a gate computed from x) -> ``J = diag(f(x) + x * f'(x))``
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


def jacobian_elementwise(f: torch.Tensor) -> torch.Tensor:
    """Jacobian of the elementwise product ``x -> x (.) f`` with ``f`` a constant vector: ``diag(f)``.

    (Not the convolution ``x * f``; for that see :func:`jacobian_conv1d`.)"""
    return torch.diag(f)


def conv_output_size(n: int, k: int, stride: int = 1, padding: int = 0) -> int:
    """``floor((n + 2p - k) / s) + 1``: the output length of a convolution (torch's formula, dilation 1)."""
    return (n + 2 * padding - k) // stride + 1


def jacobian_conv1d(f: torch.Tensor, n: int, stride: int = 1, padding: int = 0) -> torch.Tensor:
    """Jacobian ``(n_out, n)`` of the 1-D convolution layer ``x -> x * f`` (kernel ``f`` of length K, no bias,
    as ``F.conv1d(x, f, stride=stride, padding=padding)``): ``J[i, i s - p + k] = f_k``, a banded matrix."""
    k = f.numel()
    m = conv_output_size(n, k, stride, padding)
    jac = torch.zeros(m, n, dtype=f.dtype)
    for i in range(m):
        for j in range(k):
            col = i * stride - padding + j
            if 0 <= col < n:  # taps on the zero padding contribute nothing
                jac[i, col] = f[j]
    return jac


def jacobian_conv2d(f: torch.Tensor, size: tuple[int, int], stride: int = 1, padding: int = 0) -> torch.Tensor:
    """Jacobian ``(H_out W_out, H W)`` of the 2-D convolution layer with a ``(Kh, Kw)`` kernel (images and
    outputs flattened row by row, as ``F.conv2d(x, f, stride=stride, padding=padding)``).

    Output pixel (a, b) reads input pixel (a s - p + u, b s - p + v) with weight ``f[u, v]``: one 1-D banded
    matrix per kernel row ``u``, placed in the block (a, a s - p + u), so J is block-banded with banded blocks.
    """
    h, w = size
    ho = conv_output_size(h, f.shape[0], stride, padding)
    rows = [jacobian_conv1d(f[u], w, stride, padding) for u in range(f.shape[0])]  # (W_out, W) each
    jac = torch.zeros(ho, rows[0].shape[0], h, w, dtype=f.dtype)
    for a in range(ho):
        for u, band in enumerate(rows):
            r = a * stride - padding + u
            if 0 <= r < h:
                jac[a, :, r, :] = band
    return jac.reshape(ho * rows[0].shape[0], h * w)


def jacobian_gated(
    x: torch.Tensor, f: Callable[[torch.Tensor], torch.Tensor], f_prime: Callable[[torch.Tensor], torch.Tensor]
) -> torch.Tensor:
    """Jacobian of ``x -> x (.) f(x)`` for an elementwise ``f`` with derivative ``f_prime``:
    ``diag(f(x) + x * f'(x))``."""
    return torch.diag(f(x) + x * f_prime(x))


def jacobian_elman_step(
    h: torch.Tensor, x: torch.Tensor, w_h: torch.Tensor, w_x: torch.Tensor, b: torch.Tensor
) -> torch.Tensor:
    """``d h_{t+1} / d h_t`` of a tanh Elman step ``h' = tanh(W_x x + W_h h + b)``: ``diag(1 - h'^2) W_h``.

    The chain rule on the three blocks above: an affine map (``A x`` then ``+ b``) then an elementwise tanh.
    """
    pre = w_x @ x + w_h @ h + b
    return torch.diag(1 - torch.tanh(pre) ** 2) @ w_h
