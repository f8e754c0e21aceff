"""flowspark export ocsf (issue 24, item 1): events validated against OCSF's own schema, the mapping checked
on hand-made rows, the export conserving every row, record, packet and byte, laid out as Security Lake
takes a custom source, and idempotent.

The validator below is written from the OCSF project's schema (tests/data/ocsf: network_activity at 1.1.0,
compiled from ocsf/ocsf-schema's v1.1.0 tag with its inheritance and profiles), not from flowspark's code:
every column must be an attribute of the class or of the object it sits in, with the schema's type and
arrayness; every required attribute of the class (and of each object present) must hold a value in every
event; every enum attribute a value the schema lists; type_uid = class_uid * 100 + activity_id.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
from pyspark.sql import functions as F
from pyspark.sql import types as T

from flowspark.edges import tables
from flowspark.pipelines.export import ExportError, run_export_ocsf

REPO = Path(__file__).resolve().parents[1]
SCHEMA = json.loads((REPO / "tests" / "data" / "ocsf" / "network_activity-1.1.0.json").read_text())
PARTITIONS = {"region", "accountId", "eventDay"}  # Security Lake's folders, not OCSF attributes
# OCSF base types as Parquet/Spark types. datetime_t is text in OCSF's JSON; Security Lake's Parquet (and
# this export) holds it as a timestamp. `object` (unmapped) is free-form: a map of text here.
SPARK_TYPES = {
    "integer_t": T.IntegerType(),
    "long_t": T.LongType(),
    "string_t": T.StringType(),
    "boolean_t": T.BooleanType(),
    "float_t": T.DoubleType(),
}


def _base(type_name: str) -> str:
    if type_name == "timestamp_t":
        return "long_t"
    return SCHEMA["types"].get(type_name, {}).get("base_type", type_name)


def _attributes(owner: str | None) -> dict[str, dict]:
    attrs = SCHEMA["class"]["attributes"] if owner is None else SCHEMA["objects"][owner]["attributes"]
    return {a["name"]: a for a in attrs}


def schema_problems(schema: T.StructType, owner: str | None = None, where: str = "") -> list[str]:
    """Where a Spark schema departs from OCSF's class (owner None) or object `owner`."""
    problems = []
    attrs = _attributes(owner)
    for f in schema.fields:
        path = f"{where}{f.name}"
        if owner is None and f.name in PARTITIONS:
            continue
        a = attrs.get(f.name)
        if a is None:
            problems.append(f"{path}: not an attribute of {owner or 'network_activity'}")
            continue
        t = f.dataType
        if a.get("is_array"):
            if not isinstance(t, T.ArrayType):
                problems.append(f"{path}: an array in OCSF, {t.simpleString()} here")
                continue
            t = t.elementType
        elif isinstance(t, T.ArrayType):
            problems.append(f"{path}: not an array in OCSF")
            continue
        if a["type"] == "object":
            if not (isinstance(t, T.MapType) and t.keyType == T.StringType()):
                problems.append(f"{path}: free-form object, {t.simpleString()} here")
        elif a["type"] in SCHEMA["objects"]:
            if not isinstance(t, T.StructType):
                problems.append(f"{path}: object {a['type']} in OCSF, {t.simpleString()} here")
            else:
                problems += schema_problems(t, a["type"], path + ".")
        elif a["type"] == "datetime_t":
            if t != T.TimestampType():
                problems.append(f"{path}: datetime_t, {t.simpleString()} here")
        elif SPARK_TYPES.get(_base(a["type"])) != t:
            problems.append(f"{path}: {a['type']} ({_base(a['type'])}) in OCSF, {t.simpleString()} here")
    return problems


