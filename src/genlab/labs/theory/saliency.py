"""Which image regions matter for a prediction? Occlusion, input-gradient saliency and Grad-CAM on the latent
lab's judge CNN (trained here through fit on the embedded 8x8 digits, upscaled to 32x32), compared on the same
digits and judged by deletion: remove the pixels a map ranks highest and see how fast the prediction falls.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from genlab.data.images import load_digits
from genlab.labs.theory.core import Theory, evidence, fit_stage
from genlab.nn.gan import JudgeCNN
from genlab.nn.gradcam import deletion_drop, gradcam_map
from genlab.nn.saliency import gradient_map, occlusion_map
from genlab.runs import seed_everything
from genlab.train import make_optimizer

FRACTION = 0.1  # share of pixels deleted


def train_judge(th: Theory) -> tuple[JudgeCNN, Any]:
    data = load_digits()
    seed_everything(th.cfg.seed)
    judge = JudgeCNN()

    def batches(step: int):
        g = torch.Generator().manual_seed(th.cfg.seed * 1_000_003 + step)
        i = torch.randint(0, len(data.train_x), (64,), generator=g)
        return data.train_x[i].to(th.device), data.train_y[i].to(th.device)

    def step_fn(m, batch):
        x, y = batch
        return {"loss": F.cross_entropy(m(x), y)}

    opt = make_optimizer(judge.parameters(), lr=1e-3)
    judge = fit_stage(
        th, "saliency-judge", judge, opt, step_fn, batches, steps=th.cfg.judge_steps, config={"data": "digits"}
    ).cpu()
    return judge, data


@evidence("saliency")
def evidence_saliency(th: Theory, n: int | None = None, shown: int = 6) -> dict[str, Any]:
    n = n or th.cfg.saliency_images
    judge, data = train_judge(th)
    with torch.no_grad():
        accuracy = float((judge(data.test_x).argmax(1) == data.test_y).float().mean())
    x, y = data.test_x[:n], data.test_y[:n]
    maps = {
        "occlusion (8x8 patch)": occlusion_map(judge, x, y, patch=8, stride=2),
        "input gradient": gradient_map(judge, x, y),
        "Grad-CAM (3rd conv)": gradcam_map(judge, judge.body[6], x, y),
    }
    rand = np.random.default_rng(th.cfg.seed).random((n, 32, 32))
    drops = {k: deletion_drop(judge, x, y, m, FRACTION) for k, m in maps.items()}
    drops["random pixels"] = deletion_drop(judge, x, y, rand, FRACTION)
    worst = min(v for k, v in drops.items() if k != "random pixels")
    passed = accuracy > 0.8 and worst > 2 * drops["random pixels"]
    return {
        "maps": {k: m[:shown] for k, m in maps.items()},
        "images": x[:shown, 0].numpy(),
        "drops": drops,
        "accuracy": accuracy,
        "passed": passed,
        "check": f"judge accuracy {accuracy:.2f} (> 0.8); deleting the top {FRACTION:.0%} pixels drops p(class) "
        + ", ".join(f"{k} {v:.2f}" for k, v in drops.items())
        + ": every map > 2x random",
    }
