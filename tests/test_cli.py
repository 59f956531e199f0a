"""The command line: one-line errors with exit 2, help, and the data commands."""

import subprocess
import sys

import pytest

from genlab.cli import build_parser, main
from genlab.labs import all_labs


def test_help_lists_commands(capsys):
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    assert "data" in out and "report" in out


def test_every_lab_registers_and_has_no_key_metrics_without_runs():
    for lab in all_labs():
        if lab.key_metrics is not None:
            assert lab.key_metrics([]) == []
    build_parser()  # every lab registers without clashing


@pytest.mark.parametrize(
    "argv, words",
    [
        (["data", "fetch", "mnsit"], ["unknown dataset 'mnsit'", "choose one of"]),
        (["data", "path", "alice"], ["genlab data fetch alice"]),
        (["report", "--labs", "nosuchlab", "--out", "{tmp}"], ["unknown lab 'nosuchlab'"]),
        (["report", "--labs", "", "--out", "{tmp}"], ["names no lab"]),
        (["report", "--out", "{tmp}/afile"], ["is a file"]),
    ],
)
def test_bad_input_is_one_line_and_exit_2(argv, words, capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("GENLAB_DATA", str(tmp_path / "empty-cache"))
    argv = [a.replace("{tmp}", str(tmp_path)) for a in argv]
    (tmp_path / "afile").write_text("x")
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("genlab: error:") and len(err.splitlines()) == 1
    for w in words:
        assert w in err


def test_unknown_option_exits_2_without_traceback():
    proc = subprocess.run([sys.executable, "-m", "genlab", "--set", "nosuchkey=1"], capture_output=True, text=True)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr and proc.stderr.startswith("genlab: error:")
    assert len(proc.stderr.strip().splitlines()) == 1


def test_data_list_shows_every_dataset(capsys):
    assert main(["data", "list"]) == 0
    out = capsys.readouterr().out
    for name in ("alice", "gpt2", "mnist", "fashion", "rt", "glove", "digits"):
        assert name in out


def test_environment_errors_are_one_line(tmp_path, capsys):
    blocker = tmp_path / "afile"
    blocker.write_text("x")
    code = main(["diffusion2d", "train", "--run-dir", str(blocker), "--name", "x", "--set", "steps=1", "--quiet"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "afile" in err and "folder" in err


def test_debug_shows_the_traceback(tmp_path):
    blocker = tmp_path / "afile"
    blocker.write_text("x")
    proc = subprocess.run(
        [sys.executable, "-m", "genlab", "--debug", "diffusion2d", "train", "--run-dir", str(blocker), "--quiet"],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 1 and "Traceback" in proc.stderr
