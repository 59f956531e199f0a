"""GANs that live in an autoencoder's code space, and a CNN "judge" that scores generated images.

A latent GAN never sees pixels. The generator ``G`` maps noise ``u ~ N(0, I)`` (32 numbers) to a 64-d code;
the discriminator ``D`` sees codes ``E(x)`` of real images (normalised per dimension) and generated codes and
outputs a logit, "real" being large. The frozen decoder turns generated codes into images for display.

Non-saturating loss (Goodfellow et al. 2014), with ``softplus(t) = log(1 + e^t)``:

    L_D = E[softplus(-D(E(x)))] + E[softplus(D(G(u)))]
        (= -log sigmoid(D(real)) - log(1 - sigmoid(D(fake))))
    L_G = E[softplus(-D(G(u)))]
        (= -log sigmoid(D(fake)): strong gradients while D still wins, unlike log(1 - sigmoid(D(fake))))

A conditional GAN concatenates a one-hot class vector ``c`` to the generator's noise and to the
discriminator's input: ``G([u, c])``, ``D([z, c])``, so D can judge "is this a real code *of class c*".
Nothing forces D to use ``c``, though: it can win on realness alone, and then G ignores ``c`` too. A
*matching-aware* discriminator (Reed et al. 2016, "GAN-CLS") also gets real codes paired with a *wrong* class
as negatives:

    L_D = E[softplus(-D(E(x), c))] + 1/2 E[softplus(D(G(u, c'), c'))] + 1/2 E[softplus(D(E(x), c_wrong))]

so a code of the wrong class is "fake" too, and the generator must produce the class it was asked for.
:func:`gan_batches` and :func:`gan_step` are the batches and the step of ``genlab.train.fit`` (manual mode).

The judge is a small CNN classifier trained on real images. Its accuracy on generated images of a requested
class measures whether the class got through, and the Frechet distance between Gaussians fitted to its
penultimate features of generated and of real images measures how real the images look (an "FID" with a
domain-specific feature extractor in place of Inception). :func:`judge_latent_gans` gathers those numbers for an
autoencoder and its latent GANs; :func:`interpolation_rows` and :func:`midpoint_confidence` walk straight paths
between two codes and between two noise vectors, and ask the judge how digit-like the images along them stay.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from genlab.nn.autoencoder import ConvAutoencoder, decode_codes, encode_all, straight_path


def mlp(sizes: Sequence[int], slope: float = 0.2, out_act: nn.Module | None = None) -> nn.Sequential:
    """Linear layers of ``sizes`` with LeakyReLU(``slope``) between them."""
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(nn.Linear(a, b))
        if i < len(sizes) - 2:
            layers.append(nn.LeakyReLU(slope))
    if out_act is not None:
        layers.append(out_act)
    return nn.Sequential(*layers)


class CodeGenerator(nn.Module):
    """Noise (plus an optional one-hot class) -> a normalised code."""

    def __init__(
        self, noise_dim: int = 32, code_dim: int = 64, hidden: Sequence[int] = (128, 256), num_classes: int = 0
    ):
        super().__init__()
        self.noise_dim, self.num_classes = noise_dim, num_classes
        self.net = mlp([noise_dim + num_classes, *hidden, code_dim])

    def forward(self, u: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        return self.net(_with_class(u, y, self.num_classes))


class CodeDiscriminator(nn.Module):
    """A code (plus an optional one-hot class) -> a realness logit (reference MLP: 128-64-32, LeakyReLU)."""

    def __init__(self, code_dim: int = 64, hidden: Sequence[int] = (128, 64, 32), num_classes: int = 0):
        super().__init__()
        self.num_classes = num_classes
        self.net = mlp([code_dim + num_classes, *hidden, 1])

    def forward(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        return self.net(_with_class(z, y, self.num_classes)).squeeze(-1)


def _with_class(x: torch.Tensor, y: torch.Tensor | None, num_classes: int) -> torch.Tensor:
    if not num_classes:
        return x
    if y is None:
        raise ValueError("a conditional model needs class labels")
    return torch.cat([x, F.one_hot(y, num_classes).to(x.dtype)], dim=1)


class LatentGAN(nn.Module):
    """Generator + discriminator over codes standardised with the training codes' mean and std.

    ``code_mean``/``code_std`` are buffers (saved in the checkpoint): ``normalise`` maps encoder codes to the
    space the GAN works in, ``denormalise`` maps generated codes back for the decoder.
    """

    def __init__(
        self,
        noise_dim: int = 32,
        code_dim: int = 64,
        num_classes: int = 0,
        g_hidden: Sequence[int] = (128, 256),
        d_hidden: Sequence[int] = (128, 64, 32),
    ):
        super().__init__()
        self.noise_dim, self.code_dim, self.num_classes = noise_dim, code_dim, num_classes
        self.generator = CodeGenerator(noise_dim, code_dim, g_hidden, num_classes)
        self.discriminator = CodeDiscriminator(code_dim, d_hidden, num_classes)
        self.register_buffer("code_mean", torch.zeros(code_dim))
        self.register_buffer("code_std", torch.ones(code_dim))

    def set_code_stats(self, codes: torch.Tensor) -> None:
        self.code_mean.copy_(codes.mean(0))
        self.code_std.copy_(codes.std(0).clamp_min(1e-6))

    def normalise(self, codes: torch.Tensor) -> torch.Tensor:
        return (codes - self.code_mean) / self.code_std

    def denormalise(self, z: torch.Tensor) -> torch.Tensor:
        return z * self.code_std + self.code_mean

    def noise(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        return torch.randn(n, self.noise_dim, generator=generator, device=self.code_mean.device)

    @torch.no_grad()
    def sample_codes(
        self,
        n: int = 0,
        y: torch.Tensor | None = None,
        u: torch.Tensor | None = None,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """Generated codes in the *encoder's* space (ready for the decoder)."""
        if u is None:
            u = self.noise(n if y is None else len(y), generator)
        return self.denormalise(self.generator(u, y))


