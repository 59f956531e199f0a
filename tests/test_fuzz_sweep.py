"""A representative slice of the bad-input and fault sweep (tools/fuzz_sweep.py, issue #20).

Twenty-three cases over every class (bad input, damaged files, the environment, misleading answers, lost data,
a crafted pickle) run as separate ``genlab`` processes on copies of one tiny 2D-diffusion run, and none may end
in a traceback, a silent or misleading answer, or a changed file. The full-disk and read-only cases mount a tmpfs
or a read-only bind where mounting is allowed; where it is not, the same errors are raised in-process by a
monkeypatched write. A deliberately wrong case checks that the sweep itself can fail. Twelve more cases cover
the surfaces added after the first sweep (export and exported folders, ``--log``, the sentiment sweep's axes).
"""

from __future__ import annotations

import errno
import hashlib
import importlib.util
import sys
from pathlib import Path

import pytest

from genlab.cli import main

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("fuzz_sweep", ROOT / "tools" / "fuzz_sweep.py")
fs = importlib.util.module_from_spec(_spec)
sys.modules["fuzz_sweep"] = fs
_spec.loader.exec_module(fs)

GENLAB = str(Path(sys.executable).parent / "genlab")

SUBSET = [
    "cli/seed-too-large",
    "data/fetch-empty-name",
    "data/GENLAB_DATA-is-a-file-fetch",
    "diffusion2d/train-set-lr=nan",
    "diffusion2d/train-config-invalid-utf8",
    "diffusion2d/train-huge-hidden",
    "diffusion2d/train-run-dir-is-a-file",
    "diffusion2d/train-full-disk",
    "diffusion2d/train-read-only-run-dir",
    "diffusion2d/resume-mistyped-name",
    "diffusion2d/resume-finished-changes-nothing",
    "diffusion2d/train-over-a-finished-run",
    "diffusion2d/two-trainers-same-name",
    "diffusion2d/sample-out-is-the-checkpoint",
    "diffusion2d/sample-out-read-only",
    "diffusion2d/elbo-huge-point",
    "diffusion2d/sample-checkpoint-truncated",
    "diffusion2d/sample-checkpoint-without-model",
    "diffusion2d/sample-config-not-json",
    "diffusion2d/sample-crafted-pickle",
    "diffusion2d/sample-run-is-a-file",
    "report/out-is-a-file",
    "report/labs-unknown",
]
# two deliberately wrong cases: the sweep must be able to fail
WRONG = {
    "self/data-list-is-no-error": ("silent", fs.Case("self/data-list-is-no-error", "bad-input", ["data", "list"])),
    "self/an-overwritten-file-is-lost": (
        "lost",
        fs.Case(
            "self/an-overwritten-file-is-lost",
            "lost-data",
            fs.d2("sample", "--n", "5", "--out", "{C}/inputs/notes.csv"),
            uses=("diffusion2d/sq",),
            setup=fs.put("{C}/inputs/notes.csv", "my notes\n"),
            expect="ok",
            keep="all",
        ),
    ),
}


def _selected() -> list:
    by_name = {c.name: c for c in fs.cases()}
    return [by_name[n] for n in SUBSET]


def test_the_subset_covers_every_class():
    assert {c.cls for c in _selected()} == set(fs.CLASSES)
    assert len(fs.cases()) >= 150 and len({c.name for c in fs.cases()}) == len(fs.cases())


def test_a_slice_of_the_sweep_has_no_traceback_nothing_silent_nothing_lost(tmp_path):
    chosen = _selected() + [case for _, case in WRONG.values()]
    summary = fs.run_sweep(GENLAB, selected=chosen, work=tmp_path, datasets=(), log=lambda s: None)
    assert summary["fixtures"].get("diffusion2d/sq") == GENLAB, summary["fixtures"]
    outcomes = {r["name"]: r["outcome"] for r in summary["results"]}
    assert {n: outcomes.get(n) for n in WRONG} == {n: want for n, (want, _) in WRONG.items()}
    failing = [f for f in summary["failing"] if f["name"] not in WRONG]
    assert failing == []
    skipped = {s["name"] for s in summary["skipped"]}
    assert skipped <= {c.name for c in _selected() if c.mount}, summary["skipped"]  # only where mount is refused
    assert len(outcomes) + len(skipped) == len(chosen)


# the most telling cases of the surfaces added after the first sweep (export, exported folders, --log, sweep axes)
SURFACES = [
    "diffusion2d/export-out-inside-the-run",
    "diffusion2d/export-out-a-symlink-into-the-run",
    "diffusion2d/export-crafted-pickle",
    "diffusion2d/exported-weights-truncated",
    "diffusion2d/exported-weights-header-claims-huge-length",
    "diffusion2d/exported-weights-a-crafted-pickle",
    "diffusion2d/exported-config-of-textgen",
    "diffusion2d/exported-sample-out-is-the-weights",
    "diffusion2d/exported-resume",
    "diffusion2d/train-set-log-mistyped",
    "sentiment/sweep-grid---lrs-",
    "sentiment/sweep-candidates-without-gru",
]


