"""Lab 3: an MNIST autoencoder and its latent space.

A convolutional (denoising) autoencoder compresses 32x32 digits into 64 numbers. Then the lab asks what those
64 numbers are good for:

1. ``ae``: train the autoencoder; originals vs reconstructions; loss curves.
2. ``classify``: with only N = 50 labelled images, a classifier on the frozen codes against the same encoder +
   classifier trained from scratch on the same 50 images (and logistic regression / 1-NN on the codes, and
   label spreading over a k-NN graph of unlabelled codes), mean and spread over 5 label draws, for the
   first-N images and for class-balanced draws.
3. ``gan``: a GAN that generates codes (the discriminator sees encoder codes of real images); decoded samples.
4. ``cgan``: a conditional GAN (one-hot digit concatenated to the noise and to the discriminator input),
   a 10 x k grid, and a CNN *judge* trained on real images that says how often a sample is the requested digit
   and how far generated images are from real ones (Frechet distance in the judge's feature space).
5. ``interpolate``: paths between two encoded images (AE space) and between two noise vectors (GAN space).
6. ``figures``: every figure again from the trained parts, plus the theory made executable: the conv-stack
   size / receptive-field table (checked on real torch layers) and the judge's region importance
   (occlusion and input gradients).

The autoencoder's weights live in the run folder itself (``checkpoints/last.pt``); every later part is trained
in ``<run>/stages/<part>/`` with the same loop (:func:`genlab.train.fit`), and writes its figures, tables and
numbers into the run folder.
"""

from __future__ import annotations

import argparse
import shutil
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from genlab.cli import add_lab_parser, add_run_arg, add_train_args, config_from_args
from genlab.config import param
from genlab.data.images import DATASETS, ImageData, load_images
from genlab.errors import ConfigError
from genlab.nn.autoencoder import CodeClassifier, ConvAutoencoder, EncoderClassifier, encode_all
from genlab.nn.gan import (
    JudgeCNN,
    LatentGAN,
    discriminator_loss,
    frechet_distance,
    generator_loss,
    judge_outputs,
    matching_discriminator_loss,
)
from genlab.nn.label_spreading import LabelSpreading, nearest
from genlab.nn.receptive_field import EXAMPLE, EXAMPLE_STRIDE1_POOL, measured_geometry, stack_geometry
from genlab.runs import Run, atomic_write_json, choose_device, seed_everything
from genlab.train import TrainConfig, fit, load_weights, make_optimizer

TITLE = "Autoencoder latent space: few-label classifier, latent GAN, conditional GAN"
ORDER = 3
LAB = "latent"


@dataclass
class LatentConfig(TrainConfig):
    """Settings of every part of the lab. ``steps``, ``lr`` and ``batch_size`` are the autoencoder's."""

    steps: int = param(4000, "autoencoder optimisation steps (4000 x 128 = 8.5 epochs of MNIST)", min=0)
    lr: float = param(2e-3, "autoencoder learning rate (Adam, cosine decay)", min=0.0)
    dataset: str = param("mnist", "image dataset", choices=DATASETS)
    data_dir: str = param("", "folder with the 4 IDX files when dataset=idx")
    train_limit: int = param(0, "use only the first N training images (0 = all)", min=0)
    test_limit: int = param(0, "use only the first N test images (0 = all)", min=0)
    code_dim: int = param(64, "autoencoder code size", min=2)
    noise_sigma: float = param(0.35, "denoising autoencoder input noise std (0 = plain autoencoder)", min=0.0)
    labels: int = param(50, "labelled training images for the few-label classifier", min=1)
    draws: int = param(5, "label draws for the few-label table (mean and spread)", min=1)
    clf_steps: int = param(300, "steps of each few-label classifier (full batch of labelled images)", min=1)
    spread_points: int = param(20000, "training codes in the label-spreading graph (0 = all)", min=0)
    spread_k: int = param(10, "neighbours per point in the label-spreading graph", min=1)
    noise_dim: int = param(32, "GAN noise size", min=1)
    gan_steps: int = param(4000, "latent GAN steps", min=0)
    gan_lr: float = param(1e-3, "GAN learning rate (Adam, beta1 = 0.5; the reference used 2e-4)", min=0.0)
    gan_batch: int = param(256, "GAN batch size (codes)", min=1)
    cgan_steps: int = param(6000, "conditional GAN steps", min=0)
    cgan_matching: bool = param(True, "matching-aware cGAN discriminator (real codes + wrong class = fake)")
    judge_steps: int = param(1500, "steps of the judge CNN (batch 128)", min=0)
    grid_k: int = param(10, "samples per digit in the conditional grid", min=1)
    interp_steps: int = param(10, "frames in each interpolation row", min=2)


PRESETS: dict[str, LatentConfig] = {
    "full": LatentConfig(),
    "quick": LatentConfig(steps=400, train_limit=20000, clf_steps=100, spread_points=10000, gan_steps=1200,
                          cgan_steps=1800, judge_steps=250, eval_every=200, log_every=10),
    "tiny": LatentConfig(dataset="digits", steps=30, clf_steps=10, draws=2, gan_steps=30, cgan_steps=30,
                         judge_steps=20, grid_k=3, interp_steps=4, batch_size=64, log_every=5),
}
QUICK_NOTE = ("quick demo: autoencoder 400 steps on the first 20k training images, few-label classifiers 100 "
              "steps, label spreading over 10k codes, GAN 1200 / cGAN 1800 steps, judge 250 steps; the full "
              "settings are one flag away (genlab latent ae --preset full)")


# ------------------------------------------------------------------------------------------------- helpers

@lru_cache(maxsize=2)
def _cached_data(dataset: str, data_dir: str, train_limit: int, test_limit: int) -> ImageData:
    return load_images(dataset, data_dir or None).subset(train_limit, test_limit)


def load_data(cfg: LatentConfig) -> ImageData:
    """The config's dataset, cut to ``train_limit`` / ``test_limit``."""
    return _cached_data(cfg.dataset, cfg.data_dir, cfg.train_limit, cfg.test_limit)


def _loop_cfg(cfg: LatentConfig, steps: int, lr: float, batch_size: int, seed_offset: int = 0,
              eval_every: int = 0) -> TrainConfig:
    """The loop settings of one part (its own steps / lr / batch, the lab's seed, amp, logging)."""
    return TrainConfig(seed=cfg.seed + seed_offset, steps=steps, lr=lr, batch_size=batch_size, amp=cfg.amp,
                       log_every=min(cfg.log_every, max(1, steps)), eval_every=eval_every)


def stage_run(run: Run, stage: str, cfg: LatentConfig, loop: TrainConfig) -> Run:
    """The folder ``<run>/stages/<stage>`` in which one part trains (its checkpoint and metrics)."""
    sub = Run(run.path / "stages" / stage)
    sub.path.mkdir(parents=True, exist_ok=True)
    atomic_write_json(sub.config_path, {"lab": LAB, "stage": stage, "config": cfg.to_dict(),
                                        "loop": loop.to_dict()})
    return sub


def _finished(sub: Run, steps: int) -> bool:
    if not sub.last_checkpoint.exists():
        return False
    return int(sub.load_checkpoint().get("step", -1)) == steps


def _command(verb: str, run: Run, extra: str = "") -> str:
    return f"genlab latent {verb} --run {run.path}{extra}"


def _quick_note(cfg: LatentConfig) -> str:
    return f" ({QUICK_NOTE})" if cfg == PRESETS["quick"] else ""


