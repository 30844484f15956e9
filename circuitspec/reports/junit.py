"""JUnit XML for CI: one testcase per claim (fail, and inconclusive unless allowed, are failures;
a claim that could not be measured is an ``<error>``, not a failure)."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

from circuitspec.stats.outcome import ClaimOutcome

from .atomic import atomic_write_bytes
from .formatting import fmt, fmt_ci, fmt_level, fmt_pvalue

__all__ = ["junit_xml", "write_junit"]


def _body(outcome: ClaimOutcome) -> str:
    return (
        f"expectation: {outcome.expectation}\nstatistic: {outcome.statistic} = {fmt(outcome.estimate)} "
        f"CI {fmt_ci(outcome.ci)} at {fmt_level(outcome)}"
        f"{f' ({outcome.ci.method})' if outcome.ci else ''}\n"
        f"p (raw/adjusted): {fmt_pvalue(outcome.p_value)} / {fmt_pvalue(outcome.p_adjusted)}\n"
        f"prompts: {outcome.n_prompts}\n{outcome.reason}"
    )


def junit_xml(outcomes: list[ClaimOutcome], suite_name: str, allow_inconclusive: bool = False) -> bytes:
    """The JUnit XML document (UTF-8 bytes) for one hypothesis' claims."""
    failures = sum(
        o.verdict == "fail" or (o.verdict == "inconclusive" and not allow_inconclusive) for o in outcomes
    )
    skipped = sum(o.verdict == "inconclusive" and allow_inconclusive for o in outcomes)
    errors = sum(o.verdict == "error" for o in outcomes)
    counts = {"tests": len(outcomes), "failures": failures, "errors": errors, "skipped": skipped}
    suites = ET.Element("testsuites", {"name": "circuitspec", **{k: str(v) for k, v in counts.items()}})
    suite = ET.SubElement(suites, "testsuite", {"name": suite_name, **{k: str(v) for k, v in counts.items()}})
    for outcome in outcomes:
        case = ET.SubElement(
            suite, "testcase", {"name": outcome.claim_id, "classname": f"{suite_name}.{outcome.kind}"}
        )
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
    outcomes: list[ClaimOutcome], path: str | Path, suite_name: str, allow_inconclusive: bool = False
) -> Path:
    """Write :func:`junit_xml` to ``path`` atomically; returns the path."""
    return atomic_write_bytes(path, junit_xml(outcomes, suite_name, allow_inconclusive))
