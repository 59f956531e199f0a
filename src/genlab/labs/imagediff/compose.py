"""Composition by quadrant: 2x2 canvases of four digits, prompts that place digits ("a 3 in the top left and a 7
in the bottom right"), and the same U-Net with and without cross-attention to the prompt's tokens.

A pooled sentence vector (FiLM) is one vector for the whole image: it can say *which* digits the prompt names,
but every pixel gets the same message, so "a 3 in the top left and a 7 in the bottom right" and its mirror
image reach the pixels only through what the encoder's pooling kept of the word order. With cross-attention
every pixel (which knows where it is: the U-Net gets two coordinate channels) asks the prompt's tokens what to
draw *there*. This is REFERENCE.md's "text-to-image by quadrant attention" question, run.

:func:`compose` trains both variants as child runs of one composition run (``<run>/stages/cross`` and
``<run>/stages/pooled``, each a full image diffusion run that ``sample`` and ``figures`` accept), in parallel
processes when asked, and draws the comparison; :class:`Composition` is that run opened for its figures.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path
from typing import Any

import torch

from genlab import plots
from genlab.errors import ConfigError
from genlab.labs import Drawn, draw_all, figure, table
from genlab.labs.imagediff import core
from genlab.labs.imagediff.config import ImageDiffConfig
from genlab.runs import Run, choose_device, cpu_threads
from genlab.sweep import run_sweep

VARIANTS = {"cross": True, "pooled": False}  # cell name -> cross_attn
GUIDANCES = (1.0, 2.0, 4.0, 6.0)


def variant_config(base: ImageDiffConfig, cross: bool) -> ImageDiffConfig:
    return replace(base, canvas=2, cond="text", space="pixel", cross_attn=cross)


def _train_cell(run: Run, config: dict, *, device: str = "auto", quiet: bool = True) -> bool:
    """Bring one variant to done (train, then its own figures); True if there was work to do."""
    cfg = ImageDiffConfig.from_dict(config)
    dev = choose_device(device)
    if run.finished and run.read_summary().get("figures_done"):
        return False
    if not run.finished:
        core.train(run, cfg, device=dev, quiet=quiet, resume=run.last_checkpoint.exists())
    with cpu_threads(cfg.threads if dev.type == "cpu" else 0):
        draw_all(core.LAB, core.open_run(run, dev, quiet=quiet), run)
    run.update_summary({"figures_done": True})
    return True


@dataclass
class Composition:
    """A composition run opened: both variants, ready to sample."""

    run: Run
    base: ImageDiffConfig
    cells: dict[str, core.Opened]

    @property
    def threads(self) -> int:
        return self.base.threads


def is_composition(run: Run) -> bool:
    return "variants" in run.read_config_file().get("config", {})


def open_composition(run: Run, device: torch.device, *, quiet: bool = True) -> Composition:
    config = run.read_config_file()["config"]
    base = ImageDiffConfig.from_dict(config["base"])
    cells = {}
    for name in config["variants"]:
        sub = Run(run.path / "stages" / name)
        if not sub.last_checkpoint.exists():
            raise ConfigError(f"composition run {str(run.path)!r} has no trained {name!r} variant yet; run it again")
        cells[name] = core.open_run(sub, device, quiet=quiet)
    return Composition(run, base, cells)


def compose(
    base: ImageDiffConfig,
    *,
    root: str | Path = "runs",
    name: str = "compose",
    jobs: int = 1,
    device: str = "auto",
    quiet: bool = False,
    backend: str = "local",
) -> Composition:
    """Train (or reuse) both variants of ``base`` on 2x2 canvases, then draw the comparison into the run."""
    cells = [(v, variant_config(base, cross).to_dict()) for v, cross in VARIANTS.items()]
    grid = {"variants": list(VARIANTS), "base": base.to_dict()}
    done = partial(_train_cell, device=device, quiet=True)
    out, reused = run_sweep(core.LAB, grid, cells, done, root=root, name=name, jobs=jobs, quiet=quiet, backend=backend)
    dev = choose_device(device)
    with cpu_threads(base.threads if dev.type == "cpu" else 0):
        c = open_composition(out, dev)
        if not all(reused.values()) or not out.read_summary().get("figures_done"):
            draw_all(core.LAB, c, out)
            out.update_summary({"figures_done": True})
    return c


def demo_runs(root: str | Path, *, tiny: bool = False, device: str = "auto", quiet: bool = False) -> list[Run]:
    """The composition experiment of the full (or tiny) demo: its run and both variants' runs."""
    from genlab.labs.imagediff.config import COMPOSE_PRESETS

    dev = choose_device(device)
    jobs = 2 if dev.type == "cpu" and (os.cpu_count() or 1) >= 2 and not tiny else 1
    preset = "tiny" if tiny else "full"
    c = compose(COMPOSE_PRESETS[preset], root=root, name=f"compose-{preset}", jobs=jobs, device=device, quiet=quiet)
    return [c.run, *(o.run for o in c.cells.values())]


