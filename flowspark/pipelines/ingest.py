"""The ingest job: raw objects (folder or S3) -> flow_records, flow_rejects, ingested_files, ingest_stats.

read (discover objects, skip those in the ledger, detect formats) -> parse (core.lines) -> write ->
reconcile (records = rows written + rejected) -> summary.

Exactly once, whatever happens (crash at any point, rerun, runs at the same time, rewritten objects)
-----------------------------------------------------------------------------------------------------
An object's identity is its canonical path + size + modification time (on S3 the LastModified of the PUT,
new at every rewrite even with the same size). The ledger `ingested_files` holds claims: one row per object
and claim (ingest_id), state claimed -> done, or claimed -> aborted -> void. A run:

1. resumes every claim not done whose objects lie under its source (a crashed run's, or one still going),
   with the claim's own ingest_id: step 3 below. A claim whose object changed or vanished is undone (6).
2. claims the objects it found that no claim holds and whose identity is not done (with --force: done
   ones too), with ONE insert-only MERGE into the ledger under a fresh ingest_id. Whether an object is
   claimed is decided inside the MERGE against the snapshot it commits on: not if its path has a claim
   not done, not if it is a first claim and the path is in the ledger at all, not (without --force) if
   its identity is done. A path the ledger knows in any state is claimed as a replacement.
3. completes the claim: reads its objects and writes flow_records, then flow_rejects (even empty), then
   rejected_objects, each with Delta's idempotent write (txnAppId = ingest_id, txnVersion = 1,
   userMetadata = '<ingest_id> <attempt>'). A replacement writes with replaceWhere `source_file IN (its
   objects)`: the rows of every earlier version go in the commit that adds the new ones.
4. reconciles with what the tables hold for the claim (`ingest_id` = the claim: flow_records has that
   column): record lines read = rows in flow_records + rows in flow_rejects. On a mismatch the claim is
   undone (6) and the run fails.
5. writes the claim's ingest_stats row (same txn options), then marks it done: UPDATE ... SET state = 'done'
   WHERE ingest_id = it AND state = 'claimed', and checks that it is done.
6. undo of a claim: UPDATE claimed -> aborted (conditional, as in 5), then in each table an empty write
   with the claim's (txnAppId, 1) (a fence: skipped where the claim committed already), a DELETE of its
   rows (`ingest_id` = it), then aborted -> void. A crash in the middle is finished by the next run.

Delta behaviours this rests on (tests/test_exactly_once.py checks each on the Delta line it runs on;
verified on Delta 4.0.1 and 3.3.2): (a) a commit is atomic; (b) a write whose (txnAppId, txnVersion) the
table has committed is skipped, an empty one included, and of two concurrent writes with one txnAppId
the second fails (ConcurrentTransactionException); (c) two concurrent transactions that read the ledger
(insert-only MERGE, conditional UPDATE: they read the whole unpartitioned table) cannot both commit: the
second fails (ConcurrentAppendException / ConcurrentDeleteReadException) and is run again, deciding
anew; (d) overwrite with replaceWhere on a data column removes the matching rows in the same commit.
(c) needs a log store with mutual exclusion: local and HDFS file systems; on S3 from several Spark
drivers at once only with Delta's S3DynamoDBLogStore (S3 from one driver at a time needs nothing).

Invariants, with why each holds:
- (L) a path has at most one claim not done (claimed or aborted): by (c), claims and state changes are
  serial, and a claim is refused while the path has one.
- (W) each table holds the rows of a claim J from at most one commit: (b).
- (F) once J is done or undone, no run can add rows of J: done requires J's (txnAppId, 1) committed in
  flow_records, flow_rejects and rejected_objects (all three are always written, empty or not);
  undo commits the fence first; by (b) any later write of J is skipped. done and aborted exclude each
  other by (c), and undo deletes only after its UPDATE won.
- (R) after J's commit to flow_records, the rows of each of J's paths are J's rows and nothing else: a first
  claim's path had no ledger row, so no claim ever wrote it; a replacement's commit removed every earlier
  row of the path (d), and every earlier claim of the path is done or void (L), so fenced (F).
Crash at any point: before the claim commits, nothing changed; after, the claim is pending and the next
run completes it with the same ingest_id: commits already made are skipped (b), the rest are made, the
objects have the same identity (else it is undone and they are claimed afresh as replacements), so the
rows are those one clean run writes. Two runs at once: their claims are serial (c); the loser's MERGE
finds the objects claimed and claims nothing, then resumes the winner's claim: by (W) whichever commits
first wins each table and the other's write is skipped, so both end with exit 0 and no duplicate. The
counts of a claim are checked after the fact (4), so a resumed claim is checked like a fresh one.

--force reads the objects again even if they are done and replaces their rows (a replacement claim):
the lake ends as after one clean ingest of the objects as they are now, never with their rows twice.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import threading
import time
import uuid
from dataclasses import asdict, dataclass, field

from pyspark.sql import Column, DataFrame, Observation, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import BooleanType, LongType, StringType, StructField, StructType, TimestampType

from flowspark.core import lines as ing
from flowspark.core.schema import (
    DEFAULT_FORMAT,
    EVENT_DATE,
    SOURCE_FILE,
    SOURCE_LINE,
    parse_format,
    record_schema,
    reject_schema,
)
from flowspark.edges import hooks, tables
from flowspark.edges.config import Config
from flowspark.edges.sources import (
    S3Access,
    SourceFile,
    canonical,
    discover,
    normalise_uri,
    read_objects,
)
from flowspark.pipelines.common import ReconciliationError, one_row, utc_now

log = logging.getLogger("flowspark")


@dataclass
class IngestSummary:
    ingest_id: str
    source: str
    lake: str
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
    rows_written: int = 0
    # Objects that could not be read to their end (-> rejected_objects; their good lines count above),
    # and objects read whole that hold no record line (header-only, blank): not errors.
    objects_rejected: int = 0
    files_without_records: int = 0
    broken: list = field(default_factory=list)  # (source_file, reason, last_good_line) of this run
    seconds: float = 0.0
    dates: list = field(default_factory=list)  # the event_date days this run wrote rows for (YYYY-MM-DD)
    resumed: list = field(default_factory=list)  # other runs' unfinished claims this run completed

    def reconciled(self) -> bool:
        return self.records == self.rows_written + self.rejected

    def text(self) -> str:
        rate = self.records / self.seconds if self.seconds else 0.0
        lines = [
            f"ingest {self.ingest_id}",
            f"  source         {self.source}",
            f"  lake           {self.lake}",
            f"  files          {self.files_read:,} read ({self.text_files:,} text, {self.parquet_files:,} parquet), "
            f"{self.files_skipped:,} already ingested, {self.files_found:,} found"
            + (f"; {self.files_without_records:,} without records" if self.files_without_records else ""),
            f"  objects rejected {self.objects_rejected:,}"
            + (" -> rejected_objects (their good lines are ingested)" if self.objects_rejected else ""),
            f"  lines          {self.lines:,} ({self.headers:,} headers, {self.blank_lines:,} blank)",
            f"  records        {self.records:,} (NODATA {self.nodata:,}, SKIPDATA {self.skipdata:,})",
            f"  rejected       {self.rejected:,}" + (" -> flow_rejects" if self.rejected else ""),
            f"  rows written   {self.rows_written:,} -> flow_records",
            f"  check          records {self.records:,} = written {self.rows_written:,} + rejected "
            f"{self.rejected:,}: {'OK' if self.reconciled() else 'MISMATCH'}",
            f"  seconds        {self.seconds:.1f} ({rate:,.0f} records/s)",
        ]
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


_LEDGER_SCHEMA = StructType(
    [
        StructField(SOURCE_FILE, StringType(), False),
        StructField("size", LongType(), False),
        StructField("modification_time_ms", LongType(), False),
        StructField("ingest_id", StringType(), False),
        StructField("ingested_at", TimestampType(), False),  # when the claim was made
        StructField("state", StringType(), True),  # claimed | done | aborted | void (NULL: done, older lakes)
        StructField("replaces", BooleanType(), True),  # the claim replaces rows of an earlier version
    ]
)
INGEST_ID = "ingest_id"  # flow_records' column naming the claim that wrote each row


def _parsed(spark: SparkSession, cfg: Config, files: list[SourceFile], fmt: list[str]) -> DataFrame:
    """Every record line of these objects and one summary row per object (core.lines.PARSED), read and
    parsed on the executors (sources.read_objects): each object's own first line decides its format."""
    return read_objects(spark, files, S3Access.from_config(cfg.s3), fmt, cfg.ingest.parquet_suffixes)


