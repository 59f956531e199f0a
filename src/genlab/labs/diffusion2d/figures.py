"""Every figure and table of the 2D diffusion lab, one registered function each, on an opened run (core.Trained,
whose ``sizes`` say how many samples and steps to use); ``when=`` picks the set that fits the run's ``kind``."""

from __future__ import annotations

from functools import partial

import numpy as np
import torch

from genlab import plots
from genlab.data.toy2d import in_support, make_toy2d, region
from genlab.diffusion import forward_path, forward_snapshots
from genlab.labs import Drawn, figure, table
from genlab.labs.diffusion2d import core
from genlab.labs.diffusion2d.config import BONUS_POINT, GUIDANCE_SHOWN
from genlab.labs.diffusion2d.core import Trained
from genlab.plots import PALETTE, outline_square, scatter, square_limits


def kind(*kinds: str):
    """A ``when=`` predicate: the opened run's kind is one of ``kinds``."""
    return lambda tr: tr.kind in kinds


def _outline(tr: Trained):
    """``outline(ax)``: the square the data lives in (with the grid's cells), or a plain frame for the other sets."""
    if tr.cfg.dataset in ("square", "grid"):
        return partial(outline_square, cells=3 if tr.cfg.dataset == "grid" else 1)
    return partial(square_limits, lim=1.5)


def _quality(p: dict) -> str:
    """A sample set's share on the data and energy distance, for a panel title."""
    return f"{100 * p['q']['in_support']:.1f}% in, ED {p['q']['energy_distance']:.4f}"


# ---------------------------------------------------------------------------------- unconditional figures
@figure("01_forward_trajectory", when=kind("unconditional"))
def fig_forward_trajectory(tr: Trained, start=(1.4, -1.25), seed: int = 0) -> Drawn:
    gen = torch.Generator().manual_seed(seed)
    times, path = forward_path(tr.schedule, torch.tensor(start, dtype=torch.float64), 1000, gen)
    fig, ax = plots.figure(size=(5.2, 4.6))
    plots.time_path(ax, path, times, line={"color": "0.5", "lw": 0.4, "alpha": 0.6}, colorbar="t")
    plots.mark(ax, start, f"x_0 = {start}", s=160)
    plots.mark(ax, path[-1], "x_1", marker="X", s=80, color=PALETTE[3])
    outline_square(ax, float(path.abs().max()) * 1.1 + 0.2)
    ax.set_title(f"Forward process of one point\nsigma(t) = {tr.schedule.describe()}")
    ax.legend(loc="upper left")
    caption = (
        "A point outside the square diffused by the forward process x_t = x_0 + sigma(t) eps along one Brownian path "
        "(t from 0, dark, to 1, yellow); the dashed square is where the data lives."
    )
    return Drawn(fig, caption, data={"start": list(start), "end": path[-1].tolist()})


@figure("02_loss")
def fig_loss(tr: Trained) -> Drawn:
    rows = tr.run.read_metrics()
    fig = plots.loss_curves(rows, ["loss"], title=f"Training loss ({tr.cfg.dataset}, noise-prediction MSE)")
    last = [r["loss"] for r in rows if "loss" in r][-20:]
    caption = (
        "Mean squared error between the true and the predicted noise, t ~ U(0, 1), per step (faint) and smoothed. "
        "It plateaus well above 0: at large sigma the noise cannot be told from the data."
    )
    return Drawn(fig, caption, data={"final_loss_mean_last20": float(np.mean(last)) if last else None})


@figure("03_seed_grid", when=kind("unconditional", "ddpm"))
def fig_seed_grid(tr: Trained) -> Drawn:
    n, steps = tr.sizes.points, tr.sizes.euler_steps
    noise = torch.cat([torch.randn(n, 2, generator=torch.Generator().manual_seed(s)) for s in range(9)])
    parts = tr.sample(9 * n, sampler="euler", steps=steps, noise=noise).x.cpu().split(n)
    stats = [float(in_support(tr.cfg.dataset, xs).float().mean()) for xs in parts]
    titles = [f"seed {s}: {100 * p:.1f}% inside" for s, p in enumerate(stats)]
    title = f"{n} samples per seed, Euler probability-flow ODE, {steps} steps"
    fig, _ = plots.point_grid(parts, titles, nrows=3, panel=(3, 3), frame=_outline(tr), title=title)
    caption = (
        f"Nine seeds, {n} points each, through the same deterministic sampler: each seed fills the square with a "
        "different random pattern of the same density."
    )
    return Drawn(fig, caption, data={"in_support_per_seed": stats})


