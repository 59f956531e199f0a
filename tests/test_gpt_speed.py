"""The GPT's fast training path (issue 16): the blockwise cross-entropy, amp=auto and the fused optimiser."""

from __future__ import annotations

import builtins
import io

import pytest
import torch
import torch.nn.functional as F

from genlab.labs.textgen.config import PRESETS, TINY, TextgenConfig
from genlab.nn.gpt import cross_entropy
from genlab.train import bf16_matmul_pays, make_optimizer, resolve_amp


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("vocab", [7, 300, 70000])  # one row per block, several, many
def test_cross_entropy_matches_torch(dtype, vocab):
    g = torch.Generator().manual_seed(vocab)
    logits = (3 * torch.randn(37, vocab, generator=g)).to(dtype).requires_grad_()
    targets = torch.randint(vocab, (37,), generator=g)
    targets[[3, 20]] = -100  # left out, as by F.cross_entropy
    ref = F.cross_entropy(logits.float(), targets)
    (ref_grad,) = torch.autograd.grad(ref, logits)
    loss = cross_entropy(logits, targets)
    (grad,) = torch.autograd.grad(2.5 * loss, logits)  # an upstream gradient other than 1 is carried through
    assert loss.dtype == torch.float32 and grad.dtype == dtype
    torch.testing.assert_close(loss, ref, rtol=1e-5, atol=1e-5)
    tol = 1e-6 if dtype == torch.float32 else 2e-3
    torch.testing.assert_close(grad.float(), 2.5 * ref_grad.float(), rtol=tol, atol=tol)
    assert grad[3].abs().max() == 0


def test_resolve_amp():
    cpu = torch.device("cpu")
    assert resolve_amp(cpu, "off") == "off" and resolve_amp(cpu, "bf16") == "bf16"
    assert resolve_amp(cpu, "auto") == ("bf16" if bf16_matmul_pays("cpu") else "off")
    assert not bf16_matmul_pays("mps")


@pytest.mark.parametrize("flags", ["fpu sse avx2 avx512f", ""])
def test_no_bf16_units_means_float32(monkeypatch, flags):
    real_open = builtins.open

    def fake_open(path, *a, **kw):
        if str(path) == "/proc/cpuinfo":
            return io.StringIO(f"processor : 0\nflags : {flags}\n")
        return real_open(path, *a, **kw)

    monkeypatch.setattr(builtins, "open", fake_open)
    assert bf16_matmul_pays.__wrapped__("cpu") is False


def test_textgen_trains_with_auto_amp_and_fused_adamw():
    assert TextgenConfig().amp == "auto" and all(p.amp == "auto" for p in PRESETS.values())
    assert TINY.amp == "off"  # too small for bf16 to pay
    w = torch.nn.Parameter(torch.ones(3))
    assert make_optimizer([w], "adamw", fused=True).defaults["fused"]
    assert make_optimizer([w], "adamw").defaults["foreach"]
