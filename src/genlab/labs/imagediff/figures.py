"""Every figure and table of the image diffusion lab, one registered function each (report order)."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from genlab import plots
from genlab.labs import Drawn, figure, table
from genlab.labs.imagediff import core
from genlab.labs.imagediff.core import Opened


def _np(x: torch.Tensor) -> np.ndarray:
    return x.detach().cpu().float().clamp(0, 1).numpy()[:, 0]


def _show(ax: Any, x: torch.Tensor, nrow: int, title: str = "") -> None:
    plots.show_images(ax, _np(x), nrow, title)


def _single(o: Any) -> bool:
    """A run of one digit per image (not a 2x2 canvas run, not a composition)."""
    return isinstance(o, Opened) and o.cfg.canvas == 1


def _is_conditional(o: Any) -> bool:
    return _single(o) and o.cond.kind != "none"


# ------------------------------------------------------------------------------------------------ figures


@figure("denoise_strip", when=_single)
def fig_denoise_strip(o: Opened, label: int = 3, frames: int = 10) -> Drawn:
    """One image denoised from a fixed noise: x_t (top) beside the model's guess x0_hat (bottom)."""
    c = o.cond.of_labels(torch.tensor([label]), o.device)
    x, res = core.generate(o, c, 1, seed=0, trajectory=True)
    n = len(res.x0s)
    pick = np.unique(np.linspace(0, n - 1, min(frames, n)).round().astype(int))
    xs, x0s = _np(o.space.decode(res.xs[pick, 0])), _np(o.space.decode(res.x0s[pick, 0]))
    fig, axes = plots.figure(2, len(pick) + 1, size=(1.2 * (len(pick) + 1), 2.8))
    times = res.times[pick].tolist()
    for j, (_i, t) in enumerate(zip(pick, times)):
        axes[0, j].imshow(xs[j], cmap="gray", vmin=0, vmax=1)
        axes[0, j].set_title(f"t={t:.2f}", fontsize=8)
        axes[1, j].imshow(x0s[j], cmap="gray", vmin=0, vmax=1)
    axes[0, -1].imshow(_np(x)[0], cmap="gray", vmin=0, vmax=1)
    axes[0, -1].set_title("result", fontsize=8)
    axes[0, 0].set_ylabel("x_t" if o.space.kind == "pixel" else "decode(z_t)")
    axes[1, 0].set_ylabel("x0_hat")
    for ax in axes.flat:
        plots.bare(ax)
    axes[1, -1].axis("off")
    prompt = o.cond.describe(label, o.data.classes)
    fig.suptitle(f"denoising '{prompt}' ({o.cfg.sampler}, {o.cfg.sample_steps} steps, guidance {o.cfg.guidance:g})")
    return Drawn(
        fig,
        f"One sample of '{prompt}' from a fixed starting noise: the noisy state x_t (top) and the "
        f"network's guess of the clean image x0_hat at that step (bottom). Like the 2D spiral, each "
        f"step removes some noise; the guess settles on the digit long before the noise is gone.",
        data={"times": times, "prompt": prompt},
    )


@figure("unprompted_vs_prompted", when=_single)
def fig_unprompted_vs_prompted(o: Opened, n: int = 36) -> Drawn:
    """Samples without a prompt beside samples with three prompts, and the judge's class histogram of the
    unprompted ones."""
    k = o.data.num_classes
    un = core.generate(
        o,
        o.cond.unconditional(max(n, 10 * o.cfg.eval_per_class), o.device),
        max(n, 10 * o.cfg.eval_per_class),
        guidance=0.0,
        seed=1,
    )
    pred, _ = o.judge(un)
    hist = torch.bincount(pred, minlength=k).tolist()
    labels = [3, 7, 0] if _is_conditional(o) else []
    fig, axes = plots.figure(1, 2 + len(labels), size=(3.0 * (2 + len(labels)), 3.3))
    side = int(np.sqrt(n))
    _show(axes[0], un[: side * side], side, "no prompt")
    for ax, y in zip(axes[1:], labels):
        x = core.generate(o, o.cond.of_labels(torch.full((side * side,), y), o.device), side * side, seed=2)
        _show(ax, x, side, f"'{o.cond.describe(y, o.data.classes)}'")
    axes[-1].bar(range(k), hist, color=plots.PALETTE[0])
    axes[-1].set(
        xticks=range(k),
        xticklabels=o.data.classes,
        xlabel="judge's class",
        ylabel="samples",
        title="unprompted samples",
    )
    covered = sum(h > 0 for h in hist)
    return Drawn(
        fig,
        f"Without a prompt (guidance 0, the same model with its prompt dropped) the samples are "
        f"random digits of every kind ({covered} of {k} classes among {len(un)}); a prompt steers "
        f"the model to the named class (guidance {o.cfg.guidance:g}).",
        data={"unprompted_histogram": hist},
        summary={"unprompted_classes": covered, "unprompted_histogram": hist},
    )


