"""Atomic file writes: readers see either the old file or the whole new one, never half of it.

Every file genlab writes (checkpoints, configs, metrics rewrites, figures, tables, the report) goes through
here: the bytes go to a temporary file in the same folder, are flushed to disk, and replace the target with
``os.replace``. A killed process or a full disk leaves the previous file as it was.
"""

from __future__ import annotations

import io
import json
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch


def atomic_write_bytes(path: str | Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` so that readers see either the old file or the whole new one."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; shared run folders want the usual mode
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write_text(path: str | Path, text: str) -> Path:
    return atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | Path, obj: Any) -> Path:
    return atomic_write_text(path, json.dumps(obj, indent=2, default=json_default) + "\n")


def atomic_torch_save(obj: Any, path: str | Path) -> Path:
    """``torch.save`` through a temporary file and ``os.replace``: a crash never leaves half a checkpoint."""
    buf = io.BytesIO()
    torch.save(obj, buf)
    return atomic_write_bytes(path, buf.getvalue())


def json_default(o: Any) -> Any:
    """``json.dumps(default=...)`` for NumPy scalars and arrays, tensors and paths."""
    if isinstance(o, (np.floating, np.integer)):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, torch.Tensor):
        return o.tolist()
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


def check_path(path: str | Path, what: str = "file") -> Path:
    """An existing path, or a one-line error naming it."""
    from genlab.errors import ConfigError

    p = Path(path)
    if not p.exists():
        raise ConfigError(f"{what} {str(p)!r} not found; check the path")
    return p
