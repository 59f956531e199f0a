"""Every figure and table of the latent lab, one registered function each (in report order).

Each takes the :class:`~genlab.labs.latent.core.Opened` run and returns a :class:`~genlab.labs.Drawn`;
the GAN, cGAN and judge figures apply once those parts are trained (``when=``).
"""

from __future__ import annotations

import numpy as np
import torch

from genlab import plots
from genlab.errors import ConfigError
from genlab.labs import Drawn, figure, table
from genlab.labs.latent import classifiers
from genlab.labs.latent.config import AE_VS_COURSE, augment_note, quick_note
from genlab.labs.latent.core import AUGMENTED, SPREAD, Opened
from genlab.nn.autoencoder import decode_codes
from genlab.nn.gan import interpolation_rows, judge_outputs, judge_verdicts, midpoint_confidence
from genlab.nn.receptive_field import EXAMPLE, EXAMPLE_STRIDE1_POOL, geometry_table
from genlab.nn.saliency import gradient_map, occlusion_map
from genlab.runs import Run


def _stage_metrics(o: Opened, name: str) -> list[dict]:
    return Run(o.run.path / "stages" / name).read_metrics()


@figure("reconstructions")
def fig_reconstructions(o: Opened, n: int = 12) -> Drawn:
    """Originals, their noisy copies (what a denoising AE trains on), and reconstructions of both."""
    ae, cfg = o.ae, o.cfg
    dev = next(ae.parameters()).device
    x = o.data.test_x[:n].to(dev)
    gen = torch.Generator(device="cpu").manual_seed(cfg.seed)
    sigma = cfg.noise_sigma or 0.35
    noisy = (x + sigma * torch.randn(x.shape, generator=gen).to(dev)).clamp(0, 1)
    with torch.no_grad():
        rec = ae.decode(ae.encode(x))
        rec_noisy = ae.decode(ae.encode(noisy))
    rows = {
        "original (test)": x,
        "reconstruction": rec,
        f"input + noise (sigma {sigma:g})": noisy,
        "reconstruction of the noisy input": rec_noisy,
    }
    fig, _ = plots.image_rows(rows, size=(0.75 * n + 1, 1.05 * len(rows) + 0.6))
    err = ((rec - x) ** 2).mean((1, 2, 3)).cpu()
    kind = "denoising" if cfg.noise_sigma > 0 else "plain"
    fig.suptitle(
        f"Conv autoencoder ({kind}, {cfg.code_dim}-d code): test digits and reconstructions", fontweight="bold"
    )
    return Drawn(
        fig,
        caption=(
            f"First {n} test images, their reconstructions through the {cfg.code_dim}-number code, the same images "
            "with Gaussian noise, and what the autoencoder makes of the noisy ones. Mean squared pixel error of the "
            f"clean reconstructions: {err.mean():.4f}. The model: {AE_VS_COURSE}.{quick_note(o.cfg)}"
        ),
        data={"mse_per_image": [round(float(e), 5) for e in err], "labels": o.data.test_y[:n].tolist()},
    )


@figure("ae_loss")
def fig_ae_loss(o: Opened) -> Drawn:
    fig = plots.loss_curves(o.run.read_metrics(), ["loss", "test_bce"], title="Autoencoder: BCE per pixel")
    return Drawn(
        fig,
        caption=(
            "Binary cross-entropy per pixel on training batches (loss; noisy inputs for a "
            f"denoising model) and on 2000 clean test images (test_bce).{quick_note(o.cfg)}"
        ),
    )


