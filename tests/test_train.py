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
from toy_training import train_toy, train_toy_gan  # noqa: E402


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


def _torchrun(*args, check=True):
    """``torchrun --standalone --nproc_per_node=2 ARGS`` (a free port; gloo on the CPU, one thread a process)."""
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", *map(str, args)]
    done = subprocess.run(cmd, capture_output=True, text=True)
    if check and done.returncode != 0:
        pytest.fail(f"torchrun failed ({done.returncode}):\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    return done


def _assert_close_weights(a, b, rel=1e-5, per_tensor=1e-3):
    """State dict ``b`` within ``rel`` of ``a`` as one vector (relative to its norm), each tensor within
    ``per_tensor``. Not ``rel`` per tensor: a GPT's key biases get no gradient but float noise, which Adam
    scales up to full steps; one process on 1 or 2 threads already differs there by 5e-5 after 20 steps
    (measured: 1.2e-7 over all weights), as 1 and 2 processes do (6e-5; 1.5e-7)."""
    assert a.keys() == b.keys()
    diff2 = norm2 = 0.0
    for k in a:
        d, n = float((a[k].double() - b[k].double()).norm()), float(a[k].double().norm())
        assert d <= per_tensor * max(n, 1e-12), f"{k}: relative difference {d / n:.3g}"
        diff2, norm2 = diff2 + d * d, norm2 + n * n
    assert diff2**0.5 <= rel * norm2**0.5, f"relative difference of the weights {(diff2 / norm2) ** 0.5:.3g}"


def test_split_batch_cuts_every_tensor_of_the_batch_dimension_and_names_a_batch_that_does_not_divide():
    from genlab.errors import ConfigError
    from genlab.train import split_batch

    x, table = torch.arange(12).reshape(6, 2), torch.ones(4, 3)
    batch = (x, {"y": torch.arange(6), "table": table, "note": "keep"}, [None, torch.zeros(6, 1, 1)], 7)
    part = split_batch(batch, 1, 3)
    assert torch.equal(part[0], x[2:4]) and torch.equal(part[1]["y"], torch.tensor([2, 3]))
    assert part[1]["table"] is table and part[1]["note"] == "keep" and part[3] == 7
    assert part[2][0] is None and part[2][1].shape == (2, 1, 1)
    assert torch.equal(torch.cat([split_batch(batch, r, 3)[0] for r in range(3)]), x)
    with pytest.raises(ConfigError, match="batch of 6 examples does not split evenly across 4 processes"):
        split_batch(batch, 0, 4)


def test_under_torchrun_a_run_needs_a_name(tmp_path, monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "2")
    with pytest.raises(RunError, match="--name"):
        Run.create("toy", {"a": 1}, root=tmp_path)


def test_torchrun_two_processes_split_the_batch_and_match_one_process(tmp_path):
    """Two gloo ranks each train on their half of the one seeded global batch: the same weights, EMA, logged
    losses and evaluations as one process with that batch (to float rounding), and each rank saw other rows."""
    toy = HERE / "toy_training.py"
    _torchrun(toy, tmp_path, "two", "--steps", 20, "--dropout", 0, "--record", tmp_path / "seen")
    one, _, _ = train_toy(tmp_path, "one", steps=20, dropout=0.0, record=str(tmp_path / "whole"))
    two = Run(tmp_path / "toy" / "two")
    a, b = torch.load(one.last_checkpoint, weights_only=True), torch.load(two.last_checkpoint, weights_only=True)
    assert a["step"] == b["step"] == 20
    _assert_close_weights(a["model"], b["model"])
    _assert_close_weights(a["ema"], b["ema"])
    rows_one, rows_two = _losses(one), _losses(two)
    assert [r.keys() for r in rows_one] == [r.keys() for r in rows_two] and len(rows_one) == 6  # rank 0 logged
    for r1, r2 in zip(rows_one, rows_two, strict=True):
        assert all(math.isclose(r1[k], r2[k], rel_tol=1e-5) for k in r1), (r1, r2)
    whole = torch.load(tmp_path / "whole.rank0.pt")
    rank0, rank1 = torch.load(tmp_path / "seen.rank0.pt"), torch.load(tmp_path / "seen.rank1.pt")
    assert len(whole) == len(rank0) == len(rank1) == 20
    for w, r0, r1 in zip(whole, rank0, rank1, strict=True):
        assert r0.shape == r1.shape == (8, 2)  # half of the global batch of 16 each
        assert torch.equal(torch.cat([r0, r1]), w)  # together the one process's batch, in order
    assert not any(torch.equal(r0, r1) for r0, r1 in zip(rank0, rank1))


@pytest.mark.slow
def test_a_two_process_run_resumes_on_one_process_and_back_to_the_uninterrupted_weights(tmp_path):
    """Killed at step 23 on 2 ranks (checkpoint 20), resumed on 1 process and killed at 33 (checkpoint 30),
    finished on 2 ranks: the weights, EMA and metrics of one uninterrupted run, to float rounding."""
    toy, common = HERE / "toy_training.py", ["--steps", "40", "--dropout", "0"]
    killed = _torchrun(toy, tmp_path, "cut", *common, "--kill-at", 23, check=False)
    cut = Run(tmp_path / "toy" / "cut")
    assert killed.returncode != 0 and torch.load(cut.last_checkpoint, weights_only=True)["step"] == 20
    killed = subprocess.run([sys.executable, str(toy), str(tmp_path), "cut", *common, "--resume", "--kill-at", "33"])
    assert killed.returncode == -9 and torch.load(cut.last_checkpoint, weights_only=True)["step"] == 30
    _torchrun(toy, tmp_path, "cut", *common, "--resume")
    full, _, _ = train_toy(tmp_path, "full", steps=40, dropout=0.0)
    a, b = torch.load(full.last_checkpoint, weights_only=True), torch.load(cut.last_checkpoint, weights_only=True)
    assert a["step"] == b["step"] == 40 and cut.finished
    _assert_close_weights(a["model"], b["model"])
    _assert_close_weights(a["ema"], b["ema"])
    rows_full, rows_cut = _losses(full), _losses(cut)
    assert [r["step"] for r in rows_full] == [r["step"] for r in rows_cut]
    for r1, r2 in zip(rows_full, rows_cut, strict=True):
        assert all(math.isclose(r1[k], r2[k], rel_tol=1e-5) for k in r1), (r1, r2)


@pytest.mark.slow
def test_manual_mode_on_two_processes_matches_one_process(tmp_path):
    """A GAN's two optimisers, each update's gradients averaged across 2 ranks before clipping: the weights, EMA
    and logged losses and gradient norms of one process."""
    _torchrun(HERE / "toy_training.py", tmp_path, "two", "--gan", "--steps", 30)
    one, two = train_toy_gan(tmp_path, "one", steps=30), Run(tmp_path / "toy" / "two")
    a, b = torch.load(one.last_checkpoint, weights_only=True), torch.load(two.last_checkpoint, weights_only=True)
    _assert_close_weights(a["model"], b["model"])
    _assert_close_weights(a["ema"], b["ema"])
    for r1, r2 in zip(_losses(one), _losses(two), strict=True):
        assert r1.keys() == r2.keys() and all(math.isclose(r1[k], r2[k], rel_tol=1e-5) for k in r1), (r1, r2)


@pytest.mark.slow
def test_gpt_nano_on_two_processes_matches_one_process(tmp_path):
    """The textgen lab's nano GPT (on the built-in text), trained through the CLI on 2 gloo ranks and on 1
    process with the same global batch of 32: the same weights after 20 steps (relative 1e-5) and metrics. In float32:
    under bf16 autocast (textgen's amp=auto on a CPU with bf16 units) the half-batch matmuls round differently."""
    sets = ["corpus=sample", "steps=20", "eval_every=10", "eval_iters=2", "threads=1", "amp=off"]
    argv = ["textgen", "train", "--preset", "nano", "--device", "cpu", "--quiet", "--run-dir", str(tmp_path)]
    argv += [x for kv in sets for x in ("--set", kv)]
    _torchrun("-m", "genlab", *argv, "--name", "two")
    subprocess.run([sys.executable, "-m", "genlab", *argv, "--name", "one"], check=True, capture_output=True)
    one, two = Run(tmp_path / "textgen" / "one"), Run(tmp_path / "textgen" / "two")
    a, b = torch.load(one.last_checkpoint, weights_only=True), torch.load(two.last_checkpoint, weights_only=True)
    assert a["step"] == b["step"] == 20
    _assert_close_weights(a["model"], b["model"])
    rows_one, rows_two = _losses(one), _losses(two)
    assert [r["step"] for r in rows_one] == [r["step"] for r in rows_two]
    for r1, r2 in zip(rows_one, rows_two, strict=True):
        assert all(math.isclose(r1[k], r2[k], rel_tol=1e-4) for k in r1), (r1, r2)
    assert (two.path / "figures" / "loss.png").exists()


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
    progress = tmp_path / "toy" / "cut" / "progress.json"  # rewritten beside every checkpoint (every 10 steps)
    for _ in range(20):
        started = (tmp_path / "toy" / "cut" / "config.json").exists()
        born = time.time_ns()
        proc = subprocess.Popen(cmd + ["cut", "--steps", steps] + (["--resume"] if started else []))
        # wait until this process has checkpointed (its imports can take seconds on a busy machine), then kill it
        # at a random moment of its training: mid-step or mid-checkpoint, however slow the start was
        deadline = time.monotonic() + 120
        while proc.poll() is None and time.monotonic() < deadline:
            if progress.exists() and progress.stat().st_mtime_ns >= born:
                break
            time.sleep(0.02)
        time.sleep(rng.uniform(0.0, 0.5))
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
