"""Ingest exactly once, whatever happens: SIGKILL at named points then rerun, concurrent runs, rewritten
objects, --force, a failed reconciliation. Every check compares whole tables (duplicates included) with a
clean run's lake or with the generator's truth.

The crash and concurrency tests run `flowspark ingest` as subprocesses (a fresh JVM each, killed with
SIGKILL by the pipeline's fault points: FLOWSPARK_FAULT=<point>; FLOWSPARK_BARRIER makes two runs claim at
the same moment).
"""

from __future__ import annotations

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
from flowspark.edges import tables
from flowspark.generator import generate
from flowspark.pipelines import ingest
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


def _merge_hourly(root: Path) -> int:
    """Concatenate the generator's 5-minute objects into one object per flow log and hour (fewer, bigger
    objects: the tests pay per object). Keeps the AWS name pattern (the date of records without start)."""
    groups: dict[tuple[Path, str], list[Path]] = defaultdict(list)
    for p in sorted(root.rglob("*.log.gz")):
        stem = p.name.split("_")
        hour = stem[4][:11]  # 20240601T00
        groups[(p.parent, "_".join(stem[:4]) + f"_{hour}00Z")].append(p)
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


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    """Two days of generated records in 48 objects, plus one object with rejects."""
    out = tmp_path_factory.mktemp("eo_source")
    truth = generate(str(out), records=40_000, seed=23, accounts=1, regions=1, days=2, workers=1, quiet=True)
    objects = _merge_hourly(out)
    (out / "extra").mkdir()
    (out / "extra" / "bad.log").write_text(BAD_OBJECT)
    truth["objects"] = objects + 1
    return out, truth


@pytest.fixture(scope="module")
def clean_lake(spark, cfg, source, tmp_path_factory):
    """The reference: one clean ingest of the source."""
    src, truth = source
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
    """Every table a run writes, without what differs between runs by design (ingest ids, times)."""
    rec = tables.read(spark, str(lake), tables.FLOW_RECORDS)
    rec = rec.drop("ingest_id").withColumn("extra_fields", F.to_json("extra_fields"))  # maps: no set operations
    if tables.exists(spark, str(lake), tables.FLOW_REJECTS):
        rej = tables.read(spark, str(lake), tables.FLOW_REJECTS).drop("ingest_id")
    else:  # a lake no reject was written to
        rej = spark.createDataFrame([], reject_schema()).drop("ingest_id")
    led = tables.read(spark, str(lake), tables.INGESTED_FILES)
    led = led.select(*[c for c in ("source_file", "size", "modification_time_ms", "state") if c in led.columns])
    return {"flow_records": rec, "flow_rejects": rej, "ingested_files": led}


def _assert_same_lake(spark, got_lake, want_lake, ledger: bool = True) -> None:
    got, want = _comparable(spark, got_lake), _comparable(spark, want_lake)
    for name in want if ledger else ("flow_records", "flow_rejects"):
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


