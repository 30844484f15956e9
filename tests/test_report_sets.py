"""Report sets: report.json / .md / .html are replaced together or not at all, under a lock, with no
temp files left after SIGINT / SIGTERM / a full disk (circuitspec/reports/atomic.py)."""

from __future__ import annotations

import errno
import os
import random
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from rich.console import Console

import circuitspec.reports as reports
from circuitspec.errors import CircuitSpecError
from circuitspec.reports import REPORT_FILES, atomic, report_set, write_reports
from circuitspec.reports.outputs import write_run_outputs
from tests.helpers.report_sample import sample_report_input

REPO = Path(__file__).resolve().parents[1]
NAMES = sorted(REPORT_FILES.values())
TRIALS = 72


def visible(folder: Path) -> dict[str, bytes]:
    """What a reader of ``<folder>/report.*`` sees (links followed), by file name."""
    return {n: (folder / n).read_bytes() for n in NAMES if (folder / n).exists()}


def leftovers(folder: Path) -> list[str]:
    """Temp links and run folders that are not the published one."""
    current = {p.resolve().name for p in folder.glob(".current-*")}
    runs = [p.name for p in (folder / atomic.RUNS).iterdir() if p.name not in current]
    return sorted(runs + [p.name for p in folder.rglob("*.tmp")])


@pytest.fixture
def fake_rendering(monkeypatch):
    """write_reports with rendering replaced by fixed texts, so only the write phase runs."""
    state = {"version": "old"}

    def render(kind):
        return lambda report_input: f"{kind} of the {state['version']} run\n" * 50

    for kind in ("json", "markdown", "html"):
        monkeypatch.setattr(reports, f"render_{kind}", render(kind))
    return state


def _texts(version: str) -> dict[str, bytes]:
    kinds = {"report.json": "json", "report.md": "markdown", "report.html": "html"}
    return {name: (f"{kinds[name]} of the {version} run\n" * 50).encode() for name in NAMES}


class Interrupting:
    """Stands in for the ``os`` module inside atomic.py: the ``fail_at``-th call is interrupted once
    (SIGTERM delivered for real, KeyboardInterrupt as SIGINT raises it, or ENOSPC on the first call from
    there that writes). ``os.close`` is left alone: it releases the descriptor (and the lock) even when it
    fails, and a signal just before the last close ends the process, which releases it too."""

    WRITES = frozenset({"open", "write", "fsync", "symlink", "replace", "link", "mkdir", "fchmod"})

    def __init__(self, fail_at: int, how: str):
        self.calls, self.fail_at, self.how, self.fired = 0, fail_at, how, False

    def __getattr__(self, name):
        real = getattr(os, name)
        if not callable(real):
            return real

        def call(*args, **kwargs):
            self.calls += 1
            due = self.calls >= self.fail_at > 0 and not self.fired and name != "close"
            if due and (self.how != "enospc" or name in self.WRITES):
                self.fired = True
                self._interrupt()
            return real(*args, **kwargs)

        return call

    def _interrupt(self) -> None:
        if self.how == "sigterm" and signal.getsignal(signal.SIGTERM) is atomic._exit_on_signal:
            os.kill(os.getpid(), signal.SIGTERM)  # the handler raises at the next bytecode
            time.sleep(0.01)
        if self.how == "enospc":
            raise OSError(errno.ENOSPC, "No space left on device")
        raise SystemExit(143) if self.how == "sigterm" else KeyboardInterrupt


def test_a_set_is_published_behind_stable_links(tmp_path, fake_rendering):
    paths = write_reports(None, tmp_path)
    assert {p.name for p in paths.values()} == set(NAMES)
    assert visible(tmp_path) == _texts("old")
    assert all((tmp_path / n).is_symlink() for n in NAMES)
    fake_rendering["version"] = "new"
    write_reports(None, tmp_path)
    assert visible(tmp_path) == _texts("new")
    assert leftovers(tmp_path) == []


def test_plain_files_from_before_report_sets_are_replaced_as_a_set(tmp_path, fake_rendering):
    for name, data in _texts("legacy").items():
        (tmp_path / name).write_bytes(data)
    write_reports(None, tmp_path)
    assert visible(tmp_path) == _texts("old")
    assert leftovers(tmp_path) == []


