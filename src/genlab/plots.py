"""Matplotlib helpers with one house style for every lab.

Importing genlab changes no global matplotlib state: figures are plain :class:`matplotlib.figure.Figure`
objects (no pyplot, no backend switch, nothing to close), and the house style is applied only while a lab
draws (``with plots.style(): ...``; the figure registry in :mod:`genlab.labs` does this for every figure).
In a notebook a returned figure shows itself; :func:`save_figure` writes it as PNG, atomically.
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import matplotlib
import numpy as np
from matplotlib.figure import Figure

from genlab.io import atomic_write_bytes

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


@contextlib.contextmanager
def style():
    """The house style while the block runs; matplotlib's own settings are restored afterwards."""
    with matplotlib.rc_context(STYLE):
        yield


def class_colors(n: int) -> list[str]:
    """``n`` distinct colours, the house palette first."""
    if n <= len(PALETTE):
        return list(PALETTE[:n])
    cmap = matplotlib.colormaps["tab20"]
    return [matplotlib.colors.to_hex(cmap(i % 20)) for i in range(n)]


def blank(size: tuple[float, float], **kw: Any) -> Figure:
    """An empty figure of ``size`` inches (for hand-made layouts: ``fig.add_gridspec``, ``fig.subfigures``)."""
    return Figure(figsize=size, **kw)


def figure(
    nrows: int = 1,
    ncols: int = 1,
    *,
    size: tuple[float, float] | None = None,
    squeeze: bool = True,
    layout: str | None = None,
    **kw: Any,
):
    """``(fig, axes)`` like ``plt.subplots``, with a size that grows with the grid (no pyplot involved)."""
    size = size or (3.6 * ncols + 0.4, 3.2 * nrows + 0.3)
    fig = Figure(figsize=size, layout=layout)
    axes = fig.subplots(nrows, ncols, squeeze=squeeze, **kw)
    return fig, axes


def _array(values: Any) -> np.ndarray:
    return values.detach().cpu().numpy() if hasattr(values, "detach") else np.asarray(values)


def scatter(ax: Any, points: Any, *, s: float = 2, alpha: float = 0.6, **kw: Any) -> Any:
    """Small, borderless dots for a point cloud: ``points`` is an (N, 2) tensor or array."""
    xy = _array(points)
    return ax.scatter(xy[:, 0], xy[:, 1], s=s, alpha=alpha, lw=0, **kw)


def class_scatter(
    ax: Any, points: Any, labels: Any, num_classes: int | None = None, *, legend: str = "class", **kw: Any
) -> None:
    """A labelled point cloud, class ``c`` (0..K-1, K = ``num_classes`` or the largest label + 1) as
    :func:`scatter` dots in ``class_colors(K)[c]``, with a legend of the classes titled ``legend`` beside the axes."""
    xy, labels = _array(points), _array(labels)
    k = num_classes or int(labels.max()) + 1
    for c, color in enumerate(class_colors(k)):
        scatter(ax, xy[labels == c], color=color, label=str(c), **kw)
    ax.legend(title=legend, fontsize=8, markerscale=3, loc="center left", bbox_to_anchor=(1.0, 0.5))


def point_panels(
    axes: Any,
    clouds: Sequence[Any],
    titles: Sequence[str],
    *,
    colors: Sequence[str] = PALETTE,
    frame: Any = None,
    fontsize: float = 9,
    **kw: Any,
) -> None:
    """One point cloud per Axes of ``axes`` (in their flat order): :func:`scatter` dots in ``colors[i]``
    (cycled), the title ``titles[i]``, and ``frame(ax)`` (an outline, limits) on each when given."""
    for i, (ax, xy, title) in enumerate(zip(np.atleast_1d(axes).flat, clouds, titles)):
        scatter(ax, xy, color=colors[i % len(colors)], **kw)
        if frame is not None:
            frame(ax)
        ax.set_title(title, fontsize=fontsize)