def records_of(parsed: DataFrame) -> DataFrame:
    """The valid records of a parsed frame, in the flow_records schema."""
    return parsed.where(F.col("kind") == ing.RECORD).select(*ing.RECORD_COLUMNS)


def rejects_of(parsed: DataFrame, ingest_id: str) -> DataFrame:
    """The rejected lines of a parsed frame, in the flow_rejects schema."""
    return parsed.where(F.col("kind") == ing.REJECT).select(
        F.col(SOURCE_FILE),
        F.col(SOURCE_LINE).alias("line_number"),
        F.col("raw_line"),
        F.col("reason"),
        F.lit(ingest_id).alias("ingest_id"),
    )


# ---------------------------------------------------------------- exactly once: claims in the ledger

# Ledger states (column `state`; NULL in rows written by flowspark before claims = done).
CLAIMED, DONE, ABORTED, VOID = "claimed", "done", "aborted", "void"
_LEDGER_NEW_COLUMNS = {"state": "string", "replaces": "boolean"}
_ROUNDS = 6  # resume / plan / claim rounds of one run (another run's fresh claims are resumed in the next)


class IngestConflictError(RuntimeError):
    """This run could not finish because other runs kept claiming or undoing the same objects."""


@dataclass
class _Run:
    spark: SparkSession
    cfg: Config
    source: str
    lake: str
    fmt: list[str]
    token: str  # this process's attempt token in commit userMetadata ('<ingest_id> <token>')


