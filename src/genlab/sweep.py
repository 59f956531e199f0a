"""Sweeps: a grid of configs, one child run per cell, brought to done in parallel processes or Ray tasks.

A sweep is a run (its ``config.json`` holds the grid) whose cells train in child runs ``<sweep>/stages/<cell>``.
A cell whose folder already holds the same config is handed to the lab as it is (finished: nothing to do;
cut off: continue from its checkpoint); one holding another config is removed and trained afresh. The lab
supplies ``complete(run, config) -> bool`` (whether it had any work to do): a module-level function, or a
:func:`functools.partial` of one, so that spawned worker processes (or Ray workers) can import it.

Backends: ``local`` (the default) runs the cells in this process or a pool of spawned processes; ``ray`` (the
optional extra ``genlab[ray]``) runs each cell as a Ray task, on a local Ray instance of ``jobs`` CPUs that the
sweep starts and stops, or on the cluster named by ``RAY_ADDRESS``. A Ray task writes its cell's run folder
itself, so on a cluster of several machines the sweep's run folder must be on a file system every node shares
(NFS or the like) under the same path, every node needs genlab (and the data) installed, and paths in the
config (``--csv``) should be absolute. Ray is imported only when that backend is chosen.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from genlab.errors import ConfigError, GenlabError, RunError, choose
from genlab.runs import Run

BACKENDS = ("local", "ray")
BACKEND_HELP = (
    "where the cells run: local (processes on this machine, the default) or ray (one Ray task per cell; needs "
    "pip install 'genlab[ray]'; a local Ray instance of --jobs CPUs, or the cluster in RAY_ADDRESS, whose nodes "
    "must share the run folder's file system)"
)


def add_backend_arg(parser) -> None:
    """The ``--backend`` option of a verb that runs a sweep."""
    parser.add_argument("--backend", choices=BACKENDS, default="local", help=BACKEND_HELP)


def _run_cell(task: tuple) -> tuple[str, bool]:
    complete, sweep_path, name, config = task
    sub = Run(Path(sweep_path) / "stages" / name)
    if sub.path.exists() and not sub.same_config(config):
        shutil.rmtree(sub.path)
    return name, not complete(Run(sweep_path).child(name, config), config)


def _import_ray():
    try:
        import ray
    except ImportError:
        raise ConfigError("--backend ray needs Ray: pip install 'genlab[ray]'") from None
    return ray


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
    backend: str = "local",
) -> tuple[Run, dict[str, bool]]:
    """Create the sweep run ``root/lab/name`` (config: ``grid``) and bring every ``(cell name, config)`` of
    ``cells`` to done with ``complete`` in its child run, with a progress bar unless ``quiet``. Backend
    ``local``: in ``jobs`` spawned processes (1: in this one); ``ray``: one Ray task per cell (see the module's
    docstring; on a cluster the run folder must be on a shared file system). Returns the sweep run and
    ``{cell name: reused}`` (reused: no work needed), in the order of ``cells``."""
    from tqdm.auto import tqdm

    if jobs < 1:
        raise ConfigError(f"bad --jobs {jobs}; it must be >= 1")
    choose("--backend", backend, BACKENDS)
    ray = _import_ray() if backend == "ray" else None
    with _ray_session(ray, jobs) if ray else contextlib.nullcontext():
        out = Run.create(lab, grid, name=name, root=root)
        where = str(out.path.resolve() if ray else out.path)  # a Ray worker elsewhere may start in another folder
        tasks = [(complete, where, cell, config) for cell, config in cells]
        with tqdm(total=len(tasks), desc="sweep", disable=quiet, leave=False) as bar:
            done = _on_ray(ray, tasks, bar) if ray else _local(tasks, jobs, bar)
    return out, dict(done)


def _local(tasks: list[tuple], jobs: int, bar) -> list[tuple[str, bool]]:
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor

    pool = ProcessPoolExecutor(jobs, mp_context=mp.get_context("spawn")) if jobs > 1 else contextlib.nullcontext()
    done = []
    with pool as ex:
        for result in (ex.map if ex else map)(_run_cell, tasks):
            done.append(result)
            bar.update(1)
    return done


@contextlib.contextmanager
def _ray_session(ray, jobs: int):
    """Use the Ray this process is already connected to; else connect to ``RAY_ADDRESS`` or start a local
    instance of ``jobs`` CPUs, and disconnect (stop it) afterwards."""
    if ray.is_initialized():
        yield
        return
    address = os.environ.get("RAY_ADDRESS") or None
    if address:
        _check_reachable(address)
    quiet = {"include_dashboard": False, "log_to_driver": False, "logging_level": logging.ERROR}
    try:
        if address:
            ray.init(address=address, **quiet)
        else:
            ray.init(address="local", num_cpus=jobs, **quiet)
    except Exception as e:  # noqa: BLE001 - Ray raises ConnectionError, ValueError, RuntimeError, ...
        where = f"the Ray cluster at RAY_ADDRESS={address}" if address else "a local Ray instance"
        first = (str(e).strip().splitlines() or [type(e).__name__])[0]
        hint = (
            "; a cluster started with token authentication also needs RAY_AUTH_MODE=token here"
            if address
            else "; Ray gives its processes 30 s to start: on a busy machine try again, or use --backend local"
        )
        raise ConfigError(f"could not start or reach {where}: {first}{hint}") from None
    try:
        yield
    finally:
        ray.shutdown()


def _check_reachable(address: str) -> None:
    """Fail in one line, at once, when nothing answers at ``RAY_ADDRESS`` (``host:port`` or ``ray://host:port``;
    ``auto`` is left to Ray): Ray itself would retry for minutes."""
    import socket

    host, sep, port = address.removeprefix("ray://").rpartition(":")
    if not sep or not port.isdigit() or not host:
        if address in ("auto", "local") or ("://" in address and not address.startswith("ray://")):
            return  # Ray's own forms
        raise ConfigError(
            f"RAY_ADDRESS={address!r} is not host:port, ray://host:port or auto; set it to the address that "
            "'ray start --head' prints, or unset it for a local Ray instance"
        )
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=5).close()
    except OSError as e:
        reason = e.strerror or type(e).__name__
        raise ConfigError(
            f"nothing answers at RAY_ADDRESS={address} ({reason}); start the cluster with 'ray start --head' "
            "and set RAY_ADDRESS to the address it prints, or unset RAY_ADDRESS for a local Ray instance"
        ) from None


def _on_ray(ray, tasks: list[tuple], bar) -> list[tuple[str, bool]]:
    """Submit each cell as a Ray task of one CPU and gather the results (in the order of ``tasks``) as they
    finish. An error inside a task is raised as the task raised it, the other cells are cancelled."""
    cell = ray.remote(num_cpus=1, max_retries=0)(_run_cell)
    refs = [cell.remote(task) for task in tasks]
    index = {ref: i for i, ref in enumerate(refs)}
    done: list[Any] = [None] * len(refs)
    pending = list(refs)
    try:
        while pending:
            ready, pending = ray.wait(pending, num_returns=1)
            for ref in ready:
                done[index[ref]] = _get(ray, ref, tasks[index[ref]][2])
                bar.update(1)
    except BaseException:
        for ref in pending:
            ray.cancel(ref)
        raise
    return done


def _get(ray, ref, name: str) -> tuple[str, bool]:
    try:
        return ray.get(ref)
    except ray.exceptions.RayTaskError as e:
        cause = getattr(e, "cause", None)
        if isinstance(cause, GenlabError):
            raise cause from None  # the one-line error the lab raised, not Ray's traceback
        if isinstance(cause, BaseException):
            raise cause from e  # a bug: its own type, with the remote traceback
        raise
    except ray.exceptions.RayError as e:  # the worker or its node died, the task was cancelled, out of memory
        first = (str(e).strip().splitlines() or [type(e).__name__])[0]
        raise RunError(
            f"sweep cell {name!r} failed on Ray ({type(e).__name__}: {first}); run the sweep again to continue it"
        ) from None
