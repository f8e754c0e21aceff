"""flowspark stats against sizes computed independently: the Delta log replayed with plain json (and pyarrow
for a checkpoint), each live file's size on disk from the file system, its rows from its Parquet footer."""

from __future__ import annotations

import json
import os
from collections import defaultdict
from pathlib import Path
from urllib.parse import unquote

import pyarrow.parquet as pq
import pytest

from flowspark.generator import generate
from flowspark.pipelines.dedup import run_dedup
from flowspark.pipelines.ingest import run_ingest
from flowspark.pipelines.stats import run_stats

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def small_lake(spark, cfg, tmp_path_factory):
    """The first hour of each of 2 generated days, ingested and deduplicated; flows checkpoints every 2 commits."""
    root = tmp_path_factory.mktemp("stats")
    src, lake = root / "src", root / "lake"
    generate(str(src), records=6_000, seed=11, accounts=1, regions=1, days=2, workers=1, quiet=True)
    # the first hour of each day only (24 objects, not 576): the figures are per day and table, and CI's time
    # goes on objects, not records
    for obj in src.rglob("*.log.gz"):
        if obj.name.split("_")[-2][9:11] != "00":
            obj.unlink()
    run_ingest(spark, cfg, str(src), str(lake))
    run_dedup(spark, cfg, str(lake))
    spark.sql(f"ALTER TABLE delta.`{lake}/flows` SET TBLPROPERTIES ('delta.checkpointInterval' = '2')")
    for day in ("2024-06-01", "2024-06-02"):  # two more commits: a checkpoint, then a commit after it
        d = __import__("datetime").date.fromisoformat(day)
        run_dedup(spark, cfg, str(lake), d, d)
    return src, lake


def _live_files(table: Path) -> dict[str, dict]:
    """path -> add action of the current snapshot, replayed from the log files with json/pyarrow."""
    log = table / "_delta_log"
    names = os.listdir(log)
    checkpoints = sorted(int(n[:20]) for n in names if n.endswith(".checkpoint.parquet"))
    start = checkpoints[-1] if checkpoints else -1
    live: dict[str, dict] = {}
    if start >= 0:
        for row in pq.read_table(log / f"{start:020d}.checkpoint.parquet", columns=["add"]).to_pylist():
            add = row["add"]
            if add:
                pv = add["partitionValues"]
                add["partitionValues"] = dict(pv) if isinstance(pv, list) else pv
                live[add["path"]] = add
    for v in sorted(int(n[:20]) for n in names if n.endswith(".json") and n[:20].isdigit()):
        if v <= start:
            continue
        for line in (log / f"{v:020d}.json").read_text().splitlines():
            action = json.loads(line)
            if "remove" in action:
                live.pop(action["remove"]["path"], None)
            if "add" in action:
                live[action["add"]["path"]] = action["add"]
    return live


def _expected(table: Path) -> dict[str | None, tuple[int, int, int]]:
    """(files, bytes on disk, rows in the footers) per event_date partition value."""
    out: dict[str | None, list[int]] = defaultdict(lambda: [0, 0, 0])
    for path, add in _live_files(table).items():
        f = table / unquote(path)
        day = (add.get("partitionValues") or {}).get("event_date")
        out[day][0] += 1
        out[day][1] += f.stat().st_size
        out[day][2] += pq.read_metadata(f).num_rows
    return {k: tuple(v) for k, v in out.items()}  # type: ignore[misc]


def test_stats_match_the_log_replayed_independently(spark, cfg, small_lake):
    src, lake = small_lake
    assert any(n.endswith(".checkpoint.parquet") for n in os.listdir(lake / "flows" / "_delta_log"))
    s = run_stats(spark, cfg, str(lake), str(src))
    got = {(t.table, t.date): (t.files, t.bytes, t.rows) for t in s.tables}
    tables = sorted({t for t, _ in got})
    assert {"flow_records", "flows", "flow_rejects", "ingested_files", "dedup_stats"} <= set(tables)
    want = {}
    for name in tables:
        for day, (files, size, rows) in _expected(lake / name).items():
            want[(name, day)] = (files, size, rows)
        if not _expected(lake / name):
            want[(name, None)] = (0, 0, 0)  # a table without live files (flow_rejects of a clean run)
    assert got == want
    days = sorted(d for t, d in got if t == "flow_records")
    assert days == ["2024-06-01", "2024-06-02"] and sorted(d for t, d in got if t == "flows") == days
    # Bytes per input record: a day's bytes over that day's flow_records rows.
    for name in ("flow_records", "flows"):
        for day in days:
            assert s.per_record(want[(name, day)][1], day) == pytest.approx(
                want[(name, day)][1] / want[("flow_records", day)][2]
            )
    # The raw objects per day, by the folder they are in (AWS's YYYY/MM/DD), sizes from the file system.
    raw: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for folder, _, files in os.walk(src):
        for f in files:
            if f.endswith(".log.gz"):
                day = "-".join(Path(folder).parts[-3:])
                raw[day][0] += 1
                raw[day][1] += os.path.getsize(os.path.join(folder, f))
    assert {d.date: (d.objects, d.bytes) for d in s.source_days} == {d: tuple(v) for d, v in raw.items()}
    text = s.text()
    assert "flow_records" in text and "2024-06-02" in text and "lake / source bytes" in text
    # The HTML report's storage section: per-table sums of the same independent figures, the lake's total,
    # and the days of the report's range only.
    totals, per_day = s.report_rows("2024-06-02", None)
    by_table = {r["table"]: r for r in totals}
    for name in tables:
        mine = [v for (t, _), v in want.items() if t == name]
        assert (by_table[name]["files"], by_table[name]["bytes"]) == (sum(v[0] for v in mine), sum(v[1] for v in mine))
    assert by_table["(lake)"]["bytes"] == sum(v[1] for v in want.values())
    records = sum(want[("flow_records", d)][2] for d in days)
    assert by_table["flows"]["bytes_per_record"] == pytest.approx(by_table["flows"]["bytes"] / records)
    assert sorted((r["table"], r["date"]) for r in per_day) == sorted(k for k in want if k[1] == "2024-06-02")


def test_stats_of_a_missing_lake_says_so(spark, cfg, tmp_path):
    with pytest.raises(FileNotFoundError, match="no Delta tables under"):
        run_stats(spark, cfg, str(tmp_path / "nothing"))


def test_the_compact_layout_is_what_the_files_hold(small_lake):
    """[storage] layout = compact (the default): Parquet v2 pages (dictionary pages are RLE_DICTIONARY in v2,
    PLAIN_DICTIONARY in v1), and each flows file dedup wrote sorted by interface and start inside its day
    (read back with pyarrow, not Spark)."""
    _, lake = small_lake
    for name in ("flow_records", "flows"):
        files = [lake / name / unquote(p) for p in _live_files(lake / name)]
        assert files
        for f in files:
            rg = pq.ParquetFile(f).metadata.row_group(0)
            encodings = {e for i in range(rg.num_columns) for e in rg.column(i).encodings}
            assert "PLAIN_DICTIONARY" not in encodings and "RLE_DICTIONARY" in encodings
    for f in (lake / "flows" / unquote(p) for p in _live_files(lake / "flows")):
        rows = pq.read_table(f, columns=["interface_id", "start"]).to_pylist()
        keys = [(r["interface_id"], r["start"]) for r in rows]
        assert keys == sorted(keys)
