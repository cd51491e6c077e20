"""How a run that cannot finish ends: an internal error (a bug in esper-lint) names the file it was
processing, and a signal stops the run; neither ever reads as "findings" (see cli.main's exit codes)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["InternalError", "Stopped", "describe", "processing"]


class InternalError(Exception):
    """esper-lint failed (a bug, or the machine ran out of something) while processing `where`."""

    def __init__(self, where: str, error: str) -> None:
        super().__init__(where, error)  # the arguments pickle, so a worker's error reaches the parent whole
        self.where = where
        self.error = error

    def __str__(self) -> str:
        return f"{self.where}: {self.error}"


class Stopped(BaseException):
    """A signal (SIGTERM) asked the run to stop; a BaseException, like KeyboardInterrupt, so that
    no `except Exception` swallows it on the way out."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


def describe(error: BaseException, limit: int = 500) -> str:
    """One line: the exception's type and message, shortened."""
    text = " ".join(str(error).split())
    if len(text) > limit:
        text = text[: limit - 1] + "…"
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


@contextmanager
def processing(where: str) -> Iterator[None]:
    """Any exception raised inside becomes an InternalError naming `where` (a file, usually)."""
    try:
        yield
    except InternalError:
        raise
    except Exception as exc:
        raise InternalError(where, describe(exc)) from exc
