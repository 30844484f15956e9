"""Number and interval formatting shared by the Markdown, HTML and terminal reports."""

from __future__ import annotations

import math

from circuitspec.stats.outcome import ClaimOutcome, Interval

__all__ = ["VERDICT_COLOURS", "VERDICT_SYMBOLS", "fmt", "fmt_ci", "fmt_p"]

VERDICT_COLOURS = {"pass": "#1e7d36", "fail": "#b3261e", "inconclusive": "#a86b00"}
VERDICT_SYMBOLS = {"pass": "✔", "fail": "✘", "inconclusive": "?"}


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


def fmt_p(outcome: ClaimOutcome) -> str:
    """The adjusted p-value, else the raw one, else '—'."""
    p = outcome.p_adjusted if outcome.p_adjusted is not None else outcome.p_value
    return fmt(p, 3)
