"""Number and interval formatting shared by the Markdown, HTML and terminal reports."""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping, Sequence
from typing import Any

from circuitspec.stats.outcome import P_FLOOR, ClaimOutcome, Interval

__all__ = [
    "VERDICTS",
    "VERDICT_COLOURS",
    "VERDICT_SYMBOLS",
    "detail_value",
    "fmt",
    "fmt_ci",
    "fmt_detail",
    "fmt_level",
    "fmt_p",
    "fmt_pvalue",
    "tally",
]

VERDICTS = ("pass", "fail", "inconclusive", "error")
# an error (the claim could not be measured) is purple and '!': it says nothing about the hypothesis
VERDICT_COLOURS = {"pass": "#1e7d36", "fail": "#b3261e", "inconclusive": "#a86b00", "error": "#6f42c1"}
VERDICT_SYMBOLS = {"pass": "✔", "fail": "✘", "inconclusive": "?", "error": "!"}


def fmt(value: float | int | None, digits: int = 4) -> str:
    """A number in ``digits`` significant digits; '—' for missing, 'NaN'/'±inf' spelled out."""
    if value is None:
        return "—"
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    value = float(value)
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    return f"{value:.{digits}g}"


def fmt_ci(ci: Interval | None) -> str:
    """'[low, high]' (level, method are shown elsewhere)."""
    return "—" if ci is None else f"[{fmt(ci.low)}, {fmt(ci.high)}]"


def fmt_pvalue(p: float | None) -> str:
    """A p-value in 3 significant digits; '< 1e-16' below what double precision resolves."""
    if p is not None and not math.isnan(p) and p < P_FLOOR:
        return f"< {P_FLOOR:g}"
    return fmt(p, 3)


def fmt_p(outcome: ClaimOutcome) -> str:
    """The adjusted p-value, else the raw one, else '—'."""
    p = outcome.p_adjusted if outcome.p_adjusted is not None else outcome.p_value
    return fmt_pvalue(p)


def fmt_level(outcome: ClaimOutcome) -> str:
    """The interval's level after the family-wise adjustment, with the family: '99.8% (holm, 33 claims)'."""
    if outcome.ci is None:
        return "—"
    level = f"{outcome.ci.level * 100:.4g}%"
    family, size = outcome.details.get("family"), outcome.details.get("family_size")
    return f"{level} ({family}, {size} claims)" if family and size else level


def _is_p_value(key: str) -> bool:
    return key in ("p", "p_value", "p_adjusted") or key.endswith(("_p", "_p_adjusted"))


def _is_number(value: object) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def fmt_detail(key: str, value: object) -> str:
    """A details entry for people: p-values via :func:`fmt_pvalue`, numbers via :func:`fmt`,
    lists joined with ', ', nested mappings as 'k = v; …' (never a Python repr)."""
    if isinstance(value, Mapping):
        return "{" + "; ".join(f"{k} = {fmt_detail(str(k), v)}" for k, v in value.items()) + "}"
    if isinstance(value, (list, tuple)):
        return ", ".join(fmt_detail(key, v) for v in value) or "—"
    if _is_number(value):
        number = int(value) if isinstance(value, numbers.Integral) else float(value)  # type: ignore[arg-type]
        return fmt_pvalue(float(number)) if _is_p_value(key) else fmt(number)
    return "—" if value is None else str(value)


def detail_value(key: str, value: object) -> str | list[tuple[str, Any]]:
    """A details entry as text, or (for a mapping, or a list holding mappings) as nested
    ``(key, value)`` rows the HTML report draws as a small table."""
    if isinstance(value, Mapping):
        return [(str(k), detail_value(str(k), v)) for k, v in value.items()]
    if isinstance(value, (list, tuple)) and any(isinstance(v, (Mapping, list, tuple)) for v in value):
        return [(str(i + 1), detail_value(key, v)) for i, v in enumerate(value)]
    return fmt_detail(key, value)


def tally(verdicts: Sequence[str]) -> dict[str, int]:
    """How many claims got each verdict (every verdict present, in :data:`VERDICTS` order)."""
    return {v: verdicts.count(v) for v in VERDICTS}
