"""The lab's experiments over several runs: the sweep (a grid of model settings), the demo (every model, figure
and table; quick, full and tiny) and the key numbers the report sets beside the student reports'."""

from __future__ import annotations

from functools import partial
from pathlib import Path

from genlab.data import reviews as rv
from genlab.labs.sentiment.config import (
    FULL_STEPS,
    LAB,
    QUICK_STEPS,
    TINY,
    TINY_STEPS,
    SentimentConfig,
    cell_config,
    cell_name,
    sweep_cells,
)
from genlab.labs.sentiment.core import Sweep, complete, open_run, prepare_data, write_outputs
from genlab.labs.sentiment.variants import with_epochs
from genlab.nn.sentiment_models import MODELS
from genlab.runs import Run, markdown_table, reuse_or_create
from genlab.sweep import run_sweep

CANDIDATES = ["tanh", "relu", "sigmoid", "none"]  # the GRU candidate activations the full demo compares

# ----------------------------------------------------------------------------------------------- the sweep


def sweep(
    cells: list[dict],
    base: SentimentConfig,
    *,
    root: str | Path = "runs",
    name: str = "sweep",
    jobs: int = 1,
    quiet: bool = False,
    backend: str = "local",
) -> Sweep:
    """Train every cell (in ``jobs`` processes, or as Ray tasks: ``backend``), skip finished ones, write the
    table and plot. ``base.epochs`` > 0 sets the cells' steps from the training set's size."""
    base = with_epochs(base, prepare_data(base))  # fails early (missing data, bad CSV) before starting processes
    grid = {"models": sorted({c["model"] for c in cells}), "cells": cells, **base.to_dict()}
    tasks = [(cell_name(c, base.steps), cell_config(c, base)) for c in cells]
    done = partial(complete, quiet=True, figures=False)
    out, reused = run_sweep(LAB, grid, tasks, done, root=root, name=name, jobs=jobs, quiet=quiet, backend=backend)
    s = open_run(out)
    best = max(s.rows, key=lambda r: r["test_acc"])
    out.update_summary({"cells": len(s.rows), "reused": sum(reused.values()), "best_cell": best})
    write_outputs(s)
    if not quiet:
        print(markdown_table(s.rows))
        print(f"best cell: {best['run']} test acc {best['test_acc']:.4f}; results in {out.tables_dir}")
    return s


# ------------------------------------------------------------------------------------------------ the demo


def demo(
    root: str | Path = "runs",
    *,
    quick: bool = True,
    device: str = "auto",
    quiet: bool = False,
    reuse: bool = True,
    tiny: bool = False,
) -> list[Run]:
    """Train rnn, gru, mlp and attention on rt, then write every figure and table of the lab.

    Quick: short runs (about a minute and a half of training on one free core) and a small sweep of the
    token-wise MLP's widths and dropout. Full: ten epochs per model, the same MLP sweep at ten epochs, and the
    GRU's candidate activations (tanh, sigmoid, relu, none) as a sweep. Tiny: generated reviews and learned
    8-d embeddings, a few steps each (seconds, no fetched data), with a small sweep of each kind.
    """
    root = Path(root)
    if tiny:
        base = SentimentConfig(csv=str(rv.write_tiny_reviews(root / LAB / "tiny-reviews.csv")), **TINY)
        steps, prefix, tag = TINY_STEPS, "tiny", "tiny"
    else:
        base, prefix, tag = SentimentConfig(), "rt", "quick" if quick else "full"
        steps = QUICK_STEPS if quick else FULL_STEPS
    runs = {}
    for model in MODELS:
        cfg = base.update({"model": model, "steps": steps[model]})
        runs[model] = reuse_or_create(LAB, cfg, root=root, name=f"{prefix}-{model}-{tag}", reuse=reuse)
        complete(runs[model], cfg, device=device, quiet=quiet)
    everything = open_run(runs["gru"], [runs[m] for m in ("rnn", "mlp", "attention")])
    write_outputs(everything, ("comparison", "bptt", "rnn_vs_gru"))
    write_outputs(open_run(runs["attention"], [runs["mlp"]]), ("explain_words", "attention_weights"))
    result = list(runs.values())
    # the MLP's shapes (equal and shrinking widths) with and without dropout
    shapes = ["8", "8x4"] if tiny else ["64", "64x32", "64x32x16"]  # as fast as the old 6 cells (64..128 x 1..2)
    mlps = sweep_cells(["mlp"], ["-"], [], [], widths=shapes, dropouts=[0.0, 0.3])
    mlp_steps = 10 if tiny else 400 if quick else FULL_STEPS["mlp"]
    sweeps = [(f"sweep-{tag}", mlps, mlp_steps)]
    if tiny or not quick:  # the GRU's candidate activations: four GRUs trained, too slow for the quick demo
        grus = sweep_cells(["gru"], ["-"], [base.hidden], [1], candidates=CANDIDATES[:2] if tiny else CANDIDATES)
        sweeps.append((f"sweep-candidates-{tag}", grus, 10 if tiny else FULL_STEPS["gru"]))
    for name, cells, n in sweeps:
        result.append(sweep(cells, base.update({"steps": n}), root=root, name=name, quiet=quiet).run)
    return result


REFERENCE_TEST_ACC = {
    "rnn": "0.50-0.73 (IMDB)",
    "gru": "0.79-0.86 (IMDB)",
    "mlp": "0.69-0.83 (IMDB)",
    "attention": "0.77-0.83 (IMDB)",
}


def key_metrics(runs: list[Run]) -> list[dict]:
    """Test accuracy of each model next to the student reports (which used IMDB 50k, not rt snippets)."""
    rows = []
    for run in runs:
        s = run.read_summary()
        if "test_acc" in s and "model" in s:
            cfg = run.read_config_file().get("config", {})
            data = "RT snippets, not IMDB 50k" if s.get("dataset") == "rt" else f"{s.get('dataset')} (IMDB format)"
            words = "GloVe 50-d, not 100-d" if cfg.get("embeddings") == "glove" else "learned embeddings, not GloVe"
            rows.append(
                {
                    "metric": f"test accuracy, {s.get('description', s['model'])} ({s.get('dataset')})",
                    "value": s["test_acc"],
                    "reference": REFERENCE_TEST_ACC.get(s["model"], ""),
                    "same": f"no: {data}; {words}; the same kind of model, {s.get('steps')} steps at batch 32 "
                    "(reports: 10 epochs of 30k reviews)",
                }
            )
    base = next((r.read_summary()["baseline_test_acc"] for r in runs if "baseline_test_acc" in r.read_summary()), None)
    if base is not None:
        rows.append(
            {
                "metric": "test accuracy, TF-IDF + logistic regression",
                "value": base,
                "reference": "",
                "same": "genlab's baseline on the same split (the reports had none)",
            }
        )
    return rows
