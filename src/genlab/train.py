"""The one training loop every lab uses.

A lab hands :func:`fit` its model, its optimiser(s), a ``batches(step)`` function and a
``step_fn(model, batch) -> dict of losses``. The loop owns everything else: device placement of the model,
seeding, optional autocast, the backward pass and optimiser step, gradient clipping, an optional EMA copy
of the weights, the learning-rate schedule, a NaN/Inf guard, periodic evaluation, metrics, checkpoints
every ``ckpt_every`` steps and at the end, ``--resume``, and a progress bar.

Two modes:

* automatic (default): ``step_fn`` returns a dict with a scalar tensor ``"loss"``; the loop runs
  ``zero_grad / backward / clip / step`` on the single optimiser.
* manual (``manual=True``, e.g. GANs): ``step_fn(model, batch, optimize)`` decides the order of its
  updates and calls ``optimize(name, loss)`` for each; the loop does the backward pass, clipping, grad
  scaler and step there, and guards, logs, checkpoints and resumes every optimiser it was given.

Distributed training under ``torchrun`` goes through :func:`wrap_distributed`: the model given to
``step_fn`` is the wrapped one, so labs need no change when it is switched on.
"""

from __future__ import annotations

import contextlib
import functools
import math
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn
from tqdm.auto import tqdm

from genlab.config import Config, param
from genlab.errors import TrainingDiverged
from genlab.runs import Run, cpu_threads, is_main_process, rng_state, seed_everything, set_rng_state, world_size


@dataclass
class TrainConfig(Config):
    """Loop settings shared by every lab; a lab's config derives from this and adds its own fields."""

    seed: int = param(0, "random seed (python, numpy, torch)")
    steps: int = param(1000, "optimisation steps", min=0)
    lr: float = param(1e-3, "learning rate", min=0.0, max=10.0)
    batch_size: int = param(128, "examples per step", min=1)
    grad_clip: float = param(0.0, "clip the gradient norm to this (0 = off)", min=0.0)
    amp: str = param("off", "autocast: off, bf16 (CPU/GPU) or fp16 (GPU)", choices=("off", "bf16", "fp16"))
    ema_decay: float = param(0.0, "EMA of the weights (0 = off, e.g. 0.999)", min=0.0, max=0.99999)
    log_every: int = param(10, "log metrics every N steps", min=1)
    eval_every: int = param(0, "evaluate every N steps (0 = only at the end)", min=0)
    ckpt_every: int = param(0, "checkpoint every N steps (0 = only at the end)", min=0)
    max_seconds: float = param(
        0.0, "stop training after this many seconds, with a normal checkpoint (0 = no limit)", min=0.0
    )
    threads: int = param(
        0, "torch CPU threads while training and drawing (0 = torch's default; tiny networks run faster on 1)", min=0
    )


StepFn = Callable[[nn.Module, Any], Mapping[str, Any]]


@dataclass
class FitResult:
    """What :func:`fit` returns: the final step, the last logged values, and the wall time."""

    step: int
    last: dict[str, float] = field(default_factory=dict)
    seconds: float = 0.0
    resumed_from: int | None = None
    ema: nn.Module | None = None
    stopped_by_time: bool = False


def make_optimizer(
    params: Iterable[nn.Parameter],
    name: str = "adam",
    lr: float = 1e-3,
    *,
    weight_decay: float = 0.0,
    betas: tuple[float, float] = (0.9, 0.999),
) -> torch.optim.Optimizer:
    """Adam or AdamW, fused on CUDA and multi-tensor (foreach) elsewhere."""
    params = list(params)
    on_cuda = any(p.is_cuda for p in params)
    fast = {"fused": True} if on_cuda else {"foreach": True}
    if name == "adam":
        return torch.optim.Adam(params, lr=lr, betas=betas, weight_decay=weight_decay, **fast)
    if name == "adamw":
        return torch.optim.AdamW(params, lr=lr, betas=betas, weight_decay=weight_decay, **fast)
    from genlab.errors import choose

    choose("optimizer", name, ["adam", "adamw"])
    raise AssertionError  # unreachable


