"""Progress on a terminal (issue 22, item 6): while Spark runs a job, one line with its tasks done of their
total, rewritten in place; the command's own lines clear it first; nothing at all when stderr is not a
terminal (a log file, Airflow, EMR)."""

from __future__ import annotations

import io
import re
import sys
import threading
import time

from flowspark.progress import Progress


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_a_running_job_shows_its_tasks_done_of_the_total_and_a_log_shows_nothing(spark):
    assert Progress.on_terminal("ingest", spark.sparkContext, io.StringIO()) is None  # not a terminal
    term = Terminal()
    progress = Progress("ingest", spark.sparkContext, term, every=0.1)
    assert progress.line() is None  # nothing running

    def slow(_):
        time.sleep(1.5)
        return 1

    job = threading.Thread(target=lambda: spark.sparkContext.parallelize(range(4), 4).map(slow).count())
    job.start()
    seen = []
    while job.is_alive():
        line = progress.line()
        if line is not None:
            seen.append(line)
        time.sleep(0.2)
    job.join()
    assert seen, "no progress line while the job ran"
    assert all(re.fullmatch(r"flowspark ingest: [0-4]/4 tasks \(stage \d+\), \d+ s", s) for s in seen), seen
    assert progress.line() is None


def test_the_commands_own_lines_clear_the_progress_line_first(spark, monkeypatch):
    term = Terminal()
    out = io.StringIO()
    monkeypatch.setattr(sys, "stdout", out)
    progress = Progress.on_terminal("run", spark.sparkContext, term)
    assert progress is not None and sys.stdout is not out
    shown = "flowspark run: 1/4 tasks (stage 9), 3 s"
    with progress.lock:  # as the progress thread writes it
        progress.out.write("\r" + shown)
        progress.width = len(shown)
    print("ingest: 3 records")
    assert term.getvalue() == "\r" + shown + "\r" + " " * len(shown) + "\r"
    assert out.getvalue() == "ingest: 3 records\n"
    progress.stop()
    assert sys.stdout is out