def _as_np(images: torch.Tensor) -> np.ndarray:
    return images.detach().float().cpu().numpy()[:, 0]


def _show(ax, images: torch.Tensor, nrow: int, title: str = "") -> None:
    from genlab.plots import image_grid

    ax.imshow(image_grid(_as_np(images), nrow, pad=2, value=0.3), cmap="gray_r", vmin=0, vmax=1)
    ax.set_xticks([])
    ax.set_yticks([])
    ax.grid(False)
    for s in ax.spines.values():
        s.set_visible(False)
    if title:
        ax.set_title(title)


# -------------------------------------------------------------------------------------------- autoencoder

def make_autoencoder(cfg: LatentConfig) -> ConvAutoencoder:
    return ConvAutoencoder(cfg.code_dim, noise_sigma=cfg.noise_sigma)


def train_autoencoder(run: Run, cfg: LatentConfig, *, device: torch.device, quiet: bool = False,
                      resume: bool = False) -> ConvAutoencoder:
    """Train the (denoising) conv autoencoder with BCE; its checkpoint is the run's own."""
    data = load_data(cfg).to(device)
    seed_everything(cfg.seed)  # the initial weights too come from the seed
    model = make_autoencoder(cfg)
    opt = make_optimizer(model.parameters(), "adam", cfg.lr)
    from genlab.train import warmup_cosine

    sched = warmup_cosine(opt, cfg.steps, warmup=min(100, cfg.steps // 10))
    n = len(data.train_x)
    test = data.test_x[:2000]

    def batches(step: int) -> torch.Tensor:
        return data.train_x[torch.randint(n, (cfg.batch_size,), device=device)]

    def step_fn(m: nn.Module, x: torch.Tensor) -> dict[str, Any]:
        return {"loss": F.binary_cross_entropy_with_logits(m(x), x)}

    def eval_fn(m: nn.Module) -> dict[str, float]:
        logits = torch.cat([m(test[i:i + 500]) for i in range(0, len(test), 500)])
        return {"test_bce": F.binary_cross_entropy_with_logits(logits, test).item(),
                "test_mse": F.mse_loss(torch.sigmoid(logits), test).item()}

    res = fit(run, model, opt, step_fn, batches, cfg=cfg, device=device, scheduler=sched, eval_fn=eval_fn,
              resume=resume, quiet=quiet, desc="autoencoder")
    model.eval()
    run.update_summary({"dataset": cfg.dataset, "train_images": n, "test_images": len(data.test_x),
                        "ae_steps": cfg.steps, "ae_noise_sigma": cfg.noise_sigma,
                        "ae_test_bce": round(res.last.get("test_bce", float("nan")), 5),
                        "ae_test_mse": round(res.last.get("test_mse", float("nan")), 5),
                        "ae_train_seconds": round(res.seconds, 1),
                        "ae_images_per_second": round(cfg.steps * cfg.batch_size / max(res.seconds, 1e-9),
                                                      1)})
    return model


def load_autoencoder(run: Run, device: torch.device) -> tuple[ConvAutoencoder, LatentConfig]:
    cfg = run.config(LatentConfig)
    model = make_autoencoder(cfg)
    load_weights(run, model, device=device)
    return model.eval(), cfg


def figure_reconstructions(run: Run, ae: ConvAutoencoder, cfg: LatentConfig, n: int = 12) -> Path:
    """Originals, their noisy copies (what a denoising AE trains on), and reconstructions of both."""
    from genlab.plots import figure

    data = load_data(cfg)
    dev = next(ae.parameters()).device
    x = data.test_x[:n].to(dev)
    gen = torch.Generator(device="cpu").manual_seed(cfg.seed)
    sigma = cfg.noise_sigma or 0.35
    noisy = (x + sigma * torch.randn(x.shape, generator=gen).to(dev)).clamp(0, 1)
    with torch.no_grad():
        rec = ae.decode(ae.encode(x))
        rec_noisy = ae.decode(ae.encode(noisy))
    rows = [("original (test)", x), ("reconstruction", rec), (f"input + noise (sigma {sigma:g})", noisy),
            ("reconstruction of the noisy input", rec_noisy)]
    fig, axes = figure(len(rows), 1, size=(0.75 * n + 1, 1.05 * len(rows) + 0.6))
    for ax, (title, imgs) in zip(axes, rows):
        _show(ax, imgs, 1)
        ax.set_ylabel(title, rotation=0, ha="right", va="center", fontsize=9)
    err = ((rec - x) ** 2).mean((1, 2, 3)).cpu()
    kind = "denoising" if cfg.noise_sigma > 0 else "plain"
    fig.suptitle(f"Conv autoencoder ({kind}, {cfg.code_dim}-d code): test digits and reconstructions",
                 fontweight="bold")
    return run.save_figure(
        fig, "reconstructions",
        caption=(f"First {n} test images, their reconstructions through the {cfg.code_dim}-number code, the "
                 "same "
                 "images with Gaussian noise, and what the autoencoder makes of the noisy ones. Mean "
                 "squared "
                 f"pixel error of the clean reconstructions: {err.mean():.4f}.{_quick_note(cfg)}"),
        command=_command("figures", run),
        data={"mse_per_image": [round(float(e), 5) for e in err], "labels": data.test_y[:n].tolist()})


def figure_ae_loss(run: Run, cfg: LatentConfig) -> Path:
    from genlab.plots import loss_curves

    fig = loss_curves(run.read_metrics(), ["loss", "test_bce"], title="Autoencoder: BCE per pixel")
    return run.save_figure(fig, "ae_loss", caption=("Binary cross-entropy per pixel on training batches "
                                                    "(loss; "
                                                    "noisy inputs for a denoising model) and on 2000 clean "
                                                    "test "
                                                    f"images (test_bce).{_quick_note(cfg)}"),
                           command=_command("figures", run))


# ------------------------------------------------------------------------------------------ few labels

def label_indices(y: torch.Tensor, n: int, scheme: str, draw: int, seed: int = 0,
                  num_classes: int = 10) -> torch.Tensor:
    """Indices of the ``n`` labelled images of one draw.

    ``first``: draw 0 is the first ``n`` training images, draw d the d-th block of ``n`` after them.
    ``balanced``: ``n / classes`` random images of each class (the remainder to the lowest classes).
    """
    if n > len(y):
        raise ConfigError(f"labels={n} is larger than the training set ({len(y)} images); use --labels "
                          f"{len(y)} or fewer")
    if scheme == "first":
        start = (draw * n) % len(y)
        return (torch.arange(start, start + n) % len(y)).long()
    if scheme != "balanced":
        raise ConfigError(f"unknown label draw {scheme!r}; choose one of: first, balanced")
    gen = torch.Generator().manual_seed(seed * 1000 + draw)
    yc = y.cpu()
    out = []
    for c in range(num_classes):
        want = n // num_classes + (1 if c < n % num_classes else 0)
        pool = (yc == c).nonzero().flatten()
        if want > len(pool):
            raise ConfigError(f"labels={n} asks for {want} images of class {c} but the training set has "
                              f"{len(pool)}; use fewer labels")
        out.append(pool[torch.randperm(len(pool), generator=gen)[:want]])
    return torch.cat(out)


def _train_classifier(sub: Run, model: nn.Module, x: torch.Tensor, y: torch.Tensor, loop: TrainConfig, *,
                      device: torch.device, quiet: bool, weight_decay: float = 1e-4) -> nn.Module:
    """Full-batch cross-entropy training of ``model`` on the labelled (x, y) with the shared loop."""
    opt = make_optimizer(model.parameters(), "adamw", loop.lr, weight_decay=weight_decay)
    x, y = x.to(device), y.to(device)

    def step_fn(m: nn.Module, batch: Any) -> dict[str, Any]:
        logits = m(batch[0])
        return {"loss": F.cross_entropy(logits, batch[1]),
                "train_acc": (logits.argmax(1) == batch[1]).float().mean()}

    fit(sub, model, opt, step_fn, lambda step: (x, y), cfg=loop, device=device, quiet=True)
    return model.eval()


@torch.no_grad()
def _accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch: int = 2000) -> float:
    model.eval()
    dev = next(model.parameters()).device
    right = sum(int((model(x[i:i + batch].to(dev)).argmax(1).cpu() == y[i:i + batch].cpu()).sum())
                for i in range(0, len(x), batch))
    return right / max(1, len(x))


SPREAD = "codes + label spreading (k-NN graph)"
METHODS = ("codes + MLP", "codes + logistic regression", "codes + k-NN (cosine, k=1)", SPREAD,
           "from scratch: encoder + MLP")


def few_label_experiment(run: Run, ae: ConvAutoencoder, cfg: LatentConfig, *, device: torch.device,
                         quiet: bool = False, schemes: tuple[str, ...] = ("first", "balanced")) -> list[dict]:
    """Test accuracy of each method for each label draw; writes the table, a figure and the summary."""
    from sklearn.linear_model import LogisticRegression
    from tqdm.auto import tqdm

    data = load_data(cfg)
    label_indices(data.train_y, cfg.labels, "first", 0)  # checks N before any work
    codes_train = encode_all(ae.encoder, data.train_x).cpu()
    codes_test = encode_all(ae.encoder, data.test_x).cpu()
    mean, std = codes_train.mean(0), codes_train.std(0).clamp_min(1e-6)
    ztr, zte = (codes_train - mean) / std, (codes_test - mean) / std
    zte_unit = F.normalize(zte, dim=1)
    draws = {(s, d): label_indices(data.train_y, cfg.labels, s, d, cfg.seed, data.num_classes)
             for s in schemes for d in range(cfg.draws)}
    # one graph for every draw: a random subset of the training codes plus every labelled image of every draw
    gen = torch.Generator().manual_seed(cfg.seed)
    m = min(cfg.spread_points or len(ztr), len(ztr))
    nodes = torch.unique(torch.cat([torch.randperm(len(ztr), generator=gen)[:m], *draws.values()]))
    position = torch.full((len(ztr),), -1, dtype=torch.long)
    position[nodes] = torch.arange(len(nodes))
    graph = LabelSpreading(ztr[nodes], k=cfg.spread_k)
    test_nbrs = nearest(zte, ztr[nodes], cfg.spread_k)
    results: dict[tuple[str, str], list[float]] = {}
    bar = tqdm(total=len(schemes) * cfg.draws, desc="few-label", disable=quiet, leave=False)
    for scheme in schemes:
        for d in range(cfg.draws):
            idx = draws[(scheme, d)]
            xl, yl, zl = data.train_x[idx], data.train_y[idx], ztr[idx]
            loop = _loop_cfg(cfg, cfg.clf_steps, 1e-3, len(idx), seed_offset=d)
            seed_everything(loop.seed)
            head = _train_classifier(stage_run(run, f"classify/{scheme}-{d}-codes", cfg, loop),
                                     CodeClassifier(cfg.code_dim, data.num_classes), zl, yl, loop,
                                     device=device, quiet=quiet)
            acc = {"codes + MLP": _accuracy(head, zte, data.test_y)}
            logreg = LogisticRegression(C=1.0, max_iter=2000).fit(zl.numpy(), yl.numpy())
            right = logreg.predict(zte.numpy()) == data.test_y.numpy()
            acc["codes + logistic regression"] = float(right.mean())
            nearest1 = (zte_unit @ F.normalize(zl, dim=1).T).argmax(1)
            acc["codes + k-NN (cosine, k=1)"] = float((yl[nearest1] == data.test_y).float().mean())
            scores = graph.spread(position[idx], yl, data.num_classes)
            acc[SPREAD] = float((graph.predict(scores, test_nbrs) == data.test_y).float().mean())
            seed_everything(loop.seed)
            scratch = _train_classifier(stage_run(run, f"classify/{scheme}-{d}-scratch", cfg, loop),
                                        EncoderClassifier(cfg.code_dim, data.num_classes), xl, yl, loop,
                                        device=device, quiet=quiet)
            acc["from scratch: encoder + MLP"] = _accuracy(scratch, data.test_x, data.test_y)
            for m, a in acc.items():
                results.setdefault((scheme, m), []).append(a)
            bar.update(1)
    bar.close()
    rows = []
    for (scheme, m), accs in results.items():
        rows.append({"labels": f"{'first' if scheme == 'first' else 'class-balanced'} {cfg.labels}",
                     "method": m, "mean_test_acc": round(float(np.mean(accs)), 4),
                     "std": round(float(np.std(accs)), 4), "min": round(min(accs), 4),
                     "max": round(max(accs), 4),
                     "per_draw": " ".join(f"{a:.3f}" for a in accs)})
    caption = (
        f"Test accuracy ({len(data.test_x)} test images) with only {cfg.labels} labelled training images, "
        "mean "
        f"and spread over {cfg.draws} draws. 'first': draw d is training images [{cfg.labels}d, "
        f"{cfg.labels}(d+1)) (draw 0 = the first {cfg.labels}); 'class-balanced': "
        f"{cfg.labels // data.num_classes} random images per class. Codes come from the frozen encoder "
        "(trained "
        f"without labels on {len(data.train_x)} images) and are standardised. MLP, logistic regression and "
        f"1-NN see only the labelled codes; label spreading also uses the unlabelled codes ({len(nodes)} "
        f"training codes in a {cfg.spread_k}-NN graph; no labels beyond the {cfg.labels}). The from-scratch "
        f"model is the same encoder + MLP trained end to end on the labelled images only.{_quick_note(cfg)}")
    run.save_table(rows, "few_label", caption=caption)
    _figure_few_label(run, rows, cfg, caption)
    summary = {f"few_label/{r['labels']}/{r['method']}": {"mean": r["mean_test_acc"], "std": r["std"]}
               for r in rows}
    first = {r["method"]: r["mean_test_acc"] for r in rows if r["labels"].startswith("first")}
    best_codes = max(v for k, v in first.items() if k.startswith("codes"))
    summary.update({"few_label_labels": cfg.labels, "few_label_draws": cfg.draws,
                    "few_label_codes_mlp_first": first["codes + MLP"],
                    "few_label_best_codes_first": best_codes,
                    "few_label_spreading_first": first[SPREAD],
                    "few_label_scratch_first": first["from scratch: encoder + MLP"],
                    "frozen_codes_beat_scratch": bool(first["codes + MLP"]
                                                      > first["from scratch: encoder + MLP"])})
    run.update_summary(summary)
    return rows


def _figure_few_label(run: Run, rows: list[dict], cfg: LatentConfig, caption: str) -> Path:
    from genlab.plots import class_colors, figure

    groups = list(dict.fromkeys(r["labels"] for r in rows))
    methods = list(dict.fromkeys(r["method"] for r in rows))
    fig, ax = figure(size=(9, 4.4))
    width = 0.8 / len(methods)
    colors = class_colors(len(methods))
    for j, m in enumerate(methods):
        vals = [next(r for r in rows if r["labels"] == g and r["method"] == m) for g in groups]
        xs = np.arange(len(groups)) + (j - (len(methods) - 1) / 2) * width
        ax.bar(xs, [v["mean_test_acc"] for v in vals], width, yerr=[v["std"] for v in vals], capsize=3,
               color=colors[j], label=m)
        for x, v in zip(xs, vals):
            ax.text(x, v["mean_test_acc"] + v["std"] + 0.01, f"{v['mean_test_acc']:.2f}", ha="center",
                    fontsize=8)
    ax.set_xticks(range(len(groups)), [f"{g} labels" for g in groups])
    ax.set_ylim(0, 1.08)
    ax.set_ylabel("test accuracy")
    ax.axhline(0.1, color="grey", linestyle=":", linewidth=1)
    ax.set_title(f"{cfg.labels} labels: frozen autoencoder codes vs training from scratch")
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.1), ncol=3, fontsize=8)
    return run.save_figure(fig, "few_label", caption=caption, command=_command("classify", run),
                           data={"rows": rows})


