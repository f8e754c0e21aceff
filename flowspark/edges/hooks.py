"""Test hooks: the crash points and race barriers of the exactly-once tests, off unless armed twice.

A hook does something only when BOTH are set:

    FLOWSPARK_TEST_HOOKS=<folder>   arms the hooks; they leave their evidence in this folder
    FLOWSPARK_FAULT=<point>         SIGKILL this process at the named point (`fault`), or hold the read
                                    tasks (`reading`, see `hold_reading`)
    FLOWSPARK_BARRIER=<name>:<n>    hold each run at `barrier(name)` until n runs have arrived
    FLOWSPARK_FAULT_MODE=raise      at a fault point, raise `Crashed` (a BaseException) instead of SIGKILL:
                                    a crash the test survives, in its own session
    FLOWSPARK_FAULT_MODE=sigterm    at a fault point, send this process SIGTERM (as Airflow or EMR cancel a
                                    task) and go on: the CLI's handler stops the run at its next Spark job

One of them alone is a mistake (a variable left in a scheduler's environment): the run says so on stderr
and the hooks stay off. Armed hooks announce themselves on stderr at the start of the run, so a process
that kills itself has said why first. Evidence (one file per event, named after the event and the pid)
lets a test prove where a kill landed and that a race really happened: `fault.<point>.<pid>` before a kill,
`reading.<pid>` when a read task holds, `barrier.<name>.<pid>` on arrival, `conflict.<pid>.<n>` when Delta
refused a commit for a concurrent one and it was run again.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from typing import Any

log = logging.getLogger("flowspark")

ARM, FAULT, BARRIER = "FLOWSPARK_TEST_HOOKS", "FLOWSPARK_FAULT", "FLOWSPARK_BARRIER"
FAULT_MODE = "FLOWSPARK_FAULT_MODE"  # "raise": fault() raises Crashed instead of SIGKILL (in-process tests)
HOLD_SECONDS = 60.0  # a held read task gives up after this long (the test kills its driver within seconds)
BARRIER_SECONDS = 120.0
_announced: list[bool] = []


def folder() -> str | None:
    """The evidence folder when the hooks are armed, else None."""
    return os.environ.get(ARM) or None


def _requested() -> dict[str, str]:
    return {k: os.environ[k] for k in (FAULT, BARRIER) if os.environ.get(k)}


def announce() -> None:
    """Once per process: say on stderr which hooks are armed, or that a hook variable is set but unarmed."""
    if _announced:
        return
    _announced.append(True)
    wanted = _requested()
    if not wanted:
        return
    what = ", ".join(f"{k}={v}" for k, v in wanted.items())
    if folder():
        log.warning("TEST HOOKS ARMED (%s): this run may stop or kill itself on purpose (%s)", ARM, what)
    else:
        log.warning("%s set without %s: test hooks stay off", what, ARM)


def note(event: str) -> None:
    """Leave evidence of an event in the hooks' folder (armed hooks only)."""
    where = folder()
    if not where:
        return
    os.makedirs(where, exist_ok=True)
    path = os.path.join(where, f"{event}.{os.getpid()}")
    n = 0
    while os.path.exists(path):  # events that repeat (conflicts) get a number each
        n += 1
        path = os.path.join(where, f"{event}.{os.getpid()}.{n}")
    with open(path, "w") as fh:
        fh.write(f"{time.time():.3f}\n")
        fh.flush()
        os.fsync(fh.fileno())


def fault_armed(point: str) -> bool:
    return bool(folder()) and os.environ.get(FAULT) == point


class Crashed(BaseException):
    """The in-process crash of FLOWSPARK_FAULT_MODE=raise: a BaseException, so no `except Exception` of the
    code under test handles it (only `finally` blocks run); the test catches it and goes on in the same
    session, without the ~60 s a fresh JVM costs to start and warm up."""


