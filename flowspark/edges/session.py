"""SparkSession factory: Delta, S3A and local defaults. Never called at import time.

JVM dependencies (Delta and hadoop-aws with its AWS SDK) come from Maven Central through Spark's own
Ivy resolver, once, into a cache folder (``$FLOWSPARK_CACHE``, default ``~/.cache/flowspark``). The
resolved jar paths are written to a manifest; later sessions put those jars straight on the driver
class path, so they start without network access and without Ivy's resolution time. On EMR and Glue
(``[spark] jars = "cluster"``) nothing is resolved: the platform's Delta and S3 connectors are used.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from pyspark.sql import SparkSession

from flowspark.edges.config import Config, ConfigError

log = logging.getLogger("flowspark")

# The JVM packages of each supported Spark line, defined here only. hadoop-aws must match the Hadoop
# version bundled with pyspark (3.4.1 in Spark 4.0, 3.3.4 in 3.5); it brings the AWS SDK bundle it was
# built against.
JVM_PACKAGES: dict[str, list[str]] = {
    "4.0": ["io.delta:delta-spark_2.13:4.0.1", "org.apache.hadoop:hadoop-aws:3.4.1"],
    "3.5": ["io.delta:delta-spark_2.12:3.3.2", "org.apache.hadoop:hadoop-aws:3.3.4"],
}


def spark_line() -> str:
    import pyspark

    major_minor = ".".join(pyspark.__version__.split(".")[:2])
    if major_minor not in JVM_PACKAGES:
        raise ConfigError(
            f"pyspark {pyspark.__version__} is not a supported Spark line; use one of "
            f"{', '.join(sorted(JVM_PACKAGES))} (see README, 'Spark lines')"
        )
    return major_minor


def cache_dir() -> Path:
    return Path(os.environ.get("FLOWSPARK_CACHE", Path.home() / ".cache" / "flowspark"))


def _manifest_path(line: str) -> Path:
    return cache_dir() / f"jars-spark{line}.json"


def cached_jars(line: str) -> list[str] | None:
    """The resolved jar files for a Spark line, or None if they are not all on disk."""
    manifest = _manifest_path(line)
    if not manifest.exists():
        return None
    data = json.loads(manifest.read_text())
    if data.get("packages") != JVM_PACKAGES[line]:
        return None
    jars = [str(p) for p in data.get("jars", [])]
    if not jars or not all(Path(j).exists() for j in jars):
        return None
    return jars


def _record_manifest(line: str, spark: SparkSession) -> None:
    resolved = spark.sparkContext.getConf().get("spark.jars", "")
    jars = [j.removeprefix("file://") for j in resolved.split(",") if j]
    if jars:
        path = _manifest_path(line)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({"packages": JVM_PACKAGES[line], "jars": jars}, indent=1))


def _base_conf(cfg: Config, submitted: bool = False) -> dict[str, str]:
    conf = {
        "spark.sql.extensions": "io.delta.sql.DeltaSparkSessionExtension",
        "spark.sql.catalog.spark_catalog": "org.apache.spark.sql.delta.catalog.DeltaCatalog",
        "spark.sql.session.timeZone": "UTC",
        "spark.sql.shuffle.partitions": str(cfg.spark.shuffle_partitions),
        "spark.ui.enabled": str(cfg.spark.ui).lower(),
        "spark.ui.showConsoleProgress": "false",
        # Flow logs arrive as thousands of small objects: list them on the driver (one LIST per
        # folder) instead of a Spark job with one task per file.
        "spark.sql.sources.parallelPartitionDiscovery.threshold": "100000",
        # Delta's state reconstruction uses 50 partitions by default: far too many for a laptop.
        "spark.databricks.delta.snapshotPartitions": str(max(2, cfg.spark.shuffle_partitions)),
        "spark.databricks.delta.schema.autoMerge.enabled": "false",
        # The parse plan has ~70 typed columns derived from one split line; constraint propagation
        # over them costs minutes of planning (InferFiltersFromConstraints) and buys nothing here.
        "spark.sql.constraintPropagation.enabled": "false",
        # Gzipped text and Parquet writes: zstd gives ~25% smaller tables than snappy at similar speed.
        "spark.sql.parquet.compression.codec": "zstd",
        # Partitioned writes (event_date) keep a few files open at once instead of sorting every row by
        # partition first (measured: 5 s of a 37 s compaction of 10 M records); more dates than this in
        # one task fall back to the sort.
        "spark.sql.maxConcurrentOutputFileWriters": "4",
        # 8-byte microsecond timestamps with real min/max statistics, instead of legacy 12-byte INT96.
        "spark.sql.parquet.outputTimestampType": "TIMESTAMP_MICROS",
    }
    # The parse compiles to large generated methods, which HotSpot leaves to the interpreter unless told
    # otherwise: the flag goes to every JVM that runs tasks (executors on a cluster, the driver locally).
    jvm_flags = "-XX:+UseParallelGC -XX:-DontCompileHugeMethods -Duser.timezone=UTC"
    conf["spark.executor.extraJavaOptions"] = jvm_flags
    if cfg.spark.master.startswith("local") and not submitted:
        # A local session talks to itself only: on loopback, whatever the host name resolves to.
        conf["spark.driver.host"] = "127.0.0.1"
        conf["spark.driver.bindAddress"] = "127.0.0.1"
        conf["spark.driver.memory"] = cfg.spark.driver_memory
        conf["spark.driver.extraJavaOptions"] = jvm_flags
    s3 = cfg.s3
    conf["spark.hadoop.fs.s3.impl"] = (
        "org.apache.hadoop.fs.s3a.S3AFileSystem" if s3.scheme == "s3a" and cfg.spark.jars == "resolve" else ""
    )
    if not conf["spark.hadoop.fs.s3.impl"]:
        del conf["spark.hadoop.fs.s3.impl"]
    if s3.endpoint:
        conf["spark.hadoop.fs.s3a.endpoint"] = s3.endpoint
        conf["spark.hadoop.fs.s3a.connection.ssl.enabled"] = str(s3.endpoint.startswith("https")).lower()
    if s3.path_style:
        conf["spark.hadoop.fs.s3a.path.style.access"] = "true"
    if s3.region:
        conf["spark.hadoop.fs.s3a.endpoint.region"] = s3.region
    if s3.anonymous:
        conf["spark.hadoop.fs.s3a.aws.credentials.provider"] = (
            "org.apache.hadoop.fs.s3a.AnonymousAWSCredentialsProvider"
        )
    conf.update(cfg.spark.conf)
    return conf


def launched_by_spark_submit() -> bool:
    """True when spark-submit (or Glue, or EMR) started this Python driver: the JVM already runs with its
    master, class path and JVM options, which a builder can no longer change."""
    return "PYSPARK_GATEWAY_PORT" in os.environ


_JVM_LOG: list[Path] = []


def jvm_log() -> Path | None:
    """The file the JVM's own output (log4j, SLF4J, JVM warnings) went to, if the session was quiet."""
    return _JVM_LOG[-1] if _JVM_LOG else None


