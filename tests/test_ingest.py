"""Ingest: every AWS-documented and flowlogs-reader record parses to its documented values,
bad lines become rejects with file/line/reason, and generated data reconciles with its truth."""

from __future__ import annotations

import datetime as dt
import gzip
import json
import os
import shutil
from pathlib import Path

import pytest
from chispa import assert_df_equality
from pyspark.sql import functions as F

from flowspark.cli import main
from flowspark.edges import tables
from flowspark.generator import generate
from flowspark.pipelines.ingest import run_ingest

REPO = Path(__file__).resolve().parents[1]


def records_of(spark, lake):
    return tables.read(spark, str(lake), tables.FLOW_RECORDS)


def rejects_of(spark, lake):
    return tables.read(spark, str(lake), tables.FLOW_REJECTS)


def _ts(text: str) -> dt.datetime:
    """A UTC instant (aware: the same instant whatever the test process's time zone)."""
    return dt.datetime.fromisoformat(text.replace("Z", "")).replace(tzinfo=dt.timezone.utc)


def _instant(value):
    """A collected timestamp (PySpark gives a naive local datetime) as an aware UTC instant."""
    return value.astimezone(dt.timezone.utc) if isinstance(value, dt.datetime) else value


# ---------------------------------------------------------------- AWS documentation examples


# (docs_lake: tests/conftest.py, shared with test_ocsf)


def test_docs_examples_reconcile(docs_lake):
    _, s = docs_lake
    assert (s.files_read, s.headers, s.records, s.rejected, s.rows_written) == (9, 9, 27, 0, 27)
    assert (s.nodata, s.skipdata) == (1, 1)


def test_docs_default_format_values(spark, docs_lake):
    lake, _ = docs_lake
    got = (
        records_of(spark, lake)
        .where(F.col("source_file").rlike("/0[1-4]_"))
        .select(
            "version", "account_id", "interface_id", "srcaddr", "dstaddr", "srcport", "dstport", "protocol",
            "packets", "bytes", "start", "end", "action", "log_status", "source_line",
        )
    )
    eni = "eni-1235b8ca123456789"
    rows = [
        (2, "123456789010", eni, "172.31.16.139", "172.31.16.21", 20641, 22, 6, 20, 4249,
         _ts("2014-12-14T04:06:50"), _ts("2014-12-14T04:07:50"), "ACCEPT", "OK", 2),
        (2, "123456789010", eni, "172.31.9.69", "172.31.9.12", 49761, 3389, 6, 20, 4249,
         _ts("2014-12-14T04:06:50"), _ts("2014-12-14T04:07:50"), "REJECT", "OK", 3),
        (2, "123456789010", eni, None, None, None, None, None, None, None,
         _ts("2015-05-10T18:01:16"), _ts("2015-05-10T18:02:14"), None, "NODATA", 2),
        (2, "123456789010", "eni-11111111aaaaaaaaa", None, None, None, None, None, None, None,
         _ts("2015-05-10T18:01:16"), _ts("2015-05-10T18:02:14"), None, "SKIPDATA", 3),
        (2, "123456789010", eni, "203.0.113.12", "172.31.16.139", 0, 0, 1, 4, 336,
         _ts("2015-05-29T16:30:27"), _ts("2015-05-29T16:32:22"), "ACCEPT", "OK", 2),
        (2, "123456789010", eni, "172.31.16.139", "203.0.113.12", 0, 0, 1, 4, 336,
         _ts("2015-05-29T16:31:34"), _ts("2015-05-29T16:32:22"), "REJECT", "OK", 3),
        (2, "123456789010", eni, "2001:db8:1234:a100:8d6e:3477:df66:f105", "2001:db8:1234:a102:3304:8879:34cf:4071",
         34892, 22, 6, 54, 8855, _ts("2016-10-31T11:35:08"), _ts("2016-10-31T11:37:00"), "ACCEPT", "OK", 2),
    ]
    expected = spark.createDataFrame(rows, got.schema)
    assert_df_equality(got, expected, ignore_row_order=True, ignore_nullable=True)


