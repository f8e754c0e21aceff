"""The interfaces job: EC2 DescribeNetworkInterfaces of every requested region -> one snapshot appended to
<lake>/interfaces, and DescribeFlowLogs -> one appended to <lake>/flow_logs (flowspark.edges.ec2 makes the
calls). Every run appends a snapshot (history kept); readers take each interface's latest
(flowspark.core.reports.latest_interfaces) and each flow log's latest (core.reports.interface_tag_keys).

The snapshot is read on the driver: it is the account's list of interfaces, which the EC2 API itself pages
through, not data that grows with the flow logs.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Optional

from pyspark.sql import SparkSession
from pyspark.sql.types import ArrayType, MapType, StringType, StructField, StructType, TimestampType

from flowspark.edges import ec2, tables
from flowspark.pipelines.common import utc_now

SCHEMA = StructType(
    [
        StructField("interface_id", StringType(), False),
        StructField("interface_type", StringType()),
        StructField("description", StringType()),
        StructField("instance_id", StringType()),
        StructField("nat_gateway_id", StringType()),
        StructField("vpc_id", StringType()),
        StructField("subnet_id", StringType()),
        StructField("private_ips", ArrayType(StringType(), False)),
        StructField("public_ips", ArrayType(StringType(), False)),
        StructField("requester_id", StringType()),
        StructField("region", StringType(), False),
        StructField("snapshot_time", TimestampType(), False),
    ]
)
FLOW_LOGS_SCHEMA = StructType(
    [
        StructField("flow_log_id", StringType(), False),
        StructField("resource_id", StringType()),
        StructField("log_format", StringType()),
        StructField("log_destination_type", StringType()),
        StructField("log_destination", StringType()),
        StructField("traffic_type", StringType()),
        # record field -> tag key: {"instance-tag": "Name", "instance-tag-2": "team"}; {} without tag fields
        StructField("tag_keys", MapType(StringType(), StringType(), False), False),
        StructField("region", StringType(), False),
        StructField("snapshot_time", TimestampType(), False),
    ]
)


@dataclass
class InterfacesSummary:
    lake: str
    snapshot_time: dt.datetime
    per_region: dict[str, int] = field(default_factory=dict)
    nat_gateways: int = 0
    flow_logs: int = 0
    with_tag_keys: int = 0  # flow logs whose TagFieldSpecifications name tag keys
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def text(self) -> str:
        regions = ", ".join(f"{r} {n:,}" for r, n in self.per_region.items())
        return "\n".join(
            [
                "interfaces",
                f"  lake           {self.lake}",
                f"  snapshot       {self.snapshot_time:%Y-%m-%d %H:%M:%S} UTC",
                f"  interfaces     {sum(self.per_region.values()):,} ({regions})",
                f"  nat gateways   {self.nat_gateways:,}",
                f"  flow logs      {self.flow_logs:,} ({self.with_tag_keys:,} with tag keys)",
                *[f"  note           {n}" for n in self.notes],
                f"  seconds        {self.seconds:.1f}",
            ]
        )


def parse_regions(text: Optional[str]) -> list[str]:
    """'us-east-1,eu-west-1' -> the regions, in order, once each; None/'' -> []."""
    return list(dict.fromkeys(r.strip() for r in (text or "").split(",") if r.strip()))


def run_interfaces(
    spark: SparkSession, lake: str, regions: Sequence[str] = (), endpoint_url: Optional[str] = None
) -> InterfacesSummary:
    """Snapshot the interfaces of `regions` (default: the region of the standard AWS chain) into
    <lake>/interfaces, and their flow logs into <lake>/flow_logs (skipped, with a note, where the credentials
    may not call DescribeFlowLogs)."""
    t0 = time.time()
    wanted = list(regions)
    if not wanted:
        region = ec2.default_region()
        if not region:
            raise ValueError("no AWS region: pass --regions r1,r2 or set AWS_REGION (or a profile's region)")
        wanted = [region]
    at = utc_now()
    summary = InterfacesSummary(lake=lake, snapshot_time=at)
    rows = []
    for region in wanted:
        got = list(ec2.describe_interfaces(region, endpoint_url))
        summary.per_region[region] = len(got)
        rows += [tuple(r[f] for f in ec2.FIELDS) + (at,) for r in got]
    summary.nat_gateways = len({r[4] for r in rows if r[4]})
    tables.append_snapshot(spark.createDataFrame(rows, SCHEMA), lake, tables.INTERFACES)
    logs = []
    for region in wanted:
        try:
            got_logs = list(ec2.describe_flow_logs(region, endpoint_url))
        except ec2.NotAllowed as exc:
            summary.notes.append(f"no flow logs of {region}: {exc}; the talkers name tag values by their field")
            continue
        logs += [tuple(r[f] for f in ec2.FLOW_LOG_FIELDS) + (at,) for r in got_logs]
    summary.flow_logs, summary.with_tag_keys = len(logs), sum(1 for r in logs if r[6])
    if logs:
        tables.append_snapshot(spark.createDataFrame(logs, FLOW_LOGS_SCHEMA), lake, tables.FLOW_LOGS)
    summary.seconds = time.time() - t0
    return summary
