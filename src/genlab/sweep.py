"""Sweeps: a grid of configs, one child run per cell, brought to done in parallel processes.

A sweep is a run (its ``config.json`` holds the grid) whose cells train in child runs ``<sweep>/stages/<cell>``.
A cell whose folder already holds the same config is handed to the lab as it is (finished: nothing to do;
cut off: continue from its checkpoint); one holding another config is removed and trained afresh. The lab
supplies ``complete(run, config) -> bool`` (whether it had any work to do): a module-level function, or a
:func:`functools.partial` of one, so that spawned worker processes can import it.
"""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from genlab.errors import ConfigError
from genlab.runs import Run


def _run_cell(task: tuple) -> tuple[str, bool]:
    complete, sweep_path, name, config = task
    sub = Run(Path(sweep_path) / "stages" / name)
    if sub.path.exists() and not sub.same_config(config):
        shutil.rmtree(sub.path)
    return name, not complete(Run(sweep_path).child(name, config), config)


def run_sweep(
    lab: str,
    grid: dict[str, Any],
    cells: Sequence[tuple[str, Any]],
    complete: Callable[[Run, Any], bool],
    *,
    root: str | Path = "runs",
    name: str = "sweep",
    jobs: int = 1,
    quiet: bool = False,
) -> tuple[Run, dict[str, bool]]:
    """Create the sweep run ``root/lab/name`` (config: ``grid``) and bring every ``(cell name, config)`` of
    ``cells`` to done with ``complete`` in its child run, in ``jobs`` spawned processes (1: in this one), with a
    progress bar unless ``quiet``. Returns the sweep run and ``{cell name: reused}`` (reused: no work needed)."""
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor

    from tqdm.auto import tqdm

    if jobs < 1:
        raise ConfigError(f"bad --jobs {jobs}; it must be >= 1")
    out = Run.create(lab, grid, name=name, root=root)
    tasks = [(complete, str(out.path), cell, config) for cell, config in cells]
    reused = {}
    pool = ProcessPoolExecutor(jobs, mp_context=mp.get_context("spawn")) if jobs > 1 else contextlib.nullcontext()
    with tqdm(total=len(tasks), desc="sweep", disable=quiet, leave=False) as bar, pool as ex:
        for cell, was_reused in (ex.map if ex else map)(_run_cell, tasks):
            reused[cell] = was_reused
            bar.update(1)
    return out, reused
