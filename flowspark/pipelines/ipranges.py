"""The ip-ranges job: AWS's ip-ranges.json (URL, file or S3 object) -> <lake>/aws_ip_ranges."""

from __future__ import annotations

import datetime as dt
import logging
import time
from dataclasses import dataclass
from typing import Optional

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from flowspark.core.ipranges import RANGES_SCHEMA, IpRangesError, IpRangesFile, parse_ip_ranges
from flowspark.edges import sources, tables
from flowspark.edges.tables import AWS_IP_RANGES

log = logging.getLogger("flowspark")

DEFAULT_SOURCE = "https://ip-ranges.amazonaws.com/ip-ranges.json"


def readable_without_spark(source: str) -> bool:
    """A URL or a local file: read (and checked) before a SparkSession starts."""
    return source.startswith(("http://", "https://")) or sources.is_local(source)


def read_ip_ranges(spark: Optional[SparkSession], source: str) -> IpRangesFile:
    """Read and validate ip-ranges.json from a URL, a file or an object (IpRangesError if unusable)."""
    return parse_ip_ranges(sources.read_ip_ranges_text(spark, source), source)


def ranges_dataframe(spark: SparkSession, parsed: IpRangesFile) -> DataFrame:
    return spark.createDataFrame(parsed.rows, RANGES_SCHEMA)


@dataclass
class LoadSummary:
    source: str
    lake: str
    sync_token: int = 0
    create_date: Optional[dt.datetime] = None
    status: str = ""  # loaded | already loaded
    ipv4_rows: int = 0
    ipv6_rows: int = 0
    rows_written: int = 0
    previous_token: Optional[int] = None
    seconds: float = 0.0

    def text(self) -> str:
        when = self.create_date.strftime("%Y-%m-%d %H:%M:%S UTC") if self.create_date else "?"
        lines = [
            "ip-ranges",
            f"  source         {self.source}",
            f"  lake           {self.lake}",
            f"  sync_token     {self.sync_token} (created {when})",
            f"  prefixes       {self.ipv4_rows:,} IPv4 + {self.ipv6_rows:,} IPv6 rows",
        ]
        if self.status == "loaded":
            prev = f" (previous newest {self.previous_token})" if self.previous_token else " (first version)"
            lines.append(f"  written        {self.rows_written:,} rows -> {AWS_IP_RANGES}{prev}")
        else:
            lines.append(f"  written        nothing: sync_token {self.sync_token} is already loaded")
        lines.append(f"  seconds        {self.seconds:.1f}")
        return "\n".join(lines)


def load_ip_ranges(spark: SparkSession, source: str, lake: str, parsed: Optional[IpRangesFile] = None) -> LoadSummary:
    """Load one ip-ranges.json into <lake>/aws_ip_ranges. Idempotent per sync_token; refuses a file
    older than the newest loaded (IpRangesError)."""
    t0 = time.time()
    if parsed is None:
        parsed = read_ip_ranges(spark, source)
    summary = LoadSummary(
        source=source,
        lake=lake,
        sync_token=parsed.sync_token,
        create_date=parsed.create_date,
        ipv4_rows=parsed.ipv4_rows,
        ipv6_rows=parsed.ipv6_rows,
    )
    if tables.exists(spark, lake, AWS_IP_RANGES):
        token = F.col("sync_token")
        # Two scalars over the table (a few thousand rows per loaded version).
        row = (
            tables.read(spark, lake, AWS_IP_RANGES)
            .agg(
                F.max(token).alias("newest"),
                F.max(F.when(token == parsed.sync_token, True)).alias("loaded"),
            )
            .first()
        )
        newest = row["newest"] if row else None
        summary.previous_token = newest
        if row and row["loaded"]:
            summary.status = "already loaded"
            summary.seconds = time.time() - t0
            return summary
        if newest is not None and parsed.sync_token < newest:
            raise IpRangesError(
                f"{source} has syncToken {parsed.sync_token} ({parsed.create_date:%Y-%m-%d %H:%M:%S} UTC), "
                f"older than the newest loaded ({newest}); refusing to load an older ip-ranges.json"
            )
    log.info("loading sync_token %s (%d rows) into %s", parsed.sync_token, len(parsed.rows), AWS_IP_RANGES)
    tables.append(ranges_dataframe(spark, parsed), lake, AWS_IP_RANGES)
    summary.rows_written = int(tables.last_operation_metrics(spark, lake, AWS_IP_RANGES).get("numOutputRows", 0))
    summary.status = "loaded"
    summary.seconds = time.time() - t0
    return summary
