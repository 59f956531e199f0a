"""The ``genlab sentiment`` verbs end to end on a tiny Kaggle-format CSV (learned embeddings: no download)."""

import json

import pytest

from genlab.cli import main
from genlab.data.reviews import write_tiny_reviews


@pytest.fixture(scope="module")
def tiny_csv(tmp_path_factory):
    return write_tiny_reviews(tmp_path_factory.mktemp("data") / "IMDB Dataset.csv", n=80)


def _train(tmp_path, csv_path, name, *extra):
    return main(
        [
            "sentiment",
            "train",
            "--csv",
            str(csv_path),
            "--run-dir",
            str(tmp_path),
            "--name",
            name,
            "--quiet",
            "--steps",
            "6",
            "--set",
            "n_train=60",
            "--set",
            "embeddings=learned",
            "--set",
            "eval_every=3",
            "--set",
            "embed_dim=8",
            "--hidden",
            "8",
            "--set",
            "widths=8",
            *extra,
        ]
    )


@pytest.fixture(scope="module")
def runs(tmp_path_factory, tiny_csv):
    root = tmp_path_factory.mktemp("runs")
    for model in ("gru", "mlp", "attention"):
        assert _train(root, tiny_csv, model, "--model", model, "--window", "2") == 0
    return root


def test_train_writes_metrics_table_summary_and_curves(runs):
    run = runs / "sentiment" / "gru"
    s = json.loads((run / "summary.json").read_text())
    for k in ("train_acc", "test_acc", "test_f1", "test_auc", "baseline_test_acc"):
        assert 0.0 <= s[k] <= 1.0
    table = (run / "tables" / "metrics.md").read_text()
    assert "TF-IDF" in table and "GRU" in table
    assert (run / "figures" / "curves.png").stat().st_size > 1000
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert any("test_acc" in r for r in rows) and any("loss" in r for r in rows)


def test_eval_and_figures(runs, capsys):
    assert main(["sentiment", "eval", "--run", str(runs / "sentiment" / "gru"), "--quiet"]) == 0
    assert "test_acc" in capsys.readouterr().out
    assert main(["sentiment", "figures", "--run", str(runs / "sentiment" / "gru"), "--quiet"]) == 0
    assert (runs / "sentiment" / "gru" / "figures" / "bptt.png").exists()


def test_figures_with_other_runs_compares_them_in_model_order(runs, capsys):
    gru, mlp, att = (str(runs / "sentiment" / m) for m in ("gru", "mlp", "attention"))
    assert main(["sentiment", "figures", "--run", gru, "--with", att, "--with", mlp, "--quiet"]) == 0
    rows = (runs / "sentiment" / "gru" / "tables" / "comparison.csv").read_text().splitlines()
    assert [r.split(",")[-1] for r in rows[1:]] == ["gru", "mlp", "attention", "-"]  # the last row: TF-IDF
    meta = json.loads((runs / "sentiment" / "gru" / "figures" / "bptt.json").read_text())
    assert meta["command"] == f"genlab sentiment figures --run {gru} --with {mlp} --with {att}"
    summary = json.loads((runs / "sentiment" / "gru" / "summary.json").read_text())
    assert set(summary["comparison"]) == {
        "GRU (8x1)",
        "token-wise MLP [8]",
        "attention (k=2, H=8) + MLP [8]",
        "TF-IDF + logistic regression",
    }


def test_explain_prints_per_word_scores_and_draws(runs, capsys):
    mlp, att = runs / "sentiment" / "mlp", runs / "sentiment" / "attention"
    assert main(["sentiment", "explain", "--run", str(mlp), "--run", str(att), "the movie was not good"]) == 0
    out = capsys.readouterr().out
    assert "mlp: predicted" in out and "attention: predicted" in out and "mlp pos" in out and "attention pos" in out
    assert (att / "figures" / "explain_words.png").exists()
    assert (att / "figures" / "attention_weights.png").exists()
    # built-in examples (after two picked test reviews) when no text is given
    assert main(["sentiment", "explain", "--run", str(mlp), "--no-figures"]) == 0
    assert "the worst movie ever" in capsys.readouterr().out


