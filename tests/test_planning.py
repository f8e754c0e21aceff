"""Planning is O(flow logs): the driver reads one first line per flow log (the id in AWS's object names), not
one per object; line 1 is the header only when it IS the header of the group's format; listing holds a small
record per object."""

from __future__ import annotations

import gzip
import os
import time
import tracemalloc
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from chispa import assert_df_equality
from moto_server import moto_server, recorded, recorder

from flowspark.core.lines import TextFormat, parse_text
from flowspark.edges import sources, tables
from flowspark.edges.config import with_overrides
from flowspark.edges.sources import S3Access, SourceFile, discover, flow_log_of, format_groups
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


# ------------------------------------------------------------------ the header rule (core.lines)


def test_line_one_is_the_header_only_when_it_is_the_formats_header(spark):
    """Objects parsed with a format that has a header: line 1 that is not that header is a record (or reject or
    blank), never dropped as a header. Before the rule changed, b:1 (a record) and c:1 (another header) were
    taken as headers."""
    fmt = TextFormat(tuple(V2.split(" ")), True)
    rows = [
        ("a", 1, V2), ("a", 2, v2(1)),
        ("b", 1, v2(2)), ("b", 2, v2(3)),  # no header: line 1 is a record
        ("c", 1, V3), ("c", 2, V3_RECORD),  # another format's header: a reject (18 fields, not 14)
        ("d", 1, "   "), ("d", 2, v2(4)),
        ("e", 1, V2.replace("log-status", "log_status").replace("account-id", "account_id")),  # Parquet-style names
        ("f", 1, "\ufeff" + V2.replace(" ", "\t  ") + "\r"),  # BOM, tabs, runs of spaces, CR: still the header
        ("g", 2, V2),  # the header's text on line 2: a reject
    ]  # fmt: skip
    lines = spark.createDataFrame(rows, "source_file string, source_line long, line string")
    got = lines.transform(parse_text(fmt)).selectExpr("source_file", "source_line", "kind", "reason IS NOT NULL AS rej")
    expected = spark.createDataFrame(
        [
            ("a", 1, "header", False), ("a", 2, "record", False),
            ("b", 1, "record", False), ("b", 2, "record", False),
            ("c", 1, "record", True), ("c", 2, "record", True),
            ("d", 1, "blank", False), ("d", 2, "record", False),
            ("e", 1, "header", False), ("f", 1, "header", False), ("g", 2, "record", True),
        ],  # fmt: skip
        "source_file string, source_line long, kind string, rej boolean",
    )
    assert_df_equality(got, expected, ignore_row_order=True, ignore_nullable=True)


@pytest.mark.slow
def test_what_detect_format_calls_the_header_is_what_the_spark_parse_drops_as_the_header(spark):
    """What decides a group's format (detect_format, Python) and what the parse drops as the header (Spark) agree:
    600 variants of the v2 header (names as they are or with '_', BOM, tabs, CR, no-break and other odd
    whitespace, a stray or changed token): line 1 is HEADER in Spark exactly when detect_format reads it as
    that format's header."""
    import random

    from flowspark.core.lines import HEADER, detect_format
    from flowspark.core.schema import DEFAULT_FORMAT

    fmt = TextFormat(tuple(DEFAULT_FORMAT), True)
    rnd = random.Random(13)
    odd = [" ", "  ", "\t", "\u00a0", "\r", "\ufeff", "\x0b", "\x0c", "\x1f", "\u2028", "\x85", "\u3000"]
    texts = []
    for _ in range(600):
        names = [n.replace("-", "_") if rnd.random() < 0.2 else n for n in DEFAULT_FORMAT]
        if rnd.random() < 0.15:
            names.insert(rnd.randrange(len(names) + 1), rnd.choice(["-", "2", "Version", "x", "srcaddr"]))
        if rnd.random() < 0.1:
            names[rnd.randrange(len(names))] = rnd.choice(["VERSION", "src addr", "bytes2", "version"])
        seps = [rnd.choice(odd) if rnd.random() < 0.08 else " " for _ in names]
        text = "".join(sep + n for sep, n in zip(seps, names))[1:]
        texts.append(rnd.choice(["", "\ufeff", " "]) + text + rnd.choice(["", "\r", " ", "\t"]))
    expected_rows = [(str(i), detect_format(t) == fmt) for i, t in enumerate(texts)]
    assert 100 < sum(h for _, h in expected_rows) < 500  # both kinds are exercised
    rows = [(str(i), 1, t) for i, t in enumerate(texts)]
    lines = spark.createDataFrame(rows, "source_file string, source_line long, line string")
    got = lines.transform(parse_text(fmt)).selectExpr("source_file", f"kind = '{HEADER}' AS header")
    expected = spark.createDataFrame(expected_rows, "source_file string, header boolean")
    assert_df_equality(got, expected, ignore_row_order=True, ignore_nullable=True)


