"""Closed-form Jacobians of Ax, x+b, x*f and x*f(x) against torch.autograd."""

import torch
from torch.autograd.functional import jacobian

from genlab.nn import jacobians as J


def _rand(*shape, seed=0):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def test_linear_map():
    a, x = _rand(4, 6, seed=1), _rand(6, seed=2)
    assert torch.allclose(J.jacobian_linear(a), jacobian(lambda v: a @ v, x))


def test_shift():
    b, x = _rand(5, seed=3), _rand(5, seed=4)
    assert torch.allclose(J.jacobian_shift(5), jacobian(lambda v: v + b, x))


def test_scale_by_constant_vector():
    f, x = _rand(5, seed=5), _rand(5, seed=6)
    assert torch.allclose(J.jacobian_scale(f), jacobian(lambda v: v * f, x))


def test_gated_product_rule():
    x = _rand(7, seed=7)
    got = J.jacobian_gated(x, torch.sigmoid, lambda v: torch.sigmoid(v) * (1 - torch.sigmoid(v)))
    want = jacobian(lambda v: v * torch.sigmoid(v), x)
    assert torch.allclose(got, want)
    # A wrong derivative must not pass: the check can fail.
    bad = J.jacobian_gated(x, torch.sigmoid, lambda v: torch.zeros_like(v))
    assert not torch.allclose(bad, want)


def test_elman_step_chain_rule():
    h, x = _rand(4, seed=8), _rand(3, seed=9)
    wh, wx, b = _rand(4, 4, seed=10), _rand(4, 3, seed=11), _rand(4, seed=12)
    got = J.jacobian_elman_step(h, x, wh, wx, b)
    want = jacobian(lambda v: torch.tanh(wx @ x + wh @ v + b), h)
    assert torch.allclose(got, want)