# ------------------------------------------------------------------------------------------------ GANs

def _codes(ae: ConvAutoencoder, cfg: LatentConfig, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    data = load_data(cfg)
    return encode_all(ae.encoder, data.train_x).to(device), data.train_y.to(device)


def train_gan(run: Run, ae: ConvAutoencoder, cfg: LatentConfig, *, conditional: bool, device: torch.device,
              quiet: bool = False, retrain: bool = False) -> LatentGAN:
    """Train a (conditional) GAN on the encoder's codes of the training images (non-saturating loss)."""
    name = "cgan" if conditional else "gan"
    steps = cfg.cgan_steps if conditional else cfg.gan_steps
    loop = _loop_cfg(cfg, steps, cfg.gan_lr, cfg.gan_batch, seed_offset=7 if conditional else 3)
    data = load_data(cfg)
    seed_everything(loop.seed)
    gan = LatentGAN(cfg.noise_dim, cfg.code_dim, data.num_classes if conditional else 0)
    sub = stage_run(run, name, cfg, loop)
    if not retrain and _finished(sub, steps):
        load_weights(sub, gan, device=device)
        return gan.eval()
    codes, labels = _codes(ae, cfg, device)
    gan.set_code_stats(codes.cpu())
    gan.to(device)
    real_all = gan.normalise(codes)
    opts = {"g": make_optimizer(gan.generator.parameters(), "adam", cfg.gan_lr, betas=(0.5, 0.999)),
            "d": make_optimizer(gan.discriminator.parameters(), "adam", cfg.gan_lr, betas=(0.5, 0.999))}
    k = gan.num_classes

    def batches(step: int) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor, torch.Tensor | None]:
        i = torch.randint(len(real_all), (loop.batch_size,), device=device)
        u = torch.randn(loop.batch_size, cfg.noise_dim, device=device)
        y_fake = torch.randint(k, (loop.batch_size,), device=device) if k else None
        return real_all[i], (labels[i] if k else None), u, y_fake

    def step_fn(m: nn.Module, batch: Any) -> dict[str, float]:
        m = getattr(m, "module", m)
        real, y_real, u, y_fake = batch
        fake = m.generator(u, y_fake)
        d_real, d_fake = m.discriminator(real, y_real), m.discriminator(fake.detach(), y_fake)
        if k and cfg.cgan_matching:
            y_wrong = (y_real + torch.randint(1, k, y_real.shape, device=device)) % k
            d_loss = matching_discriminator_loss(d_real, d_fake, m.discriminator(real, y_wrong))
        else:
            d_loss = discriminator_loss(d_real, d_fake)
        opts["d"].zero_grad(set_to_none=True)
        d_loss.backward()
        opts["d"].step()
        g_loss = generator_loss(m.discriminator(fake, y_fake))
        opts["g"].zero_grad(set_to_none=True)
        g_loss.backward()
        opts["g"].step()
        return {"d_loss": d_loss.item(), "g_loss": g_loss.item(),
                "D(real)": torch.sigmoid(d_real).mean().item(),
                "D(fake)": torch.sigmoid(d_fake).mean().item()}

    res = fit(sub, gan, opts, step_fn, batches, cfg=loop, device=device, manual=True, quiet=quiet,
              desc=name)
    run.update_summary({f"{name}_steps": steps, f"{name}_train_seconds": round(res.seconds, 1),
                        f"{name}_codes_per_second": round(steps * loop.batch_size / max(res.seconds, 1e-9),
                                                          1)})
    return gan.eval()


