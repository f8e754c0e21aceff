"""The catalog job: every Delta table of a lake registered by name, in the Spark session's catalog (`spark`:
CREATE TABLE ... USING DELTA LOCATION, so `spark.table("db.flows")` works, and on EMR with the Glue Data
Catalog as metastore, in Glue) or through the Glue API the way Athena reads Delta tables (`glue`).

Idempotent: a table already registered at the same location is left (Spark: the Delta log is its schema)
or updated (Glue: columns and comments follow a schema change); one registered elsewhere, or by something
else, is refused with one line."""

from __future__ import annotations

from dataclasses import dataclass, field

from delta.tables import DeltaTable
from pyspark.sql import SparkSession

from flowspark.core.schema import FIELDS
from flowspark.edges import glue, tables
from flowspark.edges.config import Config, ConfigError
from flowspark.edges.session import launched_by_spark_submit
from flowspark.edges.sources import is_local

CATALOGS = ("spark", "glue")
# Every table a flowspark lake can hold, with what it is (the table's comment in the catalog).
KNOWN = {
    tables.FLOW_RECORDS: "one row per flow log record (ingest); partitioned by event_date",
    tables.FLOWS: "records of one flow key per window, counts summed (ingest, dedup); partitioned by event_date",
    tables.FLOW_REJECTS: "lines ingest could not read as records, with the reason",
    tables.INGESTED_FILES: "ingest's ledger: each object version read, its claim and outcome",
    tables.REJECTED_OBJECTS: "objects ingest could not read to their end, with the reason",
    tables.INGEST_STATS: "ingest's per-run figures",
    tables.DEDUP_STATS: "dedup's per-run figures",
    tables.DEDUP_STATUS_COUNTS: "records per log-status and day (dedup)",
    tables.CONVERSATIONS: "both directions of a flow in one row (dedup --bidirectional)",
    tables.TAG_COUNTS: "flows, records and bytes per tag and day (tag)",
    tables.PORT_PROTOCOL_COUNTS: "flows, records and bytes per port, protocol and day (tag)",
    tables.AWS_IP_RANGES: "AWS's published IP prefixes, every version loaded (ip-ranges)",
    tables.IP_CLASSES: "each address of flows: its class and AWS service/region (classify)",
    tables.INTERFACES: "snapshots of EC2's network interfaces (interfaces)",
    tables.FLOW_LOGS: "snapshots of EC2's flow logs with their tag fields' keys (interfaces)",
    tables.INTEL_LISTS: "threat-intelligence IP/CIDR lists, every version loaded (intel load)",
}
_FIELD_COMMENTS = {f.column: f"flow log field {f.aws} (version {f.version})" for f in FIELDS}


class CatalogError(ValueError):
    """A registration that would replace something it should not."""


@dataclass
class CatalogSummary:
    lake: str
    database: str
    catalog: str
    done: dict[str, str] = field(default_factory=dict)  # table -> created | updated | already there

    def text(self) -> str:
        lines = [f"catalog {self.catalog}: {len(self.done)} tables of {self.lake} in database {self.database}"]
        lines += [f"  {self.database}.{name:<22} {what}" for name, what in sorted(self.done.items())]
        return "\n".join(lines)


def catalog_name(table: str) -> str:
    """A lake table's name in a catalog: a report section's folder (reports/<report>/<section>) joined by __."""
    return table.replace("/", "__").replace("-", "_")


def _quote(name: str) -> str:
    if not name.replace("_", "").isalnum():
        raise CatalogError(f"{name!r}: a database or table name is letters, digits and _ only")
    return f"`{name}`"


def register_spark(spark: SparkSession, lake: str, database: str, names: list[str]) -> dict[str, str]:
    spark.sql(f"CREATE DATABASE IF NOT EXISTS {_quote(database)}")
    done = {}
    for name in names:
        where = tables._qualified(tables.table_path(lake, name))
        name = catalog_name(name)
        qualified = f"{_quote(database)}.{_quote(name)}"
        if spark.catalog.tableExists(f"{database}.{name}"):
            info = {r[0]: r[1] for r in spark.sql(f"DESCRIBE TABLE EXTENDED {qualified}").collect()}
            have, provider = str(info.get("Location", "")).rstrip("/"), str(info.get("Provider", "")).lower()
            if provider != "delta" or have != where.rstrip("/"):
                raise CatalogError(
                    f"{database}.{name} is registered already ({provider or 'no provider'} at {have or '?'}), not "
                    f"as this lake's Delta table {where}: give another --database, or drop that table"
                )
            done[name] = "already there"
            continue
        comment = KNOWN.get(name, "").replace("'", "")
        described = f" COMMENT '{comment}'" if comment else ""
        spark.sql(f"CREATE TABLE {qualified} USING DELTA LOCATION '{where}'{described}")
        done[name] = "created"
    return done


def glue_tables(spark: SparkSession, lake: str, names: list[str]) -> list[glue.GlueTable]:
    """Each table's columns (Hive types, from the Delta log), partition columns and comments, at its s3://
    location."""
    out = []
    for name in names:
        path = tables.table_path(lake, name)
        if is_local(path):
            raise CatalogError(f"--catalog glue registers tables on S3 (Athena reads s3://), not {path}")
        location = "s3://" + path.split("://", 1)[1]
        table = DeltaTable.forPath(spark, path)
        parts = list(table.detail().select("partitionColumns").first()[0] or [])
        schema = table.toDF().schema

        def col(f):  # noqa: ANN001, ANN202
            return (f.name, f.dataType.simpleString(), f.metadata.get("comment") or _FIELD_COMMENTS.get(f.name, ""))

        out.append(
            glue.GlueTable(
                name=catalog_name(name),
                location=location,
                columns=[col(f) for f in schema.fields if f.name not in parts],
                partition_keys=[col(schema[p]) for p in parts],
                comment=KNOWN.get(name, ""),
            )
        )
    return out


def check_metastore(cfg: Config, catalog: str) -> None:
    """--catalog spark from a session without a metastore would register into a catalog that is gone when
    the command ends: ConfigError, before Spark starts."""
    if catalog != "spark" or launched_by_spark_submit():
        return
    if cfg.spark.conf.get("spark.sql.catalogImplementation") != "hive":
        raise ConfigError(
            "--catalog spark needs a session with a metastore (a local session's catalog is gone when the command "
            'ends): set spark.sql.catalogImplementation = "hive" in [spark.conf] of your config, or spark-submit '
            "on a cluster whose metastore is set (EMR with the Glue Data Catalog)"
        )


def run_catalog(spark: SparkSession, lake: str, database: str, catalog: str = "spark") -> CatalogSummary:
    if catalog not in CATALOGS:
        raise ValueError(f"--catalog: {' or '.join(CATALOGS)}, not {catalog}")
    _quote(database)
    names = tables.lake_tables(spark, lake)
    if not names:
        raise FileNotFoundError(f"no Delta table under {lake}: run flowspark ingest (or flowspark run) first")
    summary = CatalogSummary(lake=lake, database=database, catalog=catalog)
    if catalog == "spark":
        summary.done = register_spark(spark, lake, database, names)
    else:
        try:
            summary.done = glue.register(database, glue_tables(spark, lake, names))
        except glue.CatalogConflictError as exc:
            raise CatalogError(str(exc)) from exc
    return summary
