"""The one place that reads and writes Delta tables of the lake.

A lake is a folder or an S3 prefix; each table is `<lake>/<name>`. Writes are idempotent by
construction: a job replaces exactly the date range it computed (`replaceWhere`), or appends only
what it has not written before (ingest keeps a ledger of the files it has loaded).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import random
import re
import time
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

from delta.tables import DeltaTable
from pyspark.sql import DataFrame, SparkSession, Window
from pyspark.sql import functions as F
from pyspark.sql.types import StructType

from flowspark.core.schema import with_legacy_columns
from flowspark.edges import hooks
from flowspark.edges.config import StorageConfig
from flowspark.edges.sources import is_local, normalise_uri, to_local_path

FLOW_RECORDS = "flow_records"
FLOW_REJECTS = "flow_rejects"
INGESTED_FILES = "ingested_files"
# Objects ingest could not read to their end (truncated/corrupt gzip, empty, binary, not a flow log):
# source_file, reason, last_good_line, ingest_id, at. Their good lines are in flow_records as usual.
REJECTED_OBJECTS = "rejected_objects"
INGEST_STATS = "ingest_stats"
FLOWS = "flows"
DEDUP_STATS = "dedup_stats"
DEDUP_STATUS_COUNTS = "dedup_status_counts"
CONVERSATIONS = "conversations"
TAG_COUNTS = "tag_counts"
PORT_PROTOCOL_COUNTS = "port_protocol_counts"
AWS_IP_RANGES = "aws_ip_ranges"
IP_CLASSES = "ip_classes"
INTEL_LISTS = "intel_lists"
DETECTION_ACTIVITY = "detection_activity"  # flowspark findings: one row per detection, subject and day
FINDINGS = "findings"  # derived from detection_activity on every run (episodes, stable ids)
FINDING_MARKS = "finding_marks"  # findings marked benign, with the reason

# Delta collects min/max/null-count statistics for these columns only (table property
# delta.dataSkippingStatsColumns, set when a table is created). The default, the first 32 columns, made
# statistics 14% of ingest's CPU time; these are the columns queries filter on (time, account, interface,
# port, action), and event_date is a partition column, pruned without statistics.
STATS_COLUMNS: dict[str, str] = {
    FLOW_RECORDS: "start,end,account_id,interface_id,dstport,action,log_status,ingest_id",
    FLOWS: "window_start,start,end,account_id,interface_id,dstport,action,records",
    CONVERSATIONS: "window_start,start,end,account_id,interface_id,server_port,action,records",
}


# ---------------------------------------------------------------- layout (docs/storage.md)
#
# The compact layout ([storage] layout = "compact"): rows sorted inside each day by these columns before a
# write (an interface's rows next to each other, so dictionary, run-length and delta encodings work),
# Parquet v2 data pages (delta encoding of integers and timestamps) and zstd at [storage] zstd_level.
# "plain" writes as Spark and Delta do by default (the layout before "compact"). Orders chosen by measurement
# on 1 M generated records (docs/storage.md): flow_records by addresses (srcaddr is its largest column:
# 6.0 -> 3.9 B/row), flows by start (its start/end/window_start shrink most: 16.5 MB against 18.0 MB by
# addresses, 18.6 MB unsorted).
SORT_COLUMNS: dict[str, list[str]] = {
    FLOW_RECORDS: ["interface_id", "srcaddr", "dstaddr", "start"],
    FLOWS: ["interface_id", "start"],
}


def layout_conf(storage: StorageConfig | None) -> dict[str, str]:
    """Session confs of a write in the layout (Delta hands the session's confs to the Parquet writer; its
    write options pass only maxRecordsPerFile and compression). Both Spark lines read v2 pages (Spark >= 3.3)."""
    if storage is None or storage.layout != "compact":
        return {}
    return {"parquet.writer.version": "v2", "parquet.compression.codec.zstd.level": str(storage.zstd_level)}


def laid_out(df: DataFrame, name: str, partition_by: list[str] | None, storage: StorageConfig | None) -> DataFrame:
    """df with its rows in the layout's order inside each write task (the partition columns first: the
    order Spark's partitioned write needs anyway, so no second sort)."""
    if storage is None or storage.layout != "compact" or name not in SORT_COLUMNS:
        return df
    return df.sortWithinPartitions(*(partition_by or []), *[c for c in SORT_COLUMNS[name] if c in df.columns])


@contextlib.contextmanager
def session_conf(spark: SparkSession, conf: dict[str, str]) -> Iterator[None]:
    """These session confs for the block, then what was there before."""
    before = {k: spark.conf.get(k, None) for k in conf}
    for k, v in conf.items():
        spark.conf.set(k, v)
    try:
        yield
    finally:
        for k, old in before.items():
            if old is None:
                spark.conf.unset(k)
            else:
                spark.conf.set(k, old)


def _qualified(path: str) -> str:
    """The form Hadoop qualifies a local path to (file:/abs), which Delta's CREATE compares locations in."""
    return "file:/" + path[len("file:///") :] if path.startswith("file:///") else path


