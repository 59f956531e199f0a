"""Which changes pay on the rt snippets: the lab's own models trained with one change after another, every run
selected on a validation split carved from the training set (10%, stratified, fixed; ``early_stop``: the
weights of the best validation accuracy, scored every 40 steps), never on test. Batches of 128 at lr 2e-3 for
600 steps (8 epochs; the later cells up to 2400): on a CPU these small recurrent models cost about as much per
step at batch 128 as at 32.

Each cell is one ``genlab sentiment train`` in its own process (1 torch thread), ``--jobs`` at a time; one
JSON line per run (cell, seed, val_acc, test_acc, best_step, seconds) goes to ``<out>/results.jsonl`` and a
cell already there is not trained again. ``--table`` prints the Markdown table (mean +- std over seeds).

Run: python benchmarks/sentiment_ablation.py --cells base,bi,bi_max --seeds 0 [--jobs 2] [--out DIR]

Measured on rt (2 CPU cores, 1 thread a run), validation (1024 reviews) / test (2562) accuracy of the
early-stopped weights. First (``--out /tmp/sent/abl``): ``--cells base,max,bi_max,bi_max_drop,bi_max_drop_ft
--seeds 0``, then ``--cells base,bi_max_drop_ft --seeds 1,2``:

| cell | change | seeds | val acc | test acc |
|---|---|---|---|---|
| base | GRU, last state (the lab's) | 3 | 0.7350 +- 0.0011 | 0.7584 +- 0.0106 |
| max | + max pool (one direction) | 1 | 0.7236 | 0.7584 |
| bi_max | + bidirectional, max pool | 1 | 0.7373 | 0.7600 |
| bi_max_drop | + bidirectional, max pool, dropout 0.3 / word dropout 0.2 | 1 | 0.7383 | 0.7603 |
| bi_max_drop_ft | + the same, GloVe tuned at lr x 0.1 (earlier ``best``) | 3 | 0.7549 +- 0.0051 | 0.7783 +- 0.0011 |

Then the search for 0.80 (``--out /tmp/sent/abl2``): every cell from ``ft_1600`` on in CELLS on seed 0, chosen
by seed-0 validation accuracy alone; seeds 1 and 2 for the leaders (and the best token-wise models), the pick
being the highest 3-seed validation mean. Seconds: one run's training on 1 thread of a 2-core machine shared with one
other run. GloVe x k: the vectors tuned at lr x k; dropout a / b: on the pooled state (and MLP) / on the words.
Selected rows (``--table`` prints all of them):

| cell | change (on bi_max_drop_ft unless said) | seeds | val acc | test acc | best step | seconds |
|---|---|---|---|---|---|---|
| ft_1600 | 1600 steps | 1 | 0.7822 | 0.7877 | 1600 | 147 |
| ft03_1600 | GloVe x 0.3, 1600 steps | 1 | 0.7910 | 0.7916 | 1240 | 149 |
| ft1_1600 | GloVe x 1, 1600 steps | 1 | 0.7871 | 0.7920 | 240 | 142 |
| h128_1600 | hidden 128, 1600 steps | 1 | 0.7852 | 0.7974 | 1520 | 334 |
| ema_1600 | EMA 0.99, 1600 steps | 1 | 0.7803 | 0.8002 | 1360 | 206 |
| ft1_reg | GloVe x 1, dropout 0.5 / 0.4, 1200 steps | 3 | 0.7891 +- 0.0049 | 0.7985 +- 0.0054 | 440-680 | 77-131 |
| reg03_600 | GloVe x 0.3, dropout 0.5 / 0.4, 600 steps | 1 | 0.7754 | 0.7838 | 480 | 61 |
| ft03_2400 | GloVe x 0.3, 2400 steps | 1 | 0.7930 | 0.7978 | 1760 | 150 |
| ft03_reg | GloVe x 0.3, dropout 0.5 / 0.4, 1600 steps | 1 | 0.8018 | 0.7947 | 1600 | 112 |
| ft03_reg_2400 | the same, 2400 steps | 3 | 0.8001 +- 0.0064 | 0.8015 +- 0.0030 | 1440-1880 | 167-250 |
| ft03_reg_ema | ft03_reg_2400 + EMA 0.99 | 3 | 0.7995 +- 0.0037 | 0.8016 +- 0.0035 | 1120-1880 | 132-284 |
| ft05_reg | ft03_reg_2400, GloVe x 0.5 | 1 | 0.7988 | 0.8025 | 920 | 243 |
| ft03_reg_lr1 | ft03_reg_2400, lr 1e-3 | 1 | 0.7959 | 0.8076 | 2000 | 134 |
| reg03_l2 | ft03_reg_2400, two layers (now ``best``) | 3 | 0.8021 +- 0.0039 | 0.8037 +- 0.0041 | 1280-1760 | 195-201 |
| rnn_reg03 | Elman RNN, ft03_reg_2400's settings | 1 | 0.7930 | 0.7951 | 1840 | 135 |
| mlp_ft1 | token-wise MLP, GloVe x 1, dropout 0.3 / 0.2 | 3 | 0.7917 +- 0.0074 | 0.7892 +- 0.0034 | 320-440 | 10-21 |
| mlp_reg | token-wise MLP, GloVe x 1, dropout 0.5 / 0.4 | 3 | 0.7959 +- 0.0026 | 0.7969 +- 0.0021 | 400-560 | 10-23 |
| mlp_reg_w128 | mlp_reg, widths 128, 64 | 1 | 0.7852 | 0.7845 | 280 | 17 |
| attn_reg | attention (k=2) + MLP, as mlp_reg | 3 | 0.7871 +- 0.0080 | 0.7913 +- 0.0063 | 360-560 | 24-54 |
| best | ``--preset best`` (``--out /tmp/sent/abl3``; the preset = reg03_l2) | 1 | 0.7998 | 0.8076 | 1520 | 200 |

TF-IDF + logistic regression on the same split: 0.7908; the pretrained reference, MiniLM sentence vectors +
logistic regression (C = 3 chosen on validation, ``minilm_row``): 0.7728 (validation 0.7490).
What paid: tuning the GloVe vectors harder (lr x 0.3-1 instead of x 0.1) with stronger dropout (0.5 on the
pooled state, 0.4 on the words) and training 4x longer: validation 0.761 -> 0.807 on seed 0 (at the old settings
600 -> 1600 steps alone gave 0.782; x 0.3 for 2400 steps with the old dropout 0.793; the new recipe for only 600
steps 0.775). A second layer added 0.002 to the 3-seed validation mean (0.802 against 0.800), within its noise;
hidden 128, an EMA of the weights, mean pooling, lr 1e-3 and a wider MLP each moved validation by less than its
noise too (one run's validation accuracy moves by about 0.01 between seeds and between neighbouring
evaluations). The recipe did more than the architecture: with it the token-wise MLP reaches 0.797 test (3 seeds,
20 s a run), the attention model 0.791, the Elman RNN 0.795 (seed 0). The goal (>= 0.80 test, mean of 3 seeds,
selected on validation) is met, narrowly: 0.804 (one layer 0.8015) against TF-IDF + LR's 0.791, where a single
run's test accuracy has a standard error of about 0.008 and the pick came from ~35 cells compared on validation.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

COMMON = {
    "val_fraction": 0.1,
    "early_stop": True,
    "batch_size": 128,
    "lr": 0.002,
    "steps": 600,
    "eval_every": 40,
    "threads": 1,
}
# the settings of bi_max_drop_ft (the ``best`` preset's model), which the later cells change one at a time
BEST = {
    "model": "gru",
    "bidirectional": True,
    "pool": "max",
    "dropout": 0.3,
    "embed_dropout": 0.2,
    "embed_lr_scale": 0.1,
}
# bi_max_drop_ft with GloVe tuned at the full rate, 1200 steps (ft1_1600 peaked at step 240)
GRU1 = {**BEST, "embed_lr_scale": 1.0, "steps": 1200}
# ft1_reg: GloVe at the full rate, dropout 0.5, word dropout 0.4, 1200 steps
REG = {**GRU1, "dropout": 0.5, "embed_dropout": 0.4}
# ft03_reg_2400: the same at lr x 0.3 for 2400 steps
REG03 = {**REG, "embed_lr_scale": 0.3, "steps": 2400}
# the token-wise models with the same regularisation, GloVe tuned at the full rate (mlp_ft1, attn_ft1)
MLP = {"model": "mlp", "dropout": 0.3, "embed_dropout": 0.2, "embed_lr_scale": 1.0}
ATTN = {**MLP, "model": "attention"}
# name -> (what changed, settings on top of COMMON); the GRU cells add one change after another
CELLS = {
    "base": ("GRU, last state (the lab's)", {"model": "gru"}),
    "base_last": ("GRU, last state, no early stopping", {"model": "gru", "early_stop": False}),
    "bi": ("+ bidirectional", {"model": "gru", "bidirectional": True}),
    "bi_mean": ("+ bidirectional, mean pool", {"model": "gru", "bidirectional": True, "pool": "mean"}),
    "bi_max": ("+ bidirectional, max pool", {"model": "gru", "bidirectional": True, "pool": "max"}),
    "max": ("+ max pool (one direction)", {"model": "gru", "pool": "max"}),
    "bi_max_drop": (
        "+ bidirectional, max pool, dropout 0.3 / word dropout 0.2",
        {"model": "gru", "bidirectional": True, "pool": "max", "dropout": 0.3, "embed_dropout": 0.2},
    ),
    "bi_max_drop_ft": ("+ bidirectional, max pool, dropout, GloVe tuned at lr x 0.1", BEST),
    "bi_max_drop_ft1": ("+ bidirectional, max pool, dropout, GloVe tuned at lr x 1", {**BEST, "embed_lr_scale": 1.0}),
    "bi_max_ft": (
        "+ bidirectional, max pool, GloVe tuned at lr x 0.1",
        {"model": "gru", "bidirectional": True, "pool": "max", "embed_lr_scale": 0.1},
    ),
    "rnn": ("Elman RNN, last state (the lab's)", {"model": "rnn"}),
    "rnn_best": ("Elman RNN + bidirectional, max pool, dropout, GloVe tuned at lr x 0.1", {**BEST, "model": "rnn"}),
    "mlp": ("token-wise MLP (the lab's)", {"model": "mlp"}),
    "mlp_ft": (
        "token-wise MLP, dropout 0.3, GloVe tuned at lr x 0.1",
        {"model": "mlp", "dropout": 0.3, "embed_lr_scale": 0.1},
    ),
    "best": ("the `best` preset", {"preset": "best"}),
    # the search for 0.80 (issue #16): one change at a time on top of bi_max_drop_ft, seed 0 first, by val acc
    "ft_1600": ("bi_max_drop_ft, 1600 steps", {**BEST, "steps": 1600}),
    "mlp_best": (
        "token-wise MLP, dropout 0.3, word dropout 0.2, GloVe tuned at lr x 0.1",
        {**MLP, "embed_lr_scale": 0.1},
    ),
    "mlp_ft1": (
        "token-wise MLP, dropout 0.3, word dropout 0.2, GloVe tuned at lr x 1",
        MLP,
    ),
    "attn_best": (
        "attention (k=5) + MLP, dropout 0.3, word dropout 0.2, GloVe tuned at lr x 0.1",
        {**ATTN, "embed_lr_scale": 0.1},
    ),
    "attn_ft1": (
        "attention (k=5) + MLP, dropout 0.3, word dropout 0.2, GloVe tuned at lr x 1",
        ATTN,
    ),
    "ft03_1600": (
        "bi_max_drop_ft, GloVe tuned at lr x 0.3, 1600 steps",
        {**BEST, "embed_lr_scale": 0.3, "steps": 1600},
    ),
    "ft1_1600": ("bi_max_drop_ft, GloVe tuned at lr x 1, 1600 steps", {**BEST, "embed_lr_scale": 1.0, "steps": 1600}),
    "h128_1600": ("bi_max_drop_ft, hidden 128, 1600 steps", {**BEST, "hidden": 128, "steps": 1600}),
    "ema_1600": ("bi_max_drop_ft, EMA 0.99, 1600 steps", {**BEST, "ema_decay": 0.99, "steps": 1600}),
    "mlp_ft3": ("mlp_ft1, GloVe tuned at lr x 3", {**MLP, "embed_lr_scale": 3.0}),
    "mlp_ft1_wd4": ("mlp_ft1, word dropout 0.4", {**MLP, "embed_dropout": 0.4}),
    "mlp_ft1_d5": ("mlp_ft1, dropout 0.5", {**MLP, "dropout": 0.5}),
    "mlp_ft1_lr1": ("mlp_ft1, lr 1e-3", {**MLP, "lr": 0.001}),
    "attn_ft03": ("attn_ft1, GloVe tuned at lr x 0.3", {**ATTN, "embed_lr_scale": 0.3}),
    "attn_ft1_d5": ("attn_ft1, dropout 0.5, word dropout 0.4", {**ATTN, "dropout": 0.5, "embed_dropout": 0.4}),
    "attn_ft1_k2": ("attn_ft1, window 2", {**ATTN, "window": 2}),
    "ft1_reg": ("ft1, dropout 0.5, word dropout 0.4, 1200 steps", REG),
    "ft1_lr1": ("ft1, lr 1e-3, 1200 steps", {**GRU1, "lr": 0.001}),
    "ft1_ema": ("ft1, EMA 0.99, 1200 steps", {**GRU1, "ema_decay": 0.99}),
    "ft1_h128": ("ft1, hidden 128, 1200 steps", {**GRU1, "hidden": 128}),
    "ft1_mean": ("ft1, mean pool, 1200 steps", {**GRU1, "pool": "mean"}),
    "ft03_reg": (
        "ft03, dropout 0.5, word dropout 0.4, 1600 steps",
        {**GRU1, "embed_lr_scale": 0.3, "dropout": 0.5, "embed_dropout": 0.4, "steps": 1600},
    ),
    "ft03_reg_2400": (
        "ft03, dropout 0.5, word dropout 0.4, 2400 steps",
        REG03,
    ),
    "ft03_reg_ema": ("ft03_reg_2400, EMA 0.99", {**REG03, "ema_decay": 0.99}),
    "ft05_reg": ("ft03_reg_2400, GloVe tuned at lr x 0.5", {**REG03, "embed_lr_scale": 0.5}),
    "ft03_reg_lr1": ("ft03_reg_2400, lr 1e-3", {**REG03, "lr": 0.001}),
    "ft03_2400": ("ft03_reg_2400 with dropout 0.3, word dropout 0.2", {**REG03, "dropout": 0.3, "embed_dropout": 0.2}),
    "reg03_600": ("ft03_reg_2400, 600 steps", {**REG03, "steps": 600}),
    "reg03_l2": ("ft03_reg_2400, two stacked GRU layers", {**REG03, "layers": 2}),
    "mlp_reg_w128": ("mlp_reg, widths 128, 64", {**MLP, "dropout": 0.5, "embed_dropout": 0.4, "widths": "128,64"}),
    "rnn_reg03": ("Elman RNN with ft03_reg_2400's settings", {**REG03, "model": "rnn"}),
    "reg_wd5": ("ft1_reg, word dropout 0.5", {**REG, "embed_dropout": 0.5}),
    "reg_ema": ("ft1_reg, EMA 0.99", {**REG, "ema_decay": 0.99}),
    "reg_h128": ("ft1_reg, hidden 128", {**REG, "hidden": 128}),
    "reg_ft3": ("ft1_reg, GloVe tuned at lr x 3", {**REG, "embed_lr_scale": 3.0}),
    "mlp_reg": ("mlp_ft1, dropout 0.5, word dropout 0.4", {**MLP, "dropout": 0.5, "embed_dropout": 0.4}),
    "attn_reg": (
        "attn_ft1, window 2, dropout 0.5, word dropout 0.4",
        {**ATTN, "window": 2, "dropout": 0.5, "embed_dropout": 0.4},
    ),
}


def command(name: str, seed: int, out: Path) -> list[str]:
    settings = {**COMMON, **CELLS[name][1], "seed": seed}
    preset = settings.pop("preset", None)
    if preset:
        settings = {"seed": seed}
    cmd = [sys.executable, "-m", "genlab", "sentiment", "train", "--name", f"{name}-s{seed}"]
    cmd += ["--run-dir", str(out / "runs"), "--device", "cpu", "--quiet"]
    cmd += ["--preset", preset] if preset else []
    for k, v in settings.items():
        cmd += ["--set", f"{k}={str(v).lower() if isinstance(v, bool) else v}"]
    return cmd


def run_cell(name: str, seed: int, out: Path) -> dict | None:
    cmd = command(name, seed, out)
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode:
        print(f"{name} seed {seed} failed: {done.stderr.strip().splitlines()[-1:]}", file=sys.stderr)
        return None
    return record(name, seed, out, cmd)


def record(name: str, seed: int, out: Path, cmd: list[str]) -> dict:
    """The results line of a trained cell, appended to ``<out>/results.jsonl``."""
    s = json.loads((out / "runs" / "sentiment" / f"{name}-s{seed}" / "summary.json").read_text())
    row = {"cell": name, "seed": seed, "description": s["description"], "val_acc": s.get("val_acc")}
    row.update(test_acc=s["test_acc"], best_step=s.get("best_step"), seconds=s.get("train_seconds"))
    row.update(minilm_test_acc=s.get("minilm", {}).get("test_acc"), tfidf_test_acc=s["baseline_test_acc"])
    row["command"] = " ".join(cmd[2:]).replace(str(out), "OUT")
    with open(out / "results.jsonl", "a") as f:
        f.write(json.dumps(row) + "\n")
    print(json.dumps(row), flush=True)
    return row


def read(out: Path) -> list[dict]:
    p = out / "results.jsonl"
    return [json.loads(line) for line in p.read_text().splitlines()] if p.exists() else []


def table(rows: list[dict]) -> str:
    def ms(xs):
        return f"{statistics.mean(xs):.4f}" + (f" +- {statistics.stdev(xs):.4f}" if len(xs) > 1 else "")

    lines = ["| cell | change | seeds | val acc | test acc |", "|---|---|---|---|---|"]
    for name in dict.fromkeys(r["cell"] for r in rows):
        rs = [r for r in rows if r["cell"] == name]
        val, test = [r["val_acc"] for r in rs], [r["test_acc"] for r in rs]
        lines.append(f"| {name} | {CELLS[name][0]} | {len(rs)} | {ms(val)} | {ms(test)} |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cells", default="base,bi,bi_max")
    ap.add_argument("--seeds", default="0")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--out", default="/tmp/sentiment_ablation")
    ap.add_argument("--table", action="store_true")
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    if args.table:
        print(table(read(out)))
        return
    have = {(r["cell"], r["seed"]) for r in read(out)}
    todo = [(c, int(s)) for s in args.seeds.split(",") for c in args.cells.split(",") if (c, int(s)) not in have]
    unknown = [c for c, _ in todo if c not in CELLS]
    if unknown:
        sys.exit(f"unknown cell(s) {unknown}; choose from {', '.join(CELLS)}")
    with ThreadPoolExecutor(args.jobs) as pool:
        list(pool.map(lambda cs: run_cell(cs[0], cs[1], out), todo))
    print(table(read(out)))


if __name__ == "__main__":
    main()
