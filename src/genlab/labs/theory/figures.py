"""The theory lab's outputs: the answers table first, then one figure or table per question's evidence.

Every caption starts with the question and genlab's answer and ends with the check and whether it passed.
"""

from __future__ import annotations

import numpy as np

from genlab import plots
from genlab.labs import Drawn, figure, table
from genlab.labs.theory import evidence as _evidence  # noqa: F401  (registers the experiments)
from genlab.labs.theory import gans as _gans  # noqa: F401
from genlab.labs.theory import imitation as _imitation  # noqa: F401
from genlab.labs.theory import positions as _positions  # noqa: F401
from genlab.labs.theory import saliency as _saliency  # noqa: F401
from genlab.labs.theory.answers import ANSWERS, ARCHITECTURES, GENERATIVE, TEXT_TO_IMAGE
from genlab.labs.theory.core import EVIDENCE, TASKS, Theory

QUESTIONS = (*ANSWERS, *GENERATIVE)
_BY_EVIDENCE = {a.evidence: a for a in QUESTIONS}
_NO_CHECK = {
    "architectures": "(a design choice: nothing to measure; each row names the lab that runs it)",
    "imagediff: attention": "(answered in words; the evidence is the image lab's attention figure)",
}


def _caption(name: str, ev: dict | None = None, extra: str = "") -> str:
    a = _BY_EVIDENCE[name]
    text = f"Q: {a.question} A: {a.answer}"
    if extra:
        text += f" {extra}"
    if ev is not None:
        text += f" Check: {ev['check']} -> {'passed' if ev['passed'] else 'FAILED'}."
    return text


def _check(name: str, ev: dict) -> dict:
    return {f"check_{name}": bool(ev["passed"])}


@table("answers")
def table_answers(th: Theory) -> Drawn:
    rows, passed = [], 0
    for a in (*QUESTIONS, TEXT_TO_IMAGE):
        ev = th.get(a.evidence) if a.evidence in EVIDENCE else None
        passed += bool(ev and ev["passed"])
        rows.append(
            {
                "topic": a.topic,
                "question": a.question,
                "answer": a.answer,
                "evidence": a.evidence,
                "check": ev["check"] if ev else _NO_CHECK.get(a.evidence, "(answered in words)"),
                "passed": ("yes" if ev["passed"] else "NO") if ev else "-",
            }
        )
    total = sum(a.evidence in EVIDENCE for a in QUESTIONS)
    seconds = {f"seconds_{k}": v["seconds"] for k, v in th.cache.items()}
    return Drawn(
        rows=rows,
        caption=f"The theory questions, genlab's answers and their checks: {passed} of {total} "
        f"checks passed on this run.",
        summary={"checks_passed": passed, "checks_total": total, **seconds},
    )


@figure("seq2seq_ablations")
def fig_seq2seq_ablations(th: Theory) -> Drawn:
    ev = th.get("seq2seq_ablations")
    cfg = th.cfg
    names = {
        "no_positions": "no positions",
        "no_mask": "no mask",
        "deep": f"{cfg.deep_layers} layers",
        "deep_no_residual": f"{cfg.deep_layers} layers,\nno residual",
    }
    fig, axes = plots.figure(1, len(TASKS), size=(11, 3.6), squeeze=False, width_ratios=[3, 5])
    for ax, task in zip(axes[0], TASKS):
        rows = [r for r in ev["rows"] if r["task"] == task]
        x = np.arange(len(rows))
        for i, (key, label) in enumerate(
            (
                ("forced_token_acc", "token acc., teacher forced (training)"),
                ("greedy_seq_acc", "sequence acc., generating (greedy)"),
            )
        ):
            ax.bar(x + (i - 0.5) * 0.38, [r[key] for r in rows], 0.38, label=label, color=plots.PALETTE[i])
        ax.set_xticks(x, [names.get(r["variant"], r["variant"]) for r in rows], fontsize=8)
        ax.set_ylim(0, 1.3)
        ax.set_yticks([0, 0.25, 0.5, 0.75, 1.0])
        ax.set_title(f"{task} task")
        ax.set_ylabel("accuracy")
    axes[0][1].legend(loc="upper center", ncol=2, fontsize=8)
    fig.tight_layout()
    return Drawn(
        fig,
        _caption(
            "seq2seq_ablations",
            ev,
            f"({cfg.n_layers}-layer encoder-decoder, width {cfg.d_model}, "
            f"{cfg.steps} steps through fit, length {cfg.length}.)",
        ),
        data={"rows": ev["rows"]},
        summary=_check("seq2seq_ablations", ev),
    )


