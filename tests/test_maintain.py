"""flowspark maintain on a lake of 4 days: day 3's flows deleted, so with --keep-records-days 1 (keep the
newest day, 4) days 1-2 are dropped, day 3 is refused (no flows), day 4 is kept."""

from __future__ import annotations

import datetime as dt
import os
import shutil

import pytest

from flowspark.edges import tables
from flowspark.edges.config import with_overrides
from flowspark.generator import generate
from flowspark.pipelines.dedup import run_dedup
from flowspark.pipelines.ingest import run_ingest
from flowspark.pipelines.maintain import MAINTAINED, run_maintain

pytestmark = pytest.mark.slow

D1, D2, D3, D4 = (dt.date(2024, 6, d) for d in (1, 2, 3, 4))


def _version(spark, path) -> int:
    from delta.tables import DeltaTable

    return int(DeltaTable.forPath(spark, str(path)).history(1).first()["version"])


def _comparable(df):
    """Map columns as sorted arrays of entries (set operations refuse maps)."""
    from pyspark.sql import functions as F
    from pyspark.sql.types import MapType

    maps = [f.name for f in df.schema.fields if isinstance(f.dataType, MapType)]
    return df.select(*[F.array_sort(F.map_entries(c)).alias(c) if c in maps else F.col(c) for c in df.columns])


def _same(a, b) -> None:
    """Whole DataFrames equal, duplicates included."""
    a, b = _comparable(a), _comparable(b)
    assert a.count() == b.count()
    assert a.exceptAll(b).count() == 0 and b.exceptAll(a).count() == 0


@pytest.fixture(scope="module")
def made_lake(spark, cfg, tmp_path_factory):
    root = tmp_path_factory.mktemp("maintain")
    generate(str(root / "src"), records=4_000, seed=3, accounts=1, regions=1, days=4, workers=1, quiet=True)
    run_ingest(spark, cfg, str(root / "src"), str(root / "lake"))
    run_dedup(spark, cfg, str(root / "lake"), D1, D2)
    # day 3 without flows (a lake from before ingest kept flows, or flows rebuilt elsewhere)
    spark.sql(f"DELETE FROM delta.`{root / 'lake' / 'flows'}` WHERE event_date = DATE'{D3}'")
    return root / "lake"


@pytest.fixture
def lake(made_lake, tmp_path):
    """A copy of the module's lake for each test: maintain drops days and vacuums files, and no test may
    depend on what another one did to the lake (each passes alone and in any order)."""
    copy = tmp_path / "lake"
    shutil.copytree(made_lake, copy)
    return copy


def test_dry_run_changes_nothing_then_the_run_drops_only_days_with_flows(spark, cfg, lake):
    records, flows = lake / "flow_records", lake / "flows"
    v_records, v_flows = _version(spark, records), _version(spark, flows)

    dry = run_maintain(spark, cfg, str(lake), keep_records_days=1, dry_run=True)
    assert (_version(spark, records), _version(spark, flows)) == (v_records, v_flows)
    assert dry.newest == D4
    assert [d for d, _, _ in dry.dropped] == [D1, D2]
    assert [d for d, _ in dry.refused] == [D3] and "no flows for this day" in dry.refused[0][1]
    assert "would drop" in dry.text() and "refused        flow_records 2024-06-03" in dry.text()

    # The tables as they are now, held apart from their files (OPTIMIZE and a 0 h VACUUM delete those).
    before = spark.read.format("delta").load(str(records)).localCheckpoint()
    flows_before = spark.read.format("delta").load(str(flows)).localCheckpoint()

    def files_per_day() -> dict:
        return {
            (d["table"], d["date"]): d["files"]
            for d in tables.storage_by_date(spark, str(lake), MAINTAINED, "event_date")
        }

    assert files_per_day()[("flow_records", str(D4))] > 1  # ingest wrote a day in several files (its tasks)
    zero = with_overrides(cfg, storage={"vacuum_retention_hours": 0})
    real = run_maintain(spark, zero, str(lake), keep_records_days=1)
    # OPTIMIZE: every day of both tables is one file now (tiny days: far below the target size).
    assert set(files_per_day().values()) == {1}
    assert [d for d, _, _ in real.dropped] == [D1, D2] and [d for d, _ in real.refused] == [D3]
    after = spark.read.format("delta").load(str(records))
    _same(after, before.where(f"event_date NOT IN (DATE'{D1}', DATE'{D2}')"))
    assert sorted(r[0] for r in after.select("event_date").distinct().collect()) == [D3, D4]
    _same(spark.read.format("delta").load(str(flows)), flows_before)
    # VACUUM with 0 h retention: the dropped days' files are gone from storage, the kept days' are there.
    left = {d for d in os.listdir(records) if d.startswith("event_date=") and _has_parquet(records / d)}
    assert left == {f"event_date={D3}", f"event_date={D4}"}

    again = run_maintain(spark, zero, str(lake), keep_records_days=1, dry_run=True)
    assert again.dropped == [] and [d for d, _ in again.refused] == [D3]


def _has_parquet(folder) -> bool:
    return any(f.endswith(".parquet") for f in os.listdir(folder))


def test_a_day_whose_flows_miss_records_is_refused(spark, cfg, lake):
    # Day 3 deduplicated, then its single-record flows removed: its flows no longer hold every record.
    run_dedup(spark, cfg, str(lake), D3, D3)
    spark.sql(f"DELETE FROM delta.`{lake}/flows` WHERE event_date = DATE'{D3}' AND records = 1")
    dry = run_maintain(spark, cfg, str(lake), keep_records_days=1, dry_run=True)
    # days 1-2 have whole flows and go; day 3's flows now miss records and it stays
    assert [d for d, _, _ in dry.dropped] == [D1, D2] and [d for d, _ in dry.refused] == [D3]
    assert "its flows hold" in dry.refused[0][1]
    with pytest.raises(ValueError, match="at least 1"):
        run_maintain(spark, cfg, str(lake), keep_records_days=0)
