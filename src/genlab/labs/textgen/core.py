"""Train a GPT on a corpus, open a trained run, and the demo: library pieces wired together, no plotting."""

from __future__ import annotations

import math
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from genlab.data.text import TokenData, Tokenizer, build_tokenizer, load_corpus, load_tokenizer
from genlab.errors import ConfigError, RunError
from genlab.labs import draw_all
from genlab.labs.textgen.config import (
    ATTENTION_PROMPT,
    INVERSION_TARGET,
    PRESETS,
    QUICK,
    REPORT_CPU_BUDGET_S,
    REPORT_CPU_CKPT,
    SAMPLE_PROMPTS,
    TINY,
    TextgenConfig,
)
from genlab.nn.gpt import GPT, MODEL_PRESETS, GPTConfig
from genlab.nn.gpt_tools import attention_at_word, generate, invert, score
from genlab.runs import Run, choose_device, cpu_threads, reuse_or_create, seed_everything
from genlab.train import fit, load_weights, make_optimizer, resolve_amp, warmup_cosine

LAB = "textgen"


def model_config(cfg: TextgenConfig, vocab_size: int) -> GPTConfig:
    return GPTConfig(
        vocab_size=vocab_size,
        block_size=cfg.block_size,
        n_layer=cfg.n_layer,
        n_head=cfg.n_head,
        n_embd=cfg.n_embd,
        dropout=cfg.dropout,
        bias=cfg.bias,
    )


def prepare_data(
    cfg: TextgenConfig, folder: Path | None = None, device: torch.device | str = "cpu"
) -> tuple[Tokenizer, TokenData]:
    """Load the corpus, build (and save in ``folder``) the tokenizer, and split the tokens 90/10."""
    text = load_corpus(cfg.corpus, cfg.text or None)
    tok = build_tokenizer(cfg.tokenizer, text, vocab_size=cfg.bpe_vocab)
    if folder is not None:
        tok.save(folder)
    return tok, TokenData(tok.encode(text), cfg.block_size, device=device)


@torch.no_grad()
def estimate_loss(model: GPT, data: TokenData, cfg: TextgenConfig, seed: int = 1234) -> dict[str, float]:
    """Mean loss over ``eval_iters`` random batches of each split (the same batches at every evaluation)."""
    g = torch.Generator().manual_seed(seed)
    out = {}
    for split, key in (("val", "val_loss"), ("train", "train_eval_loss")):
        losses = [model(*data.batch(split, cfg.batch_size, g))[1].item() for _ in range(cfg.eval_iters)]
        out[key] = float(np.mean(losses))
    return out


def train(
    cfg: TextgenConfig,
    *,
    root: str | Path = "runs",
    name: str | None = None,
    resume: bool = False,
    device: str = "auto",
    quiet: bool = False,
    run: Run | None = None,
) -> Run:
    """Train a GPT on ``cfg.corpus`` into a run folder (checkpoint, metrics, tokenizer, summary).

    ``run``: an already created run folder to train in (the demo's ``reuse_or_create``) instead of
    ``root/textgen/name``. ``cfg.max_seconds`` stops early with a normal checkpoint (``stopped_by_time``).
    """
    dev = choose_device(device)
    run = run or Run.create(LAB, cfg, name=name, root=root, resume=resume)
    seed_everything(cfg.seed)
    tok, data = prepare_data(cfg, run.path, dev)
    model = GPT(model_config(cfg, tok.vocab_size))
    opt = make_optimizer(
        model.parameters(), "adamw", cfg.lr, weight_decay=cfg.weight_decay, betas=(0.9, 0.95), fused=True
    )
    sched = warmup_cosine(opt, cfg.steps, cfg.warmup, 0.1 if cfg.cosine else 1.0)
    if not quiet:
        print(
            f"textgen: {model.num_params() / 1e6:.2f}M parameters, {cfg.tokenizer} tokenizer "
            f"(vocabulary {tok.vocab_size}), {len(data.train)} train / {len(data.val)} validation tokens "
            f"on {dev}; run folder {run.path}",
            file=sys.stderr,
        )
    res = fit(
        run,
        model,
        opt,
        lambda m, batch: {"loss": m(*batch)[1]},
        lambda step: data.batch("train", cfg.batch_size),
        cfg=cfg,
        device=dev,
        scheduler=sched,
        eval_fn=lambda m: estimate_loss(m, data, cfg),
        best_key="val_loss",
        resume=resume,
        quiet=quiet,
        desc="textgen train",
    )
    model.eval()
    final = estimate_loss(model, data, cfg)
    tokens = (res.step - (res.resumed_from or 0)) * cfg.batch_size * cfg.block_size
    run.update_summary(
        {
            "params_M": round(model.num_params() / 1e6, 3),
            "tokenizer": cfg.tokenizer,
            "vocab_size": tok.vocab_size,
            "steps": res.step,
            "steps_planned": cfg.steps,
            "train_seconds": round(res.seconds, 1),
            "seconds_per_step": round(res.seconds / max(1, res.step - (res.resumed_from or 0)), 4),
            "stopped_by_time": res.stopped_by_time,
            "tokens_per_s": round(tokens / max(res.seconds, 1e-9)),
            "val_loss": round(final["val_loss"], 4),
            "train_loss": round(final["train_eval_loss"], 4),
            "val_perplexity": round(math.exp(final["val_loss"]), 2),
            "device": str(dev),
            "amp": resolve_amp(dev, cfg.amp),
        }
    )
    if not quiet:
        print(
            f"textgen: validation loss {final['val_loss']:.3f} after {res.step} steps "
            f"({res.seconds:.0f} s); run folder {run.path}",
            file=sys.stderr,
        )
    return run


