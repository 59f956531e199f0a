"""Generated 2D point sets for the diffusion lab (no files, no network; the same seed gives the same points).

========  ======================================================================  =======
name      what                                                                    classes
========  ======================================================================  =======
square    uniform in the square [-1, 1]^2 (the lab's default)                     -
grid      the same square cut into 3 x 3 cells; class = 3 * column + row,         9
          column/row counted from the left/bottom (so (-0.66, 0.66) is class 2)
rings     5 concentric rings of radius 0.2, 0.4, ..., 1.0; class = ring           5
spiral    a two-turn spiral (the DDPM lab session's data)                          -
moons     two interleaving half-moons                                              2
checker   a 4 x 4 checkerboard's dark cells                                        -
========  ======================================================================  =======

:func:`region` says which class's region a point lies in (-1 for none), for measuring how many conditional
samples land where their class lives; :func:`in_support` says whether a point lies where the data does;
:func:`plane_points` is a grid over the plane, for maps of a function of the point.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from genlab.errors import ConfigError, choose

DATASETS = ("square", "grid", "rings", "spiral", "moons", "checkerboard")
NUM_CLASSES = {"square": 0, "grid": 9, "rings": 5, "spiral": 0, "moons": 2, "checkerboard": 0}
RING_RADII = (0.2, 0.4, 0.6, 0.8, 1.0)
RING_NOISE = 0.02


@dataclass
class Toy2D:
    """A 2D point set: ``x`` (n, 2) float32, ``y`` (n,) long labels or None, and its name."""

    name: str
    x: torch.Tensor
    y: torch.Tensor | None
    num_classes: int


def make_toy2d(name: str, n: int = 2000, seed: int = 0) -> Toy2D:
    """``n`` points of the data set ``name`` (one of :data:`DATASETS`), drawn with ``seed``."""
    choose("dataset", name, DATASETS)
    if not isinstance(n, int) or n < 1:
        raise ConfigError(f"bad number of points {n!r}; it must be an integer >= 1")
    g = torch.Generator().manual_seed(seed)
    y = None
    if name in ("square", "grid"):
        x = torch.rand(n, 2, generator=g) * 2 - 1
        if name == "grid":
            y = grid_class(x)
    elif name == "rings":
        y = torch.randint(0, len(RING_RADII), (n,), generator=g)
        r = torch.tensor(RING_RADII)[y] + RING_NOISE * torch.randn(n, generator=g)
        a = torch.rand(n, generator=g) * 2 * math.pi
        x = torch.stack([r * torch.cos(a), r * torch.sin(a)], 1)
    elif name == "spiral":
        u = torch.sqrt(torch.rand(n, generator=g))
        theta = u * 4 * math.pi + 0.5
        r = theta / (4 * math.pi + 0.5)
        x = torch.stack([r * torch.cos(theta), r * torch.sin(theta)], 1)
        x = x + 0.015 * torch.randn(n, 2, generator=g)
    elif name == "moons":
        y = torch.randint(0, 2, (n,), generator=g)
        a = torch.rand(n, generator=g) * math.pi
        upper = torch.stack([torch.cos(a), torch.sin(a)], 1)
        lower = torch.stack([1 - torch.cos(a), 0.5 - torch.sin(a)], 1)
        x = torch.where(y[:, None] == 0, upper, lower) + 0.05 * torch.randn(n, 2, generator=g)
        x = (x - torch.tensor([0.5, 0.25])) / 1.2
    else:  # checkerboard: 4 x 4 cells of side 0.5, the cells with (row + column) even
        cell = torch.randint(0, 8, (n,), generator=g)
        row = cell // 2
        col = 2 * (cell % 2) + (row % 2)
        x = (torch.stack([col, row], 1).float() + torch.rand(n, 2, generator=g)) * 0.5 - 1
    return Toy2D(name, x.float(), y, NUM_CLASSES[name])


def grid_class(x: torch.Tensor) -> torch.Tensor:
    """The 3 x 3 cell of each point: ``3 * column + row`` (0..8); points outside [-1, 1]^2 get -1."""
    ix = torch.clamp(torch.floor((x[:, 0] + 1) * 1.5), 0, 2).long()
    iy = torch.clamp(torch.floor((x[:, 1] + 1) * 1.5), 0, 2).long()
    inside = (x.abs() <= 1).all(1)
    return torch.where(inside, 3 * ix + iy, torch.full_like(ix, -1))


def region(name: str, x: torch.Tensor) -> torch.Tensor:
    """The class region each point lies in (-1 for none) for the labelled data sets."""
    choose("dataset", name, DATASETS)
    if name == "grid":
        return grid_class(x)
    if name == "rings":
        r = x.norm(dim=1)
        radii = torch.tensor(RING_RADII)
        d, k = (r[:, None] - radii).abs().min(1)
        return torch.where(d <= 5 * RING_NOISE, k, torch.full_like(k, -1))
    if name == "moons":
        ref = make_toy2d("moons", 4000, seed=12345)
        d = torch.cdist(x, ref.x)
        near, j = d.min(1)
        return torch.where(near <= 0.1, ref.y[j], torch.full_like(j, -1))
    raise ConfigError(f"dataset {name!r} has no classes; use one of: grid, rings, moons")


def in_support(name: str, x: torch.Tensor) -> torch.Tensor:
    """Whether each point lies where the data set's points lie (square/grid: inside [-1, 1]^2)."""
    choose("dataset", name, DATASETS)
    if name in ("square", "grid"):
        return (x.abs() <= 1).all(1)
    if name == "checkerboard":
        inside = (x.abs() <= 1).all(1)
        col = torch.floor((x[:, 0] + 1) * 2).long()
        row = torch.floor((x[:, 1] + 1) * 2).long()
        return inside & ((col + row) % 2 == 0)
    if name in ("rings", "moons"):
        return region(name, x) >= 0
    ref = make_toy2d(name, 4000, seed=12345)
    return torch.cdist(x, ref.x).min(1).values <= 0.08


def plane_points(lim: float, n: int) -> torch.Tensor:
    """The ``n x n`` grid over [-lim, lim]^2 as points (n*n, 2), row by row from the bottom (x varies fastest):
    values computed at them reshape to an (n, n) image for ``imshow(origin="lower")``."""
    lin = torch.linspace(-lim, lim, n)
    gx, gy = torch.meshgrid(lin, lin, indexing="xy")
    return torch.stack([gx.reshape(-1), gy.reshape(-1)], 1)