def test_docs_tcp_flags_double_space_and_v5(spark, docs_lake):
    lake, _ = docs_lake
    recs = records_of(spark, lake)
    flags = recs.where(F.col("source_file").contains("05_custom")).orderBy("source_line")
    assert [r.tcp_flags for r in flags.collect()] == [2, 18, 2, 18, 1, 1, 3, 19]
    # record 8 has a double space after 43638 in the doc: still 21 fields, parsed by name
    last = flags.collect()[-1]
    assert (last.srcport, last.dstport, last.pkt_srcaddr, last.bytes, last.packets) == (5001, 43638, "10.0.0.62", 967, 14)
    v5 = {r.flow_direction: r for r in recs.where(F.col("version") == 5).collect()}
    assert v5["ingress"].pkt_src_aws_service == "S3" and v5["ingress"].traffic_path is None
    assert v5["egress"].pkt_dst_aws_service == "S3" and v5["egress"].traffic_path == 8
    assert v5["egress"].region == "ap-southeast-2" and v5["egress"].az_id == "apse2-az3"


def test_docs_nat_and_tgw_custom_formats(spark, docs_lake):
    lake, _ = docs_lake
    recs = records_of(spark, lake)
    nat = recs.where(F.col("source_file").contains("06_custom")).orderBy("source_line").collect()
    assert [(r.instance_id, r.srcaddr, r.dstaddr, r.pkt_srcaddr, r.pkt_dstaddr) for r in nat] == [
        (None, "10.0.1.5", "10.0.0.220", "10.0.1.5", "203.0.113.5"),
        (None, "10.0.0.220", "203.0.113.5", "10.0.0.220", "203.0.113.5"),
        (None, "203.0.113.5", "10.0.0.220", "203.0.113.5", "10.0.0.220"),
        (None, "10.0.0.220", "10.0.1.5", "203.0.113.5", "10.0.1.5"),
    ]
    # a format without `start` has no event time: event_date stays null, nothing is dropped
    assert all(r.event_date is None and r.start is None for r in nat)
    tgw = recs.where(F.col("source_file").contains("08_custom")).orderBy("source_line").collect()
    assert [(r.interface_id, r.instance_id, r.srcaddr, r.pkt_srcaddr, r.tcp_flags) for r in tgw] == [
        ("eni-33333333333333333", "i-01234567890123456", "10.20.33.164", "10.20.33.164", 3),
        ("eni-33333333333333333", "i-01234567890123456", "10.40.2.236", "10.40.2.236", 19),
        ("eni-11111111111111111", None, "10.40.1.175", "10.20.33.164", 3),
        ("eni-22222222222222222", None, "10.40.2.236", "10.40.2.236", 19),
    ]


# ---------------------------------------------------------------- flowlogs-reader fixtures


@pytest.fixture(scope="module")
def reader_lake(spark, cfg, samples, tmp_path_factory):
    from flowspark.edges.config import with_overrides

    lake = tmp_path_factory.mktemp("reader_lake")
    # flows.parquet is not an AWS name (AWS writes .log.parquet): read it by option, as a user would.
    cfg = with_overrides(cfg, ingest={"parquet_suffixes": [".log.parquet", ".parquet"]})
    summary = run_ingest(spark, cfg, str(samples / "flowlogs-reader"), str(lake))
    return lake, summary


def _assert_matches_expected(row, expected: dict):
    """Every expected field equal; every other catalogue field null (the library drops '-')."""
    from flowspark.core.schema import FIELDS

    got = row.asDict()
    for f in FIELDS:
        want = expected.get(f.column)
        if isinstance(want, str) and f.kind == "epoch":
            want = _ts(want)
        assert _instant(got[f.column]) == want, f"{f.column}: {got[f.column]!r} != {want!r} in {expected}"


def _rows(spark, lake, name):
    return (
        records_of(spark, lake).where(F.col("source_file").endswith("/" + name)).orderBy("source_line").collect()
    )


def test_reader_summary(reader_lake):
    _, s = reader_lake
    # 5 v2 + 1 ms + 2 v3 + 2 v4 + 2 v5 + bogus + 1 v6 + 3 parquet
    assert (s.files_read, s.text_files, s.parquet_files) == (7, 6, 1)
    assert (s.records, s.rows_written, s.rejected) == (17, 16, 1)


