"""The field catalogue: every VPC flow log field of versions 2 to 11, once.

AWS names fields with hyphens in formats and text headers (``log-status``) and with underscores
in Parquet deliveries; tables use snake_case (``log_status``). Everything else in flowspark asks
this module for names, types and order.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

from pyspark.sql import Column
from pyspark.sql import functions as F
from pyspark.sql.types import (
    DataType,
    DateType,
    IntegerType,
    LongType,
    MapType,
    StringType,
    StructField,
    StructType,
    TimestampType,
)


@dataclass(frozen=True)
class Field:
    aws: str  # name in a flow log format / text header, e.g. "log-status"
    kind: str  # "int" | "long" | "string" | "epoch" (seconds or milliseconds -> timestamp)
    version: int  # the flow log version that introduced the field
    name: str | None = None  # the column, when it is not the AWS name in snake_case (LEGACY_COLUMNS)

    @property
    def column(self) -> str:
        return self.name or self.aws.replace("-", "_")

    @property
    def spark_type(self) -> DataType:
        return {
            "int": IntegerType(),
            "long": LongType(),
            "string": StringType(),
            "epoch": TimestampType(),
        }[self.kind]


def _fields(version: int, kind_by_name: list[tuple[str, str]]) -> list[Field]:
    return [Field(name, kind, version) for name, kind in kind_by_name]


# Order: the default format first (as AWS writes it), then later versions in AWS's table order.
FIELDS: list[Field] = [
    *_fields(
        2,
        [
            ("version", "int"),
            ("account-id", "string"),
            ("interface-id", "string"),
            ("srcaddr", "string"),
            ("dstaddr", "string"),
            ("srcport", "int"),
            ("dstport", "int"),
            ("protocol", "int"),
            ("packets", "long"),
            ("bytes", "long"),
            ("start", "epoch"),
            ("end", "epoch"),
            ("action", "string"),
            ("log-status", "string"),
        ],
    ),
    *_fields(
        3,
        [
            ("vpc-id", "string"),
            ("subnet-id", "string"),
            ("instance-id", "string"),
            ("tcp-flags", "int"),
            ("type", "string"),
            ("pkt-srcaddr", "string"),
            ("pkt-dstaddr", "string"),
        ],
    ),
    *_fields(
        4,
        [
            ("region", "string"),
            ("az-id", "string"),
            ("sublocation-type", "string"),
            ("sublocation-id", "string"),
        ],
    ),
    *_fields(
        5,
        [
            ("pkt-src-aws-service", "string"),
            ("pkt-dst-aws-service", "string"),
            ("flow-direction", "string"),
            ("traffic-path", "int"),
        ],
    ),
    # Transit Gateway flow logs (version 6).
    *_fields(
        6,
        [
            ("resource-type", "string"),
            ("tgw-id", "string"),
            ("tgw-attachment-id", "string"),
            ("tgw-src-vpc-account-id", "string"),
            ("tgw-dst-vpc-account-id", "string"),
            ("tgw-src-vpc-id", "string"),
            ("tgw-dst-vpc-id", "string"),
            ("tgw-src-subnet-id", "string"),
            ("tgw-dst-subnet-id", "string"),
            ("tgw-src-eni", "string"),
            ("tgw-dst-eni", "string"),
            ("tgw-src-az-id", "string"),
            ("tgw-dst-az-id", "string"),
            ("tgw-pair-attachment-id", "string"),
            ("packets-lost-no-route", "long"),
            ("packets-lost-blackhole", "long"),
            ("packets-lost-mtu-exceeded", "long"),
            ("packets-lost-ttl-expired", "long"),
        ],
    ),
    # Amazon ECS metadata (version 7).
    *_fields(
        7,
        [
            ("ecs-cluster-arn", "string"),
            ("ecs-cluster-name", "string"),
            ("ecs-container-instance-arn", "string"),
            ("ecs-container-instance-id", "string"),
            ("ecs-container-id", "string"),
            ("ecs-second-container-id", "string"),
            ("ecs-service-name", "string"),
            ("ecs-task-definition-arn", "string"),
            ("ecs-task-arn", "string"),
            ("ecs-task-id", "string"),
        ],
    ),
    *_fields(8, [("reject-reason", "string")]),
    *_fields(9, [("resource-id", "string")]),
    # 0-3 (AWS's codes); an int column of its own since 2026-12: lakes written before hold the text in
    # `encryption_status` (LEGACY_COLUMNS), which reads fill it from.
    Field("encryption-status", "int", 10, "encryption_status_code"),
    # Next hop, interface type and EC2 tags (version 11, 2026-06-10). The six tag fields hold tag VALUES,
    # percent-encoded UTF-8 as AWS writes them (stored decoded); the keys are the flow log's
    # TagFieldSpecifications (1-2 keys each for instance, network-interface and auto-scaling-group).
    *_fields(
        11,
        [
            ("interface-type", "string"),
            ("next-hop-interface-id", "string"),
            ("next-hop-subnet-id", "string"),
            ("next-hop-az-id", "string"),
            ("next-hop-vpc-id", "string"),
            ("next-hop-interface-type", "string"),
            ("instance-tag", "string"),
            ("instance-tag-2", "string"),
            ("interface-tag", "string"),
            ("interface-tag-2", "string"),
            ("asg-tag", "string"),
            ("asg-tag-2", "string"),
        ],
    ),
    # Field names of versions this catalogue does not know yet are not lost: ingest keeps them,
    # with their values, in the `extra_fields` map column.
]

BY_AWS: dict[str, Field] = {f.aws: f for f in FIELDS}
BY_COLUMN: dict[str, Field] = {f.column: f for f in FIELDS}

# Columns of lakes written before a field's column changed type (Delta does not change a column's type in
# place): the old column -> the field's AWS name. The old column stays in those tables; every read
# (edges.tables.read, with_legacy_columns) fills the field's column from it and leaves it out.
LEGACY_COLUMNS: dict[str, str] = {"encryption_status": "encryption-status"}  # text of 0-3 until 2026-12


def column_of(name: str) -> str | None:
    """A field's column from its AWS name (either spelling) or its column name; None for neither."""
    if name in BY_COLUMN:
        return name
    f = BY_AWS.get(name) or BY_AWS.get(name.replace("_", "-"))
    return f.column if f else None


