"""Train, evaluate and open sentiment runs; sweeps and the demo. Library pieces wired together, no plotting."""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import torch
from torch import nn

from genlab.data import reviews as rv
from genlab.errors import ConfigError, RunError
from genlab.io import atomic_write_json
from genlab.labs import draw, registered
from genlab.labs.sentiment.config import EXAMPLES, LAB, SentimentConfig, cell_name, describe_model
from genlab.labs.sentiment.variants import pick_test_reviews
from genlab.nn.sentiment_models import (
    MODELS,
    baseline_scores,
    build_classifier,
    explain_review,
    loss_and_accuracy,
    minilm_reference,
    param_groups,
    predict_proba,
    predict_texts,
    prepared_scores,
    scores,
)
from genlab.runs import Run, choose_device, cpu_threads, seed_everything
from genlab.train import fit, load_weights, make_optimizer

# --------------------------------------------------------------------------------------------- model, data


def prepare_data(cfg: SentimentConfig, vocab_words: list[str] | None = None) -> rv.Prepared:
    """The reviews of ``cfg`` encoded for its vocabulary (``vocab_words``: a trained run's learned one)."""
    if cfg.early_stop and not cfg.val_fraction:
        raise ConfigError("early_stop picks the best validation accuracy: give it a split with --set val_fraction=0.1")
    return rv.prepare(cfg.csv, cfg.n_train, cfg.embeddings, cfg.min_count, cfg.max_len, vocab_words, cfg.val_fraction)


def load_model(run: Run, device: torch.device | str = "cpu") -> tuple[nn.Module, SentimentConfig, rv.Vocab]:
    """A trained run's model (eval mode), config and vocabulary."""
    cfg = run.config(SentimentConfig)
    if cfg.embeddings == "learned":
        vf = run.path / "vocab.json"
        if not vf.exists():
            raise RunError(f"run {str(run.path)!r} has no vocab.json; train it again")
        vocab = rv.Vocab("learned", rv._read_words_file(vf))
    else:
        vocab = rv.Vocab("glove")
    model = build_classifier(cfg, vocab)
    best = cfg.early_stop and run.best_checkpoint.exists()
    load_weights(run, model, which="best" if best else "last", device=device)
    model.eval()
    return model, cfg, vocab


def run_data(cfg: SentimentConfig, vocab: rv.Vocab) -> rv.Prepared:
    return prepare_data(cfg, vocab.words() if cfg.embeddings == "learned" else None)


# ------------------------------------------------------------------------------------- training, evaluation


def evaluate(
    run: Run,
    model: nn.Module | None = None,
    data: rv.Prepared | None = None,
    device: torch.device | str = "cpu",
    **extra: Any,
) -> dict[str, Any]:
    """Accuracy, F1 and ROC-AUC on the whole train and test sets next to the TF-IDF baseline, into
    ``summary.json`` (``extra``: timing numbers of the training just done). Idempotent."""
    cfg = run.config(SentimentConfig)
    if model is None:
        model, _, vocab = load_model(run, device)
        data = run_data(cfg, vocab)
    with cpu_threads(cfg.threads):
        metrics = prepared_scores(model, data, device)
        if data.val_ids is not None:
            p = predict_proba(model, data.val_ids, data.val_len, device)
            metrics["val_acc"] = scores(data.val_y.numpy(), p)["acc"]
    base = {k: round(v, 4) for k, v in baseline_scores(cfg.csv, cfg.n_train).items()}
    ref = minilm_reference(cfg.csv) if cfg.minilm_row else None
    if ref is not None:
        extra = {**extra, "minilm": {k: round(v, 4) if isinstance(v, float) else v for k, v in ref.items()}}
    return run.update_summary(
        {
            "model": cfg.model,
            "description": describe_model(cfg),
            "dataset": data.split.name,
            **{k: round(v, 4) for k, v in metrics.items()},
            "baseline_test_acc": base["test_acc"],
            "params": sum(p.numel() for p in model.parameters() if p.requires_grad),
            "steps": cfg.steps,
            **extra,
            "baseline": base,
        }
    )


