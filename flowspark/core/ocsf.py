"""flows and flow_records rows as OCSF Network Activity events (class_uid 4001), schema version 1.1.0.

1.1.0 is the version Amazon Security Lake writes its own VPC Flow Logs in (source version 2; its "OCSF
source identification" table: product "Amazon VPC", vendor "AWS", feature "Flowlogs"), so queries written
for Security Lake's native flow data read these events too. The mapping follows the one that table links
to (ocsf/examples, mappings/markdown/AWS/v1.1.0/VPC Flowlogs), and what it leaves out goes to `unmapped`:

- srcaddr/dstaddr -> src_endpoint.ip/dst_endpoint.ip; when pkt-srcaddr/pkt-dstaddr differ from them (NAT,
  a load balancer) the packet's address is the endpoint's ip and the interface's address its
  intermediate_ips; when they are equal, the endpoint's ip is both and `unmapped` keeps pkt-* (so that
  reading the event back, core.ocsf_in, gives the record's fields as written).
- interface-id, vpc-id, subnet-id, instance-id -> the endpoint on the interface's side: dst_endpoint for
  ingress, src_endpoint for egress; without flow-direction the side is not known: unmapped.
- ACCEPT -> activity 6 Traffic, action Allowed, disposition Allowed; REJECT -> activity 5 Refuse, Denied,
  Blocked; no action (NODATA, SKIPDATA) -> 0 Unknown.
- start -> time (epoch ms; without start and end: the delivery day's 00:00 UTC), time_dt, start_time(_dt);
  end -> end_time(_dt); log-status -> status_code;
  protocol, tcp-flags, type -> connection_info; flow-direction -> direction_id; traffic-path -> boundary_id
  (traffic-path + 3: 4 Same VPC ... 11 Internet Gateway); pkt-*-aws-service -> svc_name; account-id,
  region, az-id -> cloud.
- A flows row is one event with its record count in `count` (start the first record's, end the last's,
  packets and bytes the sums); a flow_records row one event without it.

Pure DataFrame -> DataFrame: no Delta, no files.
"""

from __future__ import annotations

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

from flowspark.core.schema import EVENT_DATE, EXTRA_FIELDS_COLUMN, FIELDS

OCSF_VERSION = "1.1.0"
CLASS_UID, CATEGORY_UID = 4001, 4
PROFILES = ("cloud", "security_control", "datetime")  # as Security Lake's VPC flow events
PRODUCT = {"name": "Amazon VPC", "vendor_name": "AWS", "feature": "Flowlogs"}
UNKNOWN_REGION = "unknown"  # cloud.region is required: a record whose format and object name hold none
# A record without start, end and a delivery day (its format has neither time, its object's name no date):
# time (required) stays null, and its folder is eventDay=unknown. Not valid OCSF; kept, and counted.
UNKNOWN_DAY = "unknown"

ACTIVITY = {"ACCEPT": (6, "Traffic"), "REJECT": (5, "Refuse")}
ACTION = {"ACCEPT": (1, "Allowed"), "REJECT": (2, "Denied")}
DISPOSITION = {"ACCEPT": (1, "Allowed"), "REJECT": (2, "Blocked")}
DIRECTION = {"ingress": (1, "Inbound"), "egress": (2, "Outbound")}
# traffic-path 1..8 (AWS's flow log record page) -> OCSF network_connection_info.boundary_id 4..11
BOUNDARY = {
    1: "Same VPC",
    2: "Internet/VPC Gateway",
    3: "Virtual Private Gateway",
    4: "Intra-region VPC",
    5: "Inter-region VPC",
    6: "Local Gateway",
    7: "Gateway VPC",
    8: "Internet Gateway",
}
# Where each flow log field goes ("unmapped" = the event's unmapped map, as text).
MAPPED = {
    "version": "metadata.product.version",
    "account_id": "cloud.account.uid",
    "interface_id": "src_endpoint/dst_endpoint.interface_uid (by flow-direction)",
    "srcaddr": "src_endpoint.ip (or .intermediate_ips)",
    "dstaddr": "dst_endpoint.ip (or .intermediate_ips)",
    "srcport": "src_endpoint.port",
    "dstport": "dst_endpoint.port",
    "protocol": "connection_info.protocol_num",
    "packets": "traffic.packets",
    "bytes": "traffic.bytes",
    "start": "time, time_dt, start_time, start_time_dt",
    "end": "end_time, end_time_dt",
    "action": "activity_id, action_id, disposition_id (and their names), type_uid",
    "log_status": "status_code",
    "vpc_id": "src_endpoint/dst_endpoint.vpc_uid (by flow-direction)",
    "subnet_id": "src_endpoint/dst_endpoint.subnet_uid (by flow-direction)",
    "instance_id": "src_endpoint/dst_endpoint.instance_uid (by flow-direction)",
    "tcp_flags": "connection_info.tcp_flags",
    "type": "connection_info.protocol_ver, protocol_ver_id",
    "pkt_srcaddr": "src_endpoint.ip",
    "pkt_dstaddr": "dst_endpoint.ip",
    "region": "cloud.region",
    "az_id": "cloud.zone",
    "pkt_src_aws_service": "src_endpoint.svc_name",
    "pkt_dst_aws_service": "dst_endpoint.svc_name",
    "flow_direction": "connection_info.direction_id, direction",
    "traffic_path": "connection_info.boundary_id, boundary",
}
SIDED = ("interface_id", "vpc_id", "subnet_id", "instance_id")  # the interface's side of the flow
UNMAPPED = tuple(f.column for f in FIELDS if f.column not in MAPPED)