@figure("class_rows", when=_is_conditional)
def fig_class_rows(o: Opened, per_row: int = 8) -> Drawn:
    """One row per class, each from its first training phrasing."""
    k = o.data.num_classes
    labels = torch.arange(k).repeat_interleave(per_row)
    x = core.generate(o, o.cond.of_labels(labels, o.device), len(labels), seed=3)
    pred, _ = o.judge(x)
    fig, ax = plots.figure(size=(1.0 * per_row + 2.5, 0.95 * k + 0.6))
    _show(ax, x, k)
    plots.row_labels(ax, [o.cond.describe(y, o.data.classes) for y in range(k)], x.shape[-1] + 2, fontsize=8)
    acc = float((pred == labels).float().mean())
    return Drawn(
        fig,
        f"One row per prompt (training phrasings), guidance {o.cfg.guidance:g}; the judge agrees on "
        f"{acc:.0%} of these {len(labels)} samples.",
        data={"judge_agreement": acc},
    )


@figure("heldout", when=lambda o: _single(o) and o.cond.kind == "text")
def fig_heldout(o: Opened, per_row: int = 8) -> Drawn:
    """Rows from phrasings that training never saw."""
    k = o.data.num_classes
    rows, texts = [], []
    for y in range(k):
        pool = o.cond.captions.of(y, heldout=True)
        texts.append(pool[y % len(pool)])
        rows += [texts[-1]] * per_row
    c = o.cond.of_captions(torch.tensor(rows), o.device)
    x = core.generate(o, c, len(rows), seed=4)
    fig, ax = plots.figure(size=(1.0 * per_row + 3, 0.95 * k + 0.6))
    _show(ax, x, k)
    plots.row_labels(ax, [o.cond.captions.texts[i] for i in texts], x.shape[-1] + 2, fontsize=8)
    return Drawn(
        fig,
        "Held-out phrasings (never seen in training): the pretrained text encoder places them near "
        "the training phrasings of the same class, so the image model follows them too.",
        data={"prompts": [o.cond.captions.texts[i] for i in texts]},
    )


