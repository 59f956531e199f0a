"""The quick demo on the fetched rt + GloVe data (slow; skipped when the data is not in the cache)."""

import json

import pytest

from genlab.data.fetch import is_fetched


@pytest.mark.slow
def test_quick_demo_makes_every_figure(tmp_path):
    from genlab.labs.sentiment import demo

    if not (is_fetched("rt") and is_fetched("glove")):  # checked here: the tests' data cache is set per test
        pytest.skip("needs 'genlab data fetch rt glove' and GENLAB_TEST_REAL_DATA=1")

    runs = demo(tmp_path, quick=True, quiet=True)
    figs = {p.name for r in runs for p in r.figures_dir.glob("*.png")}
    assert {
        "curves.png",
        "bptt.png",
        "explain_words.png",
        "attention_weights.png",
        "sweep.png",
        "rnn_vs_gru.png",
    } <= figs
    att = next(r for r in runs if r.path.name == "rt-attention-quick")
    explained = json.loads((att.path / "summary.json").read_text())["explain"]
    verdicts = [r["attention"]["prediction"] == r["attention"]["label"] for r in explained[:2]]
    assert verdicts == [True, False]  # a test review predicted right, then one predicted wrong
    gru = next(r for r in runs if r.path.name == "rt-gru-quick")
    summary = json.loads((gru.path / "summary.json").read_text())
    assert summary["test_acc"] > 0.70 and "comparison" in summary
    again = demo(tmp_path, quick=True, quiet=True)  # reuse: nothing retrained
    assert [r.path for r in again] == [r.path for r in runs]
