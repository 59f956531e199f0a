"""Train and evaluate the latent lab's parts, open a trained run, and the demo (no plotting here).

The autoencoder's weights are the run's own checkpoint; every later part trains in its sub-run
``<run>/stages/<part>`` (:meth:`Run.child`) with the same loop (:func:`genlab.train.fit`).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from genlab.data.images import ImageData, load_subset
from genlab.data.splits import label_draws, label_indices, random_batches
from genlab.io import atomic_write_json
from genlab.labs import draw_all
from genlab.labs.latent.config import PRESETS, QUICK_NOTE, LatentConfig
from genlab.nn.autoencoder import CodeClassifier, ConvAutoencoder, EncoderClassifier, encode_all, reconstruction_errors
from genlab.nn.few_label import CodeProbes, accuracy, augmented_codes, classify_step, draw_rows, frozen_codes
from genlab.nn.gan import JudgeCNN, LatentGAN, gan_batches, gan_step, judge_latent_gans
from genlab.runs import Run, choose_device, cpu_threads, reuse_or_create, seed_everything
from genlab.train import TrainConfig, fit, load_weights, make_optimizer, warmup_cosine

LAB = "latent"


def load_data(cfg: LatentConfig) -> ImageData:
    """The config's dataset, cut to ``train_limit`` / ``test_limit`` (cached)."""
    return load_subset(cfg.dataset, cfg.data_dir, cfg.train_limit, cfg.test_limit)


def loop_config(
    cfg: LatentConfig, steps: int, lr: float, batch_size: int, seed_offset: int = 0, eval_every: int = 0
) -> TrainConfig:
    """The loop settings of one part (its own steps / lr / batch / evaluations, the lab's seed, amp, threads...)."""
    return TrainConfig(
        seed=cfg.seed + seed_offset,
        steps=steps,
        lr=lr,
        batch_size=batch_size,
        amp=cfg.amp,
        log_every=min(cfg.log_every, max(1, steps)),
        eval_every=eval_every,
        threads=cfg.threads,
    )


def stage(
    run: Run, name: str, cfg: LatentConfig, loop: TrainConfig, model: nn.Module, *, device: torch.device, retrain: bool
) -> Run | None:
    """The sub-run to train part ``name`` in, or None when it already finished with these loop settings (then
    ``model`` holds its weights, in eval mode)."""
    old = Run(run.path / "stages" / name)
    done = not retrain and old.finished and old.config_path.is_file()
    if done and old.read_config_file().get("loop") == loop.to_dict():
        load_weights(old, model, device=device)
        model.eval()
        return None
    return run.child(name, cfg, loop=loop)


# -------------------------------------------------------------------------------------------- autoencoder


def make_autoencoder(cfg: LatentConfig) -> ConvAutoencoder:
    return ConvAutoencoder(cfg.code_dim, noise_sigma=cfg.noise_sigma)


