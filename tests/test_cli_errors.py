"""What a person sees at the terminal: flowspark's own lines, one line per error, exit 0/1/2 as documented.

These run the CLI as a separate process (a fresh JVM with the CLI's own settings), as a user would.
"""

from __future__ import annotations

import json
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


# ------------------------------------------------------------------ S3 errors (moto's server enforcing IAM)


def _iam_s3(endpoint: str) -> dict[str, dict[str, str]]:
    """On a moto server that enforces IAM after its first 7 requests: a bucket with one object, a user allowed
    everything and a user allowed nothing. Returns each user's credentials (as AWS_* variables)."""
    import boto3

    anyone = {"aws_access_key_id": "setup", "aws_secret_access_key": "setup", "region_name": "us-east-1"}
    s3 = boto3.client("s3", endpoint_url=endpoint, **anyone)
    iam = boto3.client("iam", endpoint_url=endpoint, **anyone)
    s3.create_bucket(Bucket="logs")  # 1
    s3.put_object(Bucket="logs", Key="AWSLogs/a.log", Body=(DOCS / "01_default_accepted_rejected.log").read_bytes())
    users = {}
    for name in ("admin", "nobody"):
        iam.create_user(UserName=name)  # 3, 5
        key = iam.create_access_key(UserName=name)["AccessKey"]  # 4, 6
        users[name] = {"AWS_ACCESS_KEY_ID": key["AccessKeyId"], "AWS_SECRET_ACCESS_KEY": key["SecretAccessKey"]}
    policy = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}
    iam.put_user_policy(UserName="admin", PolicyName="all", PolicyDocument=json.dumps(policy))  # 7
    return users


@pytest.mark.slow
def test_s3_errors_are_one_line_naming_the_cause(tmp_path):
    """A missing bucket, a prefix with nothing under it, denied access: one line on stderr with the cause and
    what to do, exit 2, no trace, no credentials, and no lake written."""
    import boto3
    from botocore.exceptions import ClientError
    from moto_server import moto_server

    with moto_server(tmp_path / "moto", INITIAL_NO_AUTH_ACTION_COUNT="7") as endpoint:
        users = _iam_s3(endpoint)
        nobody = boto3.client(
            "s3", endpoint_url=endpoint, region_name="us-east-1",
            aws_access_key_id=users["nobody"]["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=users["nobody"]["AWS_SECRET_ACCESS_KEY"],
        )  # fmt: skip
        with pytest.raises(ClientError, match="AccessDenied"):  # the server enforces IAM: the test is honest
            nobody.list_objects_v2(Bucket="logs")
        import pyspark

        missing, empty = "the S3 bucket does not exist", "nothing under the source"
        if pyspark.__version__.startswith("3."):
            # Spark 3.5's hadoop-aws 3.3.4 (AWS SDK v1) starts with HEAD requests, which this IAM-enforcing
            # server answers 403 even for the admin user, for a missing bucket and for a missing prefix alike:
            # flowspark says what S3 said (docs/operations.md, S3). hadoop-aws 3.4 (Spark 4) tells
            # them apart. Still one line, exit 2, the path, no credentials, nothing written.
            missing = empty = "access denied by S3"
        cases = [
            ("admin", "s3://no-such-bucket/AWSLogs/", missing),
            ("admin", "s3://logs/AWSLogs/nothing-here/", empty),
            ("nobody", "s3://logs/AWSLogs/", "access denied by S3"),
        ]
        for user, source, cause in cases:
            lake = tmp_path / f"lake-{user}-{len(source)}"
            env = {**users[user], "AWS_DEFAULT_REGION": "us-east-1", "AWS_PROFILE": "", "AWS_SESSION_TOKEN": "",
                   "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "none"), "AWS_CONFIG_FILE": str(tmp_path / "none"),
                   "AWS_EC2_METADATA_DISABLED": "true"}  # fmt: skip
            r = _flowspark(
                "ingest", "--source", source, "--lake", str(lake), "--s3-endpoint", endpoint, "--master", "local[1]",
                env=env,
            )  # fmt: skip
            lines = r.stderr.strip().splitlines()
            print(f"\n{source} as {user}: exit {r.returncode}: {r.stderr.strip()}")
            assert r.returncode == 2, (source, r.stderr)
            assert len(lines) == 1 and lines[0].startswith("flowspark ingest: error: "), (source, r.stderr)
            assert cause in lines[0], (source, lines[0])
            assert source.rstrip("/") in lines[0], (source, lines[0])  # the line names what it could not list
            assert "Traceback" not in r.stderr and "\tat " not in r.stderr and r.stdout == ""
            for secret in (*users[user].values(), *users["admin"].values()):
                assert secret not in r.stderr + r.stdout
            assert not lake.exists() or not any(lake.iterdir()), (source, list(lake.rglob("*"))[:5])
