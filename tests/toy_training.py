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


def train_toy(root, name, *, steps=40, resume=False, kill_at=None, lr=1e-2, record=None, **overrides):
    """``record``: save the inputs each step trained on (this rank's share) to ``<record>.rank<RANK>.pt``."""
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

    seen = []

    def step_fn(m, batch):
        if record is not None:
            seen.append(batch[0].clone())
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
    if record is not None:
        torch.save(seen, f"{record}.rank{os.environ.get('RANK', '0')}.pt")
    return run, model, result


def train_toy_gan(root, name, *, steps=30):
    """A toy GAN through fit's manual mode (two optimisers, clipping, EMA, evaluation)."""
    cfg = TrainConfig(
        steps=steps, batch_size=16, log_every=5, ckpt_every=10, eval_every=10, grad_clip=0.5, ema_decay=0.9
    )
    seed_everything(cfg.seed)
    lin = torch.nn.Linear
    nets = torch.nn.ModuleDict({"g": torch.nn.Sequential(lin(2, 8), torch.nn.Tanh(), lin(8, 2)), "d": lin(2, 1)})
    opts = {k: make_optimizer(nets[k].parameters()) for k in ("g", "d")}
    run = Run.create("toy", cfg, name=name, root=root)

    def step_fn(m, batch, optimize):
        real, z = batch
        d_loss = (m["d"](real) - 1).pow(2).mean() + m["d"](m["g"](z).detach()).pow(2).mean()
        optimize("d", d_loss)
        g_loss = (m["d"](m["g"](z)) - 1).pow(2).mean()
        optimize("g", g_loss)
        return {"d_loss": d_loss, "g_loss": g_loss}

    def batches(step):
        return torch.randn(cfg.batch_size, 2) + 2, torch.randn(cfg.batch_size, 2)

    def eval_fn(m):
        return {"val": m["d"](m["g"](torch.ones(4, 2))).mean()}

    fit(
        run, nets, opts, step_fn, batches, cfg=cfg, device=torch.device("cpu"), manual=True, quiet=True, eval_fn=eval_fn
    )
    return run


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("root")
    ap.add_argument("name")
    ap.add_argument("--steps", type=int, default=40)
    ap.add_argument("--kill-at", type=int, default=None)
    ap.add_argument("--resume", action="store_true")
    ap.add_argument("--dropout", type=float, default=0.1)
    ap.add_argument("--record", default=None)
    ap.add_argument("--log", default="jsonl")
    ap.add_argument("--gan", action="store_true", help="train the toy GAN (manual mode) instead")
    a = ap.parse_args()
    torch.set_num_threads(1)
    if a.gan:
        train_toy_gan(a.root, a.name, steps=a.steps)
        sys.exit(0)
    kw = dict(resume=a.resume, kill_at=a.kill_at, dropout=a.dropout, record=a.record, log=a.log)
    train_toy(a.root, a.name, steps=a.steps, **kw)
    sys.exit(0)
