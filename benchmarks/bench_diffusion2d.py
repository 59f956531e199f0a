"""Benchmarks of the 2D diffusion lab; one JSON object per line.

    python benchmarks/bench_diffusion2d.py            # micro-benchmarks, then train + figures of the square
    preset
    python benchmarks/bench_diffusion2d.py --quick    # micro-benchmarks only
    python benchmarks/bench_diffusion2d.py --run DIR  # time `figures` on an existing run

Micro-benchmarks: training steps/s of the default denoiser (1 thread and all threads), sampler network
evaluations/s, and ELBO evaluations/s. The full benchmark trains the default ``square`` preset and times
``genlab diffusion2d figures`` on it (the lab asks for under 5 minutes on 2 CPU cores).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from genlab.data.toy2d import make_toy2d  # noqa: E402
from genlab.diffusion import VEExpSchedule, diffusion_loss, elbo, model_eps_fn, sample  # noqa: E402
from genlab.labs.diffusion2d import config, core  # noqa: E402
from genlab.nn.denoisers import MLPDenoiser  # noqa: E402
from genlab.runs import Run  # noqa: E402


def emit(**kw) -> None:
    print(
        json.dumps(
            {
                "bench": "diffusion2d",
                "cpus": os.cpu_count(),
                "torch_threads": torch.get_num_threads(),
                "load_avg_1m": round(os.getloadavg()[0], 2),
                **kw,
            }
        ),
        flush=True,
    )


def bench_train(threads: int, steps: int = 200) -> None:
    old = torch.get_num_threads()
    torch.set_num_threads(threads)
    cfg = config.Diffusion2DConfig()
    model = MLPDenoiser(2, cfg.hidden, cfg.depth, time_embedding=cfg.time_embedding)
    opt = torch.optim.Adam(model.parameters(), cfg.lr)
    x = make_toy2d("square", cfg.n_points).x
    sch = VEExpSchedule(cfg.k)
    for i in range(steps + 20):
        if i == 20:
            t0 = time.perf_counter()
        xb = x[torch.randint(0, len(x), (cfg.batch_size,))]
        loss = diffusion_loss(model, sch, xb)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    dt = time.perf_counter() - t0
    emit(
        what="train_steps_per_s",
        threads=threads,
        batch=cfg.batch_size,
        hidden=cfg.hidden,
        value=round(steps / dt, 1),
        projected_train_s=round(cfg.steps * dt / steps, 1),
    )
    torch.set_num_threads(old)


def bench_sampling_and_elbo() -> None:
    torch.set_num_threads(1)
    cfg = config.Diffusion2DConfig()
    model = MLPDenoiser(2, cfg.hidden, cfg.depth, time_embedding=cfg.time_embedding).eval()
    sch = VEExpSchedule(cfg.k)
    fn = model_eps_fn(model)
    t0 = time.perf_counter()
    sample(fn, sch, "euler", shape=(2000, 2), steps=200)
    dt = time.perf_counter() - t0
    emit(what="euler_sampling", points=2000, steps=200, seconds=round(dt, 3), point_evals_per_s=round(2000 * 200 / dt))
    pts = torch.randn(500, 2)
    t0 = time.perf_counter()
    elbo(fn, sch, pts, n_mc=256)
    dt = time.perf_counter() - t0
    emit(what="elbo", points=500, draws=256, seconds=round(dt, 3), point_evals_per_s=round(500 * 256 / dt))


def bench_figures(run: Run) -> None:
    t0 = time.perf_counter()
    paths = core.draw_figures(run, "cpu", quiet=True)
    emit(
        what="figures_seconds",
        run=str(run.path),
        figures=len(paths),
        value=round(time.perf_counter() - t0, 1),
        limit=300,
    )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="micro-benchmarks only")
    p.add_argument("--run", default=None, help="time the figures of this trained run")
    args = p.parse_args()
    if args.run:
        bench_figures(Run.open(args.run))
        return
    for threads in sorted({1, os.cpu_count() or 1}):
        bench_train(threads)
    bench_sampling_and_elbo()
    if args.quick:
        return
    with tempfile.TemporaryDirectory() as root:
        t0 = time.perf_counter()
        run = core.train(config.PRESETS["square"], root=root, name="square", device="cpu", quiet=True)
        s = run.read_summary()
        emit(
            what="train_square_default",
            seconds=round(time.perf_counter() - t0, 1),
            train_seconds=s["train_seconds"],
            energy_distance=s["energy_distance"],
            noise_floor=s["noise_floor"],
            in_support=s["in_support"],
        )
        bench_figures(run)


if __name__ == "__main__":
    main()