def quadrant_scores(o: core.Opened, n: int, guidance: float, seed: int = 0) -> dict[str, Any]:
    """Per-quadrant adherence of ``n`` canvases from random canvas prompts (drawn with ``seed``)."""
    cond, named, texts = o.cond.canvas_batch(n, o.device, seed)
    x = core.generate(o, cond, n, guidance=guidance, seed=seed + 1)
    return {**o.judge.quadrant_adherence(x, named), "x": x, "classes": named, "texts": texts}


# ------------------------------------------------------------------------------------------------ figures


def _canvas_run(o: Any) -> bool:
    return isinstance(o, core.Opened) and o.cfg.canvas == 2


def _composition(o: Any) -> bool:
    return isinstance(o, Composition)


PROMPTS = (
    [(0, 3), (3, 7)],
    [(3, 3), (0, 7)],
    [(1, 0), (2, 1)],
    [(0, 4), (1, 8)],
    [(2, 5)],
    [(0, 2), (3, 6)],
)


def _prompt_rows(o: core.Opened, per_row: int, seed: int) -> tuple[torch.Tensor, list[str], torch.Tensor]:
    idx = torch.tensor([o.cond.canvas.index(p) for p in PROMPTS]).repeat_interleave(per_row)
    named = torch.tensor([o.cond.canvas.named[i] for i in idx])
    x = core.generate(o, o.cond.of_canvas(idx, o.device), len(idx), seed=seed)
    return x, [o.cond.canvas.texts[i] for i in idx[::per_row]], named