def fault(point: str) -> None:
    """SIGKILL this process here if armed for this point (no cleanup runs: a power cut, the OOM killer), or
    under FLOWSPARK_FAULT_MODE=raise stop the run here by raising Crashed (tests that crash in-process)."""
    if fault_armed(point):
        note(f"fault.{point}")
        if os.environ.get(FAULT_MODE) == "raise":
            log.warning("test hook: crash (raise) at %s", point)
            raise Crashed(point)
        if os.environ.get(FAULT_MODE) == "sigterm":
            log.warning("test hook: SIGTERM at %s", point)
            os.kill(os.getpid(), signal.SIGTERM)
            return
        log.warning("test hook: SIGKILL at %s", point)
        os.kill(os.getpid(), signal.SIGKILL)


def hold_reading() -> None:
    """In a read task, under FLOWSPARK_FAULT=reading: note it, then hold until the driver is gone (or
    HOLD_SECONDS), so the driver is killed while the read is under way, however fast the machine."""
    if not fault_armed("reading"):
        return
    note("reading")
    parent, deadline = os.getppid(), time.time() + HOLD_SECONDS
    while time.time() < deadline and os.getppid() == parent:
        time.sleep(0.2)


def fault_when_reading(point: str) -> None:
    """Under FLOWSPARK_FAULT=<point>: from a watcher thread, fault(point) once a read task has said it holds
    (new `reading.<pid>` evidence), not after a guess at how long a task takes to start (a loaded machine
    starts its Python workers late); after HOLD_SECONDS without one, fault anyway (the test then sees no
    reading evidence and fails)."""
    if not fault_armed(point):
        return
    where = folder() or "."
    os.makedirs(where, exist_ok=True)
    before = {n for n in os.listdir(where) if n.startswith("reading.")}

    def watch() -> None:
        deadline = time.time() + HOLD_SECONDS
        while time.time() < deadline and not {n for n in os.listdir(where) if n.startswith("reading.")} - before:
            time.sleep(0.02)
        fault(point)

    threading.Thread(target=watch, daemon=True).start()


def barrier(name: str, token: str | None = None) -> None:
    """Under FLOWSPARK_BARRIER=<name>:<n>: arrive (once per token: by default this process), then wait until
    n runs have arrived. Fails loudly when they do not all come within BARRIER_SECONDS (the race the test
    wants did not happen)."""
    spec = os.environ.get(BARRIER, "")
    want, _, n = spec.rpartition(":")
    where = folder()
    if not where or want != name:
        return
    os.makedirs(where, exist_ok=True)
    mine = os.path.join(where, f"barrier.{name}.{token or os.getpid()}")
    if not os.path.exists(mine):
        with open(mine + ".tmp", "w") as fh:
            fh.write(f"{time.time():.3f}\n")
        os.replace(mine + ".tmp", mine)
    deadline = time.time() + BARRIER_SECONDS
    while True:
        arrived = [f for f in os.listdir(where) if f.startswith(f"barrier.{name}.") and not f.endswith(".tmp")]
        if len(arrived) >= int(n):
            return
        if time.time() > deadline:
            raise RuntimeError(f"test barrier {name}: {len(arrived)} of {n} runs arrived in {BARRIER_SECONDS:.0f} s")
        time.sleep(0.05)


def barrier_armed(name: str) -> bool:
    return bool(folder()) and os.environ.get(BARRIER, "").rpartition(":")[0] == name


def inside_transaction(df: Any, name: str, token: str) -> Any:
    """df, whose rows wait at `barrier(name, token)` as a Delta command reads them (a Python UDF on its first
    column): two runs whose commands both read their source inside their transactions are then both open
    at once, so one of them must meet the other's commit. Unarmed: df itself."""
    if not barrier_armed(name):
        return df
    from pyspark.sql import functions as F

    first = df.columns[0]

    @F.udf(df.schema[first].dataType)
    def arrive(value: Any) -> Any:  # a Python UDF on purpose: a test hook, a few rows
        barrier(name, token)
        return value

    return df.withColumn(first, arrive(F.col(first)))
