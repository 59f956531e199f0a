"""The GPT report's items: its preset, the 11th word's attention, the top-2 words, its sentences scored, and
decoding (greedy, temperature, top-k, top-p, streaming), on tiny models (seconds)."""

import csv
import dataclasses
import json
import math
import shutil

import pytest
import torch

from genlab.cli import main
from genlab.data.text import build_tokenizer
from genlab.errors import ConfigError
from genlab.labs import draw, draw_all
from genlab.labs.textgen import core, figures
from genlab.labs.textgen.config import (
    ATTENTION_PROMPT,
    INVERSION_TARGET,
    PRESETS,
    REPORT_CPU_BUDGET_S,
    REPORT_SENTENCES,
    TINY,
)
from genlab.nn.gpt import GPT, GPTConfig, next_token
from genlab.nn.gpt_tools import attention_by_word, generate, score, top_words
from genlab.runs import Run


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """The lab's tiny demo (1-block character model on the built-in text, 150 steps): every output drawn."""
    torch.set_num_threads(1)
    (run,) = core.demo(tmp_path_factory.mktemp("runs"), tiny=True, device="cpu", quiet=True)
    return run, core.open_run(run)


def tiny_gpt(vocab: int, seed: int = 0) -> GPT:
    torch.manual_seed(seed)
    return GPT(GPTConfig(vocab_size=vocab, block_size=32, n_layer=1, n_head=2, n_embd=16)).eval()


# ---------------------------------------------------------------------------------------------- the preset


def test_report_preset_is_the_reports_model_and_training():
    cfg = PRESETS["report"]
    recipe = (cfg.tokenizer, cfg.block_size, cfg.batch_size, cfg.lr, cfg.steps, cfg.warmup, cfg.cosine)
    assert recipe == ("gpt2", 64, 32, 5e-4, 2000, 0, False)  # the rate is held at 5e-4: no warm-up, no decay
    assert (cfg.n_layer, cfg.n_head, cfg.n_embd) == (12, 12, 768) and PRESETS["gpt2"] == cfg
    with torch.device("meta"):  # GPT-2 small's 123.7 M parameters (64 positions), without allocating them
        model = GPT(core.model_config(cfg, 50257))
    assert round(sum(p.numel() for p in model.parameters()) / 1e6, 1) == 123.7
    lab = PRESETS["lab"]  # the same recipe on a smaller model
    assert (lab.lr, lab.batch_size, lab.block_size, lab.steps, lab.warmup, lab.cosine) == (5e-4, 32, 64, 2000, 0, False)
    assert lab.n_embd < cfg.n_embd


def test_full_report_trains_the_report_preset(monkeypatch):
    cfg, name = core.report_plan("cpu")  # on a CPU: the preset cut by a time budget, checkpointed to resume
    assert cfg.max_seconds == REPORT_CPU_BUDGET_S > 0 and cfg.ckpt_every > 0 and "gpt2" in name
    report = PRESETS["report"]
    assert cfg.eval_iters < report.eval_iters  # cheaper evaluations, the same training
    assert cfg.update(dict(max_seconds=0.0, ckpt_every=0, eval_iters=report.eval_iters)) == report
    monkeypatch.setattr(core, "choose_device", lambda device: torch.device("cuda"))
    cfg, gpu_name = core.report_plan("auto")  # on a GPU: the whole run
    assert cfg.max_seconds == 0 and cfg.update(dict(ckpt_every=0)) == PRESETS["report"] and gpu_name != name


def test_full_demo_adds_the_report_run_and_labels_a_cut_run(tmp_path, monkeypatch):
    """The full demo's wiring, with tiny stand-ins: the mini run, then the report plan's run, cut by its budget."""
    small = TINY.update(dict(steps=6, eval_every=0, ckpt_every=2))
    monkeypatch.setattr(core, "PRESETS", {**PRESETS, "mini": small})
    monkeypatch.setattr(core, "report_plan", lambda device: (small.update(dict(steps=10**6, max_seconds=0.2)), "cut"))
    monkeypatch.setattr(core, "draw_all", lambda *a, **k: [])  # the figures are tested on the tiny demo
    runs = core.demo(tmp_path, quick=False, device="cpu", quiet=True)
    assert [r.path.name for r in runs] == ["alice-mini-bpe", "cut"]
    s = runs[1].read_summary()
    assert s["stopped_by_time"] and s["steps_planned"] == 10**6 and 1 <= s["steps"] < 10**6
    rows = core.key_metrics(runs[1:])
    hours = next(r for r in rows if r["metric"].startswith("training time for all"))
    assert f"extrapolated from {s['steps']} steps" in hours["metric"]
    assert hours["value"] == pytest.approx(10**6 * s["seconds_per_step"] / 3600, rel=1e-2)
    loss = next(r for r in rows if r["metric"].startswith("validation loss"))
    assert f"at step {s['steps']} of {10**6} (cut by the time budget)" in loss["metric"]
    assert not any("cut" in r["metric"] for r in core.key_metrics(runs[:1]))  # the finished run is not