def _create_if_new(
    spark: SparkSession, path: str, name: str, schema: StructType, partition_by: list[str] | None
) -> None:
    """Create a table that has statistics columns of its own (STATS_COLUMNS) before its first write, with
    its table property set, instead of changing the session's defaults around the write."""
    if name not in STATS_COLUMNS or DeltaTable.isDeltaTable(spark, path):
        return
    stats = [c for c in STATS_COLUMNS[name].split(",") if c in schema.fieldNames()]
    builder = DeltaTable.createIfNotExists(spark).location(_qualified(path)).addColumns(schema)
    if stats:
        builder = builder.property("delta.dataSkippingStatsColumns", ",".join(stats))
    if partition_by:
        builder = builder.partitionedBy(*partition_by)
    builder.execute()


# The command that writes each table, for the "run it first" of a missing table.
WRITTEN_BY = {
    "flows": "flowspark ingest (or flowspark run)",
    "flow_records": "flowspark ingest (or flowspark run)",
    "flow_rejects": "flowspark ingest",
    "ingested_files": "flowspark ingest",
    "aws_ip_ranges": "'flowspark ip-ranges'",
    "ip_classes": "flowspark classify",
    "tag_counts": "flowspark tag --lake",
    "port_protocol_counts": "flowspark tag --lake",
}


def missing_table(lake: str, name: str) -> str:
    """The one-line message for a table that is not there, naming the command that writes it."""
    import os

    writer = WRITTEN_BY.get(name, f"the job that writes {name!r}")
    where = table_path(lake, name)
    if is_local(where) and os.path.isdir(to_local_path(where)) and os.listdir(to_local_path(where)):
        return (
            f"{where} is not a Delta table (files, but no commit in a _delta_log): put there by hand or half "
            "deleted? Move it away, or give another --lake"
        )
    return f"no Delta table at {where}: run {writer} first"


def table_path(lake: str, name: str) -> str:
    return f"{normalise_uri(lake)}/{name}"


def exists(spark: SparkSession, lake: str, name: str) -> bool:
    return bool(DeltaTable.isDeltaTable(spark, table_path(lake, name)))


def read(spark: SparkSession, lake: str, name: str) -> DataFrame:
    """The table; in a table of records (flow_records, flows: not a report's section, whose columns are
    its own) a column that changed type since the lake was written is read as today's
    (core.schema.with_legacy_columns)."""
    path = table_path(lake, name)
    if not DeltaTable.isDeltaTable(spark, path):
        raise FileNotFoundError(missing_table(lake, name))
    df = spark.read.format("delta").load(path)
    return df if name.startswith(REPORTS + "/") else with_legacy_columns(df)


def append(
    df: DataFrame,
    lake: str,
    name: str,
    partition_by: list[str] | None = None,
    max_records_per_file: int | None = None,
) -> None:
    writer = df.write.format("delta").mode("append")
    if partition_by:
        writer = writer.partitionBy(*partition_by)
    if max_records_per_file:
        writer = writer.option("maxRecordsPerFile", max_records_per_file)
    path = table_path(lake, name)
    _create_if_new(df.sparkSession, path, name, df.schema, partition_by)
    writer.save(path)


def replace_dates(
    df: DataFrame,
    lake: str,
    name: str,
    date_column: str,
    date_from: dt.date | None,
    date_to: dt.date | None,
    partition_by: list[str] | None = None,
    storage: StorageConfig | None = None,
) -> None:
    """Atomically replace the rows of [date_from, date_to] (all rows if both are None) with df, written in
    the storage layout (None: Spark's defaults)."""
    path = table_path(lake, name)
    writer = laid_out(df, name, partition_by, storage).write.format("delta").mode("overwrite")
    if partition_by:
        writer = writer.partitionBy(*partition_by)
    conds = []
    if date_from is not None:
        conds.append(f"{date_column} >= DATE'{date_from.isoformat()}'")
    if date_to is not None:
        conds.append(f"{date_column} <= DATE'{date_to.isoformat()}'")
    spark = df.sparkSession
    if conds and DeltaTable.isDeltaTable(spark, path):
        writer = writer.option("replaceWhere", " AND ".join(conds))
    elif not conds:
        writer = writer.option("overwriteSchema", "false")
    _create_if_new(spark, path, name, df.schema, partition_by)
    with session_conf(spark, layout_conf(storage)):
        writer.save(path)


def merge_on_key(df: DataFrame, lake: str, name: str, key: str) -> dict[str, Any]:
    """Upsert df into an existing <lake>/<name> on `key`: insert new keys, update only rows whose values
    changed (null-safe comparison). Returns Delta's metrics of the MERGE."""
    spark = df.sparkSession
    target = DeltaTable.forPath(spark, table_path(lake, name))
    changed = " OR ".join(f"NOT (t.`{c}` <=> s.`{c}`)" for c in df.columns if c != key)
    merge = target.alias("t").merge(df.alias("s"), f"t.`{key}` = s.`{key}`")
    merge.whenMatchedUpdateAll(condition=changed or None).whenNotMatchedInsertAll().execute()
    return last_operation_metrics(spark, lake, name)


def last_operation_metrics(spark: SparkSession, lake: str, name: str) -> dict[str, Any]:
    """Delta's own metrics of the table's latest commit (numOutputRows, numFiles, ...)."""
    row = DeltaTable.forPath(spark, table_path(lake, name)).history(1).select("operationMetrics").first()
    return dict(row["operationMetrics"] or {}) if row else {}


