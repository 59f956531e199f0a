"""Review classifiers: recurrent (Elman / GRU), token-wise MLP, and MLP + restricted self-attention.

Every model maps token ids ``(B, T)`` and a padding mask ``(B, T)`` to two logits ``(B, 2)`` =
(negative, positive). Words enter through :class:`WordEmbedding`: frozen GloVe vectors (zero for unknown words
and padding; kept out of the checkpoint, since they are the fetched file) or a learned table.

* :class:`RecurrentClassifier`: run the cells over the words, take the state after the last real word, then a
  small MLP head.
* :class:`TokenMLP`: each word gets its own 2-class sub-score ``s_i = MLP(x_i)``; the review's scores are the
  mean of the sub-scores over its real words. The sub-scores *are* the explanation: a word pushes the review
  toward the class whose sub-score it raises.
* :class:`AttentionMLP`: each word first attends to its ``k`` neighbours on each side
  (:class:`~genlab.nn.attention.RestrictedSelfAttention`), then the token-wise MLP reads the attention output,
  so a word's sub-score can depend on its context ("not good").

Beside them: :func:`build_classifier` (any of the four from a config's settings), :func:`loss_and_accuracy`
(the training step), :func:`predict_proba` (P(positive) of many reviews), :func:`predict_texts` (label and
P(positive) of review texts), :func:`scores` (accuracy, F1, ROC-AUC) and :func:`prepared_scores` (all of them on
a prepared split), :func:`explain_review` (a token-wise model's per-word sub-scores of one review) and
:func:`tfidf_baseline`, the TF-IDF + logistic-regression reference every model is compared with
(:func:`baseline_scores`: once per process and split).
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np
import torch
from torch import nn

from genlab.data import reviews as rv
from genlab.errors import ConfigError
from genlab.nn.attention import RestrictedSelfAttention, window_to_matrix
from genlab.nn.recurrent import Recurrent

MODELS = ("rnn", "gru", "mlp", "attention")


class WordEmbedding(nn.Module):
    """Token id -> vector. With ``table``: frozen (non-persistent buffer); else a learned ``nn.Embedding``."""

    def __init__(self, vocab_size: int, dim: int, table: torch.Tensor | None = None):
        super().__init__()
        self.frozen = table is not None
        if table is not None:
            self.register_buffer("table", table, persistent=False)
            self.dim = table.shape[1]
        else:
            self.emb = nn.Embedding(vocab_size, dim, padding_idx=0)
            nn.init.normal_(self.emb.weight, std=0.3)
            with torch.no_grad():
                self.emb.weight[0].zero_()
            self.dim = dim

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return self.table[ids] if self.frozen else self.emb(ids)


def mlp(sizes: list[int], act: type[nn.Module] = nn.ReLU, dropout: float = 0.0) -> nn.Sequential:
    """Linear layers between ``sizes`` with ``act`` between them (not after the last), and ``nn.Dropout(dropout)``
    after each ``act`` when ``dropout > 0``. The activation and its dropout share one slot of the ``nn.Sequential``
    (neither has weights), so a checkpoint's keys are the same with and without dropout."""
    layers: list[nn.Module] = []
    for i in range(len(sizes) - 1):
        layers.append(nn.Linear(sizes[i], sizes[i + 1]))
        if i < len(sizes) - 2:
            layers.append(nn.Sequential(act(), nn.Dropout(dropout)) if dropout > 0 else act())
    return nn.Sequential(*layers)


