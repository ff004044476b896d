"""One exception hierarchy. Every message is one line that names the file and the problem."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path


class ScratchcheckError(Exception):
    """Base of every error scratchcheck raises on purpose; the CLI prints it as one line, exit 2."""

    def __init__(self, path: str | Path | None, problem: str) -> None:
        self.path = str(path) if path is not None else None
        self.problem = problem
        super().__init__(f"{self.path}: {problem}" if self.path else problem)


class NotFoundError(ScratchcheckError):
    """A path, shard, model id or tensor that does not exist."""


class FormatError(ScratchcheckError):
    """A file whose bytes contradict its own format: truncated, bad header, lying offsets or dtypes."""


class UnsupportedError(ScratchcheckError):
    """A valid file using something scratchcheck does not read (unknown format, quantisation type)."""


class UnsafePickleError(FormatError):
    """A pickle that asks for a global outside the state-dict allow-list; nothing from it was run."""


class UsageError(ScratchcheckError):
    """Arguments that cannot work together (e.g. an unknown component name)."""


class PolicyError(ScratchcheckError):
    """An audit policy that is not TOML, breaks the policy schema, or extends something unknown."""


@contextmanager
def reading(path: str | Path) -> Iterator[None]:
    """Tag any unexpected exception raised while reading ``path`` with it: even a bug in a reader is
    then reported against the file that triggered it (see ``file_being_read``)."""
    try:
        yield
    except ScratchcheckError:
        raise
    except Exception as exc:
        if file_being_read(exc) is None:
            with suppress(AttributeError):  # an exception type without a __dict__
                exc.scratchcheck_file = str(path)  # type: ignore[attr-defined]
        raise


def file_being_read(exc: BaseException) -> str | None:
    """The file ``reading`` tagged ``exc`` with, if any."""
    return getattr(exc, "scratchcheck_file", None)