def test_reader_expected_values(spark, samples, reader_lake):
    lake, _ = reader_lake
    exp = json.loads((samples / "flowlogs-reader" / "expected_parsed.json").read_text())
    v2 = _rows(spark, lake, "v2_records.log")
    _assert_matches_expected(v2[0], exp["v2_records.log"]["line_1_to_dict (test_parse)"])
    _assert_matches_expected(v2[2], exp["v2_records.log"]["line_3_to_dict (test_to_dict)"])
    ms = _rows(spark, lake, "v2_millisecond_timestamps.log")[0]
    assert (_instant(ms.start), _instant(ms.end)) == (
        _ts(exp["v2_millisecond_timestamps.log"]["start"]),
        _ts("2017-12-06T12:40:59"),
    )
    for key, fname in [
        ("v3_s3_with_header.log (test_serial)", "v3_s3_with_header.log"),
        ("v4_s3_with_header.log (test_serial_v4)", "v4_s3_with_header.log"),
        ("v5_s3_with_header.log (test_serial_v5; the 'bogus line' yields no record)", "v5_s3_with_header.log"),
        ("v6_tgw_s3_with_header.log (test_serial_v6)", "v6_tgw_s3_with_header.log"),
        ("flows.parquet (test_serial_parquet)", "flows.parquet"),
    ]:
        rows = _rows(spark, lake, fname)
        assert len(rows) == len(exp[key]), fname
        for row, want in zip(rows, exp[key]):
            _assert_matches_expected(row, want)


def test_reader_bogus_line_is_a_reject_with_line_number(spark, reader_lake):
    lake, _ = reader_lake
    rej = rejects_of(spark, lake).collect()
    assert [(Path(r.source_file).name, r.line_number, r.raw_line, r.reason) for r in rej] == [
        ("v5_s3_with_header.log", 4, "bogus line", "expected 29 fields, found 2")
    ]


# ---------------------------------------------------------------- bad input, odd bytes


