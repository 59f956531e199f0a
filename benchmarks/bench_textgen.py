"""Benchmarks of the textgen lab; every result is one JSON line on stdout.

    python benchmarks/bench_textgen.py speed   # tokens/s and MFU of nano and mini vs a float32 matmul peak,
                                               # beside nanoGPT's model.py when a mirror of it is present
    python benchmarks/bench_textgen.py budget  # mini + bpe on Alice: validation loss at 5 and 10 minutes

``speed`` times forward + backward + AdamW steps on random token batches (batch 32, block 64). Model-FLOP
utilisation = (6 N + 12 L T d) FLOPs/token x tokens/s / peak, with the peak the best float32 matmul rate seen
on the same threads, both alone before the models and timed in turn with their steps (so a busy moment cannot
push the peak below what a model achieves, which printed an MFU of 1.39 once). nanoGPT's ``model.py`` is read
from a local git mirror (``--nanogpt DIR``, default /work/.mirror/karpathy+nanoGPT/repo) into a temporary folder
at run time; it is never copied into this repository.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
from common import matmul_peak, matmul_probe

from genlab.nn.gpt import GPT, MODEL_PRESETS, GPTConfig


def emit(**kw) -> None:
    print(json.dumps(kw), flush=True)


def trainer(model: torch.nn.Module, vocab: int, *, batch: int = 32, block: int = 64):
    """A function doing one forward + backward + AdamW step of ``model`` on a fixed random batch."""
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, foreach=True)
    g = torch.Generator().manual_seed(0)
    x = torch.randint(vocab, (batch, block), generator=g)
    y = torch.randint(vocab, (batch, block), generator=g)

    def step():
        _, loss = model(x, y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    return step


def time_interleaved(steps_fns: dict, *, warmup: int = 3, steps: int = 10, repeats: int = 5) -> dict:
    """Seconds per step of each function: the best of ``repeats`` rounds, the functions taking turns in each
    round so that a busy machine slows them alike."""
    for fn in steps_fns.values():
        for _ in range(warmup):
            fn()
    best = {k: float("inf") for k in steps_fns}
    for _ in range(repeats):
        for k, fn in steps_fns.items():
            t = time.perf_counter()
            for _ in range(steps):
                fn()
            best[k] = min(best[k], (time.perf_counter() - t) / steps)
    return best


def load_nanogpt(mirror: Path):
    """nanoGPT's model module, read from the mirror's HEAD into a temporary folder (or None)."""
    if not mirror.exists():
        return None
    try:
        src = subprocess.run(
            ["git", "--git-dir", str(mirror), "show", "HEAD:model.py"], capture_output=True, text=True, check=True
        ).stdout
    except (subprocess.CalledProcessError, FileNotFoundError):
        return None
    path = Path(tempfile.mkdtemp(prefix="nanogpt-")) / "nanogpt_model.py"
    path.write_text(src)
    spec = importlib.util.spec_from_file_location("nanogpt_model", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def speed(args) -> None:
    torch.manual_seed(0)
    # the peak is the best of a probe before the models and the same probe timed in turn with their steps: on a
    # busy machine a probe timed alone can land in a slow moment and fall below what a model then achieves
    peak = matmul_peak()
    probe, probe_flops = matmul_probe()
    nano = load_nanogpt(Path(args.nanogpt))
    if nano is None:
        emit(bench="nanogpt", note=f"no nanoGPT mirror at {args.nanogpt}; comparison skipped")
    measured = []  # (preset, vocab, params, flops per token, block, impl, seconds per step)
    for preset, vocab in (("nano", 1024), ("mini", 1024)):  # the presets' BPE sizes
        shape = MODEL_PRESETS[preset]
        cfg = dict(vocab_size=vocab, dropout=0.0, bias=True, **shape)
        impls = [("genlab", GPT(GPTConfig(**cfg)))]
        if nano is not None:
            impls.append(("nanoGPT", nano.GPT(nano.GPTConfig(**cfg))))
        ref = impls[0][1]
        fns = {name: trainer(m.train(), vocab, batch=args.batch, block=shape["block_size"]) for name, m in impls}
        times = time_interleaved({**fns, "peak": probe}, steps=args.steps, repeats=args.repeats)
        peak = max(peak, probe_flops / times.pop("peak") / 1e9)
        block = shape["block_size"]
        measured += [
            (preset, vocab, ref.num_params(), ref.flops_per_token(block), block, n, dt) for n, dt in times.items()
        ]
    emit(bench="matmul_peak", gflops=round(peak, 1), threads=torch.get_num_threads())
    for preset, vocab, params, flops_tok, block, name, dt in measured:
        tps = args.batch * block / dt
        emit(
            bench="train_speed",
            preset=preset,
            impl=name,
            vocab=vocab,
            params=params,
            ms_per_step=round(dt * 1000, 1),
            tokens_per_s=round(tps),
            model_gflops=round(flops_tok * tps / 1e9, 2),
            mfu=round(flops_tok * tps / 1e9 / peak, 4),
            batch=args.batch,
            block=block,
            threads=torch.get_num_threads(),
        )


def budget(args) -> None:
    """Train mini + bpe on Alice and report validation loss when 5 and 10 minutes of training have passed."""
    from genlab.labs.textgen import config as tgc
    from genlab.labs.textgen import core as tg
    from genlab.nn.gpt_tools import generate
    from genlab.runs import Run
    from genlab.train import fit, make_optimizer, warmup_cosine

    marks = sorted(float(m) * 60 for m in args.minutes.split(","))
    cfg = tgc.PRESETS["mini"].update({"eval_every": 0, "steps": args.steps})
    torch.manual_seed(cfg.seed)
    root = Path(tempfile.mkdtemp(prefix="textgen-budget-"))
    run = Run.create("textgen", cfg, name="budget", root=root)
    tok, data = tg.prepare_data(cfg, run.path)
    model = GPT(tg.model_config(cfg, tok.vocab_size))
    opt = make_optimizer(model.parameters(), "adamw", cfg.lr, weight_decay=cfg.weight_decay, betas=(0.9, 0.95))
    sched = warmup_cosine(opt, cfg.steps, cfg.warmup, 0.1)
    state = {"train_s": 0.0, "last": time.perf_counter(), "next": 0}

    class Done(Exception):
        pass

    def on_step(step: int, values: dict) -> None:
        now = time.perf_counter()
        state["train_s"] += now - state["last"]
        if state["next"] < len(marks) and state["train_s"] >= marks[state["next"]]:
            model.eval()
            with torch.no_grad():
                ev = tg.estimate_loss(model, data, cfg.update({"eval_iters": 50}))
            model.train()
            emit(
                bench="val_loss_at_time",
                preset="mini",
                tokenizer="bpe",
                vocab=tok.vocab_size,
                minutes=round(state["train_s"] / 60, 2),
                step=step,
                train_loss=round(values["loss"], 4),
                val_loss=round(ev["val_loss"], 4),
                threads=torch.get_num_threads(),
            )
            state["next"] += 1
            if state["next"] == len(marks):
                raise Done
        state["last"] = time.perf_counter()  # evaluation time is not training time

    with contextlib.suppress(Done):
        fit(
            run,
            model,
            opt,
            lambda m, b: {"loss": m(*b)[1]},
            lambda s: data.batch("train", cfg.batch_size),
            cfg=cfg,
            device=torch.device("cpu"),
            scheduler=sched,
            quiet=True,
            callbacks=[on_step],
        )
    model.eval()
    sample = generate(model, tok, "Alice was beginning", 60, temperature=0.8, top_k=40, seed=0)
    emit(bench="sample", preset="mini", text="Alice was beginning" + sample)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("what", nargs="?", default="speed", choices=["speed", "budget"])
    p.add_argument("--nanogpt", default="/work/.mirror/karpathy+nanoGPT/repo")
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--steps", type=int, default=10, help="speed: timed steps; budget: schedule length")
    p.add_argument("--repeats", type=int, default=5, help="speed: timed rounds (best is kept)")
    p.add_argument("--minutes", default="5,10", help="budget: when to measure the validation loss")
    p.add_argument("--threads", type=int, default=None)
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.what == "budget" and args.steps == 10:
        args.steps = 6000
    speed(args) if args.what == "speed" else budget(args)


if __name__ == "__main__":
    sys.exit(main())
