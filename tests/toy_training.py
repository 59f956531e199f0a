"""A tiny regression trained through genlab's loop, for the loop's own tests (also run as a subprocess)."""

from __future__ import annotations

import argparse
import os
import signal
import sys
from dataclasses import dataclass

import torch

from genlab.config import param
from genlab.runs import Run, seed_everything
from genlab.train import TrainConfig, fit, make_optimizer, warmup_cosine


@dataclass
class ToyConfig(TrainConfig):
    hidden: int = param(16, "hidden width")
    dropout: float = param(0.1, "dropout (draws random numbers every step)")


def train_toy(root, name, *, steps=40, resume=False, kill_at=None, lr=1e-2, **overrides):
    cfg = ToyConfig(
        steps=steps,
        lr=lr,
        batch_size=16,
        log_every=5,
        ckpt_every=10,
        eval_every=10,
        ema_decay=0.9,
        grad_clip=1.0,
        **overrides,
    )
    seed_everything(cfg.seed)
    model = torch.nn.Sequential(
        torch.nn.Linear(2, cfg.hidden), torch.nn.Tanh(), torch.nn.Dropout(cfg.dropout), torch.nn.Linear(cfg.hidden, 1)
    )
    opt = make_optimizer(model.parameters(), "adamw", lr=cfg.lr, weight_decay=0.01)
    sched = warmup_cosine(opt, cfg.steps, warmup=5)
    g = torch.Generator().manual_seed(123)
    x = torch.randn(200, 2, generator=g)
    y = torch.sin(x[:, :1]) + x[:, 1:] ** 2
    run = Run.create("toy", cfg, name=name, root=root, resume=resume)

    def batches(step):
        idx = torch.randint(0, len(x), (cfg.batch_size,))
        return x[idx], y[idx]

    def step_fn(m, batch):
        return {"loss": torch.nn.functional.mse_loss(m(batch[0]), batch[1])}

    def kill(step, values):
        if kill_at is not None and step == kill_at:
            os.kill(os.getpid(), signal.SIGKILL)

    result = fit(
        run,
        model,
        opt,
        step_fn,
        batches,
        cfg=cfg,
        device=torch.device("cpu"),
        scheduler=sched,
        eval_fn=lambda m: {"val_loss": torch.nn.functional.mse_loss(m(x), y)},
        best_key="val_loss",
        resume=resume,
        quiet=True,
        callbacks=[kill],
    )
    return run, model, result


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("root")
    ap.add_argument("name")
    ap.add_argument("--steps", type=int, default=40)
    ap.add_argument("--kill-at", type=int, default=None)
    ap.add_argument("--resume", action="store_true")
    a = ap.parse_args()
    torch.set_num_threads(1)
    train_toy(a.root, a.name, steps=a.steps, resume=a.resume, kill_at=a.kill_at)
    sys.exit(0)
