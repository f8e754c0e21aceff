"""Version 11 of the flow log record (AWS, 2026-06-10): the next hop, the interface type and EC2 tag values.
A v11 header ingests into typed columns with the version rule at 11, the tag values (percent-encoded UTF-8,
as AWS writes them) stored decoded, a Parquet delivery of the same records ends in the same rows, and
`[ingest] drop_fields` keeps chosen fields out of flow_records and flows. The records are written here, by
hand, from the field list of AWS's flow log records page (versions and meanings in the README)."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from chispa import assert_df_equality
from pyspark.sql import functions as F

from flowspark.edges import tables
from flowspark.edges.config import ConfigError, with_overrides
from flowspark.pipelines.ingest import run_ingest

REPO = Path(__file__).resolve().parents[1]

V11 = [
    "version",
    "account-id",
    "interface-id",
    "srcaddr",
    "dstaddr",
    "srcport",
    "dstport",
    "protocol",
    "packets",
    "bytes",
    "start",
    "end",
    "action",
    "log-status",
    "interface-type",
    "next-hop-interface-id",
    "next-hop-subnet-id",
    "next-hop-az-id",
    "next-hop-vpc-id",
    "next-hop-interface-type",
    "instance-tag",
    "instance-tag-2",
    "interface-tag",
    "interface-tag-2",
    "asg-tag",
    "asg-tag-2",
]
# (line's tokens of the v11 fields, what each tag value means once decoded)
ROWS = [
    ["11", "123456789012", "eni-a", "10.0.0.1", "10.0.1.1", "49152", "443", "6", "10", "840", "1620140761",
     "1620140821", "ACCEPT", "OK", "nat_gateway", "eni-b", "subnet-b", "use1-az1", "vpc-1", "vpc_endpoint",
     "web%20server", "caf%C3%A9", "-", "team%3Dblue", "asg-1", "%2D"],
    ["11", "123456789012", "eni-a", "10.0.0.1", "10.0.1.1", "49152", "443", "6", "5", "400", "1620140790",
     "1620140830", "ACCEPT", "OK", "nat_gateway", "eni-c", "subnet-b", "use1-az1", "vpc-1", "vpc_endpoint",
     "web%20server", "caf%C3%A9", "-", "team%3Dblue", "asg-1", "%2D"],
]  # fmt: skip
DECODED = {"web%20server": "web server", "caf%C3%A9": "café", "team%3Dblue": "team=blue", "%2D": "-"}


def _write_text(folder, rows):
    folder.mkdir(parents=True, exist_ok=True)
    bad = rows[0][:]
    bad[0] = "10"
    (folder / "123456789012_vpcflowlogs_us-east-1_fl-1_20210504T1500Z_txt.log").write_text("\n".join([" ".join(V11), *(" ".join(r) for r in rows), " ".join(bad)]) + "\n")


def _write_parquet(folder, rows):
    """The same records as AWS's Parquet delivery names its columns (underscores), every value a string."""
    folder.mkdir(parents=True, exist_ok=True)
    cols = {name.replace("-", "_"): [None if r[i] == "-" else r[i] for r in rows] for i, name in enumerate(V11)}
    pq.write_table(pa.table(cols), folder / "123456789012_vpcflowlogs_us-east-1_fl-1_20210504T1500Z_abc.log.parquet")


def _expected(spark):
    want = []
    for r in ROWS:
        v = dict(zip(V11, r))
        tag = {k: (None if v[k] == "-" else DECODED.get(v[k], v[k])) for k in V11[20:]}
        want.append((int(v["version"]), v["interface-type"], v["next-hop-interface-id"], v["next-hop-subnet-id"],
                     v["next-hop-az-id"], v["next-hop-vpc-id"], v["next-hop-interface-type"],
                     *[tag[k] for k in V11[20:]], int(v["packets"])))  # fmt: skip
    schema = ", ".join(["version int"] + [f"{n.replace('-', '_')} string" for n in V11[14:]] + ["packets long"])
    return spark.createDataFrame(want, schema)


COLUMNS = ["version", *[n.replace("-", "_") for n in V11[14:]], "packets"]


def test_v11_records_are_typed_and_their_tags_decoded(spark, cfg, tmp_path):
    """The same two records as a text object and as a Parquet delivery, in one ingest."""
    src = tmp_path / "src"
    _write_text(src, ROWS)
    _write_parquet(src, ROWS)
    s = run_ingest(spark, cfg, str(src), str(tmp_path / "lake"))
    assert s.reconciled() and (s.rows_written, s.rejected, s.parquet_files) == (4, 1, 1), s.text()
    assert not s.unknown_fields
    records = tables.read(spark, str(tmp_path / "lake"), tables.FLOW_RECORDS)
    for delivery in ("%.log", "%.log.parquet"):
        got = records.where(F.col("source_file").like(delivery)).select(*COLUMNS)
        assert_df_equality(got, _expected(spark), ignore_row_order=True, ignore_nullable=True)
    reasons = [r["reason"] for r in tables.read(spark, str(tmp_path / "lake"), tables.FLOW_REJECTS).collect()]
    assert reasons == ["version: 10 does not fit the format (version 11)"]
    # flows: one row per next hop (carried), the counts of both deliveries' records
    flows = tables.read(spark, str(tmp_path / "lake"), tables.FLOWS)
    got = flows.select("next_hop_interface_id", "instance_tag_2", "records", "packets")
    want = spark.createDataFrame(
        [("eni-b", "café", 2, 20), ("eni-c", "café", 2, 10)],
        "next_hop_interface_id string, instance_tag_2 string, records long, packets long",
    )
    assert_df_equality(got, want, ignore_row_order=True, ignore_nullable=True)


