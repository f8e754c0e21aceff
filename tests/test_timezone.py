"""Timestamps are stored as UTC instants whatever the driver's time zone (issue 10, item 8).

PySpark turns a naive datetime into an instant with the Python process's local zone, and a collected
timestamp back into a naive local datetime: so these tests compare instants (unix_seconds in Spark, or
aware datetimes), never naive wall-clock values.
"""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from pyspark.sql import functions as F

from flowspark.core.schema import record_schema
from flowspark.edges import tables
from flowspark.pipelines.dedup import run_dedup
from flowspark.pipelines.ledger import claim_stats

REPO = Path(__file__).resolve().parents[1]
NEW_YORK = "America/New_York"
UTC = dt.timezone.utc


@pytest.fixture
def new_york(monkeypatch):
    """This Python process in New York time (the JVM keeps its own zone, as a real driver's would)."""
    monkeypatch.setenv("TZ", NEW_YORK)
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


@pytest.mark.slow
def test_cli_ingest_in_new_york_stores_utc_instants(spark, samples, tmp_path):
    lake = tmp_path / "lake"
    env = {**os.environ, "TZ": NEW_YORK}
    t0 = int(time.time())
    run = subprocess.run(
        [sys.executable, "-m", "flowspark.cli", "ingest", "--source", str(samples / "aws-docs-flow-log-examples"),
         "--lake", str(lake), "--master", "local[1]"],
        env=env, cwd=REPO, capture_output=True, text=True, timeout=900,
    )
    t1 = int(time.time()) + 1
    assert run.returncode == 0, run.stderr[-3000:]
    stats = claim_stats(spark, str(lake)).select(F.unix_seconds("done_at").alias("at"))
    at = [r.at for r in stats.collect()]
    assert len(at) == 1 and t0 <= at[0] <= t1 and t1 - t0 < 900  # a zone shift would be off by 4-5 hours
    # a record's start is the epoch second in its line (01_default_accepted_rejected.log, line 2)
    first = tables.read(spark, str(lake), tables.FLOW_RECORDS).where(
        F.col("source_file").endswith("01_default_accepted_rejected.log") & (F.col("source_line") == 2)
    )
    assert [r.s for r in first.select(F.unix_seconds("start").alias("s")).collect()] == [1418530010]


def test_dedup_in_new_york_stores_utc_instants(spark, cfg, tmp_path, new_york):
    start = dt.datetime(2024, 6, 1, 23, 30, tzinfo=UTC)  # 19:30 in New York: another day there
    row = dict(
        version=2, account_id="111", interface_id="eni-a", srcaddr="10.0.0.1", dstaddr="52.1.1.1", srcport=40000,
        dstport=443, protocol=6, packets=10, bytes=1000, action="ACCEPT", log_status="OK", start=start,
        end=start + dt.timedelta(seconds=30), event_date=dt.date(2024, 6, 1), source_file="x.log", source_line=1,
    )
    schema = record_schema()
    lineage = {f.name: "test" for f in schema.fields if not f.nullable and f.name not in row}
    records = spark.createDataFrame([tuple({**lineage, **row}.get(n) for n in schema.fieldNames())], schema)
    tables.append(records, str(tmp_path), tables.FLOW_RECORDS, partition_by=["event_date"])
    t0 = int(time.time())
    run_dedup(spark, cfg, str(tmp_path))
    t1 = int(time.time()) + 1
    flow = tables.read(spark, str(tmp_path), tables.FLOWS).select(
        F.unix_seconds("window_start").alias("window"), F.unix_seconds("start").alias("start"), "event_date"
    )
    assert [tuple(r) for r in flow.collect()] == [
        (int(dt.datetime(2024, 6, 1, 23, tzinfo=UTC).timestamp()), int(start.timestamp()), dt.date(2024, 6, 1))
    ]
    stats = tables.read(spark, str(tmp_path), tables.DEDUP_STATS)
    at = [r.at for r in stats.select(F.unix_seconds("computed_at").alias("at")).collect()]
    assert len(at) == 1 and t0 <= at[0] <= t1
    # collected, the same instant is a naive New York wall-clock time: compare it as an instant
    collected = tables.read(spark, str(tmp_path), tables.FLOWS).first()["start"]
    assert collected.tzinfo is None and collected.hour == 19
    assert collected.astimezone(UTC) == start


def test_stats_rows_refuse_naive_datetimes(spark):
    from flowspark.pipelines.common import one_row, utc_now

    with pytest.raises(ValueError, match="naive datetime"):
        one_row(spark, {"at": dt.datetime(2024, 6, 1, 12)})
    now = utc_now()
    got = one_row(spark, {"at": now}).select(F.unix_micros("at").alias("us")).first()["us"]
    assert got == int(now.timestamp()) * 1_000_000 + now.microsecond