# The crash points, in the order a claim passes them (tests/test_exactly_once.py kills a run at each).
FAULT_POINTS = ("after_claim", "reading", "after_records", "after_rejects", "after_stats", "after_done")


def _fault(point: str, spark: SparkSession | None = None) -> None:
    """A crash point of the exactly-once tests (edges/hooks.py: armed only with FLOWSPARK_TEST_HOOKS too):
    FLOWSPARK_FAULT=<point> SIGKILLs this process here. Given the session, the kill comes from a watcher
    thread once the next Spark job has a task reading (the read tasks hold under this fault: a kill in the
    middle of a read)."""
    if not hooks.fault_armed(point):
        return
    if spark is None:
        hooks.fault(point)
        return
    tracker = spark.sparkContext.statusTracker()

    def watch() -> None:
        reading_since = None
        while True:
            for stage in tracker.getActiveStageIds():
                info = tracker.getStageInfo(stage)
                if info is None:
                    continue
                if info.numCompletedTasks >= 1:
                    hooks.fault(point)
                if info.numActiveTasks >= 1:
                    reading_since = reading_since or time.time()
                    if time.time() - reading_since >= 1.0:
                        hooks.fault(point)
            time.sleep(0.02)

    threading.Thread(target=watch, daemon=True).start()


def _is_claim(claim_id: str) -> str:
    return f"{INGEST_ID} = {tables.sql_string(claim_id)}"


def _paths_predicate(paths: list[str]) -> str:
    return f"{SOURCE_FILE} IN ({', '.join(tables.sql_string(p) for p in paths)})"


def _identity(f: SourceFile) -> tuple[str, int, int]:
    """What names one version of an object: canonical path, size, modification time (S3: LastModified,
    which every PUT sets anew, so a rewrite with the same size is still a new identity)."""
    return (canonical(f.path), int(f.size), int(f.mtime_ms))


def _records_schema() -> StructType:
    return StructType([*record_schema().fields, StructField(INGEST_ID, StringType(), True)])


