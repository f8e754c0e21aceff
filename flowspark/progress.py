"""Progress of a long command on a terminal: one line, rewritten in place, with the tasks of the running Spark
stages done of their total ("flowspark ingest: 37/120 tasks (stage 4), 42 s"). Nothing when stderr is not a
terminal (a log file, Airflow, EMR): logs stay quiet. Used by cli.py only."""

from __future__ import annotations

import contextlib
import sys
import threading
import time
from typing import Any, TextIO


class Progress:
    """Polls Spark's status tracker (no listener to register, nothing on the JVM side) every `every` seconds
    from a daemon thread. The command's own lines on stdout clear the progress line first (stdout is wrapped
    while it runs); `stop()` clears it for good."""

    def __init__(self, command: str, sc: Any, out: TextIO, every: float = 1.0) -> None:
        self.command, self.sc, self.out, self.every = command, sc, out, every
        self.done = threading.Event()
        self.lock = threading.Lock()
        self.width = 0
        self.started = time.monotonic()
        self.thread = threading.Thread(target=self._loop, daemon=True, name="flowspark-progress")
        self.stdout: TextIO | None = None

    @classmethod
    def on_terminal(cls, command: str, sc: Any, out: TextIO | None = None) -> Progress | None:
        stream = out or sys.stderr
        if not (hasattr(stream, "isatty") and stream.isatty()):
            return None
        progress = cls(command, sc, stream)
        progress.stdout, sys.stdout = sys.stdout, _Clearing(sys.stdout, progress)  # type: ignore[assignment]
        progress.thread.start()
        return progress

    def line(self) -> str | None:
        """The progress line now, or None when no stage is running."""
        tracker = self.sc.statusTracker()
        active = [s for s in (tracker.getStageInfo(i) for i in tracker.getActiveStageIds()) if s is not None]
        if not active:
            return None
        done = sum(s.numCompletedTasks for s in active)
        total = sum(s.numTasks for s in active)
        stages = ", ".join(f"stage {s.stageId}" for s in sorted(active, key=lambda s: s.stageId)[:3])
        seconds = time.monotonic() - self.started
        return f"flowspark {self.command}: {done:,}/{total:,} tasks ({stages}), {seconds:.0f} s"

    def _loop(self) -> None:
        while not self.done.wait(self.every):
            with contextlib.suppress(Exception):  # the session may be stopping: no line this time
                text = self.line()
                with self.lock:
                    if text is None:
                        self._clear()
                    else:
                        self.out.write("\r" + text + " " * max(0, self.width - len(text)))
                        self.out.flush()
                        self.width = len(text)

    def _clear(self) -> None:
        if self.width:
            self.out.write("\r" + " " * self.width + "\r")
            self.out.flush()
            self.width = 0

    def clear(self) -> None:
        with self.lock:
            self._clear()

    def stop(self) -> None:
        self.done.set()
        self.thread.join(timeout=2)
        self.clear()
        if self.stdout is not None and isinstance(sys.stdout, _Clearing):
            sys.stdout = self.stdout


class _Clearing:
    """stdout that clears the progress line before each write."""

    def __init__(self, stream: TextIO, progress: Progress) -> None:
        self._stream, self._progress = stream, progress

    def write(self, text: str) -> int:
        self._progress.clear()
        return self._stream.write(text)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)
