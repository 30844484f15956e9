"""JUnit ``time``: each testcase carries its own claim's measured seconds (``Measurement.cost.seconds``),
the suite the whole run's, so CI does not charge a hypothesis' time to its first claim."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from circuitspec.reports import write_junit
from circuitspec.reports.junit import claim_seconds, junit_xml
from tests.helpers.report_sample import sample_report_input


def test_each_case_carries_its_own_claims_seconds(tmp_path):
    report = sample_report_input(seconds=2.0)
    seconds = claim_seconds(report.measurements)
    assert len(set(seconds.values())) > 3  # the sample's claims cost different times
    root = ET.parse(
        write_junit(report.outcomes, tmp_path / "j.xml", "s", seconds=seconds, total_seconds=42.5)
    ).getroot()
    cases = {case.get("name"): case for case in root.iter("testcase")}
    for claim_id, measurement in report.measurements.items():
        assert float(cases[claim_id].get("time")) == pytest.approx(measurement.cost.seconds, abs=5e-4)
    assert root.get("time") == root.find("testsuite").get("time") == "42.500"


def test_suite_time_without_a_total_is_the_sum_of_the_claims():
    report = sample_report_input(seconds=1.0)
    seconds = {"dla_negative": 0.25, "lens_rises": 1.5}
    root = ET.fromstring(junit_xml(report.outcomes, "s", seconds=seconds))
    assert root.find("testsuite").get("time") == "1.750"
    cases = {case.get("name"): case for case in root.iter("testcase")}
    assert cases["dla_negative"].get("time") == "0.250" and cases["lens_rises"].get("time") == "1.500"
    assert cases["faithful"].get("time") is None  # no measurement: no time rather than a made-up one


def test_without_timings_the_document_has_no_time_attributes():
    root = ET.fromstring(junit_xml(sample_report_input().outcomes, "s"))
    assert all(element.get("time") is None for element in root.iter())
