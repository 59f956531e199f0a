"""``genlab report``: run every lab's quick configuration (or reuse its runs) and gather one HTML page."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("report", help="run every lab's demo and gather the figures into one HTML page")
    p.set_defaults(func=lambda a: None)