def test_drop_fields_keeps_chosen_fields_out_of_records_and_flows(spark, cfg, tmp_path):
    src = tmp_path / "src"
    _write_text(src, ROWS)
    dropping = with_overrides(cfg, ingest={"drop_fields": ["instance-tag", "instance_tag_2"]})
    s = run_ingest(spark, dropping, str(src), str(tmp_path / "lake"))
    assert s.reconciled() and s.rows_written == 2
    for name in (tables.FLOW_RECORDS, tables.FLOWS):
        t = tables.read(spark, str(tmp_path / "lake"), name)
        row = t.agg(
            *[F.count(c).alias(c) for c in ("instance_tag", "instance_tag_2", "interface_tag_2", "asg_tag")]
        ).first()
        assert (row["instance_tag"], row["instance_tag_2"]) == (0, 0), name
        assert row["interface_tag_2"] > 0 and row["asg_tag"] > 0, name


@pytest.mark.parametrize(
    ("field", "words"),
    [("srcaddr", "cannot be left out"), ("packets", "cannot be left out"), ("instance-tagg", "not a flow log field")],
)
def test_drop_fields_refuses_the_key_the_counts_and_unknown_names(cfg, field, words):
    with pytest.raises(ConfigError, match=words):
        with_overrides(cfg, ingest={"drop_fields": [field]})


@pytest.mark.slow
@pytest.mark.parametrize("file_format", ["text", "parquet"])
def test_generated_v11_data_and_the_network_report_match_the_generators_truth(spark, cfg, tmp_path, file_format):
    """`flowspark generate --field-version 11` (text and Parquet): every version 11 field ingests typed, tag
    values decoded; the network report's cross-AZ bytes, rejects by reason and bytes by encryption-status are
    the generator's own figures, counted from its arrays as it wrote them (_truth.json)."""
    from flowspark.generator import generate
    from flowspark.pipelines.report import read_section, run_report

    raw, lake = tmp_path / "raw", str(tmp_path / "lake")
    every = generate(str(raw), records=3000, accounts=1, regions=2, log_format="v11", output=file_format, tgw=True)
    truth = every["v11"]
    s = run_ingest(spark, cfg, str(raw), lake)
    assert s.reconciled() and s.rejected == 0 and not s.unknown_fields, s.text()
    assert (s.files_read, s.rows_written) == (every["files"], every["records"])
    records = tables.read(spark, lake, tables.FLOW_RECORDS)
    filled = records.select([F.count(c).alias(c) for c in COLUMNS[1:-1] + ["reject_reason", "encryption_status_code"]])
    empty = [c for c, n in filled.first().asDict().items() if n == 0 and c not in ("interface_tag_2", "asg_tag_2")]
    assert not empty, f"version 11 columns never filled: {empty}"
    assert records.where("instance_tag_2 = 'web team' and interface_type = 'interface'").count() > 0
    run_report(spark, cfg, lake, "network")

    def section(name):
        return read_section(spark, lake, "network", name, None, None)

    assert section("cross_az_pairs").agg(F.sum("bytes")).first()[0] == truth["cross_az_bytes"] > 0
    # the objects were written now, their records are of 2024: every one with a record day is late (the
    # ledger's file modification times); the period section has no previous period without --from/--to
    quality = section("data_quality").agg(F.sum("objects"), F.sum("late_objects"), F.min("max_delay_minutes")).first()
    with_days = tables.read(spark, lake, tables.INGESTED_FILES).where(F.size("days") > 0).select("source_file")
    assert quality[0] == every["files"] and quality[1] == with_days.distinct().count() > 0 and quality[2] > 60
    period = {r["measure"]: (r["current"], r["previous"]) for r in section("period").collect()}
    in_flows = tables.read(spark, lake, tables.FLOWS).agg(F.sum("records")).first()[0]
    assert period["records"] == (in_flows, None) and period["flows"][0] > 0
    causes = {r["reject_reason"]: r["records"] for r in section("reject_causes").collect()}
    assert causes == {"BPA": truth["rejected_records_BPA"], None: truth["rejected_records_no_reason"]}
    by_status = {r["encryption_status"]: r["bytes"] for r in section("encryption").collect()}
    assert by_status == {k: truth[f"accepted_bytes_encryption_{k}"] for k in range(4)}
    # a network ACL's dropped replies (the generator plants AWS's ping example; no other outgoing REJECT)
    nacl = section("nacl_drops")
    assert nacl.count() == truth["nacl_pairs"] > 0
    assert nacl.agg(F.sum("rejected_responses")).first()[0] == truth["nacl_dropped_responses"]
    assert {r["nacl_rule"] for r in nacl.collect()} == {"outbound rule (the request came in)"}
    # the Transit Gateway's flow log: packets lost per cause and attachment, as the generator counted them
    tgw, drops = every["tgw"], section("tgw_drops")
    causes = {"no-route": "no route", "blackhole": "blackhole route", "mtu-exceeded": "MTU exceeded", "ttl-expired": "TTL expired"}
    got = {(r["tgw_attachment_id"], r["cause"]): r["lost"] for r in
           drops.groupBy("tgw_attachment_id", "cause").agg(F.sum("packets_lost").alias("lost")).collect()}  # fmt: skip
    want = {(a, causes[c]): n for a, per in tgw["packets_lost_by_attachment"].items() for c, n in per.items() if n}
    assert got == want and sum(want.values()) == sum(tgw["packets_lost"].values()) > 0
    flows = tables.read(spark, lake, tables.FLOWS).where("resource_type = 'TransitGateway'")
    assert tuple(flows.agg(F.sum("records"), F.sum("packets"), F.sum("bytes")).first()) == (
        tgw["records"], tgw["packets"], tgw["bytes"])  # fmt: skip


