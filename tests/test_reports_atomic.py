"""Reports are written atomically: an interrupted write leaves the previous report intact."""

from __future__ import annotations

import os
import stat

import pytest

import circuitspec.reports as reports
from circuitspec.reports import atomic, write_reports
from circuitspec.reports.atomic import atomic_write_text
from tests.helpers.report_sample import sample_report_input


def small_input(seed: int):
    """The sample's first two claims: enough for every file, quick to render."""
    report_input = sample_report_input(seed=seed)
    report_input.outcomes = report_input.outcomes[:2]
    return report_input


def _snapshot(folder):
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


@pytest.fixture(scope="module")
def previous(tmp_path_factory):
    """A folder holding one complete set of reports (written once: plots take a while)."""
    folder = tmp_path_factory.mktemp("reports")
    paths = write_reports(small_input(1), folder)
    assert set(paths) == {"json", "md", "html"}
    assert {p.name for p in paths.values()} == {"report.json", "report.md", "report.html"}
    return folder


def test_reports_land_in_the_given_folder_readable(previous):
    assert sorted(p.name for p in previous.iterdir()) == ["report.html", "report.json", "report.md"]
    for path in previous.iterdir():
        assert stat.S_IMODE(path.stat().st_mode) == 0o644  # not mkstemp's 0600


def test_write_interrupted_midway_keeps_the_previous_file(tmp_path, monkeypatch):
    target = tmp_path / "report.json"
    atomic_write_text(target, '{"old": true}\n')
    real_fdopen = os.fdopen

    class HalfWriter:
        """Writes the first half of the bytes, then fails like a full disk."""

        def __init__(self, stream):
            self.stream = stream

        def write(self, data):
            self.stream.write(data[: len(data) // 2])
            self.stream.flush()
            raise OSError(28, "No space left on device")

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.stream.close()

    monkeypatch.setattr(atomic.os, "fdopen", lambda fd, mode: HalfWriter(real_fdopen(fd, mode)))
    with pytest.raises(OSError, match="No space left"):
        atomic_write_text(target, '{"new": "a much longer report that never finishes"}\n')
    monkeypatch.undo()
    assert target.read_text() == '{"old": true}\n'
    assert [p.name for p in tmp_path.iterdir()] == ["report.json"]  # no temp file left behind


def test_interrupted_write_reports_leaves_previous_reports(previous, monkeypatch):
    before = _snapshot(previous)
    real_replace = os.replace
    calls = []

    def replace_then_crash(src, dst):
        calls.append(dst)
        if len(calls) == 2:  # report.json went through; the process dies before report.md lands
            raise KeyboardInterrupt
        real_replace(src, dst)

    monkeypatch.setattr(atomic.os, "replace", replace_then_crash)
    changed = small_input(2)
    with pytest.raises(KeyboardInterrupt):
        write_reports(changed, previous)
    monkeypatch.undo()
    after = _snapshot(previous)
    assert set(after) == set(before)  # no temp files
    assert after["report.md"] == before["report.md"] and after["report.html"] == before["report.html"]
    assert after["report.json"] != before["report.json"]  # the one that finished is complete ...
    assert after["report.json"].endswith(b"}\n")  # ... and whole


def test_a_rendering_error_writes_nothing(previous, monkeypatch):
    before = _snapshot(previous)

    def broken(_):
        raise RuntimeError("matplotlib exploded")

    monkeypatch.setattr(reports, "render_html", broken)
    with pytest.raises(RuntimeError):
        write_reports(small_input(3), previous)
    assert _snapshot(previous) == before
