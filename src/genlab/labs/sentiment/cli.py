"""``genlab sentiment <verb>``: train, eval, sweep, explain, predict, figures."""

from __future__ import annotations

import argparse

from genlab.data import reviews as rv
from genlab.errors import ConfigError, choose
from genlab.io import check_path
from genlab.labs.sentiment.config import LAB, PRESETS, SentimentConfig, describe_model, parse_widths, sweep_cells
from genlab.labs.sentiment.core import (
    Sweep,
    load_model,
    open_run,
    predict,
    prepare_data,
    run_data,
    train,
    write_outputs,
)
from genlab.labs.sentiment.experiments import sweep
from genlab.labs.sentiment.variants import verdict, with_epochs
from genlab.nn.recurrent import ACTIVATIONS
from genlab.nn.sentiment_models import MODELS, baseline_scores, prepared_scores
from genlab.runs import Run, cpu_threads, markdown_table
from genlab.sweep import add_backend_arg
from genlab.verbs import (
    add_common_args,
    add_lab_parser,
    add_run_arg,
    add_train_args,
    at_least,
    config_from_args,
    open_run_arg,
)

TITLE = "Sentiment: Elman RNN, GRU, token-wise MLP and restricted self-attention on movie reviews"

_SHORT = (
    ("model", str),
    ("activation", str),
    ("candidate", str),
    ("hidden", int),
    ("layers", int),
    ("window", int),
    ("embeddings", str),
    ("csv", str),
    ("tbptt", int),
    ("steps", int),
    ("lr", float),
    ("dropout", float),
    ("epochs", int),
)


