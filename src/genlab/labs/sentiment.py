"""Lab 4: movie-review sentiment with an Elman RNN, a GRU, a token-wise MLP and restricted self-attention.

``genlab sentiment train | eval | sweep | explain | figures``. Each figure and table comes from one function
here; the models are in :mod:`genlab.nn.recurrent`, :mod:`genlab.nn.attention` and
:mod:`genlab.nn.sentiment_models`, the data in :mod:`genlab.data.reviews`.

Training follows the lab: batches of 32 reviews, Adam, cross-entropy on two logits (negative, positive), a
test batch scored every 50 steps (the curves), then accuracy, F1 and ROC-AUC on the whole train and test sets,
next to a TF-IDF + logistic-regression baseline trained on the same split.
"""

from __future__ import annotations

import argparse
import csv
import itertools
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from genlab.config import param
from genlab.data import reviews as rv
from genlab.errors import ConfigError, RunError
from genlab.nn.recurrent import ACTIVATIONS
from genlab.nn.sentiment_models import MODELS, AttentionMLP, RecurrentClassifier, TokenMLP, WordEmbedding
from genlab.runs import Run, atomic_write_json, choose_device, cpu_threads, markdown_table, seed_everything
from genlab.train import TrainConfig, fit, make_optimizer

TITLE = "Sentiment: Elman RNN, GRU, token-wise MLP and restricted self-attention on movie reviews"
ORDER = 4
LAB = "sentiment"

EXAMPLES = (
    "this movie is very very bad the worst movie",
    "calling this movie very very good and great is lie and it actually the worst movie ever",
    "the movie was not good",
)


@dataclass
class SentimentConfig(TrainConfig):
    """Settings of one sentiment run (``--set key=value``)."""

    model: str = param("gru", "rnn | gru | mlp | attention", choices=MODELS)
    activation: str = param(
        "tanh", "Elman RNN activation: none | tanh | relu | sigmoid", choices=ACTIVATIONS
    )
    hidden: int = param(64, "recurrent state size / attention width", min=1)
    layers: int = param(1, "stacked recurrent layers", min=1)
    widths: tuple[int, ...] = param((64, 32), "token-wise MLP hidden widths (mlp, attention)")
    window: int = param(5, "attention: words on each side each word attends to", min=1)
    embeddings: str = param(
        "glove", "glove (frozen GloVe 6B 50-d) or learned", choices=("glove", "learned")
    )
    embed_dim: int = param(50, "learned embedding size", min=1)
    min_count: int = param(2, "learned vocabulary: keep words seen this often", min=1)
    max_len: int = param(100, "keep at most this many words of a review", min=1)
    csv: str = param("", "Kaggle 'IMDB Dataset.csv' path (review, sentiment); empty = the rt snippets")
    n_train: int = param(30000, "CSV: the first N rows train, the rest test", min=1)
    tbptt: int = param(0, "truncated BPTT: detach the state every K steps (0 = full BPTT)", min=0)
    reset_after: bool = param(
        False, "GRU: apply the reset gate after the recurrent product (nn.GRU's form)"
    )
    steps: int = param(3200, "optimisation steps (320 = one epoch of rt at batch 32)", min=0)
    batch_size: int = param(32, "reviews per step", min=1)
    eval_every: int = param(50, "score one test batch every N steps", min=0)
    log_every: int = param(1, "log the training batch's loss and accuracy every N steps", min=1)
    threads: int = param(1, "CPU threads for torch while training (0 = torch's default); these small models "
                         "run fastest on 1, and far slower on 2+ when the cores are busy", min=0)


PRESETS = {
    "quick": SentimentConfig(steps=600),
}


# ------------------------------------------------------------------------------------------------------ data


@dataclass
class Prepared:
    split: rv.ReviewSplit
    vocab: rv.Vocab
    train_ids: torch.Tensor
    train_len: torch.Tensor
    train_y: torch.Tensor
    test_ids: torch.Tensor
    test_len: torch.Tensor
    test_y: torch.Tensor


_PREPARED: dict[tuple, Prepared] = {}


def prepare(cfg: SentimentConfig, vocab_words: list[str] | None = None) -> Prepared:
    """Load, clean and encode the reviews of ``cfg`` (cached per process: the demo trains four models)."""
    key = (
        cfg.csv,
        cfg.n_train,
        cfg.embeddings,
        cfg.min_count,
        cfg.max_len,
        None if vocab_words is None else len(vocab_words),
    )
    if key in _PREPARED:
        return _PREPARED[key]
    split = rv.load_reviews(cfg.csv, cfg.n_train)
    if cfg.embeddings == "glove":
        vocab = rv.Vocab("glove")
    elif vocab_words is not None:
        vocab = rv.Vocab("learned", vocab_words)
    else:
        vocab = rv.Vocab.build(split.train_texts, cfg.min_count, cfg.max_len)
    tr_ids, tr_len = rv.encode_texts(split.train_texts, vocab, cfg.max_len)
    te_ids, te_len = rv.encode_texts(split.test_texts, vocab, cfg.max_len)
    keep_tr, keep_te = tr_len > 0, te_len > 0  # a review with no letters has nothing to read
    p = Prepared(
        split,
        vocab,
        tr_ids[keep_tr],
        tr_len[keep_tr],
        torch.as_tensor(split.train_labels)[keep_tr],
        te_ids[keep_te],
        te_len[keep_te],
        torch.as_tensor(split.test_labels)[keep_te],
    )
    _PREPARED[key] = p
    return p


def build_model(cfg: SentimentConfig, vocab: rv.Vocab) -> nn.Module:
    """The classifier of ``cfg.model`` over frozen GloVe or learned embeddings."""
    if cfg.embeddings == "glove":
        embed = WordEmbedding(vocab.size, 50, rv.embedding_matrix(vocab))
    else:
        embed = WordEmbedding(vocab.size, cfg.embed_dim)
    if cfg.model in ("rnn", "gru"):
        return RecurrentClassifier(
            embed, cfg.model, cfg.hidden, cfg.layers, cfg.activation, cfg.tbptt, cfg.reset_after
        )
    if cfg.model == "mlp":
        return TokenMLP(embed, tuple(cfg.widths))
    return AttentionMLP(embed, cfg.hidden, cfg.window, tuple(cfg.widths))


