"""Reports are written atomically: an interrupted write leaves the previous report set intact
(the report set itself, its lock and fault injection: tests/test_report_sets.py)."""

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
    """The visible report files (links into the current run folder) and their bytes."""
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if not p.name.startswith(".")}


@pytest.fixture(scope="module")
def previous(tmp_path_factory):
    """A folder holding one complete set of reports (written once: plots take a while)."""
    folder = tmp_path_factory.mktemp("reports")
    paths = write_reports(small_input(1), folder)
    assert set(paths) == {"json", "md", "html"}
    assert {p.name for p in paths.values()} == {"report.json", "report.md", "report.html"}
    return folder


def test_reports_land_in_the_given_folder_readable(previous):
    assert sorted(_snapshot(previous)) == ["report.html", "report.json", "report.md"]
    for path in (previous / name for name in _snapshot(previous)):
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


def test_interrupted_write_reports_leaves_the_previous_set(previous, monkeypatch):
    before = _snapshot(previous)
    real_write = os.write
    calls = []

    def write_then_crash(fd, data):
        calls.append(fd)
        if len(calls) == 2:  # report.json is in the new run folder; the process dies during report.md
            raise KeyboardInterrupt
        return real_write(fd, data)

    monkeypatch.setattr(atomic.os, "write", write_then_crash)
    with pytest.raises(KeyboardInterrupt):
        write_reports(small_input(2), previous)
    monkeypatch.undo()
    assert _snapshot(previous) == before  # all three old, none new
    assert len(list((previous / atomic.RUNS).iterdir())) == 1  # only the published run folder


def test_a_rendering_error_writes_nothing(previous, monkeypatch):
    before = _snapshot(previous)

    def broken(_):
        raise RuntimeError("matplotlib exploded")

    monkeypatch.setattr(reports, "render_html", broken)
    with pytest.raises(RuntimeError):
        write_reports(small_input(3), previous)
    assert _snapshot(previous) == before
