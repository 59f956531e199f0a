"""Every figure and table of the textgen lab, one registered function each (``fn(opened, **options)``)."""

from __future__ import annotations

import textwrap
import warnings
from collections.abc import Sequence

import numpy as np

from genlab import plots
from genlab.labs import Drawn, figure, table
from genlab.labs.textgen.config import ATTENTION_PROMPT, INVERSION_TARGET, REPORT_SENTENCES, SAMPLE_PROMPTS
from genlab.labs.textgen.core import Opened
from genlab.nn.gpt_tools import top_words

# Samples of an untrained model may hold characters the monospace font lacks; the figure still renders.
warnings.filterwarnings("ignore", message=r"Glyph \d+ .* missing from font")


@figure("loss")
def fig_loss(opened: Opened) -> Drawn:
    metrics = opened.run.read_metrics()
    fig = plots.loss_curves(
        metrics,
        ["loss", "val_loss"],
        title="GPT training: cross-entropy per token",
        names={"loss": "train (each step's batch)", "val_loss": "validation (last 10%)"},
    )
    ax = fig.axes[0]
    ax.set_ylabel("cross-entropy (nats / token)")
    val = [(r["step"], r["val_loss"]) for r in metrics if "val_loss" in r]
    if val:
        ax.plot(*zip(*val), "o", color=plots.PALETTE[1], markersize=3)
        ax.annotate(f"val {val[-1][1]:.3f}", val[-1], textcoords="offset points", xytext=(-30, 8), fontsize=8)
    return Drawn(
        fig,
        "Training loss (each step's batch, smoothed) and validation loss (last 10% of the text) per token.",
        data={"val": val},
    )


# ------------------------------------------------------------------------------------------------ samples


@figure("samples")
def fig_samples(opened: Opened, prompts: Sequence[str] = SAMPLE_PROMPTS, n_tokens: int = 48) -> Drawn:
    rows = opened.samples(prompts, n_tokens)
    fig, ax = plots.figure(size=(10, 0.9 * len(rows) + 0.6))
    ax.axis("off")
    y = 1.0
    for r in rows:
        body = textwrap.fill((r["prompt"] + r["text"]).replace("\n", " "), 120)
        ax.text(0, y, f"[{r['decoding']}]", fontsize=8, color=plots.PALETTE[3], va="top", transform=ax.transAxes)
        ax.text(0, y - 0.025, body, fontsize=8.5, va="top", family="monospace", transform=ax.transAxes)
        y -= 1.0 / len(rows)
    ax.set_title("Samples (prompt + continuation)")
    return Drawn(fig, "Greedy and sampled continuations (T=0.8, top-k 40) of three prompts.", data={"rows": rows})


@table("samples")
def table_samples(opened: Opened, prompts: Sequence[str] = SAMPLE_PROMPTS, n_tokens: int = 48) -> Drawn:
    rows = opened.samples(prompts, n_tokens)
    return Drawn(
        rows=[{**r, "text": r["text"].replace("\n", " ")} for r in rows],
        caption="Continuations of three prompts: greedy and sampled.",
    )


# -------------------------------------------------------------------------------------------------- score


@figure("score")
def fig_score(
    opened: Opened, prompt: str = "Alice", n_tokens: int = 15, seed: int = 0, text: str | None = None
) -> Drawn:
    """A sampled sentence (or ``text``) and its log-probability as the sum of per-token values."""
    res = opened.scored(prompt, n_tokens, seed, text)
    rows = res["rows"]
    fig, ax = plots.figure(size=(max(6, 0.45 * len(rows) + 2), 3.6))
    ax.bar(range(len(rows)), [r["logprob"] for r in rows], color=plots.PALETTE[0])
    ax.set_xticks(
        range(len(rows)),
        [repr(r["token"])[1:-1] for r in rows],
        rotation=60,
        ha="right",
        family="monospace",
        fontsize=8,
    )
    ax.set_ylabel("log p(token | context)")
    ax.set_title(f"log p = {res['logprob']:.2f} (p = {res['prob']:.3g}) over {len(rows)} tokens")
    ax.set_xlabel(textwrap.shorten(repr(prompt + res["text"]), 110), family="monospace", fontsize=8)
    numbers = {k: res[k] for k in ("logprob", "prob", "n_tokens")}
    return Drawn(
        fig,
        "Per-token log-probabilities of a sampled continuation; the title's total is their sum.",
        data={"prompt": prompt, "text": res["text"], **numbers, "tokens": rows},
        summary={"score_logprob": round(res["logprob"], 3), "score_prob": res["prob"], "score_tokens": res["n_tokens"]},
    )


