"""Backpropagation through time for a leaky-ReLU RNN, written from its formula (no autograd).

The network ``h_t = phi(W h_{t-1} + U x_t)`` with ``phi`` the leaky ReLU (slope ``a`` below zero) and a loss
``l_T`` read from the last state only. With ``D_t = diag(phi'(W h_{t-1} + U x_t))`` (entries 1 or ``a``),
the chain rule through every path from ``W`` at step ``t`` to ``h_T`` gives::

    dl_T/dW[i, j] = sum_{t=1..T} g_t[i] h_{t-1}[j],
    g_t = D_t W^T D_{t+1} W^T ... W^T D_T (dl_T/dh_T)          (g_T = D_T dl_T/dh_T)

so the gradient is a sum of T outer products, and the factor reaching step t is a product of T - t
matrices ``W^T D``: it shrinks or grows geometrically with ``T - t`` (vanishing / exploding gradients).
:func:`bptt_grad_W` builds exactly these products, :func:`saved_bytes` measures what autograd keeps for
the backward pass (it grows linearly with T; truncated BPTT keeps only the last K steps).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def leaky_rnn(
    w: torch.Tensor, u: torch.Tensor, xs: torch.Tensor, h0: torch.Tensor, slope: float = 0.1
) -> tuple[torch.Tensor, torch.Tensor]:
    """States ``(T + 1, H)`` (h_0 first) and pre-activations ``(T, H)`` of ``h_t = phi(W h_{t-1} + U x_t)``."""
    hs, pres = [h0], []
    for x in xs:
        a = w @ hs[-1] + u @ x
        pres.append(a)
        hs.append(F.leaky_relu(a, slope))
    return torch.stack(hs), torch.stack(pres)


def leaky_relu_slope(a: torch.Tensor, slope: float) -> torch.Tensor:
    """phi'(a): 1 where a > 0, ``slope`` elsewhere (the diagonal of D_t), in ``a``'s dtype."""
    return torch.where(a > 0, torch.ones_like(a), torch.full_like(a, slope))


def bptt_grad_W(
    w: torch.Tensor,
    u: torch.Tensor,
    xs: torch.Tensor,
    h0: torch.Tensor,
    dl_dhT: torch.Tensor,
    slope: float = 0.1,
    *,
    derivative: bool = True,
) -> torch.Tensor:
    """``dl_T/dW`` from the formula in the module docstring, every ``D_tau`` and ``W^T`` written out.

    ``derivative=False`` leaves the ``D_tau`` out (as if phi were the identity): a wrong formula, kept so a
    test can show the check against autograd fails on it.
    """
    hs, pres = leaky_rnn(w, u, xs, h0, slope)
    n = len(xs)
    ds = [leaky_relu_slope(a, slope) if derivative else torch.ones_like(a) for a in pres]
    grad = torch.zeros_like(w)
    for t in range(1, n + 1):  # the path from W at step t to h_T
        prod = torch.diag(ds[n - 1])  # D_T
        for tau in range(n - 1, t - 1, -1):  # ... W D_{tau}, down to step t
            prod = prod @ w @ torch.diag(ds[tau - 1])
        g_t = prod.T @ dl_dhT
        grad += torch.outer(g_t, hs[t - 1])
    return grad


def state_gradients(
    w: torch.Tensor, u: torch.Tensor, xs: torch.Tensor, h0: torch.Tensor, dl_dhT: torch.Tensor, slope: float = 0.1
) -> torch.Tensor:
    """``|| dl_T / dh_t ||`` for t = 0..T by the backward recursion ``dl/dh_{t-1} = W^T D_t dl/dh_t``."""
    _, pres = leaky_rnn(w, u, xs, h0, slope)
    delta, norms = dl_dhT, [float(dl_dhT.norm())]
    for a in reversed(pres):
        delta = w.T @ (leaky_relu_slope(a, slope) * delta)
        norms.append(float(delta.norm()))
    return torch.tensor(norms[::-1])


def saved_bytes(fn, *args) -> tuple[object, int]:
    """Run ``fn(*args)`` and count the bytes of the tensors autograd saves for the backward pass."""
    total = 0

    def pack(t: torch.Tensor):
        nonlocal total
        total += t.numel() * t.element_size()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        out = fn(*args)
    return out, total


def _last_state(*args) -> torch.Tensor:
    return leaky_rnn(*args)[0][-1]


def last_state_bytes(
    w: torch.Tensor, u: torch.Tensor, xs: torch.Tensor, h0: torch.Tensor, slope: float = 0.1
) -> tuple[torch.Tensor, int]:
    """The last state of a full forward pass and the bytes autograd keeps to back-propagate through it all."""
    return saved_bytes(_last_state, w, u, xs, h0, slope)


def truncated_backward(
    w: torch.Tensor, u: torch.Tensor, xs: torch.Tensor, h0: torch.Tensor, k: int, slope: float = 0.1
) -> tuple[int, torch.Tensor]:
    """Truncated BPTT: run the sequence in chunks of ``k`` steps, back-propagating the loss of each chunk's
    last state into that chunk only (the state is detached between chunks). Returns the largest number of
    bytes autograd held at once and the final state."""
    h, peak = h0, 0
    for start in range(0, len(xs), k):
        last, held = saved_bytes(_last_state, w, u, xs[start : start + k], h, slope)
        peak = max(peak, held)
        last.pow(2).sum().backward()
        h = last.detach()
    return peak, h
