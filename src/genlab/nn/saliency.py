"""Which input pixels a classifier's prediction depends on: occlusion and input-gradient maps."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn


@torch.no_grad()
def occlusion_map(
    model: nn.Module, x: torch.Tensor, target: torch.Tensor, *, patch: int = 8, stride: int = 2, fill: float = 0.0
) -> np.ndarray:
    """Per-pixel mean drop of ``p(target)`` when a ``patch`` x ``patch`` square over it is set to ``fill``.

    All occluded copies of one image go through the model as one batch (no loop over positions in Python
    beyond building the masks once).
    """
    _, _, h, w = x.shape
    ys = list(range(0, h - patch + 1, stride))
    xs = list(range(0, w - patch + 1, stride))
    masks = torch.zeros(len(ys) * len(xs), 1, h, w, device=x.device)
    for k, (a, b) in enumerate((a, b) for a in ys for b in xs):
        masks[k, 0, a : a + patch, b : b + patch] = 1
    cover = masks.sum(0)[0].clamp_min(1)
    out = []
    for i in range(len(x)):
        base = F.softmax(model(x[i : i + 1]), 1)[0, target[i]]
        occluded = x[i : i + 1] * (1 - masks) + fill * masks
        p = F.softmax(model(occluded), 1)[:, target[i]]
        drop = (base - p).view(-1, 1, 1, 1)
        out.append(((drop * masks).sum(0)[0] / cover).cpu().numpy())
    return np.stack(out)


def gradient_map(model: nn.Module, x: torch.Tensor, target: torch.Tensor) -> np.ndarray:
    """``|d logit_target / d x|`` per pixel (vanilla saliency)."""
    x = x.clone().requires_grad_(True)
    logits = model(x)
    logits.gather(1, target.view(-1, 1)).sum().backward()
    return x.grad.abs()[:, 0].cpu().numpy()