def value_problems(df) -> list[str]:
    """Required attributes without a value, enum values the schema does not list, type_uid's rule; each
    as one line with how many events break it."""
    checks: list[tuple[str, object]] = []

    def walk(owner: str | None, prefix: str, dtype: T.StructType, present) -> None:
        for name, a in _attributes(owner).items():
            col = f"{prefix}{name}"
            held = name in dtype.fieldNames()
            if a["requirement"] == "required":
                if not held:
                    checks.append((f"{col}: required, missing", F.lit(True)))
                    continue
                checks.append((f"{col}: required, null", present & F.col(col).isNull()))
            if held and a.get("enum"):
                allowed = [int(k) for k in a["enum"]]
                checks.append((f"{col}: not one of {allowed}", F.col(col).isNotNull() & ~F.col(col).isin(allowed)))
            if held and a["type"] in SCHEMA["objects"] and not a.get("is_array"):
                sub = dtype[name].dataType
                walk(a["type"], col + ".", sub, present & F.col(col).isNotNull())

    walk(None, "", df.schema, F.lit(True))
    checks.append(("type_uid != class_uid * 100 + activity_id", F.col("type_uid") != F.col("class_uid") * 100 + F.col("activity_id")))
    row = df.select(*[F.sum(F.when(c, 1).otherwise(0)).alias(str(i)) for i, (_, c) in enumerate(checks)]).first()
    return [f"{what}: {row[str(i)]} events" for i, (what, _) in enumerate(checks) if row[str(i)]]


def test_the_validator_finds_what_breaks_the_schema(spark):
    """The validator is not one that passes everything: a wrong type, an unknown attribute, a missing
    required one, a value outside an enum and a broken type_uid are each named."""
    good = T.StructType([T.StructField("activity_id", T.IntegerType()), T.StructField("class_uid", T.IntegerType())])
    assert schema_problems(good) == []
    bad = T.StructType([
        T.StructField("activity_id", T.StringType()),
        T.StructField("colour", T.StringType()),
        T.StructField("src_endpoint", T.StructType([T.StructField("port", T.LongType())])),
        T.StructField("time_dt", T.LongType()),
    ])  # fmt: skip
    got = schema_problems(bad)
    assert any(p.startswith("activity_id: integer_t") for p in got), got
    assert any(p.startswith("colour: not an attribute") for p in got), got
    assert any(p.startswith("src_endpoint.port: port_t") for p in got), got
    assert any(p.startswith("time_dt: datetime_t") for p in got), got
    df = spark.createDataFrame([(7, 4001, 400107, 1)], "activity_id int, class_uid int, type_uid long, severity_id int")
    got = value_problems(df)
    assert "activity_id: not one of [0, 1, 2, 3, 4, 5, 6, 99]: 1 events" in got, got
    assert "metadata: required, missing: 1 events" in got and "type_uid != class_uid * 100 + activity_id: 1 events" not in got
    assert "type_uid != class_uid * 100 + activity_id: 1 events" in value_problems(df.withColumn("type_uid", F.lit(1)))


# ---------------------------------------------------------------- the mapping, on hand-made flows rows


def test_exported_flows_and_records_are_valid_ocsf_and_hold_every_record(spark, docs_lake, tmp_path):
    """AWS's documented examples (conftest's docs_lake: default, IPv6, NODATA, NAT, Transit Gateway, v5),
    flows and flow_records each exported: valid, every row one event, the Security Lake layout."""
    lake = str(docs_lake[0])
    for table in (tables.FLOWS, tables.FLOW_RECORDS):
        out = tmp_path / table
        s = run_export_ocsf(spark, lake, str(out), table)
        events = spark.read.parquet(str(out))
        rows = tables.read(spark, lake, table)
        assert schema_problems(events.schema) == []
        # Events without any time (AWS's Transit Gateway example has no start or end, and these objects' names
        # no date) cannot be valid OCSF: written under eventDay=unknown, counted, and no other event fails.
        timeless = rows.where("start IS NULL AND `end` IS NULL AND event_date IS NULL").count()
        assert s.no_time == timeless
        unknown = events.where(F.col("eventDay").cast("string") == "unknown")
        assert unknown.count() == timeless and unknown.where("time IS NULL").count() == timeless
        assert value_problems(events.where(F.col("eventDay").cast("string") != "unknown")) == []
        want = rows.agg(F.count(F.lit(1)), F.sum("packets"), F.sum("bytes")).first()
        got = events.agg(F.count(F.lit(1)), F.sum("traffic.packets"), F.sum("traffic.bytes")).first()
        assert tuple(got) == tuple(want) and s.events == want[0] and s.checked
        if table == tables.FLOWS:  # each flow once, its records in count
            assert events.agg(F.sum("count")).first()[0] == rows.agg(F.sum("records")).first()[0]
            assert s.records == rows.agg(F.sum("records")).first()[0]
        else:
            assert events.where(F.col("count").isNotNull()).count() == 0
        # Security Lake's layout: region=/accountId=/eventDay=YYYYMMDD/ Parquet files
        files = sorted(p.relative_to(out).parts[:3] for p in out.rglob("*.parquet"))
        assert files and all(
            a.startswith("region=") and b.startswith("accountId=") and (len(c) == 17 or c == "eventDay=unknown")
            for a, b, c in files
        ), files[:3]


