"""Two-sample distances for sample quality (shape-agnostic: samples are flattened to vectors)."""

from __future__ import annotations

import torch

Tensor = torch.Tensor


def _flat(x: Tensor) -> Tensor:
    return x.reshape(x.shape[0], -1).double()


def energy_distance(x: Tensor, y: Tensor) -> float:
    """Energy distance ``2 E|X-Y| - E|X-X'| - E|Y-Y'|`` (V-statistic, >= 0; 0 iff the samples coincide).

    Compare it with the same distance between two fresh samples of the data, of the same sizes: that
    *noise floor* is what a perfect model would score.
    """
    x, y = _flat(x), _flat(y)
    return float(2 * torch.cdist(x, y).mean() - torch.cdist(x, x).mean() - torch.cdist(y, y).mean())


def mmd_rbf(x: Tensor, y: Tensor, bandwidth: float | None = None) -> float:
    """Squared maximum mean discrepancy with a Gaussian kernel (V-statistic; median-heuristic bandwidth)."""
    x, y = _flat(x), _flat(y)
    dxx, dyy, dxy = torch.cdist(x, x) ** 2, torch.cdist(y, y) ** 2, torch.cdist(x, y) ** 2
    if bandwidth is None:
        bandwidth = float(torch.sqrt(torch.median(dxy) / 2).clamp(min=1e-6))
    k = lambda d: torch.exp(-d / (2 * bandwidth**2))  # noqa: E731
    return float(k(dxx).mean() + k(dyy).mean() - 2 * k(dxy).mean())