def size_bytes(spark: SparkSession, lake: str, name: str) -> int:
    """Bytes of the live data files of the table's current version."""
    detail = DeltaTable.forPath(spark, table_path(lake, name)).detail().select("sizeInBytes").first()
    return int(detail["sizeInBytes"]) if detail else 0


def size_bytes_of_dates(
    spark: SparkSession, lake: str, name: str, date_column: str, date_from: dt.date | None, date_to: dt.date | None
) -> int:
    """Bytes of the live data files of [date_from, date_to] (a partition column), from the Delta log: the
    size Delta's own scan planning gives the pruned file list (no data file is read). 0 if none."""
    df = read(spark, lake, name)
    if date_from is not None:
        df = df.where(f"`{date_column}` >= DATE'{date_from.isoformat()}'")
    if date_to is not None:
        df = df.where(f"`{date_column}` <= DATE'{date_to.isoformat()}'")
    size = int(str(df._jdf.queryExecution().optimizedPlan().stats().sizeInBytes()))
    # Spark reports at least 1 byte for an empty relation; no Parquet file is that small. An estimate
    # that is not the pruned file list's (it would be Spark's default, far above the table) is capped.
    return 0 if size <= 1 else min(size, size_bytes(spark, lake, name))


def version(spark: SparkSession, lake: str, name: str) -> int | None:
    """The table's current version, or None if it does not exist yet."""
    if not exists(spark, lake, name):
        return None
    row = DeltaTable.forPath(spark, table_path(lake, name)).history(1).select("version").first()
    return int(row["version"]) if row else None


def undo_to(spark: SparkSession, lake: str, name: str, previous: int | None) -> None:
    """Put a table back as it was at `previous` (a failed check after a write); None = it was empty."""
    table = DeltaTable.forPath(spark, table_path(lake, name))
    if previous is None:
        table.delete()
    else:
        table.restoreToVersion(previous)


# ---------------------------------------------------------------- exactly-once writes (ingest's claims)
#
# Each function below is one Delta transaction whose effect is decided inside it (a condition evaluated
# against the snapshot it commits on), so running it again after Delta refused it for a concurrent commit
# is safe: `retry_on_conflict` does that. Verified on Delta 4.0.1 and 3.3.2 (tests/test_exactly_once.py):
# two concurrent insert-only MERGEs into an unpartitioned table -> the second fails with
# ConcurrentAppendException; two concurrent conditional UPDATEs of one row -> the second fails; two
# concurrent writes with the same txnAppId -> the second fails with ConcurrentTransactionException; a
# write whose (txnAppId, txnVersion) is committed is skipped, an empty DataFrame included (which commits
# nothing but that txn when it is the first).

# Delta's optimistic-concurrency failures by JVM class or error class (Delta 3.3 raises them as its Python
# classes, Delta 4.0 as Py4JJavaError from non-main threads: the names are what both have).
_CONFLICT_NAMES = (
    "ConcurrentAppendException",
    "ConcurrentDeleteReadException",
    "ConcurrentDeleteDeleteException",
    "ConcurrentTransactionException",
    "ConcurrentWriteException",
    "MetadataChangedException",
    "ProtocolChangedException",
    "DELTA_CONCURRENT_",
    "DELTA_PROTOCOL_CHANGED",
    "DELTA_METADATA_CHANGED",
)

T = TypeVar("T")


class ConflictError(RuntimeError):
    """A Delta operation kept losing to concurrent writers. Rerunning the job converges."""


def is_conflict(exc: BaseException) -> bool:
    """True for Delta's concurrent-modification errors (another writer committed first)."""
    text = f"{type(exc).__name__} {str(exc)[:4000]}"
    java = getattr(exc, "java_exception", None)
    if java is not None:
        with contextlib.suppress(Exception):  # a dead gateway: the message is all there is
            text += " " + str(java.getClass().getName())
    return any(name in text for name in _CONFLICT_NAMES)


def retry_on_conflict(op: Callable[[], T], what: str, attempts: int = 10) -> T:
    """op(), run again (with a growing, jittered pause) while Delta refuses it for a concurrent commit."""
    for attempt in range(attempts):
        try:
            return op()
        except Exception as exc:
            if not is_conflict(exc):
                raise
            hooks.note("conflict")  # evidence for the concurrency tests (armed test hooks only)
            if attempt == attempts - 1:
                raise ConflictError(
                    f"{what}: lost to concurrent writers {attempts} times; rerun the job (a rerun converges)"
                ) from exc
            time.sleep(min(0.25 * 2**attempt, 8.0) * (0.5 + random.random()))
    raise AssertionError("unreachable")


