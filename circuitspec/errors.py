"""User-facing errors: one line, located in the hypothesis file where possible."""

from __future__ import annotations

__all__ = ["CircuitSpecError", "ModelNotAvailable", "one_line"]


class CircuitSpecError(Exception):
    """Bad input. ``str()`` is one line: ``file:line:col: message (valid: ...)``."""

    def __init__(
        self, message: str, *, file: str | None = None, line: int | None = None, col: int | None = None
    ):
        self.message = " ".join(str(message).split())  # always one line
        self.file, self.line, self.col = file, line, col
        super().__init__(str(self))

    def __str__(self) -> str:
        where = ""
        if self.file:
            where = self.file
            if self.line is not None:
                where += f":{self.line}"
                if self.col is not None:
                    where += f":{self.col}"
            where += ": "
        return where + self.message


class ModelNotAvailable(CircuitSpecError):
    """A model (or dictionary) that cannot be loaded here: says where it looked and how to supply it."""


def one_line(exc: BaseException) -> str:
    """An exception as one line for a report: a CircuitSpecError as it reads, anything else with its type."""
    text = str(exc) if isinstance(exc, CircuitSpecError) else f"{type(exc).__name__}: {exc}"
    return " ".join(text.split()) or type(exc).__name__
