"""What a person sees at the terminal: flowspark's own lines, one line per error, exit 0/1/2 as documented.

These run the CLI as a separate process (a fresh JVM with the CLI's own settings), as a user would.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from flowspark.cli import main

REPO = Path(__file__).resolve().parents[1]
DOCS = REPO / "tests" / "data" / "samples" / "aws-docs-flow-log-examples"


def _flowspark(*argv: str, env: dict[str, str] | None = None, timeout: int = 300) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "flowspark.cli", *argv],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
        cwd=REPO,
    )


def test_lake_that_is_a_file_is_a_bad_argument(tmp_path, capsys):
    lake = tmp_path / "lake.txt"
    lake.write_text("not a folder")
    assert main(["ingest", "--source", str(DOCS), "--lake", str(lake)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [
        f"flowspark ingest: error: --lake {lake} is a file; give a folder or s3://bucket/prefix for the Delta tables"
    ]


def test_missing_source_is_a_bad_argument(tmp_path, capsys):
    assert main(["ingest", "--source", str(tmp_path / "nowhere"), "--lake", str(tmp_path / "lake")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "source folder not found" in err[0]


def test_packages_prints_the_coordinates_of_this_spark_line(capsys):
    import pyspark

    assert main(["packages"]) == 0
    out = capsys.readouterr().out.strip()
    assert "io.delta:delta-spark" in out and "org.apache.hadoop:hadoop-aws" in out
    assert ("_2.13:4.0" in out) == pyspark.__version__.startswith("4.0")


@pytest.mark.slow
def test_a_run_shows_only_flowsparks_own_lines(tmp_path):
    """No SLF4J lines, JVM warnings or Spark log lines on the terminal: the summary only."""
    r = _flowspark("ingest", "--source", str(DOCS), "--lake", str(tmp_path / "lake"), "--master", "local[1]")
    assert r.returncode == 0, r.stderr
    assert r.stderr == ""
    assert r.stdout.startswith("ingest ") and "check          records" in r.stdout
    for noise in ("SLF4J", "WARN", "incubator", "NativeCodeLoader", "loopback"):
        assert noise not in r.stdout


@pytest.mark.slow
def test_s3_source_without_credentials_is_one_line(tmp_path, moto_s3):
    moto_s3.client.create_bucket(Bucket="no-creds")
    moto_s3.client.put_object(
        Bucket="no-creds", Key="logs/a.log", Body=(DOCS / "01_default_accepted_rejected.log").read_bytes()
    )
    env = {
        "AWS_ACCESS_KEY_ID": "",
        "AWS_SECRET_ACCESS_KEY": "",
        "AWS_SESSION_TOKEN": "",
        "AWS_PROFILE": "",
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "none"),
        "AWS_CONFIG_FILE": str(tmp_path / "none"),
        "AWS_EC2_METADATA_DISABLED": "true",
    }
    r = _flowspark(
        "ingest",
        "--source",
        "s3://no-creds/logs/",
        "--lake",
        str(tmp_path / "lake"),
        "--s3-endpoint",
        moto_s3.endpoint,
        "--master",
        "local[1]",
        env=env,
    )
    lines = r.stderr.strip().splitlines()
    assert r.returncode == 2, r.stderr
    assert len(lines) == 1 and "no AWS credentials" in lines[0], r.stderr
    assert "at org.apache" not in r.stderr and "Traceback" not in r.stderr
    assert not (tmp_path / "lake" / "flow_records").exists()