@pytest.mark.slow
def test_sigkill_at_every_point_then_rerun_equals_a_clean_run(spark, source, clean_lake, tmp_path):
    """SIGKILL during the read, right after the flow_records commit, between flow_rejects and the stats,
    and between the stats and the ledger's done; each rerun resumes the same claim; the last one finishes.
    The state after each kill shows where it landed; the end state is the clean run's, table by table."""
    src, truth = source
    lake = tmp_path / "lake"
    n_objects = truth["objects"]

    rc, _, err = _wait(_run(src, lake, env={"FLOWSPARK_FAULT": "reading"}))
    assert rc == -9, err
    assert _count(spark, lake, tables.FLOW_RECORDS) == 0  # killed before the first data commit
    assert _ledger_states(spark, lake) == {"claimed": n_objects}

    rc, _, err = _wait(_run(src, lake, env={"FLOWSPARK_FAULT": "after_records"}))
    assert rc == -9, err
    assert _count(spark, lake, tables.FLOW_RECORDS) == truth["records"] + BAD_GOOD
    assert _count(spark, lake, tables.FLOW_REJECTS) == 0
    assert _ledger_states(spark, lake) == {"claimed": n_objects}

    rc, _, err = _wait(_run(src, lake, env={"FLOWSPARK_FAULT": "after_rejects"}))
    assert rc == -9, err
    assert _count(spark, lake, tables.FLOW_RECORDS) == truth["records"] + BAD_GOOD  # not written again
    assert _count(spark, lake, tables.FLOW_REJECTS) == BAD_REJECTS
    assert _count(spark, lake, tables.INGEST_STATS) == 0

    rc, _, err = _wait(_run(src, lake, env={"FLOWSPARK_FAULT": "after_stats"}))
    assert rc == -9, err
    assert _count(spark, lake, tables.INGEST_STATS) == 1
    assert _ledger_states(spark, lake) == {"claimed": n_objects}

    rc, out, err = _wait(_run(src, lake))
    assert rc == 0, err
    assert "resumed" in out and "check          records" in out
    assert _ledger_states(spark, lake) == {"done": n_objects}
    assert _count(spark, lake, tables.INGEST_STATS) == 1
    assert _duplicates(spark, lake) == 0
    _assert_same_lake(spark, lake, clean_lake)


@pytest.mark.slow
def test_sigkill_after_first_commit_then_rerun_does_not_double(spark, source, clean_lake, tmp_path):
    """The user's reproduction: kill right after the flow_records commit, rerun: not twice the rows."""
    src, truth = source
    lake = tmp_path / "lake"
    rc, _, err = _wait(_run(src, lake, env={"FLOWSPARK_FAULT": "after_records"}))
    assert rc == -9, err
    rc, out, err = _wait(_run(src, lake))
    assert rc == 0, err
    assert _count(spark, lake, tables.FLOW_RECORDS) == truth["records"] + BAD_GOOD
    _assert_same_lake(spark, lake, clean_lake)


# ---------------------------------------------------------------- concurrent runs


def _outcome(rc: int, err: str) -> None:
    """A run of a concurrent pair either succeeds or fails with one line naming the cause."""
    assert rc == 0 or (rc == 1 and len(err.strip().splitlines()) == 1), err


@pytest.mark.slow
def test_two_concurrent_ingests_of_the_same_objects(spark, source, clean_lake, tmp_path):
    """Two runs started together, held until both are ready to claim: no duplicate, the lake is the clean
    run's, and a rerun changes nothing."""
    src, truth = source
    lake = tmp_path / "lake"
    env = {"FLOWSPARK_BARRIER": f"{tmp_path / 'barrier'}:2"}
    a, b = _run(src, lake, env=env), _run(src, lake, env=env)
    (rc_a, out_a, err_a), (rc_b, out_b, err_b) = _wait(a), _wait(b)
    _outcome(rc_a, err_a)
    _outcome(rc_b, err_b)
    print("run A:", rc_a, out_a, err_a, "run B:", rc_b, out_b, err_b, sep="\n")
    assert _duplicates(spark, lake) == 0
    rc, out, err = _wait(_run(src, lake))
    assert rc == 0, err
    assert "0 read" in out
    assert _count(spark, lake, tables.FLOW_RECORDS) == truth["records"] + BAD_GOOD
    assert _count(spark, lake, tables.INGEST_STATS) == 1
    _assert_same_lake(spark, lake, clean_lake)


