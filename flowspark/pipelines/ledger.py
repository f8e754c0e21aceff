"""Ingest's ledger of claims (`<lake>/ingested_files`): which object versions a run read, exactly once.

One row per object and claim: its identity (canonical path, size, modification time), the claim
(ingest_id) and its state claimed -> done, or claimed -> aborted -> void. A claim is made by ONE
insert-only MERGE and completed by ONE MERGE that marks its objects done and stores, per object, what the
read found (lines, records, rejects, NODATA/SKIPDATA, the days its records fall in, and why it could not be
read to its end, if so). So the ledger is also where a claim's statistics and broken objects are kept:
`ingest_stats` and `rejected_objects` (tables of earlier flowsparks) are read from it (`claim_stats`,
`broken_objects`), with the rows of those older tables added.

Why a claim's outcome holds exactly once, whatever happens, is in pipelines/ingest.py.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from typing import Any

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import (
    ArrayType,
    BooleanType,
    DateType,
    LongType,
    StringType,
    StructField,
    StructType,
    TimestampType,
)

from flowspark.core.schema import SOURCE_FILE
from flowspark.edges import hooks, tables
from flowspark.edges.config import Config
from flowspark.edges.sources import SourceFile, canonical, discover, normalise_uri
from flowspark.pipelines.common import utc_now

log = logging.getLogger("flowspark")

INGEST_ID = "ingest_id"  # the claim: a column of the ledger, flow_records and flow_rejects
# Ledger states (column `state`; NULL in rows written by flowspark before claims = done).
CLAIMED, DONE, ABORTED, VOID = "claimed", "done", "aborted", "void"

# What a claim's done MERGE stores per object (null in older rows and in rows not done).
OUTCOME = StructType(
    [
        StructField("lines", LongType(), True),
        StructField("headers", LongType(), True),
        StructField("blank_lines", LongType(), True),
        StructField("records", LongType(), True),  # record lines: valid + rejected
        StructField("rejected", LongType(), True),
        StructField("nodata", LongType(), True),
        StructField("skipdata", LongType(), True),
        StructField("rows_written", LongType(), True),  # valid records (kept in flow_records, or not)
        StructField("days", ArrayType(DateType()), True),  # the event_date days of its valid records
        StructField("problem", StringType(), True),  # why it could not be read to its end
        StructField("last_good_line", LongType(), True),
        StructField("done_at", TimestampType(), True),
    ]
)
LEDGER_SCHEMA = StructType(
    [
        StructField(SOURCE_FILE, StringType(), False),
        StructField("size", LongType(), False),
        StructField("modification_time_ms", LongType(), False),
        StructField(INGEST_ID, StringType(), False),
        StructField("ingested_at", TimestampType(), False),  # when the claim was made
        StructField("state", StringType(), True),  # claimed | done | aborted | void (NULL: done, older lakes)
        StructField("replaces", BooleanType(), True),  # the claim replaces rows of an earlier version
        # a replacement: the days the earlier version's rows were in (their flows are rebuilt)
        StructField("replaced_days", ArrayType(DateType()), True),
        *OUTCOME.fields,
    ]
)
_NEW_COLUMNS = {f.name: f.dataType.simpleString() for f in LEDGER_SCHEMA.fields[5:]}


class IngestConflictError(RuntimeError):
    """This run could not finish because other runs kept claiming or undoing the same objects."""


@dataclass
class Run:
    """One ingest run: where it reads and writes, and its attempt token (commit userMetadata)."""

    spark: SparkSession
    cfg: Config
    source: str
    lake: str
    fmt: list[str]
    token: str
    keep_records: bool = True
    as_flows: bool = False  # OCSF aggregate events loaded into flows with their counts (no flow_records)


@dataclass
class Claim:
    """A claim to complete: its id, its objects as they are now, whether it replaces earlier rows (and the
    days those were in)."""

    claim_id: str
    objects: list[SourceFile]
    replaces: bool
    replaced_days: list[dt.date]


def is_claim(claim_id: str) -> str:
    return f"{INGEST_ID} = {tables.sql_string(claim_id)}"


def paths_predicate(paths: list[str]) -> str:
    return f"{SOURCE_FILE} IN ({', '.join(tables.sql_string(p) for p in paths)})"


def identity(f: SourceFile) -> tuple[str, int, int]:
    """What names one version of an object: canonical path, size, modification time (S3: LastModified,
    which every PUT sets anew, so a rewrite with the same size is still a new identity)."""
    return (canonical(f.path), int(f.size), int(f.mtime_ms))


def prepare(spark: SparkSession, lake: str) -> None:
    """The ledger exists with the columns claims need (a lake from an older flowspark gets them added: its
    ledger rows count as done)."""
    tables.create_table_once(spark, lake, tables.INGESTED_FILES, LEDGER_SCHEMA)
    tables.add_columns(spark, lake, tables.INGESTED_FILES, _NEW_COLUMNS)


def ledger(spark: SparkSession, lake: str) -> DataFrame:
    led = tables.read(spark, lake, tables.INGESTED_FILES)
    return led.withColumn("state", F.coalesce(F.col("state"), F.lit(DONE)))


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


def _current(run: Run, path: str, found: dict[str, SourceFile]) -> SourceFile | None:
    """The object at a canonical path as it is now (listing of this run, else one stat), None if gone."""
    if path in found:
        return found[path]
    suffixes = run.cfg.ingest.text_suffixes + run.cfg.ingest.parquet_suffixes
    try:
        got = discover(run.spark, _uri(path, run.source), suffixes)
    except FileNotFoundError:
        return None
    return next((f for f in got if canonical(f.path) == path), None)


def read_state(run: Run, found: list[SourceFile]) -> list[Any]:
    """The ledger rows a run plans with, in one read: every claim not done (anyone's), and every row of the
    objects it found (bounded by those objects, their rewrites and the unfinished claims)."""
    cols = [SOURCE_FILE, "size", "modification_time_ms", INGEST_ID, "replaces", "replaced_days", "state"]
    led = ledger(run.spark, run.lake).select(*cols)
    unfinished = led.where(F.col("state").isin(CLAIMED, ABORTED))
    if not found:
        return unfinished.collect()
    paths = run.spark.createDataFrame([(canonical(f.path),) for f in found], f"{SOURCE_FILE} string")
    mine = led.join(F.broadcast(paths), SOURCE_FILE, "left_semi")
    return unfinished.unionByName(mine).distinct().collect()


def pending(run: Run, rows: list[Any], found: dict[str, SourceFile], undo: Any) -> list[Claim]:
    """Claims not done (a crashed run's, or a run still going) whose objects lie under this run's source,
    with their objects as they are now. An aborted claim's undo is finished (`undo(claim_id)`); a claim whose
    object changed or vanished since it was claimed is aborted (`undo` decides whether it can still be)."""
    for claim_id in sorted({r[INGEST_ID] for r in rows if r["state"] == ABORTED}):
        undo(claim_id, None)
    claims: dict[str, list] = {}
    for r in (r for r in rows if r["state"] == CLAIMED):
        claims.setdefault(r[INGEST_ID], []).append(r)
    out = []
    for claim_id, objs in sorted(claims.items()):
        if not any(_under(r[SOURCE_FILE], run.source) for r in objs):
            continue
        now = [_current(run, r[SOURCE_FILE], found) for r in objs]
        same = all(
            f is not None and identity(f) == (r[SOURCE_FILE], r["size"], r["modification_time_ms"])
            for f, r in zip(now, objs)
        )
        if not same:
            undo(claim_id, "an object changed or vanished after it was claimed")
            continue
        days = sorted({d for r in objs for d in (r["replaced_days"] or [])})
        out.append(Claim(claim_id, [f for f in now if f is not None], any(bool(r["replaces"]) for r in objs), days))
    return out


def plan(rows: list[Any], found: list[SourceFile], force: bool, handled: set) -> list[tuple[SourceFile, bool]]:
    """The objects to claim now, each with whether the lake may hold rows of an earlier version of it.

    Not: an object another claim holds (resumed next round), one this run has read, and (without force)
    one whose identity the ledger has done. A path the ledger knows in any state is a replacement.
    """
    known: dict[str, list] = {}
    for r in rows:
        known.setdefault(r[SOURCE_FILE], []).append(r)
    todo = []
    for f in found:
        path, size, mtime = identity(f)
        mine = known.get(path, [])
        busy = any(r["state"] in (CLAIMED, ABORTED) for r in mine)
        done = any(r["state"] == DONE and (r["size"], r["modification_time_ms"]) == (size, mtime) for r in mine)
        if busy or identity(f) in handled or (done and not force):
            continue
        todo.append((f, bool(mine)))
    return todo


def claim(
    run: Run, claim_id: str, todo: list[tuple[SourceFile, bool]], force: bool, replaced_days: dict[str, list]
) -> tuple[list[SourceFile], bool]:
    """Insert this run's claims in one insert-only MERGE; returns the objects it got and whether any replaces.

    The MERGE decides per object against the snapshot it commits on (so a concurrent claim either is
    visible to it or makes it fail and be retried): no claim if the path has a claim not done
    (claimed, aborted), or if this is a first claim (`replaces` false) and the path is in the ledger at all,
    or (without force) if this identity is done. replaced_days: per replaced path, the days its earlier
    rows are in.
    """
    now = utc_now()
    rows = [
        (*identity(f), claim_id, now, CLAIMED, replaces, replaced_days.get(canonical(f.path)), *([None] * len(OUTCOME)))
        for f, replaces in todo
    ]
    # (the concurrency tests hold two runs' MERGEs inside their transactions at once: edges/hooks.py)
    src = hooks.inside_transaction(run.spark.createDataFrame(rows, LEDGER_SCHEMA), "claim", claim_id)
    state = f"coalesce(t.state, '{DONE}')"
    same = "t.size = s.size AND t.modification_time_ms = s.modification_time_ms"
    cond = (
        f"t.{SOURCE_FILE} = s.{SOURCE_FILE} AND ({state} IN ('{CLAIMED}', '{ABORTED}') OR NOT s.replaces"
        + ("" if force else f" OR ({state} = '{DONE}' AND {same})")
        + ")"
    )
    inserted = tables.insert_new(src, run.lake, tables.INGESTED_FILES, cond)
    if inserted == len(todo):  # every object claimed (the usual case): no read back
        return [f for f, _ in todo], any(r for _, r in todo)
    got = ledger(run.spark, run.lake).where(is_claim(claim_id)).select(SOURCE_FILE, "replaces").collect()
    paths = {r[SOURCE_FILE] for r in got}
    return [f for f, _ in todo if canonical(f.path) in paths], any(bool(r["replaces"]) for r in got)


def mark_done(run: Run, claim_id: str, outcomes: dict[str, dict[str, Any]]) -> bool:
    """One MERGE: the claim's objects claimed -> done, each with its outcome (OUTCOME's fields). True if
    every object of the claim was marked now; False if the claim was no longer claimed (another run
    completed it, or aborted it)."""
    now = utc_now()
    schema = StructType([StructField(SOURCE_FILE, StringType(), False), *OUTCOME.fields])
    rows = [(path, *[o.get(f.name) for f in OUTCOME.fields[:-1]], now) for path, o in sorted(outcomes.items())]
    src = run.spark.createDataFrame(rows, schema)
    cond = f"t.{SOURCE_FILE} = s.{SOURCE_FILE} AND t.{INGEST_ID} = {tables.sql_string(claim_id)}"
    values = {"state": f"'{DONE}'", **{f.name: f"s.`{f.name}`" for f in OUTCOME.fields}}
    updated = tables.update_from(src, run.lake, tables.INGESTED_FILES, cond, f"t.state = '{CLAIMED}'", values)
    return updated == len(outcomes)


def set_state(run: Run, claim_id: str, old: str, new: str) -> int:
    """claim_id's objects in state `old` -> `new` (one conditional UPDATE); how many changed."""
    cond = f"{is_claim(claim_id)} AND state = '{old}'"
    return tables.update_where(run.spark, run.lake, tables.INGESTED_FILES, cond, {"state": f"'{new}'"})


def states(run: Run, claim_id: str) -> set[str]:
    rows = ledger(run.spark, run.lake).where(is_claim(claim_id)).select("state").distinct().collect()
    return {r["state"] for r in rows}


# ---------------------------------------------------------------- what the ledger says about done claims

_LEGACY_STATS, _LEGACY_BROKEN = "ingest_stats", "rejected_objects"


def claim_stats(spark: SparkSession, lake: str) -> DataFrame:
    """One row per done claim: ingest_id, files, lines, headers, blank_lines, records, rejected, nodata,
    skipdata, rows_written, objects_rejected, ingested_at, done_at (from the ledger; claims of flowsparks
    before the ledger kept outcomes come from their ingest_stats table)."""
    led = ledger(spark, lake).where((F.col("state") == DONE) & F.col("done_at").isNotNull())
    counts = ["lines", "headers", "blank_lines", "records", "rejected", "nodata", "skipdata", "rows_written"]
    out = led.groupBy(INGEST_ID).agg(
        F.count(F.lit(1)).alias("files_read"),
        *[F.sum(c).alias(c) for c in counts],
        F.count("problem").alias("objects_rejected"),
        F.min("ingested_at").alias("ingested_at"),
        F.max("done_at").alias("done_at"),
    )
    if tables.exists(spark, lake, _LEGACY_STATS):
        old = tables.read(spark, lake, _LEGACY_STATS)
        cols = [F.col(c) if c in old.columns else F.lit(None).cast(out.schema[c].dataType) for c in out.columns]
        out = out.unionByName(old.select(*[c.alias(n) for c, n in zip(cols, out.columns)]))
    return out


def broken_objects(spark: SparkSession, lake: str) -> DataFrame:
    """Objects that could not be read to their end: source_file, reason, last_good_line, ingest_id, at (from
    the ledger, and the rejected_objects table of flowsparks before it)."""
    led = ledger(spark, lake).where((F.col("state") == DONE) & F.col("problem").isNotNull())
    out = led.select(
        SOURCE_FILE, F.col("problem").alias("reason"), "last_good_line", INGEST_ID, F.col("done_at").alias("at")
    )
    if tables.exists(spark, lake, _LEGACY_BROKEN):
        out = out.unionByName(tables.read(spark, lake, _LEGACY_BROKEN).select(*out.columns))
    return out