@table("score")
def table_score(
    opened: Opened, prompt: str = "Alice", n_tokens: int = 15, seed: int = 0, text: str | None = None
) -> Drawn:
    res = opened.scored(prompt, n_tokens, seed, text)
    rows = [{**r, "token": repr(r["token"])} for r in res["rows"]]
    rows.append({"i": "sum", "token": "", "logprob": res["logprob"], "prob": res["prob"]})
    return Drawn(rows=rows, caption=f"log p(continuation | {prompt!r}) = sum of per-token log-probabilities.")


@table("score_report", verb="score")
def table_score_report(opened: Opened, sentences: Sequence[str] = REPORT_SENTENCES) -> Drawn:
    """The report's own sentences scored: log p(tokens 2..n | token 1), the sum of per-token log-probabilities."""
    rows = []
    for text in sentences:
        res = opened.scored("", text=text)
        rows.append(
            {
                "sentence": text,
                "tokens_scored": res["n_tokens"],
                "logprob": round(res["logprob"], 4),
                "prob": res["prob"],
                "nats_per_token": round(-res["logprob"] / max(1, res["n_tokens"]), 4),
            }
        )
    return Drawn(
        rows=rows,
        caption="The report's sentences (its attention prompt and inversion target) scored by this model: log p "
        "of every token after the first, given the tokens before it, summed.",
        summary={"score_report_sentence_logprob": rows[0]["logprob"]},
    )


# ---------------------------------------------------------------------------------------------- attention


def _attention_drawable(opened: Opened) -> bool:
    """Whether the default attention can be drawn; when it cannot (a barely trained model that never reaches word
    12, e.g. a report run cut early), ``figures`` and the demo skip the attention outputs and say why in the
    summary, while the ``attention`` verb reports the one-line error."""
    why = opened.attention_error()
    if why is not None:
        opened.run.update_summary({"attention_not_drawn": why})
    return why is None


def _attention(opened: Opened, prompt: str, word: int) -> tuple[dict, np.ndarray, list[str], str]:
    """The attention result, its (blocks, T, T) array, the tokens as tick labels, and the shared caption."""
    res = opened.attention(prompt, word)
    caption = (
        f"The attention of word {word} (its last token {res['query']!r}, the last of {len(res['tokens'])} tokens) "
        f"as the model predicts word {word + 1} ({res['next']!r}); sentence: {res['sentence']!r}. Attention is "
        "averaged over heads."
    )
    return res, res["att"].numpy(), [repr(t)[1:-1] for t in res["tokens"]], caption


@figure("attention_heatmaps", verb="attention", when=_attention_drawable)
def fig_attention_heatmaps(opened: Opened, prompt: str = ATTENTION_PROMPT, word: int = 11) -> Drawn:
    """The first and last block's attention matrices; the last row predicts the word."""
    res, att, labels, caption = _attention(opened, prompt, word)
    L, T = att.shape[0], len(labels)
    fig, axes = plots.figure(1, 2, size=(13, 5.8), layout="constrained")
    for ax, b, name in ((axes[0], 0, "first"), (axes[1], L - 1, "last")):
        plots.attention_heatmap(ax, att[b], labels, title=f"{name} block (block {b + 1} of {L})")
        ax.axhline(T - 1.5, color="cyan", lw=0.8)
    fig.suptitle(f"Causal self-attention, averaged over heads (bottom row: word {word}, predicting {res['next']!r})")
    return Drawn(
        fig,
        caption + " Rows are queries; the last row (below the cyan line) is the prediction of the next word.",
        data={"tokens": res["tokens"], "first": att[0].tolist(), "last": att[-1].tolist()},
    )


