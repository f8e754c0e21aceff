"""The AWS Glue Data Catalog (boto3): Delta tables registered the way Athena reads them.

Athena queries a Delta table registered in Glue as an EXTERNAL_TABLE whose parameters hold
table_type=DELTA and whose location is the table's folder (Athena's "Get started with Delta Lake tables";
it reads the schema from the Delta log). The columns are written too, with comments, for the Glue console
and the engines that read them from the catalog. Credentials and region come from the standard AWS chain;
a local Glue (moto's server in the tests) is reached with AWS_ENDPOINT_URL_GLUE, as boto3 supports.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class GlueTable:
    name: str
    location: str  # s3://bucket/prefix/table (Athena reads s3://, never s3a://)
    columns: list[tuple[str, str, str]]  # name, Hive type, comment
    partition_keys: list[tuple[str, str, str]]
    comment: str


class CatalogConflictError(ValueError):
    """A table of that name is there and is not one this registration may update."""


def _input(t: GlueTable) -> dict[str, Any]:
    def cols(items: list[tuple[str, str, str]]) -> list[dict[str, str]]:
        return [{"Name": n, "Type": ty, "Comment": c[:255]} for n, ty, c in items]

    return {
        "Name": t.name,
        "Description": t.comment,
        "TableType": "EXTERNAL_TABLE",
        "Parameters": {"table_type": "DELTA", "EXTERNAL": "TRUE", "flowspark": "1"},
        "StorageDescriptor": {"Columns": cols(t.columns), "Location": t.location},
        "PartitionKeys": cols(t.partition_keys),
    }


def register(database: str, tables: list[GlueTable], client: Any = None) -> dict[str, str]:
    """Create the database if missing; create each table, or update it when flowspark registered it before
    (a rerun after a schema change updates, never duplicates). {table: "created" | "updated"}."""
    import boto3

    glue = client or boto3.client("glue")
    try:
        glue.get_database(Name=database)
    except glue.exceptions.EntityNotFoundException:
        glue.create_database(
            DatabaseInput={"Name": database, "Description": "flowspark lake tables (Delta), for Athena"}
        )
    done = {}
    for t in tables:
        try:
            have = glue.get_table(DatabaseName=database, Name=t.name)["Table"]
        except glue.exceptions.EntityNotFoundException:
            glue.create_table(DatabaseName=database, TableInput=_input(t))
            done[t.name] = "created"
            continue
        params = have.get("Parameters", {})
        if params.get("flowspark") != "1":
            raise CatalogConflictError(
                f"Glue table {database}.{t.name} exists and flowspark did not register it (a table Spark "
                f"registered, provider {params.get('spark.sql.sources.provider', '?')}): register into another "
                "database (e.g. <name>_athena) or drop that table"
            )
        glue.update_table(DatabaseName=database, TableInput=_input(t))
        done[t.name] = "updated"
    return done
