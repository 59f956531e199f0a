import math
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from genlab.errors import NothingToDo, RunError, TrainingDiverged
from genlab.runs import Run, seed_everything
from genlab.train import TrainConfig, fit, load_weights, make_optimizer

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE))
from toy_training import train_toy  # noqa: E402


def _weights(run):
    return torch.load(run.last_checkpoint, weights_only=True)["model"]


def _losses(run):
    return [{k: v for k, v in r.items() if k != "time"} for r in run.read_metrics()]


def test_same_seed_gives_the_same_metrics_twice(tmp_path):
    run_a, _, _ = train_toy(tmp_path, "a")
    run_b, _, _ = train_toy(tmp_path, "b")
    run_c, _, _ = train_toy(tmp_path, "c", seed=1)
    assert _losses(run_a) == _losses(run_b)
    assert _losses(run_a) != _losses(run_c)
    assert len(_losses(run_a)) > 5


def test_killed_run_resumes_to_bit_identical_weights(tmp_path):
    env_py = [sys.executable, str(HERE / "toy_training.py"), str(tmp_path)]
    subprocess.run(env_py + ["full"], check=True)
    killed = subprocess.run(env_py + ["cut", "--kill-at", "23"])
    assert killed.returncode == -9  # really killed, after the step-20 checkpoint
    cut = Run(tmp_path / "toy" / "cut")
    assert torch.load(cut.last_checkpoint, weights_only=True)["step"] == 20
    subprocess.run(env_py + ["cut", "--resume"], check=True)
    full = Run(tmp_path / "toy" / "full")
    w_full, w_cut = _weights(full), _weights(cut)
    assert all(torch.equal(w_full[k], w_cut[k]) for k in w_full)
    assert _losses(full) == _losses(cut)
    ema_full = torch.load(full.last_checkpoint, weights_only=True)["ema"]
    ema_cut = torch.load(cut.last_checkpoint, weights_only=True)["ema"]
    assert all(torch.equal(ema_full[k], ema_cut[k]) for k in ema_full)


def test_resume_of_a_finished_run_changes_nothing_and_says_so(tmp_path):
    run, _, _ = train_toy(tmp_path, "done", steps=10)
    before = {p: p.stat().st_mtime_ns for p in run.path.rglob("*") if p.is_file()}
    with pytest.raises(NothingToDo, match="already finished"):
        train_toy(tmp_path, "done", steps=10, resume=True)
    assert {p: p.stat().st_mtime_ns for p in run.path.rglob("*") if p.is_file()} == before


def test_resume_needs_an_existing_named_run(tmp_path):
    with pytest.raises(RunError, match="nothing to resume"):
        Run.create("toy", {"a": 1}, name="typo", root=tmp_path, resume=True)
    with pytest.raises(RunError, match="needs the --name"):
        Run.create("toy", {"a": 1}, root=tmp_path, resume=True)
    assert not (tmp_path / "toy").exists()


def test_training_lowers_the_loss_and_keeps_best_and_ema(tmp_path):
    run, model, result = train_toy(tmp_path, "t", steps=60)
    val = [r["val_loss"] for r in run.read_metrics() if "val_loss" in r]
    assert val[-1] < val[0]
    assert run.best_checkpoint.exists()
    assert result.ema is not None
    fresh = torch.nn.Sequential(torch.nn.Linear(2, 16), torch.nn.Tanh(), torch.nn.Dropout(0.1), torch.nn.Linear(16, 1))
    state = load_weights(run, fresh, ema=True)
    assert state["step"] == 60
    assert not torch.equal(fresh[0].weight, model[0].weight)  # EMA weights differ from the raw ones
    load_weights(run, fresh, ema=False)
    assert torch.equal(fresh[0].weight, model[0].weight)


