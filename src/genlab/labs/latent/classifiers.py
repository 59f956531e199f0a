"""The few-label classifiers beyond the few-label table: which head to put on the frozen codes, and how test
accuracy moves epoch by epoch.

``genlab latent search --run DIR`` searches classifier architectures on the frozen codes of the first N
labelled images (the report's setup): every combination of hidden-layer width, depth and activation in the
config's grid (``search_widths`` x ``search_depths`` x ``search_activations``; depth 0 is one linear layer) is
scored by k-fold cross-validation *within* the N labelled images. The configuration with the best
cross-validated accuracy (ties: the lower validation cross-entropy, then fewer weights) is the choice, and only
then is its test accuracy read, from the copy trained on all N. The test set takes no part in the choice; the
table shows every configuration's test accuracy only so that a reader sees what the choice left on the table.
A configuration's folds and its final fit train at once, as one :class:`~genlab.nn.few_label.Stacked` model
in the stage ``search/<name>``, with the few-label MLP's optimiser and steps (AdamW 1e-3, ``clf_steps``
full-batch steps) and dropout 0.2 after each hidden layer.

The ``classify`` verb logs the test accuracy of draw 0 of the first-N classifiers (frozen codes + MLP, and the
same encoder + MLP from scratch) every few epochs; :func:`accuracy_per_epoch` draws both on one figure. The
registered functions (``accuracy_per_epoch``, ``architecture_search``) are in ``figures.py`` with the others.
"""

from __future__ import annotations

from functools import partial
from typing import Any

from genlab import plots
from genlab.data.splits import label_indices
from genlab.errors import ConfigError, choose
from genlab.io import atomic_write_json
from genlab.labs import Drawn, draw_all
from genlab.labs.latent.config import LatentConfig, quick_note
from genlab.labs.latent.core import LAB, Opened, load_data, loop_config, open_run, read_few_label, results_path
from genlab.nn.autoencoder import HEAD_ACTIVATIONS, CodeClassifier, ConvAutoencoder, encode_all
from genlab.nn.few_label import Stacked, fold_masks, masked_step, stacked_scores, standardise
from genlab.runs import Run, choose_device, cpu_threads, seed_everything
from genlab.train import fit, make_optimizer

EXAMPLES = {"search_widths": "32,128", "search_depths": "1,2", "search_activations": "relu,tanh"}
CURVES = {"codes + MLP (frozen encoder)": "first-0-codes", "from scratch: encoder + MLP": "first-0-scratch"}


def search_grid(cfg: LatentConfig) -> list[dict[str, Any]]:
    """Every configuration of the search: ``{"name", "hidden", "activation"}`` (one linear one for depth 0)."""
    for key, example in EXAMPLES.items():
        if not getattr(cfg, key):
            raise ConfigError(f"{key} is empty; give at least one value, e.g. --set {key}={example}")
    for act in cfg.search_activations:
        choose("activation in search_activations", act, HEAD_ACTIVATIONS)
    out = [{"name": "linear", "hidden": (), "activation": "none"}] if 0 in cfg.search_depths else []
    for depth in sorted(set(cfg.search_depths) - {0}):
        for width in sorted(set(cfg.search_widths)):
            for act in dict.fromkeys(cfg.search_activations):
                out.append(
                    {"name": f"{'-'.join([str(width)] * depth)}-{act}", "hidden": (width,) * depth, "activation": act}
                )
    return out


