"""The sentiment items of the student reports (issue 15): the GRU's candidate activation, MLP dropout and shapes,
the sweep's learning-rate / candidate / widths / dropout axes and its F1 and ROC-AUC columns, the best GRU against
the best RNN, explain's picked test reviews, and the report preset. Tiny sizes: a generated CSV, learned
embeddings, a few steps."""

import csv
import json
import math

import numpy as np
import pytest
import torch
from sklearn.metrics import f1_score, roc_auc_score

from genlab.cli import main
from genlab.data import reviews as rv
from genlab.labs.sentiment.config import PRESETS, SentimentConfig, cell_config, cell_name, sweep_cells
from genlab.labs.sentiment.core import load_model, run_data
from genlab.labs.sentiment.variants import pick_test_reviews, with_epochs
from genlab.nn.bptt_scan import GRUScan
from genlab.nn.recurrent import ACTIVATIONS, GRUCell, Recurrent
from genlab.nn.sentiment_models import build_classifier, predict_proba, predict_texts
from genlab.runs import Run

TINY = ["--set", "n_train=60", "--set", "embeddings=learned", "--set", "embed_dim=8"]


@pytest.fixture(scope="module")
def tiny_csv(tmp_path_factory):
    return write_csv(tmp_path_factory.mktemp("data"))


def write_csv(folder):
    return rv.write_tiny_reviews(folder / "IMDB Dataset.csv", n=80)


# ------------------------------------------------------------------------------ the GRU's candidate activation


@pytest.mark.parametrize("candidate", ["sigmoid", "relu", "none"])
def test_gru_candidate_is_the_equation_and_the_scan_is_its_derivative(candidate):
    torch.manual_seed(0)
    cell = GRUCell(3, 4, candidate=candidate).double()
    x, h = torch.randn(2, 3, dtype=torch.float64), torch.randn(2, 4, dtype=torch.float64)
    z, r = torch.sigmoid(cell.z(torch.cat([x, h], -1))), torch.sigmoid(cell.r(torch.cat([x, h], -1)))
    a = cell.h(torch.cat([x, r * h], -1))
    act = {"sigmoid": torch.sigmoid, "relu": torch.relu, "none": lambda v: v}[candidate]
    torch.testing.assert_close(cell(x, h), (1 - z) * h + z * act(a))
    tanh = GRUCell(3, 4).double()
    tanh.load_state_dict(cell.state_dict())
    assert not torch.allclose(cell(x, h), tanh(x, h))  # the same weights, another candidate: another state
    # hand-written BPTT of the scan against finite differences (masked)
    xp = cell.input_part(torch.randn(3, 5, 3, dtype=torch.float64)).detach().requires_grad_()
    h0 = torch.randn(3, 4, dtype=torch.float64).requires_grad_()
    u_zr, u_h = (w.detach().clone().requires_grad_() for w in cell.recurrent_weights())
    m = (torch.arange(5)[None] < torch.tensor([5, 3, 1])[:, None]).double().unsqueeze(-1)
    assert torch.autograd.gradcheck(lambda *v: GRUScan.apply(*v, m, 0, candidate), (xp, h0, u_zr, u_h))


@pytest.mark.parametrize("candidate", ACTIVATIONS)
def test_recurrent_scan_matches_the_step_by_step_graph_for_every_candidate(candidate):
    torch.manual_seed(1)
    rnn = Recurrent(3, 5, 2, "gru", candidate=candidate)
    x = torch.randn(4, 7, 3)
    mask = torch.arange(7)[None] < torch.tensor([7, 5, 2, 1])[:, None]
    out, last = rnn(x, mask)
    states, last2 = rnn.states_along_time(x, mask)
    torch.testing.assert_close(out, torch.stack(states, 1), rtol=0, atol=0)
    g1 = torch.autograd.grad(out.square().mean() + last.sum(), list(rnn.parameters()))
    g2 = torch.autograd.grad(torch.stack(states, 1).square().mean() + last2.sum(), list(rnn.parameters()))
    for a, b in zip(g1, g2):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


def test_build_model_applies_candidate_and_dropout_with_the_same_checkpoint_keys():
    vocab = rv.Vocab("learned", ["good", "bad", "movie"])
    base = SentimentConfig(embeddings="learned", embed_dim=6, hidden=5)
    tanh, relu = build_classifier(base, vocab), build_classifier(base.update({"candidate": "relu"}), vocab)
    assert [c.candidate for c in relu.rnn.cells] == ["relu"]
    relu.load_state_dict(tanh.state_dict())
    ids, mask = torch.tensor([[2, 3, 4, 2]]), torch.ones(1, 4, dtype=torch.bool)
    assert not torch.allclose(tanh(ids, mask), relu(ids, mask))  # the key changes the model

    mlp = base.update({"model": "mlp", "widths": (16, 8)})
    plain, dropped = build_classifier(mlp, vocab), build_classifier(mlp.update({"dropout": 0.5}), vocab)
    assert sum(isinstance(m, torch.nn.Dropout) for m in dropped.modules()) == 2
    assert plain.state_dict().keys() == dropped.state_dict().keys()
    dropped.load_state_dict(plain.state_dict())
    ids = torch.tensor([[2, 3, 4, 2, 3, 4]])
    mask = torch.ones_like(ids, dtype=torch.bool)
    plain.eval()
    dropped.eval()
    torch.testing.assert_close(plain(ids, mask), dropped(ids, mask))  # dropout is off at test time
    dropped.train()
    torch.manual_seed(0)
    assert not torch.allclose(dropped.sub_scores(ids, mask), plain.sub_scores(ids, mask))


