"""Ingest and dedup against a real S3 HTTP endpoint (moto's server on loopback) through boto3 and S3A."""

from __future__ import annotations

from pathlib import Path

import pytest
from moto_server import aws_test_credentials

from flowspark.edges import tables
from flowspark.generator import generate
from flowspark.pipelines.dedup import run_dedup
from flowspark.pipelines.ingest import run_ingest

REPO = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.s3


@pytest.fixture(scope="module")
def s3(moto_s3):
    moto_s3.point_s3a_here()
    with aws_test_credentials(moto_s3.spark):
        yield moto_s3.client


def test_ingest_from_s3_both_schemes_and_dedup_into_an_s3_lake(spark, cfg, s3, moto_s3, tmp_path):
    from flowspark.edges.config import with_overrides

    cfg = with_overrides(cfg, s3={"endpoint": moto_s3.endpoint, "path_style": True})
    out = tmp_path / "gen"
    truth = generate(str(out), records=6_000, seed=21, accounts=1, regions=1, days=1, workers=1, quiet=True)
    s3.create_bucket(Bucket="logs")
    s3.create_bucket(Bucket="lake")
    keys = []
    for f in sorted(out.rglob("*.log.gz")):
        key = f.relative_to(out).as_posix()
        s3.upload_file(str(f), "logs", key)
        keys.append(key)
    assert keys[0].startswith("AWSLogs/") and len(keys) == truth["files"]

    s = run_ingest(spark, cfg, "s3://logs/AWSLogs", "s3a://lake/vpc")
    assert (s.files_read, s.records, s.rows_written, s.rejected) == (truth["files"], truth["records"], truth["records"], 0)
    # s3:// and s3a:// name the same objects: the ledger knows them either way
    again = run_ingest(spark, cfg, "s3a://logs/AWSLogs", "s3a://lake/vpc")
    assert (again.files_skipped, again.files_read) == (truth["files"], 0)

    d = run_dedup(spark, cfg, "s3a://lake/vpc")
    assert d.conserved() and d.input_records == truth["data_records"]
    assert d.output_rows == truth["window_1h"]["flow_keys"]
    listed = s3.list_objects_v2(Bucket="lake", Prefix="vpc/flows/_delta_log/")
    assert listed["KeyCount"] >= 1
    assert tables.exists(spark, "s3a://lake/vpc", tables.FLOWS)
