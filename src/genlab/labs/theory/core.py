"""The theory lab's runtime: the opened run, the evidence registry, the toy seq2seq training, the demo.

An evidence function (registered with ``@evidence(name)``, here and in :mod:`.evidence`) runs one small
experiment on the opened run (:class:`Theory`) and returns a dict of numbers with a ``passed`` flag and a
one-line ``check``; :meth:`Theory.get` computes each once per opened run, so the answers table and the
figures share the numbers. The toy seq2seq transformers train through :func:`genlab.train.fit`, each in a
child run ``stages/seq2seq-<task>-<variant>`` that later calls reuse once it is finished.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from genlab.labs.theory.config import PRESETS, TheoryConfig
from genlab.nn import transformer as tr
from genlab.runs import Run, choose_device, cpu_threads, reuse_or_create, seed_everything
from genlab.train import fit, make_optimizer

LAB = "theory"
TASKS = ("copy", "reverse")
VARIANTS = ("full", "no_positions", "no_mask")
DEEP = ("deep", "deep_no_residual")  # reverse only: cfg.deep_layers layers, with and without the skip connections
Evidence = dict[str, Any]
EVIDENCE: dict[str, Callable[[Theory], Evidence]] = {}


def evidence(name: str) -> Callable[[Callable[[Theory], Evidence]], Callable[[Theory], Evidence]]:
    """Register an evidence function under ``name`` (the figure or table that shows it)."""

    def deco(fn: Callable[[Theory], Evidence]) -> Callable[[Theory], Evidence]:
        EVIDENCE[name] = fn
        return fn

    return deco


@dataclass
class Theory:
    """An opened theory run: its folder, config and device, and the evidence computed so far."""

    run: Run
    cfg: TheoryConfig
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    quiet: bool = True
    cache: dict[str, Any] = field(default_factory=dict)

    def get(self, name: str) -> dict[str, Any]:
        """The evidence ``name`` (a key of :data:`EVIDENCE`), computed on first use."""
        if name not in self.cache:
            t0 = time.perf_counter()
            with cpu_threads(self.cfg.threads):
                self.cache[name] = EVIDENCE[name](self)
            self.cache[name]["seconds"] = round(time.perf_counter() - t0, 2)  # training included, when it ran
        return self.cache[name]


# ------------------------------------------------------------------------- transformers: toy seq2seq ablations


def _stage(run: Run, name: str, config: dict[str, Any]) -> tuple[Run, bool]:
    """The child run ``stages/<name>`` and whether it already finished with this config."""
    sub = Run(run.path / "stages" / name)
    if sub.finished and sub.same_config(config):
        return sub, True
    return run.child(name, config), False


def fit_stage(
    th: Theory,
    name: str,
    model: torch.nn.Module,
    optimizers: Any,
    step_fn: Callable,
    batches: Callable,
    *,
    steps: int,
    config: dict[str, Any],
    manual: bool = False,
) -> torch.nn.Module:
    """Train ``model`` in the child run ``stages/<name>`` through :func:`genlab.train.fit`, or load its weights
    when that stage already finished with the same ``config`` (plus the seed and ``steps``)."""
    from dataclasses import replace

    from genlab.train import load_weights

    sub, done = _stage(th.run, name, {"seed": th.cfg.seed, "steps": steps, **config})
    if done:
        load_weights(sub, model, device=th.device)
    else:
        fit(
            sub,
            model,
            optimizers,
            step_fn,
            batches,
            cfg=replace(th.cfg, steps=steps),
            device=th.device,
            manual=manual,
            quiet=th.quiet,
            desc=f"theory {name}",
        )
    return model.eval()


def train_seq2seq(th: Theory, task: str, variant: str) -> dict[str, float]:
    """Train (or reuse) the toy transformer of ``task`` with the ablation ``variant``; return its accuracies on a
    fixed evaluation set (teacher forced and greedy) and its last training loss."""
    cfg = th.cfg
    seed_everything(cfg.seed)
    model = tr.Seq2SeqTransformer(
        cfg.vocab,
        cfg.d_model,
        cfg.n_head,
        cfg.d_ff,
        cfg.deep_layers if variant in DEEP else cfg.n_layers,
        positional=variant != "no_positions",
        causal=variant != "no_mask",
        residual=variant != "deep_no_residual",
    )

    def batches(step: int):
        g = torch.Generator().manual_seed(cfg.seed * 1_000_003 + step)
        return [t.to(th.device) for t in tr.toy_batch(task, cfg.batch_size, cfg.length, cfg.vocab, g)]

    def step_fn(m, batch):
        src, tgt_in, tgt = batch
        return {"loss": F.cross_entropy(m(src, tgt_in).reshape(-1, cfg.vocab), tgt.reshape(-1))}

    name = f"seq2seq-{task}-{variant}"
    keys = ("lr", "batch_size", "length", "vocab", "d_model", "n_head", "d_ff", "n_layers")
    config = {k: getattr(cfg, k) for k in keys} | {"task": task, "variant": variant}
    if variant in DEEP:
        config["n_layers"] = cfg.deep_layers
    opt = make_optimizer(model.parameters(), lr=cfg.lr)
    model = fit_stage(th, name, model, opt, step_fn, batches, steps=cfg.steps, config=config)
    g = torch.Generator().manual_seed(cfg.seed + 12345)
    ev = [t.to(th.device) for t in tr.toy_batch(task, cfg.eval_size, cfg.length, cfg.vocab, g)]
    losses = [r["loss"] for r in Run(th.run.path / "stages" / name).read_metrics() if "loss" in r]
    return {**tr.toy_accuracy(model, *ev), "loss": losses[-1] if losses else float("nan")}


@evidence("seq2seq_ablations")
def evidence_seq2seq(th: Theory) -> dict[str, Any]:
    runs = [(task, variant) for task in TASKS for variant in VARIANTS] + [("reverse", v) for v in DEEP]
    rows = [{"task": task, "variant": variant, **train_seq2seq(th, task, variant)} for task, variant in runs]
    acc = {(r["task"], r["variant"]): r for r in rows}
    full = min(acc[t, "full"]["greedy_seq_acc"] for t in TASKS)
    nopos = acc["reverse", "no_positions"]["greedy_seq_acc"]
    cheat = acc["reverse", "no_mask"]
    deep, flat = acc["reverse", "deep"]["greedy_seq_acc"], acc["reverse", "deep_no_residual"]["greedy_seq_acc"]
    passed = full > 0.9 and nopos < 0.5 and cheat["forced_token_acc"] > 0.9 and cheat["greedy_seq_acc"] < 0.5
    passed = passed and deep > 0.9 and flat < 0.5
    return {
        "rows": rows,
        "passed": passed,
        "check": f"full model >= 0.9 greedy sequence accuracy ({full:.2f}); without positions reversal "
        f"fails ({nopos:.2f} < 0.5); without the mask teacher-forced token accuracy "
        f"{cheat['forced_token_acc']:.2f} > 0.9 but generation fails ({cheat['greedy_seq_acc']:.2f}); "
        f"{th.cfg.deep_layers} layers learn it ({deep:.2f} > 0.9), not without the residual connections "
        f"({flat:.2f} < 0.5)",
    }


# ------------------------------------------------------------------------------------------ runs and the demo


def open_run(path: str | Path | Run, device: torch.device | str = "cpu", quiet: bool = True) -> Theory:
    run = path if isinstance(path, Run) else Run.open(path, LAB)
    device = choose_device(device) if isinstance(device, str) else device
    return Theory(run, run.config(TheoryConfig), device, quiet)


def run_all(run: Run, device: torch.device | str = "cpu", quiet: bool = True) -> Theory:
    """Every experiment and every registered output of a theory run, then mark the run finished."""
    from genlab.labs import draw_all

    th = open_run(run, device, quiet)
    with cpu_threads(th.cfg.threads):
        draw_all(LAB, th, run)
    checks = {k: bool(v["passed"]) for k, v in th.cache.items()}
    run.save_checkpoint({"step": 1, "checks": checks, "config": th.cfg.to_dict()})
    run.mark_progress(1, 1)
    return th


def demo(
    root: str | Path,
    *,
    quick: bool = True,
    device: str = "cpu",
    quiet: bool = True,
    reuse: bool = True,
    tiny: bool = False,
) -> list[Run]:
    """The theory run of the report: every question's evidence (tiny sizes with ``tiny``), reused when done."""
    name = "tiny" if tiny else "quick"
    run = reuse_or_create(LAB, PRESETS[name], root=root, name=name, reuse=reuse)
    if not run.finished:
        run_all(run, device, quiet)
    return [run]


def key_metrics(runs: list[Run]) -> list[dict[str, Any]]:
    rows = []
    for run in runs:
        s = run.read_summary()
        if "checks_passed" in s:
            rows.append(
                {
                    "metric": "theory checks passed",
                    "value": f"{s['checks_passed']} / {s['checks_total']}",
                    "reference": "all",
                    "same": "not needed: each check holds or fails for any run",
                    "reference_from": "any run",
                }
            )
    return rows