LEGACY_LAKE = REPO / "tests" / "data" / "lakes" / "main-014a78e"  # encryption-status as text (its README says how)
LEGACY_SOURCE = "file:/tmp/flowspark-main-014a78e/src"  # where its source was when it was made


@pytest.mark.slow
def test_encryption_status_of_a_lake_that_stored_it_as_text_reads_as_todays_integer(spark, cfg, tmp_path):
    """A lake of commit 014a78e (encryption-status in `encryption_status`, text), its source moved here, then
    the other half of the day's objects (the same windows: their merges rewrite flows the old code wrote).
    Every table reads equal to a clean run of today's flowspark over all the objects (flow_records, flows,
    whole), the old rows' text in `encryption_status_code`; the network report's bytes per status are the
    generator's; the old column is still in the tables (no type changed in place)."""
    import json
    import os
    import shutil

    from flowspark.pipelines.report import read_section, run_report

    lake, src = tmp_path / "lake", tmp_path / "src"
    shutil.copytree(LEGACY_LAKE / "lake", lake)
    shutil.copytree(LEGACY_LAKE / "source-a", src)
    here = "file:" + str(src)
    for name in (tables.FLOW_RECORDS, tables.INGESTED_FILES):  # the lake's objects, where they are now
        spark.sql(f"UPDATE delta.`{lake / name}` SET source_file = replace(source_file, '{LEGACY_SOURCE}', '{here}')")
    for r in tables.read(spark, str(lake), tables.INGESTED_FILES).collect():  # git does not keep file times
        ns = r.modification_time_ms * 1_000_000
        os.utime(r.source_file[len("file:") :], ns=(ns, ns))
    old = spark.read.format("delta").load(str(lake / tables.FLOW_RECORDS))
    assert dict(old.dtypes)["encryption_status"] == "string" and "encryption_status_code" not in old.columns
    shutil.copytree(LEGACY_LAKE / "source-b", src, dirs_exist_ok=True)
    s = run_ingest(spark, cfg, str(src), str(lake))
    assert s.reconciled() and s.files_read == len(list((LEGACY_LAKE / "source-b").rglob("*.log.gz")))
    clean = tmp_path / "clean"
    run_ingest(spark, cfg, str(src), str(clean))
    for name in (tables.FLOW_RECORDS, tables.FLOWS):
        got, want = tables.read(spark, str(lake), name), tables.read(spark, str(clean), name)
        assert "encryption_status" not in got.columns and dict(got.dtypes)["encryption_status_code"] == "int"
        leave = ["ingest_id", "extra_fields"] if name == tables.FLOW_RECORDS else ["extra_fields"]
        a, b = got.drop(*leave), want.drop(*leave).select(*got.drop(*leave).columns)
        assert (a.exceptAll(b).count(), b.exceptAll(a).count()) == (0, 0), name
        stored = spark.read.format("delta").load(str(lake / name))
        assert dict(stored.dtypes)["encryption_status"] == "string"  # still there, never retyped
    run_report(spark, cfg, str(lake), "network")
    section = read_section(spark, str(lake), "network", "encryption", None, None)
    truth = json.loads((LEGACY_LAKE / "truth.json").read_text())
    assert {r["encryption_status"]: r["bytes"] for r in section.collect()} == {
        k: truth[f"accepted_bytes_encryption_{k}"] for k in range(4)
    }
