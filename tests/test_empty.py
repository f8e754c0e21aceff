"""Every job over an empty selection ends at once with exit 0 and says "nothing to do" and why (issue 10,
item 10): dedup of a range without records or of an empty flow_records, tag and classify of an empty range,
ingest with no new object. They used to wait forever in Observation.get; the timeout makes a hang a failure."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from pyspark.sql import functions as F

from flowspark.cli import main
from flowspark.core.schema import record_schema
from flowspark.edges import tables
from flowspark.pipelines.dedup import run_dedup

UTC = dt.timezone.utc
D1, D2 = dt.date(2024, 6, 1), dt.date(2024, 6, 2)
EMPTY = ["--from", "2025-01-01", "--to", "2025-01-02"]
VPC = dict(
    version=2, account_id="111", interface_id="eni-a", srcaddr="10.0.0.1", dstaddr="52.1.1.1", srcport=40000,
    dstport=443, protocol=6, packets=10, bytes=1000, action="ACCEPT", log_status="OK",
)


def _write_records(spark, lake: Path, rows: list[dict]) -> None:
    """flow_records rows as ingest writes them (every column of record_schema; lineage filled in)."""
    schema = record_schema()
    out = []
    for i, r in enumerate(rows):
        lineage = {f.name: "test" for f in schema.fields if not f.nullable and f.dataType.simpleString() == "string"}
        full = {**lineage, "source_file": "s3://b/AWSLogs/x.log.gz", "source_line": i + 1, **r}
        out.append(tuple(full.get(n) for n in schema.fieldNames()))
    tables.append(spark.createDataFrame(out, schema), str(lake), tables.FLOW_RECORDS, partition_by=["event_date"])


@pytest.fixture(scope="module")
def lake(spark, cfg, samples, tmp_path_factory) -> Path:
    """Traffic on D1, only NODATA/SKIPDATA on D2; flows of D1; AWS ip ranges; no ip_classes yet."""
    path = tmp_path_factory.mktemp("empty_lake")
    t = dt.datetime(2024, 6, 1, 10, tzinfo=UTC)
    _write_records(spark, path, [
        dict(VPC, start=t, end=t + dt.timedelta(minutes=1), event_date=D1),
        dict(VPC, srcport=40001, start=t, end=t + dt.timedelta(minutes=1), event_date=D1),
        dict(account_id="111", interface_id="eni-a", log_status="NODATA", start=t + dt.timedelta(days=1),
             end=t + dt.timedelta(days=1, minutes=1), event_date=D2),
        dict(account_id="111", interface_id="eni-b", log_status="SKIPDATA", start=t + dt.timedelta(days=1),
             end=t + dt.timedelta(days=1, minutes=1), event_date=D2),
    ])
    run_dedup(spark, cfg, str(path))
    assert main(["ip-ranges", "--ip-ranges", str(samples / "aws-ip-ranges" / "ip-ranges-2017-07-20.json"),
                 "--lake", str(path)]) == 0
    return path


def _versions(spark, lake: Path, *names: str) -> dict[str, int | None]:
    return {n: tables.version(spark, str(lake), n) for n in names}


@pytest.mark.timeout(120, func_only=True)  # the job itself, not the fixture setup
def test_dedup_of_a_range_without_records_ends_at_once(spark, lake, capsys):
    before = _versions(spark, lake, tables.FLOWS, tables.DEDUP_STATS, tables.DEDUP_STATUS_COUNTS)
    capsys.readouterr()
    assert main(["dedup", "--lake", str(lake), *EMPTY]) == 0
    out = capsys.readouterr().out
    assert "nothing to do: flow_records has no records dated 2025-01-01 .. 2025-01-02" in out
    assert _versions(spark, lake, *before) == before


@pytest.mark.timeout(120, func_only=True)  # the job itself, not the fixture setup
def test_dedup_of_an_empty_flow_records_ends_at_once(spark, tmp_path, capsys):
    _write_records(spark, tmp_path, [])
    assert main(["dedup", "--lake", str(tmp_path)]) == 0
    assert "nothing to do: flow_records is empty: run ingest first" in capsys.readouterr().out
    assert not tables.exists(spark, str(tmp_path), tables.FLOWS)


@pytest.mark.timeout(120, func_only=True)  # the job itself, not the fixture setup
def test_dedup_of_a_day_without_traffic_counts_its_statuses(spark, cfg, lake):
    flows_d1 = tables.read(spark, str(lake), tables.FLOWS).where(F.col("event_date") == D1).collect()
    s = run_dedup(spark, cfg, str(lake), date_from=D2, date_to=D2)
    assert not s.nothing_to_do
    assert (s.input_records, s.nodata, s.skipdata, s.output_rows) == (0, 1, 1, 0)
    flows = tables.read(spark, str(lake), tables.FLOWS)
    assert flows.where(F.col("event_date") == D2).count() == 0
    assert sorted(flows.where(F.col("event_date") == D1).collect()) == sorted(flows_d1)
    status = tables.read(spark, str(lake), tables.DEDUP_STATUS_COUNTS).where(F.col("event_date") == D2)
    assert sorted((r.interface_id, r.log_status, r.records) for r in status.collect()) == [
        ("eni-a", "NODATA", 1),
        ("eni-b", "SKIPDATA", 1),
    ]


@pytest.mark.timeout(120, func_only=True)  # the job itself, not the fixture setup
def test_tag_of_an_empty_range_ends_at_once(spark, lake, tmp_path, capsys):
    report = tmp_path / "report.csv"
    assert main(["tag", "--lake", str(lake), *EMPTY, "--out", str(report)]) == 0
    err = capsys.readouterr().err
    assert "nothing to do: no records in flow_records dated 2025-01-01 .. 2025-01-02" in err
    assert report.read_text() == (
        "Tag Counts:\nTag,Count\n\nPort/Protocol Combination Counts:\nPort,Protocol,Count\n"
    )
    # a day with only NODATA/SKIPDATA rows has nothing to tag either, and says why
    assert main(["tag", "--lake", str(lake), "--from", "2024-06-02", "--to", "2024-06-02", "--out", "-"]) == 0
    assert "no taggable records dated 2024-06-02 .. 2024-06-02 (2 records: 2 NODATA/SKIPDATA" in capsys.readouterr().err
    assert not tables.exists(spark, str(lake), tables.TAG_COUNTS)


@pytest.mark.timeout(120, func_only=True)  # the job itself, not the fixture setup
def test_classify_of_an_empty_range_ends_at_once(spark, lake, capsys):
    assert main(["classify", "--lake", str(lake), *EMPTY]) == 0
    assert "nothing to do: flows has no rows dated 2025-01-01 .. 2025-01-02" in capsys.readouterr().out
    assert not tables.exists(spark, str(lake), tables.IP_CLASSES)


@pytest.mark.timeout(120, func_only=True)  # the job itself, not the fixture setup
def test_ingest_of_no_objects_says_nothing_to_do(tmp_path, capsys):
    source = tmp_path / "source"
    source.mkdir()
    assert main(["ingest", "--source", str(source), "--lake", str(tmp_path / "lake")]) == 0
    assert "nothing to do  no flow log objects found under the source" in capsys.readouterr().out