@contextmanager
def _stderr_to(path: Path | None) -> Iterator[None]:
    """Point file descriptor 2 at `path` while the JVM is launched, so the JVM (which inherits it) writes
    its log lines and warnings there for its whole life; Python's stderr is the terminal again after."""
    if path is None:
        yield
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    sys.stderr.flush()
    saved = os.dup(2)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.dup2(fd, 2)
    try:
        yield
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)
        os.close(saved)
        os.close(fd)


def create_session(cfg: Config, quiet: bool = False) -> SparkSession:
    """Build the SparkSession for a job. The only place in flowspark that creates one.

    quiet: the JVM's output goes to a log file under the cache folder (see jvm_log()) instead of the
    terminal, so a person sees flowspark's own lines only (the CLI without -v).
    """
    active = SparkSession.getActiveSession()
    if active is not None:
        # A session that already runs (Glue's, a notebook's, a test suite's, `flowspark run`'s) is used as
        # it is: re-applying this config through the builder would change its settings under its owner.
        return active
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    t0 = time.time()
    submitted = launched_by_spark_submit()
    builder = SparkSession.builder.appName(cfg.spark.app_name)
    if cfg.spark.jars == "resolve" and not submitted:
        # Under spark-submit its --master wins: setting the config's local[*] here would silently run a
        # cluster job inside the driver.
        builder = builder.master(cfg.spark.master)
    for key, value in _base_conf(cfg, submitted).items():
        builder = builder.config(key, value)
    first_resolution = False
    if cfg.spark.jars == "resolve" and not submitted:
        line = spark_line()
        jars = cached_jars(line)
        if jars is not None:
            cp = os.pathsep.join(jars)
            builder = builder.config("spark.driver.extraClassPath", cp).config("spark.executor.extraClassPath", cp)
        else:
            first_resolution = True
            log.warning("resolving Delta and hadoop-aws jars from Maven Central (first run only)...")
            builder = builder.config("spark.jars.packages", ",".join(JVM_PACKAGES[line])).config(
                "spark.jars.ivy", str(cache_dir() / "ivy")
            )
    log_file = None
    if quiet and not submitted:
        log_file = cache_dir() / "logs" / f"spark-{time.strftime('%Y%m%dT%H%M%S')}-{os.getpid()}.log"
        _JVM_LOG.append(log_file)
    with _stderr_to(log_file):
        spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel(cfg.spark.log_level)
    if submitted and not _has_delta(spark):
        raise ConfigError(
            "Delta Lake is not on the cluster's class path: pass the JVM packages to spark-submit, "
            '--packages "$(flowspark packages)", or use the platform\'s Delta (EMR: delta in the cluster '
            "configuration; Glue: --datalake-formats delta)"
        )
    if first_resolution:
        _record_manifest(spark_line(), spark)
    log.info("Spark %s session ready in %.1fs", spark.version, time.time() - t0)
    return spark


def _has_delta(spark: SparkSession) -> bool:
    """Delta's classes are loadable (spark-submit's --packages go to Spark's own class loader)."""
    from delta.tables import DeltaTable

    try:
        DeltaTable.isDeltaTable(spark, "file:///nonexistent-flowspark-probe")
    except Exception:
        return False
    return True


def packages() -> str:
    """The --packages value for spark-submit: Delta and hadoop-aws of the installed Spark line."""
    return ",".join(JVM_PACKAGES[spark_line()])


def resolve_jars(cfg: Config, quiet: bool = True) -> list[str]:
    """Resolve and cache the JVM dependencies now (the set-up step); returns the jar paths. quiet: Ivy's
    output (every download, proxy warnings) goes to the JVM log file (jvm_log()), not the terminal."""
    line = spark_line()
    jars = cached_jars(line)
    if jars is None:
        spark = create_session(cfg, quiet=quiet)
        spark.stop()
        jars = cached_jars(line)
        if jars is None:
            where = jvm_log() if quiet else "the output above"
            raise RuntimeError(f"Ivy resolution finished but no jars were recorded; see {where}")
    return jars
