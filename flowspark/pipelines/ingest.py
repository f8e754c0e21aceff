"""The ingest job: raw objects (folder or S3) -> flow_records (optional), flows, flow_rejects, the ledger.

read (discover objects, skip those in the ledger) -> parse once on the executors (core.lines, kept in Spark's
cache for the run) -> write flow_records and flow_rejects -> reconcile -> merge the claim's records into flows
-> mark the claim done with each object's outcome -> summary.

Exactly once, whatever happens (crash at any point, rerun, runs at the same time, rewritten objects)
-----------------------------------------------------------------------------------------------------
An object's identity is its canonical path + size + modification time (on S3 the LastModified of the PUT,
new at every rewrite even with the same size). The ledger `ingested_files` (pipelines/ledger.py) holds
claims: one row per object and claim (ingest_id), state claimed -> done, or claimed -> aborted -> void. A run:

1. reads the ledger once: every claim not done, and the rows of the objects it found. It resumes every
   claim not done whose objects lie under its source (a crashed run's, or one still going) with the
   claim's own ingest_id: step 3 below. A claim whose object changed or vanished is undone (6).
2. claims the objects it found that no claim holds and whose identity is not done (with --force: done
   ones too), with ONE insert-only MERGE into the ledger under a fresh ingest_id. Whether an object is
   claimed is decided inside the MERGE against the snapshot it commits on: not if its path has a claim
   not done, not if it is a first claim and the path is in the ledger at all, not (without --force) if
   its identity is done. A path the ledger knows in any state is claimed as a replacement.
3. completes the claim: reads its objects once, then writes flow_records (unless [storage] keep_records is
   false) and flow_rejects, each with Delta's idempotent write (txnAppId = ingest_id, txnVersion = 1,
   userMetadata = '<ingest_id> <attempt>'). A replacement writes flow_records with replaceWhere
   `source_file IN (its objects)`: the rows of every earlier version go in the commit that adds the new ones.
4. reconciles with what the tables hold for the claim: record lines read = valid records + rows in
   flow_rejects, and flow_records holds the valid records (when kept). On a mismatch the claim is undone (6)
   and the run fails.
5. merges the claim's records into flows (pipelines/flows.py: one commit, the claim's txnAppId; a
   replacement rebuilds the days of its objects' old and new rows from flow_records instead), checks what
   that commit added against the claim's totals, then marks the claim done in ONE MERGE that also stores
   each object's outcome (counts, days, why it broke) and checks every object was marked.
6. undo of a claim: claimed -> aborted (conditional UPDATE), then a fence in flows (an empty write with the
   claim's txnAppId): if a real merge of the claim committed first, the claim cannot be undone and is
   completed instead (aborted -> done); else the same fence in flow_records and flow_rejects, a DELETE of
   its rows (`ingest_id` = it), then aborted -> void. A crash in the middle is finished by the next run.

Delta behaviours this rests on (tests/test_exactly_once.py checks each on the Delta line it runs on;
verified on Delta 4.0.1 and 3.3.2): (a) a commit is atomic; (b) a write whose (txnAppId, txnVersion) the
table has committed is skipped, an empty one included, and of two concurrent writes with one txnAppId
the second fails (ConcurrentTransactionException); (c) two concurrent transactions that read the ledger
(insert-only MERGE, conditional UPDATE or MERGE: they read the whole unpartitioned table) cannot both
commit: the second fails (ConcurrentAppendException / ConcurrentDeleteReadException) and is run again,
deciding anew; (d) overwrite with replaceWhere removes the matching rows in the same commit, and a
concurrent commit that adds or removes rows matching it makes it fail (then it is built again).
(c) and (d) need a log store with mutual exclusion: local and HDFS file systems; on S3 from several Spark
drivers at once only with Delta's S3DynamoDBLogStore (S3 from one driver at a time needs nothing).

Invariants, with why each holds:
- (L) a path has at most one claim not done (claimed or aborted): by (c), claims and state changes are
  serial, and a claim is refused while the path has one.
- (W) each table holds the rows of a claim J from at most one commit: (b).
- (F) once J is done or undone, no run can add rows of J: done requires J's (txnAppId, 1) committed in
  flow_rejects and flows (and flow_records when kept: all are always written, empty or not); undo commits
  the fences first; by (b) any later write of J is skipped. done and aborted exclude each other by (c).
- (M) flows holds J's records at most once: J's merge is one commit (W); an undo never runs after it
  (the fence tells), and a replacement's old rows leave flows with their days' rebuild.
- (R) after J's commit to flow_records, the rows of each of J's paths are J's rows and nothing else: a first
  claim's path had no ledger row, so no claim ever wrote it; a replacement's commit removed every earlier
  row of the path (d), and every earlier claim of the path is done or void (L), so fenced (F).
Crash at any point: before the claim commits, nothing changed; after, the claim is pending and the next
run completes it with the same ingest_id: commits already made are skipped (b), the rest are made, the
objects have the same identity (else it is undone, or completed if its merge committed), so the tables are
those one clean run writes. Two runs at once: their claims are serial (c); the loser's MERGE finds the
objects claimed and claims nothing, then resumes the winner's claim: by (W) whichever commits first wins
each table and the other's write is skipped, so both end with exit 0 and no duplicate.

--force reads the objects again even if they are done and replaces their rows (a replacement claim):
the lake ends as after one clean ingest of the objects as they are now, never with their rows twice. A
lake that keeps no flow_records cannot take an object's old rows out of flows: there --force is refused,
and an object rewritten after its ingest is reported in the summary and not read again.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
import uuid
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import StringType, StructField, StructType

from flowspark.core import dedup
from flowspark.core import lines as ing
from flowspark.core.schema import (
    DEFAULT_FORMAT,
    EVENT_DATE,
    SOURCE_FILE,
    SOURCE_LINE,
    WEIGHT,
    column_of,
    parse_format,
    record_schema,
    reject_schema,
)
from flowspark.edges import hooks, tables
from flowspark.edges.config import Config, ConfigError
from flowspark.edges.sources import S3Access, SourceFile, canonical, discover, read_objects
from flowspark.pipelines import flows, ledger
from flowspark.pipelines.common import ReconciliationError
from flowspark.pipelines.ledger import INGEST_ID, IngestConflictError, Run

log = logging.getLogger("flowspark")
__all__ = ["IngestConflictError", "IngestSummary", "run_ingest", "FAULT_POINTS"]

_ROUNDS = 6  # resume / plan / claim rounds of one run (another run's fresh claims are resumed in the next)
# The crash points, in the order a claim passes them (tests/test_exactly_once.py kills a run at each).
FAULT_POINTS = ("after_claim", "reading", "after_records", "after_rejects", "after_flows", "after_done")


@dataclass
class IngestSummary:
    ingest_id: str
    source: str
    lake: str
    keep_records: bool = True
    files_found: int = 0
    files_skipped: int = 0  # found, not read by this run: ingested already (same path, size, mtime)
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
    rows_written: int = 0  # valid records: the rows flow_records holds for the run (when it keeps them)
    as_flows: bool = False
    weighed: int = 0  # with as_flows: the data records the valid events stand for (their OCSF count)
    flow_rows: int = 0  # rows of flows in the windows the run's records fell in, after its merge
    windows: int = 0  # those windows
    # Objects that could not be read to their end (their good lines count above), and objects read whole
    # that hold no record line (header-only, blank): not errors.
    objects_rejected: int = 0
    files_without_records: int = 0
    broken: list = field(default_factory=list)  # (source_file, reason, last_good_line) of this run
    rewritten: list = field(default_factory=list)  # objects rewritten after their ingest, not read again
    seconds: float = 0.0
    dates: list = field(default_factory=list)  # the event_date days this run wrote rows for (YYYY-MM-DD)
    resumed: list = field(default_factory=list)  # other runs' unfinished claims this run completed
    # Header field names that are not flow log fields (a typo in a flow log's format, a field newer than this
    # flowspark): name -> objects. Their values go to extra_fields; the columns they were meant for stay NULL.
    unknown_fields: dict = field(default_factory=dict)

    def unknown_text(self) -> str:
        """'srcadr (3 objects; srcaddr?), ...': the unknown names, with the known name each is closest to."""
        parts = []
        for name, n in sorted(self.unknown_fields.items()):
            near = ing.nearest_field(name)
            parts.append(f"{name} ({n:,} object{'s' if n != 1 else ''}" + (f"; {near}?)" if near else ")"))
        return ", ".join(parts)

    def reconciled(self) -> bool:
        return self.records == self.rows_written + self.rejected

    def unusable(self) -> str | None:
        """Why a run that read objects got no record out of any of them (every object broken, or every line
        rejected: not flow logs, or the wrong --format), else None. The CLI exits 3 on it: a scheduled run
        that read nothing usable is not a success."""
        if not self.files_read or self.rows_written:
            return None
        if self.objects_rejected == self.files_read:
            first = self.broken[0] if self.broken else ("?", "?", 0)
            return (
                f"none of the {self.files_read:,} objects read could be read as flow logs (first: {first[0]}: "
                f"{first[1]}); their reasons are in ingested_files (problem): check the source prefix"
            )
        if self.rejected:
            return (
                f"no valid record in the {self.files_read:,} objects read: all {self.rejected:,} record lines were "
                "rejected (flow_rejects has each reason): check the source prefix, or --format for headerless objects"
            )
        return None

    def text(self) -> str:
        rate = self.records / self.seconds if self.seconds else 0.0
        kept = "-> flow_records" if self.keep_records else "(flow_records not kept: [storage] keep_records)"
        lines = [
            f"ingest {self.ingest_id}",
            f"  source         {self.source}",
            f"  lake           {self.lake}",
            f"  files          {self.files_read:,} read ({self.text_files:,} text, {self.parquet_files:,} parquet), "
            f"{self.files_skipped:,} already ingested, {self.files_found:,} found"
            + (f"; {self.files_without_records:,} without records" if self.files_without_records else ""),
            f"  objects rejected {self.objects_rejected:,}"
            + (" -> ingested_files (problem; their good lines are ingested)" if self.objects_rejected else ""),
            f"  lines          {self.lines:,} ({self.headers:,} headers, {self.blank_lines:,} blank)",
            f"  records        {self.records:,} (NODATA {self.nodata:,}, SKIPDATA {self.skipdata:,})",
            f"  rejected       {self.rejected:,}" + (" -> flow_rejects" if self.rejected else ""),
            f"  rows written   {self.rows_written:,} {kept}",
            f"  flows          {self.flow_rows:,} rows in the {self.windows:,} windows the records fall in (merged)",
            f"  check          records {self.records:,} = written {self.rows_written:,} + rejected "
            f"{self.rejected:,}: {'OK' if self.reconciled() else 'MISMATCH'}",
            f"  seconds        {self.seconds:.1f} ({rate:,.0f} records/s)",
        ]
        if self.as_flows:
            lines.insert(
                9,
                f"  as flows       {self.weighed:,} records in those events' OCSF count -> flows (flow_records not "
                "kept: aggregates are not records)",
            )
        if self.unknown_fields:
            lines.insert(
                5,
                f"  unknown fields {self.unknown_text()}: not flow log field names; their values are in "
                "extra_fields and the columns they were meant for are NULL (check the flow log's format)",
            )
        if self.rewritten:
            lines.insert(
                5,
                f"  rewritten      {len(self.rewritten):,} objects changed after their ingest, not read again: this "
                "lake keeps no flow_records to take their old rows out of flows (first: " + self.rewritten[0] + ")",
            )
        if self.resumed:
            lines.insert(3, f"  resumed        {', '.join(self.resumed)} (unfinished claims of other runs)")
        if not self.files_read and not self.resumed:
            why = (
                f"all {self.files_found:,} objects found are ingested already"
                if self.files_found
                else "no flow log objects found under the source"
            )
            lines.insert(1, f"  nothing to do  {why}")
        return "\n".join(lines)


def records_of(parsed: DataFrame, drop: Sequence[str] = (), weighted: bool = False) -> DataFrame:
    """The valid records of a parsed frame, in the flow_records schema; the `drop` columns ([ingest]
    drop_fields, by AWS or column name) NULL. weighted: with the WEIGHT of each (OCSF aggregates), for the
    flows merge only."""
    dropped = {column_of(d) or d for d in drop}
    types = {f.name: f.dataType for f in record_schema().fields}
    return parsed.where(F.col("kind") == ing.RECORD).select(
        *[F.lit(None).cast(types[c]).alias(c) if c in dropped else F.col(c) for c in ing.RECORD_COLUMNS],
        *([F.col(WEIGHT)] if weighted else []),
    )


def rejects_of(parsed: DataFrame, ingest_id: str) -> DataFrame:
    """The rejected lines of a parsed frame, in the flow_rejects schema."""
    return parsed.where(F.col("kind") == ing.REJECT).select(
        F.col(SOURCE_FILE),
        F.col(SOURCE_LINE).alias("line_number"),
        F.col("raw_line"),
        F.col("reason"),
        F.lit(ingest_id).alias(INGEST_ID),
    )


def _records_schema() -> StructType:
    return StructType([*record_schema().fields, StructField(INGEST_ID, StringType(), True)])


def _fault(point: str, reading: bool = False) -> None:
    """A crash point of the exactly-once tests (edges/hooks.py: armed only with FLOWSPARK_TEST_HOOKS too):
    FLOWSPARK_FAULT=<point> SIGKILLs this process here; with reading, once a read task of the next Spark job
    holds (the read tasks hold under this fault: a kill in the middle of a read)."""
    if reading:
        hooks.fault_when_reading(point)
    else:
        hooks.fault(point)


def _prepare_tables(run: Run, defn: flows.FlowsDefinition) -> None:
    """The ledger, flow_records (when kept, or there already), flow_rejects and flows exist, so a claim can
    always be fenced; a lake from an older flowspark gets the columns claims need."""
    spark, lake = run.spark, run.lake
    ledger.prepare(spark, lake)
    if run.keep_records or tables.exists(spark, lake, tables.FLOW_RECORDS):
        tables.create_table_once(spark, lake, tables.FLOW_RECORDS, _records_schema(), partition_by=[EVENT_DATE])
        # a lake of an older flowspark: the columns of newer fields (version 11's) and of the claims
        columns = {f.name: f.dataType.simpleString() for f in _records_schema().fields}
        tables.add_columns(spark, lake, tables.FLOW_RECORDS, columns)
    tables.create_table_once(spark, lake, tables.FLOW_REJECTS, reject_schema())
    flows.ensure_table(spark, lake, defn)
    flows_columns = {f.name: f.dataType.simpleString() for f in flows.flows_schema(spark, defn).fields}
    tables.add_columns(spark, lake, tables.FLOWS, flows_columns)


# ---------------------------------------------------------------- one pass over a claim's objects


def _per_object(parsed: DataFrame, seconds: int | None, candidates: list[str]) -> list[Any]:
    """What the claim's objects hold, one row per object (bounded by the claim's objects): its outcome
    (ledger.OUTCOME's counts, days, problem), the windows and totals of its data records, and how many of
    them hold a value in each key and carried column (`nn_<column>`)."""
    kind, status = F.col("kind"), F.col("log_status")
    record = kind == ing.RECORD
    data = record & (F.coalesce(status, F.lit("OK")) == "OK")
    obj = kind == ing.OBJECT
    window = F.struct(F.col(EVENT_DATE), dedup.window_start(F.col("start"), seconds).alias("window_start"))
    aggs: list[Column] = [
        F.coalesce(F.sum(ing.OBJECT_LINES), F.lit(0)).alias("lines"),
        F.coalesce(F.sum(ing.OBJECT_HEADERS), F.lit(0)).alias("headers"),
        F.coalesce(F.sum(ing.OBJECT_BLANK), F.lit(0)).alias("blank_lines"),
        F.count(F.when(kind.isin(ing.RECORD, ing.REJECT), 1)).alias("records"),
        F.count(F.when(kind == ing.REJECT, 1)).alias("rejected"),
        F.count(F.when(record & (status == "NODATA"), 1)).alias("nodata"),
        F.count(F.when(record & (status == "SKIPDATA"), 1)).alias("skipdata"),
        F.count(F.when(record, 1)).alias("rows_written"),
        F.max(F.when(obj, F.col("reason"))).alias("problem"),
        F.max(F.when(obj, F.col(SOURCE_LINE))).alias("last_good_line"),
        F.max(F.when(obj, F.col(ing.OBJECT_UNKNOWN))).alias("unknown_fields"),
        F.array_sort(F.collect_set(F.when(record, F.col(EVENT_DATE)))).alias("days"),
        F.collect_set(F.when(data, window)).alias("windows"),
        F.coalesce(F.sum(F.when(data, F.coalesce(F.col(WEIGHT), F.lit(1)))), F.lit(0)).alias("data_records"),
        F.coalesce(F.sum(F.when(data, F.col("packets"))), F.lit(0)).alias("data_packets"),
        F.coalesce(F.sum(F.when(data, F.col("bytes"))), F.lit(0)).alias("data_bytes"),
        *[F.count(F.when(data, F.col(c))).alias(f"nn_{c}") for c in candidates],
    ]
    return parsed.groupBy(SOURCE_FILE).agg(*aggs).collect()


@dataclass
class _Read:
    """A claim's objects as read: per-object outcomes and what the flows merge needs."""

    outcomes: dict[str, dict[str, Any]]
    windows: list[tuple[dt.date, dt.datetime | None]]
    nonnull: set[str]
    totals: tuple[int, int, int]  # data records, packets, bytes
    unknown: dict[str, list[str]]  # object -> the field names of its header that are not flow log fields


def _summarise(rows: list[Any], candidates: list[str]) -> _Read:
    outcome_fields = [f.name for f in ledger.OUTCOME.fields if f.name != "done_at"]
    outcomes, windows, nonnull, unknown = {}, set(), set(), {}
    totals = [0, 0, 0]
    for r in rows:
        outcomes[r[SOURCE_FILE]] = {k: r[k] for k in outcome_fields}
        if r["unknown_fields"]:
            unknown[r[SOURCE_FILE]] = r["unknown_fields"].split(" ")
        windows.update((w["event_date"], _utc(w["window_start"])) for w in r["windows"])
        nonnull.update(c for c in candidates if r[f"nn_{c}"])
        totals = [totals[0] + r["data_records"], totals[1] + r["data_packets"], totals[2] + r["data_bytes"]]
    order = sorted(windows, key=lambda w: (w[0] or dt.date.min, w[1] or dt.datetime.min))
    return _Read(outcomes, order, nonnull, tuple(totals), unknown)  # type: ignore[arg-type]


def _utc(value: dt.datetime | None) -> dt.datetime | None:
    """A collected timestamp (a naive local datetime) as the naive UTC wall time it stands for."""
    if value is None:
        return None
    return value.astimezone(dt.timezone.utc).replace(tzinfo=None)


def _complete(run: Run, claim: ledger.Claim, defn: flows.FlowsDefinition) -> IngestSummary:
    """Read a claim's objects once and write its rows, each table at most once (txnAppId = claim id);
    reconcile against what the tables hold for the claim; merge it into flows; mark it done with each
    object's outcome. Whoever runs this for a claim, and however often, the tables end the same."""
    spark, lake, cfg = run.spark, run.lake, run.cfg
    claim_id, objs = claim.claim_id, claim.objects
    t0 = time.time()
    part = IngestSummary(
        ingest_id=claim_id, source=run.source, lake=lake, keep_records=run.keep_records, as_flows=run.as_flows
    )
    parquet_files = [f for f in objs if f.path.endswith(cfg.ingest.parquet_suffixes)]
    part.files_read, part.parquet_files = len(objs), len(parquet_files)
    part.text_files = len(objs) - len(parquet_files)
    log.info("ingest %s: %d files (%d text, %d parquet)", claim_id, len(objs), part.text_files, len(parquet_files))
    # A replacement removes every row of its objects' earlier versions in the commit that adds the new ones.
    where = ledger.paths_predicate(sorted({canonical(f.path) for f in objs})) if claim.replaces else None
    candidates = [c for c in [*dedup.effective_key(list(defn.key)), *dedup.CARRIED] if c not in dedup.AGGREGATES]

    s3 = S3Access.from_config(cfg.s3)
    parsed = read_objects(spark, objs, s3, run.fmt, cfg.ingest.parquet_suffixes, run.as_flows)
    # Parsed once, kept as a Delta table (Parquet) in the lake's scratch folder and read from there by the
    # per-object counts, the writes and the flows merge (each only its columns). Spark's cache held the same
    # rows in ~9x the bytes (it stores the position of every null, and a record has ~40 mostly empty
    # columns): 2.5 GB written and read three times at 10 M records, against 0.27 GB of Parquet; and
    # MEMORY_AND_DISK read a spilled partition back whole into the heap ("Java heap space", 10 M, 2 GB driver).
    scratch = tables.scratch_path(lake, claim_id, run.token)
    try:
        _fault("reading", reading=True)
        parsed = tables.spill(parsed, scratch)
        read = _summarise(_per_object(parsed, defn.seconds, candidates), candidates)
        _count(part, objs, read)
        if run.as_flows:
            part.weighed = read.totals[0]
        records = records_of(parsed, cfg.ingest.drop_fields, run.as_flows).withColumn(INGEST_ID, F.lit(claim_id))
        if run.keep_records:
            tables.write_once(
                records,
                lake,
                tables.FLOW_RECORDS,
                claim_id,
                run.token,
                replace_where=where,
                partition_by=[EVENT_DATE],
                max_records_per_file=cfg.ingest.max_records_per_file,
                storage=cfg.storage,
            )
        _fault("after_records")
        # Always written, empty or not: a claim's (txnAppId, 1) committed in flow_rejects fences late writers.
        rejects = rejects_of(parsed, claim_id)
        tables.write_once(rejects, lake, tables.FLOW_REJECTS, claim_id, run.token, replace_where=where)
        _fault("after_rejects")
        _reconcile(run, claim_id, part, len(objs), len(read.outcomes))
        if claim.replaces:
            days = sorted({*claim.replaced_days, *_days(part)})
            merged = flows.rebuild_days(spark, lake, claim_id, run.token, days, defn, cfg.storage)
        else:
            merged = flows.merge_claim(
                spark, lake, claim_id, run.token, records, read.windows, read.nonnull, read.totals, defn, cfg.storage
            )
        part.flow_rows, part.windows = merged.rows, len(read.windows)
        _fault("after_flows")
    finally:
        tables.remove(spark, scratch)
    if not ledger.mark_done(run, claim_id, read.outcomes) and ledger.states(run, claim_id) != {ledger.DONE}:
        raise IngestConflictError(f"ingest {claim_id} was undone by another run (its objects changed): rerun")
    _fault("after_done")
    part.seconds = time.time() - t0
    for path, why, line in part.broken:
        log.warning("object rejected after line %d: %s: %s", line, path, why)
    return part


def _days(part: IngestSummary) -> list[dt.date]:
    return [dt.date.fromisoformat(d) for d in part.dates]


def _count(part: IngestSummary, objs: list[SourceFile], read: _Read) -> None:
    """A claim's summary counts from its objects' outcomes."""
    for k in ("lines", "headers", "blank_lines", "records", "rejected", "nodata", "skipdata", "rows_written"):
        setattr(part, k, sum(int(o[k] or 0) for o in read.outcomes.values()))
    part.broken = sorted(
        (path, o["problem"], int(o["last_good_line"] or 0)) for path, o in read.outcomes.items() if o["problem"]
    )
    part.objects_rejected = len(part.broken)
    part.files_without_records = sum(1 for o in read.outcomes.values() if not o["records"] and not o["problem"])
    part.dates = sorted({d.isoformat() for o in read.outcomes.values() for d in (o["days"] or [])})
    for names in read.unknown.values():
        for name in names:
            part.unknown_fields[name] = part.unknown_fields.get(name, 0) + 1


def _reconcile(run: Run, claim_id: str, part: IngestSummary, n_objects: int, n_read: int) -> None:
    """What the tables hold for the claim, whichever attempt wrote it: flow_rejects holds its rejected lines,
    flow_records (when kept) its valid records, and every object was read. Else the claim is undone."""
    spark, lake = run.spark, run.lake
    written = -1
    if run.keep_records:
        written = tables.read(spark, lake, tables.FLOW_RECORDS).where(ledger.is_claim(claim_id)).count()
    written_rejects = tables.read(spark, lake, tables.FLOW_REJECTS).where(ledger.is_claim(claim_id)).count()
    ok = part.reconciled() and written_rejects == part.rejected and n_read == n_objects
    if run.keep_records:
        ok = ok and written == part.rows_written
    if not ok:
        _undo(run, claim_id, "reconciliation failed")
        held = f"{written} rows in flow_records, " if run.keep_records else ""
        raise ReconciliationError(
            f"ingest {claim_id} does not reconcile: {part.records} record lines read, {part.rows_written} valid, "
            f"{part.rejected} rejected; the tables hold {held}{written_rejects} reject rows; {n_read} of "
            f"{n_objects} objects read. Its rows were removed: rerun to ingest these objects again"
        )


# ---------------------------------------------------------------- undo


def _undo(run: Run, claim_id: str, why: str | None) -> bool:
    """Abort a claim (`why`: claimed -> aborted now; None: finish an abort a crash interrupted) and remove
    its rows, fencing each table first. False if it cannot be undone: it was done first, or a real merge of
    it into flows committed (then it is completed, aborted -> done)."""
    spark, lake = run.spark, run.lake
    if why is not None:
        if not ledger.set_state(run, claim_id, ledger.CLAIMED, ledger.ABORTED):
            return False  # done first (or aborted by another run, which finishes the undo)
        log.warning("ingest %s undone: %s", claim_id, why)
    defn = flows.definition(spark, run.cfg, lake)
    if not flows.fence(spark, lake, claim_id, run.token, defn):
        ledger.set_state(run, claim_id, ledger.ABORTED, ledger.DONE)
        log.warning("ingest %s: its merge into flows had committed, so it is complete (not undone)", claim_id)
        return False
    for name in (tables.FLOW_RECORDS, tables.FLOW_REJECTS, "rejected_objects", "ingest_stats"):
        if not tables.exists(spark, lake, name):
            continue
        tables.write_once(tables.read(spark, lake, name).limit(0), lake, name, claim_id, run.token)
        tables.delete_where(spark, lake, name, ledger.is_claim(claim_id))
    ledger.set_state(run, claim_id, ledger.ABORTED, ledger.VOID)
    return True


# ---------------------------------------------------------------- the run


def _add(total: IngestSummary, part: IngestSummary) -> None:
    """Sum a claim's counts into the run's summary."""
    for k, v in asdict(part).items():
        if k in ("files_found", "files_skipped", "seconds") or not isinstance(v, int) or isinstance(v, bool):
            continue
        setattr(total, k, getattr(total, k) + v)
    total.broken = sorted([*total.broken, *part.broken])
    total.dates = sorted({*total.dates, *part.dates})
    for name, n in part.unknown_fields.items():
        total.unknown_fields[name] = total.unknown_fields.get(name, 0) + n
    if part.ingest_id != total.ingest_id:
        total.resumed.append(part.ingest_id)


def _replaced_days(run: Run, todo: list[tuple[SourceFile, bool]]) -> dict[str, list]:
    """The days the earlier rows of the replaced objects are in (their flows are rebuilt): one read of
    flow_records, for replacements only."""
    paths = sorted({canonical(f.path) for f, replaces in todo if replaces})
    if not paths or not tables.exists(run.spark, run.lake, tables.FLOW_RECORDS):
        return {}
    rows = (
        tables.read(run.spark, run.lake, tables.FLOW_RECORDS)
        .where(ledger.paths_predicate(paths))
        .groupBy(SOURCE_FILE)
        .agg(F.array_sort(F.collect_set(EVENT_DATE)).alias("days"))
        .collect()  # bounded by the replaced objects
    )
    return {r[SOURCE_FILE]: list(r["days"]) for r in rows}


def as_flows_refusal(lake: str, keep_records: bool | None, has_records: bool) -> str | None:
    """Why `--as-flows` cannot load into this lake (None: it can). Aggregates go into flows only: a lake that
    keeps flow_records would no longer hold every record of its flows (and `flowspark dedup` would rebuild
    flows from flow_records without them)."""
    if keep_records:
        return "--as-flows loads aggregate events into flows only (they are not records): leave out --keep-records"
    if has_records:
        return (
            f"--as-flows loads aggregates into flows only, and {lake} keeps flow_records (flowspark dedup would "
            "rebuild its flows without them): load them into a lake of their own"
        )
    return None


def run_ingest(
    spark: SparkSession,
    cfg: Config,
    source: str,
    lake: str,
    date_from: dt.date | None = None,
    date_to: dt.date | None = None,
    fmt: str | None = None,
    force: bool = False,
    keep_records: bool | None = None,
    as_flows: bool = False,
) -> IngestSummary:
    """Ingest every object under `source` (in the date range) exactly once; see the module docstring.

    force: read the objects again even if the ledger has them done, and replace their rows (never append
    them again). keep_records: write flow_records (default: [storage] keep_records). as_flows: OCSF events
    that aggregate records (count > 1: a flows export) go into flows with their counts; such a lake keeps
    no flow_records (aggregates are not records), so it is refused on a lake that has them.
    """
    t0 = time.time()
    hooks.announce()
    if as_flows:
        refused = as_flows_refusal(lake, keep_records, tables.exists(spark, lake, tables.FLOW_RECORDS))
        if refused:
            raise ConfigError(refused)
        keep_records = False
    keep = cfg.storage.keep_records if keep_records is None else keep_records
    if force and not keep:
        raise ConfigError(
            "--force replaces the rows of objects read before, and a lake that keeps no flow_records cannot take "
            "them out of flows; ingest into a lake that keeps records (--keep-records), or a new lake"
        )
    default_format = parse_format(fmt) if fmt else list(DEFAULT_FORMAT)
    summary = IngestSummary(
        ingest_id=uuid.uuid4().hex[:12], source=source, lake=lake, keep_records=keep, as_flows=as_flows
    )
    suffixes = cfg.ingest.text_suffixes + cfg.ingest.parquet_suffixes
    found = discover(spark, source, suffixes, date_from, date_to)
    summary.files_found = len(found)
    if not found and not tables.exists(spark, lake, tables.INGESTED_FILES):
        summary.seconds = time.time() - t0
        log.info("nothing new to ingest")
        return summary
    run = Run(
        spark, cfg, source, lake, default_format, token=uuid.uuid4().hex[:12], keep_records=keep, as_flows=as_flows
    )
    defn = flows.definition(spark, cfg, lake)
    tables.retry_on_conflict(lambda: _prepare_tables(run, defn), "creating the lake's tables")
    for name in tables.remove_stale_scratch(spark, lake):
        log.info("removed %s/%s/%s, the parsed rows of an attempt that ended a day ago", lake, tables.SCRATCH, name)
    by_path = {canonical(f.path): f for f in found}
    handled: set[tuple[str, int, int]] = set()  # identities this run has read (its claims, resumed ones)
    claim_id = summary.ingest_id
    for _ in range(_ROUNDS):
        rows = ledger.read_state(run, found)
        for claim in ledger.pending(run, rows, by_path, lambda j, why: _undo(run, j, why)):
            _add(summary, _complete(run, claim, defn))
            handled.update(ledger.identity(f) for f in claim.objects)
        if summary.resumed:
            rows = ledger.read_state(run, found)
        todo = ledger.plan(rows, found, force, handled) if found else []
        if not keep:  # an object rewritten after its ingest cannot replace its old rows in flows
            summary.rewritten = sorted(canonical(f.path) for f, replaces in todo if replaces)
            todo = [(f, replaces) for f, replaces in todo if not replaces]
        if not todo:
            break
        replaced = _replaced_days(run, todo)
        got, replaces = ledger.claim(run, claim_id, todo, force, replaced)
        _fault("after_claim")
        if got:
            days = sorted({d for f in got for d in replaced.get(canonical(f.path), [])})
            claim = ledger.Claim(claim_id, got, replaces, days)
            _add(summary, _complete(run, claim, defn))
            handled.update(ledger.identity(f) for f in got)
            claim_id = uuid.uuid4().hex[:12]  # a further round's claim is a new one
        if len(got) == len(todo):
            break  # everything planned was claimed and completed by this run
    else:
        raise IngestConflictError(
            f"other ingests kept claiming these objects ({_ROUNDS} rounds); rerun (a rerun converges)"
        )
    summary.files_skipped = sum(1 for f in found if ledger.identity(f) not in handled)
    summary.seconds = time.time() - t0
    if not summary.files_read:
        log.info("nothing new to ingest")
    if summary.unknown_fields:
        log.warning(
            "unknown field names in the objects' headers: %s; their values went to extra_fields, the columns "
            "they were meant for are NULL (check the flow log's format)",
            summary.unknown_text(),
        )
    return summary
