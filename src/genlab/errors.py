"""User-facing errors.

A :class:`GenlabError` is a mistake the user can fix: a bad option, a missing dataset, a run folder that
does not exist. Its message is one line that names the bad value and says what to do. The CLI prints it
and exits with status 2. Any other exception is a bug in genlab and keeps its traceback (exit status 1).
"""

from __future__ import annotations

import errno
from collections.abc import Iterable


class GenlabError(Exception):
    """A problem with the user's input or environment, with the fix in its message."""


class ConfigError(GenlabError):
    """A bad configuration key or value (``--set``, ``--config``, a CLI option)."""


class DataError(GenlabError):
    """A dataset that is missing, corrupt, or in the wrong format."""


class RunError(GenlabError):
    """A run folder or checkpoint that is missing or does not fit the request."""


class NothingToDo(GenlabError):
    """The request is already satisfied (e.g. ``--resume`` of a finished run): said in one line, exit status 0."""


class TrainingDiverged(GenlabError):
    """A loss became NaN or infinite; the message names the step."""


def choose(kind: str, value: object, options: Iterable[object], error: type[GenlabError] = ConfigError):
    """Return ``value`` if it is one of ``options``, else raise a one-line error listing them.

    >>> choose("sampler", "euler", ["euler", "heun"])
    'euler'
    """
    options = list(options)
    if value in options:
        return value
    listed = ", ".join(str(o) for o in options)
    raise error(f"unknown {kind} {value!r}; choose one of: {listed}")


_OS_FIXES = {
    errno.ENOSPC: "the disk is full; free some space and run the command again (finished checkpoints are kept, "
    "training continues with --resume)",
    errno.EDQUOT: "the disk quota is used up; free some space and run the command again",
    errno.EROFS: "that file system is read-only; choose a writable folder (--run-dir, --out or GENLAB_DATA)",
    errno.EACCES: "permission denied; choose a folder you may write to (--run-dir, --out or GENLAB_DATA)",
    errno.EPERM: "permission denied; choose a folder you may write to (--run-dir, --out or GENLAB_DATA)",
    errno.ENOTDIR: "a file stands where a folder is needed; pass a folder path, or move the file away",
    errno.EISDIR: "a folder stands where a file is needed; pass a file path",
    errno.EEXIST: "a file stands where a folder is needed; pass a folder path, or move the file away",
    errno.ENOENT: "no such file or folder; check the path",
    errno.ENAMETOOLONG: "the path is too long; use a shorter name",
}


def describe_os_error(e: OSError) -> str:
    """One line for an error of the environment: what failed, on which path, and what to do."""
    where = " ".join(repr(str(f)) for f in (e.filename, getattr(e, "filename2", None)) if f)
    what = e.strerror or type(e).__name__
    fix = _OS_FIXES.get(e.errno or -1, "check the path and the disk, then run the command again")
    return f"{what}{' (' + where + ')' if where else ''}: {fix}"


def is_out_of_memory(e: BaseException) -> bool:
    if isinstance(e, MemoryError):
        return True
    text = str(e)
    return type(e).__name__ == "OutOfMemoryError" or (
        isinstance(e, RuntimeError) and ("DefaultCPUAllocator" in text or "out of memory" in text)
    )
