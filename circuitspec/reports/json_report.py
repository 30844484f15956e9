"""``report.json``: a versioned, deterministic record of one verification.

Everything outside the top-level ``"timings"`` key is byte-identical across two runs with the
same seed: keys are sorted, floats are rounded to :data:`SIGNIFICANT_DIGITS` significant digits,
NaN/±Inf become ``null`` with an entry in ``"notes"``, and no clock time appears elsewhere.
"""

from __future__ import annotations

import datetime as _dt
import json
import math
from dataclasses import asdict, is_dataclass
from pathlib import Path
from typing import Any

import numpy as np

from circuitspec.measurement import Measurement
from circuitspec.stats.outcome import ClaimOutcome

from .model import ReportInput
from .plotdata import claim_plots

__all__ = [
    "REPORT_SCHEMA_VERSION",
    "SIGNIFICANT_DIGITS",
    "build_report_dict",
    "claim_spec_fields",
    "jsonable",
    "render_json",
]

REPORT_SCHEMA_VERSION = 1
SIGNIFICANT_DIGITS = 10


def _round(value: float) -> float:
    rounded = float(f"{value:.{SIGNIFICANT_DIGITS}g}")
    return 0.0 if rounded == 0 else rounded  # no '-0.0'


def jsonable(obj: Any, notes: list[str], where: str = "$") -> Any:
    """``obj`` as plain JSON types: numpy → Python, floats rounded, non-finite → None (noted)."""
    if isinstance(obj, (bool, np.bool_)):
        return bool(obj)
    if isinstance(obj, (int, np.integer)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        value = float(obj)
        if math.isfinite(value):
            return _round(value)
        notes.append(f"{where}: {value} written as null")
        return None
    if obj is None or isinstance(obj, str):
        return obj
    if isinstance(obj, Path):
        return str(obj)
    if isinstance(obj, np.ndarray):
        return jsonable(obj.tolist(), notes, where)
    if is_dataclass(obj) and not isinstance(obj, type):
        return jsonable(asdict(obj), notes, where)
    if isinstance(obj, dict):
        return {str(k): jsonable(v, notes, f"{where}.{k}") for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [jsonable(v, notes, f"{where}[{i}]") for i, v in enumerate(obj)]
    if hasattr(obj, "model_dump"):  # pydantic
        return jsonable(obj.model_dump(mode="json"), notes, where)
    return str(obj)


def claim_spec_fields(spec: Any) -> dict[str, Any]:
    """The parts of a claim spec a report shows (works with any object carrying the fields)."""
    if spec is None:
        return {"targets": [], "description": "", "confidence": None, "expect": None}
    return {
        "targets": [str(t) for t in getattr(spec, "targets", []) or []],
        "description": str(getattr(spec, "description", "") or ""),
        "confidence": getattr(spec, "confidence", None),
        "expect": getattr(spec, "expect", None),
    }


def _array_summary(values: Any) -> dict[str, Any]:
    x = np.asarray(values, dtype=float).ravel()
    finite = x[np.isfinite(x)]
    return {
        "n": int(x.size),
        "mean": float(finite.mean()) if finite.size else None,
        "std": float(finite.std(ddof=1)) if finite.size > 1 else None,
        "min": float(finite.min()) if finite.size else None,
        "max": float(finite.max()) if finite.size else None,
        "values": x.tolist(),
    }


def _claim_record(
    outcome: ClaimOutcome, measurement: Measurement | None, spec: Any, correction: str
) -> dict[str, Any]:
    fields = claim_spec_fields(spec)
    ci = outcome.ci
    return {
        "id": outcome.claim_id,
        "kind": outcome.kind,
        "description": fields["description"],
        "targets": fields["targets"],
        "expectation": outcome.expectation,
        "confidence": fields["confidence"],
        "statistic": outcome.statistic,
        "estimate": outcome.estimate,
        "ci": None
        if ci is None
        else {"low": ci.low, "high": ci.high, "level": ci.level, "method": ci.method},
        "p_value": {"raw": outcome.p_value, "adjusted": outcome.p_adjusted, "adjustment": correction},
        "percentile": outcome.percentile,
        "verdict": outcome.verdict,
        "reason": outcome.reason,
        "n_prompts": outcome.n_prompts,
        "error": measurement.error if measurement is not None else None,
        "details": outcome.details,
        "points": [
            {
                "x": p.x,
                "estimate": p.estimate,
                "ci": None if p.ci is None else {"low": p.ci.low, "high": p.ci.high, "level": p.ci.level},
            }
            for p in outcome.points
        ],
        "sweep_variable": measurement.sweep_variable if measurement is not None else None,
        "arrays": {}
        if measurement is None
        else {name: _array_summary(values) for name, values in sorted(measurement.arrays.items())},
        "plots": claim_plots(
            outcome, measurement, fields["targets"], fields["expect"] or outcome.expectation, spec
        ),
    }


def _timings(report_input: ReportInput) -> dict[str, Any]:
    per_claim: dict[str, Any] = {}
    for outcome in report_input.outcomes:
        measurement = report_input.measurements.get(outcome.claim_id)
        cost = measurement.cost if measurement is not None else None
        per_claim[outcome.claim_id] = {
            "forward_passes": cost.forward_passes if cost else 0,
            "tokens": cost.tokens if cost else 0,
            "seconds": cost.seconds if cost else 0.0,
        }
    return {
        "generated_at": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        "total_seconds": report_input.total_seconds,
        "forward_passes": sum(c["forward_passes"] for c in per_claim.values()),
        "tokens": sum(c["tokens"] for c in per_claim.values()),
        "claim_seconds": sum(c["seconds"] for c in per_claim.values()),
        "claims": per_claim,
    }


def build_report_dict(report_input: ReportInput) -> dict[str, Any]:
    """The whole report as JSON-ready data (floats rounded, non-finite values noted)."""
    notes: list[str] = []
    verdicts = [o.verdict for o in report_input.outcomes]
    claims = [
        _claim_record(
            outcome,
            report_input.measurements.get(outcome.claim_id),
            report_input.claims.get(outcome.claim_id),
            report_input.multiple_comparisons,
        )
        for outcome in report_input.outcomes
    ]
    body = {
        "schema_version": REPORT_SCHEMA_VERSION,
        "hypothesis": {
            "name": report_input.hypothesis_name,
            "path": report_input.hypothesis_path,
            "sha256": report_input.hypothesis_sha256,
            "description": report_input.description,
        },
        "model": report_input.model,
        "checkpoint": report_input.checkpoint,
        "packages": report_input.versions(),
        "seed": report_input.seed,
        "multiple_comparisons": report_input.multiple_comparisons,
        "split": report_input.split or None,  # per claim: claims[*].details.split
        "summary": {
            "n_claims": len(verdicts),
            "pass": verdicts.count("pass"),
            "fail": verdicts.count("fail"),
            "inconclusive": verdicts.count("inconclusive"),
            "error": verdicts.count("error"),
            "all_passed": all(v == "pass" for v in verdicts),
        },
        "claims": claims,
        "graph": None
        if report_input.graph_text is None
        else {"format": report_input.graph_format, "text": report_input.graph_text},
        "circuit": report_input.circuit,  # the component graph (graph.components.circuit_dict)
        "prompt_sample": report_input.prompt_sample,  # first prompt per template (engine.prompt_sample)
    }
    data = jsonable(body, notes)
    data["timings"] = jsonable(_timings(report_input), notes, "$.timings")
    data["notes"] = [n for n in notes if not n.startswith("$.timings")]
    return data


def render_json(report_input: ReportInput) -> str:
    """``report.json`` text: sorted keys, two-space indent, a final newline."""
    return (
        json.dumps(
            build_report_dict(report_input), indent=2, sort_keys=True, ensure_ascii=False, allow_nan=False
        )
        + "\n"
    )
