"""``genlab textgen <verb>``: train, generate, score, attention, invert, figures."""

from __future__ import annotations

import argparse
from typing import Any

from genlab.errors import ConfigError
from genlab.labs import draw, draw_all, registered
from genlab.labs.textgen.config import ATTENTION_PROMPT, INVERSION_TARGET, PRESETS, REPORT_SENTENCES, TextgenConfig
from genlab.labs.textgen.core import LAB, Opened, open_run, train
from genlab.nn.gpt_tools import generate, perplexity_of_file, top_words
from genlab.runs import choose_device
from genlab.verbs import add_lab_parser, add_run_arg, add_train_args, at_least, config_from_args, number, open_run_arg

TITLE = "GPT on Alice in Wonderland: train, generate, score, attention, inversion"


def register(sub: argparse._SubParsersAction) -> None:
    v = add_lab_parser(sub, LAB, "GPT on Alice: train, generate, score, attention, invert, figures", TITLE)

    q = v.add_parser("train", help="train a GPT on a corpus")
    add_train_args(q, list(PRESETS), TextgenConfig)
    q.add_argument("--text", default=None, metavar="PATH", help="train on this UTF-8 text file (corpus=text)")
    q.set_defaults(func=cmd_train)

    q = v.add_parser("generate", help="continue a prompt (streamed)")
    add_run_arg(q)
    q.add_argument("--prompt", default="Alice was beginning")
    q.add_argument("--max-new-tokens", type=at_least(1), default=80)
    q.add_argument("--temperature", type=number(0.0), default=0.8)
    q.add_argument("--top-k", type=at_least(1), default=None)
    q.add_argument("--top-p", type=number(high=1.0, above=0.0), default=None)
    q.add_argument("--greedy", action="store_true", help="always take the most likely token")
    q.add_argument("--num-samples", type=at_least(1), default=1)
    q.set_defaults(func=cmd_generate)

    q = v.add_parser("score", help="log-probability of a text (sum of per-token values), or a file's perplexity")
    add_run_arg(q)
    what = q.add_mutually_exclusive_group()  # one of the three: giving two would silently ignore one
    what.add_argument("--text", default=None, help="the text to score")
    q.add_argument("--prompt", default="", help="condition on this prompt (not scored; with --text only)")
    what.add_argument("--file", default=None, metavar="PATH", help="perplexity of a whole text file")
    what.add_argument(
        "--report",
        action="store_true",
        help="score the report's own sentences (its attention prompt and inversion target) into table score_report",
    )
    q.set_defaults(func=cmd_score)

    q = v.add_parser("attention", help="the 11th word's attention as it predicts the 12th (the report's case)")
    add_run_arg(q)
    q.add_argument("--prompt", default=ATTENTION_PROMPT, help="generation starts here (at most WORD words)")
    q.add_argument(
        "--word",
        type=at_least(1),
        default=11,
        help="whose attention to show: word N's last token, predicting word N+1 (default 11, the report's case)",
    )
    q.set_defaults(func=cmd_attention)

    q = v.add_parser("invert", help="optimise input embeddings until the model outputs a target sentence")
    add_run_arg(q)
    q.add_argument("--target", default=INVERSION_TARGET)
    q.add_argument("--lr", type=number(above=0.0), default=0.1)
    q.add_argument("--steps", type=at_least(1), default=500)
    q.add_argument("--every", type=at_least(1), default=5, help="record the greedy decode every N steps")
    q.set_defaults(func=cmd_invert)

    q = v.add_parser("figures", help="every figure of the lab for a trained run")
    add_run_arg(q)
    q.set_defaults(func=cmd_figures)


def _open(args: argparse.Namespace) -> Opened:
    run, device = open_run_arg(args, LAB)
    return open_run(run, device, quiet=args.quiet)


def _draw(opened: Opened, names: set[str], command: str, **kwargs: Any) -> None:
    """Draw the registered outputs ``names`` with a verb's options, all under that verb's ``command``."""
    for spec in registered(LAB):
        if spec.name in names:
            draw(spec, opened, opened.run, command=command, **kwargs)


def cmd_train(args: argparse.Namespace) -> int:
    if args.text:
        args.overrides = ["corpus=text", f"text={args.text}"] + list(args.overrides)
    cfg = config_from_args(TextgenConfig, args, PRESETS)
    run = train(cfg, root=args.run_dir, name=args.name, resume=args.resume, device=args.device, quiet=args.quiet)
    draw_all(LAB, open_run(run, choose_device(args.device)), run, only={"loss", "samples"})
    print(run.path)
    return 0