# ----------------------------------------------------------------------------------- presets and the grid


def test_report_preset_is_the_reports_setup_and_epochs_become_steps(tmp_path, tiny_csv):
    p = PRESETS["report"]
    assert (p.lr, p.batch_size, p.epochs, p.eval_every) == (1e-4, 32, 10, 50)
    data = rv.prepare(str(tiny_csv), 60, "learned", 2)
    assert with_epochs(p, data).steps == math.ceil(10 * len(data.train_y) / 32)
    assert with_epochs(p.update({"epochs": 0, "steps": 7}), data).steps == 7
    args = ["sentiment", "train", "--preset", "report", "--csv", str(tiny_csv), "--run-dir", str(tmp_path)]
    args += ["--name", "r", "--quiet", "--set", "epochs=1", "--set", "batch_size=16", "--set", "widths=8", *TINY]
    assert main(args) == 0
    cfg = json.loads((tmp_path / "sentiment" / "r" / "config.json").read_text())["config"]
    assert (cfg["lr"], cfg["epochs"], cfg["eval_every"]) == (1e-4, 1, 50)
    assert cfg["steps"] == math.ceil(len(data.train_y) / 16)
    assert json.loads((tmp_path / "sentiment" / "r" / "progress.json").read_text())["done"]


def test_sweep_cells_vary_each_axis_where_it_applies():
    cells = sweep_cells(
        ["rnn", "gru", "mlp", "attention"],
        ["tanh"],
        [8],
        [1],
        candidates=["tanh", "relu"],
        widths=["16", "16x8"],
        dropouts=[0.0, 0.5],
        lrs=[1e-3, 1e-4],
    )
    by = {m: [c for c in cells if c["model"] == m] for m in ("rnn", "gru", "mlp", "attention")}
    assert [len(v) for v in by.values()] == [2, 4, 8, 8]
    assert len({cell_name(c, 5) for c in cells}) == len(cells)
    base = SentimentConfig()
    gru = cell_config(next(c for c in by["gru"] if c["activation"] == "relu" and c["lr"] == 1e-4), base)
    assert (gru.candidate, gru.lr, gru.dropout) == ("relu", 1e-4, 0.0)
    mlp = cell_config(next(c for c in by["mlp"] if c["widths"] == "16x8" and c["dropout"] == 0.5), base)
    assert (mlp.widths, mlp.dropout) == ((16, 8), 0.5)
    att = cell_config(by["attention"][-1], base)
    assert (att.hidden, att.widths, att.window) == (8, (16, 8), base.window)
    assert all(c["dropout"] == "-" for c in by["rnn"] + by["gru"])
    # without the optional axes, the cells (and their run names) are as before
    assert sweep_cells(["gru"], ["tanh"], [8], [1]) == [{"model": "gru", "activation": "-", "hidden": 8, "layers": 1}]


# ----------------------------------------------------------------------------------------------- the sweep


