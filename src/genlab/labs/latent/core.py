"""Train and evaluate the latent lab's parts, open a trained run, and the demo (no plotting here).

The autoencoder's weights are the run's own checkpoint; every later part trains in its sub-run
``<run>/stages/<part>`` (:meth:`Run.child`) with the same loop (:func:`genlab.train.fit`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from genlab.data.images import ImageData, load_images
from genlab.data.splits import label_indices
from genlab.io import atomic_write_json
from genlab.labs import draw_all
from genlab.labs.latent.config import PRESETS, QUICK_NOTE, LatentConfig
from genlab.nn.autoencoder import CodeClassifier, ConvAutoencoder, EncoderClassifier, decode_codes, encode_all
from genlab.nn.gan import (
    JudgeCNN,
    LatentGAN,
    discriminator_loss,
    generator_loss,
    judge_outputs,
    judge_scores,
    matching_discriminator_loss,
)
from genlab.nn.label_spreading import LabelSpreading, nearest
from genlab.runs import Run, choose_device, cpu_threads, reuse_or_create, seed_everything
from genlab.train import TrainConfig, fit, load_weights, make_optimizer, warmup_cosine

LAB = "latent"


@lru_cache(maxsize=2)
def _cached_data(dataset: str, data_dir: str, train_limit: int, test_limit: int) -> ImageData:
    return load_images(dataset, data_dir or None).subset(train_limit, test_limit)


def load_data(cfg: LatentConfig) -> ImageData:
    """The config's dataset, cut to ``train_limit`` / ``test_limit``."""
    return _cached_data(cfg.dataset, cfg.data_dir, cfg.train_limit, cfg.test_limit)


def loop_config(cfg: LatentConfig, steps: int, lr: float, batch_size: int, seed_offset: int = 0) -> TrainConfig:
    """The loop settings of one part (its own steps / lr / batch, the lab's seed, amp, threads, logging)."""
    return TrainConfig(
        seed=cfg.seed + seed_offset,
        steps=steps,
        lr=lr,
        batch_size=batch_size,
        amp=cfg.amp,
        log_every=min(cfg.log_every, max(1, steps)),
        threads=cfg.threads,
    )


def stage(run: Run, name: str, cfg: LatentConfig, loop: TrainConfig, *, retrain: bool = False) -> tuple[Run, bool]:
    """The sub-run of part ``name``, and whether it already finished with these loop settings (reuse it)."""
    old = Run(run.path / "stages" / name)
    done = not retrain and old.finished and old.config_path.is_file()
    if done and old.read_config_file().get("loop") == loop.to_dict():
        return old, True
    return run.child(name, cfg, loop=loop), False


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

    def batches(step: int) -> torch.Tensor:
        return data.train_x[torch.randint(n, (cfg.batch_size,), device=device)]

    def step_fn(m: nn.Module, x: torch.Tensor) -> dict[str, Any]:
        return {"loss": F.binary_cross_entropy_with_logits(m(x), x)}

    def eval_fn(m: nn.Module) -> dict[str, float]:
        logits = torch.cat([m(test[i : i + 500]) for i in range(0, len(test), 500)])
        return {
            "test_bce": F.binary_cross_entropy_with_logits(logits, test).item(),
            "test_mse": F.mse_loss(torch.sigmoid(logits), test).item(),
        }

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


def _train_classifier(
    sub: Run,
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    loop: TrainConfig,
    *,
    device: torch.device,
    weight_decay: float = 1e-4,
) -> nn.Module:
    """Full-batch cross-entropy training of ``model`` on the labelled (x, y) with the shared loop."""
    opt = make_optimizer(model.parameters(), "adamw", loop.lr, weight_decay=weight_decay)
    x, y = x.to(device), y.to(device)

    def step_fn(m: nn.Module, batch: Any) -> dict[str, Any]:
        logits = m(batch[0])
        return {"loss": F.cross_entropy(logits, batch[1]), "train_acc": (logits.argmax(1) == batch[1]).float().mean()}

    fit(sub, model, opt, step_fn, lambda step: (x, y), cfg=loop, device=device, quiet=True)
    return model.eval()


