"""The textgen lab end to end on a tiny fixture text: train, generate, score, attention, invert, CLI."""

import json
import math

import pytest
import torch

from genlab.cli import main
from genlab.labs import draw
from genlab.labs.textgen import core, figures
from genlab.labs.textgen.config import PRESETS
from genlab.nn.gpt_tools import invert, score, token_logprobs
from genlab.runs import Run

TEXT = (
    "Alice was beginning to get very tired of sitting by her sister on the bank. 'I am a little late,' "
    "said the White Rabbit, holding a walnut, and a squirrel ran by quickly. "
) * 30

TINY = [
    "tokenizer=char",
    "n_layer=1",
    "n_head=2",
    "n_embd=32",
    "block_size=48",
    "steps=40",
    "batch_size=8",
    "eval_every=20",
    "amp=off",  # float32 as the tiny demo: bf16 is slower at this width, and the greedy words below depend on it
    "eval_iters=2",
    "warmup=5",
    "lr=3e-3",
]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("runs")
    book = root / "book.txt"
    book.write_text(TEXT)
    args = [
        "textgen",
        "train",
        "--text",
        str(book),
        "--run-dir",
        str(root),
        "--name",
        "tiny",
        "--quiet",
        "--device",
        "cpu",
    ]
    for s in TINY:
        args += ["--set", s]
    assert main(args) == 0
    run = Run.open(root / "textgen" / "tiny")
    opened = core.open_run(run)
    return run, opened.tok, opened.model


def test_train_writes_run_folder_with_loss_and_samples(trained):
    run, tok, model = trained
    assert run.last_checkpoint.exists() and (run.path / "chars.json").exists()
    summary = run.read_summary()
    assert summary["steps"] == 40 and math.isfinite(summary["val_loss"])
    assert summary["val_loss"] < math.log(tok.vocab_size)  # it learned something
    assert (run.figures_dir / "loss.png").exists() and (run.figures_dir / "samples.png").exists()
    vals = [r["val_loss"] for r in run.read_metrics() if "val_loss" in r]
    assert len(vals) == 2


def test_time_budget_ends_with_a_normal_checkpoint(trained):
    run, _, _ = trained
    root = run.path.parent.parent
    args = [
        "textgen",
        "train",
        "--text",
        str(root / "book.txt"),
        "--run-dir",
        str(root),
        "--name",
        "budget",
        "--quiet",
        "--device",
        "cpu",
    ]
    for s in TINY + ["steps=1000", "max_seconds=0.001"]:
        args += ["--set", s]
    assert main(args) == 0
    short = Run.open(root / "textgen" / "budget")
    summary = short.read_summary()
    assert summary["stopped_by_time"] is True and 1 <= summary["steps"] < 1000
    assert short.finished and short.load_checkpoint()["step"] == summary["steps"]
    assert [r["step"] for r in short.read_metrics() if "val_loss" in r] == [summary["steps"]]


def test_score_is_the_sum_of_per_token_logprobs(trained):
    _, tok, model = trained
    res = score(model, tok, " the bank.", prompt="Alice sat by")
    assert res["n_tokens"] == len(" the bank.")  # char tokens; the prompt is not scored
    assert res["logprob"] == pytest.approx(sum(r["logprob"] for r in res["rows"]))
    assert res["prob"] == pytest.approx(math.prod(r["prob"] for r in res["rows"]), rel=1e-6)
    # and each value is the model's own log-softmax at that position
    ids = tok.encode("Alice sat by the bank.")
    with torch.no_grad():
        lp = model(torch.tensor([ids[:-1]]))[0][0].log_softmax(-1)
    direct = sum(lp[j - 1, ids[j]].item() for j in range(len("Alice sat by"), len(ids)))
    assert res["logprob"] == pytest.approx(direct, abs=1e-4)


def test_long_texts_are_scored_in_overlapping_windows(trained):
    _, tok, model = trained
    ids = tok.encode(TEXT[:130])  # longer than the block of 48
    lps = token_logprobs(model, ids, 1)
    assert lps.shape == (129,) and torch.isfinite(lps).all()
    with torch.no_grad():
        lp = model(torch.tensor([ids[:48]]))[0][0].log_softmax(-1)
    first = torch.tensor([lp[j - 1, ids[j]].item() for j in range(1, 48)])
    torch.testing.assert_close(lps[:47], first, atol=1e-5, rtol=0)


def test_attention_rows_sum_to_one_and_figures_exist(trained, capsys):
    run, tok, model = trained
    prompt = "Alice was beginning to get"
    assert main(["textgen", "attention", "--run", str(run.path), "--prompt", prompt, "--word", "6"]) == 0
    out = capsys.readouterr().out
    assert "row sum 1.0000" in out and "top-2 words" in out and "predicting word 7" in out
    res = core.open_run(run).attention(prompt, word=6)
    att = res["att"]
    assert att.shape[0] == 1 and att.shape[1] == att.shape[2] == len(res["tokens"])
    torch.testing.assert_close(att.sum(-1), torch.ones(att.shape[:2]))
    assert torch.all(att.triu(1) == 0)
    assert len(res["sentence"].split()) == 7  # the sentence ends with the predicted word 7
    # the attention's last row is word 6's: the context decodes to exactly six words, ending in the query token
    context = "".join(res["tokens"])
    assert len(context.split()) == 6 and context.endswith(res["query"])
    for name in ("attention_heatmaps", "attention_tokens", "attention_blocks", "attention_top_words"):
        assert (run.figures_dir / f"{name}.png").exists()
        meta = json.loads((run.figures_dir / f"{name}.json").read_text())
        assert meta["command"].startswith("genlab textgen attention") and "--word 6" in meta["command"]
    rows = (run.tables_dir / "attention.csv").read_text().splitlines()
    assert len(rows) == 1 + len(res["tokens"]) + 1  # header, one row per token, the sum
    assert run.read_summary()["attention_row_sum_max_error"] < 1e-5


