"""Train, evaluate and open a 2D diffusion run: toy data, the MLP denoiser, a schedule and the samplers of
:mod:`genlab.diffusion` wired together; the sample sets and likelihoods the figures show (no plotting)."""

from __future__ import annotations

import functools
import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch

from genlab.data.toy2d import NUM_CLASSES, in_support, make_toy2d, region
from genlab.diffusion import (
    Schedule,
    data_prior,
    diffusion_step,
    elbo,
    energy_vs_floor,
    invert,
    make_schedule,
    model_eps_fn,
    ode_log_likelihood,
    prior_rows,
    sample,
)
from genlab.errors import ConfigError
from genlab.labs.diffusion2d import config
from genlab.labs.diffusion2d.config import LAB, REF_POINTS, TINY_SIZES, Diffusion2DConfig, FigureSizes
from genlab.nn.denoisers import MLPDenoiser
from genlab.runs import Run, choose_device, cpu_threads, reuse_or_create, seed_everything
from genlab.train import fit, load_weights, make_optimizer, warmup_cosine

GUIDANCE_SHOWN, GUIDANCE_TABLE = (0.0, 1.0, 3.0), (1.5, 2.0)  # guidance scales in the figure / only in the table
CLASS_POINTS = [(-0.66, 0.66), (-0.66, 0.66), (0.0, 0.0), (0.66, -0.66), (4.0, -2.0), (1.5, 1.5)]
CLASS_LABELS = [2, 6, 4, 6, 6, 8]  # the conditional run's ELBO points: the first right, the second wrong


def build_schedule(cfg: Diffusion2DConfig) -> Schedule:
    return make_schedule(
        cfg.schedule, k=cfg.k, eps=cfg.poly_eps, T=cfg.T, beta_start=cfg.beta_start, beta_end=cfg.beta_end
    )


def build_model(cfg: Diffusion2DConfig) -> MLPDenoiser:
    classes = NUM_CLASSES[cfg.dataset] if cfg.conditional else 0
    if cfg.conditional and not classes:
        raise ConfigError(
            f"dataset {cfg.dataset!r} has no classes; use --set dataset=grid (or rings, moons) "
            f"for a conditional model, or --set conditional=false"
        )
    return MLPDenoiser(
        2,
        cfg.hidden,
        cfg.depth,
        time_embedding=cfg.time_embedding,
        num_classes=classes,
        x_features=cfg.x_features,
        x_scale=cfg.x_scale,
        seed=cfg.seed,
    )


