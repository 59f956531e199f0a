"""``genlab diffusion2d train | sample | figures | elbo | invert``."""

from __future__ import annotations

import argparse
import csv
import io
import math

import torch

from genlab.diffusion import GRIDS, SAMPLERS
from genlab.errors import ConfigError, choose
from genlab.io import atomic_write_text
from genlab.labs import draw
from genlab.labs.diffusion2d import core, figures
from genlab.labs.diffusion2d.config import BONUS_POINT, LAB, PRESETS, REF_POINTS, Diffusion2DConfig
from genlab.runs import cpu_threads, is_main_process
from genlab.verbs import (
    add_lab_parser,
    add_run_arg,
    add_train_args,
    at_least,
    config_from_args,
    number,
    open_run_arg,
    output_file,
)


def parse_point(text: str) -> tuple[float, float]:
    """'x,y' -> (x, y); anything else is a one-line error."""
    parts = [p for p in text.replace("(", "").replace(")", "").split(",") if p.strip()]
    try:
        vals = tuple(float(p) for p in parts)
    except ValueError:
        raise ConfigError(f"bad point {text!r}; write it as x,y, e.g. --point 0.5,-0.5") from None
    if len(vals) != 2:
        raise ConfigError(f"bad point {text!r}: it has {len(vals)} coordinates, a 2D point needs 2 (x,y)")
    if not all(math.isfinite(v) for v in vals):
        raise ConfigError(f"bad point {text!r}: both coordinates must be finite numbers")
    if max(abs(v) for v in vals) > POINT_LIMIT:
        raise ConfigError(
            f"bad point {text!r}: coordinates must lie within +-{POINT_LIMIT:g} (the data sets lie within +-10)"
        )
    return vals  # type: ignore[return-value]


POINT_LIMIT = 1e6  # a point much further out overflows the network's float32 arithmetic (NaN log-densities)


def _open(args: argparse.Namespace) -> core.Trained:
    run, device = open_run_arg(args, LAB)
    return core.open_run(run, device, quiet=args.quiet)


def _check_label(tr: core.Trained, label: int | None) -> None:
    if label is None:
        return
    if not tr.classes:
        raise ConfigError(f"--label {label} given but run {str(tr.run.path)!r} is unconditional; drop --label")
    if not 0 <= label < tr.classes:
        raise ConfigError(f"bad label {label}; this run has classes 0..{tr.classes - 1}")


def describe_quality(q: dict) -> str:
    """One line of :func:`core.quality` numbers (also read back from ``summary.json``)."""
    return (
        f"energy distance {q['energy_distance']:.5f} (noise floor {q['noise_floor']:.5f}), "
        f"{100 * q['in_support']:.1f}% in support"
        + (f", {100 * q['in_region']:.1f}% in their class region" if "in_region" in q else "")
    )


def cmd_train(args: argparse.Namespace) -> int:
    cfg = config_from_args(Diffusion2DConfig, args, PRESETS)
    run = core.train(cfg, root=args.run_dir, name=args.name, resume=args.resume, device=args.device, quiet=args.quiet)
    if not is_main_process():  # under torchrun rank 0 alone writes summary.json: another rank could read it early
        return 0
    s = run.read_summary()
    print(f"run: {run.path}")
    print(f"trained {cfg.steps} steps in {s.get('train_seconds')} s; {describe_quality(s)}")
    return 0


def cmd_sample(args: argparse.Namespace) -> int:
    tr = _open(args)
    _check_label(tr, args.label)
    if args.steps is not None and args.steps < 1:
        raise ConfigError(f"bad --steps {args.steps}; it must be >= 1")
    if args.sampler is not None:
        choose("sampler", args.sampler, SAMPLERS)
    out = output_file(args.out) if args.out else tr.run.path / "samples.csv"
    labels = torch.full((args.n,), args.label) if args.label is not None else None
    with cpu_threads(tr.cfg.threads):
        how = {"sampler": args.sampler, "steps": args.steps, "grid": args.grid, "eta": args.eta}
        x = tr.sample(args.n, seed=args.seed or 0, labels=labels, guidance=args.guidance, **how).x.cpu()
        if not torch.isfinite(x).all():
            raise ConfigError(
                f"the samples are not finite numbers (NaN or inf) with these settings (guidance "
                f"{args.guidance if args.guidance is not None else tr.cfg.guidance:g}); use a smaller --guidance "
                f"or more --steps"
            )
        lab = labels if labels is not None else (torch.arange(args.n) % tr.classes if tr.classes else None)
        q = core.quality(tr, x, lab)
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["x", "y"] + (["label"] if tr.classes else []))
    for i in range(args.n):
        w.writerow([f"{x[i, 0]:.6f}", f"{x[i, 1]:.6f}"] + ([int(lab[i])] if lab is not None else []))
    atomic_write_text(out, buf.getvalue())
    print(f"{args.n} samples -> {out}; {describe_quality(q)}")
    return 0


