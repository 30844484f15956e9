"""The random-direction control of a steering claim judged on its ``percentile``, as plot data.

A steering claim judged on ``effect`` / ``mean`` carries its random directions' mean changes as
``Measurement.random_baseline`` and gets the usual baseline histogram. One judged on ``percentile``
keeps them in ``extra["random_direction_means"]`` (its statistic already is the comparison, in other
units), so this draws them as a ``distribution`` plot on the metric's own axis, with the direction's
mean change as the marked estimate (no expectation guide: the threshold is a share, not a change).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from circuitspec.measurement import Measurement

__all__ = ["random_directions_plot"]

_BINS = 30


def random_directions_plot(measurement: Measurement) -> dict[str, Any] | None:
    """The random directions' mean changes and the direction's own (None when there are none)."""
    means = np.asarray(measurement.extra.get("random_direction_means") or [], dtype=float)
    means = means[np.isfinite(means)]
    value = np.asarray(measurement.arrays.get("value", []), dtype=float)
    if means.size == 0 or value.size == 0:
        return None
    observed = float(np.nanmean(value))
    span = np.append(means, observed)
    low, high = float(span.min()), float(span.max())
    counts, edges = np.histogram(
        means, bins=_BINS, range=(low - 0.5, high + 0.5) if low == high else (low, high)
    )
    return {
        "type": "distribution",
        "title": f"mean change of {means.size} random directions vs the direction",
        "xlabel": "value",
        "ylabel": "random directions",
        "edges": edges.tolist(),
        "counts": counts.tolist(),
        "estimate": observed,
        "low": None,
        "high": None,
        "statistic": "the direction's mean change",
    }
