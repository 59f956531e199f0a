"""User-facing errors.

A :class:`GenlabError` is a mistake the user can fix: a bad option, a missing dataset, a run folder that
does not exist. Its message is one line that names the bad value and says what to do. The CLI prints it
and exits with status 2. Any other exception is a bug in genlab and keeps its traceback (exit status 1).
"""

from __future__ import annotations

from collections.abc import Iterable


class GenlabError(Exception):
    """A problem with the user's input or environment, with the fix in its message."""


class ConfigError(GenlabError):
    """A bad configuration key or value (``--set``, ``--config``, a CLI option)."""


class DataError(GenlabError):
    """A dataset that is missing, corrupt, or in the wrong format."""


class RunError(GenlabError):
    """A run folder or checkpoint that is missing or does not fit the request."""


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
