"""Sample quality of the 2D diffusion lab on every toy data set, one model draw each; one JSON object per line.

    python benchmarks/bench_diffusion2d_quality.py                       # all six data sets, seed 0
    python benchmarks/bench_diffusion2d_quality.py --datasets spiral,moons --seed 1
    python benchmarks/bench_diffusion2d_quality.py --set hidden=256      # a candidate change, on every data set

For each data set it trains the config that ``genlab diffusion2d train`` trains for it (``--preset NAME`` where
the lab has a preset of that name, e.g. square, grid, spiral; otherwise the defaults with ``--set dataset=NAME``),
on the config's thread count (1), with ``--set`` pairs on top, and reads the quality numbers that the lab's
``train`` writes to ``summary.json`` (:func:`genlab.labs.diffusion2d.core.evaluate`: the default sampler and
steps, ``eval_n`` samples of seed 7, scored by :func:`genlab.diffusion.toy2d_quality`, i.e.
:func:`~genlab.diffusion.energy_vs_floor` against fresh data, and the share in :func:`~genlab.data.toy2d.in_support`).
The last line says which data sets meet the goal: ``distance_ratio <= 1.5``, ``in_support >= 0.97`` and training
in <= 30 s. The training's wall time on a loaded machine is an upper bound (each line carries the 1-minute load),
so each line also gives its CPU time (``train_cpu_seconds``, one thread: about what an idle core takes), and the
time goal is judged on the smaller of the two.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

import torch  # noqa: E402

from genlab.data.toy2d import DATASETS  # noqa: E402
from genlab.errors import ConfigError  # noqa: E402
from genlab.labs.diffusion2d import config, core  # noqa: E402
from genlab.runs import Run, cpu_threads  # noqa: E402

GOAL = {"distance_ratio": 1.5, "in_support": 0.97, "train_seconds": 30.0}


def lab_config(dataset: str, overrides: list[str], seed: int) -> config.Diffusion2DConfig:
    """What ``genlab diffusion2d train`` trains for ``dataset``: its preset, or the defaults on that data set."""
    base = config.PRESETS.get(dataset) or config.Diffusion2DConfig().update({"dataset": dataset})
    return base.override([*overrides, f"seed={seed}"])


def measure(dataset: str, overrides: list[str], seed: int, root: str) -> dict:
    cfg = lab_config(dataset, overrides, seed)
    t0 = time.perf_counter()
    # core.train's steps, with the training's CPU time beside its wall time: on a loaded machine the wall time
    # of one thread is an upper bound, and its CPU time is close to what an idle core takes
    run = Run.create(config.LAB, cfg, name=f"{dataset}-s{seed}", root=root)
    cpu0 = time.process_time()
    _, result = core.train_model(run, cfg, device=torch.device("cpu"), quiet=True)
    cpu = time.process_time() - cpu0
    run.update_summary({"train_seconds": round(result.seconds, 2), "final_loss": result.last.get("loss")})
    with cpu_threads(cfg.threads):
        core.evaluate(core.open_run(run, "cpu"))
    s = run.read_summary()
    row = {
        "bench": "diffusion2d_quality",
        "dataset": dataset,
        "source": "preset" if dataset in config.PRESETS else "defaults",
        "set": overrides,
        "seed": seed,
        "threads": cfg.threads,
        "load_avg_1m": round(os.getloadavg()[0], 2),
        "train_seconds": s["train_seconds"],
        "train_cpu_seconds": round(cpu, 2),
        "sample_seconds": s["sample_seconds"],
        "total_seconds": round(time.perf_counter() - t0, 1),
        "distance_ratio": round(s["distance_ratio"], 3),
        "energy_distance": s["energy_distance"],
        "noise_floor": s["noise_floor"],
        "in_support": s["in_support"],
        **({"in_region": s["in_region"]} if "in_region" in s else {}),
        "eval": s["eval_sampler"],
    }
    row["meets"] = (
        row["distance_ratio"] <= GOAL["distance_ratio"]
        and row["in_support"] >= GOAL["in_support"]
        and min(row["train_seconds"], row["train_cpu_seconds"]) <= GOAL["train_seconds"]
    )
    return row


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--datasets", default=",".join(DATASETS), help="comma-separated data sets (default: all six)")
    p.add_argument("--seed", type=int, default=0, help="the model draw (config seed; default 0)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    args = p.parse_args()
    names = [d.strip() for d in args.datasets.split(",") if d.strip()]
    bad = [d for d in names if d not in DATASETS]
    if bad:
        raise SystemExit(f"unknown data set(s) {', '.join(bad)}; choose from {', '.join(DATASETS)}")
    rows = []
    with tempfile.TemporaryDirectory() as root:
        for name in names:
            try:
                row = measure(name, args.overrides, args.seed, root)
            except ConfigError as e:  # e.g. --set conditional=true on a data set without classes
                row = {"bench": "diffusion2d_quality", "dataset": name, "error": str(e), "meets": False}
            rows.append(row)
            print(json.dumps(row), flush=True)
    summary = {
        "bench": "diffusion2d_quality",
        "summary": True,
        "goal": GOAL,
        "seed": args.seed,
        "set": args.overrides,
        "meet": [r["dataset"] for r in rows if r["meets"]],
        "miss": [r["dataset"] for r in rows if not r["meets"]],
    }
    print(json.dumps(summary), flush=True)


if __name__ == "__main__":
    main()