@pytest.mark.slow
def test_lake_with_one_day_then_two_concurrent_ingests_of_everything(spark, cfg, source, clean_lake, tmp_path):
    """The user's second reproduction: one day in the lake, two concurrent ingests of the whole source, a
    rerun: the counts are the truth's, no duplicate, the lake is the clean run's."""
    src, truth = source
    lake = tmp_path / "lake"
    day1 = min(truth["by_date"])
    import datetime as dt

    d = dt.date.fromisoformat(day1)
    run_ingest(spark, cfg, str(src), str(lake), date_from=d, date_to=d)
    a, b = _run(src, lake), _run(src, lake)
    (rc_a, _, err_a), (rc_b, _, err_b) = _wait(a), _wait(b)
    _outcome(rc_a, err_a)
    _outcome(rc_b, err_b)
    assert _duplicates(spark, lake) == 0
    rc, _, err = _wait(_run(src, lake))
    assert rc == 0, err
    assert _count(spark, lake, tables.FLOW_RECORDS) == truth["records"] + BAD_GOOD
    assert _duplicates(spark, lake) == 0
    _assert_same_lake(spark, lake, clean_lake)


# ---------------------------------------------------------------- rewritten objects, --force, rollback


def _small_source(root: Path) -> Path:
    truth = generate(str(root), records=3_000, seed=5, accounts=1, regions=1, days=1, workers=1, quiet=True)
    _merge_hourly(root)
    assert truth["records"] == 3_000
    return root


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
    _assert_same_lake(spark, lake, clean, ledger=False)
    assert _duplicates(spark, lake) == 0
    # the ledger: one done claim per version of the object, the newest being the current identity
    led = tables.read(spark, str(lake), tables.INGESTED_FILES).where(F.col("source_file").endswith(target.name))
    assert sorted((r.size, r.state) for r in led.collect()) == sorted(
        [(size_before, "done"), (target.stat().st_size, "done")]
    )


def test_force_reads_again_and_replaces(spark, cfg, tmp_path):
    """--force: the objects are read again and their rows replaced, never appended a second time."""
    src = _small_source(tmp_path / "src")
    lake = tmp_path / "lake"
    first = run_ingest(spark, cfg, str(src), str(lake))
    again = run_ingest(spark, cfg, str(src), str(lake), force=True)
    assert again.files_read == first.files_read and again.files_skipped == 0
    assert _count(spark, lake, tables.FLOW_RECORDS) == 3_000
    assert _duplicates(spark, lake) == 0
    clean = tmp_path / "clean"
    run_ingest(spark, cfg, str(src), str(clean))
    _assert_same_lake(spark, lake, clean, ledger=False)


def test_failed_reconciliation_removes_the_claims_rows_then_rerun_converges(spark, cfg, tmp_path, monkeypatch):
    """A reconciliation mismatch (records counted one too many, injected in ingest's own count) removes
    exactly that claim's rows, leaves the rows of an earlier ingest, frees the objects; a rerun ingests them."""
    src = _small_source(tmp_path / "src")
    lake = tmp_path / "lake"
    day_objects = sorted(src.rglob("*.log.gz"))
    later = tmp_path / "later"
    later.mkdir()
    for p in day_objects[12:]:  # the afternoon arrives later
        shutil.move(p, later / p.name)
    run_ingest(spark, cfg, str(src), str(lake))
    before = _count(spark, lake, tables.FLOW_RECORDS)
    for p in later.iterdir():
        shutil.move(p, day_objects[0].parent / p.name)

    real = ingest._metric_columns

    def miscounted():
        cols = real()
        return [
            c
            if not str(c).endswith("AS records'>")
            else (F.count(F.when(F.col("kind") == "record", 1)) + 1).alias("records")
            for c in cols
        ]

    monkeypatch.setattr(ingest, "_metric_columns", miscounted)
    with pytest.raises(ReconciliationError, match="does not reconcile"):
        run_ingest(spark, cfg, str(src), str(lake))
    assert _count(spark, lake, tables.FLOW_RECORDS) == before  # the earlier ingest's rows stay, the new ones went
    assert _ledger_states(spark, lake) == {"done": 12, "void": len(day_objects) - 12}
    monkeypatch.undo()

    s = run_ingest(spark, cfg, str(src), str(lake))
    assert s.files_read == len(day_objects) - 12
    clean = tmp_path / "clean"
    run_ingest(spark, cfg, str(src), str(clean))
    _assert_same_lake(spark, lake, clean, ledger=False)
