"""Classifiers that learn from a few labelled examples on top of fixed codes, and the rows of such an experiment.

The codes come from an encoder that never saw a label (the latent lab's autoencoder); :func:`standardise` puts
every dimension on the training codes' scale. Three probes need no training loop (:class:`CodeProbes`):

* logistic regression on the labelled codes (scikit-learn, L2, ``C = 1``);
* 1-NN: each test code takes the label of its most cosine-similar labelled code;
* label spreading (:mod:`genlab.nn.label_spreading`) over a k-NN graph of unlabelled training codes plus the
  labelled ones: the only probe that also learns from the codes that carry no label.

A trained head (an MLP on the codes, or an encoder trained from scratch) goes through :func:`genlab.train.fit`
with :func:`classify_step` and is scored with :func:`accuracy`. :func:`draw_rows` turns the accuracies of
every label draw into one row per method: mean, spread and every draw.

:func:`augment_images` / :func:`augmented_codes` give a head more labelled codes without any unlabelled image:
randomly rotated, scaled, shifted and elastically distorted copies of the labelled images, each with its image's
label, through the same frozen encoder.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from genlab.nn.label_spreading import LabelSpreading, nearest


def standardiser(train: torch.Tensor) -> Callable[[torch.Tensor], torch.Tensor]:
    """The map ``z -> (z - mean) / std`` with the mean and std (per dimension) of the codes ``train``."""
    mean, std = train.mean(0), train.std(0).clamp_min(1e-6)
    return lambda z: (z - mean) / std


def standardise(train: torch.Tensor, *others: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """``train`` and each of ``others`` minus the training mean, over the training std (per dimension)."""
    scale = standardiser(train)
    return tuple(scale(z) for z in (train, *others))


def frozen_codes(
    encoder: nn.Module, train_x: torch.Tensor, *others: torch.Tensor
) -> tuple[tuple[torch.Tensor, ...], Callable[[torch.Tensor], torch.Tensor]]:
    """The codes of ``train_x`` and of each of ``others`` through the frozen ``encoder`` (on the CPU), standardised
    on the training codes' scale, and that scale (:func:`standardiser`, for more codes of the same encoder)."""
    from genlab.nn.autoencoder import encode_all

    raw = encode_all(encoder, train_x).cpu()
    scale = standardiser(raw)
    return (scale(raw), *(scale(encode_all(encoder, x).cpu()) for x in others)), scale


def classify_step(m: nn.Module, batch: Any) -> dict[str, Any]:
    """Cross-entropy of a labelled batch ``(x, y)`` and its accuracy: a ``step_fn`` for ``genlab.train.fit``."""
    logits = m(batch[0])
    return {"loss": F.cross_entropy(logits, batch[1]), "train_acc": (logits.argmax(1) == batch[1]).float().mean()}


@torch.no_grad()
def accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch: int = 2000) -> float:
    """The share of ``x`` that ``model`` (in eval mode, on its own device, in batches) classifies as ``y``."""
    model.eval()
    dev = next(model.parameters()).device
    right = sum(
        int((model(x[i : i + batch].to(dev)).argmax(1).cpu() == y[i : i + batch].cpu()).sum())
        for i in range(0, len(x), batch)
    )
    return right / max(1, len(x))


class CodeProbes:
    """The probes without a training loop for one set of training and test codes.

    The label-spreading graph is built once for every draw: ``points`` random training codes (0 = all; the
    order drawn from ``seed``) plus every code in ``labelled`` (the indices of every draw's labelled examples).
    """

    def __init__(
        self,
        train_z: torch.Tensor,
        test_z: torch.Tensor,
        labelled: Iterable[torch.Tensor],
        *,
        points: int = 0,
        k: int = 10,
        seed: int = 0,
    ):
        self.train_z, self.test_z = train_z, test_z
        self.test_unit = F.normalize(test_z, dim=1)
        gen = torch.Generator().manual_seed(seed)
        m = min(points or len(train_z), len(train_z))
        nodes = torch.unique(torch.cat([torch.randperm(len(train_z), generator=gen)[:m], *labelled]))
        self.position = torch.full((len(train_z),), -1, dtype=torch.long)  # index in the graph (-1: not in it)
        self.position[nodes] = torch.arange(len(nodes))
        if not 1 <= k < len(nodes):
            from genlab.errors import ConfigError

            raise ConfigError(
                f"bad value {k} for spread_k: the label-spreading graph has {len(nodes)} codes, so each can have at "
                f"most {len(nodes) - 1} neighbours; use --set spread_k=10"
            )
        self.graph = LabelSpreading(train_z[nodes], k=k)
        self.test_neighbours = nearest(test_z, train_z[nodes], k)
        self.nodes = len(nodes)

    def accuracies(
        self, idx: torch.Tensor, y: torch.Tensor, test_y: torch.Tensor, num_classes: int
    ) -> dict[str, float]:
        """Test accuracy of each probe when the training codes ``idx`` carry the labels ``y``."""
        from sklearn.linear_model import LogisticRegression

        z = self.train_z[idx]
        logreg = LogisticRegression(C=1.0, max_iter=2000).fit(z.numpy(), y.numpy())
        nearest1 = (self.test_unit @ F.normalize(z, dim=1).T).argmax(1)
        scores = self.graph.spread(self.position[idx], y, num_classes)
        return {
            "logistic regression": float((logreg.predict(self.test_z.numpy()) == test_y.numpy()).mean()),
            "k-NN (cosine, k=1)": float((y[nearest1] == test_y).float().mean()),
            "label spreading (k-NN graph)": float(
                (self.graph.predict(scores, self.test_neighbours) == test_y).float().mean()
            ),
        }


