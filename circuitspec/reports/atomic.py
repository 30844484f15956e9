"""Atomic writes: one file (temp file, fsync, ``os.replace``) and a whole report set at once.

A report set (``report.json`` / ``.md`` / ``.html``, or ``regression.*``) is written into a fresh
run folder ``<dir>/.runs/<set>-<id>/`` and published by switching one symlink,
``<dir>/.current-<set> -> .runs/<set>-<id>``; each ``<dir>/report.json`` is a symlink to
``.current-<set>/report.json``, so readers keep the same path and see the old set or the new one,
never a mix. A lock (``<dir>/.lock-<set>``, ``fcntl.flock``) makes a second run into the same folder
refuse at once, before its model runs; SIGINT / SIGTERM during a run remove its run folder and
temp links. docs/ARCHITECTURE.md ("Report sets") has the layout.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import shutil
import signal
import tempfile
import threading
import uuid
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from circuitspec.errors import CircuitSpecError

__all__ = ["ReportSet", "atomic_write_bytes", "atomic_write_text", "check_output_file"]

RUNS = ".runs"


def atomic_write_bytes(path: str | Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` all at once or not at all; returns the path."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, temp_name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        # mkstemp makes 0600 files; keep an existing report's mode, else the usual 0644
        os.chmod(temp_name, target.stat().st_mode & 0o7777 if target.exists() else 0o644)
        with os.fdopen(handle, "wb") as stream:
            stream.write(data)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temp_name, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp_name)
        raise
    return target


def atomic_write_text(path: str | Path, text: str) -> Path:
    """:func:`atomic_write_bytes` for UTF-8 text."""
    return atomic_write_bytes(path, text.encode("utf-8"))


def _reason(exc: OSError) -> str:
    return exc.strerror or str(exc)


def check_output_file(path: str | Path, what: str) -> Path:
    """Refuse an output file path that cannot be written (a folder, a missing or read-only parent),
    before a run that would otherwise fail only at the end; nothing is left behind."""
    target = Path(path)
    if target.is_dir():
        raise CircuitSpecError(f"{what} names a folder, not a file", file=str(path))
    parent = target.parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
        handle, probe = tempfile.mkstemp(dir=parent, prefix=f".{target.name}.", suffix=".probe")
        os.close(handle)
        os.unlink(probe)
    except OSError as exc:
        raise CircuitSpecError(f"cannot write {what} here: {_reason(exc)}", file=str(path)) from None
    return target


class ReportSet:
    """Publishes a set of files into ``out_dir`` with one atomic symlink switch, under a lock.

    Use as a context manager: ``prepare()`` (before the expensive run) checks the folder is
    writable, takes the lock and removes runs left by a killed process; ``publish(files)`` writes
    the run folder and switches; leaving the block releases the lock and removes an unpublished run.
    """

    def __init__(self, out_dir: str | Path, names: Sequence[str]):
        self.out = Path(out_dir)
        self.names = list(names)
        self.set_name = Path(self.names[0]).stem  # "report", "regression"
        self.run_id = f"{self.set_name}-{uuid.uuid4().hex[:12]}"
        self.run_dir = self.out / RUNS / self.run_id
        self.current = self.out / f".current-{self.set_name}"
        self._lock_fd: int | None = None
        self._created: list[Path] = []
        self._saved_handlers: dict[int, Any] = {}

    # ---------------------------------------------------------------- lifecycle

    def __enter__(self) -> ReportSet:
        return self.prepare()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def prepare(self) -> ReportSet:
        """Make the folder, take the lock, clear stale runs, create this run's folder."""
        if self._lock_fd is not None:
            return self
        if self.out.exists() and not self.out.is_dir():
            raise CircuitSpecError("the report folder names a file, not a folder", file=str(self.out))
        missing = [p for p in (self.out, *self.out.parents) if not p.exists()]
        self._created = missing[::-1]  # the folders this run makes, outermost first
        try:
            (self.out / RUNS).mkdir(parents=True, exist_ok=True)
            self._lock_fd = os.open(self.out / f".lock-{self.set_name}", os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise CircuitSpecError(
                f"cannot write reports into this folder: {_reason(exc)} (pass --out DIR)", file=str(self.out)
            ) from None
        try:
            fcntl.flock(self._lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            os.close(self._lock_fd)
            self._lock_fd = None
            if exc.errno not in (errno.EAGAIN, errno.EACCES):
                raise
            raise CircuitSpecError(
                f"another circuitspec run is writing {self.set_name} files into this folder (it holds "
                f".lock-{self.set_name}); wait for it to finish or pass --out DIR",
                file=str(self.out),
            ) from None
        self._catch_signals()
        try:
            self._remove_stale_runs()
            self.run_dir.mkdir()
        except OSError as exc:
            self.close()
            raise CircuitSpecError(
                f"cannot write reports into this folder: {_reason(exc)} (pass --out DIR)", file=str(self.out)
            ) from None
        except BaseException:  # a signal here: `with` would not call close() for a failed __enter__
            self.close()
            raise
        return self

    def close(self) -> None:
        """Remove this run's folder and temp links unless published; release the lock and signals."""
        try:
            if self._is_published():
                self._remove_stale_runs()  # again: an interruption may have cut the first pass short
            else:
                shutil.rmtree(self.run_dir, ignore_errors=True)
                self._remove_unused_folder()
            for temp in self._temp_links():
                with contextlib.suppress(OSError):
                    temp.unlink()
        finally:
            if self._lock_fd is not None:
                with contextlib.suppress(OSError):
                    os.close(self._lock_fd)  # releases the flock
                self._lock_fd = None
            self._restore_signals()

    # ---------------------------------------------------------------- publishing

    def publish(self, files: Mapping[str, str | bytes]) -> dict[str, Path]:
        """Write ``files`` (name → content) into the run folder, then switch the set to it.

        Returns name → the stable path ``<dir>/<name>``. An OSError (a full disk) leaves the
        previous set published and this run's folder removed.
        """
        self.prepare()
        unknown = sorted(set(files) - set(self.names))
        if unknown:
            raise ValueError(f"not part of this report set: {unknown}")
        try:
            for name, content in files.items():
                _write_file(
                    self.run_dir / name, content.encode("utf-8") if isinstance(content, str) else content
                )
            _fsync_dir(self.run_dir)
            self._adopt_legacy_files()
            for name in self.names:
                self._ensure_link(name)
            self._switch_current(self.run_dir)
        except BaseException:
            if not self._is_published():
                shutil.rmtree(self.run_dir, ignore_errors=True)
            raise
        self._remove_stale_runs()
        return {name: self.out / name for name in files}

    def _is_published(self) -> bool:
        """Whether ``.current-<set>`` points at this run (read from disk: a signal may have come
        between the switch and any flag we could set)."""
        return self.current.is_symlink() and os.readlink(self.current) == os.path.relpath(
            self.run_dir, self.out
        )

    def _switch_current(self, run_dir: Path) -> None:
        """Point ``.current-<set>`` at ``run_dir`` with one rename of a fresh symlink over it."""
        temp = self.out / f".current-{self.set_name}.{self.run_id}.tmp"
        os.symlink(os.path.relpath(run_dir, self.out), temp)
        os.replace(temp, self.current)
        _fsync_dir(self.out)

    def _ensure_link(self, name: str) -> None:
        """``<dir>/<name>`` → ``.current-<set>/<name>`` (made once; dangling until the first switch)."""
        link = self.out / name
        want = f"{self.current.name}/{name}"
        if link.is_symlink() and os.readlink(link) == want:
            return
        temp = self.out / f".{name}.{self.run_id}.tmp"
        os.symlink(want, temp)
        os.replace(temp, link)

    def _adopt_legacy_files(self) -> None:
        """Plain report files from before report sets: make them the current set first (same bytes),
        so turning them into links never shows a mix of old and new."""
        legacy = [n for n in self.names if (self.out / n).is_file() and not (self.out / n).is_symlink()]
        if not legacy:
            return
        adopted = self.out / RUNS / f"{self.set_name}-legacy-{uuid.uuid4().hex[:8]}"
        adopted.mkdir()
        for name in legacy:
            try:
                os.link(self.out / name, adopted / name)
            except OSError:
                shutil.copy2(self.out / name, adopted / name)
        self._switch_current(adopted)
        for name in legacy:
            self._ensure_link(name)

    # ---------------------------------------------------------------- cleaning up

    def _temp_links(self) -> Iterator[Path]:
        if self.out.is_dir():
            yield from self.out.glob(f".*.{self.run_id}.tmp")

    def _remove_stale_runs(self) -> None:
        """Run folders of this set that are not current: left by a killed run, or superseded."""
        keep = self.current.resolve().name if self.current.is_symlink() else None
        for folder in (self.out / RUNS).glob(f"{self.set_name}-*"):
            if folder.name not in (keep, self.run_id):
                shutil.rmtree(folder, ignore_errors=True)
        for temp in self.out.glob(f".*.{self.set_name}-*.tmp"):  # temp links of a killed run
            with contextlib.suppress(OSError):
                temp.unlink()

    def _remove_unused_folder(self) -> None:
        """A folder this run created and never published into (the run failed) is removed again."""
        if not self._created or self.current.is_symlink():
            return
        with contextlib.suppress(OSError):
            (self.out / f".lock-{self.set_name}").unlink()
            (self.out / RUNS).rmdir()
            for folder in reversed(self._created):
                folder.rmdir()  # only while nothing else is in it

    def _catch_signals(self) -> None:
        """SIGTERM / SIGHUP raise SystemExit (SIGINT already raises KeyboardInterrupt), so the
        ``with`` block's exit removes this run's files; only possible on the main thread."""
        if threading.current_thread() is not threading.main_thread():
            return
        for signum in (signal.SIGTERM, signal.SIGHUP):
            with contextlib.suppress(ValueError, OSError):
                self._saved_handlers[signum] = signal.signal(signum, _exit_on_signal)

    def _restore_signals(self) -> None:
        for signum, handler in self._saved_handlers.items():
            with contextlib.suppress(ValueError, OSError, TypeError):
                signal.signal(signum, handler)
        self._saved_handlers.clear()


def _exit_on_signal(signum: int, _frame: Any) -> None:
    raise SystemExit(128 + signum)


def _write_file(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    try:
        os.fchmod(fd, 0o644)  # whatever the umask: reports are meant to be read
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
