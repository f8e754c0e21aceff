"""dedup: exact conservation, the right runts, windows that split a flow, idempotent reruns, ranges that
neither lose nor double count, every field of every format kept, TGW attachments apart."""

from __future__ import annotations

import datetime as dt
import glob
import gzip
import os
import re
from pathlib import Path

import pytest
from chispa import assert_df_equality
from pyspark.sql import functions as F

from flowspark.cli import main
from flowspark.core import dedup
from flowspark.core.schema import EXTRA_FIELDS_COLUMN, FIELDS, record_schema
from flowspark.edges import tables
from flowspark.generator import generate
from flowspark.pipelines.common import ReconciliationError
from flowspark.pipelines.dedup import _all_null, dedup_conf, run_dedup
from flowspark.pipelines.ingest import run_ingest

REPO = Path(__file__).resolve().parents[1]
UTC = dt.timezone.utc


def T(*args: int) -> dt.datetime:
    """A UTC instant (aware: Spark stores it as that instant whatever the test process's time zone)."""
    return dt.datetime(*args, tzinfo=UTC)

RECORD_DDL = (
    "account_id string, interface_id string, srcaddr string, dstaddr string, srcport int, dstport int, "
    "protocol int, packets bigint, bytes bigint, start timestamp, `end` timestamp, action string, "
    "log_status string, tcp_flags int, vpc_id string"
)


def _records(spark, rows):
    df = spark.createDataFrame(rows, RECORD_DDL)
    return df.withColumn("event_date", F.to_date("start"))