def test_bad_lines_are_rejected_with_reasons_and_odd_bytes_tolerated(spark, cfg, samples, tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    good = (samples / "flowlogs-reader" / "v2_records.log").read_bytes().decode().splitlines()
    lines = [
        "\ufeff" + good[0],  # BOM before the first record (no header)
        good[1] + "\r",  # CRLF
        "",  # blank
        "   ",  # blank with spaces
        "bogus!",
        good[2].replace(" 443 ", " 70000 "),  # dstport out of range
        good[2].replace(" 6 20 ", " tcp 20 "),  # protocol not a number
        good[2].replace("REJECT", "SUCCESS"),
        good[2].replace(" OK", " GO_AWAY"),
        good[3],
        good[4] + "\t",
    ]
    data = "\n".join(lines).encode() + b"\n" + good[0].replace("198.51.100.1", "198.51.\xff.1").encode("latin-1") + b"\n"
    (src / "mixed.log").write_bytes(data)
    with gzip.open(src / "mixed2.log.gz", "wb") as fh:
        fh.write(("\n".join(good) + "\n").encode())
    s = run_ingest(spark, cfg, str(src), str(tmp_path / "lake"))
    assert (s.lines, s.blank_lines, s.headers) == (12 + 5, 2, 0)
    assert (s.records, s.rows_written, s.rejected) == (15, 9, 6)
    got = {(Path(r.source_file).name, r.line_number, r.reason) for r in rejects_of(spark, tmp_path / "lake").collect()}
    assert got == {
        ("mixed.log", 5, "expected 14 fields, found 1"),
        ("mixed.log", 6, "dstport: 70000 outside 0-65535"),
        ("mixed.log", 7, "protocol: not a number 'tcp'"),
        ("mixed.log", 8, "action: unknown value 'SUCCESS'"),
        ("mixed.log", 9, "log-status: unknown value 'GO_AWAY'"),
        ("mixed.log", 12, "undecodable bytes (not UTF-8)"),
    }
    good_lines = records_of(spark, tmp_path / "lake").where(F.col("source_file").endswith("mixed.log"))
    assert sorted(r.source_line for r in good_lines.collect()) == [1, 2, 10, 11]


# ---------------------------------------------------------------- generated data vs its truth


def _reconcile_with_truth(spark, lake, truth, date=None):
    recs = records_of(spark, lake)
    if date:
        recs = recs.where(F.col("event_date") == date)
    agg = recs.agg(
        F.count(F.lit(1)).alias("records"),
        F.count(F.when(F.col("log_status") == "NODATA", 1)).alias("nodata"),
        F.count(F.when(F.col("log_status") == "SKIPDATA", 1)).alias("skipdata"),
        F.count(F.when(F.col("action") == "ACCEPT", 1)).alias("accept"),
        F.count(F.when(F.col("action") == "REJECT", 1)).alias("reject"),
        F.sum(F.when(F.col("log_status") == "OK", F.col("packets"))).alias("packets"),
        F.sum(F.when(F.col("log_status") == "OK", F.col("bytes"))).alias("bytes"),
    ).first()
    if date:
        assert agg.records == truth["by_date"][date]
        return
    assert agg.records == truth["records"]
    assert (agg.nodata, agg.skipdata) == (truth["nodata"], truth["skipdata"])
    assert (agg.accept, agg.reject) == (truth["by_action"]["ACCEPT"], truth["by_action"]["REJECT"])
    assert (agg.packets, agg.bytes) == (truth["packets"], truth["bytes"])
    by_date = {str(r.event_date): r["count"] for r in recs.groupBy("event_date").count().collect()}
    assert by_date == truth["by_date"]


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    out = tmp_path_factory.mktemp("gen")
    truth = generate(str(out), records=30_000, seed=11, accounts=2, regions=1, days=2, workers=1, quiet=True)
    return out, truth


def test_generated_reconciles_and_reingest_changes_nothing(spark, cfg, generated, tmp_path):
    out, truth = generated
    lake = tmp_path / "lake"
    s = run_ingest(spark, cfg, str(out), str(lake))
    assert s.rejected == 0 and s.records == truth["records"] == s.rows_written
    assert s.files_read == truth["files"] and s.headers == truth["files"]
    _reconcile_with_truth(spark, lake, truth)
    before = records_of(spark, lake)
    before_rows = before.count()
    again = run_ingest(spark, cfg, str(out), str(lake))
    assert (again.files_skipped, again.files_read, again.rows_written) == (truth["files"], 0, 0)
    after = records_of(spark, lake)
    assert after.count() == before_rows
    # map columns cannot be sorted or hashed: compare the rest, duplicates counted (exceptAll both ways)
    a, b = before.drop("extra_fields"), after.drop("extra_fields")
    assert a.exceptAll(b).count() == 0 and b.exceptAll(a).count() == 0


def test_date_range_reads_only_those_days(spark, cfg, generated, tmp_path):
    out, truth = generated
    day2 = sorted(truth["by_date"])[1]
    d = dt.date.fromisoformat(day2)
    s = run_ingest(spark, cfg, str(out), str(tmp_path / "lake"), date_from=d, date_to=d)
    assert s.files_read == truth["files"] // 2
    _reconcile_with_truth(spark, tmp_path / "lake", truth, date=day2)


def test_hive_layout_parquet_and_custom_formats(spark, cfg, tmp_path):
    hive = tmp_path / "hive"
    t1 = generate(str(hive), records=8_000, seed=3, accounts=1, regions=2, layout="hive", hourly=True,
                  log_format="mixed", workers=1, quiet=True)
    pq = tmp_path / "pq"
    t2 = generate(str(pq), records=6_000, seed=4, accounts=1, regions=1, output="parquet", log_format="custom",
                  workers=1, quiet=True)
    for src, truth in ((hive, t1), (pq, t2)):
        lake = tmp_path / ("lake_" + src.name)
        s = run_ingest(spark, cfg, str(src), str(lake))
        assert (s.records, s.rejected) == (truth["records"], 0)
        _reconcile_with_truth(spark, lake, truth)


# ---------------------------------------------------------------- CLI: fail fast, clear messages


def test_cli_bad_format_fails_before_spark(capsys, tmp_path):
    code = main(["ingest", "--source", str(tmp_path), "--lake", str(tmp_path / "l"), "--input-format", "version bogus-field"])
    assert code == 2
    assert "unknown flow log field(s) in the format: bogus-field" in capsys.readouterr().err


def test_cli_reversed_dates_and_missing_source(capsys, spark, tmp_path):
    code = main(["ingest", "--source", str(tmp_path), "--lake", str(tmp_path / "l"), "--from", "2024-06-02",
                 "--to", "2024-06-01"])
    assert code == 2 and "is after --to" in capsys.readouterr().err
    code = main(["ingest", "--source", str(tmp_path / "nope"), "--lake", str(tmp_path / "l")])
    assert code == 2 and "source folder not found" in capsys.readouterr().err


def test_cli_ingest_headerless_with_format(spark, samples, tmp_path, capsys):
    src = tmp_path / "cw"
    src.mkdir()
    body = (samples / "aws-docs-flow-log-examples" / "06_custom_nat_gateway_eni.log").read_text().splitlines()[1:]
    (src / "export.log").write_text("\n".join(body) + "\n")
    code = main(["ingest", "--source", str(src), "--lake", str(tmp_path / "lake"),
                 "--format", "${instance-id} ${interface-id} ${srcaddr} ${dstaddr} ${pkt-srcaddr} ${pkt-dstaddr}"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "rows written   4" in out and "OK" in out
    shutil.rmtree(src)


def test_a_misspelt_header_field_is_named_and_a_misspelt_key_field_rejects_the_lines(spark, cfg, tmp_path, caplog):
    """Headers with 'srcadr' (for srcaddr) and 'protcol' (for protocol), fields of the flow key: their data lines
    are rejects naming both names (never rows with a NULL in the key); a NODATA line of the same object is a
    record. 'pakets' (for packets, not a key field): the rows go in, the value in extra_fields. The summary and
    a warning name every unknown field with the known field it is closest to."""
    src = tmp_path / "src"
    src.mkdir()
    v2 = "version account-id interface-id srcaddr dstaddr srcport dstport protocol packets bytes start end action log-status"
    rows = [f"2 123456789012 eni-a 10.0.0.{i} 10.0.1.1 4915{i} 443 6 1 100 1620140761 1620140821 ACCEPT OK" for i in range(3)]
    nodata = "2 123456789012 eni-a - - - - - - - 1620140761 1620140821 - NODATA"
    for name, header in (("a", v2.replace("srcaddr", "srcadr")), ("b", v2.replace("protocol", "protcol")),
                         ("c", v2.replace("packets", "pakets"))):  # fmt: skip
        (src / f"{name}.log").write_text("\n".join([header, *rows, nodata]) + "\n")
    s = run_ingest(spark, cfg, str(src), str(tmp_path / "lake"))
    assert s.reconciled() and (s.rows_written, s.rejected) == (3 + 1 + 1 + 1, 6), s.text()
    assert s.unknown_fields == {"srcadr": 1, "protcol": 1, "pakets": 1}
    text = "unknown fields pakets (1 object; packets?), protcol (1 object; protocol?), srcadr (1 object; srcaddr?)"
    assert text in s.text()
    assert any(text[len("unknown fields "):] in r.getMessage() for r in caplog.records if r.levelname == "WARNING")
    rejects = tables.read(spark, str(tmp_path / "lake"), tables.FLOW_REJECTS)
    why = "(not a flow log field) for {}: a field of the flow key would be empty; fix the header or --input-format"
    expected = [(f"{f}.log", line, f"the format has {bad} " + why.format(key))
                for f, bad, key in (("a", "srcadr", "srcaddr"), ("b", "protcol", "protocol")) for line in (2, 3, 4)]  # fmt: skip
    assert_df_equality(
        rejects.select(F.regexp_extract("source_file", r"([^/]+)$", 1).alias("f"), "line_number", "reason"),
        spark.createDataFrame(expected, "f string, line_number long, reason string"),
        ignore_row_order=True, ignore_nullable=True,
    )  # fmt: skip
    got = records_of(spark, str(tmp_path / "lake")).select(
        F.regexp_extract("source_file", r"([^/]+)$", 1).alias("f"), "source_line", "log_status", "packets",
        F.col("extra_fields")["pakets"].alias("x"),
    )  # fmt: skip
    want = [("a.log", 5, "NODATA", None, None), ("b.log", 5, "NODATA", None, None), ("c.log", 5, "NODATA", None, None)]
    want += [("c.log", line, "OK", None, "1") for line in (2, 3, 4)]
    assert_df_equality(
        got, spark.createDataFrame(want, "f string, source_line long, log_status string, packets long, x string"),
        ignore_row_order=True, ignore_nullable=True,
    )  # fmt: skip


def test_account_and_region_come_from_the_object_name_when_the_format_lacks_them(spark, cfg, tmp_path):
    """AWS names every object {account}_vpcflowlogs_{region}_...: a format without account-id or region gets
    them from there (account_id is part of the flow key); a format with them keeps its own values; an object
    with another name keeps NULL."""
    day = tmp_path / "src" / "AWSLogs" / "111122223333" / "vpcflowlogs" / "eu-west-3" / "2021" / "05" / "04"
    day.mkdir(parents=True)
    aws = "111122223333_vpcflowlogs_eu-west-3_fl-0abc_20210504T1500Z_9f8e7d6c.log"
    line = "eni-a 10.0.0.1 10.0.1.1 49152 443 6 1 100 1620140761 1620140821 ACCEPT OK"
    (day / aws).write_text("interface-id srcaddr dstaddr srcport dstport protocol packets bytes start end action log-status\n" + line + "\n")
    own = aws.replace("T1500Z_9f8e7d6c", "T1505Z_1a2b3c4d")
    (day / own).write_text(
        "account-id region interface-id srcaddr dstaddr srcport dstport protocol packets bytes start end action log-status\n"
        f"444455556666 us-east-1 {line}\n"
    )
    (day / "export.log").write_text("interface-id srcaddr dstaddr srcport dstport protocol packets bytes start end action log-status\n" + line + "\n")
    s = run_ingest(spark, cfg, str(tmp_path / "src"), str(tmp_path / "lake"))
    assert s.reconciled() and s.rows_written == 3 and s.rejected == 0
    got = records_of(spark, str(tmp_path / "lake")).select(
        F.regexp_extract("source_file", r"([^/]+)$", 1).alias("f"), "account_id", "region"
    )
    want = [(aws, "111122223333", "eu-west-3"), (own, "444455556666", "us-east-1"), ("export.log", None, None)]
    assert_df_equality(got, spark.createDataFrame(want, "f string, account_id string, region string"),
                       ignore_row_order=True, ignore_nullable=True)  # fmt: skip


def test_the_parsed_rows_scratch_is_removed_after_each_claim_and_stale_ones_after_a_day(spark, cfg, tmp_path):
    """A claim's parsed rows live in <lake>/_scratch/<claim>.<token> only while its tables are written; one
    left by a killed attempt is removed by the first ingest after a day, one of an attempt running now is not."""
    src, lake = tmp_path / "src", tmp_path / "lake"
    src.mkdir()
    line = "2 111 eni-a 10.0.0.1 10.0.1.1 49152 443 6 1 100 1620140761 1620140821 ACCEPT OK"
    (src / "a.log").write_text(line + "\n")
    s = run_ingest(spark, cfg, str(src), str(lake))
    assert s.reconciled() and s.rows_written == 1
    assert not any((lake / tables.SCRATCH).iterdir())  # the claim's own folder is gone
    stale, fresh = lake / tables.SCRATCH / "dead.0", lake / tables.SCRATCH / "live.1"
    for folder in (stale, fresh):
        folder.mkdir()
        (folder / "part-0.parquet").write_bytes(b"x")
    day_ago = dt.datetime.now().timestamp() - 25 * 3600
    for p in (stale, stale / "part-0.parquet"):
        os.utime(p, (day_ago, day_ago))
    (src / "b.log").write_text(line.replace("eni-a", "eni-b") + "\n")
    s = run_ingest(spark, cfg, str(src), str(lake))
    assert s.rows_written == 1
    assert sorted(p.name for p in (lake / tables.SCRATCH).iterdir()) == ["live.1"]