def _case(mapping: dict, column: Column, index: int, default: object) -> Column:
    expr = None
    for key, value in mapping.items():
        expr = (F.when(column == key, F.lit(value[index]))) if expr is None else expr.when(column == key, value[index])
    return expr.otherwise(F.lit(default)) if expr is not None else F.lit(default)


def _col(df: DataFrame, name: str, kind: str = "string") -> Column:
    """The column, or a typed NULL when the table has no such column (a lake of an older flowspark)."""
    return F.col(name) if name in df.columns else F.lit(None).cast(kind)


def _ms(ts: Column) -> Column:
    """A timestamp as epoch milliseconds (OCSF timestamp_t)."""
    return (F.unix_micros(ts) / 1000).cast(T.LongType())


def _endpoint(df: DataFrame, side: str, direction: Column) -> Column:
    """src_endpoint or dst_endpoint: the packet's address, port and AWS service; the interface's ids when
    the flow's direction puts the interface on this side."""
    addr, pkt = ("srcaddr", "pkt_srcaddr") if side == "src" else ("dstaddr", "pkt_dstaddr")
    port, svc = ("srcport", "pkt_src_aws_service") if side == "src" else ("dstport", "pkt_dst_aws_service")
    here = direction == ("egress" if side == "src" else "ingress")

    differs = _col(df, pkt).isNotNull() & (_col(df, pkt) != _col(df, addr))
    return F.struct(
        F.when(differs, _col(df, pkt)).otherwise(_col(df, addr)).alias("ip"),
        F.when(differs & _col(df, addr).isNotNull(), F.array(_col(df, addr))).alias("intermediate_ips"),
        F.col(port).alias("port"),
        _col(df, svc).alias("svc_name"),
        *[F.when(here, _col(df, c)).alias(c.replace("_id", "_uid")) for c in SIDED],
    )


def _unmapped(df: DataFrame, direction: Column) -> Column:
    """Every field OCSF has no place for (and the interface's ids when the side is not known), as text; the
    unknown fields of extra_fields with them. Nulls are left out."""
    fields = [c for c in UNMAPPED if c in df.columns]
    entries = [F.struct(F.lit(c).alias("k"), F.col(c).cast("string").alias("v")) for c in fields]
    entries += [
        F.struct(F.lit(c).alias("k"), F.when(direction.isNull(), F.col(c)).alias("v"))
        for c in SIDED
        if c in df.columns
    ]
    # pkt-srcaddr/pkt-dstaddr equal to srcaddr/dstaddr: the endpoint's ip is both; kept here so that reading
    # the event back (core.ocsf_in) gives the record's fields as they were
    entries += [
        F.struct(F.lit(pkt).alias("k"), F.when(F.col(pkt) == F.col(addr), F.col(pkt)).alias("v"))
        for pkt, addr in (("pkt_srcaddr", "srcaddr"), ("pkt_dstaddr", "dstaddr"))
        if pkt in df.columns
    ]
    kept = F.filter(F.array(*entries), lambda e: e["v"].isNotNull())
    as_map = F.map_from_entries(kept)
    if EXTRA_FIELDS_COLUMN in df.columns:
        extra = F.coalesce(F.col(EXTRA_FIELDS_COLUMN), F.create_map().cast("map<string,string>"))
        as_map = F.map_concat(as_map, extra)
    return as_map


