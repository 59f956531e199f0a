"""Lab 2: a GPT trained on "Alice's Adventures in Wonderland": train, generate, score, attention, inversion.

``genlab textgen train`` trains a GPT (:mod:`genlab.nn.gpt`) on a corpus (:mod:`genlab.data.text`) through the
shared loop; the other verbs open the run folder and write figures and tables into it:

* ``generate``  greedy / temperature / top-k / top-p sampling, streamed to the terminal;
* ``score``     log p(text | prompt) = the sum of the per-token log-probabilities, with the per-token table;
                or the perplexity of a file;
* ``attention`` generate up to the 12th word and show, for the prediction of the 12th word, the first and last
                block's attention averaged over heads;
* ``invert``    freeze the model and optimise the input embeddings until the greedy decode is a target;
* ``figures``   every figure above for a trained run.
"""

from __future__ import annotations

import argparse
import math
import sys
import textwrap
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from genlab.config import param
from genlab.data.text import (
    CORPORA,
    TOKENIZERS,
    TokenData,
    Tokenizer,
    build_tokenizer,
    load_corpus,
    load_tokenizer,
)
from genlab.errors import ConfigError
from genlab.nn.gpt import GPT, MODEL_PRESETS, GPTConfig
from genlab.runs import Run, choose_device, rng_state, seed_everything
from genlab.train import TrainConfig, fit, load_weights, make_optimizer, warmup_cosine

TITLE = "GPT on Alice in Wonderland: train, generate, score, attention, inversion"
ORDER = 2
LAB = "textgen"

ATTENTION_PROMPT = "The little squirrel was around Alice but she kept saying"
INVERSION_TARGET = "I am a little squirrel holding a walnut"
SAMPLE_PROMPTS = ("Alice was beginning", "The Queen said", "'Off with")

# Samples of an untrained model may hold characters the monospace font lacks; the figure still renders.
warnings.filterwarnings("ignore", message=r"Glyph \d+ .* missing from font")


@dataclass
class TextgenConfig(TrainConfig):
    corpus: str = param("alice", "text to train on: alice, shakespeare, or text (with text=PATH)",
                        choices=CORPORA)
    text: str = param("", "path of a UTF-8 text file, used when corpus=text")
    tokenizer: str = param("bpe", "gpt2 (tiktoken, 50257), bpe (trained on the corpus) or char",
                           choices=TOKENIZERS)
    bpe_vocab: int = param(2048, "vocabulary size of the bpe tokenizer", min=260)
    n_layer: int = param(4, "transformer blocks", min=1)
    n_head: int = param(4, "attention heads per block", min=1)
    n_embd: int = param(128, "model width", min=8)
    block_size: int = param(64, "context length in tokens", min=2)
    dropout: float = param(0.0, "dropout probability", min=0.0)
    bias: bool = param(True, "biases in linear layers and LayerNorm")
    weight_decay: float = param(0.1, "AdamW weight decay", min=0.0)
    warmup: int = param(50, "linear warm-up steps before the cosine decay", min=0)
    cosine: bool = param(True, "cosine learning-rate decay to 10% after the warm-up")
    eval_iters: int = param(20, "validation batches per evaluation", min=1)
    max_seconds: float = param(0.0, "stop training after this many seconds (0 = run all steps)", min=0.0)
    # loop defaults suited to this lab
    steps: int = param(2000, "optimisation steps", min=0)
    lr: float = param(1e-3, "learning rate", min=0.0)
    batch_size: int = param(32, "sequences per step", min=1)
    grad_clip: float = param(1.0, "clip the gradient norm to this (0 = off)", min=0.0)
    eval_every: int = param(100, "evaluate every N steps (0 = only at the end)", min=0)
    log_every: int = param(10, "log metrics every N steps", min=1)


def _preset(name: str, **kw: Any) -> TextgenConfig:
    return TextgenConfig(**{**MODEL_PRESETS[name], **kw})


PRESETS: dict[str, TextgenConfig] = {
    # seconds on a CPU: checks the pipeline, samples are word salad
    "nano": _preset("nano", steps=300, lr=2e-3, bpe_vocab=1024, eval_every=50),
    # minutes on a CPU: samples that read like the book. Alice is only ~45k BPE tokens, so a 1M-parameter
    # model overfits within ~500 steps without dropout (measured: validation loss rose from 4.76 at 5 minutes
    # to 4.87 at 10 with dropout 0 and a 2048-token BPE); dropout 0.2 and a 1024-token BPE hold it back.
    "mini": _preset("mini", steps=2000, lr=1e-3, dropout=0.2, bpe_vocab=1024),
    # the lab's recipe: GPT-2 tokens, lr 5e-4, batch 32, block 64, 2000 iterations, a 6-layer 384-wide model
    "lab": _preset("lab", tokenizer="gpt2", steps=2000, lr=5e-4, warmup=100),
    # GPT-2 small (12 layers, 12 heads, 768 wide) with the lab's recipe: a GPU job
    "gpt2": _preset("gpt2", tokenizer="gpt2", steps=2000, lr=5e-4, warmup=100),
}
# The quick demo: mini with a 1024-token BPE (see demo() for why).
QUICK = PRESETS["mini"].update(dict(steps=350, eval_every=50, warmup=30, lr=2e-3, dropout=0.0))