def train(
    cfg: SentimentConfig,
    run: Run,
    *,
    device: str = "auto",
    quiet: bool = False,
    resume: bool = False,
    figures: bool = True,
) -> Run:
    """Train one model into ``run`` as the lab does (batches of 32, Adam, a test batch scored every 50 steps),
    evaluate it, and write its metrics table and (``figures``) curves."""
    dev = choose_device(device)
    data = prepare_data(cfg)
    if cfg.embeddings == "learned":
        atomic_write_json(run.path / "vocab.json", data.vocab.words())
    seed_everything(cfg.seed)
    tuned = torch.unique(data.train_ids[data.train_ids != rv.PAD]) if cfg.embed_lr_scale > 0 else None
    model = build_classifier(cfg, data.vocab, tuned).to(dev)
    if cfg.embed_lr_scale > 0:
        opt = torch.optim.Adam(param_groups(model, cfg.lr, cfg.embed_lr_scale))
    else:
        opt = make_optimizer([p for p in model.parameters() if p.requires_grad], "adam", cfg.lr)
    n_eval = [0]

    def eval_fn(model: nn.Module) -> dict[str, Any]:
        """One test batch (the next one of a fixed shuffled order), as the lab scores every 50 steps, for the
        curves only; and the whole validation split (when there is one), which alone selects the weights."""
        n_eval[0] += 1
        batch = [t.to(dev) for t in rv.test_batch(data, n_eval[0] - 1, cfg.batch_size)]
        out = {f"test_{k}": v for k, v in loss_and_accuracy(model, batch).items()}
        if data.val_ids is not None:
            acc = scores(data.val_y.numpy(), predict_proba(model, data.val_ids, data.val_len, dev))["acc"]
            out.update(val_acc=acc, val_err=1.0 - acc)
        return out

    result = fit(
        run,
        model,
        opt,
        loss_and_accuracy,
        lambda step: [t.to(dev) for t in rv.train_batch(data, step, cfg.batch_size, cfg.seed)],
        cfg=cfg,
        device=dev,
        eval_fn=eval_fn,
        best_key="val_err" if cfg.early_stop else None,
        resume=resume,
        quiet=quiet,
        desc=f"sentiment {cfg.model}",
    )
    trained = cfg.steps - (result.resumed_from or 0)
    kept = {}
    if cfg.early_stop and run.best_checkpoint.exists():  # early stopping: the best validation accuracy's weights
        kept = {"best_step": int(load_weights(run, model, which="best", device=dev)["step"])}
    s = evaluate(
        run,
        model,
        data,
        dev,
        **kept,
        train_seconds=round(result.seconds, 1),
        train_reviews_per_s=round(trained * cfg.batch_size / max(result.seconds, 1e-9), 1),
    )
    write_outputs(open_run(run), only=("metrics", "curves") if figures else ("metrics",))
    if not quiet:
        print(
            f"{s['description']}: test acc {s['test_acc']:.4f}, F1 {s['test_f1']:.4f}, AUC {s['test_auc']:.4f} "
            f"(TF-IDF baseline {s['baseline_test_acc']:.4f}); run folder {run.path}"
        )
    return run


def complete(
    run: Run, cfg: SentimentConfig, *, device: str = "auto", quiet: bool = False, figures: bool = True
) -> bool:
    """Bring ``run`` (made for ``cfg``) to done: trained to its last step (:attr:`Run.finished`; a cut-off run
    continues from its checkpoint) and evaluated. Returns whether any work was needed."""
    if not run.finished:
        train(cfg, run, device=device, quiet=quiet, resume=True, figures=figures)
    elif "test_acc" not in run.read_summary():
        evaluate(run, device=choose_device(device))
        write_outputs(open_run(run), only=("metrics", "curves") if figures else ("metrics",))
    else:
        return False
    return True


# ----------------------------------------------------------------------------------------- opened runs


