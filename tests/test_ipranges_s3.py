"""ip-ranges.json read from S3 (moto's server on loopback, through S3A), as on an offline cluster."""

from __future__ import annotations

import pytest

from flowspark.edges import sources
from flowspark.pipelines import ipranges as P

pytestmark = pytest.mark.s3

BUCKET = "flowspark-ipranges-test"


@pytest.fixture(scope="module")
def s3(moto_s3):
    moto_s3.client.create_bucket(Bucket=BUCKET)
    # Per-bucket S3A settings: they touch no other test's buckets or endpoint.
    moto_s3.point_s3a_here(BUCKET)
    return moto_s3.client


def test_load_from_s3(spark, s3, samples, tmp_path):
    path = samples / "aws-ip-ranges" / "ip-ranges-2020-04-01.json"
    s3.upload_file(str(path), BUCKET, "aws/ip-ranges.json")
    text = sources.read_ip_ranges_text(spark, f"s3a://{BUCKET}/aws/ip-ranges.json")
    assert text == path.read_text()
    s = P.load_ip_ranges(spark, f"s3://{BUCKET}/aws/ip-ranges.json", str(tmp_path / "lake"))
    assert (s.status, s.rows_written, s.sync_token) == ("loaded", 2638, 1585759391)
    with pytest.raises(FileNotFoundError, match="not found"):
        sources.read_ip_ranges_text(spark, f"s3a://{BUCKET}/aws/missing.json")