def to_ocsf(df: DataFrame, aggregated: bool) -> DataFrame:
    """flows rows (aggregated=True: `records` becomes `count`) or flow_records rows as OCSF 1.1.0 Network
    Activity events, one per row, with the partition columns Security Lake's custom sources are laid out by
    (region, accountId, eventDay: the row's event_date, the UTC day of its start, as YYYYMMDD)."""
    action = F.col("action")
    direction = _col(df, "flow_direction")
    activity_id = _case(ACTIVITY, action, 0, 0)
    # time is required: the first packet's, else the last's, else (a format without start and end, as AWS's
    # Transit Gateway example) the start of the day the record was delivered on (event_date)
    start = F.coalesce(F.col("start"), F.col("end"), F.col(EVENT_DATE).cast("timestamp"))
    region = F.coalesce(_col(df, "region"), F.lit(UNKNOWN_REGION))
    kind, zone = _col(df, "type"), _col(df, "az_id")
    path, flags = _col(df, "traffic_path", "int"), _col(df, "tcp_flags", "int")
    events = df.select(
        activity_id.cast("int").alias("activity_id"),
        _case(ACTIVITY, action, 1, "Unknown").alias("activity_name"),
        F.lit(CATEGORY_UID).alias("category_uid"),
        F.lit("Network Activity").alias("category_name"),
        F.lit(CLASS_UID).alias("class_uid"),
        F.lit("Network Activity").alias("class_name"),
        (F.lit(CLASS_UID * 100) + activity_id).cast("long").alias("type_uid"),
        F.concat(F.lit("Network Activity: "), _case(ACTIVITY, action, 1, "Unknown")).alias("type_name"),
        F.lit(1).alias("severity_id"),
        F.lit("Informational").alias("severity"),
        _case(ACTION, action, 0, 0).cast("int").alias("action_id"),
        _case(ACTION, action, 1, "Unknown").alias("action"),
        _case(DISPOSITION, action, 0, 0).cast("int").alias("disposition_id"),
        _case(DISPOSITION, action, 1, "Unknown").alias("disposition"),
        F.col("log_status").alias("status_code"),
        _ms(start).alias("time"),
        start.alias("time_dt"),
        _ms(F.col("start")).alias("start_time"),
        F.col("start").alias("start_time_dt"),
        _ms(F.col("end")).alias("end_time"),
        F.col("end").alias("end_time_dt"),
        (F.col("records").cast("int") if aggregated else F.lit(None).cast("int")).alias("count"),
        F.struct(
            F.lit(OCSF_VERSION).alias("version"),
            F.array(*[F.lit(p) for p in PROFILES]).alias("profiles"),
            F.lit("flows" if aggregated else "flow_records").alias("log_name"),
            F.lit("flowspark").alias("log_provider"),
            F.struct(
                F.lit(PRODUCT["name"]).alias("name"),
                F.lit(PRODUCT["vendor_name"]).alias("vendor_name"),
                F.col("version").cast("string").alias("version"),
                F.struct(F.lit(PRODUCT["feature"]).alias("name")).alias("feature"),
            ).alias("product"),
        ).alias("metadata"),
        F.struct(
            F.lit("AWS").alias("provider"),
            region.alias("region"),
            zone.alias("zone"),
            F.struct(F.col("account_id").alias("uid"), F.lit(10).alias("type_id"), F.lit("AWS Account").alias("type"))
            .alias("account"),
        ).alias("cloud"),
        _endpoint(df, "src", direction).alias("src_endpoint"),
        _endpoint(df, "dst", direction).alias("dst_endpoint"),
        F.struct(
            F.col("protocol").alias("protocol_num"),
            flags.alias("tcp_flags"),
            kind.alias("protocol_ver"),
            F.when(kind == "IPv4", 4).when(kind == "IPv6", 6).when(kind.isNotNull(), 99).otherwise(0)
            .alias("protocol_ver_id"),
            _case(DIRECTION, direction, 0, 0).cast("int").alias("direction_id"),
            _case(DIRECTION, direction, 1, "Unknown").alias("direction"),
            F.when(path.between(1, 8), path + 3).otherwise(0).cast("int").alias("boundary_id"),
            _case({k: (v,) for k, v in BOUNDARY.items()}, path, 0, "Unknown").alias("boundary"),
        ).alias("connection_info"),
        F.struct(F.col("packets").alias("packets"), F.col("bytes").alias("bytes")).alias("traffic"),
        _unmapped(df, direction).alias("unmapped"),
        # Security Lake's partition columns (not OCSF attributes: they become the folders)
        region.alias("region"),
        F.coalesce(F.col("account_id"), F.lit("external")).alias("accountId"),
        F.coalesce(F.date_format(F.col(EVENT_DATE), "yyyyMMdd"), F.date_format(start, "yyyyMMdd"), F.lit(UNKNOWN_DAY))
        .alias("eventDay"),
    )
    return events


PARTITIONS = ("region", "accountId", "eventDay")