def test_sweep_runs_cells_and_skips_finished_ones(tmp_path, tiny_csv, capsys):
    args = [
        "sentiment",
        "sweep",
        "--csv",
        str(tiny_csv),
        "--run-dir",
        str(tmp_path),
        "--quiet",
        "--models",
        "rnn,mlp",
        "--activations",
        "tanh,relu",
        "--hidden",
        "8,16",
        "--steps",
        "3",
        "--set",
        "n_train=60",
        "--set",
        "embeddings=learned",
        "--set",
        "embed_dim=8",
    ]
    assert main(args) == 0
    summary = json.loads((tmp_path / "sentiment" / "sweep" / "summary.json").read_text())
    assert summary["cells"] == 6 and summary["reused"] == 0
    assert (tmp_path / "sentiment" / "sweep" / "tables" / "sweep.csv").exists()
    assert (tmp_path / "sentiment" / "sweep" / "figures" / "sweep.png").exists()
    assert main(args) == 0
    summary = json.loads((tmp_path / "sentiment" / "sweep" / "summary.json").read_text())
    assert summary["reused"] == 6
    table = (tmp_path / "sentiment" / "sweep" / "tables" / "sweep.csv").read_text()
    assert main(["sentiment", "figures", "--run", str(tmp_path / "sentiment" / "sweep")]) == 0  # redrawn from cells
    assert (tmp_path / "sentiment" / "sweep" / "tables" / "sweep.csv").read_text() == table
    assert main(["sentiment", "eval", "--run", str(tmp_path / "sentiment" / "sweep")]) == 2
    assert "is a sweep" in capsys.readouterr().err


@pytest.mark.parametrize(
    "extra,needle",
    [
        (["--model", "lstm"], "bad value 'lstm' for model"),
        (["--activation", "gelu"], "bad value 'gelu' for activation"),
        (["--window", "0"], "bad value 0 for window"),
    ],
)
def test_bad_options_one_line(tmp_path, tiny_csv, capsys, extra, needle):
    assert _train(tmp_path, tiny_csv, "bad", *extra) == 2
    err = capsys.readouterr().err.strip()
    assert needle in err and len(err.splitlines()) == 1


@pytest.mark.parametrize(
    "extra,needle",
    [
        (["--model", "rnn", "--candidate", "relu"], "candidate shapes the gru model only, and this run's model is rnn"),
        (["--model", "mlp", "--set", "candidate=none"], "candidate shapes the gru model only"),
        (
            ["--model", "gru", "--activation", "relu"],
            "activation shapes the rnn model only, and this run's model is gru",
        ),
    ],
)
def test_a_recurrent_activation_for_the_other_model_is_refused(tmp_path, tiny_csv, capsys, extra, needle):
    assert _train(tmp_path, tiny_csv, "other", *extra) == 2
    err = capsys.readouterr().err.strip()
    assert needle in err and len(err.splitlines()) == 1
    assert not (tmp_path / "sentiment" / "other").exists()


def test_bad_csv_and_empty_review(tmp_path, runs, capsys):
    bad = tmp_path / "bad.csv"
    bad.write_text("text,label\nhello,1\n")
    assert _train(tmp_path, bad, "badcsv") == 2
    err = capsys.readouterr().err.strip()
    assert "expected 'review' and 'sentiment'" in err and len(err.splitlines()) == 1
    assert main(["sentiment", "explain", "--run", str(runs / "sentiment" / "mlp"), "!!! 42"]) == 2
    err = capsys.readouterr().err.strip()
    assert "no words" in err and len(err.splitlines()) == 1
    assert main(["sentiment", "explain", "--run", str(runs / "sentiment" / "gru"), "good"]) == 2
    assert "explain needs 'mlp' or 'attention'" in capsys.readouterr().err
