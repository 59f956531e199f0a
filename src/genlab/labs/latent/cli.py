"""An MNIST autoencoder and its latent space, one verb per part:

1. ``ae``: train the autoencoder; originals vs reconstructions; loss curves.
2. ``classify``: with only N = 50 labelled images, classifiers on the frozen codes against the same encoder +
   classifier trained from scratch (and logistic regression / 1-NN / label spreading on the codes), mean and
   spread over label draws, for the first-N images and for class-balanced draws.
   Draw 0 of the first N also logs test accuracy per epoch (frozen codes vs from scratch, one figure).
3. ``search``: which classifier head on the frozen codes (hidden widths x depth x activation), chosen by
   cross-validation within the N labelled images (never the test set), and the chosen head's test accuracy.
4. ``gan``: a GAN that generates codes; decoded samples.
5. ``cgan``: a conditional GAN, a 10 x k grid, and a CNN judge (agreement and Frechet distance).
6. ``interpolate``: paths between two encoded images (AE space) and between two noise vectors (GAN space).
7. ``figures``: every figure and table again from the trained parts.
"""

from __future__ import annotations

import argparse

from genlab.errors import ConfigError
from genlab.labs import draw, draw_all
from genlab.labs.latent import core, figures
from genlab.labs.latent.classifiers import architecture_search, describe
from genlab.labs.latent.config import PRESETS, LatentConfig
from genlab.runs import Run, choose_device, cpu_threads
from genlab.verbs import add_lab_parser, add_run_arg, add_train_args, at_least, config_from_args, open_run_arg

LAB = core.LAB


def parse_digits(text: str | None, num_classes: int = 10) -> tuple[int, ...]:
    """``"0,3,7"`` -> (0, 3, 7); each must be a class index in 0..num_classes-1."""
    if text is None or text == "":
        return tuple(range(num_classes))
    out = []
    for tok in text.split(","):
        tok = tok.strip()
        if not tok.lstrip("-").isdigit() or not 0 <= int(tok) < num_classes:
            raise ConfigError(f"bad digit {tok!r}; digits must be integers in 0-{num_classes - 1}, e.g. --digits 0,3,7")
        out.append(int(tok))
    return tuple(out)


def parse_pair(text: str) -> tuple[int, int]:
    parts = [p.strip() for p in text.split(",")]
    if len(parts) != 2 or not all(p.isdigit() for p in parts):
        raise ConfigError(f"bad --pair {text!r}; give two test image indices, e.g. --pair 0,1")
    return int(parts[0]), int(parts[1])


def _open(args: argparse.Namespace) -> core.Opened:
    """The ``--run`` of a verb with its ``--set`` / ``--seed`` overrides applied to the config."""
    run, device = open_run_arg(args, LAB)
    cfg = run.config(LatentConfig)
    over = list(getattr(args, "overrides", []) or [])
    if getattr(args, "seed", None) is not None:
        over.append(f"seed={args.seed}")
    return core.open_run(run, device, cfg.override(over) if over else cfg)


def cmd_ae(args: argparse.Namespace) -> int:
    cfg = config_from_args(LatentConfig, args, PRESETS)
    data = core.load_data(cfg)  # a bad dataset fails before a run folder is made
    run = Run.create(LAB, cfg, name=args.name, root=args.run_dir, resume=args.resume)
    device = choose_device(args.device)
    ae = core.train_autoencoder(run, cfg, device=device, quiet=args.quiet, resume=args.resume)
    opened = core.Opened(run, cfg, data, ae, device=device)
    for fn in (figures.fig_reconstructions, figures.fig_ae_loss):
        draw(fn, opened, run)
    s = run.read_summary()
    print(f"autoencoder trained: test BCE {s['ae_test_bce']:.4f}, test MSE {s['ae_test_mse']:.4f}; run: {run.path}")
    print(f"next: genlab latent classify --run {run.path}")
    return 0


def cmd_classify(args: argparse.Namespace) -> int:
    o = _open(args)
    if args.labels is not None or args.draws is not None:
        o.cfg = o.cfg.update({k: v for k, v in (("labels", args.labels), ("draws", args.draws)) if v is not None})
    o.few_label = core.few_label_experiment(o.run, o.ae, o.cfg, device=o.device, quiet=args.quiet)
    draw(figures.fig_few_label, o, o.run)
    if o.cfg.curve_points:
        print(f"accuracy per epoch: {draw(figures.fig_accuracy_per_epoch, o, o.run)}")
    for r in o.few_label["rows"]:
        print(f"{r['labels']:>18}  {r['method']:<30} {r['mean_test_acc']:.3f} +- {r['std']:.3f}")
    print(f"table: {o.run.tables_dir / 'few_label.md'}")
    return 0


