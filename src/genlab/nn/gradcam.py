"""Grad-CAM (Selvaraju et al., 2017): where a CNN's chosen convolution layer sees evidence for a class.

For the feature maps ``A_c`` (c = channels) of one layer and the class score ``y``::

    alpha_c = mean over positions of dy / dA_c          (how much channel c matters for this class)
    map     = ReLU(sum_c alpha_c A_c), upsampled to the input size

Coarser than an input-gradient map (the layer's resolution) but far less noisy; see also
:mod:`genlab.nn.saliency` for occlusion and input-gradient maps, and :func:`deletion_curve` to compare them.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn


def gradcam_map(model: nn.Module, layer: nn.Module, x: torch.Tensor, target: torch.Tensor) -> np.ndarray:
    """Grad-CAM maps ``(N, H, W)`` of ``target`` classes for images ``x`` ``(N, C, H, W)`` at ``layer``'s output."""
    kept: list[torch.Tensor] = []
    hook = layer.register_forward_hook(lambda _m, _i, out: kept.append(out))
    try:
        logits = model(x.detach().requires_grad_(True))  # so the layer's output is in the graph even without weights
    finally:
        hook.remove()
    if not kept:
        raise ValueError("the layer was not run by the model's forward pass; pass one of the model's own modules")
    acts = kept[0]
    grads = torch.autograd.grad(logits.gather(1, target.view(-1, 1)).sum(), acts)[0]
    cam = F.relu((grads.mean((2, 3), keepdim=True) * acts).sum(1, keepdim=True))
    cam = F.interpolate(cam, size=x.shape[-2:], mode="bilinear", align_corners=False)
    return cam[:, 0].detach().cpu().numpy()


@torch.no_grad()
def deletion_drop(
    model: nn.Module, x: torch.Tensor, target: torch.Tensor, maps: np.ndarray, fraction: float, fill: float = 0.0
) -> float:
    """Mean drop of ``p(target)`` when the ``fraction`` of pixels a saliency map ranks highest are set to
    ``fill``: a map that finds what matters makes the prediction fall faster than a random one."""
    n, _, h, w = x.shape
    k = max(1, int(round(fraction * h * w)))
    top = torch.as_tensor(maps).reshape(n, -1).topk(k, dim=1).indices
    mask = torch.zeros(n, h * w).scatter_(1, top, 1.0).view(n, 1, h, w).to(x)
    before = F.softmax(model(x), 1).gather(1, target.view(-1, 1))
    after = F.softmax(model(x * (1 - mask) + fill * mask), 1).gather(1, target.view(-1, 1))
    return float((before - after).mean())