@table("seq2seq_accuracy")
def table_seq2seq_accuracy(th: Theory) -> Drawn:
    ev = th.get("seq2seq_ablations")
    keys = ("forced_token_acc", "forced_seq_acc", "greedy_token_acc", "greedy_seq_acc", "loss")
    rows = [{"task": r["task"], "variant": r["variant"], **{k: round(r[k], 4) for k in keys}} for r in ev["rows"]]
    return Drawn(
        rows=rows,
        caption="Toy seq2seq ablations: accuracy with the true previous tokens (teacher forcing, "
        "as in training) and when generating (greedy), per token and per whole sequence.",
    )


@figure("attention_cost")
def fig_attention_cost(th: Theory) -> Drawn:
    ev = th.get("attention_cost")
    fig, ax = plots.figure(size=(5.6, 3.9))
    shapes = sorted({(r["D"], r["M"]) for r in ev["rows"]})
    for i, (d, m) in enumerate(shapes):
        rows = [r for r in ev["rows"] if (r["D"], r["M"]) == (d, m)]
        t = [r["T"] for r in rows]
        ax.plot(t, [r["formula"] for r in rows], color=plots.PALETTE[i], label=f"T^2 (D+M), D={d}, M={m}")
        ax.plot(t, [r["flop_counter"] for r in rows], "o", color=plots.PALETTE[i], mfc="none")
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xlabel("tokens T")
    ax.set_ylabel("multiplications")
    ax.set_title("Attention cost: formula (lines), FLOP counter / 2 (circles)")
    ax.legend()
    return Drawn(fig, _caption("attention_cost", ev), data={"rows": ev["rows"]}, summary=_check("attention_cost", ev))


@figure("residual_init")
def fig_residual_init(th: Theory) -> Drawn:
    ev = th.get("residual_init")
    fig, ax = plots.figure(size=(5.8, 3.9))
    names = {
        "zero_mean": "zero-mean last layer (E[F(u)|u] = 0)",
        "nonzero_mean": "non-zero-mean last layer",
        "gpt": "GPT: zero mean, std 0.02/sqrt(2L)",
    }
    for i, (init, ms) in enumerate(ev["curves"].items()):
        label = names[init] + (f", exponent {ev['slopes'][init]:.2f}" if init in ev["slopes"] else "")
        ax.plot(range(len(ms)), ms, "o-", ms=3, label=label, color=plots.PALETTE[i])
    ax.set_yscale("log")
    ax.set_xlabel("residual blocks l")
    ax.set_ylabel("E[x_l^2] (mean square of the stream)")
    ax.set_title("x_{l+1} = x_l + F(LN(x_l)) at initialisation")
    ax.legend()
    return Drawn(fig, _caption("residual_init", ev), data=ev["curves"], summary=_check("residual_init", ev))


@figure("bptt_formula")
def fig_bptt_formula(th: Theory) -> Drawn:
    ev = th.get("bptt_formula")
    fig, ax = plots.figure(size=(4.6, 4.2))
    ax.plot(ev["autograd"], ev["formula"], "o", label="formula (with D_tau)")
    ax.plot(ev["autograd"], ev["wrong"], "x", label="formula without D_tau (wrong)")
    lim = float(np.max(np.abs(ev["autograd"] + ev["wrong"]))) * 1.05
    ax.plot([-lim, lim], [-lim, lim], color="grey", linewidth=0.8)
    ax.set_xlabel("autograd dl_T/dW[i, j]")
    ax.set_ylabel("BPTT formula")
    ax.set_title("Leaky-ReLU RNN, T = 8, 6 units")
    ax.legend()
    return Drawn(
        fig,
        _caption("bptt_formula", ev),
        data={k: ev[k] for k in ("formula", "autograd", "error")},
        summary=_check("bptt_formula", ev),
    )


@figure("bptt_cost")
def fig_bptt_cost(th: Theory) -> Drawn:
    ev = th.get("bptt_cost")
    fig, axes = plots.figure(1, 2, size=(10, 3.7))
    t = [r["length"] for r in ev["rows"]]
    for key, label, i in (("full", "full BPTT", 0), ("truncated", f"truncated, K = {ev['k']}", 1)):
        axes[0].plot(t, [r[f"{key}_bytes"] / 2**20 for r in ev["rows"]], "o-", label=label, color=plots.PALETTE[i])
        axes[1].plot(t, [r[f"{key}_seconds"] * 1e3 for r in ev["rows"]], "o-", label=label, color=plots.PALETTE[i])
    for ax, what in zip(axes, ("memory held for backward (MiB, measured)", "forward + backward time (ms)")):
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xlabel("sequence length T")
        ax.set_ylabel(what)
        ax.legend()
    axes[0].set_title(f"Leaky-ReLU RNN, {ev['hidden']} units")
    axes[1].set_title("Time (one run on this machine)")
    fig.tight_layout()
    return Drawn(fig, _caption("bptt_cost", ev), data={"rows": ev["rows"]}, summary=_check("bptt_cost", ev))


