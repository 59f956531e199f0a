"""Data parallelism on the CPU: GPT ``mini`` training tokens/s on 1 process x 2 threads vs 2 processes x 1 thread.

Both train through ``genlab textgen train --preset mini`` (the one loop, :func:`genlab.train.fit`) with the same
global batch (32 sequences of 64 tokens): one process on two torch threads, or ``torchrun --nproc_per_node=2``
where each of two gloo ranks takes 16 sequences on one thread and the gradients are averaged. Tokens/s come from
the run's metrics (the loop's clock between the first and the last logged step), so start-up, tokenizer and
evaluation are left out. One process on one thread is timed too, as the unit the other two scale. The set-ups
take turns in each round (in reversed order every other round), so a busy machine slows them alike; the best
round of each is compared. Prints one JSON object.

    python benchmarks/bench_ddp.py [--steps 30] [--rounds 3] [--corpus alice|sample]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

from genlab.runs import Run

BATCH, BLOCK = 32, 64


def train_once(root: Path, name: str, procs: int, threads: int, args: argparse.Namespace) -> float:
    """One short training of the mini GPT; returns tokens/s between the first and the last logged step."""
    sets = [f"corpus={args.corpus}", f"steps={args.steps}", "log_every=5", "eval_every=0", "eval_iters=1"]
    sets += [f"threads={threads}", f"batch_size={BATCH}"]
    genlab = ["-m", "genlab", "textgen", "train", "--preset", "mini", "--device", "cpu", "--quiet"]
    genlab += ["--run-dir", str(root), "--name", name] + [x for kv in sets for x in ("--set", kv)]
    launch = [sys.executable]
    if procs > 1:
        launch += ["-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={procs}"]
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    done = subprocess.run(launch + genlab, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"bench_ddp: {procs} x {threads} failed:\n{done.stderr[-2000:]}")
    rows = [r for r in Run(root / "textgen" / name).read_metrics() if "loss" in r and "time" in r]
    first, last = rows[0], rows[-1]  # the first logged step (5) already paid the warm-up
    return (last["step"] - first["step"]) * BATCH * BLOCK / (last["time"] - first["time"])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=30, help="training steps per run (logged every 5)")
    ap.add_argument("--rounds", type=int, default=3, help="rounds, each running both set-ups once")
    ap.add_argument("--corpus", default="alice", help="alice (fetched: genlab data fetch alice) or sample")
    args = ap.parse_args()
    setups = {"1x2": (1, 2), "2x1": (2, 1), "1x1": (1, 1)}  # processes x threads each
    tokens_per_s: dict[str, list[float]] = {k: [] for k in setups}
    load_before = os.getloadavg()[0]
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="bench_ddp-") as tmp:
        for r in range(args.rounds):
            order = list(setups) if r % 2 == 0 else list(reversed(setups))
            for key in order:
                procs, threads = setups[key]
                tokens_per_s[key].append(round(train_once(Path(tmp), f"{key}-{r}", procs, threads, args)))
    best = {k: max(v) for k, v in tokens_per_s.items()}
    print(
        json.dumps(
            {
                "bench": "ddp_gpt_mini",
                "global_batch": BATCH,
                "block": BLOCK,
                "steps": args.steps,
                "corpus": args.corpus,
                "rounds": args.rounds,
                "tokens_per_s": tokens_per_s,
                "best_tokens_per_s": best,
                "ratio_2x1_over_1x2": round(best["2x1"] / best["1x2"], 3),
                "speedup_over_1x1": {k: round(best[k] / best["1x1"], 3) for k in ("1x2", "2x1")},
                "cpus": os.cpu_count(),
                "load_avg_1min": [round(load_before, 2), round(os.getloadavg()[0], 2)],
                "seconds": round(time.perf_counter() - t0, 1),
                "torch": torch.__version__,
            }
        ),
        flush=True,
    )


if __name__ == "__main__":
    main()
