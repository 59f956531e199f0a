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
    """Token id -> vector. With ``table``: frozen (non-persistent buffer); else a learned ``nn.Embedding``.

    ``tuned`` (with ``table``): the ids whose GloVe vectors are fine-tuned, as a learned correction ``delta``
    added to the frozen row (zero at the start). Only words seen in training ever get a gradient, so tuning
    their rows is tuning the whole table, at a fraction of its size in the checkpoint and the optimiser.
    ``dropout``: ``nn.Dropout`` on the word vectors while training (no weights, so no checkpoint key)."""

    def __init__(
        self,
        vocab_size: int,
        dim: int,
        table: torch.Tensor | None = None,
        dropout: float = 0.0,
        tuned: torch.Tensor | None = None,
    ):
        super().__init__()
        self.frozen = table is not None
        self.drop = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        if table is not None:
            self.register_buffer("table", table, persistent=False)
            self.dim = table.shape[1]
            if tuned is not None:
                self.register_buffer("tuned", torch.as_tensor(tuned, dtype=torch.long))
                self.delta = nn.Embedding(len(self.tuned) + 1, self.dim, padding_idx=0)
                nn.init.zeros_(self.delta.weight)
                self.register_buffer("slot", self._slots(self.tuned), persistent=False)
        else:
            self.emb = nn.Embedding(vocab_size, dim, padding_idx=0)
            nn.init.normal_(self.emb.weight, std=0.3)
            with torch.no_grad():
                self.emb.weight[0].zero_()
            self.dim = dim

    def _slots(self, tuned: torch.Tensor) -> torch.Tensor:
        """Token id -> row of ``delta`` (0: not tuned, a zero row)."""
        slot = torch.zeros(len(self.table), dtype=torch.long, device=tuned.device)
        slot[tuned] = torch.arange(1, len(tuned) + 1, device=tuned.device)
        return slot

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        # a fine-tuned checkpoint holds its own tuned ids: size the correction to them before loading
        key = prefix + "tuned"
        if hasattr(self, "delta") and key in state_dict:
            self.tuned = state_dict[key].clone().to(self.table.device)
            self.delta = nn.Embedding(len(self.tuned) + 1, self.dim, padding_idx=0).to(self.table.device)
            self.slot = self._slots(self.tuned)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        if not self.frozen:
            x = self.emb(ids)
        elif hasattr(self, "delta"):
            x = self.table[ids] + self.delta(self.slot[ids])
        else:
            x = self.table[ids]
        return self.drop(x)


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


POOLS = ("last", "mean", "max")


