"""Lab 4: movie-review sentiment with an Elman RNN, a GRU, a token-wise MLP and restricted self-attention.

Each model reads a review's words (frozen GloVe 6B 50-d vectors, or learned embeddings) and gives two
logits, negative and positive; training follows the lab: batches of 32 reviews, Adam, cross-entropy, one test
batch scored every 50 steps (the curves), then accuracy, F1 and ROC-AUC on the whole train and test sets,
next to a TF-IDF + logistic-regression baseline on the same split. The recurrent models show how far back
the gradient reaches (backpropagation through time: it vanishes in the tanh Elman RNN, the GRU's gate keeps
a path open); the token-wise MLP explains itself, since the review's score is the mean of per-word
sub-scores, and restricted self-attention lets a word's sub-score depend on its neighbours ("not good").
The reports' variations are config keys and sweep axes: the GRU's candidate activation (tanh, sigmoid, relu,
none), the MLP's widths and dropout, the learning rate (``genlab sentiment sweep --candidates/--widths/--dropouts/
--lrs``); ``--preset report`` is the reports' setup (lr 1e-4, batch 32, 10 epochs, a test batch every 50 steps).
The models are in :mod:`genlab.nn.recurrent`, :mod:`genlab.nn.attention` and :mod:`genlab.nn.sentiment_models`,
the data in :mod:`genlab.data.reviews`. Outputs spanning several runs (the comparison table, the trained BPTT
curves, explain over the mlp and attention runs) read them through the opened run's ``runs``
(``genlab sentiment figures --run DIR --with DIR ...``).
"""

from genlab.labs import LabSpec
from genlab.labs.sentiment import compare as _compare  # noqa: F401  (outputs comparing runs; it imports figures first)
from genlab.labs.sentiment import figures as _figures  # noqa: F401  (registers the lab's outputs)
from genlab.labs.sentiment.cli import TITLE, register
from genlab.labs.sentiment.config import PRESETS, SentimentConfig
from genlab.labs.sentiment.experiments import demo, key_metrics

LABELS = {
    "model": "model",
    "description": "model in words",
    "dataset": "reviews",
    "train_acc": "training accuracy",
    "train_f1": "training F1",
    "train_auc": "training ROC-AUC",
    "test_acc": "test accuracy",
    "test_f1": "test F1",
    "test_auc": "test ROC-AUC",
    "baseline_test_acc": "TF-IDF + logistic regression: test accuracy",
    "train_reviews_per_s": "training speed (reviews/s)",
    "cells": "sweep: cells",
    "reused": "sweep: cells reused",
    "best_cell": "sweep: best cell",
    "rnn_vs_gru": "best GRU and best Elman RNN (test accuracy)",
    "candidates": "GRU candidate activation: test accuracy",
}

SPEC = LabSpec(
    name="sentiment",
    title=TITLE,
    order=4,
    Config=SentimentConfig,
    presets=PRESETS,
    register=register,
    demo=demo,
    key_metrics=key_metrics,
    story=__doc__,
    # quick: measured by .ci/run; full: measured by genlab report --full on a busy 2-core CPU (the four models, 6 MLP
    # and 4 GRU sweep cells, 3200 steps each)
    expected_seconds={"quick": 30, "full": 190},
    labels=LABELS,
)