def cmd_figures(args: argparse.Namespace) -> int:
    run, device = open_run_arg(args, LAB)
    for p in core.draw_figures(run, device, quiet=args.quiet):
        print(p)
    return 0


def cmd_elbo(args: argparse.Namespace) -> int:
    tr = _open(args)
    _check_label(tr, args.label)
    if tr.classes and args.label is None:
        raise ConfigError("this run is conditional: pass --label C (the class to score the points with)")
    if args.mc < 2:
        raise ConfigError(f"bad --mc {args.mc}; it needs >= 2 draws for a standard error")
    points = [parse_point(p) for p in (args.point or [])] or list(REF_POINTS)
    labels = [args.label] * len(points) if args.label is not None else None
    with cpu_threads(tr.cfg.threads):
        rows = core.elbo_rows(tr, points, labels, n_mc=args.mc)
    print(f"{'point':>18} {'ELBO':>10} {'+-se':>7} {'ODE log p':>10} {'z':>7}")
    for r in rows:
        print(
            f"{'(' + format(r['x'], 'g') + ', ' + format(r['y'], 'g') + ')':>18} {r['elbo']:>10.3f} "
            f"{r['stderr']:>7.3f} {r['ode_logp']:>10.3f} {r['z']:>7.2f}"
        )
    print(
        "z = (ELBO - ODE log p) / se: the ELBO bounds the stochastic model's likelihood, so z <= 1 is expected "
        "on the data"
    )
    return 0


def cmd_invert(args: argparse.Namespace) -> int:
    tr = _open(args)
    target = parse_point(args.point)
    if args.steps < 1:
        raise ConfigError(f"bad --steps {args.steps}; it must be >= 1")
    point = f"--point={target[0]:g},{target[1]:g}" if target != BONUS_POINT else ""
    command = tr.run.command("invert", *([point] if point else []), steps=args.steps if args.steps != 1000 else None)
    with cpu_threads(tr.cfg.threads):
        path = draw(figures.fig_bonus, tr, tr.run, command=command, target=target, steps=args.steps)
    s = tr.run.read_summary()
    print(
        f"noise z = {s['bonus_noise']} -> sampled back to {s['bonus_endpoint']} "
        f"(error {s['bonus_endpoint_error']:.2e}); figure {path}"
    )
    return 0


def register(sub: argparse._SubParsersAction, description: str | None = None) -> None:
    """``genlab diffusion2d <verb>``; ``description`` is the lab's story (its ``--help`` text)."""
    vs = add_lab_parser(sub, LAB, "2D diffusion: VE-SDE samplers, conditional model, ELBO, DDPM spiral", description)
    q = vs.add_parser(
        "train", help="train a denoiser (presets: square, grid, spiral, checkerboard) and score its samples"
    )
    add_train_args(q, list(PRESETS), Diffusion2DConfig)
    q.set_defaults(func=cmd_train)

    q = vs.add_parser("sample", help="draw samples from a trained run into a CSV file")
    add_run_arg(q)
    q.add_argument("--sampler", default=None, help=f"one of: {', '.join(SAMPLERS)} (default: the run's)")
    q.add_argument("--steps", type=at_least(1), default=None, help="sampling steps (default: the run's)")
    q.add_argument("--grid", default="uniform", help=f"time grid: {', '.join(GRIDS)}")
    q.add_argument("--eta", type=number(0.0, 1.0), default=0.0, help="DDIM stochasticity (0 = deterministic)")
    q.add_argument("--n", type=at_least(1), default=1000, help="number of samples")
    q.add_argument("--label", type=at_least(0), default=None, help="class of every sample (conditional runs)")
    q.add_argument("--guidance", type=number(0.0), default=None, help="classifier-free guidance scale")
    q.add_argument("--out", default=None, help="CSV file (default: RUN/samples.csv)")
    q.set_defaults(func=cmd_sample)

    q = vs.add_parser("figures", help="write every figure and table of the lab for a trained run")
    add_run_arg(q)
    q.set_defaults(func=cmd_figures)

    q = vs.add_parser("elbo", help="ELBO (+- standard error) and exact ODE log-density of points")
    add_run_arg(q)
    q.add_argument(
        "--point",
        action="append",
        default=None,
        metavar="X,Y",
        help="a point (repeatable); write --point=-0.66,0.66 when x < 0",
    )
    q.add_argument("--label", type=at_least(0), default=None, help="class to score the points with (conditional)")
    q.add_argument("--mc", type=at_least(2), default=1000, help="Monte-Carlo draws per point")
    q.set_defaults(func=cmd_elbo)

    q = vs.add_parser("invert", help="find the noise that the ODE sampler maps to a point; plot its path")
    add_run_arg(q)
    q.add_argument("--point", default="4,5.5", metavar="X,Y", help="target point (default: 4,5.5)")
    q.add_argument("--steps", type=at_least(1), default=1000, help="ODE steps each way")
    q.set_defaults(func=cmd_invert)
