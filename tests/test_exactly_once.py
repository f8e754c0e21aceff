"""Ingest exactly once, whatever happens: SIGKILL at named points then rerun, concurrent runs, rewritten
objects, --force, a failed reconciliation. Every check compares whole tables (duplicates included) with a
clean run's lake or with the generator's truth.

The crash and concurrency tests run ingest with the test hooks armed (flowspark/edges/hooks.py):
FLOWSPARK_FAULT=<point> stops the run at a named point. The crashes at `reading` (first attempt and resumed
claim) and at `after_flows` (first attempt) are real SIGKILLs of `flowspark ingest` in a subprocess (a fresh
JVM each); the others raise hooks.Crashed in this process (FLOWSPARK_FAULT_MODE=raise), which only the
test catches: the lake is left as a kill there leaves it, at a third of the cost. Concurrent runs are
subprocesses;
FLOWSPARK_BARRIER=claim:2 holds two runs' claims inside their transactions until both are there; the hooks
leave evidence files that prove the kill landed where it should and that the race happened.
"""

from __future__ import annotations

import contextlib
import gzip
import os
import shutil
import subprocess
import sys
import threading
import time
from collections import defaultdict
from pathlib import Path

import pytest
from pyspark.sql import functions as F

from flowspark.core.schema import reject_schema
from flowspark.edges import hooks, tables
from flowspark.generator import generate
from flowspark.pipelines import ingest, ledger
from flowspark.pipelines.common import ReconciliationError
from flowspark.pipelines.ingest import run_ingest

REPO = Path(__file__).resolve().parents[1]
FLOWSPARK = [sys.executable, "-m", "flowspark.cli"]

# Lines that are rejects (bad field count, bad port, bad action) and two good lines, in one extra object.
BAD_OBJECT = (
    "version account-id interface-id srcaddr dstaddr srcport dstport protocol packets bytes start end action "
    "log-status\n"
    "2 123456789010 eni-0a1b2c3d 10.0.0.1 10.0.0.2 443 49152 6 10 840 1717200000 1717200060 ACCEPT OK\n"
    "2 123456789010 eni-0a1b2c3d 10.0.0.1 10.0.0.2 443 49152 6 10\n"
    "2 123456789010 eni-0a1b2c3d 10.0.0.1 10.0.0.2 99999 49152 6 10 840 1717200000 1717200060 ACCEPT OK\n"
    "2 123456789010 eni-0a1b2c3d 10.0.0.2 10.0.0.1 49152 443 6 12 900 1717200000 1717200060 ALLOW OK\n"
    "2 123456789010 eni-0a1b2c3d 10.0.0.2 10.0.0.1 49152 443 6 12 900 1717200000 1717200060 ACCEPT OK\n"
)
BAD_GOOD, BAD_REJECTS = 2, 3


def _merge(root: Path, hours: int = 1) -> int:
    """Concatenate the generator's 5-minute objects into one object per flow log and `hours` hours (fewer,
    bigger objects: the tests pay per object). Keeps the AWS name pattern (the date of records without
    start)."""
    groups: dict[tuple[Path, str], list[Path]] = defaultdict(list)
    for p in sorted(root.rglob("*.log.gz")):
        stem = p.name.split("_")
        hour = int(stem[4][9:11]) // hours * hours  # 20240601T0005Z -> 00
        groups[(p.parent, "_".join(stem[:4]) + f"_{stem[4][:9]}{hour:02d}00Z")].append(p)
    for (folder, name), parts in groups.items():
        out = folder / f"{name}_merged.log.gz"
        with gzip.open(out, "wt") as dst:
            for i, part in enumerate(parts):
                with gzip.open(part, "rt") as src:
                    header = src.readline()
                    if i == 0:
                        dst.write(header)
                    shutil.copyfileobj(src, dst)
        for part in parts:
            part.unlink()
    return len(groups)