def test_the_mapping_of_addresses_sides_actions_and_the_rest(spark, tmp_path):
    """Hand-made flows: an ingress REJECT through NAT (pkt-srcaddr differs), an egress ACCEPT, one without
    direction, and a NODATA row; each field where the mapping (ocsf/examples' AWS v1.1.0 VPC Flowlogs,
    README) puts it."""
    from flowspark.core.ocsf import to_ocsf

    T0 = dt.datetime(2024, 6, 1, 10, 0, 0)
    schema = (
        "account_id string, interface_id string, srcaddr string, dstaddr string, srcport int, dstport int, "
        "protocol int, action string, log_status string, version int, vpc_id string, subnet_id string, "
        "instance_id string, pkt_srcaddr string, pkt_dstaddr string, flow_direction string, traffic_path int, "
        "region string, az_id string, type string, tcp_flags int, reject_reason string, tgw_id string, "
        "pkt_src_aws_service string, records long, packets long, bytes long, start timestamp, end timestamp, "
        "event_date date, extra_fields map<string,string>"
    )
    day = dt.date(2024, 6, 1)
    rows = [
        ("111", "eni-a", "10.0.0.5", "10.0.0.9", 40000, 443, 6, "REJECT", "OK", 5, "vpc-1", "subnet-1", "i-1",
         "203.0.113.7", "10.0.0.9", "ingress", 8, "us-east-1", "use1-az1", "IPv4", 2, "1", None, "S3", 3, 12, 900,
         T0, T0 + dt.timedelta(seconds=50), day, {"new-field": "x"}),
        ("111", "eni-b", "10.0.0.9", "52.1.1.1", 443, 40000, 6, "ACCEPT", "OK", 5, "vpc-1", "subnet-2", "i-2",
         None, None, "egress", 1, None, None, "IPv6", None, None, "tgw-1", None, 1, 5, 500, T0, T0, day, None),
        ("111", "eni-c", "10.0.0.1", "10.0.0.2", 1, 2, 17, "ACCEPT", "OK", 2, None, None, None, None, None, None,
         None, "eu-west-1", None, None, None, None, None, None, 2, 2, 200, T0, T0, day, None),
        ("111", "eni-d", None, None, None, None, None, None, "NODATA", 2, None, None, None, None, None, None, None,
         "eu-west-1", None, None, None, None, None, None, 1, None, None, T0, T0, day, None),
    ]  # fmt: skip
    ev = {r["src"]: r for r in (
        to_ocsf(spark.createDataFrame(rows, schema), aggregated=True)
        .withColumn("src", F.coalesce("src_endpoint.interface_uid", "dst_endpoint.interface_uid", "unmapped.interface_id"))
        .collect()
    )}  # fmt: skip
    nat, out, unknown, nodata = ev["eni-a"], ev["eni-b"], ev["eni-c"], ev["eni-d"]
    # the packet's source is the endpoint; the interface's address an intermediate one
    assert (nat.src_endpoint.ip, nat.src_endpoint.intermediate_ips) == ("203.0.113.7", ["10.0.0.5"])
    assert (nat.dst_endpoint.ip, nat.dst_endpoint.intermediate_ips) == ("10.0.0.9", None)
    # ingress: the interface is the destination's; egress: the source's
    assert (nat.dst_endpoint.interface_uid, nat.dst_endpoint.vpc_uid, nat.dst_endpoint.subnet_uid,
            nat.dst_endpoint.instance_uid) == ("eni-a", "vpc-1", "subnet-1", "i-1")  # fmt: skip
    assert nat.src_endpoint.interface_uid is None
    assert (out.src_endpoint.interface_uid, out.src_endpoint.instance_uid, out.dst_endpoint.instance_uid) == (
        "eni-b", "i-2", None)  # fmt: skip
    assert unknown.unmapped["interface_id"] == "eni-c" and unknown.src_endpoint.interface_uid is None
    # actions
    assert (nat.activity_id, nat.type_uid, nat.action_id, nat.action, nat.disposition_id, nat.disposition) == (
        5, 400105, 2, "Denied", 2, "Blocked")  # fmt: skip
    assert (out.activity_id, out.type_uid, out.action_id, out.disposition) == (6, 400106, 1, "Allowed")
    assert (nodata.activity_id, nodata.type_uid, nodata.action_id, nodata.status_code) == (0, 400100, 0, "NODATA")
    # time in epoch ms, count, traffic, cloud, connection
    ms = int(T0.replace(tzinfo=dt.timezone.utc).timestamp() * 1000)
    assert (nat.time, nat.start_time, nat.end_time, nat["count"]) == (ms, ms, ms + 50_000, 3)
    assert (nat.traffic.packets, nat.traffic.bytes) == (12, 900)
    assert (nat.cloud.provider, nat.cloud.region, nat.cloud.zone, nat.cloud.account.uid) == (
        "AWS", "us-east-1", "use1-az1", "111")  # fmt: skip
    assert out.cloud.region == "unknown" and out.region == "unknown"
    c = nat.connection_info
    assert (c.protocol_num, c.tcp_flags, c.protocol_ver, c.protocol_ver_id, c.direction_id, c.boundary_id,
            c.boundary) == (6, 2, "IPv4", 4, 1, 11, "Internet Gateway")  # fmt: skip
    assert (out.connection_info.direction_id, out.connection_info.boundary_id, out.connection_info.protocol_ver_id) == (
        2, 4, 6)  # fmt: skip
    assert (unknown.connection_info.direction_id, unknown.connection_info.boundary_id) == (0, 0)
    assert (nat.src_endpoint.svc_name, nat.metadata.product.version, nat.metadata.version) == ("S3", "5", "1.1.0")
    # what OCSF has no place for, as text; extra_fields with it
    # (pkt-dstaddr equal to dstaddr: dst_endpoint.ip is both, and unmapped keeps it for the way back)
    assert nat.unmapped == {"reject_reason": "1", "new-field": "x", "pkt_dstaddr": "10.0.0.9"}
    assert out.unmapped == {"tgw_id": "tgw-1"}
    assert (nat.accountId, nat.eventDay) == ("111", "20240601")