def discriminator_loss(d_real: torch.Tensor, d_fake: torch.Tensor) -> torch.Tensor:
    """``E[softplus(-D(real))] + E[softplus(D(fake))]``."""
    return F.softplus(-d_real).mean() + F.softplus(d_fake).mean()


def matching_discriminator_loss(d_real: torch.Tensor, d_fake: torch.Tensor, d_wrong: torch.Tensor) -> torch.Tensor:
    """Matching-aware ``L_D``: real codes with their class are real; generated codes, and real codes with a
    wrong class, are fake (each fake kind weighted 1/2)."""
    return F.softplus(-d_real).mean() + 0.5 * (F.softplus(d_fake).mean() + F.softplus(d_wrong).mean())


def generator_loss(d_fake: torch.Tensor) -> torch.Tensor:
    """Non-saturating generator loss ``E[softplus(-D(G(u)))]``."""
    return F.softplus(-d_fake).mean()


# ------------------------------------------------------------------------------------------------ one step


def gan_batches(
    gan: LatentGAN, real: torch.Tensor, labels: torch.Tensor | None, batch_size: int
) -> Callable[[int], tuple[torch.Tensor, torch.Tensor | None, torch.Tensor, torch.Tensor | None]]:
    """``batches(step)`` for ``genlab.train.fit``: random normalised ``real`` codes (with their ``labels`` for a
    conditional GAN), the generator's noise and (conditional) the classes it is asked for, on ``real``'s device."""
    k, dev = gan.num_classes, real.device

    def batches(step: int) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor, torch.Tensor | None]:
        i = torch.randint(len(real), (batch_size,), device=dev)
        u = torch.randn(batch_size, gan.noise_dim, device=dev)
        y_fake = torch.randint(k, (batch_size,), device=dev) if k else None
        return real[i], (labels[i] if k else None), u, y_fake

    return batches


def gan_step(
    m: nn.Module, batch: Any, optimize: Callable[[str, torch.Tensor], None], *, matching: bool = False
) -> dict[str, torch.Tensor]:
    """One step of a :class:`LatentGAN` in ``fit``'s manual mode (optimisers ``"d"`` and ``"g"``): the
    discriminator on a :func:`gan_batches` batch (matching-aware for a conditional GAN when ``matching``), then
    the generator against the updated discriminator. Returns the losses and D's mean probabilities of 'real'."""
    m = getattr(m, "module", m)  # unwrap DistributedDataParallel
    real, y_real, u, y_fake = batch
    k = m.num_classes
    fake = m.generator(u, y_fake)
    d_real, d_fake = m.discriminator(real, y_real), m.discriminator(fake.detach(), y_fake)
    if k and matching:
        y_wrong = (y_real + torch.randint(1, k, y_real.shape, device=y_real.device)) % k
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


