"""What every job shares: the reconciliation error, the one-row stats frames, and job-scoped SQL confs."""

from __future__ import annotations

import datetime as dt

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql.types import BooleanType, DoubleType, LongType, StringType, StructField, StructType, TimestampType

from flowspark.core.schema import parse_format
from flowspark.edges.config import Config, ConfigError, load_config, with_overrides
from flowspark.edges.session import create_session, jvm_log, packages, resolve_jars
from flowspark.edges.sources import is_local, to_local_path

__all__ = [
    "Config",
    "ConfigError",
    "ReconciliationError",
    "check_flow_format",
    "check_lake",
    "packages",
    "spark_log",
    "create_session",
    "load_config",
    "one_row",
    "resolve_jars",
    "utc_now",
    "with_overrides",
]


def check_flow_format(fmt: str) -> list[str]:
    """A --format string as field names; ValueError naming the problem (before any Spark work)."""
    return parse_format(fmt)


def check_lake(lake: str, writes: bool = True) -> None:
    """ConfigError unless `lake` can be a lake root: a folder (existing or not) or an object-store prefix; a
    local lake the command writes must be a folder this user can create or write (said before Spark starts)."""
    import os

    if not is_local(lake):
        return
    root = to_local_path(os.path.expanduser(lake))
    if os.path.isfile(root):
        raise ConfigError(f"--lake {lake} is a file; give a folder or s3://bucket/prefix for the Delta tables")
    if not writes:
        return
    probe = os.path.abspath(root)
    while not os.path.exists(probe):  # the nearest folder that exists is where the lake gets created
        probe = os.path.dirname(probe)
    if not os.path.isdir(probe):
        raise ConfigError(f"--lake {lake} cannot be created: {probe} is a file, not a folder; give another folder")
    if os.statvfs(probe).f_flag & os.ST_RDONLY:
        raise ConfigError(
            f"--lake {lake} cannot be written: {probe} is on a read-only file system; give a folder on one that "
            "can be written"
        )
    if not os.access(probe, os.W_OK | os.X_OK):
        raise ConfigError(
            f"--lake {lake} cannot be written: permission denied on {probe}; give a folder you can write, or fix "
            "its permissions"
        )


def require_local(lake: str, names: list[str]) -> None:
    """Before Spark starts (seconds, not the JVM's half minute): FileNotFoundError naming the command to run
    when a local lake lacks one of these tables. Object-store lakes are checked by the job itself."""
    import os

    from flowspark.edges.tables import missing_table

    if not is_local(lake):
        return
    root = to_local_path(os.path.expanduser(lake))
    for name in names:
        if not os.path.isdir(os.path.join(root, name, "_delta_log")):
            raise FileNotFoundError(missing_table(lake, name))


def local_table_exists(lake: str, name: str) -> bool:
    """Whether a local lake has this Delta table (False for an object-store lake: the job checks those)."""
    import os

    if not is_local(lake):
        return False
    return os.path.isdir(os.path.join(to_local_path(os.path.expanduser(lake)), name, "_delta_log"))


def require_source(source: str) -> None:
    """Before Spark starts: FileNotFoundError for a local source folder or file that is not there."""
    import os

    if is_local(source) and not os.path.exists(to_local_path(os.path.expanduser(source))):
        raise FileNotFoundError(f"source folder not found: {source} (give a folder, a file or s3://bucket/prefix)")


def spark_log() -> str | None:
    """Where the JVM's output went when the session was quiet (shown with a failure)."""
    path = jvm_log()
    return str(path) if path else None


class ReconciliationError(RuntimeError):
    """Records in != records out + records rejected. The job fails rather than lose data quietly."""


def utc_now() -> dt.datetime:
    """Now, as an aware UTC datetime: Spark stores it as that instant whatever the driver's zone."""
    return dt.datetime.now(dt.timezone.utc)


def one_row(spark: SparkSession, values: dict) -> DataFrame:
    """A one-row DataFrame with explicit types (None-safe), for the stats tables. Datetimes must be aware
    (utc_now): PySpark would read a naive one in the driver's local zone and store another instant."""

    def typ(v: object):
        if isinstance(v, bool):
            return BooleanType()
        if isinstance(v, int):
            return LongType()
        if isinstance(v, float):
            return DoubleType()
        if isinstance(v, dt.datetime):
            if v.tzinfo is None:
                raise ValueError(f"naive datetime {v!r} in a stats row: use utc_now() (an aware UTC instant)")
            return TimestampType()
        return StringType()

    schema = StructType([StructField(k, typ(v), True) for k, v in values.items()])
    return spark.createDataFrame([tuple(values.values())], schema)