@figure("guidance_sweep", when=_is_conditional)
def fig_guidance_sweep(o: Opened) -> Drawn:
    """The same noise and prompts at each guidance scale, with adherence and Frechet distance per scale."""
    scales = list(o.cfg.guidance_sweep)
    k = o.data.num_classes
    per = max(1, o.cfg.eval_per_class // 2)
    rows, grid = [], []
    for w in scales:
        a = core.adherence(o, guidance=w, per_class=per, seed=5)
        rows.append({"guidance": w, "adherence": a["adherence"], **o.judge.frechet(a["feats"])})
        grid.append(a["x"][::per][:k])
    fig = plots.blank((12, 0.9 * len(scales) + 1.2))
    gs = fig.add_gridspec(1, 2, width_ratios=[1.4, 1])
    ax = fig.add_subplot(gs[0])
    _show(ax, torch.cat(grid), len(scales))
    plots.row_labels(ax, [f"w = {w:g}" for w in scales], grid[0].shape[-1] + 2)
    ax2 = fig.add_subplot(gs[1])
    ax2.plot(scales, [r["adherence"] for r in rows], "o-", label="adherence")
    ax2.set(xlabel="guidance scale w", ylabel="adherence", ylim=(0, 1.02))
    ax3 = ax2.twinx()
    ax3.plot(scales, [r["fd"] for r in rows], "s--", color=plots.PALETTE[1], label="Frechet distance")
    ax3.axhline(rows[0]["fd_floor"], color="0.5", lw=0.8, ls=":")
    ax3.set_ylabel("Frechet distance (judge features)")
    ax2.legend(ax2.get_lines() + ax3.get_lines()[:1], ["adherence", "Frechet distance"], loc="center right")
    best = max(rows, key=lambda r: r["adherence"])
    return Drawn(
        fig,
        f"Classifier-free guidance eps = u + w (c - u): w = 0 ignores the prompt, w = 1 is the plain "
        f"conditional model, larger w follows the prompt more closely until samples degrade. "
        f"{per} samples per class per scale; the dotted line is the train-vs-test Frechet floor.",
        data=rows,
        summary={"guidance_sweep": rows, "best_guidance": best["guidance"]},
    )


@table("adherence", when=_single)
def table_adherence(o: Opened) -> Drawn:
    """The lab's headline numbers at the default guidance: adherence on training and held-out phrasings,
    Frechet distance beside its floor."""
    rows, summary = [], {"guidance": o.cfg.guidance, "judge_test_accuracy": o.judge.accuracy()}
    sets = [("training phrasings", False)] + ([("held-out phrasings", True)] if o.cond.kind == "text" else [])
    if not _is_conditional(o):
        sets = []
    for name, held in sets:
        a = core.adherence(o, heldout=held)
        fd = o.judge.frechet(a["feats"])
        rows.append(
            {
                "prompts": name,
                "samples": len(a["y"]),
                "adherence": a["adherence"],
                "worst class": int(np.argmin(a["per_class"])),
                "worst class adherence": min(a["per_class"]),
                **fd,
            }
        )
        key = "adherence_heldout" if held else "adherence_train"
        summary[key] = a["adherence"]
        summary[key + "_per_class"] = a["per_class"]
        if not held:
            summary.update(fd)
    n = 10 * o.cfg.eval_per_class
    x = core.generate(o, o.cond.unconditional(n, o.device), n, guidance=0.0, seed=6)
    fd = o.judge.frechet(o.judge(x)[1])
    rows.append(
        {
            "prompts": "none (unprompted)",
            "samples": n,
            "adherence": "-",
            "worst class": "-",
            "worst class adherence": "-",
            **fd,
        }
    )
    summary["fd_unprompted"] = fd["fd"]
    summary.setdefault("fd_floor", fd["fd_floor"])
    acc = summary["judge_test_accuracy"]
    return Drawn(
        rows=rows,
        caption=f"Prompt adherence (share of samples the judge CNN, {acc:.1%} on real test "
        f"images, assigns to the prompt's class) at guidance {o.cfg.guidance:g}, "
        f"{o.cfg.sampler} {o.cfg.sample_steps} steps; Frechet distance of the judge's "
        f"features to real test images beside the train-vs-test floor.",
        summary=summary,
    )


@figure("nearest", when=_single)
def fig_nearest(o: Opened, n: int = 8) -> Drawn:
    """Generated samples (top) and their nearest training images in pixel space (bottom): memorisation check."""
    c = o.cond.of_labels(torch.arange(n) % o.data.num_classes, o.device)
    x = core.generate(o, c, n, seed=7)
    train = o.data.train_x.flatten(1)
    d = torch.cdist(x.flatten(1), train)
    dist, idx = d.min(1)
    fig, axes = plots.figure(2, 1, size=(1.1 * n, 2.8))
    _show(axes[0], x, 1, "generated")
    _show(axes[1], o.data.train_x[idx], 1, "nearest training image")
    test_d = torch.cdist(o.data.test_x[:n].flatten(1), train).min(1).values
    return Drawn(
        fig,
        f"Nearest training images (L2 over pixels): mean distance {float(dist.mean()):.2f} for "
        f"generated samples vs {float(test_d.mean()):.2f} for real test images; samples that were "
        f"copies of training images would sit at distance ~0.",
        data={"distance": dist.tolist(), "test_distance": test_d.tolist()},
        summary={
            "nearest_distance": round(float(dist.mean()), 3),
            "nearest_distance_test": round(float(test_d.mean()), 3),
        },
    )


@figure("loss", when=lambda o: isinstance(o, Opened))
def fig_loss(o: Opened) -> Drawn:
    fig = plots.loss_curves(
        o.run.read_metrics(),
        ["loss"],
        title="U-Net training loss",
        names={"loss": f"{o.cfg.prediction}-prediction MSE"},
    )
    return Drawn(fig, f"Training loss of the U-Net ({o.cfg.prediction}-prediction, batch {o.cfg.batch_size}).")


@figure("samplers", when=_is_conditional)
def fig_samplers(
    o: Opened, samplers: tuple[str, ...] = ("ddim", "ddpm", "euler", "heun"), steps: tuple[int, ...] = (5, 10, 25, 50)
) -> Drawn:
    """Prompt adherence for each sampler and number of steps (the same trained network), and one sample per
    class for each sampler at 10 steps."""
    per = max(2, o.cfg.eval_per_class // 8)
    k = o.data.num_classes
    acc = np.zeros((len(samplers), len(steps)))
    rows = []
    for i, smp in enumerate(samplers):
        for j, n in enumerate(steps):
            a = core.adherence(o, per_class=per, seed=8, sampler=smp, steps=n)
            acc[i, j] = a["adherence"]
            rows.append({"sampler": smp, "steps": n, "adherence": a["adherence"]})
            if n == steps[min(1, len(steps) - 1)]:
                rows[-1]["images"] = a["x"][::per][:k]
    fig = plots.blank((13, 0.8 * len(samplers) + 2))
    gs = fig.add_gridspec(1, 2, width_ratios=[1, 1.6])
    ax = fig.add_subplot(gs[0])
    im = ax.imshow(acc, vmin=0, vmax=1, cmap="viridis")
    ax.set(
        xticks=range(len(steps)),
        xticklabels=steps,
        yticks=range(len(samplers)),
        yticklabels=samplers,
        xlabel="sampling steps",
        title="prompt adherence",
    )
    ax.grid(False)
    for (i, j), v in np.ndenumerate(acc):
        ax.text(j, i, f"{v:.2f}", ha="center", va="center", color="w" if v < 0.6 else "k", fontsize=8)
    fig.colorbar(im, ax=ax, shrink=0.8)
    ax2 = fig.add_subplot(gs[1])
    _show(
        ax2,
        torch.cat([r.pop("images") for r in rows if "images" in r]),
        len(samplers),
        f"one sample per class, {steps[min(1, len(steps) - 1)]} steps",
    )
    plots.row_labels(ax2, samplers, o.cfg.resolution + 2)
    return Drawn(
        fig,
        f"Samplers x steps on one trained network (guidance {o.cfg.guidance:g}, {per} samples per "
        f"class per cell). ddim and euler are deterministic (the probability-flow ODE); ddpm adds "
        f"fresh noise each step; heun costs two network calls per step.",
        data=rows,
        summary={"samplers_x_steps": rows},
    )


@figure(
    "attention",
    when=lambda o: isinstance(o, Opened) and o.cond.kind == "text" and o.cond.cross_attn and o.space.kind == "pixel",
)
def fig_attention(o: Opened, prompt: str = "", t: float = 0.5) -> Drawn:
    """Where the pixels look in the prompt: cross-attention weights of the lowest-resolution block (mean over
    heads) for each token of the prompt, on a noisy sample at time ``t``."""
    default = o.cond.canvas.texts[o.cond.canvas.index([(0, 3), (3, 7)])] if o.cfg.canvas == 2 else ""
    prompt = prompt or default or o.cond.captions.first(7)
    c = o.cond.of_prompts([prompt], o.device)
    x = core.generate(o, c, 1, seed=9).to(o.device) * 2 - 1
    tt = torch.tensor([t], device=o.device)
    xt = o.schedule.perturb(x, tt, torch.randn(x.shape, generator=torch.Generator().manual_seed(9)))
    layer = o.model.mid_attn
    layer.record = True
    try:
        with torch.no_grad():
            o.model(xt, tt, c)
    finally:
        layer.record = False
    w = layer.last_weights[0].mean(0)  # (HW, 1 + T)
    side = int(round(w.shape[0] ** 0.5))
    from genlab.data.text_encoder import encode

    words = ("(nothing)",) + encode([prompt], o.cond.encoder).words[0]
    fig, axes = plots.figure(1, len(words) + 1, size=(1.5 * (len(words) + 1), 1.9))
    axes[0].imshow(_np((x.cpu() + 1) / 2)[0], cmap="gray", vmin=0, vmax=1)
    axes[0].set_title("sample", fontsize=8)
    for ax, j in zip(axes[1:], range(len(words))):
        ax.imshow(w[:, j].reshape(side, side).numpy(), vmin=0, vmax=float(w.max()), cmap="magma")
        ax.set_title(words[j], fontsize=8)
    for ax in axes:
        plots.bare(ax)
    share = w.mean(0).tolist()
    return Drawn(
        fig,
        f"Cross-attention of the {side}x{side} bottleneck to the tokens of '{prompt}' at t = {t:g} "
        f"(mean over heads; brighter = more weight). Average weight per token: "
        + ", ".join(f"{a} {b:.2f}" for a, b in zip(words, share))
        + ".",
        data={"tokens": list(words), "mean_weight": share},
    )


from genlab.labs.imagediff import compose as _compose  # noqa: E402, F401 - registers the canvas outputs
