"""The lab's model variants and the settings that depend on the data: the GRU's candidate activation, dropout in
the token-wise MLP, epochs as steps, and the test reviews ``explain`` shows when it is given none.

The variants themselves are settings of :func:`~genlab.nn.sentiment_models.build_classifier`: ``candidate``
(GRU: ``h~ = act(W_h [x, r * h] + b_h)`` with ``act`` = tanh, the lab's, sigmoid, relu or none) and ``dropout``
(mlp, attention: ``nn.Dropout(p)`` after each hidden layer's ReLU, the checkpoint's keys unchanged).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from torch import nn

from genlab.data import reviews as rv
from genlab.labs.sentiment.config import SentimentConfig
from genlab.nn.sentiment_models import predict_proba

LABELS = ("negative", "positive")


def with_epochs(cfg: SentimentConfig, data: rv.Prepared) -> SentimentConfig:
    """``cfg`` with ``steps`` = ``epochs`` passes over ``data``'s training reviews at ``batch_size`` (``epochs``
    0: ``cfg`` as it is)."""
    if not cfg.epochs:
        return cfg
    return cfg.update({"steps": math.ceil(cfg.epochs * len(data.train_y) / cfg.batch_size)})


def pick_test_reviews(
    model: nn.Module, data: rv.Prepared, max_words: int = 25, min_words: int = 6
) -> list[tuple[str, str]]:
    """One test review ``model`` predicts right and one it predicts wrong, as ``(text, true label)``: the first
    of each in test order among reviews of ``min_words`` to ``max_words`` words (short enough to read word by
    word; any length when none fits). Fewer when the model gets every review right (or wrong)."""
    texts = [t for t in data.split.test_texts if rv.clean(t)]  # as prepare(): reviews with no words are dropped
    p = predict_proba(model, data.test_ids, data.test_len, next(model.parameters()).device)
    y = data.test_y.numpy()
    right = (p >= 0.5).astype(int) == y
    n = data.test_len.numpy()
    short = (n >= min_words) & (n <= max_words)
    picks = []
    for want in (True, False):
        idx = np.flatnonzero((right == want) & short)
        idx = idx if len(idx) else np.flatnonzero(right == want)
        if len(idx):
            picks.append((texts[idx[0]], LABELS[int(y[idx[0]])]))
    return picks


def verdict(result: dict[str, Any], label: str | None) -> str:
    """``true label negative, predicted negative: right`` (or the prediction alone for a review of unknown label)."""
    said = f"predicted {result['prediction']} (P(pos) = {result['p_pos']:.3f})"
    if label is None:
        return said
    return f"true label {label}, {said}: {'right' if result['prediction'] == label else 'WRONG'}"
