"""The reports' rules: pure DataFrame -> DataFrame transforms over ``flows`` and ``ip_classes``.

Every function here takes frames and returns a frame; none runs an action. The job that reads the
tables, writes ``<lake>/reports/<name>/<section>`` and renders CSV/XLSX/HTML is
:mod:`flowspark.pipelines.report`.

Input: ``classified_flows(flows, ip_classes)`` (flowspark.core.ipranges): the compacted flows with
``src_``/``dst_`` ``address_class``, ``aws_service`` and ``aws_region``. A "flow" below is one row of
``flows`` (one flow key in one window); ``records`` is the number of flow log records it holds.

Sides and direction
    A side is public when its address class is ``public`` (flowspark.core.addresses). ``direction``:
    ``inbound`` (only the source is public), ``outbound`` (only the destination is public),
    ``east_west`` (neither side public: private, shared, link-local, ...) and ``public_both``.
    North/south traffic is inbound + outbound: exactly one public side.

The NTP filter (seed 003)
    udp/123 with 1 packet of 76 bytes is the fleet's time sync, benign and loud. Both halves of an
    exchange are sync: the request (to port 123) and the reply (from port 123, usually to the client's
    ephemeral port), so a flow is NTP sync when either port is 123. On compacted flows the rule is per
    record: ``packets == 1 * records and bytes == 76 * records`` (a flow of n such records has n packets
    and 76n bytes). Protocol, port, packets and bytes are parameters.

The reports: north_south (split, over time, top peers), runts, talkers and NAT cost, hunt.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

from flowspark.core import addresses as A
from flowspark.core.dedup import client_server
from flowspark.core.detections.beacon import interval_measures

INBOUND, OUTBOUND, EAST_WEST, PUBLIC_BOTH = "inbound", "outbound", "east_west", "public_both"
DIRECTIONS = (INBOUND, OUTBOUND, EAST_WEST, PUBLIC_BOTH)
TCP, UDP = 6, 17


@dataclass(frozen=True)
class NtpFilter:
    """udp/123 either way (the request to port 123 and the reply from it), one packet of 76 bytes per
    record (seed 003's filter); enabled=False keeps NTP."""

    enabled: bool = True
    protocol: int = UDP
    port: int = 123
    packets: int = 1
    bytes: int = 76


# The hunt's flags are findings (flowspark.core.detections): one definition of each rule. Its measures'
# one setting: with fewer active hours than this, a peer/port's baseline hour is the median of all of them
# ([detections] volume_min_baseline_hours, traffic_volume's).
BASELINE_HOURS = 3


@dataclass(frozen=True)
class NatPrice:
    """NAT gateway data processing price. Default: us-east-1, $0.045 per GB processed (both directions),
    AWS's published price (https://aws.amazon.com/vpc/pricing/), read on `read_on`."""

    per_gb: float = 0.045
    region: str = "us-east-1"
    read_on: str = "2026-11-29"
    bytes_per_gb: int = 1_000_000_000
    endpoint_services: tuple[str, ...] = ("S3", "DYNAMODB")  # the services gateway endpoints exist for


# ---------------------------------------------------------------- sides, direction, filters


def _public(c: str) -> Column:
    return F.coalesce(F.col(c) == A.PUBLIC, F.lit(False))


def direction() -> Column:
    """inbound / outbound / east_west / public_both from src_ and dst_address_class."""
    sp, dp = _public("src_address_class"), _public("dst_address_class")
    return F.when(sp & ~dp, INBOUND).when(dp & ~sp, OUTBOUND).when(sp & dp, PUBLIC_BOTH).otherwise(EAST_WEST)


def is_ntp(ntp: NtpFilter, columns: Sequence[str]) -> Column:
    """True for a flow of NTP-sync records (see the module docstring); always False when disabled."""
    if not ntp.enabled:
        return F.lit(False)
    n = F.col("records") if "records" in columns else F.lit(1)
    return F.coalesce(
        (F.col("protocol") == ntp.protocol)
        & ((F.col("dstport") == ntp.port) | (F.col("srcport") == ntp.port))  # the request or the reply
        & (F.col("packets") == n * ntp.packets)
        & (F.col("bytes") == n * ntp.bytes),
        F.lit(False),
    )


def with_sides(cf: DataFrame) -> DataFrame:
    """classified flows + direction, and for north/south rows the peer (the public side) and the local
    side: peer, peer_port, peer_aws_service, peer_aws_region, local, local_port (null for east/west)."""
    d = F.col("direction")
    inbound, outbound = d == INBOUND, d == OUTBOUND

    def pick(src: str, dst: str, inbound_side: bool) -> Column:
        a, b = (src, dst) if inbound_side else (dst, src)
        return F.when(inbound, F.col(a)).when(outbound, F.col(b))

    return cf.withColumn("direction", direction()).select(
        "*",
        pick("srcaddr", "dstaddr", True).alias("peer"),
        pick("srcport", "dstport", True).alias("peer_port"),
        pick("src_aws_service", "dst_aws_service", True).alias("peer_aws_service"),
        pick("src_aws_region", "dst_aws_region", True).alias("peer_aws_region"),
        pick("srcaddr", "dstaddr", False).alias("local"),
        pick("srcport", "dstport", False).alias("local_port"),
    )


def north_south(cf: DataFrame, ntp: NtpFilter = NtpFilter()) -> DataFrame:
    """ACCEPT flows with exactly one public side, NTP sync removed; with_sides' columns."""
    sided = with_sides(cf)
    return sided.where(
        (F.col("action") == "ACCEPT") & F.col("direction").isin(INBOUND, OUTBOUND) & ~is_ntp(ntp, sided.columns)
    )


def totals() -> list[Column]:
    """flows, records, packets, bytes of a group of flows (the reports' and the network report's measures)."""
    return [
        F.count(F.lit(1)).alias("flows"),
        F.sum("records").cast("long").alias("records"),
        F.sum("packets").cast("long").alias("packets"),
        F.sum("bytes").cast("long").alias("bytes"),
    ]


def traffic_split(cf: DataFrame, ntp: NtpFilter = NtpFilter()) -> DataFrame:
    """Every flow by direction and action: flows, records, packets, bytes, and how many of the flows are
    NTP sync (ntp_flows; north/south leaves them out). With the filter off, ntp_flows is null (not
    counted), not 0."""
    sided = cf.withColumn("direction", direction())
    ntp_flows = F.count(F.when(is_ntp(ntp, sided.columns), 1)) if ntp.enabled else F.lit(None).cast("long")
    return (
        sided.groupBy("direction", "action")
        .agg(*totals(), ntp_flows.alias("ntp_flows"))
        .orderBy("direction", "action")
    )


def time_bucket(ts: Column, seconds: int = 3600) -> Column:
    """The start of the UTC bucket of `seconds` that a timestamp falls in (an hour by default)."""
    epoch = F.unix_seconds(ts)
    return F.timestamp_seconds(epoch - F.pmod(epoch, F.lit(seconds)))


def traffic_over_time(cf: DataFrame, bucket_seconds: int = 3600) -> DataFrame:
    """Flows, records, bytes per time bucket (on start, UTC), direction and action."""
    return (
        cf.withColumn("direction", direction())
        .groupBy(time_bucket(F.col("start"), bucket_seconds).alias("time"), "direction", "action")
        .agg(
            F.count(F.lit(1)).alias("flows"),
            F.sum("records").cast("long").alias("records"),
            F.sum("bytes").cast("long").alias("bytes"),
        )
        .orderBy("time", "direction", "action")
    )


def _ranked(df: DataFrame, measure: str, n: int, tie: str) -> DataFrame:
    """The top n rows of df by measure (then tie, ascending), with rank_by and rank 1..n."""
    top = df.orderBy(F.col(measure).desc(), F.col(tie).asc()).limit(n)
    w = Window.orderBy(F.col(measure).desc(), F.col(tie).asc())  # over n rows: one partition is fine
    return top.select(F.lit(measure).alias("rank_by"), F.row_number().over(w).alias("rank"), *df.columns)


def top_peers(
    ns: DataFrame,
    n: int = 20,
    exclude_aws: bool = True,
    asn: DataFrame | None = None,
    exclude_orgs: Sequence[str] = (),
    country: DataFrame | None = None,
) -> DataFrame:
    """The top n Internet peers of north/south flows by flows and by bytes (two rankings, rank_by =
    flows | bytes); peers inside AWS's published prefixes left out when exclude_aws. With `asn` (peer,
    asn, asn_org: flowspark.edges.asn) every peer carries its ASN and organisation, and peers whose
    organisation is one of exclude_orgs (case-insensitive) are left out before ranking. With `country` (peer,
    country, country_name: flowspark.edges.asn.peer_country) every peer carries its country."""
    if exclude_aws:
        ns = ns.where(F.col("peer_aws_service").isNull())
    inbound = F.col("direction") == INBOUND
    per_peer = ns.groupBy("peer").agg(
        *totals(),
        F.sum(F.when(inbound, F.col("bytes")).otherwise(0)).cast("long").alias("inbound_bytes"),
        F.sum(F.when(~inbound, F.col("bytes")).otherwise(0)).cast("long").alias("outbound_bytes"),
        F.count_distinct("local").alias("local_addresses"),
        F.min("start").alias("first_seen"),
        F.max("end").alias("last_seen"),
    )
    if asn is not None:
        per_peer = with_asn(per_peer, asn, "peer")
        if exclude_orgs:
            orgs = [o.lower() for o in exclude_orgs]
            per_peer = per_peer.where(~F.coalesce(F.lower(F.col("asn_org")).isin(*orgs), F.lit(False)))
    if country is not None:
        per_peer = with_country(per_peer, country, "peer")
    return _ranked(per_peer, "flows", n, "peer").unionByName(_ranked(per_peer, "bytes", n, "peer"))


def with_asn(df: DataFrame, asn: DataFrame, key: str = "peer") -> DataFrame:
    """df with asn and asn_org (from asn: peer, asn, asn_org; one row per peer) right after `key`; null
    for an address the database does not know."""
    labels = asn.select(F.col("peer").alias("_asn_peer"), F.col("asn"), F.col("asn_org"))
    joined = df.join(labels, F.col(key) == F.col("_asn_peer"), "left")
    cols = [c for c in df.columns]
    at = cols.index(key) + 1
    return joined.select(*cols[:at], "asn", "asn_org", *cols[at:])


def with_country(df: DataFrame, country: DataFrame, key: str = "peer", prefix: str = "") -> DataFrame:
    """df with country and country_name (from country: peer, country, country_name; one row per peer) right
    after `key` (after asn_org when df has it), named prefix + country; null for an address the database
    does not know."""
    code, name = f"{prefix}country", f"{prefix}country_name"
    labels = country.select(
        F.col("peer").alias("_geo_peer"), F.col("country").alias(code), F.col("country_name").alias(name)
    )
    joined = df.join(labels, F.col(key) == F.col("_geo_peer"), "left")
    cols = list(df.columns)
    at = cols.index(key) + 1
    if cols[at : at + 2] == ["asn", "asn_org"]:  # the ASN columns with_asn put after the key stay with it
        at += 2
    return joined.select(*cols[:at], code, name, *cols[at:])


# ---------------------------------------------------------------- runts


def source_network(addr: str = "srcaddr") -> Column:
    """The /24 of an IPv4 address (a.b.c.0/24), the /64 of an IPv6 address (in Python's short form:
    2001:db8:1::/64), null for text that is neither."""
    c = F.col(addr)
    v4 = F.concat(F.regexp_extract(c, r"^(\d+\.\d+\.\d+)\.\d+$", 1), F.lit(".0/24"))
    hi = A.parse_ip(c).getField("hi")
    groups = F.concat_ws(
        ":", *[F.lower(F.hex(F.shiftrightunsigned(hi, s).bitwiseAND(0xFFFF))) for s in (48, 32, 16, 0)]
    )
    v6 = F.when(hi == 0, F.lit("::/64")).otherwise(F.concat(F.regexp_replace(groups, r"(:0)+$", ""), F.lit("::/64")))
    version = A.ip_version(c)
    return F.when(version == A.IPV4, v4).when(version == A.IPV6, v6)


def _with_share(df: DataFrame, flows: DataFrame, all_records: int | None = None) -> DataFrame:
    """df + all_records (every record of flows; or the number given, which a job computes once for all
    its sections) and share_of_records = runts / all_records."""
    if all_records is not None:
        out = df.withColumn("all_records", F.lit(all_records).cast("long"))
    else:
        out = df.crossJoin(F.broadcast(flows.agg(F.sum("records").cast("long").alias("all_records"))))
    return out.withColumn(
        "share_of_records", F.when(F.col("all_records") > 0, F.col("runts") / F.col("all_records"))
    )


def _runts(flows: DataFrame) -> DataFrame:
    return flows.where(F.col("records") == 1)


def runts_by_action(flows: DataFrame, all_records: int | None = None) -> DataFrame:
    """Single-record flows per action, with the share of all records (seed 001's runt count)."""
    agg = _runts(flows).groupBy("action").agg(F.count(F.lit(1)).alias("runts"))
    return _with_share(agg, flows, all_records).orderBy(F.col("runts").desc(), "action")


def runts_by_port(flows: DataFrame, n: int = 20, all_records: int | None = None) -> DataFrame:
    """The n destination ports (with protocol) with the most single-record flows."""
    agg = (
        _runts(flows)
        .groupBy("protocol", "dstport")
        .agg(
            F.count(F.lit(1)).alias("runts"),
            F.count(F.when(F.col("action") == "REJECT", 1)).alias("rejected"),
            F.count_distinct("srcaddr").alias("sources"),
        )
    )
    top = agg.orderBy(F.col("runts").desc(), "protocol", "dstport").limit(n)
    return _with_share(top, flows, all_records).orderBy(F.col("runts").desc(), "protocol", "dstport")


def _from_internet(cf: DataFrame) -> DataFrame:
    """Classified flows that a public source sent unasked: who knocks from outside. Our own DNS/NTP queries
    are runts too (private sources), and so are the answers to them (a public server's well-known port,
    below 1024, to one of our ephemeral ports, 1024 and up): both would crowd the scanners out."""
    answer = (F.col("srcport") < 1024) & (F.col("dstport") >= 1024)
    return cf.where(_public("src_address_class") & ~F.coalesce(answer, F.lit(False)))


def runts_by_source_network(cf: DataFrame, n: int = 20, all_records: int | None = None) -> DataFrame:
    """The n public source networks (/24, IPv6 /64) with the most single-record flows (classified flows);
    share_of_records is of all records."""
    agg = (
        _runts(_from_internet(cf))
        .withColumn("source_network", source_network())
        .groupBy("source_network")
        .agg(
            F.count(F.lit(1)).alias("runts"),
            F.count(F.when(F.col("action") == "REJECT", 1)).alias("rejected"),
            F.count_distinct("srcaddr").alias("sources"),
            F.count_distinct("dstport").alias("ports"),
        )
    )
    top = agg.orderBy(F.col("runts").desc(), "source_network").limit(n)
    return _with_share(top, cf, all_records).orderBy(F.col("runts").desc(), "source_network")


def top_scanners(cf: DataFrame, n: int = 20, all_records: int | None = None) -> DataFrame:
    """The n public source addresses with the most single-record flows (classified flows), with how widely
    they probe."""
    agg = (
        _runts(_from_internet(cf))
        .groupBy("srcaddr")
        .agg(
            F.count(F.lit(1)).alias("runts"),
            F.count(F.when(F.col("action") == "REJECT", 1)).alias("rejected"),
            F.count_distinct("dstaddr").alias("targets"),
            F.count_distinct("dstport").alias("ports"),
            F.min("start").alias("first_seen"),
            F.max("end").alias("last_seen"),
        )
    )
    top = agg.orderBy(F.col("runts").desc(), "srcaddr").limit(n)
    return _with_share(top, cf, all_records).orderBy(F.col("runts").desc(), "srcaddr")


# ---------------------------------------------------------------- talkers and NAT cost


# What the records say of the interface's own resource (v7 ECS fields, v11 tag values), for the talkers.
ECS_SERVICE = "ecs_service_name"
TAG_FIELDS = ("instance_tag", "instance_tag_2", "interface_tag", "interface_tag_2", "asg_tag", "asg_tag_2")


def _own_side(side: str, columns: Sequence[str]) -> Column:
    """True where `side`'s address is the interface's own (the record's ECS and tag fields describe it):
    the source of egress records, the destination of ingress ones; without flow-direction, never known."""
    if "flow_direction" not in columns:
        return F.lit(False)
    return F.col("flow_direction") == ("egress" if side == "srcaddr" else "ingress")


# TagFieldSpecifications' resource types -> the record field their first tag key fills (the second key fills
# the same name with "-2"): AWS's CreateFlowLogs docs, "The position of each key determines which field it
# populates".
TAG_RESOURCE_FIELDS = {
    "instance": "instance-tag",
    "network-interface": "interface-tag",
    "auto-scaling-group": "asg-tag",
}
TAG_KEYS = "tag_keys"  # the flow_logs column (and talkers' join column): field name -> tag key


def tag_field_keys(specs: Sequence[dict] | None) -> dict[str, str]:
    """A flow log's TagFieldSpecifications (DescribeFlowLogs, as boto3 gives them: [{"ResourceType":
    "instance", "TagKeys": ["Name", "team"]}, ...]) -> {record field: tag key}: {"instance-tag": "Name",
    "instance-tag-2": "team"}. A resource type AWS adds later is left out; a third key (the API allows two)
    too."""
    out: dict[str, str] = {}
    for spec in specs or []:
        field = TAG_RESOURCE_FIELDS.get(str(spec.get("ResourceType")))
        if not field:
            continue
        for position, key in enumerate((spec.get("TagKeys") or [])[:2]):
            if key:
                out[field if position == 0 else f"{field}-2"] = str(key)
    return out


def interface_tag_keys(flows: DataFrame, flow_logs: DataFrame, interfaces: DataFrame | None = None) -> DataFrame:
    """The tag keys of each interface's flow log: interface_id, tag_keys (field name -> key), for the
    interfaces of `flows` that exactly one set of keys covers.

    flows do not keep the object (and so the flow log) a record came from: an interface's flow log is the
    one whose resource is the interface itself, its subnet or its VPC (from the records' vpc_id/subnet_id,
    else the `interfaces` snapshot's latest row), taken from the flow_logs snapshot (the latest row of each
    flow log id: a flow log deleted since still names the records it wrote). Flow logs without tag keys are
    left out (their records carry no tag values); an interface whose covering flow logs disagree on the keys
    gets no row, so its values keep their field names."""
    newest = Window.partitionBy("flow_log_id").orderBy(F.col("snapshot_time").desc())
    logs = (
        flow_logs.withColumn("_n", F.row_number().over(newest))
        .where((F.col("_n") == 1) & (F.size(TAG_KEYS) > 0))
        .select("resource_id", F.array_sort(F.map_entries(TAG_KEYS)).alias("_keys"))
    )
    col = {c: F.col(c) if c in flows.columns else F.lit(None).cast("string") for c in ("vpc_id", "subnet_id")}
    ifs = flows.where(F.col("interface_id").isNotNull()).select("interface_id", *[v.alias(k) for k, v in col.items()])
    ifs = ifs.distinct()
    if interfaces is not None:
        snap = interfaces.select(
            "interface_id", F.col("vpc_id").alias("_vpc"), F.col("subnet_id").alias("_subnet")
        ).dropDuplicates(["interface_id"])
        ifs = ifs.join(F.broadcast(snap), "interface_id", "left").select(
            "interface_id",
            F.coalesce("vpc_id", "_vpc").alias("vpc_id"),
            F.coalesce("subnet_id", "_subnet").alias("subnet_id"),
        )
    covered = ifs.select(
        "interface_id", F.explode(F.array("interface_id", "subnet_id", "vpc_id")).alias("resource_id")
    ).where(F.col("resource_id").isNotNull())
    g = (
        covered.distinct()
        .join(F.broadcast(logs), "resource_id")
        .groupBy("interface_id")
        .agg(F.collect_set("_keys").alias("_sets"))
    )
    return g.where(F.size("_sets") == 1).select("interface_id", F.map_from_entries(F.col("_sets")[0]).alias(TAG_KEYS))


def _tags(columns: Sequence[str]) -> Column:
    """The record's tag values as 'Name=web, team=api' when `columns` hold the tag keys of its flow log
    (TAG_KEYS, from interface_tag_keys), else with their field's name: 'instance-tag=web, asg-tag=api' (the
    records carry the values only); null without any."""
    held = [c for c in TAG_FIELDS if c in columns]
    keyed = TAG_KEYS in columns

    def key(field: str) -> Column:
        return F.coalesce(F.col(TAG_KEYS)[field], F.lit(field)) if keyed else F.lit(field)

    parts = [F.when(F.col(c).isNotNull(), F.concat(key(c.replace("_", "-")), F.lit("="), F.col(c))) for c in held]
    return F.nullif(F.concat_ws(", ", *parts), F.lit("")) if parts else F.lit(None).cast("string")


def top_talkers(flows: DataFrame, side: str = "srcaddr", n: int = 20, tag_keys: DataFrame | None = None) -> DataFrame:
    """The n addresses of `side` (srcaddr: sources, dstaddr: destinations) with the most bytes; with the ECS
    service and the EC2 tag values the records carry when the address is the interface's own (egress
    sources, ingress destinations), those of its most bytes. tag_keys (interface_tag_keys: interface_id,
    tag_keys) names each value by its tag key where the interface's flow log is known."""
    other = "dstaddr" if side == "srcaddr" else "srcaddr"
    own = _own_side(side, flows.columns)
    ecs = F.col(ECS_SERVICE) if ECS_SERVICE in flows.columns else F.lit(None).cast("string")
    mine = F.when(own, F.col("bytes"))
    if tag_keys is not None and "interface_id" in flows.columns and any(c in flows.columns for c in TAG_FIELDS):
        flows = flows.join(F.broadcast(tag_keys.select("interface_id", TAG_KEYS)), "interface_id", "left")
    tags = _tags(flows.columns)
    agg = flows.groupBy(F.col(side).alias("address")).agg(
        *totals(),
        F.count_distinct(other).alias("peers"),
        F.max_by(F.when(own, ecs), F.when(own & ecs.isNotNull(), F.col("bytes"))).alias("ecs_service"),
        F.max_by(F.when(own, tags), F.when(own & tags.isNotNull(), mine)).alias("tags"),
    )
    return _ranked(agg, "bytes", n, "address").drop("rank_by")


def nat_target(nat: str) -> dict[str, str]:
    """--nat as through()'s arguments: eni-... is the NAT gateway's interface, nat-... a regional NAT
    gateway (its flow log's records name it in resource-id), anything else its address."""
    if nat.startswith("eni-"):
        return {"interface_id": nat}
    if nat.startswith("nat-"):
        return {"resource_id": nat}
    return {"address": nat}


def nat_condition(
    columns: Sequence[str],
    interface_id: str | None = None,
    address: str | None = None,
    resource_id: str | None = None,
) -> Column:
    """The flows of one interface, of one regional NAT gateway (resource-id; none in a lake without the
    field) or to/from one address."""
    if not interface_id and not address and not resource_id:
        raise ValueError("give an interface id (eni-...), a NAT gateway id (nat-...) or an address for NAT cost")
    cond = F.lit(False)
    if interface_id:
        cond = cond | (F.col("interface_id") == interface_id)
    if resource_id and "resource_id" in columns:
        cond = cond | (F.col("resource_id") == resource_id)
    if address:
        cond = cond | (F.col("srcaddr") == address) | (F.col("dstaddr") == address)
    return cond


def through(
    cf: DataFrame, interface_id: str | None = None, address: str | None = None, resource_id: str | None = None
) -> DataFrame:
    """The flows of one interface (its flow log), of one regional NAT gateway (resource-id) or to/from one
    address: what passes a NAT gateway."""
    return with_sides(cf.where(nat_condition(cf.columns, interface_id, address, resource_id)))


def nat_services(sel: DataFrame, price: NatPrice = NatPrice(), region: str | None = None) -> DataFrame:
    """Data the NAT gateway processed, per AWS service and region reached (non-AWS peers as service
    'INTERNET'): the legs with exactly one public side, both directions (AWS charges both), at
    price.per_gb. saving_usd: the cost of S3/DynamoDB traffic, which gateway endpoints carry free;
    only traffic in the NAT's own region (`region`; None = any) can use one.

    cost_usd = bytes / bytes_per_gb * per_gb."""
    legs = sel.where(F.col("direction").isin(INBOUND, OUTBOUND))
    service = F.coalesce(F.col("peer_aws_service"), F.lit("INTERNET"))
    agg = legs.groupBy(service.alias("aws_service"), F.col("peer_aws_region").alias("aws_region")).agg(
        *totals(), F.count_distinct("peer").alias("peers")
    )
    eligible = F.col("aws_service").isin(*price.endpoint_services)
    if region:
        eligible = eligible & (F.col("aws_region") == region)
    cost = F.col("bytes") / F.lit(price.bytes_per_gb) * F.lit(price.per_gb)
    return (
        agg.withColumn("gb", F.col("bytes") / F.lit(price.bytes_per_gb))
        .withColumn("cost_usd", cost)
        .withColumn("gateway_endpoint", eligible)
        .withColumn("saving_usd", F.when(eligible, cost).otherwise(F.lit(0.0)))
        .orderBy(F.col("bytes").desc(), "aws_service", "aws_region")
    )


def nat_sources(sel: DataFrame, n: int = 20) -> DataFrame:
    """The internal sources sending through the NAT: the legs with no public side (instance <-> NAT's
    own address), per address that is not the NAT's own (the NAT's own addresses are the local sides of
    its Internet legs). bytes_to_nat / bytes_from_nat; when the flow log has pkt-dstaddr, the bytes whose
    real destination is an AWS service (aws_bytes; null when none of the source's legs has the pkt-
    address that says it: pkt-dstaddr to the NAT, pkt-srcaddr from it)."""
    own = sel.where(F.col("direction").isin(INBOUND, OUTBOUND)).select(F.col("local").alias("_own")).distinct()
    inner = sel.where(F.col("direction") == EAST_WEST)
    src_own = inner.join(
        F.broadcast(own.withColumnRenamed("_own", "srcaddr")).withColumn("_s", F.lit(1)), "srcaddr", "left"
    )
    both = src_own.join(
        F.broadcast(own.withColumnRenamed("_own", "dstaddr")).withColumn("_d", F.lit(1)), "dstaddr", "left"
    )
    to_nat = F.col("_d").isNotNull() & F.col("_s").isNull()
    from_nat = F.col("_s").isNotNull() & F.col("_d").isNull()
    legs = both.where(to_nat | from_nat).withColumn(
        "source", F.when(to_nat, F.col("srcaddr")).otherwise(F.col("dstaddr"))
    )
    aws = F.lit(None).cast("string")
    known = F.lit(False)  # the leg's pkt- address is there: whether it reached AWS is known
    if "pkt_dst_aws_service" in sel.columns:
        aws = F.when(to_nat, F.col("pkt_dst_aws_service")).otherwise(F.col("pkt_src_aws_service"))
        known = F.when(to_nat, F.col("pkt_dstaddr").isNotNull()).otherwise(F.col("pkt_srcaddr").isNotNull())
    agg = (
        legs.groupBy("source")
        .agg(
            F.count(F.lit(1)).alias("flows"),
            F.sum(F.when(to_nat, F.col("bytes")).otherwise(0)).cast("long").alias("bytes_to_nat"),
            F.sum(F.when(from_nat, F.col("bytes")).otherwise(0)).cast("long").alias("bytes_from_nat"),
            F.when(F.max(known), F.sum(F.when(aws.isNotNull(), F.col("bytes")).otherwise(0)))
            .cast("long")
            .alias("aws_bytes"),
        )
        .withColumn("bytes", F.col("bytes_to_nat") + F.col("bytes_from_nat"))
    )
    return _ranked(agg, "bytes", n, "source").drop("rank_by")


# ---------------------------------------------------------------- hunt


HUNT_KEY = ("peer", "direction", "protocol", "port")


def hunt_flows(
    cf: DataFrame, ntp: NtpFilter = NtpFilter(), ip: str | None = None, exclude_aws: bool = True
) -> DataFrame:
    """Flows with exactly one public side (any action, NTP sync removed), oriented client -> server
    (flowspark.core.dedup.client_server): direction is who opened it (inbound: the peer is the client),
    port the server's port, `request` whether this row is client -> server. With ip, only its flows (and
    AWS peers kept); otherwise peers in AWS's prefixes are left out when exclude_aws (seed 003: cloud
    traffic is mostly benign and needs other analytics)."""
    if ip:
        cf = cf.where((F.col("srcaddr") == ip) | (F.col("dstaddr") == ip))
    sided = with_sides(client_server(cf))
    sided = sided.where(F.col("direction").isin(INBOUND, OUTBOUND) & ~is_ntp(ntp, sided.columns))
    if exclude_aws and not ip:
        sided = sided.where(F.col("peer_aws_service").isNull())
    peer_is_client = F.col("client_addr") == F.col("peer")
    return (
        sided.select(
            "*",
            F.when(peer_is_client, F.lit(INBOUND)).otherwise(F.lit(OUTBOUND)).alias("opened"),
            F.col("server_port").alias("port"),
            F.col("__request").alias("request"),
            # bytes sent by our side (local -> peer) in this row
            F.when(F.col("srcaddr") == F.col("local"), F.col("bytes")).otherwise(0).alias("bytes_out"),
        )
        .drop("direction")
        .withColumnRenamed("opened", "direction")
    )


def _summary(hf: DataFrame) -> DataFrame:
    accept = F.col("action") == "ACCEPT"
    per_record = F.col("bytes") / F.col("records")
    return hf.groupBy(*HUNT_KEY).agg(
        F.first("peer_aws_service", ignorenulls=True).alias("peer_aws_service"),
        *totals(),
        F.sum("bytes_out").cast("long").alias("bytes_out"),
        F.count_distinct("local").alias("local_addresses"),
        F.count(F.when(accept, 1)).alias("accepted_flows"),
        F.count(F.when(~accept, 1)).alias("rejected_flows"),
        F.sum(F.when(accept, F.col("bytes")).otherwise(0)).cast("long").alias("accepted_bytes"),
        F.min("start").alias("first_seen"),
        F.max("end").alias("last_seen"),
        (F.sum("packets") / F.sum("records")).alias("packets_per_record"),
        F.avg(per_record).alias("mean_bytes_per_record"),
        (F.stddev_pop(per_record) / F.avg(per_record)).alias("size_cv"),
    )


BEACON_COLUMNS = ("beacon_local", "beacon_intervals", "beacon_median_interval_s", "beacon_dispersion")


def beacon_measures(hf: DataFrame) -> DataFrame:
    """Per hunt key, the most regular local host's request starts: intervals, their median and the
    dispersion (median absolute deviation / median). Outbound only. hunt() keeps them on beaconing rows
    only (elsewhere they measure nothing the row is flagged for)."""
    req = hf.where((F.col("direction") == OUTBOUND) & F.col("request"))
    host = [*HUNT_KEY, "local"]
    mad = interval_measures(req, host)
    best = F.min(
        F.struct(
            F.coalesce(F.col("dispersion"), F.lit(1e9)).alias("d"),
            F.col("local"),
            F.col("intervals"),
            F.col("median_gap"),
            F.col("dispersion"),
        )
    )
    return (
        mad.groupBy(*HUNT_KEY)
        .agg(best.alias("_b"))
        .select(
            *HUNT_KEY,
            F.col("_b.local").alias("beacon_local"),
            F.col("_b.intervals").alias("beacon_intervals"),
            F.col("_b.median_gap").alias("beacon_median_interval_s"),
            F.col("_b.dispersion").alias("beacon_dispersion"),
        )
    )


# A connection's flow rows (both directions, one per flow key and window) are one session while each
# starts within SESSION_GAP_S of the latest end before it. A flow log record covers at most 10 minutes
# (the longest aggregation interval), so a connection that carries a packet at least that often is one
# session across windows; a longer silence, or the same ports used again hours later, starts another.
SESSION_GAP_S = 600


def sessions(hf: DataFrame, gap_s: int = SESSION_GAP_S) -> DataFrame:
    """Per hunt key, the longest session of its accepted flows: longest_session_s = the session's last
    end - its first start. A session is one connection (the peer, our address, the client's port, the
    server's port, the protocol: hunt_flows' client -> server orientation, so both directions are one
    connection) whose rows follow each other with at most gap_s seconds between one row's start and the
    latest end before it. Keys without an accepted flow have no row."""
    conn = [*HUNT_KEY, "local", "client_port"]
    w = Window.partitionBy(*conn).orderBy("start", "end")
    start, end = F.unix_seconds("start"), F.unix_seconds("end")
    prev_end = F.max(end).over(w.rowsBetween(Window.unboundedPreceding, -1))
    new = F.when(prev_end.isNull() | (start > prev_end + F.lit(gap_s)), 1).otherwise(0)
    marked = hf.where(F.col("action") == "ACCEPT").select(*conn, "start", "end", new.alias("_new"))
    numbered = marked.withColumn("_session", F.sum("_new").over(w.rowsBetween(Window.unboundedPreceding, 0)))
    per_session = numbered.groupBy(*conn, "_session").agg(
        (F.max(F.unix_seconds("end")) - F.min(F.unix_seconds("start"))).alias("_seconds")
    )
    return per_session.groupBy(*HUNT_KEY).agg(F.max("_seconds").alias("longest_session_s"))


def _exfil(hf: DataFrame, baseline_hours: int) -> DataFrame:
    """Per outbound hunt key: the hour with the most bytes sent by our side, and the baseline hour."""
    out = hf.where(F.col("direction") == OUTBOUND)
    hourly = out.groupBy(*HUNT_KEY, F.date_trunc("hour", "start").alias("hour")).agg(
        F.sum("bytes_out").cast("long").alias("hour_bytes")
    )
    overall = hourly.agg(F.percentile_approx("hour_bytes", 0.5, 10000).alias("_all_median"))
    peak = F.max(F.struct(F.col("hour_bytes"), F.col("hour")))
    per_key = hourly.groupBy(*HUNT_KEY).agg(
        peak.alias("_p"),
        F.count(F.lit(1)).alias("active_hours"),
        F.percentile_approx("hour_bytes", 0.5, 10000).alias("_own_median"),
    )
    baseline = F.when(F.col("active_hours") >= baseline_hours, F.col("_own_median")).otherwise(F.col("_all_median"))
    return per_key.crossJoin(F.broadcast(overall)).select(
        *HUNT_KEY,
        F.col("_p.hour").alias("peak_hour"),
        F.col("_p.hour_bytes").alias("peak_hour_bytes_out"),
        F.col("active_hours"),
        baseline.cast("long").alias("baseline_hour_bytes_out"),
    )


def _flag_rows(s: DataFrame, findings: DataFrame | None) -> DataFrame:
    """s with `flags` and `evidence` from the findings naming each row's peer: a finding of a peer (the
    scanner, the brute forcer, a beacon's or an upload's destination, a listed address) flags the peer's
    rows on the finding's protocol and port, or all of them when it has none (a vertical scan: many ports).
    flags: their detections, sorted, ',' between; evidence: their sentences in that order, '; ' between."""
    key = list(HUNT_KEY)
    if findings is None:
        return s.withColumn("flags", F.lit("")).withColumn("evidence", F.lit(""))
    f = findings.where(F.col("peer").isNotNull()).select(
        F.col("peer").alias("_f_peer"),
        F.col("protocol").alias("_f_protocol"),
        F.col("port").alias("_f_port"),
        "detection",
        "evidence",
    )
    c = F.col
    matched = (
        s.select(*key)
        .join(
            f,
            (c("peer") == c("_f_peer"))
            & (c("_f_port").isNull() | (c("_f_port") == c("port")))
            & (c("_f_protocol").isNull() | (c("_f_protocol") == c("protocol"))),
        )
        .groupBy(*key)
        .agg(F.sort_array(F.collect_set(F.struct("detection", "evidence"))).alias("_f"))
        .select(
            *key,
            F.array_join(F.array_distinct(c("_f.detection")), ",").alias("flags"),
            F.array_join(c("_f.evidence"), "; ").alias("evidence"),
        )
    )
    out = s.join(matched, key, "left")
    return out.fillna("", subset=["flags", "evidence"])


def hunt(hf: DataFrame, findings: DataFrame | None = None, baseline_hours: int = BASELINE_HOURS) -> DataFrame:
    """One row per (peer, direction, protocol, port) of hunt_flows with the measures a hunter reads (who,
    how much, how regular, how long, the peak hour against the usual one), `flags` (the detections of the
    findings naming the peer on that port, see _flag_rows; '' for none) and `evidence` (their sentences).
    Without findings (the findings step not run) every row's flags are ''.

    Null for a known reason (blank_reasons says it in the report): the beacon columns (BEACON_COLUMNS)
    on every row not flagged beaconing; peak_hour .. baseline_hour_bytes_out on inbound rows (they measure
    what our side sent); longest_session_s where no flow was accepted."""
    key = list(HUNT_KEY)
    s = (
        _summary(hf)
        .join(beacon_measures(hf), key, "left")
        .join(_exfil(hf, baseline_hours), key, "left")
        .join(sessions(hf), key, "left")
    )
    flagged = _flag_rows(s, findings)
    # the beacon measures on beaconing rows only: on any other row they describe no finding
    beaconing = F.array_contains(F.split(F.col("flags"), ","), "beaconing")
    return flagged.select(
        *[F.when(beaconing, F.col(x)).alias(x) if x in BEACON_COLUMNS else F.col(x) for x in flagged.columns]
    )


def hunt_top(h: DataFrame, n: int = 20) -> DataFrame:
    """What the report keeps: every flagged row and the n peer/ports with the most bytes."""
    top_keys = h.orderBy(F.col("bytes").desc(), *HUNT_KEY).limit(n).select(*HUNT_KEY).withColumn("_top", F.lit(True))
    out = h.join(F.broadcast(top_keys), list(HUNT_KEY), "left").where(
        (F.col("flags") != "") | F.col("_top").isNotNull()
    )
    return out.drop("_top").orderBy((F.col("flags") == "").asc(), F.col("bytes").desc(), *HUNT_KEY)


# ---------------------------------------------------------------- interfaces: which resource an ENI is


def latest_interfaces(snapshots: DataFrame) -> DataFrame:
    """Each interface's row of its latest snapshot in <lake>/interfaces (an interface deleted since keeps
    its last row: flows of the past still name it)."""
    w = Window.partitionBy("interface_id").orderBy(F.col("snapshot_time").desc())
    return snapshots.withColumn("_n", F.row_number().over(w)).where(F.col("_n") == 1).drop("_n")


def resource_label() -> Column:
    """What an interface is, for a person: "nat-0abc (NAT gateway, subnet-x)", "i-0123 (instance)", else
    its description ("ELB app/web/...", "RDSNetworkInterface"), else its interface type."""
    c = F.col
    return (
        F.when(
            c("nat_gateway_id").isNotNull(),
            F.format_string("%s (NAT gateway, %s)", c("nat_gateway_id"), F.coalesce(c("subnet_id"), F.lit("?"))),
        )
        .when(c("instance_id").isNotNull(), F.format_string("%s (instance)", c("instance_id")))
        .when(F.coalesce(c("description"), F.lit("")) != "", c("description"))
        .otherwise(c("interface_type"))
    )


def interface_resources(latest: DataFrame) -> DataFrame:
    """interface_id -> resource (latest_interfaces' rows)."""
    return latest.select("interface_id", resource_label().alias("resource"))


def address_resources(latest: DataFrame) -> DataFrame:
    """address -> interface_id, resource for every private and public address of an interface. An address
    that several interfaces hold (the same private range in two VPCs) lists them all, ' | ' between."""
    none = F.array().cast("array<string>")
    addrs = F.array_union(F.coalesce(F.col("private_ips"), none), F.coalesce(F.col("public_ips"), none))
    per = latest.select(F.explode(addrs).alias("address"), "interface_id", resource_label().alias("resource"))
    return per.groupBy("address").agg(
        F.array_join(F.array_sort(F.collect_set("interface_id")), " | ").alias("interface_id"),
        F.array_join(F.array_sort(F.collect_set("resource")), " | ").alias("resource"),
    )


def with_resource(df: DataFrame, resources: DataFrame, key: str, label: str = "resource") -> DataFrame:
    """df with `label` (the resource of `key`: an interface id with interface_resources, an address with
    address_resources) right after `key`. resources is one row per interface/address: broadcast."""
    on = "interface_id" if "address" not in resources.columns else "address"
    res = resources.select(F.col(on).alias("_res_key"), F.col("resource").alias(label))
    joined = df.join(F.broadcast(res), F.col(key) == F.col("_res_key"), "left")
    cols = [c for c in df.columns]
    at = cols.index(key) + 1
    return joined.select(*cols[:at], label, *cols[at:])


# ---------------------------------------------------------------- why a column is blank


def blank_reasons(
    *,
    ntp: NtpFilter = NtpFilter(),
    asn_db: bool = False,
    geo_db: bool = False,
    interfaces: bool = False,
    exclude_aws: bool = True,
    ip: str | None = None,
    previous_period: bool = False,
) -> dict[str, list[tuple[tuple[str, ...], str]]]:
    """Why a column of a section is blank (null) on some rows, or absent, when the reason is known from how
    the report was run: {"report/section": [(columns, why), ...]}. column_notes() keeps the ones that apply
    to the rows written. Numeric columns stay numeric: the reason goes beside the table, never in a cell.

    asn_db: --asn-db was given; interfaces: the lake has a `flowspark interfaces` snapshot; exclude_aws and
    ip: how hunt chose its peers ([reports] exclude_aws_peers, --ip); previous_period: the range is closed (--from
    and --to), so the network report's period section has a previous window."""
    no_snapshot = "no interfaces snapshot in the lake: run 'flowspark interfaces' to name the resources"
    not_in_snapshot = "the address is on no interface of the latest 'flowspark interfaces' snapshot"
    resource = no_snapshot if not interfaces else not_in_snapshot
    asn_cols = ("asn", "asn_org")
    asn = (
        "not in the ASN database given with --asn-db"
        if asn_db
        else "no --asn-db given (a MaxMind-format ASN .mmdb adds asn and asn_org)"
    )
    geo_cols = ("country", "country_name")
    geo = (
        "not in the country database given with --geo-db"
        if geo_db
        else "no --geo-db given (a MaxMind-format country .mmdb adds country and country_name)"
    )
    if exclude_aws and not ip:
        aws = "peers in AWS's prefixes are left out of hunt ([reports] exclude_aws_peers; --ip keeps them)"
    else:
        aws = "the peer is not in AWS's published prefixes"
    beacon_resource = no_snapshot if not interfaces else "only on beaconing rows; there, " + not_in_snapshot
    own = (
        "none in the records where the address is the interface's own (an egress source, an ingress "
        "destination: needs flow-direction); ECS fields are version 7, tag values version 11"
    )
    out: dict[str, list[tuple[tuple[str, ...], str]]] = {
        "north_south/top_peers": [(asn_cols, asn), (geo_cols, geo)],
        "hunt/peers": [
            (asn_cols, asn),
            (geo_cols, geo),
            (("peer_aws_service",), aws),
            (BEACON_COLUMNS, "only on beaconing rows"),
            (("beacon_local_resource",), beacon_resource),
            (
                ("peak_hour", "peak_hour_bytes_out", "active_hours", "baseline_hour_bytes_out"),
                "outbound rows only: what our side sent",
            ),
            (("longest_session_s",), "no accepted flow"),
        ],
        "talkers/top_sources": [(("resource",), resource), (geo_cols, geo), (("ecs_service", "tags"), own)],
        "talkers/top_destinations": [(("resource",), resource), (geo_cols, geo), (("ecs_service", "tags"), own)],
        "network/intel_contacts": [(geo_cols, geo)],
        "network/period": [
            (
                ("previous", "change", "change_share", "previous_from", "previous_to"),
                "the lake's flows have no row in the previous period (the same number of days just before the "
                "range), or the measure is unknown there (cleartext bytes need encryption-status, v10); "
                "change_share also when the previous figure is 0"
                if previous_period
                else "no previous period: the range is open (give --from and --to)",
            )
        ],
        "talkers/nat_sources": [
            (("resource",), resource),
            (
                ("aws_bytes",),
                "the NAT's flow log has no pkt-dstaddr (pkt-srcaddr for replies): add them to its format "
                "to see which AWS service the bytes went to",
            ),
        ],
        "talkers/nat_services": [
            (("aws_region",), "INTERNET: not in AWS's published prefixes"),
            (
                ("nat_resource",),
                no_snapshot if not interfaces else "the NAT is on no interface of the latest snapshot",
            ),
        ],
    }
    if not ntp.enabled:
        out["north_south/split"] = [(("ntp_flows",), "NTP sync not counted: [reports] ntp_filter = false")]
    return out


def column_notes(
    reasons: Sequence[tuple[Sequence[str], str]], columns: Sequence[str], rows: Sequence[dict]
) -> list[dict[str, object]]:
    """The reasons (one section's blank_reasons) that apply to the rows written: for each, the columns of
    it that are absent from `columns` (the section's) or null in one of `rows` (the rows written to the
    files). [{"columns": [...], "why": "..."}], in the order of `reasons`; [] when no column is blank."""
    out: list[dict[str, object]] = []
    have = set(columns)
    for cols, why in reasons:
        blank = [c for c in cols if c not in have or any(r.get(c) is None for r in rows)]
        if blank:
            out.append({"columns": blank, "why": why})
    return out