def cmd_search(args: argparse.Namespace) -> int:
    o = _open(args)
    if args.labels is not None:
        o.cfg = o.cfg.update({"labels": args.labels})
    o.search = architecture_search(o.run, o.ae, o.cfg, device=o.device, quiet=args.quiet)
    path = draw(figures.table_architecture_search, o, o.run)
    rows = sorted(o.search["rows"], key=lambda r: (-r["cv_acc"], r["cv_ce"], r["weights"]))
    for r in rows[:5]:
        mark = "  <- chosen" if r["chosen"] else ""
        print(f"{r['hidden layers']:>16} {r['activation']:<10} cv {r['cv_acc']:.3f}  test {r['test_acc']:.3f}{mark}")
    b = o.search["best"]
    print(
        f"chosen by {o.search['folds']}-fold cross-validation on {o.search['labels']} labels: "
        f"{describe(b)}, test accuracy {b['test_acc']:.3f}; table: {path}"
    )
    return 0


def cmd_gan(args: argparse.Namespace) -> int:
    o = _open(args)
    o.gan = core.train_gan(o.run, o.ae, o.cfg, conditional=False, device=o.device, quiet=args.quiet, retrain=True)
    print(f"samples: {draw(figures.fig_gan_samples, o, o.run)}")
    print(f"losses: {draw(figures.fig_gan_losses, o, o.run)}")
    return 0


def cmd_cgan(args: argparse.Namespace) -> int:
    o = _open(args)
    digits = parse_digits(args.digits, o.data.num_classes)
    o.judge = core.train_judge(o.run, o.cfg, device=o.device, quiet=args.quiet)
    o.cgan = core.train_gan(
        o.run, o.ae, o.cfg, conditional=True, device=o.device, quiet=args.quiet, retrain=args.retrain
    )
    command = o.run.command("cgan", digits=",".join(map(str, digits)))
    print(f"grid: {draw(figures.fig_cgan_grid, o, o.run, command=command, digits=digits)}")
    draw(figures.fig_cgan_losses, o, o.run)
    rep = core.judge_report(o.run, o.ae, o.judge, o.cfg, gan=o.gan, cgan=o.cgan)
    print(
        f"judge test accuracy {rep['judge_test_accuracy']:.4f}; cGAN samples judged the requested class "
        f"{rep['cgan_judge_agreement']:.1%}; Frechet distance to test images {rep['fd_cgan_vs_test']:.2f} "
        f"(train images: {rep['fd_train_vs_test']:.2f})"
    )
    return 0


def cmd_interpolate(args: argparse.Namespace) -> int:
    o = _open(args)
    if o.gan is None:
        raise ConfigError(
            f"run {str(o.run.path)!r} has no latent GAN yet; run 'genlab latent gan --run {o.run.path}' first"
        )
    pair = parse_pair(args.pair)
    command = o.run.command("interpolate", pair=f"{pair[0]},{pair[1]}")
    print(f"figure: {draw(figures.fig_interpolation, o, o.run, command=command, pair=pair)}")
    return 0


def cmd_figures(args: argparse.Namespace) -> int:
    o = _open(args)
    with cpu_threads(o.cfg.threads if o.device.type == "cpu" else 0):
        paths = draw_all(LAB, o, o.run)
        if o.judge is not None:
            core.judge_report(o.run, o.ae, o.judge, o.cfg, gan=o.gan, cgan=o.cgan)
    print("\n".join(str(p) for p in paths))
    return 0


VERBS = {
    "classify": ("few-label classifiers on frozen codes vs from scratch (table over label draws)", cmd_classify),
    "search": ("classifier architecture search on frozen codes, chosen by cross-validation (table)", cmd_search),
    "gan": ("train the latent GAN on the run's codes; sample grid and loss curves", cmd_gan),
    "cgan": ("train the judge and the conditional GAN; 10 x k grid and judge numbers in summary.json", cmd_cgan),
    "interpolate": ("AE-space and GAN-space interpolation figure", cmd_interpolate),
    "figures": ("every figure and table again from the run's trained parts", cmd_figures),
}


def register(sub: argparse._SubParsersAction) -> None:
    vs = add_lab_parser(sub, LAB, "MNIST autoencoder latent space: few-label classifier, latent GAN, cGAN", __doc__)
    q = vs.add_parser("ae", help="train the conv (denoising) autoencoder in a new run folder")
    add_train_args(q, list(PRESETS), LatentConfig)
    q.set_defaults(func=cmd_ae)
    for verb, (text, handler) in VERBS.items():
        q = vs.add_parser(verb, help=text)
        add_run_arg(q)
        if verb != "figures":
            q.add_argument(
                "--set",
                dest="overrides",
                action="append",
                default=[],
                metavar="KEY=VALUE",
                help="override a config value for this step, e.g. --set gan_steps=2000",
            )
        if verb in ("classify", "search"):
            q.add_argument("--labels", type=at_least(1), default=None, help="number of labelled images (default 50)")
        if verb == "classify":
            q.add_argument("--draws", type=at_least(1), default=None, help="label draws (default 5)")
        if verb == "cgan":
            q.add_argument("--digits", default=None, help="rows of the grid, e.g. 0,3,7 (default: all)")
            q.add_argument("--retrain", action="store_true", help="train the cGAN again even if it exists")
        if verb == "interpolate":
            q.add_argument("--pair", default="0,1", help="two test image indices (default 0,1)")
        q.set_defaults(func=handler)