def cmd_generate(args: argparse.Namespace) -> int:
    opened = _open(args)
    if args.max_new_tokens < 1:
        raise ConfigError(f"--max-new-tokens {args.max_new_tokens} must be >= 1")
    seed = args.seed if args.seed is not None else 0
    for i in range(args.num_samples):
        if args.num_samples > 1:
            print(f"--- sample {i + 1}")
        print(args.prompt, end="", flush=True)
        generate(
            opened.model,
            opened.tok,
            args.prompt,
            args.max_new_tokens,
            temperature=args.temperature,
            top_k=args.top_k,
            top_p=args.top_p,
            greedy=args.greedy,
            seed=seed + i,
            stream=lambda s: print(s, end="", flush=True),
        )
        print()
    return 0


def cmd_score(args: argparse.Namespace) -> int:
    if args.prompt and (args.file or args.report):
        raise ConfigError("--prompt conditions --text only; drop --prompt, or score --text with it")
    opened = _open(args)
    if args.file:
        res = perplexity_of_file(opened.model, opened.tok, args.file)
        print(f"{args.file}: {res['tokens']} tokens, {res['nll']:.4f} nats/token, perplexity {res['perplexity']:.2f}")
        return 0
    if args.report:
        _draw(opened, {"score_report"}, opened.run.command("score", report=True))
        for text in REPORT_SENTENCES:
            res = opened.scored("", text=text)
            lp, p, n = res["logprob"], res["prob"], res["n_tokens"]
            print(f"{text!r}: sum log p = {lp:.4f} (p = {p:.4g}, {n} tokens scored)")
        print(f"table in {opened.run.tables_dir / 'score_report.csv'}")
        return 0
    if args.text is None:
        raise ConfigError('give --text "..." to score (or --file PATH for a perplexity, or --report)')
    _draw(
        opened,
        {"score"},
        opened.run.command("score", prompt=args.prompt or None, text=args.text),
        prompt=args.prompt,
        text=args.text,
    )
    res = opened.scored(args.prompt, text=args.text)
    print(f"context: {res['context']!r}")
    print(f"{'#':>4}  {'token':<16} {'log p':>9} {'p':>9}")
    for r in res["rows"]:
        print(f"{r['i']:>4}  {repr(r['token']):<16} {r['logprob']:>9.4f} {r['prob']:>9.4f}")
    print(
        f"sum log p = {res['logprob']:.4f}  (p = {res['prob']:.4g}, {res['n_tokens']} tokens, "
        f"perplexity {res['perplexity']:.2f})"
    )
    return 0


def cmd_attention(args: argparse.Namespace) -> int:
    words = len(args.prompt.split())  # word N + 1 must start within the 40 tokens attention generates
    if words > args.word:
        raise ConfigError(f"--prompt has {words} words, more than --word {args.word}; give --word {words} or more")
    if args.word > words + 39:
        reach = words + 39
        raise ConfigError(f"--word {args.word} is out of reach of a {words}-word --prompt; give --word {reach} or less")
    opened = _open(args)
    _draw(
        opened,
        {s.name for s in registered(LAB) if s.verb == "attention"},
        opened.run.command("attention", prompt=args.prompt, word=args.word),
        prompt=args.prompt,
        word=args.word,
    )
    res = opened.attention(args.prompt, args.word)
    att = res["att"]
    print(
        f"sentence: {res['sentence']!r}; word {args.word} ends in {res['query']!r}, predicting word "
        f"{args.word + 1}: {res['next']!r}"
    )
    for b, name in ((0, "first"), (att.shape[0] - 1, "last")):
        row = att[b, -1]
        tops = ", ".join(f"{w!r} {v:.3f}" for w, v in top_words(res["tokens"], row, 2))
        print(f"{name} block: row sum {row.sum():.6f}; top-2 words: {tops}")
    print(f"figures in {opened.run.figures_dir}")
    return 0


def cmd_invert(args: argparse.Namespace) -> int:
    opened = _open(args)
    kw = dict(target=args.target, lr=args.lr, steps=args.steps, every=args.every)
    _draw(opened, {"inversion"}, opened.run.command("invert", **kw, seed=args.seed), **kw, seed=args.seed or 0)
    res = opened.inversion(**kw, seed=args.seed or 0)
    for r in res["decoded"]:
        print(f"step {r['step']:>4}  loss {r['loss']:.4f}  {r['correct']}/{res['n_tokens']}  {r['decoded']!r}")
    m = res["matched_step"]
    print(f"exact match after {m} Adam steps" if m is not None else f"no exact match in {args.steps} steps")
    return 0


def cmd_figures(args: argparse.Namespace) -> int:
    opened = _open(args)
    draw_all(LAB, opened, opened.run)
    print(f"figures in {opened.run.figures_dir}")
    return 0
