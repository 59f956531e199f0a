"""What the benchmarks share: the machine's measured float32 matmul peak, for model-FLOP utilisation."""

from __future__ import annotations

import time

import torch


def matmul_probe(n: int = 1024, device: torch.device | str = "cpu", reps: int = 5):
    """``(fn, flops)``: a function doing ``reps`` float32 (n x n) @ (n x n) products (synchronised), and their FLOPs.
    A benchmark can time it in turn with the model steps, so that the peak sees the same load as the model."""
    device = torch.device(device)
    a, b = torch.randn(n, n, device=device), torch.randn(n, n, device=device)

    def fn():
        for _ in range(reps):
            a @ b
        if device.type == "cuda":
            torch.cuda.synchronize()

    return fn, reps * 2 * n**3


def matmul_peak(n: int = 1024, seconds: float = 3.0, device: torch.device | str = "cpu") -> float:
    """Best float32 GFLOP/s of an (n x n) @ (n x n) product over a few seconds, on the current threads."""
    fn, flops = matmul_probe(n, device)
    fn()
    best, t_end = 0.0, time.perf_counter() + seconds
    while time.perf_counter() < t_end:
        t = time.perf_counter()
        fn()
        best = max(best, flops / (time.perf_counter() - t) / 1e9)
    return best
