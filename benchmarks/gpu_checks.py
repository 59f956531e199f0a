"""GPU checks: every lab's quick preset on ``--device cuda``, then the GPT ``lab`` preset's speed and MFU.

One script for a person with a CUDA GPU; it exits at once, with one line saying so, where there is none:

    python benchmarks/gpu_checks.py                       # on a CUDA machine: the quick presets, then the GPT
    python benchmarks/gpu_checks.py --device cpu --tiny   # the same script end to end on a CPU, tiny settings

1. The data the labs read (``genlab data fetch alice gpt2 mnist rt glove minilm``; cached sets are skipped).
2. Each lab's quick training through the CLI, as a subprocess into a temporary folder: ``diffusion2d train
   --preset square``, ``textgen train --preset mini``, ``latent ae --preset quick``, ``sentiment train --preset
   quick``, ``imagediff train --preset quick``, ``theory run --preset quick`` (``--tiny``: settings of seconds;
   ``theory run`` exits 1 when one of its checks fails, which tiny settings are too short for: that counts as run,
   with the checks passed recorded). ``--labs a,b`` runs some labs, ``--skip-labs`` / ``--skip-gpt`` one part.
3. The GPT ``lab`` preset (6 x 384, GPT-2 vocabulary of 50257: 30 M parameters) trained ``--gpt-steps`` steps with
   ``amp=bf16``, once eager and once with ``compile=true``; tokens/s between the first and the last logged step
   (the first logged step pays the warm-up and the compile) and MFU: model FLOPs per token (6 N + the attention
   term, :meth:`genlab.nn.gpt.GPT.flops_per_token`) x tokens/s over the GPU's dense bf16 peak from the table
   below (``null``, with a note, for a GPU not in it). ``--tiny`` times the ``nano`` GPT at GPT-2 vocabulary.

Prints one JSON object (per lab: ok, seconds, the command; the GPT runs' numbers) and exits 1 if a check failed.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

DATA = ["alice", "gpt2", "mnist", "rt", "glove", "minilm"]
# each lab's quick training (CUDA) and a tiny one of seconds (the CPU proof run)
QUICK = {
    "diffusion2d": ["diffusion2d", "train", "--preset", "square"],
    "textgen": ["textgen", "train", "--preset", "mini"],
    "latent": ["latent", "ae", "--preset", "quick"],
    "sentiment": ["sentiment", "train", "--preset", "quick"],
    "imagediff": ["imagediff", "train", "--preset", "quick"],
    "theory": ["theory", "run", "--preset", "quick"],
}
TINY = {
    "diffusion2d": ["diffusion2d", "train", "--preset", "square"]
    + ["steps=20", "hidden=16", "depth=2", "n_points=200", "batch_size=200", "sample_steps=8", "eval_n=100", "T=50"],
    "textgen": ["textgen", "train", "--preset", "nano"]
    + ["corpus=sample", "tokenizer=char", "steps=20", "eval_every=0", "eval_iters=1", "batch_size=8"],
    "latent": ["latent", "ae", "--preset", "tiny"],
    "sentiment": ["sentiment", "train", "--preset", "quick"]  # on 80 generated reviews (written first)
    + ["steps=20", "n_train=60", "embeddings=learned", "embed_dim=8", "hidden=8", "eval_every=10"],
    "imagediff": ["imagediff", "train", "--preset", "tiny"],
    "theory": ["theory", "run", "--preset", "tiny"],
}
# dense (no sparsity) bf16 tensor-core peaks in TFLOP/s from the vendors' data sheets, by a part of the device's
# name; the first match counts, so the more specific names come first
BF16_PEAK_TFLOPS = [
    ("H200", 989.0),
    ("H100 PCIe", 756.0),
    ("H100 NVL", 835.0),
    ("H100", 989.0),  # SXM
    ("A100", 312.0),
    ("L40S", 362.0),
    ("L4", 121.0),
]


def bf16_peak(name: str) -> tuple[float | None, str]:
    """``(TFLOP/s, note)``: the dense bf16 peak of a device named ``name``, or None and why."""
    for part, tflops in BF16_PEAK_TFLOPS:
        if part.lower() in name.lower():
            return tflops, f"data-sheet dense bf16 peak of the {part}"
    known = ", ".join(p for p, _ in BF16_PEAK_TFLOPS)
    return None, f"no bf16 peak on record for {name!r} (known: {known}); MFU left out"


def cli(args: list[str], sets: list[str], device: str, root: Path, name: str, threads: int) -> list[str]:
    """The ``python -m genlab`` command of a lab verb with ``--set`` pairs, into ``root`` under ``name``."""
    if threads:
        sets = [*sets, f"threads={threads}"]
    cmd = [sys.executable, "-m", "genlab", *args, "--device", device, "--quiet", "--run-dir", str(root)]
    return cmd + ["--name", name] + [x for kv in sets for x in ("--set", kv)]


def run_cmd(cmd: list[str], timeout: float, env: dict[str, str]) -> dict:
    """Run a command; ``{ok, seconds, command[, error]}`` (error: its last line of stderr, or the timeout)."""
    shown = shlex.join(["genlab", *cmd[3:]])
    t0 = time.perf_counter()
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)
    except subprocess.TimeoutExpired:
        return {"ok": False, "seconds": round(time.perf_counter() - t0, 1), "command": shown, "error": "timed out"}
    out = {"ok": done.returncode == 0, "seconds": round(time.perf_counter() - t0, 1), "command": shown}
    if done.returncode != 0:
        lines = [ln for ln in (done.stderr.strip() or done.stdout.strip()).splitlines() if ln.strip()]
        out["error"] = f"exit status {done.returncode}" + (f": {lines[-1][:300]}" if lines else "")
        out["exit_status"] = done.returncode
    return out


def split_cmd(spec: list[str]) -> tuple[list[str], list[str]]:
    """A table entry as (the verb and its options, the KEY=VALUE settings)."""
    return [a for a in spec if "=" not in a], [a for a in spec if "=" in a]


def gpt_flops(preset: str, vocab: int, overrides: dict) -> tuple[int, float, int, int]:
    """``(parameters, training FLOPs per token, batch_size, block_size)`` of the textgen ``preset`` at ``vocab``."""
    from genlab.labs.textgen.config import PRESETS
    from genlab.labs.textgen.core import model_config
    from genlab.nn.gpt import GPT

    cfg = PRESETS[preset].update(overrides)
    with torch.device("meta"):  # sizes only: no memory, no initialisation
        model = GPT(model_config(cfg, vocab))
    params = sum(p.numel() for p in model.parameters())
    return params, model.flops_per_token(cfg.block_size), cfg.batch_size, cfg.block_size


def tokens_per_s(run_dir: Path, tokens_per_step: int) -> tuple[float | None, float | None]:
    """Tokens/s between the first and the last logged training step of a run, and its last training loss."""
    from genlab.runs import Run

    rows = [r for r in Run(run_dir).read_metrics() if "loss" in r and "time" in r]
    if len(rows) < 2 or rows[-1]["time"] <= rows[0]["time"]:
        return None, rows[-1]["loss"] if rows else None
    first, last = rows[0], rows[-1]
    return (last["step"] - first["step"]) * tokens_per_step / (last["time"] - first["time"]), last["loss"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cuda", help="cuda (the checks' purpose) or cpu (with --tiny: a dry run)")
    ap.add_argument("--tiny", action="store_true", help="settings of seconds per lab and the nano GPT")
    ap.add_argument("--labs", default=",".join(QUICK), help="comma-separated labs to run (default: all six)")
    ap.add_argument("--skip-labs", action="store_true", help="only the GPT speed check")
    ap.add_argument("--skip-gpt", action="store_true", help="only the labs' quick trainings")
    ap.add_argument("--gpt-steps", type=int, default=0, help="GPT timing steps (default: 300, --tiny: 12)")
    ap.add_argument("--gpt-batch", type=int, default=0, help="GPT sequences per step (default: the preset's)")
    ap.add_argument("--timeout", type=float, default=1800.0, help="seconds allowed to each training command")
    ap.add_argument("--keep", metavar="DIR", help="write the runs into DIR (default: a temporary folder)")
    args = ap.parse_args()
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        sys.exit(
            f"gpu_checks: no CUDA device here (torch {torch.__version__}, CUDA build: {torch.version.cuda}); run it "
            f"on a GPU machine with a CUDA build of torch, or as --device cpu --tiny for a dry run on the CPU"
        )
    labs = [lab.strip() for lab in args.labs.split(",") if lab.strip()]
    unknown = sorted(set(labs) - set(QUICK))
    if unknown:
        ap.error(f"unknown lab(s) {', '.join(unknown)}; choose from {', '.join(QUICK)}")
    table = TINY if args.tiny else QUICK
    cpu = not args.device.startswith("cuda")
    threads = 1 if cpu else 0  # a CPU dry run on one thread each; a GPU run leaves torch's default
    env = {**os.environ, **({"OMP_NUM_THREADS": "1"} if cpu else {})}
    t_all = time.perf_counter()
    out: dict = {"bench": "gpu_checks", "device": args.device, "tiny": args.tiny, "torch": torch.__version__}
    if not cpu:
        out.update(device_name=torch.cuda.get_device_name(args.device), cuda=torch.version.cuda)

    def say(text: str) -> None:
        print(f"gpu_checks: {text}", file=sys.stderr, flush=True)

    with tempfile.TemporaryDirectory(prefix="gpu_checks-") as tmp:
        root = Path(args.keep) if args.keep else Path(tmp)
        fetch = run_cmd([sys.executable, "-m", "genlab", "data", "fetch", *DATA], args.timeout, env)
        out["data"] = fetch
        say(f"data fetch {'ok' if fetch['ok'] else 'FAILED: ' + fetch.get('error', '')}")
        out["labs"] = {}
        for lab in [] if args.skip_labs else labs:
            verb, sets = split_cmd(table[lab])
            if args.tiny and lab == "sentiment":  # the rt snippets' evaluation takes minutes on a busy CPU
                from genlab.data.reviews import write_tiny_reviews

                sets.append(f"csv={write_tiny_reviews(root / 'tiny-reviews.csv')}")
            res = run_cmd(cli(verb, sets, args.device, root, f"gpu-check-{lab}", threads), args.timeout, env)
            summary = root / lab / f"gpu-check-{lab}" / "summary.json"
            if lab == "theory" and summary.exists():  # theory run exits 1 when one of its checks fails
                s = json.loads(summary.read_text())
                res["checks_passed"] = f"{s.get('checks_passed')}/{s.get('checks_total')}"
                if args.tiny and res.get("exit_status") == 1 and s.get("checks_total"):
                    res.update(ok=True, note="ran through; tiny settings are too short for the checks to pass")
                    res.pop("error")
            out["labs"][lab] = res
            say(f"{lab} {'ok' if res['ok'] else 'FAILED: ' + res['error']} in {res['seconds']} s")

        preset = "nano" if args.tiny else "lab"
        if args.skip_gpt:
            out["gpt"] = None
            return finish(out, t_all)
        gpt_sets = {"tokenizer": "gpt2", "corpus": "alice", "eval_every": 0, "eval_iters": 1, "warmup": 0}
        if args.gpt_batch:
            gpt_sets["batch_size"] = args.gpt_batch
        steps = args.gpt_steps or (12 if args.tiny else 300)
        log_every = max(1, steps // 6)
        params, fpt, batch, block = gpt_flops(preset, 50257, gpt_sets)
        peak, note = (None, "a CPU: no bf16 peak on record") if cpu else bf16_peak(out["device_name"])
        gpt: dict = {"preset": preset, "vocab": 50257, "params": params, "flops_per_token": fpt}
        gpt.update(batch_size=batch, block=block, steps=steps, log_every=log_every, amp="bf16")
        gpt.update(peak_bf16_tflops=peak, peak_note=note, runs={})
        for mode, compiled in (("eager", False), ("compiled", True)):
            sets = [f"{k}={v}" for k, v in gpt_sets.items()]
            sets += [f"steps={steps}", f"log_every={log_every}", "amp=bf16", f"compile={str(compiled).lower()}"]
            name = f"gpu-check-gpt-{mode}"
            cmd = cli(["textgen", "train", "--preset", preset], sets, args.device, root, name, threads)
            res = run_cmd(cmd, args.timeout, env)
            if res["ok"]:
                tps, loss = tokens_per_s(root / "textgen" / name, batch * block)
                res.update(tokens_per_s=round(tps) if tps else None, final_loss=loss)
                res["model_tflops"] = round(fpt * tps / 1e12, 3) if tps else None
                res["mfu"] = round(fpt * tps / (peak * 1e12), 4) if tps and peak else None
            gpt["runs"][mode] = res
            say(f"GPT {preset} {mode}: {'ok' if res['ok'] else 'FAILED'} {res.get('tokens_per_s')} tokens/s")
        out["gpt"] = gpt
    finish(out, t_all)


def finish(out: dict, t0: float) -> None:
    """Print the JSON object and exit 0 when every check passed, else 1."""
    checks = [out["data"], *out["labs"].values(), *(out["gpt"]["runs"].values() if out["gpt"] else [])]
    out["ok"] = all(c["ok"] for c in checks)
    out["seconds"] = round(time.perf_counter() - t0, 1)
    print(json.dumps(out), flush=True)
    sys.exit(0 if out["ok"] else 1)


if __name__ == "__main__":
    main()