def point_grid(
    clouds: Sequence[Any],
    titles: Sequence[str],
    *,
    nrows: int = 1,
    ncols: int | None = None,
    panel: tuple[float, float] = (2.5, 2.9),
    lim: float | None = None,
    title: str = "",
    **kw: Any,
):
    """A figure of point-cloud panels on shared axes, ``nrows`` x ``ncols`` (default: enough columns for the
    clouds) of ``panel`` inches each: :func:`point_panels` (``kw``: its keywords) in reading order, equal limits
    [-lim, lim] when given, and a bold ``title`` above. Returns ``(fig, axes)``, axes as a 2D array."""
    ncols = ncols or -(-len(clouds) // nrows)
    size = (panel[0] * ncols, panel[1] * nrows)
    fig, axes = figure(nrows, ncols, layout="constrained", size=size, sharex=True, sharey=True, squeeze=False)
    point_panels(axes, clouds, titles, **kw)
    if lim is not None:
        square_limits(axes, lim)
    if title:
        fig.suptitle(title, fontweight="bold")
    return fig, axes


def mark(
    ax: Any, points: Any, label: str | None = None, *, marker: str = "*", s: float = 120, color: str = "black", **kw
) -> Any:
    """Emphasised points drawn above the rest (a start, a target, end points): one point (2,) or a set (N, 2)."""
    xy = np.atleast_2d(_array(points))
    return ax.scatter(xy[:, 0], xy[:, 1], marker=marker, s=s, color=color, label=label, **{"zorder": 5, **kw})


def paths(
    ax: Any,
    xs: Any,
    colors: Sequence[str] = PALETTE,
    *,
    labels: Sequence[str] | None = None,
    start: Mapping[str, Any] | None = None,
    end: Mapping[str, Any] | None = None,
    **kw: Any,
) -> None:
    """Trajectories ``xs`` of shape (steps, N, 2): path i as a line (``kw``: its plot keywords) in ``colors[i]``
    (cycled), labelled ``labels[i]``; ``start`` and ``end`` (scatter keywords, e.g. ``{"s": 30}``) mark where the
    paths start (a star, :func:`mark`) and end (a dot in each path's colour, edged in black)."""
    xs = _array(xs)
    colors = [colors[i % len(colors)] for i in range(xs.shape[1])]
    for i, color in enumerate(colors):
        ax.plot(xs[:, i, 0], xs[:, i, 1], color=color, label=None if labels is None else labels[i], **kw)
    if end is not None:
        ax.scatter(xs[-1, :, 0], xs[-1, :, 1], **{"color": colors, "edgecolor": "black", "zorder": 5, **end})
    if start is not None:
        mark(ax, xs[0], **start)


def time_path(
    ax: Any,
    xs: Any,
    times: Any,
    *,
    cmap: str = "plasma",
    s: float = 6,
    line: Mapping[str, Any] | None = None,
    colorbar: str | None = None,
    **kw: Any,
) -> Any:
    """The points of a path (steps, 2), or of several (steps, N, 2), coloured by their ``times`` (steps,); with
    ``line`` (plot keywords) a thin line through each path too, and with ``colorbar`` (its label) a colour bar.
    Returns the scatter."""
    xs, times = _array(xs), _array(times)
    if xs.ndim == 2:
        xs = xs[:, None]
    flat = xs.transpose(1, 0, 2).reshape(-1, 2)  # path by path
    sc = ax.scatter(flat[:, 0], flat[:, 1], c=np.tile(times, xs.shape[1]), cmap=cmap, s=s, **kw)
    for i in range(xs.shape[1] if line is not None else 0):
        ax.plot(xs[:, i, 0], xs[:, i, 1], **line)
    if colorbar is not None:
        ax.figure.colorbar(sc, ax=ax, label=colorbar)
    return sc


def plane_map(ax: Any, values: Any, lim: float, *, label: str = "", shrink: float = 0.8, **kw: Any) -> Any:
    """An (n, n) array of values on a grid over [-lim, lim]^2 (row 0 at the bottom) as an image with its colour
    bar (``kw``: imshow keywords such as ``cmap``, ``vmin``); returns the image."""
    im = ax.imshow(_array(values), origin="lower", extent=(-lim, lim, -lim, lim), **kw)
    ax.figure.colorbar(im, ax=ax, label=label, shrink=shrink)
    return im


def table(ax: Any, cells: Sequence[Sequence[str]], columns: Sequence[str], *, title: str = "") -> Any:
    """A table of text ``cells`` under the headers ``columns``, centred on an otherwise empty Axes."""
    ax.axis("off")
    out = ax.table(cellText=cells, colLabels=columns, loc="center", cellLoc="center")
    out.scale(1, 1.5)
    if title:
        ax.set_title(title)
    return out


def square_limits(axes: Any, lim: float) -> None:
    """Equal aspect and the limits [-lim, lim] on both axes of each of ``axes`` (one Axes or several)."""
    for ax in np.atleast_1d(axes).flat:
        ax.set(xlim=(-lim, lim), ylim=(-lim, lim), aspect="equal")


def outline_square(ax: Any, lim: float | None = 1.6, *, cells: int = 1, color: str = "0.3") -> None:
    """The dashed square [-1, 1]^2 that 2D data lives in (cut into ``cells`` x ``cells`` dotted cells), with
    equal aspect and the limits [-lim, lim] (``lim=None`` keeps the axes' limits)."""
    ax.plot([-1, 1, 1, -1, -1], [-1, -1, 1, 1, -1], color=color, lw=1, ls="--")
    for v in np.linspace(-1, 1, cells + 1)[1:-1]:
        ax.axvline(v, color="0.6", lw=0.6, ls=":")
        ax.axhline(v, color="0.6", lw=0.6, ls=":")
    if lim:
        square_limits(ax, lim)
    ax.set_aspect("equal")


def png_bytes(fig: Figure) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()


def save_figure(fig: Figure, path: str | Path) -> Path:
    """Render ``fig`` to PNG in memory and write it atomically."""
    with style():
        data = png_bytes(fig)
    return atomic_write_bytes(path, data)


def smooth(values: Sequence[float], window: int) -> np.ndarray:
    """Trailing moving average (window 1 = unchanged) for noisy loss curves."""
    v = np.asarray(values, dtype=float)
    if window <= 1 or len(v) < window:
        return v
    c = np.cumsum(np.insert(v, 0, 0.0))
    out = (c[window:] - c[:-window]) / window
    return np.concatenate([v[: window - 1].cumsum() / np.arange(1, window), out])


def loss_curves(
    metrics: Sequence[dict[str, Any]],
    keys: Sequence[str],
    *,
    title: str = "Training loss",
    logy: bool = False,
    ax: Any = None,
    names: Mapping[str, str] | None = None,
):
    """Plot ``keys`` from metrics rows against ``step``: raw (faint) and smoothed. Returns the figure.

    ``names`` relabels the legend entries (``{"loss": "train batch"}``).
    """
    fig = None
    if ax is None:
        fig, ax = figure(size=(6, 3.6))
    names = names or {}
    for i, key in enumerate(keys):
        pts = [(r["step"], r[key]) for r in metrics if key in r and r[key] is not None]
        if not pts:
            continue
        steps, vals = map(np.asarray, zip(*pts))
        color = PALETTE[i % len(PALETTE)]
        window = max(1, len(vals) // 50)
        if window > 1:
            ax.plot(steps, vals, color=color, alpha=0.25, linewidth=0.8)
        ax.plot(steps, smooth(vals, window), color=color, label=names.get(key, key))
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
        grid[y : y + h, x : x + w] = images[i]
    return grid


def show_images(
    ax: Any, images: Any, nrow: int, title: str = "", *, pad: int = 2, value: float = 0.3, cmap: str = "gray_r"
) -> None:
    """Tile a batch of one-channel images in [0, 1] ((N, 1, H, W) tensor or (N, H, W) array) on ``ax``."""
    arr = images.detach().float().cpu().numpy() if hasattr(images, "detach") else np.asarray(images)
    if arr.ndim == 4:
        arr = arr[:, 0]
    ax.imshow(image_grid(arr, nrow, pad=pad, value=value), cmap=cmap, vmin=0, vmax=1)
    bare(ax)
    if title:
        ax.set_title(title)


def row_labels(ax: Any, labels: Sequence[str], side: float, **kw: Any) -> None:
    """Label row ``i`` of a :func:`show_images` grid whose cells are ``side`` pixels apart with ``labels[i]``
    (as y tick labels, without tick marks); ``kw`` goes to ``set_yticklabels`` (e.g. ``fontsize``)."""
    ax.set_yticks([(i + 0.5) * side for i in range(len(labels))])
    ax.set_yticklabels(labels, **kw)
    ax.tick_params(left=False)


def bare(ax: Any) -> None:
    """No ticks, grid or frame: for images and painted text."""
    ax.set_xticks([])
    ax.set_yticks([])
    ax.grid(False)
    for s in ax.spines.values():
        s.set_visible(False)


def paint_tokens(
    ax: Any,
    tokens: Sequence[str],
    values: Sequence[float],
    *,
    cmap: Any = "YlOrRd",
    norm: Any = None,
    title: str = "",
    width: float = 70,
    y0: float = 0.0,
    fontsize: float = 9,
    line_height: float = 1.6,
    label: str | None = None,
) -> float:
    """Draw ``tokens`` as monospace text, each on a background coloured by its value; returns the next ``y``.

    ``norm`` maps values to [0, 1] (default: divide by the largest value, for attention weights); use
    ``matplotlib.colors.TwoSlopeNorm`` for signed scores. Text on dark backgrounds turns white. Lines wrap
    at ``width`` characters; ``label`` (e.g. a model name) is written first, in bold. Token painting is the
    picture the GPT's attention and the sentiment models' per-word scores share.
    """
    cmap = matplotlib.colormaps[cmap] if isinstance(cmap, str) else cmap
    values = np.asarray(values, dtype=float)
    if norm is None:
        top = max(float(values.max()) if len(values) else 0.0, 1e-9)

        def norm(v):
            return v / top

    ax.axis("off")
    ax.set_xlim(0, width)
    x, y = 0.0, y0
    if label:
        ax.text(x, y, label, family="monospace", fontsize=fontsize, va="center", fontweight="bold")
        x += len(label) + 1.0
    for t, v in zip(tokens, values):
        s = str(t).replace("\n", "\u21b5")
        if x + len(s) > width and x > 0:
            x, y = 0.0, y - line_height
        face = cmap(float(norm(v)))
        dark = 0.299 * face[0] + 0.587 * face[1] + 0.114 * face[2] < 0.5
        ax.text(
            x,
            y,
            s,
            family="monospace",
            fontsize=fontsize,
            va="center",
            bbox=dict(boxstyle="square,pad=0.15", facecolor=face, edgecolor="none"),
            color="white" if dark else "black",
        )
        x += len(s) + 0.6
    ax.set_ylim(min(ax.get_ylim()[0], y - 1.2), max(ax.get_ylim()[1], y0 + 1.2))
    if title:
        ax.set_title(title, loc="left")
    return y - line_height


def attention_heatmap(
    ax: Any,
    weights: np.ndarray,
    keys: Sequence[str],
    queries: Sequence[str] | None = None,
    *,
    title: str = "",
    vmax: float | None = None,
    fontsize: float = 7,
    colorbar: bool = True,
    label: str = "attention probability",
) -> Any:
    """Rows are queries, columns the keys they attend to; returns the image (for a shared colour bar)."""
    weights = np.asarray(weights)
    queries = keys if queries is None else queries
    im = ax.imshow(weights, cmap="magma", vmin=0, vmax=float(weights.max()) if vmax is None else vmax, aspect="auto")
    ax.set_xticks(range(len(keys)), list(keys), rotation=70, fontsize=fontsize, family="monospace")
    ax.set_yticks(range(len(queries)), list(queries), fontsize=fontsize, family="monospace")
    ax.set_xlabel("key (attended token)")
    ax.set_ylabel("query (position)")
    ax.grid(False)
    if title:
        ax.set_title(title)
    if colorbar:
        ax.figure.colorbar(im, ax=ax, fraction=0.046, pad=0.02, label=label)
    return im


def image_rows(rows: Mapping[str, Any], *, size: tuple[float, float], fontsize: float = 9) -> tuple[Figure, Any]:
    """One row of images per entry of ``rows`` (name -> a batch for :func:`show_images`), the name at its left."""
    fig, axes = figure(len(rows), 1, size=size, squeeze=False)
    for ax, (name, images) in zip(axes[:, 0], rows.items()):
        show_images(ax, images, 1)
        ax.set_ylabel(name, rotation=0, ha="right", va="center", fontsize=fontsize)
    return fig, axes[:, 0]


def grid_text(
    ax: Any, texts: Sequence[str], side: float, at: float, *, along: str = "rows", pad: float = 2, **kw: Any
) -> None:
    """Write ``texts[i]`` beside row ``i`` (``along="rows"``, at x = ``at``) or under column ``i``
    (``along="cols"``, at y = ``at``) of a :func:`show_images` grid whose cells are ``side`` pixels apart."""
    for i, text in enumerate(texts):
        mid = pad + i * side + side / 2
        ax.text(*((at, mid) if along == "rows" else (mid, at)), text, **kw)


def grouped_bars(
    ax: Any,
    rows: Sequence[Mapping[str, Any]],
    group: str,
    series: str,
    value: str,
    err: str | None = None,
    *,
    tick: Any = str,
    fontsize: float = 8,
) -> None:
    """Bars of ``row[value]`` (± ``row[err]``), one cluster per ``row[group]`` on the x axis (labelled
    ``tick(group)``) and one colour per ``row[series]`` (with a legend entry), each bar labelled with its value."""
    groups = list(dict.fromkeys(r[group] for r in rows))
    names = list(dict.fromkeys(r[series] for r in rows))
    width = 0.8 / len(names)
    colors = class_colors(len(names))
    for j, name in enumerate(names):
        vals = [next(r for r in rows if r[group] == g and r[series] == name) for g in groups]
        xs = np.arange(len(groups)) + (j - (len(names) - 1) / 2) * width
        errs = [v[err] for v in vals] if err else [0.0] * len(vals)
        ax.bar(xs, [v[value] for v in vals], width, yerr=errs if err else None, capsize=3, color=colors[j], label=name)
        for x, v, e in zip(xs, vals, errs):
            ax.text(x, v[value] + e + 0.01, f"{v[value]:.2f}", ha="center", fontsize=fontsize)
    ax.set_xticks(range(len(groups)), [tick(g) for g in groups])


def heatmap(
    ax: Any, values: Any, *, cmap: str = "magma", symmetric: bool = False, outline: Any = None, color: str = "k"
) -> Any:
    """``values`` (H, W) as an image with a colour bar; ``symmetric``: limits +-max|values| (for a diverging
    ``cmap``); ``outline``: an (H, W) image whose 0.5 level is drawn over it in ``color``. Returns the image."""
    lim = (float(np.abs(values).max()) or 1.0) if symmetric else None
    im = ax.imshow(values, cmap=cmap, vmin=-lim if symmetric else None, vmax=lim)
    if outline is not None:
        ax.contour(outline, levels=[0.5], colors=color, linewidths=0.5)
    ax.figure.colorbar(im, ax=ax, fraction=0.046, pad=0.02)
    return im
