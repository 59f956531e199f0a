"""Every figure and table of the 2D diffusion lab, one registered function each, on an opened run (core.Trained,
whose ``sizes`` say how many samples and steps to use); ``when=`` picks the set that fits the run's ``kind``."""

from __future__ import annotations

import numpy as np
import torch

from genlab import plots
from genlab.data.toy2d import in_support, make_toy2d, region
from genlab.diffusion import forward_path
from genlab.labs import Drawn, figure, table
from genlab.labs.diffusion2d import core
from genlab.labs.diffusion2d.config import BONUS_POINT
from genlab.labs.diffusion2d.core import GUIDANCE_SHOWN, Trained, rounded, samples
from genlab.plots import PALETTE, outline_square, scatter, square_limits


def kind(*kinds: str):
    """A ``when=`` predicate: the opened run's kind is one of ``kinds``."""
    return lambda tr: tr.kind in kinds


def _outline(ax, tr: Trained):
    """The data's outline: the square (with the grid's cells), or a plain frame for the other sets."""
    if tr.cfg.dataset in ("square", "grid"):
        outline_square(ax, cells=3 if tr.cfg.dataset == "grid" else 1)
    else:
        square_limits(ax, 1.5)


def _quality_title(q: dict) -> str:
    return f"{100 * q['in_support']:.1f}% in, ED {q['energy_distance']:.4f}"


# ---------------------------------------------------------------------------------- unconditional figures
@figure("01_forward_trajectory", when=kind("unconditional"))
def fig_forward_trajectory(tr: Trained, start=(1.4, -1.25), seed: int = 0) -> Drawn:
    """One point starting outside the square, noised by the forward SDE, coloured by t."""
    times, path = forward_path(
        tr.schedule, torch.tensor(start, dtype=torch.float64), 1000, torch.Generator().manual_seed(seed)
    )
    fig, ax = plots.figure(size=(5.2, 4.6))
    sc = ax.scatter(path[:, 0], path[:, 1], c=times, cmap="plasma", s=6)
    ax.plot(path[:, 0], path[:, 1], color="0.5", lw=0.4, alpha=0.6)
    ax.scatter(*start, marker="*", s=160, color="black", zorder=5, label=f"x_0 = {start}")
    ax.scatter(path[-1, 0], path[-1, 1], marker="X", s=80, color=PALETTE[3], zorder=5, label="x_1")
    outline_square(ax, float(path.abs().max()) * 1.1 + 0.2)
    fig.colorbar(sc, ax=ax, label="t")
    ax.set_title(f"Forward process of one point\nsigma(t) = {tr.schedule.describe()}")
    ax.legend(loc="upper left")
    return Drawn(
        fig,
        "A point outside the square diffused by the forward process x_t = x_0 + sigma(t) eps along "
        "one Brownian path (t from 0, dark, to 1, yellow); the dashed square is where the data lives.",
        data={"start": list(start), "end": path[-1].tolist()},
    )


@figure("02_loss")
def fig_loss(tr: Trained) -> Drawn:
    """The training loss."""
    rows = tr.run.read_metrics()
    fig = plots.loss_curves(rows, ["loss"], title=f"Training loss ({tr.cfg.dataset}, noise-prediction MSE)")
    last = [r["loss"] for r in rows if "loss" in r][-20:]
    return Drawn(
        fig,
        "Mean squared error between the true and the predicted noise, t ~ U(0, 1), per step (faint) "
        "and smoothed. It plateaus well above 0: at large sigma the noise cannot be told from the data.",
        data={"final_loss_mean_last20": float(np.mean(last)) if last else None},
    )