def test_nan_guard_stops_and_names_the_step(tmp_path):
    cfg = TrainConfig(steps=20, log_every=1)
    seed_everything(0)
    model = torch.nn.Linear(1, 1)
    run = Run.create("toy", cfg, name="nan", root=tmp_path)

    def step_fn(m, step):
        out = m(torch.ones(1, 1)).sum()
        return {"loss": out * (math.nan if step == 7 else 1.0)}

    with pytest.raises(TrainingDiverged) as e:
        fit(
            run,
            model,
            make_optimizer(model.parameters()),
            step_fn,
            lambda s: s,
            cfg=cfg,
            device=torch.device("cpu"),
            quiet=True,
        )
    assert "at step 7" in str(e.value) and "lr" in str(e.value)
    assert max(r["step"] for r in run.read_metrics()) == 6


def test_manual_mode_steps_two_optimizers_and_checkpoints_both(tmp_path):
    cfg = TrainConfig(steps=5, log_every=1, grad_clip=0.5)
    seed_everything(0)
    nets = torch.nn.ModuleDict({"g": torch.nn.Linear(2, 2), "d": torch.nn.Linear(2, 1)})
    opts = {"g": make_optimizer(nets["g"].parameters()), "d": make_optimizer(nets["d"].parameters())}
    run = Run.create("toy", cfg, name="gan", root=tmp_path)

    def step_fn(m, batch, optimize):
        d_loss = 100 * m["d"](batch).pow(2).mean()
        optimize("d", d_loss)
        g_loss = m["d"](m["g"](batch)).mean()
        optimize("g", g_loss)
        return {"d_loss": d_loss, "g_loss": g_loss}

    fit(
        run,
        nets,
        opts,
        step_fn,
        lambda s: torch.randn(4, 2),
        cfg=cfg,
        device=torch.device("cpu"),
        manual=True,
        quiet=True,
    )
    state = run.load_checkpoint()
    assert set(state["optimizers"]) == {"g", "d"} and state["step"] == 5
    last = run.read_metrics()[-1]
    assert {"d_loss", "g_loss", "grad_norm_d", "grad_norm_g"} <= set(last)
    assert last["grad_norm_d"] > 0.5  # the norm before clipping is logged; the update used the clipped one
    assert run.finished


def test_time_budget_ends_with_a_normal_checkpoint_and_counts_as_finished(tmp_path):
    cfg = TrainConfig(steps=10_000, log_every=1000, max_seconds=0.2)
    seed_everything(0)
    model = torch.nn.Linear(2, 1)
    run = Run.create("toy", cfg, name="budget", root=tmp_path)
    calls = []

    def eval_fn(m):
        calls.append(1)
        return {"val": m(torch.ones(1, 2)).sum()}

    result = fit(
        run,
        model,
        make_optimizer(model.parameters()),
        lambda m, b: {"loss": m(b).pow(2).mean()},
        lambda s: torch.randn(8, 2),
        cfg=cfg,
        device=torch.device("cpu"),
        eval_fn=eval_fn,
        quiet=True,
    )
    state = run.load_checkpoint()
    assert result.stopped_by_time and 0 < state["step"] < 10_000 and state["step"] == result.step
    assert run.finished and calls == [1]
    assert run.read_metrics()[-1]["step"] == state["step"]


def test_progress_marks_finished_only_at_the_last_step(tmp_path):
    run, _, _ = train_toy(tmp_path, "p", steps=10)
    assert run.finished
    run.mark_progress(5, 10)
    assert not run.finished


