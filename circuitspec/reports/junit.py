"""JUnit XML for CI: one testcase per claim (fail, and inconclusive unless allowed, are failures;
a claim that could not be measured is an ``<error>``, not a failure).

Each testcase's ``time`` is that claim's own measured seconds (``Measurement.cost.seconds``: its
passes, plus the shared clean / corrupted runs of its prompt set when it was the first claim to read
them); the suite's ``time`` is the whole run (model loading included) when known, else their sum.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Mapping
from pathlib import Path

from circuitspec.stats.outcome import ClaimOutcome

from .atomic import atomic_write_bytes
from .formatting import fmt, fmt_ci, fmt_level, fmt_pvalue

__all__ = ["claim_seconds", "junit_xml", "write_junit"]


def _body(outcome: ClaimOutcome) -> str:
    return (
        f"expectation: {outcome.expectation}\nstatistic: {outcome.statistic} = {fmt(outcome.estimate)} "
        f"CI {fmt_ci(outcome.ci)} at {fmt_level(outcome)}"
        f"{f' ({outcome.ci.method})' if outcome.ci else ''}\n"
        f"p (raw/adjusted): {fmt_pvalue(outcome.p_value)} / {fmt_pvalue(outcome.p_adjusted)}\n"
        f"prompts: {outcome.n_prompts}\n{outcome.reason}"
    )


def _seconds(value: float) -> str:
    """A JUnit ``time`` attribute: seconds with millisecond resolution, never negative."""
    return f"{max(0.0, float(value)):.3f}"


def junit_xml(
    outcomes: list[ClaimOutcome],
    suite_name: str,
    allow_inconclusive: bool = False,
    seconds: Mapping[str, float] | None = None,
    total_seconds: float | None = None,
) -> bytes:
    """The JUnit XML document (UTF-8 bytes) for one hypothesis' claims; ``seconds`` maps claim id to
    its measured seconds (each testcase's ``time``), ``total_seconds`` is the whole run's."""
    seconds = seconds or {}
    failures = sum(
        o.verdict == "fail" or (o.verdict == "inconclusive" and not allow_inconclusive) for o in outcomes
    )
    skipped = sum(o.verdict == "inconclusive" and allow_inconclusive for o in outcomes)
    errors = sum(o.verdict == "error" for o in outcomes)
    counts = {"tests": len(outcomes), "failures": failures, "errors": errors, "skipped": skipped}
    attrs = {k: str(v) for k, v in counts.items()}
    if seconds or total_seconds is not None:
        whole = (
            total_seconds
            if total_seconds is not None
            else sum(seconds.get(o.claim_id, 0.0) for o in outcomes)
        )
        attrs["time"] = _seconds(whole)
    suites = ET.Element("testsuites", {"name": "circuitspec", **attrs})
    suite = ET.SubElement(suites, "testsuite", {"name": suite_name, **attrs})
    for outcome in outcomes:
        case_attrs = {"name": outcome.claim_id, "classname": f"{suite_name}.{outcome.kind}"}
        if outcome.claim_id in seconds:
            case_attrs["time"] = _seconds(seconds[outcome.claim_id])
        case = ET.SubElement(suite, "testcase", case_attrs)
        if outcome.verdict == "pass":
            continue
        if outcome.verdict == "inconclusive" and allow_inconclusive:
            ET.SubElement(case, "skipped", {"message": f"inconclusive: {outcome.reason}"})
            continue
        tag = "error" if outcome.verdict == "error" else "failure"
        failure = ET.SubElement(case, tag, {"message": outcome.reason, "type": outcome.verdict})
        failure.text = _body(outcome)
    ET.indent(suites)
    return ET.tostring(suites, encoding="utf-8", xml_declaration=True) + b"\n"


def write_junit(
    outcomes: list[ClaimOutcome],
    path: str | Path,
    suite_name: str,
    allow_inconclusive: bool = False,
    seconds: Mapping[str, float] | None = None,
    total_seconds: float | None = None,
) -> Path:
    """Write :func:`junit_xml` to ``path`` atomically; returns the path."""
    document = junit_xml(outcomes, suite_name, allow_inconclusive, seconds, total_seconds)
    return atomic_write_bytes(path, document)


def claim_seconds(measurements: Mapping[str, object]) -> dict[str, float]:
    """Each claim's measured seconds (``Measurement.cost.seconds``), for :func:`write_junit`."""
    out: dict[str, float] = {}
    for claim_id, measurement in measurements.items():
        cost = getattr(measurement, "cost", None)
        if cost is not None:
            out[claim_id] = float(cost.seconds)
    return out