# --------------------------------------------------------------------------------------------- model and data

def model_config(cfg: TextgenConfig, vocab_size: int) -> GPTConfig:
    return GPTConfig(vocab_size=vocab_size, block_size=cfg.block_size, n_layer=cfg.n_layer, n_head=cfg.n_head,
                     n_embd=cfg.n_embd, dropout=cfg.dropout, bias=cfg.bias)


def prepare_data(cfg: TextgenConfig, folder: Path | None = None,
                 device: torch.device | str = "cpu") -> tuple[Tokenizer, TokenData]:
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


class _TimeUp(Exception):
    pass


def train(cfg: TextgenConfig, *, root: str | Path = "runs", name: str | None = None, resume: bool = False,
          device: str = "auto", quiet: bool = False) -> Run:
    """Train a GPT on ``cfg.corpus`` and write the run folder (checkpoint, metrics, loss curve, samples)."""
    dev = choose_device(device)
    run = Run.create(LAB, cfg, name=name, root=root, resume=resume)
    seed_everything(cfg.seed)
    tok, data = prepare_data(cfg, run.path, dev)
    model = GPT(model_config(cfg, tok.vocab_size))
    opt = make_optimizer(model.parameters(), "adamw", cfg.lr, weight_decay=cfg.weight_decay,
                         betas=(0.9, 0.95))
    sched = warmup_cosine(opt, cfg.steps, cfg.warmup, 0.1 if cfg.cosine else 1.0)

    def step_fn(m, batch):
        return {"loss": m(*batch)[1]}

    t0 = time.perf_counter()

    def stop_at_time(step: int, values: dict) -> None:
        if cfg.max_seconds and time.perf_counter() - t0 > cfg.max_seconds:
            raise _TimeUp(step)

    if not quiet:
        print(f"textgen: {model.num_params() / 1e6:.2f}M parameters, {cfg.tokenizer} tokenizer "
              f"(vocabulary {tok.vocab_size}), {len(data.train)} train / {len(data.val)} validation tokens "
              f"on {dev}; run folder {run.path}", file=sys.stderr)
    stopped = None
    try:
        res = fit(run, model, opt, step_fn, lambda step: data.batch("train", cfg.batch_size), cfg=cfg,
                  device=dev, scheduler=sched, eval_fn=lambda m: estimate_loss(m, data, cfg),
                  best_key="val_loss",
                  resume=resume, quiet=quiet, callbacks=[stop_at_time], desc="textgen train")
        steps_done, seconds = res.step, res.seconds
    except _TimeUp as e:  # a time budget: evaluate and checkpoint where we stopped
        stopped = int(e.args[0])
        steps_done, seconds = stopped, time.perf_counter() - t0
        model.eval()
        values = estimate_loss(model, data, cfg)
        run.log_metrics({"step": stopped, **values})
        run.save_checkpoint({"step": stopped, "model": model.state_dict(), "config": cfg.to_dict(),
                             "optimizers": {"main": opt.state_dict()}, "scheduler": sched.state_dict(),
                             "ema": None, "scaler": None, "rng": rng_state(), "best": values["val_loss"]})
    model.eval()
    final = estimate_loss(model, data, cfg)
    tokens = (steps_done - (0 if stopped else (res.resumed_from or 0))) * cfg.batch_size * cfg.block_size
    run.update_summary({
        "params_M": round(model.num_params() / 1e6, 3), "tokenizer": cfg.tokenizer,
        "vocab_size": tok.vocab_size,
        "steps": steps_done, "train_seconds": round(seconds, 1), "stopped_by_time": stopped is not None,
        "tokens_per_s": round(tokens / max(seconds, 1e-9)), "val_loss": round(final["val_loss"], 4),
        "train_loss": round(final["train_eval_loss"], 4),
        "val_perplexity": round(math.exp(final["val_loss"]), 2),
        "device": str(dev)})
    fig_loss(run)
    fig_samples(run, model, tok, quiet=True)
    if not quiet:
        print(f"textgen: validation loss {final['val_loss']:.3f} after {steps_done} steps "
              f"({seconds:.0f} s); run folder {run.path}", file=sys.stderr)
    return run


def load_run(run: Run, device: str = "cpu") -> tuple[TextgenConfig, Tokenizer, GPT]:
    """The config, tokenizer and trained model (eval mode) of a run folder."""
    cfg = run.config(TextgenConfig)
    tok = load_tokenizer(cfg.tokenizer, run.path)
    model = GPT(model_config(cfg, tok.vocab_size))
    load_weights(run, model, device=device)
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    return cfg, tok, model


def _encode(tok: Tokenizer, text: str, what: str = "prompt") -> list[int]:
    if not text or not text.strip():
        raise ConfigError(f"empty {what}; give some text, e.g. --prompt \"Alice was\"")
    return tok.encode(text)


