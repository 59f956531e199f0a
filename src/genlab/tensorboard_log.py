"""TensorBoard event files beside ``metrics.jsonl`` (``--log tensorboard``; the optional ``tensorboard`` extra).

``metrics.jsonl`` stays the record every genlab figure reads; this only mirrors each logged row into
``<run>/tensorboard/`` so ``tensorboard --logdir runs`` shows the curves of every run. A resumed run purges
the events after the step it resumes from, as :meth:`genlab.runs.Run.truncate_metrics` does with the log.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from genlab.errors import ConfigError
from genlab.runs import Run

LOGGERS = ("jsonl", "tensorboard")


class TensorBoardLog:
    """A ``SummaryWriter`` on ``<run>/tensorboard`` that takes genlab's metric rows."""

    def __init__(self, run: Run, start_step: int = 0) -> None:
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            raise ConfigError(
                "log=tensorboard needs the tensorboard package: pip install 'genlab[tensorboard]' "
                "(or pip install tensorboard), or train with --log jsonl"
            ) from None
        self.path = run.path / "tensorboard"
        # purge_step drops events of steps after the resume point, which the resumed run writes again
        self.writer = SummaryWriter(str(self.path), purge_step=start_step + 1 if start_step else None)

    def write(self, record: Mapping[str, Any]) -> None:
        """One metrics row: every finite number but ``step`` becomes a scalar at that step."""
        step = int(record["step"])
        for key, value in record.items():
            if key == "step" or isinstance(value, bool) or not isinstance(value, (int, float)):
                continue
            if math.isfinite(value):
                self.writer.add_scalar(key, value, step)

    def close(self) -> None:
        self.writer.close()