@figure("03_seed_grid", when=kind("unconditional", "ddpm"))
def fig_seed_grid(tr: Trained) -> Drawn:
    """Nine seeds x 1000 sampled points (deterministic Euler)."""
    n, steps = tr.sizes.points, tr.sizes.euler_steps
    noise = torch.cat([torch.randn(n, 2, generator=torch.Generator().manual_seed(s)) for s in range(9)])
    res = samples(tr, 9 * n, sampler="euler", steps=steps, noise=noise)
    fig, axes = plots.figure(3, 3, layout="constrained", size=(9, 9), sharex=True, sharey=True)
    parts = res.x.cpu().split(n)
    stats = [float(in_support(tr.cfg.dataset, xs).float().mean()) for xs in parts]
    for s, (ax, xs) in enumerate(zip(axes.flat, parts)):
        scatter(ax, xs, color=PALETTE[s % 9])
        _outline(ax, tr)
        ax.set_title(f"seed {s}: {100 * stats[s]:.1f}% inside", fontsize=9)
    fig.suptitle(f"{n} samples per seed, Euler probability-flow ODE, {steps} steps", fontweight="bold")
    return Drawn(
        fig,
        f"Nine seeds, {n} points each, through the same deterministic sampler: each seed fills the "
        "square with a different random pattern of the same density.",
        data={"in_support_per_seed": stats},
    )


