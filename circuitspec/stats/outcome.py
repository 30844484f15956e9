"""What the statistics layer says about one claim (consumed by reports and the CLI)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

# Below this a p-value says only "far smaller than anything double precision resolves": printed
# as '< 1e-16' everywhere (reasons, tables, reports), never as a meaningless 9.13e-153. Here, not in
# verdicts.py, so that reports format p-values without importing scipy.stats (`circuitspec diff`).
P_FLOOR = 1e-16

__all__ = ["ClaimOutcome", "Interval", "PointOutcome", "Verdict"]

# "error": the claim could not be measured (an engine exception, NaN/Inf, a missing array) —
# never a fail, which says the hypothesis is wrong.
Verdict = Literal["pass", "fail", "inconclusive", "error"]


@dataclass
class Interval:
    """A confidence interval at ``level`` (after any family-wise adjustment).

    ``method``: 'bootstrap-t', 'Student t', 'Wilson', 'Hettmansperger-Sheather', 'Fieller' (see
    :mod:`.intervals`), 'BCa' / 'percentile' (trend ρ and rank slope) or 'degenerate' (no spread).
    """

    low: float
    high: float
    level: float
    method: str


@dataclass
class PointOutcome:
    """The statistic at one sweep point (α, layer, ...), for plots with CI bands."""

    x: float | int | str
    estimate: float
    ci: Interval | None


@dataclass
class ClaimOutcome:
    """A claim's statistic, its interval, its p-values and the verdict, with the reason."""

    claim_id: str
    kind: str
    expectation: str
    statistic: str  # which statistic the expectation is about ('mean', 'recovered', 'rho', ...)
    estimate: float | None
    ci: Interval | None
    verdict: Verdict
    reason: str  # one sentence a person can read: why pass / fail / inconclusive
    n_prompts: int
    p_value: float | None = None  # raw (random-baseline empirical p, or a test's p)
    p_adjusted: float | None = None  # after Holm / BH across the file
    percentile: float | None = None  # the circuit's percentile among random circuits
    points: list[PointOutcome] = field(default_factory=list)  # sweeps
    details: dict = field(default_factory=dict)  # extra numbers (baseline mean, margins, ...)