def _count(spark, lake, name) -> int:
    return tables.read(spark, str(lake), name).count() if tables.exists(spark, str(lake), name) else 0


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
    tgw = (None, None, None)  # VPC records: the Transit Gateway identity columns are null
    lost = (None, None, None, None)  # packets-lost-* are not in this format
    d = dt.date(2024, 6, 1)
    expected = spark.createDataFrame(
        [
            (T(2024, 6, 1, 10), *a, "ACCEPT", *tgw, 3, 50, 5000, T(2024, 6, 1, 10, 0, 5), T(2024, 6, 1, 10, 2, 0), 18,
             *lost, "vpc-1", d),
            (T(2024, 6, 1, 11), *a, "ACCEPT", *tgw, 1, 5, 500, T(2024, 6, 1, 11, 0, 0), T(2024, 6, 1, 11, 0, 59), 1,
             *lost, "vpc-1", d),
            (T(2024, 6, 1, 10), *a, "REJECT", *tgw, 1, 1, 40, T(2024, 6, 1, 10, 30, 0), T(2024, 6, 1, 10, 30, 1), None,
             *lost, None, d),
        ],
        "window_start timestamp, account_id string, interface_id string, srcaddr string, dstaddr string, "
        "srcport int, dstport int, protocol int, action string, resource_type string, tgw_id string, "
        "tgw_attachment_id string, records bigint, packets bigint, bytes bigint, "
        "start timestamp, `end` timestamp, tcp_flags int, packets_lost_no_route bigint, packets_lost_blackhole bigint, "
        "packets_lost_mtu_exceeded bigint, packets_lost_ttl_expired bigint, vpc_id string, event_date date",
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
    return lake, truth, out


def _day_key_oracle(folder: Path) -> dict[str, int]:
    """Straight from the generated text files (not through flowspark): the OK records counted per flow key
    and UTC day of `start` -> keys, runts by action, multi-record keys."""
    default = "version account-id interface-id srcaddr dstaddr srcport dstport protocol packets bytes start end action log-status"
    counts: dict[tuple, int] = {}
    for path in glob.glob(os.path.join(folder, "**", "*.log.gz"), recursive=True):
        with gzip.open(path, "rt") as fh:
            lines = fh.read().split("\n")
        names = lines[0].split() if lines[0].startswith("version") else default.split()
        for line in lines[1:] if lines[0].startswith("version") else lines:
            if not line:
                continue
            r = dict(zip(names, line.split(" ")))
            if r["log-status"] != "OK":
                continue
            day = dt.datetime.fromtimestamp(int(r["start"]), UTC).date()
            k = (r["account-id"], r["interface-id"], r["srcaddr"], r["dstaddr"], r["srcport"], r["dstport"],
                 r["protocol"], r["action"], day)
            counts[k] = counts.get(k, 0) + 1
    return {
        "keys": len(counts),
        "runt_accept": sum(1 for k, n in counts.items() if n == 1 and k[7] == "ACCEPT"),
        "runt_reject": sum(1 for k, n in counts.items() if n == 1 and k[7] == "REJECT"),
        "multi_keys": sum(1 for n in counts.values() if n > 1),
    }


def test_generated_dedup_matches_truth_and_reruns_are_idempotent(spark, cfg, gen_lake):
    lake, truth, out = gen_lake
    kept = tables.read(spark, str(lake), tables.FLOWS).collect()  # the flows ingest merged, claim by claim
    runs_before = _count(spark, lake, tables.DEDUP_STATS)  # other tests of the module may have run dedup first
    s = run_dedup(spark, cfg, str(lake))
    assert s.conserved()
    # compacting every record again gives the rows ingest kept: the merge is the compaction
    _same(spark.createDataFrame(kept, tables.read(spark, str(lake), tables.FLOWS).schema), tables.read(spark, str(lake), tables.FLOWS))
    assert (s.input_records, s.input_packets, s.input_bytes) == (truth["data_records"], truth["packets"], truth["bytes"])
    # the table itself, summed here (not through the job's own check) against the generator's truth
    held = tables.read(spark, str(lake), tables.FLOWS).agg(F.count(F.lit(1)), F.sum("records"), F.sum("packets"), F.sum("bytes")).first()
    assert tuple(held) == (truth["window_1h"]["flow_keys"], truth["data_records"], truth["packets"], truth["bytes"])
    w = truth["window_1h"]
    assert s.output_rows == w["flow_keys"]
    assert (s.runts_accept, s.runts_reject) == (w["runt_keys_by_action"]["ACCEPT"], w["runt_keys_by_action"]["REJECT"])
    assert (s.nodata, s.skipdata) == (truth["nodata"], truth["skipdata"])
    assert s.records_in_multi_record_keys == w["records_in_multi_record_keys"]
    flows1 = tables.read(spark, str(lake), tables.FLOWS)
    first = flows1.collect()
    run_dedup(spark, cfg, str(lake))
    flows2 = tables.read(spark, str(lake), tables.FLOWS)
    _same(spark.createDataFrame(first, flows2.schema), flows2)
    stats = tables.read(spark, str(lake), tables.DEDUP_STATS)
    assert stats.count() == runs_before + 2  # one row per run
    assert stats.where(F.col("output_rows") == w["flow_keys"]).count() >= 2

    # window none = the notebook's key, per UTC day (a flow row never holds records of two days)
    with pytest.raises(ValueError, match="flows holds 1h windows"):  # flows is ingest's: 1h
        run_dedup(spark, cfg, str(lake), window="none")
    s_none = run_dedup(spark, cfg, str(lake), window="none", table="flows_none")
    oracle = _day_key_oracle(out)
    assert oracle["keys"] > truth["flow_keys"]  # some keys do span midnight: the per-day rule is exercised
    assert s_none.output_rows == oracle["keys"]
    assert (s_none.runts_accept, s_none.runts_reject) == (oracle["runt_accept"], oracle["runt_reject"])
    assert s_none.multi_record_keys == oracle["multi_keys"]


def test_one_day_rerun_replaces_only_that_day(spark, cfg, gen_lake):
    lake, truth, _ = gen_lake
    run_dedup(spark, cfg, str(lake))
    days = sorted(truth["by_date"])
    before = tables.read(spark, str(lake), tables.FLOWS).where(F.col("event_date") == days[0]).collect()
    d2 = dt.date.fromisoformat(days[1])
    s = run_dedup(spark, cfg, str(lake), date_from=d2, date_to=d2)
    flows = tables.read(spark, str(lake), tables.FLOWS)
    assert flows.where(F.col("event_date") == days[1]).count() == s.output_rows
    after = flows.where(F.col("event_date") == days[0])
    _same(spark.createDataFrame(before, after.schema), after)
    ops = tables.last_operation_metrics(spark, str(lake), tables.FLOWS)
    assert int(ops["numRemovedFiles"]) > 0 and int(ops["numOutputRows"]) == s.output_rows


# Errors compaction could make, each in one direction of one measure: the conservation check must catch
# every one (records, packets and bytes; lost and gained), whatever the others do.
LOSSES = {
    "runts dropped (records lost)": lambda df: df.where(F.col("records") > 1),  # the notebook's de-duplicator
    "packets lost": lambda df: df.withColumn("packets", F.col("packets") - F.when(F.col("records") > 1, 1).otherwise(0)),
    "bytes doubled on a row": lambda df: df.withColumn(
        "bytes", F.col("bytes") * F.when(F.monotonically_increasing_id() == 0, 2).otherwise(1)
    ),
    "a flow written twice (records gained)": lambda df: df.withColumn(
        "__n", F.explode(F.when(F.monotonically_increasing_id() == 0, F.array(F.lit(1), F.lit(2))).otherwise(F.array(F.lit(1))))
    ).drop("__n"),
}


@pytest.mark.parametrize("error", sorted(LOSSES))
def test_conservation_failure_is_loud(spark, cfg, gen_lake, monkeypatch, error):
    """A compaction that loses or gains records, packets or bytes fails the job and leaves flows as it was."""
    lake, _, _ = gen_lake
    real = dedup.compact

    def lossy(*a, **k):
        inner = real(*a, **k)
        return lambda df: LOSSES[error](inner(df))

    run_dedup(spark, cfg, str(lake))
    good = tables.read(spark, str(lake), tables.FLOWS).collect()
    monkeypatch.setattr(dedup, "compact", lossy)
    with pytest.raises(ReconciliationError, match="did not conserve"):
        run_dedup(spark, cfg, str(lake))
    after = tables.read(spark, str(lake), tables.FLOWS)
    _same(spark.createDataFrame(good, after.schema), after)


@pytest.mark.parametrize("measure", ["packets", "bytes"])
def test_what_the_table_holds_after_the_write_is_checked_too(spark, cfg, tmp_path, monkeypatch, measure):
    """The computed output conserves, but what reaches the table does not (a write that changed values after
    they were counted): the check of the stored range catches it, for packets and bytes alike. A small lake of
    two days (two records of one flow, one of another) is enough: the check reads what the table holds."""
    lake = tmp_path
    _write_records(spark, lake, [
        dict(VPC, start=T(2024, 6, 1, 10, 0, 0), end=T(2024, 6, 1, 10, 0, 50), event_date=D1),
        dict(VPC, packets=5, bytes=500, start=T(2024, 6, 1, 10, 1, 0), end=T(2024, 6, 1, 10, 1, 40), event_date=D1),
        dict(VPC, srcport=40001, start=T(2024, 6, 2, 8, 0, 0), end=T(2024, 6, 2, 8, 0, 30), event_date=D2),
    ])
    run_dedup(spark, cfg, str(lake))
    good = tables.read(spark, str(lake), tables.FLOWS).collect()
    real = tables.replace_dates

    def altered(df, lake_, name, *a, **k):
        if name == tables.FLOWS:
            df = df.withColumn(measure, F.col(measure) + F.when(F.monotonically_increasing_id() == 0, 1).otherwise(0))
        return real(df, lake_, name, *a, **k)

    monkeypatch.setattr(tables, "replace_dates", altered)
    with pytest.raises(ReconciliationError, match="did not conserve"):
        run_dedup(spark, cfg, str(lake))
    after = tables.read(spark, str(lake), tables.FLOWS)
    _same(spark.createDataFrame(good, after.schema), after)


# ---------------------------------------------------------------- ranges, days, fields (issue 10, items 6 and 7)

D1, D2 = dt.date(2024, 6, 1), dt.date(2024, 6, 2)
VPC = dict(
    version=2, account_id="111", interface_id="eni-a", srcaddr="10.0.0.1", dstaddr="52.1.1.1", srcport=40000,
    dstport=443, protocol=6, packets=10, bytes=1000, action="ACCEPT", log_status="OK",
)
KEY_OF_VPC = {k: VPC[k] for k in dedup.DEFAULT_KEY}


def _frame(spark, schema, rows: list[dict]):
    """Rows given as {column: value} over `schema`; unnamed columns are null, unknown names an error."""
    names = schema.fieldNames()
    for r in rows:
        assert set(r) <= set(names), set(r) - set(names)
    return spark.createDataFrame([tuple(r.get(n) for n in names) for r in rows], schema)


def _write_records(spark, lake: Path, rows: list[dict]) -> None:
    """flow_records rows as ingest writes them (every column of record_schema; lineage filled in)."""
    schema = record_schema()
    full = []
    for i, r in enumerate(rows):
        lineage = {f.name: "test" for f in schema.fields if not f.nullable and f.dataType.simpleString() == "string"}
        full.append({**lineage, "source_file": "s3://b/AWSLogs/x.log.gz", "source_line": i + 1, **r})
    tables.append(_frame(spark, schema, full), str(lake), tables.FLOW_RECORDS, partition_by=["event_date"])


def _comparable(df):
    """Maps cannot be sorted or compared as rows: extra_fields as its entries in key order."""
    return df.withColumn(EXTRA_FIELDS_COLUMN, F.array_sort(F.map_entries(EXTRA_FIELDS_COLUMN)))


def _same(got, expected) -> None:
    assert_df_equality(_comparable(got), _comparable(expected), ignore_row_order=True, ignore_nullable=True)


def _flows(spark, lake: Path):
    return tables.read(spark, str(lake), tables.FLOWS)


def _parquet_bytes(folder: Path) -> int:
    return sum(os.path.getsize(f) for f in glob.glob(os.path.join(folder, "**", "*.parquet"), recursive=True))


def test_window_longer_than_a_day_is_refused(tmp_path, capsys):
    # A 2d window with --from used to fail (DELTA_REPLACE_WHERE_MISMATCH) or drop a record silently.
    with pytest.raises(ValueError, match="longer than a day"):
        dedup.window_seconds("2d")
    assert dedup.window_seconds("1d") == 86400 and dedup.window_seconds("none") is None
    assert main(["dedup", "--lake", str(tmp_path), "--window", "2d", "--from", "2024-06-01"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "longer than a day" in err[0] and "use 1d or shorter" in err[0]
    with pytest.raises(ValueError, match="cannot hold packets"):
        dedup.validate_key(["srcaddr", "packets"])


def test_window_none_then_a_one_day_rerun_counts_each_record_once(spark, cfg, tmp_path):
    # one flow key on both sides of midnight
    _write_records(spark, tmp_path, [
        dict(VPC, start=T(2024, 6, 1, 23, 59, 0), end=T(2024, 6, 1, 23, 59, 50), event_date=D1),
        dict(VPC, packets=5, bytes=500, start=T(2024, 6, 2, 0, 0, 30), end=T(2024, 6, 2, 0, 1, 0), event_date=D2),
    ])
    run_dedup(spark, cfg, str(tmp_path), window="none")
    first = _flows(spark, tmp_path).collect()
    s = run_dedup(spark, cfg, str(tmp_path), date_from=D2, date_to=D2, window="none")
    assert (s.input_records, s.output_rows, s.output_records) == (1, 1, 1)
    flows = _flows(spark, tmp_path)
    assert flows.agg(F.sum("records")).first()[0] == 2  # was 3: the first run's row still held D2's record
    carried = dict(version=2, log_status="OK")
    expected = _frame(spark, flows.schema, [
        dict(KEY_OF_VPC, **carried, records=1, packets=10, bytes=1000, start=T(2024, 6, 1, 23, 59, 0),
             end=T(2024, 6, 1, 23, 59, 50), event_date=D1),
        dict(KEY_OF_VPC, **carried, records=1, packets=5, bytes=500, start=T(2024, 6, 2, 0, 0, 30),
             end=T(2024, 6, 2, 0, 1, 0), event_date=D2),
    ])
    _same(flows, expected)
    _same(spark.createDataFrame(first, flows.schema), flows)


def test_records_without_start_keep_their_day_and_later_ranged_reruns_work(spark, cfg, tmp_path):
    # A format without `start` (the NAT gateway examples): event_date comes from the object name.
    _write_records(spark, tmp_path, [
        dict(VPC, event_date=D1),
        dict(VPC, packets=1, bytes=60, event_date=D1),
        dict(VPC, srcport=40001, start=T(2024, 6, 1, 10, 0, 5), end=T(2024, 6, 1, 10, 1, 0), event_date=D1),
        dict(VPC, srcport=40002, start=T(2024, 6, 2, 10, 0, 5), end=T(2024, 6, 2, 10, 1, 0), event_date=D2),
    ])
    run_dedup(spark, cfg, str(tmp_path))
    s = run_dedup(spark, cfg, str(tmp_path), date_from=D1, date_to=D1)  # was DELTA_REPLACE_WHERE_MISMATCH
    assert (s.input_records, s.output_rows) == (3, 2)
    flows = _flows(spark, tmp_path)
    carried = dict(version=2, log_status="OK")
    expected = _frame(spark, flows.schema, [
        dict(KEY_OF_VPC, **carried, records=2, packets=11, bytes=1060, event_date=D1),
        dict(KEY_OF_VPC, **carried, srcport=40001, window_start=T(2024, 6, 1, 10), records=1, packets=10, bytes=1000,
             start=T(2024, 6, 1, 10, 0, 5), end=T(2024, 6, 1, 10, 1, 0), event_date=D1),
        dict(KEY_OF_VPC, **carried, srcport=40002, window_start=T(2024, 6, 2, 10), records=1, packets=10, bytes=1000,
             start=T(2024, 6, 2, 10, 0, 5), end=T(2024, 6, 2, 10, 1, 0), event_date=D2),
    ])
    _same(flows, expected)


def test_a_one_day_dedup_is_sized_by_that_day_files(spark, cfg, tmp_path, monkeypatch):
    day1 = [dict(VPC, srcport=p, start=T(2024, 6, 1, 10), end=T(2024, 6, 1, 10, 1), event_date=D1)
            for p in range(1000, 4000)]
    day2 = [dict(VPC, start=T(2024, 6, 2, 10), end=T(2024, 6, 2, 10, 1), event_date=D2)]
    _write_records(spark, tmp_path, day1 + day2)
    import flowspark.pipelines.dedup as pipeline

    sized: list[int] = []
    real = pipeline.dedup_conf
    monkeypatch.setattr(pipeline, "dedup_conf", lambda c, n: sized.append(n) or real(c, n))
    s = run_dedup(spark, cfg, str(tmp_path), date_from=D2, date_to=D2)
    # the oracle: the files on disk (every file is live: the table was only appended to)
    day2_bytes = _parquet_bytes(tmp_path / "flow_records" / "event_date=2024-06-02")
    assert 0 < day2_bytes < _parquet_bytes(tmp_path / "flow_records") / 2
    assert sized == [day2_bytes] and s.input_delta_bytes == day2_bytes
    assert s.output_delta_bytes == _parquet_bytes(tmp_path / "flows" / "event_date=2024-06-02")


def _every_field_record() -> dict:
    """One record with a value in every field of the catalogue, and an unknown field in extra_fields."""
    values: dict = {}
    for i, f in enumerate(FIELDS):
        values[f.column] = {"string": f"{f.column}-x", "int": 10 + i, "long": 1000 + i}.get(f.kind)
    values.update(
        version=10, action="ACCEPT", log_status="OK", tcp_flags=2, packets=3, bytes=300,
        start=T(2024, 6, 1, 9, 0, 1), end=T(2024, 6, 1, 9, 0, 59),
    )
    values[EXTRA_FIELDS_COLUMN] = {"future-field": "f", "another-field": "a"}
    return values


def test_every_field_is_kept_and_tgw_attachments_stay_apart(spark, cfg, tmp_path):
    every = _every_field_record()
    tgw = dict(
        version=6, resource_type="TransitGateway", account_id="222", tgw_id="tgw-1", srcaddr="10.1.0.1",
        dstaddr="10.2.0.1", srcport=5000, dstport=443, protocol=6, log_status="OK", tgw_src_vpc_id="vpc-s",
        tgw_dst_vpc_id="vpc-d", tgw_src_eni="eni-s", tgw_dst_eni="eni-d",
    )
    at = dict(start=T(2024, 6, 1, 9, 10), end=T(2024, 6, 1, 9, 11), event_date=D1)
    lost = ("packets_lost_no_route", "packets_lost_blackhole", "packets_lost_mtu_exceeded", "packets_lost_ttl_expired")
    _write_records(spark, tmp_path, [
        dict(every, event_date=D1),
        # two records of one attachment, one of another with the same 5-tuple (no interface-id, no action)
        dict(tgw, **at, tgw_attachment_id="tgw-attach-1", packets=4, bytes=400, **dict(zip(lost, (1, 0, 2, 0)))),
        dict(tgw, **at, tgw_attachment_id="tgw-attach-1", packets=6, bytes=600, **dict(zip(lost, (1, 5, 0, 0)))),
        dict(tgw, **at, tgw_attachment_id="tgw-attach-2", packets=7, bytes=700, **dict(zip(lost, (0, 0, 0, 3)))),
    ])
    s = run_dedup(spark, cfg, str(tmp_path))
    assert (s.input_records, s.output_rows, s.output_packets, s.output_bytes) == (4, 3, 20, 2000)
    flows = _flows(spark, tmp_path)
    assert {f.column for f in FIELDS} | {EXTRA_FIELDS_COLUMN} <= set(flows.columns)
    expected = _frame(spark, flows.schema, [
        dict(every, records=1, window_start=T(2024, 6, 1, 9), event_date=D1),
        dict(tgw, **at, tgw_attachment_id="tgw-attach-1", window_start=T(2024, 6, 1, 9), records=2, packets=10,
             bytes=1000, **dict(zip(lost, (2, 5, 2, 0)))),
        dict(tgw, **at, tgw_attachment_id="tgw-attach-2", window_start=T(2024, 6, 1, 9), records=1, packets=7,
             bytes=700, **dict(zip(lost, (0, 0, 0, 3)))),
    ])
    _same(flows, expected)


def test_readme_dedup_table_names_the_rule_of_every_field():
    rules = dedup.field_rules()
    assert set(rules) == {f.column for f in FIELDS} | {EXTRA_FIELDS_COLUMN}
    assert set(rules.values()) == {"key", "key (identity)", "sum", "min", "max", "bitwise OR", "carried"}
    text = (REPO / "README.md").read_text(encoding="utf-8")
    section = text.split("### dedup", 1)[1].split("\n### ", 1)[0]
    table = dict(re.findall(r"^\| `[^`]+` \| `([a-z0-9_]+)` \| ([^|]+?) \|$", section, re.M))
    assert table == rules


def test_flows_of_an_older_flowspark_gain_the_new_columns(spark, cfg, tmp_path):
    _write_records(spark, tmp_path, [
        dict(VPC, start=T(2024, 6, 1, 10), end=T(2024, 6, 1, 10, 1), event_date=D1),
        dict(VPC, start=T(2024, 6, 2, 10), end=T(2024, 6, 2, 10, 1), event_date=D2),
    ])
    old_columns = ["window_start", *dedup.DEFAULT_KEY, "records", "packets", "bytes", "start", "end", "tcp_flags",
                   "version", "vpc_id", "subnet_id", "event_date"]
    recs = tables.read(spark, str(tmp_path), tables.FLOW_RECORDS)
    old = recs.transform(dedup.compact("1h")).select(*old_columns)
    tables.replace_dates(old, str(tmp_path), tables.FLOWS, "event_date", None, None, partition_by=["event_date"])
    run_dedup(spark, cfg, str(tmp_path), date_from=D2, date_to=D2)
    flows = _flows(spark, tmp_path)
    assert set(flows.columns) == set(recs.transform(dedup.compact("1h")).columns)
    row = dict(KEY_OF_VPC, records=1, packets=10, bytes=1000, version=2)
    expected = _frame(spark, flows.schema, [
        dict(row, window_start=T(2024, 6, 1, 10), start=T(2024, 6, 1, 10), end=T(2024, 6, 1, 10, 1), event_date=D1),
        dict(row, window_start=T(2024, 6, 2, 10), start=T(2024, 6, 2, 10), end=T(2024, 6, 2, 10, 1), event_date=D2,
             log_status="OK"),
    ])
    _same(flows, expected)
