"""What one does with a trained GPT (:mod:`genlab.nn.gpt`): generate, score, look at attention, invert.

Every function takes the model and a tokenizer (anything with ``encode(str) -> ids``, ``decode(ids) -> str``
and ``piece(id) -> str``, e.g. those of :mod:`genlab.data.text`) and works in token ids underneath:

* :func:`generate`           continue a prompt (greedy, temperature, top-k, top-p), optionally streamed;
* :func:`token_logprobs`     log p(token | everything before it), in overlapping windows for long texts;
* :func:`score`              log p(text | prompt) as the sum of per-token log-probabilities;
* :func:`perplexity_of_file` exp(mean negative log-likelihood) of a text file;
* :func:`attention_at_word`  each block's attention (averaged over heads) of the n-th word, predicting the next;
* :func:`top_words`          the most-attended words (a word's attention is the sum over its tokens);
* :func:`invert`             optimise input embeddings (model frozen) until the greedy decode is a target.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Protocol

import torch

from genlab.errors import ConfigError
from genlab.nn.gpt import GPT


class TokenizerLike(Protocol):
    def encode(self, text: str) -> list[int]: ...

    def decode(self, ids) -> str: ...

    def piece(self, i: int) -> str: ...


def encode_nonempty(tok: TokenizerLike, text: str, what: str = "prompt") -> list[int]:
    """``tok.encode(text)``; an empty text is a one-line error naming ``what`` it was."""
    if not text or not text.strip():
        raise ConfigError(f'empty {what}; give some text, e.g. --prompt "Alice was"')
    return tok.encode(text)


def _device(model: GPT) -> torch.device:
    return next(model.parameters()).device


# ------------------------------------------------------------------------------------------------ generation


def generate(
    model: GPT,
    tok: TokenizerLike,
    prompt: str,
    max_new_tokens: int = 60,
    *,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
    greedy: bool = False,
    seed: int = 0,
    stream: Callable[[str], Any] | None = None,
) -> str:
    """The continuation of ``prompt``; ``stream(piece)`` is called with each new piece of text as it comes."""
    if temperature < 0:
        raise ConfigError(f"temperature {temperature} must be >= 0 (0 = greedy)")
    if top_p is not None and not 0 < top_p <= 1:
        raise ConfigError(f"top_p {top_p} must be in (0, 1]")
    ids = encode_nonempty(tok, prompt)[-model.config.block_size :]
    g = torch.Generator().manual_seed(seed)
    new: list[int] = []
    shown = ""
    for t in model.stream(
        torch.tensor([ids], device=_device(model)),
        max_new_tokens,
        temperature=temperature,
        top_k=top_k,
        top_p=top_p,
        greedy=greedy,
        generator=g,
    ):
        new.append(t)
        if stream is not None:
            text = tok.decode(new)
            if not text.endswith("\ufffd"):  # a multi-byte character may span tokens: wait for its end
                stream(text[len(shown) :])
                shown = text
    text = tok.decode(new)
    if stream is not None and len(text) > len(shown):  # what was held back at the end (a broken character)
        stream(text[len(shown) :])
    return text


# --------------------------------------------------------------------------------------------------- scoring


@torch.no_grad()
def token_logprobs(model: GPT, ids: list[int], start: int = 1) -> torch.Tensor:
    """log p(ids[j] | ids[:j]) for j = start .. len(ids)-1, each with up to ``block_size`` tokens of context.

    Texts longer than the block are scored in windows that overlap by half a block; every token is scored in
    the first window that holds it, where it has the most context.
    """
    B = model.config.block_size
    n = len(ids)
    out = torch.full((n,), float("nan"))
    stride = max(1, B // 2)
    t = torch.tensor(ids, device=_device(model))
    b = 0
    while True:
        x = t[b : b + B]
        y = t[b + 1 : b + B + 1]
        if len(y) == 0:
            break
        logits, _ = model(x[None, : len(y)])
        lp = logits[0].float().log_softmax(-1).gather(1, y[:, None])[:, 0].cpu()
        pos = torch.arange(b + 1, b + 1 + len(y))
        fresh = torch.isnan(out[pos])
        out[pos[fresh]] = lp[fresh]
        if b + B + 1 >= n:
            break
        b += stride
    return out[start:]


def score(model: GPT, tok: TokenizerLike, text: str, prompt: str = "") -> dict[str, Any]:
    """log p(text | prompt) as the sum of per-token log-probabilities, with the per-token rows.

    Without a prompt the text's first token is the context (it is not scored).
    """
    body = encode_nonempty(tok, text, "text")
    ctx = tok.encode(prompt) if prompt else []
    ids = ctx + body
    start = max(1, len(ctx))
    lps = token_logprobs(model, ids, start)
    rows = [
        {"i": j, "token": tok.piece(ids[j]), "logprob": float(lp), "prob": math.exp(float(lp))}
        for j, lp in zip(range(start, len(ids)), lps)
    ]
    total = float(sum(r["logprob"] for r in rows))
    return {
        "rows": rows,
        "logprob": total,
        "prob": math.exp(total),
        "n_tokens": len(rows),
        "perplexity": math.exp(-total / max(1, len(rows))),
        "context": tok.decode(ids[:start]),
    }


def perplexity_of_file(model: GPT, tok: TokenizerLike, path: str | Path) -> dict[str, float]:
    """Tokens, mean negative log-likelihood (nats/token) and perplexity of a UTF-8 text file."""
    from genlab.io import check_path

    text = check_path(path).read_text(encoding="utf-8", errors="replace")
    ids = encode_nonempty(tok, text, f"file {str(path)!r}")
    if len(ids) < 2:
        raise ConfigError(f"file {str(path)!r} has fewer than 2 tokens; nothing to score")
    lps = token_logprobs(model, ids, 1)
    nll = float(-lps.mean())
    return {"tokens": len(lps), "nll": nll, "perplexity": math.exp(nll)}


# ------------------------------------------------------------------------------------------------- attention


@torch.no_grad()
def attention_at_word(
    model: GPT, tok: TokenizerLike, prompt: str, word: int = 11, max_new_tokens: int = 40
) -> dict[str, Any]:
    """Each block's attention (averaged over heads) of word ``word`` as it predicts word ``word + 1``.

    Generates greedily from ``prompt`` until word ``word + 1`` starts. ``att[b]`` is block b's attention
    (T x T) at the step that predicted the first token of word ``word + 1``; its last row belongs to the
    last token of word ``word`` (``query``), the report's "attention of the 11th word" for ``word=11``.
    """
    ids = encode_nonempty(tok, prompt)
    if len(prompt.split()) > word:
        raise ConfigError(
            f"the prompt already has {len(prompt.split())} words; give at most {word} so that word {word + 1} "
            "is generated"
        )
    dev = _device(model)
    context = None
    for _ in range(max_new_tokens):
        x = torch.tensor([ids[-model.config.block_size :]], device=dev)
        logits, _, atts = model(x, return_attn=True)
        nxt = int(logits[0, -1].argmax())
        ids.append(nxt)
        words = tok.decode(ids).split()
        if context is None and len(words) > word:
            context = {"ids": x[0].tolist(), "att": [a[0].mean(0).cpu() for a in atts], "next": nxt}
        if context is not None and len(words) > word + 1:  # finish word + 1, stop when the one after starts
            ids.pop()
            break
    if context is None:
        raise ConfigError(f"word {word + 1} did not appear within {max_new_tokens} generated tokens")
    att = torch.stack(context["att"])  # (blocks, T, T)
    return {
        "tokens": [tok.piece(i) for i in context["ids"]],
        "att": att,
        "word": word,
        "query": tok.piece(context["ids"][-1]),
        "next": tok.piece(context["next"]),
        "sentence": tok.decode(ids),
        "row_sums": att.sum(-1),
    }


def attention_by_word(pieces: Sequence[str], weights: Sequence[float]) -> list[tuple[str, float]]:
    """Token pieces joined into words (a word starts at a piece after whitespace), each with its summed weight.

    Whitespace-only pieces join the word that follows them (trailing ones the word before); the words are
    returned stripped, in text order.
    """
    words: list[list] = []
    for piece, w in zip(pieces, weights, strict=True):
        starts = not words or piece[:1].isspace() or words[-1][0][-1:].isspace()
        if starts and not (words and not words[-1][0].strip()):
            words.append([piece, float(w)])
        else:
            words[-1][0] += piece
            words[-1][1] += float(w)
    if len(words) > 1 and not words[-1][0].strip():
        text, w = words.pop()
        words[-1][0] += text
        words[-1][1] += w
    return [(text.strip(), w) for text, w in words]


def top_words(pieces: Sequence[str], weights: Sequence[float], k: int = 2) -> list[tuple[str, float]]:
    """The ``k`` words with the most attention (summed over their tokens), most attended first."""
    if k < 1:
        raise ConfigError(f"k {k} must be >= 1")
    return sorted(attention_by_word(pieces, weights), key=lambda pw: -pw[1])[:k]


# ------------------------------------------------------------------------------------------------- inversion


def invert(
    model: GPT,
    tok: TokenizerLike,
    target: str,
    *,
    lr: float = 0.1,
    steps: int = 500,
    every: int = 5,
    seed: int = 0,
    stop_at_match: bool = True,
    quiet: bool = True,
) -> dict[str, Any]:
    """Find input embeddings E (1, T, d) so that the frozen model's greedy output is the target.

    Position t's arg-max must be target token t (all positions at once). E starts as small random vectors
    and is optimised with Adam on the cross-entropy to the target; the model's weights never change.
    """
    from tqdm.auto import tqdm

    ids = encode_nonempty(tok, target, "target")
    B = model.config.block_size
    if len(ids) > B:
        raise ConfigError(f"target has {len(ids)} tokens, more than the model's block_size {B}; shorten it")
    dev = _device(model)
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
            decoded.append(
                {
                    "step": step - 1,
                    "loss": loss.item(),
                    "decoded": tok.decode(pred.tolist()),
                    "correct": int((pred == y[0]).sum()),
                }
            )
        if hit and matched is None:
            matched = step - 1  # the decode before this step's update already matches
            if stop_at_match:
                break
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return {
        "target": target,
        "n_tokens": len(ids),
        "matched_step": matched,
        "losses": losses,
        "decoded": decoded,
        "embeds": emb.detach().cpu(),
    }