# The crash source: two days in 8 objects (6-hour objects) plus one object with rejects. Day 1 and the bad
# object (part A) are there from the start; day 2 (part B) arrives after a first run crashed (the resume
# tests: a rerun that resumes A's claim, then claims B).
CRASH_RECORDS = 4_000


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    """(source folder, truth, part B's objects kept aside): generated once for the module; the folder holds
    part A until `resume_base` has made its lake, then A and B."""
    out = tmp_path_factory.mktemp("eo_source")
    truth = generate(str(out), records=CRASH_RECORDS, seed=23, accounts=1, regions=1, days=2, workers=1, quiet=True)
    truth["objects"] = _merge(out, hours=6) + 1
    (out / "extra").mkdir()
    (out / "extra" / "bad.log").write_text(BAD_OBJECT)
    day2 = max(truth["by_date"]).replace("-", "")
    aside = tmp_path_factory.mktemp("eo_part_b")
    part_b = []
    for p in sorted(out.rglob(f"*_{day2}T*.log.gz")):
        kept = aside / p.relative_to(out)
        kept.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(p, kept)
        part_b.append((kept, p))
    assert 0 < len(part_b) < truth["objects"] - 1
    return out, truth, part_b


@pytest.fixture(scope="module")
def resume_base(spark, cfg, source, tmp_path_factory):
    """A lake whose one claim (part A) is pending: a run killed right after its claim committed. Then part B
    arrives in the source. The resume tests each start from a copy of this lake."""
    src, truth, part_b = source
    lake = tmp_path_factory.mktemp("eo_resume_base") / "lake"
    _crash(spark, cfg, src, lake, "after_claim", kill=False)
    for kept, place in part_b:
        place.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(kept, place)
    return lake


@pytest.fixture(scope="module")
def clean_lake(spark, cfg, source, resume_base, tmp_path_factory):
    """The reference: one clean ingest of the whole source (A and B)."""
    src, truth, _ = source
    lake = tmp_path_factory.mktemp("eo_clean") / "lake"
    s = run_ingest(spark, cfg, str(src), str(lake))
    assert (s.records, s.rejected, s.rows_written) == (truth["records"] + 5, BAD_REJECTS, truth["records"] + 2)
    return lake


# ---------------------------------------------------------------- helpers