def architecture_search(
    run: Run, ae: ConvAutoencoder, cfg: LatentConfig, *, device: Any, quiet: bool = False
) -> dict[str, Any]:
    """Cross-validate every configuration of :func:`search_grid` on the first ``cfg.labels`` labelled codes, pick
    the best by validation alone, and save the rows (with every test accuracy) in ``stages/search/results.json``."""
    from tqdm.auto import tqdm

    data = load_data(cfg)
    grid = search_grid(cfg)
    idx = label_indices(data.train_y, cfg.labels, "first", 0)
    train_mask, val_mask = (m.to(device) for m in fold_masks(data.train_y[idx], cfg.search_folds, cfg.seed))
    ztr, zte = standardise(encode_all(ae.encoder, data.train_x).cpu(), encode_all(ae.encoder, data.test_x).cpu())
    x, y = ztr[idx].to(device), data.train_y[idx].to(device)
    test_x, test_y = zte.to(device), data.test_y.to(device)
    loop = loop_config(cfg, cfg.clf_steps, 1e-3, len(idx), seed_offset=13)
    rows = []
    for arch in tqdm(grid, desc="search", disable=quiet, leave=False):
        make = partial(CodeClassifier, cfg.code_dim, data.num_classes, arch["hidden"], activation=arch["activation"])
        seed_everything(loop.seed)
        model = Stacked(make, cfg.search_folds + 1)
        opt = make_optimizer(model.parameters(), "adamw", loop.lr, weight_decay=1e-4)
        sub = run.child(f"search/{arch['name']}", cfg, loop=loop)
        fit(sub, model, opt, masked_step, lambda step: (x, y, train_mask), cfg=loop, device=device, quiet=True)
        val = stacked_scores(model, x, y, val_mask)
        n = val_mask.sum(1)[:-1]  # validation images per fold (the last copy trained on all of them)
        acc, ce = val["acc"][:-1], val["ce"][:-1]
        rows.append(
            {
                "hidden layers": "-".join(map(str, arch["hidden"])) or "none (linear)",
                "activation": arch["activation"],
                "weights": sum(p[0].numel() for p in model.stacked),
                "cv_acc": round(float((acc * n).sum() / n.sum()), 4),
                "cv_acc_std": round(float(acc.std()), 4),
                "cv_ce": round(float((ce * n).sum() / n.sum()), 4),
                "test_acc": round(float(stacked_scores(model, test_x, test_y)["acc"][-1]), 4),
            }
        )
    best = max(range(len(rows)), key=lambda i: (rows[i]["cv_acc"], -rows[i]["cv_ce"], -rows[i]["weights"]))
    for i, row in enumerate(rows):
        row["chosen"] = i == best
    out = {
        "rows": rows,
        "best": rows[best],
        "labels": cfg.labels,
        "folds": cfg.search_folds,
        "steps": cfg.clf_steps,
        "test_images": len(data.test_y),
    }
    atomic_write_json(results_path(run, "search"), out)
    return out


def demo_search(runs: list[Run], *, device: str = "auto", quiet: bool = False, reuse: bool = True) -> None:
    """The search in each of the demo's ``runs`` whose config asks for it (``demo_search``: full and tiny, not
    quick), unless ``reuse`` and the run already has its results; then its table."""
    for run in runs:
        cfg = run.config(LatentConfig)
        if not cfg.demo_search or (reuse and read_few_label(run, "search") is not None):
            continue
        dev = choose_device(device)
        with cpu_threads(cfg.threads if dev.type == "cpu" else 0):
            o = open_run(run, dev, cfg)
            o.search = architecture_search(run, o.ae, cfg, device=dev, quiet=quiet)
            draw_all(LAB, o, run, only=["architecture_search"])


def describe(row: dict[str, Any]) -> str:
    """``"2 x 128 tanh"`` or ``"linear"``: a searched configuration in words."""
    if row["activation"] == "none":
        return "linear"
    widths = row["hidden layers"].split("-")
    return f"{len(widths)} x {widths[0]} {row['activation']}"


