"""Planning reads no object: the driver lists, the tasks read; each object's own line 1 decides its format
(a header of any field order, or the default format); listing holds a small record per object."""

from __future__ import annotations

import gzip
import os
import time
import tracemalloc
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from chispa import assert_df_equality
from moto_server import aws_test_credentials, moto_server, recorded, recorder

from flowspark.edges import tables
from flowspark.edges.config import with_overrides
from flowspark.edges.sources import SourceFile, discover
from flowspark.pipelines.ingest import run_ingest

V2 = "version account-id interface-id srcaddr dstaddr srcport dstport protocol packets bytes start end action log-status"
V3 = (
    "account-id bytes dstaddr dstport end instance-id packets pkt-dstaddr pkt-srcaddr protocol srcaddr srcport "
    "start subnet-id tcp-flags type version vpc-id"
)
V3_RECORD = (
    "000000000000 6392 172.18.160.93 47460 1568300425 i-06f9249b 10 172.18.160.93 192.168.0.1 6 172.18.160.68 "
    "443 1568300367 subnet-089e7569 19 IPv4 3 vpc-0461a061"
)


def v2(i: int) -> str:
    return f"2 123456789012 eni-0a1b2c3d 10.0.0.{i % 250 + 1} 10.0.1.5 {1024 + i} 443 6 10 840 1718000000 1718000060 ACCEPT OK"


def aws_name(fl: str, minute: int, account: str = "123456789012", region: str = "us-east-1") -> str:
    hh, mm = divmod(minute, 60)
    day, hh = divmod(hh, 24)
    return f"{account}_vpcflowlogs_{region}_{fl}_202406{day + 1:02d}T{hh:02d}{mm:02d}Z_{minute:08x}.log.gz"


# ------------------------------------------------------------------ each object's line 1 decides


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(gzip.compress(text.encode()))


@pytest.mark.slow
def test_each_object_is_read_in_its_own_format(spark, cfg, tmp_path):
    """One flow log, five objects: with the v2 header; without a header (the default format); with a v3
    header of another field order (AWS's Parquet-style underscores, a BOM, tabs and a CR too); with a blank
    line 1; and one whose line 2 repeats the header text (a reject: only line 1 is a header). Every line is
    accounted for, each object parsed by its own line 1."""
    fl = "fl-0123456789abcdef0"
    day = tmp_path / "src" / "AWSLogs" / "123456789012" / "vpcflowlogs" / "us-east-1" / "2024" / "06" / "01"
    a, b, c, d, e = (day / aws_name(fl, m) for m in (0, 5, 10, 15, 20))
    _write(a, "\n".join([V2, v2(1), v2(2)]) + "\n")
    _write(b, "\n".join([v2(3), v2(4)]) + "\n")
    odd_v3 = "\ufeff" + V3.replace("account-id", "account_id").replace(" ", "\t  ") + "\r"
    _write(c, "\n".join([odd_v3, V3_RECORD, V3_RECORD]) + "\n")
    _write(d, "\n".join(["   ", v2(5)]) + "\n")
    _write(e, "\n".join([V2, v2(6), V2]) + "\n")
    lake = tmp_path / "lake"
    s = run_ingest(spark, cfg, str(tmp_path / "src"), str(lake))
    # lines 13 = 3 headers (a, c, e) + 1 blank (d:1) + 9 record lines (8 records, 1 reject: e:3)
    assert (s.lines, s.headers, s.blank_lines, s.records, s.rows_written, s.rejected) == (13, 3, 1, 9, 8, 1)

    def name(p: Path) -> str:
        return "file:" + str(p)

    got = tables.read(spark, str(lake), tables.FLOW_RECORDS).select("source_file", "source_line", "srcport", "vpc_id")
    expected = spark.createDataFrame(
        [(name(a), 2, 1025, None), (name(a), 3, 1026, None), (name(b), 1, 1027, None), (name(b), 2, 1028, None),
         (name(c), 2, 443, "vpc-0461a061"), (name(c), 3, 443, "vpc-0461a061"), (name(d), 2, 1029, None),
         (name(e), 2, 1030, None)],
        "source_file string, source_line long, srcport int, vpc_id string",
    )  # fmt: skip
    assert_df_equality(got, expected, ignore_row_order=True, ignore_nullable=True)
    rej = tables.read(spark, str(lake), tables.FLOW_REJECTS).select("source_file", "line_number", "raw_line", "reason")
    expected_rej = spark.createDataFrame(
        [(name(e), 3, V2, "version: not a number 'version'; srcport: not a number 'srcport'; dstport: not a number "
          "'dstport'; protocol: not a number 'protocol'; packets: not a number 'packets'; bytes: not a number "
          "'bytes'; start: not a number 'start'; end: not a number 'end'; action: unknown value 'action'; "
          "log-status: unknown value 'log-status'")],
        "source_file string, line_number long, raw_line string, reason string",
    )  # fmt: skip
    assert_df_equality(rej, expected_rej, ignore_row_order=True, ignore_nullable=True)


