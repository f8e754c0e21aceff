"""The ingest job: raw objects (folder or S3) -> flow_records, flow_rejects, ingested_files, ingest_stats.

read (discover objects, skip those in the ledger, detect formats) -> parse (core.lines) -> write ->
reconcile (records = rows written + rejected) -> summary.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
import uuid
from dataclasses import asdict, dataclass, field

from pyspark.sql import DataFrame, Observation, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import LongType, StringType, StructField, StructType, TimestampType

from flowspark.core import lines as ing
from flowspark.core.schema import DEFAULT_FORMAT, SOURCE_FILE, parse_format
from flowspark.edges import tables
from flowspark.edges.config import Config
from flowspark.edges.sources import SourceFile, canonical, discover, read_first_lines
from flowspark.pipelines.common import ReconciliationError, one_row, utc_now

log = logging.getLogger("flowspark")


@dataclass
class IngestSummary:
    ingest_id: str
    source: str
    lake: str
    files_found: int = 0
    files_skipped: int = 0  # already ingested (same path and size)
    files_read: int = 0
    text_files: int = 0
    parquet_files: int = 0
    lines: int = 0  # every line read, header and blank lines included
    headers: int = 0
    blank_lines: int = 0
    records: int = 0  # record lines (valid + rejected)
    nodata: int = 0
    skipdata: int = 0
    rejected: int = 0
    rows_written: int = 0
    seconds: float = 0.0
    by_date: dict[str, int] = field(default_factory=dict)

    def reconciled(self) -> bool:
        return self.records == self.rows_written + self.rejected

    def text(self) -> str:
        rate = self.records / self.seconds if self.seconds else 0.0
        lines = [
            f"ingest {self.ingest_id}",
            f"  source         {self.source}",
            f"  lake           {self.lake}",
            f"  files          {self.files_read:,} read ({self.text_files:,} text, {self.parquet_files:,} parquet), "
            f"{self.files_skipped:,} already ingested, {self.files_found:,} found",
            f"  lines          {self.lines:,} ({self.headers:,} headers, {self.blank_lines:,} blank)",
            f"  records        {self.records:,} (NODATA {self.nodata:,}, SKIPDATA {self.skipdata:,})",
            f"  rejected       {self.rejected:,}" + (" -> flow_rejects" if self.rejected else ""),
            f"  rows written   {self.rows_written:,} -> flow_records",
            f"  check          records {self.records:,} = written {self.rows_written:,} + rejected "
            f"{self.rejected:,}: {'OK' if self.reconciled() else 'MISMATCH'}",
            f"  seconds        {self.seconds:.1f} ({rate:,.0f} records/s)",
        ]
        return "\n".join(lines)


_LEDGER_SCHEMA = StructType(
    [
        StructField(SOURCE_FILE, StringType(), False),
        StructField("size", LongType(), False),
        StructField("modification_time_ms", LongType(), False),
        StructField("ingest_id", StringType(), False),
        StructField("ingested_at", TimestampType(), False),
    ]
)


def _not_yet_ingested(spark: SparkSession, lake: str, found: list[SourceFile]) -> list[SourceFile]:
    """The found objects the ledger does not hold (same canonical path and size).

    An anti join against the ledger: what comes back to the driver is bounded by this run's objects,
    not by everything ever ingested.
    """
    if not found or not tables.exists(spark, lake, tables.INGESTED_FILES):
        return found
    candidates = spark.createDataFrame([(canonical(f.path), f.size) for f in found], f"{SOURCE_FILE} string, size long")
    done = tables.read(spark, lake, tables.INGESTED_FILES).select(SOURCE_FILE, "size")
    remaining = candidates.join(done, [SOURCE_FILE, "size"], "left_anti").collect()
    new = {(r[SOURCE_FILE], int(r["size"])) for r in remaining}
    return [f for f in found if (canonical(f.path), f.size) in new]


def _read_text(spark: SparkSession, files: list[SourceFile]) -> DataFrame:
    return spark.read.text([f.path for f in files], wholetext=True).select(
        F.col("_metadata.file_path").alias(SOURCE_FILE), F.col("value").alias("content")
    )


def _parsed(
    spark: SparkSession, text_files: list[SourceFile], parquet_files: list[SourceFile], fmt: list[str]
) -> DataFrame:
    """All lines of these files, parsed: one plan per distinct text format, plus Parquet."""
    parts = []
    first_lines = read_first_lines(spark, text_files)
    groups: dict[ing.TextFormat, list[SourceFile]] = {}
    for f in text_files:
        groups.setdefault(ing.detect_format(first_lines[f.path], fmt), []).append(f)
    for text_format, group in groups.items():
        parts.append(_read_text(spark, group).transform(ing.parse_text(text_format)))
    if parquet_files:
        raw = spark.read.option("mergeSchema", "true").parquet(*[f.path for f in parquet_files])
        parts.append(ing.parse_parquet(raw))
    out = parts[0]
    for p in parts[1:]:
        out = out.unionByName(p)
    return out


def run_ingest(
    spark: SparkSession,
    cfg: Config,
    source: str,
    lake: str,
    date_from: dt.date | None = None,
    date_to: dt.date | None = None,
    fmt: str | None = None,
    force: bool = False,
) -> IngestSummary:
    t0 = time.time()
    default_format = parse_format(fmt) if fmt else list(DEFAULT_FORMAT)
    summary = IngestSummary(ingest_id=uuid.uuid4().hex[:12], source=source, lake=lake)
    suffixes = cfg.ingest.text_suffixes + cfg.ingest.parquet_suffixes
    found = discover(spark, source, suffixes, date_from, date_to)
    summary.files_found = len(found)
    todo = found if force else _not_yet_ingested(spark, lake, found)
    summary.files_skipped = len(found) - len(todo)
    if not todo:
        summary.seconds = time.time() - t0
        log.info("nothing new to ingest")
        return summary
    parquet_files = [f for f in todo if f.path.endswith(cfg.ingest.parquet_suffixes)]
    text_files = [f for f in todo if not f.path.endswith(cfg.ingest.parquet_suffixes)]
    summary.files_read, summary.text_files, summary.parquet_files = len(todo), len(text_files), len(parquet_files)
    log.info("ingesting %d files (%d text, %d parquet)", len(todo), len(text_files), len(parquet_files))

    parsed = _parsed(spark, text_files, parquet_files, default_format)
    obs = Observation("ingest")
    kind, reason, status = F.col("kind"), F.col("reason"), F.col("log_status")
    observed = parsed.observe(
        obs,
        F.count(F.lit(1)).alias("lines"),
        F.count(F.when(kind == ing.HEADER, 1)).alias("headers"),
        F.count(F.when(kind == ing.BLANK, 1)).alias("blank_lines"),
        F.count(F.when(kind == ing.RECORD, 1)).alias("records"),
        F.count(reason).alias("rejected"),
        F.count(F.when(reason.isNull() & (status == "NODATA"), 1)).alias("nodata"),
        F.count(F.when(reason.isNull() & (status == "SKIPDATA"), 1)).alias("skipdata"),
        # Files holding at least one reject: bounded by the number of files in this run.
        F.array_join(F.collect_set(F.when(reason.isNotNull(), F.col(SOURCE_FILE))), "\n").alias("reject_files"),
    )
    tables.append(
        ing.records(observed),
        lake,
        tables.FLOW_RECORDS,
        partition_by=["event_date"],
        max_records_per_file=cfg.ingest.max_records_per_file,
    )
    m = obs.get
    for k in ("lines", "headers", "blank_lines", "records", "rejected", "nodata", "skipdata"):
        setattr(summary, k, int(m[k]))
    metrics = tables.last_operation_metrics(spark, lake, tables.FLOW_RECORDS)
    summary.rows_written = int(metrics.get("numOutputRows", 0))

    if summary.rejected:
        reject_paths = set(str(m["reject_files"]).split("\n"))
        reject_paths = {canonical(p) for p in reject_paths}
        again_text = [f for f in text_files if canonical(f.path) in reject_paths]
        again_parquet = [f for f in parquet_files if canonical(f.path) in reject_paths]
        rej = ing.rejects(_parsed(spark, again_text, again_parquet, default_format), summary.ingest_id)
        tables.append(rej, lake, tables.FLOW_REJECTS)
        written = int(tables.last_operation_metrics(spark, lake, tables.FLOW_REJECTS).get("numOutputRows", 0))
        if written != summary.rejected:
            raise ReconciliationError(f"{summary.rejected} lines were rejected but {written} reject rows were written")

    now = utc_now()
    ledger = spark.createDataFrame(
        [(canonical(f.path), f.size, f.mtime_ms, summary.ingest_id, now) for f in todo], _LEDGER_SCHEMA
    )
    tables.append(ledger, lake, tables.INGESTED_FILES)
    summary.seconds = time.time() - t0
    if not summary.reconciled():
        raise ReconciliationError(
            f"ingest {summary.ingest_id} does not reconcile: {summary.records} record lines read, "
            f"{summary.rows_written} rows written, {summary.rejected} rejected"
        )
    _append_stats(spark, lake, summary)
    return summary


def _append_stats(spark: SparkSession, lake: str, summary: IngestSummary) -> None:
    row = {k: v for k, v in asdict(summary).items() if k != "by_date"}
    row["ingested_at"] = utc_now()
    tables.append(one_row(spark, row), lake, tables.INGEST_STATS)
