"""ip-ranges.json read from S3 (moto's server on loopback, through S3A), as on an offline cluster."""

from __future__ import annotations

import pytest

from flowspark import ipranges as R

pytestmark = pytest.mark.s3

BUCKET = "flowspark-ipranges-test"


@pytest.fixture(scope="module")
def s3(spark):
    boto3 = pytest.importorskip("boto3")
    server_mod = pytest.importorskip("moto.server")
    server = server_mod.ThreadedMotoServer(ip_address="127.0.0.1", port=0)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    client = boto3.client(
        "s3",
        endpoint_url=endpoint,
        aws_access_key_id="test",
        aws_secret_access_key="test",
        region_name="us-east-1",
    )
    client.create_bucket(Bucket=BUCKET)
    # Per-bucket S3A settings: they touch no other test's buckets or endpoint.
    hconf = spark.sparkContext._jsc.hadoopConfiguration()
    for k, v in {
        "endpoint": endpoint,
        "path.style.access": "true",
        "connection.ssl.enabled": "false",
        "access.key": "test",
        "secret.key": "test",
        "endpoint.region": "us-east-1",
        "aws.credentials.provider": "org.apache.hadoop.fs.s3a.SimpleAWSCredentialsProvider",
        "change.detection.mode": "none",
    }.items():
        hconf.set(f"fs.s3a.bucket.{BUCKET}.{k}", v)
    yield client
    server.stop()


def test_load_from_s3(spark, s3, samples, tmp_path):
    path = samples / "aws-ip-ranges" / "ip-ranges-2020-04-01.json"
    s3.upload_file(str(path), BUCKET, "aws/ip-ranges.json")
    text = R.read_source(spark, f"s3a://{BUCKET}/aws/ip-ranges.json")
    assert text == path.read_text()
    s = R.load_ip_ranges(spark, f"s3://{BUCKET}/aws/ip-ranges.json", str(tmp_path / "lake"))
    assert (s.status, s.rows_written, s.sync_token) == ("loaded", 2638, 1585759391)
    with pytest.raises(FileNotFoundError, match="not found"):
        R.read_source(spark, f"s3a://{BUCKET}/aws/missing.json")