def with_legacy_columns(df):  # type: ignore[no-untyped-def]
    """Transform: a table of a lake written before a column changed type, as today's: each LEGACY_COLUMNS
    field filled (where NULL) from its old column cast to the field's type (a value that is not one stays
    NULL), the old column left out. A frame without old columns is returned as it is."""
    for old, aws in LEGACY_COLUMNS.items():
        if old not in df.columns:
            continue
        f = BY_AWS[aws]
        legacy = F.expr(f"try_cast(`{old}` AS {f.spark_type.simpleString()})")
        value = F.coalesce(F.col(f.column), legacy) if f.column in df.columns else legacy
        df = df.withColumn(f.column, value.cast(f.spark_type)).drop(old)
    return df


DEFAULT_FORMAT: list[str] = [f.aws for f in FIELDS if f.version == 2]
# Fields whose values AWS writes percent-encoded (UTF-8): stored decoded.
PERCENT_ENCODED = frozenset(
    ["instance-tag", "instance-tag-2", "interface-tag", "interface-tag-2", "asg-tag", "asg-tag-2"]
)
DEFAULT_FORMAT_STRING = " ".join(DEFAULT_FORMAT)

ACTIONS = ("ACCEPT", "REJECT")
LOG_STATUSES = ("OK", "NODATA", "SKIPDATA")
DATA_STATUS = "OK"  # NODATA and SKIPDATA rows say that nothing was recorded: they are not traffic


def is_data_status(raw: str | None) -> bool:
    """The same rule in plain Python, on a log-status token as written ('-' or absent: a data record)."""
    return raw is None or raw in ("-", DATA_STATUS)


def is_data_record(columns: Collection[str] | None = None) -> Column:
    """True for a record that describes traffic: log-status OK, or no log-status (a '-' or a format
    without the field). Pass a frame's columns to allow frames that have no log_status column."""
    if columns is not None and "log_status" not in columns:
        return F.lit(True)
    return F.coalesce(F.col("log_status"), F.lit(DATA_STATUS)) == DATA_STATUS

# Columns flowspark adds to every record row.
EXTRA_FIELDS_COLUMN = "extra_fields"
SOURCE_FILE = "source_file"
SOURCE_LINE = "source_line"
EVENT_DATE = "event_date"
# How many records a parsed row stands for, null for one: only an aggregate OCSF event loaded into flows
# (`ingest --as-flows`) weighs more. Never a column of flow_records.
WEIGHT = "_weight"


def parse_format(fmt: str) -> list[str]:
    """An AWS format string (``${version} ${srcaddr}`` or ``version srcaddr``) to field names.

    Raises ValueError with a readable message for an empty format or a name that is not a
    flow log field, so a bad ``--format`` fails before any Spark work.
    """
    names = [tok.strip().removeprefix("${").removesuffix("}") for tok in fmt.replace(",", " ").split()]
    names = [n.replace("_", "-") for n in names if n]
    if not names:
        raise ValueError("the flow log format is empty; give field names such as 'version account-id ...'")
    unknown = [n for n in names if n not in BY_AWS]
    if unknown:
        raise ValueError(
            f"unknown flow log field(s) in the format: {', '.join(unknown)}. Known fields: {', '.join(BY_AWS)}"
        )
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise ValueError(f"field(s) repeated in the flow log format: {', '.join(dupes)}")
    return names


def record_schema() -> StructType:
    """The schema of the `flow_records` table (columns in this order)."""
    return StructType(
        [StructField(f.column, f.spark_type, True) for f in FIELDS]
        + [
            StructField(EXTRA_FIELDS_COLUMN, MapType(StringType(), StringType()), True),
            StructField(SOURCE_FILE, StringType(), False),
            StructField(SOURCE_LINE, LongType(), False),
            StructField(EVENT_DATE, DateType(), True),
        ]
    )


def reject_schema() -> StructType:
    """The schema of the `flow_rejects` table."""
    return StructType(
        [
            StructField(SOURCE_FILE, StringType(), False),
            StructField("line_number", LongType(), False),
            StructField("raw_line", StringType(), True),
            StructField("reason", StringType(), False),
            StructField("ingest_id", StringType(), False),
        ]
    )
