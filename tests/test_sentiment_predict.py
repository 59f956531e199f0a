"""``genlab sentiment predict`` and :func:`genlab.labs.sentiment.core.predict` on tiny GRU and MLP runs (a generated
Kaggle-format CSV and learned embeddings: no download)."""

import json

import numpy as np
import pytest

from genlab.cli import main
from genlab.data.reviews import write_tiny_reviews
from genlab.errors import ConfigError
from genlab.labs.sentiment.core import load_model, open_run, predict, run_data
from genlab.nn.sentiment_models import predict_proba
from genlab.runs import Run

REVIEWS = ["A wonderful, moving film: great acting!", "the worst, most boring movie", "good " * 40 + "bad"]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    data = write_tiny_reviews(tmp_path_factory.mktemp("data") / "reviews.csv", n=80)
    root = tmp_path_factory.mktemp("runs")
    for model in ("gru", "mlp"):
        args = ["sentiment", "train", "--csv", str(data), "--run-dir", str(root), "--name", model, "--quiet"]
        args += ["--model", model, "--steps", "8", "--hidden", "8", "--set", "n_train=60", "--set", "embed_dim=8"]
        assert main([*args, "--set", "embeddings=learned", "--set", "widths=8", "--set", "eval_every=4"]) == 0
    return {m: root / "sentiment" / m for m in ("gru", "mlp")}


@pytest.mark.parametrize("model", ["gru", "mlp"])
def test_predict_is_the_runs_evaluation(runs, model):
    run = runs[model]
    out = predict(run, REVIEWS)
    assert [label for label, _ in out] == ["positive" if p >= 0.5 else "negative" for _, p in out]
    assert all(0.0 <= p <= 1.0 for _, p in out)
    # the test set as texts: the same probabilities as the evaluation's predict_proba on the prepared split,
    # and so the same test accuracy as the run's summary
    net, cfg, vocab = load_model(Run(run))
    data = run_data(cfg, vocab)
    got = predict(run, data.split.test_texts)
    want = predict_proba(net, data.test_ids, data.test_len)
    np.testing.assert_allclose([p for _, p in got], want, rtol=0, atol=1e-6)
    acc = np.mean([(label == "positive") == bool(y) for (label, _), y in zip(got, data.test_y.tolist())])
    assert round(float(acc), 4) == json.loads((run / "summary.json").read_text())["test_acc"]
    # a review scored alone gets what it gets in a padded batch; an opened run and a Run work the same
    alone = [predict(run, [t])[0][1] for t in REVIEWS]
    np.testing.assert_allclose(alone, [p for _, p in out], rtol=0, atol=1e-6)
    assert predict(open_run(run), REVIEWS) == out == predict(Run(run), REVIEWS)


def _lines(capsys):
    return capsys.readouterr().out.strip().splitlines()


def test_predict_verb_prints_one_line_per_review(runs, tmp_path, capsys):
    gru = str(runs["gru"])
    assert main(["sentiment", "predict", "--run", gru, *REVIEWS]) == 0
    lines = _lines(capsys)
    assert len(lines) == 3
    for line, (label, p), text in zip(lines, predict(gru, REVIEWS), REVIEWS):
        got_label, got_p, shown = line.split(maxsplit=2)
        assert got_label == label and float(got_p) == pytest.approx(p, abs=5e-4)
        assert len(shown) <= 60 and " ".join(text.split()).startswith(shown.removesuffix("..."))
    assert lines[2].endswith("...")  # the long review is cut
    # --file: one review per line (blank lines skipped), then the arguments
    text_file = tmp_path / "reviews.txt"
    text_file.write_text("great fun\n\n  dull and weak  \n")
    assert main(["sentiment", "predict", "--run", gru, "--file", str(text_file), "superb"]) == 0
    assert [line.split(maxsplit=2)[2] for line in _lines(capsys)] == ["great fun", "dull and weak", "superb"]
    # --file: a CSV with a text column (the label column is ignored), or the Kaggle format's review column
    csv_file = tmp_path / "reviews.csv"
    csv_file.write_text('label,Text\n1,"great, really great"\n0,awful\n')
    assert main(["sentiment", "predict", "--run", str(runs["mlp"]), "--file", str(csv_file)]) == 0
    assert [line.split(maxsplit=2)[2] for line in _lines(capsys)] == ["great, really great", "awful"]
    kaggle = write_tiny_reviews(tmp_path / "kaggle.csv", n=6)
    assert main(["sentiment", "predict", "--run", gru, "--file", str(kaggle)]) == 0
    assert len(_lines(capsys)) == 6


def test_predict_errors_are_one_line(runs, tmp_path, capsys):
    gru = str(runs["gru"])
    empty, no_column = tmp_path / "empty.txt", tmp_path / "bad.csv"
    empty.write_text("\n  \n")
    no_column.write_text("title,score\nhello,1\n")
    cases = [
        ([], "no reviews to score"),
        (["--file", str(tmp_path / "missing.txt")], "not found"),
        (["--file", str(empty)], "holds no reviews"),
        (["--file", str(no_column)], "expected a 'text' or 'review' column"),
        (["great", "!!! 42"], "no words after cleaning"),
        ([""], "no words after cleaning"),
    ]
    for extra, needle in cases:
        assert main(["sentiment", "predict", "--run", gru, *extra]) == 2, extra
        err = capsys.readouterr().err.strip()
        assert needle in err and len(err.splitlines()) == 1, (extra, err)
    assert main(["sentiment", "predict", "--run", str(tmp_path / "nope"), "good"]) == 2
    assert len(capsys.readouterr().err.strip().splitlines()) == 1
    with pytest.raises(ConfigError, match="no words"):
        predict(gru, ["good", "..."])
    assert predict(gru, []) == []
