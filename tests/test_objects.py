"""Ingest's object reader: broken objects never stop a run, odd paths stay readable, memory stays flat.

Oracles are written from the outside: the good lines of a truncated gzip come from Python's gzip module
reading until it fails, line numbers from counting newlines, counts from what the test itself wrote.
"""

from __future__ import annotations

import gzip
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from chispa import assert_df_equality

from flowspark.cli import main
from flowspark.core.schema import DEFAULT_FORMAT
from flowspark.edges import tables
from flowspark.generator import generate
from flowspark.pipelines.ledger import broken_objects

REPO = Path(__file__).resolve().parents[1]
FLOWSPARK = str(Path(sys.executable).with_name("flowspark"))
HEADER = " ".join(DEFAULT_FORMAT)


def _good_lines_of_truncated(path: Path) -> list[bytes]:
    """The complete lines Python's gzip module can read from a truncated gzip before it gives up."""
    data = b""
    with gzip.open(path, "rb") as fh:
        try:
            while chunk := fh.read(1):  # byte by byte: a bigger read gives up on the bytes it had
                data += chunk
        except EOFError:
            pass
    return data.split(b"\n")[:-1]  # the piece after the last newline is a cut line, not a line


def _record_lines(lines: list[bytes]) -> list[tuple[int, list[bytes]]]:
    """(1-based line number, fields) of every record line (not the header, not blank)."""
    return [(i, ln.split()) for i, ln in enumerate(lines, 1) if i > 1 and ln.strip()]


def _canonical(path: Path) -> str:
    return "file:" + str(path)


