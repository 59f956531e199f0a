"""Image diffusion around any trained denoiser ``model(x, t, cond)``: image sizes, guided sampling, the judge.

* :func:`at_resolution` / :func:`to_judge`: ``(N, 1, 32, 32)`` images to the side a model works at and back;
  :func:`tile_2x2` / :func:`split_2x2`: four images to one 2x2 canvas and back.
* :class:`ImageSampler`: a trained network with its schedule, space (pixels or autoencoder codes) and sampling
  defaults; :meth:`ImageSampler.generate` draws images in [0, 1] with classifier-free guidance
  ``u + w (c - u)`` on the network output (one batched pass) and x0_hat optionally clipped at every step.
* :class:`Judge`: the sample-quality protocol. A small CNN trained on the real training images
  (:func:`train_judge`) scores samples: prompt adherence is the share it assigns to the prompt's class, and the
  Frechet distance of its features to real test images sits beside the train-vs-test floor.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from genlab.data.images import ImageData
from genlab.diffusion.prediction import to_eps
from genlab.diffusion.samplers import sample
from genlab.diffusion.schedules import Schedule
from genlab.errors import ConfigError
from genlab.nn.code_denoiser import Space
from genlab.nn.gan import JudgeCNN, frechet_distance, judge_outputs
from genlab.nn.unet import Cond
from genlab.runs import Run
from genlab.train import TrainConfig, autocast, fit, load_weights, make_optimizer

# ------------------------------------------------------------------------------------------------- sizes


def at_resolution(x: torch.Tensor, resolution: int) -> torch.Tensor:
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


def tile_2x2(x: torch.Tensor) -> torch.Tensor:
    """Four images per canvas ``(B, 4, C, R, R)`` (top left, top right, bottom left, bottom right) to one
    ``(B, C, 2R, 2R)`` canvas each."""
    top = torch.cat([x[:, 0], x[:, 1]], dim=-1)
    bottom = torch.cat([x[:, 2], x[:, 3]], dim=-1)
    return torch.cat([top, bottom], dim=-2)


def split_2x2(x: torch.Tensor) -> torch.Tensor:
    """The inverse of :func:`tile_2x2`: canvases ``(B, C, 2R, 2R)`` to their quadrants ``(B, 4, C, R, R)``."""
    r = x.shape[-1] // 2
    return torch.stack([x[..., :r, :r], x[..., :r, r:], x[..., r:, :r], x[..., r:, r:]], dim=1)


# ---------------------------------------------------------------------------------------------- sampling


@dataclass
class ImageSampler:
    """A trained denoiser ready to sample images (``shape`` is one sample in model space: ``(1, R, R)`` or
    ``(code_dim,)``), with its default guidance, sampler and steps."""

    model: nn.Module
    schedule: Schedule
    space: Space
    prediction: str
    shape: tuple[int, ...]
    device: torch.device
    guidance: float = 1.0
    sampler: str = "ddim"
    steps: int = 25
    clip_x0: bool = True
    amp: str = "off"

    def eps_fn(self, cond: Cond | None, guidance: float):
        """``eps_fn(x, t)`` for the samplers: classifier-free guidance ``u + w (c - u)`` on the network output
        (one batched pass), turned into eps, with x0_hat clipped to [-1, 1] when ``clip_x0`` (pixels only)."""
        model, schedule = self.model, self.schedule
        null = None if cond is None else cond.dropped(torch.ones(len(cond), dtype=torch.bool, device=self.device))

        def eps_fn(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
            with autocast(self.device, self.amp):  # the network in the training precision, the sampler in float32
                if cond is None or guidance == 0:
                    out = model(x, t, null)
                elif guidance == 1:
                    out = model(x, t, cond)
                else:
                    c, u = model(torch.cat([x, x]), torch.cat([t, t]), cond.cat(null)).float().chunk(2)
                    out = u + guidance * (c - u)
            out = out.float()
            clip = (-1.0, 1.0) if self.clip_x0 and self.space.kind == "pixel" else None
            return to_eps(self.prediction, schedule, x, t, out, clip)

        return eps_fn

    @torch.no_grad()
    def generate(
        self,
        cond: Cond | None,
        n: int,
        *,
        guidance: float | None = None,
        steps: int | None = None,
        sampler: str | None = None,
        seed: int = 0,
        noise: torch.Tensor | None = None,
        trajectory: bool = False,
        batch: int = 500,
    ):
        """``n`` images in [0, 1] ``(n, 1, R, R)`` (and the sampler's trajectory, in model space, when asked)."""
        w = self.guidance if guidance is None else guidance
        if w < 0:
            raise ConfigError(f"bad guidance {w}; it must be >= 0 (0 = unconditional, 1 = plain conditional)")
        if noise is None:
            noise = torch.randn((n, *self.shape), generator=torch.Generator().manual_seed(seed))
        gen = torch.Generator(device=self.device).manual_seed(seed + 1)
        outs, res = [], None
        for i in range(0, n, batch):
            c = None if cond is None else cond.index(torch.arange(i, min(n, i + batch), device=self.device))
            res = sample(
                self.eps_fn(c, w),
                self.schedule,
                sampler or self.sampler,
                noise=noise[i : i + batch],
                steps=steps or self.steps,
                t_end=self.schedule.t_min,
                generator=gen,
                device=self.device,
                return_trajectory=trajectory,
            )
            outs.append(res.x)
        x = self.space.decode(torch.cat(outs))
        return (x, res) if trajectory else x


# ------------------------------------------------------------------------------------------------- judge


@dataclass
class Judge:
    """A classifier trained on the real images ``data`` (at the model's side), scoring generated images."""

    net: nn.Module
    data: ImageData
    cache: dict[str, Any] = field(default_factory=dict)

    def __call__(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The judge's classes and features of model-side images in [0, 1]."""
        return judge_outputs(self.net, to_judge(x))

    def real_features(self, n: int) -> dict[str, torch.Tensor]:
        """Judge features of ``n`` real test and train images (cached)."""
        key = f"real{n}"
        if key not in self.cache:
            self.cache[key] = {"test": self(self.data.test_x[:n])[1], "train": self(self.data.train_x[:n])[1]}
        return self.cache[key]

    def frechet(self, feats: torch.Tensor) -> dict[str, float]:
        """Frechet distance of generated features to the test set, beside the train-vs-test floor."""
        real = self.real_features(len(feats))
        return {
            "fd": round(frechet_distance(feats, real["test"]), 3),
            "fd_floor": round(frechet_distance(real["train"], real["test"]), 3),
        }

    def accuracy(self, n: int = 2000) -> float:
        """Share of the first ``n`` real test images the judge classifies correctly."""
        pred, _ = self(self.data.test_x[:n])
        return round(float((pred == self.data.test_y[:n]).float().mean()), 4)

    def adherence(self, x: torch.Tensor, y: torch.Tensor) -> dict[str, Any]:
        """Share of samples ``x`` the judge assigns to their prompt's class ``y`` (overall and per class), with
        its verdicts and features."""
        pred, feats = self(x)
        ok = (pred == y).float()
        return {
            "adherence": round(float(ok.mean()), 4),
            "x": x,
            "y": y,
            "pred": pred,
            "feats": feats,
            "per_class": [round(float(ok[y == k].mean()), 3) for k in range(self.data.num_classes)],
        }

    def quadrant_adherence(self, canvases: torch.Tensor, named: torch.Tensor) -> dict[str, Any]:
        """Judge each quadrant of 2x2 canvases ``(N, 1, 2R, 2R)`` on its own: the share of named quadrants
        (``named`` ``(N, 4)``, -1 = free) it assigns to the named class, overall, per quadrant and for
        canvases that name two quadrants (both right), with its verdicts ``(N, 4)``."""
        n = len(canvases)
        pred, _ = self(split_2x2(canvases).flatten(0, 1))
        pred = pred.view(n, 4)
        named = named.to(pred.device)
        m = named >= 0
        ok = (pred == named) & m
        two = m.sum(1) == 2
        return {
            "adherence": round(float(ok.sum() / m.sum().clamp(min=1)), 4),
            "per_quadrant": [round(float(ok[:, q].sum() / m[:, q].sum().clamp(min=1)), 3) for q in range(4)],
            "both_right": round(float((ok.sum(1) == 2)[two].float().mean()), 4) if two.any() else None,
            "named": int(m.sum()),
            "pred": pred,
        }


def train_judge(
    run: Run,
    data: ImageData,
    *,
    steps: int,
    seed: int,
    threads: int,
    device: torch.device,
    quiet: bool = False,
    **identity: Any,
) -> Judge:
    """The judge: a :class:`~genlab.nn.gan.JudgeCNN` trained (once, in ``<run>/stages/judge``) on the real
    training images as the model sees them (``to_judge``); ``identity`` is recorded in the stage's config."""
    loop = TrainConfig(seed=seed, steps=steps, lr=1e-3, batch_size=128, log_every=50, threads=threads)
    sub = run.child("judge", loop, **identity)
    judge = JudgeCNN(data.num_classes)
    if sub.finished:
        load_weights(sub, judge, device=device)
        return Judge(judge.eval(), data)
    x, y = data.train_x, data.train_y

    def batches(step: int) -> tuple[torch.Tensor, torch.Tensor]:
        idx = torch.randint(0, len(x), (loop.batch_size,))
        return to_judge(x[idx]).to(device), y[idx].to(device)

    def step_fn(m: nn.Module, batch: Any) -> dict[str, Any]:
        return {"loss": F.cross_entropy(m(batch[0]), batch[1])}

    opt = make_optimizer(judge.parameters(), "adam", loop.lr)
    fit(sub, judge, opt, step_fn, batches, cfg=loop, device=device, quiet=quiet, desc="judge")
    return Judge(judge.eval(), data)