@figure("04_steps_sweep", when=kind("unconditional"))
def fig_steps_sweep(tr: Trained) -> Drawn:
    """Samples for several numbers of sampling steps, on a uniform and an EDM time grid."""
    sweep, cols = core.steps_sweep(tr), len(tr.sizes.sweep_steps)
    fig, axes = plots.figure(2, cols, layout="constrained", size=(2.6 * cols, 5.6), sharex=True, sharey=True)
    for i, p in enumerate(sweep):
        ax = axes[i // cols, i % cols]
        scatter(ax, p["x"], color=PALETTE[i // cols])
        _outline(ax, tr)
        ax.set_title(f"{p['grid']}, {p['steps']} steps\n{_quality_title(p['q'])}", fontsize=8)
    fig.suptitle("Euler sampling with more and more steps (same noise in every panel)", fontweight="bold")
    return Drawn(
        fig,
        "With few Euler steps the large first steps overshoot and the points come out blurred beyond "
        "the edges; from about 100 steps the square is sharp. The EDM grid (more steps at low noise) is "
        "sharper for few steps. ED = energy distance to fresh data (the noise floor is in summary.json).",
        data={"rows": table_steps_sweep(tr).rows},
    )


@table("steps_sweep", when=kind("unconditional"))
def table_steps_sweep(tr: Trained) -> Drawn:
    rows = [{"grid": p["grid"], "steps": p["steps"], **rounded(p["q"])} for p in core.steps_sweep(tr)]
    return Drawn(rows=rows, caption="Euler sampler vs number of steps and time grid")


@figure("05_samplers_schedules", when=kind("unconditional"))
def fig_samplers_schedules(tr: Trained) -> Drawn:
    """Other schedules (sigma(t) plotted) and other samplers, each with its in-square share and distance."""
    out, s = core.samplers_schedules(tr), tr.sizes
    fig, axes = plots.figure(2, 4, layout="constrained", size=(13, 6.6))
    ax, t = axes[0, 0], torch.linspace(0, 1, 200, dtype=torch.float64)
    for i, p in enumerate(out["schedules"]):
        ax.plot(t, p["model"].schedule.sigma(t), color=PALETTE[i], label=p["model"].schedule.describe())
        scatter(axes[0, i + 1], p["x"], color=PALETTE[i])
        axes[0, i + 1].set_title(f"sigma = {p['model'].schedule.describe()}\n{_quality_title(p['q'])}", fontsize=9)
    ax.set(yscale="log", xlabel="t", ylabel="sigma(t)", title="Noise schedules")
    ax.legend(fontsize=8)
    for j, p in enumerate(out["samplers"]):
        scatter(axes[1, j], p["x"], color=PALETTE[4 + j])
        axes[1, j].set_title(f"{p['sampler']}, {p['steps']} steps\n{_quality_title(p['q'])}", fontsize=9)
    for a in list(axes[0, 1:]) + list(axes[1]):
        _outline(a, tr)
    fig.suptitle(
        "Top: schedules (each its own trained model, Euler sampler). Bottom: samplers on the main model",
        fontweight="bold",
    )
    return Drawn(
        fig,
        f"Top: sigma(t) of three VE schedules and samples (Euler, {s.euler_steps} steps) from a model "
        "trained with each (the other two half as long as the main one). exp(2(t-1)) stops at sigma(0) = "
        "e^-2 = 0.14, so its samples stay blurred by that much noise; t^2 + 1e-4 ends with almost none. "
        f"Bottom: other samplers with the main model, {s.sampler_steps} steps each (Heun, DDIM, "
        "Euler-Maruyama, DDPM ancestral).",
        data={"rows": table_samplers_schedules(tr).rows},
    )


@table("samplers_schedules", when=kind("unconditional"))
def table_samplers_schedules(tr: Trained) -> Drawn:
    out = core.samplers_schedules(tr)
    rows = [
        {k: p[k] for k in ("what", "sampler", "steps")} | rounded(p["q"]) for p in out["schedules"] + out["samplers"]
    ]
    return Drawn(rows=rows, caption="Schedules and samplers compared")


@figure("06_same_noise_trajectories", when=kind("unconditional"))
def fig_same_noise(tr: Trained) -> Drawn:
    """The same noise 10 times: identical with the ODE sampler, different with the SDE; 4 trajectories."""
    det, sto, four, spread_det, spread_sto = core.same_noise(tr)
    fig, axes = plots.figure(1, 3, layout="constrained", size=(14, 4.6))
    for ax, res, title in (
        (axes[0], det, f"Euler ODE: 10 runs, max difference {spread_det:.1e}"),
        (axes[1], sto, f"Euler-Maruyama SDE: 10 runs, mean spread {spread_sto:.3f}"),
    ):
        xs = res.xs.cpu()
        for i in range(10):
            ax.plot(xs[:, i, 0], xs[:, i, 1], lw=0.7, alpha=0.6, color=PALETTE[i % 9])
        ax.scatter(xs[-1, :, 0], xs[-1, :, 1], color="black", s=18, zorder=5, label="end points")
        ax.scatter(xs[0, 0, 0], xs[0, 0, 1], marker="*", s=120, color=PALETTE[3], zorder=5, label="noise")
        outline_square(ax, None)
        ax.set_title(title, fontsize=9)
        ax.legend(fontsize=8)
    xs, tt, ax = four.xs.cpu(), four.times.numpy(), axes[2]
    for i in range(4):
        ax.plot(xs[:, i, 0], xs[:, i, 1], color=PALETTE[i], lw=1, label=f"trajectory {i + 1}")
        sc = ax.scatter(xs[:, i, 0], xs[:, i, 1], c=tt, cmap="plasma", s=4, zorder=3)
        ax.scatter(xs[-1, i, 0], xs[-1, i, 1], marker="o", s=30, color=PALETTE[i], edgecolor="black", zorder=5)
    fig.colorbar(sc, ax=ax, label="t")
    outline_square(ax, None)
    ax.set_title("4 denoising trajectories (Euler ODE)", fontsize=9)
    ax.legend(fontsize=8)
    return Drawn(
        fig,
        "Left: one noise vector through the deterministic sampler 10 times ends at the same point. "
        "Middle: the stochastic reverse SDE from the same start adds fresh noise each step and ends at 10 "
        "different points. Right: four denoising trajectories, coloured by t.",
        data={"ode_max_difference": spread_det, "sde_mean_spread": spread_sto},
    )


# ------------------------------------------------------------------------------------- conditional figures
@figure("07a_class_data", when=kind("conditional"))
def fig_class_data(tr: Trained) -> Drawn:
    """The training data coloured by class."""
    data = make_toy2d(tr.cfg.dataset, tr.cfg.n_points, tr.cfg.data_seed)
    fig, ax = plots.figure(size=(5.4, 4.8))
    colors = plots.class_colors(tr.classes)
    for c in range(tr.classes):
        scatter(ax, data.x[data.y == c], color=colors[c], s=5, alpha=0.8, label=str(c))
    _outline(ax, tr)
    ax.legend(title="class", fontsize=8, markerscale=3, loc="center left", bbox_to_anchor=(1.0, 0.5))
    ax.set_title(f"Training data by class ({tr.classes} classes)")
    return Drawn(
        fig,
        "The conditional data: class = 3 * column + row of the 3 x 3 cell (columns from the left, "
        "rows from the bottom), so (-0.66, 0.66) is class 2 and the bottom-right cell is class 6.",
    )


@figure("07b_class_trajectories", when=kind("conditional"))
def fig_class_trajectories(tr: Trained) -> Drawn:
    """One denoising trajectory per class, each ending in its region: from one shared x_1 (the label alone
    steers), and from each class's own matched prior (what the sampler does)."""
    labels, (shared, own) = torch.arange(tr.classes), core.class_paths(tr)
    colors = plots.class_colors(tr.classes)
    fig, axes = plots.figure(1, 2, layout="constrained", size=(11.5, 5.2))
    data = {}
    for ax, res, key, title in (
        (axes[0], shared, "shared_start", "from one shared x_1"),
        (axes[1], own, "own_prior", "from each class's own prior"),
    ):
        xs = res.xs.cpu()
        data[key] = hits = (region(tr.cfg.dataset, res.x.cpu()) == labels).tolist()
        for c in range(tr.classes):
            ax.plot(xs[:, c, 0], xs[:, c, 1], color=colors[c], lw=1.1, label=f"class {c}")
            ax.scatter(xs[-1, c, 0], xs[-1, c, 1], color=colors[c], edgecolor="black", s=40, zorder=5)
        ax.scatter(
            xs[0, :, 0],
            xs[0, :, 1],
            marker="*",
            color="black",
            s=90,
            zorder=6,
            label="start" + ("" if key == "shared_start" else "s (same noise z)"),
        )
        _outline(ax, tr)
        square_limits(ax, 2)
        ax.set_title(f"{title}: {sum(hits)}/{tr.classes} in their cell", fontsize=10)
    axes[1].legend(fontsize=7, loc="center left", bbox_to_anchor=(1.0, 0.5))
    return Drawn(
        fig,
        "Left: one start x_1 (drawn from the all-data prior) sampled once per class label: the label "
        "alone steers each trajectory into its own cell. Right: the same noise z started from each class's "
        "matched prior (its x_1 mean + std * z), as the sampler does: each trajectory starts over its cell "
        "and only has to settle inside it.",
        data=data,
    )


@figure("07c_class_samples", when=kind("conditional"))
def fig_class_samples(tr: Trained) -> Drawn:
    """Samples coloured by their class at several guidance scales (the trade-off is in the table)."""
    colors = np.array(plots.class_colors(tr.classes))
    fig, axes = plots.figure(1, len(GUIDANCE_SHOWN), layout="constrained", size=(4.6 * len(GUIDANCE_SHOWN), 4.6))
    for ax, p in zip(np.atleast_1d(axes), [p for p in core.guidance_sweep(tr) if p["guidance"] in GUIDANCE_SHOWN]):
        w, x, q = p["guidance"], p["x"], p["q"]
        ax.scatter(x[:, 0], x[:, 1], c=colors[p["labels"].numpy()], s=3, lw=0, alpha=0.8)
        _outline(ax, tr)
        what = "unconditional" if w == 0 else ("conditional" if w == 1 else "guided")
        ax.set_title(
            f"guidance {w:g} ({what}): {100 * q['in_region']:.1f}% in their cell,\n"
            f"distance {q['distance_ratio']:.1f}x the noise floor",
            fontsize=10,
        )
    return Drawn(
        fig,
        f"{tr.sizes.class_points} samples coloured by the class they were asked for. Guidance 0 "
        "ignores the label (colours mixed) and 1 is the plain conditional model; each class starts from "
        "its own matched prior, so at 1 the samples already fill their cells. Guidance > 1 pushes them "
        "deeper into their cells: more land in the right cell, but they crowd the cell centres, and the "
        "distance to the data grows (see the table).",
        data={"rows": table_guidance(tr).rows},
    )


@table("guidance", when=kind("conditional"))
def table_guidance(tr: Trained) -> Drawn:
    rows = [
        {
            "guidance": p["guidance"],
            "in_region": round(p["q"]["in_region"], 4),
            "in_support": round(p["q"]["in_support"], 4),
            "distance_ratio": round(p["q"]["distance_ratio"], 2),
        }
        for p in core.guidance_sweep(tr)
    ]
    return Drawn(
        rows=rows,
        caption=(
            "Guidance scale against the share of samples in their class's cell and the energy distance to fresh data "
            f"(as a multiple of the noise floor); Euler, {tr.sizes.euler_steps} steps, {tr.sizes.class_points} samples"
        ),
    )


# ------------------------------------------------------------------------------------ likelihood figures
@figure("08_elbo", when=kind("conditional", "unconditional"))
def fig_elbo(tr: Trained) -> Drawn:
    """ELBO of reference points (table, beside the exact ODE log-density), and over the plane: the ELBO, the
    ODE log-density and their difference."""
    rows, plane, s = core.elbo_points(tr), core.elbo_plane(tr), tr.sizes
    fig = plots.blank((15, 7.6), layout="constrained")
    sub = fig.subfigures(2, 1, height_ratios=[1.55, 1])
    panels = (
        (plane["elbo"], "ELBO (nats)", f"ELBO ({s.plane_mc} draws per point)", "magma", False),
        (plane["ode"], "log p (nats)", f"exact ODE log-density ({s.ode_steps} steps)", "magma", False),
        (plane["elbo"] - plane["ode"], "ELBO - ODE log p (nats)", "ELBO - ODE log p", "RdBu_r", True),
    )
    for ax, (img, label, title, cmap, diff) in zip(sub[0].subplots(1, 3), panels):
        im = ax.imshow(
            np.clip(img, -1, 1) if diff else np.clip(img, -20, None),
            origin="lower",
            extent=(-2, 2, -2, 2),
            cmap=cmap,
            **({"vmin": -1, "vmax": 1} if diff else {}),
        )
        sub[0].colorbar(im, ax=ax, label=label + (", clipped to +-1" if diff else ", clipped at -20"), shrink=0.8)
        outline_square(ax, 2, color="0.2" if diff else "white")
        for r in rows:
            if abs(r["x"]) <= 2 and abs(r["y"]) <= 2:
                ax.scatter(r["x"], r["y"], marker="x", color="black" if diff else "cyan", s=40)
        ax.set_title(title, fontsize=10)
    if tr.classes:
        sub[0].suptitle("each point scored with the class of its cell (outside: the nearest cell)", fontsize=10)
    ax = sub[1].subplots()
    ax.axis("off")
    cols = ["point"] + (["class"] if tr.classes else []) + ["ELBO +- se", "ODE log p", "z", "ELBO <= ODE + se"]
    cells = [
        [f"({r['x']:g}, {r['y']:g})"]
        + ([str(r["class"])] if tr.classes else [])
        + [
            f"{r['elbo']:.2f} +- {r['stderr']:.2f}",
            f"{r['ode_logp']:.2f}",
            f"{r['z']:.2f}",
            "yes" if r["elbo_le_ode_plus_se"] else "NO",
        ]
        for r in rows
    ]
    ax.table(cellText=cells, colLabels=cols, loc="center", cellLoc="center").scale(1, 1.5)
    ax.set_title(f"Reference points ({s.elbo_mc} draws each)")
    summary = core.elbo_summary(tr, rows, plane)
    d_in, over = plane["diff_in"], float(plane["over_in"].double().mean())
    truth = "log(9/4) = 0.81 inside a cell" if tr.classes else "log(1/4) = -1.39 inside the square"
    return Drawn(
        fig,
        (
            "The ELBO (a lower bound on log p(x)) is high and flat on the data and falls off quickly outside it; "
            f"the true log-density is {truth}. The middle map is the exact log-density of the probability-flow "
            "ODE and the right one their difference. The two are likelihoods of two different models that share "
            "the network: the ELBO bounds the stochastic (discrete-time) sampler's, the ODE gives the "
            "deterministic flow's, and they coincide only where the network has learnt the true score. On the "
            f"data they agree to {float(d_in.mean()):+.2f} +- {float(d_in.std()):.2f} nats (mean +- sd over the "
            f"grid points in the data), and the ELBO exceeds the ODE value by more than its standard error at "
            f"{100 * over:.0f}% of them; far from the data the network extrapolates and the two part by tens of nats, "
            "both far above the truth (a point 0.7 outside the square has log p of about -5000 under data blurred "
            "by sigma(0) = e^-5)."
        ),
        data={"rows": rows, **summary},
        summary=summary,
    )


@table("elbo_points", when=kind("conditional", "unconditional"))
def table_elbo_points(tr: Trained) -> Drawn:
    return Drawn(
        rows=core.elbo_points(tr),
        caption=(
            f"ELBO (nats, {tr.sizes.elbo_mc} Monte-Carlo draws, +- standard error) beside the exact log-density of the "
            "probability-flow ODE; z = (ELBO - ODE) / standard error. The ELBO bounds the likelihood of the "
            "stochastic model, so it should not exceed the ODE value by more than its standard error where the "
            "two models agree"
        ),
    )


@figure("09_bonus_inversion", when=kind("conditional", "unconditional"), verb="invert")
def fig_bonus(tr: Trained, target=BONUS_POINT, steps: int | None = None) -> Drawn:
    """Bonus: make the model output (4, 5.5) by inverting the probability-flow ODE; plot the trajectory."""
    target, steps = tuple(target), steps or tr.sizes.invert_steps
    out = core.invert_point(tr, target, steps)
    s, xs, z = out["summary"], out["path"], out["noise"]
    err, znorm, log10_tail = s["bonus_endpoint_error"], s["bonus_noise_norm"], s["bonus_noise_log10_tail_prob"]
    fig, axes = plots.figure(1, 2, layout="constrained", size=(11.5, 5))
    for i, ax in enumerate(axes):
        sc = ax.scatter(xs[:, 0], xs[:, 1], c=out["times"], cmap="plasma", s=6, zorder=3)
        ax.plot(xs[:, 0], xs[:, 1], color="0.4", lw=0.6)
        ax.scatter(*target, marker="*", s=200, color="black", zorder=5, label=f"target {target}")
        ax.scatter(
            xs[0, 0],
            xs[0, 1],
            marker="X",
            s=80,
            color=PALETTE[3],
            zorder=5,
            label=f"start x_1, noise z = ({z[0]:.1f}, {z[1]:.1f})",
        )
        outline_square(ax, None)
        if i == 0:
            ax.set_xscale("symlog", linthresh=2)
            ax.set_yscale("symlog", linthresh=2)
            ax.set_title("Whole path (symmetric log axes)", fontsize=10)
            ax.legend(loc="lower right", fontsize=8)
        else:
            ax.set(xlim=(-1.5, 6), ylim=(-1.5, 7))
            ax.set_title(f"Near the target: end-point error {err:.1e}", fontsize=10)
    fig.colorbar(sc, ax=axes[1], label="t")
    fig.suptitle(f"Bonus: the noise that the ODE sampler turns into {target}", fontweight="bold")
    return Drawn(
        fig,
        (
            f"The probability-flow ODE is invertible: integrating it from {target} up to t = 1 gives the noise "
            f"that the deterministic sampler carries back to {target}, far outside the training square (Heun, "
            f"{steps} steps each way; end-point error {err:.1e}). That noise has |z| = {znorm:.1f}: a standard "
            f"normal lands that far out with probability about 10^{log10_tail:.0f}, which is why the model never "
            "produces such a point by chance."
        ),
        summary=s,
        data={"noise": s["bonus_noise"], "endpoint": s["bonus_endpoint"], "error": err, "noise_norm": znorm},
    )


# ------------------------------------------------------------------------------------ DDPM spiral session
@figure("s1_ddpm_forward", when=kind("ddpm"))
def fig_ddpm_forward(tr: Trained) -> Drawn:
    """The DDPM forward process q(x_t | x_0) at several t (t = 1, 37, ...)."""
    n, T = tr.sizes.ddpm_points, getattr(tr.schedule, "T", 1000)
    data = make_toy2d(tr.cfg.dataset, n, seed=tr.cfg.data_seed + 77).x
    steps = [s for s in (0, 1, 37, 100, 250, 500, 1000) if s <= T]
    g = torch.Generator().manual_seed(0)
    fig, axes = plots.figure(
        1, len(steps), layout="constrained", size=(2.5 * len(steps), 2.9), sharex=True, sharey=True
    )
    for ax, s in zip(axes, steps):
        x = tr.schedule.perturb(data, torch.full((n,), s / T), torch.randn(data.shape, generator=g)) if s else data
        scatter(ax, x, color=PALETTE[0])
        ax.set_title(f"t = {s}\nalpha-bar = {float(tr.schedule.alpha(torch.tensor(s / T)) ** 2):.3f}", fontsize=9)
    square_limits(axes, 3)
    fig.suptitle("Forward process q(x_t | x_0) = N(sqrt(alpha-bar_t) x_0, (1 - alpha-bar_t) I)", fontweight="bold")
    return Drawn(
        fig,
        "The spiral under the DDPM forward process with linear betas 1e-4..0.02, T = 1000: by t = 37 "
        "the noise (std 0.13) has already blurred its arms into a ring-like cloud, and by t = 500 it is "
        "plain Gaussian noise.",
        data={"steps": steps},
    )


@figure("s2_ddpm_reverse", when=kind("ddpm"))
def fig_ddpm_reverse(tr: Trained) -> Drawn:
    """The reverse process: p_theta(x_0) (DDPM ancestral, T steps) against q(x_0), with snapshots."""
    n, T = tr.sizes.ddpm_points, getattr(tr.schedule, "T", tr.cfg.sample_steps)
    res = samples(tr, n, sampler="ddpm", steps=T, seed=1, trajectory=True)
    data = make_toy2d(tr.cfg.dataset, n, seed=tr.cfg.data_seed + 78).x
    q = core.quality(tr, res.x.cpu())
    show = [T] + [s for s in (500, 250, 100, 37, 0) if s < T]
    fig, axes = plots.figure(
        1, len(show) + 1, layout="constrained", size=(2.6 * (len(show) + 1), 3.1), sharex=True, sharey=True
    )
    for ax, s in zip(axes, show):
        scatter(ax, res.xs[T - s], color=PALETTE[2])
        ax.set_title(f"x_t, t = {s}", fontsize=9)
    ax = axes[-1]
    scatter(ax, data, color=PALETTE[0], alpha=0.35, label="q(x_0): data")
    scatter(ax, res.x, color=PALETTE[3], alpha=0.5, label="p_theta(x_0): samples")
    ax.legend(fontsize=7, markerscale=4, loc="lower right")
    ax.set_title(f"ED {q['energy_distance']:.4f}\n(floor {q['noise_floor']:.4f})", fontsize=9)
    square_limits(axes, 2.5)
    fig.suptitle("Reverse process: DDPM ancestral sampling from noise to p_theta(x_0)", fontweight="bold")
    return Drawn(
        fig,
        f"Ancestral sampling x_{{t-1}} ~ p_theta(x_{{t-1}} | x_t) over all T = {T} steps; the last "
        "panel lays the model's p_theta(x_0) over the data q(x_0).",
        data=q,
        summary={
            "ddpm_energy_distance": q["energy_distance"],
            "ddpm_noise_floor": q["noise_floor"],
            "ddpm_in_support": q["in_support"],
        },
    )


@figure("s3_ddpm_x0_hat", when=kind("ddpm"))
def fig_ddpm_x0_hat(tr: Trained) -> Drawn:
    """At several steps, x_{t-1} beside the model's x0_hat (the denoised guess)."""
    T = getattr(tr.schedule, "T", tr.cfg.sample_steps)
    res = samples(tr, tr.sizes.points, sampler="ddpm", steps=T, seed=2, trajectory=True)
    show = [s for s in (1000, 500, 250, 100, 37, 1) if s <= T]
    fig, axes = plots.figure(
        2, len(show), layout="constrained", size=(2.5 * len(show), 5.4), sharex=True, sharey=True, squeeze=False
    )
    for c, s in enumerate(show):
        i = T - s  # the step from t = s to t = s - 1
        scatter(axes[0, c], res.xs[i + 1], color=PALETTE[2])
        axes[0, c].set_title(f"x_(t-1), t = {s}", fontsize=9)
        scatter(axes[1, c], res.x0s[i], color=PALETTE[4])
        axes[1, c].set_title(f"x0_hat at t = {s}", fontsize=9)
    square_limits(axes, 2.5)
    fig.suptitle(
        "Top: the sampler's state x_(t-1). Bottom: the model's guess x0_hat of the clean point", fontweight="bold"
    )
    return Drawn(
        fig,
        "Early on (large t) x0_hat is already a blurry spiral (the mean of the data given a very "
        "noisy point), while x_(t-1) is still noise; the guesses sharpen as t falls.",
        data={"steps": show},
    )