def test_sweep_candidates_and_lrs_table_f1_auc_and_the_best_gru_and_rnn(tmp_path, tiny_csv):
    args = ["sentiment", "sweep", "--csv", str(tiny_csv), "--run-dir", str(tmp_path), "--quiet"]
    args += ["--models", "rnn,gru", "--activations", "tanh", "--candidates", "tanh,relu", "--hidden", "6"]
    args += ["--lrs", "0.03,0.003", "--steps", "4", "--set", "eval_every=2", *TINY]
    assert main(args) == 0
    sweep = tmp_path / "sentiment" / "sweep"
    with open(sweep / "tables" / "sweep.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 6 and {r["lr"] for r in rows} == {"0.03", "0.003"}
    for key in ("train_f1", "train_auc", "test_f1", "test_auc"):
        assert all(0 <= float(r[key]) <= 1 for r in rows)
    # the F1 and ROC-AUC are sklearn's on the cell's own predictions of the whole test set
    cell = Run(sweep / "stages" / rows[-1]["run"])
    assert cell.config(SentimentConfig).lr == float(rows[-1]["lr"])
    model, cfg, vocab = load_model(cell)
    data = run_data(cfg, vocab)
    p = predict_proba(model, data.test_ids, data.test_len)
    y = data.test_y.numpy()
    assert float(rows[-1]["test_f1"]) == pytest.approx(f1_score(y, p >= 0.5, zero_division=0), abs=1e-4)
    assert float(rows[-1]["test_auc"]) == pytest.approx(roc_auc_score(y, p), abs=1e-4)
    # the candidates table and figure, and the best GRU against the best RNN
    cands = json.loads((sweep / "summary.json").read_text())
    assert set(cands["candidates"]) == {"tanh", "relu"}
    for m in ("rnn", "gru"):
        best = max(float(r["test_acc"]) for r in rows if r["model"] == m)
        assert cands["rnn_vs_gru"][m]["test_acc"] == pytest.approx(best)
    drawn = json.loads((sweep / "figures" / "rnn_vs_gru.json").read_text())["data"]
    assert drawn["gru"]["step"] == [2, 4] and len(drawn["rnn"]["test_acc"]) == 2
    assert (sweep / "figures" / "candidates.png").exists() and (sweep / "tables" / "candidates.md").exists()
    grads = json.loads((sweep / "figures" / "candidates.json").read_text())["data"]
    assert len(grads["init"]) == 2 and all(len(g) == 100 for g in grads["trained"].values())


def test_sweep_mlp_widths_and_dropouts(tmp_path, tiny_csv):
    args = ["sentiment", "sweep", "--csv", str(tiny_csv), "--run-dir", str(tmp_path), "--quiet", "--models", "mlp"]
    args += ["--widths", "8,8x4", "--dropouts", "0,0.5", "--steps", "3", *TINY]
    assert main(args) == 0
    with open(tmp_path / "sentiment" / "sweep" / "tables" / "sweep.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [(r["widths"], r["dropout"]) for r in rows] == [("8", "0.0"), ("8", "0.5"), ("8x4", "0.0"), ("8x4", "0.5")]
    cfg = Run(tmp_path / "sentiment" / "sweep" / "stages" / rows[3]["run"]).config(SentimentConfig)
    assert (cfg.widths, cfg.dropout) == ((8, 4), 0.5)


@pytest.mark.parametrize(
    "option,value,words",
    [
        ("--widths", "8xa", "--widths entry '8xa'"),
        ("--widths", "8x0", "--widths entry '8x0'"),
        ("--dropouts", "0.99", "--dropouts value 0.99"),
        ("--lrs", "fast", "--lrs 'fast'"),
        ("--candidates", "tahn", "tahn"),
    ],
)
def test_sweep_refuses_bad_axes_in_one_line(tmp_path, tiny_csv, capsys, option, value, words):
    args = ["sentiment", "sweep", "--csv", str(tiny_csv), "--run-dir", str(tmp_path), option, value, *TINY]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert words in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "sentiment").exists()


# ------------------------------------------------------------------------------------------------- explain


@pytest.fixture(scope="module")
def mlp_run(tmp_path_factory, tiny_csv):
    root = tmp_path_factory.mktemp("runs")
    # two steps: a model that gets some test reviews right and some wrong
    args = ["sentiment", "train", "--csv", str(tiny_csv), "--run-dir", str(root), "--name", "mlp", "--quiet"]
    args += ["--model", "mlp", "--steps", "2", "--lr", "0.01", "--set", "widths=8", *TINY]
    assert main(args) == 0
    return root / "sentiment" / "mlp"


def test_pick_test_reviews_one_right_one_wrong(mlp_run):
    model, cfg, vocab = load_model(Run(mlp_run))
    data = run_data(cfg, vocab)
    picks = pick_test_reviews(model, data)
    assert len(picks) == 2
    (right, right_label), (wrong, wrong_label) = picks
    assert right in data.split.test_texts and wrong in data.split.test_texts
    truth = dict(zip(data.split.test_texts, data.split.test_labels))
    assert ("positive" if truth[right] else "negative") == right_label
    (said_right, _), (said_wrong, _) = predict_texts(model, vocab, [right, wrong], cfg.max_len)
    assert said_right == right_label and said_wrong != wrong_label


def test_explain_without_text_prints_true_labels_and_verdicts(mlp_run, capsys):
    assert main(["sentiment", "explain", "--run", str(mlp_run)]) == 0
    out = capsys.readouterr().out
    assert out.count("true label") == 5  # two picked test reviews and the three examples
    assert ": right" in out and ": WRONG" in out
    summary = json.loads((mlp_run / "summary.json").read_text())["explain"]
    assert [r["mlp"]["label"] is not None for r in summary] == [True] * 5
    meta = json.loads((mlp_run / "figures" / "explain_words.json").read_text())
    assert meta["command"] == f"genlab sentiment explain --run {mlp_run}"
    # the user's own text is still explained, with no true label to compare with
    assert main(["sentiment", "explain", "--run", str(mlp_run), "--no-figures", "a good film"]) == 0
    out = capsys.readouterr().out
    assert "review: 'a good film'" in out and "true label" not in out and "predicted" in out
    p = np.array([r["mlp"]["p_pos"] for r in summary])
    assert ((p >= 0.5) == np.array([r["mlp"]["prediction"] == "positive" for r in summary])).all()
