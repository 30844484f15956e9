"""A ``verify`` without a terminal (CI) is never silent for more than 10 s, from start to exit; its
JUnit times are the claims' own seconds (issue 17, items 6 and 9).

The end-to-end test runs the real toy hypothesis (model loading, shared runs, every claim, the
verdicts' bootstraps, the report's plots) with both streams piped, and timestamps each line as it
arrives in this process.
"""

from __future__ import annotations

import io
import itertools
import json
import os
import re
import subprocess
import sys
import threading
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from circuitspec.engine import progress
from circuitspec.engine.progress import ClaimProgress, RunLog, phase, run_log, say

ROOT = Path(__file__).resolve().parents[1]
TOY = ROOT / "hypotheses" / "toy_sentiment.yaml"
STAMP = r"\[\d\d:\d\d:\d\d\] "
MAX_GAP_S = 10.0


def test_phase_lines_name_the_phase_and_its_seconds():
    stream = io.StringIO()
    log = RunLog(stream, heartbeat=False)
    progress._ACTIVE.append(log)
    try:
        say("toy: 3 claims")
        with phase("loading the model", "model loaded"):
            time.sleep(0.05)
    finally:
        progress._ACTIVE.remove(log)
    lines = stream.getvalue().splitlines()
    assert re.fullmatch(STAMP + "toy: 3 claims", lines[0])
    assert re.fullmatch(STAMP + r"loading the model \.\.\.", lines[1])
    assert re.fullmatch(STAMP + r"model loaded in 0\.\d s", lines[2])
    assert float(lines[2].split(" in ")[1][:-2]) >= 0.05


def test_without_a_run_log_nothing_is_printed(capsys):
    say("nobody listens")
    with phase("working", "worked"):
        pass
    assert capsys.readouterr() == ("", "")


def test_the_heartbeat_fills_silences_and_names_the_claim(monkeypatch):
    monkeypatch.setattr(progress, "HEARTBEAT_S", 0.3)
    stream = io.StringIO()
    with run_log(stream=stream) as log:
        assert log is not None and log.heartbeat  # a StringIO is not a terminal
        with phase("judging 2 claims", "verdicts"):
            time.sleep(0.9)
        claims = ClaimProgress(2, stream=stream)
        time.sleep(1.0)
        claims.measured(1, "a", passes=3)
        claims.close()
    text = stream.getvalue()
    assert len(re.findall(STAMP + r"still judging 2 claims \(\d s\)", text)) >= 2
    assert re.search(STAMP + r"still measuring claim 1/2 \(\d s\)\n" + STAMP + r"measured 1/2 a", text)
    after = len(stream.getvalue())
    time.sleep(0.6)
    assert len(stream.getvalue()) == after  # closed: the heartbeat thread has stopped


def test_steps_tell_the_heartbeat_and_print_at_most_every_few_seconds(monkeypatch):
    monkeypatch.setattr(progress, "STEP_LINE_S", 60.0)
    stream = io.StringIO()
    log = RunLog(stream, heartbeat=False)
    log.set_phase("writing the reports")
    report = log.steps("drew plots")
    report(1, 3)
    report(2, 3)
    assert log.doing == "writing the reports: drew plots 2/3" and stream.getvalue() == ""
    report(3, 3)  # the last step always prints
    assert re.fullmatch(STAMP + r"drew plots 3/3\n", stream.getvalue())
    monkeypatch.setattr(progress, "STEP_LINE_S", 0.0)
    report(1, 5)
    assert stream.getvalue().endswith("drew plots 1/5\n")


def _read(stream, name: str, lines: list) -> None:
    for line in stream:
        lines.append((time.perf_counter(), name, line.rstrip("\n")))


@pytest.mark.slow
def test_a_piped_verify_of_the_toy_hypothesis_prints_a_line_at_least_every_10_s(tmp_path):
    junit = tmp_path / "junit.xml"
    command = [sys.executable, "-m", "circuitspec.cli.main", "verify", str(TOY)]
    command += ["-o", str(tmp_path / "report"), "--junit", str(junit)]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    lines: list[tuple[float, str, str]] = []
    started = time.perf_counter()
    child = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path, env=env
    )
    readers = [
        threading.Thread(target=_read, args=(child.stdout, "stdout", lines)),
        threading.Thread(target=_read, args=(child.stderr, "stderr", lines)),
    ]
    for reader in readers:
        reader.start()
    code = child.wait(timeout=900)
    ended = time.perf_counter()
    for reader in readers:
        reader.join()
    log = [text for _, stream, text in lines if stream == "stderr"]
    assert code == 0, "\n".join(log[-20:])
    times = [started, *sorted(t for t, _, _ in lines), ended]
    gaps = [(b - a, i) for i, (a, b) in enumerate(itertools.pairwise(times))]
    worst, where = max(gaps)
    context = [text for _, _, text in sorted(lines)][max(0, where - 3) : where + 1]
    assert worst <= MAX_GAP_S, f"{worst:.1f} s of silence after: {context}"
    phases = [r"loading the model \(bundled toy_sentiment", r"model loaded in \d+\.\d s", r"measured 38/38 "]
    phases += [r"verdicts in \d+\.\d s", r"reports written in \d+\.\d s"]
    for needed in phases:
        assert any(re.fullmatch(STAMP + ".*" + needed + ".*", text) for text in log), needed
    _check_junit_times(junit, tmp_path / "report" / "report.json")


def _check_junit_times(junit: Path, report_json: Path) -> None:
    """JUnit's per-claim times are report.json's per-claim seconds; the suite's is the whole run."""
    timings = json.loads(report_json.read_text(encoding="utf-8"))["timings"]
    suite = ET.parse(junit).getroot().find("testsuite")
    cases = {case.get("name"): float(case.get("time")) for case in suite.iter("testcase")}
    assert cases.keys() == timings["claims"].keys()
    for claim_id, seconds in cases.items():
        assert seconds == pytest.approx(timings["claims"][claim_id]["seconds"], abs=1e-3), claim_id
    assert float(suite.get("time")) == pytest.approx(timings["total_seconds"], abs=1e-3)
    first = next(iter(cases))
    assert cases[first] < 0.5 * sum(cases.values())  # the run's time is not charged to the first claim
