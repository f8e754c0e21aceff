"""OCSF in (issue 24, items 2-3): `flowspark ingest` reads OCSF 1.1.0 Network Activity Parquet, as Amazon
Security Lake writes its VPC flow data or as `flowspark export ocsf` writes it, through the same ledger,
rules and reconciliation as AWS's own objects.

The oracles: events written here by hand (pyarrow, in Security Lake's layout) with the flow_records rows
they stand for worked out by hand; and the two round trips, whose oracle is the lake the export read
(AWS's documented examples, ingested from their text): flow_records -> OCSF -> ingest gives the same
flow_records, flows -> OCSF -> ingest --as-flows the same flows. Left out of each comparison, and only
these: source_file, source_line and ingest_id (where a row was read from, and by which claim).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from moto_server import aws_test_credentials
from pyspark.sql import functions as F

from flowspark.edges import tables
from flowspark.pipelines.export import run_export_ocsf
from flowspark.pipelines.ingest import run_ingest

REPO = Path(__file__).resolve().parents[1]
PROVENANCE = ("source_file", "source_line", "ingest_id")  # where a row was read from, and by which claim
UTC = dt.timezone.utc

ENDPOINT = pa.struct([
    ("ip", pa.string()), ("port", pa.int32()), ("intermediate_ips", pa.list_(pa.string())),
    ("interface_uid", pa.string()), ("vpc_uid", pa.string()), ("subnet_uid", pa.string()),
    ("instance_uid", pa.string()), ("svc_name", pa.string()),
])  # fmt: skip
# The columns Security Lake's VPC flow events (source version 2, OCSF 1.1.0) hold that flowspark reads.
EVENTS = pa.schema([
    ("class_uid", pa.int32()), ("activity_id", pa.int32()), ("action_id", pa.int32()),
    ("status_code", pa.string()), ("start_time", pa.int64()), ("end_time", pa.int64()), ("time", pa.int64()),
    ("count", pa.int32()),
    ("metadata", pa.struct([("product", pa.struct([("version", pa.string()), ("name", pa.string())]))])),
    ("cloud", pa.struct([("provider", pa.string()), ("region", pa.string()), ("zone", pa.string()),
                         ("account", pa.struct([("uid", pa.string())]))])),
    ("src_endpoint", ENDPOINT), ("dst_endpoint", ENDPOINT),
    ("connection_info", pa.struct([("protocol_num", pa.int32()), ("tcp_flags", pa.int32()),
                                   ("protocol_ver", pa.string()), ("direction_id", pa.int32()),
                                   ("boundary_id", pa.int32())])),
    ("traffic", pa.struct([("packets", pa.int64()), ("bytes", pa.int64())])),
    ("unmapped", pa.map_(pa.string(), pa.string())),
])  # fmt: skip


def _ms(text: str) -> int:
    return int(dt.datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp() * 1000)


def _event(**kw) -> dict:
    base = {"class_uid": 4001, "metadata": {"product": {"version": "5", "name": "Amazon VPC"}}}
    return {**base, **kw}


def _security_lake_folder(root, events: list[dict]):
    """One Parquet object as Security Lake lays out its VPC flow data (aws/VPC_FLOW/2.0/region=/accountId=/
    eventDay=YYYYMMDD/)."""
    folder = root / "aws" / "VPC_FLOW" / "2.0" / "region=us-east-1" / "accountId=123456789012" / "eventDay=20240601"
    folder.mkdir(parents=True)
    pq.write_table(pa.Table.from_pylist(events, schema=EVENTS), folder / "a1b2c3.gz.parquet")
    return root / "aws" / "VPC_FLOW" / "2.0"


def _records(spark, lake):
    df = tables.read(spark, str(lake), tables.FLOW_RECORDS)
    return df.drop(*[c for c in PROVENANCE if c in df.columns])


def _same(a, b) -> None:
    """Whole DataFrames equal, duplicates included (maps compared as their sorted entries)."""

    def comparable(df):
        return df.select(
            *[F.array_sort(F.map_entries(c)).alias(c) if df.schema[c].dataType.typeName() == "map" else F.col(c)
              for c in df.columns]
        )  # fmt: skip

    a, b = comparable(a), comparable(b.select(*a.columns))
    lost, extra = a.exceptAll(b), b.exceptAll(a)
    assert lost.count() == 0 and extra.count() == 0, (lost.limit(3).collect(), extra.limit(3).collect())


def test_security_lake_events_become_the_records_they_stand_for(spark, cfg, tmp_path):
    """Four events written by hand as Security Lake writes them: an ingress ACCEPT through NAT (intermediate
    address), an egress REJECT with a reject reason and a field flowspark does not know, an aggregate
    (count 3) and an event of another class. The two records are the rows below, worked out from AWS's field
    meanings; the other two are rejected, each with its reason; records = written + rejected."""
    src = _security_lake_folder(tmp_path / "sl", [
        _event(activity_id=6, action_id=1, status_code="OK", start_time=_ms("2024-06-01T10:00:00"),
               end_time=_ms("2024-06-01T10:00:50"), time=_ms("2024-06-01T10:00:00"),
               cloud={"provider": "AWS", "region": "us-east-1", "zone": "use1-az2", "account": {"uid": "123456789012"}},
               src_endpoint={"ip": "203.0.113.7", "port": 51000, "intermediate_ips": None},
               dst_endpoint={"ip": "10.0.1.5", "port": 443, "intermediate_ips": ["10.0.9.9"],
                             "interface_uid": "eni-0a", "vpc_uid": "vpc-1", "subnet_uid": "subnet-1",
                             "instance_uid": "i-1"},
               connection_info={"protocol_num": 6, "tcp_flags": 19, "protocol_ver": "IPv4", "direction_id": 1,
                                "boundary_id": 11},
               traffic={"packets": 12, "bytes": 3400}),
        _event(activity_id=5, action_id=2, status_code="OK", start_time=_ms("2024-06-01T10:01:00"),
               end_time=_ms("2024-06-01T10:01:30"), time=_ms("2024-06-01T10:01:00"),
               metadata={"product": {"version": "8", "name": "Amazon VPC"}},
               cloud={"provider": "AWS", "region": "us-east-1", "zone": None, "account": {"uid": "123456789012"}},
               src_endpoint={"ip": "10.0.1.5", "port": 40000, "interface_uid": "eni-0a", "svc_name": None},
               dst_endpoint={"ip": "52.94.0.1", "port": 25, "svc_name": "AMAZON"},
               connection_info={"protocol_num": 6, "direction_id": 2, "boundary_id": 4},
               traffic={"packets": 1, "bytes": 60},
               unmapped=[("reject-reason", "BPA"), ("colour", "red")]),
        _event(activity_id=6, action_id=1, status_code="OK", count=3, start_time=_ms("2024-06-01T11:00:00"),
               end_time=_ms("2024-06-01T11:00:00"), src_endpoint={"ip": "10.0.0.1", "port": 1},
               dst_endpoint={"ip": "10.0.0.2", "port": 2, "interface_uid": "eni-0b"},
               connection_info={"protocol_num": 17, "direction_id": 1}, traffic={"packets": 3, "bytes": 300}),
        {"class_uid": 3002, "time": _ms("2024-06-01T12:00:00")},  # an Authentication event in the wrong place
    ])  # fmt: skip
    lake = tmp_path / "lake"
    s = run_ingest(spark, cfg, str(src), str(lake))
    assert (s.files_read, s.parquet_files, s.records, s.rows_written, s.rejected) == (1, 1, 4, 2, 2)
    assert s.reconciled() and s.unknown_fields == {"colour": 1}

    day = dt.date(2024, 6, 1)
    t = lambda text: dt.datetime.fromisoformat(text)  # noqa: E731 - naive UTC, as the session's zone is UTC
    want = [
        {"version": 5, "account_id": "123456789012", "interface_id": "eni-0a", "srcaddr": "203.0.113.7",
         "dstaddr": "10.0.9.9", "srcport": 51000, "dstport": 443, "protocol": 6, "packets": 12, "bytes": 3400,
         "start": t("2024-06-01 10:00:00"), "end": t("2024-06-01 10:00:50"), "action": "ACCEPT", "log_status": "OK",
         "vpc_id": "vpc-1", "subnet_id": "subnet-1", "instance_id": "i-1", "tcp_flags": 19, "type": "IPv4",
         "pkt_dstaddr": "10.0.1.5", "region": "us-east-1", "az_id": "use1-az2", "flow_direction": "ingress",
         "traffic_path": 8, "event_date": day},
        {"version": 8, "account_id": "123456789012", "interface_id": "eni-0a", "srcaddr": "10.0.1.5",
         "dstaddr": "52.94.0.1", "srcport": 40000, "dstport": 25, "protocol": 6, "packets": 1, "bytes": 60,
         "start": t("2024-06-01 10:01:00"), "end": t("2024-06-01 10:01:30"), "action": "REJECT", "log_status": "OK",
         "region": "us-east-1", "flow_direction": "egress", "traffic_path": 1, "pkt_dst_aws_service": "AMAZON",
         "reject_reason": "BPA", "extra_fields": {"colour": "red"}, "event_date": day},
    ]  # fmt: skip
    got = _records(spark, lake)
    expected = spark.createDataFrame([{c: w.get(c) for c in got.columns} for w in want], got.schema)
    _same(expected, got)

    rejects = {r.line_number: r.reason for r in tables.read(spark, str(lake), tables.FLOW_REJECTS).collect()}
    assert rejects == {
        3: "an aggregate event of 3 records (OCSF count): ingest it into flows with --as-flows",
        4: "not an OCSF Network Activity event (class_uid 3002)",
    }
    # the flows hold the two records (the aggregate is not among them)
    fl = tables.read(spark, str(lake), tables.FLOWS).agg(F.sum("records"), F.sum("packets"), F.sum("bytes")).first()
    assert tuple(fl) == (2, 13, 3460)


def test_flow_records_to_ocsf_and_back_are_the_same_records(spark, cfg, docs_lake, tmp_path):
    """AWS's documented examples (every field version, NAT, Transit Gateway, NODATA): flow_records ->
    export ocsf -> ingest is the same flow_records, and the same flows."""
    lake = str(docs_lake[0])
    out, back = tmp_path / "ocsf", tmp_path / "back"
    run_export_ocsf(spark, lake, str(out), tables.FLOW_RECORDS)
    s = run_ingest(spark, cfg, str(out), str(back))
    original = _records(spark, lake)
    assert s.rejected == 0 and s.rows_written == original.count() and s.reconciled()
    _same(original, _records(spark, back))
    _same(tables.read(spark, lake, tables.FLOWS), tables.read(spark, str(back), tables.FLOWS))


def test_flows_to_ocsf_and_back_with_as_flows_are_the_same_flows(spark, cfg, docs_lake, tmp_path, monkeypatch, capsys):
    """flows -> export ocsf -> ingest --as-flows is the same flows (every record counted once, in the same
    windows); without --as-flows each aggregate is rejected with its reason and nothing is lost; --as-flows
    is refused before Spark starts with --keep-records or on a lake that keeps flow_records."""
    import flowspark.cli as cli

    lake = str(docs_lake[0])
    out = tmp_path / "ocsf"
    export = run_export_ocsf(spark, lake, str(out), tables.FLOWS)
    flows = tables.read(spark, lake, tables.FLOWS)
    aggregates = flows.where("records > 1").count()
    assert aggregates > 0  # the examples hold flows of several records: the case is exercised

    plain = tmp_path / "plain"
    s = run_ingest(spark, cfg, str(out), str(plain))
    assert (s.records, s.rejected, s.rows_written) == (export.events, aggregates, export.events - aggregates)
    reasons = tables.read(spark, str(plain), tables.FLOW_REJECTS).groupBy("reason").count().collect()
    assert all(r.reason.startswith("an aggregate event of ") and r.reason.endswith("--as-flows") for r in reasons)
    assert sum(r["count"] for r in reasons) == aggregates

    # the README's query for a SIEM or Athena on the export, on a view of it, for a day with rejected flows
    readme = (REPO / "README.md").read_text()
    query = readme[readme.index("```sql\n", readme.index("**A SIEM or Athena on the export**")) + 7 :].split("```")[0]
    day = flows.where("action = 'REJECT' AND event_date IS NOT NULL").agg(F.min("event_date")).first()[0]
    spark.read.parquet(str(out)).createOrReplaceTempView("flowspark_flows")
    answer = spark.sql(query.strip().rstrip(";").replace("'20240601'", f"'{day:%Y%m%d}'")).collect()
    sender = F.coalesce("pkt_srcaddr", "srcaddr")  # the packet's source, as the export's src_endpoint.ip
    want = (
        flows.where(F.col("event_date") == day).where("action = 'REJECT'")
        .groupBy(sender.alias("sender"), F.col("dstport").alias("port"))
        .agg(F.sum("records").alias("records"), F.sum("bytes").alias("bytes"))
        .orderBy(F.desc("records"), "sender", "port").limit(20).collect()
    )  # fmt: skip
    assert [tuple(r) for r in answer] == [tuple(r) for r in want] and want

    back = tmp_path / "back"
    s = run_ingest(spark, cfg, str(out), str(back), as_flows=True)
    assert s.rejected == 0 and s.weighed == flows.agg(F.sum("records")).first()[0] and not s.keep_records
    assert "as flows" in s.text()
    _same(flows, tables.read(spark, str(back), tables.FLOWS))
    assert not tables.exists(spark, str(back), tables.FLOW_RECORDS)

    def refuse(_cfg):
        raise AssertionError("Spark was started")

    monkeypatch.setattr(cli, "spark_for", refuse)
    for argv in (
        ["ingest", "--source", str(out), "--lake", str(tmp_path / "new"), "--as-flows", "--keep-records"],
        ["ingest", "--source", str(out), "--lake", str(plain), "--as-flows"],
    ):
        capsys.readouterr()
        assert cli.main(argv) == 2, argv
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and "--as-flows loads" in err[0], err


@pytest.mark.s3
def test_export_to_s3_and_ingest_from_it(spark, cfg, docs_lake, moto_s3, tmp_path):
    """The export written to S3 (moto's server, S3A) and ingested from there (boto3 on the executors)."""
    from flowspark.edges.config import with_overrides

    moto_s3.point_s3a_here()
    with aws_test_credentials(spark):
        cfg = with_overrides(cfg, s3={"endpoint": moto_s3.endpoint, "path_style": True})
        moto_s3.client.create_bucket(Bucket="securitylake")
        lake = str(docs_lake[0])
        e = run_export_ocsf(spark, lake, "s3a://securitylake/ext/flowspark/", tables.FLOW_RECORDS)
        keys = [o["Key"] for o in moto_s3.client.list_objects_v2(Bucket="securitylake")["Contents"]]
        assert any("/eventDay=" in k and k.endswith(".parquet") for k in keys), keys[:3]
        back = tmp_path / "back"
        s = run_ingest(spark, cfg, "s3://securitylake/ext/flowspark", str(back))
        assert (s.records, s.rejected) == (e.events, 0)
        _same(_records(spark, lake), _records(spark, back))