def test_same_as_report_names_the_recipe_and_the_cut():
    report = dataclasses.asdict(PRESETS["report"]) | {"corpus": "alice"}
    same = core.same_as_report(report, {"stopped_by_time": True, "steps": 61, "steps_planned": 2000})
    assert same.startswith("yes") and "the report's training" in same and "cut at step 61 of 2000" in same
    other = core.same_as_report(report | {"lr": 1e-3}, {})
    assert "another training recipe" in other and "cut" not in other
    lab = core.same_as_report(dataclasses.asdict(PRESETS["lab"]) | {"corpus": "alice"}, {"params_M": 21.3})
    assert lab.startswith("no: a 6x384 GPT (the 'lab' preset, 21.3 M parameters")


# ------------------------------------------------------------------------------------------------ attention


def test_attention_by_word_joins_tokens_and_keeps_the_total():
    gpt2_pieces = ["The", " little", " squ", "irrel", " was", "\n\n", "Alice", "'s"]
    w = [0.1, 0.05, 0.2, 0.1, 0.05, 0.1, 0.3, 0.1]
    words = attention_by_word(gpt2_pieces, w)
    assert [t for t, _ in words] == ["The", "little", "squirrel", "was", "Alice's"]
    assert dict(words)["squirrel"] == pytest.approx(0.3) and dict(words)["Alice's"] == pytest.approx(0.5)
    assert sum(v for _, v in words) == pytest.approx(sum(w))
    chars = list("the cat ")  # character tokens; the trailing space joins the last word
    words = attention_by_word(chars, [1.0] * len(chars))
    assert words == [("the", 3.0), ("cat", 5.0)]
    assert [t for t, _ in top_words(gpt2_pieces, w, 2)] == ["Alice's", "squirrel"]
    with pytest.raises(ConfigError, match="k 0"):
        top_words(gpt2_pieces, w, 0)
    with pytest.raises(ValueError):
        attention_by_word(gpt2_pieces, w[:-1])


def test_attention_defaults_to_the_11th_word_of_the_reports_sentence(tiny_run):
    run, opened = tiny_run
    res = opened.attention()  # the defaults: the report's prompt (10 words), word 11
    assert res["word"] == 11 and res is opened.attention(ATTENTION_PROMPT, 11)
    context = "".join(res["tokens"])  # what the attention saw: the last block_size characters
    sentence = res["sentence"]  # the prompt, word 11 and the predicted word 12, all generated greedily
    assert sentence.startswith(ATTENTION_PROMPT) and len(sentence.split()) == 12
    seen = sentence[: sentence.index(context) + len(context)]
    assert len(seen.split()) == 11 and context.endswith(res["query"])  # the last row is word 11's
    assert sentence[len(seen) :].startswith(res["next"]) and len(sentence[len(seen) :].split()) == 1
    meta = json.loads((run.figures_dir / "attention_heatmaps.json").read_text())
    assert "word 11" in meta["caption"] and "predicts word 12" in meta["caption"]


def test_top_words_figure_shows_the_two_most_attended_words(tiny_run):
    run, opened = tiny_run
    res = opened.attention()
    meta = json.loads((run.figures_dir / "attention_top_words.json").read_text())
    for block, key in ((0, "first"), (-1, "last")):
        row = res["att"][block, -1]
        words = attention_by_word(res["tokens"], row.tolist())
        best = sorted(words, key=lambda x: -x[1])[:2]
        shown = meta["data"][key]
        assert [(d["word"], pytest.approx(d["attention"])) for d in shown] == best
        assert shown[0]["attention"] >= shown[1]["attention"] >= max(v for t, v in words if t not in dict(best))
    summary = run.read_summary()
    assert summary["attention_top2_last"].startswith(repr(meta["data"]["last"][0]["word"]))
    # k is an option of the figure: three bars each
    draw(figures.fig_attention_top_words, opened, run, k=3)
    assert len(json.loads((run.figures_dir / "attention_top_words.json").read_text())["data"]["first"]) == 3


