"""Jobs: read tables, call pure transformations, write tables, reconcile, summarise.

The CLI and the spark-submit / Glue entry points call these functions; each takes the SparkSession
and the Config it should use and returns a summary object (printed by the CLI).
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

from flowspark import ingest as ing
from flowspark import tables
from flowspark.config import Config
from flowspark.schema import DEFAULT_FORMAT, SOURCE_FILE, parse_format
from flowspark.sources import SourceFile, canonical, discover, read_first_lines

log = logging.getLogger("flowspark")


class ReconciliationError(RuntimeError):
    """Records in != records out + records rejected. The job fails rather than lose data quietly."""


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

    now = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)
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


def _one_row(spark: SparkSession, values: dict) -> DataFrame:
    """A one-row DataFrame with explicit types (None-safe), for the stats tables."""
    from pyspark.sql.types import BooleanType, DoubleType

    def typ(v: object):
        if isinstance(v, bool):
            return BooleanType()
        if isinstance(v, int):
            return LongType()
        if isinstance(v, float):
            return DoubleType()
        if isinstance(v, dt.datetime):
            return TimestampType()
        return StringType()

    schema = StructType([StructField(k, typ(v), True) for k, v in values.items()])
    return spark.createDataFrame([tuple(values.values())], schema)


def _append_stats(spark: SparkSession, lake: str, summary: IngestSummary) -> None:
    row = {k: v for k, v in asdict(summary).items() if k != "by_date"}
    row["ingested_at"] = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)
    tables.append(_one_row(spark, row), lake, tables.INGEST_STATS)


# ---------------------------------------------------------------------------------------- dedup


@dataclass
class DedupSummary:
    lake: str
    window: str
    key: list[str]
    bidirectional: bool
    date_from: str | None
    date_to: str | None
    input_records: int = 0  # data records (log_status OK) in the range
    nodata: int = 0
    skipdata: int = 0
    output_rows: int = 0
    runts_accept: int = 0
    runts_reject: int = 0
    runts_other: int = 0
    multi_record_keys: int = 0
    records_in_multi_record_keys: int = 0
    input_packets: int = 0
    input_bytes: int = 0
    output_packets: int = 0
    output_bytes: int = 0
    output_records: int = 0
    input_delta_bytes: int = 0
    output_delta_bytes: int = 0
    seconds: float = 0.0

    @property
    def ratio(self) -> float:
        """The honest compression ratio: input records per output row."""
        return self.input_records / self.output_rows if self.output_rows else 0.0

    @property
    def notebook_ratio(self) -> float:
        """The seed notebook's figure: records in multi-record keys per multi-record key (runts left out)."""
        return self.records_in_multi_record_keys / self.multi_record_keys if self.multi_record_keys else 0.0

    def conserved(self) -> bool:
        return (self.output_records, self.output_packets, self.output_bytes) == (
            self.input_records,
            self.input_packets,
            self.input_bytes,
        )

    def text(self) -> str:
        runts = self.runts_accept + self.runts_reject + self.runts_other
        table = "conversations" if self.bidirectional else "flows"
        rng = f"{self.date_from or 'start'} .. {self.date_to or 'end'}"
        return "\n".join(
            [
                f"dedup {rng}, window {self.window}{', bidirectional' if self.bidirectional else ''}",
                f"  key            {', '.join(self.key)}",
                f"  input records  {self.input_records:,} data records (+ NODATA {self.nodata:,}, "
                f"SKIPDATA {self.skipdata:,} counted in dedup_status_counts)",
                f"  output rows    {self.output_rows:,} -> {table}",
                f"  ratio          {self.ratio:,.2f}x input records per output row "
                f"(the notebook's multi-record-only figure: {self.notebook_ratio:,.2f}x)",
                f"  runts          {runts:,} keys with one record (ACCEPT {self.runts_accept:,}, "
                f"REJECT {self.runts_reject:,}, other {self.runts_other:,})",
                f"  conservation   records {self.output_records:,}/{self.input_records:,}, packets "
                f"{self.output_packets:,}/{self.input_packets:,}, bytes {self.output_bytes:,}/{self.input_bytes:,}: "
                f"{'OK' if self.conserved() else 'MISMATCH'}",
                f"  delta bytes    flow_records {self.input_delta_bytes:,}, {table} {self.output_delta_bytes:,}",
                f"  seconds        {self.seconds:.1f}",
            ]
        )


# Compaction keeps one hash-table entry per distinct flow, and most flows are distinct (80-96% of keys
# hold one record), so the hash tables grow with the input. With Spark's default 128 MB input splits and
# 4 shuffle partitions they outgrew a 2 GB driver and spilled to disk: 10 M records took 34 s to a no-op
# sink, against 14 s with 16 MB splits and one shuffle partition per 16 MB of input (measured, no spill).
DEDUP_SPLIT_BYTES = 16 * 1024 * 1024