def draw_rows(results: Mapping[tuple[str, str], Sequence[float]]) -> list[dict[str, Any]]:
    """One row per ``(labels, method)`` key of ``results`` (its test accuracy in every draw), in their order."""
    return [
        {
            "labels": labels,
            "method": method,
            "mean_test_acc": round(float(np.mean(accs)), 4),
            "std": round(float(np.std(accs)), 4),
            "min": round(min(accs), 4),
            "max": round(max(accs), 4),
            "per_draw": " ".join(f"{a:.3f}" for a in accs),
        }
        for (labels, method), accs in results.items()
    ]


# ------------------------------------------------------------------ cross-validation of many copies at once


class Stacked(nn.Module):
    """``m`` independent copies of one architecture, evaluated at once on the same input with
    :func:`torch.func.vmap`: ``(N, ...) -> (m, N, classes)``.

    The copies share nothing but their shape; with a loss that is a sum of per-copy losses (:func:`masked_step`)
    and an element-wise optimiser (Adam, AdamW), each copy trains exactly as it would alone. The folds of a
    cross-validation and the final fit on every labelled example train as one model.
    """

    def __init__(self, make: Callable[[], nn.Module], m: int):
        super().__init__()
        copies = [make() for _ in range(m)]
        params, buffers = torch.func.stack_module_state(copies)
        if buffers:
            raise ValueError("Stacked takes modules without buffers (no batch norm)")
        self.names = list(params)
        self.stacked = nn.ParameterList([nn.Parameter(params[k]) for k in self.names])
        self._base = [copies[0].to("meta")]  # in a list: not a submodule; only its code runs, never its weights

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        base = self._base[0].train(self.training)

        def one(params: tuple[torch.Tensor, ...], inp: torch.Tensor) -> torch.Tensor:
            return torch.func.functional_call(base, dict(zip(self.names, params)), (inp,))

        return torch.func.vmap(one, in_dims=(0, None), randomness="different")(tuple(self.stacked), x)


def masked_step(m: nn.Module, batch: Any) -> dict[str, Any]:
    """A ``step_fn`` for ``genlab.train.fit`` that trains the copies of a :class:`Stacked` model on their own rows:
    ``batch = (x, y, mask)`` with ``mask[c, i] = 1`` when copy ``c`` learns from example ``i``. The loss is the sum
    over copies of each copy's mean cross-entropy over its rows."""
    x, y, mask = batch
    logits = m(x)
    ce = F.cross_entropy(logits.flatten(0, 1), y.repeat(len(mask)), reduction="none").view_as(mask)
    return {"loss": ((ce * mask).sum(1) / mask.sum(1).clamp_min(1)).sum()}


@torch.no_grad()
def stacked_scores(m: nn.Module, x: torch.Tensor, y: torch.Tensor, mask: torch.Tensor | None = None) -> dict[str, Any]:
    """Accuracy and mean cross-entropy of every copy of ``m`` (eval mode) on the rows of ``(x, y)`` that ``mask``
    (``(copies, N)``, default all) selects: two tensors of shape ``(copies,)``."""
    m.eval()
    logits = m(x)
    mask = torch.ones(logits.shape[:2], device=logits.device) if mask is None else mask.to(logits.device)
    ce = F.cross_entropy(logits.flatten(0, 1), y.repeat(len(logits)), reduction="none").view_as(mask)
    right = (logits.argmax(-1) == y).float()
    n = mask.sum(1).clamp_min(1)
    return {"acc": (right * mask).sum(1) / n, "ce": (ce * mask).sum(1) / n}


