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

Data parallelism under ``torchrun`` (WORLD_SIZE > 1) needs no lab code. Every rank seeds the same, so
``batches(step)`` draws the same global batch of ``batch_size`` examples on each; :func:`split_batch` keeps this
rank's contiguous slice; after every backward pass the gradients are averaged across ranks (in ``optimize``,
so the manual mode, clipping and the grad scaler see what one process would), which is the gradient of the
mean loss over the global batch when each rank's loss is a mean over its equal slice. A run on N processes
thus follows one process's trajectory with the same global batch, to float rounding, and ``steps`` means the
same at any world size. Random draws inside ``step_fn`` (dropout, diffusion noise) come from a stream of the
rank and step (:func:`_rank_draws`), so ranks draw independently and the shared stream stays in step; such
draws differ from one process's. Logged losses and evaluation numbers are means across ranks; rank 0 alone
writes metrics, checkpoints and progress. Checkpoints hold the one shared RNG state, so ``--resume`` works
at any world size. ``step_fn`` gets the model itself, not a DistributedDataParallel wrapper, whose gradient hooks
only fire after its own forward (a GAN's step calls its submodules); floating-point buffers (BatchNorm's running
statistics) are averaged across ranks before each evaluation and checkpoint.
"""

from __future__ import annotations

import atexit
import contextlib
import functools
import math
import random
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn
from tqdm.auto import tqdm

from genlab.config import Config, param
from genlab.errors import ConfigError, TrainingDiverged, is_out_of_memory
from genlab.runs import (
    Run,
    cpu_threads,
    is_main_process,
    local_rank,
    rank,
    rng_state,
    seed_everything,
    set_rng_state,
    world_size,
)


@dataclass
class TrainConfig(Config):
    """Loop settings shared by every lab; a lab's config derives from this and adds its own fields."""

    seed: int = param(0, "random seed (python, numpy, torch)")
    steps: int = param(1000, "optimisation steps", min=0)
    lr: float = param(1e-3, "learning rate", min=0.0, max=10.0)
    batch_size: int = param(128, "examples per step", min=1)
    grad_clip: float = param(0.0, "clip the gradient norm to this (0 = off)", min=0.0)
    amp: str = param(
        "off",
        "autocast: off, bf16 (CPU/GPU), fp16 (GPU), or auto (bf16 where this device multiplies bf16 faster)",
        choices=("off", "bf16", "fp16", "auto"),
    )
    ema_decay: float = param(0.0, "EMA of the weights (0 = off, e.g. 0.999)", min=0.0, max=0.99999)
    log_every: int = param(10, "log metrics every N steps", min=1)
    log: str = param(
        "jsonl",
        "metrics: jsonl (metrics.jsonl) or tensorboard (also event files in <run>/tensorboard; needs tensorboard)",
        choices=("jsonl", "tensorboard"),
    )
    eval_every: int = param(0, "evaluate every N steps (0 = only at the end)", min=0)
    ckpt_every: int = param(0, "checkpoint every N steps (0 = only at the end)", min=0)
    max_seconds: float = param(
        0.0, "stop training after this many seconds, with a normal checkpoint (0 = no limit)", min=0.0
    )
    threads: int = param(
        0, "torch CPU threads while training and drawing (0 = torch's default; tiny networks run faster on 1)", min=0
    )
    compile: bool = param(
        False,
        "torch.compile the model's forward while training (pays on a GPU after a compile of a minute or so; "
        "checkpoints are the same)",
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
    fused: bool = False,
) -> torch.optim.Optimizer:
    """Adam or AdamW, fused on CUDA (or wherever ``fused``) and multi-tensor (foreach) elsewhere. On a CPU the
    fused step is one pass over each parameter instead of one per operation (measured on 2 busy cores at 30 M
    parameters: 0.9 s vs 3.2 s a step)."""
    params = list(params)
    on_cuda = any(p.is_cuda for p in params)
    fast = {"fused": True} if on_cuda or fused else {"foreach": True}
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