def _mark(ax: Any, x: torch.Tensor, named: torch.Tensor, pred: torch.Tensor, per_row: int) -> None:
    """A green (right) or red (wrong) frame around each named quadrant of a grid of canvases."""
    from matplotlib.patches import Rectangle

    side, r = x.shape[-1], x.shape[-1] // 2
    for i in range(len(x)):
        row, col = divmod(i, per_row)
        for q in range(4):
            if named[i, q] < 0:
                continue
            x0 = 1 + col * (side + 2) + (q % 2) * r
            y0 = 1 + row * (side + 2) + (q // 2) * r
            color = "#2ca02c" if pred[i, q] == named[i, q] else "#d62728"
            ax.add_patch(Rectangle((x0 - 0.5, y0 - 0.5), r, r, fill=False, lw=1.2, ec=color))


@figure("canvases", when=_canvas_run)
def fig_canvases(o: core.Opened, per_row: int = 6) -> Drawn:
    """Rows of 2x2 canvases for prompts that place digits by quadrant, the judge's verdict framed."""
    x, texts, named = _prompt_rows(o, per_row, seed=12)
    pred = o.judge.quadrant_adherence(x, named)["pred"]
    fig, ax = plots.figure(size=(1.3 * per_row + 4.5, 1.25 * len(texts) + 0.6))
    plots.show_images(ax, x[:, 0].numpy(), len(texts))
    _mark(ax, x, named, pred, per_row)
    plots.row_labels(ax, texts, x.shape[-1] + 2, fontsize=8)
    kind = "cross-attention to the prompt's tokens" if o.cfg.cross_attn else "the pooled sentence vector only"
    ok = float(((pred == named) & (named >= 0)).sum() / (named >= 0).sum())
    return Drawn(
        fig,
        f"2x2 canvases from prompts that name one or two quadrants (the others are free), {kind}, guidance "
        f"{o.cfg.guidance:g}. A green frame: the judge reads the named digit in that quadrant; red: it does not "
        f"({ok:.0%} green here).",
        data={"prompts": texts},
    )


@table("quadrant_adherence", when=_canvas_run)
def table_quadrant_adherence(o: core.Opened) -> Drawn:
    """Per-quadrant adherence at a few guidance scales."""
    n = 10 * o.cfg.eval_per_class
    rows, summary = [], {"judge_test_accuracy": o.judge.accuracy()}
    for w in GUIDANCES:
        a = quadrant_scores(o, n, w, seed=13)
        rows.append(
            {
                "guidance": w,
                "canvases": n,
                "named quadrants": a["named"],
                "adherence": a["adherence"],
                "both of two right": a["both_right"],
                **{
                    f"{q}": v
                    for q, v in zip(("top left", "top right", "bottom left", "bottom right"), a["per_quadrant"])
                },
            }
        )
        if w == o.cfg.guidance:
            summary.update({"quadrant_adherence": a["adherence"], "quadrant_both_right": a["both_right"]})
    summary["quadrant_rows"] = rows
    return Drawn(
        rows=rows,
        caption=f"Per-quadrant adherence: each named quadrant of {n} canvases (random prompts naming one or two "
        f"quadrants) cut out and read by the judge CNN ({summary['judge_test_accuracy']:.1%} on real test digits); "
        f"'both of two right' counts canvases whose prompt named two quadrants.",
        summary=summary,
    )


@figure("compose", when=_composition)
def fig_compose(c: Composition, per_row: int = 5) -> Drawn:
    """The same prompts and starting noise through both variants, side by side."""
    fig = plots.blank((2 * (1.25 * per_row) + 4, 1.25 * len(PROMPTS) + 1))
    gs = fig.add_gridspec(1, len(c.cells), left=0.25, right=0.99, wspace=0.04)  # room for the prompts on the left
    data = {}
    for k, (name, o) in enumerate(c.cells.items()):
        x, texts, named = _prompt_rows(o, per_row, seed=12)
        pred = o.judge.quadrant_adherence(x, named)["pred"]
        ax = fig.add_subplot(gs[k])
        plots.show_images(ax, x[:, 0].numpy(), len(texts))
        _mark(ax, x, named, pred, per_row)
        ok = float(((pred == named) & (named >= 0)).sum() / (named >= 0).sum())
        ax.set_title(f"{'cross-attention' if o.cfg.cross_attn else 'pooled sentence vector'}: {ok:.0%} right")
        if k == 0:
            plots.row_labels(ax, texts, x.shape[-1] + 2, fontsize=8)
        data[name] = ok
    return Drawn(
        fig,
        "The same prompts and starting noise through the two variants of one U-Net trained the same way: pixels "
        "that attend to the prompt's tokens (left) against one pooled sentence vector for the whole image "
        "(right). Green frame: the judge reads the named digit in that quadrant; red: it does not.",
        data=data,
    )


@table("compose", when=_composition)
def table_compose(c: Composition) -> Drawn:
    rows, summary = [], {}
    for name, o in c.cells.items():
        s = o.run.read_summary()
        for r in s.get("quadrant_rows", []):
            rows.append({"conditioning": name, **r})
        summary[f"quadrant_adherence_{name}"] = s.get("quadrant_adherence")
        summary[f"quadrant_both_right_{name}"] = s.get("quadrant_both_right")
        summary[f"train_seconds_{name}"] = s.get("train_seconds")
        summary[f"train_steps_{name}"] = s.get("train_steps_done")
    return Drawn(
        rows=rows,
        caption="Per-quadrant adherence of the two variants (the same U-Net, data, steps and time budget): "
        "cross-attention from every pixel to the prompt's tokens against the pooled sentence vector alone.",
        summary=summary,
    )
