"""The classify job: distinct addresses of <lake>/flows -> <lake>/ip_classes, against the newest
aws_ip_ranges (see :mod:`flowspark.core.ipranges` for the rules)."""

from __future__ import annotations

import datetime as dt
import logging
import time
from dataclasses import dataclass, field
from typing import Optional

from pyspark.sql import DataFrame, Observation, SparkSession
from pyspark.sql import functions as F

from flowspark.core import addresses as A
from flowspark.core.dates import in_dates
from flowspark.core.ipranges import (
    V4_BUCKET_BITS,
    V6_BUCKET_BITS,
    IpRangesError,
    classified_flows,
    classify_addresses,
    flow_addresses,
)
from flowspark.edges import tables
from flowspark.edges.tables import AWS_IP_RANGES, IP_CLASSES

log = logging.getLogger("flowspark")


@dataclass
class ClassifySummary:
    lake: str
    date_from: Optional[dt.date] = None
    date_to: Optional[dt.date] = None
    sync_token: int = 0
    mode: str = ""  # overwrite | merge
    addresses: int = 0
    inserted: int = 0
    updated: int = 0
    by_class: dict[str, int] = field(default_factory=dict)
    in_aws: int = 0
    seconds: float = 0.0
    nothing_to_do: str = ""  # why the job had nothing to do (an empty selection)

    def text(self) -> str:
        days = (
            f"{self.date_from or 'start'} .. {self.date_to or 'end'}" if self.date_from or self.date_to else "all dates"
        )
        if self.nothing_to_do:
            return f"classify {self.lake} {days}: nothing to do: {self.nothing_to_do}; {IP_CLASSES} left as it was"
        classes = ", ".join(f"{k} {v:,}" for k, v in sorted(self.by_class.items(), key=lambda kv: -kv[1]) if v)
        rate = self.addresses / self.seconds if self.seconds else 0.0
        write = (
            f"{self.addresses:,} rows (table rebuilt)"
            if self.mode == "overwrite"
            else f"merged: {self.inserted:,} new, {self.updated:,} re-classified"
        )
        return "\n".join(
            [
                "classify",
                f"  lake           {self.lake}",
                f"  flows          {days}",
                f"  ip ranges      sync_token {self.sync_token}",
                f"  addresses      {self.addresses:,} distinct" + (f" ({classes})" if classes else ""),
                *([f"  in AWS ranges  {self.in_aws:,}"] if self.mode == "overwrite" else []),
                f"  written        {write} -> {IP_CLASSES}",
                f"  seconds        {self.seconds:.1f} ({rate:,.0f} addresses/s)",
            ]
        )


def read_latest_ranges(spark: SparkSession, lake: str) -> tuple[int, DataFrame]:
    """(newest sync_token, its rows) of <lake>/aws_ip_ranges.

    The token is one scalar read first and then used as a literal filter, so the join below sees a
    plain filtered scan (a self-join on max(sync_token) can be planned as a nested loop).
    """
    if not tables.exists(spark, lake, AWS_IP_RANGES):
        raise FileNotFoundError(f"no {AWS_IP_RANGES} table in {lake}: run 'flowspark ip-ranges' first")
    ranges = tables.read(spark, lake, AWS_IP_RANGES)
    newest = ranges.agg(F.max("sync_token")).first()
    if newest is None or newest[0] is None:
        raise IpRangesError(f"{AWS_IP_RANGES} in {lake} is empty: run 'flowspark ip-ranges' first")
    token = int(newest[0])
    return token, ranges.where(F.col("sync_token") == F.lit(token))


def run_classify(
    spark: SparkSession,
    lake: str,
    date_from: Optional[dt.date] = None,
    date_to: Optional[dt.date] = None,
    v4_bits: int = V4_BUCKET_BITS,
    v6_bits: int = V6_BUCKET_BITS,
) -> ClassifySummary:
    """Classify the distinct addresses of flows (all dates, or [date_from, date_to]) into ip_classes."""
    t0 = time.time()
    summary = ClassifySummary(lake=lake, date_from=date_from, date_to=date_to)
    summary.sync_token, ranges = read_latest_ranges(spark, lake)
    log.info("classify: aws_ip_ranges sync_token %s", summary.sync_token)
    flows = in_dates(tables.read(spark, lake, tables.FLOWS), date_from, date_to)
    if flows.isEmpty():
        # (Observation.get below would wait forever on an empty input: Spark prunes it, observer included.)
        summary.nothing_to_do = (
            f"{tables.FLOWS} has no rows dated {date_from or 'start'} .. {date_to or 'end'}"
            if date_from or date_to
            else f"{tables.FLOWS} is empty: run dedup first"
        )
        summary.seconds = time.time() - t0
        return summary

    classes = classify_addresses(flow_addresses(flows), ranges, v4_bits, v6_bits).withColumn(
        "aws_sync_token", F.lit(summary.sync_token)
    )
    if (date_from is None and date_to is None) or not tables.exists(spark, lake, IP_CLASSES):
        summary.mode = "overwrite"
        obs = Observation("classify")
        cls = F.col("address_class")
        observed = classes.observe(
            obs,
            F.count(F.lit(1)).alias("addresses"),
            F.count("aws_prefix").alias("in_aws"),
            *[F.count(F.when(cls == c, 1)).alias(c) for c in A.ADDRESS_CLASSES],
        )
        tables.replace_dates(observed, lake, IP_CLASSES, "ip", None, None)
        metrics = tables.last_operation_metrics(spark, lake, IP_CLASSES)
        summary.inserted = int(metrics.get("numOutputRows", 0))
        m = obs.get
        summary.addresses = int(m["addresses"])
        summary.in_aws = int(m["in_aws"])
        summary.by_class = {c: int(m[c]) for c in A.ADDRESS_CLASSES}
    else:
        # MERGE runs its source more than once (Observation is unreliable there): Delta's metrics only.
        summary.mode = "merge"
        metrics = tables.merge_on_key(classes, lake, IP_CLASSES, "ip")
        summary.addresses = int(metrics.get("numSourceRows", 0))
        summary.inserted = int(metrics.get("numTargetRowsInserted", 0))
        summary.updated = int(metrics.get("numTargetRowsUpdated", 0))
    summary.seconds = time.time() - t0
    return summary


def read_classified_flows(
    spark: SparkSession,
    lake: str,
    date_from: Optional[dt.date] = None,
    date_to: Optional[dt.date] = None,
    pkt: bool = False,
) -> DataFrame:
    """flows of [date_from, date_to] with the src_/dst_ columns of classified_flows (for reports)."""
    flows = in_dates(tables.read(spark, lake, tables.FLOWS), date_from, date_to)
    return classified_flows(flows, tables.read(spark, lake, IP_CLASSES), pkt=pkt)
