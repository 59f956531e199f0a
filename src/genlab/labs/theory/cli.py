"""``genlab theory <verb>``: ``run`` (every question's experiment, figure and check) and ``figures``."""

from __future__ import annotations

import argparse

from genlab.labs.theory.config import PRESETS, TheoryConfig
from genlab.labs.theory.core import LAB, open_run, run_all
from genlab.runs import Run
from genlab.verbs import add_lab_parser, add_run_arg, add_train_args, config_from_args, open_run_arg


def register(sub: argparse._SubParsersAction) -> None:
    verbs = add_lab_parser(
        sub,
        LAB,
        "theory questions answered and checked by running code",
        "Each theory question of the labs: a short answer, a figure or table, and a check "
        "that can fail.\nStart with: genlab theory run",
    )
    p = verbs.add_parser("run", help="run every experiment, draw every figure and table, print the checks")
    add_train_args(p, presets=PRESETS, config=TheoryConfig)
    p.set_defaults(func=cmd_run)
    p = verbs.add_parser("figures", help="(re)draw the figures and tables of a theory run")
    add_run_arg(p)
    p.add_argument("--only", nargs="*", default=None, metavar="NAME", help="only these outputs (file stems)")
    p.set_defaults(func=cmd_figures)


def _print_checks(th) -> None:
    for name, ev in th.cache.items():
        print(f"  [{'ok' if ev['passed'] else 'FAILED'}] {name}: {ev['check']}")


def cmd_run(args: argparse.Namespace) -> int:
    cfg = config_from_args(TheoryConfig, args, PRESETS)
    run = Run.create(LAB, cfg, name=args.name, root=args.run_dir, resume=args.resume)
    th = run_all(run, args.device, args.quiet)
    _print_checks(th)
    print(f"wrote {run.path} (figures/, tables/, summary.json)")
    return 0 if all(ev["passed"] for ev in th.cache.values()) else 1


def cmd_figures(args: argparse.Namespace) -> int:
    from genlab.labs import draw_all

    run, device = open_run_arg(args, LAB)
    th = open_run(run, device, args.quiet)
    for path in draw_all(LAB, th, run, only=args.only):
        print(path)
    _print_checks(th)
    return 0
