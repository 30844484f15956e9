"""Which plots a claim gets, as plain data (the JSON report stores it; ``plots.py`` draws it).

Each plot is a dict with a ``type``:

- ``bars``: labelled estimates with CI error bars (per target, per layer, or the claim's estimate);
- ``sweep``: estimates over a numeric sweep variable (α) with a CI band;
- ``heatmap``: a layer × head grid (a :class:`~circuitspec.measurement.HeadGrid` payload);
- ``attention``: an attention pattern over positions (an :class:`AttentionPattern` payload);
- ``bars`` with ``per_target``: each target's own mean (a :class:`TargetValues` payload);
- ``baseline_histogram``: the random-circuit statistics with the observed value;
- ``runs``: mean clean / corrupted / intervened metric with CIs;
- ``distribution``: a histogram of the per-prompt ``value`` with the estimate's CI.

CIs computed here (per-target and per-run means) are normal approximations, labelled as such;
the claim's own CI always comes from the statistics layer.
"""

from __future__ import annotations

import math
from statistics import NormalDist
from typing import Any

import numpy as np

from circuitspec.claims import REGISTRY
from circuitspec.measurement import AttentionPattern, HeadGrid, Measurement, PlotPayload, TargetValues
from circuitspec.stats.outcome import ClaimOutcome

from .axis_labels import statistic_label, value_label
from .screen_plots import screen_plot
from .steering_plots import random_directions_plot

__all__ = [
    "claim_plots",
    "expectation_guide",
    "mean_ci",
    "payload_plot",
    "point_statistic",
    "statistic_label",
    "value_label",
]


def _bars(kind: str) -> bool:
    """Whether the kind's points and estimate read as bars (per layer, per target), from the registry."""
    entry = REGISTRY.get(kind)
    return entry is not None and entry.bars


_RUN_ARRAYS = ("clean", "corrupt", "intervened")
_VALUE_SCALE = ("mean", "median", "effect")  # statistics on the per-prompt values' own axis
_HISTOGRAM_BINS = 30


def mean_ci(values: Any, level: float = 0.95) -> tuple[float, float, float]:
    """Mean and normal-approximation CI of a per-prompt array (NaNs dropped)."""
    x = np.asarray(values, dtype=float).ravel()
    x = x[np.isfinite(x)]
    if x.size == 0:
        return math.nan, math.nan, math.nan
    mean = float(x.mean())
    if x.size < 2:
        return mean, mean, mean
    half = NormalDist().inv_cdf(0.5 + level / 2) * float(x.std(ddof=1)) / math.sqrt(x.size)
    return mean, mean - half, mean + half


def expectation_guide(expect: str | None, statistic: str) -> dict[str, Any] | None:
    """A line or band to draw for the expectation: ``{"threshold": t}`` or ``{"margin": m}``."""
    if not expect:
        return None
    try:
        from circuitspec.spec.expectations import parse_expectation

        parsed = parse_expectation(expect)
    except Exception:  # an unparsable expectation just gets no guide line
        return None
    if parsed.form == "compare" and parsed.threshold is not None and parsed.statistic == statistic:
        return {"threshold": parsed.threshold, "op": parsed.op}
    if parsed.form == "equivalence" and parsed.threshold is not None:
        return {"margin": parsed.threshold}
    return None


def point_statistic(outcome: ClaimOutcome, expect: str | None) -> str:
    """What each sweep point's estimate is: a trend's statistic (its rho is about the points)."""
    try:
        from circuitspec.spec.expectations import parse_expectation

        return parse_expectation(expect or outcome.expectation).statistic
    except Exception:  # unparsable: fall back to the claim's statistic name
        return outcome.statistic


