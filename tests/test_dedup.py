"""dedup: exact conservation, the right runts, windows that split a flow, idempotent reruns."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from chispa import assert_df_equality
from pyspark.sql import functions as F

from flowspark.core import dedup
from flowspark.edges import tables
from flowspark.generator import generate
from flowspark.pipelines.common import ReconciliationError
from flowspark.pipelines.dedup import _all_null, run_dedup
from flowspark.pipelines.ingest import run_ingest

REPO = Path(__file__).resolve().parents[1]

T = dt.datetime
RECORD_DDL = (
    "account_id string, interface_id string, srcaddr string, dstaddr string, srcport int, dstport int, "
    "protocol int, packets bigint, bytes bigint, start timestamp, `end` timestamp, action string, "
    "log_status string, tcp_flags int, vpc_id string"
)


def _records(spark, rows):
    df = spark.createDataFrame(rows, RECORD_DDL)
    return df.withColumn("event_date", F.to_date("start"))


def test_compact_sums_counts_and_splits_at_window_edges(spark):
    a = ("111", "eni-a", "10.0.0.1", "52.1.1.1", 40000, 443, 6)
    rows = [
        # one flow, three records in the 10:00 hour, one of them an exact duplicate line
        (*a, 10, 1000, T(2024, 6, 1, 10, 0, 5), T(2024, 6, 1, 10, 1, 0), "ACCEPT", "OK", 2, "vpc-1"),
        (*a, 20, 2000, T(2024, 6, 1, 10, 1, 5), T(2024, 6, 1, 10, 2, 0), "ACCEPT", "OK", 16, "vpc-1"),
        (*a, 20, 2000, T(2024, 6, 1, 10, 1, 5), T(2024, 6, 1, 10, 2, 0), "ACCEPT", "OK", 16, "vpc-1"),
        # the same flow continues after 11:00: a new window, a new row
        (*a, 5, 500, T(2024, 6, 1, 11, 0, 0), T(2024, 6, 1, 11, 0, 59), "ACCEPT", "OK", 1, "vpc-1"),
        # same 5-tuple, REJECT: a different key (action is in the key)
        (*a, 1, 40, T(2024, 6, 1, 10, 30, 0), T(2024, 6, 1, 10, 30, 1), "REJECT", "OK", None, None),
        # NODATA: not a flow
        ("111", "eni-a", None, None, None, None, None, None, None, T(2024, 6, 1, 10, 0, 0), T(2024, 6, 1, 10, 1, 0),
         None, "NODATA", None, None),
    ]
    got = _records(spark, rows).transform(dedup.compact("1h", carry=("vpc_id",)))
    expected = spark.createDataFrame(
        [
            (T(2024, 6, 1, 10), *a, "ACCEPT", 3, 50, 5000, T(2024, 6, 1, 10, 0, 5), T(2024, 6, 1, 10, 2, 0), 18, "vpc-1",
             dt.date(2024, 6, 1)),
            (T(2024, 6, 1, 11), *a, "ACCEPT", 1, 5, 500, T(2024, 6, 1, 11, 0, 0), T(2024, 6, 1, 11, 0, 59), 1, "vpc-1",
             dt.date(2024, 6, 1)),
            (T(2024, 6, 1, 10), *a, "REJECT", 1, 1, 40, T(2024, 6, 1, 10, 30, 0), T(2024, 6, 1, 10, 30, 1), None, None,
             dt.date(2024, 6, 1)),
        ],
        "window_start timestamp, account_id string, interface_id string, srcaddr string, dstaddr string, "
        "srcport int, dstport int, protocol int, action string, records bigint, packets bigint, bytes bigint, "
        "start timestamp, `end` timestamp, tcp_flags int, vpc_id string, event_date date",
    )
    assert_df_equality(got, expected, ignore_row_order=True, ignore_nullable=True)
    # a day window merges the two hours; window none too
    for w in ("1d", "none"):
        merged = _records(spark, rows).transform(dedup.compact(w, carry=()))
        accept = merged.where("action = 'ACCEPT'").collect()
        assert [(r.records, r.packets, r.bytes) for r in accept] == [(4, 55, 5500)]


def test_all_null_carried_columns_are_written_as_nulls_not_grouped_on(spark, cfg):
    a = ("111", "eni-a", "10.0.0.1", "52.1.1.1", 40000, 443, 6)
    rows = [
        (*a, 10, 1000, T(2024, 6, 1, 10, 0, 5), T(2024, 6, 1, 10, 1, 0), "ACCEPT", "OK", 2, "vpc-1"),
        (*a, 20, 2000, T(2024, 6, 1, 10, 1, 5), T(2024, 6, 1, 10, 2, 0), "ACCEPT", "OK", 16, "vpc-1"),
        (*a, 20, 2000, T(2024, 6, 1, 10, 1, 5), T(2024, 6, 1, 10, 2, 0), "ACCEPT", "OK", 16, "vpc-2"),
        (*a, 1, 40, T(2024, 6, 1, 10, 30, 0), T(2024, 6, 1, 10, 30, 1), "REJECT", "OK", None, None),
    ]
    recs = _records(spark, rows).withColumn("subnet_id", F.lit(None).cast("string"))
    assert _all_null(recs, ("vpc_id", "subnet_id", "tcp_flags")) == ["subnet_id"]
    carry = ("vpc_id", "subnet_id")
    full = recs.transform(dedup.compact("1h", carry=carry))
    fast = recs.transform(dedup.compact("1h", carry=carry, null=["subnet_id"]))
    assert_df_equality(fast, full, ignore_row_order=True)
    assert fast.count() == 3  # vpc-1 and vpc-2 stay apart: a carried value that varies splits, never merges
    plan = fast._jdf.queryExecution().executedPlan().toString()
    assert "vpc_id" in plan.split("HashAggregate(keys=[", 1)[1].split("]", 1)[0]
    assert "subnet_id" not in plan.split("HashAggregate(keys=[", 1)[1].split("]", 1)[0]
    # compaction is sized by its input: one shuffle partition per 16 MB, never fewer than configured
    from flowspark.pipelines.dedup import dedup_conf

    assert dedup_conf(cfg, 0)["spark.sql.shuffle.partitions"] == str(cfg.spark.shuffle_partitions)
    assert dedup_conf(cfg, 190 * 2**20)["spark.sql.shuffle.partitions"] == "12"


def test_status_counts_and_bidirectional(spark):
    c = ("111", "eni-a")
    rows = [
        (*c, "10.0.0.5", "93.184.216.34", 51000, 443, 6, 10, 900, T(2024, 6, 1, 9, 0), T(2024, 6, 1, 9, 1), "ACCEPT", "OK", 2, None),
        (*c, "93.184.216.34", "10.0.0.5", 443, 51000, 6, 12, 15000, T(2024, 6, 1, 9, 0), T(2024, 6, 1, 9, 1), "ACCEPT", "OK", 18, None),
        (*c, "93.184.216.34", "10.0.0.5", 443, 51000, 6, 3, 200, T(2024, 6, 1, 9, 1), T(2024, 6, 1, 9, 2), "ACCEPT", "OK", 1, None),
        # ICMP: ports 0 both ways, address order decides
        (*c, "10.0.0.9", "10.0.0.5", 0, 0, 1, 1, 84, T(2024, 6, 1, 9, 0), T(2024, 6, 1, 9, 1), "ACCEPT", "OK", None, None),
        (*c, None, None, None, None, None, None, None, T(2024, 6, 1, 9, 0), T(2024, 6, 1, 9, 1), None, "NODATA", None, None),
        (*c, None, None, None, None, None, None, None, T(2024, 6, 1, 9, 5), T(2024, 6, 1, 9, 6), None, "NODATA", None, None),
        (*c, None, None, None, None, None, None, None, T(2024, 6, 1, 9, 5), T(2024, 6, 1, 9, 6), None, "SKIPDATA", None, None),
    ]
    recs = _records(spark, rows)
    conv = recs.transform(dedup.bidirectional("1h")).select(
        "client_addr", "client_port", "server_addr", "server_port", "records",
        "request_packets", "request_bytes", "response_packets", "response_bytes",
    )
    expected = spark.createDataFrame(
        [
            ("10.0.0.5", 51000, "93.184.216.34", 443, 3, 10, 900, 15, 15200),
            ("10.0.0.5", 0, "10.0.0.9", 0, 1, 0, 0, 1, 84),
        ],
        conv.schema,
    )
    assert_df_equality(conv, expected, ignore_row_order=True, ignore_nullable=True)
    counts = recs.transform(dedup.status_counts("1h")).select("log_status", "records")
    assert sorted(map(tuple, counts.collect())) == [("NODATA", 2), ("SKIPDATA", 1)]


def test_bad_window_and_key_fail_with_clear_messages():
    with pytest.raises(ValueError, match="must look like 10m, 1h, 1d or none"):
        dedup.window_seconds("hourly")
    with pytest.raises(ValueError, match="does not divide a day"):
        dedup.window_seconds("7h")
    with pytest.raises(ValueError, match="unknown column"):
        dedup.validate_key(["srcaddr", "nope"])


@pytest.fixture(scope="module")
def gen_lake(spark, cfg, tmp_path_factory):
    out = tmp_path_factory.mktemp("gen_dedup")
    truth = generate(str(out), records=40_000, seed=5, accounts=2, regions=1, days=2, workers=1, quiet=True)
    lake = tmp_path_factory.mktemp("lake_dedup")
    run_ingest(spark, cfg, str(out), str(lake))
    return lake, truth


def test_generated_dedup_matches_truth_and_reruns_are_idempotent(spark, cfg, gen_lake):
    lake, truth = gen_lake
    s = run_dedup(spark, cfg, str(lake))
    assert s.conserved()
    assert (s.input_records, s.input_packets, s.input_bytes) == (truth["data_records"], truth["packets"], truth["bytes"])
    w = truth["window_1h"]
    assert s.output_rows == w["flow_keys"]
    assert (s.runts_accept, s.runts_reject) == (w["runt_keys_by_action"]["ACCEPT"], w["runt_keys_by_action"]["REJECT"])
    assert (s.nodata, s.skipdata) == (truth["nodata"], truth["skipdata"])
    assert s.records_in_multi_record_keys == w["records_in_multi_record_keys"]
    flows1 = tables.read(spark, str(lake), tables.FLOWS)
    first = flows1.collect()
    run_dedup(spark, cfg, str(lake))
    flows2 = tables.read(spark, str(lake), tables.FLOWS)
    assert_df_equality(spark.createDataFrame(first, flows2.schema), flows2, ignore_row_order=True)
    stats = tables.read(spark, str(lake), tables.DEDUP_STATS).collect()
    assert len(stats) == 2 and stats[0].output_rows == w["flow_keys"]

    # window none = the notebook's key over all time: its distinct keys and runts
    s_none = run_dedup(spark, cfg, str(lake), window="none")
    assert s_none.output_rows == truth["flow_keys"]
    assert (s_none.runts_accept, s_none.runts_reject) == (
        truth["runt_keys_by_action"]["ACCEPT"],
        truth["runt_keys_by_action"]["REJECT"],
    )
    assert s_none.multi_record_keys == truth["multi_record_keys"]


def test_one_day_rerun_replaces_only_that_day(spark, cfg, gen_lake):
    lake, truth = gen_lake
    run_dedup(spark, cfg, str(lake))
    days = sorted(truth["by_date"])
    before = tables.read(spark, str(lake), tables.FLOWS).where(F.col("event_date") == days[0]).collect()
    d2 = dt.date.fromisoformat(days[1])
    s = run_dedup(spark, cfg, str(lake), date_from=d2, date_to=d2)
    flows = tables.read(spark, str(lake), tables.FLOWS)
    assert flows.where(F.col("event_date") == days[1]).count() == s.output_rows
    after = flows.where(F.col("event_date") == days[0])
    assert_df_equality(spark.createDataFrame(before, after.schema), after, ignore_row_order=True)
    ops = tables.last_operation_metrics(spark, str(lake), tables.FLOWS)
    assert int(ops["numRemovedFiles"]) > 0 and int(ops["numOutputRows"]) == s.output_rows


def test_conservation_failure_is_loud(spark, cfg, gen_lake, monkeypatch):
    lake, _ = gen_lake
    real = dedup.compact

    def lossy(*a, **k):
        inner = real(*a, **k)
        return lambda df: inner(df).where(F.col("records") > 1)  # drops the runts, like the notebook

    run_dedup(spark, cfg, str(lake))
    good = tables.read(spark, str(lake), tables.FLOWS).collect()
    monkeypatch.setattr(dedup, "compact", lossy)
    with pytest.raises(ReconciliationError, match="did not conserve"):
        run_dedup(spark, cfg, str(lake))
    after = tables.read(spark, str(lake), tables.FLOWS)
    assert_df_equality(spark.createDataFrame(good, after.schema), after, ignore_row_order=True)