@figure("attention_tokens", verb="attention", when=_attention_drawable)
def fig_attention_tokens(opened: Opened, prompt: str = ATTENTION_PROMPT, word: int = 11) -> Drawn:
    """The tokens painted by the attention the last position gives them, first and last block."""
    res, att, _, caption = _attention(opened, prompt, word)
    fig, axes = plots.figure(2, 1, size=(10, 4.2))
    for ax, b, name in ((axes[0], 0, "First"), (axes[1], len(att) - 1, "Last")):
        w = att[b, -1]
        plots.paint_tokens(
            ax,
            res["tokens"],
            w,
            title=f"{name} block: attention of word {word} (sum = {w.sum():.4f}), predicting {res['next']!r}",
        )
    return Drawn(
        fig,
        caption + " Each token is painted by the attention the last position gives it; the sum over tokens is 1.",
        data={
            "tokens": res["tokens"],
            "first": att[0, -1].tolist(),
            "last": att[-1, -1].tolist(),
            "first_sum": float(att[0, -1].sum()),
            "last_sum": float(att[-1, -1].sum()),
        },
    )


@figure("attention_blocks", verb="attention", when=_attention_drawable)
def fig_attention_blocks(opened: Opened, prompt: str = ATTENTION_PROMPT, word: int = 11) -> Drawn:
    """How attention spreads, block by block: the last row of each block, and its entropy."""
    res, att, labels, caption = _attention(opened, prompt, word)
    L, T = att.shape[0], len(labels)
    fig, axes = plots.figure(1, 2, size=(12, 0.35 * L + 3), gridspec_kw={"width_ratios": [3, 1]})
    last_rows = att[:, -1, :]
    plots.attention_heatmap(
        axes[0],
        last_rows,
        labels,
        [f"block {b + 1}" for b in range(L)],
        title=f"Attention of word {word}, per block (predicting {res['next']!r})",
    )
    axes[0].set_ylabel("")
    entropy = -(last_rows * np.log(np.clip(last_rows, 1e-12, None))).sum(-1)
    axes[1].barh(range(L), np.exp(entropy), color=plots.PALETTE[2])
    axes[1].invert_yaxis()
    axes[1].set_yticks(range(L), [f"{b + 1}" for b in range(L)])
    axes[1].set_xlabel("effective tokens attended\nexp(entropy)")
    axes[1].set_title("Spread")
    row_sums = res["row_sums"].numpy()
    return Drawn(
        fig,
        caption + " Left: each block's attention from the last position. Right: exp(entropy), the "
        f"effective number of tokens attended (1 = one token, {T} = uniform). Every row of every block "
        f"sums to 1 (max |sum-1| = {np.abs(row_sums - 1).max():.1e}).",
        data={
            "tokens": res["tokens"],
            "last_rows": last_rows.tolist(),
            "effective_tokens": np.exp(entropy),
            "row_sums": row_sums.tolist(),
        },
    )