@figure("few_label", when=lambda o: o.few_label is not None, verb="classify")
def fig_few_label(o: Opened) -> Drawn:
    """Bars of the few-label table (written beside it as ``tables/few_label``): mean and spread per method; its
    headline numbers go into the summary."""
    res, data = o.few_label, o.data
    rows, n = res["rows"], res["labels"]
    augmented = any(r["method"] == AUGMENTED for r in rows)
    caption = (
        f"Test accuracy ({len(data.test_x)} test images) with only {n} labelled training images, mean and spread "
        f"over {res['draws']} draws. 'first': draw d is training images [{n}d, {n}(d+1)) (draw 0 = the first "
        f"{n}); 'class-balanced': {n // data.num_classes} random images per class. Codes come from the frozen "
        f"encoder (trained without labels on {len(data.train_x)} images) and are standardised. MLP, logistic "
        "regression and 1-NN see only the labelled codes; label spreading also uses the unlabelled codes "
        f"({res['graph_nodes']} training codes in a {res['spread_k']}-NN graph; no labels beyond the {n}). The "
        "from-scratch model is the same encoder + MLP trained end to end on the labelled images only."
        f"{augment_note(o.cfg) if augmented else ''}{quick_note(o.cfg)}"
    )
    fig, ax = plots.figure(size=(9, 4.4))
    plots.grouped_bars(ax, rows, "labels", "method", "mean_test_acc", "std", tick=lambda g: f"{g} labels")
    ax.set_ylim(0, 1.08)
    ax.set_ylabel("test accuracy")
    ax.axhline(0.1, color="grey", linestyle=":", linewidth=1)
    ax.set_title(f"{n} labels: frozen autoencoder codes vs training from scratch")
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.1), ncol=3, fontsize=8)
    summary = {f"few_label/{r['labels']}/{r['method']}": {"mean": r["mean_test_acc"], "std": r["std"]} for r in rows}
    first = {r["method"]: r["mean_test_acc"] for r in rows if r["labels"].startswith("first")}
    summary.update(
        {
            "few_label_labels": n,
            "few_label_draws": res["draws"],
            "few_label_codes_mlp_first": first["codes + MLP"],
            **({"few_label_augmented_first": first[AUGMENTED]} if AUGMENTED in first else {}),
            "few_label_best_codes_first": max(v for k, v in first.items() if k.startswith("codes")),
            "few_label_spreading_first": first[SPREAD],
            "few_label_scratch_first": first["from scratch: encoder + MLP"],
            "frozen_codes_beat_scratch": bool(first["codes + MLP"] > first["from scratch: encoder + MLP"]),
        }
    )
    return Drawn(fig, caption=caption, data={"rows": rows}, rows=rows, summary=summary)


@figure("accuracy_per_epoch", when=lambda o: bool(classifiers.logged_curves(o)), verb="classify")
def fig_accuracy_per_epoch(o: Opened) -> Drawn:
    """Test accuracy per epoch, frozen codes + MLP vs from scratch (first-N draw 0); in classifiers.py."""
    return classifiers.accuracy_per_epoch(o)


@table("architecture_search", when=lambda o: o.search is not None, verb="search")
def table_architecture_search(o: Opened) -> Drawn:
    """Classifier heads on frozen codes chosen by cross-validation (``genlab latent search``); in classifiers.py."""
    return classifiers.search_table(o)


@figure("gan_samples", when=lambda o: o.gan is not None, verb="gan")
def fig_gan_samples(o: Opened, n: int = 64) -> Drawn:
    """Decoded GAN codes beside decoded codes drawn from a diagonal Gaussian fitted to the real codes."""
    gan, cfg = o.gan, o.cfg
    dev = gan.code_mean.device
    gen = torch.Generator(device="cpu").manual_seed(cfg.seed)
    g_imgs = decode_codes(o.ae, gan.sample_codes(u=torch.randn(n, cfg.noise_dim, generator=gen).to(dev)))
    n_imgs = decode_codes(o.ae, gan.denormalise(torch.randn(n, cfg.code_dim, generator=gen).to(dev)))
    side = int(np.ceil(np.sqrt(n)))
    fig, axes = plots.figure(1, 2, size=(10, 5.4))
    plots.show_images(axes[0], g_imgs, side, "Latent GAN: generated codes, decoded")
    plots.show_images(axes[1], n_imgs, side, "Baseline: codes ~ N(mean, diag std), decoded")
    return Drawn(
        fig,
        caption=(
            f"Left: {n} codes from the latent GAN (noise {cfg.noise_dim} -> code {cfg.code_dim}, {cfg.gan_steps} "
            "steps), decoded by the frozen decoder. Right: codes drawn independently per dimension from a Gaussian "
            "with the real codes' mean and std: without the GAN the dimensions' dependencies are lost and many "
            f"decodings are not digits.{quick_note(o.cfg)}"
        ),
    )