@functools.cache
def bf16_matmul_pays(device_type: str = "cpu") -> bool:
    """Whether bfloat16 matmuls beat float32 ones here: a CUDA device that supports bf16; a CPU whose flags name
    bf16 units (avx512_bf16 or amx_bf16 in /proc/cpuinfo) and where a timed bf16 product is then also faster
    than the float32 one (without such units torch emulates bf16, slower than float32). Measured once."""
    if device_type == "cuda":  # native bf16 only (Ampere and later): older GPUs emulate it, slower than float32
        return torch.cuda.is_available() and torch.cuda.is_bf16_supported(including_emulation=False)
    if device_type != "cpu":
        return False
    try:
        with open("/proc/cpuinfo") as f:
            flags = set(next((ln for ln in f if ln.startswith("flags")), "").split())
    except OSError:
        return False
    if not flags & {"avx512_bf16", "amx_bf16"}:
        return False

    def best(dtype: torch.dtype) -> float:
        a, b = torch.randn(512, 512).to(dtype), torch.randn(512, 512).to(dtype)
        a @ b
        times = []
        for _ in range(5):
            t = time.perf_counter()
            a @ b
            times.append(time.perf_counter() - t)
        return min(times)

    return best(torch.bfloat16) < best(torch.float32)


def resolve_amp(device: torch.device, amp: str) -> str:
    """``amp`` with ``auto`` resolved: bf16 where :func:`bf16_matmul_pays` on ``device``, else off."""
    if amp == "auto":
        return "bf16" if bf16_matmul_pays(device.type) else "off"
    return amp


def autocast(device: torch.device, amp: str):
    """The autocast context for ``amp`` in off|bf16|fp16|auto (fp16 only on CUDA; auto: :func:`resolve_amp`).
    fp16 needs a gradient scaler, which :func:`fit` adds; bf16 has float32's range and trains without one."""
    amp = resolve_amp(device, amp)
    if amp == "off":
        return contextlib.nullcontext()
    dtype = torch.bfloat16 if amp == "bf16" else torch.float16
    if amp == "fp16" and device.type != "cuda":
        raise ConfigError(f"amp 'fp16' needs a CUDA device, not {device.type}; use --set amp=bf16 (or off) there")
    return torch.autocast(device_type=device.type, dtype=dtype)


def map_tensors(batch: Any, fn: Callable[[torch.Tensor], Any]) -> Any:
    """``batch`` with ``fn`` applied to every tensor in it (in nested tuples, namedtuples, lists and dicts), the
    structure kept and other values passed whole."""
    if isinstance(batch, torch.Tensor):
        return fn(batch)
    if isinstance(batch, tuple) and hasattr(batch, "_fields"):  # a namedtuple
        return type(batch)(*(map_tensors(v, fn) for v in batch))
    if isinstance(batch, (list, tuple)):
        return type(batch)(map_tensors(v, fn) for v in batch)
    if isinstance(batch, Mapping):
        return {k: map_tensors(v, fn) for k, v in batch.items()}
    return batch


def to_device(batch: Any, device: torch.device | str) -> Any:
    """``batch`` with every tensor (in nested tuples, namedtuples, lists and dicts) on ``device``; other values
    are passed whole. On CUDA a host tensor is copied through pinned (page-locked) memory with
    ``non_blocking=True``, so the copy overlaps the work already queued on the GPU. On the CPU the batch is
    returned as it is."""
    device = torch.device(device)
    if device.type == "cpu":
        return batch
    cuda = device.type == "cuda"

    def move(x: torch.Tensor) -> torch.Tensor:
        if cuda and x.device.type == "cpu":
            return (x if x.is_pinned() else x.pin_memory()).to(device, non_blocking=True)
        return x.to(device)

    return map_tensors(batch, move)


def use_fused_step(opt: torch.optim.Optimizer, device_type: str = "cuda") -> bool:
    """Switch an Adam/AdamW whose parameters all sit on ``device_type`` to its fused step (one kernel over all
    parameters), also after a resume from a checkpoint taken without it. :func:`make_optimizer` picks fused by
    where the parameters are when it runs, which is often the CPU, before :func:`fit` moves the model to the
    GPU; fit calls this on CUDA. Says whether it switched; other optimisers and fused ones are left alone."""
    if not isinstance(opt, torch.optim.Adam | torch.optim.AdamW):
        return False
    params = [p for group in opt.param_groups for p in group["params"]]
    if not params or not all(p.device.type == device_type and p.is_floating_point() for p in params):
        return False
    groups = [g for g in opt.param_groups if not g.get("fused") and not g.get("differentiable")]
    for group in groups:
        group["fused"], group["foreach"] = True, False
        for p in group["params"]:  # the fused kernel keeps the step count as a float32 tensor beside the weights
            state = opt.state.get(p)
            if state and isinstance(state.get("step"), torch.Tensor):
                state["step"] = state["step"].to(device=p.device, dtype=torch.float32)
    return bool(groups)