def reverse_padded(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Each sequence of ``x`` (B, T, ...) with its real positions (``mask``) in reverse order, padding left
    where it was: reading the result left to right reads each review from its last word to its first."""
    n = mask.sum(1, keepdim=True)
    t = torch.arange(x.shape[1], device=x.device)[None, :]
    idx = torch.where(t < n, n - 1 - t, t)
    return x.gather(1, idx.view(*idx.shape, *([1] * (x.dim() - 2))).expand_as(x))


class RecurrentClassifier(nn.Module):
    """Elman RNN or GRU over the words, a summary of its states -> MLP head -> 2 logits.

    ``bidirectional``: a second stack of the same cells reads each review backwards and its states are
    concatenated to the forward ones. ``pool``: the summary is the state after the last real word (``last``;
    backwards: after the first word), or the ``mean`` or ``max`` over the real words of the states.
    ``dropout``: ``nn.Dropout`` on the summary and inside the head while training."""

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
        bidirectional: bool = False,
        pool: str = "last",
        dropout: float = 0.0,
    ):
        super().__init__()
        if pool not in POOLS:
            raise ConfigError(f"unknown pooling {pool!r}; choose one of {', '.join(POOLS)}")
        self.embed, self.pool, self.bidirectional = embed, pool, bidirectional
        args = (embed.dim, hidden, layers, cell, activation)
        self.rnn = Recurrent(*args, reset_after=reset_after, tbptt=tbptt, candidate=candidate)
        if bidirectional:
            self.rnn_back = Recurrent(*args, reset_after=reset_after, tbptt=tbptt, candidate=candidate)
        width = hidden * (2 if bidirectional else 1)
        self.drop = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.head = mlp([width, hidden, 2], dropout=dropout)

    def summary(self, x: torch.Tensor, mask: torch.Tensor, states: torch.Tensor, last: torch.Tensor) -> torch.Tensor:
        """``(B, width)`` from the word vectors ``x``, the forward ``states`` (B, T, H) and ``last`` (B, H)."""
        if self.bidirectional:
            back, back_last = self.rnn_back(reverse_padded(x, mask), mask)
            states, last = torch.cat([states, back], -1), torch.cat([last, back_last], -1)
        if self.pool == "last":
            return last
        m = mask.unsqueeze(-1)
        if self.pool == "mean":
            return (states * m).sum(1) / m.sum(1).clamp(min=1)
        return states.masked_fill(~m, float("-inf")).max(1).values

    def forward(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        x = self.embed(ids)
        states, last = self.rnn(x, mask)
        return self.head(self.drop(self.summary(x, mask, states, last)))

    def gradient_norms_along_time(self, ids: torch.Tensor, y: torch.Tensor) -> list[float]:
        """Mean over the batch of ``|| d loss / d h_t ||`` at every step ``t`` of the top forward recurrent
        layer, for the cross-entropy of labels ``y`` read from unpadded ``ids`` (B, T): how far back in time
        the gradient reaches."""
        mask = torch.ones_like(ids, dtype=torch.bool)
        x = self.embed(ids)
        states, last = self.rnn.states_along_time(x, mask)
        feats = self.summary(x, mask, torch.stack(states, 1), last)
        loss = nn.functional.cross_entropy(self.head(feats), y)
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


def build_classifier(cfg: Any, vocab: rv.Vocab, tuned: torch.Tensor | None = None) -> nn.Module:
    """The classifier ``cfg.model`` (rnn | gru | mlp | attention) over frozen GloVe (``cfg.embeddings ==
    'glove'``) or learned ``cfg.embed_dim``-d embeddings. ``cfg``: any object with the sentiment settings
    ``hidden, layers, activation, tbptt, reset_after`` and optionally ``candidate, bidirectional, pool``
    (recurrent), ``widths, window`` (mlp, attention), ``dropout``, ``embed_dropout`` and ``embed_lr_scale``
    (> 0 with GloVe: the vectors of ``tuned``, the training words' ids, are fine-tuned; None when loading a
    run: the checkpoint says which)."""
    embed_drop = getattr(cfg, "embed_dropout", 0.0)
    if cfg.embeddings == "glove":
        finetune = getattr(cfg, "embed_lr_scale", 0.0) > 0
        tuned = (torch.zeros(0, dtype=torch.long) if tuned is None else tuned) if finetune else None
        embed = WordEmbedding(vocab.size, 50, rv.embedding_matrix(vocab), embed_drop, tuned)
    else:
        embed = WordEmbedding(vocab.size, cfg.embed_dim, dropout=embed_drop)
    dropout = getattr(cfg, "dropout", 0.0)
    if cfg.model in ("rnn", "gru"):
        return RecurrentClassifier(
            embed,
            cfg.model,
            cfg.hidden,
            cfg.layers,
            cfg.activation,
            cfg.tbptt,
            cfg.reset_after,
            getattr(cfg, "candidate", "tanh"),
            getattr(cfg, "bidirectional", False),
            getattr(cfg, "pool", "last"),
            dropout,
        )
    if cfg.model == "mlp":
        return TokenMLP(embed, tuple(cfg.widths), dropout=dropout)
    return AttentionMLP(embed, cfg.hidden, cfg.window, tuple(cfg.widths), dropout=dropout)


def param_groups(model: nn.Module, lr: float, embed_lr_scale: float = 0.0) -> list[dict[str, Any]]:
    """The optimiser's parameter groups: every trainable weight at ``lr``, except the GloVe fine-tuning
    correction (``embed.delta``), which gets its own group at ``lr * embed_lr_scale``."""
    delta = [p for n, p in model.named_parameters() if n.startswith("embed.delta.")]
    rest = [p for n, p in model.named_parameters() if p.requires_grad and not n.startswith("embed.delta.")]
    groups = [{"params": rest, "lr": lr}]
    if delta:
        groups.append({"params": delta, "lr": lr * embed_lr_scale})
    return groups


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
def sentence_vectors(texts: list[str], batch: int = 128) -> np.ndarray:
    """all-MiniLM-L6-v2 sentence vectors (N, 384) of ``texts`` (each truncated to 128 tokens), kept on disk
    under the cache (``sentiment_minilm/<hash>.npy``) so the reference row costs one encoding per text set."""
    import hashlib

    from genlab.data.fetch import cache_root
    from genlab.data.text_encoder import _minilm
    from genlab.nn.bert import mean_pool

    digest = hashlib.sha256("\x00".join(texts).encode()).hexdigest()[:20]
    path = cache_root() / "sentiment_minilm" / f"{digest}.npy"
    if path.exists():
        return np.load(path, allow_pickle=False)
    tok, model = _minilm()
    encs = tok.encode_batch(list(texts))
    order = sorted(range(len(texts)), key=lambda i: len(encs[i].ids))  # batches of like lengths: little padding
    vecs = np.zeros((len(texts), 384), dtype=np.float32)
    for i in range(0, len(order), batch):
        idx = order[i : i + batch]
        n = max(min(len(encs[j].ids), 128) for j in idx)
        ids = torch.zeros(len(idx), n, dtype=torch.long)
        mask = torch.zeros(len(idx), n, dtype=torch.bool)
        for row, j in enumerate(idx):
            k = min(len(encs[j].ids), 128)
            ids[row, :k] = torch.tensor(encs[j].ids[:k])
            mask[row, :k] = True
        vecs[idx] = mean_pool(model(ids, mask), mask).numpy()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.npy")
    np.save(tmp, vecs)
    tmp.replace(path)
    return vecs


MINILM_CS = (0.1, 0.3, 1.0, 3.0, 10.0, 30.0, 100.0)


def minilm_baseline(split: rv.ReviewSplit, val_fraction: float = 0.1) -> dict[str, float]:
    """A pretrained-encoder reference row: MiniLM sentence vectors + logistic regression. ``C`` is chosen on
    a stratified ``val_fraction`` of the training reviews (seed 0), then the model is refitted on all of them
    and scored on train and test (``test_*``: never used to choose)."""
    from sklearn.linear_model import LogisticRegression

    x_tr, x_te = sentence_vectors(list(split.train_texts)), sentence_vectors(list(split.test_texts))
    y = np.asarray(split.train_labels)
    fit_idx, val_idx = rv.stratified_split(y, val_fraction, 0)
    val = {
        c: LogisticRegression(C=c, max_iter=3000).fit(x_tr[fit_idx], y[fit_idx]).score(x_tr[val_idx], y[val_idx])
        for c in MINILM_CS
    }
    c = max(val, key=val.get)  # first of the best on a tie: the strongest regularisation
    clf = LogisticRegression(C=c, max_iter=3000).fit(x_tr, y)
    out = train_test_scores((y, clf.predict_proba(x_tr)[:, 1]), (split.test_labels, clf.predict_proba(x_te)[:, 1]))
    return {**out, "val_acc": float(val[c]), "C": float(c)}


@functools.lru_cache(maxsize=2)
def minilm_reference(csv_path: str = "") -> dict[str, float] | None:
    """:func:`minilm_baseline` on the rt split, once per process; None for a CSV (long reviews: encoding them
    all would be slow) or when MiniLM is not fetched (``genlab data fetch minilm``)."""
    from genlab.data.fetch import is_fetched

    if csv_path or not is_fetched("minilm"):
        return None
    return minilm_baseline(rv.load_reviews())


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
