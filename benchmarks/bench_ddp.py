"""Data parallelism on the CPU: training throughput on 1 process x 2 threads vs 2 processes x 1 thread.

``--lab textgen`` (the default): GPT ``mini`` tokens/s through ``genlab textgen train --preset mini``, global batch
32 sequences of 64 tokens. ``--lab diffusion2d``: the 2D denoiser's points/s through ``genlab diffusion2d train
--preset square``, global batch 1024 points (its preset's; the sampling after training is cut to 8 steps on 100
points, outside the timed span anyway). Both go through the one loop (:func:`genlab.train.fit`) with the same
global batch: one process on two torch threads, or ``torchrun --nproc_per_node=2`` where each of two gloo ranks
takes half the batch on one thread and the gradients are averaged. Throughput comes from the run's metrics (the
loop's clock between the first and the last logged step), so start-up, data, tokenizer and evaluation are left
out. One process on one thread is timed too, as the unit the other two scale. The set-ups take turns in each
round (in reversed order every other round), so a busy machine slows them alike; the best round of each is
compared. Prints one JSON object.

    python benchmarks/bench_ddp.py [--lab textgen|diffusion2d] [--steps 30] [--rounds 3] [--corpus alice|sample]
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

BATCH, BLOCK = 32, 64  # textgen: sequences x tokens per step
POINTS = 1024  # diffusion2d: points per step (the square preset's batch_size; 2000 training points)
# per lab: the bench's name, the unit counted, items per step, the training command and its settings
LABS = {
    "textgen": ("ddp_gpt_mini", "tokens", BATCH * BLOCK, ["textgen", "train", "--preset", "mini"]),
    "diffusion2d": ("ddp_diffusion2d", "points", POINTS, ["diffusion2d", "train", "--preset", "square"]),
}


def lab_sets(args: argparse.Namespace) -> list[str]:
    if args.lab == "textgen":
        return [f"corpus={args.corpus}", "eval_every=0", "eval_iters=1", f"batch_size={BATCH}"]
    return [f"batch_size={POINTS}", "sample_steps=8", "eval_n=100"]


def train_once(root: Path, name: str, procs: int, threads: int, args: argparse.Namespace) -> float:
    """One short training run; returns items (tokens or points) per second between the first and the last
    logged step."""
    _, _, per_step, verb = LABS[args.lab]
    sets = [f"steps={args.steps}", "log_every=5", f"threads={threads}", *lab_sets(args)]
    genlab = ["-m", "genlab", *verb, "--device", "cpu", "--quiet"]
    genlab += ["--run-dir", str(root), "--name", name] + [x for kv in sets for x in ("--set", kv)]
    launch = [sys.executable]
    if procs > 1:
        launch += ["-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={procs}"]
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    done = subprocess.run(launch + genlab, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"bench_ddp: {procs} x {threads} failed:\n{done.stderr[-2000:]}")
    rows = [r for r in Run(root / args.lab / name).read_metrics() if "loss" in r and "time" in r]
    first, last = rows[0], rows[-1]  # the first logged step (5) already paid the warm-up
    return (last["step"] - first["step"]) * per_step / (last["time"] - first["time"])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--lab", choices=sorted(LABS), default="textgen", help="which lab's training to time")
    ap.add_argument("--steps", type=int, default=30, help="training steps per run (logged every 5; at least 10)")
    ap.add_argument("--rounds", type=int, default=3, help="rounds, each running both set-ups once")
    ap.add_argument("--corpus", default="alice", help="alice (fetched: genlab data fetch alice) or sample")
    args = ap.parse_args()
    if args.steps < 10 or args.rounds < 1:
        ap.error("--steps must be at least 10 (two logged steps) and --rounds at least 1")
    bench, unit, _, _ = LABS[args.lab]
    setups = {"1x2": (1, 2), "2x1": (2, 1), "1x1": (1, 1)}  # processes x threads each
    per_s: dict[str, list[float]] = {k: [] for k in setups}
    load_before = os.getloadavg()[0]
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="bench_ddp-") as tmp:
        for r in range(args.rounds):
            order = list(setups) if r % 2 == 0 else list(reversed(setups))
            for key in order:
                procs, threads = setups[key]
                per_s[key].append(round(train_once(Path(tmp), f"{key}-{r}", procs, threads, args)))
    best = {k: max(v) for k, v in per_s.items()}
    shape = {"global_batch": BATCH, "block": BLOCK} if args.lab == "textgen" else {"global_batch": POINTS}
    print(
        json.dumps(
            {
                "bench": bench,
                **shape,
                "steps": args.steps,
                **({"corpus": args.corpus} if args.lab == "textgen" else {}),
                "rounds": args.rounds,
                f"{unit}_per_s": per_s,
                f"best_{unit}_per_s": best,
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