def _cmd(*parts: str) -> str:
    return "genlab textgen " + " ".join(p for p in parts if p)


def _q(s: str) -> str:
    return "'" + s.replace("'", "'\\''") + "'"


# ------------------------------------------------------------------------------------------------ generation

def generate(model: GPT, tok: Tokenizer, prompt: str, max_new_tokens: int = 60, *, temperature: float = 1.0,
             top_k: int | None = None, top_p: float | None = None, greedy: bool = False, seed: int = 0,
             stream=None) -> str:
    """The continuation of ``prompt``; ``stream(piece)`` is called with each new piece of text as it comes."""
    if temperature < 0:
        raise ConfigError(f"temperature {temperature} must be >= 0 (0 = greedy)")
    if top_p is not None and not 0 < top_p <= 1:
        raise ConfigError(f"top_p {top_p} must be in (0, 1]")
    ids = _encode(tok, prompt)[-model.config.block_size:]
    dev = next(model.parameters()).device
    g = torch.Generator().manual_seed(seed)
    new: list[int] = []
    shown = ""
    for t in model.stream(torch.tensor([ids], device=dev), max_new_tokens, temperature=temperature,
                          top_k=top_k, top_p=top_p, greedy=greedy, generator=g):
        new.append(t)
        if stream is not None:
            text = tok.decode(new)
            if not text.endswith("\ufffd"):  # a multi-byte character may span tokens: wait for its end
                stream(text[len(shown):])
                shown = text
    return tok.decode(new)


def fig_samples(run: Run, model: GPT, tok: Tokenizer, prompts=SAMPLE_PROMPTS, n_tokens: int = 48,
                quiet: bool = False) -> list[dict]:
    """A table and a figure of continuations: greedy, and sampled (T 0.8, top-k 40) with two seeds."""
    from genlab import plots

    rows = []
    for p in prompts:
        text = generate(model, tok, p, n_tokens, greedy=True)
        rows.append({"prompt": p, "decoding": "greedy", "text": text})
        for seed in (0, 1):
            rows.append({"prompt": p, "decoding": f"T=0.8 top-k 40 seed {seed}",
                         "text": generate(model, tok, p, n_tokens, temperature=0.8, top_k=40, seed=seed)})
    run.save_table([{**r, "text": r["text"].replace("\n", " ")} for r in rows], "samples",
                   caption="Continuations of three prompts: greedy and sampled.")
    fig, ax = plots.figure(size=(10, 0.9 * len(rows) + 0.6))
    ax.axis("off")
    y = 1.0
    for r in rows:
        body = textwrap.fill((r["prompt"] + r["text"]).replace("\n", " "), 120)
        ax.text(0, y, f"[{r['decoding']}]", fontsize=8, color=plots.PALETTE[3], va="top",
                transform=ax.transAxes)
        ax.text(0, y - 0.025, body, fontsize=8.5, va="top", family="monospace", transform=ax.transAxes)
        y -= 1.0 / len(rows)
    ax.set_title("Samples (prompt + continuation)")
    run.save_figure(fig, "samples",
                    caption="Greedy and sampled continuations (T=0.8, top-k 40) of three prompts.",
                    command=_cmd("generate", f"--run {run.path}", "--prompt 'Alice was beginning'",
                                 "--temperature 0.8 --top-k 40 --seed 0"),
                    data={"rows": rows})
    if not quiet:
        for r in rows:
            print(f"[{r['decoding']}] {r['prompt']}{r['text']}")
    return rows


def fig_loss(run: Run) -> None:
    from genlab import plots

    metrics = run.read_metrics()
    fig = plots.loss_curves(metrics, ["loss", "val_loss"], title="GPT training: cross-entropy per token")
    ax = fig.axes[0]
    ax.set_ylabel("cross-entropy (nats / token)")
    names = {"loss": "train (each step's batch)", "val_loss": "validation (last 10%)"}
    handles, labels = ax.get_legend_handles_labels()
    ax.legend(handles, [names.get(k, k) for k in labels])
    val = [(r["step"], r["val_loss"]) for r in metrics if "val_loss" in r]
    if val:
        ax.plot(*zip(*val), "o", color=plots.PALETTE[1], markersize=3)
        ax.annotate(f"val {val[-1][1]:.3f}", val[-1], textcoords="offset points", xytext=(-30, 8), fontsize=8)
    cfg = run.config(TextgenConfig)
    run.save_figure(fig, "loss", caption="Training loss (each step's batch, smoothed) and validation loss "
                    "(last 10% of the text) per token.",
                    command=_cmd("train", f"--name {run.path.name}", f"--set tokenizer={cfg.tokenizer}"),
                    data={"val": val})


# --------------------------------------------------------------------------------------------------- scoring

