"""`flowspark stats`: what the lake costs to store, per table and day, from the Delta logs (no data scan).

For each table: rows, files and bytes of its current snapshot, per event_date where the table is
partitioned by it (flow_records, flows), else one line for the table. Bytes per input record divides a
table's bytes of a day by the flow_records rows of that day (the records ingested: data, NODATA and
SKIPDATA lines); once `flowspark maintain` has dropped a day's records it is not known any more (blank).
With a source: the raw objects' bytes per day (the day in the AWS object name, _YYYYMMDDTHHmmZ_; the
delivery time, so a record of 23:59 delivered at 00:05 counts on the next day) and bytes per record.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from typing import Optional

from pyspark.sql import SparkSession

from flowspark.core.schema import EVENT_DATE
from flowspark.edges import tables
from flowspark.edges.config import Config
from flowspark.edges.sources import discover

_OBJECT_DAY = re.compile(r"_(\d{4})(\d{2})(\d{2})T\d{4}Z_")


@dataclass(frozen=True)
class TableDay:
    table: str
    date: Optional[str]  # YYYY-MM-DD, or None: the whole table (not partitioned by day)
    rows: Optional[int]  # None: a file without statistics
    files: int
    bytes: int


@dataclass(frozen=True)
class SourceDay:
    date: Optional[str]  # None: objects whose name carries no delivery time
    objects: int
    bytes: int


@dataclass
class StatsSummary:
    lake: str
    source: Optional[str] = None
    tables: list[TableDay] = field(default_factory=list)
    source_days: list[SourceDay] = field(default_factory=list)
    seconds: float = 0.0

    def input_records(self) -> dict[str, int]:
        """flow_records rows per day: the records each day's bytes are divided by."""
        return {t.date: t.rows for t in self.tables if t.table == tables.FLOW_RECORDS and t.date and t.rows is not None}

    def per_record(self, nbytes: int, date: Optional[str]) -> Optional[float]:
        """Bytes per input record of one day (date) or of every day the lake has records of (None)."""
        records = self.input_records()
        n = records.get(date, 0) if date else sum(records.values())
        return nbytes / n if n else None

    def totals(self) -> list[TableDay]:
        """One line per table: its days summed."""
        out: dict[str, TableDay] = {}
        for t in self.tables:
            o = out.get(t.table)
            if o is None:
                out[t.table] = TableDay(t.table, None, t.rows, t.files, t.bytes)
            else:
                rows = None if o.rows is None or t.rows is None else o.rows + t.rows
                out[t.table] = TableDay(t.table, None, rows, o.files + t.files, o.bytes + t.bytes)
        return sorted(out.values(), key=lambda t: t.table)

    def report_rows(
        self, date_from: Optional[str] = None, date_to: Optional[str] = None
    ) -> tuple[list[dict], list[dict]]:
        """The HTML report's storage section: (one row per table and one for the whole lake; one row per
        table and day of [date_from, date_to], ISO dates, either end open)."""
        totals = []
        dated = {t.table for t in self.tables if t.date}
        for t in self.totals():
            per = self.per_record(t.bytes, None) if t.table in dated else None
            totals.append(dict(table=t.table, rows=t.rows, files=t.files, bytes=t.bytes, bytes_per_record=per))
        totals.append(
            dict(table="(lake)", rows=None, files=sum(t.files for t in self.tables),
                 bytes=sum(t.bytes for t in self.tables), bytes_per_record=None)
        )
        days = [
            dict(table=t.table, date=t.date, rows=t.rows, files=t.files, bytes=t.bytes,
                 bytes_per_record=self.per_record(t.bytes, t.date))
            for t in self.tables
            if t.date and (date_from is None or t.date >= date_from) and (date_to is None or t.date <= date_to)
        ]
        return totals, days

    def text(self) -> str:
        def fmt(v: Optional[float], spec: str = ",") -> str:
            return "-" if v is None else format(v, spec)

        head = f"  {'table':<28} {'date':<10} {'rows':>13} {'files':>7} {'bytes':>15} {'B/record':>9}"
        lines = [f"stats {self.lake}", head]
        dated = {t.table for t in self.tables if t.date}
        for t in self.tables:
            per = self.per_record(t.bytes, t.date) if t.date else None
            lines.append(
                f"  {t.table:<28} {t.date or 'all':<10} {fmt(t.rows):>13} {t.files:>7,} {t.bytes:>15,} "
                f"{fmt(per, ',.2f'):>9}"
            )
        for t in self.totals():
            if t.table in dated:
                per = self.per_record(t.bytes, None)
                lines.append(
                    f"  {t.table:<28} {'total':<10} {fmt(t.rows):>13} {t.files:>7,} {t.bytes:>15,} "
                    f"{fmt(per, ',.2f'):>9}"
                )
        lake_bytes = sum(t.bytes for t in self.tables)
        lines.append(f"  {'lake':<28} {'total':<10} {'':>13} {sum(t.files for t in self.tables):>7,} {lake_bytes:>15,}")
        if self.source is not None:
            lines.append(f"source {self.source}")
            for s in self.source_days:
                per = self.per_record(s.bytes, s.date) if s.date else None
                lines.append(
                    f"  {'objects (gzip)':<28} {s.date or '?':<10} {'':>13} {s.objects:>7,} {s.bytes:>15,} "
                    f"{fmt(per, ',.2f'):>9}"
                )
            raw = sum(s.bytes for s in self.source_days)
            if raw:
                lines.append(f"  lake / source bytes      {lake_bytes / raw:.2f}x")
        lines.append(f"  seconds        {self.seconds:.1f}")
        return "\n".join(lines)


def source_days(spark: SparkSession, cfg: Config, source: str) -> list[SourceDay]:
    """The raw flow log objects under `source` (a listing, nothing read) per delivery day."""
    days: dict[Optional[str], list[int]] = {}
    for f in discover(spark, source, cfg.ingest.text_suffixes + cfg.ingest.parquet_suffixes):
        m = _OBJECT_DAY.search(f.path.rsplit("/", 1)[-1])
        day = f"{m.group(1)}-{m.group(2)}-{m.group(3)}" if m else None
        days.setdefault(day, []).append(f.size)
    return [SourceDay(d, len(s), sum(s)) for d, s in sorted(days.items(), key=lambda kv: kv[0] or "")]


def run_stats(spark: SparkSession, cfg: Config, lake: str, source: Optional[str] = None) -> StatsSummary:
    """Rows, files and bytes of every table of the lake per day, from the Delta logs; with `source`, the
    raw objects' bytes per day."""
    t0 = time.time()
    names = tables.lake_tables(spark, lake)
    if not names:
        raise FileNotFoundError(f"no Delta tables under {lake}: check --lake (run ingest first)")
    summary = StatsSummary(lake=lake, source=source)
    summary.tables = [TableDay(**d) for d in tables.storage_by_date(spark, lake, names, EVENT_DATE)]
    if source is not None:
        summary.source_days = source_days(spark, cfg, source)
    summary.seconds = time.time() - t0
    return summary
