"""Matplotlib helpers with one house style for every lab (Agg backend: no screen needed)."""

from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

# Colour-blind-safe qualitative palette (Okabe-Ito), then tab10 for more classes.
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442", "#000000", "#999999")

STYLE = {
    "figure.dpi": 110,
    "savefig.dpi": 130,
    "savefig.bbox": "tight",
    "font.size": 10,
    "axes.titlesize": 11,
    "axes.titleweight": "bold",
    "axes.labelsize": 10,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.alpha": 0.25,
    "grid.linewidth": 0.6,
    "legend.frameon": False,
    "legend.fontsize": 9,
    "lines.linewidth": 1.6,
    "image.cmap": "viridis",
    "axes.prop_cycle": matplotlib.cycler(color=PALETTE),
}
plt.rcParams.update(STYLE)


def class_colors(n: int) -> list[str]:
    """``n`` distinct colours, the house palette first."""
    if n <= len(PALETTE):
        return list(PALETTE[:n])
    cmap = plt.get_cmap("tab20")
    return [matplotlib.colors.to_hex(cmap(i % 20)) for i in range(n)]


def figure(nrows: int = 1, ncols: int = 1, *, size: tuple[float, float] | None = None,
           squeeze: bool = True, **kw: Any):
    """``plt.subplots`` with a size that grows with the grid."""
    size = size or (3.6 * ncols + 0.4, 3.2 * nrows + 0.3)
    return plt.subplots(nrows, ncols, figsize=size, squeeze=squeeze, **kw)


def save_figure(fig: Any, path: str | Path) -> Path:
    """Render ``fig`` to PNG in memory, write it atomically, and close the figure."""
    from genlab.runs import atomic_write_bytes

    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return atomic_write_bytes(path, buf.getvalue())


def smooth(values: Sequence[float], window: int) -> np.ndarray:
    """Trailing moving average (window 1 = unchanged) for noisy loss curves."""
    v = np.asarray(values, dtype=float)
    if window <= 1 or len(v) < window:
        return v
    c = np.cumsum(np.insert(v, 0, 0.0))
    out = (c[window:] - c[:-window]) / window
    return np.concatenate([v[: window - 1].cumsum() / np.arange(1, window), out])


def loss_curves(metrics: Sequence[dict[str, Any]], keys: Sequence[str], *, title: str = "Training loss",
                logy: bool = False, ax: Any = None):
    """Plot ``keys`` from metrics rows against ``step``: raw (faint) and smoothed. Returns the figure."""
    fig = None
    if ax is None:
        fig, ax = figure(size=(6, 3.6))
    for i, key in enumerate(keys):
        pts = [(r["step"], r[key]) for r in metrics if key in r and r[key] is not None]
        if not pts:
            continue
        steps, vals = map(np.asarray, zip(*pts))
        color = PALETTE[i % len(PALETTE)]
        window = max(1, len(vals) // 50)
        if window > 1:
            ax.plot(steps, vals, color=color, alpha=0.25, linewidth=0.8)
        ax.plot(steps, smooth(vals, window), color=color, label=key)
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    ax.set_title(title)
    if logy:
        ax.set_yscale("log")
    ax.legend()
    return fig if fig is not None else ax.figure


def image_grid(images: np.ndarray, nrow: int, *, pad: int = 1, value: float = 1.0) -> np.ndarray:
    """Tile ``images`` of shape (N, H, W) or (N, H, W, C) into one array with ``nrow`` rows."""
    images = np.asarray(images)
    n, h, w = images.shape[:3]
    ncol = int(np.ceil(n / nrow))
    extra = images.shape[3:]
    grid = np.full((nrow * (h + pad) + pad, ncol * (w + pad) + pad, *extra), value, dtype=images.dtype)
    for i in range(n):
        r, c = divmod(i, ncol)
        y, x = pad + r * (h + pad), pad + c * (w + pad)
        grid[y:y + h, x:x + w] = images[i]
    return grid
