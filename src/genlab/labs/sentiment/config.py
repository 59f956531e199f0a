"""The sentiment lab's settings, presets, demo sizes and sweep grid."""

from __future__ import annotations

import itertools
from dataclasses import dataclass

from genlab.config import param
from genlab.nn.recurrent import ACTIVATIONS
from genlab.nn.sentiment_models import MODELS
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
    hidden: int = param(64, "recurrent state size / attention width", min=1)
    layers: int = param(1, "stacked recurrent layers", min=1)
    widths: tuple[int, ...] = param((64, 32), "token-wise MLP hidden widths (mlp, attention)", min=1)
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
    batch_size: int = param(32, "reviews per step", min=1)
    eval_every: int = param(50, "score one test batch every N steps", min=0)
    log_every: int = param(1, "log the training batch's loss and accuracy every N steps", min=1)
    threads: int = param(
        1,
        "CPU threads for torch while training and drawing (0 = torch's default); these "
        "small models run fastest on 1, and far slower on 2+ when the cores are busy",
        min=0,
    )


PRESETS = {
    "quick": SentimentConfig(steps=600),
}

# The demo's models and steps; tiny: 80 generated reviews, learned 8-d embeddings, 20 steps (seconds; all but
# the GRU reach 100% test accuracy).
QUICK_STEPS = {"rnn": 500, "gru": 800, "mlp": 1000, "attention": 500}
FULL_STEPS = {"rnn": 3200, "gru": 3200, "mlp": 3200, "attention": 3200}
TINY_STEPS = {"rnn": 20, "gru": 20, "mlp": 20, "attention": 20}
TINY = dict(n_train=60, embeddings="learned", embed_dim=8, hidden=8, widths=(8,), window=2, eval_every=5, lr=0.03)


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


# ------------------------------------------------------------------------------------------------ the sweep


def sweep_cells(models: list[str], activations: list[str], hiddens: list[int], layers: list[int]) -> list[dict]:
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
