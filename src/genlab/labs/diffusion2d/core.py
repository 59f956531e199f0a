"""Train, evaluate and open a 2D diffusion run: toy data, the MLP denoiser, a schedule and the samplers of
:mod:`genlab.diffusion` wired together (an opened run is a :class:`~genlab.diffusion.DiffusionModel`); the sample
sets and likelihoods the figures show (no plotting)."""

from __future__ import annotations

import functools
import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch

from genlab.data.toy2d import NUM_CLASSES, in_support, make_toy2d, plane_points, region
from genlab.diffusion import (
    DiffusionModel,
    Schedule,
    data_prior,
    diffusion_batches,
    diffusion_step,
    likelihood_checks,
    make_schedule,
    toy2d_quality,
)
from genlab.labs.diffusion2d import config
from genlab.labs.diffusion2d.config import LAB, Diffusion2DConfig, FigureSizes
from genlab.nn.denoisers import MLPDenoiser
from genlab.runs import Run, choose_device, cpu_threads, reuse_or_create, seed_everything
from genlab.train import fit, load_weights, make_optimizer, warmup_cosine


def build_schedule(cfg: Diffusion2DConfig) -> Schedule:
    return make_schedule(
        cfg.schedule, k=cfg.k, eps=cfg.poly_eps, T=cfg.T, beta_start=cfg.beta_start, beta_end=cfg.beta_end
    )


def build_model(cfg: Diffusion2DConfig) -> MLPDenoiser:
    """The config's denoiser (conditional on the data set's classes when ``cfg.conditional``)."""
    return MLPDenoiser(
        2,
        cfg.hidden,
        cfg.depth,
        time_embedding=cfg.time_embedding,
        num_classes=NUM_CLASSES[cfg.dataset] if cfg.conditional else 0,
        x_features=cfg.x_features,
        x_scale=cfg.x_scale,
        seed=cfg.seed,
    )


@dataclass(kw_only=True)
class Trained(DiffusionModel):
    """An opened run: the EMA network (eval mode) with its schedule and priors fitted to the training data (the
    sampler, steps and guidance of the config are the defaults), its run and config, and how big its figures are."""

    run: Run
    cfg: Diffusion2DConfig
    sizes: FigureSizes = field(default_factory=FigureSizes)
    quiet: bool = True  # progress bars of the companion models' training
    cache: dict = field(default_factory=dict)  # what @per_run functions computed for this run

    @property
    def kind(self) -> str:
        """Which figure set fits: ``ddpm`` (a vp schedule), ``conditional`` or ``unconditional``."""
        return "ddpm" if self.schedule.kind == "vp" else ("conditional" if self.classes else "unconditional")


def open_run(run: Run, device: torch.device | str = "cpu", *, tiny: bool = False, quiet: bool = True) -> Trained:
    cfg = run.config(Diffusion2DConfig)
    model = build_model(cfg)
    device = torch.device(device)
    load_weights(run, model, device=device)
    model.eval()
    schedule, data = build_schedule(cfg), make_toy2d(cfg.dataset, cfg.n_points, cfg.data_seed)
    prior = data_prior(schedule, data.x, data.y, model.num_classes, cfg.prior)  # fitted to the training data
    defaults = {"sampler": cfg.sampler, "steps": cfg.sample_steps, "guidance": cfg.guidance}
    sizes = config.TINY_SIZES if tiny else FigureSizes()
    return Trained(model, schedule, *prior, device, **defaults, run=run, cfg=cfg, sizes=sizes, quiet=quiet)


def train_model(
    run: Run,
    cfg: Diffusion2DConfig,
    *,
    device: torch.device,
    quiet: bool = False,
    resume: bool = False,
    desc: str | None = None,
):
    """Train the denoiser on the run's data with the one training loop; returns the model and fit result."""
    seed_everything(cfg.seed)
    data = make_toy2d(cfg.dataset, cfg.n_points, cfg.data_seed)
    schedule = build_schedule(cfg)
    model = build_model(cfg)
    y = data.y.to(device) if (cfg.conditional and data.y is not None) else None
    batches = diffusion_batches(data.x.to(device), y, cfg.batch_size)
    opt = make_optimizer(model.parameters(), "adam", cfg.lr)
    sched = warmup_cosine(opt, cfg.steps, warmup=0, min_ratio=0.1)
    step_fn = diffusion_step(schedule, cfg.label_dropout, model.null_label)
    result = fit(
        run,
        model,
        opt,
        step_fn,
        batches,
        cfg=cfg,
        device=device,
        scheduler=sched,
        resume=resume,
        quiet=quiet,
        desc=desc or f"{LAB} {cfg.dataset}",
    )
    return model, result