# ------------------------------------------------------------------ groups by flow log


def test_flow_log_of_reads_the_id_from_aws_names_only():
    assert flow_log_of("s3a://b/AWSLogs/123456789012/vpcflowlogs/eu-west-1/2024/06/01/" + aws_name("fl-0a1b2c3d", 5,
                       region="eu-west-1")) == "123456789012/eu-west-1/fl-0a1b2c3d"
    hive = "file:///x/aws-account-id=123456789012/aws-region=us-east-1/year=2024/" + aws_name("fl-00aa11bb22cc33dd4", 0)
    assert flow_log_of(hive) == "123456789012/us-east-1/fl-00aa11bb22cc33dd4"
    for other in ("file:///x/flows.log.gz", "file:///x/123456789012_vpcflowlogs_us-east-1_fl-1_x.log.gz",
                  "s3://b/" + aws_name("fl-0a1b2c3d", 0).replace(".log.gz", ".log.parquet"), "s3://b/logs.txt"):
        assert flow_log_of(other) is None, other


def _write(path: Path, text: str | bytes, gz: bool = True) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    data = text.encode() if isinstance(text, str) else text
    path.write_bytes(gzip.compress(data) if gz else data)


def test_one_read_per_flow_log_and_the_next_objects_when_the_first_are_unusable(tmp_path, monkeypatch):
    """A flow log whose first objects are empty (no read), not gzip and blank-first-line: the 3rd read decides;
    with 2 tries it gives up ("" = the default format). Names off AWS's pattern: one read each."""
    reads: list[str] = []
    real = sources._first_line

    def counting(f, s3, client):
        reads.append(f.path.rsplit("/", 1)[-1])
        return real(f, s3, client)

    monkeypatch.setattr(sources, "_first_line", counting)
    day = tmp_path / "AWSLogs" / "123456789012" / "vpcflowlogs" / "us-east-1" / "2024" / "06" / "01"
    a, b = "fl-000000000000000aa", "fl-000000000000000bb"
    (day).mkdir(parents=True)
    (day / aws_name(a, 0)).write_bytes(b"")  # zero bytes: skipped without a read
    _write(day / aws_name(a, 5), V2 + "\n", gz=False)  # a .gz that is not gzip: unusable
    _write(day / aws_name(a, 10), "\n" + v2(1) + "\n")  # blank first line: unusable
    _write(day / aws_name(a, 15), V2 + "\n" + v2(2) + "\n")  # decides
    _write(day / aws_name(a, 20), V2 + "\n" + v2(3) + "\n")
    for m in range(0, 60, 5):
        _write(day / aws_name(b, m), V3 + "\n" + V3_RECORD + "\n")
    for i in range(3):
        _write(tmp_path / "other" / f"export-{i}.log.gz", v2(i) + "\n")
    files = discover(None, str(tmp_path), (".log", ".log.gz"))
    got = {tuple(f.path.rsplit("/", 1)[-1] for f in g): first for first, g in format_groups(files, S3Access())}
    assert sorted(got.items()) == sorted(
        {
            tuple(aws_name(a, m) for m in range(0, 25, 5)): V2,
            tuple(aws_name(b, m) for m in range(0, 60, 5)): V3,
            **{(f"export-{i}.log.gz",): v2(i) for i in range(3)},
        }.items()
    )
    assert sorted(reads) == sorted(
        [aws_name(a, 5), aws_name(a, 10), aws_name(a, 15), aws_name(b, 0)] + [f"export-{i}.log.gz" for i in range(3)]
    )
    reads.clear()
    groups = format_groups([f for f in files if flow_log_of(f.path)], S3Access(), tries=2)
    assert [first for first, _ in groups] == ["", V3] and len(reads) == 3