class RecurrentClassifier(nn.Module):
    """Elman RNN or GRU over the words; the last real word's state -> MLP head -> 2 logits."""

    def __init__(
        self,
        embed: WordEmbedding,
        cell: str = "gru",
        hidden: int = 64,
        layers: int = 1,
        activation: str = "tanh",
        tbptt: int = 0,
        reset_after: bool = False,
        candidate: str = "tanh",
    ):
        super().__init__()
        self.embed = embed
        self.rnn = Recurrent(
            embed.dim, hidden, layers, cell, activation, reset_after=reset_after, tbptt=tbptt, candidate=candidate
        )
        self.head = mlp([hidden, hidden, 2])

    def forward(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        _, last = self.rnn(self.embed(ids), mask)
        return self.head(last)

    def gradient_norms_along_time(self, ids: torch.Tensor, y: torch.Tensor) -> list[float]:
        """Mean over the batch of ``|| d loss / d h_t ||`` at every step ``t`` of the top recurrent layer, for
        the cross-entropy of labels ``y`` read after the last word of unpadded ``ids`` (B, T): how far back
        in time the gradient reaches."""
        mask = torch.ones_like(ids, dtype=torch.bool)
        states, last = self.rnn.states_along_time(self.embed(ids), mask)
        loss = nn.functional.cross_entropy(self.head(last), y)
        return [g.norm(dim=-1).mean().item() for g in torch.autograd.grad(loss, states)]


class TokenMLP(nn.Module):
    """Per-word sub-scores ``MLP(x_i) -> (neg, pos)``; the review score is their mean over real words."""

    def __init__(
        self,
        embed: WordEmbedding,
        widths: tuple[int, ...] = (64, 32),
        in_dim: int | None = None,
        dropout: float = 0.0,
    ):
        super().__init__()
        self.embed = embed
        self.mlp = mlp([in_dim or embed.dim, *widths, 2], dropout=dropout)

    def features(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return self.embed(ids)

    def sub_scores(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """``(B, T, 2)`` per-word (negative, positive) scores; zero at padding."""
        return self.mlp(self.features(ids, mask)) * mask.unsqueeze(-1)

    def forward(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        s = self.sub_scores(ids, mask)
        return s.sum(1) / mask.sum(1, keepdim=True).clamp(min=1)


class AttentionMLP(TokenMLP):
    """Restricted self-attention (window ``k`` each side, width ``hidden``) and then the token-wise MLP."""

    def __init__(
        self,
        embed: WordEmbedding,
        hidden: int = 64,
        k: int = 5,
        widths: tuple[int, ...] = (64, 32),
        dropout: float = 0.0,
    ):
        super().__init__(embed, widths, in_dim=hidden, dropout=dropout)
        self.attn = RestrictedSelfAttention(embed.dim, hidden, k)
        self.last_weights: torch.Tensor | None = None

    def features(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        out, w = self.attn(self.embed(ids), mask)
        self.last_weights = w.detach()
        return out


def build_classifier(cfg: Any, vocab: rv.Vocab) -> nn.Module:
    """The classifier ``cfg.model`` (rnn | gru | mlp | attention) over frozen GloVe (``cfg.embeddings ==
    'glove'``) or learned ``cfg.embed_dim``-d embeddings. ``cfg``: any object with the sentiment settings
    ``hidden, layers, activation, tbptt, reset_after`` and optionally ``candidate`` (recurrent; the GRU's candidate
    activation) and ``widths, window`` and optionally ``dropout`` (mlp, attention)."""
    if cfg.embeddings == "glove":
        embed = WordEmbedding(vocab.size, 50, rv.embedding_matrix(vocab))
    else:
        embed = WordEmbedding(vocab.size, cfg.embed_dim)
    if cfg.model in ("rnn", "gru"):
        candidate = getattr(cfg, "candidate", "tanh")
        return RecurrentClassifier(
            embed, cfg.model, cfg.hidden, cfg.layers, cfg.activation, cfg.tbptt, cfg.reset_after, candidate
        )
    dropout = getattr(cfg, "dropout", 0.0)
    if cfg.model == "mlp":
        return TokenMLP(embed, tuple(cfg.widths), dropout=dropout)
    return AttentionMLP(embed, cfg.hidden, cfg.window, tuple(cfg.widths), dropout=dropout)


def loss_and_accuracy(model: nn.Module, batch: tuple[torch.Tensor, ...]) -> dict[str, torch.Tensor]:
    """Cross-entropy (computed in float32) and accuracy of ``model`` on a batch ``(ids, mask, labels)``."""
    x, m, y = batch
    logits = model(x, m)
    return {"loss": nn.functional.cross_entropy(logits.float(), y), "acc": (logits.argmax(-1) == y).float().mean()}


# ---------------------------------------------------------------------------------- scoring and explaining


@torch.no_grad()
def predict_proba(
    model: nn.Module, ids: torch.Tensor, lengths: torch.Tensor, device: torch.device | str = "cpu", batch: int = 512
) -> np.ndarray:
    """P(positive) for every review (batched, each batch trimmed to its longest review)."""
    was = model.training
    model.eval()
    out = []
    for i in range(0, len(ids), batch):
        idx = torch.arange(i, min(i + batch, len(ids)))
        x, m = rv.batch_of(ids, lengths, idx)
        out.append(torch.softmax(model(x.to(device), m.to(device)).float(), -1)[:, 1].cpu())
    model.train(was)
    return torch.cat(out).numpy() if out else np.zeros(0)


def predict_texts(
    model: nn.Module, vocab: rv.Vocab, texts: list[str], max_len: int = rv.MAX_LEN
) -> list[tuple[str, float]]:
    """``(label, P(positive))`` of each review text: cleaned and encoded as in training, scored by
    :func:`predict_proba` on the model's device (so exactly as the run's evaluation scores it); the label is
    ``positive`` from P >= 0.5, as in :func:`scores`. A review with no words after cleaning is an error."""
    for t in texts:
        if not rv.clean(t, max_len):
            raise ConfigError(f"review {t[:60]!r} has no words after cleaning (letters only); give a review with words")
    ids, lengths = rv.encode_texts(list(texts), vocab, max_len)
    p = predict_proba(model, ids, lengths, next(model.parameters()).device)
    return [("positive" if q >= 0.5 else "negative", float(q)) for q in p]


def scores(y: np.ndarray, p: np.ndarray) -> dict[str, float]:
    """Accuracy, F1 (positive class) and ROC-AUC from labels and P(positive)."""
    from sklearn.metrics import accuracy_score, f1_score, roc_auc_score

    pred = (p >= 0.5).astype(int)
    auc = roc_auc_score(y, p) if len(np.unique(y)) == 2 else float("nan")
    return {"acc": float(accuracy_score(y, pred)), "f1": float(f1_score(y, pred, zero_division=0)), "auc": float(auc)}


def train_test_scores(train: tuple[np.ndarray, np.ndarray], test: tuple[np.ndarray, np.ndarray]) -> dict[str, float]:
    """``{train_acc, train_f1, train_auc, test_acc, ...}`` from ``(labels, P(positive))`` of both parts."""
    return {f"{part}_{k}": v for part, (y, p) in (("train", train), ("test", test)) for k, v in scores(y, p).items()}


def prepared_scores(model: nn.Module, data: rv.Prepared, device: torch.device | str = "cpu") -> dict[str, float]:
    """``{train,test}_{acc,f1,auc}`` of ``model`` on the whole train and test sets of ``data``."""
    return train_test_scores(
        (data.train_y.numpy(), predict_proba(model, data.train_ids, data.train_len, device)),
        (data.test_y.numpy(), predict_proba(model, data.test_ids, data.test_len, device)),
    )


@functools.lru_cache(maxsize=4)
def baseline_scores(csv_path: str = "", n_train: int = 30000) -> dict[str, float]:
    """:func:`tfidf_baseline` on the split :func:`~genlab.data.reviews.load_reviews` reads for ``csv_path`` and
    ``n_train``, computed once per process (a demo or a sweep scores many models on the same split)."""
    return tfidf_baseline(rv.load_reviews(csv_path, n_train))


def tfidf_baseline(split: rv.ReviewSplit) -> dict[str, float]:
    """TF-IDF of words and word pairs + logistic regression, on the same cleaned split: a reference row."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

    vec = TfidfVectorizer(preprocessor=lambda t: " ".join(rv.clean(t)), ngram_range=(1, 2), min_df=2, sublinear_tf=True)
    x = vec.fit_transform(split.train_texts)
    clf = LogisticRegression(max_iter=2000, C=4.0).fit(x, split.train_labels)
    return train_test_scores(
        (split.train_labels, clf.predict_proba(x)[:, 1]),
        (split.test_labels, clf.predict_proba(vec.transform(split.test_texts))[:, 1]),
    )


@torch.no_grad()
def explain_review(model: nn.Module, vocab: rv.Vocab, text: str, max_len: int = rv.MAX_LEN) -> dict[str, Any]:
    """Per-word (negative, positive) sub-scores of a token-wise model, the review's scores and prediction, and
    (attention model) the full attention matrix of the review."""
    if not isinstance(model, TokenMLP):
        raise ConfigError(
            "explain needs a run of model 'mlp' or 'attention' (they score each word); train one with --set model=mlp"
        )
    words = rv.clean(text, max_len)
    if not words:
        raise ConfigError(f"review {text!r} has no words after cleaning (letters only); give a review with words")
    ids = torch.tensor([[vocab.id(w) for w in words]])
    sub = model.sub_scores(ids, torch.ones_like(ids, dtype=torch.bool))[0]
    final = sub.mean(0)
    out = {
        "text": text,
        "words": words,
        "neg": sub[:, 0].tolist(),
        "pos": sub[:, 1].tolist(),
        "known": [vocab.id(w) != rv.UNK for w in words],
        "score_neg": float(final[0]),
        "score_pos": float(final[1]),
        "p_pos": float(torch.softmax(final, -1)[1]),
        "prediction": "positive" if final[1] > final[0] else "negative",
    }
    if isinstance(model, AttentionMLP) and model.last_weights is not None:
        out["attention"] = window_to_matrix(model.last_weights[0], model.attn.k).tolist()
    return out
