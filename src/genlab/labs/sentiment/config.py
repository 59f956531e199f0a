"""The sentiment lab's settings, presets, demo sizes and sweep grid."""

from __future__ import annotations

import itertools
from dataclasses import dataclass

from genlab.config import param
from genlab.nn.recurrent import ACTIVATIONS
from genlab.nn.sentiment_models import MODELS, POOLS
from genlab.train import TrainConfig

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
    activation: str = param("tanh", "Elman RNN activation: none | tanh | relu | sigmoid", choices=ACTIVATIONS)
    candidate: str = param(
        "tanh", "GRU candidate activation h~ = act(...): tanh | sigmoid | relu | none", choices=ACTIVATIONS
    )
    hidden: int = param(64, "recurrent state size / attention width", min=1)
    layers: int = param(1, "stacked recurrent layers", min=1)
    widths: tuple[int, ...] = param((64, 32), "token-wise MLP hidden widths (mlp, attention)", min=1)
    dropout: float = param(
        0.0, "dropout while training: after each MLP hidden layer; rnn/gru also on the pooled state", min=0.0, max=0.95
    )
    bidirectional: bool = param(False, "rnn/gru: also read each review backwards and concatenate both states")
    pool: str = param("last", "rnn/gru: state after the last word, or mean / max over words", choices=POOLS)
    embed_dropout: float = param(0.0, "dropout on the word vectors while training", min=0.0, max=0.95)
    embed_lr_scale: float = param(
        0.0, "glove: fine-tune the word vectors at lr x this (0 = frozen, the lab's)", min=0.0, max=10.0
    )
    val_fraction: float = param(
        0.0, "hold out this share of the training reviews (stratified, fixed) as a validation split", min=0.0, max=0.5
    )
    minilm_row: bool = param(
        False, "rt: add the pretrained reference row, MiniLM sentence vectors + logistic regression (encodes once)"
    )
    early_stop: bool = param(
        False, "keep the weights of the best validation accuracy (scored every eval_every steps; needs val_fraction)"
    )
    window: int = param(5, "attention: words on each side each word attends to", min=1)
    embeddings: str = param("glove", "glove (frozen GloVe 6B 50-d) or learned", choices=("glove", "learned"))
    embed_dim: int = param(50, "learned embedding size", min=1)
    min_count: int = param(2, "learned vocabulary: keep words seen this often", min=1)
    max_len: int = param(100, "keep at most this many words of a review", min=1)
    csv: str = param("", "Kaggle 'IMDB Dataset.csv' path (review, sentiment); empty = the rt snippets")
    n_train: int = param(30000, "CSV: the first N rows train, the rest test", min=1)
    tbptt: int = param(0, "truncated BPTT: detach the state every K steps (0 = full BPTT)", min=0)
    reset_after: bool = param(False, "GRU: apply the reset gate after the recurrent product (nn.GRU's form)")
    steps: int = param(3200, "optimisation steps (320 = one epoch of rt at batch 32)", min=0)
    epochs: int = param(0, "if > 0: steps = this many passes over the training set at batch_size", min=0)
    batch_size: int = param(32, "reviews per step", min=1)
    eval_every: int = param(50, "score one test batch (and the validation split) every N steps", min=0)
    log_every: int = param(1, "log the training batch's loss and accuracy every N steps", min=1)
    threads: int = param(
        1,
        "CPU threads for torch while training and drawing (0 = torch's default); these "
        "small models run fastest on 1, and far slower on 2+ when the cores are busy",
        min=0,
    )


PRESETS = {
    "quick": SentimentConfig(steps=600),
    # the reports' own setup: Adam lr 1e-4, batch 32, 10 epochs, one test batch every 50 steps
    "report": SentimentConfig(lr=1e-4, batch_size=32, epochs=10, eval_every=50),
    # the best combination measured on rt (benchmarks/sentiment_ablation.py, cell reg03_l2), selected on a
    # validation split of the training reviews: a bidirectional GRU of two layers, max-pooled over words, with
    # dropout 0.5, word dropout 0.4 and GloVe tuned at lr x 0.3, 2400 steps, the weights of the best validation
    # accuracy kept; batches of 128 (as cheap per step as 32 on a CPU). Measured: val 0.802 +- 0.004, test
    # 0.804 +- 0.004 over seeds 0-2, against 0.735 / 0.758 +- 0.011 for the lab's GRU under the same selection,
    # TF-IDF + LR 0.791, MiniLM + LR 0.773. What paid: tuning GloVe harder (x 0.3-1 rather than x 0.1) with
    # stronger dropout and training 4x longer (the earlier preset: x 0.1, dropout 0.3 / 0.2, 600 steps, 0.778)
    "best": SentimentConfig(
        model="gru",
        layers=2,
        bidirectional=True,
        pool="max",
        dropout=0.5,
        embed_dropout=0.4,
        embed_lr_scale=0.3,
        val_fraction=0.1,
        early_stop=True,
        batch_size=128,
        lr=2e-3,
        steps=2400,
        eval_every=40,
        minilm_row=True,
    ),
}

# The demo's models and steps; tiny: 80 generated reviews, learned 8-d embeddings, 20 steps (seconds; all but
# the GRU reach 100% test accuracy).
QUICK_STEPS = {"rnn": 500, "gru": 800, "mlp": 1000, "attention": 500}
FULL_STEPS = {"rnn": 3200, "gru": 3200, "mlp": 3200, "attention": 3200}
TINY_STEPS = {"rnn": 20, "gru": 20, "mlp": 20, "attention": 20}
TINY = dict(n_train=60, embeddings="learned", embed_dim=8, hidden=8, widths=(8,), window=2, eval_every=5, lr=0.03)


