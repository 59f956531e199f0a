"""A convolutional autoencoder for 32x32 grey images, and the small classifiers built on its encoder.

Encoder: four 3x3 convolutions with stride 2 (16, 32, 64, 96 channels; 32 -> 16 -> 8 -> 4 -> 2 pixels), each
followed by batch norm and LeakyReLU, then a linear layer from the 96x2x2 = 384 features to the code
(64 numbers by default). The decoder mirrors it: linear 64 -> 384, then four 4x4 transposed convolutions with
stride 2 (96 -> 64 -> 32 -> 16 -> 1 channels; 2 -> 4 -> 8 -> 16 -> 32 pixels). The decoder returns *logits*; a
sigmoid turns them into pixel intensities in [0, 1], and the loss is the binary cross-entropy between those
and the input pixels (computed from the logits, which is numerically safer).

A *denoising* autoencoder sees ``clamp(x + sigma * eps, 0, 1)`` with ``eps ~ N(0, I)`` but must reconstruct
the clean ``x``: it cannot just copy pixels, so its code has to capture the shape of the digit.

Beside them: :func:`encode_all` / :func:`decode_codes` (many images or codes, in batches),
:func:`reconstruction_errors` (BCE and MSE of the reconstructions) and :func:`straight_path` (the points
``(1 - t) a + t b`` between two images, codes or noise vectors).
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial

import torch
import torch.nn.functional as F
from torch import nn

from genlab.errors import choose

WIDTHS = (16, 32, 64, 96)


def _down(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride=2, padding=1), nn.BatchNorm2d(cout), nn.LeakyReLU(0.2))


def _up(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.ConvTranspose2d(cin, cout, 4, stride=2, padding=1), nn.BatchNorm2d(cout), nn.LeakyReLU(0.2))


class ConvEncoder(nn.Module):
    """``(N, 1, size, size)`` images -> ``(N, code_dim)`` codes through stride-2 convolutions."""

    def __init__(self, code_dim: int = 64, widths: Sequence[int] = WIDTHS, size: int = 32, channels: int = 1):
        super().__init__()
        chans = (channels, *widths)
        self.convs = nn.Sequential(*[_down(a, b) for a, b in zip(chans[:-1], chans[1:])])
        self.side = size // 2 ** len(widths)
        self.fc = nn.Linear(widths[-1] * self.side**2, code_dim)
        self.code_dim = code_dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.convs(x).flatten(1))


class ConvDecoder(nn.Module):
    """``(N, code_dim)`` codes -> ``(N, 1, size, size)`` logits, mirroring :class:`ConvEncoder`."""

    def __init__(self, code_dim: int = 64, widths: Sequence[int] = WIDTHS, size: int = 32, channels: int = 1):
        super().__init__()
        self.side = size // 2 ** len(widths)
        self.top = widths[-1]
        self.fc = nn.Sequential(nn.Linear(code_dim, widths[-1] * self.side**2), nn.LeakyReLU(0.2))
        rev = tuple(reversed(widths))
        self.ups = nn.Sequential(*[_up(a, b) for a, b in zip(rev[:-1], rev[1:])])
        self.out = nn.ConvTranspose2d(rev[-1], channels, 4, stride=2, padding=1)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        h = self.fc(z).view(-1, self.top, self.side, self.side)
        return self.out(self.ups(h))


class ConvAutoencoder(nn.Module):
    """Encoder + decoder; ``noise_sigma > 0`` makes it a denoising autoencoder (noise only while training)."""

    def __init__(self, code_dim: int = 64, widths: Sequence[int] = WIDTHS, size: int = 32, noise_sigma: float = 0.0):
        super().__init__()
        self.encoder = ConvEncoder(code_dim, widths, size)
        self.decoder = ConvDecoder(code_dim, widths, size)
        self.noise_sigma = noise_sigma

    def corrupt(self, x: torch.Tensor) -> torch.Tensor:
        """The denoising input: ``clamp(x + sigma * eps, 0, 1)`` (``x`` itself when sigma is 0)."""
        if self.noise_sigma <= 0:
            return x
        return (x + self.noise_sigma * torch.randn_like(x)).clamp(0, 1)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return self.encoder(x)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Codes -> images in [0, 1]."""
        return torch.sigmoid(self.decoder(z))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Reconstruction logits of ``x`` (of its corrupted copy while training a denoising model)."""
        inp = self.corrupt(x) if self.training else x
        return self.decoder(self.encoder(inp))

    def loss(self, x: torch.Tensor) -> torch.Tensor:
        """Mean binary cross-entropy per pixel between the reconstruction and the clean ``x``."""
        return F.binary_cross_entropy_with_logits(self(x), x)


HEAD_ACTIVATIONS = {
    "relu": nn.ReLU,
    "leaky_relu": partial(nn.LeakyReLU, 0.2),
    "tanh": nn.Tanh,
    "sigmoid": nn.Sigmoid,
    "gelu": nn.GELU,
}


class CodeClassifier(nn.Module):
    """A small MLP on (frozen) codes: code -> hidden layer(s) -> classes.

    ``hidden`` is one width or a sequence of widths (one hidden layer each; 0 or ``()`` gives a linear
    classifier); each hidden layer is Linear, ``activation`` (a key of :data:`HEAD_ACTIVATIONS`), Dropout.
    """

    def __init__(
        self,
        code_dim: int = 64,
        num_classes: int = 10,
        hidden: int | Sequence[int] = 128,
        dropout: float = 0.2,
        activation: str = "relu",
    ):
        super().__init__()
        widths = ((hidden,) if hidden else ()) if isinstance(hidden, int) else tuple(hidden)
        if widths:
            choose("activation", activation, HEAD_ACTIVATIONS)
        dims, layers = (code_dim, *widths), []
        for a, b in zip(dims[:-1], dims[1:]):
            layers += [nn.Linear(a, b), HEAD_ACTIVATIONS[activation](), nn.Dropout(dropout)]
        self.net = (
            nn.Sequential(*layers, nn.Linear(dims[-1], num_classes)) if layers else nn.Linear(code_dim, num_classes)
        )

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z)


class EncoderClassifier(nn.Module):
    """The same encoder and classifier head, trained end to end (the from-scratch baseline)."""

    def __init__(
        self,
        code_dim: int = 64,
        num_classes: int = 10,
        widths: Sequence[int] = WIDTHS,
        size: int = 32,
        hidden: int = 128,
    ):
        super().__init__()
        self.encoder = ConvEncoder(code_dim, widths, size)
        self.head = CodeClassifier(code_dim, num_classes, hidden)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.encoder(x))


@torch.no_grad()
def encode_all(encoder: nn.Module, x: torch.Tensor, batch: int = 1024) -> torch.Tensor:
    """Codes of every image in ``x`` (eval mode, in batches, on the encoder's device)."""
    was = encoder.training
    encoder.eval()
    dev = next(encoder.parameters()).device
    out = (
        torch.cat([encoder(x[i : i + batch].to(dev)) for i in range(0, len(x), batch)])
        if len(x)
        else torch.empty(0, getattr(encoder, "code_dim", 0), device=dev)
    )
    encoder.train(was)
    return out


@torch.no_grad()
def reconstruction_errors(ae: nn.Module, x: torch.Tensor, batch: int = 500) -> dict[str, float]:
    """Binary cross-entropy per pixel (from the logits) and mean squared error of ``ae``'s reconstructions of
    ``x`` (in batches, in ``ae``'s current mode)."""
    logits = torch.cat([ae(x[i : i + batch]) for i in range(0, len(x), batch)])
    return {
        "bce": F.binary_cross_entropy_with_logits(logits, x).item(),
        "mse": F.mse_loss(torch.sigmoid(logits), x).item(),
    }


def straight_path(a: torch.Tensor, b: torch.Tensor, steps: int) -> torch.Tensor:
    """``(1 - t) a + t b`` for ``steps`` values of ``t`` from 0 to 1, stacked on a new first dimension: the
    straight path between two images, two codes or two noise vectors."""
    t = torch.linspace(0, 1, steps, device=a.device).view(-1, *[1] * a.dim())
    return (1 - t) * a + t * b


@torch.no_grad()
def decode_codes(ae: ConvAutoencoder, codes: torch.Tensor, batch: int = 1000) -> torch.Tensor:
    """Images in [0, 1] decoded from any number of ``codes`` (in batches)."""
    return torch.cat([ae.decode(codes[i : i + batch]) for i in range(0, len(codes), batch)])
