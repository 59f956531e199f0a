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

The judge is a small CNN classifier trained on real images. Its accuracy on generated images of a requested
class measures whether the class got through, and the Frechet distance between Gaussians fitted to its
penultimate features of generated and of real images measures how real the images look (an "FID" with a
domain-specific feature extractor in place of Inception).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn


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