def load_gan(run: Run, cfg: LatentConfig, conditional: bool, device: torch.device) -> LatentGAN | None:
    sub = Run(run.path / "stages" / ("cgan" if conditional else "gan"))
    if not sub.last_checkpoint.exists():
        return None
    gan = LatentGAN(cfg.noise_dim, cfg.code_dim, load_data(cfg).num_classes if conditional else 0)
    load_weights(sub, gan, device=device)
    return gan.eval()


@torch.no_grad()
def decode_codes(ae: ConvAutoencoder, codes: torch.Tensor) -> torch.Tensor:
    return torch.cat([ae.decode(codes[i:i + 1000]) for i in range(0, len(codes), 1000)])


def figure_gan_samples(run: Run, ae: ConvAutoencoder, gan: LatentGAN, cfg: LatentConfig, n: int = 64) -> Path:
    """Decoded GAN codes beside decoded codes drawn from a diagonal Gaussian fitted to the real codes."""
    from genlab.plots import figure

    dev = gan.code_mean.device
    gen = torch.Generator(device="cpu").manual_seed(cfg.seed)
    u = torch.randn(n, cfg.noise_dim, generator=gen).to(dev)
    g_imgs = decode_codes(ae, gan.sample_codes(u=u))
    gauss = gan.denormalise(torch.randn(n, cfg.code_dim, generator=gen).to(dev))
    n_imgs = decode_codes(ae, gauss)
    side = int(np.ceil(np.sqrt(n)))
    fig, axes = figure(1, 2, size=(10, 5.4))
    _show(axes[0], g_imgs, side, "Latent GAN: generated codes, decoded")
    _show(axes[1], n_imgs, side, "Baseline: codes ~ N(mean, diag std), decoded")
    return run.save_figure(
        fig, "gan_samples",
        caption=(f"Left: {n} codes from the latent GAN (noise {cfg.noise_dim} -> code {cfg.code_dim}, "
                 f"{cfg.gan_steps} steps), decoded by the frozen decoder. Right: codes drawn independently "
                 "per "
                 "dimension from a Gaussian with the real codes' mean and std: without the GAN the "
                 "dimensions' "
                 f"dependencies are lost and many decodings are not digits.{_quick_note(cfg)}"),
        command=_command("gan", run))


def figure_gan_losses(run: Run, cfg: LatentConfig, conditional: bool = False) -> Path | None:
    from genlab.plots import figure, loss_curves

    name = "cgan" if conditional else "gan"
    metrics = Run(run.path / "stages" / name).read_metrics()
    if not metrics:
        return None
    fig, axes = figure(1, 2, size=(11, 3.8))
    loss_curves(metrics, ["d_loss", "g_loss"], title=f"{name.upper()} losses (non-saturating)", ax=axes[0])
    loss_curves(metrics, ["D(real)", "D(fake)"], title="Discriminator output (probability 'real')",
                ax=axes[1])
    axes[1].set_ylabel("mean sigmoid(D)")
    axes[1].axhline(0.5, color="grey", linestyle=":", linewidth=1)
    return run.save_figure(
        fig, f"{name}_losses",
        caption=("Discriminator and generator losses, and the discriminator's mean probability of 'real' on "
                 "real and generated codes. At the equilibrium of a perfect generator D outputs 0.5 "
                 "everywhere "
                 f"and d_loss = 2 log 2 = 1.386.{_quick_note(cfg)}"),
        command=_command(name, run))


