"""A sweep of bad inputs and faults over every genlab lab, ``report`` and ``data`` (issue #20).

Each case runs one ``nice -n 19 genlab ...`` process on copies of tiny runs that the sweep trains first (with
the genlab under test, so an older checkout is tested on run folders it wrote itself), and is classified:

* ``clean``: the error the case asks for: the expected exit status (2, or 130 / 1 where documented), exactly one
  non-empty line on stderr, no traceback, and the case's own check (e.g. the line names the bad value) holds;
* ``correct``: the documented correct outcome: exit status 0 and the case's check (e.g. "--resume of a finished
  run changed no file", "no NaN in what it printed");
* ``traceback``: "Traceback" on stderr, or an unexpected exit status with several lines;
* ``silent``: exit status 0 where an error was required, a message that is not one line, a wrong or misleading
  message (the case's check failed), or no answer before the case's time limit;
* ``lost``: a file that existed before the case and must stay (every file for a command that fails; the run's
  config, checkpoints, metrics, tokenizer and the dataset cache for one that succeeds) changed or vanished, or a
  crafted pickle ran code (it made its marker file).

Cases are grouped in classes: bad-input, damaged-file, environment, misleading, lost-data, safety. Cases that
need ``mount`` (a full disk as a 64 KiB tmpfs, a read-only bind mount) are skipped where mounting is not
allowed, and listed as skipped. :func:`surface_cases` holds the cases of surfaces added after the first
sweep: ``export`` and exported folders (``model.safetensors``), ``--log tensorboard``, sentiment's candidate /
dropout / epochs / preset report and sweep axes, textgen's ``attention --word`` and ``score --report``, latent's
``search``. The dataset cache is never touched: ``GENLAB_DATA`` points at a copy of the
datasets the cases need (``alice gpt2 mnist rt minilm``) in the sweep's temporary folder.

    python tools/fuzz_sweep.py --out sweep.json                      # every case against .venv/bin/genlab
    python tools/fuzz_sweep.py --genlab /tmp/old_genlab --only textgen --out old.json
    python tools/fuzz_sweep.py --surfaces --jobs 2 --out new.json   # only the cases of surface_cases()
    python tools/fuzz_sweep.py --list                                # the case names and classes
"""

from __future__ import annotations

import argparse
import concurrent.futures
import contextlib
import dataclasses
import fnmatch
import gzip
import hashlib
import json
import os
import pickle
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

OUTCOMES = ("clean", "correct", "traceback", "silent", "lost")
CLASSES = ("bad-input", "damaged-file", "environment", "misleading", "lost-data", "safety")
DATASETS = ("alice", "gpt2", "mnist", "rt", "minilm")
MEMORY_LIMIT = 6 << 30  # address space of every case process: a huge config fails instead of eating the machine
PRECIOUS = (
    "*/config.json",
    "*/progress.json",
    "*/metrics.jsonl",
    "*.pt",
    "*.safetensors",
    "*/tokenizer.json",
    "*/chars.json",
    "*/vocab.json",
    "data/*",
    "inputs/*",
)

# ------------------------------------------------------------------------------------------------ the cases


@dataclasses.dataclass
class Result:
    rc: int | None
    out: str
    err: str
    seconds: float
    timed_out: bool = False

    @property
    def lines(self) -> list[str]:
        return [ln for ln in self.err.replace("\r", "\n").splitlines() if ln.strip()]


@dataclasses.dataclass
class Ctx:
    """Where a case runs: ``C`` its folder (the process's working folder), ``R`` = C/runs, ``D`` = C/data (its
    own copy of the dataset cache: hard links, so damage a file with :func:`replace_bytes`)."""

    C: Path
    fixtures: Path
    env: dict[str, str]
    cleanups: list[Callable[[], None]] = dataclasses.field(default_factory=list)
    marker: Path | None = None

    @property
    def R(self) -> Path:  # noqa: N802
        return self.C / "runs"

    @property
    def D(self) -> Path:  # noqa: N802
        return self.C / "data"

    @property
    def inputs(self) -> Path:
        p = self.C / "inputs"
        p.mkdir(exist_ok=True)
        return p

    def run(self, which: str) -> Path:
        return self.R / which

    def fmt(self, text: str) -> str:
        return (
            text.replace("{R}", str(self.R))
            .replace("{C}", str(self.C))
            .replace("{D}", str(self.D))
            .replace("{F}", str(self.fixtures))
        )


Setup = Callable[[Ctx], Any]
Check = Callable[[Result, Ctx], "str | None"]


@dataclasses.dataclass
class Case:
    name: str
    cls: str
    argv: Sequence[str]
    expect: str = "error"  # error | ok | either (a clean error or a correct success) | debug (a traceback is asked for)
    uses: tuple[str, ...] = ()  # fixture runs copied into the case's runs/ folder, e.g. "diffusion2d/sq"
    needs: tuple[str, ...] = ()  # fixture runs the setup reads from {F}/runs (not copied)
    setup: Setup | None = None
    check: Check | None = None
    words: tuple[str, ...] = ()  # the one-line error must hold one of these (case-insensitive)
    codes: tuple[int, ...] = (2,)
    keep: str | tuple[str, ...] = ""  # all | precious | content | none | globs; default: all for errors, else precious
    timeout: float = 240.0
    env: dict[str, str] = dataclasses.field(default_factory=dict)
    mount: bool = False  # needs mount (tmpfs / read-only bind)
    one_line: bool = True
    interrupt: tuple[Callable[[Ctx], bool], float] | None = None  # SIGINT when the condition holds or after N s

    @property
    def lab(self) -> str:
        return self.name.split("/")[0]  # cases are named <lab>/<what>, "cli/..." for the command line itself


Q = ("--quiet", "--device", "cpu")
D2_TINY = (
    *("--set", "steps=40", "--set", "hidden=16", "--set", "depth=2", "--set", "n_points=200"),
    *("--set", "batch_size=200", "--set", "sample_steps=8", "--set", "eval_n=100", "--set", "log_every=5"),
)
TEXTGEN_TINY = {
    "corpus": "sample",
    "tokenizer": "char",
    "n_layer": 1,
    "n_head": 2,
    "n_embd": 32,
    "block_size": 48,
    "steps": 30,
    "batch_size": 8,
    "eval_every": 0,
    "eval_iters": 2,
    "warmup": 5,
    "lr": 0.003,
    "threads": 1,
    "log_every": 5,
}
SENT_TINY = (
    *("--set", "n_train=60", "--embeddings", "learned", "--set", "embed_dim=8", "--hidden", "8"),
    *("--set", "widths=8", "--window", "2", "--set", "eval_every=5", "--lr", "0.03", "--steps", "20"),
)
LONG = "Alice was beginning to get very tired " * 150  # ~5700 characters: far longer than any tiny model's context
EMOJI = "🙂🐿️ 北京 ñandú 🙃"


def run_verb(lab: str, verb: str, run: str, *extra: str) -> list[str]:
    return [lab, verb, "--run", f"{{R}}/{run}", *Q, *extra]


def d2(verb: str, *extra: str, run: str = "sq") -> list[str]:
    return run_verb("diffusion2d", verb, f"diffusion2d/{run}", *extra)


def d2_train(*extra: str, name: str = "new") -> list[str]:
    return ["diffusion2d", "train", "--run-dir", "{R}", "--name", name, *Q, *D2_TINY, *extra]


def tg(verb: str, *extra: str, run: str = "char") -> list[str]:
    return run_verb("textgen", verb, f"textgen/{run}", *extra)


def tg_train(*extra: str, name: str = "new") -> list[str]:
    return ["textgen", "train", "--run-dir", "{R}", "--name", name, *Q, "--config", "{F}/inputs/textgen.json", *extra]


def lt(verb: str, *extra: str) -> list[str]:
    return run_verb("latent", verb, "latent/lt", *extra)


def lt_train(*extra: str, name: str = "new") -> list[str]:
    return ["latent", "ae", "--preset", "tiny", "--run-dir", "{R}", "--name", name, *Q, *extra]


def st(verb: str, *extra: str, run: str = "att") -> list[str]:
    return run_verb("sentiment", verb, f"sentiment/{run}", *extra)


def st_train(*extra: str, name: str = "new", model: str = "gru") -> list[str]:
    return [
        *("sentiment", "train", "--run-dir", "{R}", "--name", name, *Q),
        *("--csv", "{F}/inputs/reviews.csv", *SENT_TINY, "--model", model, *extra),
    ]


def im(verb: str, *extra: str) -> list[str]:
    return run_verb("imagediff", verb, "imagediff/img", *extra)


def im_train(*extra: str, name: str = "new") -> list[str]:
    return ["imagediff", "train", "--preset", "tiny", "--run-dir", "{R}", "--name", name, *Q, *extra]


def th(verb: str, *extra: str) -> list[str]:
    return run_verb("theory", verb, "theory/th", *extra)


def th_train(*extra: str, name: str = "new") -> list[str]:
    return ["theory", "run", "--preset", "tiny", "--run-dir", "{R}", "--name", name, *Q, *extra]


# ---------------------------------------------------------------------------------------------- damage kits