def init_distributed(device: torch.device) -> bool:
    """Under torchrun (WORLD_SIZE > 1) join the process group once (NCCL on CUDA, gloo otherwise) and say True.

    ``init_process_group`` reads the launcher's standard environment (RANK, WORLD_SIZE, MASTER_ADDR,
    MASTER_PORT), on one node or several; LOCAL_RANK picks this process's GPU.
    """
    if world_size() <= 1:
        return False
    import torch.distributed as dist

    if not dist.is_initialized():
        if device.type == "cuda":
            torch.cuda.set_device(device.index if device.index is not None else local_rank())
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
        atexit.register(lambda: dist.is_initialized() and dist.destroy_process_group())
    return True


def _first_rows(batch: Any) -> int | None:
    """The leading dimension of the first tensor (depth first) in a batch structure, or None."""
    if isinstance(batch, torch.Tensor):
        return batch.shape[0] if batch.dim() > 0 else None
    items = batch.values() if isinstance(batch, Mapping) else batch if isinstance(batch, (list, tuple)) else ()
    for item in items:
        rows = _first_rows(item)
        if rows is not None:
            return rows
    return None


def split_batch(batch: Any, rank: int, world: int) -> Any:
    """Rank ``rank``'s share of a global batch: its contiguous ``1/world`` slice of every tensor (in nested
    tuples, lists and dicts) whose leading dimension is the batch's, i.e. the first tensor's; other values
    (tables shared by the whole batch, None, numbers) are passed whole. The batch size must divide evenly."""
    rows = _first_rows(batch)
    if rows is None:
        raise TypeError(f"batches(step) returned no tensor to split across {world} processes: {type(batch).__name__}")
    if rows % world:
        raise ConfigError(
            f"a batch of {rows} examples does not split evenly across {world} processes; use a batch_size that "
            f"is a multiple of {world} (--set batch_size=...) or another number of processes"
        )
    lo, hi = rank * rows // world, (rank + 1) * rows // world

    return map_tensors(batch, lambda x: x[lo:hi] if x.dim() > 0 and x.shape[0] == rows else x)


@contextlib.contextmanager
def _rank_draws(seed: int, step: int, device: torch.device):
    """Torch's random draws of the block (``step_fn``'s dropout, noise) from a stream of (seed, step, rank);
    the shared stream that ``batches`` and ``eval_fn`` draw from is restored afterwards, so it stays the same
    on every rank, and a resumed run draws the same numbers again."""
    cuda = [torch.cuda.current_device()] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=cuda):
        own = random.Random(f"genlab/{seed}/{step}/{rank()}").getrandbits(63)
        torch.default_generator.manual_seed(own)
        if cuda:
            torch.cuda.manual_seed(own)
        yield


def _average_gradients(params: Iterable[nn.Parameter], world: int, bucket: int = 1 << 23) -> None:
    """Replace each gradient by its mean across ranks (all-reduce over flat buckets of up to ``bucket``
    elements of one dtype and device)."""
    import torch.distributed as dist

    groups: dict[tuple[torch.dtype, torch.device], list[list[torch.Tensor]]] = {}
    for p in params:
        if p.grad is None:
            continue
        buckets = groups.setdefault((p.grad.dtype, p.grad.device), [[]])
        if buckets[-1] and sum(g.numel() for g in buckets[-1]) + p.grad.numel() > bucket:
            buckets.append([])
        buckets[-1].append(p.grad)
    for buckets in groups.values():
        for grads in buckets:
            flat = torch.cat([g.reshape(-1) for g in grads])
            dist.all_reduce(flat)
            flat.div_(world)
            offset = 0
            for g in grads:
                g.copy_(flat[offset : offset + g.numel()].view_as(g))
                offset += g.numel()


def _mean_across_ranks(values: Mapping[str, float], device: torch.device) -> dict[str, float]:
    """The mean of each value over the ranks (every rank passes the same keys in the same order)."""
    if world_size() <= 1 or not values:
        return dict(values)
    import torch.distributed as dist

    t = torch.tensor(list(values.values()), dtype=torch.float64, device=device if device.type == "cuda" else "cpu")
    dist.all_reduce(t)
    return dict(zip(values, (t / world_size()).tolist(), strict=True))