def figure_cgan_grid(run: Run, ae: ConvAutoencoder, gan: LatentGAN, cfg: LatentConfig,
                     digits: tuple[int, ...] = tuple(range(10)), judge: nn.Module | None = None) -> Path:
    """Rows of k decoded cGAN samples, one row per requested digit (with the judge's verdicts)."""
    from genlab.plots import figure

    dev = gan.code_mean.device
    k = cfg.grid_k
    gen = torch.Generator(device="cpu").manual_seed(cfg.seed + 1)
    y = torch.tensor(digits, device=dev).repeat_interleave(k)
    u = torch.randn(len(y), cfg.noise_dim, generator=gen).to(dev)
    imgs = decode_codes(ae, gan.sample_codes(y=y, u=u))
    fig, ax = figure(size=(0.62 * k + 1.6, 0.62 * len(digits) + 0.8))
    _show(ax, imgs, len(digits), f"Conditional latent GAN: {k} samples per requested digit")
    side = imgs.shape[-1] + 2
    agree = None
    if judge is not None:
        pred, _ = judge_outputs(judge, imgs)
        agree = (pred.view(len(digits), k) == torch.tensor(digits).view(-1, 1)).float().mean(1)
    classes = load_data(cfg).classes
    for r, dgt in enumerate(digits):
        ax.text(-3, 2 + r * side + side / 2, classes[dgt], ha="right", va="center", fontsize=11,
                fontweight="bold")
        if agree is not None:
            ax.text(k * side + 4, 2 + r * side + side / 2, f"judge {agree[r]:.0%}", ha="left", va="center",
                    fontsize=8, color="#0072B2")
    return run.save_figure(
        fig, "cgan_grid",
        caption=("Each row asks the conditional GAN for one class (one-hot label concatenated to the noise "
                 "and to "
                 f"the discriminator's input), {k} noise draws per row, decoded by the frozen decoder. "
                 "Right: how "
                 "many of the row's samples the judge CNN classifies as the requested "
                 f"class.{_quick_note(cfg)}"),
        command=_command("cgan", run, " --digits " + ",".join(map(str, digits))),
        data={"digits": list(digits),
              "judge_agreement_per_row": agree.tolist() if agree is not None else None})


# ------------------------------------------------------------------------------------------------ judge

def train_judge(run: Run, cfg: LatentConfig, *, device: torch.device, quiet: bool = False,
                retrain: bool = False) -> JudgeCNN:
    """A small CNN classifier trained on the real training images (the judge of generated images)."""
    data = load_data(cfg)
    loop = _loop_cfg(cfg, cfg.judge_steps, 1e-3, 128, seed_offset=11)
    seed_everything(loop.seed)
    judge = JudgeCNN(data.num_classes)
    sub = stage_run(run, "judge", cfg, loop)
    if not retrain and _finished(sub, loop.steps):
        load_weights(sub, judge, device=device)
        return judge.eval()
    tx, ty = data.train_x.to(device), data.train_y.to(device)
    opt = make_optimizer(judge.parameters(), "adam", loop.lr)

    def batches(step: int) -> tuple[torch.Tensor, torch.Tensor]:
        i = torch.randint(len(tx), (loop.batch_size,), device=device)
        return tx[i], ty[i]

    def step_fn(m: nn.Module, batch: Any) -> dict[str, Any]:
        return {"loss": F.cross_entropy(m(batch[0]), batch[1])}

    fit(sub, judge, opt, step_fn, batches, cfg=loop, device=device, quiet=quiet, desc="judge")
    return judge.eval()


def load_judge(run: Run, cfg: LatentConfig, device: torch.device) -> JudgeCNN | None:
    sub = Run(run.path / "stages" / "judge")
    if not sub.last_checkpoint.exists():
        return None
    judge = JudgeCNN(load_data(cfg).num_classes)
    load_weights(sub, judge, device=device)
    return judge.eval()


def judge_report(run: Run, ae: ConvAutoencoder, judge: JudgeCNN, cfg: LatentConfig, *,
                 gan: LatentGAN | None, cgan: LatentGAN | None, n: int = 2000) -> dict[str, Any]:
    """Judge accuracy on real test images, agreement with the requested digit for cGAN samples, and Frechet
    distances in the judge's feature space between real test images and generated / reconstructed ones."""
    data = load_data(cfg)
    dev = next(ae.parameters()).device
    pred, _ = judge_outputs(judge, data.test_x)
    out: dict[str, Any] = {"judge_test_accuracy": round(float((pred == data.test_y).float().mean()), 4)}
    n = min(n, len(data.test_x))
    _, real_feats = judge_outputs(judge, data.test_x[:n])
    gen = torch.Generator(device="cpu").manual_seed(cfg.seed + 2)
    with torch.no_grad():
        rec = decode_codes(ae, encode_all(ae.encoder, data.test_x[:n]))
    rpred, rfeats = judge_outputs(judge, rec)
    out["judge_accuracy_on_reconstructions"] = round(float((rpred == data.test_y[:n]).float().mean()), 4)
    out["fd_reconstructions_vs_test"] = round(frechet_distance(rfeats, real_feats), 3)
    _, trfeats = judge_outputs(judge, data.train_x[:n])
    out["fd_train_vs_test"] = round(frechet_distance(trfeats, real_feats), 3)
    if gan is not None:
        imgs = decode_codes(ae, gan.sample_codes(u=torch.randn(n, cfg.noise_dim, generator=gen).to(dev)))
        _, f = judge_outputs(judge, imgs)
        out["fd_gan_vs_test"] = round(frechet_distance(f, real_feats), 3)
        gauss = gan.denormalise(torch.randn(n, cfg.code_dim, generator=gen).to(dev))
        _, f = judge_outputs(judge, decode_codes(ae, gauss))
        out["fd_diag_gaussian_codes_vs_test"] = round(frechet_distance(f, real_feats), 3)
    if cgan is not None:
        y = torch.arange(data.num_classes).repeat_interleave(int(np.ceil(n / data.num_classes)))[:n]
        imgs = decode_codes(ae, cgan.sample_codes(y=y.to(dev), u=torch.randn(len(y), cfg.noise_dim,
                                                                                generator=gen).to(dev)))
        p, f = judge_outputs(judge, imgs)
        out["cgan_judge_agreement"] = round(float((p == y).float().mean()), 4)
        out["cgan_judge_agreement_per_class"] = [round(float((p[y == c] == c).float().mean()), 3)
                                                 for c in range(data.num_classes)]
        out["fd_cgan_vs_test"] = round(frechet_distance(f, real_feats), 3)
    out["fd_samples"] = n
    out["fd_note"] = (f"Frechet distances between Gaussians fitted to the judge's 128-d features of {n} "
                      "images each; fd_train_vs_test (real vs real) is the floor that sampling noise sets")
    run.update_summary(out)
    return out


