"""Causes, not Java class names (issue 22, item 3): each failure a person meets, made for real where this
machine can make it (a table of a newer Delta Lake, a folder that is not a Delta table, a table with files
missing, a full disk, a read-only file system, Python out of memory), ends in one line saying the cause and
what to do, with the exit code of the table in `flowspark --help`. The CLI runs in this process on the
suite's Spark session (real Spark, real Delta: the errors are theirs)."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

import flowspark.cli
from flowspark.cli import explain, main

DOCS = Path(__file__).resolve().parent / "data" / "samples" / "aws-docs-flow-log-examples"


@pytest.fixture
def cli(spark, monkeypatch, capsys):
    """main() on the suite's session: (exit code, stderr lines)."""
    monkeypatch.setattr(flowspark.cli, "spark_for", lambda cfg: spark)

    def run(*argv: str) -> tuple[int, list[str]]:
        code = main(list(argv))
        return code, capsys.readouterr().err.strip().splitlines()

    return run


def _delta_log(table: Path, protocol: dict) -> None:
    """A Delta table's first commit written by hand (the log's JSON as the protocol describes it): one string
    column, no files."""
    log = table / "_delta_log"
    log.mkdir(parents=True)
    schema = {"type": "struct", "fields": [{"name": "srcaddr", "type": "string", "nullable": True, "metadata": {}}]}
    actions = [
        {"protocol": protocol},
        {"metaData": {"id": "00000000-0000-0000-0000-000000000001", "format": {"provider": "parquet", "options": {}},
                      "schemaString": json.dumps(schema), "partitionColumns": [], "configuration": {},
                      "createdTime": 0}},
        {"commitInfo": {"timestamp": 0, "operation": "CREATE TABLE"}},
    ]  # fmt: skip
    (log / "00000000000000000000.json").write_text("\n".join(json.dumps(a) for a in actions) + "\n")


def test_a_table_written_by_a_newer_delta_is_named(cli, tmp_path):
    lake = tmp_path / "lake"
    future = {"minReaderVersion": 3, "minWriterVersion": 7, "readerFeatures": ["flowsparkFromTheFuture"],
              "writerFeatures": ["flowsparkFromTheFuture"]}  # fmt: skip
    _delta_log(lake / "flow_records", future)
    code, err = cli("dedup", "--lake", str(lake))
    assert code == 2 and len(err) == 1, err
    assert err[0].startswith("flowspark dedup: error: a table of the lake was written by a newer Delta Lake"), err


def test_a_folder_that_is_not_a_delta_table_is_named(cli, tmp_path):
    lake = tmp_path / "lake"
    (lake / "flow_records" / "_delta_log").mkdir(parents=True)  # a log folder with no commit in it
    (lake / "flow_records" / "part-0.parquet").write_bytes(b"PAR1")
    code, err = cli("dedup", "--lake", str(lake))
    assert code == 2 and len(err) == 1, err
    assert err[0] == (
        f"flowspark dedup: error: file://{lake}/flow_records is not a Delta table (files, but no commit in a "
        "_delta_log): put there by hand or half deleted? Move it away, or give another --lake"
    ), err


def test_a_table_with_its_files_deleted_by_hand_is_named(cli, tmp_path):
    src, lake = tmp_path / "src", tmp_path / "lake"
    shutil.copytree(DOCS, src, ignore=shutil.ignore_patterns("README.md"))
    assert cli("ingest", "--source", str(src), "--lake", str(lake))[0] == 0
    parts = list((lake / "flow_records").rglob("*.parquet"))
    assert parts
    for part in parts:
        part.unlink()
    code, err = cli("dedup", "--lake", str(lake))
    assert code == 2 and len(err) == 1, err
    assert err[0].startswith("flowspark dedup: error: a table of the lake has files missing"), err


@pytest.fixture
def small_disk(tmp_path):
    """A 192 KB file system of its own (tmpfs; needs the right to mount, as root in CI here): a disk that
    fills during a run."""
    where = tmp_path / "disk"
    where.mkdir()

    def mount(*options: str) -> Path:
        done = subprocess.run(["mount", "-t", "tmpfs", "-o", ",".join(["size=192k", *options]), "tmpfs", str(where)],
                              capture_output=True, text=True)  # fmt: skip
        if done.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs here (not root?): {done.stderr.strip()}")
        return where

    yield mount
    # Lazy: the suite's JVM may still hold a file of the failed run open there; a plain umount would leave
    # the mount behind (and pytest unable to remove the folder).
    subprocess.run(["umount", "-l", str(where)], capture_output=True)


def test_a_full_disk_is_named(cli, tmp_path, small_disk):
    src = tmp_path / "src"
    shutil.copytree(DOCS, src, ignore=shutil.ignore_patterns("README.md"))
    lake = small_disk() / "lake"
    code, err = cli("ingest", "--source", str(src), "--lake", str(lake))
    assert code == 2 and len(err) == 1, err
    assert err[0].startswith("flowspark ingest: error: the disk is full"), err


def test_a_read_only_file_system_is_named_before_spark(tmp_path, small_disk, monkeypatch, capsys):
    def no_spark(cfg):
        raise AssertionError("Spark was started")

    monkeypatch.setattr(flowspark.cli, "spark_for", no_spark)
    lake = small_disk("ro") / "lake"
    assert main(["ingest", "--source", str(DOCS), "--lake", str(lake)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [
        f"flowspark ingest: error: --lake {lake} cannot be written: {lake.parent} is on a read-only file system; "
        "give a folder on one that can be written"
    ]


def test_out_of_memory_and_s3_throttling_are_named():
    """Causes this machine cannot bring about in a test run (a JVM out of heap would take the suite's session
    with it; moto does not throttle), recognised in the exceptions they raise: Python's own MemoryError, made
    for real, and botocore's error for S3's 503 SlowDown as S3 answers it."""
    from botocore.exceptions import ClientError

    try:
        bytearray(1 << 62)
    except MemoryError as exc:
        said, code = explain(exc) or ("", 0)
    assert code == 1 and said.startswith("out of memory: raise [spark] driver_memory"), said
    slow = ClientError({"Error": {"Code": "SlowDown", "Message": "Please reduce your request rate."}}, "GetObject")
    said, code = explain(slow) or ("", 0)
    assert code == 1 and said.startswith("S3 throttled the job (503 SlowDown)"), said
    assert explain(RuntimeError("something else")) is None