@figure("04_steps_sweep", when=kind("unconditional"))
def fig_steps_sweep(tr: Trained) -> Drawn:
    sweep, cols = core.steps_sweep(tr), len(tr.sizes.sweep_steps)
    xs, titles = [p["x"] for p in sweep], [f"{p['grid']}, {p['steps']} steps\n{_quality(p)}" for p in sweep]
    colors = [PALETTE[i // cols] for i in range(len(sweep))]
    title = "Euler sampling with more and more steps (same noise in every panel)"
    fig, _ = plots.point_grid(
        xs, titles, nrows=2, panel=(2.6, 2.8), colors=colors, frame=_outline(tr), fontsize=8, title=title
    )
    caption = (
        "With few Euler steps the large first steps overshoot and the points come out blurred beyond the edges; from "
        "about 100 steps the square is sharp. The EDM grid (more steps at low noise) is sharper for few steps. ED = "
        "energy distance to fresh data (the noise floor is in summary.json)."
    )
    return Drawn(fig, caption, data={"rows": table_steps_sweep(tr).rows})


@table("steps_sweep", when=kind("unconditional"))
def table_steps_sweep(tr: Trained) -> Drawn:
    return Drawn(
        rows=core.rows(core.steps_sweep(tr), "grid", "steps"), caption="Euler sampler vs number of steps and time grid"
    )


@figure("05_samplers_schedules", when=kind("unconditional"))
def fig_samplers_schedules(tr: Trained) -> Drawn:
    (top, bottom), s = core.samplers_schedules(tr).values(), tr.sizes
    fig, axes = plots.figure(2, 4, layout="constrained", size=(13, 6.6))
    ax, t = axes[0, 0], torch.linspace(0, 1, 200, dtype=torch.float64)
    for i, p in enumerate(top):
        ax.plot(t, p["model"].schedule.sigma(t), color=PALETTE[i], label=p["model"].schedule.describe())
    ax.set(yscale="log", xlabel="t", ylabel="sigma(t)", title="Noise schedules")
    ax.legend(fontsize=8)
    titles = [f"sigma = {p['model'].schedule.describe()}\n{_quality(p)}" for p in top]
    plots.point_panels(axes[0, 1:], [p["x"] for p in top], titles, frame=_outline(tr))
    titles = [f"{p['sampler']}, {p['steps']} steps\n{_quality(p)}" for p in bottom]
    plots.point_panels(axes[1], [p["x"] for p in bottom], titles, colors=PALETTE[4:], frame=_outline(tr))
    title = "Top: schedules (each its own trained model, Euler sampler). Bottom: samplers on the main model"
    fig.suptitle(title, fontweight="bold")
    caption = (
        f"Top: sigma(t) of three VE schedules and samples (Euler, {s.euler_steps} steps) from a model trained with "
        "each (the other two half as long as the main one). exp(2(t-1)) stops at sigma(0) = e^-2 = 0.14, so its "
        "samples stay blurred by that much noise; t^2 + 1e-4 ends with almost none. Bottom: other samplers with the "
        f"main model, {s.sampler_steps} steps each (Heun, DDIM, Euler-Maruyama, DDPM ancestral)."
    )
    return Drawn(fig, caption, data={"rows": table_samplers_schedules(tr).rows})


@table("samplers_schedules", when=kind("unconditional"))
def table_samplers_schedules(tr: Trained) -> Drawn:
    sets = core.samplers_schedules(tr)
    rows = core.rows(sets["schedules"] + sets["samplers"], "what", "sampler", "steps")
    return Drawn(rows=rows, caption="Schedules and samplers compared")


@figure("06_same_noise_trajectories", when=kind("unconditional"))
def fig_same_noise(tr: Trained) -> Drawn:
    det, sto, four, spread_det, spread_sto = core.same_noise(tr)
    fig, axes = plots.figure(1, 3, layout="constrained", size=(14, 4.6))
    ends, start = {"color": "black", "s": 18, "label": "end points"}, {"color": PALETTE[3], "label": "noise"}
    plots.paths(axes[0], det.xs, lw=0.7, alpha=0.6, start=start, end=ends)
    plots.paths(axes[1], sto.xs, lw=0.7, alpha=0.6, start=start, end=ends)
    plots.paths(axes[2], four.xs, labels=[f"trajectory {i + 1}" for i in range(4)], lw=1, end={"s": 30})
    plots.time_path(axes[2], four.xs, four.times, s=4, zorder=3, colorbar="t")
    axes[0].set_title(f"Euler ODE: 10 runs, max difference {spread_det:.1e}", fontsize=9)
    axes[1].set_title(f"Euler-Maruyama SDE: 10 runs, mean spread {spread_sto:.3f}", fontsize=9)
    axes[2].set_title("4 denoising trajectories (Euler ODE)", fontsize=9)
    for ax in axes:
        outline_square(ax, None)
        ax.legend(fontsize=8)
    caption = (
        "Left: one noise vector through the deterministic sampler 10 times ends at the same point. Middle: the "
        "stochastic reverse SDE from the same start adds fresh noise each step and ends at 10 different points. "
        "Right: four denoising trajectories, coloured by t."
    )
    return Drawn(fig, caption, data={"ode_max_difference": spread_det, "sde_mean_spread": spread_sto})


# ------------------------------------------------------------------------------------- conditional figures
@figure("07a_class_data", when=kind("conditional"))
def fig_class_data(tr: Trained) -> Drawn:
    data = make_toy2d(tr.cfg.dataset, tr.cfg.n_points, tr.cfg.data_seed)
    fig, ax = plots.figure(size=(5.4, 4.8))
    plots.class_scatter(ax, data.x, data.y, tr.classes, s=5, alpha=0.8)
    _outline(tr)(ax)
    ax.set_title(f"Training data by class ({tr.classes} classes)")
    caption = (
        "The conditional data: class = 3 * column + row of the 3 x 3 cell (columns from the left, rows from the "
        "bottom), so (-0.66, 0.66) is class 2 and the bottom-right cell is class 6."
    )
    return Drawn(fig, caption)


@figure("07b_class_trajectories", when=kind("conditional"))
def fig_class_trajectories(tr: Trained) -> Drawn:
    labels, (shared, own) = torch.arange(tr.classes), core.class_paths(tr)
    colors, names = plots.class_colors(tr.classes), [f"class {c}" for c in range(tr.classes)]
    fig, axes = plots.figure(1, 2, layout="constrained", size=(11.5, 5.2))
    data = {}
    for ax, res, key, title, start in (
        (axes[0], shared, "shared_start", "from one shared x_1", "start"),
        (axes[1], own, "own_prior", "from each class's own prior", "starts (same noise z)"),
    ):
        data[key] = hits = (region(tr.cfg.dataset, res.x.cpu()) == labels).tolist()
        plots.paths(
            ax, res.xs, colors, labels=names, lw=1.1, start={"label": start, "s": 90, "zorder": 6}, end={"s": 40}
        )
        _outline(tr)(ax)
        square_limits(ax, 2)
        ax.set_title(f"{title}: {sum(hits)}/{tr.classes} in their cell", fontsize=10)
    axes[1].legend(fontsize=7, loc="center left", bbox_to_anchor=(1.0, 0.5))
    caption = (
        "Left: one start x_1 (drawn from the all-data prior) sampled once per class label: the label alone steers "
        "each trajectory into its own cell. Right: the same noise z started from each class's matched prior (its x_1 "
        "mean + std * z), as the sampler does: each trajectory starts over its cell and only has to settle inside it."
    )
    return Drawn(fig, caption, data=data)


@figure("07c_class_samples", when=kind("conditional"))
def fig_class_samples(tr: Trained) -> Drawn:
    shown = [p for p in core.guidance_sweep(tr) if p["guidance"] in GUIDANCE_SHOWN]
    fig, axes = plots.figure(1, len(shown), layout="constrained", size=(4.6 * len(shown), 4.6))
    colors = [np.array(plots.class_colors(tr.classes))[p["labels"].numpy()] for p in shown]
    what = {0: "unconditional", 1: "conditional"}
    titles = [
        f"guidance {p['guidance']:g} ({what.get(p['guidance'], 'guided')}): {100 * p['q']['in_region']:.1f}% in their "
        f"cell,\ndistance {p['q']['distance_ratio']:.1f}x the noise floor"
        for p in shown
    ]
    plots.point_panels(
        axes, [p["x"] for p in shown], titles, colors=colors, frame=_outline(tr), fontsize=10, s=3, alpha=0.8
    )
    caption = (
        f"{tr.sizes.class_points} samples coloured by the class they were asked for. Guidance 0 ignores the label "
        "(colours mixed) and 1 is the plain conditional model; each class starts from its own matched prior, so at 1 "
        "the samples already fill their cells. Guidance > 1 pushes them deeper into their cells: more land in the "
        "right cell, but they crowd the cell centres, and the distance to the data grows (see the table)."
    )
    return Drawn(fig, caption, data={"rows": table_guidance(tr).rows})


@table("guidance", when=kind("conditional"))
def table_guidance(tr: Trained) -> Drawn:
    digits = {"in_region": 4, "in_support": 4, "distance_ratio": 2}
    caption = (
        "Guidance scale against the share of samples in their class's cell and the energy distance to fresh data (as "
        f"a multiple of the noise floor); Euler, {tr.sizes.euler_steps} steps, {tr.sizes.class_points} samples"
    )
    return Drawn(rows=core.rows(core.guidance_sweep(tr), "guidance", digits=digits), caption=caption)


# ------------------------------------------------------------------------------------ likelihood figures
@figure("08_elbo", when=kind("conditional", "unconditional"))
def fig_elbo(tr: Trained) -> Drawn:
    rows, plane, s = core.elbo_points(tr), core.elbo_plane(tr), tr.sizes
    fig = plots.blank((15, 7.6), layout="constrained")
    sub = fig.subfigures(2, 1, height_ratios=[1.55, 1])
    maps = (
        (np.clip(plane["elbo"], -20, None), "ELBO (nats)", f"ELBO ({s.plane_mc} draws per point)"),
        (np.clip(plane["ode"], -20, None), "log p (nats)", f"exact ODE log-density ({s.ode_steps} steps)"),
        (np.clip(plane["elbo"] - plane["ode"], -1, 1), "ELBO - ODE log p (nats)", "ELBO - ODE log p"),
    )
    shown = [(r["x"], r["y"]) for r in rows if abs(r["x"]) <= 2 and abs(r["y"]) <= 2]
    for i, (ax, (img, label, title)) in enumerate(zip(sub[0].subplots(1, 3), maps)):
        diff = i == 2
        style = {"cmap": "RdBu_r", "vmin": -1, "vmax": 1} if diff else {"cmap": "magma"}
        plots.plane_map(ax, img, 2, label=label + (", clipped to +-1" if diff else ", clipped at -20"), **style)
        outline_square(ax, 2, color="0.2" if diff else "white")
        plots.mark(ax, shown, marker="x", color="black" if diff else "cyan", s=40)
        ax.set_title(title, fontsize=10)
    if tr.classes:
        sub[0].suptitle("each point scored with the class of its cell (outside: the nearest cell)", fontsize=10)
    cols = ["point"] + (["class"] if tr.classes else []) + ["ELBO +- se", "ODE log p", "z", "ELBO <= ODE + se"]
    cells = [
        [f"({r['x']:g}, {r['y']:g})", *([str(r["class"])] if tr.classes else [])]
        + [f"{r['elbo']:.2f} +- {r['stderr']:.2f}", f"{r['ode_logp']:.2f}", f"{r['z']:.2f}"]
        + ["yes" if r["elbo_le_ode_plus_se"] else "NO"]
        for r in rows
    ]
    plots.table(sub[1].subplots(), cells, cols, title=f"Reference points ({s.elbo_mc} draws each)")
    summary = core.elbo_summary(tr, rows, plane)
    truth = "log(9/4) = 0.81 inside a cell" if tr.classes else "log(1/4) = -1.39 inside the square"
    caption = (
        "The ELBO (a lower bound on log p(x)) is high and flat on the data and falls off quickly outside it; the true "
        f"log-density is {truth}. The middle map is the exact log-density of the probability-flow ODE and the right "
        "one their difference. The two are likelihoods of two different models that share the network: the ELBO "
        "bounds the stochastic (discrete-time) sampler's, the ODE gives the deterministic flow's, and they coincide "
        f"only where the network has learnt the true score. On the data they agree to {plane['gap_mean']:+.2f} +- "
        f"{plane['gap_sd']:.2f} nats (mean +- sd over the grid points in the data), and the ELBO exceeds the ODE value "
        f"by more than its standard error at {100 * plane['share_over_se']:.0f}% of them; far from the data the "
        "network extrapolates and the two part by tens of nats, both far above the truth (a point 0.7 outside the "
        "square has log p of about -5000 under data blurred by sigma(0) = e^-5)."
    )
    return Drawn(fig, caption, data={"rows": rows, **summary}, summary=summary)


@table("elbo_points", when=kind("conditional", "unconditional"))
def table_elbo_points(tr: Trained) -> Drawn:
    caption = (
        f"ELBO (nats, {tr.sizes.elbo_mc} Monte-Carlo draws, +- standard error) beside the exact log-density of the "
        "probability-flow ODE; z = (ELBO - ODE) / standard error. The ELBO bounds the likelihood of the stochastic "
        "model, so it should not exceed the ODE value by more than its standard error where the two models agree"
    )
    return Drawn(rows=core.elbo_points(tr), caption=caption)


@figure("09_bonus_inversion", when=kind("conditional", "unconditional"), verb="invert")
def fig_bonus(tr: Trained, target=BONUS_POINT, steps: int | None = None) -> Drawn:
    target, steps = tuple(target), steps or tr.sizes.invert_steps
    out = core.invert_point(tr, target, steps)
    s, xs, z = out["summary"], out["path"], out["noise"]
    err, znorm, log10_tail = s["bonus_endpoint_error"], s["bonus_noise_norm"], s["bonus_noise_log10_tail_prob"]
    fig, axes = plots.figure(1, 2, layout="constrained", size=(11.5, 5))
    for ax, bar in zip(axes, (None, "t")):
        plots.time_path(ax, xs, out["times"], zorder=3, line={"color": "0.4", "lw": 0.6}, colorbar=bar)
        plots.mark(ax, target, f"target {target}", s=200)
        plots.mark(ax, xs[0], f"start x_1, noise z = ({z[0]:.1f}, {z[1]:.1f})", marker="X", s=80, color=PALETTE[3])
        outline_square(ax, None)
    axes[0].set_xscale("symlog", linthresh=2)
    axes[0].set_yscale("symlog", linthresh=2)
    axes[0].set_title("Whole path (symmetric log axes)", fontsize=10)
    axes[0].legend(loc="lower right", fontsize=8)
    axes[1].set(xlim=(-1.5, 6), ylim=(-1.5, 7))
    axes[1].set_title(f"Near the target: end-point error {err:.1e}", fontsize=10)
    fig.suptitle(f"Bonus: the noise that the ODE sampler turns into {target}", fontweight="bold")
    caption = (
        f"The probability-flow ODE is invertible: integrating it from {target} up to t = 1 gives the noise that the "
        f"deterministic sampler carries back to {target}, far outside the training square (Heun, {steps} steps each "
        f"way; end-point error {err:.1e}). That noise has |z| = {znorm:.1f}: a standard normal lands that far out "
        f"with probability about 10^{log10_tail:.0f}, which is why the model never produces such a point by chance."
    )
    data = {"noise": s["bonus_noise"], "endpoint": s["bonus_endpoint"], "error": err, "noise_norm": znorm}
    return Drawn(fig, caption, summary=s, data=data)


# ------------------------------------------------------------------------------------ DDPM spiral session
@figure("s1_ddpm_forward", when=kind("ddpm"))
def fig_ddpm_forward(tr: Trained) -> Drawn:
    n, T = tr.sizes.ddpm_points, getattr(tr.schedule, "T", 1000)
    data = make_toy2d(tr.cfg.dataset, n, seed=tr.cfg.data_seed + 77).x
    steps = [s for s in (0, 1, 37, 100, 250, 500, 1000) if s <= T]
    clouds = forward_snapshots(tr.schedule, data, [s / T for s in steps], torch.Generator().manual_seed(0))
    titles = [f"t = {s}\nalpha-bar = {float(tr.schedule.alpha(torch.tensor(s / T)) ** 2):.3f}" for s in steps]
    title = "Forward process q(x_t | x_0) = N(sqrt(alpha-bar_t) x_0, (1 - alpha-bar_t) I)"
    fig, _ = plots.point_grid(clouds, titles, colors=PALETTE[:1], lim=3, title=title)
    caption = (
        "The spiral under the DDPM forward process with linear betas 1e-4..0.02, T = 1000: by t = 37 the noise (std "
        "0.13) has already blurred its arms into a ring-like cloud, and by t = 500 it is plain Gaussian noise."
    )
    return Drawn(fig, caption, data={"steps": steps})


@figure("s2_ddpm_reverse", when=kind("ddpm"))
def fig_ddpm_reverse(tr: Trained) -> Drawn:
    n, T = tr.sizes.ddpm_points, getattr(tr.schedule, "T", tr.cfg.sample_steps)
    res = tr.sample(n, sampler="ddpm", steps=T, seed=1, trajectory=True)
    data = make_toy2d(tr.cfg.dataset, n, seed=tr.cfg.data_seed + 78).x
    q = core.quality(tr, res.x.cpu())
    show = [T] + [s for s in (500, 250, 100, 37, 0) if s < T]
    clouds, titles = [res.xs[T - s] for s in show], [f"x_t, t = {s}" for s in show]
    title = "Reverse process: DDPM ancestral sampling from noise to p_theta(x_0)"
    grid = {"ncols": len(show) + 1, "panel": (2.6, 3.1), "lim": 2.5, "title": title}
    fig, axes = plots.point_grid(clouds, titles, colors=PALETTE[2:3], **grid)
    ax = axes[0, -1]
    scatter(ax, data, color=PALETTE[0], alpha=0.35, label="q(x_0): data")
    scatter(ax, res.x, color=PALETTE[3], alpha=0.5, label="p_theta(x_0): samples")
    ax.legend(fontsize=7, markerscale=4, loc="lower right")
    ax.set_title(f"ED {q['energy_distance']:.4f}\n(floor {q['noise_floor']:.4f})", fontsize=9)
    caption = (
        f"Ancestral sampling x_{{t-1}} ~ p_theta(x_{{t-1}} | x_t) over all T = {T} steps; the last panel lays the "
        "model's p_theta(x_0) over the data q(x_0)."
    )
    summary = {f"ddpm_{k}": q[k] for k in ("energy_distance", "noise_floor", "in_support")}
    return Drawn(fig, caption, data=q, summary=summary)


@figure("s3_ddpm_x0_hat", when=kind("ddpm"))
def fig_ddpm_x0_hat(tr: Trained) -> Drawn:
    T = getattr(tr.schedule, "T", tr.cfg.sample_steps)
    res = tr.sample(tr.sizes.points, sampler="ddpm", steps=T, seed=2, trajectory=True)
    show = [s for s in (1000, 500, 250, 100, 37, 1) if s <= T]
    # the step from t = s to t = s - 1 is step T - s: it moves to xs[T - s + 1] and guesses x0s[T - s]
    clouds = [res.xs[T - s + 1] for s in show] + [res.x0s[T - s] for s in show]
    titles = [f"x_(t-1), t = {s}" for s in show] + [f"x0_hat at t = {s}" for s in show]
    colors = [PALETTE[2]] * len(show) + [PALETTE[4]] * len(show)
    title = "Top: the sampler's state x_(t-1). Bottom: the model's guess x0_hat of the clean point"
    fig, _ = plots.point_grid(clouds, titles, nrows=2, panel=(2.5, 2.7), colors=colors, lim=2.5, title=title)
    caption = (
        "Early on (large t) x0_hat is already a blurry spiral (the mean of the data given a very noisy point), while "
        "x_(t-1) is still noise; the guesses sharpen as t falls."
    )
    return Drawn(fig, caption, data={"steps": show})