def dedup_conf(cfg: Config, input_bytes: int) -> dict[str, str]:
    """SQL confs for a compaction over `input_bytes` of flow_records: small splits, enough partitions."""
    partitions = max(cfg.spark.shuffle_partitions, -(-input_bytes // DEDUP_SPLIT_BYTES))
    return {
        "spark.sql.files.maxPartitionBytes": str(DEDUP_SPLIT_BYTES),
        "spark.sql.shuffle.partitions": str(partitions),
        # Adaptive execution would coalesce those partitions back into a few big (spilling) ones.
        "spark.sql.adaptive.coalescePartitions.enabled": "false",
    }


def run_dedup(
    spark: SparkSession,
    cfg: Config,
    lake: str,
    date_from: dt.date | None = None,
    date_to: dt.date | None = None,
    window: str | None = None,
    key: list[str] | None = None,
    bidirectional: bool = False,
) -> DedupSummary:
    from flowspark import dedup

    t0 = time.time()
    window = window or cfg.dedup.window
    key = dedup.validate_key(key or list(cfg.dedup.key))
    dedup.window_seconds(window)
    summary = DedupSummary(
        lake=lake,
        window=window,
        key=key,
        bidirectional=bidirectional,
        date_from=date_from.isoformat() if date_from else None,
        date_to=date_to.isoformat() if date_to else None,
    )
    records = tables.in_dates(tables.read(spark, lake, tables.FLOW_RECORDS), date_from, date_to)
    summary.input_delta_bytes = tables.size_bytes(spark, lake, tables.FLOW_RECORDS)
    with tables.session_conf(spark, dedup_conf(cfg, summary.input_delta_bytes)):
        null = [] if bidirectional else dedup.null_columns(records, dedup.CARRIED)
        obs_in, obs_out = Observation("dedup_in"), Observation("dedup_out")
        observed_in = records.observe(obs_in, *dedup.input_totals())
        if bidirectional:
            out = observed_in.transform(dedup.bidirectional(window))
            out_for_totals = out.withColumn("packets", F.col("request_packets") + F.col("response_packets")).withColumn(
                "bytes", F.col("request_bytes") + F.col("response_bytes")
            )
            observed_out = out_for_totals.observe(obs_out, *dedup.output_totals()).drop("packets", "bytes")
            table = tables.CONVERSATIONS
        else:
            out = observed_in.transform(dedup.compact(window, key, null=null))
            observed_out = out.observe(obs_out, *dedup.output_totals())
            table = tables.FLOWS
        before = tables.version(spark, lake, table)
        tables.replace_dates(observed_out, lake, table, "event_date", date_from, date_to, partition_by=["event_date"])
        mi, mo = obs_in.get, obs_out.get
        summary.input_records, summary.nodata, summary.skipdata = (
            int(mi["in_records"]),
            int(mi["nodata"]),
            int(mi["skipdata"]),
        )
        summary.input_packets, summary.input_bytes = int(mi["in_packets"] or 0), int(mi["in_bytes"] or 0)
        summary.output_rows, summary.output_records = int(mo["out_rows"]), int(mo["out_records"] or 0)
        summary.output_packets, summary.output_bytes = int(mo["out_packets"] or 0), int(mo["out_bytes"] or 0)
        for k in ("runts_accept", "runts_reject", "runts_other", "multi_record_keys", "records_in_multi_record_keys"):
            setattr(summary, k, int(mo[k] or 0))
        written = int(tables.last_operation_metrics(spark, lake, table).get("numOutputRows", -1))
        if not summary.conserved() or written != summary.output_rows:
            tables.undo_to(spark, lake, table, before)  # leave the table as it was, then fail loudly
            raise ReconciliationError(
                f"dedup did not conserve the input: {summary.text()}\n  Delta wrote {written} rows"
            )
        status = tables.in_dates(tables.read(spark, lake, tables.FLOW_RECORDS), date_from, date_to)
        tables.replace_dates(
            status.transform(dedup.status_counts(window)),
            lake,
            tables.DEDUP_STATUS_COUNTS,
            "event_date",
            date_from,
            date_to,
            partition_by=None,
        )
    summary.output_delta_bytes = tables.size_bytes(spark, lake, table)
    summary.seconds = time.time() - t0
    stats = {k: v for k, v in asdict(summary).items() if k != "key"}
    stats.update(
        key=",".join(key),
        ratio=summary.ratio,
        notebook_ratio=summary.notebook_ratio,
        computed_at=dt.datetime.now(dt.timezone.utc).replace(tzinfo=None),
    )
    tables.append(_one_row(spark, stats), lake, tables.DEDUP_STATS)
    return summary