def test_a_rerun_replaces_its_partitions_and_a_write_that_loses_an_event_fails(
    spark, docs_lake, tmp_path, monkeypatch, capsys
):
    """The CLI's export, twice: the same events, none twice; a day's export writes that day's folders only;
    a write that loses an event, or writes one twice, fails the export (the read-back)."""
    import flowspark.cli
    import flowspark.pipelines.export as export

    monkeypatch.setattr(flowspark.cli, "spark_for", lambda c: spark)
    lake, out = str(docs_lake[0]), tmp_path / "out"
    argv = ["export", "ocsf", "--lake", lake, "--out", str(out)]
    assert flowspark.cli.main(argv) == 0
    text = capsys.readouterr().out
    assert "check          events, records, packets and bytes per partition read back: OK" in text, text
    first = spark.read.parquet(str(out)).collect()
    assert flowspark.cli.main(argv) == 0  # again
    again = spark.read.parquet(str(out))
    before = spark.createDataFrame(first, again.schema)

    def comparable(df):  # a map cannot be compared: its entries in key order
        return df.withColumn("unmapped", F.array_sort(F.map_entries("unmapped")))

    assert len(first) == again.count() == tables.read(spark, lake, tables.FLOWS).count()
    assert comparable(again).exceptAll(comparable(before)).count() == 0
    assert comparable(before).exceptAll(comparable(again)).count() == 0
    day = min(r[0] for r in tables.read(spark, lake, tables.FLOWS).where("event_date IS NOT NULL").select("event_date").distinct().collect())
    one = tmp_path / "day"
    assert flowspark.cli.main(["export", "ocsf", "--lake", lake, "--out", str(one), "--from", str(day), "--to", str(day)]) == 0
    assert {p.name for p in one.rglob("eventDay=*")} == {f"eventDay={day:%Y%m%d}"}
    real_write = export._write
    for broken in (lambda d: d.limit(d.count() - 1), lambda d: d.unionByName(d.limit(1))):
        monkeypatch.setattr(export, "_write", lambda events, out_, broken=broken: real_write(broken(events), out_))
        with pytest.raises(ExportError, match="do not hold what"):
            run_export_ocsf(spark, lake, str(tmp_path / "bad"), tables.FLOWS)
