"""The contract between the engine (torch) and statistics (numpy): what a claim measured.

The engine turns each claim into a :class:`Measurement` of plain numpy arrays, one value per
prompt, so the statistics layer can resample prompts without knowing about models.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

__all__ = ["Measurement", "RunCost", "SweepPoint"]


@dataclass
class RunCost:
    """What a claim cost to run (kept apart from results: timings vary between runs)."""

    forward_passes: int = 0
    tokens: int = 0
    seconds: float = 0.0


@dataclass
class SweepPoint:
    """One point of a sweep (an α, a layer, a position) with its per-prompt arrays."""

    x: float | int | str
    arrays: dict[str, np.ndarray]


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
    ``random_baseline`` the claim statistic on each of N random circuits of the same size.
    ``extra`` carries plot data (attention patterns, layer×head grids) as nested lists.
    """

    claim_id: str
    kind: str
    n_prompts: int
    arrays: dict[str, np.ndarray] = field(default_factory=dict)
    sweep: list[SweepPoint] = field(default_factory=list)
    sweep_variable: str | None = None
    random_baseline: np.ndarray | None = None
    extra: dict = field(default_factory=dict)
    cost: RunCost = field(default_factory=RunCost)
    error: str | None = None  # set when the claim could not be measured (reported as failed)
