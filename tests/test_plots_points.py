"""The 2D point-set helpers of genlab.plots: panels of point clouds, trajectories, marks, plane maps, tables."""

from __future__ import annotations

import numpy as np
import torch

from genlab import plots


def test_point_grid_fills_panels_in_reading_order():
    clouds = [torch.randn(20, 2) for _ in range(5)]
    fig, axes = plots.point_grid(clouds, [f"p{i}" for i in range(5)], nrows=2, lim=2, title="T", colors=["red"])
    assert axes.shape == (2, 3) and fig._suptitle.get_text() == "T"
    assert [a.get_title() for a in axes.flat] == ["p0", "p1", "p2", "p3", "p4", ""]
    assert len(axes[1, 2].collections) == 0 and axes[0, 0].get_xlim() == (-2, 2)
    framed = []
    plots.point_panels(axes[0], clouds, ["a", "b", "c"], frame=framed.append)
    assert framed == list(axes[0])


def test_paths_marks_and_time_colouring():
    fig, ax = plots.figure()
    xs = torch.randn(11, 3, 2)
    plots.paths(ax, xs, labels=["a", "b", "c"], start={"label": "start"}, end={"s": 10})
    assert len(ax.lines) == 3 and [t.get_text() for t in ax.legend().get_texts()] == ["a", "b", "c", "start"]
    sc = plots.time_path(ax, xs, torch.linspace(0, 1, 11), line={"color": "0.5"}, colorbar="t")
    assert sc.get_offsets().shape == (33, 2) and len(ax.lines) == 6 and len(fig.axes) == 2
    np.testing.assert_allclose(sc.get_array()[:11], np.linspace(0, 1, 11))  # path by path
    one = plots.mark(ax, (1.0, 2.0), "target")
    assert one.get_offsets().tolist() == [[1.0, 2.0]] and one.get_zorder() == 5


def test_plane_map_table_and_class_scatter():
    fig, axes = plots.figure(1, 3)
    im = plots.plane_map(axes[0], np.arange(9.0).reshape(3, 3), 2, label="v", cmap="magma")
    assert im.get_extent() == [-2, 2, -2, 2] and len(fig.axes) == 4
    tab = plots.table(axes[1], [["1", "2"]], ["a", "b"], title="t")
    assert tab[0, 0].get_text().get_text() == "a" and axes[1].get_title() == "t"
    plots.class_scatter(axes[2], torch.randn(30, 2), torch.arange(30) % 3)
    assert len(axes[2].collections) == 3 and axes[2].get_legend().get_title().get_text() == "class"
