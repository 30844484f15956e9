"""Data rows of a hypothesis: inline ``rows`` or a JSONL file, each checked against the slots its
templates read; and the bounded UTF-8 read that the hypothesis file shares.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

from circuitspec.errors import CircuitSpecError

from .schema import DataSpec
from .templates import slots_of

__all__ = ["MAX_ROWS_BYTES", "load_rows", "read_text"]

MAX_ROWS_BYTES = 64 << 20


class Locates(Protocol):
    """What :func:`load_rows` needs of a loaded hypothesis: an error located at a YAML path."""

    def error(self, message: str, loc: Sequence[int | str] = ..., *, at_key: bool = ...) -> CircuitSpecError:
        """A :class:`CircuitSpecError` pointing at ``loc`` in the hypothesis file."""


def read_text(path: Path, limit: int, what: str) -> str:
    """The text of ``path`` (BOM dropped), refusing a missing, oversized, empty, non-UTF-8 or binary file."""
    file = str(path)
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise CircuitSpecError(f"cannot read {what}: {exc.strerror or exc}", file=file) from None
    if not path.is_file():
        raise CircuitSpecError(f"{what} is not a regular file", file=file)
    if size > limit:
        raise CircuitSpecError(
            f"{what} is {size:,} bytes, larger than the {limit:,}-byte limit", file=file, line=1, col=1
        )
    data = path.read_bytes()
    if not data.strip():
        raise CircuitSpecError(f"{what} is empty", file=file, line=1, col=1)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise CircuitSpecError(
            f"{what} is not UTF-8 text (bad byte at offset {exc.start})", file=file, line=line, col=1
        ) from None
    for number, content in enumerate(text.splitlines(), start=1):
        bad = next((c for c in content if (ord(c) < 32 and c != "\t") or c == "\x7f" or c == "\ufffe"), None)
        if bad is not None:
            raise CircuitSpecError(
                f"{what} contains a control character {bad!r}; is it binary?",
                file=file,
                line=number,
                col=content.index(bad) + 1,
            )
    return text.lstrip("\ufeff")


def _required_slots(data: DataSpec) -> dict[str, list[str]]:
    """Template id → slots its text, answers and corruptions read from a row."""
    needed: dict[str, list[str]] = {}
    for template in data.templates:
        patterns = [p for p in (template.text, template.desired, template.undesired, template.reference) if p]
        slots: list[str] = []
        for corruption in (template.corrupt, data.corrupt):
            if corruption is not None:
                patterns += list(corruption.set.values())
                patterns += [p for p in (corruption.desired, corruption.undesired) if p]
                slots += corruption.shuffle
        for pattern in patterns:
            slots += slots_of(pattern)
        needed[template.id] = list(dict.fromkeys(slots))
    return needed


def load_rows(
    data_spec: DataSpec, base_dir: str | Path, *, hypothesis: Locates | None = None
) -> list[dict[str, str]]:
    """The data rows: inline ``rows`` or a JSONL ``file`` (relative to ``base_dir``).

    Each row must be an object of strings holding every slot any template reads; errors name
    ``file:line`` of the JSONL file, or the YAML line of an inline row when ``hypothesis`` is given.
    """
    if data_spec.rows is not None:
        rows = [dict(r) for r in data_spec.rows]
        lines = list(range(1, len(rows) + 1))  # without the YAML, name the row by its number
        source = "data.rows"
        if hypothesis is not None:
            _check_inline_slots(data_spec, rows, hypothesis)
    else:
        assert data_spec.file is not None
        path = Path(data_spec.file)
        path = path if path.is_absolute() else Path(base_dir) / path
        source = str(path)
        rows, lines = _jsonl_rows(read_text(path, MAX_ROWS_BYTES, "data file"), source)
    for template_id, slots in _required_slots(data_spec).items():
        for row, number in zip(rows, lines, strict=True):
            missing = [s for s in slots if s not in row]
            if missing:
                raise CircuitSpecError(_lacks(missing[0], template_id, row), file=source, line=number, col=1)
    return rows


def _lacks(slot: str, template_id: str, row: dict[str, str]) -> str:
    """The message for a row without a slot its template reads."""
    has = ", ".join(sorted(row)) or "nothing"
    return f"row lacks slot '{slot}' that template '{template_id}' uses (row has: {has})"


def _check_inline_slots(data_spec: DataSpec, rows: list[dict[str, str]], hypothesis: Locates) -> None:
    """Point at the YAML line of the first inline row that lacks a slot a template reads."""
    for template_id, slots in _required_slots(data_spec).items():
        for index, row in enumerate(rows):
            missing = [s for s in slots if s not in row]
            if missing:
                raise hypothesis.error(_lacks(missing[0], template_id, row), ("data", "rows", index))


def _jsonl_rows(text: str, source: str) -> tuple[list[dict[str, str]], list[int]]:
    """Rows of a JSONL file and their line numbers; each must be an object of strings."""
    rows: list[dict[str, str]] = []
    lines: list[int] = []
    for number, content in enumerate(text.splitlines(), start=1):
        if not content.strip():
            continue
        try:
            row = json.loads(content)
        except json.JSONDecodeError as exc:
            raise CircuitSpecError(
                f"invalid JSON: {exc.msg}", file=source, line=number, col=exc.colno
            ) from None
        if not isinstance(row, dict):
            raise CircuitSpecError(
                f"a row must be a JSON object of slot values, got {type(row).__name__}",
                file=source,
                line=number,
                col=1,
            )
        bad = [k for k, v in row.items() if not isinstance(v, str)]
        if bad:
            raise CircuitSpecError(
                f"slot '{bad[0]}' must be a string, got {type(row[bad[0]]).__name__}",
                file=source,
                line=number,
                col=1,
            )
        rows.append(row)
        lines.append(number)
    if not rows:
        raise CircuitSpecError("data file has no rows", file=source, line=1, col=1)
    return rows, lines
