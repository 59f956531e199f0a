import os

import pytest
import torch

# Tests are small; one thread keeps them fast and their numbers reproducible on any machine.
torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory, monkeypatch):
    """Never touch the user's data cache from a test unless the test sets GENLAB_DATA itself."""
    if "GENLAB_TEST_REAL_DATA" not in os.environ:
        monkeypatch.setenv("GENLAB_DATA", str(tmp_path_factory.mktemp("genlab-data")))
    yield