def _changes(cfg: SentimentConfig) -> str:
    """The departures from the lab's recurrent model, e.g. ``, bidirectional, max-pooled, dropout 0.3``."""
    parts = ["bidirectional"] if cfg.bidirectional else []
    parts += [f"{cfg.pool}-pooled"] if cfg.pool != "last" else []
    parts += [f"dropout {cfg.dropout:g}"] if cfg.dropout else []
    parts += [f"word dropout {cfg.embed_dropout:g}"] if cfg.embed_dropout else []
    parts += [f"GloVe tuned at lr x {cfg.embed_lr_scale:g}"] if cfg.embed_lr_scale and cfg.embeddings == "glove" else []
    parts += ["early-stopped"] if cfg.early_stop else []
    return "".join(f", {p}" for p in parts)


def describe_model(cfg: SentimentConfig) -> str:
    if cfg.model == "rnn":
        return f"Elman RNN ({cfg.activation}, {cfg.hidden}x{cfg.layers}{_changes(cfg)})"
    if cfg.model == "gru":
        cand = "" if cfg.candidate == "tanh" else cfg.candidate + " candidate, "
        return f"GRU ({cand}{cfg.hidden}x{cfg.layers}{_changes(cfg)})"
    drop = f", dropout {cfg.dropout:g}" if cfg.dropout else ""
    if cfg.model == "mlp":
        return f"token-wise MLP {list(cfg.widths)}{drop}"
    return f"attention (k={cfg.window}, H={cfg.hidden}) + MLP {list(cfg.widths)}{drop}"


def train_command(cfg: SentimentConfig, name: str) -> str:
    """The CLI command that trains ``cfg`` (only the values that differ from the defaults)."""
    default = SentimentConfig().to_dict()
    sets = []
    for k, v in cfg.to_dict().items():
        if v != default[k]:
            v = ",".join(map(str, v)) if isinstance(v, tuple) else v
            sets.append(f"--set {k}={v}")
    return " ".join(["genlab sentiment train", f"--name {name}", *sets])


# ------------------------------------------------------------------------------------------------ the sweep

# optional axes: a cell carries the key when its axis was given ("-" where it does not apply to the model)
EXTRA_AXES = (("widths", "w"), ("dropout", "d"), ("lr", "lr"))


def parse_widths(text: str) -> tuple[int, ...]:
    """``"128x64"`` -> ``(128, 64)``: one MLP shape of the sweep's ``--widths``."""
    return tuple(int(w) for w in text.split("x"))


def sweep_cells(
    models: list[str],
    activations: list[str],
    hiddens: list[int],
    layers: list[int],
    *,
    candidates: list[str] = ("-",),
    widths: list[str] = (),
    dropouts: list[float] = (),
    lrs: list[float] = (),
) -> list[dict]:
    """The grid. ``activations`` vary the Elman RNN, ``candidates`` the GRU's candidate ("-": the default tanh);
    ``hidden`` and ``layers`` mean the recurrent size and depth for rnn/gru, the MLP width and depth for mlp,
    the attention width and MLP depth for attention. Optional axes: ``widths`` (MLP shapes such as "128x64",
    replacing hidden x layers for mlp and the MLP's depth for attention), ``dropouts`` (mlp, attention) and
    ``lrs`` (every model)."""
    cells = []
    for model in models:
        acts = activations if model == "rnn" else candidates if model == "gru" else ["-"]
        token = model in ("mlp", "attention")
        if token and widths:
            shapes = [(max(parse_widths(w)), len(parse_widths(w)), w) for w in widths]
            if model == "attention":
                shapes = [(h, n, w) for h in hiddens for _, n, w in shapes]
        else:
            shapes = [(h, nl, "-") for h in hiddens for nl in layers]
        drops = (dropouts if token else ["-"]) if dropouts else [None]
        for act, (h, nl, w), d, lr in itertools.product(acts, shapes, drops, lrs or [None]):
            cell = {"model": model, "activation": act, "hidden": h, "layers": nl}
            for key, v in (("widths", w if widths else None), ("dropout", d), ("lr", lr)):
                if v is not None:
                    cell[key] = v
            cells.append(cell)
    return cells


def cell_config(cell: dict, base: SentimentConfig) -> SentimentConfig:
    values = {"model": cell["model"], "hidden": cell["hidden"], "layers": cell["layers"]}
    if cell["model"] == "rnn":
        values["activation"] = cell["activation"]
    if cell["model"] == "gru" and cell["activation"] != "-":
        values["candidate"] = cell["activation"]
    if cell["model"] in ("mlp", "attention"):
        shape = cell.get("widths", "-")
        values["widths"] = (cell["hidden"],) * cell["layers"] if shape == "-" else parse_widths(shape)
        values["layers"] = 1
    values.update({k: cell[k] for k in ("dropout", "lr") if cell.get(k, "-") != "-"})
    return base.update(values)


def cell_name(cell: dict, steps: int) -> str:
    extra = "".join(
        f"-{tag}{cell[k]:g}" if isinstance(cell[k], float) else f"-{tag}{cell[k]}"
        for k, tag in EXTRA_AXES
        if cell.get(k, "-") != "-"
    )
    return f"{cell['model']}-{cell['activation']}-h{cell['hidden']}-l{cell['layers']}{extra}-s{steps}"