# ------------------------------------------------------------------ GETs against an S3 server


@pytest.mark.slow
def test_planning_reads_no_object_and_the_tasks_one_get_each(spark, cfg, tmp_path):
    """2 000 objects of 3 flow logs (two formats) on moto's S3 server (its request recorder on): the driver
    lists and reads no object; the read makes exactly one GET per object, in the tasks."""
    counts = {"fl-0000000000000000a": 700, "fl-0000000000000000b": 700, "fl-0000000000000000c": 600}
    bucket = "planning-logs"
    with moto_server(tmp_path / "moto", MOTO_ENABLE_RECORDING="", MOTO_RECORDER_FILEPATH=str(tmp_path / "rec")) as ep:
        import boto3

        client = boto3.client(
            "s3", endpoint_url=ep, aws_access_key_id="test", aws_secret_access_key="test", region_name="us-east-1"
        )
        client.create_bucket(Bucket=bucket)
        objects = []
        for fl, n in counts.items():
            header, record = (V3, V3_RECORD) if fl.endswith("c") else (V2, None)
            for m in range(n):
                key = f"AWSLogs/123456789012/vpcflowlogs/us-east-1/2024/06/{m // 288 + 1:02d}/" + aws_name(fl, m * 5)
                body = gzip.compress("\n".join([header, record or v2(m), record or v2(m + 1)]).encode() + b"\n")
                objects.append((key, body))
        with ThreadPoolExecutor(8) as pool:
            list(pool.map(lambda kb: client.put_object(Bucket=bucket, Key=kb[0], Body=kb[1]), objects))

        hconf = spark.sparkContext._jsc.hadoopConfiguration()
        for k, v in {
            "endpoint": ep, "path.style.access": "true", "connection.ssl.enabled": "false", "access.key": "test",
            "secret.key": "test", "endpoint.region": "us-east-1", "change.detection.mode": "none",
            "aws.credentials.provider": "org.apache.hadoop.fs.s3a.SimpleAWSCredentialsProvider",
        }.items():  # fmt: skip
            hconf.set(f"fs.s3a.bucket.{bucket}.{k}", v)
        with aws_test_credentials(spark):
            recorder(ep, "reset-recording")
            recorder(ep, "start-recording")
            t0 = time.time()
            s = run_ingest(
                spark, with_overrides(cfg, s3={"endpoint": ep, "path_style": True}), f"s3://{bucket}/AWSLogs",
                str(tmp_path / "lake"),
            )  # fmt: skip
            seconds = time.time() - t0
            recorder(ep, "stop-recording")
        requests = recorded(ep)
    assert (s.files_read, s.headers, s.records, s.rows_written, s.rejected) == (2000, 2000, 4000, 4000, 0)
    gets = [r for r in requests if r["method"] == "GET" and "list-type" not in r["url"] and "?" not in r["url"]]
    ranged = [r for r in gets if "range" in {k.lower() for k in r["headers"]}]
    per_object = {r["url"].split("?")[0] for r in gets}
    print(f"\n2 000 objects of 3 flow logs: {len(gets)} GETs, ingest {seconds:.1f} s")
    assert ranged == [] and len(gets) == len(per_object) == 2000  # no sniff: one whole GET per object


# ------------------------------------------------------------------ the driver's memory for a large listing


@pytest.mark.slow
def test_listing_holds_a_small_record_per_object(tmp_path):
    """discover() of 100 k (empty) objects: the driver's peak allocation per listed object, by tracemalloc."""
    n, per_folder = 100_000, 1_000
    root = tmp_path / "src"
    for d in range(n // per_folder):
        folder = root / "AWSLogs" / "123456789012" / "vpcflowlogs" / "us-east-1" / "2024" / f"{d // 28 + 1:02d}" / (
            f"{d % 28 + 1:02d}"
        ) / f"{d:02d}"
        folder.mkdir(parents=True)
        for m in range(per_folder):
            os.close(os.open(folder / aws_name("fl-00000000000000001", m), os.O_CREAT | os.O_WRONLY, 0o644))
    tracemalloc.start()
    try:
        t0 = time.time()
        files = discover(None, str(root), (".log", ".log.gz"))
        seconds = time.time() - t0
        current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert len(files) == n and isinstance(files[0], SourceFile)
    print(f"\ndiscover() of {n:,} objects: {seconds:.1f} s, held {current / n:.0f} B/object, peak {peak / n:.0f} B/object")
    assert peak / n < 1024, peak / n
