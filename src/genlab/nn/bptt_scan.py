"""Backpropagation through time written by hand, as autograd Functions: the Elman RNN and the lab-form GRU.

Each scan is a ``torch.autograd.Function``: its forward runs the recurrence over time from the input parts
``xp`` of all steps (computed beforehand, with autograd, as one matmul) and keeps the gates and states; its
backward is the BPTT recursion, going back from the last step with ``dh`` = the gradient reaching ``h_t``
(from the outputs and from step ``t+1``), and accumulating the recurrent weight gradients with one matmul over
all steps at the end. Autograd records one node per layer instead of a dozen per step.

The forward does exactly the operations of :meth:`GRUCell.step <genlab.nn.recurrent.GRUCell.step>` /
:meth:`ElmanCell.step <genlab.nn.recurrent.ElmanCell.step>` and the padding rule of
:class:`~genlab.nn.recurrent.Recurrent` (``h_t = m_t new_t + (1 - m_t) h_{t-1}``), in the same order, so the
states are the same to the bit. ``tbptt=K`` cuts the gradient flowing from step ``t`` into ``h_{t-1}`` when ``t``
is a positive multiple of ``K``, as the autograd path's ``detach``.

GRU backward, one step (``a_*`` the gate pre-activations, ``m`` the mask, ``g = dL/dh_t``)::

    d new = m g                    dh_{t-1} = (1 - m) g + d new (1 - z)
    d a_h = d new z (1 - h~^2)     d (r h)  = d a_h U_h^T        dU_h  += (r h)^T d a_h
    d a_r = d(r h) h r (1 - r)     d a_z    = d new (h~ - h) z (1 - z)
    dh_{t-1} += d(r h) r + [d a_z, d a_r] [U_z; U_r]^T           dU_zr += h_{t-1}^T [d a_z, d a_r]
"""

from __future__ import annotations

import torch

# the Elman activations (as genlab.nn.recurrent.activation_fn; not imported from there: recurrent imports this module)
_ACTIVATIONS = {"none": lambda a: a, "tanh": torch.tanh, "relu": torch.relu, "sigmoid": torch.sigmoid}


def _act_grad(activation: str, y: torch.Tensor) -> torch.Tensor | None:
    """``act'(a)`` written with the output ``y = act(a)``; ``None`` for the identity."""
    if activation == "tanh":
        return 1 - y * y
    if activation == "sigmoid":
        return y * (1 - y)
    if activation == "relu":
        return (y > 0).to(y.dtype)
    return None


def _prev_states(h0: torch.Tensor, states: torch.Tensor) -> torch.Tensor:
    """``h_{t-1}`` for every ``t``: ``(B, T, H)`` from ``h0 (B, H)`` and ``states (B, T, H)``."""
    return torch.cat([h0.unsqueeze(1), states[:, :-1]], dim=1)


def _cut(tbptt: int, s: int) -> bool:
    return bool(tbptt) and s > 0 and s % tbptt == 0


