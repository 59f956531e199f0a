"""The hand-written BPTT scans (:mod:`genlab.nn.bptt_scan`) against autograd through the step-by-step code."""

import pytest
import torch

from genlab.nn.bptt_scan import ElmanScan, GRUScan
from genlab.nn.recurrent import ElmanCell, GRUCell, Recurrent


def _x(*shape, seed=0, dtype=torch.float32):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=dtype)


def _mask(lengths, t):
    return torch.arange(t)[None, :] < torch.tensor(lengths)[:, None]


@pytest.mark.parametrize("masked", [False, True])
def test_gru_scan_gradcheck(masked):
    """float64, tiny: the hand-written backward is the derivative (no truncation: tbptt is checked below)."""
    torch.manual_seed(0)
    cell = GRUCell(3, 4).double()
    x = _x(3, 5, 3, seed=1, dtype=torch.float64)
    xp = cell.input_part(x).detach().requires_grad_()
    h0 = _x(3, 4, seed=2, dtype=torch.float64).requires_grad_()
    u_zr, u_h = (w.detach().clone().requires_grad_() for w in cell.recurrent_weights())
    m = _mask([5, 3, 1], 5).double().unsqueeze(-1) if masked else None
    assert torch.autograd.gradcheck(lambda *a: GRUScan.apply(*a, m, 0), (xp, h0, u_zr, u_h))


@pytest.mark.parametrize("activation", ["none", "tanh", "relu", "sigmoid"])
@pytest.mark.parametrize("masked", [False, True])
def test_elman_scan_gradcheck(activation, masked):
    torch.manual_seed(0)
    cell = ElmanCell(3, 4, activation).double()
    x = _x(3, 5, 3, seed=1, dtype=torch.float64)
    xp = cell.input_part(x).detach().requires_grad_()
    h0 = _x(3, 4, seed=2, dtype=torch.float64).requires_grad_()
    w = cell.recurrent_weights().detach().clone().requires_grad_()
    m = _mask([5, 3, 1], 5).double().unsqueeze(-1) if masked else None
    assert torch.autograd.gradcheck(lambda *a: ElmanScan.apply(*a, m, activation, 0), (xp, h0, w))


def _grads(rnn, x, mask, h0, fast):
    """Outputs and gradients (parameters, input, initial state) of a loss on every state and the final one
    (means, so that the gradients are of the size of a classifier's: 1e-5 is then a meaningful tolerance)."""
    x, h0 = x.clone().requires_grad_(), h0.clone().requires_grad_()
    if fast:
        out, last = rnn(x, mask, h0)
    else:
        states, last = rnn.states_along_time(x, mask, h0)
        out = torch.stack(states, 1)
    wgt = _x(*out.shape, seed=7)
    loss = (out * wgt).mean() + last.square().mean()
    grads = torch.autograd.grad(loss, [*rnn.parameters(), x, h0])
    return out.detach(), last.detach(), grads


@pytest.mark.parametrize(
    "cell,activation,layers,tbptt",
    [
        ("gru", "tanh", 1, 0),
        ("gru", "tanh", 2, 7),
        ("rnn", "tanh", 1, 0),
        ("rnn", "relu", 2, 0),
        ("rnn", "sigmoid", 1, 9),
    ],
)
@pytest.mark.parametrize("masked", [False, True])
def test_scan_matches_autograd_at_realistic_size(cell, activation, layers, tbptt, masked):
    """Batch 32, length 100, input 50, hidden 64, float32: same states to the bit, gradients to 1e-5."""
    torch.manual_seed(0)
    rnn = Recurrent(50, 64, layers, cell, activation, tbptt=tbptt).train()
    assert rnn.uses_hand_written_bptt()
    x, h0 = _x(32, 100, 50, seed=3), 0.1 * _x(layers, 32, 64, seed=4)
    lengths = torch.randint(1, 101, (32,), generator=torch.Generator().manual_seed(5)).tolist()
    mask = _mask(lengths, 100) if masked else None
    out_f, last_f, g_f = _grads(rnn, x, mask, h0, fast=True)
    out_s, last_s, g_s = _grads(rnn, x, mask, h0, fast=False)
    assert torch.equal(out_f, out_s) and torch.equal(last_f, last_s)
    for a, b in zip(g_f, g_s):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)


def test_reset_after_gru_keeps_the_autograd_path():
    assert not Recurrent(3, 4, 1, "gru", reset_after=True).uses_hand_written_bptt()


@pytest.mark.parametrize("cell,activation", [("gru", "tanh"), ("rnn", "tanh"), ("rnn", "relu"), ("rnn", "none")])
@pytest.mark.parametrize("layers", [1, 2])
def test_small_padded_batch_same_states_to_the_bit(cell, activation, layers):
    torch.manual_seed(0)
    rnn = Recurrent(3, 5, layers, cell, activation)
    x, mask = _x(3, 6, 3, seed=13), _mask([6, 4, 1], 6)
    for m in (mask, None, torch.ones_like(mask)):
        out, last = rnn(x, m)
        states, final = rnn.states_along_time(x, m)
        assert torch.equal(torch.stack(states, 1), out) and torch.equal(final, last)