@torch.no_grad()
def token_logprobs(model: GPT, ids: list[int], start: int = 1) -> torch.Tensor:
    """log p(ids[j] | ids[:j]) for j = start .. len(ids)-1, each with up to ``block_size`` tokens of context.

    Texts longer than the block are scored in windows that overlap by half a block; every token is scored in
    the first window that holds it, where it has the most context.
    """
    B = model.config.block_size
    dev = next(model.parameters()).device
    n = len(ids)
    out = torch.full((n,), float("nan"))
    stride = max(1, B // 2)
    t = torch.tensor(ids, device=dev)
    b = 0
    while True:
        x = t[b:b + B]
        y = t[b + 1:b + B + 1]
        if len(y) == 0:
            break
        logits, _ = model(x[None, :len(y)])
        lp = logits[0].float().log_softmax(-1).gather(1, y[:, None])[:, 0].cpu()
        pos = torch.arange(b + 1, b + 1 + len(y))
        fresh = torch.isnan(out[pos])
        out[pos[fresh]] = lp[fresh]
        if b + B + 1 >= n:
            break
        b += stride
    return out[start:]


def score(model: GPT, tok: Tokenizer, text: str, prompt: str = "") -> dict[str, Any]:
    """log p(text | prompt) as the sum of per-token log-probabilities, with the per-token rows.

    Without a prompt the text's first token is the context (it is not scored).
    """
    body = _encode(tok, text, "text")
    ctx = tok.encode(prompt) if prompt else []
    ids = ctx + body
    start = max(1, len(ctx))
    lps = token_logprobs(model, ids, start)
    rows = [{"i": j, "token": tok.piece(ids[j]), "logprob": float(lp), "prob": math.exp(float(lp))}
            for j, lp in zip(range(start, len(ids)), lps)]
    total = float(sum(r["logprob"] for r in rows))
    return {"rows": rows, "logprob": total, "prob": math.exp(total), "n_tokens": len(rows),
            "perplexity": math.exp(-total / max(1, len(rows))), "context": tok.decode(ids[:start])}


def fig_score(run: Run, model: GPT, tok: Tokenizer, prompt: str = "Alice", n_tokens: int = 15,
              seed: int = 0, text: str | None = None) -> dict[str, Any]:
    """Sample a sentence (or take ``text``) and show its log-probability as the sum of per-token values."""
    from genlab import plots

    if text is None:
        text = generate(model, tok, prompt, n_tokens, temperature=1.0, seed=seed)
    res = score(model, tok, text, prompt)
    rows = res["rows"]
    run.save_table([{**r, "token": repr(r["token"])} for r in rows] +
                   [{"i": "sum", "token": "", "logprob": res["logprob"], "prob": res["prob"]}], "score",
                   caption=f"log p(continuation | {prompt!r}) = sum of per-token log-probabilities.")
    fig, ax = plots.figure(size=(max(6, 0.45 * len(rows) + 2), 3.6))
    vals = [r["logprob"] for r in rows]
    ax.bar(range(len(rows)), vals, color=plots.PALETTE[0])
    ax.set_xticks(range(len(rows)), [repr(r["token"])[1:-1] for r in rows], rotation=60, ha="right",
                  family="monospace", fontsize=8)
    ax.set_ylabel("log p(token | context)")
    ax.set_title(f"log p = {res['logprob']:.2f} (p = {res['prob']:.3g}) over {len(rows)} tokens")
    ax.set_xlabel(textwrap.shorten(repr(prompt + text), 110), family="monospace", fontsize=8)
    command = _cmd("score", f"--run {run.path}", f"--prompt {_q(prompt)}", f"--text {_q(text)}")
    numbers = {k: res[k] for k in ("logprob", "prob", "n_tokens")}
    run.save_figure(fig, "score", caption="Per-token log-probabilities of a sampled continuation; the "
                    "title's total is their sum.", command=command,
                    data={"prompt": prompt, "text": text, **numbers, "tokens": rows})
    run.update_summary({"score_logprob": round(res["logprob"], 3), "score_prob": res["prob"],
                        "score_tokens": res["n_tokens"]})
    return res


def perplexity_of_file(model: GPT, tok: Tokenizer, path: str | Path) -> dict[str, float]:
    from genlab.cli import check_path

    text = Path(check_path(path)).read_text(encoding="utf-8", errors="replace")
    ids = _encode(tok, text, "file")
    if len(ids) < 2:
        raise ConfigError(f"file {str(path)!r} has fewer than 2 tokens; nothing to score")
    lps = token_logprobs(model, ids, 1)
    nll = float(-lps.mean())
    return {"tokens": len(lps), "nll": nll, "perplexity": math.exp(nll)}


# ------------------------------------------------------------------------------------------------- attention

@torch.no_grad()
def attention_at_word(model: GPT, tok: Tokenizer, prompt: str = ATTENTION_PROMPT, word: int = 12,
                      max_new_tokens: int = 40) -> dict[str, Any]:
    """Generate greedily until the ``word``-th word starts; return each block's attention for that prediction.

    ``att[b]`` is block b's attention (T x T), averaged over heads, at the step that predicted the first
    token of word ``word``; its last row is what that prediction looked at.
    """
    ids = _encode(tok, prompt)
    if len(prompt.split()) >= word:
        raise ConfigError(f"the prompt already has {len(prompt.split())} words; give fewer than {word} so "
                          f"that word {word} is generated")
    dev = next(model.parameters()).device
    context = None
    for _ in range(max_new_tokens):
        x = torch.tensor([ids[-model.config.block_size:]], device=dev)
        logits, _, atts = model(x, return_attn=True)
        nxt = int(logits[0, -1].argmax())
        ids.append(nxt)
        words = tok.decode(ids).split()
        if context is None and len(words) >= word:
            context = {"ids": x[0].tolist(), "att": [a[0].mean(0).cpu() for a in atts], "next": nxt}
        if context is not None and len(words) > word:  # finish word 12, stop when word 13 starts
            ids.pop()
            break
    if context is None:
        raise ConfigError(f"word {word} did not appear within {max_new_tokens} generated tokens")
    att = torch.stack(context["att"])  # (blocks, T, T)
    return {"tokens": [tok.piece(i) for i in context["ids"]], "att": att, "next": tok.piece(context["next"]),
            "sentence": tok.decode(ids), "row_sums": att.sum(-1)}


def _paint(ax, tokens: list[str], weights: np.ndarray, cmap, title: str, width: int = 70) -> None:
    """Draw ``tokens`` as text, each on a background coloured by its weight."""
    ax.axis("off")
    ax.set_xlim(0, width)
    top = max(weights.max(), 1e-9)
    x, y = 0.0, 0.0
    for t, w in zip(tokens, weights):
        s = t.replace("\n", "\u21b5")
        if x + len(s) > width:
            x, y = 0.0, y - 1.6
        ax.text(x, y, s, family="monospace", fontsize=9, va="center",
                bbox=dict(boxstyle="square,pad=0.15", facecolor=cmap(w / top), edgecolor="none"),
                color="white" if w / top > 0.6 else "black")
        x += len(s) + 0.6
    ax.set_ylim(y - 1.2, 1.2)
    ax.set_title(title, loc="left")


def fig_attention(run: Run, model: GPT, tok: Tokenizer, prompt: str = ATTENTION_PROMPT,
                  word: int = 12) -> dict[str, Any]:
    """Heat-maps of the first and last block, painted tokens, row sums, and attention per block."""
    import matplotlib.pyplot as plt

    from genlab import plots

    res = attention_at_word(model, tok, prompt, word)
    att, tokens = res["att"].numpy(), res["tokens"]
    L, T = att.shape[0], len(tokens)
    labels = [repr(t)[1:-1] for t in tokens]
    cmd = _cmd("attention", f"--run {run.path}", f"--prompt {_q(prompt)}")
    caption_base = (f"Prediction of word {word} ({res['next']!r}) after {T} tokens; sentence: "
                    f"{res['sentence']!r}. Attention is averaged over heads.")

    fig, axes = plots.figure(1, 2, size=(13, 5.8), layout="constrained")
    for ax, b, name in ((axes[0], 0, "first"), (axes[1], L - 1, "last")):
        im = ax.imshow(att[b], cmap="magma", vmin=0, vmax=att[b].max())
        ax.set_xticks(range(T), labels, rotation=70, fontsize=7, family="monospace")
        ax.set_yticks(range(T), labels, fontsize=7, family="monospace")
        ax.axhline(T - 1.5, color="cyan", lw=0.8)
        ax.set_title(f"{name} block (block {b + 1} of {L})")
        ax.set_xlabel("key (attended token)")
        ax.set_ylabel("query (position)")
        ax.grid(False)
        fig.colorbar(im, ax=ax, fraction=0.046, pad=0.02, label="attention probability")
    fig.suptitle(f"Causal self-attention, averaged over heads (bottom row predicts {res['next']!r})")
    run.save_figure(fig, "attention_heatmaps",
                    caption=caption_base + " Rows are queries; the last row (below the "
                    "cyan line) is the prediction of the next word.", command=cmd,
                    data={"tokens": tokens, "first": att[0].tolist(), "last": att[-1].tolist()})

    fig, axes = plots.figure(2, 1, size=(10, 4.2))
    cmap = plt.get_cmap("YlOrRd")
    for ax, b, name in ((axes[0], 0, "First"), (axes[1], L - 1, "Last")):
        w = att[b, -1]
        _paint(ax, tokens, w, cmap, f"{name} block: attention from the last position (sum = {w.sum():.4f}), "
               f"predicting {res['next']!r}")
    run.save_figure(fig, "attention_tokens",
                    caption=caption_base + " Each token is painted by the attention the "
                    "last position gives it; the sum over tokens is 1.", command=cmd,
                    data={"tokens": tokens, "first": att[0, -1].tolist(), "last": att[-1, -1].tolist(),
                          "first_sum": float(att[0, -1].sum()), "last_sum": float(att[-1, -1].sum())})

    # how attention spreads, block by block: the last row of each block, and its entropy
    fig, axes = plots.figure(1, 2, size=(12, 0.35 * L + 3), gridspec_kw={"width_ratios": [3, 1]})
    last_rows = att[:, -1, :]
    im = axes[0].imshow(last_rows, cmap="magma", aspect="auto", vmin=0)
    axes[0].set_xticks(range(T), labels, rotation=70, fontsize=7, family="monospace")
    axes[0].set_yticks(range(L), [f"block {b + 1}" for b in range(L)])
    axes[0].set_title(f"Attention from the last position, per block (predicting {res['next']!r})")
    axes[0].grid(False)
    fig.colorbar(im, ax=axes[0], fraction=0.03, pad=0.02)
    entropy = -(last_rows * np.log(np.clip(last_rows, 1e-12, None))).sum(-1)
    axes[1].barh(range(L), np.exp(entropy), color=plots.PALETTE[2])
    axes[1].invert_yaxis()
    axes[1].set_yticks(range(L), [f"{b + 1}" for b in range(L)])
    axes[1].set_xlabel("effective tokens attended\nexp(entropy)")
    axes[1].set_title("Spread")
    row_sums = res["row_sums"].numpy()
    run.save_figure(fig, "attention_blocks",
                    caption=caption_base + " Left: each block's attention from the last "
                    "position. Right: exp(entropy), the effective number of tokens attended (1 = one token, "
                    f"{T} = uniform). Every row of every block sums to 1 (max |sum-1| = "
                    f"{np.abs(row_sums - 1).max():.1e}).", command=cmd,
                    data={"tokens": tokens, "last_rows": last_rows.tolist(),
                          "effective_tokens": np.exp(entropy),
                          "row_sums": row_sums.tolist()})
    rows = [{"token": repr(t), "first_block": float(att[0, -1, i]), "last_block": float(att[-1, -1, i])}
            for i, t in enumerate(tokens)]
    rows.append({"token": "sum", "first_block": float(att[0, -1].sum()),
                 "last_block": float(att[-1, -1].sum())})
    run.save_table(rows, "attention", caption=caption_base)
    run.update_summary({"attention_sentence": res["sentence"], "attention_next": res["next"],
                        "attention_row_sum_max_error": float(np.abs(row_sums - 1).max())})
    return res


# ------------------------------------------------------------------------------------------------- inversion

def invert(model: GPT, tok: Tokenizer, target: str = INVERSION_TARGET, *, lr: float = 0.1, steps: int = 500,
           every: int = 5, seed: int = 0, stop_at_match: bool = True, quiet: bool = True) -> dict[str, Any]:
    """Find input embeddings E (1, T, d) so that the frozen model's greedy output is the target.

    Position t's arg-max must be target token t (all positions at once). E starts as small random vectors
    and is optimised with Adam on the cross-entropy to the target; the model's weights never change.
    """
    from tqdm.auto import tqdm

    ids = _encode(tok, target, "target")
    B = model.config.block_size
    if len(ids) > B:
        raise ConfigError(f"target has {len(ids)} tokens, more than the model's block_size {B}; shorten it")
    dev = next(model.parameters()).device
    for p in model.parameters():
        p.requires_grad_(False)
    y = torch.tensor([ids], device=dev)
    g = torch.Generator().manual_seed(seed)
    emb = (torch.randn(1, len(ids), model.config.n_embd, generator=g) * 0.02).to(dev).requires_grad_(True)
    opt = torch.optim.Adam([emb], lr=lr)
    losses, decoded, matched = [], [], None
    for step in tqdm(range(1, steps + 1), desc="invert", disable=quiet, leave=False):
        logits, loss = model(inputs_embeds=emb, targets=y)
        pred = logits[0].argmax(-1)
        hit = bool((pred == y[0]).all())
        losses.append(loss.item())
        if step == 1 or step % every == 0 or (hit and matched is None):
            decoded.append({"step": step - 1, "loss": loss.item(), "decoded": tok.decode(pred.tolist()),
                            "correct": int((pred == y[0]).sum())})
        if hit and matched is None:
            matched = step - 1  # the decode before this step's update already matches
            if stop_at_match:
                break
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return {"target": target, "n_tokens": len(ids), "matched_step": matched, "losses": losses,
            "decoded": decoded, "embeds": emb.detach().cpu()}


def fig_inversion(run: Run, model: GPT, tok: Tokenizer, target: str = INVERSION_TARGET, lr: float = 0.1,
                  steps: int = 500, every: int = 5, seed: int = 0, quiet: bool = True) -> dict[str, Any]:
    from genlab import plots

    res = invert(model, tok, target, lr=lr, steps=steps, every=every, seed=seed, quiet=quiet)
    fig, ax = plots.figure(size=(7, 3.8))
    ax.plot(range(len(res["losses"])), res["losses"], color=plots.PALETTE[0])
    ax.set_yscale("log")
    ax.set_xlabel("Adam step")
    ax.set_ylabel("cross-entropy to the target")
    m = res["matched_step"]
    if m is not None:
        ax.axvline(m, color=plots.PALETTE[3], ls="--", lw=1)
        ax.annotate(f"exact match at step {m}", (m, res["losses"][min(m, len(res['losses']) - 1)]),
                    textcoords="offset points", xytext=(6, 14), color=plots.PALETTE[3], fontsize=9)
    ax.set_title(f"Inverting the frozen model: {target!r} ({res['n_tokens']} tokens)")
    outcome = f"exact match after {m} steps." if m is not None else f"no exact match in {steps} steps."
    run.save_figure(fig, "inversion",
                    caption=f"Optimising a (1, {res['n_tokens']}, {model.config.n_embd}) input in place of "
                    f"the token embeddings (Adam lr {lr}) until every position's arg-max is the target; "
                    + outcome,
                    command=_cmd("invert", f"--run {run.path}", f"--target {_q(target)}", f"--lr {lr}"),
                    data={k: v for k, v in res.items() if k != "embeds"})
    run.save_table([{**r, "decoded": repr(r["decoded"])} for r in res["decoded"]], "inversion",
                   caption=f"Greedy decode of the optimised input every {every} steps (target {target!r}).")
    run.update_summary({"inversion_target": target, "inversion_match_step": m,
                        "inversion_final_loss": round(res["losses"][-1], 4)})
    return res


# ----------------------------------------------------------------------------------------------------- demo

def make_figures(run: Run, device: str = "cpu", quiet: bool = True) -> None:
    """Every figure and table of the lab for a trained run."""
    _, tok, model = load_run(run, device)
    fig_loss(run)
    fig_samples(run, model, tok, quiet=True)
    fig_score(run, model, tok)
    fig_attention(run, model, tok)
    fig_inversion(run, model, tok, quiet=quiet)


def demo(root: str | Path = "runs", *, quick: bool = True, device: str = "auto", quiet: bool = False,
         reuse: bool = True) -> list[Run]:
    """Train (or reuse) the lab's run and write every figure.

    quick: the ``mini`` model (4 blocks, 128 wide) with a 1024-token BPE learned on Alice, 350 steps. A BPE of
    1024 tokens puts about 3.5 characters in a token, so 64 tokens of context cover ~220 characters and
    samples are made of real words after a few hundred steps. GPT-2's 50257-way output layer would make each
    step ~17x slower on a CPU (measured, see benchmarks/bench_textgen.py), and characters need many more
    steps before words appear.
    No dropout: 350 steps see the training tokens ~15 times, before overfitting sets in.
    Full: the ``mini`` preset (1024-token BPE, dropout 0.2), 2000 steps.
    """
    cfg = QUICK if quick else PRESETS["mini"]
    name = "alice-mini-bpe-quick" if quick else "alice-mini-bpe"
    run = Run(Path(root) / LAB / name)
    done = False
    if reuse and run.last_checkpoint.exists():
        try:
            done = run.config(TextgenConfig) == cfg
        except Exception:  # an older or broken config: train again
            done = False
    if not done:
        if run.path.exists():
            import shutil

            shutil.rmtree(run.path)
        run = train(cfg, root=root, name=name, device=device, quiet=quiet)
    make_figures(run, "cpu" if device == "auto" else device, quiet=quiet)
    return [run]


# ------------------------------------------------------------------------------------------------------ CLI

def register(sub: argparse._SubParsersAction) -> None:
    from genlab.cli import add_lab_parser, add_run_arg, add_train_args

    v = add_lab_parser(sub, LAB, "GPT on Alice: train, generate, score, attention, invert, figures", TITLE)

    q = v.add_parser("train", help="train a GPT on a corpus")
    add_train_args(q, list(PRESETS))
    q.add_argument("--text", default=None, metavar="PATH", help="train on this UTF-8 text file (corpus=text)")
    q.set_defaults(func=_cmd_train)

    q = v.add_parser("generate", help="continue a prompt (streamed)")
    add_run_arg(q)
    q.add_argument("--prompt", default="Alice was beginning")
    q.add_argument("--max-new-tokens", type=int, default=80)
    q.add_argument("--temperature", type=float, default=0.8)
    q.add_argument("--top-k", type=int, default=None)
    q.add_argument("--top-p", type=float, default=None)
    q.add_argument("--greedy", action="store_true", help="always take the most likely token")
    q.add_argument("--num-samples", type=int, default=1)
    q.set_defaults(func=_cmd_generate)

    q = v.add_parser("score", help="log-probability of a text (sum of per-token values), "
                                   "or a file's perplexity")
    add_run_arg(q)
    q.add_argument("--text", default=None, help="the text to score")
    q.add_argument("--prompt", default="", help="condition on this prompt (not scored)")
    q.add_argument("--file", default=None, metavar="PATH", help="perplexity of a whole text file")
    q.set_defaults(func=_cmd_score)

    q = v.add_parser("attention", help="attention maps for the prediction of the 12th word")
    add_run_arg(q)
    q.add_argument("--prompt", default=ATTENTION_PROMPT)
    q.add_argument("--word", type=int, default=12, help="which word's prediction to show")
    q.set_defaults(func=_cmd_attention)

    q = v.add_parser("invert", help="optimise input embeddings until the model outputs a target sentence")
    add_run_arg(q)
    q.add_argument("--target", default=INVERSION_TARGET)
    q.add_argument("--lr", type=float, default=0.1)
    q.add_argument("--steps", type=int, default=500)
    q.add_argument("--every", type=int, default=5, help="record the greedy decode every N steps")
    q.set_defaults(func=_cmd_invert)

    q = v.add_parser("figures", help="every figure of the lab for a trained run")
    add_run_arg(q)
    q.set_defaults(func=_cmd_figures)


def _cmd_train(a: argparse.Namespace) -> None:
    from genlab.cli import config_from_args

    if a.text:
        a.overrides = ["corpus=text", f"text={a.text}"] + list(a.overrides)
    cfg = config_from_args(TextgenConfig, a, PRESETS)
    run = train(cfg, root=a.run_dir, name=a.name, resume=a.resume, device=a.device, quiet=a.quiet)
    print(run.path)


def _open(a: argparse.Namespace):
    run = Run.open(a.run)
    dev = choose_device(a.device)
    cfg, tok, model = load_run(run, dev)
    return run, tok, model


def _cmd_generate(a: argparse.Namespace) -> None:
    _, tok, model = _open(a)
    if a.max_new_tokens < 1:
        raise ConfigError(f"--max-new-tokens {a.max_new_tokens} must be >= 1")
    seed = a.seed if a.seed is not None else 0
    for i in range(a.num_samples):
        if a.num_samples > 1:
            print(f"--- sample {i + 1}")
        print(a.prompt, end="", flush=True)
        generate(model, tok, a.prompt, a.max_new_tokens, temperature=a.temperature, top_k=a.top_k,
                 top_p=a.top_p, greedy=a.greedy, seed=seed + i,
                 stream=lambda s: print(s, end="", flush=True))
        print()


def _cmd_score(a: argparse.Namespace) -> None:
    run, tok, model = _open(a)
    if a.file:
        res = perplexity_of_file(model, tok, a.file)
        print(f"{a.file}: {res['tokens']} tokens, {res['nll']:.4f} nats/token, "
              f"perplexity {res['perplexity']:.2f}")
        return
    if a.text is None:
        raise ConfigError("give --text \"...\" to score (or --file PATH for a perplexity)")
    res = fig_score(run, model, tok, prompt=a.prompt, text=a.text)
    print(f"context: {res['context']!r}")
    print(f"{'#':>4}  {'token':<16} {'log p':>9} {'p':>9}")
    for r in res["rows"]:
        print(f"{r['i']:>4}  {repr(r['token']):<16} {r['logprob']:>9.4f} {r['prob']:>9.4f}")
    print(f"sum log p = {res['logprob']:.4f}  (p = {res['prob']:.4g}, {res['n_tokens']} tokens, "
          f"perplexity {res['perplexity']:.2f})")


def _cmd_attention(a: argparse.Namespace) -> None:
    run, tok, model = _open(a)
    res = fig_attention(run, model, tok, a.prompt, a.word)
    att = res["att"]
    print(f"sentence: {res['sentence']!r}; predicting word {a.word}: {res['next']!r}")
    for b, name in ((0, "first"), (att.shape[0] - 1, "last")):
        row = att[b, -1]
        top = row.topk(min(3, len(row)))
        pairs = zip(top.values.tolist(), top.indices.tolist())
        tops = ", ".join(f"{res['tokens'][i]!r} {v:.2f}" for v, i in pairs)
        print(f"{name} block: row sum {row.sum():.6f}; most attended: {tops}")
    print(f"figures in {run.figures_dir}")


def _cmd_invert(a: argparse.Namespace) -> None:
    run, tok, model = _open(a)
    res = fig_inversion(run, model, tok, a.target, a.lr, a.steps, a.every, seed=a.seed or 0, quiet=a.quiet)
    for r in res["decoded"]:
        print(f"step {r['step']:>4}  loss {r['loss']:.4f}  {r['correct']}/{res['n_tokens']}  "
              f"{r['decoded']!r}")
    m = res["matched_step"]
    print(f"exact match after {m} Adam steps" if m is not None else f"no exact match in {a.steps} steps")


def _cmd_figures(a: argparse.Namespace) -> None:
    run = Run.open(a.run)
    make_figures(run, str(choose_device(a.device)), quiet=a.quiet)
    print(f"figures in {run.figures_dir}")


def key_metrics(runs: list[Run]) -> list[dict]:
    """Validation loss, inversion and attention checks for the report's front table."""
    rows = []
    for run in runs:
        s = run.read_summary()
        if "val_loss" in s:
            rows.append({"metric": f"validation loss ({s.get('tokenizer')}, vocab {s.get('vocab_size')})",
                         "value": s["val_loss"], "reference": ""})
        if s.get("inversion_match_step") is not None:
            rows.append({"metric": "inversion: Adam steps to an exact match", "value": s["inversion_match_step"],
                         "reference": "79 (GPT-2 small)"})
        if "attention_row_sum_max_error" in s:
            rows.append({"metric": "attention rows: max |sum - 1|", "value": s["attention_row_sum_max_error"],
                         "reference": "0"})
    return rows
