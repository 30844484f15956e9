"""The expectation grammar: what a claim says its statistic will do.

Expectations are parsed, never evaluated as code::

    mean < 0                              comparison: <statistic> <op> <number>
    recovered >= 0.8
    success_rate increases with alpha     trend over a sweep (Spearman rho's CI must clear 0)
    mean decreases with layer
    no effect within 0.5                  equivalence (negative control): |mean| < margin
    recovered within ±0.1                 equivalence on any statistic
    percentile >= 0.95                    steering: share of random directions beaten, per prompt
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Literal

__all__ = ["EXPECTATION_GRAMMAR", "STATISTICS", "Expectation", "ExpectationSyntaxError", "parse_expectation"]

STATISTICS = (
    "mean",
    "median",
    "effect",
    "success_rate",
    "recovered",
    "interaction",
    "percentile",
)
OPERATORS = ("<=", ">=", "<", ">", "==")
EXPECTATION_GRAMMAR = (
    "'<statistic> <op> <number>' | '<statistic> increases|decreases with <variable>' | "
    "'no effect within <margin>' | '<statistic> within ±<margin>'; "
    f"statistic one of {', '.join(STATISTICS)}; op one of {' '.join(OPERATORS)}"
)

_NUMBER = r"[-+]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][-+]?[0-9]+)?"
_STAT = r"(?P<stat>[a-z_]+)"
_COMPARE = re.compile(rf"^{_STAT}\s*(?P<op><=|>=|<|>|==)\s*(?P<num>{_NUMBER})$")
_TREND = re.compile(rf"^{_STAT}\s+(?P<dir>increases|decreases)\s+with\s+(?P<var>[a-z_]+)$")
_NO_EFFECT = re.compile(rf"^no\s+effect\s+within\s+(?:±|\+-|\+/-)?\s*(?P<num>{_NUMBER})$")
_WITHIN = re.compile(rf"^{_STAT}\s+within\s+(?:±|\+-|\+/-)\s*(?P<num>{_NUMBER})$")


class ExpectationSyntaxError(ValueError):
    """An expectation string outside :data:`EXPECTATION_GRAMMAR`."""


@dataclass(frozen=True)
class Expectation:
    """A parsed expectation.

    ``form`` is ``compare`` (statistic op threshold), ``trend`` (statistic increases /
    decreases with ``variable``) or ``equivalence`` (|statistic| < margin, held in threshold).
    """

    text: str
    form: Literal["compare", "trend", "equivalence"]
    statistic: str
    op: str | None = None
    threshold: float | None = None
    direction: Literal["increases", "decreases"] | None = None
    variable: str | None = None

    def holds(self, value: float) -> bool:
        """Whether a single value satisfies a compare / equivalence expectation."""
        if self.form == "equivalence":
            assert self.threshold is not None
            return abs(value) < self.threshold
        if self.form != "compare":
            raise TypeError("trend expectations hold on a correlation, not a single value")
        t = self.threshold
        assert t is not None
        return {
            "<": value < t,
            "<=": value <= t,
            ">": value > t,
            ">=": value >= t,
            "==": value == t,
        }[self.op or ""]


def _stat(name: str, text: str) -> str:
    if name not in STATISTICS:
        raise ExpectationSyntaxError(
            f"unknown statistic '{name}' in expectation '{text}' (valid: {', '.join(STATISTICS)})"
        )
    return name


def _number(raw: str, text: str) -> float:
    value = float(raw)
    if not math.isfinite(value):
        raise ExpectationSyntaxError(f"expectation '{text}' needs a finite number")
    return value


def parse_expectation(text: str) -> Expectation:
    """Parse an expectation string; raises :class:`ExpectationSyntaxError`."""
    if not isinstance(text, str):
        raise ExpectationSyntaxError(f"an expectation must be a string, got {type(text).__name__}")
    s = " ".join(text.strip().split())
    if m := _NO_EFFECT.match(s):
        margin = _number(m["num"], text)
        if margin <= 0:
            raise ExpectationSyntaxError(f"the margin in '{text}' must be positive")
        return Expectation(text, "equivalence", "mean", threshold=margin)
    if m := _WITHIN.match(s):
        margin = _number(m["num"], text)
        if margin <= 0:
            raise ExpectationSyntaxError(f"the margin in '{text}' must be positive")
        return Expectation(text, "equivalence", _stat(m["stat"], text), threshold=margin)
    if m := _TREND.match(s):
        return Expectation(
            text,
            "trend",
            _stat(m["stat"], text),
            direction="increases" if m["dir"] == "increases" else "decreases",
            variable=m["var"],
        )
    if m := _COMPARE.match(s):
        return Expectation(
            text, "compare", _stat(m["stat"], text), op=m["op"], threshold=_number(m["num"], text)
        )
    raise ExpectationSyntaxError(f"cannot parse expectation '{text}' (valid: {EXPECTATION_GRAMMAR})")