def _any_rank(flag: bool, device: torch.device) -> bool:
    import torch.distributed as dist

    t = torch.tensor([float(flag)], device=device if device.type == "cuda" else "cpu")
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return bool(t.item())


def _share_weights(model: nn.Module) -> None:
    """Rank 0's parameters and buffers on every rank (as DDP does at its start)."""
    import torch.distributed as dist

    for t in [*model.parameters(), *model.buffers()]:
        if t.dtype != torch.bool:
            dist.broadcast(t.data, 0)


def _average_buffers(model: nn.Module) -> None:
    """Average floating-point buffers (BatchNorm's running statistics, which each rank updates from its slice)
    across ranks, before an evaluation or a checkpoint."""
    import torch.distributed as dist

    for b in model.buffers():
        if b.is_floating_point():
            dist.all_reduce(b.data)
            b.data.div_(world_size())


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
    Under torchrun each rank trains on its slice of every batch (see the module's docstring); ``eval_fn``
    runs on every rank and the means of its numbers are logged (it may score a share of the data per rank).
    A batch may come on the CPU: :func:`to_device` moves it (pinned, non-blocking on CUDA). On CUDA an Adam(W)
    takes its fused step (:func:`use_fused_step`); with ``cfg.compile`` ``step_fn`` gets ``torch.compile(model)``,
    a handle sharing the model's weights (its own submodules, called directly, run uncompiled), while
    evaluation and checkpoints use ``model`` itself.
    """
    opts: dict[str, torch.optim.Optimizer] = (
        dict(optimizers) if isinstance(optimizers, Mapping) else {"main": optimizers}
    )
    if not manual and len(opts) != 1:
        raise ValueError("automatic mode takes exactly one optimiser; use manual=True to step several")
    amp = resolve_amp(device, cfg.amp)
    autocast(device, amp)  # a bad amp for this device fails here, before the run starts
    model.to(device)
    had_checkpoint = run.last_checkpoint.exists()  # read before the ranks meet: none of them has written yet
    distributed, world = init_distributed(device), world_size()
    if distributed:
        _share_weights(model)
    ema = None
    if cfg.ema_decay > 0:
        ema = torch.optim.swa_utils.AveragedModel(
            model, multi_avg_fn=torch.optim.swa_utils.get_ema_multi_avg_fn(cfg.ema_decay)
        )
    scaler = torch.amp.GradScaler("cuda", enabled=amp == "fp16")  # fp16 needs one; bf16 and float32 do not

    start, best, resumed_from = 0, math.inf, None
    seed_everything(cfg.seed)
    if resume and run.last_checkpoint.exists():
        state = training_state(run.load_checkpoint(map_location=device), run.last_checkpoint, RESUME_KEYS)
        load_state(model, state["model"], run.last_checkpoint)
        try:
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
        except (KeyError, TypeError, ValueError, AttributeError, IndexError, RuntimeError) as e:
            if is_out_of_memory(e):
                raise
            raise _not_a_training_checkpoint(run.last_checkpoint, e) from None
        if is_main_process():
            run.truncate_metrics(start)
    elif run.metrics_path.exists() and is_main_process():
        run.metrics_path.unlink()  # a fresh run starts a fresh log
    if device.type == "cuda":
        for opt in opts.values():
            use_fused_step(opt)
    # a compiled handle for the training forward; checkpoints save ``model`` itself, so keys stay unprefixed
    trained = torch.compile(model) if getattr(cfg, "compile", False) else model
    tensorboard = None
    if getattr(cfg, "log", "jsonl") == "tensorboard" and is_main_process():
        from genlab.tensorboard_log import TensorBoardLog

        tensorboard = TensorBoardLog(run, start)

    def log_metrics(record: dict[str, Any]) -> None:
        run.log_metrics(record)
        if tensorboard is not None:
            tensorboard.write(record)

    def checkpoint(step: int, is_best: bool = False, reason: str = "") -> None:
        if distributed:
            _average_buffers(model)
        if not is_main_process():
            return
        run.save_checkpoint(
            {
                "step": step,
                "model": model.state_dict(),
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
        if distributed:
            _average_buffers(model)
        model.eval()
        with torch.no_grad():
            values = {k: _as_float(v) for k, v in eval_fn(ema.module if ema is not None else model).items()}
        model.train(was_training)
        values = _mean_across_ranks(values, device)
        is_best = best_key is not None and values.get(best_key, math.inf) < best
        if is_best:
            best = values[best_key]
        log_metrics({"step": step, **values})
        return {"_best": float(is_best), **values}

    def optimize(name: str, loss: torch.Tensor) -> None:
        """One optimiser's update from ``loss``: the same backward / clip / scaler path in both modes."""
        opt = opts[name]
        opt.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        if distributed:
            _average_gradients([p for group in opt.param_groups for p in group["params"]], world)
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
    closing = contextlib.closing(tensorboard) if tensorboard is not None else contextlib.nullcontext()
    with cpu_threads(cfg.threads if device.type == "cpu" else 0), closing:
        try:
            for step in range(start + 1, cfg.steps + 1):
                batch = batches(step)
                norms.clear()
                draws = _rank_draws(cfg.seed, step, device) if distributed else contextlib.nullcontext()
                if distributed:
                    batch = split_batch(batch, rank(), world)
                batch = to_device(batch, device)
                with draws:
                    if manual:
                        with autocast(device, amp):
                            losses = step_fn(trained, batch, optimize)
                    else:
                        with autocast(device, amp):
                            losses = step_fn(trained, batch)
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
                if distributed and cfg.max_seconds:
                    time_up = _any_rank(time_up, device)  # every rank stops at the same step
                is_eval = bool(cfg.eval_every) and step % cfg.eval_every == 0 and step != cfg.steps
                is_ckpt = bool(cfg.ckpt_every) and step % cfg.ckpt_every == 0 and step != cfg.steps
                if step % cfg.log_every == 0 or step == cfg.steps or time_up or is_eval or is_ckpt:
                    values = {k: _as_float(v) for k, v in losses.items()}  # the only host-device sync
                    values = _mean_across_ranks(values, device)  # the global batch's loss
                    check_finite(step, values)
                    last = values
                    if step % cfg.log_every == 0 or step == cfg.steps:
                        lr = next(iter(opts.values())).param_groups[0]["lr"]
                        log_metrics({"step": step, **values, "lr": lr, "time": round(time.perf_counter() - t0, 3)})
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
        if end > start or not had_checkpoint:
            checkpoint(end, bool(final_eval.get("_best")), reason=stopped)
        if distributed:
            import torch.distributed as dist

            dist.barrier()  # the checkpoint exists when fit returns, on every rank
    seconds = time.perf_counter() - t0
    return FitResult(
        step=max(step, start),
        last=last,
        seconds=seconds,
        resumed_from=resumed_from,
        ema=ema.module if ema is not None else None,
        stopped_by_time=bool(stopped),
    )


RESUME_KEYS = ("step", "model", "optimizers", "rng")


def training_state(state: Any, path: Any, keys: tuple[str, ...] = ("model",)) -> dict[str, Any]:
    """``state`` if it is a checkpoint :func:`fit` wrote (a dict with ``keys``), else a one-line RunError."""
    if not isinstance(state, dict) or any(k not in state for k in keys):
        missing = [k for k in keys if not isinstance(state, dict) or k not in state]
        raise _not_a_training_checkpoint(path, f"a {type(state).__name__} without {', '.join(missing)}")
    return state


def _not_a_training_checkpoint(path: Any, why: object) -> Exception:
    from genlab.errors import RunError

    text = str(why).strip().splitlines()[0][:160] if str(why).strip() else type(why).__name__
    return RunError(
        f"the checkpoint {str(path)!r} is not one genlab's training wrote ({text}); it is damaged or from another "
        f"program: train the run again (or --resume from an intact checkpoint)"
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
    state = training_state(run.load_checkpoint(which, map_location=device), run.last_checkpoint)
    if ema and state.get("ema") is not None:
        if not isinstance(state["ema"], dict):
            raise _not_a_training_checkpoint(
                run.last_checkpoint, f"its EMA weights are a {type(state['ema']).__name__}"
            )
        ema_sd = {k.removeprefix("module."): v for k, v in state["ema"].items() if k.startswith("module.")}
        load_state(model, ema_sd, run.last_checkpoint)
    else:
        load_state(model, state["model"], run.last_checkpoint)
    model.to(device)
    return state