class GRUScan(torch.autograd.Function):
    """Lab-form GRU over time: ``(xp (B,T,3H), h0 (B,H), U_zr (H,2H), U_h (H,H), mask (B,T,1)|None, tbptt,
    candidate='tanh')`` -> states ``(B, T, H)``. ``U_zr``, ``U_h`` are :meth:`GRUCell.recurrent_weights`;
    ``candidate``: the candidate's activation (tanh, sigmoid, relu, none; ``1 - h~^2`` below is its derivative)."""

    @staticmethod
    def forward(ctx, xp, h0, u_zr, u_h, mask, tbptt: int, candidate: str = "tanh"):
        b, t, n3 = xp.shape
        n = n3 // 3
        act = _ACTIVATIONS[candidate]
        ms = mask
        states, zs, rs, cs = (xp.new_empty(b, t, n) for _ in range(4))
        # per-step views made once (unbind), not indexed in the loop: the loop is dominated by per-op overhead
        xz, xr, xh = (xp[..., i * n : (i + 1) * n].unbind(1) for i in range(3))
        z_t, r_t, c_t, h_t = zs.unbind(1), rs.unbind(1), cs.unbind(1), states.unbind(1)
        m_t, keep_t = (None, None) if ms is None else (ms.unbind(1), (1 - ms).unbind(1))
        h = h0
        for s in range(t):
            zr = h @ u_zr
            z = torch.sigmoid(xz[s] + zr[:, :n], out=z_t[s])
            r = torch.sigmoid(xr[s] + zr[:, n:], out=r_t[s])
            if candidate == "tanh":
                cand = torch.tanh(xh[s] + (r * h) @ u_h, out=c_t[s])
            else:
                cand = c_t[s].copy_(act(xh[s] + (r * h) @ u_h))
            new = (1 - z) * h + z * cand
            # h stays a contiguous tensor of its own, as in the step-by-step code, so that the matmuls see the
            # same layout and the states are the same to the bit
            h = new if m_t is None else m_t[s] * new + keep_t[s] * h
            h_t[s].copy_(h)
        ctx.tbptt, ctx.candidate = tbptt, candidate
        ctx.save_for_backward(h0, u_zr, u_h, ms, states, zs, rs, cs)
        return states

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, g_states):
        h0, u_zr, u_h, ms, states, zs, rs, cs = ctx.saved_tensors
        b, t, n = states.shape
        gs = g_states
        hp = _prev_states(h0, states)  # h_{t-1}
        u_zr_t, u_h_t = u_zr.T.contiguous(), u_h.T.contiguous()
        # every factor that does not depend on dh, for all steps at once (m: the mask, 1 when there is none)
        dcand = _act_grad(ctx.candidate, cs)  # 1 - h~^2 for tanh; None for the identity
        a_h = zs if dcand is None else zs * dcand  # d a_h = d new * a_h
        a_z = (cs - hp) * zs * (1 - zs)  # d a_z = d new * a_z
        a_r = hp * rs * (1 - rs)  # d a_r = d(r h) * a_r
        if ms is None:
            keep = 1 - zs  # dh_{t-1} (direct part) = g * keep
        else:
            a_h, a_z, keep = ms * a_h, ms * a_z, 1 - ms * zs
        dxp = gs.new_empty(b, t, 3 * n)
        d_z, d_r, d_h, d_zr = (dxp[..., i * n : j * n].unbind(1) for i, j in ((0, 1), (1, 2), (2, 3), (0, 2)))
        g_t, ah_t, az_t, ar_t, k_t, r_t = (v.unbind(1) for v in (gs, a_h, a_z, a_r, keep, rs))
        dh = torch.zeros_like(h0)  # gradient reaching h_t from step t+1
        for s in range(t - 1, -1, -1):
            g = g_t[s] + dh
            da_h = torch.mul(g, ah_t[s], out=d_h[s])
            torch.mul(g, az_t[s], out=d_z[s])
            drh = da_h @ u_h_t
            torch.mul(drh, ar_t[s], out=d_r[s])
            if _cut(ctx.tbptt, s):
                dh = torch.zeros_like(dh)
            else:
                dh = (g * k_t[s]).addcmul_(drh, r_t[s]).addmm_(d_zr[s], u_zr_t)
        flat = hp.reshape(-1, n)
        d_u_zr = flat.T @ dxp[..., : 2 * n].reshape(-1, 2 * n)
        d_u_h = (rs * hp).reshape(-1, n).T @ dxp[..., 2 * n :].reshape(-1, n)
        return dxp, dh, d_u_zr, d_u_h, None, None, None


class ElmanScan(torch.autograd.Function):
    """Elman RNN over time: ``(xp (B,T,H), h0 (B,H), W_h^T (H,H), mask|None, activation, tbptt)`` -> states."""

    @staticmethod
    def forward(ctx, xp, h0, w, mask, activation: str, tbptt: int):
        act = _ACTIVATIONS[activation]
        b, t, n = xp.shape
        ms = mask
        ys = xp.new_empty(b, t, n)
        states = ys if mask is None else xp.new_empty(b, t, n)
        x_t, y_t, h_t = xp.unbind(1), ys.unbind(1), states.unbind(1)
        m_t, keep_t = (None, None) if ms is None else (ms.unbind(1), (1 - ms).unbind(1))
        h = h0
        for s in range(t):
            y = act(x_t[s] + h @ w)
            y_t[s].copy_(y)
            if ms is None:
                h = y
            else:
                h = m_t[s] * y + keep_t[s] * h
                h_t[s].copy_(h)
        ctx.activation, ctx.tbptt = activation, tbptt
        ctx.save_for_backward(h0, w, ms, states, ys)
        return states

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, g_states):
        h0, w, ms, states, ys = ctx.saved_tensors
        b, t, n = states.shape
        w_t = w.T.contiguous()
        dact = _act_grad(ctx.activation, ys)  # act'(a_t), all steps at once
        if ms is not None:
            dact = ms.expand_as(ys) if dact is None else ms * dact
        da = g_states.new_empty(b, t, n)
        g_t, da_t = g_states.unbind(1), da.unbind(1)
        dact_t = None if dact is None else dact.unbind(1)
        keep_t = None if ms is None else (1 - ms).unbind(1)
        dh = torch.zeros_like(h0)
        for s in range(t - 1, -1, -1):
            g = g_t[s] + dh
            a = da_t[s].copy_(g) if dact_t is None else torch.mul(g, dact_t[s], out=da_t[s])
            if _cut(ctx.tbptt, s):
                dh = torch.zeros_like(dh)
            else:
                dh = a @ w_t if ms is None else torch.addcmul(a @ w_t, g, keep_t[s])
        d_w = _prev_states(h0, states).reshape(-1, n).T @ da.reshape(-1, n)
        return da, dh, d_w, None, None, None
