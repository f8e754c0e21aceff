"""`flowspark maintain`: retention of raw records, compaction and VACUUM.

1. Days to drop: the event_date days of flow_records older than --keep-records-days N, counted back from
   the NEWEST day in flow_records (not from today: a lake loaded late, or a backfill, keeps its newest N
   days whatever the calendar says). With newest day D, the days D-N+1 .. D are kept, earlier ones dropped.
2. A day is dropped only once its flows exist: flows has rows for it and their records add up to the
   day's data records in flow_records (so a day deduplicated before more records arrived is not dropped
   either). Any other day is refused, one line each saying why; flows, reports, rejects and the ingest
   ledger are never touched (the ledger keeps the dropped objects from being ingested again).
3. DELETE of the days to drop from flow_records (whole files: event_date is the partition column), then
   OPTIMIZE of flow_records and flows (days of many small files become a few), then VACUUM of both with
   [storage] vacuum_retention_hours (the dropped files leave the storage only then).
--dry-run reads the same figures and says what it would do; it commits nothing (no table version changes).
"""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass, field
from typing import Optional

from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from flowspark.core.schema import EVENT_DATE, is_data_record
from flowspark.edges import tables
from flowspark.edges.config import Config

MAINTAINED = (tables.FLOW_RECORDS, tables.FLOWS)


@dataclass
class MaintainSummary:
    lake: str
    keep_days: int
    dry_run: bool
    newest: Optional[dt.date] = None
    dropped: list[tuple[dt.date, int, int]] = field(default_factory=list)  # (day, rows, bytes)
    refused: list[tuple[dt.date, str]] = field(default_factory=list)
    optimized: dict[str, tuple[int, int]] = field(default_factory=dict)  # table -> (files removed, added)
    vacuumed: dict[str, Optional[int]] = field(default_factory=dict)  # table -> files deleted (None: unknown)
    retention_hours: int = 0
    seconds: float = 0.0

    def text(self) -> str:
        would = "would drop" if self.dry_run else "dropped"
        lines = [
            f"maintain {self.lake}" + (" (dry run: nothing changed)" if self.dry_run else ""),
            f"  keep           {self.keep_days} newest day(s) of flow_records, up to {self.newest or '-'}",
        ]
        if not self.dropped and not self.refused:
            lines.append("  records        no day older than that: nothing to drop")
        for day, rows, size in self.dropped:
            lines.append(f"  {would:<14} flow_records {day}: {rows:,} rows, {size:,} bytes (its flows are kept)")
        for day, why in self.refused:
            lines.append(f"  refused        flow_records {day}: {why}")
        verb = "would optimize" if self.dry_run else "optimized"
        for name, (removed, added) in self.optimized.items():
            lines.append(f"  {verb:<14} {name}: {removed:,} files -> {added:,}")
        verb = "would vacuum" if self.dry_run else "vacuumed"
        for name, n in self.vacuumed.items():
            what = f"{n:,} files" if n is not None else "files"
            lines.append(f"  {verb:<14} {name}: {what} unreferenced for {self.retention_hours} h")
        lines.append(f"  seconds        {self.seconds:.1f}")
        return "\n".join(lines)


def _day_figures(spark: SparkSession, lake: str, names: list[str]) -> dict[str, dict[dt.date, tuple[int, int, int]]]:
    """(rows, bytes, files) per day of these tables, from their Delta logs."""
    out: dict[str, dict[dt.date, tuple[int, int, int]]] = {name: {} for name in MAINTAINED}
    for d in tables.storage_by_date(spark, lake, names, EVENT_DATE):
        if d["date"]:
            out[d["table"]][dt.date.fromisoformat(d["date"])] = (d["rows"] or 0, d["bytes"], d["files"])
    return out


def _unflowed(spark: SparkSession, lake: str, days: list[dt.date], flow_days: set[dt.date]) -> dict[dt.date, str]:
    """Why each of these days may not be dropped (days not in the result may): no flows, or flows that do
    not account for every data record of the day. One aggregate per table over these days (bounded by them)."""
    why = {d: f"no flows for this day: run `flowspark dedup --from {d} --to {d}` first" for d in days}
    have = [d for d in days if d in flow_days]
    if not have:
        return why
    lo, hi = min(have), max(have)
    in_range = (F.col(EVENT_DATE) >= F.lit(lo)) & (F.col(EVENT_DATE) <= F.lit(hi))
    records = tables.read(spark, lake, tables.FLOW_RECORDS).where(in_range)
    data = dict(records.where(is_data_record(records.columns)).groupBy(EVENT_DATE).count().collect())
    flows = tables.read(spark, lake, tables.FLOWS).where(in_range)
    flowed = dict(flows.groupBy(EVENT_DATE).agg(F.sum("records")).collect())
    for d in have:
        want, got = int(data.get(d, 0)), int(flowed.get(d) or 0)
        if want == got:
            why.pop(d)
        else:
            why[d] = (
                f"its flows hold {got:,} of its {want:,} data records "
                "(dedup ran before all of them arrived, or flows changed): "
                f"run `flowspark dedup --from {d} --to {d}` first"
            )
    return why


def run_maintain(
    spark: SparkSession, cfg: Config, lake: str, keep_records_days: int, dry_run: bool = False
) -> MaintainSummary:
    """Drop the flow_records days older than the newest keep_records_days whose flows exist, then optimize
    and vacuum flow_records and flows (see the module docstring). dry_run: change nothing."""
    if keep_records_days < 1:
        raise ValueError(
            f"--keep-records-days must be at least 1 (got {keep_records_days}): it keeps the newest N days"
        )
    t0 = time.time()
    storage = cfg.storage
    summary = MaintainSummary(lake, keep_records_days, dry_run, retention_hours=storage.vacuum_retention_hours)
    if not tables.exists(spark, lake, tables.FLOW_RECORDS):
        raise FileNotFoundError(f"no flow_records under {lake}: check --lake (run ingest first)")
    present = [n for n in MAINTAINED if tables.exists(spark, lake, n)]
    figures = _day_figures(spark, lake, present)
    days = sorted(figures[tables.FLOW_RECORDS])
    if days:
        summary.newest = days[-1]
        cutoff = days[-1] - dt.timedelta(days=keep_records_days)
        old = [d for d in days if d <= cutoff]
        refused = _unflowed(spark, lake, old, set(figures[tables.FLOWS]))
        summary.refused = sorted(refused.items())
        summary.dropped = [(d, *figures[tables.FLOW_RECORDS][d][:2]) for d in old if d not in refused]
    if dry_run:
        gone = {d for d, _, _ in summary.dropped}
        for name in present:
            # What OPTIMIZE would take: the files of the days (kept) that have more than one, about one per
            # day after (an estimate: Delta also leaves files of the target size alone).
            many = [
                f for d, (_, _, f) in figures[name].items() if f > 1 and not (name == tables.FLOW_RECORDS and d in gone)
            ]
            summary.optimized[name] = (sum(many), len(many))
            summary.vacuumed[name] = tables.vacuum(spark, lake, name, storage.vacuum_retention_hours, dry_run=True)
    else:
        tables.delete_dates(spark, lake, tables.FLOW_RECORDS, EVENT_DATE, [d for d, _, _ in summary.dropped])
        for name in present:
            summary.optimized[name] = tables.optimize(spark, lake, name, storage)
        for name in present:
            summary.vacuumed[name] = tables.vacuum(spark, lake, name, storage.vacuum_retention_hours)
    summary.seconds = time.time() - t0
    return summary