@pytest.fixture(scope="module")
def broken_source(tmp_path_factory):
    """Generated flow logs plus every kind of broken object, under folders whose names need URL-encoding."""
    root = tmp_path_factory.mktemp("objects")
    src = root / "src"
    truth = generate(str(src), records=4_000, seed=5, accounts=1, regions=1, days=1, workers=1, quiet=True)
    objects = sorted(src.rglob("*.log.gz"))
    # A folder name with a space and a literal %20: Hadoop would hand these back URL-encoded.
    odd = objects[0].parent / "my logs %20 x"
    odd.mkdir()
    moved = odd / objects[1].name
    shutil.move(objects[1], moved)
    odd_lines = gzip.decompress(moved.read_bytes()).split(b"\n")[:-1]

    victim = max(objects[2:], key=lambda p: p.stat().st_size)
    whole = victim.read_bytes()
    original_lines = gzip.decompress(whole).split(b"\n")[:-1]
    victim.write_bytes(whole[: len(whole) // 2])  # cut in the middle of the compressed stream
    good = _good_lines_of_truncated(victim)
    assert 10 < len(good) < len(original_lines)

    day = victim.parent
    (day / "zero.log.gz").write_bytes(b"")
    (day / "header_only.log.gz").write_bytes(gzip.compress((HEADER + "\n").encode()))
    (day / "plain_text_named.log.gz").write_bytes((HEADER + "\n").encode())  # not gzip
    (day / "blob.log").write_bytes(bytes(range(256)) * 64)  # binary
    (day / "cloudtrail.json.gz").write_bytes(gzip.compress(b'{"Records": []}\n'))  # another service
    (day / "notes.log").write_bytes(b"some,csv,header\n1,2,3\n")  # text, but not a flow log
    return {
        "src": src,
        "truth": truth,
        "victim": victim,
        "good": good,
        "lost_records": len(_record_lines(original_lines)) - len(_record_lines(good)),
        "odd": moved,
        "odd_records": len(_record_lines(odd_lines)),
        "day": day,
        "objects": len(objects),
    }


@pytest.fixture(scope="module")
def broken_run(spark, broken_source, tmp_path_factory):
    lake = tmp_path_factory.mktemp("objects_lake") / "lake"
    out = tmp_path_factory.mktemp("objects_out") / "summary.txt"
    import contextlib
    import io

    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        code = main(["ingest", "--source", str(broken_source["src"]), "--lake", str(lake), "--master", "local[2]"])
    out.write_text(buf.getvalue())
    return code, buf.getvalue(), lake


def test_broken_objects_do_not_stop_the_run(broken_run, broken_source):
    code, text, _ = broken_run
    assert code == 0, text
    b = broken_source
    # every generated object + zero, header-only, not-gzip, binary, notes; not the .json.gz
    assert f"{b['objects'] + 5:,} read" in text
    assert "objects rejected 5 -> ingested_files" in text
    assert "1 without records" in text  # the header-only object: not an error
    expected_records = b["truth"]["records"] - b["lost_records"]
    assert f"records        {expected_records:,} " in text
    assert f"check          records {expected_records:,} = written {expected_records:,} + rejected 0: OK" in text


def test_rejected_objects_table(spark, broken_run, broken_source):
    _, _, lake = broken_run
    day = broken_source["day"]
    got = broken_objects(spark, str(lake)).select("source_file", "reason", "last_good_line")
    expected = spark.createDataFrame(
        [
            (_canonical(broken_source["victim"]),
             "truncated gzip (the compressed stream ends before its end marker)", len(broken_source["good"])),
            (_canonical(day / "zero.log.gz"), "empty object (0 bytes)", 0),
            (_canonical(day / "plain_text_named.log.gz"), "not gzip (a .gz name, but no gzip header)", 0),
            (_canonical(day / "blob.log"), "binary content (NUL bytes), not a text flow log", 0),
            (_canonical(day / "notes.log"),
             "not a flow log of this format: line 1 is not a header and has 1 fields, the format 14 "
             "(another kind of object; a header-less export needs --format)", 0),
        ],
        got.schema,
    )
    assert_df_equality(got, expected, ignore_row_order=True, ignore_nullable=True)
    ids = broken_objects(spark, str(lake)).select("ingest_id", "at").distinct().collect()
    assert len(ids) == 1 and ids[0].ingest_id and ids[0].at is not None


def test_truncated_object_keeps_every_line_before_the_break(spark, broken_run, broken_source):
    _, _, lake = broken_run
    victim = _canonical(broken_source["victim"])
    got = (
        tables.read(spark, str(lake), tables.FLOW_RECORDS)
        .where(f"source_file = '{victim}'")
        .selectExpr("source_line", "srcaddr", "dstaddr", "cast(bytes as string) as bytes", "cast(unix_timestamp(start) as string) as start")
    )
    rows = []
    for line_no, fields in _record_lines(broken_source["good"]):
        dec = [None if f == b"-" else f.decode() for f in fields]
        rows.append((line_no, dec[3], dec[4], dec[9], dec[10]))
    expected = spark.createDataFrame(rows, got.schema)
    assert_df_equality(got, expected, ignore_row_order=True, ignore_nullable=True)
    # nothing of the victim became a reject line either
    if tables.exists(spark, str(lake), tables.FLOW_REJECTS):
        assert tables.read(spark, str(lake), tables.FLOW_REJECTS).where(f"source_file = '{victim}'").count() == 0


def test_path_with_space_and_percent_is_stored_decoded(spark, broken_run, broken_source):
    _, _, lake = broken_run
    odd = broken_source["odd"]
    assert " " in str(odd) and "%20" in str(odd)
    recs = tables.read(spark, str(lake), tables.FLOW_RECORDS)
    assert recs.where(f"source_file = '{_canonical(odd)}'").count() == broken_source["odd_records"]
    assert recs.where("source_file like '%my\\%20logs%'").count() == 0  # never the encoded form
    ledger = tables.read(spark, str(lake), tables.INGESTED_FILES)
    assert ledger.where(f"source_file = '{_canonical(odd)}'").count() == 1


def test_default_suffixes_and_the_option(spark, cfg, broken_source, tmp_path):
    from flowspark.edges.sources import discover

    day = broken_source["day"]
    names = {Path(f.path).name for f in discover(spark, str(day), cfg.ingest.text_suffixes + cfg.ingest.parquet_suffixes)}
    assert "cloudtrail.json.gz" not in names and "zero.log.gz" in names
    (tmp_path / "x.txt").write_text(HEADER + "\n")
    (tmp_path / "y.gz").write_bytes(gzip.compress(b"x\n"))
    (tmp_path / "z.parquet").write_bytes(b"PAR1")
    (tmp_path / "a.log").write_text(HEADER + "\n")
    (tmp_path / "b.log.parquet").write_bytes(b"PAR1")
    default = {Path(f.path).name for f in discover(spark, str(tmp_path), cfg.ingest.text_suffixes + cfg.ingest.parquet_suffixes)}
    # any .parquet: AWS's .log.parquet, and OCSF events (Security Lake's objects, export ocsf's files)
    assert default == {"a.log", "b.log.parquet", "z.parquet"}
    conf = tmp_path / "conf.toml"
    conf.write_text('[ingest]\ntext_suffixes = [".log", ".txt"]\n')
    from flowspark.edges.config import load_config

    opted = load_config(path=conf)
    got = {Path(f.path).name for f in discover(spark, str(tmp_path), opted.ingest.text_suffixes + opted.ingest.parquet_suffixes)}
    assert got == {"a.log", "x.txt", "b.log.parquet", "z.parquet"}


# ------------------------------------------------------------------ S3 (moto server), fresh process


def _moto_env() -> dict[str, str]:
    """Credentials through the standard AWS chain only (here: the environment), for S3A and boto3 alike."""
    env = dict(os.environ, AWS_ACCESS_KEY_ID="test", AWS_SECRET_ACCESS_KEY="test", AWS_DEFAULT_REGION="us-east-1")
    env.pop("AWS_PROFILE", None)
    return env


@pytest.mark.slow
@pytest.mark.s3
def test_s3_truncated_object_and_odd_key(moto_s3, broken_source, tmp_path):
    s3 = moto_s3.client
    s3.create_bucket(Bucket="broken")
    src = broken_source["src"]
    wanted = [broken_source["victim"], broken_source["odd"]]
    for f in wanted:
        s3.upload_file(str(f), "broken", f.relative_to(src).as_posix())
    lake = tmp_path / "lake"
    proc = subprocess.run(
        [FLOWSPARK, "ingest", "--s3-endpoint", moto_s3.endpoint, "--source", "s3://broken/AWSLogs",
         "--lake", str(lake), "--master", "local[2]"],
        env=_moto_env(), capture_output=True, text=True, timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    good = len(_record_lines(broken_source["good"]))
    assert f"records        {good + broken_source['odd_records']:,} " in proc.stdout, proc.stdout
    assert "objects rejected 1 -> ingested_files" in proc.stdout
    from pyspark.sql import SparkSession

    spark = SparkSession.getActiveSession()
    victim_key = broken_source["victim"].relative_to(src).as_posix()
    odd_key = broken_source["odd"].relative_to(src).as_posix()
    rej = broken_objects(spark, str(lake)).select("source_file", "last_good_line").collect()
    assert [(r.source_file, r.last_good_line) for r in rej] == [(f"s3://broken/{victim_key}", len(broken_source["good"]))]
    recs = tables.read(spark, str(lake), tables.FLOW_RECORDS)
    by_file = {r.source_file: r["count"] for r in recs.groupBy("source_file").count().collect()}
    assert by_file == {f"s3://broken/{victim_key}": good, f"s3://broken/{odd_key}": broken_source["odd_records"]}


# ------------------------------------------------------------------ real-size objects, flat memory


def write_object(path: Path, target_bytes: int, seed: int = 1) -> int:
    """One default-format .log.gz of about target_bytes of gzip; returns its record count.

    Lines are drawn from a pool of 50 000 distinct records over a few interfaces, a few hundred addresses
    and ephemeral ports, so the object compresses like AWS's (about 22 bytes of gzip per record: 75 MB
    holds about 3.5 M records).
    """
    import random

    rnd = random.Random(seed)
    enis = [f"eni-{rnd.randrange(16**17):017x}" for _ in range(20)]
    inside = [f"10.0.{rnd.randrange(256)}.{rnd.randrange(256)}" for _ in range(100)]
    outside = [f"{rnd.randrange(1, 224)}.{rnd.randrange(256)}.{rnd.randrange(256)}.{rnd.randrange(256)}" for _ in range(300)]
    t0 = 1_717_200_000
    pool = []
    for _ in range(50_000):
        start = t0 + rnd.randrange(300)
        a, b = rnd.choice(inside), rnd.choice(outside)
        if rnd.random() < 0.5:
            a, b = b, a
        pool.append(
            f"2 123456789012 {rnd.choice(enis)} {a} {b} {rnd.randrange(32768, 36000)} "
            f"{rnd.choice((443, 80, 22, 53, 3389))} 6 {rnd.randrange(1, 30)} {rnd.randrange(40, 9000)} "
            f"{start} {start + rnd.randrange(1, 60)} {rnd.choice(('ACCEPT', 'ACCEPT', 'REJECT'))} OK\n"
        )
    n = 0
    with open(path, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=6) as fh:
        fh.write((HEADER + "\n").encode())
        while raw.tell() < target_bytes:
            fh.write("".join(rnd.choices(pool, k=50_000)).encode())
            n += 50_000
    return n


def _is_java(cmdline: str) -> bool:
    return os.path.basename(cmdline.split("\0")[0]) == "java"


def _peak_tree_rss(proc: subprocess.Popen) -> tuple[int, float]:
    """Poll /proc until the process ends: (peak RSS in bytes of the process and all its descendants, seconds)."""
    page = os.sysconf("SC_PAGE_SIZE")
    peak, t0 = 0, time.time()
    while proc.poll() is None:
        children: dict[int, list[int]] = {}
        for pid in filter(str.isdigit, os.listdir("/proc")):
            try:
                with open(f"/proc/{pid}/stat") as fh:
                    ppid = int(fh.read().rsplit(")", 1)[1].split()[1])
                children.setdefault(ppid, []).append(int(pid))
            except (OSError, ValueError, IndexError):
                continue
        total, todo = 0, [(proc.pid, "")]
        while todo:
            pid, parent_cmd = todo.pop()
            try:
                with open(f"/proc/{pid}/cmdline") as fh:
                    cmd = fh.read()
                # A JVM's posix_spawn child (Hadoop running a shell command) shows the JVM's own pages until
                # it execs: counting it would count the JVM twice.
                if not (_is_java(cmd) and _is_java(parent_cmd)):
                    with open(f"/proc/{pid}/statm") as fh:
                        total += int(fh.read().split()[1]) * page
            except OSError:
                continue
            todo.extend((child, cmd) for child in children.get(pid, []))
        peak = max(peak, total)
        time.sleep(0.1)
    return peak, time.time() - t0


def _cached_object(path: Path, target: int, seed: int) -> int:
    """write_object's object, made once per machine (a minute of pure Python for 75 MB) and kept under
    ~/.cache/flowspark/testdata by size and seed, with its record count; copied to `path`."""
    cache = Path.home() / ".cache" / "flowspark" / "testdata"
    obj, count = cache / f"object-{target}-{seed}.log.gz", cache / f"object-{target}-{seed}.records"
    if not (obj.exists() and count.exists()):
        cache.mkdir(parents=True, exist_ok=True)
        tmp = obj.with_suffix(f".{os.getpid()}.tmp")
        n = write_object(tmp, target, seed)
        tmp.replace(obj)
        count.write_text(str(n))
    shutil.copyfile(obj, path)
    return int(count.read_text())


def _ingest_one_object(tmp: Path, target: int, seed: int) -> tuple[int, float, int, str]:
    src = tmp / "src"
    src.mkdir(parents=True)
    records = _cached_object(src / "big.log.gz", target, seed)
    env = dict(os.environ)
    env.pop("FLOWSPARK_CONF_DIR", None)
    # The shipped conf/local.toml (local[*], 2 cores here, 2 GB driver) with the plain storage layout: this test
    # is about the reader streaming. The compact layout sorts each write task's rows in Spark's execution memory
    # (spilling to disk beyond it), so its peak grows with the object up to the heap's bound (docs/storage.md).
    shipped = Path(__file__).resolve().parents[1] / "conf" / "local.toml"
    conf = tmp / "local-plain.toml"
    conf.write_text(shipped.read_text().replace('layout = "compact"', 'layout = "plain"'))
    assert 'layout = "plain"' in conf.read_text()
    proc = subprocess.Popen(
        [FLOWSPARK, "ingest", "--config", str(conf), "--source", str(src), "--lake", str(tmp / "lake")],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    out: list[str] = []
    reader = threading.Thread(target=lambda: out.append(proc.communicate()[0]))
    reader.start()
    peak, seconds = _peak_tree_rss(proc)
    reader.join()
    assert proc.returncode == 0, out
    return records, seconds, peak, out[0]


@pytest.mark.slow
def test_real_size_object_ingests_with_flat_memory(tmp_path):
    results = {}
    for label, target in (("5MB", 5 << 20), ("75MB", 75 << 20)):
        records, seconds, peak, out = _ingest_one_object(tmp_path / label, target, seed=len(label))
        assert f"records        {records:,} " in out and f"rows written   {records:,} -> flow_records" in out, out
        assert "rejected       0" in out and "objects rejected 0" in out and ": OK" in out
        size = (tmp_path / label / "src" / "big.log.gz").stat().st_size
        results[label] = (records, size, seconds, peak)
        print(f"\n{label}: {size / 2**20:.1f} MiB gzip, {records:,} records, {seconds:.1f} s, peak RSS {peak / 2**20:.0f} MiB")
    assert results["75MB"][0] > 3_000_000
    assert results["75MB"][3] <= 1.2 * results["5MB"][3], results


def test_a_source_of_nothing_but_unreadable_objects_exits_3(spark, tmp_path, monkeypatch, capsys):
    """Plain text named .log.gz, and a file of lines that are no flow log: the run reads them, keeps their
    reasons, and exits 3 with one line (a scheduled run that got nothing is not a success)."""
    import flowspark.cli

    monkeypatch.setattr(flowspark.cli, "spark_for", lambda cfg: spark)
    src = tmp_path / "src"
    src.mkdir()
    (src / "a.log.gz").write_text("this is not gzip\n")
    (src / "b.log.gz").write_bytes(b"")
    assert flowspark.cli.main(["ingest", "--source", str(src), "--lake", str(tmp_path / "lake")]) == 3
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("flowspark ingest: error: none of the 2 objects read could be read as flow logs")
    header = "version account-id interface-id srcaddr dstaddr srcport dstport protocol packets bytes start end action log-status"
    # The same lake, the next delivery: only the new object is read (the two above are done, as rejects).
    (src / "c.log").write_text(f"{header}\n2 123456789012 eni-a 10.0.0.1\nno flow log line here at all\n")
    assert flowspark.cli.main(["ingest", "--source", str(src), "--lake", str(tmp_path / "lake")]) == 3
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("flowspark ingest: error: no valid record in the 1 objects read: all 2 record lines")


@pytest.mark.slow
def test_more_rejects_than_max_reject_ratio_exits_4(spark, tmp_path, monkeypatch, capsys):
    """Exit 4: records were read, but more than --max-reject-ratio of the record lines were rejected (the rows
    are written either way; test_cli_options has the cases at and below the ratio)."""
    import flowspark.cli

    monkeypatch.setattr(flowspark.cli, "spark_for", lambda cfg: spark)
    src = tmp_path / "src"
    src.mkdir()
    header = "version account-id interface-id srcaddr dstaddr srcport dstport protocol packets bytes start end action log-status"
    good = "2 123456789012 eni-a 10.0.0.1 10.0.0.2 443 49152 6 10 840 1700000000 1700000060 ACCEPT OK"
    (src / "d.log").write_text(f"{header}\n{good}\n2 123456789012 eni-a\nnot a record\n")
    argv = ["ingest", "--source", str(src), "--lake", str(tmp_path / "lake")]
    assert flowspark.cli.main([*argv, "--max-reject-ratio", "0.5"]) == 4
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("flowspark ingest: error: rejected 2 of 3 record lines (66.7%) and 0 of 1 objects"), err
    assert spark.read.format("delta").load(str(tmp_path / "lake" / "flow_records")).count() == 1  # written