def test_interrupted_at_every_point_of_the_write_phase_leaves_old_or_new_never_a_mix(
    tmp_path, fake_rendering, monkeypatch
):
    """≥ 50 seeded trials: SIGTERM, SIGINT or a full disk at a random os call of write_reports."""
    write_reports(None, tmp_path / "dry")
    counter = Interrupting(fail_at=0, how="none")
    monkeypatch.setattr(atomic, "os", counter)
    write_reports(None, tmp_path / "dry")  # how many os calls replacing a set makes, closing included
    calls = counter.calls
    assert calls >= 10
    rng = random.Random(16)
    outcomes = {"old": 0, "new": 0, "interrupted": 0}
    for trial in range(TRIALS):
        folder = tmp_path / f"trial{trial}"
        fake_rendering["version"] = "old"
        monkeypatch.setattr(atomic, "os", os)
        write_reports(None, folder)
        fake_rendering["version"] = "new"
        how = ("sigterm", "sigint", "enospc")[trial % 3]
        interrupting = Interrupting(rng.randint(1, calls), how)
        monkeypatch.setattr(atomic, "os", interrupting)
        try:
            write_reports(None, folder)
            assert how == "enospc" or not interrupting.fired  # an OSError in cleanup code is swallowed
        except (SystemExit, KeyboardInterrupt, OSError, CircuitSpecError):  # the last: from prepare
            assert interrupting.fired
        outcomes["interrupted"] += interrupting.fired
        monkeypatch.setattr(atomic, "os", os)
        seen = visible(folder)
        assert seen in (_texts("old"), _texts("new")), (trial, how)
        outcomes["old" if seen == _texts("old") else "new"] += 1
        assert leftovers(folder) == [], (trial, how)
        write_reports(None, folder)  # the folder stays usable: the lock was released
        assert visible(folder) == _texts("new")
    assert outcomes["interrupted"] >= 50
    assert outcomes["old"] > 0 and outcomes["new"] > 0  # before the switch: old; after it: new


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_real_signal_to_a_writing_process_leaves_a_whole_set(tmp_path, signum):
    """A child publishes sets in a loop and is signalled at a random moment: the folder holds one whole
    set (every file of the same round) and no temp files."""
    child = textwrap.dedent(
        f"""
        import sys
        sys.path.insert(0, {str(REPO)!r})
        from circuitspec.reports.atomic import ReportSet
        names = {NAMES!r}
        for round_ in range(100000):
            with ReportSet(sys.argv[1], names) as reports:
                reports.publish({{n: f"round {{round_}}\\n" * 20000 for n in names}})
            if round_ == 0:
                print("ready", flush=True)
        """
    )
    rng = random.Random(int(signum))
    for trial in range(2):  # with the 72 in-process trials above; each child costs an import (~2 s)
        folder = tmp_path / f"t{trial}"
        process = subprocess.Popen(
            [sys.executable, "-c", child, str(folder)], stdout=subprocess.PIPE, text=True
        )
        assert process.stdout is not None and process.stdout.readline() == "ready\n"
        time.sleep(rng.uniform(0.0, 0.2))
        process.send_signal(signum)
        process.wait(timeout=60)
        rounds = {(folder / n).read_text().split("\n", 1)[0] for n in NAMES}
        assert len(rounds) == 1, rounds
        assert leftovers(folder) == []


def test_a_second_run_into_the_same_folder_is_refused_until_the_first_ends(tmp_path, fake_rendering):
    with report_set(tmp_path) as first:
        with pytest.raises(CircuitSpecError, match="another circuitspec run is writing report files"):
            report_set(tmp_path).prepare()
        write_reports(None, tmp_path, prepared=first)
    with report_set(tmp_path) as second:  # free again
        fake_rendering["version"] = "new"
        write_reports(None, tmp_path, prepared=second)
    assert visible(tmp_path) == _texts("new")


def test_a_full_disk_after_the_run_prints_the_verdicts_and_saves_the_reports_elsewhere(tmp_path, monkeypatch):
    report_input = sample_report_input()
    report_input.outcomes = report_input.outcomes[:2]
    real_write = atomic._write_file

    def full_disk_on_html(path, data):
        if path.name == "report.html" and tmp_path / "reports" in path.parents:
            raise OSError(errno.ENOSPC, "No space left on device")
        real_write(path, data)

    monkeypatch.setattr(atomic, "_write_file", full_disk_on_html)
    console = Console(record=True, width=200)
    with report_set(tmp_path / "reports") as prepared, pytest.raises(CircuitSpecError) as caught:
        write_run_outputs(report_input, report_input.outcomes, prepared, console, name="sample")
    message = str(caught.value)
    assert "No space left on device" in message and "\n" not in message
    fallback = Path(message.split("saved them in ")[1].split(" instead")[0])
    assert sorted(p.name for p in fallback.iterdir() if not p.name.startswith(".")) == NAMES
    assert report_input.outcomes[0].claim_id in console.export_text()  # the verdict table was printed
    assert visible(tmp_path / "reports") == {}  # nothing half-written where it was meant to go


def test_an_unwritable_report_folder_is_refused_before_anything_runs(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(CircuitSpecError, match="names a file"):
        report_set(blocker).prepare()
    with pytest.raises(CircuitSpecError, match="cannot write reports"):
        report_set(blocker / "reports").prepare()
