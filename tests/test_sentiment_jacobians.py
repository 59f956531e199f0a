"""Closed-form Jacobians of Ax, x+b, the convolution x*f (1D, 2D), x(.)f and x(.)f(x) against torch.autograd."""

import pytest
import torch
import torch.nn.functional as F
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


def test_elementwise_product_with_constant_vector():
    f, x = _rand(5, seed=5), _rand(5, seed=6)
    assert torch.allclose(J.jacobian_elementwise(f), jacobian(lambda v: v * f, x))


def _conv1d_autograd(f, x, stride, padding):
    return jacobian(lambda v: F.conv1d(v.view(1, 1, -1), f.view(1, 1, -1), stride=stride, padding=padding).flatten(), x)


@pytest.mark.parametrize("n,k,stride,padding", [(8, 3, 1, 1), (9, 3, 1, 0), (10, 4, 2, 1), (7, 5, 1, 2)])
def test_convolution_1d_is_banded_not_diagonal(n, k, stride, padding):
    f, x = _rand(k, seed=13), _rand(n, seed=14)
    want = _conv1d_autograd(f, x, stride, padding)
    got = J.jacobian_conv1d(f, n, stride, padding)
    assert got.shape == want.shape == (J.conv_output_size(n, k, stride, padding), n)
    assert torch.allclose(got, want)
    # every row is the kernel shifted by the stride: the banded (Toeplitz) structure
    inner = [i for i in range(got.shape[0]) if i * stride - padding >= 0 and i * stride - padding + k <= n]
    for i in inner:
        assert torch.equal(got[i, i * stride - padding : i * stride - padding + k], f)
    # the old answer, diag(f) (an elementwise product), must fail this check: it is not the convolution's
    diag = torch.diag(f)
    assert diag.shape != want.shape or not torch.allclose(diag, want)


def test_convolution_1d_same_padding_rejects_diag_of_kernel_padded_to_n():
    # same padding (n_out = n) so a diagonal guess has the right shape and can only fail on its values
    n, f = 6, _rand(3, seed=15)
    want = _conv1d_autograd(f, _rand(n, seed=16), 1, 1)
    guess = torch.diag(torch.cat([f, f])[:n])
    assert not torch.allclose(guess, want)
    assert torch.allclose(J.jacobian_conv1d(f, n, 1, 1), want)
    assert torch.count_nonzero(want.triu(2)) == 0 and torch.count_nonzero(want.tril(-2)) == 0  # bandwidth 1


@pytest.mark.parametrize("h,w,k,stride,padding", [(5, 5, 3, 1, 0), (6, 5, 3, 1, 1), (7, 6, 3, 2, 1)])
def test_convolution_2d_is_block_banded(h, w, k, stride, padding):
    f, x = _rand(k, k, seed=17), _rand(h, w, seed=18)
    want = jacobian(
        lambda v: F.conv2d(v.view(1, 1, h, w), f.view(1, 1, k, k), stride=stride, padding=padding).flatten(), x
    ).reshape(-1, h * w)
    got = J.jacobian_conv2d(f, (h, w), stride, padding)
    assert got.shape == want.shape
    assert torch.allclose(got, want)
    if want.shape[0] == want.shape[1]:
        assert not torch.allclose(torch.diag(torch.diag(want)), want)  # not diagonal


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