def accuracy_per_epoch(o: Opened) -> Drawn:
    """Test accuracy along training of the first-N draw's two classifiers: frozen codes + MLP and from scratch
    (registered as ``figures.fig_accuracy_per_epoch``)."""
    curves = logged_curves(o)
    fig, ax = plots.figure(size=(7.5, 4.2))
    data, summary = {}, {}
    for (label, points), colour in zip(curves.items(), ("#0072B2", "#D55E00")):
        epochs, acc = [p[0] for p in points], [p[1] for p in points]
        ax.plot(epochs, acc, marker="o", markersize=3, color=colour, label=label)
        key = "codes" if label.startswith("codes") else "scratch"
        data[key] = {"epoch": epochs, "test_acc": acc}
        summary[f"acc_per_epoch_{key}_last"] = round(acc[-1], 4)
        summary[f"acc_per_epoch_{key}_peak"] = round(max(acc), 4)
    ax.set_xlabel("epoch (one full-batch step over the labelled images)")
    ax.set_ylabel("test accuracy")
    ax.set_ylim(0, 1.02)
    ax.axhline(1 / o.data.num_classes, color="grey", linestyle=":", linewidth=1)
    ax.legend(loc="best")
    n, scored = (o.few_label or {}).get("labels", o.cfg.labels), min(o.cfg.curve_test or 10**9, len(o.data.test_y))
    ax.set_title(f"First {n} labels: test accuracy per epoch")
    return Drawn(
        fig,
        caption=(
            f"Test accuracy ({scored} test images) of the two classifiers of the few-label table's draw 0 (the first "
            f"{n} labelled training images), logged during training: an MLP on the frozen, standardised autoencoder "
            "codes, and the same encoder + MLP trained from scratch on the labelled images only. Both train full "
            f"batch (AdamW 1e-3), so an epoch is one step. Dotted: chance.{quick_note(o.cfg)}"
        ),
        data=data,
        summary=summary,
    )


def logged_curves(o: Opened) -> dict[str, list[tuple[int, float]]]:
    """``{classifier: [(epoch, test accuracy), ...]}`` from the classify stages' metrics (empty if not logged)."""
    out = {}
    for label, stage in CURVES.items():
        sub = Run(o.run.path / "stages" / "classify" / stage)
        points = (
            [(r["step"], r["test_acc"]) for r in sub.read_metrics() if "test_acc" in r] if sub.path.is_dir() else []
        )
        if points:
            out[label] = points
    return out if len(out) == len(CURVES) else {}


def search_table(o: Opened) -> Drawn:
    """Every searched configuration, best cross-validated accuracy first, the chosen one marked (registered as
    ``figures.table_architecture_search``)."""
    res = o.search
    rows = sorted(res["rows"], key=lambda r: (-r["cv_acc"], r["cv_ce"], r["weights"]))
    table_rows = [{"rank": i + 1, **r, "chosen": "<- chosen" if r["chosen"] else ""} for i, r in enumerate(rows)]
    best = res["best"]
    top_test = max(r["test_acc"] for r in rows)
    caption = (
        f"Classifier heads on the frozen codes of the first {res['labels']} labelled images: every combination of "
        f"the grid ({len(rows)} configurations), scored by {res['folds']}-fold cross-validation within those "
        f"{res['labels']} images (cv_acc: pooled validation accuracy, cv_acc_std: its spread over folds, cv_ce: "
        f"validation cross-entropy). The choice is made on validation alone: {describe(best)} (cv accuracy "
        f"{best['cv_acc']:.3f}); its test accuracy, read only afterwards from the copy trained on all "
        f"{res['labels']} images, is {best['test_acc']:.3f} ({res['test_images']} test images). test_acc of the "
        f"other rows is shown for reference only (the best in the grid is {top_test:.3f}): choosing by it would be "
        f"choosing on the test set. Each head: dropout 0.2 after each hidden layer, AdamW 1e-3 with weight decay "
        f"1e-4, {res['steps']} full-batch steps; weights: trainable numbers per head.{quick_note(o.cfg)}"
    )
    summary = {
        "search_best": describe(best),
        "search_best_cv_acc": best["cv_acc"],
        "search_best_test_acc": best["test_acc"],
        "search_top_test_acc_in_grid": top_test,
        "search_configurations": len(rows),
    }
    return Drawn(rows=table_rows, caption=caption, summary=summary)
