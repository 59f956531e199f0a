"""Recurrent cells written from their equations: the Elman RNN and the GRU.

Each gate is ONE linear layer reading the concatenation ``[x_t, h_{t-1}]`` (input first), as in the lab:

Elman RNN (activation ``none | tanh | relu | sigmoid``)::

    h_t = act(W [x_t, h_{t-1}] + b)

GRU (Cho et al. 2014; the lab's form)::

    z_t  = sigmoid(W_z [x_t, h_{t-1}] + b_z)          update gate
    r_t  = sigmoid(W_r [x_t, h_{t-1}] + b_r)          reset gate
    h~_t = tanh(W_h [x_t, r_t * h_{t-1}] + b_h)       candidate
    h_t  = (1 - z_t) * h_{t-1} + z_t * h~_t

The candidate's activation may be varied (``candidate = tanh | sigmoid | relu | none``, the lab's question of
what the tanh buys): sigmoid keeps the candidate in (0, 1), relu and none leave it unbounded.

``torch.nn.GRU`` (and cuDNN) apply the reset gate *after* the recurrent product,
``h~_t = tanh(W_hx x_t + b_hx + r_t * (W_hh h_{t-1} + b_hh))``, and name the gate ``1 - z``. ``GRUCell(...,
reset_after=True)`` computes that variant (then the candidate needs its input and recurrent parts apart, so
it keeps two biases), which lets a test check this code against ``nn.GRU`` with copied weights.

Speed without hiding the maths: the input part of every gate does not depend on the past, so
:class:`Recurrent` multiplies the whole sequence by it at once (one matmul), and the loop over time only does
the recurrent part. Only time is looped over; batch and hidden units are vectorised. :meth:`Recurrent.forward`
runs that loop inside an autograd Function whose backward is BPTT written by hand (:mod:`genlab.nn.bptt_scan`;
Elman and the lab-form GRU; the ``reset_after`` GRU keeps autograd), so autograd does not record every step;
:meth:`Recurrent.states_along_time` keeps the step-by-step graph (one node per state, for the BPTT figure).

Padding: at a padded position (mask 0) the state is carried over unchanged, so the final state of a review
is its state after its last real word, whatever the padding. Truncated BPTT: with ``tbptt=K`` the state is
detached from the graph every ``K`` steps, so gradients flow back at most ``K`` steps.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from genlab.errors import choose

ACTIVATIONS = ("none", "tanh", "relu", "sigmoid")
CELLS = ("rnn", "gru")


def activation_fn(name: str):
    choose("activation", name, ACTIVATIONS)
    return {"none": lambda a: a, "tanh": torch.tanh, "relu": torch.relu, "sigmoid": torch.sigmoid}[name]


def _init_linear(layer: nn.Linear, hidden: int) -> None:
    bound = 1.0 / math.sqrt(hidden)
    nn.init.uniform_(layer.weight, -bound, bound)
    nn.init.uniform_(layer.bias, -bound, bound)


class ElmanCell(nn.Module):
    """``h_t = act(W [x_t, h_{t-1}] + b)``: one linear layer on the concatenated input and state."""

    def __init__(self, input_size: int, hidden_size: int, activation: str = "tanh"):
        super().__init__()
        self.input_size, self.hidden_size, self.activation = input_size, hidden_size, activation
        self.act = activation_fn(activation)
        self.lin = nn.Linear(input_size + hidden_size, hidden_size)
        _init_linear(self.lin, hidden_size)

    def input_part(self, x: torch.Tensor) -> torch.Tensor:
        """``W_x x + b`` for a whole sequence ``(B, T, I) -> (B, T, H)``."""
        return nn.functional.linear(x, self.lin.weight[:, : self.input_size], self.lin.bias)

    def recurrent_weights(self) -> torch.Tensor:
        """``W_h^T``: the state half of the weight, sliced once per sequence rather than once per step."""
        return self.lin.weight[:, self.input_size :].T

    def step(self, xp: torch.Tensor, h: torch.Tensor, w: torch.Tensor | None = None) -> torch.Tensor:
        """One step from the precomputed input part ``xp = W_x x_t + b``; ``w``: :meth:`recurrent_weights`."""
        w = self.recurrent_weights() if w is None else w
        return self.act(xp + h @ w)

    def forward(self, x: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        """One step, literally ``act(W [x, h] + b)``."""
        return self.act(self.lin(torch.cat([x, h], dim=-1)))


class GRUCell(nn.Module):
    """The GRU, one linear layer per gate (``z``, ``r``, candidate ``h``), each reading ``[x_t, state]``."""

    def __init__(self, input_size: int, hidden_size: int, reset_after: bool = False, candidate: str = "tanh"):
        super().__init__()
        self.input_size, self.hidden_size, self.reset_after = input_size, hidden_size, reset_after
        self.candidate, self.cand_act = candidate, activation_fn(candidate)
        self.z = nn.Linear(input_size + hidden_size, hidden_size)
        self.r = nn.Linear(input_size + hidden_size, hidden_size)
        self.h = nn.Linear(input_size + hidden_size, hidden_size)
        for lin in (self.z, self.r, self.h):
            _init_linear(lin, hidden_size)
        if reset_after:  # nn.GRU keeps a second bias inside r * (W_hh h + b_hh)
            self.h_bias_rec = nn.Parameter(
                torch.empty(hidden_size).uniform_(-1 / math.sqrt(hidden_size), 1 / math.sqrt(hidden_size))
            )

    def input_part(self, x: torch.Tensor) -> torch.Tensor:
        """Input parts ``[W_zx x + b_z, W_rx x + b_r, W_hx x + b_h]`` for a whole sequence: ``(B, T, 3H)``."""
        i = self.input_size
        w = torch.cat([self.z.weight[:, :i], self.r.weight[:, :i], self.h.weight[:, :i]], dim=0)
        b = torch.cat([self.z.bias, self.r.bias, self.h.bias])
        return nn.functional.linear(x, w, b)

    def recurrent_weights(self) -> tuple[torch.Tensor, torch.Tensor]:
        """``([U_z; U_r]^T, U_h^T)``: the state halves of the gate weights, built once per sequence."""
        i = self.input_size
        return torch.cat([self.z.weight[:, i:], self.r.weight[:, i:]], dim=0).T, self.h.weight[:, i:].T

    def step(self, xp: torch.Tensor, h: torch.Tensor, w: tuple | None = None) -> torch.Tensor:
        """One step from the precomputed input parts ``xp`` (``w``: :meth:`recurrent_weights`)."""
        n = self.hidden_size
        u_zr, u_h = self.recurrent_weights() if w is None else w
        xz, xr, xh = xp[..., :n], xp[..., n : 2 * n], xp[..., 2 * n :]
        zr = h @ u_zr
        z = torch.sigmoid(xz + zr[..., :n])
        r = torch.sigmoid(xr + zr[..., n:])
        if self.reset_after:
            cand = self.cand_act(xh + r * (h @ u_h + self.h_bias_rec))
        else:
            cand = self.cand_act(xh + (r * h) @ u_h)
        return (1 - z) * h + z * cand

    def forward(self, x: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        """One step, written as the equations in the module docstring."""
        xh = torch.cat([x, h], dim=-1)
        z = torch.sigmoid(self.z(xh))
        r = torch.sigmoid(self.r(xh))
        if self.reset_after:
            i = self.input_size
            cand = self.cand_act(
                nn.functional.linear(x, self.h.weight[:, :i], self.h.bias)
                + r * (h @ self.h.weight[:, i:].T + self.h_bias_rec)
            )
        else:
            cand = self.cand_act(self.h(torch.cat([x, r * h], dim=-1)))
        return (1 - z) * h + z * cand

    @torch.no_grad()
    def load_from_torch(self, gru: nn.GRU, layer: int = 0) -> None:
        """Copy layer ``layer`` of an ``nn.GRU`` (needs ``reset_after=True``; its z gate is our ``1 - z``)."""
        if not self.reset_after:
            raise ValueError("nn.GRU applies the reset gate after the product; build GRUCell(reset_after=True)")
        w_ih, w_hh = getattr(gru, f"weight_ih_l{layer}"), getattr(gru, f"weight_hh_l{layer}")
        b_ih, b_hh = getattr(gru, f"bias_ih_l{layer}"), getattr(gru, f"bias_hh_l{layer}")
        n = self.hidden_size
        (ri, zi, hi), (rh, zh, hh) = w_ih.split(n), w_hh.split(n)
        (bri, bzi, bhi), (brh, bzh, bhh) = b_ih.split(n), b_hh.split(n)
        self.r.weight.copy_(torch.cat([ri, rh], 1))
        self.r.bias.copy_(bri + brh)
        # torch: h' = (1 - z') n + z' h, so our update gate z = 1 - z' = sigmoid(-(...)).
        self.z.weight.copy_(-torch.cat([zi, zh], 1))
        self.z.bias.copy_(-(bzi + bzh))
        self.h.weight.copy_(torch.cat([hi, hh], 1))
        self.h.bias.copy_(bhi)
        self.h_bias_rec.copy_(bhh)


class Recurrent(nn.Module):
    """A stack of ``layers`` Elman or GRU cells run over a padded batch, looping over time only.

    ``candidate``: the GRU candidate's activation (``activation`` is the Elman cell's).
    ``forward(x (B, T, I), mask (B, T)) -> (states (B, T, H) of the top layer, final state (B, H))``;
    :meth:`states_along_time` gives the top layer's states as one graph node per step instead, so that
    ``torch.autograd.grad(loss, states)`` is ``d loss / d h_t`` for every ``t`` (the BPTT figure).
    """

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        layers: int = 1,
        cell: str = "gru",
        activation: str = "tanh",
        reset_after: bool = False,
        tbptt: int = 0,
        candidate: str = "tanh",
    ):
        super().__init__()
        choose("recurrent cell", cell, CELLS)
        if layers < 1:
            from genlab.errors import ConfigError

            raise ConfigError(f"bad number of layers {layers}; it must be >= 1")
        self.hidden_size, self.tbptt, self.cell_type = hidden_size, tbptt, cell
        sizes = [input_size] + [hidden_size] * (layers - 1)
        if cell == "rnn":
            self.cells = nn.ModuleList(ElmanCell(s, hidden_size, activation) for s in sizes)
        else:
            self.cells = nn.ModuleList(GRUCell(s, hidden_size, reset_after, candidate) for s in sizes)

    def uses_hand_written_bptt(self) -> bool:
        """Whether :meth:`forward` runs the scans of :mod:`genlab.nn.bptt_scan` (backward written by hand): for
        the Elman cell and the lab-form GRU; the ``reset_after`` GRU keeps the autograd path."""
        return all(isinstance(c, ElmanCell) or not c.reset_after for c in self.cells)

    def forward(
        self, x: torch.Tensor, mask: torch.Tensor | None = None, h0: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        if not self.uses_hand_written_bptt():
            states, h = self.states_along_time(x, mask, h0)
            return torch.stack(states, dim=1), h
        from genlab.nn.bptt_scan import ElmanScan, GRUScan

        b = x.shape[0]
        # a mask with no padding changes nothing (m new + 0 h = new): skip its three operations per step
        m = None if mask is None or bool(mask.all()) else mask.to(x.dtype).unsqueeze(-1)  # (B, T, 1)
        tbptt = self.tbptt if self.training else 0
        out = x
        for li, cell in enumerate(self.cells):
            xp = cell.input_part(out)  # (B, T, gates*H): the input half of every gate, all steps at once
            h = x.new_zeros(b, self.hidden_size) if h0 is None else h0[li]
            if isinstance(cell, ElmanCell):
                out = ElmanScan.apply(xp, h, cell.recurrent_weights(), m, cell.activation, tbptt)
            else:
                out = GRUScan.apply(xp, h, *cell.recurrent_weights(), m, tbptt, cell.candidate)
        return out, out[:, -1]

    def states_along_time(
        self, x: torch.Tensor, mask: torch.Tensor | None = None, h0: torch.Tensor | None = None
    ) -> tuple[list[torch.Tensor], torch.Tensor]:
        """The top layer's state after every step, ``T`` tensors ``(B, H)`` that are each a node of the graph
        (the final state is computed from them), and the final state ``(B, H)``."""
        b, t, _ = x.shape
        m = None if mask is None else mask.to(x.dtype).unsqueeze(-1)  # (B, T, 1)
        out, states = x, []
        for li, cell in enumerate(self.cells):
            if li:
                out = torch.stack(states, dim=1)
            xp = cell.input_part(out)  # (B, T, gates*H): the input half of every gate, all steps at once
            w = cell.recurrent_weights()
            h = x.new_zeros(b, self.hidden_size) if h0 is None else h0[li]
            states = []
            for step in range(t):
                if self.tbptt and self.training and step > 0 and step % self.tbptt == 0:
                    h = h.detach()
                new = cell.step(xp[:, step], h, w)
                h = new if m is None else m[:, step] * new + (1 - m[:, step]) * h
                states.append(h)
        return states, h
