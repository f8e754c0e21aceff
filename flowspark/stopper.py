"""Stopping when asked: SIGINT (Ctrl-C) and SIGTERM (Airflow, EMR and Glue stop a task with it).

Used by cli.py only. In cluster deploy mode the signal reaches this driver process the same way: YARN sends
SIGTERM to the ApplicationMaster's container when an EMR step is cancelled (`aws emr cancel-steps`) or its
application is killed, and Airflow's task runner sends SIGTERM to a `spark-submit --deploy-mode client`
process; with `--deploy-mode cluster` cancelling the local spark-submit does not stop the driver, kill the
YARN application instead (`yarn application -kill`, which sends SIGTERM to the driver).
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
from typing import Any


class Stopper:
    """Ctrl-C (SIGINT) and SIGTERM (Airflow, EMR and Glue stop a task with it): say so, cancel the running Spark
    jobs (and any the run starts after: a thread cancels them every half second, outside the signal handler,
    so no Py4J call is made inside another), and let the run stop at its next Spark job; the command then ends
    with "interrupted" and 130 (SIGINT) or 143 (SIGTERM). The lake is safe: a claim left open is completed or
    undone by the next run. A second signal ends the process at once."""

    def __init__(self) -> None:
        self.signum: int | None = None
        self.done = threading.Event()
        self.saved: dict[int, Any] = {}
        self.canceller: threading.Thread | None = None

    def install(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return
        for sig in (signal.SIGINT, signal.SIGTERM):
            previous = signal.signal(sig, self._handle)
            self.saved.setdefault(sig, previous)

    def restore(self) -> None:
        self.done.set()
        if self.canceller is not None:  # no job of what runs next in this process gets cancelled
            self.canceller.join(timeout=5)
        for sig, handler in self.saved.items():
            signal.signal(sig, handler)
        self.saved.clear()

    def _handle(self, signum: int, frame: Any) -> None:
        if self.signum is not None:
            os._exit(128 + signum)
        self.signum = signum
        sys.stderr.write(
            f"flowspark: {signal.Signals(signum).name}: stopping (the running Spark jobs are cancelled; the next "
            "run completes or undoes what this one left open). Again to end at once.\n"
        )
        self.canceller = threading.Thread(target=self._cancel, daemon=True, name="flowspark-stop")
        self.canceller.start()

    def _cancel(self) -> None:
        from pyspark import SparkContext

        while not self.done.is_set():
            sc = SparkContext._active_spark_context
            if sc is not None:
                with contextlib.suppress(Exception):  # the session may be going away: nothing left to cancel
                    sc.cancelAllJobs()
            self.done.wait(0.5)
