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
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from genlab.nn.label_spreading import LabelSpreading, nearest


def standardise(train: torch.Tensor, *others: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """``train`` and each of ``others`` minus the training mean, over the training std (per dimension)."""
    mean, std = train.mean(0), train.std(0).clamp_min(1e-6)
    return tuple((z - mean) / std for z in (train, *others))


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
