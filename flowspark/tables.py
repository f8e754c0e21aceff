"""The one place that reads and writes Delta tables of the lake.

A lake is a folder or an S3 prefix; each table is `<lake>/<name>`. Writes are idempotent by
construction: a job replaces exactly the date range it computed (`replaceWhere`), or appends only
what it has not written before (ingest keeps a ledger of the files it has loaded).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from delta.tables import DeltaTable
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from flowspark.sources import normalise_uri

FLOW_RECORDS = "flow_records"
FLOW_REJECTS = "flow_rejects"
INGESTED_FILES = "ingested_files"
INGEST_STATS = "ingest_stats"
FLOWS = "flows"
DEDUP_STATS = "dedup_stats"
DEDUP_STATUS_COUNTS = "dedup_status_counts"
CONVERSATIONS = "conversations"

# Delta collects min/max/null-count statistics for these columns only (table property
# delta.dataSkippingStatsColumns, set when a table is created). The default, the first 32 columns, made
# statistics 14% of ingest's CPU time; these are the columns queries filter on (time, account, interface,
# port, action), and event_date is a partition column, pruned without statistics.
STATS_COLUMNS: dict[str, str] = {
    FLOW_RECORDS: "start,end,account_id,interface_id,dstport,action,log_status",
    FLOWS: "window_start,start,end,account_id,interface_id,dstport,action,records",
    CONVERSATIONS: "window_start,start,end,account_id,interface_id,server_port,action,records",
}


@contextmanager
def session_conf(spark: SparkSession, conf: dict[str, str]) -> Iterator[None]:
    """Set SQL confs for the duration of a block, then put back what was there (a shared session)."""
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


def _creation_conf(spark: SparkSession, path: str, name: str) -> dict[str, str]:
    """Table properties for a table this write is about to create (none for an existing table)."""
    if name not in STATS_COLUMNS or DeltaTable.isDeltaTable(spark, path):
        return {}
    return {"spark.databricks.delta.properties.defaults.dataSkippingStatsColumns": STATS_COLUMNS[name]}


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
    with session_conf(df.sparkSession, _creation_conf(df.sparkSession, path, name)):
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
    with session_conf(spark, _creation_conf(spark, path, name)):
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


def in_dates(df: DataFrame, date_from: dt.date | None, date_to: dt.date | None) -> DataFrame:
    """Rows whose event_date is in [date_from, date_to] (all rows when both are None)."""
    if date_from is not None:
        df = df.where(F.col("event_date") >= F.lit(date_from))
    if date_to is not None:
        df = df.where(F.col("event_date") <= F.lit(date_to))
    return df
