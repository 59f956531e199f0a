"""Every figure and table of the sentiment lab, one registered function each (``fn(opened) -> Drawn``).

``opened`` is a :class:`~genlab.labs.sentiment.core.Opened` (a trained run and the runs beside it) or a
:class:`~genlab.labs.sentiment.core.Sweep`; each output says with ``when`` which one it applies to.
"""

from __future__ import annotations

import numpy as np

from genlab import plots
from genlab.data.reviews import long_sequences
from genlab.labs import Drawn, figure, table
from genlab.labs.sentiment.config import SentimentConfig, describe_model, train_command
from genlab.labs.sentiment.core import Opened, Sweep, load_model
from genlab.nn.sentiment_models import build_classifier
from genlab.runs import seed_everything

METRICS = ("train_acc", "train_f1", "train_auc", "test_acc", "test_f1", "test_auc")
BPTT_CELLS = (
    ("rnn", "tanh"),
    ("rnn", "relu"),
    ("rnn", "none"),
    ("gru", "tanh"),
    ("gru", "relu"),
    ("gru", "sigmoid"),
    ("gru", "none"),
)


def bptt_label(model: str, act: str) -> str:
    return f"Elman {act}" if model == "rnn" else "GRU" if act == "tanh" else f"GRU, {act} candidate"


def gradient_panel(ax, curves: dict[str, list[float]], title: str, length: int) -> None:
    """``||dL/dh_t||`` along ``t`` for each curve on a log scale (dashed: a GRU with a non-tanh candidate)."""
    for i, (label, g) in enumerate(curves.items()):
        g = np.asarray(g)
        t = np.arange(1, length + 1)
        # float32 underflows to exactly 0 far back: leave those steps blank rather than on a fake floor
        style = "--" if label.startswith("GRU,") else "-"
        ax.plot(t, np.where(g > 0, g, np.nan), style, label=label, color=plots.PALETTE[i % len(plots.PALETTE)])
    ax.set_yscale("log")
    ax.set_xlabel(f"time step t (the loss is read after step {length})")
    ax.set_ylabel(r"mean $\|\partial L / \partial h_t\|$")
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8)


def _init_curve(model: str, act: str, data, ids, y, hidden: int, seed: int) -> list[float]:
    """``||dL/dh_t||`` along ``t`` of a freshly initialised ``model`` (Elman activation / GRU candidate ``act``)."""
    key = "activation" if model == "rnn" else "candidate"
    cfg = SentimentConfig(model=model, hidden=hidden, embeddings=data.vocab.kind, **{key: act})
    seed_everything(seed)
    return build_classifier(cfg, data.vocab).eval().gradient_norms_along_time(ids, y)


def _model_run(o) -> bool:
    return isinstance(o, Opened)


def _evaluated(o) -> bool:
    return _model_run(o) and "baseline" in o.run.read_summary()


@figure("curves", when=_model_run)
def fig_curves(o: Opened) -> Drawn:
    """Loss and accuracy curves: every training batch (smoothed) and the test batch scored every 50 steps."""
    cfg, rows = o.cfg, o.run.read_metrics()
    names = {"loss": "train batch", "test_loss": "test batch", "acc": "train batch", "test_acc": "test batch"}
    fig, axes = plots.figure(1, 2, size=(11, 3.8))
    plots.loss_curves(rows, ["loss", "test_loss"], title="Cross-entropy", ax=axes[0], names=names)
    plots.loss_curves(rows, ["acc", "test_acc"], title="Accuracy", ax=axes[1], names=names)
    axes[1].set_ylabel("accuracy")
    fig.suptitle(f"{describe_model(cfg)} on {o.run.read_summary().get('dataset', 'rt')}", fontweight="bold")
    fig.tight_layout()
    data = {
        "step": [r["step"] for r in rows if "loss" in r],
        "loss": [r["loss"] for r in rows if "loss" in r],
        "test_step": [r["step"] for r in rows if "test_acc" in r],
        "test_acc": [r["test_acc"] for r in rows if "test_acc" in r],
    }
    return Drawn(
        fig,
        f"Training curves of {describe_model(cfg)}: cross-entropy and accuracy of each training "
        f"batch of {cfg.batch_size} (faint, and smoothed) and of one test batch every {cfg.eval_every} "
        f"steps.",
        data=data,
    )


MINILM_ROW = "MiniLM sentence vectors + logistic regression (pretrained reference)"


@table("metrics", when=_evaluated)
def table_metrics(o: Opened) -> Drawn:
    """The run's accuracy, F1 and ROC-AUC on the whole train and test sets, and the TF-IDF baseline's."""
    s, cfg = o.run.read_summary(), o.cfg
    rows = [
        {"model": describe_model(cfg), **{k: s[k] for k in METRICS}},
        {"model": "TF-IDF + logistic regression", **{k: s["baseline"][k] for k in METRICS}},
    ]
    if "minilm" in s:
        rows.append({"model": MINILM_ROW, **{k: s["minilm"][k] for k in METRICS}})
    return Drawn(
        rows=rows,
        caption=f"{o.data.split.describe()}; {cfg.steps} steps of batch {cfg.batch_size}. "
        f"Command: `{train_command(cfg, o.run.path.name)}`",
    )


