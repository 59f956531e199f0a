"""Can attention imitate a convolution, or a fully connected layer? Attention layers of :mod:`genlab.nn.imitate`
trained (through fit, one stage each) to reproduce a fixed random 3x3 convolution and a fixed random fully
connected layer on scikit-learn's 8x8 digits (embedded: no download), judged by their relative error on
held-out digits: mean squared error over the target's variance (0 = exact, 1 = no better than its mean).
"""

from __future__ import annotations

import copy
from typing import Any

import torch
from torch import nn

from genlab.labs.theory.core import Theory, evidence, fit_stage
from genlab.nn.imitate import ClsAttention, RelativeAttention
from genlab.runs import seed_everything
from genlab.train import make_optimizer

CONV_HEADS = (1, 4, 9)
FC_VARIANTS = (("additive", 1), ("additive", 20), ("multiplicative", 1))  # (pixel embedding, heads)
FC_OUT = 10


def digits(device: torch.device | str = "cpu") -> tuple[torch.Tensor, torch.Tensor]:
    """Train (first 1400) and test images (the rest) of the 8x8 digits, (N, 1, 8, 8), standardised."""
    from sklearn.datasets import load_digits

    x = torch.tensor(load_digits().images, dtype=torch.float32)[:, None] / 16.0
    x = (x - x.mean()) / x.std()
    return x[:1400].to(device), x[1400:].to(device)


def targets(seed: int) -> tuple[nn.Module, nn.Module]:
    """The fixed layers to imitate: a 3x3 convolution (1 -> 4 channels, padding 1) and a 64 -> 10 linear layer."""
    g = torch.Generator().manual_seed(seed + 31)
    conv, fc = nn.Conv2d(1, 4, 3, padding=1), nn.Linear(64, FC_OUT)
    with torch.no_grad():
        for p in (*conv.parameters(), *fc.parameters()):
            p.copy_(torch.randn(p.shape, generator=g) / 3)
    return conv.requires_grad_(False), fc.requires_grad_(False)


def _fit(th: Theory, name: str, model: nn.Module, target: nn.Module, train: torch.Tensor, config: dict) -> nn.Module:
    """Train ``model`` to imitate ``target`` on ``train`` (on the run's device); returns it on the CPU."""
    target = copy.deepcopy(target).to(th.device)

    def batches(step: int) -> torch.Tensor:
        g = torch.Generator().manual_seed(th.cfg.seed * 1_000_003 + step)
        return train[torch.randint(0, len(train), (128,), generator=g)].to(th.device)

    def step_fn(m: nn.Module, x: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"loss": (m(x) - target(x.flatten(1) if isinstance(target, nn.Linear) else x)).pow(2).mean()}

    opt = make_optimizer(model.parameters(), lr=1e-2)
    return fit_stage(th, name, model, opt, step_fn, batches, steps=th.cfg.imitate_steps, config=config).cpu()


def relative_error(model: nn.Module, target: nn.Module, x: torch.Tensor) -> float:
    with torch.no_grad():
        want = target(x.flatten(1) if isinstance(target, nn.Linear) else x)
        return float((model(x) - want).pow(2).mean() / want.var())


@evidence("attention_imitation")
def evidence_attention_imitation(th: Theory) -> dict[str, Any]:
    train, test = digits()
    conv, fc = targets(th.cfg.seed)
    rows, maps = [], None
    for heads in CONV_HEADS:
        seed_everything(th.cfg.seed)
        model = _fit(th, f"imitate-conv-{heads}", RelativeAttention(8, 1, 4, heads), conv, train, {"heads": heads})
        rows.append(
            {
                "imitates": "3x3 convolution",
                "attention": f"relative-position heads: {heads}",
                "heads": heads,
                "relative_error": relative_error(model, conv, test),
            }
        )
        if heads == max(CONV_HEADS):  # where each head of the largest model looks from pixel (3, 3)
            with torch.no_grad():
                maps = model.weights()[:, 3 * 8 + 3].view(heads, 10, 10)[:, 2:7, 2:7].numpy()
    for emb, heads in FC_VARIANTS:
        seed_everything(th.cfg.seed)
        model = ClsAttention(64, FC_OUT, heads, multiplicative=emb == "multiplicative")
        model = _fit(th, f"imitate-fc-{emb}-{heads}", model, fc, train, {"embedding": emb, "heads": heads})
        rows.append(
            {
                "imitates": f"fully connected 64 -> {FC_OUT}",
                "attention": f"[CLS], {emb} pixel embedding, heads: {heads}",
                "heads": heads,
                "relative_error": relative_error(model, fc, test),
            }
        )
    err = {r["attention"]: r["relative_error"] for r in rows}
    conv9, conv1 = err["relative-position heads: 9"], err["relative-position heads: 1"]
    fc_mul, fc_add1 = (
        err["[CLS], multiplicative pixel embedding, heads: 1"],
        err["[CLS], additive pixel embedding, heads: 1"],
    )
    passed = conv9 < 0.02 and conv1 > 10 * conv9 and fc_mul < 0.02 and fc_add1 > 10 * fc_mul
    return {
        "rows": rows,
        "maps": maps,
        "passed": passed,
        "check": f"relative error on held-out digits: conv with 9 heads {conv9:.1e} (< 0.02) vs 1 head "
        f"{conv1:.2f} (> 10x); FC with multiplicative embedding, 1 head {fc_mul:.1e} (< 0.02) vs "
        f"additive, 1 head {fc_add1:.2f} (> 10x)",
    }
