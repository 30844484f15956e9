"""JUnit XML: one testcase per claim; fail (and inconclusive unless allowed) is a failure."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from circuitspec.reports import write_junit
from tests.helpers.report_sample import sample_report_input


def _cases(root):
    return {case.get("name"): case for case in root.iter("testcase")}


def test_junit_parses_with_one_case_per_claim(tmp_path):
    outcomes = sample_report_input().outcomes
    path = write_junit(outcomes, tmp_path / "out" / "junit.xml", "ioi_sample", allow_inconclusive=False)
    root = ET.parse(path).getroot()
    suite = root.find("testsuite")
    assert suite is not None and suite.get("name") == "ioi_sample"
    assert (suite.get("tests"), suite.get("failures"), suite.get("skipped"), suite.get("errors")) == (
        "8",
        "4",
        "0",
        "0",
    )
    cases = _cases(root)
    assert list(cases) == [o.claim_id for o in outcomes]
    for outcome in outcomes:
        case = cases[outcome.claim_id]
        assert case.get("classname") == f"ioi_sample.{outcome.kind}"
        failure = case.find("failure")
        if outcome.verdict == "pass":
            assert list(case) == []
        else:
            assert failure is not None and failure.get("type") == outcome.verdict
            assert failure.get("message") == outcome.reason
            assert outcome.expectation in failure.text


def test_allowed_inconclusive_claims_are_skipped(tmp_path):
    outcomes = sample_report_input().outcomes
    root = ET.parse(write_junit(outcomes, tmp_path / "junit.xml", "s", allow_inconclusive=True)).getroot()
    suite = root.find("testsuite")
    assert (suite.get("failures"), suite.get("skipped")) == ("2", "2")
    cases = _cases(root)
    skipped = cases["name_mover_attends"].find("skipped")
    assert skipped is not None and "straddles" in skipped.get("message")
    assert cases["name_mover_attends"].find("failure") is None
    assert cases["faithful"].find("failure") is not None  # a fail stays a failure


def test_special_characters_survive(tmp_path):
    outcome = sample_report_input().outcomes[4]
    outcome.reason = 'CI <0.5 & "0.74"> \u2713 below 0.8'
    root = ET.parse(write_junit([outcome], tmp_path / "j.xml", "a&b")).getroot()
    assert root.find("testsuite").get("name") == "a&b"
    assert root.find("testsuite/testcase/failure").get("message") == outcome.reason
