"""Data rows of a hypothesis: inline ``rows`` or a JSONL file, each checked against the slots its
templates read; and the bounded UTF-8 read that the hypothesis file shares. Every row remembers where
it was written (:class:`DataRow`), so later errors (an unknown word, a bad prompt) name its line.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

from circuitspec.errors import CircuitSpecError

from .schema import DataSpec
from .templates import slots_of

__all__ = ["MAX_ROWS_BYTES", "DataRow", "load_rows", "read_text"]

MAX_ROWS_BYTES = 64 << 20


class DataRow(dict[str, str]):
    """One data row (slot → value) that knows where it was written: ``file``, ``line``, ``col``
    (the JSONL line, or the YAML line of an inline row; ``line`` None when unknown)."""

    file: str | None = None
    line: int | None = None
    col: int | None = None

    @classmethod
    def at(cls, values: dict[str, str], file: str | None, line: int | None, col: int | None = 1) -> DataRow:
        row = cls(values)
        row.file, row.line, row.col = file, line, col
        return row

    def copy_with(self, values: dict[str, str]) -> DataRow:
        """Other values, the same place (sampling re-creates rows as strings)."""
        return DataRow.at(values, self.file, self.line, self.col)

    @property
    def where(self) -> str:
        """``file:line`` for messages (empty when unknown)."""
        return f"{self.file}:{self.line}" if self.file and self.line is not None else ""


class Locates(Protocol):
    """What :func:`load_rows` needs of a loaded hypothesis: an error located at a YAML path."""

    path: Path

    def error(self, message: str, loc: Sequence[int | str] = ..., *, at_key: bool = ...) -> CircuitSpecError:
        """A :class:`CircuitSpecError` pointing at ``loc`` in the hypothesis file."""

    def locate(self, loc: Sequence[int | str], *, at_key: bool = ...) -> tuple[int, int]:
        """1-based ``(line, col)`` of the YAML node at ``loc``."""


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
) -> list[DataRow]:
    """The data rows: inline ``rows`` or a JSONL ``file`` (relative to ``base_dir``).

    Each row must be an object of strings holding every slot any template reads; errors name
    ``file:line`` of the JSONL file, or the YAML line of an inline row when ``hypothesis`` is given.
    """
    if data_spec.rows is not None:
        rows = [DataRow.at(dict(r), "data.rows", index + 1) for index, r in enumerate(data_spec.rows)]
        if hypothesis is not None:
            for index, row in enumerate(rows):
                row.file = str(hypothesis.path)
                row.line, row.col = hypothesis.locate(("data", "rows", index))
    else:
        assert data_spec.file is not None
        path = Path(data_spec.file)
        path = path if path.is_absolute() else Path(base_dir) / path
        rows = _jsonl_rows(read_text(path, MAX_ROWS_BYTES, "data file"), str(path))
    required = _required_slots(data_spec)
    if hypothesis is not None:
        _check_slots_exist(data_spec, required, rows, hypothesis)
    selects = {template.id: template.selects for template in data_spec.templates}
    for template_id, slots in required.items():
        for row in filter(selects[template_id], rows):
            missing = [s for s in slots if s not in row]
            if missing:
                message = _lacks(missing[0], template_id, row)
                raise CircuitSpecError(message, file=row.file, line=row.line, col=row.col)
    return rows


def _lacks(slot: str, template_id: str, row: dict[str, str]) -> str:
    """The message for a row without a slot its template reads."""
    has = ", ".join(sorted(row)) or "nothing"
    return f"row lacks slot '{slot}' that template '{template_id}' uses (row has: {has})"


def _check_slots_exist(
    data_spec: DataSpec, required: dict[str, list[str]], rows: list[DataRow], hypothesis: Locates
) -> None:
    """A slot that no row has is a typo in the YAML, not in the data: point at what reads it."""
    have = set().union(*(row.keys() for row in rows))
    for index, template in enumerate(data_spec.templates):
        unknown_field = next((field for field in template.where if field not in have), None)
        if unknown_field is not None:
            message = (
                f"template '{template.id}' selects rows by '{unknown_field}', which no data row has "
                f"(rows have: {', '.join(sorted(have)) or 'nothing'})"
            )
            raise hypothesis.error(message, ("data", "templates", index, "where", unknown_field))
    for template_id, slots in required.items():
        unknown = next((slot for slot in slots if slot not in have), None)
        if unknown is not None:
            message = (
                f"template '{template_id}' reads slot '{unknown}', which no data row has "
                f"(rows have: {', '.join(sorted(have)) or 'nothing'})"
            )
            raise hypothesis.error(message, _reader_of(data_spec, template_id, unknown))


def _reader_of(data_spec: DataSpec, template_id: str, slot: str) -> tuple[int | str, ...]:
    """The YAML path of the template field (or corruption) that reads ``slot``."""
    index = next(i for i, t in enumerate(data_spec.templates) if t.id == template_id)
    template = data_spec.templates[index]
    for field in ("text", "desired", "undesired", "reference"):
        if slot in slots_of(getattr(template, field) or ""):
            return ("data", "templates", index, field)
    if template.corrupt is not None:
        return ("data", "templates", index, "corrupt")
    return ("data", "corrupt") if data_spec.corrupt is not None else ("data", "templates", index)


def _jsonl_rows(text: str, source: str) -> list[DataRow]:
    """Rows of a JSONL file with their line numbers; each must be an object of strings."""
    rows: list[DataRow] = []
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
        rows.append(DataRow.at(row, source, number))
    if not rows:
        raise CircuitSpecError("data file has no rows", file=source, line=1, col=1)
    return rows