def figure_importance(run: Run, judge: JudgeCNN, cfg: LatentConfig, n: int = 5, patch: int = 8,
                      stride: int = 2) -> Path:
    """Which pixels the judge's prediction depends on: occlusion and input gradients for ``n`` test images."""
    from genlab.plots import figure

    data = load_data(cfg)
    dev = next(judge.parameters()).device
    x = data.test_x[:n].to(dev)
    judge.eval()
    with torch.no_grad():
        probs = F.softmax(judge(x), 1)
    pred = probs.argmax(1)
    occ = occlusion_map(judge, x, pred, patch=patch, stride=stride)
    grad = gradient_map(judge, x, pred)
    fig, axes = figure(3, n, size=(2.0 * n + 0.6, 6.6), squeeze=False)
    for i in range(n):
        img = x[i, 0].cpu().numpy()
        axes[0, i].imshow(img, cmap="gray_r", vmin=0, vmax=1)
        axes[0, i].set_title(f"judge: {data.classes[int(pred[i])]} ({probs[i, pred[i]]:.0%})", fontsize=9)
        lim = float(np.abs(occ[i]).max()) or 1.0
        im1 = axes[1, i].imshow(occ[i], cmap="RdBu_r", vmin=-lim, vmax=lim)
        axes[1, i].contour(img, levels=[0.5], colors="k", linewidths=0.5)
        im2 = axes[2, i].imshow(grad[i], cmap="magma")
        axes[2, i].contour(img, levels=[0.5], colors="w", linewidths=0.5)
        fig.colorbar(im1, ax=axes[1, i], fraction=0.046, pad=0.02)
        fig.colorbar(im2, ax=axes[2, i], fraction=0.046, pad=0.02)
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
        ax.grid(False)
    axes[1, 0].set_ylabel(f"occlusion\n(drop in p, {patch}x{patch})")
    axes[2, 0].set_ylabel("|input gradient|")
    fig.suptitle("Which regions the judge's prediction depends on", fontweight="bold")
    return run.save_figure(
        fig, "importance",
        caption=(f"Top: test images and the judge's prediction. Middle: occlusion, the drop in the predicted "
                 f"class's probability when a {patch}x{patch} patch around each pixel is set to 0 (averaged "
                 "over "
                 f"the patches, stride {stride}, that cover it); red = the region supports the prediction, "
                 "blue = "
                 "hiding it makes the prediction more confident. Bottom: |d logit / d pixel| (saliency), a "
                 "local, "
                 f"first-order view of the same question.{_quick_note(cfg)}"),
        command=_command("figures", run))


@torch.no_grad()
def occlusion_map(model: nn.Module, x: torch.Tensor, target: torch.Tensor, *, patch: int = 8,
                  stride: int = 2, fill: float = 0.0) -> np.ndarray:
    """Per-pixel mean drop of ``p(target)`` when a ``patch`` x ``patch`` square over it is set to ``fill``.

    All occluded copies of one image go through the model as one batch (no loop over positions in Python
    beyond building the masks once).
    """
    _, _, h, w = x.shape
    ys = list(range(0, h - patch + 1, stride))
    xs = list(range(0, w - patch + 1, stride))
    masks = torch.zeros(len(ys) * len(xs), 1, h, w, device=x.device)
    for k, (a, b) in enumerate((a, b) for a in ys for b in xs):
        masks[k, 0, a:a + patch, b:b + patch] = 1
    cover = masks.sum(0)[0].clamp_min(1)
    out = []
    for i in range(len(x)):
        base = F.softmax(model(x[i:i + 1]), 1)[0, target[i]]
        occluded = x[i:i + 1] * (1 - masks) + fill * masks
        p = F.softmax(model(occluded), 1)[:, target[i]]
        drop = (base - p).view(-1, 1, 1, 1)
        out.append(((drop * masks).sum(0)[0] / cover).cpu().numpy())
    return np.stack(out)


def gradient_map(model: nn.Module, x: torch.Tensor, target: torch.Tensor) -> np.ndarray:
    """``|d logit_target / d x|`` per pixel (vanilla saliency)."""
    x = x.clone().requires_grad_(True)
    logits = model(x)
    logits.gather(1, target.view(-1, 1)).sum().backward()
    return x.grad.abs()[:, 0].cpu().numpy()


# ----------------------------------------------------------------------------------------- interpolation

@torch.no_grad()
def interpolation_rows(ae: ConvAutoencoder, gan: LatentGAN, cfg: LatentConfig, pair: tuple[int, int],
                       steps: int) -> dict[str, torch.Tensor]:
    """Three rows of ``steps`` images: pixel blend, AE code path, and GAN noise path."""
    data = load_data(cfg)
    dev = gan.code_mean.device
    for i in pair:
        if not 0 <= i < len(data.test_x):
            raise ConfigError(f"test image index {i} is out of range; use 0..{len(data.test_x) - 1}")
    t = torch.linspace(0, 1, steps, device=dev).view(-1, 1)
    a, b = data.test_x[pair[0]].to(dev), data.test_x[pair[1]].to(dev)
    za, zb = ae.encode(torch.stack([a, b]))
    gen = torch.Generator(device="cpu").manual_seed(cfg.seed + 5)
    u = torch.randn(2, cfg.noise_dim, generator=gen).to(dev)
    return {"pixels": (1 - t.view(-1, 1, 1, 1)) * a + t.view(-1, 1, 1, 1) * b,
            "ae": ae.decode((1 - t) * za + t * zb),
            "gan": ae.decode(gan.sample_codes(u=(1 - t) * u[0] + t * u[1]))}


@torch.no_grad()
def midpoint_confidence(ae: ConvAutoencoder, gan: LatentGAN, judge: JudgeCNN, cfg: LatentConfig,
                        pairs: int = 200) -> dict[str, float]:
    """Judge's mean top probability at path midpoints over many random pairs (how digit-like they are)."""
    data = load_data(cfg)
    dev = gan.code_mean.device
    gen = torch.Generator(device="cpu").manual_seed(cfg.seed + 6)
    i = torch.randint(len(data.test_x), (pairs, 2), generator=gen)
    z = encode_all(ae.encoder, data.test_x[i.flatten()]).view(pairs, 2, -1)
    mid_ae = ae.decode((z[:, 0] + z[:, 1]) / 2)
    u = torch.randn(pairs, 2, cfg.noise_dim, generator=gen).to(dev)
    mid_gan = ae.decode(gan.sample_codes(u=(u[:, 0] + u[:, 1]) / 2))
    ends = ae.decode(z[:, 0])
    conf = {}
    for name, imgs in (("ae_endpoint", ends), ("ae_midpoint", mid_ae), ("gan_midpoint", mid_gan)):
        judge.eval()
        top = F.softmax(judge(imgs.to(dev)), 1).max(1).values
        conf[f"judge_confidence_{name}"] = round(float(top.mean()), 4)
    return conf