def sql_string(value: str) -> str:
    """A Spark SQL string literal (backslash escapes, Spark's default parser setting)."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def create_table(
    spark: SparkSession, lake: str, name: str, schema: StructType, partition_by: list[str] | None = None
) -> None:
    """Create <lake>/<name> empty with this schema unless it is a Delta table already."""
    path = table_path(lake, name)
    if DeltaTable.isDeltaTable(spark, path):
        return
    if name in STATS_COLUMNS:
        _create_if_new(spark, path, name, schema, partition_by)
        return
    builder = DeltaTable.createIfNotExists(spark).location(_qualified(path)).addColumns(schema)
    if partition_by:
        builder = builder.partitionedBy(*partition_by)
    builder.execute()


def create_table_once(
    spark: SparkSession, lake: str, name: str, schema: StructType, partition_by: list[str] | None = None
) -> None:
    """create_table, when other runs may create the same table at the same moment: whatever the race
    raises (a concurrent first commit, a _delta_log another run is writing), it ends with the table there."""
    path = table_path(lake, name)
    for attempt in range(10):
        try:
            create_table(spark, lake, name, schema, partition_by)
            return
        except Exception:
            if attempt == 9:
                raise
            time.sleep(0.5 * (1 + random.random()))
            if DeltaTable.isDeltaTable(spark, path):
                return


def add_columns(spark: SparkSession, lake: str, name: str, columns: dict[str, str]) -> None:
    """Add the missing ones of these nullable columns (name -> SQL type) to an existing table (a lake
    written by an older flowspark), and any of them that STATS_COLUMNS names to its statistics columns."""
    path = table_path(lake, name)
    table = DeltaTable.forPath(spark, path)
    missing = {c: t for c, t in columns.items() if c not in table.toDF().columns}
    if not missing:
        return
    spec = ", ".join(f"`{c}` {t}" for c, t in missing.items())
    spark.sql(f"ALTER TABLE delta.`{_qualified(path)}` ADD COLUMNS ({spec})")
    wanted = [c for c in STATS_COLUMNS.get(name, "").split(",") if c in missing]
    props = table.detail().select("properties").first()
    current = (props["properties"] or {}).get("delta.dataSkippingStatsColumns") if props else None
    if wanted and current:
        value = ",".join([current, *wanted])
        prop = f"'delta.dataSkippingStatsColumns' = '{value}'"
        spark.sql(f"ALTER TABLE delta.`{_qualified(path)}` SET TBLPROPERTIES ({prop})")


def committed(spark: SparkSession, lake: str, name: str, user_metadata: str, depth: int = 200) -> bool:
    """True if one of the table's last `depth` commits carries this userMetadata."""
    history = DeltaTable.forPath(spark, table_path(lake, name)).history(depth)
    return history.where(history["userMetadata"] == user_metadata).limit(1).count() > 0


def commit_of(
    spark: SparkSession, lake: str, name: str, app_id: str, depth: int = 1000
) -> tuple[int, str, dict] | None:
    """(version, userMetadata, operationMetrics) of the table's commit made for `app_id` by write_once (its
    userMetadata starts with '<app_id> '), the newest of the last `depth` commits; None if there is none."""
    history = DeltaTable.forPath(spark, table_path(lake, name)).history(depth)
    row = (
        history.where(history["userMetadata"].startswith(f"{app_id} "))
        .orderBy(history["version"].desc())
        .select("version", "userMetadata", "operationMetrics")
        .first()
    )
    return (int(row["version"]), str(row["userMetadata"]), dict(row["operationMetrics"] or {})) if row else None


def history_metadata(spark: SparkSession, lake: str, name: str, depth: int = 1000) -> list[str]:
    """The userMetadata of the table's last `depth` commits (None left out)."""
    history = DeltaTable.forPath(spark, table_path(lake, name)).history(depth)
    return [r[0] for r in history.where(history["userMetadata"].isNotNull()).select("userMetadata").collect()]


def read_version(spark: SparkSession, lake: str, name: str, version: int) -> DataFrame:
    """The table as it was at `version` (time travel)."""
    return spark.read.format("delta").option("versionAsOf", version).load(table_path(lake, name))


def properties(spark: SparkSession, lake: str, name: str) -> dict[str, str]:
    """The table's properties (TBLPROPERTIES), {} if it does not exist."""
    if not exists(spark, lake, name):
        return {}
    row = DeltaTable.forPath(spark, table_path(lake, name)).detail().select("properties").first()
    return dict(row["properties"] or {}) if row else {}


def create_with_properties(
    spark: SparkSession,
    lake: str,
    name: str,
    schema: StructType,
    partition_by: list[str] | None,
    props: dict[str, str],
) -> None:
    """Create <lake>/<name> empty with this schema, its statistics columns and these properties, unless it
    exists; whatever a concurrent creation raises, it ends with the table there."""
    path = table_path(lake, name)

    def create() -> None:
        if DeltaTable.isDeltaTable(spark, path):
            return
        builder = DeltaTable.createIfNotExists(spark).location(_qualified(path)).addColumns(schema)
        stats = [c for c in STATS_COLUMNS.get(name, "").split(",") if c in schema.fieldNames()]
        if stats:
            builder = builder.property("delta.dataSkippingStatsColumns", ",".join(stats))
        for k, v in props.items():
            builder = builder.property(k, v)
        if partition_by:
            builder = builder.partitionedBy(*partition_by)
        builder.execute()

    for attempt in range(10):
        try:
            create()
            return
        except Exception:
            if DeltaTable.isDeltaTable(spark, path):
                return
            if attempt == 9:
                raise
            time.sleep(0.5 * (1 + random.random()))