def test_export_and_the_new_verbs_end_clean(tmp_path):
    """Exported folders (damaged weights and config, a crafted pickle named model.safetensors, an --out inside the
    run), a mistyped --log and the sentiment sweep's new axes given empty or for no model they vary."""
    by_name = {c.name: c for c in fs.surface_cases()}
    assert set(SURFACES) <= set(by_name) and len(fs.surface_cases()) >= 100
    summary = fs.run_sweep(
        GENLAB, selected=[by_name[n] for n in SURFACES], work=tmp_path, jobs=2, datasets=(), log=lambda s: None
    )
    assert summary["fixtures"].get("diffusion2d/sq-x") == GENLAB, summary["fixtures"]
    assert summary["failing"] == [] and summary["skipped"] == []
    assert {r["name"] for r in summary["results"]} == set(SURFACES)


def _sha(folder: Path) -> dict:
    return {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in folder.rglob("*") if p.is_file()}


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EROFS], ids=["full-disk", "read-only"])
def test_a_write_that_fails_is_one_line_and_keeps_the_run(code, tmp_path, capsys, monkeypatch):
    """The in-process twin of the mount cases (for machines where mount is not allowed): every atomic write
    fails with ENOSPC / EROFS while a finished run is sampled into it and a new run is trained beside it."""
    import genlab.io

    argv = ["diffusion2d", "train", "--run-dir", str(tmp_path), "--name", "sq", "--quiet", "--device", "cpu"]
    tiny = list(fs.D2_TINY)
    assert main([*argv, *tiny]) == 0
    run = tmp_path / "diffusion2d" / "sq"
    before = _sha(run)
    capsys.readouterr()

    def refuse(path, data):
        raise OSError(code, "simulated", str(path))

    monkeypatch.setattr(genlab.io, "atomic_write_bytes", refuse)
    for cmd in (
        ["diffusion2d", "sample", "--run", str(run), "--n", "5", "--quiet"],
        ["diffusion2d", "train", "--run-dir", str(tmp_path), "--name", "other", "--quiet", "--device", "cpu", *tiny],
    ):
        assert main(cmd) == 2
        err = capsys.readouterr().err
        assert err.startswith("genlab: error:") and err.count("\n") == 1, err
        assert ("full" if code == errno.ENOSPC else "read-only") in err, err
    assert _sha(run) == before


def test_a_fresh_report_keeps_the_other_runs_in_its_folder(tmp_path):
    """``genlab report --out DIR`` (no --reuse) starts its demo's own runs afresh, and keeps every other run in
    DIR/runs: with --out . those are the user's runs (the sweep's report/out-holding-the-users-runs)."""
    from genlab.labs import LabSpec
    from genlab.report import make_report
    from genlab.runs import reuse_or_create

    def demo(root, *, quick=True, device="auto", quiet=False, reuse=True):
        return [reuse_or_create("fuzzlab", {"quick": quick}, name="quick", root=root, reuse=reuse)]

    spec = LabSpec("fuzzlab", "Lab fuzz", 1, dict, {}, lambda sub: None, demo)
    mine = tmp_path / "runs" / "fuzzlab" / "mine"
    mine.mkdir(parents=True)
    (mine / "config.json").write_text('{"lab": "fuzzlab", "config": {}}')
    make_report(out=tmp_path, specs=[spec], quiet=True, reuse=False)
    assert (mine / "config.json").is_file() and (tmp_path / "runs" / "fuzzlab" / "quick" / "config.json").is_file()


def test_a_damaged_cache_marker_is_checked_by_sha256_not_a_traceback(tmp_path, monkeypatch):
    """The sweep's data/verify-complete-stats-wrong-type without fetched data: a .complete whose stats are not a
    table makes verify check every sha256 (and record the stats again); a changed file is still caught."""
    import json

    from genlab.data import fetch as F
    from genlab.errors import DataError

    body = b"some cached text\n"
    ds = F.Dataset("fuzzdata", "test", "none", (F.Item("a.txt", "a.txt", hashlib.sha256(body).hexdigest()),), ())
    monkeypatch.setitem(F.MANIFESTS, ds.name, ds)
    monkeypatch.setenv("GENLAB_DATA", str(tmp_path))
    (tmp_path / "fuzzdata").mkdir()
    (tmp_path / "fuzzdata" / "a.txt").write_bytes(body)
    for stats in (5, [1], {"a.txt": "x"}):
        (tmp_path / "fuzzdata" / ".complete").write_text(json.dumps({"name": "fuzzdata", "stats": stats}))
        F.verify("fuzzdata")
        assert isinstance(json.loads((tmp_path / "fuzzdata" / ".complete").read_text())["stats"], dict)
    (tmp_path / "fuzzdata" / "a.txt").write_bytes(body[:5])
    with pytest.raises(DataError, match="a.txt"):
        F.verify("fuzzdata")
