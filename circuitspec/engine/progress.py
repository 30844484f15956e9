"""Progress while a hypothesis runs: timestamped phase lines, a heartbeat, and one line per claim.

In CI (stderr not a terminal) a bar draws nothing, so each measured claim is logged to stderr as
``[12:03:04] measured 3/38 claim_id (2.1 s, 6 passes)``, and ``verify`` opens a :class:`RunLog`
around the whole run: a line when each phase starts and ends (``loading the model ...``,
``model loaded in 11.8 s``, judging, writing the reports) and, whenever nothing was printed for
:data:`HEARTBEAT_S` seconds (importing torch, a long claim, bootstraps, drawing plots), a
``still <phase> (N s)`` line from a daemon thread. So a CI log never goes 10 s without a line.
On a terminal the phase lines are printed too (no heartbeat: the claims get a rich bar).

Hand-written rather than ``rich.progress`` or ``logging``: rich draws nothing without a terminal,
and the heartbeat needs to know when the last line of any kind was written.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TextIO

__all__ = ["HEARTBEAT_S", "ClaimProgress", "RunLog", "active_log", "phase", "run_log", "say"]

_BAR_AFTER_S = 1.0  # a run that finishes sooner never shows a bar
HEARTBEAT_S = 6.0  # the longest silence in a non-terminal log (the bound is 10 s)
STEP_LINE_S = 2.0  # a phase's steps (plots drawn) print a line at most this often


def _stamped(text: str) -> str:
    return f"[{time.strftime('%H:%M:%S')}] {text}"


class RunLog:
    """Timestamped lines on ``stream`` for one run; with ``heartbeat`` a thread prints ``still <phase>``
    after :data:`HEARTBEAT_S` seconds without a line. Use :func:`run_log` to open one."""

    def __init__(self, stream: TextIO | None = None, *, heartbeat: bool | None = None) -> None:
        self.stream = stream if stream is not None else sys.stderr
        self.heartbeat = (not self.stream.isatty()) if heartbeat is None else heartbeat
        self.last = self.phase_started = time.perf_counter()
        self.doing = "starting"
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def line(self, text: str) -> None:
        """Print ``[HH:MM:SS] text`` and flush (a CI log shows it at once)."""
        with self._lock:
            print(_stamped(text), file=self.stream, flush=True)
            self.last = time.perf_counter()

    def noted(self) -> None:
        """Something else printed a line (a claim's): the heartbeat counts silence from now."""
        self.last = time.perf_counter()

    def set_phase(self, doing: str) -> None:
        """What the heartbeat says the run is doing (``measuring claim 3/38``), without a line."""
        self.doing, self.phase_started = doing, time.perf_counter()

    @contextmanager
    def phase(self, doing: str, done: str) -> Iterator[None]:
        """``doing ...`` now, ``done in X s`` when the block ends without an exception."""
        self.set_phase(doing)
        self.line(f"{doing} ...")
        started = self.phase_started
        yield
        self.line(f"{done} in {time.perf_counter() - started:.1f} s")

    def steps(self, what: str) -> Callable[[int, int], None]:
        """A ``progress(done, total)`` callback for a phase's steps (the report's plots): the heartbeat
        names the step; a ``what done/total`` line every :data:`STEP_LINE_S` seconds and at the last."""
        base = self.doing

        def report(done: int, total: int) -> None:
            self.doing = f"{base}: {what} {done}/{total}"
            if done == total or time.perf_counter() - self.last >= STEP_LINE_S:
                self.line(f"{what} {done}/{total}")

        return report

    def _beat(self) -> None:
        while not self._stop.wait(min(0.5, HEARTBEAT_S / 3)):
            now = time.perf_counter()
            if now - self.last >= HEARTBEAT_S:
                self.line(f"still {self.doing} ({now - self.phase_started:.0f} s)")

    def start(self) -> RunLog:
        if self.heartbeat and self._thread is None:
            self._thread = threading.Thread(target=self._beat, name="circuitspec-heartbeat", daemon=True)
            self._thread.start()
        return self

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2.0)
            self._thread = None


_ACTIVE: list[RunLog] = []  # the open run logs, innermost last (verify opens one; regress none)


def active_log() -> RunLog | None:
    """The run log ``verify`` opened, if any (phases elsewhere print only inside one)."""
    return _ACTIVE[-1] if _ACTIVE else None


@contextmanager
def run_log(enabled: bool = True, stream: TextIO | None = None) -> Iterator[RunLog | None]:
    """Open a :class:`RunLog` (with its heartbeat off a terminal) for the block; ``None`` when not
    ``enabled``."""
    if not enabled:
        yield None
        return
    log = RunLog(stream).start()
    _ACTIVE.append(log)
    try:
        yield log
    finally:
        _ACTIVE.remove(log)
        log.close()


def say(text: str) -> None:
    """One timestamped line on the active run log; nothing when none is open."""
    log = active_log()
    if log is not None:
        log.line(text)


@contextmanager
def phase(doing: str, done: str) -> Iterator[None]:
    """:meth:`RunLog.phase` on the active run log; nothing when none is open."""
    log = active_log()
    if log is None:
        yield
        return
    with log.phase(doing, done):
        yield


class ClaimProgress:
    """Reports each measured claim; ``interactive`` defaults to whether ``stream`` is a terminal."""

    def __init__(self, total: int, *, stream: TextIO | None = None, interactive: bool | None = None) -> None:
        self.total = total
        self.stream = stream if stream is not None else sys.stderr
        self.interactive = self.stream.isatty() if interactive is None else interactive
        self.started = self.last = time.perf_counter()
        self._bar: Any = None
        self._task: Any = None
        self._note(0)

    def _note(self, done: int) -> None:
        """Tell the run log (if one is open) which claim runs next, for its heartbeat."""
        log = active_log()
        if log is not None:
            log.noted()
            if done < self.total:
                log.set_phase(f"measuring claim {done + 1}/{self.total}")

    def measured(self, done: int, claim_id: str, passes: int | None = None) -> None:
        """Claim ``claim_id`` (the ``done``-th of ``total``, counting from 1) has been measured."""
        now = time.perf_counter()
        seconds, self.last = now - self.last, now
        if not self.interactive:
            cost = f", {passes} passes" if passes else ""
            text = f"measured {done}/{self.total} {claim_id} ({seconds:.1f} s{cost})"
            log = active_log()
            if log is not None and log.stream is self.stream:  # under the log's lock: no torn lines
                log.line(text)
            else:
                print(_stamped(text), file=self.stream, flush=True)
            self._note(done)
            return
        self._note(done)
        if self._bar is None and now - self.started > _BAR_AFTER_S:
            from rich.console import Console
            from rich.progress import Progress

            self._bar = Progress(transient=True, console=Console(file=self.stream))
            self._bar.start()
            self._task = self._bar.add_task("measuring claims", total=self.total, completed=done - 1)
        if self._bar is not None:
            self._bar.update(self._task, advance=1, description=f"measured {claim_id}")

    def close(self) -> None:
        """Remove the bar (if one was drawn)."""
        if self._bar is not None:
            self._bar.stop()
            self._bar = None