def write_once(
    df: DataFrame | Callable[[], DataFrame],
    lake: str,
    name: str,
    app_id: str,
    token: str,
    replace_where: str | None = None,
    partition_by: list[str] | None = None,
    max_records_per_file: int | None = None,
    merge_schema: bool = False,
    check: bool = False,
    storage: StorageConfig | None = None,
) -> bool | None:
    """Write df to <lake>/<name> at most once per `app_id`, whoever tries and however often.

    Delta's idempotent write: txnAppId = app_id, txnVersion = 1. Delta skips the write if the table has
    committed (app_id, 1), and refuses a concurrent one with the same app_id at commit (retried here, then
    skipped). `df` may be a function that builds the frame: it is called again for each attempt after a
    conflict, so a frame that reads this table sees the commit that made the previous attempt fail.
    `replace_where`: the rows matching it are removed in the same commit (overwrite with
    replaceWhere; every row of df must match it). The commit's userMetadata is '<app_id> <token>'.
    check: return True if this call committed, False if Delta skipped it (another attempt committed
    app_id); without check (one history read less) the return value is None. storage: write in its layout.
    """
    build = df if callable(df) else (lambda: df)
    frames = [build()]
    spark = frames[0].sparkSession
    path = table_path(lake, name)
    meta = f"{app_id} {token}"

    def op() -> None:
        frame = frames.pop() if frames else build()
        writer = (
            laid_out(frame, name, partition_by, storage)
            .write.format("delta")
            .option("txnAppId", app_id)
            .option("txnVersion", 1)
            .option("userMetadata", meta)
        )
        if replace_where and DeltaTable.isDeltaTable(spark, path):
            writer = writer.mode("overwrite").option("replaceWhere", replace_where)
        else:
            writer = writer.mode("append")
        if partition_by:
            writer = writer.partitionBy(*partition_by)
        if max_records_per_file:
            writer = writer.option("maxRecordsPerFile", max_records_per_file)
        if merge_schema:
            writer = writer.option("mergeSchema", "true")
        _create_if_new(spark, path, name, frame.schema, partition_by)
        with session_conf(spark, layout_conf(storage)):
            writer.save(path)

    retry_on_conflict(op, f"writing {name} for {app_id}")
    return committed(spark, lake, name, meta) if check else None


def _merge_sql(df: DataFrame, lake: str, name: str, statement: str) -> dict[str, int]:
    """Run a MERGE INTO the table USING df (alias s; the table is t) and return Delta's counts (num_inserted_rows,
    num_updated_rows, ...): SQL's MERGE returns them on both Delta lines (3.3's Python builder does not)."""
    import uuid

    view = f"flowspark_merge_{uuid.uuid4().hex}"
    df.createOrReplaceTempView(view)
    try:
        target = f"delta.`{_qualified(table_path(lake, name))}`"
        row = df.sparkSession.sql(f"MERGE INTO {target} t USING {view} s {statement}").first()
    finally:
        df.sparkSession.catalog.dropTempView(view)
    return {k: int(v or 0) for k, v in (row.asDict() if row is not None else {}).items()}


def insert_new(df: DataFrame, lake: str, name: str, condition: str) -> int:
    """Insert-only MERGE: each row of df (alias s) for which no row of the table (alias t) satisfies
    `condition` is inserted; nothing else changes. Concurrent ones conflict, so this is retried whole.
    Returns how many rows it inserted."""
    columns = DeltaTable.forPath(df.sparkSession, table_path(lake, name)).toDF().columns
    names = [f"`{c}`" for c in columns if c in df.columns]
    values = ", ".join("s." + n for n in names)
    statement = f"ON {condition} WHEN NOT MATCHED THEN INSERT ({', '.join(names)}) VALUES ({values})"
    got = retry_on_conflict(lambda: _merge_sql(df, lake, name, statement), f"claiming in {name}")
    return got.get("num_inserted_rows", 0)


def update_from(df: DataFrame, lake: str, name: str, on: str, when: str, values: dict[str, str]) -> int:
    """Update-only MERGE: the table's rows (t) matching a row of df (s) by `on` and meeting `when` get
    `values` (SQL expressions over t and s); retried on conflicts. Returns how many rows it updated."""
    sets = ", ".join(f"t.`{c}` = {v}" for c, v in values.items())
    statement = f"ON {on} WHEN MATCHED AND {when} THEN UPDATE SET {sets}"
    got = retry_on_conflict(lambda: _merge_sql(df, lake, name, statement), f"updating {name}")
    return got.get("num_updated_rows", 0)


def update_where(spark: SparkSession, lake: str, name: str, condition: str, values: dict[str, str]) -> int:
    """UPDATE <lake>/<name> SET values (SQL expressions) WHERE condition, retried on conflicts; how many rows
    it changed."""
    sets = ", ".join(f"`{c}` = {v}" for c, v in values.items())
    target = f"delta.`{_qualified(table_path(lake, name))}`"

    def op() -> int:
        row = spark.sql(f"UPDATE {target} SET {sets} WHERE {condition}").first()
        return int(row[0] or 0) if row is not None else 0

    return retry_on_conflict(op, f"updating {name}")