def _run(src, lake, *extra: str, env: dict | None = None) -> subprocess.Popen:
    cmd = [*FLOWSPARK, "ingest", "--source", str(src), "--lake", str(lake), "--master", "local[2]", *extra]
    full_env = {**os.environ, "PYTHONPATH": str(REPO), **(env or {})}
    return subprocess.Popen(cmd, cwd=REPO, env=full_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _wait(proc: subprocess.Popen, timeout: float = 1200) -> tuple[int, str, str]:
    out, err = proc.communicate(timeout=timeout)
    return proc.returncode, out, err


def _comparable(spark, lake) -> dict:
    """Every table a run writes, without what differs between runs by design (ingest ids, times): flows
    whole (a crash and a rerun, or two runs, merge into the rows one clean run writes)."""
    rec = tables.read(spark, str(lake), tables.FLOW_RECORDS)
    rec = rec.drop("ingest_id").withColumn("extra_fields", F.to_json("extra_fields"))  # maps: no set operations
    if tables.exists(spark, str(lake), tables.FLOW_REJECTS):
        rej = tables.read(spark, str(lake), tables.FLOW_REJECTS).drop("ingest_id")
    else:  # a lake no reject was written to
        rej = spark.createDataFrame([], reject_schema()).drop("ingest_id")
    led = tables.read(spark, str(lake), tables.INGESTED_FILES)
    outcome = [f.name for f in ledger.OUTCOME.fields if f.name != "done_at"]
    led = led.select(*[c for c in ("source_file", "size", "modification_time_ms", "state", *outcome) if c in led.columns])
    flows = tables.read(spark, str(lake), tables.FLOWS).withColumn("extra_fields", F.to_json("extra_fields"))
    return {"flow_records": rec, "flow_rejects": rej, "ingested_files": led, "flows": flows}


def _assert_same_lake(spark, got_lake, want_lake, with_ledger: bool = True) -> None:
    got, want = _comparable(spark, got_lake), _comparable(spark, want_lake)
    for name in want if with_ledger else ("flow_records", "flow_rejects", "flows"):
        extra = got[name].exceptAll(want[name]).count()
        missing = want[name].exceptAll(got[name]).count()
        assert (extra, missing) == (0, 0), f"{name}: {extra} rows too many, {missing} rows missing"


def _duplicates(spark, lake) -> int:
    rec = tables.read(spark, str(lake), tables.FLOW_RECORDS)
    return rec.groupBy("source_file", "source_line").count().where("count > 1").count()


def _ledger_states(spark, lake) -> dict:
    led = tables.read(spark, str(lake), tables.INGESTED_FILES)
    return {r["state"]: r["count"] for r in led.groupBy("state").count().collect()}


def _count(spark, lake, name) -> int:
    return tables.read(spark, str(lake), name).count() if tables.exists(spark, str(lake), name) else 0


def _hooks(folder: Path, **env: str) -> dict:
    """The environment that arms the test hooks (flowspark/edges/hooks.py), their evidence going to `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    return {"FLOWSPARK_TEST_HOOKS": str(folder), **env}


def _evidence(folder: Path, event: str) -> list[str]:
    """The evidence files the hooks left for an event (fault.<point>, reading, barrier.<name>, conflict)."""
    return sorted(p.name for p in folder.glob(f"{event}.*")) if folder.exists() else []


# ---------------------------------------------------------------- the Delta behaviours the design rests on


def test_delta_behaviours_the_design_rests_on(spark, tmp_path):
    """(b) idempotent writes, (c) concurrent ledger transactions conflict, (d) replaceWhere on a data column,
    on the Delta line this suite runs on."""
    lake = str(tmp_path)
    df = spark.range(5).withColumn("k", F.lit("a"))
    # (b) a committed (appId, 1) makes every later write with it a no-op, an empty one included
    assert tables.write_once(df, lake, "t", "J1", "x", check=True) is True
    assert tables.write_once(df, lake, "t", "J1", "y", check=True) is False
    assert tables.write_once(df.limit(0), lake, "t", "J2", "z", check=True) is True
    assert tables.write_once(df, lake, "t", "J2", "w", check=True) is False
    assert tables.read(spark, lake, "t").count() == 5
    # (d) replaceWhere on a data column: matching rows replaced in the same commit, others kept
    new = spark.range(100, 103).withColumn("k", F.lit("b"))
    tables.write_once(new, lake, "t", "J3", "x", replace_where="k IN ('a', 'b')")
    assert sorted(r.id for r in tables.read(spark, lake, "t").collect()) == [100, 101, 102]

    # (c) two concurrent insert-only MERGEs (and two conditional UPDATEs) of one unpartitioned table: one
    # fails with a conflict. A slow source (sleep in a UDF: test-only) holds both open at once.
    spark.createDataFrame([("x", "0")], "k string, j string").write.format("delta").save(f"{lake}/led")
    from delta.tables import DeltaTable

    @F.udf("string")
    def slow(s):  # a Python UDF only to hold the transaction open for the race
        time.sleep(2)
        return s

    def race(op) -> list:
        errors: list = []

        def run(name):
            try:
                op(name)
            except Exception as exc:  # noqa: BLE001 - recorded and classified below
                errors.append(exc)

        threads = [threading.Thread(target=run, args=(n,)) for n in ("A", "B")]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        return errors

    def merge(name):
        src = spark.createDataFrame([(f"new-{name}", name)], "k string, j string").withColumn("j", slow("j"))
        led = DeltaTable.forPath(spark, f"{lake}/led")
        led.alias("t").merge(src.alias("s"), "t.k = s.k").whenNotMatchedInsertAll().execute()

    errors = race(merge)
    assert len(errors) == 1 and tables.is_conflict(errors[0]), errors

    def update(name):
        led = DeltaTable.forPath(spark, f"{lake}/led")
        led.update((F.col("k") == "x") & (slow(F.col("j")) == "0"), {"j": F.lit(name)})

    errors = race(update)
    assert len(errors) == 1 and tables.is_conflict(errors[0]), errors


# ---------------------------------------------------------------- crashes
#
# Every crash point of ingest (ingest.FAULT_POINTS) is tested twice, each time on a lake of its own: on a
# first attempt (a fresh lake), and on a resumed claim (a copy of `resume_base`, whose claim of part A a
# crashed run left pending; the rerun resumes it, and after_claim kills it once it has claimed part B).
# After the kill the state shows where it landed (STATE); then a rerun in this process ends in the clean
# run's tables, duplicates counted.


def _flow_records_sum(spark, lake) -> int:
    """The records flows holds (its rows' `records` summed)."""
    if not tables.exists(spark, str(lake), tables.FLOWS):
        return 0
    return int(tables.read(spark, str(lake), tables.FLOWS).agg(F.sum("records")).first()[0] or 0)


def _state(spark, lake) -> tuple:
    """(flow_records rows, flow_rejects rows, done claims with statistics, ledger states, records in flows)."""
    return (
        _count(spark, lake, tables.FLOW_RECORDS),
        _count(spark, lake, tables.FLOW_REJECTS),
        ledger.claim_stats(spark, str(lake)).count() if tables.exists(spark, str(lake), tables.INGESTED_FILES) else 0,
        _ledger_states(spark, lake),
        _flow_records_sum(spark, lake),
    )


def _expected_state(point: str, n_a: int, n_all: int, a: tuple, everything: tuple, resumed: bool) -> tuple:
    """What the tables hold after a kill at `point`. First attempt: one claim of every object (n_all; its
    rows and data records `everything`). Resumed: part A's claim (n_a objects, rows and data records `a`) is
    completed; after_claim comes after that, when part B (n_all - n_a objects) has been claimed."""
    n, (rec, data) = (n_a, a) if resumed else (n_all, everything)
    table = {
        "after_claim": (0, 0, 0, {"claimed": n}, 0),
        "reading": (0, 0, 0, {"claimed": n}, 0),
        "after_records": (rec, 0, 0, {"claimed": n}, 0),
        "after_rejects": (rec, BAD_REJECTS, 0, {"claimed": n}, 0),
        "after_flows": (rec, BAD_REJECTS, 0, {"claimed": n}, data),
        "after_done": (rec, BAD_REJECTS, 1, {"done": n}, data),
    }
    if resumed and point == "after_claim":
        return (a[0], BAD_REJECTS, 1, {"done": n_a, "claimed": n_all - n_a}, a[1])
    return table[point]


def test_the_crash_points_are_the_ones_the_code_has():
    """Each _fault("<point>") in ingest is in FAULT_POINTS, and each of those is in the code: a point added
    or moved is tested below by name."""
    import re

    code = (REPO / "flowspark" / "pipelines" / "ingest.py").read_text()
    assert set(re.findall(r'_fault\("([a-z_]+)"', code)) == set(ingest.FAULT_POINTS)


@contextlib.contextmanager
def _crash_armed(evidence: Path, point: str, mode: str = "raise"):
    """This process's hooks armed to crash in-process at `point` (hooks.Crashed raised there; mode "sigterm":
    this process sent SIGTERM there), for the block."""
    env = {**_hooks(evidence, FLOWSPARK_FAULT=point), "FLOWSPARK_FAULT_MODE": mode}
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _crash(spark, cfg, src, lake, point: str, kill: bool) -> None:
    """A run of ingest that stops at `point` and leaves the lake as it was there: SIGKILLed in a subprocess of
    its own (kill), or in this process by the hook's raise (no `except Exception` of ingest sees it; only its
    `finally` blocks run), which costs no fresh JVM. Either way the hook's evidence must show it stopped there."""
    evidence = lake.parent / "hooks"
    if kill:
        rc, _, err = _wait(_run(src, lake, env=_hooks(evidence, FLOWSPARK_FAULT=point)))
        assert rc == -9, err
        assert "TEST HOOKS ARMED" in err  # an armed hook says so before it acts
    else:
        assert point != "reading", "the reading crash comes from a watcher thread: only as a SIGKILL"
        with _crash_armed(evidence, point), pytest.raises(hooks.Crashed):
            run_ingest(spark, cfg, str(src), str(lake))
        err = ""
    assert _evidence(evidence, f"fault.{point}"), f"no crash at {point}: {err[-2000:]}"
    if point == "reading":  # the kill came while a read task was reading, not before any ran
        assert _evidence(evidence, "reading")


# The points crashed by a real SIGKILL in a subprocess (a fresh JVM, ~60 s each here); the others crash in-process.
KILLED = {"reading", "after_flows"}


def _crash_then_rerun(spark, cfg, src, lake, point, truth, clean_lake, resumed: bool, n_a: int, a: tuple):
    _crash(spark, cfg, src, lake, point, kill=point in KILLED and not resumed or point == "reading")
    everything = (truth["records"] + BAD_GOOD, truth["data_records"] + BAD_GOOD)
    assert _state(spark, lake) == _expected_state(point, n_a, truth["objects"], a, everything, resumed)
    s = run_ingest(spark, cfg, str(src), str(lake))
    if point != "after_done" or resumed:
        assert s.resumed or s.files_read, s.text()
    assert _ledger_states(spark, lake) == {"done": truth["objects"]}
    assert _duplicates(spark, lake) == 0
    _assert_same_lake(spark, lake, clean_lake)


@pytest.mark.slow
@pytest.mark.parametrize("point", ingest.FAULT_POINTS)
def test_sigkill_on_a_first_attempt_then_rerun_equals_a_clean_run(spark, cfg, source, clean_lake, tmp_path, point):
    src, truth, part_b = source
    n_a = truth["objects"] - len(part_b)
    _crash_then_rerun(spark, cfg, src, tmp_path / "lake", point, truth, clean_lake, False, n_a, (0, 0))


@pytest.mark.slow
@pytest.mark.parametrize("point", ingest.FAULT_POINTS)
def test_sigkill_on_a_resumed_claim_then_rerun_equals_a_clean_run(
    spark, cfg, source, resume_base, clean_lake, tmp_path, point
):
    src, truth, part_b = source
    lake = tmp_path / "lake"
    shutil.copytree(resume_base, lake)
    n_a = truth["objects"] - len(part_b)
    _crash_then_rerun(spark, cfg, src, lake, point, truth, clean_lake, True, n_a, _part_a(spark, clean_lake, part_b))


def _part_a(spark, lake, part_b) -> tuple[int, int]:
    """(flow_records rows, data records) of the objects of part A (every object but part B's) in a lake."""
    b = [tables.sql_string("file:" + str(place)) for _, place in part_b]
    rec = tables.read(spark, str(lake), tables.FLOW_RECORDS).where(f"source_file NOT IN ({', '.join(b)})")
    return rec.count(), rec.where("coalesce(log_status, 'OK') = 'OK'").count()


@pytest.mark.slow
def test_sigterm_stops_the_run_then_a_rerun_equals_a_clean_run(spark, cfg, source, clean_lake, tmp_path):
    """SIGTERM (how Airflow, EMR and Glue cancel a task) once the run has claimed its objects: the run cancels
    its Spark jobs and stops with one line and exit 143 (no trace), and the next run makes the lake whole."""
    import signal

    src, truth, _ = source
    lake = tmp_path / "lake"
    proc = _run(src, lake)
    claimed = lake / tables.INGESTED_FILES / "_delta_log" / "00000000000000000001.json"
    deadline = time.time() + 300
    while not claimed.exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    assert claimed.exists(), "the run never claimed its objects"
    proc.send_signal(signal.SIGTERM)
    rc, _, err = _wait(proc)
    assert rc == 143, err[-3000:]
    assert "flowspark ingest: interrupted (SIGTERM); rerun to complete it" in err
    assert "Traceback" not in err and "Py4J" not in err, err[-3000:]
    run_ingest(spark, cfg, str(src), str(lake))
    assert _ledger_states(spark, lake) == {"done": truth["objects"]}
    _assert_same_lake(spark, lake, clean_lake)


@pytest.mark.parametrize("point", [p for p in ingest.FAULT_POINTS if p != "reading"])
def test_sigterm_at_each_commit_point_stops_the_run_then_a_rerun_equals_a_clean_run(
    spark, cfg, source, clean_lake, tmp_path, monkeypatch, capsys, point
):
    """SIGTERM arriving at each commit point of ingest (the hook sends it to this process there; during the
    read is test_sigterm_stops_the_run_...): the CLI stops the run at its next Spark job, says "interrupted" in
    one line and exits 143, with no trace; the next run makes the lake equal to a clean run's."""
    import flowspark.cli

    src, truth, _ = source
    lake = tmp_path / "lake"
    monkeypatch.setattr(flowspark.cli, "spark_for", lambda c: spark)
    with _crash_armed(tmp_path / "hooks", point, mode="sigterm"):
        code = flowspark.cli.main(["ingest", "--source", str(src), "--lake", str(lake)])
    err = capsys.readouterr().err
    assert _evidence(tmp_path / "hooks", f"fault.{point}"), err[-2000:]
    assert code == 143, err[-3000:]
    assert "flowspark ingest: interrupted (SIGTERM); rerun to complete it" in err
    assert "Traceback" not in err and "Py4J" not in err, err[-3000:]
    run_ingest(spark, cfg, str(src), str(lake))
    assert _ledger_states(spark, lake) == {"done": truth["objects"]}
    assert _duplicates(spark, lake) == 0
    _assert_same_lake(spark, lake, clean_lake)


def test_hooks_are_off_unless_armed(spark, cfg, source, tmp_path, monkeypatch, caplog):
    """FLOWSPARK_FAULT alone (a variable left in a scheduler's environment) kills nothing, and says so."""
    src, truth, _ = source
    monkeypatch.setenv("FLOWSPARK_FAULT", "after_claim")
    monkeypatch.delenv("FLOWSPARK_TEST_HOOKS", raising=False)
    from flowspark.edges import hooks

    monkeypatch.setattr(hooks, "_announced", [])
    with caplog.at_level("WARNING", logger="flowspark"):
        s = run_ingest(spark, cfg, str(src), str(tmp_path / "lake"))
    assert s.reconciled() and s.files_read == s.files_found > 0
    assert any("test hooks stay off" in r.getMessage() for r in caplog.records)


# ---------------------------------------------------------------- concurrent runs


def _outcome(rc: int, err: str) -> None:
    """A run of a concurrent pair either succeeds or fails with one line naming the cause."""
    assert rc == 0 or (rc == 1 and len([ln for ln in err.strip().splitlines() if "TEST HOOK" not in ln]) == 1), err


def _race(src, lake, evidence: Path) -> None:
    """Two ingests started together whose claim MERGEs are held inside their transactions until both are
    there (FLOWSPARK_BARRIER=claim:2): both must arrive, and Delta must refuse one commit for the other's
    (a conflict, then retried). Without that evidence the test proves nothing about a race."""
    env = _hooks(evidence, FLOWSPARK_BARRIER="claim:2")
    a, b = _run(src, lake, env=env), _run(src, lake, env=env)
    (rc_a, out_a, err_a), (rc_b, out_b, err_b) = _wait(a), _wait(b)
    print("run A:", rc_a, out_a, err_a, "run B:", rc_b, out_b, err_b, sep="\n")
    _outcome(rc_a, err_a)
    _outcome(rc_b, err_b)
    assert len(_evidence(evidence, "barrier.claim")) == 2, "both runs reached their claim"
    assert _evidence(evidence, "conflict"), "one claim met the other's commit and was retried"


@pytest.mark.slow
def test_two_concurrent_ingests_of_the_same_objects(spark, cfg, source, clean_lake, tmp_path):
    """Two runs claiming the same objects at the same moment: no duplicate, the lake is the clean run's, and a
    rerun changes nothing."""
    src, truth, _ = source
    lake = tmp_path / "lake"
    _race(src, lake, tmp_path / "hooks")
    assert _duplicates(spark, lake) == 0
    s = run_ingest(spark, cfg, str(src), str(lake))
    assert s.files_read == 0 and not s.resumed
    assert _count(spark, lake, tables.FLOW_RECORDS) == truth["records"] + BAD_GOOD
    assert ledger.claim_stats(spark, str(lake)).count() == 1
    _assert_same_lake(spark, lake, clean_lake)


@pytest.mark.slow
def test_lake_with_one_day_then_two_concurrent_ingests_of_everything(spark, cfg, source, clean_lake, tmp_path):
    """One day in the lake, then two runs claiming the rest at the same moment, then a rerun: the counts are
    the truth's, no duplicate, the lake is the clean run's."""
    import datetime as dt

    src, truth, _ = source
    lake = tmp_path / "lake"
    d = dt.date.fromisoformat(min(truth["by_date"]))
    run_ingest(spark, cfg, str(src), str(lake), date_from=d, date_to=d)
    _race(src, lake, tmp_path / "hooks")
    assert _duplicates(spark, lake) == 0
    run_ingest(spark, cfg, str(src), str(lake))
    assert _count(spark, lake, tables.FLOW_RECORDS) == truth["records"] + BAD_GOOD
    assert _duplicates(spark, lake) == 0
    _assert_same_lake(spark, lake, clean_lake)


@pytest.mark.slow
def test_two_runs_merging_the_same_windows_at_once(spark, cfg, tmp_path):
    """Two runs of different objects whose records fall in the same windows, their flows merges held inside
    their transactions until both are there (FLOWSPARK_BARRIER=merge:2): one meets the other's commit, builds
    its merge again from the table as it now is, and flows ends as one clean run's."""
    gen = tmp_path / "gen"
    generate(str(gen), records=4_000, seed=44, accounts=1, regions=1, days=1, workers=1, quiet=True)
    objs = sorted(gen.rglob("*.log.gz"))
    src_a, src_b = tmp_path / "a", tmp_path / "b"
    for i, p in enumerate(objs):  # alternate 5-minute objects: both halves hold every hour's windows
        dest = (src_a if i % 2 else src_b) / p.relative_to(gen)
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(p, dest)
    lake, evidence = tmp_path / "lake", tmp_path / "hooks"
    env = _hooks(evidence, FLOWSPARK_BARRIER="merge:2")
    a, b = _run(src_a, lake, env=env), _run(src_b, lake, env=env)
    (rc_a, _, err_a), (rc_b, _, err_b) = _wait(a), _wait(b)
    _outcome(rc_a, err_a)
    _outcome(rc_b, err_b)
    assert len(_evidence(evidence, "barrier.merge")) == 2, "both runs reached their merge"
    assert _evidence(evidence, "conflict"), "one merge met the other's commit and was built again"
    for src in (src_a, src_b):  # a run that failed on the conflict is finished by its rerun
        run_ingest(spark, cfg, str(src), str(lake))
    clean = tmp_path / "clean"
    run_ingest(spark, cfg, str(src_a), str(clean))
    run_ingest(spark, cfg, str(src_b), str(clean))
    _assert_same_lake(spark, lake, clean, with_ledger=False)


# ---------------------------------------------------------------- rewritten objects, --force, rollback


def _small_source(root: Path) -> Path:
    truth = generate(str(root), records=3_000, seed=5, accounts=1, regions=1, days=1, workers=1, quiet=True)
    _merge(root)
    assert truth["records"] == 3_000
    return root


MORNING = 12  # the small source's objects ingested first by the failed-reconciliation tests


@pytest.fixture(scope="module")
def small(spark, cfg, tmp_path_factory):
    """(source, morning lake, clean lake, objects): the small source (3 000 records in 24 hourly objects)
    plus the object of rejects; a lake of its first 12 objects only (the morning: the rest arrived after that
    ingest); and a clean ingest of all of it, the reference. Read only: tests copy a lake they change."""
    root = tmp_path_factory.mktemp("eo_small")
    src = _small_source(root / "src")
    objects = sorted(src.rglob("*.log.gz"))
    (src / "extra").mkdir()
    (src / "extra" / "bad.log").write_text(BAD_OBJECT)
    later = root / "later"
    later.mkdir()
    for p in [*objects[MORNING:], src / "extra" / "bad.log"]:
        shutil.move(p, later / p.name)
    morning = root / "morning" / "lake"
    run_ingest(spark, cfg, str(src), str(morning))
    for p in objects[MORNING:]:
        shutil.move(later / p.name, p)
    shutil.move(later / "bad.log", src / "extra" / "bad.log")
    clean = root / "clean" / "lake"
    s = run_ingest(spark, cfg, str(src), str(clean))
    assert (s.files_read, s.rejected) == (len(objects) + 1, BAD_REJECTS)
    return src, morning, clean, len(objects) + 1


def _lines(path: Path) -> list[str]:
    with gzip.open(path, "rt") as fh:
        return fh.read().rstrip("\n").split("\n")


def _store(path: Path, lines: list[str], mtime_step: float = 0.0) -> None:
    """Write lines as a stored (level 0) gzip: its size is a function of the text's length only, so new
    text of the same length gives an object of the same size. mtime_step moves the modification time on,
    as a new PUT does."""
    before = os.stat(path)
    path.write_bytes(gzip.compress(("\n".join(lines) + "\n").encode(), compresslevel=0, mtime=0))
    os.utime(path, (before.st_atime, before.st_mtime + mtime_step))


def _rewritten(lines: list[str], same_size: bool) -> list[str]:
    """New content: every `bytes` value with its first and last digit swapped (same length, other values),
    and for another size one record line less."""
    out = [lines[0]]
    for line in lines[1:]:
        f = line.split(" ")
        if len(f) == 14 and f[9].isdigit() and len(f[9]) >= 2 and f[9][-1] != "0" and f[9][0] != f[9][-1]:
            f[9] = f[9][-1] + f[9][1:-1] + f[9][0]
        out.append(" ".join(f))
    return out if same_size else [out[0], *out[2:]]


@pytest.mark.parametrize("same_size", [True, False], ids=["same-size", "other-size"])
def test_rewritten_object_replaces_its_rows(spark, cfg, tmp_path, same_size):
    """An object rewritten after its ingest (same size, or another): its rows are the new content's, none
    of the old; compared with a clean ingest of the rewritten source."""
    src = _small_source(tmp_path / "src")
    target = sorted(src.rglob("*.log.gz"))[3]
    old = _lines(target)
    _store(target, old)
    lake = tmp_path / "lake"
    run_ingest(spark, cfg, str(src), str(lake))
    size_before = target.stat().st_size
    new = _rewritten(old, same_size)
    assert new != old
    _store(target, new, mtime_step=10)
    assert (target.stat().st_size == size_before) == same_size

    s = run_ingest(spark, cfg, str(src), str(lake))
    assert (s.files_read, s.records) == (1, len(new) - 1)
    clean = tmp_path / "clean"
    run_ingest(spark, cfg, str(src), str(clean))
    _assert_same_lake(spark, lake, clean, with_ledger=False)
    assert _duplicates(spark, lake) == 0
    # the ledger: one done claim per version of the object, the newest being the current identity
    led = tables.read(spark, str(lake), tables.INGESTED_FILES).where(F.col("source_file").endswith(target.name))
    assert sorted((r.size, r.state) for r in led.collect()) == sorted(
        [(size_before, "done"), (target.stat().st_size, "done")]
    )


def test_force_reads_again_and_replaces(spark, cfg, small, tmp_path):
    """--force: the objects are read again and their rows replaced, never appended a second time."""
    src, _, clean, n_objects = small
    lake = tmp_path / "lake"
    shutil.copytree(clean, lake)  # every object ingested once
    again = run_ingest(spark, cfg, str(src), str(lake), force=True)
    assert (again.files_read, again.files_skipped) == (n_objects, 0)
    assert _count(spark, lake, tables.FLOW_RECORDS) == 3_000 + BAD_GOOD
    assert _duplicates(spark, lake) == 0
    _assert_same_lake(spark, lake, clean, with_ledger=False)


def _inject(monkeypatch, table: str, how: str) -> None:
    """Make ingest's write of `table` lose one row or double one (tables.write_once, which every claim's
    write goes through): the failures exactly-once exists to catch, in both directions."""
    real = tables.write_once

    def write_once(df, lake, name, *a, **k):
        if name == table:  # its first row (by file and line): none, or twice (one pass, no second read)
            from pyspark.sql import Window

            line = "source_line" if "source_line" in df.columns else "line_number"
            first = F.row_number().over(Window.orderBy("source_file", line)) == 1
            copies = F.when(F.col("__first"), F.array() if how == "lost" else F.array(F.lit(1), F.lit(2)))
            df = df.withColumn("__first", first)  # the window first: a generator cannot share its projection
            df = df.withColumn("__n", F.explode(F.coalesce(copies, F.array(F.lit(1))))).drop("__n", "__first")
        return real(df, lake, name, *a, **k)

    monkeypatch.setattr(tables, "write_once", write_once)


@pytest.mark.parametrize(
    "table,how",
    [(tables.FLOW_RECORDS, "lost"), (tables.FLOW_RECORDS, "doubled"), (tables.FLOW_REJECTS, "lost"),
     (tables.FLOW_REJECTS, "doubled")],
)  # fmt: skip
def test_failed_reconciliation_removes_the_claims_rows_then_rerun_converges(
    spark, cfg, small, tmp_path, monkeypatch, table, how
):
    """A write that lost or doubled a row (records or rejects) does not reconcile: the claim's rows are
    removed, the rows of an earlier ingest stay, the objects are free again; a rerun ingests them."""
    src, morning, clean, n_objects = small
    lake = tmp_path / "lake"
    shutil.copytree(morning, lake)  # the morning's 12 objects ingested; the rest arrived since
    before = _comparable(spark, lake)
    before = {k: v.localCheckpoint() for k, v in before.items() if k != "ingested_files"}

    _inject(monkeypatch, table, how)
    with pytest.raises(ReconciliationError, match="does not reconcile"):
        run_ingest(spark, cfg, str(src), str(lake))
    after = _comparable(spark, lake)
    for name, df in before.items():  # the earlier ingest's rows stay, every row of the failed claim went
        assert after[name].exceptAll(df).count() == 0 and df.exceptAll(after[name]).count() == 0, name
    assert _ledger_states(spark, lake) == {"done": MORNING, "void": n_objects - MORNING}
    monkeypatch.undo()

    s = run_ingest(spark, cfg, str(src), str(lake))
    assert s.files_read == n_objects - MORNING
    _assert_same_lake(spark, lake, clean, with_ledger=False)
