"""The contract between the engine (torch) and statistics / reports (numpy): what a claim measured.

The engine turns each claim into a :class:`Measurement` of plain numpy arrays, one value per
prompt, so the statistics layer can resample prompts without knowing about models. Plot data
travels as typed payloads (:class:`HeadGrid`, :class:`AttentionPattern`, :class:`TargetValues`)
in ``Measurement.plots``, so the engine and the reports agree on their shape by construction.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

__all__ = [
    "AttentionPattern",
    "AttentionRow",
    "HeadGrid",
    "Measurement",
    "PlotPayload",
    "RunCost",
    "SweepPoint",
    "TargetValues",
]


@dataclass
class RunCost:
    """What a claim cost to run (kept apart from results: timings vary between runs)."""

    forward_passes: int = 0
    tokens: int = 0
    seconds: float = 0.0
    layer_passes: float = 0.0  # full-pass equivalents: a pass from block L of N counts (N - L) / N


@dataclass
class SweepPoint:
    """One point of a sweep (an α, a layer, a position) with its per-prompt arrays."""

    x: float | int | str
    arrays: dict[str, np.ndarray]


@dataclass(frozen=True)
class HeadGrid:
    """A layer × head grid of per-head means (e.g. every head's direct logit attribution)."""

    values: list[list[float]]  # [layer][head]
    title: str = "layer × head"
    rows: list[str] = field(default_factory=list)  # default: L0, L1, ...
    cols: list[str] = field(default_factory=list)  # default: H0, H1, ...

    def row_labels(self) -> list[str]:
        return self.rows or [f"L{i}" for i in range(len(self.values))]

    def col_labels(self) -> list[str]:
        width = len(self.values[0]) if self.values else 0
        return self.cols or [f"H{j}" for j in range(width)]


@dataclass(frozen=True)
class AttentionPattern:
    """One head's attention pattern (query rows × key columns) with a label per position."""

    tokens: list[str]
    pattern: list[list[float]]  # [query][key]
    title: str = "attention pattern"


@dataclass(frozen=True)
class TargetValues:
    """Per-prompt values of each target on its own (e.g. each component's attribution)."""

    values: dict[str, np.ndarray]
    title: str = "mean per target"


PlotPayload = HeadGrid | AttentionPattern | TargetValues


@dataclass(frozen=True)
class AttentionRow:
    """One head's attention from one query position over one prompt's tokens (a report's attention view).

    Kept for a few prompts per attention claim only (rows, not whole patterns), so it costs no pass:
    the probabilities are read from the shared clean run the claim already cached.
    """

    prompt: int  # index into the claim's prompts (aligned with ``Measurement.prompt_labels``)
    head: str  # e.g. "L0H0"
    query: int  # the query position the probabilities are read from
    tokens: list[str]  # the prompt's tokens, decoded one by one
    probs: list[float]  # P(query attends to each token), aligned with ``tokens``
    roles: dict[str, int] = field(default_factory=dict)  # role → position in this prompt ("end" included)


@dataclass
class Measurement:
    """Per-prompt arrays for one claim.

    Array names (each shape ``[n_prompts]``, aligned by prompt so paired resampling works):

    - ``value``: the claim's primary per-prompt quantity (attribution, attention probability,
      intervened − clean metric, ...). ``mean``/``median``/``effect`` are taken from it.
    - ``clean``, ``corrupt``, ``intervened``: metric values on the clean run, the baseline run
      (corrupted, fully ablated, or random-scrubbed) and the intervened run;
      ``recovered = (mean(intervened) − mean(corrupt)) / (mean(clean) − mean(corrupt))`` and
      ``success_rate = mean(intervened > 0)``.
    - ``interaction`` for scaling claims with ``interaction: true``.

    ``sweep`` holds one :class:`SweepPoint` per x for sweeps (scaling α, logit-lens layer);
    ``random_baseline`` the claim statistic on each of N random circuits of the same size;
    ``plots`` the typed plot payloads the reports draw; ``extra`` plain notes (counts, the reason
    a random baseline is unavailable, ...; generation claims' texts under ``"generated"``, steering
    claims' random-direction means under ``"random_direction_means"``, both drawn by the reports);
    ``seed`` the seed the claim's resampling and random circuits used. ``prompt_labels`` names each
    prompt (its text), aligned with the per-prompt arrays, so a report can show which prompts gave
    the extreme values;
    ``attention_rows`` holds an attention claim's view of a few prompts (:class:`AttentionRow`).
    """

    claim_id: str
    kind: str
    n_prompts: int
    arrays: dict[str, np.ndarray] = field(default_factory=dict)
    sweep: list[SweepPoint] = field(default_factory=list)
    sweep_variable: str | None = None
    random_baseline: np.ndarray | None = None
    plots: list[PlotPayload] = field(default_factory=list)
    extra: dict = field(default_factory=dict)
    cost: RunCost = field(default_factory=RunCost)
    seed: int | None = None
    error: str | None = None  # set when the claim could not be measured (an "error" verdict, never a fail)
    prompt_labels: list[str] = field(default_factory=list)  # per prompt, aligned with ``arrays``
    attention_rows: list[AttentionRow] = field(default_factory=list)