@pytest.mark.slow
def test_an_object_unlike_its_flow_logs_first_is_parsed_line_by_line(spark, cfg, tmp_path):
    """One flow log, three objects: the first (with a header) decides the format; the second has no header, the
    third another format's header. Every line is accounted for: records + rejects = lines - the one header."""
    fl = "fl-0123456789abcdef0"
    day = tmp_path / "src" / "AWSLogs" / "123456789012" / "vpcflowlogs" / "us-east-1" / "2024" / "06" / "01"
    first, second, third = (day / aws_name(fl, m) for m in (0, 5, 10))
    _write(first, "\n".join([V2, v2(1), v2(2), v2(3)]) + "\n")
    _write(second, "\n".join([v2(4), v2(5), v2(6)]) + "\n")
    _write(third, "\n".join([V3, V3_RECORD, V3_RECORD]) + "\n")
    lake = tmp_path / "lake"
    s = run_ingest(spark, cfg, str(tmp_path / "src"), str(lake))
    assert (s.lines, s.headers, s.records, s.rows_written, s.rejected) == (10, 1, 9, 6, 3)

    def name(p: Path) -> str:
        return "file:" + str(p)

    got = tables.read(spark, str(lake), tables.FLOW_RECORDS).select("source_file", "source_line", "srcport")
    expected = spark.createDataFrame(
        [(name(first), n + 1, 1024 + n) for n in (1, 2, 3)] + [(name(second), n - 3, 1024 + n) for n in (4, 5, 6)],
        "source_file string, source_line long, srcport int",
    )
    assert_df_equality(got, expected, ignore_row_order=True, ignore_nullable=True)
    rej = tables.read(spark, str(lake), tables.FLOW_REJECTS).select("source_file", "line_number", "raw_line")
    expected_rej = spark.createDataFrame(
        [(name(third), 1, V3), (name(third), 2, V3_RECORD), (name(third), 3, V3_RECORD)],
        "source_file string, line_number long, raw_line string",
    )
    assert_df_equality(rej, expected_rej, ignore_row_order=True, ignore_nullable=True)


# ------------------------------------------------------------------ GETs against an S3 server


@pytest.mark.slow
def test_planning_gets_one_object_per_flow_log(spark, cfg, tmp_path):
    """2 000 objects of 3 flow logs on moto's S3 server (its request recorder on): ingest's planning makes 3
    ranged GETs (the sniff of one object per flow log); the read makes one GET per object, in the tasks."""
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
        creds = {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test", "AWS_DEFAULT_REGION": "us-east-1"}
        workers = spark.sparkContext.environment
        before = {k: workers.get(k) for k in creds}
        try:
            with pytest.MonkeyPatch.context() as mp:
                for k, v in creds.items():
                    mp.setenv(k, v)
                workers.update(creds)
                recorder(ep, "reset-recording")
                recorder(ep, "start-recording")
                t0 = time.time()
                s = run_ingest(
                    spark, with_overrides(cfg, s3={"endpoint": ep, "path_style": True}), f"s3://{bucket}/AWSLogs",
                    str(tmp_path / "lake"),
                )  # fmt: skip
                seconds = time.time() - t0
                recorder(ep, "stop-recording")
        finally:
            for k, v in before.items():
                if v is None:
                    workers.pop(k, None)
                else:
                    workers[k] = v
        requests = recorded(ep)
    assert (s.files_read, s.headers, s.records, s.rows_written, s.rejected) == (2000, 2000, 4000, 4000, 0)
    gets = [r for r in requests if r["method"] == "GET" and "list-type" not in r["url"] and "?" not in r["url"]]
    ranged = [r for r in gets if {k.lower(): v for k, v in r["headers"].items()}.get("range") == "bytes=0-65535"]
    whole = [r for r in gets if "range" not in {k.lower() for k in r["headers"]}]
    sniffed = sorted(r["url"].rsplit("_", 3)[1] for r in ranged)
    print(f"\n2 000 objects of 3 flow logs: {len(ranged)} planning GETs, {len(whole)} read GETs, ingest {seconds:.1f} s")
    assert sniffed == sorted(counts), sniffed  # one sniff per flow log
    assert len(whole) == 2000 and len(gets) == len(ranged) + len(whole)


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