# --------------------------------------------------------------------------------------------------- judge


class JudgeCNN(nn.Module):
    """A small CNN classifier for 32x32 images: three conv + max-pool blocks, 128 features, the logits."""

    def __init__(self, num_classes: int = 10, feature_dim: int = 128, channels: int = 1):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(channels, 16, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),  # 16x16
            nn.Conv2d(16, 32, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),  # 8x8
            nn.Conv2d(32, 64, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),  # 4x4
            nn.Flatten(),
            nn.Dropout(0.2),
            nn.Linear(64 * 4 * 4, feature_dim),
            nn.ReLU(),
        )
        self.head = nn.Linear(feature_dim, num_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x))


@torch.no_grad()
def judge_outputs(judge: nn.Module, x: torch.Tensor, batch: int = 1000) -> tuple[torch.Tensor, torch.Tensor]:
    """Predicted classes and penultimate features of ``x`` (eval mode, in batches), both on the CPU."""
    was = judge.training
    judge.eval()
    dev = next(judge.parameters()).device
    preds, feats = [], []
    for i in range(0, len(x), batch):
        f = judge.features(x[i : i + batch].to(dev))
        preds.append(judge.head(f).argmax(1).cpu())
        feats.append(f.cpu())
    judge.train(was)
    return torch.cat(preds), torch.cat(feats)


