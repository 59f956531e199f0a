"""Train, open and evaluate an image diffusion run: library pieces wired together, no plotting."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from genlab.data.conditions import Conditioner
from genlab.data.images import ImageData, load_images
from genlab.diffusion import make_schedule, sample
from genlab.diffusion.prediction import target, to_eps
from genlab.diffusion.schedules import Schedule
from genlab.errors import ConfigError
from genlab.labs.imagediff.config import PRESETS, ImageDiffConfig
from genlab.nn.autoencoder import ConvAutoencoder, encode_all
from genlab.nn.code_denoiser import CodeDenoiser, Space
from genlab.nn.gan import JudgeCNN, frechet_distance, judge_outputs
from genlab.nn.unet import Cond, UNet
from genlab.runs import Run, choose_device, cpu_threads, reuse_or_create
from genlab.train import TrainConfig, autocast, fit, load_weights, make_optimizer, warmup_cosine

LAB = "imagediff"


# ------------------------------------------------------------------------------------------------- data

def prepare(x: torch.Tensor, resolution: int) -> torch.Tensor:
    """``(N, 1, 32, 32)`` images in [0, 1] at the model's side: 28 crops the padding, 16 / 8 average-pool."""
    if resolution == 28:
        return x[..., 2:30, 2:30].contiguous()
    if resolution < 32:
        return F.avg_pool2d(x, 32 // resolution)
    return x


def to_judge(x: torch.Tensor) -> torch.Tensor:
    """Model-side images in [0, 1] back to the judge's 32x32 (pad 28, upsample 16 / 8)."""
    if x.shape[-1] == 28:
        return F.pad(x, (2, 2, 2, 2))
    if x.shape[-1] < 32:
        return F.interpolate(x, size=32, mode="bilinear", align_corners=False)
    return x


_DATA: dict[tuple, ImageData] = {}


def resolution(cfg: ImageDiffConfig) -> int:
    """The image side the run works at (latent space: the autoencoder's 32x32)."""
    return 32 if cfg.space == "latent" else cfg.resolution


def load_data(cfg: ImageDiffConfig) -> ImageData:
    """The dataset at the run's resolution (cached per process)."""
    key = (cfg.dataset, cfg.train_limit, resolution(cfg))
    if key not in _DATA:
        d = load_images(cfg.dataset).subset(train=cfg.train_limit)
        _DATA[key] = ImageData(d.name, prepare(d.train_x, key[2]), d.train_y, prepare(d.test_x, key[2]),
                               d.test_y, d.classes)
    return _DATA[key]


def conditioner(cfg: ImageDiffConfig, num_classes: int) -> Conditioner:
    return Conditioner.make(cfg.cond, cfg.dataset, num_classes, cfg.encoder)


# ---------------------------------------------------------------------------------------------- spaces

def make_space(run: Run, cfg: ImageDiffConfig, data: ImageData, *, device: torch.device,
               quiet: bool = True) -> Space:
    """Pixel space, or the latent space of an autoencoder trained (once) in ``<run>/stages/ae``."""
    if cfg.space == "pixel":
        return Space("pixel")
    loop = TrainConfig(seed=cfg.seed + 7, steps=cfg.ae_steps, lr=2e-3, batch_size=128, log_every=50,
                       threads=cfg.threads, amp=cfg.amp)
    sub = run.child("ae", loop, dataset=cfg.dataset, code_dim=cfg.code_dim, train_limit=cfg.train_limit)
    ae = ConvAutoencoder(cfg.code_dim)
    if sub.finished:
        load_weights(sub, ae, device=device)
    else:
        x = data.train_x

        def step_fn(m: nn.Module, batch: torch.Tensor) -> dict[str, Any]:
            return {"loss": m.loss(batch)}

        opt = make_optimizer(ae.parameters(), "adam", loop.lr)
        fit(sub, ae, opt, step_fn, lambda step: x[torch.randint(0, len(x), (128,))].to(device), cfg=loop,
            device=device, scheduler=warmup_cosine(opt, loop.steps, 50), quiet=quiet, desc="autoencoder")
    ae.eval()
    codes = encode_all(ae.encoder, data.train_x.to(device))
    return Space("latent", ae, codes.mean(0), codes.std(0) + 1e-3)


# ---------------------------------------------------------------------------------------------- model

def make_model(cfg: ImageDiffConfig, cond: Conditioner) -> nn.Module:
    vec, tok = cond.dims
    if cfg.space == "latent":
        return CodeDenoiser(cfg.code_dim, cfg.latent_width, cfg.latent_depth, vec_dim=vec)
    if max(cfg.attn, default=0) >= len(cfg.widths):
        raise ConfigError(f"bad attn levels {cfg.attn}; the U-Net has levels 0..{len(cfg.widths) - 1}")
    if cfg.resolution % 2 ** (len(cfg.widths) - 1):
        raise ConfigError(f"resolution {cfg.resolution} cannot be halved {len(cfg.widths) - 1} times; use fewer "
                          f"widths")
    return UNet(1, cfg.widths, cfg.blocks, cfg.attn, vec_dim=vec, token_dim=tok)


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


def train(run: Run, cfg: ImageDiffConfig, *, device: torch.device, quiet: bool = False,
          resume: bool = False) -> nn.Module:
    """Train the denoiser: a random image (or its code), a random training phrasing of its class, prompt
    dropout, v- (or eps- / x0-) prediction at a uniform random time."""
    t0 = time.perf_counter()
    data = load_data(cfg)
    cond = conditioner(cfg, data.num_classes)
    model = make_model(cfg, cond)
    schedule = schedule_of(cfg)
    x_all = make_space(run, cfg, data, device=device, quiet=quiet).encode(data.train_x.to(device))
    y_all = data.train_y.to(device)
    table, counts = cond.train_table() if cfg.cond == "text" else (None, None)
    t_min = schedule.t_min

    def batches(step: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        idx = torch.randint(0, len(x_all), (cfg.batch_size,))
        pick = torch.rand(cfg.batch_size)
        drop = torch.rand(cfg.batch_size) < cfg.p_uncond
        t = t_min + (1 - t_min) * torch.rand(cfg.batch_size)
        return idx, pick, drop, t, torch.randn(cfg.batch_size, *x_all.shape[1:])

    def step_fn(m: nn.Module, batch: Any) -> dict[str, Any]:
        idx, pick, drop, t, eps = batch
        x0, y = x_all[idx.to(device)], y_all[idx.to(device)]
        eps, t = eps.to(device), t.to(device)
        if cfg.cond == "text":
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
    res = fit(run, model, opt, step_fn, batches, cfg=cfg, device=device, scheduler=sched, quiet=quiet,
              resume=resume, desc="unet")
    run.update_summary({"train_steps_done": res.step, "train_seconds": round(res.seconds, 1),
                        "train_wall_seconds": round(time.perf_counter() - t0, 1),
                        "stopped_by_time": res.stopped_by_time,
                        "parameters": sum(p.numel() for p in model.parameters())})
    return (res.ema if res.ema is not None else model).eval()


# ---------------------------------------------------------------------------------------------- judge

def train_judge(run: Run, cfg: ImageDiffConfig, data: ImageData, *, device: torch.device,
                quiet: bool = False) -> JudgeCNN:
    """The judge: a small CNN trained on the real training images as the model sees them (``to_judge``)."""
    loop = TrainConfig(seed=cfg.seed + 11, steps=cfg.judge_steps, lr=1e-3, batch_size=128, log_every=50,
                       threads=cfg.threads)
    sub = run.child("judge", loop, dataset=cfg.dataset, resolution=cfg.resolution)
    judge = JudgeCNN(data.num_classes)
    if sub.finished:
        load_weights(sub, judge, device=device)
        return judge.eval()
    x, y = data.train_x, data.train_y

    def batches(step: int) -> tuple[torch.Tensor, torch.Tensor]:
        idx = torch.randint(0, len(x), (loop.batch_size,))
        return to_judge(x[idx]).to(device), y[idx].to(device)

    def step_fn(m: nn.Module, batch: Any) -> dict[str, Any]:
        return {"loss": F.cross_entropy(m(batch[0]), batch[1])}

    fit(sub, judge, make_optimizer(judge.parameters(), "adam", loop.lr), step_fn, batches, cfg=loop,
        device=device, quiet=quiet, desc="judge")
    return judge.eval()


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
    judge: JudgeCNN
    device: torch.device
    cache: dict[str, Any] = field(default_factory=dict)


def open_run(run: Run, device: torch.device, *, quiet: bool = True) -> Opened:
    cfg = run.config(ImageDiffConfig)
    if not run.last_checkpoint.exists():
        raise ConfigError(f"run {str(run.path)!r} has no checkpoint yet; train it first")
    data = load_data(cfg)
    cond = conditioner(cfg, data.num_classes)
    model = make_model(cfg, cond)
    load_weights(run, model, device=device)
    space = make_space(run, cfg, data, device=device, quiet=quiet)
    judge = train_judge(run, cfg, data, device=device, quiet=quiet)
    return Opened(run, cfg, data, cond, model.eval(), schedule_of(cfg), space, judge, device)


# ------------------------------------------------------------------------------------------------ sampling

def guided_eps_fn(o: Opened, cond: Cond | None, guidance: float):
    """``eps_fn(x, t)`` for the samplers: classifier-free guidance ``u + w (c - u)`` on the network output
    (one batched pass), turned into eps, with x0_hat clipped to [-1, 1] when ``cfg.clip_x0``."""
    model, schedule, cfg = o.model, o.schedule, o.cfg
    null = None if cond is None else cond.dropped(torch.ones(len(cond), dtype=torch.bool, device=o.device))

    def eps_fn(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        with autocast(o.device, cfg.amp):  # the network in the training precision, the sampler in float32
            if cond is None or guidance == 0:
                out = model(x, t, null)
            elif guidance == 1:
                out = model(x, t, cond)
            else:
                c, u = model(torch.cat([x, x]), torch.cat([t, t]), cond.cat(null)).float().chunk(2)
                out = u + guidance * (c - u)
        out = out.float()
        clip = (-1.0, 1.0) if cfg.clip_x0 and o.space.kind == "pixel" else None
        return to_eps(cfg.prediction, schedule, x, t, out, clip)

    return eps_fn


@torch.no_grad()
def generate(o: Opened, cond: Cond | None, n: int, *, guidance: float | None = None, steps: int | None = None,
             sampler: str | None = None, seed: int = 0, noise: torch.Tensor | None = None,
             trajectory: bool = False, batch: int = 500):
    """``n`` images in [0, 1] ``(n, 1, R, R)`` (and the sampler's trajectory, in model space, when asked)."""
    cfg = o.cfg
    w = cfg.guidance if guidance is None else guidance
    if w < 0:
        raise ConfigError(f"bad guidance {w}; it must be >= 0 (0 = unconditional, 1 = plain conditional)")
    r = cfg.resolution
    shape = (n, cfg.code_dim) if o.space.kind == "latent" else (n, 1, r, r)
    if noise is None:
        noise = torch.randn(shape, generator=torch.Generator().manual_seed(seed))
    gen = torch.Generator(device=o.device).manual_seed(seed + 1)
    outs, res = [], None
    for i in range(0, n, batch):
        c = None if cond is None else cond.index(torch.arange(i, min(n, i + batch), device=o.device))
        res = sample(guided_eps_fn(o, c, w), o.schedule, sampler or cfg.sampler, noise=noise[i:i + batch],
                     steps=steps or cfg.sample_steps, t_end=o.schedule.t_min, generator=gen, device=o.device,
                     return_trajectory=trajectory)
        outs.append(res.x)
    x = o.space.decode(torch.cat(outs))
    return (x, res) if trajectory else x


# ---------------------------------------------------------------------------------------------- evaluation

def caption_batch(o: Opened, heldout: bool, per_class: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Caption indices cycling through each class's (training or held-out) phrasings, and their classes."""
    idx, ys = [], []
    for y in range(o.data.num_classes):
        pool = o.cond.captions.of(y, heldout)
        idx += [pool[k % len(pool)] for k in range(per_class)]
        ys += [y] * per_class
    return torch.tensor(idx), torch.tensor(ys)


def judged(o: Opened, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    return judge_outputs(o.judge, to_judge(x))


def adherence(o: Opened, *, heldout: bool = False, guidance: float | None = None, per_class: int | None = None,
              seed: int = 0, **kw: Any) -> dict[str, Any]:
    """Share of prompted samples the judge assigns to the prompt's class (per class too), and the samples."""
    per = per_class or o.cfg.eval_per_class
    if o.cond.kind == "text":
        idx, y = caption_batch(o, heldout, per)
        c = o.cond.of_captions(idx, o.device)
    else:
        y = torch.arange(o.data.num_classes).repeat_interleave(per)
        c = o.cond.of_labels(y, o.device)
    x = generate(o, c, len(y), guidance=guidance, seed=seed, **kw)
    pred, feats = judged(o, x)
    ok = (pred == y).float()
    return {"adherence": round(float(ok.mean()), 4), "x": x, "y": y, "pred": pred, "feats": feats,
            "per_class": [round(float(ok[y == k].mean()), 3) for k in range(o.data.num_classes)]}


def real_features(o: Opened, n: int) -> dict[str, torch.Tensor]:
    """Judge features of ``n`` real test and train images (cached on the opened run)."""
    key = f"real{n}"
    if key not in o.cache:
        o.cache[key] = {"test": judged(o, o.data.test_x[:n])[1], "train": judged(o, o.data.train_x[:n])[1]}
    return o.cache[key]


def frechet(o: Opened, feats: torch.Tensor) -> dict[str, float]:
    """Frechet distance of generated features to the test set, beside the train-vs-test floor."""
    real = real_features(o, len(feats))
    return {"fd": round(frechet_distance(feats, real["test"]), 3),
            "fd_floor": round(frechet_distance(real["train"], real["test"]), 3)}


def judge_accuracy(o: Opened) -> float:
    pred, _ = judged(o, o.data.test_x[:2000])
    return round(float((pred == o.data.test_y[:2000]).float().mean()), 4)


# -------------------------------------------------------------------------------------------------- demo

QUICK_NOTE = ("quick demo: 16x16 MNIST, MiniLM prompts, a 2.2 M-parameter U-Net for at most 3 minutes of "
              "training on one CPU thread; the full settings (28x28, 30 minutes) are one flag away (genlab "
              "imagediff train --preset full)")


def demo(root: str | Path, *, quick: bool = True, device: str = "auto", quiet: bool = False, reuse: bool = True,
         tiny: bool = False) -> list[Run]:
    """Train (or reuse) the demo run and draw every registered output."""
    from genlab.labs import draw_all

    cfg = PRESETS["tiny" if tiny else ("quick" if quick else "full")]
    dev = choose_device(device)
    run = reuse_or_create(LAB, cfg, root=root, name="tiny" if tiny else ("quick" if quick else "full"),
                          reuse=reuse)
    if not run.finished:
        train(run, cfg, device=dev, quiet=quiet, resume=run.last_checkpoint.exists())
    if not (reuse and run.read_summary().get("figures_done")):
        with cpu_threads(cfg.threads if dev.type == "cpu" else 0):
            t0 = time.perf_counter()
            draw_all(LAB, open_run(run, dev, quiet=quiet), run)
            run.update_summary({"figures_wall_seconds": round(time.perf_counter() - t0, 1)})
        run.update_summary({"figures_done": True, "note": QUICK_NOTE if quick and not tiny else ""})
    return [run]


def key_metrics(runs: list[Run]) -> list[dict[str, Any]]:
    rows = []
    for run in runs:
        s = run.read_summary()
        if "adherence_train" not in s:
            continue
        w = s.get("guidance")
        rows += [
            {"metric": f"prompt adherence, training phrasings (guidance {w})", "value": s["adherence_train"],
             "reference": "goal >= 0.85 (quick), >= 0.97 (full)"},
            {"metric": "prompt adherence, held-out phrasings", "value": s.get("adherence_heldout", "-"),
             "reference": "goal >= 0.80 (quick)"},
            {"metric": "Frechet distance (judge features) vs train-test floor",
             "value": f"{s.get('fd')} vs {s.get('fd_floor')}", "reference": "within 3x the floor (full)"},
            {"metric": "classes among unprompted samples", "value": s.get("unprompted_classes", "-"),
             "reference": "all 10"},
            {"metric": "training (steps in seconds)", "value": f"{s.get('train_steps_done')} in "
             f"{s.get('train_wall_seconds')} s", "reference": "<= 240 s (quick)"},
        ]
    return rows