def load_model(run: Run, device: torch.device | str = "cpu") -> tuple[nn.Module, SentimentConfig, rv.Vocab]:
    """A trained run's model (eval mode), config and vocabulary."""
    from genlab.train import load_weights

    cfg = run.config(SentimentConfig)
    words = None
    if cfg.embeddings == "learned":
        vf = run.path / "vocab.json"
        if not vf.exists():
            raise RunError(f"run {str(run.path)!r} has no vocab.json; train it again")
        words = json.loads(vf.read_text())
        vocab = rv.Vocab("learned", words)
    else:
        vocab = rv.Vocab("glove")
    model = build_model(cfg, vocab)
    load_weights(run, model, device=device)
    model.eval()
    return model, cfg, vocab


# ---------------------------------------------------------------------------------------------- evaluation


@torch.no_grad()
def predict_proba(
    model: nn.Module,
    ids: torch.Tensor,
    lengths: torch.Tensor,
    device: torch.device | str = "cpu",
    batch: int = 512,
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


def scores(y: np.ndarray, p: np.ndarray) -> dict[str, float]:
    """Accuracy, F1 (positive class) and ROC-AUC from labels and P(positive)."""
    from sklearn.metrics import accuracy_score, f1_score, roc_auc_score

    pred = (p >= 0.5).astype(int)
    auc = roc_auc_score(y, p) if len(np.unique(y)) == 2 else float("nan")
    return {
        "acc": float(accuracy_score(y, pred)),
        "f1": float(f1_score(y, pred, zero_division=0)),
        "auc": float(auc),
    }


def evaluate_full(model: nn.Module, data: Prepared, device: torch.device | str = "cpu") -> dict[str, float]:
    tr = scores(data.train_y.numpy(), predict_proba(model, data.train_ids, data.train_len, device))
    te = scores(data.test_y.numpy(), predict_proba(model, data.test_ids, data.test_len, device))
    return {**{f"train_{k}": v for k, v in tr.items()}, **{f"test_{k}": v for k, v in te.items()}}


def tfidf_baseline(split: rv.ReviewSplit) -> dict[str, float]:
    """TF-IDF of words and word pairs + logistic regression, on the same cleaned split: a reference row."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

    vec = TfidfVectorizer(
        preprocessor=lambda t: " ".join(rv.clean(t)), ngram_range=(1, 2), min_df=2, sublinear_tf=True
    )
    x = vec.fit_transform(split.train_texts)
    clf = LogisticRegression(max_iter=2000, C=4.0).fit(x, split.train_labels)
    tr = scores(split.train_labels, clf.predict_proba(x)[:, 1])
    te = scores(split.test_labels, clf.predict_proba(vec.transform(split.test_texts))[:, 1])
    return {**{f"train_{k}": v for k, v in tr.items()}, **{f"test_{k}": v for k, v in te.items()}}


_BASELINES: dict[str, dict[str, float]] = {}


def baseline_for(cfg: SentimentConfig, split: rv.ReviewSplit) -> dict[str, float]:
    key = f"{cfg.csv}:{cfg.n_train}"
    if key not in _BASELINES:
        _BASELINES[key] = tfidf_baseline(split)
    return _BASELINES[key]


def describe_model(cfg: SentimentConfig) -> str:
    if cfg.model == "rnn":
        return f"Elman RNN ({cfg.activation}, {cfg.hidden}x{cfg.layers})"
    if cfg.model == "gru":
        return f"GRU ({cfg.hidden}x{cfg.layers})"
    if cfg.model == "mlp":
        return f"token-wise MLP {list(cfg.widths)}"
    return f"attention (k={cfg.window}, H={cfg.hidden}) + MLP {list(cfg.widths)}"


def train_command(cfg: SentimentConfig, name: str) -> str:
    """The CLI command that trains ``cfg`` (only the values that differ from the defaults)."""
    default = SentimentConfig().to_dict()
    sets = []
    for k, v in cfg.to_dict().items():
        if v != default[k]:
            v = ",".join(map(str, v)) if isinstance(v, tuple) else v
            sets.append(f"--set {k}={v}")
    return " ".join(["genlab sentiment train", f"--name {name}", *sets])


# ------------------------------------------------------------------------------------------------- training


def train(
    cfg: SentimentConfig,
    *,
    root: str | Path = "runs",
    name: str | None = None,
    resume: bool = False,
    device: str = "auto",
    quiet: bool = False,
    figures: bool = True,
) -> Run:
    """Train one model as the lab does, then score it on the whole train and test sets."""
    with cpu_threads(cfg.threads):
        return _train(cfg, root=root, name=name, resume=resume, device=device, quiet=quiet, figures=figures)


def _train(cfg: SentimentConfig, *, root, name, resume, device, quiet, figures) -> Run:
    dev = choose_device(device)
    data = prepare(cfg)
    run = Run.create(LAB, cfg, name=name, root=root, resume=resume)
    if cfg.embeddings == "learned":
        atomic_write_json(run.path / "vocab.json", data.vocab.words())
    seed_everything(cfg.seed)
    model = build_model(cfg, data.vocab).to(dev)
    opt = make_optimizer([p for p in model.parameters() if p.requires_grad], "adam", cfg.lr)
    n = len(data.train_ids)
    per_epoch = max(1, n // cfg.batch_size)

    def batches(step: int):
        epoch, i = divmod(step - 1, per_epoch)
        perm = torch.randperm(n, generator=torch.Generator().manual_seed(cfg.seed * 100003 + epoch))
        idx = perm[i * cfg.batch_size : (i + 1) * cfg.batch_size]
        x, m = rv.batch_of(data.train_ids, data.train_len, idx)
        return x.to(dev), m.to(dev), data.train_y[idx].to(dev)

    def step_fn(model: nn.Module, batch) -> dict[str, Any]:
        x, m, y = batch
        logits = model(x, m)
        loss = nn.functional.cross_entropy(logits.float(), y)
        return {"loss": loss, "acc": (logits.argmax(-1) == y).float().mean()}

    n_eval = [0]

    def eval_fn(model: nn.Module) -> dict[str, float]:
        """One test batch (the next one of a fixed shuffled order), as the lab scores every 50 steps."""
        g = torch.Generator().manual_seed(12345)
        perm = torch.randperm(len(data.test_ids), generator=g)
        nb = max(1, len(perm) // cfg.batch_size)
        k = n_eval[0] % nb
        n_eval[0] += 1
        idx = perm[k * cfg.batch_size : (k + 1) * cfg.batch_size]
        x, m = rv.batch_of(data.test_ids, data.test_len, idx)
        y = data.test_y[idx].to(dev)
        logits = model(x.to(dev), m.to(dev)).float()
        return {
            "test_loss": nn.functional.cross_entropy(logits, y),
            "test_acc": (logits.argmax(-1) == y).float().mean(),
        }

    result = fit(
        run,
        model,
        opt,
        step_fn,
        batches,
        cfg=cfg,
        device=dev,
        eval_fn=eval_fn,
        resume=resume,
        quiet=quiet,
        desc=f"sentiment {cfg.model}",
    )
    metrics = evaluate_full(model, data, dev)
    base = baseline_for(cfg, data.split)
    n_params = sum(p.numel() for p in model.parameters() if p.requires_grad)
    rows = [
        {"model": describe_model(cfg), **{k: round(v, 4) for k, v in metrics.items()}},
        {"model": "TF-IDF + logistic regression", **{k: round(v, 4) for k, v in base.items()}},
    ]
    run.save_table(
        rows,
        "metrics",
        caption=f"{data.split.describe()}; {cfg.steps} steps of batch "
        f"{cfg.batch_size}. Command: `{train_command(cfg, run.path.name)}`",
    )
    seconds = result.seconds
    run.update_summary(
        {
            "model": cfg.model,
            "description": describe_model(cfg),
            "dataset": data.split.name,
            **{k: round(v, 4) for k, v in metrics.items()},
            "baseline_test_acc": round(base["test_acc"], 4),
            "params": n_params,
            "steps": cfg.steps,
            "train_seconds": round(seconds, 1),
            "train_reviews_per_s": round(
                (cfg.steps - (result.resumed_from or 0)) * cfg.batch_size / max(seconds, 1e-9), 1
            ),
        }
    )
    if figures:
        curves_figure(run)
    if not quiet:
        print(
            f"{describe_model(cfg)}: test acc {metrics['test_acc']:.4f}, F1 {metrics['test_f1']:.4f}, "
            f"AUC {metrics['test_auc']:.4f} (TF-IDF baseline {base['test_acc']:.4f}); run folder {run.path}"
        )
    return run


# -------------------------------------------------------------------------------------------------- figures


def curves_figure(run: Run) -> Path:
    """Loss and accuracy curves: every training batch (smoothed) and the test batch scored every 50 steps."""
    from genlab import plots

    cfg = run.config(SentimentConfig)
    rows = run.read_metrics()
    fig, axes = plots.figure(1, 2, size=(11, 3.8))
    plots.loss_curves(rows, ["loss", "test_loss"], title="Cross-entropy", ax=axes[0])
    plots.loss_curves(rows, ["acc", "test_acc"], title="Accuracy", ax=axes[1])
    axes[1].set_ylabel("accuracy")
    for ax in axes:
        handles, labels = ax.get_legend_handles_labels()
        ax.legend(
            handles,
            [
                {
                    "loss": "train batch",
                    "test_loss": "test batch",
                    "acc": "train batch",
                    "test_acc": "test batch",
                }.get(lb, lb)
                for lb in labels
            ],
        )
    fig.suptitle(f"{describe_model(cfg)} on {run.read_summary().get('dataset', 'rt')}", fontweight="bold")
    fig.tight_layout()
    data = {
        "step": [r["step"] for r in rows if "loss" in r],
        "loss": [r["loss"] for r in rows if "loss" in r],
        "test_step": [r["step"] for r in rows if "test_acc" in r],
        "test_acc": [r["test_acc"] for r in rows if "test_acc" in r],
    }
    return run.save_figure(
        fig,
        "curves",
        caption=f"Training curves of {describe_model(cfg)}: cross-entropy and "
        f"accuracy of each training batch of {cfg.batch_size} (faint, and smoothed) and of "
        f"one test batch every {cfg.eval_every} steps.",
        command=f"genlab sentiment figures --run {run.path}",
        data=data,
    )


def comparison_table(runs: list[Run], out: Run) -> list[dict[str, Any]]:
    """One row per trained model and the TF-IDF baseline: train/test accuracy, F1 and ROC-AUC."""
    rows, base = [], None
    for r in runs:
        s = r.read_summary()
        if "test_acc" not in s:
            continue
        rows.append(
            {
                "model": s["description"],
                "steps": s["steps"],
                **{
                    k: s[k]
                    for k in ("train_acc", "train_f1", "train_auc", "test_acc", "test_f1", "test_auc")
                },
                "run": r.path.name,
            }
        )
        if base is None:
            mt = r.tables_dir / "metrics.csv"
            if mt.exists():
                with open(mt) as f:
                    for row in csv.DictReader(f):
                        if row["model"].startswith("TF-IDF"):
                            base = row
    if base is not None:
        rows.append(
            {
                "model": base["model"],
                "steps": "-",
                **{
                    k: float(base[k])
                    for k in ("train_acc", "train_f1", "train_auc", "test_acc", "test_f1", "test_auc")
                },
                "run": "-",
            }
        )
    out.save_table(
        rows,
        "comparison",
        caption="Test accuracy, F1 and ROC-AUC of each model on the same "
        "split, next to a TF-IDF + logistic-regression baseline.",
    )
    out.update_summary({"comparison": {r["model"]: r["test_acc"] for r in rows}})
    return rows


BPTT_CELLS = (("rnn", "tanh"), ("rnn", "relu"), ("rnn", "none"), ("gru", "tanh"))


def long_sequences(data: Prepared, length: int = 100, count: int = 32, seed: int = 0):
    """``count`` sequences of exactly ``length`` words, each a run of consecutive training reviews joined;
    labelled as the review the sequence ends in (the signal sits at the end, the far past is noise)."""
    g = torch.Generator().manual_seed(seed)
    words = []
    ys = []
    order = torch.randperm(len(data.train_ids), generator=g).tolist()
    pos = 0
    for _ in range(count):
        seq: list[int] = []
        while len(seq) < length:
            i = order[pos % len(order)]
            pos += 1
            seq = seq + data.train_ids[i, : data.train_len[i]].tolist()
            last = i
        words.append(seq[-length:])
        ys.append(int(data.train_y[last]))
    return torch.tensor(words), torch.tensor(ys)


def grad_norms_along_time(model: RecurrentClassifier, ids: torch.Tensor, y: torch.Tensor) -> np.ndarray:
    """Mean over the batch of ``|| d loss / d h_t ||`` for every step ``t`` of the top recurrent layer."""
    model.rnn.keep_states = True
    try:
        mask = torch.ones_like(ids, dtype=torch.bool)
        loss = nn.functional.cross_entropy(model(ids, mask), y)
        grads = torch.autograd.grad(loss, model.rnn.step_states)
    finally:
        model.rnn.keep_states = False
        model.rnn.step_states = []
    return np.array([g.norm(dim=-1).mean().item() for g in grads])


def bptt_figure(
    out: Run, data: Prepared, trained: list[Run] = (), hidden: int = 64, length: int = 100, seed: int = 0
) -> Path:
    """How far back the gradient reaches: ``||dL/dh_t||`` along ``t`` for Elman (tanh, relu, none) and GRU,
    at initialisation and, for the runs in ``trained``, after training."""
    from genlab import plots

    ids, y = long_sequences(data, length, seed=seed)
    curves: dict[str, list[float]] = {}
    for cell, act in BPTT_CELLS:
        cfg = SentimentConfig(model=cell, activation=act, hidden=hidden, embeddings=data.vocab.kind)
        seed_everything(seed)
        model = build_model(cfg, data.vocab).eval()
        curves[f"{'Elman ' + act if cell == 'rnn' else 'GRU'}"] = grad_norms_along_time(
            model, ids, y
        ).tolist()
    trained_curves: dict[str, list[float]] = {}
    for r in trained:
        model, cfg, _ = load_model(r)
        if cfg.model in ("rnn", "gru") and cfg.embeddings == data.vocab.kind == "glove":
            trained_curves[describe_model(cfg)] = grad_norms_along_time(model, ids, y).tolist()
    ncols = 2 if trained_curves else 1
    fig, axes = plots.figure(1, ncols, size=(5.6 * ncols, 3.9), squeeze=False)
    t = np.arange(1, length + 1)
    for ax, (title, cs) in zip(
        axes[0], [("at initialisation", curves), ("after training", trained_curves)]
    ):
        for i, (label, g) in enumerate(cs.items()):
            g = np.asarray(g)
            # float32 underflows to exactly 0 far back: leave those steps blank rather than on a fake floor
            ax.plot(t, np.where(g > 0, g, np.nan), label=label, color=plots.PALETTE[i % len(plots.PALETTE)])
        ax.set_yscale("log")
        ax.set_xlabel(f"time step t (the loss is read after step {length})")
        ax.set_ylabel(r"mean $\|\partial L / \partial h_t\|$")
        ax.set_title(f"Gradient reaching h_t, {title}")
        ax.legend()
    fig.tight_layout()
    return out.save_figure(
        fig,
        "bptt",
        caption=(
            f"Backpropagation through time made visible: the norm of the gradient of the loss with respect "
            f"to each hidden state h_t (hidden {hidden}), on {ids.shape[0]} sequences of {length} words "
            f"(consecutive rt reviews, labelled by the last one). The tanh Elman RNN's gradient shrinks "
            f"geometrically going back in time (vanishing); ReLU and no activation can grow or shrink "
            f"with the recurrent matrix's spectral radius; the GRU's update gate keeps a path open. "
            f"Use --tbptt K to cut the gradient after K steps and --set grad_clip=1 to clip its norm."
        ),
        command=f"genlab sentiment figures --bptt --run {out.path}",
        data={"t": t.tolist(), "init": curves, "trained": trained_curves},
    )


# ------------------------------------------------------------------------------------------------ explain


@torch.no_grad()
def explain_text(model: nn.Module, vocab: rv.Vocab, text: str, max_len: int = 100) -> dict[str, Any]:
    """Per-word (negative, positive) sub-scores, the review's scores and prediction, and attention weights."""
    if not isinstance(model, TokenMLP):
        raise ConfigError(
            "explain needs a run of model 'mlp' or 'attention' (they score each word); "
            "train one with --set model=mlp"
        )
    words = rv.clean(text, max_len)
    if not words:
        raise ConfigError(
            f"review {text!r} has no words after cleaning (letters only); give a review with words"
        )
    ids = torch.tensor([[vocab.id(w) for w in words]])
    mask = torch.ones_like(ids, dtype=torch.bool)
    sub = model.sub_scores(ids, mask)[0]
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
        from genlab.nn.attention import window_to_matrix

        out["attention"] = window_to_matrix(model.last_weights[0], model.attn.k).tolist()
    return out


def explain_table(results: dict[str, dict[str, Any]]) -> str:
    """The per-word table of one review for several models (columns: word, then neg/pos per model)."""
    names = list(results)
    first = results[names[0]]
    head = ["word"] + [f"{n} {c}" for n in names for c in ("neg", "pos", "pos-neg")]
    lines = ["  ".join(f"{h:>14}" for h in head)]
    for i, w in enumerate(first["words"]):
        cells = [w + ("" if first["known"][i] else " (?)")]
        for n in names:
            r = results[n]
            cells += [f"{r['neg'][i]:+.3f}", f"{r['pos'][i]:+.3f}", f"{r['pos'][i] - r['neg'][i]:+.3f}"]
        lines.append("  ".join(f"{c:>14}" for c in cells))
    cells = ["(mean)"]
    for n in names:
        r = results[n]
        cells += [
            f"{r['score_neg']:+.3f}",
            f"{r['score_pos']:+.3f}",
            f"{r['score_pos'] - r['score_neg']:+.3f}",
        ]
    lines.append("  ".join(f"{c:>14}" for c in cells))
    lines.append(
        "prediction: "
        + ", ".join(f"{n}: {results[n]['prediction']} (P(pos) = {results[n]['p_pos']:.3f})" for n in names)
    )
    return "\n".join(lines)


def words_figure(
    all_results: list[dict[str, dict[str, Any]]],
    out: Run,
    name: str = "explain_words",
    command: str | None = None,
) -> Path:
    """Each review drawn word by word, every word coloured by its sub-score (blue positive, red negative)."""
    import matplotlib as mpl

    from genlab import plots

    models = list(all_results[0])
    nrow = len(all_results) * len(models)
    fig, ax = plots.figure(size=(12, 0.62 * nrow + 1.2))
    ax.set_axis_off()
    ax.grid(False)
    diffs = [d for res in all_results for r in res.values() for d in np.subtract(r["pos"], r["neg"])]
    vmax = max(1e-6, float(np.max(np.abs(diffs))))
    norm = mpl.colors.TwoSlopeNorm(vmin=-vmax, vcenter=0.0, vmax=vmax)
    cmap = mpl.colormaps["RdBu"]
    line = 0
    for res in all_results:
        for mname in models:
            r = res[mname]
            y = 1 - (line + 0.5) / nrow
            ax.text(
                0.0,
                y,
                f"{mname} [{r['prediction'][:3]} {r['p_pos']:.2f}]",
                transform=ax.transAxes,
                ha="left",
                va="center",
                fontsize=9,
                family="monospace",
                fontweight="bold",
            )
            x = 0.2
            for w, p, q in zip(r["words"], r["pos"], r["neg"]):
                color = cmap(norm(p - q))
                light = abs(norm(p - q) - 0.5) < 0.3
                ax.text(
                    x,
                    y,
                    w,
                    transform=ax.transAxes,
                    ha="left",
                    va="center",
                    fontsize=10,
                    family="monospace",
                    color="black" if light else "white",
                    bbox={"boxstyle": "round,pad=0.2", "facecolor": color, "edgecolor": "none"},
                )
                x += (len(w) + 1.6) * 0.0082
            line += 1
    sm = mpl.cm.ScalarMappable(norm=norm, cmap=cmap)
    cb = fig.colorbar(sm, ax=ax, orientation="horizontal", fraction=0.04, pad=0.02, aspect=50)
    cb.set_label(
        "word sub-score: positive minus negative (red pushes toward negative, blue toward positive)"
    )
    ax.set_title("Per-word sub-scores of the token-wise MLP and the attention model")
    data = [
        {
            m: {k: r[k] for k in ("words", "neg", "pos", "score_neg", "score_pos", "prediction")}
            for m, r in res.items()
        }
        for res in all_results
    ]
    return out.save_figure(
        fig,
        name,
        caption=(
            "Each word coloured by its own sub-score (positive minus negative score); the review's scores "
            "are the mean over its words. [pos/neg P] gives the prediction and P(positive). Built-in "
            "reviews: the lab's two examples and 'the movie was not good'."
        ),
        command=command,
        data={"reviews": data},
    )


def attention_figure(results: list[dict[str, Any]], out: Run, k: int, command: str | None = None) -> Path:
    """Heat-maps of the restricted attention weights (row: the word attending; column: the word attended)."""
    from genlab import plots

    n = len(results)
    fig, axes = plots.figure(1, n, size=(4.6 * n, 4.6), squeeze=False)
    im = None
    for ax, r in zip(axes[0], results):
        a = np.asarray(r["attention"])
        im = ax.imshow(a, cmap="magma", vmin=0, vmax=1)
        ax.set_xticks(range(len(r["words"])), r["words"], rotation=90, fontsize=8)
        ax.set_yticks(range(len(r["words"])), r["words"], fontsize=8)
        ax.grid(False)
        ax.set_title(("“" + r["text"][:38] + ("…" if len(r["text"]) > 38 else "") + "”"), fontsize=9)
    fig.colorbar(im, ax=axes[0].tolist(), fraction=0.02, label="attention weight")
    fig.suptitle(
        f"Restricted self-attention weights (each word sees {k} words on each side)", fontweight="bold"
    )
    return out.save_figure(
        fig,
        "attention_weights",
        caption=(
            f"Attention weights of the MLP + attention model: row i is the softmax over the window of word i "
            f"(k = {k} each side); entries outside the window are zero, padding is never attended."
        ),
        command=command,
        data={"reviews": [{"words": r["words"], "attention": r["attention"]} for r in results]},
    )


def explain(
    runs: list[Run],
    texts: list[str] | tuple[str, ...] = EXAMPLES,
    out: Run | None = None,
    quiet: bool = False,
) -> list[dict[str, dict[str, Any]]]:
    """Explain ``texts`` with each run (mlp / attention): print the tables, draw the figures into ``out``."""
    if not runs:
        raise ConfigError("explain needs at least one --run of model 'mlp' or 'attention'")
    texts = list(texts) or list(EXAMPLES)
    for t in texts:
        if not rv.clean(t):
            raise ConfigError(
                f"review {t!r} has no words after cleaning (letters only); give a review with words"
            )
    loaded = []
    for r in runs:
        model, cfg, vocab = load_model(r)
        if cfg.model not in ("mlp", "attention"):
            raise ConfigError(
                f"run {str(r.path)!r} is a {cfg.model!r} model; explain needs 'mlp' or 'attention'"
            )
        loaded.append(
            (
                cfg.model if cfg.model not in [c.model for _, _, c, _ in loaded] else r.path.name,
                model,
                cfg,
                vocab,
            )
        )
    all_results = []
    for t in texts:
        res = {name: explain_text(m, v, t, c.max_len) for name, m, c, v in loaded}
        all_results.append(res)
        if not quiet:
            print(f"\nreview: {t!r}")
            print(explain_table(res))
    if out is not None:
        cmd = "genlab sentiment explain " + " ".join(f"--run {r.path}" for r in runs)
        words_figure(all_results, out, command=cmd)
        att = [res[name] for res in all_results for name, m, c, _ in loaded if "attention" in res[name]]
        if att:
            k = next(c.window for _, _, c, _ in loaded if c.model == "attention")
            attention_figure(att[: len(texts)], out, k, command=cmd)
        out.update_summary(
            {
                "explain": [
                    {
                        n: {"prediction": r["prediction"], "p_pos": round(r["p_pos"], 4)}
                        for n, r in res.items()
                    }
                    | {"text": res[next(iter(res))]["text"]}
                    for res in all_results
                ]
            }
        )
    return all_results


# ---------------------------------------------------------------------------------------------------- sweep


def sweep_cells(
    models: list[str], activations: list[str], hiddens: list[int], layers: list[int]
) -> list[dict]:
    """The grid: activation varies only for the Elman RNN; ``hidden`` and ``layers`` mean the recurrent
    size and depth for rnn/gru, the MLP width and depth for mlp, the attention width and MLP depth for
    attention."""
    cells = []
    for model in models:
        acts = activations if model == "rnn" else ["-"]
        for act, h, nl in itertools.product(acts, hiddens, layers):
            cells.append({"model": model, "activation": act, "hidden": h, "layers": nl})
    return cells


def cell_config(cell: dict, base: SentimentConfig) -> SentimentConfig:
    values = {"model": cell["model"], "hidden": cell["hidden"], "layers": cell["layers"]}
    if cell["model"] == "rnn":
        values["activation"] = cell["activation"]
    if cell["model"] in ("mlp", "attention"):
        values["widths"] = (cell["hidden"],) * cell["layers"]
        values["layers"] = 1
    return base.update(values)


def cell_name(cell: dict, steps: int) -> str:
    return f"{cell['model']}-{cell['activation']}-h{cell['hidden']}-l{cell['layers']}-s{steps}"


def _run_cell(args: tuple) -> dict:
    cell, cfg_dict, cells_root = args
    cfg = SentimentConfig.from_dict(cfg_dict)
    name = cell_name(cell, cfg.steps)
    path = Path(cells_root) / LAB / name
    if (path / "summary.json").exists() and (path / "checkpoints" / "last.pt").exists():
        s = json.loads((path / "summary.json").read_text())
        if "test_acc" in s:
            return {**cell, **_cell_row(s), "run": name, "reused": True}
    if path.exists():  # an unfinished cell from a killed sweep: start it again
        import shutil

        shutil.rmtree(path)
    run = train(cfg, root=cells_root, name=name, quiet=True, figures=False)
    return {**cell, **_cell_row(run.read_summary()), "run": name, "reused": False}


def _cell_row(s: dict) -> dict:
    return {
        "params": s["params"],
        "train_acc": s["train_acc"],
        "test_acc": s["test_acc"],
        "test_f1": s["test_f1"],
        "test_auc": s["test_auc"],
        "seconds": s["train_seconds"],
    }


def sweep(
    cells: list[dict],
    base: SentimentConfig,
    *,
    root: str | Path = "runs",
    name: str = "sweep",
    jobs: int = 1,
    quiet: bool = False,
) -> tuple[Run, list[dict]]:
    """Train every cell (in ``jobs`` processes), skip finished ones, write CSV + Markdown + plot."""
    from concurrent.futures import ProcessPoolExecutor, as_completed

    from tqdm.auto import tqdm

    if jobs < 1:
        raise ConfigError(f"bad --jobs {jobs}; it must be >= 1")
    grid = {"models": sorted({c["model"] for c in cells}), "cells": len(cells), **base.to_dict()}
    out = Run.create(LAB, grid, name=name, root=root)
    cells_root = out.path / "cells"
    prepare(base)  # fail early (missing data, bad CSV) before starting processes
    tasks = [(c, cell_config(c, base).to_dict(), str(cells_root)) for c in cells]
    rows = []
    bar = tqdm(total=len(tasks), desc="sweep", disable=quiet, leave=False)
    if jobs == 1:
        for t in tasks:
            rows.append(_run_cell(t))
            bar.update(1)
    else:
        import multiprocessing as mp

        with ProcessPoolExecutor(max_workers=jobs, mp_context=mp.get_context("spawn")) as ex:
            futs = [ex.submit(_run_cell, t) for t in tasks]
            for f in as_completed(futs):
                rows.append(f.result())
                bar.update(1)
    bar.close()
    key = {cell_name(c, base.steps): i for i, c in enumerate(cells)}
    rows.sort(key=lambda r: key[r["run"]])
    table = [{k: v for k, v in r.items() if k != "reused"} for r in rows]
    out.save_table(
        table,
        "sweep",
        caption=f"Sweep of {len(cells)} cells, {base.steps} steps each; test metrics "
        f"on the whole test set.",
    )
    best = max(rows, key=lambda r: r["test_acc"])
    out.update_summary(
        {
            "cells": len(rows),
            "reused": sum(r["reused"] for r in rows),
            "best_cell": {k: v for k, v in best.items() if k != "reused"},
        }
    )
    sweep_figure(out, table, base.steps)
    if not quiet:
        print(markdown_table(table))
        print(f"best cell: {best['run']} test acc {best['test_acc']:.4f}; results in {out.tables_dir}")
    return out, rows


def sweep_figure(out: Run, rows: list[dict], steps: int) -> Path:
    from genlab import plots

    fig, ax = plots.figure(size=(7, 4.2))
    groups: dict[str, list[dict]] = {}
    for r in rows:
        label = (
            f"{r['model']}{'' if r['activation'] == '-' else ' ' + r['activation']}, {r['layers']} layer(s)"
        )
        groups.setdefault(label, []).append(r)
    for i, (label, rs) in enumerate(groups.items()):
        rs = sorted(rs, key=lambda r: r["hidden"])
        ax.plot(
            [r["hidden"] for r in rs],
            [r["test_acc"] for r in rs],
            "o-",
            label=label,
            color=plots.class_colors(len(groups))[i],
        )
    best = max(rows, key=lambda r: r["test_acc"])
    ax.scatter(
        [best["hidden"]],
        [best["test_acc"]],
        s=180,
        facecolors="none",
        edgecolors="black",
        zorder=5,
        label=f"best: {best['run']}",
    )
    ax.set_xlabel("hidden size (recurrent state / MLP width / attention width)")
    ax.set_ylabel("test accuracy")
    ax.set_title(f"Sweep, {steps} steps per cell")
    ax.legend(fontsize=8)
    return out.save_figure(
        fig,
        "sweep",
        caption="Test accuracy of every sweep cell against its hidden size; the best cell is circled.",
        command=f"genlab sentiment sweep --name {out.path.name}",
        data={"rows": rows},
    )


# ------------------------------------------------------------------------------------------------------ demo

QUICK_STEPS = {"rnn": 500, "gru": 800, "mlp": 1000, "attention": 500}
FULL_STEPS = {"rnn": 3200, "gru": 3200, "mlp": 3200, "attention": 3200}


def _train_or_reuse(
    cfg: SentimentConfig, root: Path, name: str, device: str, quiet: bool, reuse: bool
) -> Run:
    path = root / LAB / name
    if reuse and (path / "checkpoints" / "last.pt").exists() and "test_acc" in Run(path).read_summary():
        old = Run(path)
        if old.read_config_file().get("config") == json.loads(json.dumps(cfg.to_dict())):
            return old
    if path.exists():
        import shutil

        shutil.rmtree(path)
    return train(cfg, root=root, name=name, device=device, quiet=quiet)


def demo(
    root: str | Path = "runs",
    *,
    quick: bool = True,
    device: str = "auto",
    quiet: bool = False,
    reuse: bool = True,
) -> list[Run]:
    """Train rnn, gru, mlp and attention on rt, then write every figure and table of the lab.

    Quick: short runs (about a minute and a half of training on one free core) and a tiny sweep of the
    token-wise MLP; the full version trains ten epochs per model and leaves sweeps to the sweep verb.
    """
    with cpu_threads(1):
        return _demo(Path(root), quick, device, quiet, reuse)


def _demo(root: Path, quick: bool, device: str, quiet: bool, reuse: bool) -> list[Run]:
    steps = QUICK_STEPS if quick else FULL_STEPS
    tag = "quick" if quick else "full"
    runs = {}
    for model in MODELS:
        cfg = SentimentConfig(model=model, steps=steps[model])
        runs[model] = _train_or_reuse(cfg, root, f"rt-{model}-{tag}", device, quiet, reuse)
    main = runs["gru"]
    comparison_table(list(runs.values()), main)
    data = prepare(SentimentConfig())
    bptt_figure(main, data, trained=[runs["rnn"], runs["gru"]])
    explain([runs["mlp"], runs["attention"]], EXAMPLES, out=runs["attention"], quiet=quiet)
    result = list(runs.values())
    if quick:
        cells = sweep_cells(["mlp"], ["-"], [64, 96, 128], [1, 2])
        srun, _ = sweep(cells, SentimentConfig(steps=400), root=root, name="sweep-quick", jobs=1, quiet=quiet)
        result.append(srun)
    return result


# -------------------------------------------------------------------------------------------------------- CLI

_SHORT = (
    ("model", str),
    ("activation", str),
    ("hidden", int),
    ("layers", int),
    ("window", int),
    ("embeddings", str),
    ("csv", str),
    ("tbptt", int),
    ("steps", int),
    ("lr", float),
)


def _add_short(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("shortcuts for --set KEY=VALUE")
    for key, tp in _SHORT:
        g.add_argument(
            f"--{key}", type=str, default=None, metavar=tp.__name__.upper(), help=f"--set {key}=..."
        )
    g.add_argument(
        "--clip", type=str, default=None, metavar="NORM", help="--set grad_clip=... (gradient clipping)"
    )


def _short_overrides(args: argparse.Namespace) -> list[str]:
    out = [f"{k}={getattr(args, k)}" for k, _ in _SHORT if getattr(args, k, None) is not None]
    if getattr(args, "clip", None) is not None:
        out.append(f"grad_clip={args.clip}")
    return out


def _threaded(fn):
    """Run a verb on one torch CPU thread (see ``SentimentConfig.threads``)."""

    def wrapper(args: argparse.Namespace) -> int:
        with cpu_threads(1):
            return fn(args)

    return wrapper


def _cmd_train(args: argparse.Namespace) -> int:
    from genlab.cli import config_from_args

    if args.csv is not None:
        from genlab.cli import check_path

        check_path(args.csv, "CSV file")
    args.overrides = _short_overrides(args) + list(args.overrides)
    cfg = config_from_args(SentimentConfig, args, PRESETS)
    train(cfg, root=args.run_dir, name=args.name, resume=args.resume, device=args.device, quiet=args.quiet)
    return 0


@_threaded
def _cmd_eval(args: argparse.Namespace) -> int:
    run = Run.open(args.run)
    dev = choose_device(args.device)
    model, cfg, vocab = load_model(run, dev)
    if args.csv:
        cfg = cfg.update({"csv": args.csv})
    data = prepare(cfg, vocab.words() if cfg.embeddings == "learned" else None)
    m = evaluate_full(model, data, dev)
    rows = [
        {"model": describe_model(cfg), "dataset": data.split.name, **{k: round(v, 4) for k, v in m.items()}}
    ]
    if args.baseline:
        b = tfidf_baseline(data.split)
        rows.append(
            {
                "model": "TF-IDF + logistic regression",
                "dataset": data.split.name,
                **{k: round(v, 4) for k, v in b.items()},
            }
        )
    print(markdown_table(rows), end="")
    return 0


def _cmd_sweep(args: argparse.Namespace) -> int:
    from genlab.cli import config_from_args

    models = [m.strip() for m in args.models.split(",") if m.strip()]
    acts = [a.strip() for a in args.activations.split(",") if a.strip()]
    from genlab.errors import choose

    for m in models:
        choose("model", m, MODELS)
    for a in acts:
        choose("activation", a, ACTIVATIONS)
    try:
        hiddens = (
            [int(h) for h in args.hidden.split(",")]
            if "," in args.hidden or ":" not in args.hidden
            else list(range(*[int(v) for v in args.hidden.split(":")]))
        )
        layers = [int(v) for v in args.layers.split(",")]
    except ValueError:
        raise ConfigError(
            f"bad --hidden {args.hidden!r} or --layers {args.layers!r}; write e.g. --hidden 64:129:8 "
            f"or --hidden 64,96,128 and --layers 1,2"
        ) from None
    if not hiddens or min(hiddens) < 1 or not layers or min(layers) < 1:
        raise ConfigError("--hidden and --layers need positive integers")
    args.overrides = ([f"steps={args.steps}"] if args.steps is not None else []) + list(args.overrides)
    if args.csv:
        args.overrides.append(f"csv={args.csv}")
    base = config_from_args(SentimentConfig, args)
    sweep(
        sweep_cells(models, acts, hiddens, layers),
        base,
        root=args.run_dir,
        name=args.name,
        jobs=args.jobs,
        quiet=args.quiet,
    )
    return 0


@_threaded
def _cmd_explain(args: argparse.Namespace) -> int:
    runs = [Run.open(r) for r in args.run]
    texts = args.text or list(EXAMPLES)
    out = Run.open(args.run[-1]) if not args.no_figures else None
    explain(runs, texts, out=out)
    if out is not None:
        print(f"figures in {out.figures_dir}")
    return 0


@_threaded
def _cmd_figures(args: argparse.Namespace) -> int:
    run = Run.open(args.run)
    cfg = run.config(SentimentConfig)
    curves_figure(run)
    if args.bptt or cfg.model in ("rnn", "gru"):
        _, _, vocab = load_model(run)
        data = prepare(cfg, vocab.words() if cfg.embeddings == "learned" else None)
        bptt_figure(run, data, trained=[run] if cfg.model in ("rnn", "gru") else [])
    if cfg.model in ("mlp", "attention"):
        explain([run], EXAMPLES, out=run, quiet=args.quiet)
    print(f"figures in {run.figures_dir}")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    from genlab.cli import add_lab_parser, add_run_arg, add_train_args

    verbs = add_lab_parser(sub, LAB, "lab 4: review sentiment with RNN, GRU, token-wise MLP and attention", TITLE)

    t = verbs.add_parser("train", help="train one model (default: GRU on rt)")
    add_train_args(t, list(PRESETS))
    _add_short(t)
    t.set_defaults(func=_cmd_train)

    e = verbs.add_parser("eval", help="accuracy, F1 and ROC-AUC of a trained run on train and test")
    add_run_arg(e)
    e.add_argument("--csv", default=None, help="score on a Kaggle-format CSV instead of the run's data")
    e.add_argument("--baseline", action="store_true", help="add the TF-IDF + logistic-regression row")
    e.set_defaults(func=_cmd_eval)

    s = verbs.add_parser("sweep", help="grid of model x activation x hidden x layers in parallel processes")
    add_train_args(s)
    s.add_argument("--models", default="rnn,gru", help="comma-separated models (default: rnn,gru)")
    s.add_argument("--activations", default="tanh,relu", help="Elman activations (default: tanh,relu)")
    s.add_argument("--hidden", default="64:129:8", help="start:stop:step or a list (default: 64:129:8)")
    s.add_argument("--layers", default="1", help="comma-separated layer counts (default: 1)")
    s.add_argument("--steps", type=int, default=None, help="steps per cell (default: the config's)")
    s.add_argument("--csv", default=None, help="a Kaggle-format CSV instead of rt")
    s.add_argument("--jobs", type=int, default=1, help="parallel processes (default: 1)")
    s.set_defaults(func=_cmd_sweep, name="sweep")

    x = verbs.add_parser("explain", help="per-word sub-scores of mlp / attention runs for reviews")
    x.add_argument("text", nargs="*", help="reviews to explain (default: the lab's examples)")
    x.add_argument(
        "--run",
        action="append",
        required=True,
        metavar="DIR",
        help="a trained mlp or attention run (repeatable)",
    )
    x.add_argument("--no-figures", action="store_true", help="print the tables only")
    x.add_argument("--device", default="cpu", help=argparse.SUPPRESS)
    x.add_argument("--quiet", action="store_true", help=argparse.SUPPRESS)
    x.set_defaults(func=_cmd_explain)

    f = verbs.add_parser("figures", help="redraw a run's figures (curves; BPTT for rnn/gru; words for mlp)")
    add_run_arg(f)
    f.add_argument("--bptt", action="store_true", help="also draw the BPTT gradient figure")
    f.set_defaults(func=_cmd_figures)


__all__ = ["SentimentConfig", "train", "demo", "explain", "sweep", "bptt_figure", "EXAMPLES"]


REFERENCE_TEST_ACC = {"rnn": "0.50-0.73 (IMDB)", "gru": "0.79-0.86 (IMDB)", "mlp": "0.69-0.83 (IMDB)",
                      "attention": "0.77-0.83 (IMDB)"}


def key_metrics(runs: list[Run]) -> list[dict]:
    """Test accuracy of each model next to the student reports (which used IMDB 50k, not rt snippets)."""
    rows = []
    for run in runs:
        s = run.read_summary()
        if "test_acc" in s and "model" in s:
            rows.append({"metric": f"test accuracy, {s.get('description', s['model'])} ({s.get('dataset')})",
                         "value": s["test_acc"], "reference": REFERENCE_TEST_ACC.get(s["model"], "")})
    base = next((r.read_summary()["baseline_test_acc"] for r in runs if "baseline_test_acc" in r.read_summary()),
                None)
    if base is not None:
        rows.append({"metric": "test accuracy, TF-IDF + logistic regression", "value": base, "reference": ""})
    return rows