def _prepare_tables(run: _Run) -> None:
    """The ledger, flow_records and flow_rejects exist (so a claim can always be fenced), with the columns
    claims need (a lake from an older flowspark gets them added: its ledger rows count as done)."""
    spark, lake = run.spark, run.lake
    tables.create_table_once(spark, lake, tables.INGESTED_FILES, _LEDGER_SCHEMA)
    tables.add_columns(spark, lake, tables.INGESTED_FILES, _LEDGER_NEW_COLUMNS)
    tables.create_table_once(spark, lake, tables.FLOW_RECORDS, _records_schema(), partition_by=[EVENT_DATE])
    tables.add_columns(spark, lake, tables.FLOW_RECORDS, {INGEST_ID: "string"})
    tables.create_table_once(spark, lake, tables.FLOW_REJECTS, reject_schema())


def _ledger(run: _Run) -> DataFrame:
    led = tables.read(run.spark, run.lake, tables.INGESTED_FILES)
    return led.withColumn("state", F.coalesce(F.col("state"), F.lit(DONE)))


def _states(run: _Run, claim_id: str) -> set[str]:
    rows = _ledger(run).where(_is_claim(claim_id)).select("state").distinct().collect()
    return {r["state"] for r in rows}


def _under(path: str, source: str) -> bool:
    root = canonical(normalise_uri(source)).rstrip("/")
    return path == root or path.startswith(root + "/")


def _uri(path: str, like: str) -> str:
    """A readable URI for a canonical ledger path (s3:// read the way this run reads its source)."""
    if path.startswith("file:/") and not path.startswith("file:///"):
        return "file://" + path[len("file:") :]
    scheme = normalise_uri(like).split("://", 1)[0]
    if path.startswith("s3://") and scheme in ("s3a", "s3n"):
        return f"{scheme}://" + path[len("s3://") :]
    return path


def _current(run: _Run, path: str, found: dict[str, SourceFile]) -> SourceFile | None:
    """The object at a canonical path as it is now (listing of this run, else one stat), None if gone."""
    if path in found:
        return found[path]
    suffixes = run.cfg.ingest.text_suffixes + run.cfg.ingest.parquet_suffixes
    try:
        got = discover(run.spark, _uri(path, run.source), suffixes)
    except FileNotFoundError:
        return None
    return next((f for f in got if canonical(f.path) == path), None)


def _undo(run: _Run, claim_id: str) -> None:
    """Remove every row a claim wrote, after fencing it: an empty write with its (txnAppId, 1) in each table
    (skipped where it committed already) makes any later write of that claim, by a run still going, a no-op.
    Then the claim is void: its objects are free to be claimed again (as replacements)."""
    spark, lake = run.spark, run.lake
    tables.create_table_once(spark, lake, tables.REJECTED_OBJECTS, _REJECTED_OBJECTS_SCHEMA)
    for name in (tables.FLOW_RECORDS, tables.FLOW_REJECTS, tables.REJECTED_OBJECTS, tables.INGEST_STATS):
        if not tables.exists(spark, lake, name):
            continue
        tables.write_once(tables.read(spark, lake, name).limit(0), lake, name, claim_id, run.token)
        tables.delete_where(spark, lake, name, _is_claim(claim_id))
    cond = f"{_is_claim(claim_id)} AND state = '{ABORTED}'"
    tables.update_where(spark, lake, tables.INGESTED_FILES, cond, {"state": f"'{VOID}'"})


def _abort(run: _Run, claim_id: str, why: str) -> bool:
    """claimed -> aborted (one conditional UPDATE: it and 'claimed -> done' exclude each other), then undo.
    False if the claim was done first: then nothing is undone."""
    cond = f"{_is_claim(claim_id)} AND state = '{CLAIMED}'"
    tables.update_where(run.spark, run.lake, tables.INGESTED_FILES, cond, {"state": f"'{ABORTED}'"})
    if DONE in _states(run, claim_id):
        return False
    log.warning("ingest %s undone: %s", claim_id, why)
    _undo(run, claim_id)
    return True


