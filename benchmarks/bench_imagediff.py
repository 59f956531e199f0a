"""Sampling and training speed of the image diffusion lab's denoisers: one JSON line per measurement.

    PYTHONPATH=src python benchmarks/bench_imagediff.py [--device auto] [--n 64] [--steps 50] [--threads 0]

Untrained networks of the quick / full presets' shapes (speed does not depend on the weights), the text
condition replaced by random 384-d vectors of MiniLM's shape (no fetched data needed):

* ``sample``: images/s for ``--n`` images at ``--steps`` DDIM steps with classifier-free guidance (two network
  evaluations per step, batched, bf16 autocast as the lab samples), pixel space at 16x16 (quick) and 28x28
  (full), latent space (64-d codes through the MLP denoiser, decoded by the conv autoencoder's decoder);
* ``train``: optimisation steps/s at batch 64 (bf16 autocast on the CPU, as the presets).

Also prints a float32 matmul probe (GFLOP/s) as the machine's reference.
"""

from __future__ import annotations

import argparse
import json
import time

import torch
from common import matmul_peak

from genlab.diffusion import VPCosineSchedule, sample
from genlab.diffusion.prediction import to_eps
from genlab.nn.autoencoder import ConvAutoencoder
from genlab.nn.code_denoiser import CodeDenoiser
from genlab.nn.unet import Cond, UNet
from genlab.runs import choose_device, cpu_threads

D, T = 384, 8  # MiniLM's vector size, a typical prompt's token count


def _cond(n: int, device: torch.device) -> Cond:
    return Cond(
        torch.randn(n, D, device=device),
        torch.randn(n, T, D, device=device),
        torch.ones(n, T, dtype=torch.bool, device=device),
    )


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def models(device: torch.device) -> dict[str, tuple[torch.nn.Module, tuple[int, ...]]]:
    return {
        "pixel 16x16 (quick)": (UNet(1, (32, 64, 96), 1, (1, 2), vec_dim=D, token_dim=D), (1, 16, 16)),
        "pixel 28x28 (full)": (UNet(1, (32, 64, 128), 1, (2,), vec_dim=D, token_dim=D), (1, 28, 28)),
        "latent 64-d codes": (CodeDenoiser(64, 512, 4, vec_dim=D), (64,)),
    }


@torch.no_grad()
def bench_sample(
    name: str, model: torch.nn.Module, shape: tuple[int, ...], n: int, steps: int, device: torch.device
) -> dict:
    model.to(device).eval()
    sch = VPCosineSchedule()
    cond = _cond(n, device)
    null = cond.dropped(torch.ones(n, dtype=torch.bool, device=device))
    ae = ConvAutoencoder(64).to(device).eval() if len(shape) == 1 else None

    def eps_fn(x, t):
        with torch.autocast(device.type, torch.bfloat16):  # as the lab samples (the network in bf16)
            c, u = model(torch.cat([x, x]), torch.cat([t, t]), cond.cat(null)).float().chunk(2)
        return to_eps("v", sch, x, t, u + 2.0 * (c - u), None if ae is not None else (-1.0, 1.0))

    def run(k: int) -> None:
        x = sample(eps_fn, sch, "ddim", shape=(n, *shape), steps=k, t_end=sch.t_min, device=device).x
        if ae is not None:
            ae.decode(x)
        _sync(device)

    run(2)
    t0 = time.perf_counter()
    run(steps)
    sec = time.perf_counter() - t0
    return {
        "bench": "sample",
        "model": name,
        "n": n,
        "steps": steps,
        "sampler": "ddim",
        "guidance": 2.0,
        "amp": "bf16",
        "seconds": round(sec, 3),
        "images_per_s": round(n / sec, 2),
        "parameters": sum(p.numel() for p in model.parameters()),
    }


def bench_train(
    name: str, model: torch.nn.Module, shape: tuple[int, ...], device: torch.device, steps: int = 10, batch: int = 64
) -> dict:
    model.to(device).train()
    opt = torch.optim.AdamW(model.parameters(), 1e-3)
    x, t, c = torch.randn(batch, *shape, device=device), torch.rand(batch, device=device), _cond(batch, device)

    def step() -> None:
        with torch.autocast(device.type, torch.bfloat16):
            loss = (model(x, t, c).float() - x).pow(2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()

    for _ in range(3):
        step()
    _sync(device)
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    _sync(device)
    sec = time.perf_counter() - t0
    return {"bench": "train", "model": name, "batch": batch, "amp": "bf16", "steps_per_s": round(steps / sec, 2)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="auto")
    p.add_argument("--n", type=int, default=64)
    p.add_argument("--steps", type=int, default=50)
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0 = torch's default)")
    p.add_argument("--no-train", action="store_true", help="only the sampling speed")
    a = p.parse_args()
    device = choose_device(a.device)
    torch.manual_seed(0)
    with cpu_threads(a.threads if device.type == "cpu" else 0):
        print(
            json.dumps(
                {
                    "bench": "matmul_peak",
                    "device": str(device),
                    "threads": torch.get_num_threads(),
                    "gflops": round(matmul_peak(device=device, seconds=1.5), 1),
                }
            ),
            flush=True,
        )
        for name, (model, shape) in models(device).items():
            print(json.dumps(bench_sample(name, model, shape, a.n, a.steps, device)), flush=True)
            if not a.no_train:
                print(json.dumps(bench_train(name, model, shape, device)), flush=True)


if __name__ == "__main__":
    main()