def figure_interpolation(run: Run, ae: ConvAutoencoder, gan: LatentGAN, cfg: LatentConfig,
                         pair: tuple[int, int] = (0, 1), judge: JudgeCNN | None = None) -> Path:
    from genlab.plots import figure

    rows = interpolation_rows(ae, gan, cfg, pair, cfg.interp_steps)
    titles = {"pixels": "pixel blend (reference)", "ae": "AE code space", "gan": "GAN noise space"}
    fig, axes = figure(len(rows), 1, size=(0.95 * cfg.interp_steps + 1.8, 1.25 * len(rows) + 0.8))
    verdicts = {}
    for ax, (key, imgs) in zip(axes, rows.items()):
        _show(ax, imgs, 1)
        ax.set_ylabel(titles[key], rotation=0, ha="right", va="center", fontsize=9)
        if judge is not None:
            with torch.no_grad():
                p = F.softmax(judge(imgs), 1)
            conf, cls = p.max(1)
            verdicts[key] = [(int(c), round(float(v), 3)) for c, v in zip(cls, conf)]
            side = imgs.shape[-1] + 2
            for j, (c, v) in enumerate(zip(cls, conf)):
                ax.text(2 + j * side + side / 2, side + 5, f"{c.item()} {v:.0%}", ha="center", va="top",
                        fontsize=7,
                        color="#0072B2")
    fig.suptitle(f"Interpolation in {cfg.interp_steps} steps: test images #{pair[0]} -> #{pair[1]}, "
                 f"and two noise vectors", fontweight="bold")
    extra = {}
    if judge is not None:
        extra = midpoint_confidence(ae, gan, judge, cfg)
        run.update_summary({f"interp_{k}": v for k, v in extra.items()})
    note = ""
    if extra:
        note = (" Over 200 random pairs the judge's mean confidence is "
                f"{extra['judge_confidence_ae_midpoint']:.2f} "
                f"at AE-space midpoints, {extra['judge_confidence_gan_midpoint']:.2f} at GAN-space midpoints "
                f"(and {extra['judge_confidence_ae_endpoint']:.2f} on reconstructions of real images).")
    return run.save_figure(
        fig, "interpolation",
        caption=("Top: blending the two images' pixels. Middle: decoding (1 - t) E(a) + t E(b), straight "
                 "between "
                 "the two codes. Bottom: decoding G((1 - t) u0 + t u1), straight between two noise vectors; "
                 "the "
                 "generator maps the whole path into the region of real codes. Small numbers: the judge's "
                 "digit "
                 f"and confidence per frame.{note}{_quick_note(cfg)}"),
        command=_command("interpolate", run, f" --pair {pair[0]},{pair[1]}"),
        data={"pair": list(pair), "judge": verdicts, **extra})


# ------------------------------------------------------------------------------------------------ theory

def table_receptive_field(run: Run, size: int = 128) -> list[dict]:
    """The conv3, conv3, maxpool2, conv3, conv5 stack on 128x128: formula vs measurement on torch layers."""
    rows = []
    for label, stack in (("MaxPool2d(2) (stride 2, PyTorch default)", EXAMPLE),
                         ("MaxPool2d(2, stride=1)", EXAMPLE_STRIDE1_POOL)):
        geo = stack_geometry(size, stack)
        out, rf = measured_geometry(size, stack)
        for i, r in enumerate(geo):
            last = i == len(geo) - 1
            rows.append({"pooling": label, **r, "measured_output": out if last else "",
                         "measured_receptive_field": rf if last else ""})
    run.save_table(rows, "receptive_field", caption=(
        f"Output size and receptive field of conv3, conv3, maxpool2, conv3, conv5 (stride-1 convolutions, no "
        f"padding) on a {size}x{size} input: n_out = floor((n + 2p - k) / s) + 1, r_out = r_in + (k - 1) "
        "j_in, "
        "j_out = j_in s. The last row of each stack is checked on real torch layers (output by a forward "
        "pass, "
        "receptive field by which input pixels get a gradient). The reference answer 117x117 is the "
        "stride-1 "
        f"pooling case; PyTorch's MaxPool2d(2) halves the map and gives 56x56."))
    run.update_summary({"receptive_field_117_case": {"output": rows[-1]["output"],
                                                     "receptive_field": rows[-1]["receptive_field"]}})
    return rows


# -------------------------------------------------------------------------------------------- pipeline

def parse_digits(text: str | None, num_classes: int = 10) -> tuple[int, ...]:
    """``"0,3,7"`` -> (0, 3, 7); each must be a class index in 0..num_classes-1."""
    if text is None or text == "":
        return tuple(range(num_classes))
    out = []
    for tok in text.split(","):
        tok = tok.strip()
        if not tok.lstrip("-").isdigit() or not 0 <= int(tok) < num_classes:
            raise ConfigError(f"bad digit {tok!r}; digits must be integers in 0-{num_classes - 1}, e.g. "
                              "--digits 0,3,7")
        out.append(int(tok))
    return tuple(out)


def parse_pair(text: str) -> tuple[int, int]:
    parts = [p.strip() for p in text.split(",")]
    if len(parts) != 2 or not all(p.isdigit() for p in parts):
        raise ConfigError(f"bad --pair {text!r}; give two test image indices, e.g. --pair 0,1")
    return int(parts[0]), int(parts[1])


def figures(run: Run, *, device: torch.device, digits: tuple[int, ...] | None = None,
            pair: tuple[int, int] = (0, 1)) -> list[Path]:
    """Every figure the trained parts allow (and the theory table), from the run's checkpoints."""
    ae, cfg = load_autoencoder(run, device)
    out = [figure_reconstructions(run, ae, cfg), figure_ae_loss(run, cfg)]
    gan, cgan = load_gan(run, cfg, False, device), load_gan(run, cfg, True, device)
    judge = load_judge(run, cfg, device)
    if gan is not None:
        out += [figure_gan_samples(run, ae, gan, cfg), figure_gan_losses(run, cfg, False),
                figure_interpolation(run, ae, gan, cfg, pair, judge)]
    if cgan is not None:
        out += [figure_cgan_grid(run, ae, cgan, cfg, digits or tuple(range(10)), judge),
                figure_gan_losses(run, cfg, True)]
    if judge is not None:
        judge_report(run, ae, judge, cfg, gan=gan, cgan=cgan)
        out.append(figure_importance(run, judge, cfg))
    table_receptive_field(run)
    return [p for p in out if p is not None]


def run_all(run: Run, cfg: LatentConfig, *, device: torch.device, quiet: bool = False,
            reuse: bool = True) -> Run:
    """Every part of the lab in order, reusing parts already trained when ``reuse``."""
    if reuse and _finished(run, cfg.steps):
        ae, _ = load_autoencoder(run, device)
    else:
        ae = train_autoencoder(run, cfg, device=device, quiet=quiet)
    figure_reconstructions(run, ae, cfg)
    figure_ae_loss(run, cfg)
    done = "few_label_spreading_first" in run.read_summary() and (run.tables_dir / "few_label.csv").exists()
    if not (reuse and done):
        few_label_experiment(run, ae, cfg, device=device, quiet=quiet)
    gan = train_gan(run, ae, cfg, conditional=False, device=device, quiet=quiet, retrain=not reuse)
    judge = train_judge(run, cfg, device=device, quiet=quiet, retrain=not reuse)
    cgan = train_gan(run, ae, cfg, conditional=True, device=device, quiet=quiet, retrain=not reuse)
    figure_gan_samples(run, ae, gan, cfg)
    figure_gan_losses(run, cfg, False)
    figure_gan_losses(run, cfg, True)
    figure_cgan_grid(run, ae, cgan, cfg, judge=judge)
    figure_interpolation(run, ae, gan, cfg, judge=judge)
    judge_report(run, ae, judge, cfg, gan=gan, cgan=cgan)
    figure_importance(run, judge, cfg)
    table_receptive_field(run)
    return run