def test_inversion_reaches_an_exact_match_on_the_trained_model(trained):
    run, tok, model = trained
    opened = core.open_run(run)
    res = opened.inversion("I am a little squirrel", steps=400, every=20)
    assert res["matched_step"] is not None
    emb = res["embeds"]
    with torch.no_grad():
        logits, _ = model(inputs_embeds=emb)
    assert tok.decode(logits[0].argmax(-1).tolist()) == "I am a little squirrel"
    assert all(p.grad is None for p in model.parameters())  # the model stayed frozen
    assert res["losses"][-1] < res["losses"][0]
    # the figure and the table draw the one cached inversion
    for fn in (figures.fig_inversion, figures.table_inversion):
        draw(fn, opened, run, target="I am a little squirrel", steps=400, every=20)
    assert (run.figures_dir / "inversion.png").exists() and (run.tables_dir / "inversion.csv").exists()
    assert run.read_summary()["inversion_match_step"] == res["matched_step"]
    again = invert(model, tok, "I am a little squirrel", steps=400, every=20)
    assert again["matched_step"] == res["matched_step"] and again["losses"] == res["losses"]  # seeded


def test_cli_generate_score_and_invert(trained, capsys):
    run, _, _ = trained
    assert (
        main(
            [
                "textgen",
                "generate",
                "--run",
                str(run.path),
                "--prompt",
                "Alice",
                "--max-new-tokens",
                "10",
                "--top-k",
                "5",
                "--top-p",
                "0.9",
                "--seed",
                "1",
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert out.startswith("Alice") and len(out.strip()) >= len("Alice") + 5
    assert main(["textgen", "score", "--run", str(run.path), "--text", "the bank", "--prompt", "on"]) == 0
    assert "sum log p" in capsys.readouterr().out
    meta = json.loads((run.figures_dir / "score.json").read_text())
    assert meta["command"].endswith("--prompt on --text 'the bank'") and meta["data"]["text"] == "the bank"
    book = run.path.parent.parent / "book.txt"
    assert main(["textgen", "score", "--run", str(run.path), "--file", str(book)]) == 0
    assert "perplexity" in capsys.readouterr().out


@pytest.mark.parametrize(
    "args,message",
    [
        (["generate", "--prompt", ""], "empty prompt"),
        (["invert", "--target", "a walnut " * 10], "block_size"),
        (["attention", "--prompt", " ".join(f"w{i}" for i in range(12))], "more than --word 11"),
        (["score"], "--text"),
    ],
)
def test_cli_bad_input_is_one_line(trained, capsys, args, message):
    run, _, _ = trained
    assert main(["textgen", args[0], "--run", str(run.path), *args[1:]]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1


@pytest.mark.parametrize(
    "args,message",
    [
        (["--set", "tokenizer=wordpiece"], "tokenizer"),
        (["--set", "corpus=bob"], "corpus"),
        (["--preset", "huge"], "invalid choice"),
        (["--set", "corpus=text"], "--text PATH"),
    ],
)
def test_cli_bad_train_options(tmp_path, capsys, args, message):
    assert main(["textgen", "train", "--run-dir", str(tmp_path), "--quiet", *args]) == 2
    err = capsys.readouterr().err
    assert message in err


def test_presets_are_the_documented_shapes():
    assert (PRESETS["gpt2"].n_layer, PRESETS["gpt2"].n_head, PRESETS["gpt2"].n_embd) == (12, 12, 768)
    for name in ("lab", "report"):
        p = PRESETS[name]
        assert (p.lr, p.batch_size, p.block_size, p.steps, p.tokenizer) == (5e-4, 32, 64, 2000, "gpt2")


@pytest.mark.slow
def test_quick_demo_on_alice_writes_every_figure(tmp_path):
    """The report's quick demo on the real book (needs 'genlab data fetch alice', GENLAB_TEST_REAL_DATA=1)."""
    from genlab.data.fetch import is_fetched

    if not is_fetched("alice"):
        pytest.skip("alice is not in the cache; run 'genlab data fetch alice', set GENLAB_TEST_REAL_DATA=1")
    (run,) = core.demo(tmp_path, quick=True, device="cpu", quiet=True)
    names = {p.stem for p in run.figures_dir.glob("*.png")}
    assert names >= {
        "loss",
        "samples",
        "score",
        "attention_heatmaps",
        "attention_tokens",
        "attention_blocks",
        "attention_top_words",
        "inversion",
    }
    assert (run.tables_dir / "score_report.csv").exists()
    summary = run.read_summary()
    assert summary["inversion_match_step"] is not None
    assert summary["attention_row_sum_max_error"] < 1e-5
    again = core.demo(tmp_path, quick=True, device="cpu", quiet=True)[0]  # reused, not retrained
    assert again.path == run.path and again.read_summary()["train_seconds"] == summary["train_seconds"]