@figure("gradient_flow")
def fig_gradient_flow(th: Theory) -> Drawn:
    ev = th.get("gradient_flow")
    fig, axes = plots.figure(1, 2, size=(10.5, 3.9))
    for i, (label, norms) in enumerate(ev["curves"].items()):
        axes[0].plot(range(len(norms)), norms, label=label, color=plots.PALETTE[i])
    label = [k for k in ev["curves"] if k.startswith("leaky")][1]
    grow = ev["curves"][label]
    axes[1].plot(range(len(grow)), grow, label=f"{label}, raw", color=plots.PALETTE[1])
    axes[1].plot(range(len(grow)), ev["clipped"], "--", label=f"clipped to norm {ev['clip']:g}", color=plots.PALETTE[3])
    for ax in axes:
        ax.set_yscale("log")
        ax.set_xlabel(f"time step t (the loss reads the last state, t = {ev['steps']})")
        ax.set_ylabel("||dl / dh_t||")
        ax.legend(fontsize=8)
    axes[0].set_title("Gradient reaching h_t, at initialisation")
    axes[1].set_title("Clipping caps the norm")
    fig.tight_layout()
    return Drawn(fig, _caption("gradient_flow", ev), data=ev["curves"], summary=_check("gradient_flow", ev))


@table("architectures")
def table_architectures(th: Theory) -> Drawn:
    return Drawn(rows=list(ARCHITECTURES), caption=_caption("architectures"))


@figure("jacobians")
def fig_jacobians(th: Theory) -> Drawn:
    ev = th.get("jacobians")
    mats = ev["matrices"]
    fig, axes = plots.figure(1, len(mats), size=(3.3 * len(mats), 3.4), squeeze=False)
    for ax, (label, m) in zip(axes[0], mats.items()):
        top = float(np.abs(m).max()) or 1.0
        ax.imshow(m, cmap="RdBu_r", vmin=-top, vmax=top)
        plots.bare(ax)
        ax.set_title(f"{label}\n{m.shape[0]}x{m.shape[1]}, error {ev['errors'][label]:.0e}", fontsize=8)
    fig.tight_layout()
    return Drawn(
        fig,
        _caption("jacobians", ev),
        data={"errors": ev["errors"], "kernel": ev["kernel"]},
        summary=_check("jacobians", ev),
    )


@table("receptive_field")
def table_receptive_field(th: Theory) -> Drawn:
    ev = th.get("receptive_field")
    return Drawn(rows=ev["rows"], caption=_caption("receptive_field", ev), summary=_check("receptive_field", ev))


@figure("gan_pairing")
def fig_gan_pairing(th: Theory) -> Drawn:
    ev = th.get("gan_pairing")
    a = ev["a"]
    hue = (np.arctan2(a[:, 1], a[:, 0]) / (2 * np.pi)) % 1.0
    size = np.where(np.linalg.norm(a, axis=1) > 0.75, 7, 2)  # outer half of A: big dots
    panels = {"domain A (input)": a, "true partners f(a)": ev["truth"], **ev["samples"]}
    fig, axes = plots.figure(1, len(panels), size=(2.7 * len(panels), 2.9), squeeze=False)
    errors = {r["model"]: r["partner_error"] for r in ev["rows"]}
    for ax, (title, pts) in zip(axes[0], panels.items()):
        ax.scatter(pts[:, 0], pts[:, 1], c=hue, s=size, cmap="hsv", vmin=0, vmax=1, linewidths=0)
        ax.set_aspect("equal")
        if title != "domain A (input)":  # every B panel on the same square, so shapes compare
            ax.set_xlim(1.5, 4.5)
            ax.set_ylim(-1.5, 1.5)
        ax.set_title(title + (f"\nerror to partner {errors[title]:.2f}" if title in errors else ""), fontsize=8.5)
        ax.tick_params(labelsize=7)
    fig.tight_layout()
    return Drawn(
        fig,
        _caption(
            "gan_pairing",
            ev,
            "(Colour: the angle of the input point a; big dots: the outer half "
            "of A. A model that learned f repeats the colours and sizes of "
            "the true-partner panel.)",
        ),
        data={"rows": ev["rows"]},
        summary=_check("gan_pairing", ev),
    )


