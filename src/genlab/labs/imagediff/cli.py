"""Image diffusion steered by a text prompt:

1. ``train``: train the U-Net (``--preset quick|full|tiny``, ``--set cond=text|class|none dataset=...``), then
   draw every figure and table into the run.
2. ``sample``: ``--prompt TEXT`` (text runs; an empty prompt samples unconditionally) or ``--label K`` (class
   runs), ``--n``, ``--guidance``, ``--steps``, ``--sampler``, ``--seed``; ``--out FILE.png`` (a grid) or
   ``FILE.npy`` (an (N, H, W) float array in [0, 1]).
3. ``compose``: 2x2 canvases whose prompts place digits by quadrant, the U-Net with cross-attention to the
   prompt's tokens against the same U-Net with the pooled sentence vector only (two child runs, one table).
4. ``figures``: every figure and table again from a trained run (or a composition run).
"""

from __future__ import annotations

import argparse
import io
import sys
from pathlib import Path

import numpy as np
import torch

from genlab import plots
from genlab.diffusion.images import split_2x2
from genlab.diffusion.samplers import SAMPLERS
from genlab.errors import ConfigError
from genlab.io import atomic_write_bytes
from genlab.labs import draw_all
from genlab.labs.imagediff import compose, core
from genlab.labs.imagediff.config import COMPOSE_PRESETS, PRESETS, ImageDiffConfig
from genlab.runs import Run, choose_device, cpu_threads
from genlab.sweep import add_backend_arg
from genlab.verbs import add_lab_parser, add_run_arg, add_train_args, at_least, config_from_args, number, open_run_arg

LAB = core.LAB


def cmd_train(args: argparse.Namespace) -> int:
    cfg = config_from_args(ImageDiffConfig, args, PRESETS)
    core.load_data(cfg)  # a missing dataset fails before a run folder is made
    core.conditioner(cfg, 10)  # so do a missing text encoder and a canvas without text prompts
    run = Run.create(LAB, cfg, name=args.name, root=args.run_dir, resume=args.resume)
    device = choose_device(args.device)
    core.train(run, cfg, device=device, quiet=args.quiet, resume=args.resume)
    with _threads(cfg, device):
        draw_all(LAB, core.open_run(run, device, quiet=args.quiet), run)
    s = run.read_summary()
    print(
        f"trained {s['train_steps_done']} steps in {s['train_seconds']:.0f} s; adherence "
        f"{s.get('adherence_train', '-')} (training phrasings), {s.get('adherence_heldout', '-')} (held-out) at "
        f"guidance {cfg.guidance:g}; run: {run.path}"
    )
    print(f"next: genlab imagediff sample --run {run.path} --prompt 'a handwritten 7' --out seven.png")
    return 0


def _threads(cfg: ImageDiffConfig, device: torch.device):
    """The run's CPU thread policy for sampling and drawing too (not only while training)."""
    return cpu_threads(cfg.threads if device.type == "cpu" else 0)


def _check_out(out: str) -> Path:
    path = Path(out)
    if path.suffix not in (".png", ".npy"):
        raise ConfigError(f"bad --out {out!r}; end it in .png (a grid) or .npy (an (N, H, W) array)")
    if not path.parent.exists():
        raise ConfigError(f"bad --out {out!r}; folder {str(path.parent)!r} does not exist")
    return path


def cmd_sample(args: argparse.Namespace) -> int:
    run, device = open_run_arg(args, LAB)
    cfg = run.config(ImageDiffConfig)
    out = _check_out(args.out or str(run.path / "samples.png"))
    if args.guidance is not None and args.guidance < 0:
        raise ConfigError(f"bad --guidance {args.guidance}; it must be >= 0 (0 = unconditional, 1 = plain)")
    if args.n < 1:
        raise ConfigError(f"bad --n {args.n}; it must be >= 1")
    check_conditioning(cfg, args.prompt, args.label)
    with _threads(cfg, device):
        return _sample(args, core.open_run(run, device, quiet=args.quiet), out)


def check_conditioning(cfg: ImageDiffConfig, prompt: str | None, label: int | None) -> None:
    """A prompt needs a text-conditioned run, a label a class-conditioned one (one-line errors)."""
    if prompt is not None and prompt.strip() and cfg.cond != "text":
        raise ConfigError(
            f"this run is conditioned on {cfg.cond if cfg.cond != 'none' else 'nothing'}, not on "
            f"text; drop --prompt{' and pass --label K' if cfg.cond == 'class' else ''}"
        )
    if label is not None and cfg.cond != "class":
        raise ConfigError(
            f"--label needs a class-conditioned run; this one is conditioned on {cfg.cond}"
            + (" (use --prompt)" if cfg.cond == "text" else "")
        )


def conditioning(o: core.Opened, n: int, prompt: str | None, label: int | None, guidance: float | None):
    """``(cond, guidance, what)`` for ``n`` samples of ``prompt`` (or class ``label``, or neither: unconditional,
    guidance 0); ``what`` names them. Shared by the ``sample`` verb and :meth:`genlab.api.ImageDiff.sample`."""
    check_conditioning(o.cfg, prompt, label)
    device = o.device
    if prompt is not None and not prompt.strip():
        print("empty prompt: sampling unconditionally (guidance 0)", file=sys.stderr)
        return o.cond.unconditional(n, device), 0.0, "no prompt"
    if prompt is not None:
        return o.cond.of_prompts([prompt] * n, device), guidance, repr(prompt)
    if label is not None:
        if not 0 <= label < o.data.num_classes:
            raise ConfigError(f"bad --label {label}; choose 0..{o.data.num_classes - 1}")
        return o.cond.of_labels(torch.full((n,), label), device), guidance, f"class {o.data.classes[label]}"
    return o.cond.unconditional(n, device), 0.0, "no prompt"


