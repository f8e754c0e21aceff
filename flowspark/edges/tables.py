"""The one place that reads and writes Delta tables of the lake.

A lake is a folder or an S3 prefix; each table is `<lake>/<name>`. Writes are idempotent by
construction: a job replaces exactly the date range it computed (`replaceWhere`), or appends only
what it has not written before (ingest keeps a ledger of the files it has loaded).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from delta.tables import DeltaTable
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql.types import StructType

from flowspark.edges.sources import normalise_uri

FLOW_RECORDS = "flow_records"
FLOW_REJECTS = "flow_rejects"
INGESTED_FILES = "ingested_files"
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
    FLOW_RECORDS: "start,end,account_id,interface_id,dstport,action,log_status",
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