def _points_plot(outcome: ClaimOutcome, variable: str | None, statistic: str) -> dict[str, Any]:
    xs = [p.x for p in outcome.points]
    numeric = all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in xs)
    plot_type = "bars" if _bars(outcome.kind) or not numeric else "sweep"
    return {
        "type": plot_type,
        "title": f"{statistic} by {variable or 'point'}",
        "xlabel": variable or "point",
        "ylabel": statistic,
        "labels" if plot_type == "bars" else "x": [x if numeric else str(x) for x in xs],
        "estimates": [p.estimate for p in outcome.points],
        "low": [p.ci.low if p.ci else None for p in outcome.points],
        "high": [p.ci.high if p.ci else None for p in outcome.points],
        "ci_level": next((p.ci.level for p in outcome.points if p.ci), None),
        "ci_method": next((p.ci.method for p in outcome.points if p.ci), None),
        "log_x": plot_type == "sweep" and _wants_log(xs),
    }


def _wants_log(xs: list[Any]) -> bool:
    """α sweeps like ±2^k read better on a symmetric-log axis."""
    values = sorted(abs(float(x)) for x in xs if float(x) != 0)
    return len(values) >= 3 and values[-1] / values[0] >= 16


def _per_target_plot(per_target: dict[str, Any], level: float, title: str) -> dict[str, Any]:
    labels, estimates, lows, highs = [], [], [], []
    for label, values in per_target.items():
        mean, low, high = mean_ci(values, level)
        labels.append(str(label))
        estimates.append(mean)
        lows.append(low)
        highs.append(high)
    return {
        "type": "bars",
        "title": title,
        "xlabel": "target",
        "ylabel": "mean per prompt",
        "labels": labels,
        "estimates": estimates,
        "low": lows,
        "high": highs,
        "ci_level": level,
        "ci_method": "normal",
        "per_target": True,
    }


def _estimate_bar(outcome: ClaimOutcome, targets: list[str]) -> dict[str, Any]:
    ci = outcome.ci
    return {
        "type": "bars",
        "title": f"{outcome.statistic} of {' + '.join(targets) or outcome.claim_id}",
        "xlabel": "targets",
        "ylabel": outcome.statistic,
        "labels": [" + ".join(targets) or outcome.claim_id],
        "estimates": [outcome.estimate],
        "low": [ci.low if ci else None],
        "high": [ci.high if ci else None],
        "ci_level": ci.level if ci else None,
        "ci_method": ci.method if ci else None,
    }


def _baseline_plot(outcome: ClaimOutcome, baseline: np.ndarray) -> dict[str, Any]:
    values = np.asarray(baseline, dtype=float).ravel()
    finite = values[np.isfinite(values)]
    observed = outcome.details.get("observed", outcome.estimate)
    span = finite if observed is None or not np.isfinite(observed) else np.append(finite, observed)
    counts, edges = np.histogram(finite, bins=_HISTOGRAM_BINS, range=_range(span))
    drawn = "random directions" if outcome.kind == "steering" else "random circuits"  # steering: same norm
    return {
        "type": "baseline_histogram",
        "title": f"{outcome.statistic} of {finite.size} {drawn} vs the hypothesis",
        "xlabel": outcome.statistic,
        "ylabel": drawn,
        "edges": edges.tolist(),
        "counts": counts.tolist(),
        "observed": observed,
        "n": int(values.size),
        "baseline_mean": float(finite.mean()) if finite.size else None,
        "percentile": outcome.percentile,
        "p_value": outcome.p_value,
    }


def _range(values: np.ndarray) -> tuple[float, float] | None:
    if values.size == 0:
        return None
    low, high = float(values.min()), float(values.max())
    return (low - 0.5, high + 0.5) if low == high else (low, high)


def _runs_plot(measurement: Measurement, level: float) -> dict[str, Any]:
    stats = [mean_ci(measurement.arrays[name], level) for name in _RUN_ARRAYS]
    return {
        "type": "runs",
        "title": "mean metric per run",
        "xlabel": "run",
        "ylabel": "metric",
        "labels": list(_RUN_ARRAYS),
        "estimates": [s[0] for s in stats],
        "low": [s[1] for s in stats],
        "high": [s[2] for s in stats],
        "ci_level": level,
        "ci_method": "normal",
    }


