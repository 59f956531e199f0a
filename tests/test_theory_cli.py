"""``genlab theory run`` and ``figures`` end to end on the tiny preset (seconds)."""

import json

from genlab.cli import main


def test_run_then_figures(tmp_path, capsys):
    code = main(["theory", "run", "--preset", "tiny", "--run-dir", str(tmp_path), "--name", "t", "--quiet"])
    out = capsys.readouterr().out
    run = tmp_path / "theory" / "t"
    summary = json.loads((run / "summary.json").read_text())
    # the tiny sizes are too small for every check: the verb says which failed and exits 1 then, 0 when all pass
    assert code == (0 if summary["checks_passed"] == summary["checks_total"] else 1)
    assert out.count("[ok]") == summary["checks_passed"] and "jacobians" in out
    assert (run / "tables" / "answers.csv").exists() and (run / "figures" / "jacobians.png").exists()
    again = main(["theory", "run", "--preset", "tiny", "--run-dir", str(tmp_path), "--name", "t", "--resume"])
    assert again == 0 and "already finished" in capsys.readouterr().err  # nothing to do: said on one line
    (run / "tables" / "receptive_field.csv").unlink()
    assert main(["theory", "figures", "--run", str(run), "--only", "receptive_field", "--quiet"]) == 0
    assert (run / "tables" / "receptive_field.csv").exists()