# ------------------------------------------------------------------------------------------ an opened run


@dataclass
class Opened:
    """A trained run opened for its verbs and figures: config, tokenizer and frozen model (eval mode).

    The methods compute what the figures show; each result is kept, so the figures and the table drawn
    from one computation (e.g. the three attention figures and the attention table) share it.
    """

    run: Run
    cfg: TextgenConfig
    tok: Tokenizer
    model: GPT
    quiet: bool = True
    _cache: dict[tuple, Any] = field(default_factory=dict, repr=False)

    def _once(self, key: tuple, make: Callable[[], Any]) -> Any:
        if key not in self._cache:
            self._cache[key] = make()
        return self._cache[key]

    def samples(self, prompts: Sequence[str] = SAMPLE_PROMPTS, n_tokens: int = 48) -> list[dict]:
        """Continuations of each prompt: greedy, and sampled (T 0.8, top-k 40) with seeds 0 and 1."""

        def make() -> list[dict]:
            rows = []
            for p in prompts:
                text = generate(self.model, self.tok, p, n_tokens, greedy=True)
                rows.append({"prompt": p, "decoding": "greedy", "text": text})
                for seed in (0, 1):
                    rows.append(
                        {
                            "prompt": p,
                            "decoding": f"T=0.8 top-k 40 seed {seed}",
                            "text": generate(self.model, self.tok, p, n_tokens, temperature=0.8, top_k=40, seed=seed),
                        }
                    )
            return rows

        return self._once(("samples", tuple(prompts), n_tokens), make)

    def scored(
        self, prompt: str = "Alice", n_tokens: int = 15, seed: int = 0, text: str | None = None
    ) -> dict[str, Any]:
        """Score ``text`` after ``prompt`` (default: a sampled continuation of it); the text is in ``"text"``."""

        def make() -> dict[str, Any]:
            body = text
            if body is None:
                body = generate(self.model, self.tok, prompt, n_tokens, temperature=1.0, seed=seed)
            return {**score(self.model, self.tok, body, prompt), "prompt": prompt, "text": body}

        return self._once(("score", prompt, n_tokens, seed, text), make)

    def attention(self, prompt: str = ATTENTION_PROMPT, word: int = 11) -> dict[str, Any]:
        return self._once(("attention", prompt, word), lambda: attention_at_word(self.model, self.tok, prompt, word))

    def attention_error(self) -> str | None:
        """Why the default attention (word 11 of the report's prompt) cannot be computed, or None when it can: a
        barely trained model may emit only punctuation, so that word 12 never comes."""

        def make() -> str | None:
            try:
                self.attention()
            except ConfigError as e:
                return str(e)
            return None

        return self._once(("attention_error",), make)

    def inversion(
        self, target: str = INVERSION_TARGET, lr: float = 0.1, steps: int = 500, every: int = 5, seed: int = 0
    ) -> dict[str, Any]:
        return self._once(
            ("inversion", target, lr, steps, every, seed),
            lambda: invert(self.model, self.tok, target, lr=lr, steps=steps, every=every, seed=seed, quiet=self.quiet),
        )