def warmup_cosine(
    optimizer: torch.optim.Optimizer, steps: int, warmup: int = 0, min_ratio: float = 0.1
) -> torch.optim.lr_scheduler.LambdaLR:
    """Linear warm-up for ``warmup`` steps, then cosine decay to ``min_ratio`` of the base rate."""

    def factor(step: int) -> float:
        if warmup and step < warmup:
            return (step + 1) / warmup
        progress = min(1.0, (step - warmup) / max(1, steps - warmup))
        return min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * progress))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def autocast(device: torch.device, amp: str):
    """The autocast context for ``amp`` in off|bf16|fp16 (fp16 only on CUDA)."""
    if amp == "off":
        return contextlib.nullcontext()
    dtype = torch.bfloat16 if amp == "bf16" else torch.float16
    if amp == "fp16" and device.type != "cuda":
        from genlab.errors import ConfigError

        raise ConfigError("amp 'fp16' needs a CUDA device; use --set amp=bf16 on the CPU")
    return torch.autocast(device_type=device.type, dtype=dtype)


def wrap_distributed(model: nn.Module, device: torch.device) -> nn.Module:
    """Under torchrun (WORLD_SIZE > 1) start the process group and wrap ``model`` in DDP; else return it."""
    if world_size() <= 1:
        return model
    import torch.distributed as dist

    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    ids = [device.index] if device.type == "cuda" else None
    return nn.parallel.DistributedDataParallel(model, device_ids=ids)


def _unwrap(model: nn.Module) -> nn.Module:
    return model.module if isinstance(model, nn.parallel.DistributedDataParallel) else model


def _as_float(v: Any) -> float:
    return float(v.detach().float().item()) if isinstance(v, torch.Tensor) else float(v)


Optimize = Callable[[str, torch.Tensor], None]


def _one_trainer_per_run(fn):
    """Run ``fn(run, ...)`` holding the run's lock (a second trainer of the same run folder is refused)."""

    @functools.wraps(fn)
    def locked(run: Run, *args: Any, **kwargs: Any):
        with run.lock():
            return fn(run, *args, **kwargs)

    return locked