def replace_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` as a new file at ``path`` (never through a hard link shared with the fixtures)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.exists() or path.is_symlink():
        path.unlink()
    path.write_bytes(data)


def cut(rel: str, keep: float | int = 0.5) -> Setup:
    """Truncate the file ``rel`` (under C, with {R}/{D} allowed) to a share or a number of its bytes."""

    def setup(ctx: Ctx) -> None:
        p = Path(ctx.fmt(rel))
        data = p.read_bytes()
        n = int(len(data) * keep) if isinstance(keep, float) else keep
        replace_bytes(p, data[:n])

    return setup


def put(rel: str, data: bytes | str | Callable[[Ctx], bytes | str]) -> Setup:
    def setup(ctx: Ctx) -> None:
        body = data(ctx) if callable(data) else data
        replace_bytes(Path(ctx.fmt(rel)), body.encode() if isinstance(body, str) else body)

    return setup


def remove(rel: str) -> Setup:
    def setup(ctx: Ctx) -> None:
        p = Path(ctx.fmt(rel))
        shutil.rmtree(p) if p.is_dir() else p.unlink()

    return setup


def edit_json(rel: str, fn: Callable[[Any], Any]) -> Setup:
    def setup(ctx: Ctx) -> None:
        p = Path(ctx.fmt(rel))
        replace_bytes(p, (json.dumps(fn(json.loads(p.read_text())), indent=2) + "\n").encode())  # as genlab writes

    return setup


def steps(*setups: Setup) -> Setup:
    def setup(ctx: Ctx) -> None:
        for s in setups:
            s(ctx)

    return setup


def no_fallback(run: str) -> Setup:
    """Remove prev.pt / best.pt so the damage to last.pt must show."""

    def setup(ctx: Ctx) -> None:
        for extra in ("prev.pt", "best.pt"):
            (ctx.run(run) / "checkpoints" / extra).unlink(missing_ok=True)

    return setup


def torch_save(rel: str, make: Callable[[Ctx], Any]) -> Setup:
    def setup(ctx: Ctx) -> None:
        import torch

        p = Path(ctx.fmt(rel))
        if p.exists():
            p.unlink()
        p.parent.mkdir(parents=True, exist_ok=True)
        torch.save(make(ctx), p)

    return setup


class _RunsCode:
    """Unpickling this calls os.system('touch MARKER'): a checkpoint that runs code."""

    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __reduce__(self):
        return (os.system, (f"touch '{self.marker}'",))


def evil_checkpoint(rel: str) -> Setup:
    def make(ctx: Ctx) -> Any:
        return {"step": 1, "model": _RunsCode(ctx.marker), "ema": None}

    return torch_save(rel, make)


def evil_mnist(ctx: Ctx) -> None:
    """A crafted mnist.pkl.gz whose size and time are recorded in .complete (so the cheap cache check passes)."""
    path = ctx.D / "mnist" / "mnist.pkl.gz"
    replace_bytes(path, gzip.compress(pickle.dumps(_RunsCode(ctx.marker), protocol=2)))
    restat(ctx, "mnist", "mnist.pkl.gz")


def restat(ctx: Ctx, name: str, target: str) -> None:
    """Record a file's current size and mtime in the dataset's .complete (as genlab's fetch writes them)."""
    marker = ctx.D / name / ".complete"
    meta = json.loads(marker.read_text())
    p = ctx.D / name / target
    meta.setdefault("stats", {})[target] = [["", p.stat().st_size, p.stat().st_mtime_ns]]
    replace_bytes(marker, json.dumps(meta, indent=2).encode())


def bitrot(name: str, target: str) -> Setup:
    """Flip bytes in the middle of a cached file, keeping its size and mtime (what the cheap check looks at)."""

    def setup(ctx: Ctx) -> None:
        p = ctx.D / name / target
        st = p.stat()
        data = bytearray(p.read_bytes())
        mid = len(data) // 2
        data[mid : mid + 64] = b"\x00\xff" * 32
        replace_bytes(p, bytes(data))
        os.utime(p, ns=(st.st_atime_ns, st.st_mtime_ns))

    return setup


def cut_run(src: str, dst: str, steps_to: int) -> Setup:
    """A copy of a finished run that looks cut off: progress says not done, config asks for more steps."""

    def setup(ctx: Ctx) -> None:
        shutil.copytree(ctx.run(src), ctx.run(dst))
        edit_json(f"{{R}}/{dst}/progress.json", lambda b: {**b, "steps": steps_to, "done": False})(ctx)
        edit_json(f"{{R}}/{dst}/config.json", lambda b: {**b, "config": {**b["config"], "steps": steps_to}})(ctx)

    return setup


def random_bytes(n: int = 2048, seed: int = 0) -> bytes:
    return random.Random(seed).randbytes(n)


# ------------------------------------------------------------------------------------------- environment kits


def _sh(*cmd: str) -> None:
    subprocess.run(cmd, check=True, capture_output=True)


def can_mount(work: Path) -> bool:
    probe = work / ".mount-probe"
    probe.mkdir(exist_ok=True)
    try:
        _sh("mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(probe))
    except (OSError, subprocess.CalledProcessError):
        return False
    _sh("umount", str(probe))
    probe.rmdir()
    return True


def _umount(path: Path) -> None:
    for args in (("umount", str(path)), ("umount", "-l", str(path))):
        if subprocess.run(args, capture_output=True).returncode == 0:
            return


def full_disk(rel: str, copy_from: str | None = None) -> Setup:
    """Mount a small tmpfs at ``rel`` (copying a run into it first) and fill it to the last byte."""

    def setup(ctx: Ctx) -> None:
        where = Path(ctx.fmt(rel))
        src = Path(ctx.fmt(copy_from)) if copy_from else None
        size = sum(p.stat().st_size for p in src.rglob("*") if p.is_file()) if src else 0
        where.mkdir(parents=True, exist_ok=True)
        _sh("mount", "-t", "tmpfs", "-o", f"size={size + (256 << 10)}", "tmpfs", str(where))
        ctx.cleanups.append(lambda: _umount(where))
        if src is not None:
            shutil.copytree(src, where, dirs_exist_ok=True)
        with contextlib.suppress(OSError), open(where / "filler.bin", "wb") as f:
            while True:
                f.write(b"\0" * 4096)
                f.flush()
                os.fsync(f.fileno())

    return setup


def read_only(rel: str) -> Setup:
    def setup(ctx: Ctx) -> None:
        where = Path(ctx.fmt(rel))
        where.mkdir(parents=True, exist_ok=True)
        _sh("mount", "--bind", str(where), str(where))
        ctx.cleanups.append(lambda: _umount(where))
        _sh("mount", "-o", "remount,bind,ro", str(where))

    return setup


def busy_trainer(argv: list[str], lock: str) -> Setup:
    """Start a first (long) trainer in the background and wait until it holds the run (its lock, or its config
    and a few seconds for a genlab without locks)."""

    def setup(ctx: Ctx) -> None:
        cmd = ["nice", "-n", "19", ctx.env["GENLAB_EXE"], *[ctx.fmt(a) for a in argv]]
        proc = subprocess.Popen(
            cmd,
            cwd=ctx.C,
            env=ctx.env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
            preexec_fn=_limit_memory,
        )

        def stop() -> None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()

        ctx.cleanups.append(stop)
        lock_path, config = Path(ctx.fmt(lock)), Path(ctx.fmt(lock)).parent / "config.json"
        t0 = time.time()
        while time.time() - t0 < 120 and proc.poll() is None:
            if lock_path.exists() or (config.exists() and time.time() - t0 > 20):
                time.sleep(2)
                return
            time.sleep(0.3)

    return setup


# ------------------------------------------------------------------------------------------------ checks


_NAN = re.compile(r"(?<![A-Za-z])(nan|-?inf)(?![A-Za-z])", re.IGNORECASE)


def no_nan(res: Result, ctx: Ctx) -> str | None:
    """A success must not print NaN or infinite numbers."""
    found = _NAN.search(res.out) if res.rc == 0 else None
    return f"printed {found.group(0)!r}: {_last(res.out)}" if found else None


def says(*words: str) -> Check:
    """Success must print one of ``words`` (stdout or stderr)."""

    def check(res: Result, ctx: Ctx) -> str | None:
        if res.rc == 0 and not any(w.lower() in (res.out + res.err).lower() for w in words):
            return f"exit 0 without saying any of {words}"
        return None

    return check


def exists(rel: str, *, want: bool = True) -> Check:
    def check(res: Result, ctx: Ctx) -> str | None:
        if res.rc == 0 and Path(ctx.fmt(rel)).exists() != want:
            return f"{rel} {'missing' if want else 'exists'} after exit 0"
        return None

    return check


def _last(text: str) -> str:
    lines = [ln for ln in text.replace("\r", "\n").splitlines() if ln.strip()]
    return lines[-1][:300] if lines else ""


def appeared(pattern: str) -> Callable[[Ctx], bool]:
    def cond(ctx: Ctx) -> bool:
        return any(ctx.C.glob(ctx.fmt(pattern).replace(str(ctx.C) + "/", "")))

    return cond


# ----------------------------------------------------------------------------------------------- case list


def _csv(rows: list[list[str]]) -> str:
    import csv
    import io

    buf = io.StringIO()
    csv.writer(buf).writerows(rows)
    return buf.getvalue()


def cases() -> list[Case]:  # noqa: PLR0915 - one flat list reads best
    c: list[Case] = []
    add = c.append
    bad, dmg, env, mis, lost, safe = CLASSES

    # -- the command line itself
    add(Case("cli/no-arguments", bad, [], words=("command",)))
    add(Case("cli/unknown-lab", bad, ["diffusion3d", "train"], words=("diffusion3d",)))
    add(Case("cli/lab-without-verb", bad, ["textgen"], words=("verb", "required")))
    add(Case("cli/unknown-verb", bad, ["textgen", "gen"], words=("gen",)))
    add(Case("cli/unknown-option", bad, ["diffusion2d", "train", "--stesp", "3"], words=("--stesp",)))
    add(Case("cli/debug-flag-shows-traceback", bad, ["--debug", *d2("sample", run="missing")], expect="debug"))
    add(
        Case(
            "cli/GENLAB_DEBUG-shows-traceback",
            bad,
            d2("sample", run="missing"),
            expect="debug",
            env={"GENLAB_DEBUG": "1"},
        )
    )
    add(Case("cli/seed-not-a-number", bad, [*d2("sample", "--seed", "abc")], uses=("diffusion2d/sq",), words=("abc",)))
    add(
        Case(
            "cli/seed-too-large",
            bad,
            d2("sample", "--n", "5", "--out", "{C}/s.csv", "--seed", "99999999999999999999"),
            uses=("diffusion2d/sq",),
            expect="either",
            words=("seed", "99999999999999999999"),
        )
    )
    add(Case("cli/device-cuda-missing", env, d2_train("--device", "cuda"), words=("cuda",)))
    add(Case("cli/device-unknown", bad, d2_train("--device", "tpu"), words=("tpu",)))

    # -- data
    add(Case("data/fetch-unknown", bad, ["data", "fetch", "mnsit"], words=("mnsit",)))
    add(Case("data/fetch-empty-name", bad, ["data", "fetch", ""], words=("''",)))
    add(Case("data/path-unknown", bad, ["data", "path", "glovee"], words=("glovee",)))
    add(Case("data/verify-unknown", bad, ["data", "verify", "alicee"], words=("alicee",)))
    add(Case("data/path-builtin", bad, ["data", "path", "digits"], expect="ok", check=says("builtin")))
    add(Case("data/path-cached", bad, ["data", "path", "alice"], expect="ok", check=says("alice")))
    add(Case("data/list", bad, ["data", "list"], expect="ok", check=says("alice")))
    add(Case("data/verify-all-good", bad, ["data", "verify", "alice", "gpt2"], expect="ok", check=says("matches")))
    add(
        Case(
            "data/verify-cut-file",
            dmg,
            ["data", "verify", "alice"],
            setup=cut("{D}/alice/alice.txt"),
            words=("alice.txt",),
        )
    )
    add(
        Case(
            "data/verify-bitrot-same-size-and-time",
            dmg,
            ["data", "verify", "gpt2"],
            setup=bitrot("gpt2", "gpt2.tiktoken"),
            words=("gpt2.tiktoken",),
        )
    )
    add(
        Case(
            "data/verify-complete-marker-not-json",
            dmg,
            ["data", "verify", "alice"],
            setup=put("{D}/alice/.complete", b"\xff{"),
            words=("alice",),
        )
    )
    add(
        Case(
            "data/verify-complete-stats-wrong-type",
            dmg,
            ["data", "verify", "alice"],
            setup=edit_json("{D}/alice/.complete", lambda m: {**m, "stats": 5}),
            expect="either",
            words=("alice",),
        )
    )
    add(
        Case(
            "data/path-complete-stats-wrong-shape",
            dmg,
            ["data", "path", "alice"],
            setup=edit_json("{D}/alice/.complete", lambda m: {**m, "stats": {"alice.txt": "x"}}),
            expect="either",
            words=("alice",),
        )
    )
    add(
        Case(
            "data/list-complete-marker-damaged",
            dmg,
            ["data", "list"],
            setup=put("{D}/alice/.complete", random_bytes(64)),
            expect="ok",
            check=says("alice"),
        )
    )
    add(
        Case(
            "data/fetch-force-offline-keeps-the-good-copy",
            lost,
            ["data", "fetch", "alice", "--force"],
            env={"GENLAB_LOCAL_PACKAGES": "{C}/no-packages"},
            setup=lambda ctx: (ctx.C / "no-packages").mkdir(),
            words=("alice",),
        )
    )
    add(
        Case(
            "data/fetch-cut-offline",
            dmg,
            ["data", "fetch", "alice"],
            env={"GENLAB_LOCAL_PACKAGES": "{C}/no-packages"},
            setup=steps(cut("{D}/alice/alice.txt"), lambda ctx: (ctx.C / "no-packages").mkdir()),
            words=("alice",),
            keep=("data/gpt2/*",),
        )
    )
    add(Case("data/fetch-builtin", bad, ["data", "fetch", "digits"], expect="ok", check=says("nothing to fetch")))
    add(
        Case(
            "data/GENLAB_DATA-is-a-file-fetch",
            env,
            ["data", "fetch", "alice"],
            env={"GENLAB_DATA": "{C}/inputs/notes.txt", "GENLAB_LOCAL_PACKAGES": "{C}/inputs"},
            setup=put("{C}/inputs/notes.txt", "my notes\n"),
            words=("notes.txt",),
        )
    )
    add(
        Case(
            "data/GENLAB_DATA-is-a-file-path",
            env,
            ["data", "path", "alice"],
            env={"GENLAB_DATA": "{C}/inputs/notes.txt"},
            setup=put("{C}/inputs/notes.txt", "my notes\n"),
            words=("fetch",),
        )
    )
    add(
        Case(
            "data/GENLAB_DATA-is-a-file-list",
            env,
            ["data", "list"],
            env={"GENLAB_DATA": "{C}/inputs/notes.txt"},
            setup=put("{C}/inputs/notes.txt", "my notes\n"),
            expect="ok",
            check=says("missing"),
        )
    )

    # -- diffusion2d: bad input to train
    for key, value, word in [
        ("lr", "nan", "lr"),
        ("lr", "inf", "lr"),
        ("guidance", "-inf", "guidance"),
        ("k", "nan", "k"),
        ("x_scale", "inf", "x_scale"),
        ("label_dropout", "1.5", "label_dropout"),
        ("ema_decay", "1", "ema_decay"),
        ("hidden", "0", "hidden"),
        ("hidden", "3.5", "hidden"),
        ("depth", "-1", "depth"),
        ("hiddden", "3", "hiddden"),
        ("sampler", "", "sampler"),
        ("sampler", "heum", "heum"),
        ("conditional", "maybe", "conditional"),
        ("conditional", "true", "classes"),
        ("seed", "99999999999999999999", "seed"),
    ]:
        add(
            Case(
                f"diffusion2d/train-set-{key}={value or 'empty'}",
                bad,
                d2_train("--set", f"{key}={value}"),
                words=(word,),
            )
        )
    add(Case("diffusion2d/train-set-without-equals", bad, d2_train("--set", "lr"), words=("lr",)))
    add(Case("diffusion2d/train-set-empty-key", bad, d2_train("--set", "=3"), words=("''", "key")))
    add(
        Case(
            "diffusion2d/train-huge-hidden",
            bad,
            d2_train("--set", "hidden=1000000000"),
            words=("memory", "hidden"),
        )
    )
    add(
        Case(
            "diffusion2d/train-huge-batch",
            bad,
            d2_train("--set", "batch_size=1000000000"),
            expect="either",
            check=no_nan,
            words=("memory", "batch_size"),
        )
    )
    add(
        Case(
            "diffusion2d/train-vp-beta-above-1",
            bad,
            d2_train("--set", "schedule=vp-linear", "--set", "beta_end=2", "--set", "sampler=ddpm", "--set", "T=50"),
            expect="either",
            check=no_nan,
            words=("beta",),
        )
    )
    add(
        Case(
            "diffusion2d/train-lr-max",
            bad,
            d2_train("--set", "lr=10"),
            expect="either",
            check=no_nan,
            words=("loss", "lr", "diverge"),
        )
    )
    add(Case("diffusion2d/train-steps-0", bad, d2_train("--set", "steps=0"), expect="either", check=no_nan))
    add(Case("diffusion2d/train-show-config", bad, d2_train("--show-config"), expect="ok", check=says("hidden")))
    for name, body, word in [
        ("nan-json", '{"lr": NaN}', "lr"),
        ("infinity-json", '{"guidance": Infinity}', "guidance"),
        ("list-json", "[1, 2]", "table"),
        ("empty-json", "", "parsed"),
        ("wrong-type-json", '{"hidden": "abc"}', "hidden"),
        ("bool-for-int-json", '{"hidden": true}', "hidden"),
        ("null-json", '{"hidden": null}', "hidden"),
        ("unknown-key-json", '{"hiden": 3}', "hiden"),
        ("nested-toml", "[section]\nlr = 1\n", "section"),
        ("nan-toml", "lr = nan\n", "lr"),
    ]:
        suffix = ".toml" if name.endswith("toml") else ".json"
        add(
            Case(
                f"diffusion2d/train-config-{name}",
                bad,
                d2_train("--config", f"{{C}}/inputs/cfg{suffix}"),
                setup=put(f"{{C}}/inputs/cfg{suffix}", body),
                words=(word,),
            )
        )
    add(
        Case(
            "diffusion2d/train-config-invalid-utf8",
            dmg,
            d2_train("--config", "{C}/inputs/cfg.json"),
            setup=put("{C}/inputs/cfg.json", b'{"lr": "\xff\xfe"}'),
            words=("utf-8",),
        )
    )
    add(
        Case(
            "diffusion2d/train-config-yaml",
            bad,
            d2_train("--config", "{C}/inputs/cfg.yaml"),
            setup=put("{C}/inputs/cfg.yaml", "lr: 1\n"),
            words=(".json",),
        )
    )
    add(Case("diffusion2d/train-config-missing", bad, d2_train("--config", "{C}/nope.json"), words=("nope.json",)))
    add(
        Case(
            "diffusion2d/train-config-a-folder",
            bad,
            d2_train("--config", "{C}/inputs"),
            setup=lambda ctx: ctx.inputs,
            words=("inputs",),
        )
    )
    add(Case("diffusion2d/train-name-escapes", bad, d2_train(name="../escape"), words=("../escape",)))
    add(Case("diffusion2d/train-name-slash", bad, d2_train(name="a/b"), words=("a/b",)))
    add(Case("diffusion2d/train-name-too-long", env, d2_train(name="n" * 300), words=("too long",)))
    add(
        Case(
            "diffusion2d/train-run-dir-is-a-file",
            env,
            ["diffusion2d", "train", "--run-dir", "{C}/inputs/notes.txt", "--name", "x", *Q, *D2_TINY],
            setup=put("{C}/inputs/notes.txt", "my notes\n"),
            words=("notes.txt",),
        )
    )
    add(
        Case(
            "diffusion2d/train-full-disk",
            env,
            ["diffusion2d", "train", "--run-dir", "{C}/full", "--name", "x", *Q, *D2_TINY],
            setup=full_disk("{C}/full"),
            mount=True,
            words=("full", "space"),
        )
    )
    add(
        Case(
            "diffusion2d/train-read-only-run-dir",
            env,
            ["diffusion2d", "train", "--run-dir", "{C}/ro", "--name", "x", *Q, *D2_TINY],
            setup=read_only("{C}/ro"),
            mount=True,
            words=("read-only",),
        )
    )
    # -- diffusion2d: misleading answers, lost data
    add(
        Case(
            "diffusion2d/resume-without-name",
            mis,
            ["diffusion2d", "train", "--run-dir", "{R}", "--resume", *Q, *D2_TINY],
            words=("--name",),
        )
    )
    add(
        Case(
            "diffusion2d/resume-mistyped-name",
            mis,
            d2_train("--resume", name="sqq"),
            uses=("diffusion2d/sq",),
            words=("sqq",),
        )
    )
    add(
        Case(
            "diffusion2d/resume-finished-changes-nothing",
            lost,
            d2_train("--resume", name="sq"),
            uses=("diffusion2d/sq",),
            expect="ok",
            keep="all",
            check=says("finished", "nothing"),
        )
    )
    add(
        Case(
            "diffusion2d/resume-finished-with-other-config",
            mis,
            d2_train("--resume", "--set", "lr=0.5", name="sq"),
            uses=("diffusion2d/sq",),
            expect="either",
            keep="all",
            words=("lr",),
            check=says("finished", "nothing"),
        )
    )
    add(
        Case(
            "diffusion2d/train-over-a-finished-run",
            lost,
            d2_train(name="sq"),
            uses=("diffusion2d/sq",),
            words=("--resume",),
        )
    )
    add(
        Case(
            "diffusion2d/resume-other-config",
            lost,
            d2_train("--resume", "--set", "steps=80", "--set", "lr=0.5", name="cut"),
            uses=("diffusion2d/sq",),
            setup=cut_run("diffusion2d/sq", "diffusion2d/cut", 80),
            words=("lr",),
        )
    )
    add(
        Case(
            "diffusion2d/resume-cut-run",
            lost,
            d2_train("--resume", "--set", "steps=80", name="cut"),
            uses=("diffusion2d/sq",),
            setup=cut_run("diffusion2d/sq", "diffusion2d/cut", 80),
            expect="ok",
            keep=("runs/diffusion2d/sq/*", "*/cut/config.json"),
            check=says("80 steps"),
        )
    )
    add(
        Case(
            "diffusion2d/resume-cut-run-full-disk",
            env,
            [
                "diffusion2d",
                "train",
                "--run-dir",
                "{C}/full",
                "--name",
                "cut",
                "--resume",
                *Q,
                *D2_TINY,
                "--set",
                "steps=80",
            ],
            uses=("diffusion2d/sq",),
            setup=steps(
                cut_run("diffusion2d/sq", "diffusion2d/cut", 80),
                full_disk("{C}/full/diffusion2d/cut", copy_from="{R}/diffusion2d/cut"),
            ),
            mount=True,
            words=("full", "space"),
        )
    )
    add(
        Case(
            "diffusion2d/resume-cut-run-read-only",
            env,
            d2_train("--resume", "--set", "steps=80", name="cut"),
            uses=("diffusion2d/sq",),
            setup=steps(cut_run("diffusion2d/sq", "diffusion2d/cut", 80), read_only("{R}/diffusion2d/cut")),
            mount=True,
            words=("read-only",),
        )
    )
    add(
        Case(
            "diffusion2d/resume-progress-damaged",
            dmg,
            d2_train("--resume", name="sq"),
            uses=("diffusion2d/sq",),
            setup=put("{R}/diffusion2d/sq/progress.json", b"\xff\xfe{"),
            expect="either",
            keep=("*/config.json",),
        )
    )
    add(
        Case(
            "diffusion2d/two-trainers-same-name",
            env,
            d2_train("--set", "steps=10000000", name="busy"),
            setup=busy_trainer(d2_train("--set", "steps=10000000", name="busy"), "{R}/diffusion2d/busy/.lock"),
            words=("process", "lock"),
            keep="none",
            timeout=60,
        )
    )
    add(
        Case(
            "diffusion2d/two-trainers-second-resumes",
            env,
            d2_train("--set", "steps=10000000", "--resume", name="busy"),
            setup=busy_trainer(d2_train("--set", "steps=10000000", name="busy"), "{R}/diffusion2d/busy/.lock"),
            words=("process", "lock"),
            keep="none",
            timeout=60,
        )
    )
    # -- diffusion2d: verbs
    sq = ("diffusion2d/sq",)
    for argv, word in [
        (("--n", "0"), ">= 1"),
        (("--n", "-5"), ">= 1"),
        (("--n", "abc"), "abc"),
        (("--steps", "0"), ">= 1"),
        (("--eta", "nan"), "nan"),
        (("--eta", "2"), "<= 1"),
        (("--guidance", "inf"), "inf"),
        (("--sampler", "heum"), "heum"),
        (("--grid", "nosuch"), "nosuch"),
        (("--sampler", ""), "''"),
        (("--label", "0"), "unconditional"),
    ]:
        add(Case(f"diffusion2d/sample{'-'.join(('',) + argv)}", bad, d2("sample", *argv), uses=sq, words=(word,)))
    add(
        Case(
            "diffusion2d/sample-label-out-of-range",
            bad,
            d2("sample", "--label", "99", run="grid"),
            uses=("diffusion2d/grid",),
            words=("99",),
        )
    )
    add(
        Case(
            "diffusion2d/sample-huge-guidance",
            bad,
            d2("sample", "--n", "20", "--guidance", "1e308", "--out", "{C}/s.csv", run="grid"),
            uses=("diffusion2d/grid",),
            expect="either",
            check=no_nan,
            words=("guidance",),
        )
    )
    add(
        Case(
            "diffusion2d/sample-out-is-a-folder",
            env,
            d2("sample", "--n", "5", "--out", "{C}/inputs"),
            uses=sq,
            setup=lambda ctx: ctx.inputs,
            words=("inputs",),
        )
    )
    add(
        Case(
            "diffusion2d/sample-out-is-the-run-config",
            lost,
            d2("sample", "--n", "5", "--out", "{R}/diffusion2d/sq/config.json"),
            uses=sq,
            words=("config.json",),
        )
    )
    add(
        Case(
            "diffusion2d/sample-out-is-the-checkpoint",
            lost,
            d2("sample", "--n", "5", "--out", "{R}/diffusion2d/sq/checkpoints/last.pt"),
            uses=sq,
            words=("last.pt",),
        )
    )
    add(
        Case(
            "diffusion2d/sample-out-in-new-folder",
            bad,
            d2("sample", "--n", "5", "--out", "{C}/new/deeper/s.csv"),
            uses=sq,
            expect="ok",
            check=exists("{C}/new/deeper/s.csv"),
        )
    )
    add(
        Case(
            "diffusion2d/sample-ok",
            bad,
            d2("sample", "--n", "20", "--out", "{C}/s.csv"),
            uses=sq,
            expect="ok",
            check=no_nan,
        )
    )
    add(
        Case(
            "diffusion2d/sample-out-full-disk",
            env,
            d2("sample", "--n", "200", "--out", "{C}/full/s.csv"),
            uses=sq,
            setup=full_disk("{C}/full"),
            mount=True,
            words=("full", "space"),
        )
    )
    add(
        Case(
            "diffusion2d/sample-out-read-only",
            env,
            d2("sample", "--n", "20", "--out", "{C}/ro/s.csv"),
            uses=sq,
            setup=read_only("{C}/ro"),
            mount=True,
            words=("read-only",),
        )
    )
    for argv, word in [
        (("--mc", "1"), ">= 2"),
        (("--point", "abc"), "abc"),
        (("--point", "1,2,3"), "1,2,3"),
        (("--point=nan,0",), "nan"),
        (("--label", "3"), "unconditional"),
    ]:
        add(
            Case(
                f"diffusion2d/elbo{'-'.join(('',) + argv)}", bad, d2("elbo", "--mc", "4", *argv), uses=sq, words=(word,)
            )
        )
    add(
        Case(
            "diffusion2d/elbo-huge-point",
            bad,
            d2("elbo", "--mc", "4", "--point=1e308,1e308"),
            uses=sq,
            expect="either",
            check=no_nan,
            words=("point", "1e+308"),
        )
    )
    add(
        Case(
            "diffusion2d/elbo-conditional-without-label",
            mis,
            d2("elbo", "--mc", "4", run="grid"),
            uses=("diffusion2d/grid",),
            words=("--label",),
        )
    )
    for argv, word in [(("--steps", "0"), ">= 1"), (("--point=inf,1",), "inf"), (("--point", "1"), "1")]:
        add(Case(f"diffusion2d/invert{'-'.join(('',) + argv)}", bad, d2("invert", *argv), uses=sq, words=(word,)))
    # -- diffusion2d: damaged run folders
    ck = "{R}/diffusion2d/sq/checkpoints/last.pt"
    for name, setup, word in [
        ("config-not-json", put("{R}/diffusion2d/sq/config.json", b"\xff{ not json"), "config.json"),
        ("config-a-list", put("{R}/diffusion2d/sq/config.json", "[1, 2, 3]"), "config"),
        ("config-empty", put("{R}/diffusion2d/sq/config.json", ""), "config.json"),
        (
            "config-wrong-types",
            edit_json("{R}/diffusion2d/sq/config.json", lambda b: {**b, "config": {**b["config"], "hidden": "x"}}),
            "hidden",
        ),
        (
            "config-unknown-key",
            edit_json("{R}/diffusion2d/sq/config.json", lambda b: {**b, "config": {**b["config"], "hiden": 3}}),
            "hiden",
        ),
        (
            "config-wrong-shape",
            edit_json("{R}/diffusion2d/sq/config.json", lambda b: {**b, "config": {**b["config"], "hidden": 32}}),
            "last.pt",
        ),
        (
            "config-of-another-lab",
            edit_json("{R}/diffusion2d/sq/config.json", lambda b: {**b, "lab": "textgen"}),
            "textgen",
        ),
        ("config-config-a-list", edit_json("{R}/diffusion2d/sq/config.json", lambda b: {**b, "config": [1]}), "config"),
        ("checkpoint-empty", put(ck, b""), "last.pt"),
        ("checkpoint-truncated", cut(ck, 200), "last.pt"),
        ("checkpoint-random", put(ck, random_bytes()), "last.pt"),
        ("checkpoint-missing", remove(ck), "checkpoint"),
        ("checkpoint-a-list", torch_save(ck, lambda ctx: [1, 2, 3]), "last.pt"),
        ("checkpoint-without-model", torch_save(ck, lambda ctx: {"step": 40}), "last.pt"),
        (
            "checkpoint-of-another-model",
            torch_save(ck, lambda ctx: {"step": 1, "model": {"w": __import__("torch").ones(2)}, "ema": None}),
            "last.pt",
        ),
        (
            "checkpoint-of-the-grid-run",
            lambda ctx: replace_bytes(
                Path(ctx.fmt(ck)), (ctx.run("diffusion2d/grid") / "checkpoints/last.pt").read_bytes()
            ),
            "last.pt",
        ),
        (
            "checkpoint-of-textgen",
            lambda ctx: replace_bytes(
                Path(ctx.fmt(ck)), (ctx.run("textgen/char") / "checkpoints/last.pt").read_bytes()
            ),
            "last.pt",
        ),
    ]:
        add(
            Case(
                f"diffusion2d/sample-{name}",
                dmg,
                d2("sample", "--n", "5", "--out", "{C}/s.csv"),
                uses=("diffusion2d/sq", *(("diffusion2d/grid",) if "grid" in name else ()))
                + (("textgen/char",) if "textgen" in name else ()),
                setup=steps(no_fallback("diffusion2d/sq"), setup),
                words=(word,),
            )
        )
    add(
        Case(
            "diffusion2d/sample-checkpoint-damaged-prev-intact",
            dmg,
            d2("sample", "--n", "5", "--out", "{C}/s.csv"),
            uses=sq,
            setup=steps(
                lambda ctx: shutil.copyfile(ctx.fmt(ck), ctx.fmt(ck).replace("last.pt", "prev.pt")), cut(ck, 100)
            ),
            expect="ok",
            check=says("prev.pt"),
        )
    )
    add(
        Case(
            "diffusion2d/invert-summary-not-json",
            dmg,
            d2("invert", "--steps", "5"),
            uses=sq,
            setup=put("{R}/diffusion2d/sq/summary.json", b"{\xff"),
            words=("summary.json",),
        )
    )
    add(
        Case(
            "diffusion2d/invert-summary-a-list",
            dmg,
            d2("invert", "--steps", "5"),
            uses=sq,
            setup=put("{R}/diffusion2d/sq/summary.json", "[]"),
            words=("summary.json",),
        )
    )
    add(
        Case(
            "diffusion2d/sample-crafted-pickle",
            safe,
            d2("sample", "--n", "5"),
            uses=sq,
            setup=steps(no_fallback("diffusion2d/sq"), evil_checkpoint(ck)),
            words=("last.pt",),
        )
    )
    add(
        Case(
            "diffusion2d/sample-crafted-pickle-in-prev",
            safe,
            d2("sample", "--n", "5"),
            uses=sq,
            setup=steps(cut(ck, 100), evil_checkpoint("{R}/diffusion2d/sq/checkpoints/prev.pt")),
            words=("prev.pt", "last.pt"),
            one_line=False,
        )
    )
    add(
        Case(
            "diffusion2d/sample-run-of-textgen",
            mis,
            d2("sample", run="../textgen/char"),
            uses=("textgen/char",),
            words=("textgen",),
        )
    )
    add(
        Case(
            "diffusion2d/sample-run-is-a-file", mis, d2("sample", run="sq/config.json"), uses=sq, words=("config.json",)
        )
    )
    add(Case("diffusion2d/sample-run-empty", mis, ["diffusion2d", "sample", "--run", "", *Q], words=("''", "run")))
    add(
        Case(
            "diffusion2d/sample-run-without-checkpoint",
            mis,
            d2("sample", run="cut"),
            needs=sq,
            setup=lambda ctx: (
                ctx.run("diffusion2d/cut").mkdir(parents=True),
                shutil.copy(ctx.fmt("{F}/runs/diffusion2d/sq/config.json"), ctx.run("diffusion2d/cut")),
            ),
            words=("checkpoint",),
        )
    )

    # -- textgen
    tgc = ("textgen/char",)
    add(Case("textgen/train-heads-do-not-divide-width", bad, tg_train("--set", "n_head=3"), words=("n_head", "n_embd")))
    add(
        Case(
            "textgen/train-block-longer-than-corpus",
            bad,
            tg_train("--set", "block_size=1000"),
            expect="either",
            words=("block_size",),
        )
    )
    add(Case("textgen/train-dropout-1", bad, tg_train("--set", "dropout=1"), words=("dropout",)))
    add(Case("textgen/train-bpe-vocab-too-small", bad, tg_train("--set", "bpe_vocab=100"), words=("bpe_vocab",)))
    add(Case("textgen/train-corpus-text-without-file", bad, tg_train("--set", "corpus=text"), words=("--text",)))
    add(Case("textgen/train-text-missing", bad, tg_train("--text", "{C}/nope.txt"), words=("nope.txt",)))
    add(
        Case(
            "textgen/train-text-empty",
            bad,
            tg_train("--text", "{C}/inputs/empty.txt"),
            setup=put("{C}/inputs/empty.txt", ""),
            words=("empty.txt",),
        )
    )
    add(
        Case(
            "textgen/train-text-a-folder",
            bad,
            tg_train("--text", "{C}/inputs"),
            setup=lambda ctx: ctx.inputs,
            words=("inputs",),
        )
    )
    add(
        Case(
            "textgen/train-text-random-bytes",
            dmg,
            tg_train("--text", "{C}/inputs/noise.bin"),
            setup=put("{C}/inputs/noise.bin", random_bytes(20000)),
            expect="either",
            words=("noise.bin",),
        )
    )
    add(
        Case(
            "textgen/train-huge-batch", bad, tg_train("--set", "batch_size=1000000000"), words=("memory", "batch_size")
        )
    )
    add(Case("textgen/train-huge-width", bad, tg_train("--set", "n_embd=1000000000"), words=("memory", "n_embd")))
    add(Case("textgen/train-lr-nan", bad, tg_train("--set", "lr=nan"), words=("lr",)))
    add(
        Case(
            "textgen/train-gpt2-not-fetched",
            env,
            tg_train("--set", "tokenizer=gpt2"),
            env={"GENLAB_DATA": "{C}/empty-cache"},
            words=("gpt2",),
        )
    )
    add(
        Case(
            "textgen/train-gpt2-tiktoken-cut",
            dmg,
            tg_train("--set", "tokenizer=gpt2"),
            setup=cut("{D}/gpt2/gpt2.tiktoken"),
            words=("gpt2.tiktoken",),
        )
    )
    add(
        Case(
            "textgen/train-gpt2-tiktoken-bitrot",
            dmg,
            tg_train("--set", "tokenizer=gpt2", "--set", "steps=1"),
            setup=bitrot("gpt2", "gpt2.tiktoken"),
            expect="either",
            words=("gpt2",),
        )
    )
    add(
        Case(
            "textgen/train-alice-cut",
            dmg,
            tg_train("--set", "corpus=alice"),
            setup=cut("{D}/alice/alice.txt"),
            words=("alice.txt",),
        )
    )
    add(
        Case(
            "textgen/train-alice-marker-missing",
            dmg,
            tg_train("--set", "corpus=alice"),
            setup=remove("{D}/alice/.complete"),
            words=("fetch alice",),
        )
    )
    add(
        Case(
            "textgen/train-alice-stats-wrong-type",
            dmg,
            tg_train("--set", "corpus=alice", "--set", "steps=1"),
            setup=edit_json("{D}/alice/.complete", lambda m: {**m, "stats": [1]}),
            expect="either",
            words=("alice",),
        )
    )
    add(
        Case(
            "textgen/resume-finished-changes-nothing",
            lost,
            tg_train("--resume", name="char"),
            uses=tgc,
            expect="ok",
            keep="all",
            check=says("finished", "nothing"),
        )
    )
    add(Case("textgen/resume-mistyped", mis, tg_train("--resume", name="chra"), uses=tgc, words=("chra",)))
    for argv, word in [
        (("--max-new-tokens", "0"), ">= 1"),
        (("--num-samples", "0"), ">= 1"),
        (("--temperature", "nan"), "nan"),
        (("--temperature", "inf"), "inf"),
        (("--temperature", "-1"), ">= 0"),
        (("--top-p", "1.5"), "<= 1"),
        (("--top-p", "0"), "> 0"),
        (("--top-k", "0"), ">= 1"),
    ]:
        add(Case(f"textgen/generate{'-'.join(('',) + argv)}", bad, tg("generate", *argv), uses=tgc, words=(word,)))
    for name, argv in [
        ("temperature-0", ("--temperature", "0")),
        ("top-k-above-vocab", ("--top-k", "100000")),
        ("top-p-tiny", ("--top-p", "1e-9")),
        ("emoji-prompt", ("--prompt", EMOJI)),
        ("prompt-longer-than-context", ("--prompt", LONG)),
        ("empty-prompt", ("--prompt", "")),
        ("greedy", ("--greedy",)),
    ]:
        add(
            Case(
                f"textgen/generate-{name}",
                bad,
                tg("generate", "--max-new-tokens", "20", *argv),
                uses=tgc,
                expect="either",
                words=("prompt", "temperature", "top"),
            )
        )
    add(
        Case(
            "textgen/generate-bpe-emoji",
            bad,
            tg("generate", "--max-new-tokens", "10", "--prompt", EMOJI, run="bpe"),
            uses=("textgen/bpe",),
            expect="either",
            words=("prompt",),
        )
    )
    add(
        Case(
            "textgen/generate-bpe-long-prompt",
            bad,
            tg("generate", "--max-new-tokens", "10", "--prompt", LONG, run="bpe"),
            uses=("textgen/bpe",),
            expect="either",
            words=("prompt",),
        )
    )
    add(
        Case(
            "textgen/generate-tokenizer-json-cut",
            dmg,
            tg("generate", "--max-new-tokens", "5", run="bpe"),
            uses=("textgen/bpe",),
            setup=cut("{R}/textgen/bpe/tokenizer.json"),
            words=("tokenizer.json",),
        )
    )
    add(
        Case(
            "textgen/generate-tokenizer-json-missing",
            dmg,
            tg("generate", "--max-new-tokens", "5", run="bpe"),
            uses=("textgen/bpe",),
            setup=remove("{R}/textgen/bpe/tokenizer.json"),
            words=("tokenizer.json",),
        )
    )
    add(
        Case(
            "textgen/generate-tokenizer-json-random",
            dmg,
            tg("generate", "--max-new-tokens", "5", run="bpe"),
            uses=("textgen/bpe",),
            setup=put("{R}/textgen/bpe/tokenizer.json", random_bytes(500)),
            words=("tokenizer.json",),
        )
    )
    add(
        Case(
            "textgen/generate-chars-json-cut",
            dmg,
            tg("generate", "--max-new-tokens", "5"),
            uses=tgc,
            setup=cut("{R}/textgen/char/chars.json"),
            words=("chars.json",),
        )
    )
    add(
        Case(
            "textgen/generate-chars-json-missing",
            dmg,
            tg("generate", "--max-new-tokens", "5"),
            uses=tgc,
            setup=remove("{R}/textgen/char/chars.json"),
            words=("chars.json",),
        )
    )
    add(
        Case(
            "textgen/generate-chars-json-a-number",
            dmg,
            tg("generate", "--max-new-tokens", "5"),
            uses=tgc,
            setup=put("{R}/textgen/char/chars.json", "42"),
            words=("chars.json",),
        )
    )
    add(
        Case(
            "textgen/generate-gpt2-cache-missing",
            env,
            tg("generate", "--max-new-tokens", "5", run="gpt2"),
            uses=("textgen/gpt2",),
            env={"GENLAB_DATA": "{C}/empty-cache"},
            words=("gpt2",),
        )
    )
    add(
        Case(
            "textgen/generate-gpt2-tiktoken-cut",
            dmg,
            tg("generate", "--max-new-tokens", "5", run="gpt2"),
            uses=("textgen/gpt2",),
            setup=cut("{D}/gpt2/gpt2.tiktoken"),
            words=("gpt2.tiktoken",),
        )
    )
    add(
        Case(
            "textgen/generate-gpt2-tiktoken-bitrot",
            dmg,
            tg("generate", "--max-new-tokens", "5", run="gpt2"),
            uses=("textgen/gpt2",),
            setup=bitrot("gpt2", "gpt2.tiktoken"),
            expect="either",
            words=("gpt2.tiktoken", "verify gpt2"),
        )
    )
    add(
        Case(
            "textgen/generate-checkpoint-truncated",
            dmg,
            tg("generate", "--max-new-tokens", "5"),
            uses=tgc,
            setup=steps(no_fallback("textgen/char"), cut("{R}/textgen/char/checkpoints/last.pt", 300)),
            words=("last.pt",),
        )
    )
    add(
        Case(
            "textgen/generate-checkpoint-of-diffusion2d",
            dmg,
            tg("generate", "--max-new-tokens", "5"),
            uses=(*tgc, *sq),
            setup=steps(
                no_fallback("textgen/char"),
                lambda ctx: replace_bytes(
                    ctx.run("textgen/char/checkpoints/last.pt"),
                    (ctx.run("diffusion2d/sq/checkpoints/last.pt")).read_bytes(),
                ),
            ),
            words=("last.pt",),
        )
    )
    add(
        Case(
            "textgen/generate-checkpoint-of-bpe-run",
            dmg,
            tg("generate", "--max-new-tokens", "5"),
            uses=(*tgc, "textgen/bpe"),
            setup=steps(
                no_fallback("textgen/char"),
                lambda ctx: replace_bytes(
                    ctx.run("textgen/char/checkpoints/last.pt"),
                    (ctx.run("textgen/bpe/checkpoints/last.pt")).read_bytes(),
                ),
            ),
            words=("last.pt",),
        )
    )
    add(
        Case(
            "textgen/generate-config-not-json",
            dmg,
            tg("generate"),
            uses=tgc,
            setup=put("{R}/textgen/char/config.json", random_bytes(100)),
            words=("config.json",),
        )
    )
    add(
        Case(
            "textgen/generate-config-wrong-shape",
            dmg,
            tg("generate", "--max-new-tokens", "5"),
            uses=tgc,
            setup=edit_json("{R}/textgen/char/config.json", lambda b: {**b, "config": {**b["config"], "n_embd": 64}}),
            words=("last.pt", "checkpoint"),
        )
    )
    add(
        Case(
            "textgen/generate-crafted-pickle",
            safe,
            tg("generate", "--max-new-tokens", "5"),
            uses=tgc,
            setup=steps(no_fallback("textgen/char"), evil_checkpoint("{R}/textgen/char/checkpoints/last.pt")),
            words=("last.pt", "best.pt"),
        )
    )
    add(
        Case(
            "textgen/generate-run-of-latent",
            mis,
            tg("generate", run="../latent/lt"),
            uses=("latent/lt",),
            words=("latent",),
        )
    )
    add(Case("textgen/score-no-text", bad, tg("score"), uses=tgc, words=("--text",)))
    add(Case("textgen/score-empty-text", bad, tg("score", "--text", ""), uses=tgc, words=("empty",)))
    add(
        Case(
            "textgen/score-emoji",
            bad,
            tg("score", "--text", EMOJI),
            uses=tgc,
            expect="either",
            check=no_nan,
            words=("text",),
        )
    )
    add(
        Case(
            "textgen/score-text-longer-than-context",
            bad,
            tg("score", "--text", LONG),
            uses=tgc,
            expect="either",
            check=no_nan,
            words=("text", "block", "context"),
        )
    )
    add(
        Case(
            "textgen/score-prompt-longer-than-context",
            bad,
            tg("score", "--prompt", LONG, "--text", " Alice"),
            uses=tgc,
            expect="either",
            check=no_nan,
            words=("prompt", "block", "context"),
        )
    )
    add(Case("textgen/score-file-missing", bad, tg("score", "--file", "{C}/nope.txt"), uses=tgc, words=("nope.txt",)))
    add(
        Case(
            "textgen/score-file-empty",
            bad,
            tg("score", "--file", "{C}/inputs/e.txt"),
            uses=tgc,
            setup=put("{C}/inputs/e.txt", ""),
            words=("e.txt",),
        )
    )
    add(
        Case(
            "textgen/score-file-a-folder",
            bad,
            tg("score", "--file", "{C}/inputs"),
            uses=tgc,
            setup=lambda ctx: ctx.inputs,
            words=("inputs",),
        )
    )
    add(
        Case(
            "textgen/score-file-invalid-utf8",
            dmg,
            tg("score", "--file", "{C}/inputs/b.txt"),
            uses=tgc,
            setup=put("{C}/inputs/b.txt", b"Alice \xff\xfe was " * 200),
            expect="either",
            check=no_nan,
            words=("b.txt",),
        )
    )
    add(
        Case(
            "textgen/score-file-one-char",
            bad,
            tg("score", "--file", "{C}/inputs/a.txt"),
            uses=tgc,
            setup=put("{C}/inputs/a.txt", "A"),
            expect="either",
            check=no_nan,
            words=("a.txt",),
        )
    )
    add(Case("textgen/attention-word-0", bad, tg("attention", "--word", "0"), uses=tgc, words=(">= 1",)))
    add(Case("textgen/attention-word-1000", bad, tg("attention", "--word", "1000"), uses=tgc, words=("1000",)))
    add(
        Case(
            "textgen/attention-empty-prompt",
            bad,
            tg("attention", "--prompt", "", "--word", "1"),
            uses=tgc,
            expect="either",
            words=("prompt",),
        )
    )
    add(
        Case(
            "textgen/attention-emoji-prompt",
            bad,
            tg("attention", "--prompt", EMOJI, "--word", "1"),
            uses=tgc,
            expect="either",
            words=("prompt", "word"),
        )
    )
    add(
        Case(
            "textgen/attention-long-prompt",
            bad,
            tg("attention", "--prompt", LONG, "--word", "3"),
            uses=tgc,
            expect="either",
            words=("prompt", "word", "context"),
        )
    )
    add(Case("textgen/invert-steps-0", bad, tg("invert", "--steps", "0"), uses=tgc, words=(">= 1",)))
    add(Case("textgen/invert-lr-0", bad, tg("invert", "--lr", "0"), uses=tgc, words=("> 0",)))
    add(Case("textgen/invert-lr-inf", bad, tg("invert", "--lr", "inf"), uses=tgc, words=("inf",)))
    add(
        Case(
            "textgen/invert-empty-target",
            bad,
            tg("invert", "--target", "", "--steps", "3"),
            uses=tgc,
            expect="either",
            words=("target",),
        )
    )
    add(
        Case(
            "textgen/invert-emoji-target",
            bad,
            tg("invert", "--target", EMOJI, "--steps", "3"),
            uses=tgc,
            expect="either",
            check=no_nan,
            words=("target",),
        )
    )
    add(
        Case(
            "textgen/invert-target-longer-than-context",
            bad,
            tg("invert", "--target", LONG, "--steps", "3"),
            uses=tgc,
            expect="either",
            check=no_nan,
            words=("target", "context", "block"),
        )
    )
    add(
        Case(
            "textgen/figures-summary-a-list",
            dmg,
            tg("figures"),
            uses=tgc,
            setup=put("{R}/textgen/char/summary.json", "[1]"),
            words=("summary.json",),
        )
    )

    # -- latent
    ltr = ("latent/lt",)
    add(Case("latent/ae-code-dim-1", bad, lt_train("--set", "code_dim=1"), words=("code_dim",)))
    add(Case("latent/ae-idx-without-folder", bad, lt_train("--set", "dataset=idx"), words=("data_dir",)))
    add(
        Case(
            "latent/ae-idx-missing-folder",
            bad,
            lt_train("--set", "dataset=idx", "--set", "data_dir={C}/nope"),
            words=("nope",),
        )
    )
    add(Case("latent/ae-noise-inf", bad, lt_train("--set", "noise_sigma=inf"), words=("noise_sigma",)))
    add(
        Case(
            "latent/ae-huge-batch",
            bad,
            lt_train("--set", "batch_size=1000000000"),
            expect="either",
            check=no_nan,
            words=("memory", "batch_size"),
        )
    )
    add(
        Case(
            "latent/ae-mnist-cut",
            dmg,
            lt_train("--set", "dataset=mnist"),
            setup=cut("{D}/mnist/mnist.pkl.gz"),
            words=("mnist.pkl.gz",),
        )
    )
    add(
        Case(
            "latent/ae-mnist-not-fetched",
            env,
            lt_train("--set", "dataset=mnist"),
            env={"GENLAB_DATA": "{C}/empty-cache"},
            words=("fetch mnist",),
        )
    )
    add(
        Case(
            "latent/ae-mnist-crafted-pickle",
            safe,
            lt_train("--set", "dataset=mnist"),
            setup=evil_mnist,
            words=("mnist.pkl.gz",),
        )
    )
    add(
        Case(
            "latent/ae-resume-finished",
            lost,
            lt_train("--resume", name="lt"),
            uses=ltr,
            expect="ok",
            keep="all",
            check=says("finished", "nothing"),
        )
    )
    add(Case("latent/classify-labels-0", bad, lt("classify", "--labels", "0"), uses=ltr, words=(">= 1",)))
    add(Case("latent/classify-labels-too-many", bad, lt("classify", "--labels", "100000"), uses=ltr, words=("100000",)))
    add(Case("latent/classify-draws-0", bad, lt("classify", "--draws", "0"), uses=ltr, words=(">= 1",)))
    add(Case("latent/classify-set-unknown", bad, lt("classify", "--set", "lables=3"), uses=ltr, words=("lables",)))
    add(Case("latent/classify-set-nan", bad, lt("classify", "--set", "gan_lr=nan"), uses=ltr, words=("gan_lr",)))
    add(
        Case(
            "latent/classify-spread-k-huge",
            bad,
            lt("classify", "--labels", "20", "--set", "spread_k=100000"),
            uses=ltr,
            expect="either",
            check=no_nan,
            words=("spread_k",),
        )
    )
    add(Case("latent/cgan-digit-11", bad, lt("cgan", "--digits", "0,11"), uses=ltr, words=("11",)))
    add(Case("latent/cgan-digits-comma", bad, lt("cgan", "--digits", ","), uses=ltr, words=("digit",)))
    add(Case("latent/cgan-digits-words", bad, lt("cgan", "--digits", "three"), uses=ltr, words=("three",)))
    add(Case("latent/interpolate-pair-one", bad, lt("interpolate", "--pair", "0"), uses=ltr, words=("'0'",)))
    add(Case("latent/interpolate-pair-negative", bad, lt("interpolate", "--pair=-1,2"), uses=ltr, words=("-1,2",)))
    add(
        Case(
            "latent/interpolate-pair-out-of-range",
            bad,
            lt("interpolate", "--pair", "0,999999"),
            uses=ltr,
            words=("999999",),
        )
    )
    add(
        Case(
            "latent/interpolate-without-gan",
            mis,
            lt("interpolate"),
            uses=ltr,
            setup=remove("{R}/latent/lt/stages/gan"),
            words=("gan",),
        )
    )
    add(
        Case(
            "latent/interpolate-gan-checkpoint-cut",
            dmg,
            lt("interpolate"),
            uses=ltr,
            setup=cut("{R}/latent/lt/stages/gan/checkpoints/last.pt", 300),
            words=("last.pt",),
        )
    )
    add(
        Case(
            "latent/interpolate-gan-config-not-json",
            dmg,
            lt("interpolate"),
            uses=ltr,
            setup=put("{R}/latent/lt/stages/gan/config.json", b"\xff"),
            expect="either",
            words=("config.json",),
            keep="precious",
        )
    )
    add(
        Case(
            "latent/figures-ae-checkpoint-random",
            dmg,
            lt("figures"),
            uses=ltr,
            setup=put("{R}/latent/lt/checkpoints/last.pt", random_bytes()),
            words=("last.pt",),
        )
    )
    add(
        Case(
            "latent/figures-crafted-pickle-in-gan",
            safe,
            lt("interpolate"),
            uses=ltr,
            setup=evil_checkpoint("{R}/latent/lt/stages/gan/checkpoints/last.pt"),
            words=("last.pt",),
        )
    )
    add(
        Case(
            "latent/figures-metrics-torn-line",
            dmg,
            lt("figures"),
            uses=ltr,
            setup=lambda ctx: ctx.run("latent/lt/metrics.jsonl").open("ab").write(b'{"step": 9, "loss": \xff\xfe'),
            expect="ok",
            keep="precious",
        )
    )
    add(
        Case(
            "latent/classify-run-is-a-stage",
            mis,
            run_verb("latent", "classify", "latent/lt/stages/gan", "--labels", "20"),
            uses=ltr,
            expect="either",
            words=("stage", "gan", "latent"),
            keep="precious",
        )
    )
    add(
        Case(
            "latent/gan-run-of-sentiment",
            mis,
            run_verb("latent", "gan", "sentiment/att"),
            uses=("sentiment/att",),
            words=("sentiment",),
        )
    )

    # -- sentiment
    sat, sgr = ("sentiment/att",), ("sentiment/gru",)
    add(Case("sentiment/train-model-unknown", bad, st_train(model="lstm"), words=("lstm",)))
    add(Case("sentiment/train-hidden-0", bad, [*st_train(), "--hidden", "0"], words=("hidden",)))
    add(Case("sentiment/train-window-0", bad, [*st_train(model="attention"), "--window", "0"], words=("window",)))
    add(Case("sentiment/train-widths-with-0", bad, [*st_train(model="mlp"), "--set", "widths=8,0"], words=("widths",)))
    add(Case("sentiment/train-widths-negative", bad, [*st_train(model="mlp"), "--set", "widths=-4"], words=("widths",)))
    add(
        Case(
            "sentiment/train-widths-empty",
            bad,
            [*st_train(model="mlp"), "--set", "widths="],
            expect="either",
            check=no_nan,
            words=("widths",),
        )
    )
    add(Case("sentiment/train-clip-nan", bad, [*st_train(), "--clip", "nan"], words=("grad_clip", "nan")))
    add(Case("sentiment/train-lr-inf", bad, [*st_train(), "--lr", "inf"], words=("lr",)))
    add(Case("sentiment/train-n-train-beyond-csv", bad, [*st_train(), "--set", "n_train=1000"], words=("n_train",)))
    add(Case("sentiment/train-max-len-1", bad, [*st_train(), "--set", "max_len=1"], expect="either", check=no_nan))
    add(Case("sentiment/train-csv-missing", bad, [*st_train(), "--csv", "{C}/nope.csv"], words=("nope.csv",)))
    add(
        Case(
            "sentiment/train-csv-empty",
            dmg,
            [*st_train(), "--csv", "{C}/inputs/e.csv"],
            setup=put("{C}/inputs/e.csv", ""),
            words=("e.csv",),
        )
    )
    add(
        Case(
            "sentiment/train-csv-wrong-header",
            dmg,
            [*st_train(), "--csv", "{C}/inputs/h.csv"],
            setup=put("{C}/inputs/h.csv", _csv([["text", "label"]] + [["good film", "1"]] * 80)),
            words=("h.csv",),
        )
    )
    add(
        Case(
            "sentiment/train-csv-one-class",
            bad,
            [*st_train(), "--csv", "{C}/inputs/o.csv"],
            setup=put("{C}/inputs/o.csv", _csv([["review", "sentiment"]] + [["good film great", "positive"]] * 80)),
            expect="either",
            check=no_nan,
            words=("o.csv", "class", "negative"),
        )
    )
    add(
        Case(
            "sentiment/train-csv-bad-labels",
            dmg,
            [*st_train(), "--csv", "{C}/inputs/l.csv"],
            setup=put("{C}/inputs/l.csv", _csv([["review", "sentiment"]] + [["good film", "maybe"]] * 80)),
            words=("l.csv", "maybe"),
        )
    )
    add(
        Case(
            "sentiment/train-csv-invalid-utf8",
            dmg,
            [*st_train(), "--csv", "{C}/inputs/u.csv"],
            setup=put(
                "{C}/inputs/u.csv", b"review,sentiment\n" + b"good \xff\xfe film,positive\nbad film,negative\n" * 40
            ),
            expect="either",
            check=no_nan,
            words=("u.csv",),
        )
    )
    add(
        Case(
            "sentiment/train-csv-a-folder",
            bad,
            [*st_train(), "--csv", "{C}/inputs"],
            setup=lambda ctx: ctx.inputs,
            words=("inputs",),
        )
    )
    add(
        Case(
            "sentiment/train-csv-random-bytes",
            dmg,
            [*st_train(), "--csv", "{C}/inputs/r.csv"],
            setup=put("{C}/inputs/r.csv", random_bytes(4000)),
            words=("r.csv",),
        )
    )
    add(
        Case(
            "sentiment/train-rt-cut",
            dmg,
            ["sentiment", "train", "--run-dir", "{R}", "--name", "rt", *Q, "--embeddings", "learned", "--steps", "2"],
            setup=cut("{D}/rt/rotten_tomatoes_corpus_full.csv.bz2"),
            words=("rotten_tomatoes",),
        )
    )
    add(
        Case(
            "sentiment/train-glove-not-fetched",
            env,
            [*st_train(), "--embeddings", "glove"],
            env={"GENLAB_DATA": "{C}/empty-cache"},
            words=("glove",),
        )
    )
    add(
        Case(
            "sentiment/resume-finished",
            lost,
            [*st_train(name="gru"), "--resume"],
            uses=sgr,
            expect="ok",
            keep="all",
            check=says("finished", "nothing"),
        )
    )
    add(
        Case(
            "sentiment/eval-vocab-json-cut",
            dmg,
            st("eval", run="gru"),
            uses=sgr,
            setup=cut("{R}/sentiment/gru/vocab.json"),
            words=("vocab.json",),
        )
    )
    add(
        Case(
            "sentiment/eval-vocab-json-missing",
            dmg,
            st("eval", run="gru"),
            uses=sgr,
            setup=remove("{R}/sentiment/gru/vocab.json"),
            words=("vocab.json",),
        )
    )
    add(
        Case(
            "sentiment/eval-vocab-json-a-list",
            dmg,
            st("eval", run="gru"),
            uses=sgr,
            setup=put("{R}/sentiment/gru/vocab.json", "[1, 2]"),
            words=("vocab.json",),
        )
    )
    add(
        Case(
            "sentiment/eval-csv-missing",
            bad,
            st("eval", "--csv", "{C}/nope.csv", run="gru"),
            uses=sgr,
            words=("nope.csv",),
        )
    )
    add(
        Case(
            "sentiment/eval-csv-random",
            dmg,
            st("eval", "--csv", "{C}/inputs/r.csv", run="gru"),
            uses=sgr,
            setup=put("{C}/inputs/r.csv", random_bytes(3000)),
            words=("r.csv",),
        )
    )
    add(
        Case(
            "sentiment/eval-checkpoint-truncated",
            dmg,
            st("eval", run="gru"),
            uses=sgr,
            setup=cut("{R}/sentiment/gru/checkpoints/last.pt", 400),
            words=("last.pt",),
        )
    )
    add(
        Case(
            "sentiment/eval-checkpoint-of-att",
            dmg,
            st("eval", run="gru"),
            uses=(*sgr, *sat),
            setup=lambda ctx: replace_bytes(
                ctx.run("sentiment/gru/checkpoints/last.pt"), ctx.run("sentiment/att/checkpoints/last.pt").read_bytes()
            ),
            words=("last.pt",),
        )
    )
    add(
        Case(
            "sentiment/eval-crafted-pickle",
            safe,
            st("eval", run="gru"),
            uses=sgr,
            setup=evil_checkpoint("{R}/sentiment/gru/checkpoints/last.pt"),
            words=("last.pt",),
        )
    )
    add(Case("sentiment/eval-ok", bad, st("eval", run="gru"), uses=sgr, expect="ok", check=no_nan))
    add(
        Case(
            "sentiment/explain-emoji-only",
            bad,
            ["sentiment", "explain", "🙂🙂 🐿️ 🙃", "--run", "{R}/sentiment/att", *Q],
            uses=sat,
            words=("no words",),
        )
    )
    add(
        Case(
            "sentiment/explain-non-ascii",
            bad,
            ["sentiment", "explain", EMOJI, "--run", "{R}/sentiment/att", "--no-figures", *Q],
            uses=sat,
            expect="either",
            check=no_nan,
            words=("no words",),
        )
    )
    add(
        Case(
            "sentiment/explain-gru",
            mis,
            ["sentiment", "explain", "a fine film", "--run", "{R}/sentiment/gru", *Q],
            uses=sgr,
            words=("explain needs",),
        )
    )
    add(
        Case(
            "sentiment/explain-long-review",
            bad,
            ["sentiment", "explain", "good " * 3000, "--run", "{R}/sentiment/att", "--no-figures", *Q],
            uses=sat,
            expect="ok",
            check=no_nan,
        )
    )
    add(
        Case(
            "sentiment/explain-run-of-textgen",
            mis,
            ["sentiment", "explain", "good film", "--run", "{R}/textgen/char", *Q],
            uses=tgc,
            words=("textgen",),
        )
    )
    add(
        Case(
            "sentiment/explain-vocab-cut",
            dmg,
            ["sentiment", "explain", "good film", "--run", "{R}/sentiment/att", "--no-figures", *Q],
            uses=sat,
            setup=cut("{R}/sentiment/att/vocab.json"),
            words=("vocab.json",),
        )
    )
    add(Case("sentiment/figures-with-missing", bad, st("figures", "--with", "{C}/nope"), uses=sat, words=("nope",)))
    add(
        Case(
            "sentiment/figures-with-other-lab",
            mis,
            st("figures", "--with", "{R}/textgen/char"),
            uses=(*sat, *tgc),
            words=("textgen",),
        )
    )
    add(
        Case(
            "sentiment/figures-metrics-torn-line",
            dmg,
            st("figures", run="gru"),
            uses=sgr,
            setup=lambda ctx: ctx.run("sentiment/gru/metrics.jsonl").open("ab").write(b'{"step": 3, "loss": 0.\xc3'),
            expect="ok",
            keep="precious",
        )
    )
    sw = ["sentiment", "sweep", "--run-dir", "{R}", *Q, "--csv", "{F}/inputs/reviews.csv", "--steps", "2"]
    for argv, word in [
        (("--hidden", "0"), "hidden"),
        (("--hidden", "5:1"), "hidden"),
        (("--hidden", "a:b"), "a:b"),
        (("--models", "lstm"), "lstm"),
        (("--activations", "gelu"), "gelu"),
        (("--jobs", "0"), ">= 1"),
        (("--layers", "0"), "layers"),
        (("--hidden", "1:2:0"), "hidden"),
    ]:
        add(Case(f"sentiment/sweep{'-'.join(('',) + argv)}", bad, [*sw, *argv], words=(word,)))

    # -- imagediff (its lab files belong to someone else: problems are listed, not fixed)
    img = ("imagediff/img",)
    for key, value, word in [
        ("p_uncond", "2", "p_uncond"),
        ("guidance", "nan", "guidance"),
        ("guidance_sweep", "0,nan", "guidance_sweep"),
        ("resolution", "12", "resolution"),
        ("widths", "8,0", "widths"),
        ("widths", "", "widths"),
        ("attn", "7", "attn"),
        ("blocks", "0", "blocks"),
        ("T", "1", "T"),
    ]:
        expect = "either" if key in ("attn", "T") else "error"
        add(
            Case(
                f"imagediff/train-set-{key}={value or 'empty'}",
                bad,
                im_train("--set", f"{key}={value}"),
                expect=expect,
                check=no_nan,
                words=(word,),
            )
        )
    add(
        Case(
            "imagediff/train-canvas-without-text",
            bad,
            im_train("--set", "cond=class", "--set", "canvas=2"),
            words=("canvas",),
        )
    )
    add(
        Case(
            "imagediff/train-minilm-not-fetched",
            env,
            im_train("--set", "encoder=minilm"),
            env={"GENLAB_DATA": "{C}/empty-cache"},
            words=("minilm",),
        )
    )
    add(
        Case(
            "imagediff/train-minilm-tokenizer-cut",
            dmg,
            im_train("--set", "encoder=minilm"),
            setup=cut("{D}/minilm/model/tokenizer.json"),
            words=("tokenizer.json", "minilm"),
        )
    )
    add(
        Case(
            "imagediff/train-huge-batch",
            bad,
            im_train("--set", "batch_size=1000000000"),
            expect="either",
            check=no_nan,
            words=("memory", "batch_size"),
        )
    )
    add(
        Case(
            "imagediff/resume-finished",
            lost,
            im_train("--resume", name="img"),
            uses=img,
            expect="ok",
            keep="all",
            check=says("finished", "nothing"),
        )
    )
    for argv, word in [
        (("--n", "0"), ">= 1"),
        (("--steps", "0"), ">= 1"),
        (("--guidance", "-1"), ">= 0"),
        (("--guidance", "nan"), "nan"),
        (("--out", "{C}/x.jpg"), "x.jpg"),
        (("--out", "{C}/nope/x.png"), "nope"),
        (("--label", "3"), "label"),
        (("--sampler", "heum"), "heum"),
    ]:
        add(
            Case(
                f"imagediff/sample{'-'.join(('',) + argv).replace('{C}/', '')}",
                bad,
                im("sample", *argv),
                uses=img,
                words=(word,),
            )
        )
    for name, argv in [
        ("emoji-prompt", ("--prompt", EMOJI)),
        ("long-prompt", ("--prompt", LONG)),
        ("empty-prompt", ("--prompt", "")),
        ("huge-guidance", ("--guidance", "1e308", "--prompt", "a 3")),
    ]:
        add(
            Case(
                f"imagediff/sample-{name}",
                bad,
                im("sample", "--n", "4", "--out", "{C}/s.npy", *argv),
                uses=img,
                expect="either",
                check=no_nan,
                words=("prompt", "guidance"),
            )
        )
    add(
        Case(
            "imagediff/sample-out-is-a-folder",
            env,
            im("sample", "--n", "2", "--out", "{C}/d.png"),
            uses=img,
            setup=lambda ctx: (ctx.C / "d.png").mkdir(),
            words=("d.png",),
        )
    )
    add(
        Case(
            "imagediff/sample-out-full-disk",
            env,
            im("sample", "--n", "4", "--out", "{C}/full/s.npy"),
            uses=img,
            setup=full_disk("{C}/full"),
            mount=True,
            words=("full", "space"),
        )
    )
    add(
        Case(
            "imagediff/sample-checkpoint-truncated",
            dmg,
            im("sample", "--n", "2"),
            uses=img,
            setup=steps(no_fallback("imagediff/img"), cut("{R}/imagediff/img/checkpoints/last.pt", 500)),
            words=("last.pt",),
        )
    )
    add(
        Case(
            "imagediff/sample-crafted-pickle",
            safe,
            im("sample", "--n", "2"),
            uses=img,
            setup=steps(no_fallback("imagediff/img"), evil_checkpoint("{R}/imagediff/img/checkpoints/last.pt")),
            words=("last.pt",),
        )
    )
    add(
        Case(
            "imagediff/sample-judge-checkpoint-cut",
            dmg,
            im("sample", "--n", "2", "--out", "{C}/s.png"),
            uses=img,
            setup=lambda ctx: [cut(str(p), 300)(ctx) for p in ctx.run("imagediff/img/stages/judge").rglob("*.pt")],
            words=("last.pt", "judge"),
        )
    )
    add(
        Case(
            "imagediff/sample-config-wrong-shape",
            dmg,
            im("sample", "--n", "2", "--out", "{C}/s.png"),
            uses=img,
            setup=edit_json(
                "{R}/imagediff/img/config.json", lambda b: {**b, "config": {**b["config"], "widths": [8, 32]}}
            ),
            words=("last.pt", "checkpoint"),
        )
    )
    add(Case("imagediff/figures-only-unknown", bad, im("figures", "--only", "nosuch"), uses=img, words=("nosuch",)))
    add(
        Case(
            "imagediff/compose-jobs-0",
            bad,
            ["imagediff", "compose", "--preset", "tiny", "--run-dir", "{R}", *Q, "--jobs", "0"],
            words=(">= 1",),
        )
    )
    add(
        Case(
            "imagediff/sample-run-of-theory",
            mis,
            run_verb("imagediff", "sample", "theory/th"),
            uses=("theory/th",),
            words=("theory",),
        )
    )

    # -- theory
    thr = ("theory/th",)
    add(Case("theory/run-length-1", bad, th_train("--set", "length=1"), words=("length",)))
    add(Case("theory/run-vocab-2", bad, th_train("--set", "vocab=2"), words=("vocab",)))
    add(Case("theory/run-lr-nan", bad, th_train("--set", "lr=nan"), words=("lr",)))
    add(Case("theory/run-heads-do-not-divide-width", bad, th_train("--set", "n_head=3"), words=("n_head", "d_model")))
    add(
        Case(
            "theory/run-resume-finished",
            lost,
            th_train("--resume", name="th"),
            uses=thr,
            expect="ok",
            keep="all",
            check=says("finished", "nothing"),
        )
    )
    add(Case("theory/run-resume-mistyped", mis, th_train("--resume", name="ht"), uses=thr, words=("ht",)))
    add(Case("theory/figures-only-unknown", bad, th("figures", "--only", "nosuch"), uses=thr, words=("nosuch",)))
    add(
        Case(
            "theory/figures-config-not-json",
            dmg,
            th("figures"),
            uses=thr,
            setup=put("{R}/theory/th/config.json", b"\x00\xff"),
            words=("config.json",),
        )
    )
    add(
        Case(
            "theory/figures-summary-not-json",
            dmg,
            th("figures", "--only", "answers"),
            uses=thr,
            setup=put("{R}/theory/th/summary.json", b"{{"),
            words=("summary.json",),
        )
    )
    add(
        Case(
            "theory/figures-checkpoint-cut",
            dmg,
            th("figures", "--only", "answers"),
            uses=thr,
            setup=steps(no_fallback("theory/th"), cut("{R}/theory/th/checkpoints/last.pt", 100)),
            expect="either",
            words=("last.pt",),
            keep="precious",
        )
    )
    add(
        Case(
            "theory/figures-stage-checkpoint-cut",
            dmg,
            th("figures", "--only", "seq2seq_accuracy"),
            uses=thr,
            setup=lambda ctx: [cut(str(p), 100)(ctx) for p in ctx.run("theory/th/stages").rglob("last.pt")],
            expect="either",
            words=("last.pt",),
            keep="precious",
        )
    )
    add(
        Case(
            "theory/figures-crafted-pickle",
            safe,
            th("figures", "--only", "seq2seq_accuracy"),
            uses=thr,
            setup=lambda ctx: [evil_checkpoint(str(p))(ctx) for p in ctx.run("theory/th/stages").rglob("last.pt")],
            expect="either",
            words=("last.pt",),
            keep="precious",
        )
    )
    add(
        Case(
            "theory/figures-run-of-imagediff",
            mis,
            run_verb("theory", "figures", "imagediff/img"),
            uses=img,
            words=("imagediff",),
        )
    )

    # -- report
    add(
        Case(
            "report/out-is-a-file",
            env,
            ["report", "--quick", "--quiet", "--out", "{C}/inputs/notes.txt"],
            setup=put("{C}/inputs/notes.txt", "x"),
            words=("notes.txt",),
        )
    )
    add(
        Case(
            "report/labs-unknown",
            bad,
            ["report", "--quick", "--quiet", "--labs", "textgne", "--out", "{C}/rep"],
            words=("textgne",),
        )
    )
    add(
        Case(
            "report/labs-empty",
            bad,
            ["report", "--quick", "--quiet", "--labs", "", "--out", "{C}/rep"],
            words=("--labs",),
        )
    )
    add(
        Case(
            "report/labs-comma",
            bad,
            ["report", "--quick", "--quiet", "--labs", ",", "--out", "{C}/rep"],
            words=("--labs",),
        )
    )
    add(
        Case(
            "report/reuse-keeps-a-run-of-another-config",
            lost,
            ["report", "--quick", "--reuse", "--quiet", "--labs", "theory", "--device", "cpu", "--out", "{C}/rep"],
            needs=("theory/th",),
            setup=lambda ctx: shutil.copytree(ctx.fmt("{F}/runs/theory/th"), ctx.C / "rep/runs/theory/quick"),
            expect="either",
            codes=(130,),
            one_line=False,
            keep="content",
            interrupt=(appeared("{C}/rep/runs/theory/quick.replaced-*/config.json"), 90.0),
            timeout=180,
        )
    )
    add(
        Case(
            "report/out-holding-the-users-runs",
            lost,
            ["report", "--quick", "--quiet", "--labs", "theory", "--device", "cpu", "--out", "{C}"],
            uses=thr,
            expect="either",
            codes=(2, 130),
            one_line=False,
            keep="content",
            interrupt=(appeared("{C}/runs/theory/quick/config.json"), 90.0),
            timeout=180,
        )
    )
    add(
        Case(
            "report/out-read-only",
            env,
            ["report", "--quick", "--quiet", "--labs", "theory", "--device", "cpu", "--out", "{C}/ro"],
            setup=read_only("{C}/ro"),
            mount=True,
            words=("read-only",),
            codes=(1, 2),
        )
    )
    return c + surface_cases()


# ------------------------------------------------------------------------ surfaces added after the first sweep

# exported folders (genlab <lab> export) of the fixture runs: fixture name -> (lab, the run it is exported from)
EXPORTS = {
    "diffusion2d/sq-x": ("diffusion2d", "diffusion2d/sq"),
    "textgen/char-x": ("textgen", "textgen/char"),
    "sentiment/att-x": ("sentiment", "sentiment/att"),
    "latent/lt-x": ("latent", "latent/lt"),
}
# a verb that loads an exported folder's weights, per lab
OPEN_EXPORT = {
    "diffusion2d": ("sample", "--n", "5", "--out", "{C}/s.csv"),
    "textgen": ("generate", "--max-new-tokens", "10"),
    "sentiment": ("eval",),
    "latent": ("classify", "--labels", "20"),
}


def x_case(exported: str, *extra: str) -> list[str]:
    lab = EXPORTS[exported][0]
    verb, *rest = extra or OPEN_EXPORT[lab]
    return run_verb(lab, verb, exported, *rest)


def safetensors_bytes(header: dict, body: bytes = b"") -> bytes:
    """A safetensors file from its JSON header (for crafted ones: lying offsets, a huge claimed length)."""
    raw = json.dumps(header).encode()
    return len(raw).to_bytes(8, "little") + raw + body


def pickle_as(rel: str) -> Setup:
    """A crafted pickle that runs code, saved under a safetensors name."""

    def make(ctx: Ctx) -> Any:
        return {"step": 1, "model": _RunsCode(ctx.marker), "ema": None}

    return torch_save(rel, make)


def surface_cases() -> list[Case]:  # noqa: PLR0915 - one flat list reads best
    """Export and exported folders, ``--log tensorboard``, sentiment's candidate / dropout / epochs / preset report
    and sweep axes, textgen's ``attention --word`` and ``score --report``, latent's ``search``."""
    c: list[Case] = []
    add = c.append
    bad, dmg, env, mis, lost, safe = CLASSES
    sq, sqx = ("diffusion2d/sq",), ("diffusion2d/sq-x",)

    # -- export: where it writes
    ex = ("diffusion2d", "export")

    def exp(*extra: str, run: str = "diffusion2d/sq") -> list[str]:
        return run_verb(*ex, run, *extra)

    add(Case("diffusion2d/export-no-out", bad, exp(), uses=sq, words=("--out",)))
    add(Case("diffusion2d/export-out-empty", bad, exp("--out", ""), uses=sq, words=("--out",)))
    add(
        Case("diffusion2d/export-out-is-the-run", bad, exp("--out", "{R}/diffusion2d/sq"), uses=sq, words=("overlaps",))
    )
    add(
        Case(
            "diffusion2d/export-out-inside-the-run",
            bad,
            exp("--out", "{R}/diffusion2d/sq/shared"),
            uses=sq,
            words=("overlaps",),
            check=exists("{R}/diffusion2d/sq/shared", want=False),
        )
    )
    add(
        Case(
            "diffusion2d/export-out-inside-the-run-relative",
            bad,
            exp("--out", "runs/diffusion2d/sq/../sq/checkpoints/x"),
            uses=sq,
            words=("overlaps",),
        )
    )
    add(Case("diffusion2d/export-out-above-the-run", bad, exp("--out", "{R}"), uses=sq, words=("overlaps",)))
    add(
        Case(
            "diffusion2d/export-out-an-existing-file",
            bad,
            exp("--out", "{C}/inputs/notes.txt"),
            uses=sq,
            setup=put("{C}/inputs/notes.txt", "my notes\n"),
            words=("notes.txt",),
        )
    )
    add(
        Case(
            "diffusion2d/export-out-a-folder-with-files",
            lost,
            exp("--out", "{C}/inputs"),
            uses=sq,
            setup=put("{C}/inputs/notes.txt", "my notes\n"),
            words=("inputs",),
        )
    )
    add(
        Case(
            "diffusion2d/export-out-another-export",
            lost,
            exp("--out", "{R}/diffusion2d/sq-x"),
            uses=(*sq, *sqx),
            words=("sq-x",),
        )
    )
    add(
        Case(
            "diffusion2d/export-out-parent-missing",
            bad,
            exp("--out", "{C}/no/such/folder"),
            uses=sq,
            words=("no/such",),
        )
    )
    add(
        Case(
            "diffusion2d/export-out-a-symlink-into-the-run",
            lost,
            exp("--out", "{C}/link"),
            uses=sq,
            setup=lambda ctx: (ctx.C / "link").symlink_to(ctx.run("diffusion2d/sq/checkpoints")),
            words=("overlaps", "link"),
        )
    )
    add(
        Case(
            "diffusion2d/export-out-read-only",
            env,
            exp("--out", "{C}/ro/x"),
            uses=sq,
            setup=read_only("{C}/ro"),
            mount=True,
            words=("read-only",),
        )
    )
    add(
        Case(
            "diffusion2d/export-out-full-disk",
            env,
            exp("--out", "{C}/full/x"),
            uses=sq,
            setup=full_disk("{C}/full"),
            mount=True,
            words=("full", "space"),
            check=exists("{C}/full/x", want=False),
        )
    )
    add(
        Case(
            "diffusion2d/export-out-emoji-name",
            bad,
            exp("--out", f"{{C}}/{EMOJI.replace(' ', '_')}"),
            uses=sq,
            expect="ok",
            check=exists(f"{{C}}/{EMOJI.replace(' ', '_')}/model.safetensors"),
        )
    )
    add(Case("diffusion2d/export-run-missing", bad, exp("--out", "{C}/x", run="nope"), words=("nope",)))
    add(
        Case(
            "diffusion2d/export-run-of-textgen",
            mis,
            run_verb(*ex, "textgen/char", "--out", "{C}/x"),
            uses=("textgen/char",),
            words=("textgen",),
        )
    )
    add(
        Case(
            "diffusion2d/export-untrained-run",
            bad,
            exp("--out", "{C}/x"),
            uses=sq,
            setup=remove("{R}/diffusion2d/sq/checkpoints"),
            words=("checkpoint",),
            check=exists("{C}/x", want=False),
        )
    )
    add(
        Case(
            "diffusion2d/export-checkpoint-truncated",
            dmg,
            exp("--out", "{C}/x"),
            uses=sq,
            setup=steps(no_fallback("diffusion2d/sq"), cut("{R}/diffusion2d/sq/checkpoints/last.pt", 200)),
            words=("last.pt",),
            check=exists("{C}/x", want=False),
        )
    )
    add(
        Case(
            "diffusion2d/export-config-not-json",
            dmg,
            exp("--out", "{C}/x"),
            uses=sq,
            setup=put("{R}/diffusion2d/sq/config.json", b"\xff{"),
            words=("config.json",),
            check=exists("{C}/x", want=False),
        )
    )
    add(
        Case(
            "diffusion2d/export-summary-not-json",
            dmg,
            exp("--out", "{C}/x"),
            uses=sq,
            setup=put("{R}/diffusion2d/sq/summary.json", b"{{"),
            expect="either",
            words=("summary.json",),
        )
    )
    add(
        Case(
            "diffusion2d/export-crafted-pickle",
            safe,
            exp("--out", "{C}/x"),
            uses=sq,
            setup=steps(no_fallback("diffusion2d/sq"), evil_checkpoint("{R}/diffusion2d/sq/checkpoints/last.pt")),
            words=("last.pt",),
            check=exists("{C}/x", want=False),
        )
    )
    add(
        Case(
            "diffusion2d/export-of-an-export",
            bad,
            run_verb(*ex, "diffusion2d/sq-x", "--out", "{C}/x"),
            uses=sqx,
            needs=sq,
            expect="either",
            check=exists("{C}/x/model.safetensors"),
        )
    )
    add(
        Case(
            "latent/export-with-stages",
            bad,
            run_verb("latent", "export", "latent/lt", "--out", "{C}/x"),
            uses=("latent/lt",),
            expect="ok",
            check=lambda res, ctx: (
                None
                if res.rc != 0 or any((ctx.C / "x" / "stages").rglob("model.safetensors"))
                else "no stage's model.safetensors in the export"
            ),
        )
    )
    add(
        Case(
            "textgen/export-then-resume-it",
            mis,
            tg_train("--resume", name="char-x"),
            uses=("textgen/char-x",),
            needs=("textgen/char",),
            expect="either",
            keep="all",
            words=("export", "resume", "finished", "checkpoint"),
            check=says("finished", "nothing"),
        )
    )
    add(
        Case(
            "textgen/export-cut-then-resume-it",
            mis,
            tg_train("--resume", "--set", "steps=60", name="cx"),
            uses=("textgen/char-x",),
            needs=("textgen/char",),
            setup=cut_run("textgen/char-x", "textgen/cx", 60),
            expect="either",
            keep="precious",
            words=("export", "resume", "checkpoint", "optimi"),
        )
    )

    # -- an exported folder opened with --run: every lab's opener, damaged weights and config
    for exported, (lab, src) in EXPORTS.items():
        w = f"{{R}}/{exported}/model.safetensors"
        for what, setup in [
            ("weights-zero-bytes", put(w, b"")),
            ("weights-truncated", cut(w, 0.5)),
            ("weights-missing", remove(w)),
            ("config-zero-bytes", put(f"{{R}}/{exported}/config.json", b"")),
        ]:
            add(
                Case(
                    f"{lab}/exported-{what}",
                    dmg,
                    x_case(exported),
                    uses=(exported,),
                    needs=(src,),
                    setup=setup,
                    words=("model.safetensors", "config.json", "checkpoint"),
                )
            )
        add(
            Case(
                f"{lab}/exported-ok",
                bad,
                x_case(exported),
                uses=(exported,),
                needs=(src,),
                expect="ok",
                check=no_nan,
            )
        )
    x = "{R}/diffusion2d/sq-x"
    for what, setup, words in [
        ("weights-random-bytes", put(f"{x}/model.safetensors", random_bytes()), ("model.safetensors",)),
        ("weights-header-length-only", cut(f"{x}/model.safetensors", 8), ("model.safetensors",)),
        (
            "weights-header-claims-huge-length",
            put(f"{x}/model.safetensors", (1 << 60).to_bytes(8, "little") + b"{}"),
            ("model.safetensors",),
        ),
        (
            "weights-offsets-beyond-the-file",
            put(
                f"{x}/model.safetensors",
                safetensors_bytes({"w": {"dtype": "F32", "shape": [1000, 1000], "data_offsets": [0, 4000000]}}),
            ),
            ("model.safetensors",),
        ),
        ("weights-no-tensors", put(f"{x}/model.safetensors", safetensors_bytes({})), ("model.safetensors", "sq-x")),
        (
            "weights-of-textgen",
            lambda ctx: replace_bytes(
                ctx.run("diffusion2d/sq-x/model.safetensors"),
                ctx.run("textgen/char-x/model.safetensors").read_bytes(),
            ),
            ("model.safetensors", "sq-x", "textgen"),
        ),
        (
            "weights-a-folder",
            steps(
                remove(f"{x}/model.safetensors"), lambda ctx: (ctx.run("diffusion2d/sq-x/model.safetensors")).mkdir()
            ),
            ("model.safetensors", "sq-x", "checkpoint"),
        ),
        ("weights-step-metadata-garbage", lambda ctx: _restep(ctx.run("diffusion2d/sq-x/model.safetensors")), ("x",)),
        ("config-not-json", put(f"{x}/config.json", b"\xff{"), ("config.json",)),
        ("config-a-list", put(f"{x}/config.json", "[1, 2]"), ("config.json",)),
        ("config-of-textgen", edit_json(f"{x}/config.json", lambda b: {**b, "lab": "textgen"}), ("textgen",)),
        ("config-exported-wrong-type", edit_json(f"{x}/config.json", lambda b: {**b, "exported": 5}), ("x",)),
        (
            "config-hidden-changed",
            edit_json(f"{x}/config.json", lambda b: {**b, "config": {**b["config"], "hidden": 32}}),
            ("model.safetensors", "sq-x", "hidden"),
        ),
    ]:
        add(
            Case(
                f"diffusion2d/exported-{what}",
                dmg,
                x_case("diffusion2d/sq-x"),
                uses=("diffusion2d/sq-x",) + (("textgen/char-x",) if "textgen" in what else ()),
                needs=sq + (("textgen/char",) if "textgen" in what else ()),
                setup=setup,
                expect="either" if what in ("weights-step-metadata-garbage", "config-exported-wrong-type") else "error",
                check=no_nan,
                words=words,
            )
        )
    add(
        Case(
            "diffusion2d/exported-weights-a-crafted-pickle",
            safe,
            x_case("diffusion2d/sq-x"),
            uses=sqx,
            needs=sq,
            setup=pickle_as(f"{x}/model.safetensors"),
            words=("model.safetensors",),
        )
    )
    add(
        Case(
            "diffusion2d/exported-a-crafted-last.pt-beside-it",
            safe,
            x_case("diffusion2d/sq-x"),
            uses=sqx,
            needs=sq,
            setup=evil_checkpoint(f"{x}/checkpoints/last.pt"),
            expect="either",
            words=("last.pt",),
        )
    )
    add(
        Case(
            "diffusion2d/exported-sample-out-is-the-weights",
            lost,
            x_case("diffusion2d/sq-x", "sample", "--n", "5", "--out", f"{x}/model.safetensors"),
            uses=sqx,
            needs=sq,
            words=("model.safetensors",),
        )
    )
    add(
        Case(
            "diffusion2d/exported-train-over-it",
            lost,
            d2_train(name="sq-x"),
            uses=sqx,
            needs=sq,
            words=("sq-x",),
        )
    )
    add(
        Case(
            "diffusion2d/exported-resume",
            mis,
            d2_train("--resume", name="sq-x"),
            uses=sqx,
            needs=sq,
            words=("exported",),
        )
    )
    add(
        Case(
            "diffusion2d/exported-figures",
            bad,
            x_case("diffusion2d/sq-x", "figures"),
            uses=sqx,
            needs=sq,
            expect="either",
            keep="precious",
            words=("metrics", "figure", "export"),
        )
    )
    xt = "{R}/textgen/char-x"
    add(
        Case(
            "textgen/exported-chars-json-missing",
            dmg,
            x_case("textgen/char-x"),
            uses=("textgen/char-x",),
            needs=("textgen/char",),
            setup=remove(f"{xt}/chars.json"),
            words=("chars.json",),
        )
    )
    add(
        Case(
            "textgen/exported-attention-word-beyond",
            bad,
            x_case("textgen/char-x", "attention", "--prompt", "Alice was", "--word", "400"),
            uses=("textgen/char-x",),
            needs=("textgen/char",),
            words=("400",),
        )
    )
    xs = "{R}/sentiment/att-x"
    add(
        Case(
            "sentiment/exported-vocab-missing",
            dmg,
            x_case("sentiment/att-x", "explain", "--no-figures", "a great film"),
            uses=("sentiment/att-x",),
            needs=("sentiment/att",),
            setup=remove(f"{xs}/vocab.json"),
            words=("vocab.json",),
        )
    )
    add(
        Case(
            "latent/exported-stage-weights-truncated",
            dmg,
            x_case("latent/lt-x"),
            uses=("latent/lt-x",),
            needs=("latent/lt",),
            setup=lambda ctx: [cut(str(p), 0.5)(ctx) for p in ctx.run("latent/lt-x/stages").rglob("model.safetensors")],
            words=("model.safetensors",),
        )
    )

    # -- --log tensorboard
    add(
        Case(
            "diffusion2d/train-log-tensorboard",
            bad,
            d2_train("--log", "tensorboard"),
            expect="ok",
            check=lambda res, ctx: (
                None
                if res.rc != 0 or any(ctx.run("diffusion2d/new/tensorboard").glob("*tfevents*"))
                else "no event file in <run>/tensorboard"
            ),
        )
    )
    add(Case("diffusion2d/train-log-unknown", bad, d2_train("--log", "wandb"), words=("wandb",)))
    add(Case("diffusion2d/train-set-log-mistyped", bad, d2_train("--set", "log=tensorbord"), words=("tensorbord",)))
    add(Case("diffusion2d/train-set-log-empty", bad, d2_train("--set", "log="), words=("log",)))
    add(
        Case(
            "diffusion2d/train-log-tensorboard-folder-is-a-file",
            env,
            d2_train("--log", "tensorboard"),
            setup=put("{R}/diffusion2d/new/tensorboard", "not a folder\n"),
            expect="error",
            keep=("runs/diffusion2d/new/tensorboard",),
            words=("tensorboard",),
        )
    )
    add(
        Case(
            "diffusion2d/train-log-tensorboard-full-disk",
            env,
            [*d2_train("--log", "tensorboard"), "--run-dir", "{C}/full"],
            setup=full_disk("{C}/full"),
            mount=True,
            words=("full", "space"),
        )
    )
    add(
        Case(
            "sentiment/train-log-tensorboard",
            bad,
            [*st_train(), "--log", "tensorboard"],
            expect="ok",
            check=exists("{R}/sentiment/new/tensorboard"),
        )
    )
    add(
        Case(
            "textgen/train-log-tensorboard",
            bad,
            tg_train("--log", "tensorboard", "--set", "steps=4"),
            expect="ok",
            check=exists("{R}/textgen/new/tensorboard"),
        )
    )

    # -- sentiment: candidate, dropout, epochs, preset report
    for key, value, word in [
        ("candidate", "gelu", "gelu"),
        ("candidate", "", "candidate"),
        ("candidate", "TANH", "TANH"),
        ("dropout", "-0.1", "dropout"),
        ("dropout", "1", "dropout"),
        ("dropout", "nan", "dropout"),
        ("dropout", "inf", "dropout"),
        ("dropout", "abc", "abc"),
        ("epochs", "-1", "epochs"),
        ("epochs", "1.5", "epochs"),
        ("epochs", "abc", "abc"),
        ("epochs", "", "epochs"),
        ("epochs", "100000000000000000000", "epochs"),
    ]:
        add(
            Case(
                f"sentiment/train-set-{key}={value or 'empty'}",
                bad,
                [*st_train(model="mlp" if key == "dropout" else "gru"), "--set", f"{key}={value}"],
                words=(word,),
            )
        )
    add(Case("sentiment/train-candidate-flag-unknown", bad, [*st_train(), "--candidate", "swish"], words=("swish",)))
    add(
        Case(
            "sentiment/train-candidate-none",
            bad,
            [*st_train(), "--candidate", "none"],
            expect="ok",
            check=no_nan,
        )
    )
    add(
        Case(
            "sentiment/train-candidate-with-rnn",
            mis,
            [*st_train(model="rnn"), "--candidate", "relu"],
            expect="either",
            words=("candidate",),
        )
    )
    add(
        Case(
            "sentiment/train-epochs-1",
            bad,
            [*st_train(), "--set", "epochs=1"],
            expect="ok",
            check=no_nan,
        )
    )
    add(Case("sentiment/train-preset-unknown", bad, [*st_train(), "--preset", "reprot"], words=("reprot",)))
    add(
        Case(
            "sentiment/train-preset-report-show-config",
            bad,
            ["sentiment", "train", "--preset", "report", "--show-config"],
            expect="ok",
            check=says("candidate"),
        )
    )
    sw = ["sentiment", "sweep", "--run-dir", "{R}", *Q, "--csv", "{F}/inputs/reviews.csv", "--steps", "2"]
    sw += ["--set", "n_train=60", "--set", "embeddings=learned", "--set", "embed_dim=8", "--set", "window=2"]
    swm = [*sw, "--models", "mlp"]
    for base, argv, word in [
        (sw, ("--candidates", "gelu"), "gelu"),
        (sw, ("--candidates", ""), "--candidates"),
        (sw, ("--candidates", ",,"), "--candidates"),
        (swm, ("--widths", "8x0"), "8x0"),
        (swm, ("--widths", "8x-2"), "8x-2"),
        (swm, ("--widths", "x"), "--widths"),
        (swm, ("--widths", ""), "--widths"),
        (swm, ("--widths", "8,,8"), "--widths"),
        (swm, ("--widths", "abc"), "abc"),
        (swm, ("--widths", "100000000000"), "memory"),
        (swm, ("--dropouts", "1.5"), "1.5"),
        (swm, ("--dropouts", "1"), "--dropouts"),
        (swm, ("--dropouts", "-0.1"), "-0.1"),
        (swm, ("--dropouts", "nan"), "nan"),
        (swm, ("--dropouts", ""), "--dropouts"),
        (swm, ("--dropouts", "a"), "a"),
        (sw, ("--lrs", "0"), "--lrs"),
        (sw, ("--lrs", "-0.1"), "-0.1"),
        (sw, ("--lrs", "nan"), "nan"),
        (sw, ("--lrs", "inf"), "inf"),
        (sw, ("--lrs", "abc"), "abc"),
        (sw, ("--lrs", ""), "--lrs"),
        (sw, ("--preset", "reprot"), "reprot"),
    ]:
        who = "sweep-mlp" if base is swm else "sweep-grid"
        add(Case(f"sentiment/{who}{'-'.join(('',) + argv)}", bad, [*base, *argv], words=(word,)))
    # -- the Ray backend: a bad name, and nothing answering at RAY_ADDRESS (a one-line error before any cell runs)
    swr = [*sw, "--models", "gru", "--hidden", "8"]
    add(Case("sentiment/sweep-backend-typo", bad, [*swr, "--backend", "rays"], words=("rays",)))
    for address in ("127.0.0.1:1", "ray://127.0.0.1:1", "nosuchhost.invalid:6379", "not an address"):
        add(
            Case(
                f"sentiment/sweep-ray-address-{address.replace(' ', '-').replace('/', '').replace(':', '-')}",
                bad,
                [*swr, "--backend", "ray"],
                env={"RAY_ADDRESS": address},
                words=("RAY_ADDRESS",),
            )
        )
    add(
        Case(
            "imagediff/compose-ray-address-closed-port",
            bad,
            ["imagediff", "compose", "--preset", "tiny", "--run-dir", "{R}", *Q, "--backend", "ray"],
            env={"RAY_ADDRESS": "127.0.0.1:1"},
            words=("RAY_ADDRESS",),
        )
    )
    add(
        Case(
            "sentiment/sweep-candidates-without-gru",
            mis,
            [*sw, "--models", "rnn", "--candidates", "relu", "--hidden", "8"],
            words=("--candidates", "gru"),
        )
    )
    add(
        Case(
            "sentiment/sweep-dropouts-without-mlp",
            mis,
            [*sw, "--models", "gru", "--dropouts", "0.3", "--hidden", "8"],
            words=("--dropouts", "mlp", "attention"),
        )
    )

    # -- textgen: attention --word, score --report
    tgc = ("textgen/char",)
    for argv, word in [
        (("--word", "-1"), ">= 1"),
        (("--word", "abc"), "abc"),
        (("--word", "99999999999999999999"), "99999999999999999999"),
        (("--word", ""), "--word"),
        (("--prompt", "Alice was", "--word", "200"), "200"),
    ]:
        add(
            Case(
                f"textgen/attention-args{'-'.join(('',) + argv)}", bad, tg("attention", *argv), uses=tgc, words=(word,)
            )
        )
    add(
        Case(
            "textgen/attention-prompt-more-words-than-word",
            bad,
            tg("attention", "--prompt", "Alice was beginning to get very tired", "--word", "2"),
            uses=tgc,
            expect="either",
            words=("--word", "--prompt"),
        )
    )
    add(
        Case(
            "textgen/attention-word-beyond-a-short-prompt",
            bad,
            tg("attention", "--prompt", "Alice", "--word", "3"),
            uses=tgc,
            expect="either",
            check=no_nan,
            words=("word", "prompt"),
        )
    )
    add(
        Case(
            "textgen/score-report",
            bad,
            tg("score", "--report"),
            uses=tgc,
            expect="either",
            check=no_nan,
            words=("report", "word"),
        )
    )
    add(
        Case(
            "textgen/score-report-with-text",
            bad,
            tg("score", "--report", "--text", "Alice"),
            uses=tgc,
            expect="either",
            check=no_nan,
            words=("--report", "--text"),
        )
    )
    add(
        Case(
            "textgen/score-report-read-only-run",
            env,
            tg("score", "--report"),
            uses=tgc,
            setup=read_only("{R}/textgen/char"),
            mount=True,
            words=("read-only", "--report", "word"),
        )
    )
    add(
        Case(
            "textgen/score-report-summary-not-json",
            dmg,
            tg("score", "--report"),
            uses=tgc,
            setup=put("{R}/textgen/char/summary.json", b"{{"),
            expect="either",
            keep="precious",
            words=("summary.json",),
        )
    )
    add(
        Case(
            "textgen/score-report-exported",
            bad,
            x_case("textgen/char-x", "score", "--report"),
            uses=("textgen/char-x",),
            needs=tgc,
            expect="either",
            keep="precious",
            check=no_nan,
            words=("report", "word"),
        )
    )

    # -- latent: search
    ltr = ("latent/lt",)
    for argv, word in [
        (("--labels", "0"), ">= 1"),
        (("--labels", "-3"), ">= 1"),
        (("--labels", "abc"), "abc"),
        (("--labels", "100000"), "100000"),
        (("--set", "search_folds=1"), "search_folds"),
        (("--set", "search_folds=nan"), "search_folds"),
        (("--labels", "20", "--set", "search_folds=50"), "search_folds"),
        (("--set", "search_widths=0"), "search_widths"),
        (("--set", "search_widths=8,-1"), "search_widths"),
        (("--set", "search_widths="), "search_widths"),
        (("--set", "search_depths=-1"), "search_depths"),
        (("--set", "search_depths=1000000"), "search_depths"),
        (("--set", "search_activations=swish"), "swish"),
        (("--set", "search_activations="), "search_activations"),
        (("--set", "search_widths=1000000000"), "search_widths"),
        (("--set", "serach_folds=3"), "serach_folds"),
    ]:
        add(Case(f"latent/search{'-'.join(('',) + argv)}", bad, lt("search", *argv), uses=ltr, words=(word,)))
    add(Case("latent/search-labels-3", bad, lt("search", "--labels", "3"), uses=ltr, expect="either", check=no_nan))
    add(Case("latent/search-ok", bad, lt("search", "--labels", "20"), uses=ltr, expect="ok", check=no_nan))
    add(
        Case(
            "latent/search-run-of-sentiment",
            mis,
            run_verb("latent", "search", "sentiment/att"),
            uses=("sentiment/att",),
            words=("sentiment",),
        )
    )
    add(
        Case(
            "latent/search-ae-checkpoint-cut",
            dmg,
            lt("search", "--labels", "20"),
            uses=ltr,
            setup=lambda ctx: [
                steps(*(cut(str(p), 100) for p in sorted(ctx.run("latent/lt/stages").rglob("*.pt"))))(ctx)
            ],
            words=("last.pt", "prev.pt", "best.pt"),
        )
    )
    add(
        Case(
            "latent/search-exported",
            bad,
            x_case("latent/lt-x", "search", "--labels", "20"),
            uses=("latent/lt-x",),
            needs=ltr,
            expect="either",
            keep="precious",
            check=no_nan,
        )
    )
    return c


def _restep(path: Path) -> None:
    """Rewrite a safetensors file with garbage metadata (step 'many', unknown keys)."""
    from safetensors.torch import load_file, save_file

    tensors = load_file(str(path))
    path.unlink()
    save_file(tensors, str(path), {"step": "many", "lab": "🙂", "ema": "perhaps"})


# ------------------------------------------------------------------------------------------------ fixtures


def _tiny_reviews(path: Path, n: int = 80, seed: int = 0) -> None:
    """A Kaggle-format CSV of generated reviews (two sentiment words each, every other one positive)."""
    rng = random.Random(seed)
    pos, neg = ("great", "good", "wonderful", "fun", "moving", "superb"), ("bad", "dull", "awful", "boring", "worst")
    filler = ("the", "movie", "film", "plot", "was", "this", "acting", "story")
    rows = [["review", "sentiment"]]
    for i in range(n):
        words = rng.choices(filler, k=6) + rng.choices(pos if i % 2 == 0 else neg, k=2)
        rng.shuffle(words)
        rows.append([" ".join(words).capitalize() + "!", "positive" if i % 2 == 0 else "negative"])
    path.write_text(_csv(rows))


def fixture_commands(f: Path) -> dict[str, tuple[list[str], tuple[int, ...]]]:
    """Each fixture run: its command (with {R} = the fixtures' runs folder) and the exit statuses it may end with."""
    r = str(f / "runs")

    def fill(argv: list[str]) -> list[str]:
        return [a.replace("{R}", r).replace("{F}", str(f)) for a in argv]

    return {
        "diffusion2d/sq": (fill(d2_train(name="sq")), (0,)),
        "diffusion2d/grid": (fill(d2_train("--preset", "grid", name="grid")), (0,)),
        "textgen/char": (fill(tg_train(name="char")), (0,)),
        "textgen/bpe": (fill(tg_train("--set", "tokenizer=bpe", "--set", "bpe_vocab=300", name="bpe")), (0,)),
        "textgen/gpt2": (fill(tg_train("--set", "tokenizer=gpt2", "--set", "steps=2", name="gpt2")), (0,)),
        "latent/lt": (fill(lt_train(name="lt")), (0,)),
        "latent/lt+gan": (fill(run_verb("latent", "gan", "latent/lt")), (0,)),
        "sentiment/att": (fill(st_train(name="att", model="attention")), (0,)),
        "sentiment/gru": (fill(st_train(name="gru", model="gru")), (0,)),
        "imagediff/img": (fill(im_train(name="img")), (0,)),
        "theory/th": (fill(th_train(name="th")), (0, 1)),  # a tiny theory run may fail a check (exit 1)
        **{  # exported folders of the runs above (genlab <lab> export)
            name: (fill(run_verb(lab, "export", src, "--out", f"{{R}}/{name}")), (0,))
            for name, (lab, src) in EXPORTS.items()
        },
    }


def build_fixtures(
    f: Path, genlabs: list[str], env: dict[str, str], log: Callable[[str], None], needed: set[str] | None = None
) -> dict[str, str]:
    """Train the ``needed`` fixture runs (all by default), each with the first genlab that manages; returns
    {fixture: the genlab that made it, or "failed: <its last stderr line>"}."""
    (f / "inputs").mkdir(parents=True, exist_ok=True)
    (f / "inputs" / "textgen.json").write_text(json.dumps(TEXTGEN_TINY))
    _tiny_reviews(f / "inputs" / "reviews.csv")
    made: dict[str, str] = {}
    for name, (argv, ok_codes) in fixture_commands(f).items():
        base = name.split("+")[0]
        if needed is not None and base not in needed:
            continue
        target = f / "runs" / base
        for exe in genlabs:
            if "+" not in name and target.exists():
                shutil.rmtree(target)
            t0 = time.time()
            proc = subprocess.run(
                ["nice", "-n", "19", exe, *argv], cwd=f, env=env, capture_output=True, text=True, timeout=900
            )
            good = proc.returncode in ok_codes and (target / "config.json").exists()
            log(f"fixture {name}: {'ok' if good else 'FAILED'} with {exe} in {time.time() - t0:.0f} s")
            if good:
                made[base] = exe if base not in made or "+" not in name else made[base]
                break
            made[base] = f"failed: {name}: {_last(proc.stderr)}"
    return made


def copy_datasets(dst: Path, log: Callable[[str], None], names: Sequence[str] = DATASETS) -> None:
    """Copy the cached datasets the cases use (never the cache itself) into ``dst``."""
    src = Path(os.environ.get("GENLAB_DATA") or Path.home() / ".cache" / "genlab").expanduser()
    for name in names:
        if (src / name / ".complete").is_file():
            shutil.copytree(src / name, dst / name, copy_function=shutil.copy2)
        else:
            log(f"dataset {name} is not cached in {src}: cases that need it will say so")


def link_farm(src: Path, dst: Path) -> None:
    """``dst`` mirrors ``src`` with hard links (small .complete markers are real copies)."""
    for p in src.rglob("*"):
        q = dst / p.relative_to(src)
        if p.is_dir():
            q.mkdir(parents=True, exist_ok=True)
        elif p.name == ".complete":
            shutil.copy2(p, q)
        else:
            try:
                os.link(p, q)
            except OSError:
                shutil.copy2(p, q)


# ------------------------------------------------------------------------------------------------ running


def snapshot(root: Path) -> dict[str, str]:
    """sha256 of every file under ``root`` (size and mtime for files over 8 MB), by relative path."""
    snap = {}
    for p in root.rglob("*"):
        if p.is_file() and not p.is_symlink():
            rel = p.relative_to(root).as_posix()
            st = p.stat()
            if st.st_size > 8 << 20:
                snap[rel] = f"size={st.st_size} mtime={st.st_mtime_ns}"
            else:
                try:
                    snap[rel] = hashlib.sha256(p.read_bytes()).hexdigest()
                except OSError:
                    snap[rel] = "unreadable"
    return snap


def lost_files(case: Case, before: dict[str, str], after: dict[str, str]) -> str | None:
    keep = case.keep or ("all" if case.expect == "error" else "precious")
    if keep == "none":
        return None
    if keep == "content":
        have = Counter(after.values())
        gone = [k for k, v in before.items() if have[v] == 0]
        return f"{len(gone)} files' content gone, e.g. {gone[0]}" if gone else None
    patterns = PRECIOUS if keep == "precious" else (("*",) if keep == "all" else keep)
    # a dataset's .complete marker is the cache's own bookkeeping (verify records new sizes and times in it)
    watched = [
        k for k in before if any(fnmatch.fnmatch(k, p) for p in patterns) and not k.endswith((".lock", "/.complete"))
    ]
    changed = [k for k in watched if after.get(k) != before[k]]
    if not changed:
        return None
    k = changed[0]
    return f"{len(changed)} file(s) {'vanished' if k not in after else 'changed'}, e.g. {k}"


def _limit_memory() -> None:
    """In each case's process, before genlab starts: a memory limit, and Ctrl-C's default action (a shell's
    background job inherits SIGINT ignored, and Python would then never raise KeyboardInterrupt)."""
    import resource

    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def execute(case: Case, exe: str, work: Path, fixtures: Path, data: Path, base_env: dict[str, str]) -> dict:
    """Run one case in its own folder and classify it."""
    folder = work / "cases" / case.name.replace("/", "__")
    folder.mkdir(parents=True)
    env = dict(base_env)
    ctx = Ctx(folder, fixtures, env)
    ctx.marker = folder / "PWNED"
    env["GENLAB_DATA"] = str(ctx.D)
    env["GENLAB_EXE"] = exe
    env.update({k: ctx.fmt(v) for k, v in case.env.items()})
    t0 = time.time()
    try:
        link_farm(data, ctx.D)
        ctx.R.mkdir()
        for use in case.uses:
            shutil.copytree(fixtures / "runs" / use, ctx.R / use, symlinks=True)
        if case.setup is not None:
            try:
                case.setup(ctx)
            except Exception as e:  # noqa: BLE001 - a setup that cannot apply (e.g. a file this genlab never wrote)
                return {"name": case.name, "class": case.cls, "lab": case.lab, "skipped": f"setup failed: {e!r}"}
        before = snapshot(folder)
        res = _run(case, [ctx.fmt(a) for a in case.argv], ctx, exe)
        after = snapshot(folder)
        lost = lost_files(case, before, after)
        if ctx.marker.exists():
            lost = "a crafted pickle ran code (its marker file appeared)"
        outcome, reason = classify(case, res, lost, ctx)
    finally:
        for fn in reversed(ctx.cleanups):
            with contextlib.suppress(Exception):
                fn()
    return {
        "name": case.name,
        "class": case.cls,
        "lab": case.lab,
        "outcome": outcome,
        "reason": reason,
        "rc": res.rc,
        "seconds": round(time.time() - t0, 1),
        "stderr_last": _last(res.err),
        "stderr_lines": len(res.lines),
        "stdout_last": _last(res.out),
    }


def _run(case: Case, argv: list[str], ctx: Ctx, exe: str) -> Result:
    t0 = time.time()
    proc = subprocess.Popen(
        ["nice", "-n", "19", exe, *argv],
        cwd=ctx.C,
        env=ctx.env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
        preexec_fn=_limit_memory,
    )
    timed_out = False
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        out_f = pool.submit(proc.stdout.read)
        err_f = pool.submit(proc.stderr.read)
        if case.interrupt is not None:
            cond, after = case.interrupt
            while proc.poll() is None and time.time() - t0 < after and not cond(ctx):
                time.sleep(0.3)
            if proc.poll() is None:
                time.sleep(1.0)
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGINT)
        try:
            proc.wait(timeout=max(1.0, case.timeout - (time.time() - t0)))
        except subprocess.TimeoutExpired:
            timed_out = True
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        out, err = out_f.result(), err_f.result()
    return Result(
        proc.returncode,
        out.decode("utf-8", "replace"),
        err.decode("utf-8", "replace"),
        time.time() - t0,
        timed_out,
    )


def classify(case: Case, res: Result, lost: str | None, ctx: Ctx) -> tuple[str, str]:
    """(outcome, reason): see the module docstring."""
    if lost:
        return "lost", lost
    lines = res.lines
    if case.expect == "debug":
        ok = "Traceback" in res.err and res.rc not in (0, None)
        return ("correct", "") if ok else ("silent", "no traceback although --debug asked for one")
    if "Traceback" in res.err:
        tb = [ln for ln in lines if ln and not ln.startswith(" ")]
        return "traceback", (tb[-1] if tb else _last(res.err))[:300]
    if res.timed_out:
        return "silent", f"no answer within {case.timeout:.0f} s"
    problem = case.check(res, ctx) if case.check else None
    if res.rc == 0:
        if case.expect == "error":
            return "silent", "exit 0 where an error was required: " + (_last(res.out) or _last(res.err))
        return ("silent", problem) if problem else ("correct", "")
    if case.expect == "ok":
        if res.rc not in case.codes and len(lines) > 1:
            return "traceback", f"exit {res.rc}: {_last(res.err)}"
        return "silent", f"exit {res.rc} where success was required: {_last(res.err)}"
    if res.rc not in case.codes:
        return ("traceback" if len(lines) > 1 else "silent"), f"unexpected exit {res.rc}: {_last(res.err)}"
    if case.one_line and len(lines) != 1:
        return "silent", f"{len(lines)} lines on stderr, not one: {_last(res.err)}"
    message = (lines[-1] if lines else "").lower()
    if case.words and case.one_line and not any(w.lower() in message for w in case.words):
        return "silent", f"the message names none of {list(case.words)}: {lines[-1] if lines else ''}"
    if problem:
        return "silent", problem
    return "clean", ""


# -------------------------------------------------------------------------------------------------- main


def summarize(results: list[dict], skipped: list[dict], exe: str, fixtures: dict[str, str]) -> dict:
    tally = Counter(r["outcome"] for r in results)
    by_class: dict[str, dict[str, int]] = {}
    by_lab: dict[str, dict[str, int]] = {}
    for r in results:
        by_class.setdefault(r["class"], Counter())[r["outcome"]] += 1
        by_lab.setdefault(r["lab"], Counter())[r["outcome"]] += 1
    failing = [
        {k: r[k] for k in ("name", "class", "outcome", "reason", "stderr_last")}
        for r in results
        if r["outcome"] in ("traceback", "silent", "lost")
    ]
    return {
        "genlab": exe,
        "cases": len(results),
        "tally": {o: tally.get(o, 0) for o in OUTCOMES},
        "by_class": {c: {o: by_class[c].get(o, 0) for o in OUTCOMES} for c in CLASSES if c in by_class},
        "by_lab": {lab: {o: v.get(o, 0) for o in OUTCOMES} for lab, v in sorted(by_lab.items())},
        "failing": failing,
        "skipped": skipped,
        "fixtures": fixtures,
    }


def run_sweep(
    exe: str,
    *,
    only: Sequence[str] = (),
    jobs: int = 1,
    fixture_genlab: str | None = None,
    work: Path | None = None,
    log: Callable[[str], None] = lambda s: print(s, file=sys.stderr, flush=True),
    selected: Sequence[Case] | None = None,
    datasets: Sequence[str] = DATASETS,
) -> dict:
    """Build the fixtures, run the (selected) cases, and return the summary with every case's result."""
    exe = str(Path(exe).resolve()) if Path(exe).exists() else exe
    todo = (
        list(selected) if selected is not None else [c for c in cases() if not only or any(s in c.name for s in only)]
    )
    own = work is None
    work = Path(tempfile.mkdtemp(prefix="genlab-sweep-")) if own else work
    try:
        base_env = {k: v for k, v in os.environ.items() if not k.startswith("GENLAB_")}
        base_env["PYTHONDONTWRITEBYTECODE"] = "1"
        base_env["PIP_FIND_LINKS"] = str(work / "no-packages")  # a fetch case must not find a real package
        base_env["PIP_NO_INDEX"] = "1"
        (work / "no-packages").mkdir(exist_ok=True)
        data = work / "data"
        data.mkdir(parents=True, exist_ok=True)
        copy_datasets(data, log, datasets)
        fenv = {**base_env, "GENLAB_DATA": str(data)}
        needed = {u for c in todo for u in (*c.uses, *c.needs)}
        fixtures = work / "fixtures"
        genlabs = [exe] + ([fixture_genlab] if fixture_genlab and fixture_genlab != exe else [])
        made = build_fixtures(fixtures, genlabs, fenv, log, needed)
        mount_ok = any(c.mount for c in todo) and can_mount(work)
        skipped = []
        runnable = []
        for c in todo:
            if c.mount and not mount_ok:
                skipped.append({"name": c.name, "why": "mount is not allowed here"})
            elif any(made.get(u, "failed").startswith("failed") for u in (*c.uses, *c.needs)):
                skipped.append({"name": c.name, "why": f"fixture: {[made.get(u) for u in (*c.uses, *c.needs)]}"})
            else:
                runnable.append(c)
        results: list[dict] = []

        def one(c: Case) -> dict:
            r = execute(c, exe, work, fixtures, data, base_env)
            if "skipped" in r:
                log(f"  skipped  {c.name}  [{r['skipped']}]")
                return r
            log(f"{r['outcome']:>9}  {r['seconds']:6.1f} s  {c.name}" + (f"  [{r['reason']}]" if r["reason"] else ""))
            return r

        with concurrent.futures.ThreadPoolExecutor(max(1, jobs)) as pool:
            done = list(pool.map(one, runnable))
        results = [r for r in done if "skipped" not in r]
        skipped += [{"name": r["name"], "why": r["skipped"]} for r in done if "skipped" in r]
        summary = summarize(results, skipped, exe, made)
        summary["results"] = results
        return summary
    finally:
        if own:
            shutil.rmtree(work, ignore_errors=True)


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    here = Path(__file__).resolve().parents[1]
    p.add_argument("--genlab", default=str(here / ".venv" / "bin" / "genlab"), help="the genlab executable to test")
    p.add_argument("--out", default=None, metavar="FILE.json", help="write the summary and every case's result here")
    p.add_argument("--only", action="append", default=[], metavar="SUBSTRING", help="cases whose name holds this")
    p.add_argument("--jobs", type=int, default=1, help="cases run at once (default 1)")
    p.add_argument(
        "--fixture-genlab", default=None, help="genlab that trains a fixture run when --genlab cannot (default: none)"
    )
    p.add_argument("--list", action="store_true", help="print the cases and exit")
    p.add_argument("--surfaces", action="store_true", help="only the cases of surface_cases() (with --only: of those)")
    args = p.parse_args(argv)
    if args.list:
        for c in cases():
            print(f"{c.cls:<13} {c.expect:<7} {'mount ' if c.mount else ''}{c.name}")
        all_ = cases()
        print(f"{len(all_)} cases; per class: {dict(Counter(c.cls for c in all_))}")
        return 0
    chosen = [c for c in surface_cases() if not args.only or any(o in c.name for o in args.only)]
    summary = run_sweep(
        args.genlab,
        only=args.only,
        jobs=args.jobs,
        fixture_genlab=args.fixture_genlab,
        selected=chosen if args.surfaces else None,
    )
    if args.out:
        Path(args.out).write_text(json.dumps(summary, indent=1, ensure_ascii=False) + "\n")
    short = {k: v for k, v in summary.items() if k != "results"}
    print(json.dumps(short, indent=1, ensure_ascii=False))
    return 0 if not summary["failing"] else 1


if __name__ == "__main__":
    sys.exit(main())