def _gan_losses(o: Opened, name: str) -> Drawn:
    metrics = _stage_metrics(o, name)
    fig, axes = plots.figure(1, 2, size=(11, 3.8))
    plots.loss_curves(metrics, ["d_loss", "g_loss"], title=f"{name.upper()} losses (non-saturating)", ax=axes[0])
    plots.loss_curves(metrics, ["D(real)", "D(fake)"], title="Discriminator output (probability 'real')", ax=axes[1])
    axes[1].set_ylabel("mean sigmoid(D)")
    axes[1].axhline(0.5, color="grey", linestyle=":", linewidth=1)
    return Drawn(
        fig,
        caption=(
            "Discriminator and generator losses, and the discriminator's mean probability of 'real' on real and "
            "generated codes. At the equilibrium of a perfect generator D outputs 0.5 everywhere and d_loss = 2 log 2 "
            f"= 1.386.{quick_note(o.cfg)}"
        ),
    )


@figure("gan_losses", when=lambda o: bool(_stage_metrics(o, "gan")), verb="gan")
def fig_gan_losses(o: Opened) -> Drawn:
    return _gan_losses(o, "gan")


@figure("cgan_losses", when=lambda o: bool(_stage_metrics(o, "cgan")), verb="cgan")
def fig_cgan_losses(o: Opened) -> Drawn:
    return _gan_losses(o, "cgan")


@figure("cgan_grid", when=lambda o: o.cgan is not None, verb="cgan")
def fig_cgan_grid(o: Opened, digits: tuple[int, ...] | None = None) -> Drawn:
    """Rows of k decoded cGAN samples, one row per requested digit (with the judge's verdicts)."""
    cfg, k = o.cfg, o.cfg.grid_k
    digits = tuple(range(o.data.num_classes)) if digits is None else tuple(digits)
    dev = o.cgan.code_mean.device
    gen = torch.Generator(device="cpu").manual_seed(cfg.seed + 1)
    y = torch.tensor(digits, device=dev).repeat_interleave(k)
    u = torch.randn(len(y), cfg.noise_dim, generator=gen).to(dev)
    imgs = decode_codes(o.ae, o.cgan.sample_codes(y=y, u=u))
    fig, ax = plots.figure(size=(0.62 * k + 1.6, 0.62 * len(digits) + 0.8))
    plots.show_images(ax, imgs, len(digits), f"Conditional latent GAN: {k} samples per requested digit")
    side = imgs.shape[-1] + 2
    names = [o.data.classes[dgt] for dgt in digits]
    plots.grid_text(ax, names, side, -3, ha="right", va="center", fontsize=11, fontweight="bold")
    agree = None
    if o.judge is not None:
        pred, _ = judge_outputs(o.judge, imgs)
        agree = (pred.view(len(digits), k) == torch.tensor(digits).view(-1, 1)).float().mean(1)
        verdicts = [f"judge {a:.0%}" for a in agree]
        plots.grid_text(ax, verdicts, side, k * side + 4, ha="left", va="center", fontsize=8, color="#0072B2")
    return Drawn(
        fig,
        caption=(
            "Each row asks the conditional GAN for one class (one-hot label concatenated to the noise and to the "
            f"discriminator's input), {k} noise draws per row, decoded by the frozen decoder. Right: how many of the "
            f"row's samples the judge CNN classifies as the requested class.{quick_note(o.cfg)}"
        ),
        data={"digits": list(digits), "judge_agreement_per_row": agree.tolist() if agree is not None else None},
    )


def _interpolation_rows(o: Opened, pair: tuple[int, int], steps: int) -> dict[str, torch.Tensor]:
    """Three rows of ``steps`` images: pixel blend, AE code path, and GAN noise path."""
    dev = o.gan.code_mean.device
    for i in pair:
        if not 0 <= i < len(o.data.test_x):
            raise ConfigError(f"test image index {i} is out of range; use 0..{len(o.data.test_x) - 1}")
    a, b = o.data.test_x[pair[0]].to(dev), o.data.test_x[pair[1]].to(dev)
    u = torch.randn(2, o.cfg.noise_dim, generator=torch.Generator(device="cpu").manual_seed(o.cfg.seed + 5))
    return interpolation_rows(o.ae, o.gan, a, b, u.to(dev), steps)


