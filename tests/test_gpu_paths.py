"""The loop's GPU paths, tested on the CPU: batch placement, the fused Adam switch, amp checks, torch.compile.
(benchmarks/gpu_checks.py runs the same paths on a CUDA device.)"""

import shutil
import sys
from collections import namedtuple
from pathlib import Path

import pytest
import torch

from genlab.errors import ConfigError
from genlab.train import TrainConfig, to_device, use_fused_step

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE))
from toy_training import train_toy  # noqa: E402

Pair = namedtuple("Pair", "x y")


def test_to_device_keeps_the_structure_and_passes_non_tensors_through():
    x, y, table = torch.randn(4, 2), torch.arange(4), torch.ones(3)
    batch = (Pair(x, y), [table, None, 7, "text"], {"mask": x > 0, "note": 1.5})
    moved = to_device(batch, "meta")  # a device other than the CPU, on any machine
    assert isinstance(moved, tuple) and isinstance(moved[0], Pair) and isinstance(moved[1], list)
    assert moved[0].x.device.type == "meta" and moved[0].x.shape == x.shape and moved[0].y.dtype == y.dtype
    assert moved[1][0].device.type == "meta" and moved[1][1:] == [None, 7, "text"]
    assert set(moved[2]) == {"mask", "note"} and moved[2]["mask"].device.type == "meta" and moved[2]["note"] == 1.5
    assert to_device(batch, "cpu") is batch  # the CPU path leaves the batch as it is
    assert to_device(x, torch.device("meta")).device.type == "meta"


def _adam_steps(opt, params, steps, g):
    for _ in range(steps):
        opt.zero_grad()
        loss = sum(((p - torch.randn(p.shape, generator=g)) ** 2).sum() for p in params)
        loss.backward()
        opt.step()


@pytest.mark.parametrize("name", ["adam", "adamw"])
def test_use_fused_step_switches_a_foreach_adam_midway_and_follows_the_same_path(name):
    cls = torch.optim.Adam if name == "adam" else torch.optim.AdamW
    torch.manual_seed(0)
    ref = [torch.nn.Parameter(torch.randn(5, 3)), torch.nn.Parameter(torch.randn(7))]
    mine = [torch.nn.Parameter(p.detach().clone()) for p in ref]
    opt_ref, opt = cls(ref, lr=1e-2, foreach=True), cls(mine, lr=1e-2, foreach=True)
    _adam_steps(opt_ref, ref, 6, torch.Generator().manual_seed(1))
    g = torch.Generator().manual_seed(1)
    _adam_steps(opt, mine, 3, g)  # state exists (as after a resume) when the switch comes
    assert use_fused_step(opt, "cpu") is True
    assert all(g["fused"] and not g["foreach"] for g in opt.param_groups)
    assert all(opt.state[p]["step"].dtype == torch.float32 for p in mine)
    _adam_steps(opt, mine, 3, g)  # the reference's last three steps, taken by the fused kernel
    for a, b in zip(ref, mine, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
    assert use_fused_step(opt, "cpu") is False  # already fused
    assert use_fused_step(torch.optim.SGD(mine, lr=0.1), "cpu") is False
    assert use_fused_step(cls(mine, lr=1e-2), "cuda") is False  # parameters not on that device


def test_fp16_off_cuda_fails_before_the_run_trains(tmp_path):
    with pytest.raises(ConfigError, match="fp16' needs a CUDA device"):
        train_toy(tmp_path, "half", steps=5, amp="fp16")
    assert not any((tmp_path / "toy" / "half").glob("checkpoints/*.pt"))
    assert not (tmp_path / "toy" / "half" / "metrics.jsonl").exists()


def test_compile_is_an_off_by_default_train_config_key():
    assert TrainConfig().compile is False
    assert TrainConfig().override(["compile=true"]).compile is True
    with pytest.raises(ConfigError):
        TrainConfig().override(["compile=maybe"])


def _compile_works() -> str:
    """'' when torch.compile can build a kernel here, else why not (it needs a C compiler on the CPU)."""
    if not (shutil.which("cc") or shutil.which("gcc") or shutil.which("g++")):
        return "torch.compile's CPU backend needs a C compiler (cc/gcc), none found"
    return ""


@pytest.mark.slow  # compiling the toy's forward and backward takes 20-60 s on a busy CPU
def test_compile_follows_the_same_losses_and_saves_the_same_checkpoint_keys(tmp_path):
    why = _compile_works()
    if why:
        pytest.skip(why)
    torch.set_num_threads(1)
    common = {"steps": 20, "dropout": 0.0}  # dropout off: compiled kernels draw other random numbers
    from torch._dynamo.utils import counters

    run_e, _, _ = train_toy(tmp_path, "eager", **common)
    counters.clear()
    try:
        run_c, model_c, _ = train_toy(tmp_path, "compiled", compile=True, **common)
    except Exception as e:  # torch._dynamo's backend errors: no working toolchain here
        if type(e).__module__.startswith("torch._dynamo") or "InductorError" in type(e).__name__:
            pytest.skip(f"torch.compile does not work here: {str(e).splitlines()[0][:200]}")
        raise
    assert counters["stats"]["unique_graphs"] >= 1  # the training forward really was compiled
    assert type(model_c).__name__ == "Sequential"  # the caller's model, not the compiled wrapper
    rows_e = [r for r in run_e.read_metrics() if "loss" in r]
    rows_c = [r for r in run_c.read_metrics() if "loss" in r]
    assert [r["step"] for r in rows_e] == [r["step"] for r in rows_c] and len(rows_e) >= 4
    for a, b in zip(rows_e, rows_c, strict=True):
        assert b["loss"] == pytest.approx(a["loss"], rel=1e-4, abs=1e-6)
    sd_e = torch.load(run_e.last_checkpoint, weights_only=True)
    sd_c = torch.load(run_c.last_checkpoint, weights_only=True)
    assert list(sd_c["model"]) == list(sd_e["model"]) and not any("_orig_mod" in k for k in sd_c["model"])
    assert list(sd_c["ema"]) == list(sd_e["ema"])
    for k in sd_e["model"]:
        torch.testing.assert_close(sd_c["model"][k], sd_e["model"][k], rtol=1e-4, atol=1e-5)
    assert sd_c["config"]["compile"] is True and sd_e["config"]["compile"] is False