def _add_short(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("shortcuts for --set KEY=VALUE")
    for key, tp in _SHORT:
        g.add_argument(f"--{key}", type=str, default=None, metavar=tp.__name__.upper(), help=f"--set {key}=...")
    g.add_argument("--clip", type=str, default=None, metavar="NORM", help="--set grad_clip=... (gradient clipping)")


def _short_overrides(args: argparse.Namespace) -> list[str]:
    out = [f"{k}={getattr(args, k)}" for k, _ in _SHORT if getattr(args, k, None) is not None]
    if getattr(args, "clip", None) is not None:
        out.append(f"grad_clip={args.clip}")
    if getattr(args, "steps", None) is not None and getattr(args, "epochs", None) is None:
        out.append("epochs=0")  # --steps N means N steps, whatever epochs a preset set
    return out


# the two recurrent activations, easily swapped: given by hand (a flag or --set) for the other model, one would do
# nothing
_ONLY_FOR = {"candidate": ("gru",), "activation": ("rnn",)}


def _check_keys_fit_model(cfg: SentimentConfig, overrides: list[str]) -> None:
    given = {o.split("=", 1)[0].strip() for o in overrides}
    for key, models in _ONLY_FOR.items():
        if key in given and cfg.model not in models:
            raise ConfigError(
                f"{key} shapes the {models[0]} model only, and this run's model is {cfg.model}; drop {key}, or give "
                f"--model {models[0]}" + (" (the Elman RNN's is --activation)" if key == "candidate" else "")
            )


def cmd_train(args: argparse.Namespace) -> int:
    if args.csv is not None:
        check_path(args.csv, "CSV file")
    args.overrides = _short_overrides(args) + list(args.overrides)
    cfg = config_from_args(SentimentConfig, args, PRESETS)
    _check_keys_fit_model(cfg, args.overrides)
    cfg = with_epochs(cfg, prepare_data(cfg))  # a bad CSV fails before a run folder is made
    run = Run.create(LAB, cfg, name=args.name, root=args.run_dir, resume=args.resume)
    train(cfg, run, device=args.device, quiet=args.quiet, resume=args.resume)
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    run, dev = open_run_arg(args, LAB)
    if isinstance(open_run(run), Sweep):
        raise ConfigError(f"{args.run!r} is a sweep; eval one of its cells (folders under {args.run}/stages)")
    model, cfg, vocab = load_model(run, dev)
    if args.csv:
        cfg = cfg.update({"csv": args.csv})
    data = run_data(cfg, vocab)
    with cpu_threads(cfg.threads):
        rows = [
            {
                "model": describe_model(cfg),
                "dataset": data.split.name,
                **{k: round(v, 4) for k, v in prepared_scores(model, data, dev).items()},
            }
        ]
    if args.baseline:
        rows.append(
            {
                "model": "TF-IDF + logistic regression",
                "dataset": data.split.name,
                **{k: round(v, 4) for k, v in baseline_scores(cfg.csv, cfg.n_train).items()},
            }
        )
    print(markdown_table(rows), end="")
    return 0


def _items(text: str | None) -> list[str]:
    return [v.strip() for v in (text or "").split(",") if v.strip()]


def _axis(text: str | None, what: str) -> list[str]:
    """A sweep axis given on the command line: an option given but listing nothing is an error, not the default."""
    items = _items(text)
    if text is not None and not items:
        raise ConfigError(f"--{what} {text!r} lists nothing; give comma-separated values, or leave --{what} out")
    twice = [v for i, v in enumerate(items) if v in items[:i]]
    if twice:
        raise ConfigError(f"--{what} {text!r} lists {twice[0]!r} twice; give each value once")
    return items


def _numbers(text: str | None, what: str, lo: float, hi: float) -> list[float]:
    """The sweep's ``--dropouts`` / ``--lrs``: comma-separated numbers in ``[lo, hi]``."""
    try:
        values = [float(v) for v in _axis(text, what)]
    except ValueError:
        raise ConfigError(
            f"bad --{what} {text!r}; write comma-separated numbers, e.g. --{what} {lo:g},{hi / 2:g}"
        ) from None
    for v in values:
        if not lo <= v <= hi:
            raise ConfigError(f"bad --{what} value {v:g}; each must be between {lo:g} and {hi:g}")
    return values


def cmd_sweep(args: argparse.Namespace) -> int:
    models, acts, cands, widths = (
        _axis(args.models, "models"),
        _axis(args.activations, "activations"),
        _axis(args.candidates, "candidates"),
        _axis(args.widths, "widths"),
    )
    for m in models:
        choose("model", m, MODELS)
    for a in acts + cands:
        choose("activation", a, ACTIVATIONS)
    for w in widths:
        try:
            if min(parse_widths(w)) < 1:
                raise ValueError
        except ValueError:
            raise ConfigError(
                f"bad --widths entry {w!r}; write each MLP shape as widths joined by x, e.g. --widths 64,128x64"
            ) from None
    dropouts, lrs = _numbers(args.dropouts, "dropouts", 0.0, 0.95), _numbers(args.lrs, "lrs", 1e-8, 10.0)
    token = {"mlp", "attention"}
    for axis, given, fits in (("candidates", cands, {"gru"}), ("widths", widths, token), ("dropouts", dropouts, token)):
        if given and not fits & set(models):
            raise ConfigError(
                f"--{axis} {getattr(args, axis)!r} varies only {' and '.join(sorted(fits))}, and --models "
                f"{','.join(models)} has none; add one to --models or drop --{axis}"
            )
    try:
        hiddens = (
            [int(h) for h in args.hidden.split(",")]
            if "," in args.hidden or ":" not in args.hidden
            else list(range(*[int(v) for v in args.hidden.split(":")]))
        )
        layers = [int(v) for v in args.layers.split(",")]
    except ValueError:
        raise ConfigError(
            f"bad --hidden {args.hidden!r} or --layers {args.layers!r}; write e.g. --hidden 64:129:8 "
            f"or --hidden 64,96,128 and --layers 1,2"
        ) from None
    if not hiddens or min(hiddens) < 1 or not layers or min(layers) < 1:
        raise ConfigError("--hidden and --layers need positive integers")
    args.overrides = ([f"steps={args.steps}", "epochs=0"] if args.steps is not None else []) + list(args.overrides)
    if args.csv:
        args.overrides.append(f"csv={args.csv}")
    base = config_from_args(SentimentConfig, args, PRESETS)
    sweep(
        sweep_cells(
            models, acts, hiddens, layers, candidates=cands or ["-"], widths=widths, dropouts=dropouts, lrs=lrs
        ),
        base,
        root=args.run_dir,
        name=args.name,
        jobs=args.jobs,
        quiet=args.quiet,
        backend=args.backend,
    )
    return 0


def explain_table(results: dict[str, dict]) -> str:
    """The per-word table of one review for several models (columns: word, then neg/pos per model)."""
    names = list(results)
    first = results[names[0]]
    head = ["word"] + [f"{n} {c}" for n in names for c in ("neg", "pos", "pos-neg")]
    lines = ["  ".join(f"{h:>14}" for h in head)]
    for i, w in enumerate(first["words"]):
        cells = [w + ("" if first["known"][i] else " (?)")]
        for n in names:
            r = results[n]
            cells += [f"{r['neg'][i]:+.3f}", f"{r['pos'][i]:+.3f}", f"{r['pos'][i] - r['neg'][i]:+.3f}"]
        lines.append("  ".join(f"{c:>14}" for c in cells))
    cells = ["(mean)"]
    for n in names:
        r = results[n]
        cells += [f"{r['score_neg']:+.3f}", f"{r['score_pos']:+.3f}", f"{r['score_pos'] - r['score_neg']:+.3f}"]
    lines.append("  ".join(f"{c:>14}" for c in cells))
    lines += [f"{n}: {verdict(results[n], results[n].get('label'))}" for n in names]
    return "\n".join(lines)


def cmd_explain(args: argparse.Namespace) -> int:
    texts = tuple(args.text) or None  # None: a test review predicted right, one predicted wrong, the examples
    for t in texts or ():
        if not rv.clean(t):
            raise ConfigError(f"review {t!r} has no words after cleaning (letters only); give a review with words")
    opened = open_run(args.run[-1], args.run[:-1], texts=texts)
    for r in opened.runs:
        model = r.config(SentimentConfig).model
        if model not in ("mlp", "attention"):
            raise ConfigError(f"run {str(r.path)!r} is a {model!r} model; explain needs 'mlp' or 'attention'")
    with cpu_threads(opened.threads):
        for res in opened.explained:
            print(f"\nreview: {res[next(iter(res))]['text']!r}")
            print(explain_table(res))
    if not args.no_figures:
        write_outputs(opened, ("explain_words", "attention_weights"))
        print(f"figures in {opened.run.figures_dir}")
    return 0


def cmd_predict(args: argparse.Namespace) -> int:
    run, dev = open_run_arg(args, LAB)  # a bad --run first, as every verb
    texts = (rv.read_review_texts(args.file) if args.file else []) + list(args.text)
    if not texts:
        raise ConfigError("no reviews to score; give them as arguments or with --file FILE (one review per line)")
    for text, (label, p) in zip(texts, predict(run, texts, str(dev))):
        short = " ".join(text.split())
        print(f"{label:<8}  {p:.3f}  {short if len(short) <= 60 else short[:57] + '...'}")
    return 0


def cmd_figures(args: argparse.Namespace) -> int:
    opened = open_run(args.run, args.with_runs or [], bptt=args.bptt)
    if hasattr(opened, "loaded"):
        opened.loaded  # noqa: B018 - load the model first: a damaged checkpoint fails before any figure is redrawn
    write_outputs(opened)
    print(f"figures in {opened.run.figures_dir}")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    verbs = add_lab_parser(sub, LAB, "lab 4: review sentiment with RNN, GRU, token-wise MLP and attention", TITLE)

    t = verbs.add_parser("train", help="train one model (default: GRU on rt)")
    add_train_args(t, list(PRESETS), SentimentConfig)
    _add_short(t)
    t.set_defaults(func=cmd_train)

    e = verbs.add_parser("eval", help="accuracy, F1 and ROC-AUC of a trained run on train and test")
    add_run_arg(e)
    e.add_argument("--csv", default=None, help="score on a Kaggle-format CSV instead of the run's data")
    e.add_argument("--baseline", action="store_true", help="add the TF-IDF + logistic-regression row")
    e.set_defaults(func=cmd_eval)

    s = verbs.add_parser(
        "sweep",
        help="grid of model x activation x hidden x layers (x MLP widths, dropout, lr) in parallel processes",
    )
    add_train_args(s, list(PRESETS), SentimentConfig)
    s.add_argument("--models", default="rnn,gru", help="comma-separated models (default: rnn,gru)")
    s.add_argument("--activations", default="tanh,relu", help="Elman activations (default: tanh,relu)")
    s.add_argument("--hidden", default="64:129:8", help="start:stop:step or a list (default: 64:129:8)")
    s.add_argument("--layers", default="1", help="comma-separated layer counts (default: 1)")
    s.add_argument(
        "--candidates", default=None, help="GRU candidate activations, e.g. tanh,sigmoid,relu,none (default: tanh)"
    )
    s.add_argument(
        "--widths",
        default=None,
        help="MLP shapes for mlp/attention, widths joined by x, e.g. 64,128x64,128x64x32 (replaces --hidden x "
        "--layers for mlp and the MLP's depth for attention)",
    )
    s.add_argument("--dropouts", default=None, help="MLP dropout rates for mlp/attention, e.g. 0,0.3")
    s.add_argument("--lrs", default=None, help="learning rates, e.g. 1e-3,1e-4 (default: the config's lr)")
    s.add_argument("--steps", type=at_least(1), default=None, help="steps per cell (default: the config's)")
    s.add_argument("--csv", default=None, help="a Kaggle-format CSV instead of rt")
    s.add_argument(
        "--jobs", type=at_least(1), default=1, help="parallel processes (default: 1; ray: the local instance's CPUs)"
    )
    add_backend_arg(s)
    s.set_defaults(func=cmd_sweep, name="sweep")

    x = verbs.add_parser("explain", help="per-word sub-scores of mlp / attention runs for reviews")
    x.add_argument(
        "text",
        nargs="*",
        help="reviews to explain (default: one test review the last run predicts right, one it predicts wrong, "
        "with their true labels, and the lab's examples)",
    )
    x.add_argument(
        "--run",
        action="append",
        required=True,
        metavar="DIR",
        help="a trained mlp or attention run (repeatable; figures go into the last)",
    )
    x.add_argument("--no-figures", action="store_true", help="print the tables only")
    add_common_args(x)
    x.set_defaults(func=cmd_explain)

    r = verbs.add_parser(
        "predict",
        help="label and P(positive) of reviews under a trained run's model (rnn, gru, mlp or attention)",
        description="One line per review: the label (positive from P >= 0.5), P(positive) and the review's first "
        "60 characters.",
    )
    add_run_arg(r)
    r.add_argument("text", nargs="*", help="reviews to score")
    r.add_argument(
        "--file",
        default=None,
        metavar="FILE",
        help="more reviews: one per line, or a CSV with a 'text' or 'review' column",
    )
    r.set_defaults(func=cmd_predict)

    f = verbs.add_parser("figures", help="redraw every figure and table of a run (or a sweep)")
    add_run_arg(f)
    f.add_argument(
        "--with",
        dest="with_runs",
        action="append",
        metavar="DIR",
        help="another run for the outputs spanning several (comparison, BPTT after training, explain)",
    )
    f.add_argument("--bptt", action="store_true", help="also draw the BPTT gradient figure for a non-recurrent run")
    f.set_defaults(func=cmd_figures)
