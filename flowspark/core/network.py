"""The network report's rules: sections read from fields flows already store (pure DataFrame -> DataFrame).

Each function takes ``flows`` (or, for data quality, the ledger) and returns a small aggregate; none runs an
action. :mod:`flowspark.pipelines.report` writes each as ``<lake>/reports/network/<section>`` and renders
them. A "flow" is one row of ``flows`` (one flow key in one window), ``records`` the records it holds.

What each field means, as AWS documents it (the README's network-report section cites the pages):

- ``reject-reason`` (v8): why a REJECT was rejected: ``BPA`` (VPC Block Public Access), ``EC`` (VPC
  Encryption Controls); ``-`` (stored NULL) for every other REJECT: a security group or a network ACL.
- ``encryption-status`` (v10): 0 not encrypted, 1 encrypted by the Nitro hardware, 2 encrypted at the
  application layer (TLS, as AWS's services and endpoints do), 3 both. Stored as the string AWS writes.
- ``packets-lost-no-route``, ``-blackhole``, ``-mtu-exceeded``, ``-ttl-expired`` (v6): the packets a Transit
  Gateway dropped, per cause.
- ``az-id`` (v4) and ``next-hop-az-id`` (v11): the AZ of the interface and of the next hop of its outgoing
  traffic; they differ when the traffic crosses AZs, which AWS bills per GB in each direction.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

from flowspark.core import protocols
from flowspark.core.dedup import client_server
from flowspark.core.reports import time_bucket, totals

# reject-reason codes -> what rejected the traffic
REJECT_CAUSES = {
    "BPA": "VPC Block Public Access",
    "EC": "VPC Encryption Controls",
}
NO_REASON = "security group or network ACL (no reject-reason)"
# encryption-status codes -> meaning
ENCRYPTION = {
    0: "not encrypted (cleartext)",
    1: "Nitro-encrypted",
    2: "application-layer encrypted (TLS)",
    3: "Nitro and application-layer encrypted",
}
CLEARTEXT = 0
# Transit Gateway drop counters -> cause
TGW_DROPS = {
    "packets_lost_no_route": "no route",
    "packets_lost_blackhole": "blackhole route",
    "packets_lost_mtu_exceeded": "MTU exceeded",
    "packets_lost_ttl_expired": "TTL expired",
}
# The dimensions of `breakdown`, each with the snapshot column that fills it when records lack it.
BREAKDOWN = ("account_id", "vpc_id", "subnet_id", "az_id", "interface_id")
FROM_SNAPSHOT = ("vpc_id", "subnet_id")


@dataclass(frozen=True)
class CrossAzPrice:
    """Data transfer between AZs of one region, $ per GB: AWS bills 0.01 out of the sending AZ and 0.01 into
    the receiving one, so a GB that crosses costs 0.02 (read on `read_on`, `source`)."""

    per_gb: float = 0.02
    read_on: str = "2026-12-03"
    bytes_per_gb: int = 1_000_000_000


def _col(df: DataFrame, name: str, kind: str = "string") -> Column:
    """The column, or a typed NULL when the table has no such column (a lake of an older flowspark)."""
    return F.col(name) if name in df.columns else F.lit(None).cast(kind)


def _top(df: DataFrame, n: int, *order: Column) -> DataFrame:
    return df.orderBy(*order).limit(n)


def _labels(mapping: dict, key: Column, otherwise: str | None = None) -> Column:
    out = None
    for code, text in mapping.items():
        out = (F.when(key == F.lit(code), F.lit(text))) if out is None else out.when(key == F.lit(code), F.lit(text))
    assert out is not None
    return out.otherwise(F.lit(otherwise))


def _cause(code: Column) -> Column:
    """What a reject-reason code means: BPA, EC, NULL (AWS's '-': a security group or a network ACL), and a
    code AWS adds later as 'other reason CODE' (never merged into another cause)."""
    known = _labels(REJECT_CAUSES, code, None)
    return F.when(code.isNull(), F.lit(NO_REASON)).otherwise(F.coalesce(known, F.concat(F.lit("other reason "), code)))


def _rejected(flows: DataFrame) -> DataFrame:
    return flows.where(F.col("action") == "REJECT").withColumn("reject_reason", _col(flows, "reject_reason"))


def reject_causes(flows: DataFrame) -> DataFrame:
    """REJECT flows by reject-reason: reject_reason (the code, NULL when AWS wrote '-'), cause, flows, records,
    packets, bytes, peers (distinct sources), interfaces."""
    return (
        _rejected(flows)
        .groupBy("reject_reason")
        .agg(
            *totals(),
            F.countDistinct("srcaddr").alias("peers"),
            F.countDistinct("interface_id").alias("interfaces"),
        )
        .select(
            "reject_reason",
            _cause(F.col("reject_reason")).alias("cause"),
            "flows",
            "records",
            "packets",
            "bytes",
            "peers",
            "interfaces",
        )
    )


def top_rejected(flows: DataFrame, n: int = 20) -> DataFrame:
    """The n (source, destination, port) triples with the most rejected records, their cause, the
    interfaces that recorded them and when: rank, srcaddr, dstaddr, protocol, dstport, reject_reason,
    records, packets, interfaces, first_seen, last_seen."""
    g = (
        _rejected(flows)
        .groupBy("srcaddr", "dstaddr", "protocol", "dstport", "reject_reason")
        .agg(
            F.sum("records").cast("long").alias("records"),
            F.sum("packets").cast("long").alias("packets"),
            F.countDistinct("interface_id").alias("interfaces"),
            F.min("start").alias("first_seen"),
            F.max("end").alias("last_seen"),
        )
    )
    order = [F.col("records").desc(), "srcaddr", "dstaddr", "protocol", "dstport", "reject_reason"]
    top = _top(g, n, *order)
    return top.select(F.row_number().over(Window.orderBy(*order)).alias("rank"), *g.columns)


def rejected_over_time(flows: DataFrame, bucket_seconds: int = 3600) -> DataFrame:
    """Rejected records per hour (on start, UTC) and cause: time, cause, records, packets, sources."""
    bucket = time_bucket(F.col("start"), bucket_seconds)
    r = _rejected(flows)
    return r.groupBy(bucket.alias("time"), _cause(F.col("reject_reason")).alias("cause")).agg(
        F.sum("records").cast("long").alias("records"),
        F.sum("packets").cast("long").alias("packets"),
        F.countDistinct("srcaddr").alias("sources"),
    )


# A response is recorded within seconds of its request; the slack covers the aggregation interval (1 min on
# Nitro, up to 10 min otherwise) of the two records, which AWS closes independently.
NACL_SLACK_S = 600


def nacl_drops(flows: DataFrame, n: int = 20, slack_s: int = NACL_SLACK_S) -> DataFrame:
    """Security group or network ACL: traffic ACCEPTed on an interface whose response, on the same interface,
    is REJECTed. Security groups are stateful (a response to allowed traffic is always allowed), so only a
    network ACL drops it: AWS's flow log examples explain the pair this way.

    A request is an ACCEPT flow; its response is a REJECT flow on the same interface with the addresses and
    ports swapped and the same protocol, starting no earlier than `slack_s` before the request started and no
    later than `slack_s` after it ended. Each side is counted once (a semi-join each way, so a long session's
    many windows never multiply): one row per (interface, initiator, responder, protocol, port): requests
    (accepted records), rejected_responses (records), rejected_packets, first_seen, last_seen, and
    nacl_rule: the rule that dropped the responses (outbound when the request came in, inbound when it went
    out; unknown without flow-direction). The n rows with the most rejected responses."""
    acc = flows.where(F.col("action") == "ACCEPT").alias("a")
    rej = flows.where(F.col("action") == "REJECT").alias("b")
    c, slack = F.col, F.expr(f"INTERVAL {int(slack_s)} SECONDS")
    # a: the request, b: its response (the aliases hold whichever side is on the left of the semi-join)
    on = [
        c("a.interface_id") == c("b.interface_id"),
        c("a.srcaddr") == c("b.dstaddr"),
        c("a.dstaddr") == c("b.srcaddr"),
        c("a.srcport").eqNullSafe(c("b.dstport")),
        c("a.dstport").eqNullSafe(c("b.srcport")),
        c("a.protocol") == c("b.protocol"),
        c("b.start") >= c("a.start") - slack,
        c("b.start") <= c("a.end") + slack,
    ]
    direction = _col(flows, "flow_direction")
    requests = (
        acc.join(rej, on, "left_semi")
        .withColumn("_dir", direction)
        .groupBy(
            F.col("interface_id"),
            F.col("srcaddr").alias("initiator"),
            F.col("dstaddr").alias("responder"),
            "protocol",
            F.col("dstport").alias("port"),
        )
        .agg(
            F.sum("records").cast("long").alias("requests"),
            F.min("start").alias("first_seen"),
            F.max(F.col("_dir")).alias("_dir"),
        )
    )
    responses = (
        rej.join(acc, on, "left_semi")
        .groupBy(
            F.col("interface_id"),
            F.col("dstaddr").alias("initiator"),
            F.col("srcaddr").alias("responder"),
            "protocol",
            F.col("srcport").alias("port"),
        )
        .agg(
            F.sum("records").cast("long").alias("rejected_responses"),
            F.sum("packets").cast("long").alias("rejected_packets"),
            F.max("end").alias("last_seen"),
        )
    )
    key = ["interface_id", "initiator", "responder", "protocol", "port"]
    joined = requests.join(responses, key, "inner").select(
        *key,
        "requests",
        "rejected_responses",
        "rejected_packets",
        "first_seen",
        "last_seen",
        F.when(F.col("_dir") == "ingress", F.lit("outbound rule (the request came in)"))
        .when(F.col("_dir") == "egress", F.lit("inbound rule (the request went out)"))
        .otherwise(F.lit("unknown (no flow-direction)"))
        .alias("nacl_rule"),
    )
    return _top(joined, n, F.col("rejected_responses").desc(), *key)


def _encryption(flows: DataFrame) -> DataFrame:
    """ACCEPT flows that carry an encryption-status, as `encryption_status` (AWS's code, 0-3), and the
    server's port (client_server's rule)."""
    code = "encryption_status_code"  # an int column since 2026-12 (older lakes' text is read into it)
    status = F.col(code) if code in flows.columns else F.lit(None).cast("int")
    sided = client_server(flows.where(F.col("action") == "ACCEPT").withColumn("encryption_status", status))
    return sided.where(F.col("encryption_status").isNotNull())


def encryption(flows: DataFrame) -> DataFrame:
    """Bytes and flows by encryption-status (for Encryption Controls audits): encryption_status, meaning,
    flows, records, bytes, interfaces. Flows without the field (formats before v10) are not counted."""
    return (
        _encryption(flows)
        .groupBy("encryption_status")
        .agg(*totals(), F.countDistinct("interface_id").alias("interfaces"))
        .select(
            "encryption_status",
            _labels(ENCRYPTION, F.col("encryption_status"), "unknown code").alias("meaning"),
            "flows",
            "records",
            "packets",
            "bytes",
            "interfaces",
        )
    )


def cleartext(flows: DataFrame, n: int = 20) -> DataFrame:
    """The n (interface, protocol, server port) with the most cleartext bytes (encryption-status 0):
    interface_id, protocol, port, flows, bytes, peers, and cleartext_share: the cleartext bytes of that
    interface and port over all its bytes whose status is known."""
    e = _encryption(flows)
    key = ["interface_id", "protocol", F.col("server_port").alias("port")]
    g = e.groupBy(*key).agg(
        F.count(F.when(F.col("encryption_status") == CLEARTEXT, 1)).alias("flows"),
        F.sum(F.when(F.col("encryption_status") == CLEARTEXT, F.col("bytes"))).cast("long").alias("bytes"),
        F.countDistinct(F.when(F.col("encryption_status") == CLEARTEXT, F.col("client_addr"))).alias("peers"),
        F.sum("bytes").cast("long").alias("_all"),
    )
    g = g.where(F.col("flows") > 0).select(
        "interface_id",
        "protocol",
        "port",
        "flows",
        "bytes",
        "peers",
        F.when(F.col("_all") > 0, F.round(F.col("bytes") / F.col("_all"), 4)).alias("cleartext_share"),
    )
    return _top(g, n, F.col("bytes").desc(), "interface_id", "protocol", "port")


def tgw_drops(flows: DataFrame, bucket_seconds: int = 3600) -> DataFrame:
    """Packets a Transit Gateway dropped, per hour (on start, UTC), attachment and cause: time, tgw_id,
    tgw_attachment_id, cause, packets_lost, flows (the flows that lost any). Causes with no loss give no
    row."""
    bucket = time_bucket(F.col("start"), bucket_seconds)
    causes = F.array(
        *[
            F.struct(F.lit(text).alias("cause"), _col(flows, column, "long").alias("lost"))
            for column, text in TGW_DROPS.items()
        ]
    )
    per = flows.select(
        bucket.alias("time"),
        _col(flows, "tgw_id").alias("tgw_id"),
        _col(flows, "tgw_attachment_id").alias("tgw_attachment_id"),
        F.explode(causes).alias("c"),
    ).where(F.col("c.lost") > 0)
    return per.groupBy("time", "tgw_id", "tgw_attachment_id", F.col("c.cause").alias("cause")).agg(
        F.sum("c.lost").cast("long").alias("packets_lost"), F.count(F.lit(1)).alias("flows")
    )


def cross_az(flows: DataFrame, price: CrossAzPrice = CrossAzPrice(), n: int = 20) -> DataFrame:
    """Bytes an interface sent to a next hop in another AZ (az-id differs from next-hop-az-id; the next hop is
    on the records of outgoing traffic only, so a transfer is counted once) and what it costs at
    `price`: interface_id, az_id, next_hop_az_id, next_hop_interface_type, flows, bytes, cost_usd. The n
    largest by bytes; `cross_az_pairs` has every AZ pair."""
    g = (
        _crossing(flows)
        .groupBy("interface_id", "az_id", "next_hop_az_id", "next_hop_interface_type")
        .agg(F.count(F.lit(1)).alias("flows"), F.sum("bytes").cast("long").alias("bytes"))
        .withColumn("cost_usd", _cost(price))
    )
    return _top(g, n, F.col("bytes").desc(), "interface_id", "az_id", "next_hop_az_id")


def cross_az_pairs(flows: DataFrame, price: CrossAzPrice = CrossAzPrice()) -> DataFrame:
    """cross_az per (az_id, next_hop_az_id): flows, bytes, interfaces, cost_usd."""
    return (
        _crossing(flows)
        .groupBy("az_id", "next_hop_az_id")
        .agg(
            F.count(F.lit(1)).alias("flows"),
            F.sum("bytes").cast("long").alias("bytes"),
            F.countDistinct("interface_id").alias("interfaces"),
        )
        .withColumn("cost_usd", _cost(price))
    )


def _crossing(flows: DataFrame) -> DataFrame:
    az, hop = _col(flows, "az_id"), _col(flows, "next_hop_az_id")
    return flows.where((F.col("action") == "ACCEPT") & az.isNotNull() & hop.isNotNull() & (az != hop)).select(
        "interface_id",
        az.alias("az_id"),
        hop.alias("next_hop_az_id"),
        _col(flows, "next_hop_interface_type").alias("next_hop_interface_type"),
        "bytes",
    )


def _cost(price: CrossAzPrice) -> Column:
    return F.round(F.col("bytes") / F.lit(float(price.bytes_per_gb)) * F.lit(price.per_gb), 6)


def top_conversations(flows: DataFrame, n: int = 20) -> DataFrame:
    """The n address pairs with the most bytes, both directions in one row (address_a < address_b as
    strings): address_a, address_b, bytes_a_to_b, bytes_b_to_a, bytes, flows, records, interfaces,
    first_seen, last_seen. As recorded: traffic between two of your own interfaces is recorded (and
    counted) at both."""
    a_first = F.col("srcaddr") <= F.col("dstaddr")
    g = (
        flows.where(F.col("srcaddr").isNotNull() & F.col("dstaddr").isNotNull())
        .select(
            F.least("srcaddr", "dstaddr").alias("address_a"),
            F.greatest("srcaddr", "dstaddr").alias("address_b"),
            F.when(a_first, F.col("bytes")).alias("_ab"),
            F.when(~a_first, F.col("bytes")).alias("_ba"),
            "bytes",
            "records",
            "interface_id",
            "start",
            "end",
        )
        .groupBy("address_a", "address_b")
        .agg(
            F.coalesce(F.sum("_ab"), F.lit(0)).cast("long").alias("bytes_a_to_b"),
            F.coalesce(F.sum("_ba"), F.lit(0)).cast("long").alias("bytes_b_to_a"),
            F.sum("bytes").cast("long").alias("bytes"),
            F.count(F.lit(1)).alias("flows"),
            F.sum("records").cast("long").alias("records"),
            F.countDistinct("interface_id").alias("interfaces"),
            F.min("start").alias("first_seen"),
            F.max("end").alias("last_seen"),
        )
    )
    order = [F.col("bytes").desc(), "address_a", "address_b"]
    return _top(g, n, *order).select(F.row_number().over(Window.orderBy(*order)).alias("rank"), *g.columns)


def breakdown(flows: DataFrame, snapshot: DataFrame | None = None, n: int = 20) -> DataFrame:
    """Traffic by account, VPC, subnet, AZ and interface, the n largest values of each by bytes: dimension,
    value, source, flows, records, bytes, accepted_bytes, rejected_flows. vpc_id and subnet_id come from
    the records (v3+ fields) and, where a record lacks them, from the interfaces snapshot (latest row per
    interface: interface_id, vpc_id, subnet_id) when given; `source` says which ('records',
    'interfaces snapshot', or 'unknown': neither has it). az_id comes from the records only."""
    base = flows
    src = {d: F.when(_col(flows, d).isNotNull(), F.lit("records")) for d in BREAKDOWN}
    vals = {d: _col(flows, d) for d in BREAKDOWN}
    if snapshot is not None:
        snap = snapshot.select("interface_id", *[F.col(d).alias(f"_snap_{d}") for d in FROM_SNAPSHOT]).dropDuplicates(
            ["interface_id"]
        )
        base = flows.join(F.broadcast(snap), "interface_id", "left")
        for d in FROM_SNAPSHOT:
            vals[d] = F.coalesce(_col(flows, d), F.col(f"_snap_{d}"))
            src[d] = src[d].when(F.col(f"_snap_{d}").isNotNull(), F.lit("interfaces snapshot"))
    rows = base.select(
        F.explode(
            F.array(
                *[
                    F.struct(
                        F.lit(d).alias("dimension"),
                        vals[d].alias("value"),
                        src[d].otherwise(F.lit("unknown")).alias("source"),
                    )
                    for d in BREAKDOWN
                ]
            )
        ).alias("d"),
        "records",
        "bytes",
        "action",
    )
    g = rows.groupBy("d.dimension", "d.value", "d.source").agg(
        F.count(F.lit(1)).alias("flows"),
        F.sum("records").cast("long").alias("records"),
        F.sum("bytes").cast("long").alias("bytes"),
        F.coalesce(F.sum(F.when(F.col("action") == "ACCEPT", F.col("bytes"))), F.lit(0))
        .cast("long")
        .alias("accepted_bytes"),
        F.count(F.when(F.col("action") == "REJECT", 1)).alias("rejected_flows"),
    )
    w = Window.partitionBy("dimension").orderBy(F.col("bytes").desc(), F.col("value").asc_nulls_last(), "source")
    return (
        g.withColumn("rank", F.row_number().over(w))
        .where(F.col("rank") <= n)
        .select("dimension", "rank", "value", "source", "flows", "records", "bytes", "accepted_bytes", "rejected_flows")
    )


def protocol_mix(flows: DataFrame) -> DataFrame:
    """Flows, records, packets and bytes per IP protocol, with its name and share of all bytes."""
    names = F.element_at(F.array(*[F.lit(x) for x in protocols.NAMES]), F.col("protocol") + 1)
    g = flows.groupBy("protocol").agg(*totals())
    w = Window.partitionBy()
    return g.select(
        "protocol",
        F.coalesce(names, F.col("protocol").cast("string")).alias("name"),
        "flows",
        "records",
        "packets",
        "bytes",
        F.round(F.col("bytes") / F.sum("bytes").over(w), 4).alias("byte_share"),
    )


# An object AWS delivers (its S3 LastModified) later than this after the end of the last UTC day of its
# records is late ([reports] late_after_minutes).
LATE_AFTER_MINUTES = 60
_DAY_MS = 86_400_000


def data_quality(ledger: DataFrame, late_after_minutes: float = LATE_AFTER_MINUTES) -> DataFrame:
    """Per UTC day: objects, broken_objects (read only in part, or not at all: `problem` set), records (record
    lines read), rejected_lines, nodata, skipdata, rejected_share, late_objects and max_delay_minutes. Each
    object counts once, on the first day of its records (AWS delivers an object per 5 minutes, so nearly all
    hold one day); one without a valid record on the day it was claimed. Reads the ledger's done rows, the
    newest per object (a rewritten or --force'd object replaces its rows: its older version is not counted).
    Ledger rows of a flowspark before the ledger kept outcomes (no done_at) are left out; a ledger without
    those columns gives no rows.

    Late: an object whose delivery (`modification_time_ms`, the S3 LastModified) is more than
    `late_after_minutes` after the end of the LAST UTC day of its records (the day after max(days), 00:00
    UTC): a report of that day read before it arrived missed it. An object with no record day is never late.
    max_delay_minutes: the largest delivery minus that end, in minutes (0 when every object came before it
    ended; NULL when no object of the day has a record day and a delivery time)."""
    if "done_at" not in ledger.columns:
        return ledger.sparkSession.createDataFrame([], DATA_QUALITY_SCHEMA)
    done = ledger.where((F.coalesce(_col(ledger, "state"), F.lit("done")) == "done") & F.col("done_at").isNotNull())
    newest = Window.partitionBy("source_file").orderBy(F.col("ingested_at").desc(), F.col("done_at").desc())
    done = done.withColumn("_n", F.row_number().over(newest)).where(F.col("_n") == 1)
    days = _col(ledger, "days", "array<date>")
    day = F.coalesce(F.array_min(days), F.to_date("ingested_at"))
    # the end of the last record day, in epoch ms (unix_date counts UTC days: no session time zone involved)
    day_end_ms = (F.unix_date(F.array_max(days)).cast("long") + F.lit(1)) * F.lit(_DAY_MS)
    delay_ms = _col(ledger, "modification_time_ms", "long") - day_end_ms
    grace_ms = F.lit(float(late_after_minutes) * 60_000)
    g = done.groupBy(day.alias("day")).agg(
        F.count(F.lit(1)).alias("objects"),
        F.count(_col(ledger, "problem")).alias("broken_objects"),
        *[
            F.coalesce(F.sum(_col(ledger, c, "long")), F.lit(0)).cast("long").alias(alias)
            for c, alias in (
                ("records", "records"),
                ("rejected", "rejected_lines"),
                ("nodata", "nodata"),
                ("skipdata", "skipdata"),
            )
        ],
        F.count(F.when(delay_ms > grace_ms, 1)).alias("late_objects"),
        # greatest() skips NULLs: an object without a record day or a delivery time gives no delay at all
        F.round(F.max(F.when(delay_ms.isNotNull(), F.greatest(delay_ms, F.lit(0)) / F.lit(60_000.0))), 1).alias(
            "max_delay_minutes"
        ),
    )
    return g.withColumn(
        "rejected_share",
        F.when(F.col("records") > 0, F.round(F.col("rejected_lines") / F.col("records"), 6)),
    )


DATA_QUALITY_SCHEMA = (
    "day date, objects long, broken_objects long, records long, rejected_lines long, nodata long, skipdata long, "
    "late_objects long, max_delay_minutes double, rejected_share double"
)


# ---------------------------------------------------------------- the same window of the previous period

# The period section's measures, in the order of its rows: what each counts is in period_measures.
PERIOD_MEASURES = (
    "flows",
    "records",
    "packets",
    "bytes",
    "rejected_records",
    "rejected_bytes",
    "cleartext_bytes",
    "source_addresses",
    "destination_addresses",
)


def previous_period(date_from: dt.date | None, date_to: dt.date | None) -> tuple[dt.date, dt.date] | None:
    """The same number of days immediately before [date_from, date_to] (both included): (first, last) day;
    None when the range is open at either end (the report of all dates has no previous period)."""
    if date_from is None or date_to is None:
        return None
    days = (date_to - date_from).days + 1
    return date_from - dt.timedelta(days=days), date_from - dt.timedelta(days=1)


def period_measures(flows: DataFrame) -> DataFrame:
    """One row with PERIOD_MEASURES over `flows`: flows (rows), records, packets, bytes, rejected_records and
    rejected_bytes (action REJECT), cleartext_bytes (ACCEPTed bytes with encryption-status 0, as `encryption`
    counts them; NULL when no flow carries the field), and the distinct source and destination addresses.
    Every measure is NULL when `flows` has no row: nothing is known of a window the lake does not hold."""
    code = _col(flows, "encryption_status_code", "int")
    reject = F.col("action") == "REJECT"
    known = F.count(F.when(F.col("action") == "ACCEPT", code))
    cleartext = F.sum(F.when((F.col("action") == "ACCEPT") & (code == CLEARTEXT), F.col("bytes")))
    measures = {
        "flows": F.count(F.lit(1)),
        "records": F.sum("records"),
        "packets": F.sum("packets"),
        "bytes": F.sum("bytes"),
        "rejected_records": F.coalesce(F.sum(F.when(reject, F.col("records"))), F.lit(0)),
        "rejected_bytes": F.coalesce(F.sum(F.when(reject, F.col("bytes"))), F.lit(0)),
        "cleartext_bytes": F.when(known > 0, F.coalesce(cleartext, F.lit(0))),
        "source_addresses": F.countDistinct("srcaddr"),
        "destination_addresses": F.countDistinct("dstaddr"),
    }
    any_row = F.count(F.lit(1)) > 0
    return flows.agg(*[F.when(any_row, m).cast("long").alias(name) for name, m in measures.items()])


def period_comparison(
    current: DataFrame,
    previous: DataFrame | None,
    previous_from: dt.date | None = None,
    previous_to: dt.date | None = None,
) -> DataFrame:
    """The report's range beside the same window of the previous period: one row per PERIOD_MEASURES, in
    that order: position, measure, current, previous, change (current - previous), change_share (change
    over previous, rounded to 4 places; NULL when previous is 0 or NULL), previous_from, previous_to.

    `current` and `previous` are the flows of the two windows (previous: None when there is no previous
    period, for a range open at either end). A measure of a window without any flow is NULL, not 0: a
    previous window the lake does not hold compares with nothing."""
    cur = period_measures(current)
    if previous is None:
        prev = cur.select(*[F.lit(None).cast("long").alias(m) for m in PERIOD_MEASURES])
    else:
        prev = period_measures(previous)
    both = cur.select(*[F.col(m).alias(f"c_{m}") for m in PERIOD_MEASURES]).crossJoin(
        prev.select(*[F.col(m).alias(f"p_{m}") for m in PERIOD_MEASURES])
    )
    rows = F.array(
        *[
            F.struct(
                F.lit(i + 1).alias("position"),
                F.lit(m).alias("measure"),
                F.col(f"c_{m}").alias("current"),
                F.col(f"p_{m}").alias("previous"),
            )
            for i, m in enumerate(PERIOD_MEASURES)
        ]
    )
    change = F.col("current") - F.col("previous")
    return (
        both.select(F.explode(rows).alias("r"))
        .select("r.*")
        .select(
            "position",
            "measure",
            "current",
            "previous",
            change.alias("change"),
            F.when(F.col("previous") != 0, F.round(change / F.col("previous"), 4)).alias("change_share"),
            F.lit(previous_from).cast("date").alias("previous_from"),
            F.lit(previous_to).cast("date").alias("previous_to"),
        )
    )
