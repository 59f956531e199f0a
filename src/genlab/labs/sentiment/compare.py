"""Outputs that compare models across runs or sweep cells: the best GRU against the best Elman RNN (test curves
on one figure), and the GRU's candidate activations (accuracy and the gradient along time per variant).

Registered like :mod:`genlab.labs.sentiment.figures` (imported after it by the lab's ``__init__``), so they come
after its outputs in the report.
"""

from __future__ import annotations

import numpy as np

from genlab import plots
from genlab.data.reviews import long_sequences
from genlab.labs import Drawn, figure, table
from genlab.labs.sentiment.config import SentimentConfig, describe_model
from genlab.labs.sentiment.core import Opened, Sweep, load_model, run_data
from genlab.labs.sentiment.figures import _init_curve, bptt_label, gradient_panel
from genlab.runs import Run


def _scored_runs(o) -> list[tuple[Run, dict]]:
    """``(run, summary)`` of every evaluated run: ``o.runs`` of an opened run, the cells of a sweep."""
    runs = [o.run.path / "stages" / r["run"] for r in o.rows] if isinstance(o, Sweep) else [r.path for r in o.runs]
    return [(Run(p), s) for p in runs for s in [Run(p).read_summary()] if "test_acc" in s]


def best_rnn_and_gru(o) -> dict[str, tuple[Run, dict]]:
    """The GRU and the Elman RNN with the best whole-test-set accuracy among ``o``'s runs (absent: none)."""
    best: dict[str, tuple[Run, dict]] = {}
    for run, s in _scored_runs(o):
        m = s.get("model")
        if m in ("rnn", "gru") and (m not in best or s["test_acc"] > best[m][1]["test_acc"]):
            best[m] = (run, s)
    return {m: best[m] for m in ("gru", "rnn") if m in best}


@figure("rnn_vs_gru", when=lambda o: len(best_rnn_and_gru(o)) == 2)
def fig_rnn_vs_gru(o: Opened | Sweep) -> Drawn:
    """The best GRU and the best Elman RNN on one figure: test-batch loss and accuracy along training."""
    best = best_rnn_and_gru(o)
    rows, names, data = [], {}, {}
    for m, (run, s) in best.items():
        label = f"{s['description']}: test acc {s['test_acc']:.3f}"
        names[m] = label
        pts = [(r["step"], r["test_loss"], r["test_acc"]) for r in run.read_metrics() if "test_acc" in r]
        rows += [{"step": st, f"{m}_loss": lo, f"{m}_acc": ac} for st, lo, ac in pts]
        data[m] = {"run": run.path.name, "step": [p[0] for p in pts], "test_loss": [p[1] for p in pts]}
        data[m]["test_acc"] = [p[2] for p in pts]
    fig, axes = plots.figure(1, 2, size=(11, 3.8))
    for ax, part, title in ((axes[0], "loss", "Test-batch cross-entropy"), (axes[1], "acc", "Test-batch accuracy")):
        keys = [f"{m}_{part}" for m in best]
        plots.loss_curves(rows, keys, title=title, ax=ax, names={f"{m}_{part}": names[m] for m in best})
    axes[1].set_ylabel("accuracy")
    fig.suptitle("The best GRU against the best Elman RNN", fontweight="bold")
    fig.tight_layout()
    where = "sweep cells" if isinstance(o, Sweep) else "runs compared"
    return Drawn(
        fig,
        f"Loss and accuracy of the test batch scored every few steps (faint; smoothed line) for the GRU and the "
        f"Elman RNN with the best accuracy on the whole test set among the {where}; the legend gives that "
        f"accuracy.",
        data=data,
        summary={"rnn_vs_gru": {m: {"run": run.path.name, "test_acc": s["test_acc"]} for m, (run, s) in best.items()}},
    )


# ------------------------------------------------------------------------------ the GRU's candidate activation


def best_per_candidate(o: Sweep) -> dict[str, tuple[Run, dict]]:
    """The best GRU cell of the sweep for each candidate activation, in the order they first appear."""
    best: dict[str, tuple[Run, dict]] = {}
    for run, s in _scored_runs(o):
        if s.get("model") == "gru":
            c = run.config(SentimentConfig).candidate
            if c not in best or s["test_acc"] > best[c][1]["test_acc"]:
                best[c] = (run, s)
    return best


def _has_candidates(o) -> bool:
    return isinstance(o, Sweep) and len(best_per_candidate(o)) > 1


@table("candidates", when=_has_candidates)
def table_candidates(o: Sweep) -> Drawn:
    """Train and test accuracy, F1 and ROC-AUC of the GRU with each candidate activation (its best cell)."""
    keys = ("train_acc", "test_acc", "train_f1", "test_f1", "train_auc", "test_auc")
    rows = [
        {"candidate": c, "model": s["description"], **{k: s[k] for k in keys}, "run": run.path.name}
        for c, (run, s) in best_per_candidate(o).items()
    ]
    return Drawn(
        rows=rows,
        caption="The GRU's candidate h~ = act(W [x, r*h] + b) with act = tanh (the lab's), relu, sigmoid or "
        f"none; {o.base.steps} steps each, scored on the whole train and test sets.",
        summary={"candidates": {r["candidate"]: r["test_acc"] for r in rows}},
    )


@figure("candidates", when=_has_candidates)
def fig_candidates(o: Sweep, length: int = 100, seed: int = 0) -> Drawn:
    """``||dL/dh_t||`` along ``t`` for each GRU candidate activation, at initialisation and after training."""
    best = best_per_candidate(o)
    first_run = next(iter(best.values()))[0]
    _, cfg, vocab = load_model(first_run)
    data = run_data(cfg, vocab)
    ids, y = long_sequences(data, length, seed=seed)
    init, trained = {}, {}
    for c, (run, s) in best.items():
        rc = run.config(SentimentConfig)
        label = bptt_label("gru", c)
        init[label] = _init_curve("gru", c, data, ids, y, rc.hidden, seed)
        trained[f"{label} (test acc {s['test_acc']:.3f})"] = load_model(run)[0].gradient_norms_along_time(ids, y)
    fig, axes = plots.figure(1, 2, size=(11.2, 3.9))
    t = np.arange(1, length + 1)
    for ax, (title, cs) in zip(axes, [("at initialisation", init), ("after training", trained)]):
        gradient_panel(ax, cs, f"GRU candidates: gradient reaching h_t, {title}", length)
    fig.tight_layout()
    return Drawn(
        fig,
        f"How far back the gradient reaches in the GRU with each candidate activation ({describe_model(cfg)} "
        f"and its variants; {ids.shape[0]} sequences of {length} words): at initialisation (same seed) and for "
        f"the sweep's best cell of each candidate after {o.base.steps} steps. The update gate z mixes old state "
        f"and candidate, so the path back through (1 - z) stays open whatever the candidate; an unbounded "
        f"candidate (relu, none) can make the state, and the gradient, grow.",
        data={"t": t.tolist(), "init": init, "trained": trained},
    )
