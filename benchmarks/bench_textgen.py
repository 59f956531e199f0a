"""Benchmarks of the textgen lab; every result is one JSON line on stdout.

    python benchmarks/bench_textgen.py speed   # tokens/s and MFU of nano, mini and lab beside nanoGPT's model.py
    python benchmarks/bench_textgen.py speed --presets nano,mini,lab,gpt2   # ... and how tokens/s scale to gpt2
    python benchmarks/bench_textgen.py budget  # mini + bpe on Alice: validation loss at 5 and 10 minutes
    python benchmarks/bench_textgen.py amp     # mini + bpe on Alice: validation loss after N steps, fp32 vs default

``speed`` times forward + backward + AdamW steps on random token batches (batch 32, block 64) at the presets'
vocabularies (1024-token BPE for nano and mini, GPT-2's 50257 for lab and gpt2), each model under its training
setup: genlab as ``genlab textgen train`` runs it (``amp`` auto: bf16 autocast where this CPU multiplies bf16
faster than float32, fused AdamW), nanoGPT's model as nanoGPT's train.py runs it on a CPU (float32, its
non-fused AdamW), and nanoGPT's model under genlab's setup (``nanoGPT+setup``: what the model code alone is
worth). The models take turns step by step in one process, so a busy machine slows them alike, and
``train_speed_ratio`` divides their tokens/s. Model-FLOP utilisation = (6 N + 12 L T d) FLOPs/token x tokens/s
/ peak, with the peak of the dtype the matmuls run in (``amp``): the best (n x n) product rate of that dtype seen
on the same threads, timed in turn with the steps (so a busy moment cannot push the peak below what a model
achieves). nanoGPT's ``model.py`` is read from a local git mirror (``--nanogpt DIR``, default
/work/.mirror/karpathy+nanoGPT/repo) into a temporary folder at run time; it is never copied into this repository.
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

from genlab.nn.gpt import GPT, MODEL_PRESETS, GPTConfig
from genlab.train import autocast, resolve_amp

CPU = torch.device("cpu")
VOCAB = {"nano": 1024, "mini": 1024, "lab": 50257, "gpt2": 50257}  # the presets' tokenizers (BPE or GPT-2)


def emit(**kw) -> None:
    print(json.dumps(kw), flush=True)


def trainer(model: torch.nn.Module, vocab: int, *, amp: str, fused: bool, batch: int = 32, block: int = 64):
    """A function doing one forward + backward + AdamW step of ``model`` on a fixed random batch."""
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, **({"fused": True} if fused else {"foreach": True}))
    g = torch.Generator().manual_seed(0)
    x = torch.randint(vocab, (batch, block), generator=g)
    y = torch.randint(vocab, (batch, block), generator=g)

    def step():
        with autocast(CPU, amp):
            _, loss = model(x, y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    return step


def matmul_probe(dtype: torch.dtype, n: int = 1024, reps: int = 5):
    """``(fn, flops)``: ``reps`` (n x n) @ (n x n) products in ``dtype`` and their FLOPs (benchmarks/common.py's
    probe is float32 only)."""
    a, b = torch.randn(n, n).to(dtype), torch.randn(n, n).to(dtype)

    def fn():
        for _ in range(reps):
            a @ b

    return fn, reps * 2 * n**3


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
    with contextlib.redirect_stdout(sys.stderr):  # its prints are not JSON
        spec.loader.exec_module(mod)
    return mod


def speed(args) -> None:
    torch.manual_seed(0)
    amp = resolve_amp(CPU, "auto")  # genlab's default
    dtypes = {"off": torch.float32, "bf16": torch.bfloat16}
    probes = {a: matmul_probe(dtypes[a]) for a in {"off", amp}}
    peak = dict.fromkeys(probes, 0.0)  # GFLOP/s
    nano = load_nanogpt(Path(args.nanogpt))
    if nano is None:
        emit(bench="nanogpt", note=f"no nanoGPT mirror at {args.nanogpt}; comparison skipped")
    rows = []
    for preset in args.presets.split(","):
        shape, vocab = MODEL_PRESETS[preset], VOCAB[preset]
        cfg = dict(vocab_size=vocab, dropout=0.0, bias=True, **shape)
        block = shape["block_size"]
        impls = {"genlab": (GPT(GPTConfig(**cfg)), amp, True)}  # (model, amp, fused AdamW)
        if nano is not None:
            with contextlib.redirect_stdout(sys.stderr):
                impls["nanoGPT"] = (nano.GPT(nano.GPTConfig(**cfg)), "off", False)
                if amp != "off":
                    impls["nanoGPT+setup"] = (nano.GPT(nano.GPTConfig(**cfg)), amp, True)
        ref = impls["genlab"][0]
        fns = {
            k: trainer(m.train(), vocab, amp=a, fused=f, batch=args.batch, block=block)
            for k, (m, a, f) in impls.items()
        }
        fns.update({f"peak {a}": fn for a, (fn, _) in probes.items()})
        big = ref.flops_per_token(block) > 1e8  # lab and gpt2: seconds a step on a CPU
        times = time_interleaved(
            fns, warmup=1 if big else 3, steps=max(1, args.steps // 3) if big else args.steps, repeats=args.repeats
        )
        for a, (_, flops) in probes.items():
            peak[a] = max(peak[a], flops / times.pop(f"peak {a}") / 1e9)
        rows += [(preset, vocab, ref, block, k, impls[k][1], impls[k][2], dt) for k, dt in times.items()]
    for a, gf in peak.items():
        emit(
            bench="matmul_peak",
            dtype=str(dtypes[a]).removeprefix("torch."),
            gflops=round(gf, 1),
            threads=torch.get_num_threads(),
        )
    tps_of = {}
    for preset, vocab, ref, block, name, a, fused, dt in rows:
        tps = args.batch * block / dt
        tps_of[preset, name] = tps
        gflops = ref.flops_per_token(block) * tps / 1e9
        emit(
            bench="train_speed",
            preset=preset,
            impl=name,
            amp=a,
            optimizer="AdamW fused" if fused else "AdamW foreach",
            vocab=vocab,
            params=ref.num_params(),
            ms_per_step=round(dt * 1000, 1),
            tokens_per_s=round(tps),
            model_gflops=round(gflops, 2),
            mfu=round(gflops / peak[a], 4),
            batch=args.batch,
            block=block,
            threads=torch.get_num_threads(),
        )
    for preset in args.presets.split(","):
        if (preset, "nanoGPT") in tps_of:
            others = {k: tps_of[preset, k] for p, k in tps_of if p == preset and k.startswith("nanoGPT")}
            emit(
                bench="train_speed_ratio",
                preset=preset,
                amp=amp,
                **{f"genlab_vs_{k}": round(tps_of[preset, "genlab"] / v, 3) for k, v in others.items()},
                goal=1.3,
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
    opt = make_optimizer(
        model.parameters(), "adamw", cfg.lr, weight_decay=cfg.weight_decay, betas=(0.9, 0.95), fused=True
    )
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


def amp_loss(args) -> None:
    """Train the mini preset (1024-token BPE, dropout 0.2) on Alice for ``--steps`` steps twice with the same
    seed, float32 and genlab's default ``amp``, and print both validation-loss curves (fp32, on the same
    validation batches) and the seconds each run took."""
    from genlab.labs.textgen import config as tgc
    from genlab.labs.textgen import core as tg

    root = Path(tempfile.mkdtemp(prefix="textgen-amp-"))
    every = max(1, args.steps // 6)
    for amp in ("off", resolve_amp(CPU, "auto")):
        cfg = tgc.PRESETS["mini"].update(
            dict(steps=args.steps, eval_every=every, amp=amp, threads=torch.get_num_threads())
        )
        run = tg.train(cfg, root=root, name=f"mini-{amp}", device="cpu", quiet=True)
        curve = [(r["step"], round(r["val_loss"], 4)) for r in run.read_metrics() if "val_loss" in r]
        s = run.read_summary()
        emit(
            bench="amp_val_loss",
            preset="mini",
            amp=amp,
            steps=s["steps"],
            val_loss=s["val_loss"],
            train_seconds=s["train_seconds"],
            val_curve=curve,
            threads=torch.get_num_threads(),
        )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("what", nargs="?", default="speed", choices=["speed", "budget", "amp"])
    p.add_argument("--presets", default="nano,mini,lab", help="speed: model shapes (nano, mini, lab, gpt2)")
    p.add_argument("--nanogpt", default="/work/.mirror/karpathy+nanoGPT/repo")
    p.add_argument("--batch", type=int, default=32)
    p.add_argument(
        "--steps", type=int, default=10, help="speed: timed steps; budget: schedule length; amp: steps (300)"
    )
    p.add_argument("--repeats", type=int, default=5, help="speed: timed rounds (best is kept)")
    p.add_argument("--minutes", default="5,10", help="budget: when to measure the validation loss")
    p.add_argument("--threads", type=int, default=None)
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.what != "speed" and args.steps == 10:
        args.steps = {"budget": 6000, "amp": 300}[args.what]
    {"speed": speed, "budget": budget, "amp": amp_loss}[args.what](args)


if __name__ == "__main__":
    sys.exit(main())
