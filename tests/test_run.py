"""`flowspark run`: the steps in one session give the same tables as the separate commands, and a day's run
works on the days its ingest wrote."""

from __future__ import annotations

import shutil

import pytest
from pyspark.sql import functions as F

import flowspark.cli
from flowspark.edges import tables
from flowspark.generator import generate
from flowspark.pipelines.dedup import run_dedup
from flowspark.pipelines.ingest import run_ingest
from flowspark.pipelines.run import date_spans, parse_steps
from flowspark.pipelines.tag import run_tag_lake

pytestmark = pytest.mark.slow


def _comparable(df):
    """Map columns (extra_fields) as JSON text: set operations do not take maps."""
    from pyspark.sql.types import MapType

    return df.select(
        *[
            F.to_json(f.name).alias(f.name) if isinstance(f.dataType, MapType) else F.col(f.name)
            for f in df.schema.fields
        ]
    )


def _same(a, b) -> None:
    """Whole tables, duplicates counted: nothing in one that the other lacks, both ways."""
    assert a.schema.fieldNames() == b.schema.fieldNames()
    a, b = _comparable(a), _comparable(b)
    assert a.exceptAll(b).count() == 0 and b.exceptAll(a).count() == 0


def test_steps_and_spans():
    assert parse_steps("dedup, ingest") == ["ingest", "dedup"]
    with pytest.raises(ValueError, match="unknown step"):
        parse_steps("ingest,report")
    import datetime as dt

    d = [dt.date(2024, 6, x) for x in (3, 1, 2, 5, 2)]
    assert date_spans(d) == [(dt.date(2024, 6, 1), dt.date(2024, 6, 3)), (dt.date(2024, 6, 5), dt.date(2024, 6, 5))]


def test_run_equals_the_separate_commands_and_works_on_new_days(spark, cfg, tmp_path, monkeypatch, capsys):
    day1, day2 = tmp_path / "day1", tmp_path / "day2"
    generate(str(day1), records=4_000, seed=31, start="2024-06-01", accounts=1, regions=1, workers=1)
    generate(str(day2), records=3_000, seed=32, start="2024-06-02", accounts=1, regions=1, workers=1)
    source = tmp_path / "source"
    shutil.copytree(day1 / "AWSLogs", source / "AWSLogs")

    monkeypatch.setattr(flowspark.cli, "spark_for", lambda c: spark)
    lake = tmp_path / "lake"
    argv = ["run", "--source", str(source), "--lake", str(lake), "--steps", "ingest,dedup,tag"]
    assert flowspark.cli.main(argv) == 0
    out = capsys.readouterr().out
    for step in ("== ingest (", "== dedup (", "== tag ("):
        assert step in out
    assert "classify" not in out.split("\nrun\n")[0]

    # The same source through the separate jobs, into another lake.
    other = tmp_path / "other"
    run_ingest(spark, cfg, str(source), str(other))
    run_dedup(spark, cfg, str(other))
    run_tag_lake(spark, str(other))
    drop = ("ingest_id",)  # which run wrote a row differs between the two lakes
    for name in (tables.FLOW_RECORDS, tables.FLOWS, tables.TAG_COUNTS, tables.PORT_PROTOCOL_COUNTS):
        a, b = tables.read(spark, str(lake), name), tables.read(spark, str(other), name)
        _same(a.drop(*drop), b.drop(*drop))

    # A new day arrives: the next run reads only its objects and its dedup step compacts only its day.
    shutil.copytree(day2 / "AWSLogs", source / "AWSLogs", dirs_exist_ok=True)
    assert flowspark.cli.main(argv) == 0
    stats = tables.read(spark, str(lake), tables.DEDUP_STATS).orderBy(F.col("computed_at").desc()).first()
    assert (stats["date_from"], stats["date_to"]) == ("2024-06-02", "2024-06-02")
    # and the default steps (ingest keeps flows; no dedup) write the same flows as ingest then dedup
    third = tmp_path / "third"
    assert flowspark.cli.main(["run", "--source", str(source), "--lake", str(third), "--steps", "ingest,tag"]) == 0
    _same(tables.read(spark, str(third), tables.FLOWS), tables.read(spark, str(lake), tables.FLOWS))
    flows = tables.read(spark, str(lake), tables.FLOWS)
    by_day = {
        str(r["event_date"]): r["records"]
        for r in flows.groupBy("event_date").agg(F.sum("records").alias("records")).collect()
    }
    assert set(by_day) == {"2024-06-01", "2024-06-02"}