def test_a_model_that_never_reaches_word_12_skips_the_attention_outputs_and_says_why(tiny_run, tmp_path):
    run, _ = tiny_run
    copy = Run.open(shutil.copytree(run.path, tmp_path / "copy"))
    shutil.rmtree(copy.figures_dir)
    shutil.rmtree(copy.tables_dir)
    opened = core.open_run(copy)
    why = "word 12 did not appear within 40 generated tokens"

    def never_word_12(*args, **kwargs):  # a barely trained model that emits only commas
        raise ConfigError(why)

    opened.attention = never_word_12
    names = {p.stem for p in draw_all("textgen", opened, copy)}
    assert not any(n.startswith("attention") for n in names) and {"loss", "samples", "score", "inversion"} <= names
    assert copy.read_summary()["attention_not_drawn"] == why


def test_cli_attention_default_word_and_top2(tiny_run, capsys):
    run, _ = tiny_run
    assert main(["textgen", "attention", "--run", str(run.path)]) == 0
    out = capsys.readouterr().out
    assert "predicting word 12" in out and out.count("top-2 words") == 2
    assert main(["textgen", "attention", "--run", str(run.path), "--prompt", ATTENTION_PROMPT + " a b"]) == 2
    assert "--prompt has 12 words, more than --word 11; give --word 12 or more" in capsys.readouterr().err


# ---------------------------------------------------------------------------------------------------- score