def _sample(args: argparse.Namespace, o: core.Opened, out: Path) -> int:
    cond, guidance, what = conditioning(o, args.n, args.prompt, args.label, args.guidance)
    x = core.generate(
        o,
        cond,
        args.n,
        guidance=guidance,
        steps=args.steps,
        sampler=args.sampler,
        seed=args.seed if args.seed is not None else 0,
    )
    if out.suffix == ".npy":
        buf = io.BytesIO()
        np.save(buf, x[:, 0].numpy().astype(np.float32))
        atomic_write_bytes(out, buf.getvalue())
    else:
        side = int(np.ceil(np.sqrt(args.n)))
        fig, ax = plots.figure(size=(0.6 * side + 1, 0.6 * side + 1))
        plots.show_images(ax, x[:, 0].numpy(), int(np.ceil(args.n / side)), what)
        plots.save_figure(fig, out)
    if o.cfg.canvas == 2:  # read each quadrant on its own
        pred = o.judge(split_2x2(x).flatten(0, 1))[0].view(-1, 4).tolist()
        seen = "; ".join(" ".join(o.data.classes[k] for k in p) for p in pred[:8]) + ("; ..." if len(pred) > 8 else "")
        print(f"{args.n} canvases of {what} -> {out}; the judge reads (TL TR BL BR): {seen}")
        return 0
    pred, _ = o.judge(x)
    counts = torch.bincount(pred, minlength=o.data.num_classes).tolist()
    seen = ", ".join(f"{o.data.classes[k]} x{c}" for k, c in enumerate(counts) if c)
    print(f"{args.n} samples of {what} -> {out}; the judge sees: {seen}")
    return 0


def cmd_compose(args: argparse.Namespace) -> int:
    base = config_from_args(ImageDiffConfig, args, COMPOSE_PRESETS)
    core.conditioner(compose.variant_config(base, True), 10)  # a missing dataset or text encoder fails first
    c = compose.compose(
        base,
        root=args.run_dir,
        name=args.name or "compose",
        jobs=args.jobs,
        device=args.device,
        quiet=args.quiet,
        backend=args.backend,
    )
    s = c.run.read_summary()
    for name in compose.VARIANTS:
        print(
            f"{name:>6}: per-quadrant adherence {s.get(f'quadrant_adherence_{name}')} (both of two right "
            f"{s.get(f'quadrant_both_right_{name}')}) at guidance {base.guidance:g}, "
            f"{s.get(f'train_steps_{name}')} steps in {s.get(f'train_seconds_{name}')} s"
        )
    print(f"figures and tables in {c.run.path}")
    return 0


def cmd_figures(args: argparse.Namespace) -> int:
    run, device = open_run_arg(args, LAB)
    if compose.is_composition(run):
        with cpu_threads(0 if device.type != "cpu" else 1):
            for p in draw_all(LAB, compose.open_composition(run, device), run, only=_only(args)):
                print(p)
        return 0
    with _threads(run.config(ImageDiffConfig), device):
        o = core.open_run(run, device, quiet=args.quiet)
        for p in draw_all(LAB, o, run, only=_only(args)):
            print(p)
    return 0


def _only(args: argparse.Namespace) -> list[str] | None:
    return args.only.split(",") if args.only else None


def register(sub: argparse._SubParsersAction) -> None:
    vs = add_lab_parser(sub, LAB, "image diffusion steered by a text prompt (U-Net, MiniLM, guidance)", __doc__)
    q = vs.add_parser("train", help="train the U-Net in a new run folder, then draw every figure")
    add_train_args(q, PRESETS, ImageDiffConfig)
    q.set_defaults(func=cmd_train)
    q = vs.add_parser("sample", help="generate images for a prompt (or a label) into a .png grid or .npy array")
    add_run_arg(q)
    q.add_argument("--prompt", default=None, help="text prompt (text runs); '' samples without a prompt")
    q.add_argument("--label", type=at_least(0), default=None, help="class index (class-conditioned runs)")
    q.add_argument("--n", type=at_least(1), default=16, help="number of images (default 16)")
    q.add_argument("--guidance", type=number(0.0), default=None, help="guidance scale >= 0 (default: the run's)")
    q.add_argument("--steps", type=at_least(1), default=None, help="sampling steps (default: the run's)")
    q.add_argument("--sampler", default=None, choices=SAMPLERS, help="sampler (default: the run's)")
    q.add_argument("--out", default=None, help="FILE.png (grid) or FILE.npy (default: <run>/samples.png)")
    q.set_defaults(func=cmd_sample)
    q = vs.add_parser(
        "compose",
        help="2x2 canvases placed by prompt ('a 3 in the top left ...'): cross-attention against pooled",
        description="Train the same U-Net twice on 2x2 canvases of digits, with cross-attention to the prompt's "
        "tokens and with the pooled sentence vector only, and compare their per-quadrant adherence.",
    )
    add_train_args(q, COMPOSE_PRESETS, ImageDiffConfig)
    q.add_argument("--jobs", type=at_least(1), default=1, help="variants trained at once (2 on a 2-core machine)")
    add_backend_arg(q)
    q.set_defaults(func=cmd_compose)
    q = vs.add_parser("figures", help="every figure and table again from a trained run")
    add_run_arg(q)
    q.add_argument("--only", default=None, help="comma-separated output names")
    q.set_defaults(func=cmd_figures)