def _pending(run: _Run, found: dict[str, SourceFile]) -> list[tuple[str, list[SourceFile], bool]]:
    """Claims not done (a crashed run's, or a run still going) whose objects lie under this run's source, with
    their objects as they are now. A claim whose object changed or vanished since it was claimed is undone
    (its objects are then planned afresh); so is the rest of an undo a crash interrupted (idempotent)."""
    rows = (
        _ledger(run)
        .where(F.col("state").isin(CLAIMED, ABORTED))
        .select(SOURCE_FILE, "size", "modification_time_ms", INGEST_ID, "replaces", "state")
        .collect()  # bounded by the objects of unfinished claims
    )
    for claim_id in sorted({r[INGEST_ID] for r in rows if r["state"] == ABORTED}):
        _undo(run, claim_id)
    claims: dict[str, list] = {}
    for r in (r for r in rows if r["state"] == CLAIMED):
        claims.setdefault(r[INGEST_ID], []).append(r)
    out = []
    for claim_id, objs in sorted(claims.items()):
        if not any(_under(r[SOURCE_FILE], run.source) for r in objs):
            continue
        now = [_current(run, r[SOURCE_FILE], found) for r in objs]
        same = all(
            f is not None and _identity(f) == (r[SOURCE_FILE], r["size"], r["modification_time_ms"])
            for f, r in zip(now, objs)
        )
        if not same:
            _abort(run, claim_id, "an object changed or vanished after it was claimed")
            continue
        out.append((claim_id, [f for f in now if f is not None], any(bool(r["replaces"]) for r in objs)))
    return out


def _plan(run: _Run, found: list[SourceFile], force: bool, handled: set) -> list[tuple[SourceFile, bool]]:
    """The objects to claim now, each with whether the lake may hold rows of an earlier version of it.

    Not: an object another claim holds (resumed next round), one this run has read, and (without force)
    one whose identity the ledger has done. A path the ledger knows in any state is a replacement.
    """
    paths = run.spark.createDataFrame([(canonical(f.path),) for f in found], f"{SOURCE_FILE} string")
    rows = (
        _ledger(run)
        .join(F.broadcast(paths), SOURCE_FILE, "left_semi")
        .select(SOURCE_FILE, "size", "modification_time_ms", "state")
        .collect()  # the ledger rows of this run's objects: bounded by them (and their rewrites)
    )
    known: dict[str, list] = {}
    for r in rows:
        known.setdefault(r[SOURCE_FILE], []).append(r)
    todo = []
    for f in found:
        path, size, mtime = _identity(f)
        mine = known.get(path, [])
        busy = any(r["state"] in (CLAIMED, ABORTED) for r in mine)
        done = any(r["state"] == DONE and (r["size"], r["modification_time_ms"]) == (size, mtime) for r in mine)
        if busy or _identity(f) in handled or (done and not force):
            continue
        todo.append((f, bool(mine)))
    return todo


def _claim(run: _Run, claim_id: str, todo: list[tuple[SourceFile, bool]], force: bool) -> tuple[list[SourceFile], bool]:
    """Insert this run's claims in one insert-only MERGE; returns the objects it got and whether any replaces.

    The MERGE decides per object against the snapshot it commits on (so a concurrent claim either is
    visible to it or makes it fail and be retried): no claim if the path has a claim not done
    (claimed, aborted), or if this is a first claim (`replaces` false) and the path is in the ledger at all,
    or (without force) if this identity is done.
    """
    now = utc_now()
    rows = [(*_identity(f), claim_id, now, CLAIMED, replaces) for f, replaces in todo]
    # (the concurrency tests hold two runs' MERGEs inside their transactions at once: edges/hooks.py)
    src = hooks.inside_transaction(run.spark.createDataFrame(rows, _LEDGER_SCHEMA), "claim", claim_id)
    state = f"coalesce(t.state, '{DONE}')"
    same = "t.size = s.size AND t.modification_time_ms = s.modification_time_ms"
    cond = (
        f"t.{SOURCE_FILE} = s.{SOURCE_FILE} AND ({state} IN ('{CLAIMED}', '{ABORTED}') OR NOT s.replaces"
        + ("" if force else f" OR ({state} = '{DONE}' AND {same})")
        + ")"
    )
    tables.insert_new(src, run.lake, tables.INGESTED_FILES, cond)
    _fault("after_claim")
    got = _ledger(run).where(_is_claim(claim_id)).select(SOURCE_FILE, "replaces").collect()  # <= this run's
    paths = {r[SOURCE_FILE] for r in got}
    return [f for f, _ in todo if canonical(f.path) in paths], any(bool(r["replaces"]) for r in got)


