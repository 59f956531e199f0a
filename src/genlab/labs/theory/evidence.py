"""The evidence of the theory questions that need no training: each function runs one small experiment
(seconds on one CPU thread) and says whether its check passed. Registered by name with ``@evidence``; the
name is the figure or table that shows it.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from genlab.labs.theory.core import Theory, evidence
from genlab.nn import bptt
from genlab.nn import jacobians as J
from genlab.nn import transformer as tr
from genlab.nn.receptive_field import EXAMPLE, EXAMPLE_STRIDE1_POOL, measured_geometry, stack_geometry
from genlab.runs import seed_everything

# -------------------------------------------------------------------------- transformers: cost and residuals


@evidence("attention_cost")
def evidence_attention_cost(th: Theory) -> dict[str, Any]:
    rows = []
    for T in (8, 16, 32, 64, 128):
        for D, M in ((16, 16), (64, 16), (64, 128)):
            rows.append(
                {
                    "T": T,
                    "D": D,
                    "M": M,
                    "formula": tr.attention_multiplications(T, D, M),
                    "flop_counter": tr.measured_attention_flops(T, D, M) // 2,
                }
            )
    exact = all(r["formula"] == r["flop_counter"] for r in rows)
    # the softmax form of one output row: y_i = sum_j softmax_j(q_i . k_j / sqrt(D)) v_j
    g = torch.Generator().manual_seed(th.cfg.seed)
    q, k, v = (torch.randn(6, 4, generator=g, dtype=torch.float64) for _ in range(3))
    y, w = tr.attention(q, k, v)
    e = torch.exp(q[2] @ k.T / 2.0)
    row_err = float((y[2] - (e / e.sum()) @ v).abs().max())
    passed = exact and row_err < 1e-12 and bool(torch.allclose(w.sum(-1), torch.ones(6, dtype=torch.float64)))
    return {
        "rows": rows,
        "row_error": row_err,
        "passed": passed,
        "check": f"T^2 (D + M) equals torch's FLOP counter / 2 on all {len(rows)} (T, D, M) "
        f"({'exact' if exact else 'MISMATCH'}); one output row rebuilt from its softmax "
        f"(error {row_err:.1e})",
    }


def _growth_exponent(ms: np.ndarray) -> float:
    """Slope of log(E[x_l^2] - E[x_0^2]) against log l over the deeper half of the layers."""
    layers = np.arange(1, len(ms))
    deep = layers >= max(2, len(ms) // 4)
    return float(np.polyfit(np.log(layers[deep]), np.log(np.maximum(ms[1:][deep] - ms[0], 1e-12)), 1)[0])


@evidence("residual_init")
def evidence_residual_init(th: Theory) -> dict[str, Any]:
    curves = {
        init: tr.residual_stream_growth(th.cfg.depth, init, seed=th.cfg.seed).numpy() for init in tr.RESIDUAL_INITS
    }
    slopes = {k: _growth_exponent(v) for k, v in curves.items() if k != "gpt"}
    gpt_growth = float(curves["gpt"][-1] / curves["gpt"][0])
    passed = 0.8 < slopes["zero_mean"] < 1.25 and slopes["nonzero_mean"] > 1.6 and gpt_growth < 1.1
    return {
        "curves": {k: v.tolist() for k, v in curves.items()},
        "slopes": slopes,
        "gpt_growth": gpt_growth,
        "passed": passed,
        "check": f"growth exponent of E[x_l^2] - E[x_0^2]: {slopes['zero_mean']:.2f} for zero-mean branches "
        f"(linear: 0.8-1.25), {slopes['nonzero_mean']:.2f} for non-zero-mean ones (quadratic: > 1.6);"
        f" small-output (GPT) init changes it by x{gpt_growth:.3f} over {th.cfg.depth} blocks",
    }


# ------------------------------------------------------------------------------------------------------ BPTT


def _rnn_problem(seed: int, hidden: int = 6, inputs: int = 3, steps: int = 8, gain: float = 0.9):
    """A random leaky-ReLU RNN problem; W = gain * an orthogonal matrix (every singular value = gain)."""
    g = torch.Generator().manual_seed(seed)
    w = gain * torch.linalg.qr(torch.randn(hidden, hidden, generator=g, dtype=torch.float64))[0]
    u = torch.randn(hidden, inputs, generator=g, dtype=torch.float64)
    xs = torch.randn(steps, inputs, generator=g, dtype=torch.float64)
    h0 = torch.randn(hidden, generator=g, dtype=torch.float64)
    return w, u, xs, h0, torch.randn(hidden, generator=g, dtype=torch.float64)


@evidence("bptt_formula")
def evidence_bptt_formula(th: Theory) -> dict[str, Any]:
    w, u, xs, h0, v = _rnn_problem(th.cfg.seed)
    wr = w.clone().requires_grad_(True)
    (v @ bptt.leaky_rnn(wr, u, xs, h0)[0][-1]).backward()  # l_T = v . h_T, so dl_T/dh_T = v
    formula = bptt.bptt_grad_W(w, u, xs, h0, v)
    wrong = bptt.bptt_grad_W(w, u, xs, h0, v, derivative=False)
    err, wrong_err = float((formula - wr.grad).abs().max()), float((wrong - wr.grad).abs().max())
    return {
        "formula": formula.flatten().tolist(),
        "autograd": wr.grad.flatten().tolist(),
        "wrong": wrong.flatten().tolist(),
        "error": err,
        "wrong_error": wrong_err,
        "passed": err < 1e-10 and wrong_err > 1e-3,
        "check": f"formula vs autograd, all {w.numel()} entries of dl_T/dW: max error {err:.1e} (< 1e-10); "
        f"the formula without the D_tau is off by {wrong_err:.2g}",
    }


@evidence("bptt_cost")
def evidence_bptt_cost(th: Theory, hidden: int = 128, k: int = 16) -> dict[str, Any]:
    lengths = [n for n in (16, 32, 64, 128, 256, 512) if n <= th.cfg.bptt_max_len]
    g = torch.Generator().manual_seed(th.cfg.seed)
    w = (torch.randn(hidden, hidden, generator=g) / hidden**0.5).requires_grad_(True)
    u = torch.randn(hidden, 16, generator=g)
    rows = []
    for n in lengths:
        xs = torch.randn(n, 16, generator=g)
        t0 = time.perf_counter()
        last, held = bptt.last_state_bytes(w, u, xs, torch.zeros(hidden))
        last.pow(2).sum().backward()
        full_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        peak, _ = bptt.truncated_backward(w, u, xs, torch.zeros(hidden), k)
        rows.append(
            {
                "length": n,
                "full_bytes": held,
                "truncated_bytes": peak,
                "full_seconds": full_s,
                "truncated_seconds": time.perf_counter() - t0,
            }
        )
    per_step = [r["full_bytes"] / r["length"] for r in rows]
    linear = max(per_step) / min(per_step) < 1.1
    flat = len({r["truncated_bytes"] for r in rows if r["length"] >= k}) == 1
    return {
        "rows": rows,
        "k": k,
        "hidden": hidden,
        "passed": linear and flat,
        "check": f"memory autograd keeps: {per_step[-1] / 1024:.1f} KiB per step for full BPTT (linear in T: "
        f"{linear}); truncated BPTT (K = {k}) holds {rows[-1]['truncated_bytes'] / 1024:.0f} KiB "
        f"at any length (constant: {flat})",
    }


GAINS = (0.8, 2.0)  # W = gain * orthogonal; the leaky ReLU halves about half the directions' slopes


@evidence("gradient_flow")
def evidence_gradient_flow(th: Theory, hidden: int = 32, steps: int = 60, clip: float = 1.0) -> dict[str, Any]:
    from genlab.nn.recurrent import Recurrent

    curves = {}
    for gain in GAINS:
        w, u, _, _, v = _rnn_problem(th.cfg.seed, hidden=hidden, gain=gain)
        g = torch.Generator().manual_seed(th.cfg.seed + 1)
        xs = torch.randn(steps, u.shape[1], generator=g, dtype=torch.float64)
        h0 = torch.rand(hidden, generator=g, dtype=torch.float64)  # positive: the leaky ReLU's linear side
        curves[f"leaky-ReLU RNN, W = {gain:g} Q"] = bptt.state_gradients(w, u, xs, h0, v).tolist()
    x = torch.randn(8, steps, 8, generator=torch.Generator().manual_seed(th.cfg.seed))
    for cell, label in (("rnn", "Elman tanh (sentiment lab's cell)"), ("gru", "GRU (sentiment lab's cell)")):
        seed_everything(th.cfg.seed)
        net = Recurrent(8, hidden, cell=cell, activation="tanh")
        states, h = net.states_along_time(x)
        grads = torch.autograd.grad(h.pow(2).sum(), states)
        curves[label] = [float(gr.norm(dim=-1).mean()) for gr in grads]
    shrink, grow = (curves[f"leaky-ReLU RNN, W = {gain:g} Q"] for gain in GAINS)
    clipped = [min(n, clip) for n in grow]  # clip_grad_norm_ rescales to norm <= clip, keeping the direction
    gw = torch.tensor(grow[:3])
    after = gw * min(1.0, clip / float(gw.norm()))
    cos = float(F.cosine_similarity(gw, after, dim=0))
    passed = (
        grow[0] / grow[-1] > 100
        and shrink[0] / shrink[-1] < 0.01
        and float(after.norm()) <= clip + 1e-9
        and cos > 0.999999
    )
    return {
        "curves": curves,
        "clipped": clipped,
        "clip": clip,
        "steps": steps,
        "passed": passed,
        "check": f"||dl/dh_0|| / ||dl/dh_T|| = {grow[0] / grow[-1]:.3g} for W = {GAINS[1]:g} Q (explodes, "
        f"> 100) and {shrink[0] / shrink[-1]:.3g} for W = {GAINS[0]:g} Q (vanishes, < 0.01); clipping "
        f"keeps the norm <= {clip} and the direction (cosine {cos:.6f})",
    }


# ------------------------------------------------------------------------------------- convolutions and images


@evidence("jacobians")
def evidence_jacobians(th: Theory) -> dict[str, Any]:
    from torch.autograd.functional import jacobian

    g = torch.Generator().manual_seed(th.cfg.seed)

    def rnd(*shape):
        return torch.randn(*shape, generator=g, dtype=torch.float64)

    a, b, f1, f2 = rnd(5, 8), rnd(8), rnd(3), rnd(3, 3)
    x1, x2 = rnd(10), rnd(6, 6)
    cases = {
        "A x  (J = A)": (J.jacobian_linear(a), jacobian(lambda v: a @ v, rnd(8))),
        "x + b  (J = I)": (J.jacobian_shift(8), jacobian(lambda v: v + b, rnd(8))),
        "x * f, 1D, K=3, padding 1, stride 1": (
            J.jacobian_conv1d(f1, 10, 1, 1),
            jacobian(lambda v: F.conv1d(v.view(1, 1, -1), f1.view(1, 1, -1), padding=1).flatten(), x1),
        ),
        "x * f, 1D, K=3, padding 1, stride 2": (
            J.jacobian_conv1d(f1, 10, 2, 1),
            jacobian(lambda v: F.conv1d(v.view(1, 1, -1), f1.view(1, 1, -1), stride=2, padding=1).flatten(), x1),
        ),
        "x * f, 2D 6x6, 3x3 kernel, padding 0, stride 1": (
            J.jacobian_conv2d(f2, (6, 6)),
            jacobian(lambda v: F.conv2d(v.view(1, 1, 6, 6), f2.view(1, 1, 3, 3)).flatten(), x2).reshape(16, 36),
        ),
    }
    errors = {k: float((got - want).abs().max()) for k, (got, want) in cases.items()}
    conv_same = cases["x * f, 1D, K=3, padding 1, stride 1"][1]
    diag_err = float((torch.diag(torch.cat([f1] * 4)[:10]) - conv_same).abs().max())
    passed = max(errors.values()) < 1e-12 and diag_err > 0.1
    return {
        "matrices": {k: got.numpy() for k, (got, _) in cases.items()},
        "errors": errors,
        "kernel": f1.tolist(),
        "diag_error": diag_err,
        "passed": passed,
        "check": f"every formula equals autograd's Jacobian (max error {max(errors.values()):.1e}); a "
        f"diagonal guess for the convolution is off by {diag_err:.2f}",
    }


@evidence("receptive_field")
def evidence_receptive_field(th: Theory) -> dict[str, Any]:
    rows, ok = [], True
    for label, stack in (
        ("maxpool2 with stride 1", EXAMPLE_STRIDE1_POOL),
        ("maxpool2 (torch default stride 2)", EXAMPLE),
    ):
        geo = stack_geometry(128, stack)
        size, rf = measured_geometry(128, stack)
        ok &= (size, rf) == (geo[-1]["output"], geo[-1]["receptive_field"])
        for i, r in enumerate(geo):
            last = i == len(geo) - 1
            rows.append(
                {"stack": label, **r, "torch_output": size if last else "", "torch_receptive_field": rf if last else ""}
            )
    final = [r for r in rows if r["torch_output"] != ""]
    passed = ok and [(r["output"], r["receptive_field"]) for r in final] == [(117, 12), (56, 18)]
    return {
        "rows": rows,
        "passed": passed,
        "check": f"formula = real torch layers: {final[0]['output']}x{final[0]['output']} with a "
        f"{final[0]['receptive_field']}-pixel field (stride-1 pool), {final[1]['output']}x"
        f"{final[1]['output']} with {final[1]['receptive_field']} (default pool)",
    }
