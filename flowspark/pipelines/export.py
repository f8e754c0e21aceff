"""The export job: <lake>/flows (or flow_records) -> OCSF 1.1.0 Network Activity events in Parquet, laid out
as Amazon Security Lake takes a custom source: <out>/region=<r>/accountId=<a>/eventDay=<YYYYMMDD>/, zstd,
each file's rows ordered by time (see :mod:`flowspark.core.ocsf` for the mapping).

A rerun replaces the partitions it writes (Spark's dynamic partition overwrite) and no other, so the same
export twice ends with the same files' contents. The export is checked: what the written partitions hold,
read back, equals what was read from the lake (events, records, packets and bytes per partition)."""

from __future__ import annotations

import datetime as dt
import logging
import time
from dataclasses import dataclass, field

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from flowspark.core.dates import in_dates
from flowspark.core.ocsf import OCSF_VERSION, PARTITIONS, UNKNOWN_DAY, UNKNOWN_REGION, to_ocsf
from flowspark.edges import tables
from flowspark.edges.tables import FLOW_RECORDS, FLOWS

log = logging.getLogger("flowspark")
TABLES = (FLOWS, FLOW_RECORDS)


class ExportError(RuntimeError):
    """The written events do not hold what was read: the export is not to be used."""


@dataclass
class ExportSummary:
    lake: str
    out: str
    table: str
    date_from: dt.date | None = None
    date_to: dt.date | None = None
    events: int = 0
    records: int = 0
    packets: int = 0
    bytes: int = 0
    partitions: int = 0
    days: list[str] = field(default_factory=list)
    unknown_region: int = 0
    no_time: int = 0
    checked: bool = False
    seconds: float = 0.0

    def text(self) -> str:
        ranged = self.date_from or self.date_to
        days = f"{self.date_from or 'start'} .. {self.date_to or 'end'}" if ranged else "all dates"
        if not self.events:
            return f"export ocsf {self.lake}/{self.table} {days}: no rows there; nothing written to {self.out}"
        span = f"{self.days[0]} .. {self.days[-1]}" if len(self.days) > 1 else self.days[0]
        lines = [
            f"export ocsf {self.lake}/{self.table} {days} -> {self.out}",
            f"  events         {self.events:,} (OCSF {OCSF_VERSION} Network Activity, class_uid 4001)",
            f"  partitions     {self.partitions:,} (region / accountId / eventDay), eventDay {span}",
            "  check          events, records, packets and bytes per partition read back: "
            + ("OK" if self.checked else "NOT CHECKED"),
            f"  time           {self.seconds:.1f} s",
        ]
        if self.table == FLOWS:
            lines.insert(2, f"  records        {self.records:,} (in the events' count)")
        if self.unknown_region:
            lines.append(
                f"  note           {self.unknown_region:,} events without a region (their format and object name "
                f"hold none) are under region={UNKNOWN_REGION}"
            )
        if self.no_time:
            lines.append(
                f"  note           {self.no_time:,} events without any time (no start, end or delivery day in the "
                f"object's name) have no `time` (required by OCSF) and are under eventDay={UNKNOWN_DAY}"
            )
        return "\n".join(lines)


def _totals(df: DataFrame, records: str | None, packets: str, bytes_: str) -> dict[tuple, tuple[int, int, int, int]]:
    """Per partition (region, accountId, eventDay): rows, records, packets, bytes."""
    rec = F.sum(records) if records else F.count(F.lit(1))
    rows = (
        df.groupBy(*PARTITIONS)
        .agg(F.count(F.lit(1)), rec, F.sum(packets), F.sum(bytes_))
        .collect()
    )
    return {tuple(r[:3]): tuple(int(v or 0) for v in r[3:]) for r in rows}


def _write(events: DataFrame, out: str) -> None:
    """One file per partition, ordered by time; the partitions written replace the same ones of an earlier
    export, the others stay."""
    ordered = events.repartition(*PARTITIONS).sortWithinPartitions("time")
    conf = {"spark.sql.sources.partitionOverwriteMode": "dynamic", "spark.sql.parquet.compression.codec": "zstd"}
    with tables.session_conf(events.sparkSession, conf):
        ordered.write.mode("overwrite").partitionBy(*PARTITIONS).parquet(out)


def run_export_ocsf(
    spark: SparkSession,
    lake: str,
    out: str,
    table: str = FLOWS,
    date_from: dt.date | None = None,
    date_to: dt.date | None = None,
) -> ExportSummary:
    if table not in TABLES:
        raise ValueError(f"--table: {' or '.join(TABLES)}, not {table}")
    t0 = time.time()
    summary = ExportSummary(lake=lake, out=out, table=table, date_from=date_from, date_to=date_to)
    rows = in_dates(tables.read(spark, lake, table), date_from, date_to)
    aggregated = table == FLOWS
    events = to_ocsf(rows, aggregated=aggregated)
    # what was read, per partition (one job over the lake's rows): the events are a select of the rows, one
    # each, so their totals are the rows'
    read = _totals(events, "count" if aggregated else None, "traffic.packets", "traffic.bytes")
    if not read:
        summary.seconds = time.time() - t0
        return summary
    _write(events, out)
    written = spark.read.parquet(out)
    keys = F.struct(*[F.col(c).cast("string") for c in PARTITIONS])
    wanted = [F.struct(*[F.lit(str(v)) for v in k]) for k in read]
    back = _totals(
        written.where(keys.isin(*wanted)).withColumn("eventDay", F.col("eventDay").cast("string")),
        "count" if aggregated else None,
        "traffic.packets",
        "traffic.bytes",
    )
    back = {tuple(str(v) for v in k): t for k, t in back.items()}
    read = {tuple(str(v) for v in k): t for k, t in read.items()}
    if back != read:
        lost = {k: (read.get(k), back.get(k)) for k in set(read) | set(back) if read.get(k) != back.get(k)}
        raise ExportError(
            f"the OCSF events written to {out} do not hold what {lake}/{table} holds for {len(lost)} partitions "
            f"(read, written: events, records, packets, bytes): {sorted(lost.items())[:3]}; rerun the export"
        )
    summary.checked = True
    summary.events = sum(t[0] for t in read.values())
    summary.records = sum(t[1] for t in read.values())
    summary.packets = sum(t[2] for t in read.values())
    summary.bytes = sum(t[3] for t in read.values())
    summary.partitions = len(read)
    summary.days = sorted({k[2] for k in read})
    summary.unknown_region = sum(t[0] for k, t in read.items() if k[0] == UNKNOWN_REGION)
    summary.no_time = sum(t[0] for k, t in read.items() if k[2] == UNKNOWN_DAY)
    summary.seconds = time.time() - t0
    log.info("export ocsf: %d events in %d partitions", summary.events, summary.partitions)
    return summary
