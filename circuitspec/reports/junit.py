"""JUnit XML for CI: one testcase per claim (fail, and inconclusive unless allowed, are failures)."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

from circuitspec.stats.outcome import ClaimOutcome

from .atomic import atomic_write_bytes
from .formatting import fmt, fmt_ci

__all__ = ["junit_xml", "write_junit"]


def _body(outcome: ClaimOutcome) -> str:
    return (
        f"expectation: {outcome.expectation}\nstatistic: {outcome.statistic} = {fmt(outcome.estimate)} "
        f"CI {fmt_ci(outcome.ci)}\n"
        f"p (raw/adjusted): {fmt(outcome.p_value, 3)} / {fmt(outcome.p_adjusted, 3)}\n"
        f"prompts: {outcome.n_prompts}\n{outcome.reason}"
    )


def junit_xml(outcomes: list[ClaimOutcome], suite_name: str, allow_inconclusive: bool = False) -> bytes:
    """The JUnit XML document (UTF-8 bytes) for one hypothesis' claims."""
    failures = sum(
        o.verdict == "fail" or (o.verdict == "inconclusive" and not allow_inconclusive) for o in outcomes
    )
    skipped = sum(o.verdict == "inconclusive" and allow_inconclusive for o in outcomes)
    counts = {"tests": len(outcomes), "failures": failures, "errors": 0, "skipped": skipped}
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
        failure = ET.SubElement(case, "failure", {"message": outcome.reason, "type": outcome.verdict})
        failure.text = _body(outcome)
    ET.indent(suites)
    return ET.tostring(suites, encoding="utf-8", xml_declaration=True) + b"\n"


def write_junit(
    outcomes: list[ClaimOutcome], path: str | Path, suite_name: str, allow_inconclusive: bool = False
) -> Path:
    """Write :func:`junit_xml` to ``path`` atomically; returns the path."""
    return atomic_write_bytes(path, junit_xml(outcomes, suite_name, allow_inconclusive))