@table("comparison", when=lambda o: _model_run(o) and len(o.runs) > 1)
def table_comparison(o: Opened) -> Drawn:
    """One row per trained model and the TF-IDF baseline: train/test accuracy, F1 and ROC-AUC."""
    summaries = [(r, r.read_summary()) for r in o.runs]
    rows = [
        {"model": s["description"], "steps": s["steps"], **{k: s[k] for k in METRICS}, "run": r.path.name}
        for r, s in summaries
        if "test_acc" in s
    ]
    base = next((s["baseline"] for _, s in summaries if "baseline" in s), None)
    if base is not None:
        rows.append(
            {"model": "TF-IDF + logistic regression", "steps": "-", **{k: base[k] for k in METRICS}, "run": "-"}
        )
    ref = next((s["minilm"] for _, s in summaries if "minilm" in s), None)
    if ref is not None:
        rows.append({"model": MINILM_ROW, "steps": "-", **{k: ref[k] for k in METRICS}, "run": "-"})
    return Drawn(
        rows=rows,
        caption="Test accuracy, F1 and ROC-AUC of each model on the same split, next to a "
        "TF-IDF + logistic-regression baseline"
        + (
            " and a pretrained-encoder reference (all-MiniLM-L6-v2 sentence vectors + logistic regression, C "
            "chosen on a validation split of the training reviews): what pretraining on other text adds."
            if ref is not None
            else "."
        ),
        summary={"comparison": {r["model"]: r["test_acc"] for r in rows}},
    )


@figure("bptt", when=lambda o: _model_run(o) and (o.cfg.model in ("rnn", "gru") or o.bptt))
def fig_bptt(o: Opened, hidden: int = 64, length: int = 100, seed: int = 0) -> Drawn:
    """How far back the gradient reaches: ``||dL/dh_t||`` along ``t`` for Elman (tanh, relu, none) and the GRU
    (candidate tanh, relu, sigmoid, none), at initialisation and, for the recurrent runs among ``o.runs``, after
    training."""
    data = o.data
    ids, y = long_sequences(data, length, seed=seed)
    curves: dict[str, list[float]] = {}
    for cell, act in BPTT_CELLS:
        curves[bptt_label(cell, act)] = _init_curve(cell, act, data, ids, y, hidden, seed)
    trained: dict[str, list[float]] = {}
    for r in o.runs:
        cfg = r.config(SentimentConfig)
        if cfg.model in ("rnn", "gru") and cfg.embeddings == data.vocab.kind == "glove":
            trained[describe_model(cfg)] = load_model(r)[0].gradient_norms_along_time(ids, y)
    ncols = 2 if trained else 1
    fig, axes = plots.figure(1, ncols, size=(5.6 * ncols, 3.9), squeeze=False)
    t = np.arange(1, length + 1)
    for ax, (title, cs) in zip(axes[0], [("at initialisation", curves), ("after training", trained)]):
        gradient_panel(ax, cs, f"Gradient reaching h_t, {title}", length)
    fig.tight_layout()
    return Drawn(
        fig,
        f"Backpropagation through time made visible: the norm of the gradient of the loss with "
        f"respect to each hidden state h_t (hidden {hidden}), on {ids.shape[0]} sequences of {length} "
        f"words (consecutive {data.split.name} reviews, labelled by the last one). The tanh Elman RNN's "
        f"gradient shrinks geometrically going back in time (vanishing); ReLU and no activation can "
        f"grow or shrink with the recurrent matrix's spectral radius; the GRU's update gate keeps a path "
        f"open (dashed: the GRU with another candidate activation than tanh). Use --tbptt K to cut the "
        f"gradient after K steps and --set grad_clip=1 to clip its norm.",
        data={"t": t.tolist(), "init": curves, "trained": trained},
    )


def _mark(r: dict) -> str:
    return "" if r.get("label") is None else " ok" if r["prediction"] == r["label"] else " WRONG"


def _explains(o) -> bool:
    return _model_run(o) and o.cfg.model in ("mlp", "attention")


