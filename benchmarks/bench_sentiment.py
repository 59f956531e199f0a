"""Training throughput (reviews/s) of the hand-written GRU against torch.nn.GRU of the same size.

Each measurement: batches of 32 reviews of 30 GloVe-sized (50-d) word vectors, forward + cross-entropy +
backward + Adam step of encoder and a linear head, on one CPU thread (see SentimentConfig.threads) or the
GPU when present; best of three rounds. Prints one JSON object per line.
Run: python benchmarks/bench_sentiment.py [--quick]

``--fwd-bwd``: forward + backward only (issue 16) at batch 32, length 100, input 50, hidden 64, on 1 and 2
threads: the hand-written GRU / Elman (BPTT written by hand, :mod:`genlab.nn.bptt_scan`), the same cells
through autograd step by step (the path before), and ``nn.GRU`` / ``nn.RNN``, alternated step by step in one
process; one JSON object per cell and thread count with the median ms per step and the ratio
``ms(torch) / ms(hand-written)`` (above 1: the hand-written one is faster).
Run: python benchmarks/bench_sentiment.py --fwd-bwd [--quick]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time

import torch
from torch import nn

from genlab.nn.attention import RestrictedSelfAttention
from genlab.nn.recurrent import Recurrent


class TorchGRUEncoder(nn.Module):
    def __init__(self, d: int, h: int):
        super().__init__()
        self.gru = nn.GRU(d, h, batch_first=True)

    def forward(self, x, mask=None):
        out, h = self.gru(x)
        return out, h[-1]


def bench_encoder(
    name: str, enc: nn.Module, d: int, h: int, *, batch: int, length: int, steps: int, device: torch.device
) -> dict:
    head = nn.Linear(h, 2).to(device)
    enc = enc.to(device)
    opt = torch.optim.Adam([*enc.parameters(), *head.parameters()], lr=1e-3)
    x = torch.randn(batch, length, d, device=device)
    mask = torch.ones(batch, length, dtype=torch.bool, device=device)
    y = torch.randint(0, 2, (batch,), device=device)

    def step():
        _, last = enc(x, mask)
        loss = nn.functional.cross_entropy(head(last), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    for _ in range(3):
        step()
    best = float("inf")
    for _ in range(3):  # best of three rounds: the least disturbed by other work on the machine
        if device.type == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        for _ in range(steps):
            step()
        if device.type == "cuda":
            torch.cuda.synchronize()
        best = min(best, time.perf_counter() - t0)
    sec = best
    return {
        "bench": "sentiment_train_throughput",
        "encoder": name,
        "hidden": h,
        "input": d,
        "batch": batch,
        "length": length,
        "device": str(device),
        "threads": torch.get_num_threads(),
        "steps": steps,
        "reviews_per_s": round(steps * batch / sec, 1),
        "ms_per_step": round(1e3 * sec / steps, 2),
    }


def bench_attention(device: torch.device, *, batch: int, length: int, steps: int) -> dict:
    att = RestrictedSelfAttention(50, 64, 5).to(device)
    x = torch.randn(batch, length, 50, device=device, requires_grad=True)
    mask = torch.ones(batch, length, dtype=torch.bool, device=device)
    for _ in range(3):
        att(x, mask)[0].sum().backward()
    t0 = time.perf_counter()
    for _ in range(steps):
        att(x, mask)[0].sum().backward()
    if device.type == "cuda":
        torch.cuda.synchronize()
    sec = time.perf_counter() - t0
    return {
        "bench": "restricted_attention_fwd_bwd",
        "k": 5,
        "hidden": 64,
        "batch": batch,
        "length": length,
        "device": str(device),
        "reviews_per_s": round(steps * batch / sec, 1),
    }


class StepByStep(nn.Module):
    """A :class:`Recurrent` through autograd step by step (its :meth:`states_along_time`), as before issue 16."""

    def __init__(self, rnn: Recurrent):
        super().__init__()
        self.rnn = rnn

    def forward(self, x, mask=None):
        states, h = self.rnn.states_along_time(x, mask)
        return torch.stack(states, 1), h


class TorchRNNEncoder(TorchGRUEncoder):
    def __init__(self, d: int, h: int):
        nn.Module.__init__(self)
        self.gru = nn.RNN(d, h, batch_first=True)


def bench_fwd_bwd(cell: str, threads: int, *, steps: int, batch=32, length=100, d=50, h=64) -> dict:
    """Median ms of forward + backward (loss on the final state) per implementation, alternated step by step."""
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    hand = Recurrent(d, h, 1, cell)
    impls = {
        "hand-written, BPTT by hand": hand,
        "hand-written, autograd step by step": StepByStep(hand),
        "torch": TorchGRUEncoder(d, h) if cell == "gru" else TorchRNNEncoder(d, h),
    }
    x = torch.randn(batch, length, d)
    mask = torch.ones(batch, length, dtype=torch.bool)
    times: dict[str, list[float]] = {k: [] for k in impls}

    def step(enc):
        _, last = enc(x, mask)
        last.square().mean().backward()

    for _ in range(3):
        for enc in impls.values():
            step(enc)
    for _ in range(steps):
        for name, enc in impls.items():
            t0 = time.perf_counter()
            step(enc)
            times[name].append(time.perf_counter() - t0)
    ms = {k: round(1e3 * statistics.median(v), 2) for k, v in times.items()}
    return {
        "bench": "recurrent_fwd_bwd",
        "cell": cell,
        "torch": "nn.GRU" if cell == "gru" else "nn.RNN (tanh)",
        "batch": batch,
        "length": length,
        "input": d,
        "hidden": h,
        "threads": threads,
        "steps": steps,
        "ms_median": ms,
        "ratio_torch_over_hand_bptt": round(ms["torch"] / ms["hand-written, BPTT by hand"], 2),
        "ratio_torch_over_hand_autograd": round(ms["torch"] / ms["hand-written, autograd step by step"], 2),
        "loadavg_1min": round(os.getloadavg()[0], 2),
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="fewer steps")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--fwd-bwd", action="store_true", help="forward + backward only, 1 and 2 threads (issue 16)")
    args = ap.parse_args()
    if args.fwd_bwd:
        for cell in ("gru", "rnn"):
            for threads in (1, 2):
                print(json.dumps(bench_fwd_bwd(cell, threads, steps=10 if args.quick else 40)), flush=True)
        return
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    steps = 10 if args.quick else 40
    for h in (64, 128):
        for name, enc in (
            ("hand-written GRU (lab form)", Recurrent(50, h, 1, "gru")),
            ("hand-written GRU (nn.GRU form)", Recurrent(50, h, 1, "gru", reset_after=True)),
            ("torch.nn.GRU", TorchGRUEncoder(50, h)),
            ("hand-written Elman tanh", Recurrent(50, h, 1, "rnn")),
        ):
            row = bench_encoder(name, enc, 50, h, batch=32, length=30, steps=steps, device=device)
            print(json.dumps(row), flush=True)
    print(json.dumps(bench_attention(device, batch=32, length=30, steps=steps)), flush=True)


if __name__ == "__main__":
    main()