def test_the_reports_sentences_are_scored_in_the_demo(tiny_run, capsys):
    run, opened = tiny_run
    with open(run.tables_dir / "score_report.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [r["sentence"] for r in rows] == list(REPORT_SENTENCES) == [ATTENTION_PROMPT, INVERSION_TARGET]
    for r in rows:  # each is the model's own sum of per-token log-probabilities
        direct = score(opened.model, opened.tok, r["sentence"])
        assert float(r["logprob"]) == pytest.approx(direct["logprob"], abs=1e-3)
        assert int(r["tokens_scored"]) == direct["n_tokens"] == len(opened.tok.encode(r["sentence"])) - 1
        assert float(r["prob"]) == pytest.approx(math.exp(direct["logprob"]), rel=1e-3)
    assert run.read_summary()["score_report_sentence_logprob"] == pytest.approx(float(rows[0]["logprob"]))
    assert main(["textgen", "score", "--run", str(run.path), "--report"]) == 0
    out = capsys.readouterr().out
    assert f"{ATTENTION_PROMPT!r}: sum log p = {float(rows[0]['logprob']):.4f}" in out
    # --report scores its own sentences: a --text or --prompt given with it would be ignored, so both are refused
    score_report = ["textgen", "score", "--run", str(run.path), "--report"]
    assert main([*score_report, "--text", "Alice"]) == 2
    assert "argument --text: not allowed with argument --report" in capsys.readouterr().err
    assert main([*score_report, "--prompt", "Alice"]) == 2
    assert "--prompt conditions --text only" in capsys.readouterr().err


# ------------------------------------------------------------------------------------------------- decoding


def test_temperature_draws_follow_softmax_of_logits_over_t():
    logits = torch.tensor([2.0, 1.0, 0.0, -1.0])
    n = 4000
    for t in (0.5, 2.0):
        g = torch.Generator().manual_seed(0)
        draws = torch.tensor([next_token(logits, temperature=t, generator=g) for _ in range(n)])
        counts = torch.bincount(draws, minlength=4)
        expected = (logits / t).softmax(-1)
        assert (counts / n - expected).abs().max() < 0.03, (t, counts / n, expected)
    # a low temperature concentrates on the arg-max, a high one spreads out
    assert (logits / 0.5).softmax(-1)[0] > 0.8 > (logits / 2.0).softmax(-1)[0]


def test_top_p_keeps_the_smallest_nucleus_and_combines_with_top_k():
    probs = torch.tensor([0.5, 0.3, 0.15, 0.05])
    logits = probs.log()
    g = torch.Generator().manual_seed(1)
    draw_set = lambda **kw: {next_token(logits, generator=g, **kw) for _ in range(400)}  # noqa: E731
    assert draw_set(top_p=0.8) == {0, 1}  # 0.5 + 0.3 reaches 0.8
    assert draw_set(top_p=0.81) == {0, 1, 2}
    assert draw_set(top_p=1.0) == {0, 1, 2, 3}
    assert draw_set(top_k=3, top_p=0.9) == {0, 1, 2}
    assert draw_set(top_k=1, top_p=0.99) == {0}
    with pytest.raises(ConfigError, match="top_p 0"):
        generate(tiny_gpt(8), build_tokenizer("char", "abcdefg"), "ab", 2, top_p=0)


def test_greedy_generation_is_the_argmax_path_whatever_the_seed():
    tok = build_tokenizer("char", "the cat sat on the mat. ")
    model = tiny_gpt(tok.vocab_size, seed=3)
    ids = tok.encode("the ")
    for _ in range(12):
        with torch.no_grad():
            ids.append(int(model(torch.tensor([ids[-32:]]))[0][0, -1].argmax()))
    expected = tok.decode(ids[len(tok.encode("the ")) :])
    assert generate(model, tok, "the ", 12, greedy=True, seed=0) == expected
    assert generate(model, tok, "the ", 12, greedy=True, seed=5) == expected
    assert generate(model, tok, "the ", 12, temperature=0, seed=5) == expected  # T = 0 is greedy
    sampled = {generate(model, tok, "the ", 12, temperature=1.5, seed=s) for s in range(4)}
    assert len(sampled) > 1  # sampling does depend on the seed


def test_streaming_hands_out_each_piece_as_its_token_is_generated():
    tok = build_tokenizer("char", "the cat sat on the mat. ")
    model = tiny_gpt(tok.vocab_size, seed=4)
    forwards = []
    model.register_forward_hook(lambda *a: forwards.append(1))
    seen = []  # (piece, forward passes so far) at each call of the stream callback
    text = generate(model, tok, "the", 10, temperature=1.0, seed=2, stream=lambda s: seen.append((s, len(forwards))))
    assert "".join(s for s, _ in seen) == text and len(text) == 10
    counts = [n for _, n in seen]  # a piece after each forward pass, not all at the end (an unknown character,
    assert counts[0] == 1 and counts == sorted(set(counts)) and len(counts) >= 5  # U+FFFD, waits for the next)


class _Bytes:
    """A byte-level tokenizer: one token per UTF-8 byte, so a character may span tokens."""

    def encode(self, text):
        return list(text.encode())

    def decode(self, ids):
        return bytes(ids).decode("utf-8", errors="replace")

    def piece(self, i):
        return self.decode([i])


class _Scripted(torch.nn.Module):
    """A stand-in model whose stream yields a fixed list of token ids."""

    def __init__(self, ids):
        super().__init__()
        self.w = torch.nn.Parameter(torch.zeros(1))
        self.config = GPTConfig(vocab_size=256, block_size=16, n_layer=1, n_head=1, n_embd=8)
        self.ids = ids

    def stream(self, idx, max_new_tokens, **kw):
        yield from self.ids[:max_new_tokens]


def test_streaming_waits_for_the_end_of_a_multibyte_character():
    ids = list("aé😀b".encode())
    seen = []
    text = generate(_Scripted(ids), _Bytes(), "x", len(ids), stream=seen.append)
    assert text == "aé😀b" and seen == ["a", "é", "😀", "b"]  # never a half character (U+FFFD)
    seen.clear()
    text = generate(_Scripted([97, 0xC3]), _Bytes(), "x", 2, stream=seen.append)  # ends inside a character
    assert text == "a\ufffd" and seen == ["a", "\ufffd"]  # held back, then handed out at the end


def test_cli_generate_streams_greedy_and_sampled_text(tiny_run, capsys):
    run, opened = tiny_run
    base = ["textgen", "generate", "--run", str(run.path), "--prompt", "Alice", "--max-new-tokens", "12"]
    outs = []
    for seed in ("1", "2"):
        assert main([*base, "--greedy", "--seed", seed]) == 0
        outs.append(capsys.readouterr().out)
    expected = "Alice" + generate(opened.model, opened.tok, "Alice", 12, greedy=True) + "\n"
    assert outs == [expected, expected]
    assert main([*base, "--temperature", "0.9", "--top-k", "5", "--top-p", "0.9", "--num-samples", "2"]) == 0
    out = capsys.readouterr().out
    assert out.count("--- sample") == 2 and out.count("Alice") >= 2