@torch.no_grad()
def _accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch: int = 2000) -> float:
    model.eval()
    dev = next(model.parameters()).device
    right = sum(
        int((model(x[i : i + batch].to(dev)).argmax(1).cpu() == y[i : i + batch].cpu()).sum())
        for i in range(0, len(x), batch)
    )
    return right / max(1, len(x))


def few_label_path(run: Run) -> Path:
    """Where the few-label experiment keeps its result rows (the table and figure are drawn from them)."""
    return run.path / "stages" / "classify" / "results.json"


def read_few_label(run: Run) -> dict[str, Any] | None:
    path = few_label_path(run)
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
    from sklearn.linear_model import LogisticRegression
    from tqdm.auto import tqdm

    data = load_data(cfg)
    label_indices(data.train_y, cfg.labels, "first", 0)  # checks N before any work
    codes_train = encode_all(ae.encoder, data.train_x).cpu()
    codes_test = encode_all(ae.encoder, data.test_x).cpu()
    mean, std = codes_train.mean(0), codes_train.std(0).clamp_min(1e-6)
    ztr, zte = (codes_train - mean) / std, (codes_test - mean) / std
    zte_unit = F.normalize(zte, dim=1)
    draws = {
        (s, d): label_indices(data.train_y, cfg.labels, s, d, cfg.seed, data.num_classes)
        for s in schemes
        for d in range(cfg.draws)
    }
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
            loop = loop_config(cfg, cfg.clf_steps, 1e-3, len(idx), seed_offset=d)
            seed_everything(loop.seed)
            head = _train_classifier(
                run.child(f"classify/{scheme}-{d}-codes", cfg, loop=loop),
                CodeClassifier(cfg.code_dim, data.num_classes),
                zl,
                yl,
                loop,
                device=device,
            )
            acc = {"codes + MLP": _accuracy(head, zte, data.test_y)}
            logreg = LogisticRegression(C=1.0, max_iter=2000).fit(zl.numpy(), yl.numpy())
            acc["codes + logistic regression"] = float((logreg.predict(zte.numpy()) == data.test_y.numpy()).mean())
            nearest1 = (zte_unit @ F.normalize(zl, dim=1).T).argmax(1)
            acc["codes + k-NN (cosine, k=1)"] = float((yl[nearest1] == data.test_y).float().mean())
            scores = graph.spread(position[idx], yl, data.num_classes)
            acc[SPREAD] = float((graph.predict(scores, test_nbrs) == data.test_y).float().mean())
            seed_everything(loop.seed)
            scratch = _train_classifier(
                run.child(f"classify/{scheme}-{d}-scratch", cfg, loop=loop),
                EncoderClassifier(cfg.code_dim, data.num_classes),
                xl,
                yl,
                loop,
                device=device,
            )
            acc["from scratch: encoder + MLP"] = _accuracy(scratch, data.test_x, data.test_y)
            for name, a in acc.items():
                results.setdefault((scheme, name), []).append(a)
            bar.update(1)
    bar.close()
    rows = [
        {
            "labels": f"{'first' if scheme == 'first' else 'class-balanced'} {cfg.labels}",
            "method": name,
            "mean_test_acc": round(float(np.mean(accs)), 4),
            "std": round(float(np.std(accs)), 4),
            "min": round(min(accs), 4),
            "max": round(max(accs), 4),
            "per_draw": " ".join(f"{a:.3f}" for a in accs),
        }
        for (scheme, name), accs in results.items()
    ]
    out = {"rows": rows, "labels": cfg.labels, "draws": cfg.draws, "spread_k": cfg.spread_k, "graph_nodes": len(nodes)}
    atomic_write_json(few_label_path(run), out)
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
    sub, done = stage(run, name, cfg, loop, retrain=retrain)
    if done:
        load_weights(sub, gan, device=device)
        return gan.eval()
    codes, labels = encode_all(ae.encoder, data.train_x).to(device), data.train_y.to(device)
    gan.set_code_stats(codes.cpu())
    gan.to(device)
    real_all = gan.normalise(codes)
    opts = {
        "g": make_optimizer(gan.generator.parameters(), "adam", cfg.gan_lr, betas=(0.5, 0.999)),
        "d": make_optimizer(gan.discriminator.parameters(), "adam", cfg.gan_lr, betas=(0.5, 0.999)),
    }
    k = gan.num_classes

    def batches(step: int) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor, torch.Tensor | None]:
        i = torch.randint(len(real_all), (loop.batch_size,), device=device)
        u = torch.randn(loop.batch_size, cfg.noise_dim, device=device)
        y_fake = torch.randint(k, (loop.batch_size,), device=device) if k else None
        return real_all[i], (labels[i] if k else None), u, y_fake

    def step_fn(m: nn.Module, batch: Any, optimize) -> dict[str, torch.Tensor]:
        m = getattr(m, "module", m)
        real, y_real, u, y_fake = batch
        fake = m.generator(u, y_fake)
        d_real, d_fake = m.discriminator(real, y_real), m.discriminator(fake.detach(), y_fake)
        if k and cfg.cgan_matching:
            y_wrong = (y_real + torch.randint(1, k, y_real.shape, device=device)) % k
            d_loss = matching_discriminator_loss(d_real, d_fake, m.discriminator(real, y_wrong))
        else:
            d_loss = discriminator_loss(d_real, d_fake)
        optimize("d", d_loss)
        g_loss = generator_loss(m.discriminator(fake, y_fake))  # against the updated discriminator
        optimize("g", g_loss)
        return {
            "d_loss": d_loss.detach(),
            "g_loss": g_loss.detach(),
            "D(real)": torch.sigmoid(d_real.detach()).mean(),
            "D(fake)": torch.sigmoid(d_fake.detach()).mean(),
        }

    res = fit(sub, gan, opts, step_fn, batches, cfg=loop, device=device, manual=True, quiet=quiet, desc=name)
    run.update_summary(
        {
            f"{name}_steps": steps,
            f"{name}_train_seconds": round(res.seconds, 1),
            f"{name}_codes_per_second": round(steps * loop.batch_size / max(res.seconds, 1e-9), 1),
        }
    )
    return gan.eval()


