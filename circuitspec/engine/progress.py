"""Progress while claims are measured: a rich bar on a terminal, one plain line per claim otherwise.

In CI (stderr not a terminal) a bar draws nothing, so each measured claim is logged to stderr as
``[12:03:04] measured 3/38 claim_id (2.1 s, 6 passes)``: a long run is never silent between claims.
"""

from __future__ import annotations

import sys
import time
from typing import Any, TextIO

__all__ = ["ClaimProgress"]

_BAR_AFTER_S = 1.0  # a run that finishes sooner never shows a bar


class ClaimProgress:
    """Reports each measured claim; ``interactive`` defaults to whether ``stream`` is a terminal."""

    def __init__(self, total: int, *, stream: TextIO | None = None, interactive: bool | None = None) -> None:
        self.total = total
        self.stream = stream if stream is not None else sys.stderr
        self.interactive = self.stream.isatty() if interactive is None else interactive
        self.started = self.last = time.perf_counter()
        self._bar: Any = None
        self._task: Any = None

    def measured(self, done: int, claim_id: str, passes: int | None = None) -> None:
        """Claim ``claim_id`` (the ``done``-th of ``total``, counting from 1) has been measured."""
        now = time.perf_counter()
        seconds, self.last = now - self.last, now
        if not self.interactive:
            cost = f", {passes} passes" if passes else ""
            stamp = time.strftime("%H:%M:%S")
            print(
                f"[{stamp}] measured {done}/{self.total} {claim_id} ({seconds:.1f} s{cost})",
                file=self.stream,
                flush=True,
            )
            return
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
