"""The whole daily pipeline on S3 (moto's server on loopback): flow logs uploaded with boto3 in both AWS key
layouts (default daily folders, Hive with hourly folders), ip-ranges from an S3 object, `run_daily` reading
s3:// and writing the Delta lake to s3a://; every table equals a local-folder run's, whole tables both ways."""

from __future__ import annotations

import datetime as dt
import shutil
import time
from pathlib import Path

import pytest
from pyspark.sql import functions as F
from pyspark.sql.types import MapType

from flowspark.edges import tables
from flowspark.edges.config import with_overrides
from flowspark.generator import generate
from flowspark.pipelines.run import run_daily

pytestmark = pytest.mark.s3
REPO = Path(__file__).resolve().parents[1]
IP_RANGES = REPO / "tests" / "data" / "samples" / "aws-ip-ranges" / "ip-ranges-2020-04-01.json"
# Columns that name the run or the moment (ids, clocks) rather than the data; max_delay_minutes (data quality)
# is measured to each object's LastModified: the upload's moment in S3, the file's mtime in the local run.
VOLATILE = {
    "ingest_id", "computed_at", "ingested_at", "loaded_at", "modification_time_ms", "seconds", "done_at",
    "max_delay_minutes",
}  # fmt: skip
# Tables about runs (ids, times, durations), not data: compared on their data columns only, below.
RUN_TABLES = {tables.INGEST_STATS, tables.DEDUP_STATS}


@pytest.fixture(scope="module")
def s3(moto_s3):
    moto_s3.point_s3a_here()
    creds = {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test", "AWS_DEFAULT_REGION": "us-east-1"}
    workers = moto_s3.spark.sparkContext.environment  # boto3 in the Python workers: the standard chain
    before = {k: workers.get(k) for k in creds}
    with pytest.MonkeyPatch.context() as mp:
        for k, v in creds.items():
            mp.setenv(k, v)
        workers.update(creds)
        yield moto_s3.client
    for k, v in before.items():
        if v is None:
            workers.pop(k, None)
        else:
            workers[k] = v


def _comparable(df):
    """Source paths relative to the source root (s3://logs/src/ or <tmp>/src/), maps as JSON, run columns out."""
    cols = []
    for f in df.schema.fields:
        if f.name in VOLATILE:
            continue
        c = F.col(f"`{f.name}`")
        if isinstance(f.dataType, MapType):
            c = F.to_json(c)
        elif f.name == "source_file":
            c = F.regexp_replace(c, "^.*?/src/", "")
        cols.append(c.alias(f.name))
    return df.select(*cols)


@pytest.mark.slow
def test_the_daily_pipeline_on_s3_equals_a_local_run(spark, cfg, s3, moto_s3, tmp_path):
    src = tmp_path / "src"
    truth_a = generate(str(tmp_path / "a"), records=12_000, seed=41, start="2024-06-01", accounts=1, regions=1,
                       workers=1)  # fmt: skip
    truth_b = generate(str(tmp_path / "b"), records=8_000, seed=42, start="2024-06-02", accounts=1, regions=1,
                       layout="hive", hourly=True, workers=1)  # fmt: skip
    shutil.copytree(tmp_path / "a" / "AWSLogs", src / "daily" / "AWSLogs")
    shutil.copytree(tmp_path / "b" / "AWSLogs", src / "hive" / "AWSLogs")
    s3.create_bucket(Bucket="logs")
    s3.create_bucket(Bucket="lake")
    keys = []
    for f in sorted(src.rglob("*.log.gz")):
        keys.append("src/" + f.relative_to(src).as_posix())
        s3.upload_file(str(f), "logs", keys[-1])
    assert len(keys) == truth_a["files"] + truth_b["files"]
    assert any("/hour=" in k for k in keys) and any("/2024/06/01/" in k for k in keys)
    s3.upload_file(str(IP_RANGES), "logs", "ref/ip-ranges.json")

    t0 = time.time()
    s3_cfg = with_overrides(cfg, s3={"endpoint": moto_s3.endpoint, "path_style": True})
    days = {"date_from": dt.date(2024, 6, 1), "date_to": dt.date(2024, 6, 2)}
    on_s3 = run_daily(spark, s3_cfg, "s3a://lake/daily", "s3://logs/src", ip_ranges="s3://logs/ref/ip-ranges.json",
                      progress=lambda _: None, **days)  # fmt: skip
    local = run_daily(spark, cfg, str(tmp_path / "lake"), str(src), ip_ranges=str(IP_RANGES),
                      progress=lambda _: None, **days)  # fmt: skip
    t1 = time.time()
    assert on_s3.spans == local.spans == [(dt.date(2024, 6, 1), dt.date(2024, 6, 2))]

    names = tables.lake_tables(spark, "s3a://lake/daily")
    assert names == tables.lake_tables(spark, str(tmp_path / "lake"))
    for must in (tables.FLOW_RECORDS, tables.FLOWS, tables.TAG_COUNTS, tables.IP_CLASSES, tables.AWS_IP_RANGES):
        assert must in names
    assert sum(n.startswith(tables.REPORTS + "/") for n in names) >= 4
    records = tables.read(spark, "s3a://lake/daily", tables.FLOW_RECORDS).count()
    assert records == truth_a["records"] + truth_b["records"]
    assert s3.list_objects_v2(Bucket="lake", Prefix="daily/flows/_delta_log/")["KeyCount"] >= 1  # this test's own lake
    for name in names:
        if name in RUN_TABLES:
            continue
        a = _comparable(tables.read(spark, "s3a://lake/daily", name))
        b = _comparable(tables.read(spark, str(tmp_path / "lake"), name))
        assert a.schema.fieldNames() == b.schema.fieldNames(), name
        assert a.exceptAll(b).count() == 0 and b.exceptAll(a).count() == 0, name
    steps = {k: f"{v:.0f}/{local.seconds[k]:.0f}" for k, v in on_s3.seconds.items()}
    print(f"\nstep seconds S3/local {steps}; both runs {t1 - t0:.0f} s, {len(names)} tables compared in "
          f"{time.time() - t1:.0f} s")