def _metric_columns() -> list[Column]:
    """What one pass over the parsed rows counts (an Observation of the write, or an aggregate when the
    write was already committed by an earlier attempt)."""
    kind, reason, status = F.col("kind"), F.col("reason"), F.col("log_status")
    obj = kind == ing.OBJECT
    in_object = F.col(ing.OBJECT_LINES) - F.col(ing.OBJECT_HEADERS) - F.col(ing.OBJECT_BLANK)
    last_good = F.col(SOURCE_LINE).cast("string")  # of a broken object: the last complete line
    return [
        F.coalesce(F.sum(ing.OBJECT_LINES), F.lit(0)).alias("lines"),
        F.coalesce(F.sum(ing.OBJECT_HEADERS), F.lit(0)).alias("headers"),
        F.coalesce(F.sum(ing.OBJECT_BLANK), F.lit(0)).alias("blank_lines"),
        F.count(F.when(kind.isin(ing.RECORD, ing.REJECT), 1)).alias("records"),
        F.count(F.when(kind == ing.REJECT, 1)).alias("rejected"),
        F.count(F.when((kind == ing.RECORD) & (status == "NODATA"), 1)).alias("nodata"),
        F.count(F.when((kind == ing.RECORD) & (status == "SKIPDATA"), 1)).alias("skipdata"),
        # Files holding at least one reject: bounded by the number of files in this run.
        F.array_join(F.collect_set(F.when(kind == ing.REJECT, F.col(SOURCE_FILE))), "\n").alias("reject_files"),
        # Objects, not lines (bounded by the number of objects in this run): the broken ones and those
        # holding at least one record line.
        F.to_json(F.collect_list(F.when(obj & reason.isNotNull(), F.array(SOURCE_FILE, "reason", last_good)))).alias(
            "broken"
        ),
        F.to_json(F.collect_set(F.when(obj & (in_object > 0), F.col(SOURCE_FILE)))).alias("with_records"),
        # The days written (bounded by the days in the objects): what `flowspark run` compacts next.
        F.to_json(F.collect_set(F.when(kind == ing.RECORD, F.col(EVENT_DATE).cast("string")))).alias("dates"),
    ]


_COUNTS = ("lines", "headers", "blank_lines", "records", "rejected", "nodata", "skipdata")


def _one_row_of(agg: DataFrame) -> dict:
    """The one row of a global aggregate, as a dict."""
    row = agg.first()
    assert row is not None  # a global aggregate has exactly one row
    return row.asDict()