def fold_masks(y: torch.Tensor, folds: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """``folds``-fold cross-validation of the labelled examples ``y``: ``(train, val)`` masks of shape
    ``(folds + 1, N)``; copy ``f < folds`` trains on every fold but ``f`` and is validated on fold ``f``, the last
    copy trains on every example (and has no validation rows). Folds keep the class balance where every fold can
    (scikit-learn's StratifiedKFold), else they are plain shuffled folds (KFold)."""
    import warnings

    from sklearn.model_selection import KFold, StratifiedKFold

    from genlab.errors import ConfigError

    n = len(y)
    if not 2 <= folds <= n:
        raise ConfigError(f"bad value {folds} for search_folds: it must lie in 2..{n} (the labelled examples)")
    labels = y.cpu().numpy()
    kind = StratifiedKFold if np.bincount(labels).max() >= folds else KFold
    train, val = torch.zeros(folds + 1, n), torch.zeros(folds + 1, n)
    with warnings.catch_warnings():  # a class with fewer members than folds: sklearn warns, the split is still valid
        warnings.simplefilter("ignore", UserWarning)
        for f, (tr, va) in enumerate(kind(folds, shuffle=True, random_state=seed).split(np.zeros(n), labels)):
            train[f, tr], val[f, va] = 1.0, 1.0
    train[folds] = 1.0
    return train, val


# ------------------------------------------------------------------ augmenting the labelled images


def _smooth_field(field: torch.Tensor, sigma: float) -> torch.Tensor:
    """``field`` (``(N, C, H, W)``) blurred by a Gaussian of ``sigma`` pixels along both axes (zero padding)."""
    r = max(1, int(3 * sigma))
    t = torch.arange(-r, r + 1, dtype=field.dtype)
    g = torch.exp(-(t**2) / (2 * sigma**2))
    g = g / g.sum()
    c = field.shape[1]
    field = F.conv2d(field, g.view(1, 1, 1, -1).repeat(c, 1, 1, 1), padding=(0, r), groups=c)
    return F.conv2d(field, g.view(1, 1, -1, 1).repeat(c, 1, 1, 1), padding=(r, 0), groups=c)


def augment_images(
    x: torch.Tensor,
    copies: int,
    *,
    seed: int = 0,
    rotate: float = 12.0,
    shift: float = 2.0,
    scale: float = 0.1,
    elastic: float = 1.5,
    elastic_sigma: float = 4.0,
) -> torch.Tensor:
    """``copies`` randomly distorted versions of each image of ``x`` (``(N, C, H, W)``), copy-major:
    ``(copies * N, C, H, W)`` where row ``c * N + i`` is a copy of image ``i`` (its label is ``y.repeat(copies)``).

    Each copy is rotated by up to ``rotate`` degrees, scaled by up to ``1 +- scale``, shifted by up to ``shift``
    pixels per axis (all uniform), and moved by an elastic displacement field (uniform noise blurred by a Gaussian
    of ``elastic_sigma`` pixels, scaled to ``elastic`` pixels at most; 0 = none); pixels are resampled bilinearly
    with zeros outside the image. Only the given images are used: no other data. Drawn from ``seed`` alone."""
    from genlab.errors import ConfigError

    if copies < 0:
        raise ConfigError(f"bad value {copies} for augment: the copies per labelled image must be >= 0")
    n, _, h, w = x.shape
    if copies == 0 or n == 0:
        return x[:0]
    gen = torch.Generator().manual_seed(seed)
    m = copies * n

    def uniform(*shape: int) -> torch.Tensor:
        return torch.rand(*shape, generator=gen) * 2 - 1

    angle = uniform(m) * rotate * torch.pi / 180
    zoom = 1 + uniform(m) * scale
    move = uniform(m, 2) * shift * 2 / torch.tensor([w, h])  # pixels -> [-1, 1] coordinates
    cos, sin = torch.cos(angle) / zoom, torch.sin(angle) / zoom
    theta = torch.stack([torch.stack([cos, -sin, move[:, 0]], 1), torch.stack([sin, cos, move[:, 1]], 1)], 1)
    grid = F.affine_grid(theta, [m, 1, h, w], align_corners=False)
    if elastic > 0:
        field = _smooth_field(uniform(m, 2, h, w), elastic_sigma)
        field = field / field.abs().amax(dim=(2, 3), keepdim=True).clamp_min(1e-8) * elastic
        grid = grid + field.permute(0, 2, 3, 1) * 2 / torch.tensor([w, h])
    src = x.cpu().float().repeat(copies, 1, 1, 1)
    return F.grid_sample(src, grid, mode="bilinear", padding_mode="zeros", align_corners=False).to(x.dtype)


@torch.no_grad()
def augmented_codes(
    encoder: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    copies: int,
    scale: Callable[[torch.Tensor], torch.Tensor] = lambda z: z,
    *,
    seed: int = 0,
    **distort: float,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The labelled images ``(x, y)`` and ``copies`` distorted copies of each (:func:`augment_images`) through the
    frozen ``encoder`` and then ``scale`` (e.g. :func:`standardiser` of the training codes): ``(codes, labels)`` of
    ``(copies + 1) * N`` rows on the CPU, the originals first, each copy with its image's label. Only the labelled
    images are used."""
    from genlab.nn.autoencoder import encode_all

    xs = torch.cat([x.cpu(), augment_images(x.cpu(), copies, seed=seed, **distort)])
    return scale(encode_all(encoder, xs).cpu()), y.cpu().repeat(copies + 1)
