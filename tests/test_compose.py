"""2x2 canvases placed by prompt: captions, tiling, per-quadrant judging, the U-Net's coordinate channels and
the ``compose`` verb (both variants as child runs, reused on a second call), on 8x8 digits with the hashing
encoder: seconds, no fetched data."""

import json

import pytest
import torch
from torch import nn

from genlab.cli import main
from genlab.data.captions import QUADRANTS, canvas_caption, make_canvas_captions
from genlab.data.images import ImageData
from genlab.diffusion.images import Judge, split_2x2, tile_2x2
from genlab.nn.unet import Cond, UNet


def test_canvas_captions_name_the_right_quadrants():
    caps = make_canvas_captions(10)
    assert len(caps.texts) == len(set(caps.texts)) == 3 * (40 + 12 * 100)
    i = caps.index([(0, 3), (3, 7)])
    assert caps.texts[i] == "a 3 in the top left and a 7 in the bottom right"
    assert caps.named[i] == (3, -1, -1, 7)
    j = caps.index([(2, 8)], template=0)
    assert caps.texts[j] == "an 8 in the bottom left" and caps.named[j] == (-1, -1, 8, -1)
    for k in range(0, len(caps.texts), 97):  # every caption says what its row says
        for q, d in enumerate(caps.named[k]):
            assert (QUADRANTS[q] in caps.texts[k]) == (d >= 0)
    assert canvas_caption([(1, 1)], 2) == "one at the top right"


def test_tile_and_split_are_inverse():
    x = torch.randn(3, 4, 1, 5, 5)
    canvas = tile_2x2(x)
    assert canvas.shape == (3, 1, 10, 10)
    assert torch.equal(canvas[0, 0, :5, 5:], x[0, 1, 0]) and torch.equal(canvas[0, 0, 5:, :5], x[0, 2, 0])
    assert torch.equal(split_2x2(canvas), x)


class _Brightness(nn.Module):
    """A stand-in judge: class = round(9 * mean brightness)."""

    def features(self, x):
        return x.flatten(1).mean(1, keepdim=True)

    def head(self, f):
        return -((torch.arange(10.0) / 9 - f) ** 2)

    def parameters(self, recurse=True):
        yield torch.zeros(1)


def test_quadrant_adherence_counts_only_named_quadrants():
    levels = torch.tensor([[3, 0, 9, 5], [1, 1, 1, 1]]) / 9.0
    canvases = tile_2x2(levels[:, :, None, None, None].expand(2, 4, 1, 4, 4))
    judge = Judge(_Brightness(), ImageData("x", *(torch.zeros(1, 1, 32, 32), torch.zeros(1).long()) * 2, ("c",) * 10))
    named = torch.tensor([[3, -1, -1, 7], [-1, 1, -1, -1]])
    a = judge.quadrant_adherence(canvases, named)
    assert a["pred"].tolist() == [[3, 0, 9, 5], [1, 1, 1, 1]]
    assert a["adherence"] == pytest.approx(2 / 3, abs=1e-4) and a["named"] == 3
    assert a["per_quadrant"] == [1.0, 1.0, 0.0, 0.0]  # quadrants nobody named count as 0 of 0
    assert a["both_right"] == 0.0  # the only two-quadrant prompt got its bottom right wrong


def test_unet_coordinate_channels_tell_quadrants_apart():
    torch.manual_seed(0)
    m = UNet(widths=(8, 16), attn=(1,), vec_dim=6, token_dim=6, coords=True)
    for p in m.parameters():
        nn.init.normal_(p, std=0.2)
    x = torch.zeros(1, 1, 8, 8)  # a blank canvas: only the coordinates differ between pixels
    c = Cond(torch.randn(1, 6), torch.randn(1, 3, 6), torch.ones(1, 3, dtype=torch.bool))
    out = m(x, torch.rand(1), c)
    assert m.inp.in_channels == 3 and out.shape == x.shape
    assert not torch.allclose(out[..., :4, :4], out[..., 4:, 4:])


def test_compose_verb_trains_both_variants_then_reuses_them(tmp_path, capsys):
    args = ["imagediff", "compose", "--preset", "tiny", "--run-dir", str(tmp_path), "--quiet"]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "cross: per-quadrant adherence" in out and "pooled: per-quadrant adherence" in out
    root = tmp_path / "imagediff" / "compose"
    for name, cross in (("cross", True), ("pooled", False)):
        cfg = json.loads((root / "stages" / name / "config.json").read_text())["config"]
        assert cfg["canvas"] == 2 and cfg["cross_attn"] is cross
        assert (root / "stages" / name / "figures" / "canvases.png").exists()
    assert (root / "figures" / "compose.png").exists() and (root / "tables" / "compose.md").exists()
    summary = json.loads((root / "summary.json").read_text())
    assert 0 <= summary["quadrant_adherence_cross"] <= 1 and 0 <= summary["quadrant_adherence_pooled"] <= 1
    ckpt = root / "stages" / "cross" / "checkpoints" / "last.pt"
    before = ckpt.stat().st_mtime_ns
    assert main(args) == 0  # a second call trains nothing
    assert ckpt.stat().st_mtime_ns == before
    # a canvas run samples like any run; the judge reads each quadrant
    png = tmp_path / "c.png"
    cross = str(root / "stages" / "cross")
    assert (
        main(["imagediff", "sample", "--run", cross, "--prompt", "a 3 in the top left", "--n", "2", "--out", str(png)])
        == 0
    )
    assert png.exists() and "(TL TR BL BR)" in capsys.readouterr().out
    assert main(["imagediff", "figures", "--run", str(root), "--only", "compose"]) == 0


@pytest.mark.parametrize("bad", ["cond=class", "space=latent", "canvas=3"])
def test_canvas_needs_text_prompts_in_pixel_space(tmp_path, capsys, bad):
    args = ["imagediff", "train", "--preset", "tiny", "--set", "canvas=2", "--set", bad, "--run-dir", str(tmp_path)]
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and ("canvas" in err)
    assert not (tmp_path / "imagediff").exists() or not any((tmp_path / "imagediff").iterdir())