def _complete(run: _Run, claim_id: str, objs: list[SourceFile], replaces: bool) -> IngestSummary:
    """Read a claim's objects and write its rows, each table at most once (txnAppId = claim id); reconcile
    against what the tables hold for the claim; write its stats; mark it done. Whoever runs this for a claim,
    and however often, the tables end the same."""
    spark, lake, cfg = run.spark, run.lake, run.cfg
    t0 = time.time()
    part = IngestSummary(ingest_id=claim_id, source=run.source, lake=lake)
    parquet_files = [f for f in objs if f.path.endswith(cfg.ingest.parquet_suffixes)]
    text_files = [f for f in objs if not f.path.endswith(cfg.ingest.parquet_suffixes)]
    part.files_read, part.text_files, part.parquet_files = len(objs), len(text_files), len(parquet_files)
    log.info("ingest %s: %d files (%d text, %d parquet)", claim_id, len(objs), len(text_files), len(parquet_files))
    # A replacement removes every row of its objects' earlier versions in the commit that adds the new ones.
    where = _paths_predicate(sorted({canonical(f.path) for f in objs})) if replaces else None

    parsed = _parsed(spark, cfg, objs, run.fmt)
    obs = Observation(f"ingest-{claim_id}-{uuid.uuid4().hex[:8]}")
    records = records_of(parsed.observe(obs, *_metric_columns())).withColumn(INGEST_ID, F.lit(claim_id))
    _fault("reading", spark)
    ran = tables.write_once(
        records,
        lake,
        tables.FLOW_RECORDS,
        claim_id,
        run.token,
        replace_where=where,
        partition_by=[EVENT_DATE],
        max_records_per_file=cfg.ingest.max_records_per_file,
        check=True,
        storage=cfg.storage,
    )
    _fault("after_records")
    # The Observation is filled only if this call ran the write; otherwise count in a pass of its own.
    m = obs.get if ran else _one_row_of(parsed.agg(*_metric_columns()))
    for k in _COUNTS:
        setattr(part, k, int(m[k]))
    broken = [(r[0], r[1], int(r[2])) for r in json.loads(m["broken"])]
    _count_objects(part, objs, broken, set(json.loads(m["with_records"])))
    part.dates = sorted(d for d in json.loads(m["dates"]) if d)

    # Always written, empty or not: a claim's (txnAppId, 1) committed in flow_rejects fences late writers.
    if part.rejected:  # a second pass over the objects that hold rejects only (rejects are rare)
        reject_paths = {canonical(p) for p in str(m["reject_files"]).split("\n")}
        rej = rejects_of(_parsed(spark, cfg, [f for f in objs if canonical(f.path) in reject_paths], run.fmt), claim_id)
    else:
        rej = spark.createDataFrame([], reject_schema())
    tables.write_once(rej, lake, tables.FLOW_REJECTS, claim_id, run.token, replace_where=where)
    _fault("after_rejects")
    _record_rejected_objects(run, part, where)

    # Reconcile with what the tables hold for this claim, whichever attempt wrote it.
    part.rows_written = tables.read(spark, lake, tables.FLOW_RECORDS).where(_is_claim(claim_id)).count()
    written_rejects = tables.read(spark, lake, tables.FLOW_REJECTS).where(_is_claim(claim_id)).count()
    part.seconds = time.time() - t0
    if not part.reconciled() or written_rejects != part.rejected:
        _abort(run, claim_id, "reconciliation failed")
        raise ReconciliationError(
            f"ingest {claim_id} does not reconcile: {part.records} record lines read, {part.rows_written} rows "
            f"written, {part.rejected} rejected, {written_rejects} reject rows written; its rows were removed, "
            "rerun to ingest these objects again"
        )
    _append_stats(run, part)
    _fault("after_stats")
    tables.update_where(
        spark, lake, tables.INGESTED_FILES, f"{_is_claim(claim_id)} AND state = '{CLAIMED}'", {"state": f"'{DONE}'"}
    )
    if _states(run, claim_id) != {DONE}:
        raise IngestConflictError(
            f"ingest {claim_id} was undone by another run (its objects changed while it ran): rerun"
        )
    _fault("after_done")
    return part