def _check_vocab(run: Run, cfg: TextgenConfig, tok: Tokenizer) -> None:
    """A tokenizer that no longer has the vocabulary the run trained with (a changed GPT-2 ranks file, an edited
    tokenizer file) is named as the cause, not reported as weights of another model."""
    try:
        trained = run.read_summary().get("vocab_size")
    except RunError:
        return
    if isinstance(trained, int) and trained != tok.vocab_size:
        fix = (
            "the GPT-2 ranks file changed: check it with 'genlab data verify gpt2'"
            if cfg.tokenizer == "gpt2"
            else "the run's tokenizer file changed: train the run again"
        )
        raise RunError(
            f"run {str(run.path)!r} was trained with a {trained}-token vocabulary, but its {cfg.tokenizer} tokenizer "
            f"now has {tok.vocab_size} tokens; {fix}"
        )


def open_run(run: Run, device: str | torch.device = "cpu", quiet: bool = True) -> Opened:
    """The config, tokenizer and trained model (eval mode, frozen) of a run folder."""
    cfg = run.config(TextgenConfig)
    tok = load_tokenizer(cfg.tokenizer, run.path)
    _check_vocab(run, cfg, tok)
    model = GPT(model_config(cfg, tok.vocab_size))
    load_weights(run, model, device=device)
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    return Opened(run, cfg, tok, model, quiet)


# ----------------------------------------------------------------------------------------------------- demo


def report_plan(device: str = "auto") -> tuple[TextgenConfig, str]:
    """The report's model and training (the ``report`` preset) as ``genlab report --full`` trains it: whole on a
    GPU; on a CPU stopped by a time budget of REPORT_CPU_BUDGET_S seconds, with a checkpoint every REPORT_CPU_CKPT
    steps, 4 validation batches per evaluation (each costs a third of a step; the 10% split is ~3.6 k tokens), and
    the rest of the run's time extrapolated in the front table."""
    if choose_device(device).type == "cpu":
        budget = dict(max_seconds=REPORT_CPU_BUDGET_S, ckpt_every=REPORT_CPU_CKPT, eval_iters=4)
        cfg = PRESETS["report"].update(budget)
        return cfg, "alice-gpt2-report-cpu-budget"
    return PRESETS["report"].update(dict(ckpt_every=250)), "alice-gpt2-report"


def demo(
    root: str | Path = "runs",
    *,
    quick: bool = True,
    device: str = "auto",
    quiet: bool = False,
    reuse: bool = True,
    tiny: bool = False,
) -> list[Run]:
    """Train (or reuse) the lab's runs and write every figure.

    quick: the ``mini`` model (4 blocks, 128 wide) with a 1024-token BPE learned on Alice, 350 steps. A BPE of
    1024 tokens puts about 3.5 characters in a token, so 64 tokens of context cover ~220 characters and
    samples are made of real words after a few hundred steps. GPT-2's 50257-way output layer would make each
    step ~17x slower on a CPU (measured, see benchmarks/bench_textgen.py), and characters need many more
    steps before words appear.
    No dropout: 350 steps see the training tokens ~15 times, before overfitting sets in.
    Full: the ``mini`` preset (1024-token BPE, dropout 0.2), 2000 steps, and the report's own run (GPT-2 small,
    GPT-2 tokens, :func:`report_plan`).
    tiny: a 1-block character model on the built-in sample text, 150 steps (seconds, no fetched data).
    """
    if tiny:
        plan = [(TINY, "sample-tiny-char")]
    elif quick:
        plan = [(QUICK, "alice-mini-bpe-quick")]
    else:
        plan = [(PRESETS["mini"], "alice-mini-bpe"), report_plan(device)]
    dev = choose_device("cpu" if device == "auto" else device)
    runs = []
    for cfg, name in plan:
        run = reuse_or_create(LAB, cfg, root=root, name=name, reuse=reuse)
        if not run.finished:
            train(cfg, run=run, resume=run.last_checkpoint.exists(), device=device, quiet=quiet)
        with cpu_threads(cfg.threads if dev.type == "cpu" else 0):
            draw_all(LAB, open_run(run, dev, quiet=quiet), run)
        runs.append(run)
    return runs