def delete_where(spark: SparkSession, lake: str, name: str, condition: str) -> None:
    """DELETE FROM <lake>/<name> WHERE condition, retried on conflicts."""
    retry_on_conflict(
        lambda: DeltaTable.forPath(spark, table_path(lake, name)).delete(condition), f"deleting from {name}"
    )


# ---------------------------------------------------------------- storage (flowspark stats, maintain)

_COMMIT_FILE = re.compile(r"^(\d{20})\.json$")
_CHECKPOINT_FILE = re.compile(r"^(\d{20})\.checkpoint(?:\.(\d{10})\.(\d{10}))?\.parquet$")
# The add/remove actions of a log file (JSON commit or classic Parquet checkpoint): what a snapshot's
# file list is replayed from. deletionVector: rows a file still holds = numRecords - its cardinality.
_LOG_ACTIONS = (
    "add struct<path:string, partitionValues:map<string,string>, size:bigint, stats:string, "
    "deletionVector:struct<cardinality:bigint>>, remove struct<path:string>"
)


def _hadoop_fs(spark: SparkSession, uri: str) -> tuple[Any, Any]:
    jvm = spark.sparkContext._jvm
    path = jvm.org.apache.hadoop.fs.Path(uri)  # type: ignore[union-attr]
    return path.getFileSystem(spark.sparkContext._jsc.hadoopConfiguration()), path  # type: ignore[union-attr]


def lake_tables(spark: SparkSession, lake: str, depth: int = 3) -> list[str]:
    """The names of the Delta tables of a lake (folders holding a _delta_log; reports/<report>/<section>
    included), sorted. A lake that does not exist has none."""
    fs, root = _hadoop_fs(spark, normalise_uri(lake))
    if not fs.exists(root):
        return []
    found, stack = [], [(root, "", 0)]
    while stack:
        folder, rel, level = stack.pop()
        subs = [st.getPath() for st in fs.listStatus(folder) if st.isDirectory()]
        if any(p.getName() == "_delta_log" for p in subs):
            found.append(rel)
            continue
        if level < depth:
            stack += [(p, f"{rel}/{p.getName()}".lstrip("/"), level + 1) for p in subs
                      if not p.getName().startswith(("_", "."))]
    return sorted(n for n in found if n)


SCRATCH = "_scratch"  # <lake>/_scratch/<claim>.<token>: a claim's parsed rows while its tables are written


def scratch_path(lake: str, claim_id: str, token: str) -> str:
    """Where one attempt at a claim keeps its parsed rows (its own folder: two runs resuming one claim at once
    never share one). Not a table: lake_tables skips folders starting with '_'."""
    return f"{normalise_uri(lake)}/{SCRATCH}/{claim_id}.{token}"


def spill(df: DataFrame, path: str) -> DataFrame:
    """Write df once, as a Delta table of its own at path, and return it read back: later reads take only the
    columns they need. Parquet holds nulls at next to no cost, where Spark's columnar cache stores each null's
    position. Delta, not plain Parquet: its files are written where they stay (no job commit renaming them,
    which is a copy on S3). lz4 and no file statistics: the table lives for one claim."""
    conf = {
        "spark.sql.parquet.compression.codec": "lz4",
        "spark.databricks.delta.properties.defaults.dataSkippingNumIndexedCols": "0",
        "spark.databricks.delta.stats.collect": "false",
    }
    with session_conf(df.sparkSession, conf):
        df.write.format("delta").mode("overwrite").option("parquet.block.size", 32 << 20).save(path)
    return df.sparkSession.read.format("delta").load(path)


def remove(spark: SparkSession, path: str) -> None:
    """Delete a folder (recursively); nothing there is not an error."""
    fs, p = _hadoop_fs(spark, path)
    if fs.exists(p):
        fs.delete(p, True)


def remove_stale_scratch(spark: SparkSession, lake: str, hours: float = 24.0) -> list[str]:
    """Remove the scratch folders of attempts that ended without removing theirs (a crash, a kill) and whose
    newest file is older than `hours` (an attempt running now keeps writing or reading its own, and no claim
    runs for a day). By the newest file, not the folder's time: S3 has no folders. Returns their names."""
    fs, root = _hadoop_fs(spark, f"{normalise_uri(lake)}/{SCRATCH}")
    if not fs.exists(root):
        return []
    cutoff, gone = (time.time() - hours * 3600) * 1000, []
    for st in fs.listStatus(root):
        newest, files = st.getModificationTime(), fs.listFiles(st.getPath(), True)
        while files.hasNext():
            newest = max(newest, files.next().getModificationTime())
        if newest < cutoff:
            fs.delete(st.getPath(), True)
            gone.append(st.getPath().getName())
    return gone