def _distribution_plot(outcome: ClaimOutcome, values: np.ndarray) -> dict[str, Any]:
    x = np.asarray(values, dtype=float).ravel()
    finite = x[np.isfinite(x)]
    counts, edges = np.histogram(
        finite, bins=min(_HISTOGRAM_BINS, max(5, finite.size // 3)), range=_range(finite)
    )
    # a success rate or recovered fraction is not on the values' axis: no estimate line for them
    ci = outcome.ci if outcome.statistic in _VALUE_SCALE else None
    return {
        "type": "distribution",
        "title": f"per-prompt value (n={finite.size})",
        "xlabel": "value",
        "ylabel": "prompts",
        "edges": edges.tolist(),
        "counts": counts.tolist(),
        "estimate": outcome.estimate if outcome.statistic in _VALUE_SCALE else None,
        "low": ci.low if ci else None,
        "high": ci.high if ci else None,
        "statistic": outcome.statistic,
    }


def _main_plot(
    outcome: ClaimOutcome, measurement: Measurement, targets: list[str], level: float
) -> list[dict[str, Any]]:
    """The claim's own estimate when it has no sweep: bars, the three runs, or its distribution."""
    arrays = measurement.arrays
    if _bars(outcome.kind):
        return [_estimate_bar(outcome, targets)]
    if all(name in arrays for name in _RUN_ARRAYS):
        return [_runs_plot(measurement, level)]
    if "value" in arrays and np.isfinite(np.asarray(arrays["value"], dtype=float)).any():
        return [_distribution_plot(outcome, arrays["value"])]
    return []


def claim_plots(
    outcome: ClaimOutcome,
    measurement: Measurement | None,
    targets: list[str] | None = None,
    expect: str | None = None,
    spec: Any = None,
) -> list[dict[str, Any]]:
    """The plots that fit one claim, as data; the first is its main plot. ``spec``: the claim's spec
    (its ``metric`` and ``direction`` name the axes; without it, the logit difference is assumed)."""
    targets = list(targets or [])
    level = outcome.ci.level if outcome.ci else 0.95
    plots: list[dict[str, Any]] = []
    if outcome.kind == "screen":  # a grid of cells: one heatmap, not a bar per cell
        plots += [p for p in [screen_plot(outcome)] if p is not None]
    elif outcome.points:
        variable = measurement.sweep_variable if measurement is not None else None
        plots.append(_points_plot(outcome, variable, point_statistic(outcome, expect)))
    if not plots and measurement is not None:
        plots += _main_plot(outcome, measurement, targets, level)
    if not plots and outcome.estimate is not None and np.isfinite(outcome.estimate):
        plots.append(_estimate_bar(outcome, targets))
    if measurement is not None:
        plots += [payload_plot(payload, level) for payload in measurement.plots]
    if measurement is not None and measurement.random_baseline is not None:
        plots.append(_baseline_plot(outcome, measurement.random_baseline))
    elif measurement is not None and outcome.statistic == "percentile":  # steering's random directions
        plots += [p for p in [random_directions_plot(measurement)] if p is not None]
    guide = expectation_guide(expect, outcome.statistic)
    for plot in plots:
        kinds = ("bars", "sweep", "distribution", "baseline_histogram")
        on_values = plot["type"] != "distribution" or outcome.statistic in _VALUE_SCALE
        if guide and plot["type"] in kinds and not plot.get("per_target") and on_values:
            plot["guide"] = guide
        elif guide and plot["type"] == "runs" and measurement is not None:
            moved = _runs_guide(guide, outcome.statistic, measurement)
            if moved is not None:
                plot["guide"] = moved
        _axis_labels(plot, outcome, spec)
    return plots


def _runs_guide(guide: dict[str, Any], statistic: str, measurement: Measurement) -> dict[str, Any] | None:
    """The expectation moved onto the intervened run's bar: where its mean must lie.

    ``mean``/``effect`` of ``value`` = intervened − base (the base found in the data, not assumed:
    clean or corrupted) is met when mean(intervened) op mean(base) + t; ``recovered`` ≥ t when
    mean(intervened) op mean(corrupt) + t · (mean(clean) − mean(corrupt)). Other statistics: None.
    """
    t = guide.get("threshold")
    arrays = {k: np.asarray(v, dtype=float) for k, v in measurement.arrays.items()}
    if t is None or any(name not in arrays for name in _RUN_ARRAYS):
        return None
    means = {name: float(np.nanmean(arrays[name])) for name in _RUN_ARRAYS}
    op, value, intervened = guide.get("op", ""), arrays.get("value"), arrays["intervened"]
    if statistic == "recovered":
        level = means["corrupt"] + t * (means["clean"] - means["corrupt"])
        label = f"expected: intervened {op} corrupted + {t:g}·(clean − corrupted)"
        return {"threshold": level, "op": op, "bar": 2, "label": label}
    if statistic not in ("mean", "effect") or value is None or value.shape != intervened.shape:
        return None
    for base in ("clean", "corrupt"):
        if np.allclose(value, intervened - arrays[base], equal_nan=True):
            name = "corrupted" if base == "corrupt" else base
            label = f"expected: intervened {op} {name} {'−' if t < 0 else '+'} {abs(t):g}"
            return {"threshold": means[base] + t, "op": op, "bar": 2, "label": label}
    return None


def _axis_labels(plot: dict[str, Any], outcome: ClaimOutcome, spec: Any) -> None:
    """Human axis titles with units (``x_axis``, ``y_axis``, ``value_axis`` for heatmap colours);
    ``xlabel``/``ylabel`` stay the short machine names."""
    kind, kind_type = outcome.kind, plot["type"]
    if kind_type in ("bars", "sweep") and plot.get("per_target"):
        plot["y_axis"] = f"mean {value_label(kind, spec)}"
    elif kind_type in ("bars", "sweep"):
        plot["y_axis"] = statistic_label(str(plot.get("ylabel")), kind, spec)
        if plot.get("xlabel") == "alpha":
            scaled = "the direction added" if kind == "steering" else "the targets' activation"
            plot["x_axis"] = f"α (scale of {scaled})"
    elif kind_type == "runs":
        plot["y_axis"] = f"mean {value_label('behaviour', spec)}"
    elif kind_type == "distribution":
        plot["x_axis"] = value_label(kind, spec)
    elif kind_type == "baseline_histogram":
        plot["x_axis"] = statistic_label(outcome.statistic, kind, spec)
    elif kind_type == "heatmap" and plot.get("of"):  # a screen's cells: the statistic of the kind in `of`
        plot["value_axis"] = statistic_label(plot["cell_statistic"], plot["of"], spec)
    elif kind_type == "heatmap":
        plot["value_axis"] = value_label(kind, spec)
    elif kind_type == "attention":
        plot["value_axis"] = "attention probability"


def payload_plot(payload: PlotPayload, level: float = 0.95) -> dict[str, Any]:
    """One typed plot payload of a measurement as plot data."""
    if isinstance(payload, HeadGrid):
        return {
            "type": "heatmap",
            "title": payload.title,
            "rows": payload.row_labels(),
            "cols": payload.col_labels(),
            "values": np.asarray(payload.values, dtype=float).tolist(),
            "xlabel": "head",
            "ylabel": "layer",
        }
    if isinstance(payload, AttentionPattern):
        return {
            "type": "attention",
            "title": payload.title,
            "tokens": [str(t) for t in payload.tokens],
            "pattern": np.asarray(payload.pattern, dtype=float).tolist(),
        }
    if isinstance(payload, TargetValues):
        return _per_target_plot(payload.values, level, payload.title)
    raise TypeError(f"no plot for payload {type(payload).__name__}")