def _load_stage(run: Run, name: str, model: nn.Module, device: torch.device) -> Any:
    """``model`` with the weights trained in stage ``name`` (None if that part is not trained yet)."""
    sub = Run(run.path / "stages" / name)
    if not sub.last_checkpoint.exists():
        return None
    load_weights(sub, model, device=device)
    return model.eval()


def load_gan(run: Run, cfg: LatentConfig, conditional: bool, device: torch.device) -> LatentGAN | None:
    gan = LatentGAN(cfg.noise_dim, cfg.code_dim, load_data(cfg).num_classes if conditional else 0)
    return _load_stage(run, "cgan" if conditional else "gan", gan, device)


# ------------------------------------------------------------------------------------------------ judge


def train_judge(
    run: Run, cfg: LatentConfig, *, device: torch.device, quiet: bool = False, retrain: bool = False
) -> JudgeCNN:
    """A small CNN classifier trained on the real training images (the judge of generated images)."""
    data = load_data(cfg)
    loop = loop_config(cfg, cfg.judge_steps, 1e-3, 128, seed_offset=11)
    seed_everything(loop.seed)
    judge = JudgeCNN(data.num_classes)
    sub, done = stage(run, "judge", cfg, loop, retrain=retrain)
    if done:
        load_weights(sub, judge, device=device)
        return judge.eval()
    tx, ty = data.train_x.to(device), data.train_y.to(device)

    def batches(step: int) -> tuple[torch.Tensor, torch.Tensor]:
        i = torch.randint(len(tx), (loop.batch_size,), device=device)
        return tx[i], ty[i]

    def step_fn(m: nn.Module, batch: Any) -> dict[str, Any]:
        return {"loss": F.cross_entropy(m(batch[0]), batch[1])}

    fit(
        sub,
        judge,
        make_optimizer(judge.parameters(), "adam", loop.lr),
        step_fn,
        batches,
        cfg=loop,
        device=device,
        quiet=quiet,
        desc="judge",
    )
    return judge.eval()


def load_judge(run: Run, cfg: LatentConfig, device: torch.device) -> JudgeCNN | None:
    return _load_stage(run, "judge", JudgeCNN(load_data(cfg).num_classes), device)