@_one_trainer_per_run
def fit(
    run: Run,
    model: nn.Module,
    optimizers: torch.optim.Optimizer | Mapping[str, torch.optim.Optimizer],
    step_fn: StepFn,
    batches: Callable[[int], Any],
    *,
    cfg: TrainConfig,
    device: torch.device,
    scheduler: Any = None,
    eval_fn: Callable[[nn.Module], Mapping[str, float]] | None = None,
    best_key: str | None = None,
    manual: bool = False,
    resume: bool = False,
    quiet: bool = False,
    callbacks: Iterable[Callable[[int, Mapping[str, Any]], None]] = (),
    desc: str | None = None,
) -> FitResult:
    """Train ``model`` for ``cfg.steps`` steps (continuing from the last checkpoint when ``resume``).

    ``batches(step)`` returns the batch for a step (it may draw random numbers: the RNG states are
    checkpointed, so a resumed run draws the same ones). ``step_fn(model, batch)`` returns the losses; in
    manual mode it is ``step_fn(model, batch, optimize)`` and calls ``optimize(name, loss)`` for each of its
    optimisers (zero_grad, backward, clipping, grad scaler and step are done there, by the loop).
    ``eval_fn(model)`` returns validation numbers, logged every ``cfg.eval_every`` steps and at the end;
    with ``best_key`` the lowest value of that key also writes ``checkpoints/best.pt``.
    ``cfg.max_seconds`` ends training early, with a normal checkpoint and evaluation at the step reached.
    Losses stay on the device between log steps (no host-device sync per step); the NaN/Inf guard checks
    them at every log step and before every checkpoint. ``callbacks(step, losses)`` get the raw losses.
    Step numbers start at 1; step k has finished when a checkpoint says ``step == k``.
    """
    opts: dict[str, torch.optim.Optimizer] = (
        dict(optimizers) if isinstance(optimizers, Mapping) else {"main": optimizers}
    )
    if not manual and len(opts) != 1:
        raise ValueError("automatic mode takes exactly one optimiser; use manual=True to step several")
    model.to(device)
    ema = None
    if cfg.ema_decay > 0:
        ema = torch.optim.swa_utils.AveragedModel(
            model, multi_avg_fn=torch.optim.swa_utils.get_ema_multi_avg_fn(cfg.ema_decay)
        )
    scaler = torch.amp.GradScaler("cuda", enabled=(cfg.amp == "fp16" and device.type == "cuda"))

    start, best, resumed_from = 0, math.inf, None
    seed_everything(cfg.seed)
    if resume and run.last_checkpoint.exists():
        state = run.load_checkpoint(map_location=device)
        load_state(model, state["model"], run.last_checkpoint)
        for name, opt in opts.items():
            opt.load_state_dict(state["optimizers"][name])
        if scheduler is not None and state.get("scheduler") is not None:
            scheduler.load_state_dict(state["scheduler"])
        if ema is not None and state.get("ema") is not None:
            ema.load_state_dict(state["ema"])
        if state.get("scaler") is not None:
            scaler.load_state_dict(state["scaler"])
        set_rng_state(state["rng"])
        start, best, resumed_from = int(state["step"]), float(state.get("best", math.inf)), int(state["step"])
        run.truncate_metrics(start)
    elif run.metrics_path.exists() and is_main_process():
        run.metrics_path.unlink()  # a fresh run starts a fresh log

    wrapped = wrap_distributed(model, device)

    def checkpoint(step: int, is_best: bool = False, reason: str = "") -> None:
        run.save_checkpoint(
            {
                "step": step,
                "model": _unwrap(model).state_dict(),
                "optimizers": {n: o.state_dict() for n, o in opts.items()},
                "scheduler": scheduler.state_dict() if scheduler is not None else None,
                "ema": ema.state_dict() if ema is not None else None,
                "scaler": scaler.state_dict() if scaler.is_enabled() else None,
                "rng": rng_state(),
                "best": best,
                "config": cfg.to_dict(),
            },
            best=is_best,
        )
        run.mark_progress(step, cfg.steps, done=True if reason else None, reason=reason)

    def evaluate(step: int) -> dict[str, float]:
        nonlocal best
        if eval_fn is None:
            return {}
        was_training = model.training
        model.eval()
        with torch.no_grad():
            values = {k: _as_float(v) for k, v in eval_fn(ema.module if ema is not None else model).items()}
        model.train(was_training)
        is_best = best_key is not None and values.get(best_key, math.inf) < best
        if is_best:
            best = values[best_key]
        run.log_metrics({"step": step, **values})
        return {"_best": float(is_best), **values}

    def optimize(name: str, loss: torch.Tensor) -> None:
        """One optimiser's update from ``loss``: the same backward / clip / scaler path in both modes."""
        opt = opts[name]
        opt.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        if cfg.grad_clip > 0:
            scaler.unscale_(opt)
            norms[name] = nn.utils.clip_grad_norm_(
                [p for group in opt.param_groups for p in group["params"]], cfg.grad_clip
            )
        scaler.step(opt)
        scaler.update()

    def check_finite(step: int, values: Mapping[str, float]) -> None:
        for k, v in values.items():
            if not math.isfinite(v) and not k.startswith("grad_norm"):
                raise TrainingDiverged(_diverged_message(step, k, v))

    t0 = time.perf_counter()
    last: dict[str, float] = {}
    losses: Mapping[str, Any] = {}
    norms: dict[str, torch.Tensor] = {}
    bar = tqdm(
        total=cfg.steps,
        initial=start,
        desc=desc or run.lab,
        disable=quiet or not is_main_process(),
        dynamic_ncols=True,
        leave=False,
    )
    model.train()
    step, stopped = start, ""
    with cpu_threads(cfg.threads if device.type == "cpu" else 0):
        try:
            for step in range(start + 1, cfg.steps + 1):
                batch = batches(step)
                norms.clear()
                if manual:
                    with autocast(device, cfg.amp):
                        losses = step_fn(wrapped, batch, optimize)
                else:
                    with autocast(device, cfg.amp):
                        losses = step_fn(wrapped, batch)
                    optimize(next(iter(opts)), losses["loss"])
                if norms:
                    losses = {
                        **losses,
                        **{("grad_norm" if not manual else f"grad_norm_{k}"): v for k, v in norms.items()},
                    }
                if scheduler is not None:
                    scheduler.step()
                if ema is not None:
                    ema.update_parameters(model)
                time_up = bool(cfg.max_seconds) and time.perf_counter() - t0 > cfg.max_seconds
                is_eval = bool(cfg.eval_every) and step % cfg.eval_every == 0 and step != cfg.steps
                is_ckpt = bool(cfg.ckpt_every) and step % cfg.ckpt_every == 0 and step != cfg.steps
                if step % cfg.log_every == 0 or step == cfg.steps or time_up or is_eval or is_ckpt:
                    values = {k: _as_float(v) for k, v in losses.items()}  # the only host-device sync
                    check_finite(step, values)
                    last = values
                    if step % cfg.log_every == 0 or step == cfg.steps:
                        lr = next(iter(opts.values())).param_groups[0]["lr"]
                        run.log_metrics({"step": step, **values, "lr": lr, "time": round(time.perf_counter() - t0, 3)})
                        bar.set_postfix({k: f"{v:.4g}" for k, v in values.items() if not k.startswith("grad")})
                is_best = False
                if is_eval and not time_up:
                    is_best = bool(evaluate(step).get("_best"))
                if is_ckpt or is_best:
                    checkpoint(step, is_best)
                bar.update(1)
                for cb in callbacks:
                    cb(step, losses)
                if time_up:
                    stopped = f"time budget of {cfg.max_seconds:g} s"
                    break
        finally:
            bar.close()
        end = step if stopped else cfg.steps
        if losses and not last:
            last = {k: _as_float(v) for k, v in losses.items()}
        final_eval = evaluate(end) if end > start else {}
        last.update({k: v for k, v in final_eval.items() if k != "_best"})
        if end > start or not run.last_checkpoint.exists():
            checkpoint(end, bool(final_eval.get("_best")), reason=stopped)
    seconds = time.perf_counter() - t0
    return FitResult(
        step=max(step, start),
        last=last,
        seconds=seconds,
        resumed_from=resumed_from,
        ema=ema.module if ema is not None else None,
        stopped_by_time=bool(stopped),
    )