@dataclass
class Opened:
    """A trained run (``run``: where outputs go) and the runs that outputs spanning several read beside it
    (``runs``: all of them, in model order: the comparison table, the BPTT figure's trained curves, explain)."""

    run: Run
    cfg: SentimentConfig
    runs: list[Run]
    texts: tuple[str, ...] | None = None  # explain's reviews; None: two test reviews (see reviews), the examples
    bptt: bool = False  # draw the BPTT figure for a run that is not recurrent too

    @property
    def threads(self) -> int:
        return self.cfg.threads

    @cached_property
    def loaded(self) -> tuple[nn.Module, SentimentConfig, rv.Vocab]:
        return load_model(self.run)

    @cached_property
    def data(self) -> rv.Prepared:
        return run_data(self.cfg, self.loaded[2])

    @property
    def explainers(self) -> list[Run]:
        """The mlp / attention runs among ``runs``, this run last (explain draws into the last one)."""
        return [
            r for r in self.runs if r.path != self.run.path and r.config(SentimentConfig).model in ("mlp", "attention")
        ] + [self.run]

    @cached_property
    def reviews(self) -> list[tuple[str, str | None]]:
        """The reviews explain shows and their true labels (None: unknown): ``texts``, or by default one test
        review this run's model predicts right, one it predicts wrong, and the lab's examples (all negative)."""
        if self.texts is not None:
            return [(t, None) for t in self.texts]
        return pick_test_reviews(self.loaded[0], self.data) + [(t, "negative") for t in EXAMPLES]

    @cached_property
    def explained(self) -> list[dict[str, dict[str, Any]]]:
        """For each of :attr:`reviews`: ``{model name: per-word sub-scores, scores, prediction, attention,
        true label}``."""
        loaded = []
        for r in self.explainers:
            model, cfg, vocab = load_model(r)
            if cfg.model not in ("mlp", "attention"):
                raise ConfigError(f"run {str(r.path)!r} is a {cfg.model!r} model; explain needs 'mlp' or 'attention'")
            name = cfg.model if cfg.model not in [c.model for _, _, c, _ in loaded] else r.path.name
            loaded.append((name, model, cfg, vocab))
        return [
            {name: {**explain_review(m, v, t, c.max_len), "label": label} for name, m, c, v in loaded}
            for t, label in self.reviews
        ]

    def command(self, verb: str) -> str:
        if verb == "explain":
            first, *rest = self.explainers
            texts = [shlex.quote(t) for t in self.texts or ()]
            return first.command("explain", *[f"--run {shlex.quote(str(r.path))}" for r in rest], *texts)
        others = [f"--with {shlex.quote(str(r.path))}" for r in self.runs if r.path != self.run.path]
        return self.run.command("figures", *others, bptt=self.bptt)


@dataclass
class Sweep:
    """A sweep run: its base config, its cells and their child runs (``<sweep>/stages/<cell>``)."""

    run: Run
    base: SentimentConfig
    cells: list[dict]

    @property
    def threads(self) -> int:
        return self.base.threads

    @cached_property
    def rows(self) -> list[dict[str, Any]]:
        """One row per trained cell, in grid order: its settings and test metrics."""
        rows = []
        for c in self.cells:
            name = cell_name(c, self.base.steps)
            s = Run(self.run.path / "stages" / name).read_summary()
            if "test_acc" in s:
                keys = ("params", "train_acc", "train_f1", "train_auc", "test_acc", "test_f1", "test_auc")
                scores = {k: s[k] for k in keys}
                rows.append({**c, **scores, "seconds": s.get("train_seconds", ""), "run": name})
        return rows

    def command(self, verb: str) -> str:
        return self.run.command("figures")


def open_run(
    path: str | Path | Run, others: list = (), *, texts: tuple[str, ...] | None = None, bptt: bool = False
) -> Opened | Sweep:
    """Open a sentiment run (with ``others`` beside it) or a sweep for its figures and tables."""
    run = Run.open(getattr(path, "path", path), LAB)
    config = run.read_config_file()["config"]
    if "cells" in config:
        base = SentimentConfig.from_dict({k: v for k, v in config.items() if k not in ("models", "cells")})
        return Sweep(run, base, config["cells"])
    runs = [run] + [Run.open(getattr(p, "path", p), LAB) for p in others]
    runs.sort(key=lambda r: MODELS.index(r.config(SentimentConfig).model))
    return Opened(run, run.config(SentimentConfig), runs, None if texts is None else tuple(texts), bptt)


def predict(run: str | Path | Run | Opened, texts: list[str], device: str = "cpu") -> list[tuple[str, float]]:
    """``(label, P(positive))`` of each review under a trained run's model (rnn, gru, mlp or attention), scored
    as the run's evaluation scores reviews (:func:`~genlab.nn.sentiment_models.predict_texts`)."""
    opened = run if isinstance(run, Opened) else open_run(run)
    if isinstance(opened, Sweep):
        raise ConfigError(f"{str(opened.run.path)!r} is a sweep; predict with one of its cells (under stages/)")
    model, cfg, vocab = opened.loaded if opened is run else load_model(opened.run, device)
    return predict_texts(model, vocab, texts, cfg.max_len)


def write_outputs(opened: Opened | Sweep, only: tuple[str, ...] | None = None) -> list[Path]:
    """Draw every registered output that applies to ``opened`` (or only those named) into its run."""
    with cpu_threads(opened.threads):
        return [
            draw(spec, opened, opened.run, command=opened.command(spec.verb))
            for spec in registered(LAB)
            if (only is None or spec.name in only) and spec.applies(opened)
        ]