def _add(total: IngestSummary, part: IngestSummary) -> None:
    """Sum a claim's counts into the run's summary."""
    for k, v in asdict(part).items():
        if k in ("files_found", "files_skipped", "seconds") or not isinstance(v, int) or isinstance(v, bool):
            continue
        setattr(total, k, getattr(total, k) + v)
    total.broken = sorted([*total.broken, *part.broken])
    total.dates = sorted({*total.dates, *part.dates})
    if part.ingest_id != total.ingest_id:
        total.resumed.append(part.ingest_id)


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
    """Ingest every object under `source` (in the date range) exactly once; see the module docstring.

    force: read the objects again even if the ledger has them done, and replace their rows (never append
    them again).
    """
    t0 = time.time()
    hooks.announce()
    default_format = parse_format(fmt) if fmt else list(DEFAULT_FORMAT)
    summary = IngestSummary(ingest_id=uuid.uuid4().hex[:12], source=source, lake=lake)
    suffixes = cfg.ingest.text_suffixes + cfg.ingest.parquet_suffixes
    found = discover(spark, source, suffixes, date_from, date_to)
    summary.files_found = len(found)
    if not found and not tables.exists(spark, lake, tables.INGESTED_FILES):
        summary.seconds = time.time() - t0
        log.info("nothing new to ingest")
        return summary
    run = _Run(spark, cfg, source, lake, default_format, token=uuid.uuid4().hex[:12])
    tables.retry_on_conflict(lambda: _prepare_tables(run), "creating the lake's tables")
    by_path = {canonical(f.path): f for f in found}
    handled: set[tuple[str, int, int]] = set()  # identities this run has read (its claims, resumed ones)
    claim_id = summary.ingest_id
    for _ in range(_ROUNDS):
        for pending_id, objs, replaces in _pending(run, by_path):
            _add(summary, _complete(run, pending_id, objs, replaces))
            handled.update(_identity(f) for f in objs)
        todo = _plan(run, found, force, handled) if found else []
        if not todo:
            break
        got, replaces = _claim(run, claim_id, todo, force)
        if got:
            _add(summary, _complete(run, claim_id, got, replaces))
            handled.update(_identity(f) for f in got)
            claim_id = uuid.uuid4().hex[:12]  # a further round's claim is a new one
        if len(got) == len(todo):
            break  # everything planned was claimed and completed by this run
    else:
        raise IngestConflictError(
            f"other ingests kept claiming these objects ({_ROUNDS} rounds); rerun (a rerun converges)"
        )
    summary.files_skipped = sum(1 for f in found if _identity(f) not in handled)
    summary.seconds = time.time() - t0
    if not summary.files_read:
        log.info("nothing new to ingest")
    return summary


def _count_objects(
    summary: IngestSummary, todo: list[SourceFile], broken: list[tuple[str, str, int]], with_records: set[str]
) -> None:
    """Broken objects (foreign ones and those the reader could not read to their end) and objects without records."""
    summary.broken = sorted(broken)
    summary.objects_rejected = len(summary.broken)
    bad = {b[0] for b in summary.broken}
    summary.files_without_records = sum(
        1 for f in todo if canonical(f.path) not in with_records and canonical(f.path) not in bad
    )


_REJECTED_OBJECTS_SCHEMA = StructType(
    [
        StructField(SOURCE_FILE, StringType(), False),
        StructField("reason", StringType(), False),
        StructField("last_good_line", LongType(), False),
        StructField("ingest_id", StringType(), False),
        StructField("at", TimestampType(), False),
    ]
)


def _record_rejected_objects(run: _Run, summary: IngestSummary, replace_where: str | None) -> None:
    """A claim's broken objects -> rejected_objects, at most once per claim (bounded by its objects); a
    replacement also removes its objects' earlier entries. Written even when empty: the claim's fence."""
    spark, lake = run.spark, run.lake
    now = utc_now()
    rows = [(path, why, line, summary.ingest_id, now) for path, why, line in summary.broken]
    df = spark.createDataFrame(rows, _REJECTED_OBJECTS_SCHEMA)
    tables.write_once(df, lake, tables.REJECTED_OBJECTS, summary.ingest_id, run.token, replace_where=replace_where)
    for path, why, line in summary.broken:
        log.warning("object rejected after line %d: %s: %s", line, path, why)


def _append_stats(run: _Run, summary: IngestSummary) -> None:
    """One ingest_stats row per claim, at most once (mergeSchema: a lake from an older flowspark gains columns)."""
    row = {k: v for k, v in asdict(summary).items() if not isinstance(v, (list, dict))}
    row["ingested_at"] = utc_now()
    df = one_row(run.spark, row)
    tables.write_once(df, run.lake, tables.INGEST_STATS, summary.ingest_id, run.token, merge_schema=True)
