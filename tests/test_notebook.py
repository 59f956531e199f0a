"""examples/quickstart.ipynb runs top to bottom under a real Jupyter kernel (nbclient), as a user would run it."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

NOTEBOOK = Path(__file__).resolve().parents[1] / "examples" / "quickstart.ipynb"


@pytest.mark.slow
def test_quickstart_notebook_runs(tmp_path):
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    from genlab.data.fetch import is_fetched

    if not is_fetched("alice"):
        pytest.skip("the notebook's GPT needs the Alice text: genlab data fetch alice (make test-all fetches it)")
    shutil.copy(NOTEBOOK, tmp_path / NOTEBOOK.name)
    nb = nbformat.read(tmp_path / NOTEBOOK.name, as_version=4)
    nbclient.NotebookClient(
        nb, timeout=900, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    ).execute()
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    assert not [o for o in outputs if o.get("output_type") == "error"]
    assert any("image/png" in o.get("data", {}) for o in outputs), "the samples were not plotted inline"
    assert (tmp_path / "runs" / "diffusion2d" / "square" / "checkpoints").is_dir()
    exported = tmp_path / "nano-export"
    assert (exported / "model.safetensors").exists() and not list(exported.rglob("*.pt"))