def live_files(spark: SparkSession, lake: str, name: str) -> DataFrame:
    """The data files of the table's current snapshot, replayed from its Delta log with Spark (the newest
    classic checkpoint and the JSON commits after it; no data file is read): columns table, path (relative
    to the table), bytes, rows (null for a file written without statistics), partition (map of partition
    values). Works on both Delta lines (3.3, 4.0): it reads the log's documented file format, no Delta API."""
    log_dir = f"{table_path(lake, name)}/_delta_log"
    fs, path = _hadoop_fs(spark, log_dir)
    if not fs.exists(path):
        raise FileNotFoundError(missing_table(lake, name))
    commits: dict[int, str] = {}
    checkpoints: dict[int, dict[int, tuple[str, int]]] = {}
    for st in fs.listStatus(path):
        file_name = st.getPath().getName()
        if m := _COMMIT_FILE.match(file_name):
            commits[int(m.group(1))] = st.getPath().toString()
        elif m := _CHECKPOINT_FILE.match(file_name):
            part, parts = int(m.group(2) or 1), int(m.group(3) or 1)
            checkpoints.setdefault(int(m.group(1)), {})[part] = (st.getPath().toString(), parts)
    complete = [v for v, ps in checkpoints.items() if len(ps) == next(iter(ps.values()))[1]]
    start = max(complete, default=-1)
    newest = max([*commits, start])
    missing = [v for v in range(start + 1, newest + 1) if v not in commits]
    if newest < 0 or missing:
        raise RuntimeError(
            f"cannot replay the Delta log of {name}: commits {missing[:3]} missing after checkpoint {start} "
            "(log files cleaned up and no classic checkpoint: flowspark reads classic checkpoints only)"
        )
    parts = []
    if start >= 0:
        cp = spark.read.schema(_LOG_ACTIONS).parquet(*[p for p, _ in checkpoints[start].values()])
        parts.append(cp.withColumn("v", F.lit(start).cast("long")))
    later = [commits[v] for v in range(start + 1, newest + 1)]
    if later:
        js = spark.read.schema(_LOG_ACTIONS).json(later)
        version = F.regexp_extract(F.col("_metadata.file_path"), r"(\d{20})\.json$", 1).cast("long")
        parts.append(js.withColumn("v", version))
    actions = parts[0]
    for p in parts[1:]:
        actions = actions.unionByName(p)
    adds = actions.where(F.col("add").isNotNull()).select(
        "v",
        F.col("add.path").alias("path"),
        F.lit(True).alias("is_add"),
        F.col("add.size").alias("bytes"),
        (
            F.get_json_object("add.stats", "$.numRecords").cast("long")
            - F.coalesce(F.col("add.deletionVector.cardinality"), F.lit(0))
        ).alias("rows"),
        F.col("add.partitionValues").alias("partition"),
    )
    removes = actions.where(F.col("remove").isNotNull()).select(
        "v",
        F.col("remove.path").alias("path"),
        F.lit(False).alias("is_add"),
        F.lit(None).cast("long").alias("bytes"),
        F.lit(None).cast("long").alias("rows"),
        F.lit(None).cast("map<string,string>").alias("partition"),
    )
    # A file's last action decides; in one commit an add after a remove of the same path (a deletion vector
    # replaced) leaves it live.
    last = Window.partitionBy("path").orderBy(F.desc("v"), F.desc("is_add"))
    return (
        adds.unionByName(removes)
        .withColumn("_n", F.row_number().over(last))
        .where("_n = 1 AND is_add")
        .select(F.lit(name).alias("table"), "path", "bytes", "rows", "partition")
    )


def storage_by_date(spark: SparkSession, lake: str, names: list[str], date_column: str) -> list[dict[str, Any]]:
    """Per table and value of the partition column `date_column` (None: the table is not partitioned by it):
    files, bytes and rows of the current snapshot, from the Delta logs (live_files; one Spark job for all
    tables). rows is None when a file lacks statistics. Bounded by tables x dates."""
    if not names:
        return []
    frames = [live_files(spark, lake, n) for n in names]
    files = frames[0]
    for f in frames[1:]:
        files = files.unionByName(f)
    grouped = (
        files.groupBy("table", F.col("partition").getItem(date_column).alias("date"))
        .agg(
            F.count(F.lit(1)).alias("files"),
            F.sum("bytes").alias("bytes"),
            F.sum("rows").alias("rows"),
            F.count("rows").alias("files_with_rows"),
        )
        .collect()
    )
    out = []
    for r in grouped:
        rows = int(r["rows"]) if r["rows"] is not None and r["files_with_rows"] == r["files"] else None
        out.append(dict(table=r["table"], date=r["date"], files=int(r["files"]), bytes=int(r["bytes"] or 0), rows=rows))
    out += [dict(table=n, date=None, files=0, bytes=0, rows=0) for n in sorted(set(names) - {d["table"] for d in out})]
    return sorted(out, key=lambda d: (d["table"], d["date"] or ""))


def _dates_condition(date_column: str, date_from: dt.date | None, date_to: dt.date | None) -> str | None:
    conds = []
    if date_from is not None:
        conds.append(f"`{date_column}` >= DATE'{date_from.isoformat()}'")
    if date_to is not None:
        conds.append(f"`{date_column}` <= DATE'{date_to.isoformat()}'")
    return " AND ".join(conds) or None