@figure("interpolation", when=lambda o: o.gan is not None, verb="interpolate")
def fig_interpolation(o: Opened, pair: tuple[int, int] = (0, 1)) -> Drawn:
    """Pixel blend, a straight path between two codes, and one between two GAN noise vectors."""
    cfg, judge = o.cfg, o.judge
    rows = _interpolation_rows(o, pair, cfg.interp_steps)
    titles = {"pixels": "pixel blend (reference)", "ae": "AE code space", "gan": "GAN noise space"}
    size = (0.95 * cfg.interp_steps + 1.8, 1.25 * len(rows) + 0.8)
    fig, axes = plots.image_rows({titles[key]: imgs for key, imgs in rows.items()}, size=size)
    verdicts = {}
    for ax, (key, imgs) in zip(axes, rows.items()):
        if judge is not None:
            conf, cls = judge_verdicts(judge, imgs)
            verdicts[key] = [(int(c), round(float(v), 3)) for c, v in zip(cls, conf)]
            texts = [f"{c.item()} {v:.0%}" for c, v in zip(cls, conf)]
            side = imgs.shape[-1] + 2
            plots.grid_text(ax, texts, side, side + 5, along="cols", ha="center", va="top", fontsize=7, color="#0072B2")
    fig.suptitle(
        f"Interpolation in {cfg.interp_steps} steps: test images #{pair[0]} -> #{pair[1]}, and two noise vectors",
        fontweight="bold",
    )
    extra = {}
    if judge is not None:
        gen = torch.Generator(device="cpu").manual_seed(cfg.seed + 6)
        conf = midpoint_confidence(o.ae, o.gan, judge, o.data.test_x, 200, gen)
        extra = {f"judge_confidence_{k}": round(v, 4) for k, v in conf.items()}
    note = ""
    if extra:
        note = (
            " Over 200 random pairs the judge's mean confidence is "
            f"{extra['judge_confidence_ae_midpoint']:.2f} at AE-space midpoints, "
            f"{extra['judge_confidence_gan_midpoint']:.2f} at GAN-space midpoints (and "
            f"{extra['judge_confidence_ae_endpoint']:.2f} on reconstructions of real images)."
        )
    return Drawn(
        fig,
        caption=(
            "Top: blending the two images' pixels. Middle: decoding (1 - t) E(a) + t E(b), straight between the two "
            "codes. Bottom: decoding G((1 - t) u0 + t u1), straight between two noise vectors; the generator maps the "
            "whole path into the region of real codes. Small numbers: the judge's digit and confidence per frame."
            f"{note}{quick_note(o.cfg)}"
        ),
        data={"pair": list(pair), "judge": verdicts, **extra},
        summary={f"interp_{k}": v for k, v in extra.items()},
    )


@figure("importance", when=lambda o: o.judge is not None)
def fig_importance(o: Opened, n: int = 5, patch: int = 8, stride: int = 2) -> Drawn:
    """Which pixels the judge's prediction depends on: occlusion and input gradients for ``n`` test images."""
    judge = o.judge
    dev = next(judge.parameters()).device
    x = o.data.test_x[:n].to(dev)
    conf, pred = judge_verdicts(judge, x)
    occ = occlusion_map(judge, x, pred, patch=patch, stride=stride)
    grad = gradient_map(judge, x, pred)
    fig, axes = plots.figure(3, n, size=(2.0 * n + 0.6, 6.6), squeeze=False)
    for i in range(n):
        img = x[i, 0].cpu().numpy()
        axes[0, i].imshow(img, cmap="gray_r", vmin=0, vmax=1)
        axes[0, i].set_title(f"judge: {o.data.classes[int(pred[i])]} ({conf[i]:.0%})", fontsize=9)
        plots.heatmap(axes[1, i], occ[i], cmap="RdBu_r", symmetric=True, outline=img, color="k")
        plots.heatmap(axes[2, i], grad[i], cmap="magma", outline=img, color="w")
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
        ax.grid(False)
    axes[1, 0].set_ylabel(f"occlusion\n(drop in p, {patch}x{patch})")
    axes[2, 0].set_ylabel("|input gradient|")
    fig.suptitle("Which regions the judge's prediction depends on", fontweight="bold")
    return Drawn(
        fig,
        caption=(
            f"Top: test images and the judge's prediction. Middle: occlusion, the drop in the predicted class's "
            f"probability when a {patch}x{patch} patch around each pixel is set to 0 (averaged over the patches, "
            f"stride {stride}, that cover it); red = the region supports the prediction, blue = hiding it makes the "
            "prediction more confident. Bottom: |d logit / d pixel| (saliency), a local, first-order view of the same "
            f"question.{quick_note(o.cfg)}"
        ),
    )


