"""The one place that reads and writes Delta tables of the lake.

A lake is a folder or an S3 prefix; each table is `<lake>/<name>`. Writes are idempotent by
construction: a job replaces exactly the date range it computed (`replaceWhere`), or appends only
what it has not written before (ingest keeps a ledger of the files it has loaded).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import random
import time
from collections.abc import Callable
from typing import Any, TypeVar

from delta.tables import DeltaTable
from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql.types import StructType

from flowspark.edges.sources import normalise_uri

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

# Delta collects min/max/null-count statistics for these columns only (table property
# delta.dataSkippingStatsColumns, set when a table is created). The default, the first 32 columns, made
# statistics 14% of ingest's CPU time; these are the columns queries filter on (time, account, interface,
# port, action), and event_date is a partition column, pruned without statistics.
STATS_COLUMNS: dict[str, str] = {
    FLOW_RECORDS: "start,end,account_id,interface_id,dstport,action,log_status,ingest_id",
    FLOWS: "window_start,start,end,account_id,interface_id,dstport,action,records",
    CONVERSATIONS: "window_start,start,end,account_id,interface_id,server_port,action,records",
}


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


def table_path(lake: str, name: str) -> str:
    return f"{normalise_uri(lake)}/{name}"


def exists(spark: SparkSession, lake: str, name: str) -> bool:
    return bool(DeltaTable.isDeltaTable(spark, table_path(lake, name)))


def read(spark: SparkSession, lake: str, name: str) -> DataFrame:
    path = table_path(lake, name)
    if not DeltaTable.isDeltaTable(spark, path):
        raise FileNotFoundError(f"no Delta table at {path}: run the job that writes '{name}' first")
    return spark.read.format("delta").load(path)


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
) -> None:
    """Atomically replace the rows of [date_from, date_to] (all rows if both are None) with df."""
    path = table_path(lake, name)
    writer = df.write.format("delta").mode("overwrite")
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


def write_once(
    df: DataFrame,
    lake: str,
    name: str,
    app_id: str,
    token: str,
    replace_where: str | None = None,
    partition_by: list[str] | None = None,
    max_records_per_file: int | None = None,
    merge_schema: bool = False,
    check: bool = False,
) -> bool | None:
    """Write df to <lake>/<name> at most once per `app_id`, whoever tries and however often.

    Delta's idempotent write: txnAppId = app_id, txnVersion = 1. Delta skips the write if the table has
    committed (app_id, 1), and refuses a concurrent one with the same app_id at commit (retried here, then
    skipped). `replace_where`: the rows matching it are removed in the same commit (overwrite with
    replaceWhere; every row of df must match it). The commit's userMetadata is '<app_id> <token>'.
    check: return True if this call committed, False if Delta skipped it (another attempt committed
    app_id); without check (one history read less) the return value is None.
    """
    spark = df.sparkSession
    path = table_path(lake, name)
    meta = f"{app_id} {token}"

    def op() -> None:
        writer = (
            df.write.format("delta").option("txnAppId", app_id).option("txnVersion", 1).option("userMetadata", meta)
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
        _create_if_new(spark, path, name, df.schema, partition_by)
        writer.save(path)

    retry_on_conflict(op, f"writing {name} for {app_id}")
    return committed(spark, lake, name, meta) if check else None


def insert_new(df: DataFrame, lake: str, name: str, condition: str) -> None:
    """Insert-only MERGE: each row of df (alias s) for which no row of the table (alias t) satisfies
    `condition` is inserted; nothing else changes. Concurrent ones conflict, so this is retried whole."""
    spark = df.sparkSession
    columns = DeltaTable.forPath(spark, table_path(lake, name)).toDF().columns
    values: dict[str, str | Column] = {c: f"s.`{c}`" for c in columns if c in df.columns}

    def op() -> None:
        target = DeltaTable.forPath(spark, table_path(lake, name))
        target.alias("t").merge(df.alias("s"), condition).whenNotMatchedInsert(values=values).execute()

    retry_on_conflict(op, f"claiming in {name}")


def update_where(spark: SparkSession, lake: str, name: str, condition: str, values: dict[str, str]) -> None:
    """UPDATE <lake>/<name> SET values (SQL expressions) WHERE condition, retried on conflicts."""
    exprs: dict[str, str | Column] = dict(values)
    retry_on_conflict(
        lambda: DeltaTable.forPath(spark, table_path(lake, name)).update(condition, exprs), f"updating {name}"
    )


def delete_where(spark: SparkSession, lake: str, name: str, condition: str) -> None:
    """DELETE FROM <lake>/<name> WHERE condition, retried on conflicts."""
    retry_on_conflict(
        lambda: DeltaTable.forPath(spark, table_path(lake, name)).delete(condition), f"deleting from {name}"
    )


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