def optimize(
    spark: SparkSession,
    lake: str,
    name: str,
    storage: StorageConfig,
    date_column: str | None = None,
    date_from: dt.date | None = None,
    date_to: dt.date | None = None,
) -> tuple[int, int]:
    """OPTIMIZE (bin-packing compaction, Delta 3.3 and 4.0) of the table, or of the days [date_from, date_to]
    of its partition column: each day's small files (under target_file_mb / 32) become files of about
    storage.target_file_mb, written in the storage layout's Parquet settings. A day of one file is left alone.
    Returns (files removed, added)."""
    table = DeltaTable.forPath(spark, table_path(lake, name))
    cond = _dates_condition(date_column, date_from, date_to) if date_column else None
    conf = {
        **layout_conf(storage),
        "spark.databricks.delta.optimize.maxFileSize": str(storage.target_file_mb << 20),
        # Only files under 1/32 of the target (8 MB of 256) are compacted (Delta's default: every file under
        # 1 GB). Measured at 10 M records: a day one run wrote (4 files of 41 MB, 10 of 16 MB) took 65 s to
        # rewrite in one task per table, for nothing; the small files of hourly appends are still compacted.
        "spark.databricks.delta.optimize.minFileSize": str(storage.target_file_mb << 15),
    }

    def op() -> Any:
        builder = table.optimize()
        if cond:
            builder = builder.where(cond)
        with session_conf(spark, conf):
            return builder.executeCompaction().select("metrics.numFilesRemoved", "metrics.numFilesAdded").first()

    row = retry_on_conflict(op, f"optimizing {name}")
    return (int(row[0] or 0), int(row[1] or 0)) if row else (0, 0)


# Delta refuses VACUUM RETAIN under its default (168 h) unless this check is off.
_RETENTION_CHECK = "spark.databricks.delta.retentionDurationCheck.enabled"
# VACUUM lists the table's folders in a Spark job of this many tasks, Spark's default 10 000: 26-44 s of
# empty tasks on a laptop for a table of a few files (measured, Delta 4.0, local[2]), before any work.
_LISTING_PARALLELISM = "spark.sql.sources.parallelPartitionDiscovery.parallelism"


def _listing_conf(spark: SparkSession) -> dict[str, str]:
    """A listing parallelism sized to the cluster (4 tasks per core, at least 8), unless the session sets one."""
    if spark.conf.get(_LISTING_PARALLELISM, None) is not None:
        return {}
    return {_LISTING_PARALLELISM: str(max(8, 4 * spark.sparkContext.defaultParallelism))}


def vacuum(spark: SparkSession, lake: str, name: str, retention_hours: int, dry_run: bool = False) -> int | None:
    """VACUUM: delete the files no version younger than retention_hours references. dry_run: only count
    them (returns the count). A real run returns Delta's count when its history records one, else None."""
    path = _qualified(table_path(lake, name))
    conf = {_RETENTION_CHECK: "false"} if retention_hours < 168 else {}
    with session_conf(spark, {**conf, **_listing_conf(spark)}):
        if dry_run:
            return spark.sql(f"VACUUM delta.`{path}` RETAIN {int(retention_hours)} HOURS DRY RUN").count()
        DeltaTable.forPath(spark, path).vacuum(float(retention_hours))
    row = DeltaTable.forPath(spark, path).history(1).select("operation", "operationMetrics").first()
    if row and row["operation"] == "VACUUM END" and row["operationMetrics"]:
        return int(row["operationMetrics"].get("numDeletedFiles", 0))
    return None


def delete_dates(spark: SparkSession, lake: str, name: str, date_column: str, dates: list[dt.date]) -> None:
    """DELETE the rows of these days (a partition column: Delta removes whole files, rewrites none)."""
    if dates:
        days = ", ".join(f"DATE'{d.isoformat()}'" for d in sorted(dates))
        delete_where(spark, lake, name, f"`{date_column}` IN ({days})")


# ---------------------------------------------------------------- reports (flowspark report)

REPORTS = "reports"


def report_table(report: str, section: str) -> str:
    """The table name of one section of a report: reports/<report>/<section>."""
    return f"{REPORTS}/{report}/{section}"


def replace_report(df: DataFrame, lake: str, name: str, date_from: dt.date | None, date_to: dt.date | None) -> None:
    """Atomically replace the rows of one report range in <lake>/<name>. df carries the range in its
    date_from / date_to columns (null = open-ended); rows of other ranges stay."""
    conds = [
        f"{col} = DATE'{day.isoformat()}'" if day is not None else f"{col} IS NULL"
        for col, day in (("date_from", date_from), ("date_to", date_to))
    ]
    path = table_path(lake, name)
    # mergeSchema: a report may gain a column (e.g. pkt-dstaddr evidence) without a manual migration.
    writer = df.write.format("delta").mode("overwrite").option("mergeSchema", "true")
    if DeltaTable.isDeltaTable(df.sparkSession, path):
        writer = writer.option("replaceWhere", " AND ".join(conds))
    writer.save(path)


# ---------------------------------------------------------------- interfaces (flowspark interfaces)

INTERFACES = "interfaces"
FLOW_LOGS = "flow_logs"  # DescribeFlowLogs snapshots (flowspark interfaces): the tag keys of the records' tag fields


def append_snapshot(df: DataFrame, lake: str, name: str) -> None:
    """Append one snapshot (its rows share one snapshot_time) to <lake>/<name>; earlier snapshots stay
    (the history), readers take the latest per key."""
    df.write.format("delta").mode("append").option("mergeSchema", "true").save(table_path(lake, name))
