"""Two-sample distances for sample quality (shape-agnostic: samples are flattened to vectors), and the quality
protocol of samples of a 2D toy data set (:func:`toy2d_quality`)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from genlab.data.toy2d import in_support, make_toy2d, region

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


def energy_vs_floor(
    x: Tensor, fresh: Callable[[int, int], Tensor], *, seed: int = 1000, repeats: int = 5
) -> dict[str, float]:
    """The sample-quality protocol: energy distance of samples ``x`` to fresh data beside its noise floor.

    ``fresh(n, seed)`` draws ``n`` new data points. One energy distance between samples of a few thousand
    points is noisy (two fresh 2D data sets of 2000 points score anywhere from 0.0002 to 0.0012), so both
    numbers are means over ``repeats`` fresh data sets (seeds ``seed``, ``seed + 1``, ...):
    ``energy_distance`` of ``x`` to each, ``noise_floor`` between pairs of fresh sets of the same size (what
    a perfect model would score), and ``distance_ratio`` = their ratio. The samples themselves are one draw,
    and that draw's own noise stays: 20 fresh spiral sets of 2000 points scored as if they were samples give
    ratios from 0.66 to 2.34 (mean 1.08), so read a ratio near 1-2 as "at the floor" and compare models on
    several draws or on ``energy_distance - noise_floor`` at larger ``n``.
    """
    x = x.detach().cpu()
    n = x.shape[0]
    eds, floors = [], []
    for r in range(repeats):
        a, b = fresh(n, seed + 2 * r), fresh(n, seed + 2 * r + 1)
        eds.append(energy_distance(x, a))
        floors.append(energy_distance(b, a))
    ed, floor = float(np.mean(eds)), float(np.mean(floors))
    return {"energy_distance": ed, "noise_floor": floor, "distance_ratio": ed / floor}


def toy2d_quality(
    dataset: str, x: Tensor, labels: Tensor | None = None, *, data_seed: int = 0, seed: int = 1000
) -> dict[str, float]:
    """Samples ``x`` (N, 2) of a model of the toy data set ``dataset`` (:mod:`genlab.data.toy2d`, trained on the
    points of ``data_seed``): :func:`energy_vs_floor` against fresh sets of its points (seeds ``data_seed +
    seed``, ...), the share of samples on the data (``in_support``) and, with the ``labels`` they were drawn
    for, the share in their class's region (``in_region``). Samples all drawn for one class are compared with
    fresh points of that class."""
    x = x.detach().cpu()
    kinds = labels.unique() if labels is not None else None
    if kinds is not None and len(kinds) == 1 and make_toy2d(dataset, 1).y is not None:
        only = int(kinds[0])  # samples of one class are compared with that class's points, not all the data

        def fresh(n: int, s: int) -> Tensor:
            m = 4 * n
            while True:
                d = make_toy2d(dataset, m, seed=data_seed + s)
                pts = d.x[d.y == only]
                if len(pts) >= n or m > 10**7:
                    return pts[:n]
                m *= 4

        out = energy_vs_floor(x, fresh, seed=seed)
    else:
        out = energy_vs_floor(x, lambda n, s: make_toy2d(dataset, n, seed=data_seed + s).x, seed=seed)
    out["in_support"] = float(in_support(dataset, x).float().mean())
    if labels is not None:
        out["in_region"] = float((region(dataset, x) == labels.cpu()).float().mean())
    return out