@pytest.mark.slow
def test_torchrun_two_processes_match_one(tmp_path):
    """The DDP seam: two ranks fed the same batches average identical gradients, so the weights match."""
    import shutil

    torchrun = shutil.which("torchrun") or str(Path(sys.executable).parent / "torchrun")
    subprocess.run(
        [sys.executable, str(HERE / "toy_training.py"), str(tmp_path), "single", "--steps", "20"], check=True
    )
    subprocess.run(
        [
            torchrun,
            "--nproc_per_node=2",
            "--master_port=29533",
            str(HERE / "toy_training.py"),
            str(tmp_path),
            "ddp",
            "--steps",
            "20",
        ],
        check=True,
        capture_output=True,
    )
    w1, w2 = _weights(Run(tmp_path / "toy" / "single")), _weights(Run(tmp_path / "toy" / "ddp"))
    assert all(torch.equal(w1[k], w2[k]) for k in w1)
    assert len(Run(tmp_path / "toy" / "ddp").read_metrics()) == len(Run(tmp_path / "toy" / "single").read_metrics())


def test_a_second_trainer_of_the_same_run_is_refused_and_a_stale_lock_taken_over(tmp_path):
    cfg = TrainConfig(steps=3, log_every=1)
    run = Run.create("toy", cfg, name="locked", root=tmp_path)
    model = torch.nn.Linear(2, 1)

    def go():
        return fit(
            run,
            model,
            make_optimizer(model.parameters()),
            lambda m, b: {"loss": m(b).pow(2).mean()},
            lambda s: torch.ones(2, 2),
            cfg=cfg,
            device=torch.device("cpu"),
            quiet=True,
        )

    alive = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        (run.path / ".lock").write_text(f"{alive.pid}\n")
        with pytest.raises(RunError, match=f"being trained by process {alive.pid}"):
            go()
        assert not run.last_checkpoint.exists()
    finally:
        alive.kill()
        alive.wait()
    (run.path / ".lock").write_text(f"{alive.pid}\n")  # its owner is gone now
    assert go().step == 3 and not (run.path / ".lock").exists()


def test_a_corrupt_last_checkpoint_falls_back_to_the_previous_one(tmp_path):
    run, _, _ = train_toy(tmp_path, "fallback", steps=20)  # checkpoints at 10 and 20
    assert torch.load(run.previous_checkpoint, weights_only=True)["step"] == 10
    run.last_checkpoint.write_bytes(b"torn")
    assert run.load_checkpoint()["step"] == 10


def test_weights_of_another_model_are_a_one_line_error(tmp_path):
    run, _, _ = train_toy(tmp_path, "other", steps=5)
    with pytest.raises(RunError, match="weights of another model"):
        load_weights(run, torch.nn.Linear(3, 3))


@pytest.mark.slow
def test_twenty_random_kill_9s_then_resume_give_bit_identical_weights(tmp_path):
    """SIGKILL a training at 20 random moments (some land while a checkpoint is written: one every 10 steps),
    --resume after each, and finish: weights, EMA and metrics equal an uninterrupted run's, bit for bit."""
    import random
    import time

    steps = "20000"
    cmd = [sys.executable, str(HERE / "toy_training.py"), str(tmp_path)]
    subprocess.run(cmd + ["full", "--steps", steps], check=True)
    rng, kills = random.Random(0), 0
    for _ in range(20):
        started = (tmp_path / "toy" / "cut" / "config.json").exists()
        proc = subprocess.Popen(cmd + ["cut", "--steps", steps] + (["--resume"] if started else []))
        time.sleep(rng.uniform(1.4, 2.4))  # after the imports, mid-training
        proc.kill()
        kills += proc.wait() == -9
    if not Run(tmp_path / "toy" / "cut").finished:
        subprocess.run(cmd + ["cut", "--steps", steps, "--resume"], check=True)
    assert kills >= 15  # most attempts really killed a training mid-way
    full, cut = Run(tmp_path / "toy" / "full"), Run(tmp_path / "toy" / "cut")
    a, b = torch.load(full.last_checkpoint, weights_only=True), torch.load(cut.last_checkpoint, weights_only=True)
    assert a["step"] == b["step"] == 20000
    assert all(torch.equal(a["model"][k], b["model"][k]) for k in a["model"])
    assert all(torch.equal(a["ema"][k], b["ema"][k]) for k in a["ema"])
    assert _losses(full) == _losses(cut)
