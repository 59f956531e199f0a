"""What the benchmarks share: the machine's measured float32 matmul peak, for model-FLOP utilisation."""

from __future__ import annotations

import time

import torch


def matmul_peak(n: int = 1024, seconds: float = 3.0, device: torch.device | str = "cpu") -> float:
    """Best float32 GFLOP/s of an (n x n) @ (n x n) product over a few seconds, on the current threads."""
    device = torch.device(device)
    a, b = torch.randn(n, n, device=device), torch.randn(n, n, device=device)

    def sync():
        if device.type == "cuda":
            torch.cuda.synchronize()

    for _ in range(3):
        a @ b
    sync()
    best, t_end = 0.0, time.perf_counter() + seconds
    while time.perf_counter() < t_end:
        t = time.perf_counter()
        for _ in range(5):
            a @ b
        sync()
        best = max(best, 5 * 2 * n**3 / (time.perf_counter() - t) / 1e9)
    return best