def demo(root: str | Path, *, quick: bool = True, device: str = "auto", quiet: bool = False,
         reuse: bool = True) -> list[Run]:
    """Train (or reuse) the lab's run ``root/latent/quick`` (or ``full``) and write every figure and table."""
    cfg = PRESETS["quick" if quick else "full"]
    name = "quick" if quick else "full"
    path = Path(root) / LAB / name
    if path.exists() and not reuse:
        shutil.rmtree(path)
    if (path / "config.json").exists():
        run = Run.open(path)
        if run.config(LatentConfig) != cfg:
            shutil.rmtree(path)
            run = Run.create(LAB, cfg, name=name, root=root)
    else:
        run = Run.create(LAB, cfg, name=name, root=root)
    if quick:
        run.update_summary({"note": QUICK_NOTE})
    run_all(run, cfg, device=choose_device(device), quiet=quiet, reuse=reuse)
    return [run]


# ------------------------------------------------------------------------------------------------- CLI

def _stage_cfg(run: Run, args: argparse.Namespace) -> LatentConfig:
    cfg = run.config(LatentConfig)
    over = list(getattr(args, "overrides", []) or [])
    if getattr(args, "seed", None) is not None:
        over.append(f"seed={args.seed}")
    return cfg.override(over) if over else cfg


def _open(args: argparse.Namespace) -> tuple[Run, ConvAutoencoder, LatentConfig, torch.device]:
    run = Run.open(args.run)
    device = choose_device(args.device)
    ae, _ = load_autoencoder(run, device)
    return run, ae, _stage_cfg(run, args), device


def _cmd_ae(args: argparse.Namespace) -> int:
    cfg = config_from_args(LatentConfig, args, PRESETS)
    load_data(cfg)  # a bad dataset fails before a run folder is made
    run = Run.create(LAB, cfg, name=args.name, root=args.run_dir, resume=args.resume)
    device = choose_device(args.device)
    ae = train_autoencoder(run, cfg, device=device, quiet=args.quiet, resume=args.resume)
    figure_reconstructions(run, ae, cfg)
    figure_ae_loss(run, cfg)
    s = run.read_summary()
    print(f"autoencoder trained: test BCE {s['ae_test_bce']:.4f}, test MSE {s['ae_test_mse']:.4f}; run: "
          f"{run.path}")
    print(f"next: genlab latent classify --run {run.path}")
    return 0


def _cmd_classify(args: argparse.Namespace) -> int:
    run, ae, cfg, device = _open(args)
    if args.labels is not None or args.draws is not None:
        cfg = cfg.update({k: v for k, v in (("labels", args.labels), ("draws", args.draws)) if v is not None})
    rows = few_label_experiment(run, ae, cfg, device=device, quiet=args.quiet)
    for r in rows:
        print(f"{r['labels']:>18}  {r['method']:<30} {r['mean_test_acc']:.3f} +- {r['std']:.3f}")
    print(f"table: {run.tables_dir / 'few_label.md'}")
    return 0


def _cmd_gan(args: argparse.Namespace) -> int:
    run, ae, cfg, device = _open(args)
    gan = train_gan(run, ae, cfg, conditional=False, device=device, quiet=args.quiet, retrain=True)
    print(f"samples: {figure_gan_samples(run, ae, gan, cfg)}")
    print(f"losses: {figure_gan_losses(run, cfg, False)}")
    return 0


def _cmd_cgan(args: argparse.Namespace) -> int:
    run, ae, cfg, device = _open(args)
    digits = parse_digits(args.digits, load_data(cfg).num_classes)
    judge = train_judge(run, cfg, device=device, quiet=args.quiet)
    cgan = train_gan(run, ae, cfg, conditional=True, device=device, quiet=args.quiet, retrain=args.retrain)
    print(f"grid: {figure_cgan_grid(run, ae, cgan, cfg, digits, judge)}")
    figure_gan_losses(run, cfg, True)
    rep = judge_report(run, ae, judge, cfg, gan=load_gan(run, cfg, False, device), cgan=cgan)
    print(f"judge test accuracy {rep['judge_test_accuracy']:.4f}; cGAN samples judged the requested class "
          f"{rep['cgan_judge_agreement']:.1%}; Frechet distance to test images {rep['fd_cgan_vs_test']:.2f} "
          f"(train images: {rep['fd_train_vs_test']:.2f})")
    return 0


def _cmd_interpolate(args: argparse.Namespace) -> int:
    run, ae, cfg, device = _open(args)
    gan = load_gan(run, cfg, False, device)
    if gan is None:
        raise ConfigError(f"run {str(run.path)!r} has no latent GAN yet; run 'genlab latent gan --run "
                          f"{run.path}' "
                          f"first")
    print("figure: "
          f"{figure_interpolation(run, ae, gan, cfg, parse_pair(args.pair), load_judge(run, cfg, device))}")
    return 0


def _cmd_figures(args: argparse.Namespace) -> int:
    run = Run.open(args.run)
    paths = figures(run, device=choose_device(args.device))
    print("\n".join(str(p) for p in paths))
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    vs = add_lab_parser(sub, LAB, "MNIST autoencoder latent space: few-label classifier, latent GAN, cGAN", __doc__)
    q = vs.add_parser("ae", help="train the conv (denoising) autoencoder in a new run folder")
    add_train_args(q, list(PRESETS))
    q.set_defaults(func=_cmd_ae)
    specs = {
        "classify": "few-label classifiers on frozen codes vs from scratch (table over label draws)",
        "gan": "train the latent GAN on the run's codes; sample grid and loss curves",
        "cgan": "train the judge and the conditional GAN; 10 x k grid and judge numbers in summary.json",
        "interpolate": "AE-space and GAN-space interpolation figure",
        "figures": "every figure again from the run's trained parts",
    }
    handlers = {"classify": _cmd_classify, "gan": _cmd_gan, "cgan": _cmd_cgan,
                "interpolate": _cmd_interpolate,
                "figures": _cmd_figures}
    for verb, text in specs.items():
        q = vs.add_parser(verb, help=text)
        add_run_arg(q)
        if verb != "figures":
            q.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                           help="override a config value for this step, e.g. --set gan_steps=2000")
        if verb == "classify":
            q.add_argument("--labels", type=int, default=None, help="number of labelled images (default 50)")
            q.add_argument("--draws", type=int, default=None, help="label draws (default 5)")
        if verb == "cgan":
            q.add_argument("--digits", default=None, help="rows of the grid, e.g. 0,3,7 (default: all)")
            q.add_argument("--retrain", action="store_true", help="train the cGAN again even if it exists")
        if verb == "interpolate":
            q.add_argument("--pair", default="0,1", help="two test image indices (default 0,1)")
        q.set_defaults(func=handlers[verb])


def key_metrics(runs: list[Run]) -> list[dict]:
    """Few-label accuracy, cGAN agreement and Frechet distance against the reference report."""
    rows = []
    refs = {"codes + MLP": "0.745 (frozen codes)", "from scratch: encoder + MLP": "0.607 (end-to-end)",
            "codes + label spreading (k-NN graph)": ">= 0.85 (issue target)"}
    for run in runs:
        s = run.read_summary()
        for method, ref in refs.items():
            value = s.get(f"few_label/first {s.get('labels', 50)}/{method}") or s.get(f"few_label/first 50/{method}")
            if value:
                rows.append({"metric": f"50 labels, {method} (mean of draws)", "value": value["mean"],
                             "reference": ref})
        if "cgan_judge_agreement" in s:
            rows.append({"metric": "cGAN samples judged the requested digit", "value": s["cgan_judge_agreement"],
                         "reference": ">= 0.90"})
        if "fd_cgan_vs_test" in s:
            rows.append({"metric": "Frechet distance cGAN vs test (train vs test floor)",
                         "value": f"{s['fd_cgan_vs_test']:.3g} ({s['fd_train_vs_test']:.3g})", "reference": ""})
    return rows