@torch.no_grad()
def judge_verdicts(judge: nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The judge's confidence (its top softmax probability) and class for each image of ``x`` (eval mode, one
    batch, on the judge's device)."""
    judge.eval()
    return F.softmax(judge(x.to(next(judge.parameters()).device)), 1).max(1)


def frechet_distance(a: np.ndarray | torch.Tensor, b: np.ndarray | torch.Tensor) -> float:
    """Frechet distance between Gaussians fitted to feature sets ``a`` and ``b`` (rows are samples).

    ``d^2 = |mu_a - mu_b|^2 + tr(S_a + S_b - 2 (S_a S_b)^(1/2))``; the matrix square root comes from scipy
    and its tiny imaginary part (numerical noise) is dropped.
    """
    from scipy import linalg

    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    mu_a, mu_b = a.mean(0), b.mean(0)
    s_a, s_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    eps = np.eye(len(s_a)) * 1e-6  # keeps sqrtm away from singular products of rank-deficient covariances
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        covmean = linalg.sqrtm((s_a + eps) @ (s_b + eps))
    covmean = np.real(covmean)
    return float(((mu_a - mu_b) ** 2).sum() + np.trace(s_a) + np.trace(s_b) - 2 * np.trace(covmean))


@torch.no_grad()
def judge_scores(
    judge: nn.Module,
    images: torch.Tensor,
    real_feats: torch.Tensor | None = None,
    requested: torch.Tensor | None = None,
    num_classes: int = 0,
) -> dict[str, Any]:
    """What a judge makes of ``images``: with ``real_feats`` (its features of real images) ``fd``, the Frechet
    distance between the two feature sets; with ``requested`` (the class each image should show) ``agreement``,
    the share it classifies as requested, and ``per_class`` that share for each of ``num_classes`` classes."""
    pred, feats = judge_outputs(judge, images)
    out: dict[str, Any] = {"features": feats}
    if real_feats is not None:
        out["fd"] = frechet_distance(feats, real_feats)
    if requested is not None:
        requested = requested.cpu()
        hit = pred == requested
        out["agreement"] = float(hit.float().mean())
        out["per_class"] = [float(hit[requested == c].float().mean()) for c in range(num_classes)]
    return out


# ------------------------------------------------------------------- an autoencoder's latent GANs, judged


@torch.no_grad()
def judge_latent_gans(
    judge: nn.Module,
    ae: ConvAutoencoder,
    test: tuple[torch.Tensor, torch.Tensor],
    train_x: torch.Tensor,
    *,
    gan: LatentGAN | None = None,
    cgan: LatentGAN | None = None,
    n: int = 2000,
    generator: torch.Generator | None = None,
) -> dict[str, Any]:
    """What the judge makes of an autoencoder and its latent GANs, against ``n`` real ``test`` images.

    Its accuracy on every test image (``judge_test_accuracy``) and on the reconstructions of the ``n``; Frechet
    distances (``fd_*_vs_test``) between its features of the ``n`` test images and of ``n`` reconstructions,
    ``n`` training images (the floor that sampling noise sets), decoded GAN samples and decoded codes drawn from
    a diagonal Gaussian with the real codes' mean and std; the share of decoded cGAN samples it classifies as
    the requested class, overall and per class. The noise comes from ``generator`` (on the CPU), in that order.
    """
    x, y = test
    dev = next(ae.parameters()).device
    n = min(n, len(x))
    real = judge_outputs(judge, x[:n])[1]

    def fd(images: torch.Tensor) -> float:
        return judge_scores(judge, images, real)["fd"]

    rec = judge_scores(judge, decode_codes(ae, encode_all(ae.encoder, x[:n])), real, y[:n])
    out: dict[str, Any] = {
        "judge_test_accuracy": judge_scores(judge, x, requested=y)["agreement"],
        "judge_accuracy_on_reconstructions": rec["agreement"],
        "fd_reconstructions_vs_test": rec["fd"],
        "fd_train_vs_test": fd(train_x[:n]),
    }
    if gan is not None:
        u = torch.randn(n, gan.noise_dim, generator=generator).to(dev)
        out["fd_gan_vs_test"] = fd(decode_codes(ae, gan.sample_codes(u=u)))
        gauss = gan.denormalise(torch.randn(n, gan.code_dim, generator=generator).to(dev))
        out["fd_diag_gaussian_codes_vs_test"] = fd(decode_codes(ae, gauss))
    if cgan is not None:
        k = cgan.num_classes
        requested = torch.arange(k).repeat_interleave(int(np.ceil(n / k)))[:n]
        u = torch.randn(len(requested), cgan.noise_dim, generator=generator).to(dev)
        c = judge_scores(judge, decode_codes(ae, cgan.sample_codes(y=requested.to(dev), u=u)), real, requested, k)
        out["cgan_judge_agreement"], out["fd_cgan_vs_test"] = c["agreement"], c["fd"]
        out["cgan_judge_agreement_per_class"] = c["per_class"]
    out["fd_samples"] = n
    return out


@torch.no_grad()
def interpolation_rows(
    ae: ConvAutoencoder, gan: LatentGAN, a: torch.Tensor, b: torch.Tensor, u: torch.Tensor, steps: int
) -> dict[str, torch.Tensor]:
    """Three rows of ``steps`` images from image ``a`` to image ``b``: ``pixels``, their pixels blended; ``ae``,
    the straight path between their codes, decoded; ``gan``, the generator along the straight path between the
    noise vectors ``u[0]`` and ``u[1]``, decoded."""
    za, zb = ae.encode(torch.stack([a, b]))
    return {
        "pixels": straight_path(a, b, steps),
        "ae": ae.decode(straight_path(za, zb, steps)),
        "gan": ae.decode(gan.sample_codes(u=straight_path(u[0], u[1], steps))),
    }


@torch.no_grad()
def midpoint_confidence(
    ae: ConvAutoencoder, gan: LatentGAN, judge: nn.Module, x: torch.Tensor, pairs: int, generator: torch.Generator
) -> dict[str, float]:
    """The judge's mean confidence at the midpoints of straight paths between the codes of ``pairs`` random
    pairs of images ``x`` (``ae_midpoint``) and between random noise vectors (``gan_midpoint``), and on the
    reconstructions of the first image of each pair (``ae_endpoint``): how digit-like the paths stay."""
    dev = gan.code_mean.device
    i = torch.randint(len(x), (pairs, 2), generator=generator)
    z = encode_all(ae.encoder, x[i.flatten()]).view(pairs, 2, -1)
    mid_ae = ae.decode((z[:, 0] + z[:, 1]) / 2)
    u = torch.randn(pairs, 2, gan.noise_dim, generator=generator).to(dev)
    mid_gan = ae.decode(gan.sample_codes(u=(u[:, 0] + u[:, 1]) / 2))
    images = {"ae_endpoint": ae.decode(z[:, 0]), "ae_midpoint": mid_ae, "gan_midpoint": mid_gan}
    return {name: float(judge_verdicts(judge, imgs)[0].mean()) for name, imgs in images.items()}