def train_autoencoder(
    run: Run, cfg: LatentConfig, *, device: torch.device, quiet: bool = False, resume: bool = False
) -> ConvAutoencoder:
    """Train the (denoising) conv autoencoder with BCE; its checkpoint is the run's own."""
    data = load_data(cfg).to(device)
    seed_everything(cfg.seed)  # the initial weights too come from the seed
    model = make_autoencoder(cfg)
    opt = make_optimizer(model.parameters(), "adam", cfg.lr)
    sched = warmup_cosine(opt, cfg.steps, warmup=min(100, cfg.steps // 10))
    n = len(data.train_x)
    test = data.test_x[:2000]
    batches = random_batches(data.train_x, batch_size=cfg.batch_size)

    def step_fn(m: nn.Module, x: torch.Tensor) -> dict[str, Any]:
        return {"loss": F.binary_cross_entropy_with_logits(m(x), x)}

    def eval_fn(m: nn.Module) -> dict[str, float]:
        return {f"test_{k}": v for k, v in reconstruction_errors(m, test).items()}

    res = fit(
        run,
        model,
        opt,
        step_fn,
        batches,
        cfg=cfg,
        device=device,
        scheduler=sched,
        eval_fn=eval_fn,
        resume=resume,
        quiet=quiet,
        desc="autoencoder",
    )
    model.eval()
    run.update_summary(
        {
            "dataset": cfg.dataset,
            "train_images": n,
            "test_images": len(data.test_x),
            "ae_steps": cfg.steps,
            "ae_noise_sigma": cfg.noise_sigma,
            "ae_test_bce": round(res.last.get("test_bce", float("nan")), 5),
            "ae_test_mse": round(res.last.get("test_mse", float("nan")), 5),
            "ae_train_seconds": round(res.seconds, 1),
            "ae_images_per_second": round(cfg.steps * cfg.batch_size / max(res.seconds, 1e-9), 1),
        }
    )
    return model


def load_autoencoder(run: Run, device: torch.device) -> ConvAutoencoder:
    model = make_autoencoder(run.config(LatentConfig))
    load_weights(run, model, device=device)
    return model.eval()


# ------------------------------------------------------------------------------------------- few labels

SPREAD = "codes + label spreading (k-NN graph)"
AUGMENTED = "codes + MLP, augmented labelled images"


def _fit_classifier(
    run: Run,
    name: str,
    make: Callable[[], nn.Module],
    x: torch.Tensor,
    y: torch.Tensor,
    cfg: LatentConfig,
    loop: TrainConfig,
    device: torch.device,
    test: tuple[torch.Tensor, torch.Tensor] | None = None,
) -> nn.Module:
    """``make()`` (built after seeding) trained on the labelled ``(x, y)``, full batch or ``loop.batch_size`` random
    rows a step, in stage ``classify/<name>``; with ``test``, ``test_acc`` on those every ``loop.eval_every`` steps."""
    seed_everything(loop.seed)
    sub, model = run.child(f"classify/{name}", cfg, loop=loop), make()
    opt = make_optimizer(model.parameters(), "adamw", loop.lr, weight_decay=1e-4)
    x, y = x.to(device), y.to(device)
    score = None if test is None else lambda m: {"test_acc": accuracy(m, *test)}
    batches = random_batches(x, y, batch_size=loop.batch_size) if loop.batch_size < len(x) else lambda step: (x, y)
    fit(sub, model, opt, classify_step, batches, cfg=loop, device=device, quiet=True, eval_fn=score)
    return model.eval()


def results_path(run: Run, part: str = "classify") -> Path:
    """Where the few-label experiment (``classify``) or the architecture search (``search``) keeps its result rows
    (the tables and figures are drawn from them)."""
    return run.path / "stages" / part / "results.json"


def read_few_label(run: Run, part: str = "classify") -> dict[str, Any] | None:
    path = results_path(run, part)
    return json.loads(path.read_text()) if path.is_file() else None


def few_label_experiment(
    run: Run,
    ae: ConvAutoencoder,
    cfg: LatentConfig,
    *,
    device: torch.device,
    quiet: bool = False,
    schemes: tuple[str, ...] = ("first", "balanced"),
) -> dict[str, Any]:
    """Test accuracy of each method for each label draw: rows (mean and spread over draws), saved in the run
    (:func:`read_few_label`; the few_label figure draws them and puts their headline numbers in the summary)."""
    from tqdm.auto import tqdm

    data = load_data(cfg)
    label_indices(data.train_y, cfg.labels, "first", 0)  # checks N before any work
    (ztr, zte), scale = frozen_codes(ae.encoder, data.train_x, data.test_x)  # standardised on the training codes
    draws = label_draws(data.train_y, cfg.labels, schemes, cfg.draws, cfg.seed, data.num_classes)
    # one graph for every draw: a random subset of the training codes plus every labelled image of every draw
    probes = CodeProbes(ztr, zte, draws.values(), points=cfg.spread_points, k=cfg.spread_k, seed=cfg.seed)
    k, test_y = data.num_classes, data.test_y
    head, scratch = partial(CodeClassifier, cfg.code_dim, k), partial(EncoderClassifier, cfg.code_dim, k)
    results: dict[tuple[str, str], list[float]] = {}
    bar = tqdm(total=len(draws), desc="few-label", disable=quiet, leave=False)
    few = slice(0, cfg.curve_test or None)  # the test images scored along training (accuracy_per_epoch figure)
    for (scheme, d), idx in draws.items():
        yl = data.train_y[idx]
        curve = cfg.curve_points > 0 and (scheme, d) == ("first", 0)  # the report's draw: the first N images
        every = max(1, cfg.clf_steps // cfg.curve_points) if curve else 0
        loop = loop_config(cfg, cfg.clf_steps, 1e-3, len(idx), seed_offset=d, eval_every=every)
        test = (zte[few], test_y[few]) if curve else None
        mlp = _fit_classifier(run, f"{scheme}-{d}-codes", head, ztr[idx], yl, cfg, loop, device, test)
        acc = {"codes + MLP": accuracy(mlp, zte, test_y)}
        if cfg.augment:  # distorted copies of the labelled images through the frozen encoder (no other images)
            za, ya = augmented_codes(ae.encoder, data.train_x[idx], yl, cfg.augment, scale, seed=cfg.seed * 1000 + d)
            loop_a = loop_config(cfg, cfg.augment_steps, 1e-3, cfg.augment_batch or len(ya), seed_offset=d)
            aug = _fit_classifier(run, f"{scheme}-{d}-augmented", head, za, ya, cfg, loop_a, device)
            acc[AUGMENTED] = accuracy(aug, zte, test_y)
        acc.update({f"codes + {m}": a for m, a in probes.accuracies(idx, yl, test_y, k).items()})
        test = (data.test_x[few], test_y[few]) if curve else None
        end_to_end = _fit_classifier(
            run, f"{scheme}-{d}-scratch", scratch, data.train_x[idx], yl, cfg, loop, device, test
        )
        acc["from scratch: encoder + MLP"] = accuracy(end_to_end, data.test_x, test_y)
        labels = f"{'first' if scheme == 'first' else 'class-balanced'} {cfg.labels}"
        for name, a in acc.items():
            results.setdefault((labels, name), []).append(a)
        bar.update(1)
    bar.close()
    out = {
        "rows": draw_rows(results),
        "labels": cfg.labels,
        "draws": cfg.draws,
        "spread_k": cfg.spread_k,
        "graph_nodes": probes.nodes,
    }
    atomic_write_json(results_path(run), out)
    return out


# ------------------------------------------------------------------------------------------------- GANs


def train_gan(
    run: Run,
    ae: ConvAutoencoder,
    cfg: LatentConfig,
    *,
    conditional: bool,
    device: torch.device,
    quiet: bool = False,
    retrain: bool = False,
) -> LatentGAN:
    """Train a (conditional) GAN on the encoder's codes of the training images (non-saturating loss)."""
    name = "cgan" if conditional else "gan"
    steps = cfg.cgan_steps if conditional else cfg.gan_steps
    loop = loop_config(cfg, steps, cfg.gan_lr, cfg.gan_batch, seed_offset=7 if conditional else 3)
    data = load_data(cfg)
    seed_everything(loop.seed)
    gan = LatentGAN(cfg.noise_dim, cfg.code_dim, data.num_classes if conditional else 0)
    sub = stage(run, name, cfg, loop, gan, device=device, retrain=retrain)
    if sub is None:
        return gan
    codes = encode_all(ae.encoder, data.train_x).to(device)
    gan.set_code_stats(codes.cpu())
    gan.to(device)
    batches = gan_batches(gan, gan.normalise(codes), data.train_y.to(device), loop.batch_size)
    opts = {
        "g": make_optimizer(gan.generator.parameters(), "adam", cfg.gan_lr, betas=(0.5, 0.999)),
        "d": make_optimizer(gan.discriminator.parameters(), "adam", cfg.gan_lr, betas=(0.5, 0.999)),
    }
    step = partial(gan_step, matching=cfg.cgan_matching)
    res = fit(sub, gan, opts, step, batches, cfg=loop, device=device, manual=True, quiet=quiet, desc=name)
    run.update_summary(
        {
            f"{name}_steps": steps,
            f"{name}_train_seconds": round(res.seconds, 1),
            f"{name}_codes_per_second": round(steps * loop.batch_size / max(res.seconds, 1e-9), 1),
        }
    )
    return gan.eval()


# ------------------------------------------------------------------------------------------------ judge


def train_judge(
    run: Run, cfg: LatentConfig, *, device: torch.device, quiet: bool = False, retrain: bool = False
) -> JudgeCNN:
    """A small CNN classifier trained on the real training images (the judge of generated images)."""
    data = load_data(cfg)
    loop = loop_config(cfg, cfg.judge_steps, 1e-3, 128, seed_offset=11)
    seed_everything(loop.seed)
    judge = JudgeCNN(data.num_classes)
    sub = stage(run, "judge", cfg, loop, judge, device=device, retrain=retrain)
    if sub is None:
        return judge
    batches = random_batches(data.train_x.to(device), data.train_y.to(device), batch_size=loop.batch_size)

    def step_fn(m: nn.Module, batch: Any) -> dict[str, Any]:
        return {"loss": F.cross_entropy(m(batch[0]), batch[1])}

    opt = make_optimizer(judge.parameters(), "adam", loop.lr)
    fit(sub, judge, opt, step_fn, batches, cfg=loop, device=device, quiet=quiet, desc="judge")
    return judge.eval()


def judge_report(
    run: Run, ae: ConvAutoencoder, judge: JudgeCNN, cfg: LatentConfig, *, gan: LatentGAN | None, cgan: LatentGAN | None
) -> dict[str, Any]:
    """Judge accuracy on real test images, agreement with the requested digit for cGAN samples, and Frechet
    distances in the judge's feature space between 2000 real test images and as many generated / reconstructed
    ones (:func:`~genlab.nn.gan.judge_latent_gans`), rounded into the summary."""
    data = load_data(cfg)
    gen = torch.Generator(device="cpu").manual_seed(cfg.seed + 2)
    scores = judge_latent_gans(
        judge, ae, (data.test_x, data.test_y), data.train_x, gan=gan, cgan=cgan, n=2000, generator=gen
    )
    out: dict[str, Any] = {
        k: [round(a, 3) for a in v] if isinstance(v, list) else round(v, 3 if k.startswith("fd") else 4)
        for k, v in scores.items()
    }
    out["fd_note"] = (
        f"Frechet distances between Gaussians fitted to the judge's 128-d features of {out['fd_samples']} "
        "images each; fd_train_vs_test (real vs real) is the floor that sampling noise sets"
    )
    run.update_summary(out)
    return out


# ------------------------------------------------------------------------------------ opened run, demo


@dataclass
class Opened:
    """One trained run as the figure functions see it: config, data and every part trained so far."""

    run: Run
    cfg: LatentConfig
    data: ImageData
    ae: ConvAutoencoder
    gan: LatentGAN | None = None
    cgan: LatentGAN | None = None
    judge: JudgeCNN | None = None
    few_label: dict[str, Any] | None = None  # the few-label experiment's rows (read_few_label)
    search: dict[str, Any] | None = None  # the architecture search's rows (read_few_label(run, "search"))
    device: torch.device | None = None


def _load_stage(run: Run, name: str, model: nn.Module, device: torch.device) -> Any:
    """``model`` with the weights trained in stage ``name`` (None if that part is not trained yet)."""
    sub = Run(run.path / "stages" / name)
    if not sub.last_checkpoint.exists():
        return None
    load_weights(sub, model, device=device)
    return model.eval()


def open_run(run: Run, device: torch.device, cfg: LatentConfig | None = None) -> Opened:
    """Load a run's trained parts (``cfg``: the run's config with a verb's overrides, default the run's own)."""
    cfg = cfg or run.config(LatentConfig)
    data, ae = load_data(cfg), load_autoencoder(run, device)
    k = data.num_classes
    models = {"gan": LatentGAN(cfg.noise_dim, cfg.code_dim), "cgan": LatentGAN(cfg.noise_dim, cfg.code_dim, k)}
    models["judge"] = JudgeCNN(k)
    parts = {name: _load_stage(run, name, model, device) for name, model in models.items()}
    few, search = read_few_label(run), read_few_label(run, "search")
    return Opened(run, cfg, data, ae, **parts, few_label=few, search=search, device=device)


def run_all(run: Run, cfg: LatentConfig, *, device: torch.device, quiet: bool = False, reuse: bool = True) -> Opened:
    """Every part of the lab in order (reusing parts already trained when ``reuse``), then every output."""
    with cpu_threads(cfg.threads if device.type == "cpu" else 0):
        trained = reuse and run.finished
        if trained:
            ae = load_autoencoder(run, device)
        else:  # a cut-off run of this config (reuse_or_create checked it) continues from its last checkpoint
            resume = reuse and run.last_checkpoint.exists()
            ae = train_autoencoder(run, cfg, device=device, quiet=quiet, resume=resume)
        few = read_few_label(run) if reuse else None
        if few is None:
            few = few_label_experiment(run, ae, cfg, device=device, quiet=quiet)
        search = read_few_label(run, "search") if reuse else None  # the lab's demo runs it (classifiers.py)
        gan = train_gan(run, ae, cfg, conditional=False, device=device, quiet=quiet, retrain=not reuse)
        judge = train_judge(run, cfg, device=device, quiet=quiet, retrain=not reuse)
        cgan = train_gan(run, ae, cfg, conditional=True, device=device, quiet=quiet, retrain=not reuse)
        judge_report(run, ae, judge, cfg, gan=gan, cgan=cgan)
        opened = Opened(run, cfg, load_data(cfg), ae, gan, cgan, judge, few, search, device)
        draw_all(LAB, opened, run)
    return opened


def demo(
    root: str | Path,
    *,
    quick: bool = True,
    device: str = "auto",
    quiet: bool = False,
    reuse: bool = True,
    tiny: bool = False,
) -> list[Run]:
    """Train (or reuse) the run ``root/latent/quick`` (``full``, or ``tiny``: 8x8 digits, seconds) and write
    every figure and table."""
    name = "tiny" if tiny else "quick" if quick else "full"
    cfg = PRESETS[name]
    run = reuse_or_create(LAB, cfg, root=root, name=name, reuse=reuse)
    if name == "quick":
        run.update_summary({"note": QUICK_NOTE})
    run_all(run, cfg, device=choose_device(device), quiet=quiet, reuse=reuse)
    return [run]
