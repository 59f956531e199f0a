"""Training throughput of the latent lab's models: one JSON line per measurement.

    PYTHONPATH=src python benchmarks/bench_latent.py [--device auto] [--steps 20] [--batch 128]

Measures full optimisation steps (forward, backward, Adam) on random 32x32 images / 64-d codes, after warm-up:
the conv autoencoder (images/s), the latent GAN and conditional GAN (the lab's step: one D step, matching-aware
for the cGAN, then one G step; codes/s),
and the judge CNN (images/s). Also prints a float32 matmul probe (GFLOP/s) as the machine's reference peak.
"""

from __future__ import annotations

import argparse
import json
import time

import torch
import torch.nn.functional as F
from common import matmul_peak

from genlab.nn.autoencoder import ConvAutoencoder
from genlab.nn.gan import JudgeCNN, LatentGAN, gan_batches, gan_step
from genlab.runs import choose_device


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def _time(step, steps: int, device: torch.device, warmup: int = 3) -> float:
    for _ in range(warmup):
        step()
    _sync(device)
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    _sync(device)
    return time.perf_counter() - t0


def bench_autoencoder(device, steps, batch, sigma=0.35):
    model = ConvAutoencoder(64, noise_sigma=sigma).to(device)
    opt = torch.optim.Adam(model.parameters(), 1e-3)
    x = torch.rand(batch, 1, 32, 32, device=device)

    def step():
        loss = F.binary_cross_entropy_with_logits(model(x), x)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    sec = _time(step, steps, device)
    return {"bench": "autoencoder_train", "images_per_s": round(steps * batch / sec, 1), "batch": batch}


def bench_gan(device, steps, batch, classes=0):
    """The lab's own step (:func:`genlab.nn.gan.gan_step`, matching-aware for the cGAN) on random batches of codes."""
    gan = LatentGAN(32, 64, classes).to(device)
    opts = {
        "g": torch.optim.Adam(gan.generator.parameters(), 2e-4, betas=(0.5, 0.999)),
        "d": torch.optim.Adam(gan.discriminator.parameters(), 2e-4, betas=(0.5, 0.999)),
    }
    labels = torch.randint(classes, (4 * batch,), device=device) if classes else None
    batches = gan_batches(gan, torch.randn(4 * batch, 64, device=device), labels, batch)

    def optimize(name, loss):
        opts[name].zero_grad(set_to_none=True)
        loss.backward()
        opts[name].step()

    def step():
        gan_step(gan, batches(0), optimize, matching=True)

    sec = _time(step, steps * 10, device)
    return {
        "bench": "cgan_train" if classes else "gan_train",
        "codes_per_s": round(steps * 10 * batch / sec, 1),
        "batch": batch,
    }


def bench_judge(device, steps, batch):
    judge = JudgeCNN(10).to(device)
    opt = torch.optim.Adam(judge.parameters(), 1e-3)
    x = torch.rand(batch, 1, 32, 32, device=device)
    y = torch.randint(10, (batch,), device=device)

    def step():
        loss = F.cross_entropy(judge(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    sec = _time(step, steps, device)
    return {"bench": "judge_train", "images_per_s": round(steps * batch / sec, 1), "batch": batch}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="auto")
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--batch", type=int, default=128)
    args = ap.parse_args()
    device = choose_device(args.device)
    torch.manual_seed(0)
    meta = {"device": str(device), "threads": torch.get_num_threads(), "torch": torch.__version__}
    peak = {"bench": "matmul_fp32_peak", "gflops": round(matmul_peak(device=device), 1)}
    for res in (
        peak,
        bench_autoencoder(device, args.steps, args.batch),
        bench_gan(device, args.steps, args.batch),
        bench_gan(device, args.steps, args.batch, 10),
        bench_judge(device, args.steps, args.batch),
    ):
        print(json.dumps({**res, **meta}), flush=True)


if __name__ == "__main__":
    main()