@dataclass
class Trained:
    """An opened run: its config, EMA network (eval mode), schedule, priors, and how big its figures are."""

    run: Run
    cfg: Diffusion2DConfig
    model: MLPDenoiser
    schedule: Schedule
    device: torch.device
    prior_mean: torch.Tensor  # (K, 2): row c for class c, the last row for all data (K = classes + 1, or 1)
    prior_std: torch.Tensor  # (K, 2)
    sizes: FigureSizes = field(default_factory=FigureSizes)
    quiet: bool = True  # progress bars of the companion models' training
    cache: dict = field(default_factory=dict)  # what @per_run functions computed for this run

    def prior(self, labels: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """The samplers' and likelihoods' ``prior_mean``/``prior_std`` for ``labels`` (None: all data)."""
        return prior_rows(self.prior_mean, self.prior_std, labels, self.device)

    def eps_fn(self, labels: torch.Tensor | None = None, guidance: float | None = None):
        g = self.cfg.guidance if guidance is None else guidance
        return model_eps_fn(self.model, labels, guidance=g)

    @property
    def classes(self) -> int:
        return self.model.num_classes

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
    return Trained(run, cfg, model, schedule, device, *prior, sizes=TINY_SIZES if tiny else FigureSizes(), quiet=quiet)


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
    x = data.x.to(device)
    y = data.y.to(device) if (cfg.conditional and data.y is not None) else None
    n, full = x.shape[0], cfg.batch_size >= x.shape[0]

    def batches(step: int):
        if full:
            return x, y
        idx = torch.randint(0, n, (cfg.batch_size,), device=device)
        return x[idx], (y[idx] if y is not None else None)

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
    build_model(cfg)  # a bad combination fails before a run folder is made
    dev = choose_device(device)
    run = run or Run.create(LAB, cfg, name=name, root=root, resume=resume)
    _, result = train_model(run, cfg, device=dev, quiet=quiet, resume=resume)
    run.update_summary(
        {
            "train_seconds": round(result.seconds, 2),
            "final_loss": result.last.get("loss"),
            "steps": cfg.steps,
            "device": str(dev),
        }
    )
    with cpu_threads(cfg.threads):
        evaluate(open_run(run, dev))
    return run


# ------------------------------------------------------------------------------------ samples and quality


def samples(
    tr: Trained,
    n: int,
    *,
    seed: int = 0,
    sampler: str | None = None,
    steps: int | None = None,
    grid: str = "uniform",
    labels: torch.Tensor | None = None,
    guidance: float | None = None,
    eta: float = 0.0,
    noise: torch.Tensor | None = None,
    trajectory: bool = False,
):
    """Sample ``n`` points (with ``labels`` for a conditional run; balanced over classes if not given)."""
    g = torch.Generator().manual_seed(seed)
    if noise is None:
        noise = torch.randn(n, 2, generator=g)
    if tr.classes and labels is None:
        labels = torch.arange(noise.shape[0]) % tr.classes
    eps_fn = tr.eps_fn(labels.to(tr.device) if labels is not None else None, guidance)
    if (tr.cfg.guidance if guidance is None else guidance) == 0:
        labels = None  # the label is ignored, so the start is the all-data Gaussian too
    return sample(
        eps_fn,
        tr.schedule,
        sampler or tr.cfg.sampler,
        noise=noise.to(tr.device),
        steps=steps or tr.cfg.sample_steps,
        grid=grid,
        eta=eta,
        generator=g,
        return_trajectory=trajectory,
        **tr.prior(labels),
    )


def quality(tr: Trained, x: torch.Tensor, labels: torch.Tensor | None = None, seed: int = 1000) -> dict:
    """Energy distance to fresh data beside its noise floor (:func:`genlab.diffusion.energy_vs_floor`), the
    share of samples on the data, and (with ``labels``) the share in their class's region."""
    x = x.detach().cpu()
    out = energy_vs_floor(x, lambda n, s: make_toy2d(tr.cfg.dataset, n, seed=tr.cfg.data_seed + s).x, seed=seed)
    out["in_support"] = float(in_support(tr.cfg.dataset, x).float().mean())
    if labels is not None:
        out["in_region"] = float((region(tr.cfg.dataset, x) == labels.cpu()).float().mean())
    return out


def rounded(q: dict, digits: int = 5) -> dict:
    return {k: round(v, digits) for k, v in q.items()}


def evaluate(tr: Trained) -> dict:
    """The headline quality numbers, with the run's default sampler and steps, into ``summary.json``."""
    t0 = time.perf_counter()
    res = samples(tr, tr.cfg.eval_n, seed=7)
    labels = torch.arange(tr.cfg.eval_n) % tr.classes if tr.classes else None
    vals = rounded(quality(tr, res.x, labels), 6)
    vals.update(
        {
            "eval_sampler": f"{tr.cfg.sampler}, {tr.cfg.sample_steps} steps, {tr.cfg.eval_n} samples",
            "sample_seconds": round(time.perf_counter() - t0, 2),
        }
    )
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


@per_run
def steps_sweep(tr: Trained) -> list[dict]:
    """Euler samples of one noise for every step count of ``sizes.sweep_steps``, on a uniform and an EDM grid."""
    n = tr.sizes.points
    noise = torch.randn(n, 2, generator=torch.Generator().manual_seed(3))
    out = []
    for grid in ("uniform", "edm"):
        for steps in tr.sizes.sweep_steps:
            x = samples(tr, n, sampler="euler", steps=steps, grid=grid, noise=noise).x.cpu()
            out.append({"grid": grid, "steps": steps, "x": x, "q": quality(tr, x)})
    return out


def companion(tr: Trained, schedule: str, k: float | None = None) -> Trained:
    """A model like the run's, trained half as long with another schedule (the child run
    ``<run>/stages/<schedule>``, reused once finished)."""
    cfg = tr.cfg.update(
        {"schedule": schedule, "steps": max(1, tr.cfg.steps // 2), **({"k": k} if k is not None else {})}
    )
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
    s = tr.sizes
    noise = torch.randn(s.points, 2, generator=torch.Generator().manual_seed(5))
    models = [tr, companion(tr, "ve-poly"), companion(tr, "ve-exp", k=2.0)]
    out: dict[str, list] = {"schedules": [], "samplers": []}
    for m in models:
        x = samples(m, s.points, sampler="euler", steps=s.euler_steps, noise=noise).x.cpu()
        out["schedules"].append(
            {
                "what": f"schedule {m.schedule.describe()}",
                "sampler": "euler",
                "steps": s.euler_steps,
                "x": x,
                "q": quality(m, x),
                "model": m,
            }
        )
    for name in ("heun", "ddim", "euler-maruyama", "ddpm"):
        x = samples(tr, s.points, sampler=name, steps=s.sampler_steps, noise=noise, seed=11).x.cpu()
        out["samplers"].append(
            {"what": f"sampler {name}", "sampler": name, "steps": s.sampler_steps, "x": x, "q": quality(tr, x)}
        )
    return out


@per_run
def guidance_sweep(tr: Trained) -> list[dict]:
    """Balanced conditional samples of one noise at every guidance scale shown or tabulated."""
    n, labels = tr.sizes.class_points, torch.arange(tr.sizes.class_points) % tr.classes
    noise = torch.randn(n, 2, generator=torch.Generator().manual_seed(6))
    out = []
    for w in sorted(set(GUIDANCE_SHOWN) | set(GUIDANCE_TABLE)):
        x = samples(tr, n, labels=labels, guidance=w, noise=noise, steps=tr.sizes.euler_steps).x.cpu()
        out.append({"guidance": w, "x": x, "labels": labels, "q": quality(tr, x, labels)})
    return out


def same_noise(tr: Trained):
    """One noise 10 times through the Euler ODE and through the Euler-Maruyama SDE, 4 Euler paths, and how far
    apart the 10 end points of each are."""
    steps = tr.sizes.path_steps
    z = torch.randn(1, 2, generator=torch.Generator().manual_seed(4)).repeat(10, 1)
    det = samples(tr, 10, sampler="euler", steps=steps, noise=z, trajectory=True)
    sto = samples(tr, 10, sampler="euler-maruyama", steps=steps, noise=z, seed=9, trajectory=True)
    z4 = torch.randn(4, 2, generator=torch.Generator().manual_seed(8))
    four = samples(tr, 4, sampler="euler", steps=steps, noise=z4, trajectory=True)
    spread_det = float((det.x - det.x[0]).abs().max())
    spread_sto = float((sto.x - sto.x.mean(0)).norm(dim=1).mean())
    return det, sto, four, spread_det, spread_sto


def class_paths(tr: Trained):
    """One Euler path per class from one noise z: started from the all-data prior, and from each class's."""
    z = torch.randn(1, 2, generator=torch.Generator().manual_seed(2)).repeat(tr.classes, 1).to(tr.device)
    labels = torch.arange(tr.classes)
    fn, steps = tr.eps_fn(labels.to(tr.device)), tr.sizes.class_path_steps
    return [
        sample(fn, tr.schedule, "euler", noise=z, steps=steps, return_trajectory=True, **tr.prior(lab))
        for lab in (None, labels)
    ]


# -------------------------------------------------------------------------------------------- likelihoods


def elbo_rows(tr: Trained, points, labels=None, n_mc: int = 1000, ode_steps: int = 100) -> list[dict]:
    """ELBO (+- standard error) and exact ODE log-density of ``points`` (scored with ``labels``)."""
    pts = torch.tensor(points, dtype=torch.float32, device=tr.device)
    lab = torch.tensor(labels, device=tr.device) if labels is not None else None
    fn = model_eps_fn(tr.model)  # guidance-free: the likelihood of the trained conditional model
    prior = tr.prior(lab)
    e = elbo(fn, tr.schedule, pts, cond=lab, n_mc=n_mc, generator=torch.Generator().manual_seed(0), **prior)
    ll = ode_log_likelihood(fn, tr.schedule, pts, cond=lab, steps=ode_steps, **prior)
    rows = []
    for i, p in enumerate(points):
        row = {"x": p[0], "y": p[1]}
        if labels is not None:
            row["class"] = int(labels[i])
            row["region"] = int(region(tr.cfg.dataset, pts[i : i + 1].cpu())[0])
        row.update(
            {
                "in_support": bool(in_support(tr.cfg.dataset, pts[i : i + 1].cpu())[0]),
                "elbo": round(float(e.elbo[i]), 4),
                "stderr": round(float(e.stderr[i]), 4),
                "ode_logp": round(float(ll.logp[i]), 4),
                "z": round(float((e.elbo[i] - ll.logp[i]) / e.stderr[i]), 2),
                "elbo_le_ode_plus_se": bool(e.elbo[i] <= ll.logp[i] + e.stderr[i]),
            }
        )
        rows.append(row)
    return rows


@per_run
def elbo_points(tr: Trained) -> list[dict]:
    """The reference points' rows: the lab's points, or (conditional) right and wrong classes."""
    points, labels = (CLASS_POINTS, CLASS_LABELS) if tr.classes else (list(REF_POINTS), None)
    return elbo_rows(tr, points, labels, n_mc=tr.sizes.elbo_mc, ode_steps=tr.sizes.ode_steps)


def elbo_plane(tr: Trained) -> dict:
    """ELBO and ODE log-density over a grid of [-2, 2]^2 (a conditional run scores each point with the class
    of its cell, or the nearest one), and how the two compare on the data."""
    s = tr.sizes
    lin = torch.linspace(-2.0, 2.0, s.plane)
    gx, gy = torch.meshgrid(lin, lin, indexing="xy")
    plane = torch.stack([gx.reshape(-1), gy.reshape(-1)], 1).to(tr.device)
    cond = None
    if tr.classes:
        cond = region(tr.cfg.dataset, plane.clamp(-1, 1).cpu()).clamp(min=0).to(tr.device)
    fn = model_eps_fn(tr.model)
    prior = tr.prior(cond)
    e = elbo(fn, tr.schedule, plane, cond=cond, n_mc=s.plane_mc, generator=torch.Generator().manual_seed(1), **prior)
    ll = ode_log_likelihood(fn, tr.schedule, plane, cond=cond, steps=s.ode_steps, **prior)
    inside = in_support(tr.cfg.dataset, plane.cpu())
    return {
        "elbo": e.elbo.reshape(s.plane, s.plane).numpy(),
        "ode": ll.logp.reshape(s.plane, s.plane).numpy(),
        "diff_in": (e.elbo - ll.logp)[inside],
        "over_in": ((e.elbo - ll.logp) > e.stderr)[inside],
    }


def elbo_summary(tr: Trained, rows: list[dict], plane: dict) -> dict:
    """summary.json's ELBO checks: in-distribution points above the others, ELBO <= ODE + se."""
    # in distribution: inside the data (and, for a conditional run, scored with the class of its region)
    fits = [r["in_support"] and r.get("class", -1) == r.get("region", -1) for r in rows]
    ins = [r["elbo"] for r, ok in zip(rows, fits) if ok]
    outs = [r["elbo"] for r, ok in zip(rows, fits) if not ok]
    d_in, over = plane["diff_in"], plane["over_in"]
    out = {
        "elbo_in_min": min(ins),
        "elbo_out_max": max(outs),
        "elbo_in_gt_out": bool(min(ins) > max(outs)),
        "elbo_le_ode_within_se_in_support": all(r["elbo_le_ode_plus_se"] for r, ok in zip(rows, fits) if ok),
        "elbo_le_ode_within_se_all": all(r["elbo_le_ode_plus_se"] for r in rows),
        "plane_elbo_minus_ode_mean_in_support": round(float(d_in.mean()), 4),
        "plane_elbo_minus_ode_sd_in_support": round(float(d_in.std()), 4),
        "plane_share_elbo_over_ode_plus_se_in_support": round(float(over.double().mean()), 4),
    }
    if tr.classes:
        out.update(
            {
                "elbo_right_class": rows[0]["elbo"],
                "elbo_wrong_class": rows[1]["elbo"],
                "elbo_right_gt_wrong": bool(rows[0]["elbo"] > rows[1]["elbo"]),
            }
        )
    return out


def invert_point(tr: Trained, target, steps: int) -> dict:
    """The noise that the Heun ODE sampler carries to ``target`` (class 0 for a conditional run), the path
    back from it, and how unlikely that noise is."""
    x0 = torch.tensor([target], dtype=torch.float32, device=tr.device)
    labels = torch.tensor([0], device=tr.device) if tr.classes else None
    fn, prior = tr.eps_fn(labels), tr.prior(labels)
    inv = invert(fn, tr.schedule, x0, steps=steps, method="heun", return_trajectory=True, **prior)
    back = sample(
        fn, tr.schedule, "heun", noise=inv.x, steps=steps, t_end=tr.schedule.t_min, return_trajectory=True, **prior
    )
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