@table("gan_pairing")
def table_gan_pairing(th: Theory) -> Drawn:
    ev = th.get("gan_pairing")
    rows = [{k: round(v, 4) if isinstance(v, float) else v for k, v in r.items()} for r in ev["rows"]]
    return Drawn(
        rows=rows,
        caption="A -> B translation on the 2D paired domains: mean distance from each output to "
        "its input's true partner, and energy distance from the outputs to domain B "
        "(energy_floor: two fresh samples of B).",
    )


@figure("attention_imitation")
def fig_attention_imitation(th: Theory) -> Drawn:
    ev = th.get("attention_imitation")
    fig, axes = plots.figure(1, 3, size=(13, 3.8), squeeze=False)
    for ax, what in zip(axes[0][:2], ("3x3 convolution", "fully connected")):
        rows = [r for r in ev["rows"] if r["imitates"].startswith(what)]
        labels = [r["attention"].replace("[CLS], ", "").replace(" pixel embedding", "\nembedding") for r in rows]
        ax.barh(range(len(rows)), [r["relative_error"] for r in rows], color=plots.PALETTE[0])
        ax.set_yticks(range(len(rows)), labels, fontsize=8)
        ax.set_xscale("log")
        ax.set_xlabel("relative error on held-out digits (MSE / variance)")
        ax.set_title(f"imitating a {what} layer")
    maps = ev["maps"]
    grid = plots.image_grid(maps / maps.max(axis=(1, 2), keepdims=True), nrow=3, value=0.5)
    axes[0][2].imshow(grid, cmap="magma", vmin=0, vmax=1)
    plots.bare(axes[0][2])
    axes[0][2].set_title(f"{len(maps)} heads' attention from one pixel (5x5 around it)", fontsize=9)
    fig.tight_layout()
    note = (
        "(Right: the trained 9-head model's heads stay inside the 3x3 neighbourhood; the exact construction, "
        "checked in the tests, puts each on a single offset, while on smooth digits mixtures of neighbours fit "
        "as well.)"
    )
    return Drawn(
        fig,
        _caption("attention_imitation", ev, note),
        data={"rows": ev["rows"]},
        summary=_check("attention_imitation", ev),
    )


@figure("diffusion_positions")
def fig_diffusion_positions(th: Theory) -> Drawn:
    ev = th.get("diffusion_positions")
    panels = {"training data": ev["data"], **ev["samples"]}
    share = {r["denoiser"]: r["top_left_share"] for r in ev["rows"]}
    fig, axes = plots.figure(len(panels), 1, size=(8.5, 1.45 * len(panels)), squeeze=False)
    for ax, (title, imgs) in zip(axes[:, 0], panels.items()):
        plots.show_images(ax, (imgs + 1) / 2, nrow=1, cmap="magma", value=0.45)
        ax.set_title(title + (f": {share[title]:.0%} of samples top-left" if title in share else ""), fontsize=9)
    fig.tight_layout()
    return Drawn(
        fig, _caption("diffusion_positions", ev), data={"rows": ev["rows"]}, summary=_check("diffusion_positions", ev)
    )


@figure("saliency")
def fig_saliency(th: Theory) -> Drawn:
    ev = th.get("saliency")
    rows = {"digit": ev["images"], **ev["maps"]}
    n = len(ev["images"])
    fig, axes = plots.figure(len(rows), n, size=(1.35 * n + 1.2, 1.4 * len(rows)), squeeze=False)
    for r, (name, imgs) in enumerate(rows.items()):
        for c in range(n):
            ax = axes[r][c]
            m = imgs[c]
            ax.imshow(m, cmap="gray_r" if r == 0 else "magma", vmin=0 if r == 0 else None)
            plots.bare(ax)
        drop = ev["drops"].get(name)
        axes[r][0].set_ylabel(name + (f"\n(drop {drop:.2f})" if drop is not None else ""), fontsize=8)
    fig.tight_layout()
    return Drawn(
        fig,
        _caption("saliency", ev, f"(Deleting random pixels drops it by {ev['drops']['random pixels']:.2f}.)"),
        data={"drops": ev["drops"], "accuracy": ev["accuracy"]},
        summary=_check("saliency", ev),
    )
