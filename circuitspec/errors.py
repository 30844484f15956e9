"""User-facing errors: one line, located in the hypothesis file where possible."""

from __future__ import annotations

__all__ = ["CircuitSpecError", "ModelNotAvailable", "one_line", "printable"]


class CircuitSpecError(Exception):
    """Bad input. ``str()`` is one line: ``file:line:col: message (valid: ...)``."""

    def __init__(
        self, message: str, *, file: str | None = None, line: int | None = None, col: int | None = None
    ):
        self.message = printable(" ".join(str(message).split()))  # always one line, nothing hidden
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
        return printable(where) + self.message


def printable(text: str) -> str:
    """``text`` with control and format characters (U+202E, zero-width, C0/C1) written as ``\\uXXXX``,
    so an error message shows what the input holds instead of being reordered or hidden by it."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else f"\\u{ord(c):04x}" for c in text)


class ModelNotAvailable(CircuitSpecError):
    """A model (or dictionary) that cannot be loaded here: says where it looked and how to supply it."""


def one_line(exc: BaseException) -> str:
    """An exception as one line for a report: a CircuitSpecError as it reads, anything else with its type."""
    text = str(exc) if isinstance(exc, CircuitSpecError) else f"{type(exc).__name__}: {exc}"
    return printable(" ".join(text.split())) or type(exc).__name__