def train(
    cfg: Diffusion2DConfig,
    *,
    root: str | Path = "runs",
    name: str | None = None,
    resume: bool = False,
    device: str = "auto",
    quiet: bool = False,
    run: Run | None = None,
) -> Run:
    """Train a run (a new folder, or ``run``), then write its quality numbers to ``summary.json``."""
    dev = choose_device(device)
    run = run or Run.create(LAB, cfg, name=name, root=root, resume=resume)
    _, result = train_model(run, cfg, device=dev, quiet=quiet, resume=resume)
    seconds, loss = round(result.seconds, 2), result.last.get("loss")
    run.update_summary({"train_seconds": seconds, "final_loss": loss, "steps": cfg.steps, "device": str(dev)})
    with cpu_threads(cfg.threads):
        evaluate(open_run(run, dev))
    return run


# ------------------------------------------------------------------------------------ samples and quality


def quality(tr: Trained, x: torch.Tensor, labels: torch.Tensor | None = None) -> dict:
    """:func:`genlab.diffusion.toy2d_quality` of samples ``x`` of the run (drawn for ``labels``)."""
    return toy2d_quality(tr.cfg.dataset, x, labels, data_seed=tr.cfg.data_seed)


def rounded(q: dict, digits: int | dict = 5) -> dict:
    """Quality numbers rounded to ``digits``; a dict ``{key: digits}`` keeps only its keys."""
    digits = digits if isinstance(digits, dict) else dict.fromkeys(q, digits)
    return {k: round(q[k], d) for k, d in digits.items()}


def rows(sets: list[dict], *keys: str, digits: int | dict = 5) -> list[dict]:
    """Table rows of sample sets: the values of ``keys`` and the :func:`rounded` quality numbers ``q``."""
    return [{k: p[k] for k in keys} | rounded(p["q"], digits) for p in sets]


def evaluate(tr: Trained) -> dict:
    """The headline quality numbers, with the run's default sampler and steps, into ``summary.json``."""
    t0 = time.perf_counter()
    res = tr.sample(tr.cfg.eval_n, seed=7)
    labels = torch.arange(tr.cfg.eval_n) % tr.classes if tr.classes else None
    vals = rounded(quality(tr, res.x, labels), 6)
    vals["eval_sampler"] = f"{tr.cfg.sampler}, {tr.cfg.sample_steps} steps, {tr.cfg.eval_n} samples"
    vals["sample_seconds"] = round(time.perf_counter() - t0, 2)
    tr.run.update_summary(vals)
    return vals


def per_run(fn):
    """Compute ``fn(tr)`` once per opened run: a figure and its table share one sample set."""

    @functools.wraps(fn)
    def once(tr: Trained):
        if fn.__name__ not in tr.cache:
            tr.cache[fn.__name__] = fn(tr)
        return tr.cache[fn.__name__]

    return once


def _noise(n: int, seed: int) -> torch.Tensor:
    return torch.randn(n, 2, generator=torch.Generator().manual_seed(seed))


def _scored(m: Trained, x: torch.Tensor, asked: torch.Tensor | None = None, **about) -> dict:
    """A sample set ``x`` (moved to the CPU) with what it is and its quality numbers ``q`` (``asked``: the labels
    it was drawn for)."""
    x = x.cpu()
    return {**about, "x": x, "q": quality(m, x, asked)}


@per_run
def steps_sweep(tr: Trained) -> list[dict]:
    """Euler samples of one noise for every step count of ``sizes.sweep_steps``, on a uniform and an EDM grid."""
    n, noise = tr.sizes.points, _noise(tr.sizes.points, 3)
    return [
        _scored(tr, tr.sample(n, sampler="euler", steps=steps, grid=grid, noise=noise).x, grid=grid, steps=steps)
        for grid in ("uniform", "edm")
        for steps in tr.sizes.sweep_steps
    ]