def same_as_report(cfg: dict[str, Any], summary: dict[str, Any]) -> str:
    """The run's model, training and data beside the report's (GPT-2 small, 12x768, 123.7 M parameters, GPT-2
    tokens, the report preset's recipe, Alice), naming the closest preset."""
    size = (cfg.get("n_layer"), cfg.get("n_head"), cfg.get("n_embd"))
    preset = next((k for k, v in MODEL_PRESETS.items() if (v["n_layer"], v["n_head"], v["n_embd"]) == size), None)
    data = "data yes: Alice" if cfg.get("corpus") == "alice" else f"data no: {cfg.get('corpus')}, not Alice"
    tok = cfg.get("tokenizer")
    tokens = {"gpt2": "GPT-2 tokens", "bpe": f"a {cfg.get('bpe_vocab')}-token BPE", "char": "characters"}.get(tok, tok)
    if preset == "gpt2" and cfg.get("tokenizer") == "gpt2":
        recipe = PRESETS["report"]
        keys = ("block_size", "batch_size", "lr", "steps", "warmup", "cosine")
        same = all(cfg.get(k) == getattr(recipe, k) for k in keys)
        training = "the report's training (the 'report' preset)" if same else "another training recipe"
        if summary.get("stopped_by_time"):
            training += f", cut at step {summary.get('steps')} of {summary.get('steps_planned')} by a time budget"
        return f"yes: GPT-2 small's size and tokens, {training}, trained here from scratch; {data}"
    named = f"the '{preset}' preset, " if preset else ""
    params_m = summary.get("params_M")
    millions = f"{params_m:.3g} M parameters, " if params_m else ""
    return (
        f"no: a {size[0]}x{size[2]} GPT ({named}{millions}{tokens}), not GPT-2 small (12x768, 123.7 M, "
        f"GPT-2 tokens); {data}"
    )


def key_metrics(runs: list[Run]) -> list[dict]:
    """Validation loss, the sampled continuation's probability, inversion and attention checks for the report's
    front table; a run cut by its time budget says at which step, with the whole run's time extrapolated."""
    rows = []
    for run in runs:
        s = run.read_summary()
        same = same_as_report(run.read_config_file().get("config", {}), s)
        cut = ""
        if s.get("stopped_by_time") and s.get("steps_planned"):
            cut = f", at step {s['steps']} of {s['steps_planned']} (cut by the time budget)"
            rows.append(
                {
                    "metric": f"training time for all {s['steps_planned']} steps here (h; extrapolated from "
                    f"{s['steps']} steps)",
                    "value": round(s["steps_planned"] * s.get("seconds_per_step", 0) / 3600, 2),
                    "reference": "",
                    "same": same,
                }
            )
        if "val_loss" in s:
            rows.append(
                {
                    "metric": f"validation loss ({s.get('tokenizer')}, vocab {s.get('vocab_size')}{cut})",
                    "value": s["val_loss"],
                    "reference": "",
                    "same": same,
                }
            )
        if "score_prob" in s:
            rows.append(
                {
                    "metric": f"probability of a sampled {s.get('score_tokens')}-token continuation{cut}",
                    "value": s["score_prob"],
                    "reference": "4.25e-4 (GPT-2 small, 15 tokens, its own sample)",
                    "same": same,
                }
            )
        if s.get("inversion_match_step") is not None:
            rows.append(
                {
                    "metric": f"inversion: Adam steps to an exact match{cut}",
                    "value": s["inversion_match_step"],
                    "reference": "79 (GPT-2 small)",
                    "same": same,
                }
            )
        if "attention_row_sum_max_error" in s:
            rows.append(
                {
                    "metric": "attention rows: max |sum - 1|",
                    "value": s["attention_row_sum_max_error"],
                    "reference": "0",
                    "same": "not needed: it holds for any softmax attention",
                    "reference_from": "any run",
                }
            )
    return rows
