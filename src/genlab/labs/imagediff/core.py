"""Train, open and evaluate an image diffusion run: library pieces wired together, no plotting."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from genlab.data.captions import CANVAS_TEMPLATES
from genlab.data.conditions import Conditioner
from genlab.data.images import ImageData, load_images
from genlab.diffusion import make_schedule
from genlab.diffusion.images import ImageSampler, Judge, at_resolution, tile_2x2, train_judge
from genlab.diffusion.prediction import target
from genlab.diffusion.schedules import Schedule
from genlab.errors import ConfigError
from genlab.labs.imagediff.config import PRESETS, ImageDiffConfig
from genlab.nn.autoencoder import ConvAutoencoder, encode_all
from genlab.nn.code_denoiser import CodeDenoiser, Space
from genlab.nn.unet import Cond, UNet
from genlab.runs import Run, choose_device, cpu_threads, reuse_or_create, seed_everything
from genlab.train import TrainConfig, fit, load_weights, make_optimizer, warmup_cosine

LAB = "imagediff"

_DATA: dict[tuple, ImageData] = {}


def resolution(cfg: ImageDiffConfig) -> int:
    """The image side the run works at (latent space: the autoencoder's 32x32)."""
    return 32 if cfg.space == "latent" else cfg.resolution


def load_data(cfg: ImageDiffConfig) -> ImageData:
    """The dataset at the run's resolution (cached per process)."""
    key = (cfg.dataset, cfg.train_limit, resolution(cfg))
    if key not in _DATA:
        d = load_images(cfg.dataset).subset(train=cfg.train_limit)
        _DATA[key] = ImageData(
            d.name, at_resolution(d.train_x, key[2]), d.train_y, at_resolution(d.test_x, key[2]), d.test_y, d.classes
        )
    return _DATA[key]


def conditioner(cfg: ImageDiffConfig, num_classes: int) -> Conditioner:
    if cfg.canvas == 2 and (cfg.cond != "text" or cfg.space != "pixel"):
        raise ConfigError(
            f"canvas=2 places digits by prompt: it needs cond=text and space=pixel (got cond={cfg.cond}, "
            f"space={cfg.space})"
        )
    canvas = cfg.canvas == 2
    return Conditioner.make(cfg.cond, cfg.dataset, num_classes, cfg.encoder, canvas=canvas, cross_attn=cfg.cross_attn)


def sample_shape(cfg: ImageDiffConfig) -> tuple[int, ...]:
    """One sample in model space: ``(code_dim,)`` or ``(1, side, side)`` (a canvas is twice the side)."""
    if cfg.space == "latent":
        return (cfg.code_dim,)
    return (1, cfg.canvas * cfg.resolution, cfg.canvas * cfg.resolution)


# ---------------------------------------------------------------------------------------------- spaces


def make_space(run: Run, cfg: ImageDiffConfig, data: ImageData, *, device: torch.device, quiet: bool = True) -> Space:
    """Pixel space, or the latent space of an autoencoder trained (once) in ``<run>/stages/ae``."""
    if cfg.space == "pixel":
        return Space("pixel")
    loop = TrainConfig(
        seed=cfg.seed + 7, steps=cfg.ae_steps, lr=2e-3, batch_size=128, log_every=50, threads=cfg.threads, amp=cfg.amp
    )
    sub = run.child("ae", loop, dataset=cfg.dataset, code_dim=cfg.code_dim, train_limit=cfg.train_limit)
    ae = ConvAutoencoder(cfg.code_dim)
    if sub.finished:
        load_weights(sub, ae, device=device)
    else:
        x = data.train_x

        def step_fn(m: nn.Module, batch: torch.Tensor) -> dict[str, Any]:
            return {"loss": m.loss(batch)}

        opt = make_optimizer(ae.parameters(), "adam", loop.lr)
        fit(
            sub,
            ae,
            opt,
            step_fn,
            lambda step: x[torch.randint(0, len(x), (128,))].to(device),
            cfg=loop,
            device=device,
            scheduler=warmup_cosine(opt, loop.steps, 50),
            quiet=quiet,
            desc="autoencoder",
        )
    ae.eval()
    codes = encode_all(ae.encoder, data.train_x.to(device))
    return Space("latent", ae, codes.mean(0), codes.std(0) + 1e-3)


# ---------------------------------------------------------------------------------------------- model


def make_model(cfg: ImageDiffConfig, cond: Conditioner) -> nn.Module:
    vec, tok = cond.dims
    if cfg.space == "latent":
        return CodeDenoiser(cfg.code_dim, cfg.latent_width, cfg.latent_depth, vec_dim=vec)
    if not cfg.widths:
        raise ConfigError("bad widths (); give the U-Net at least one level, e.g. --set widths=32,64,96")
    if max(cfg.attn, default=0) >= len(cfg.widths):
        raise ConfigError(f"bad attn levels {cfg.attn}; the U-Net has levels 0..{len(cfg.widths) - 1}")
    if cfg.resolution % 2 ** (len(cfg.widths) - 1):
        raise ConfigError(f"resolution {cfg.resolution} cannot be halved {len(cfg.widths) - 1} times; use fewer widths")
    return UNet(1, cfg.widths, cfg.blocks, cfg.attn, vec_dim=vec, token_dim=tok, coords=cfg.canvas == 2)


def schedule_of(cfg: ImageDiffConfig) -> Schedule:
    return make_schedule(cfg.schedule, T=cfg.T)


def budget_cosine(cfg: ImageDiffConfig):
    """Learning-rate factor: linear warm-up, then cosine decay to 10% over the steps *or* the time budget
    (``max_seconds``), whichever runs out first, so a time-limited run still ends at a low rate. (With a
    binding time budget the schedule depends on the machine's speed, like the number of steps reached.)"""
    t0 = time.perf_counter()

    def factor(step: int) -> float:
        if step < cfg.warmup:
            return (step + 1) / cfg.warmup
        done = (step - cfg.warmup) / max(1, cfg.steps - cfg.warmup)
        if cfg.max_seconds:
            done = max(done, (time.perf_counter() - t0) / cfg.max_seconds)
        return 0.1 + 0.45 * (1 + math.cos(math.pi * min(1.0, done)))

    return factor


def random_canvas_captions(cond: Conditioner, classes: torch.Tensor) -> torch.Tensor:
    """For canvases of digit classes ``classes`` ``(B, 4)``: a caption naming one or two random quadrants
    (even odds) in a random template, as indices into ``cond.canvas``."""
    n = len(classes)
    k = 1 + (torch.rand(n) < 0.5).long()
    order = torch.rand(n, 4).argsort(1)
    template = torch.randint(0, len(CANVAS_TEMPLATES), (n,))
    return torch.tensor(
        [
            cond.canvas.index([(int(q), int(classes[i, q])) for q in order[i, : k[i]]], int(template[i]))
            for i in range(n)
        ]
    )


def train(
    run: Run, cfg: ImageDiffConfig, *, device: torch.device, quiet: bool = False, resume: bool = False
) -> nn.Module:
    """Train the denoiser: a random image (or its code), a random training phrasing of its class, prompt
    dropout, v- (or eps- / x0-) prediction at a uniform random time."""
    t0 = time.perf_counter()
    data = load_data(cfg)
    cond = conditioner(cfg, data.num_classes)
    seed_everything(cfg.seed)  # the initial weights come from the seed too (fit seeds again before training)
    model = make_model(cfg, cond)
    schedule = schedule_of(cfg)
    x_all = make_space(run, cfg, data, device=device, quiet=quiet).encode(data.train_x.to(device))
    y_all = data.train_y.to(device)
    table, counts = cond.train_table() if cfg.cond == "text" else (None, None)
    t_min, b = schedule.t_min, cfg.batch_size

    def batches(step: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        if cfg.canvas == 2:  # four images per canvas, a prompt naming one or two of them
            idx = torch.randint(0, len(x_all), (b, 4))
            pick = random_canvas_captions(cond, y_all[idx.to(device)].cpu())
        else:  # one image, a random training phrasing of its class
            idx, pick = torch.randint(0, len(x_all), (b,)), torch.rand(b)
        drop = torch.rand(b) < cfg.p_uncond
        t = t_min + (1 - t_min) * torch.rand(b)
        return idx, pick, drop, t, torch.randn(b, *sample_shape(cfg))

    def step_fn(m: nn.Module, batch: Any) -> dict[str, Any]:
        idx, pick, drop, t, eps = batch
        x0, y = x_all[idx.to(device)], y_all[idx.to(device)]
        eps, t = eps.to(device), t.to(device)
        if cfg.canvas == 2:
            x0, c = tile_2x2(x0), cond.of_canvas(pick, device)
        elif cfg.cond == "text":
            yc = y.cpu()
            c = cond.of_captions(table[yc, (pick * counts[yc]).long()], device)
        else:
            c = cond.of_labels(y, device)
        if c is not None:
            c = c.dropped(drop.to(device))
        xt = schedule.perturb(x0, t, eps)
        return {"loss": ((m(xt, t, c).float() - target(cfg.prediction, schedule, x0, eps, t)) ** 2).mean()}

    opt = make_optimizer(model.parameters(), "adamw", cfg.lr, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, budget_cosine(cfg))
    res = fit(
        run,
        model,
        opt,
        step_fn,
        batches,
        cfg=cfg,
        device=device,
        scheduler=sched,
        quiet=quiet,
        resume=resume,
        desc="unet",
    )
    run.update_summary(
        {
            "train_steps_done": res.step,
            "train_seconds": round(res.seconds, 1),
            "train_wall_seconds": round(time.perf_counter() - t0, 1),
            "stopped_by_time": res.stopped_by_time,
            "parameters": sum(p.numel() for p in model.parameters()),
        }
    )
    return (res.ema if res.ema is not None else model).eval()


# ------------------------------------------------------------------------------------------- opened run


@dataclass
class Opened:
    """One trained run, ready for sampling and figures."""

    run: Run
    cfg: ImageDiffConfig
    data: ImageData
    cond: Conditioner
    model: nn.Module
    schedule: Schedule
    space: Space
    judge: Judge
    device: torch.device
    sampling: ImageSampler


def open_run(run: Run, device: torch.device, *, quiet: bool = True) -> Opened:
    cfg = run.config(ImageDiffConfig)
    if not run.last_checkpoint.exists():
        raise ConfigError(f"run {str(run.path)!r} has no checkpoint yet; train it first")
    data = load_data(cfg)
    cond = conditioner(cfg, data.num_classes)
    model = make_model(cfg, cond).eval()
    load_weights(run, model, device=device)
    space = make_space(run, cfg, data, device=device, quiet=quiet)
    judge = train_judge(
        run,
        data,
        steps=cfg.judge_steps,
        seed=cfg.seed + 11,
        threads=cfg.threads,
        device=device,
        quiet=quiet,
        dataset=cfg.dataset,
        resolution=cfg.resolution,
    )
    schedule = schedule_of(cfg)
    sampling = ImageSampler(
        model,
        schedule,
        space,
        cfg.prediction,
        sample_shape(cfg),
        device,
        cfg.guidance,
        cfg.sampler,
        cfg.sample_steps,
        cfg.clip_x0,
        cfg.amp,
    )
    return Opened(run, cfg, data, cond, model, schedule, space, judge, device, sampling)


def generate(o: Opened, cond: Cond | None, n: int, **kw: Any):
    """``n`` images in [0, 1] from the run's network (see :meth:`~genlab.diffusion.images.ImageSampler.generate`)."""
    return o.sampling.generate(cond, n, **kw)


def adherence(
    o: Opened,
    *,
    heldout: bool = False,
    guidance: float | None = None,
    per_class: int | None = None,
    seed: int = 0,
    **kw: Any,
) -> dict[str, Any]:
    """Share of prompted samples the judge assigns to the prompt's class (per class too), and the samples."""
    c, y = o.cond.eval_batch(per_class or o.cfg.eval_per_class, o.device, heldout)
    return o.judge.adherence(generate(o, c, len(y), guidance=guidance, seed=seed, **kw), y)


# -------------------------------------------------------------------------------------------------- demo

QUICK_NOTE = (
    "quick demo: 16x16 MNIST, MiniLM prompts, a 2.2 M-parameter U-Net for at most 3 minutes of "
    "training on one CPU thread; the full settings (28x28, 30 minutes) are one flag away (genlab "
    "imagediff train --preset full)"
)


def demo(
    root: str | Path,
    *,
    quick: bool = True,
    device: str = "auto",
    quiet: bool = False,
    reuse: bool = True,
    tiny: bool = False,
) -> list[Run]:
    """Train (or reuse) the demo run and draw every registered output."""
    from genlab.labs import draw_all

    cfg = PRESETS["tiny" if tiny else ("quick" if quick else "full")]
    dev = choose_device(device)
    run = reuse_or_create(LAB, cfg, root=root, name="tiny" if tiny else ("quick" if quick else "full"), reuse=reuse)
    if not run.finished:
        train(run, cfg, device=dev, quiet=quiet, resume=run.last_checkpoint.exists())
    if not (reuse and run.read_summary().get("figures_done")):
        with cpu_threads(cfg.threads if dev.type == "cpu" else 0):
            t0 = time.perf_counter()
            draw_all(LAB, open_run(run, dev, quiet=quiet), run)
            run.update_summary({"figures_wall_seconds": round(time.perf_counter() - t0, 1)})
        run.update_summary({"figures_done": True, "note": QUICK_NOTE if quick and not tiny else ""})
    return [run]


SAME = (
    "no: the course sampled a large pretrained text-to-image model; here a 2-3 M-parameter U-Net trained on MNIST "
    "with a pretrained MiniLM text encoder, so the goals are this project's own"
)


def key_metrics(runs: list[Run]) -> list[dict[str, Any]]:
    rows = []
    for run in runs:
        s = run.read_summary()
        if "quadrant_adherence_cross" in s:
            rows.append(
                {
                    "metric": "2x2 canvases, per-quadrant adherence: cross-attention vs pooled sentence vector",
                    "value": f"{s['quadrant_adherence_cross']} vs {s.get('quadrant_adherence_pooled')}",
                    "reference": "goal >= 0.80 with cross-attention",
                    "same": SAME,
                }
            )
        if "adherence_train" not in s:
            continue
        w = s.get("guidance")
        rows += [
            {
                "metric": f"prompt adherence, training phrasings (guidance {w})",
                "value": s["adherence_train"],
                "reference": "goal >= 0.85 (quick), >= 0.97 (full)",
                "same": SAME,
            },
            {
                "metric": "prompt adherence, held-out phrasings",
                "value": s.get("adherence_heldout", "-"),
                "reference": "goal >= 0.80 (quick)",
                "same": SAME,
                "reference_from": "any run",
            },
            {
                "metric": "Frechet distance (judge features) vs train-test floor",
                "value": f"{s.get('fd')} vs {s.get('fd_floor')}",
                "reference": "within 3x the floor (full)",
                "same": SAME,
            },
            {
                "metric": "classes among unprompted samples",
                "value": s.get("unprompted_classes", "-"),
                "reference": "all 10",
                "same": SAME,
                "reference_from": "any run",
            },
            {
                "metric": "training (steps in seconds)",
                "value": f"{s.get('train_steps_done')} in {s.get('train_wall_seconds')} s",
                "reference": "<= 240 s (quick)",
                "same": SAME,
                "reference_from": "any run",
            },
        ]
    return rows