def companion(tr: Trained, schedule: str, k: float | None = None) -> Trained:
    """A model like the run's, trained half as long with another schedule (the child run
    ``<run>/stages/<schedule>``, reused once finished)."""
    rate = {"k": k} if k is not None else {}
    cfg = tr.cfg.update({"schedule": schedule, "steps": max(1, tr.cfg.steps // 2), **rate})
    name = schedule + (f"-k{k:g}" if k is not None else "")
    sub = Run(tr.run.path / "stages" / name)
    if not (sub.finished and sub.same_config(cfg)):
        sub = tr.run.child(name, cfg)
        train_model(sub, cfg, device=tr.device, quiet=tr.quiet, desc=f"companion {name}")
    return open_run(sub, tr.device)


@per_run
def samplers_schedules(tr: Trained) -> dict:
    """Samples of one noise from the run's model and two companions trained with other schedules (Euler),
    and from the run's model with four other samplers."""
    s, noise = tr.sizes, _noise(tr.sizes.points, 5)

    def scored(m: Trained, sampler: str, steps: int, what: str, seed: int = 0) -> dict:
        x = m.sample(s.points, sampler=sampler, steps=steps, noise=noise, seed=seed).x
        return _scored(m, x, what=what, sampler=sampler, steps=steps, model=m)

    models = [tr, companion(tr, "ve-poly"), companion(tr, "ve-exp", k=2.0)]
    return {
        "schedules": [scored(m, "euler", s.euler_steps, f"schedule {m.schedule.describe()}") for m in models],
        "samplers": [
            scored(tr, name, s.sampler_steps, f"sampler {name}", seed=11)
            for name in ("heun", "ddim", "euler-maruyama", "ddpm")
        ],
    }


@per_run
def guidance_sweep(tr: Trained) -> list[dict]:
    """Balanced conditional samples of one noise at every guidance scale shown or tabulated."""
    n, labels = tr.sizes.class_points, torch.arange(tr.sizes.class_points) % tr.classes
    noise, steps = _noise(n, 6), tr.sizes.euler_steps
    return [
        _scored(
            tr, tr.sample(n, labels=labels, guidance=w, noise=noise, steps=steps).x, labels, guidance=w, labels=labels
        )
        for w in sorted(set(config.GUIDANCE_SHOWN) | set(config.GUIDANCE_TABLE))
    ]


def same_noise(tr: Trained):
    """One noise 10 times through the Euler ODE and through the Euler-Maruyama SDE, 4 Euler paths, and how far
    apart the 10 end points of each are."""
    steps, z = tr.sizes.path_steps, _noise(1, 4).repeat(10, 1)
    det = tr.sample(10, sampler="euler", steps=steps, noise=z, trajectory=True)
    sto = tr.sample(10, sampler="euler-maruyama", steps=steps, noise=z, seed=9, trajectory=True)
    four = tr.sample(4, sampler="euler", steps=steps, noise=_noise(4, 8), trajectory=True)
    spread_det = float((det.x - det.x[0]).abs().max())
    spread_sto = float((sto.x - sto.x.mean(0)).norm(dim=1).mean())
    return det, sto, four, spread_det, spread_sto


def class_paths(tr: Trained):
    """One Euler path per class from one noise z: started from the all-data prior, and from each class's."""
    return tr.class_paths(_noise(1, 2).repeat(tr.classes, 1).to(tr.device), steps=tr.sizes.class_path_steps)


# -------------------------------------------------------------------------------------------- likelihoods


def elbo_rows(tr: Trained, points, labels=None, n_mc: int = 1000, ode_steps: int = 100) -> list[dict]:
    """Where each of ``points`` lies (scored with ``labels``: its class and region), its ELBO (+- standard error)
    and exact ODE log-density (:meth:`~genlab.diffusion.LikelihoodComparison.rows`)."""
    pts = torch.tensor(points, dtype=torch.float32, device=tr.device)
    lab = torch.tensor(labels, device=tr.device) if labels is not None else None
    rows = []
    for i, scores in enumerate(tr.likelihoods(pts, lab, n_mc=n_mc, ode_steps=ode_steps).rows()):
        at, row = pts[i : i + 1].cpu(), {"x": points[i][0], "y": points[i][1]}
        if labels is not None:
            row.update({"class": int(labels[i]), "region": int(region(tr.cfg.dataset, at)[0])})
        rows.append({**row, "in_support": bool(in_support(tr.cfg.dataset, at)[0]), **scores})
    return rows


@per_run
def elbo_points(tr: Trained) -> list[dict]:
    """The reference points' rows: the lab's points, or (conditional) right and wrong classes."""
    points, labels = (config.CLASS_POINTS, config.CLASS_LABELS) if tr.classes else (list(config.REF_POINTS), None)
    return elbo_rows(tr, points, labels, n_mc=tr.sizes.elbo_mc, ode_steps=tr.sizes.ode_steps)


def elbo_plane(tr: Trained) -> dict:
    """ELBO and ODE log-density over a grid of [-2, 2]^2 (a conditional run scores each point with the class
    of its cell, or the nearest one), and how the two agree on the data (``gap_mean``, ``gap_sd``,
    ``share_over_se``: :meth:`~genlab.diffusion.LikelihoodComparison.agreement`)."""
    n = tr.sizes.plane
    plane = plane_points(2.0, n).to(tr.device)
    cond = region(tr.cfg.dataset, plane.clamp(-1, 1).cpu()).clamp(min=0).to(tr.device) if tr.classes else None
    lk = tr.likelihoods(plane, cond, n_mc=tr.sizes.plane_mc, ode_steps=tr.sizes.ode_steps, seed=1)
    agreement = lk.agreement(in_support(tr.cfg.dataset, plane.cpu()))
    return {"elbo": lk.elbo.elbo.reshape(n, n).numpy(), "ode": lk.ode.logp.reshape(n, n).numpy(), **agreement}


def elbo_summary(tr: Trained, rows: list[dict], plane: dict) -> dict:
    """summary.json's ELBO checks: :func:`~genlab.diffusion.likelihood_checks` at the reference points (in
    distribution: inside the data and, for a conditional run, scored with the class of its region), how the ELBO
    and the ODE agree over the plane, and (conditional) the right class above the wrong one."""
    fits = [r["in_support"] and r.get("class", -1) == r.get("region", -1) for r in rows]
    out = likelihood_checks(rows, fits) | {
        "plane_elbo_minus_ode_mean_in_support": round(plane["gap_mean"], 4),
        "plane_elbo_minus_ode_sd_in_support": round(plane["gap_sd"], 4),
        "plane_share_elbo_over_ode_plus_se_in_support": round(plane["share_over_se"], 4),
    }
    if tr.classes:
        right, wrong = rows[0]["elbo"], rows[1]["elbo"]
        out |= {"elbo_right_class": right, "elbo_wrong_class": wrong, "elbo_right_gt_wrong": bool(right > wrong)}
    return out


def invert_point(tr: Trained, target, steps: int) -> dict:
    """The noise that the Heun ODE sampler carries to ``target`` (class 0 for a conditional run), the path
    back from it, and how unlikely that noise is."""
    x0 = torch.tensor([target], dtype=torch.float32, device=tr.device)
    inv, back = tr.round_trip(x0, torch.tensor([0], device=tr.device) if tr.classes else None, steps=steps)
    err, znorm = float((back.x - x0).norm()), float(inv.x[0].norm())
    # how unlikely that noise is: P(|z| >= znorm) for a 2D standard normal is exp(-znorm^2 / 2)
    summary = {
        "bonus_target": list(target),
        "bonus_noise": inv.x[0].tolist(),
        "bonus_endpoint": back.x[0].tolist(),
        "bonus_endpoint_error": err,
        "bonus_noise_norm": znorm,
        "bonus_noise_log10_tail_prob": -(znorm**2) / 2 / math.log(10),
    }
    return {"noise": inv.x[0].cpu(), "path": back.xs[:, 0].cpu(), "times": back.times.numpy(), "summary": summary}


# ------------------------------------------------------------------------------------------------- demo


def draw_figures(run: Run, device: torch.device | str = "cpu", *, tiny: bool = False, quiet: bool = True) -> list[Path]:
    """Every registered figure and table that fits the run (DDPM, conditional or unconditional)."""
    from genlab.labs import draw_all

    tr = open_run(run, device, tiny=tiny, quiet=quiet)
    t0 = time.perf_counter()
    with cpu_threads(tr.cfg.threads):
        paths = draw_all(LAB, tr, run)
    run.update_summary({"figures_seconds": round(time.perf_counter() - t0, 2)})
    return paths


def demo(
    root: str | Path,
    *,
    quick: bool = True,
    device: str = "auto",
    quiet: bool = False,
    reuse: bool = True,
    tiny: bool = False,
) -> list[Run]:
    """Train (or reuse) the ``square``, ``grid`` and ``spiral`` runs under ``root/diffusion2d/`` and draw all
    (``tiny``: each shrunk to seconds, with small figures)."""
    dev = choose_device(device)
    runs = []
    for name in config.DEMO_RUNS:
        cfg = config.PRESETS[name].update(config.TINY) if tiny else config.PRESETS[name]
        run = reuse_or_create(LAB, cfg, root=root, name=name, reuse=reuse)
        if not run.finished:  # a run of the same config that was cut off continues from its last checkpoint
            train(cfg, run=run, device=str(dev), quiet=quiet, resume=run.last_checkpoint.exists())
        draw_figures(run, dev, tiny=tiny, quiet=quiet)
        runs.append(run)
    return runs