@figure("attention_top_words", verb="attention", when=_attention_drawable)
def fig_attention_top_words(opened: Opened, prompt: str = ATTENTION_PROMPT, word: int = 11, k: int = 2) -> Drawn:
    """The ``k`` words that word ``word`` attends to most, in the first and the last block (bars)."""
    res, att, _, caption = _attention(opened, prompt, word)
    blocks = ((0, "first"), (len(att) - 1, "last"))
    tops = {name: top_words(res["tokens"], att[b, -1], k) for b, name in blocks}
    fig, axes = plots.figure(1, 2, size=(10, 3.6), sharey=True, layout="constrained")
    for ax, (b, name), color in zip(axes, blocks, (plots.PALETTE[0], plots.PALETTE[1])):
        words, weights = zip(*tops[name])
        bars = ax.bar(range(len(words)), weights, color=color)
        ax.bar_label(bars, fmt="%.3f", fontsize=9)
        ax.set_xticks(range(len(words)), [repr(w) for w in words], family="monospace")
        ax.set_title(f"{name} block (block {b + 1} of {len(att)})")
        ax.set_ylim(0, 1.12)
    axes[0].set_ylabel(f"attention of word {word}")
    fig.suptitle(f"The {k} words most attended by word {word} (query {res['query']!r}), predicting {res['next']!r}")
    summary = {f"attention_top{k}_{n}": ", ".join(f"{w!r} {v:.3f}" for w, v in t) for n, t in tops.items()}
    return Drawn(
        fig,
        caption + f" The {k} words with the most attention; a word's attention is the sum over its tokens.",
        data={n: [{"word": w, "attention": v} for w, v in t] for n, t in tops.items()},
        summary=summary,
    )


@table("attention", verb="attention", when=_attention_drawable)
def table_attention(opened: Opened, prompt: str = ATTENTION_PROMPT, word: int = 11) -> Drawn:
    res, att, _, caption = _attention(opened, prompt, word)
    rows = [
        {"token": repr(t), "first_block": float(att[0, -1, i]), "last_block": float(att[-1, -1, i])}
        for i, t in enumerate(res["tokens"])
    ]
    rows.append({"token": "sum", "first_block": float(att[0, -1].sum()), "last_block": float(att[-1, -1].sum())})
    return Drawn(
        rows=rows,
        caption=caption,
        summary={
            "attention_sentence": res["sentence"],
            "attention_next": res["next"],
            "attention_row_sum_max_error": float(np.abs(res["row_sums"].numpy() - 1).max()),
        },
    )


# ---------------------------------------------------------------------------------------------- inversion


@figure("inversion", verb="invert")
def fig_inversion(
    opened: Opened, target: str = INVERSION_TARGET, lr: float = 0.1, steps: int = 500, every: int = 5, seed: int = 0
) -> Drawn:
    """The cross-entropy to the target while the input embeddings are optimised (the model frozen)."""
    res = opened.inversion(target, lr, steps, every, seed)
    fig, ax = plots.figure(size=(7, 3.8))
    ax.plot(range(len(res["losses"])), res["losses"], color=plots.PALETTE[0])
    ax.set_yscale("log")
    ax.set_xlabel("Adam step")
    ax.set_ylabel("cross-entropy to the target")
    m = res["matched_step"]
    if m is not None:
        ax.axvline(m, color=plots.PALETTE[3], ls="--", lw=1)
        ax.annotate(
            f"exact match at step {m}",
            (m, res["losses"][min(m, len(res["losses"]) - 1)]),
            textcoords="offset points",
            xytext=(6, 14),
            color=plots.PALETTE[3],
            fontsize=9,
        )
    ax.set_title(f"Inverting the frozen model: {target!r} ({res['n_tokens']} tokens)")
    outcome = f"exact match after {m} steps." if m is not None else f"no exact match in {steps} steps."
    return Drawn(
        fig,
        f"Optimising a (1, {res['n_tokens']}, {opened.model.config.n_embd}) input in place of the "
        f"token embeddings (Adam lr {lr}) until every position's arg-max is the target; " + outcome,
        data={k: v for k, v in res.items() if k != "embeds"},
        summary={
            "inversion_target": target,
            "inversion_match_step": m,
            "inversion_final_loss": round(res["losses"][-1], 4),
        },
    )


@table("inversion", verb="invert")
def table_inversion(
    opened: Opened, target: str = INVERSION_TARGET, lr: float = 0.1, steps: int = 500, every: int = 5, seed: int = 0
) -> Drawn:
    res = opened.inversion(target, lr, steps, every, seed)
    return Drawn(
        rows=[{**r, "decoded": repr(r["decoded"])} for r in res["decoded"]],
        caption=f"Greedy decode of the optimised input every {every} steps (target {target!r}).",
    )