@table("receptive_field")
def table_receptive_field(o: Opened, size: int = 128) -> Drawn:
    """The conv3, conv3, maxpool2, conv3, conv5 stack on 128x128: formula vs measurement on torch layers."""
    stacks = {"MaxPool2d(2) (stride 2, PyTorch default)": EXAMPLE, "MaxPool2d(2, stride=1)": EXAMPLE_STRIDE1_POOL}
    rows = geometry_table(size, stacks, key="pooling")
    return Drawn(
        rows=rows,
        caption=(
            f"Output size and receptive field of conv3, conv3, maxpool2, conv3, conv5 (stride-1 convolutions, no "
            f"padding) on a {size}x{size} input: n_out = floor((n + 2p - k) / s) + 1, r_out = r_in + (k - 1) j_in, "
            "j_out = j_in s. The last row of each stack is checked on real torch layers (output by a forward pass, "
            "receptive field by which input pixels get a gradient). The reference answer 117x117 is the stride-1 "
            "pooling case; PyTorch's MaxPool2d(2) halves the map and gives 56x56."
        ),
        summary={
            "receptive_field_117_case": {"output": rows[-1]["output"], "receptive_field": rows[-1]["receptive_field"]}
        },
    )


# ------------------------------------------------------------------------- the report's front table


def same_as_report(run: Run, s: dict) -> str:
    """The run's data and autoencoder beside the report's (MNIST; conv 16/32/64/96 -> 64-d, denoising 0.35,
    BCE, ~15 epochs at batch 128)."""
    cfg = run.read_config_file().get("config", {})
    data = "data yes: MNIST" if cfg.get("dataset") == "mnist" else f"data no: {cfg.get('dataset')}, not MNIST"
    epochs = cfg.get("steps", 0) * cfg.get("batch_size", 0) / max(s.get("train_images") or 60000, 1)
    code, sigma = cfg.get("code_dim"), cfg.get("noise_sigma")
    model = "model close" if (code, sigma) == (64, 0.35) else "model no"
    return (
        f"{data}; {model}: conv AE 16/32/64/96 -> {code}-d code, noise {sigma}, but 3x3/4x4 kernels, BatchNorm and "
        f"LeakyReLU(0.2) where the course's starter differs, trained {epochs:.2g} epochs on "
        f"{s.get('train_images', '?')} images (report: ~15 on 60000)"
    )


def key_metrics(runs: list[Run]) -> list[dict]:
    """Few-label accuracy, cGAN agreement and Frechet distance against the reference report."""
    rows = []
    refs = {
        "codes + MLP": "0.745 (frozen codes)",
        AUGMENTED: "0.745 (frozen codes, no augmentation)",
        "from scratch: encoder + MLP": "0.607 (end-to-end)",
        SPREAD: ">= 0.85 (issue target)",
    }
    for run in runs:
        s = run.read_summary()
        same = same_as_report(run, s)
        n = s.get("few_label_labels", 50)
        for method, ref in refs.items():
            value = s.get(f"few_label/first {n}/{method}")
            if value:
                rows.append(
                    {
                        "metric": f"{n} labels, {method} (mean of draws)",
                        "value": value["mean"],
                        "reference": ref if n == 50 else f"{ref} with 50 labels",
                        "same": same if method != SPREAD else f"{same}; label spreading is genlab's addition",
                        "reference_from": "any run" if method == SPREAD else "full run",
                    }
                )
        if "search_best_test_acc" in s:
            rows.append(
                {
                    "metric": f"{n} labels: head chosen by cross-validation ({s['search_best']}), test accuracy",
                    "value": s["search_best_test_acc"],
                    "reference": "",
                    "same": f"{same}; grid of widths x depth x activation, chosen on the labelled images only",
                }
            )
        if "cgan_judge_agreement" in s:
            rows.append(
                {
                    "metric": "cGAN samples judged the requested digit",
                    "value": s["cgan_judge_agreement"],
                    "reference": "target >= 0.90",
                    "same": f"{same}; the judge CNN is genlab's (the report had none)",
                    "reference_from": "any run",
                }
            )
        if "fd_cgan_vs_test" in s:
            rows.append(
                {
                    "metric": "Frechet distance cGAN vs test (train vs test floor)",
                    "value": f"{s['fd_cgan_vs_test']:.3g} ({s['fd_train_vs_test']:.3g})",
                    "reference": "",
                    "same": "genlab's own measure (the report had none)",
                }
            )
    return rows