def judge_report(
    run: Run,
    ae: ConvAutoencoder,
    judge: JudgeCNN,
    cfg: LatentConfig,
    *,
    gan: LatentGAN | None,
    cgan: LatentGAN | None,
    n: int = 2000,
) -> dict[str, Any]:
    """Judge accuracy on real test images, agreement with the requested digit for cGAN samples, and Frechet
    distances in the judge's feature space between real test images and generated / reconstructed ones."""
    data = load_data(cfg)
    dev = next(ae.parameters()).device
    n = min(n, len(data.test_x))
    real = judge_outputs(judge, data.test_x[:n])[1]
    gen = torch.Generator(device="cpu").manual_seed(cfg.seed + 2)

    def fd(images: torch.Tensor) -> float:
        return round(judge_scores(judge, images, real)["fd"], 3)

    rec = judge_scores(judge, decode_codes(ae, encode_all(ae.encoder, data.test_x[:n])), real, data.test_y[:n])
    out: dict[str, Any] = {
        "judge_test_accuracy": round(judge_scores(judge, data.test_x, requested=data.test_y)["agreement"], 4),
        "judge_accuracy_on_reconstructions": round(rec["agreement"], 4),
        "fd_reconstructions_vs_test": round(rec["fd"], 3),
        "fd_train_vs_test": fd(data.train_x[:n]),
    }
    if gan is not None:
        out["fd_gan_vs_test"] = fd(
            decode_codes(ae, gan.sample_codes(u=torch.randn(n, cfg.noise_dim, generator=gen).to(dev)))
        )
        gauss = gan.denormalise(torch.randn(n, cfg.code_dim, generator=gen).to(dev))
        out["fd_diag_gaussian_codes_vs_test"] = fd(decode_codes(ae, gauss))
    if cgan is not None:
        y = torch.arange(data.num_classes).repeat_interleave(int(np.ceil(n / data.num_classes)))[:n]
        u = torch.randn(len(y), cfg.noise_dim, generator=gen).to(dev)
        c = judge_scores(judge, decode_codes(ae, cgan.sample_codes(y=y.to(dev), u=u)), real, y, data.num_classes)
        out.update(
            {
                "cgan_judge_agreement": round(c["agreement"], 4),
                "fd_cgan_vs_test": round(c["fd"], 3),
                "cgan_judge_agreement_per_class": [round(v, 3) for v in c["per_class"]],
            }
        )
    out["fd_samples"] = n
    out["fd_note"] = (
        f"Frechet distances between Gaussians fitted to the judge's 128-d features of {n} "
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
    device: torch.device | None = None


def open_run(run: Run, device: torch.device, cfg: LatentConfig | None = None) -> Opened:
    """Load a run's trained parts (``cfg``: the run's config with a verb's overrides, default the run's own)."""
    cfg = cfg or run.config(LatentConfig)
    return Opened(
        run,
        cfg,
        load_data(cfg),
        load_autoencoder(run, device),
        load_gan(run, cfg, False, device),
        load_gan(run, cfg, True, device),
        load_judge(run, cfg, device),
        read_few_label(run),
        device,
    )


def run_all(run: Run, cfg: LatentConfig, *, device: torch.device, quiet: bool = False, reuse: bool = True) -> Opened:
    """Every part of the lab in order (reusing parts already trained when ``reuse``), then every output."""
    with cpu_threads(cfg.threads if device.type == "cpu" else 0):
        if reuse and run.finished:
            ae = load_autoencoder(run, device)
        else:
            ae = train_autoencoder(run, cfg, device=device, quiet=quiet)
        few = read_few_label(run) if reuse else None
        if few is None:
            few = few_label_experiment(run, ae, cfg, device=device, quiet=quiet)
        gan = train_gan(run, ae, cfg, conditional=False, device=device, quiet=quiet, retrain=not reuse)
        judge = train_judge(run, cfg, device=device, quiet=quiet, retrain=not reuse)
        cgan = train_gan(run, ae, cfg, conditional=True, device=device, quiet=quiet, retrain=not reuse)
        judge_report(run, ae, judge, cfg, gan=gan, cgan=cgan)
        opened = Opened(run, cfg, load_data(cfg), ae, gan, cgan, judge, few, device)
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