def load_state(model: nn.Module, state: Mapping[str, Any], path: Any) -> None:
    """``model.load_state_dict(state)``; weights of another model are a one-line RunError, not a traceback."""
    from genlab.errors import RunError

    try:
        model.load_state_dict(state)
    except (RuntimeError, KeyError, TypeError, AttributeError) as e:
        first = str(e).strip().splitlines()[0][:200] if str(e).strip() else type(e).__name__
        raise RunError(
            f"the checkpoint {str(path)!r} holds weights of another model ({first}); was the run "
            f"trained with another config or genlab version? Train it again"
        ) from None


def _diverged_message(step: int, key: str, value: float) -> str:
    return (
        f"{key} became {value} at step {step} (checked at log steps); lower the learning rate "
        f"(--set lr=...) or clip gradients (--set grad_clip=1.0), then train again"
    )


def load_weights(
    run: Run, model: nn.Module, *, which: str = "last", ema: bool = True, device: torch.device | str = "cpu"
) -> dict[str, Any]:
    """Load a run's trained weights into ``model`` (the EMA weights when the run kept them and ``ema``).

    Returns the checkpoint dict (for its ``step`` and ``config``).
    """
    state = run.load_checkpoint(which, map_location=device)
    if ema and state.get("ema") is not None:
        ema_sd = {k.removeprefix("module."): v for k, v in state["ema"].items() if k.startswith("module.")}
        load_state(model, ema_sd, run.last_checkpoint)
    else:
        load_state(model, state["model"], run.last_checkpoint)
    model.to(device)
    return state