@figure("explain_words", when=_explains, verb="explain")
def fig_explain_words(o: Opened) -> Drawn:
    """Each review drawn word by word, every word coloured by its sub-score (blue positive, red negative)."""
    import matplotlib as mpl

    results = o.explained
    models = list(results[0])
    nrow = len(results) * len(models)
    fig, ax = plots.figure(size=(12, 0.62 * nrow + 1.2))
    vmax = max(
        1e-6,
        float(np.max(np.abs([d for res in results for r in res.values() for d in np.subtract(r["pos"], r["neg"])]))),
    )
    norm = mpl.colors.TwoSlopeNorm(vmin=-vmax, vcenter=0.0, vmax=vmax)
    pad = max(len(m) for m in models)
    width = ax.get_position().width * fig.get_figwidth() * 72 / (0.6 * 10)  # characters of 10 pt monospace
    y = 0.0
    for res in results:
        for name, r in res.items():
            y = plots.paint_tokens(
                ax,
                r["words"],
                np.subtract(r["pos"], r["neg"]),
                cmap="RdBu",
                norm=norm,
                width=width,
                y0=y,
                fontsize=10,
                label=f"{name:<{pad}} [{r['prediction'][:3]} {r['p_pos']:.2f}{_mark(r)}]",
            )
    cb = fig.colorbar(
        mpl.cm.ScalarMappable(norm=norm, cmap="RdBu"),
        ax=ax,
        orientation="horizontal",
        fraction=0.04,
        pad=0.02,
        aspect=50,
    )
    cb.set_label("word sub-score: positive minus negative (red pushes toward negative, blue toward positive)")
    ax.set_title("Per-word sub-scores of the token-wise MLP and the attention model")
    keys = ("words", "neg", "pos", "score_neg", "score_pos", "prediction", "label")
    data = [{m: {k: r[k] for k in keys} for m, r in res.items()} for res in results]
    summary = [
        {n: {"prediction": r["prediction"], "p_pos": round(r["p_pos"], 4), "label": r["label"]} for n, r in res.items()}
        | {"text": res[next(iter(res))]["text"]}
        for res in results
    ]
    return Drawn(
        fig,
        "Each word coloured by its own sub-score (positive minus negative score); the review's "
        "scores are the mean over its words. [pos/neg P] gives the prediction and P(positive), then 'ok' or "
        "'WRONG' against the true label where it is known. Built-in reviews: one test review the model predicts "
        "right, one it predicts wrong, the lab's two examples and 'the movie was not good' (all negative).",
        data={"reviews": data},
        summary={"explain": summary},
    )


@figure(
    "attention_weights",
    verb="explain",
    when=lambda o: _explains(o) and any(r.config(SentimentConfig).model == "attention" for r in o.explainers),
)
def fig_attention_weights(o: Opened) -> Drawn:
    """Heat-maps of the restricted attention weights (row: the word attending; column: the word attended)."""
    # one model's maps (the first with attention), for at most three reviews: the picked test reviews come first
    results = [next(r for r in res.values() if "attention" in r) for res in o.explained][:3]
    k = next(c.window for c in (r.config(SentimentConfig) for r in o.explainers) if c.model == "attention")
    fig, axes = plots.figure(1, len(results), size=(4.6 * len(results), 4.6), squeeze=False, layout="constrained")
    for i, (ax, r) in enumerate(zip(axes[0], results)):
        im = plots.attention_heatmap(ax, r["attention"], r["words"], vmax=1, fontsize=8, colorbar=False)
        ax.set_title("“" + r["text"][:38] + ("…" if len(r["text"]) > 38 else "") + "”", fontsize=9)
        if i:
            ax.set_ylabel("")
    fig.colorbar(im, ax=axes[0].tolist(), fraction=0.02, label="attention weight")
    fig.suptitle(f"Restricted self-attention weights (each word sees {k} words on each side)", fontweight="bold")
    return Drawn(
        fig,
        f"Attention weights of the MLP + attention model: row i is the softmax over the window of "
        f"word i (k = {k} each side); entries outside the window are zero, padding is never attended.",
        data={"reviews": [{"words": r["words"], "attention": r["attention"]} for r in results]},
    )


def _sweep(o) -> bool:
    return isinstance(o, Sweep)


@table("sweep", when=_sweep)
def table_sweep(o: Sweep) -> Drawn:
    return Drawn(
        rows=o.rows,
        caption=f"Sweep of {len(o.cells)} cells, {o.base.steps} steps each: accuracy, F1 and ROC-AUC on the whole "
        "train and test sets (activation: the Elman RNN's, or the GRU's candidate; widths: the MLP's shape).",
    )


@figure("sweep", when=_sweep)
def fig_sweep(o: Sweep) -> Drawn:
    """Test accuracy of every cell against its hidden size, one line per model, activation and depth."""
    rows = o.rows
    fig, ax = plots.figure(size=(7, 4.2))
    groups: dict[str, list[dict]] = {}
    for r in rows:
        act = "" if r["activation"] == "-" else " " + r["activation"]
        extra = "".join(f", {k} {r[k]}" for k in ("widths", "dropout", "lr") if r.get(k, "-") != "-")
        groups.setdefault(f"{r['model']}{act}, {r['layers']} layer(s){extra}", []).append(r)
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
    ax.set_xlabel("hidden size (recurrent state / widest MLP layer / attention width)")
    ax.set_ylabel("test accuracy")
    ax.set_title(f"Sweep, {o.base.steps} steps per cell")
    ax.legend(fontsize=8)
    return Drawn(
        fig, "Test accuracy of every sweep cell against its hidden size; the best cell is circled.", data={"rows": rows}
    )
