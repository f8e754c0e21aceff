"""The rules of AWS ip-ranges.json (parsing, range buckets, the range join), pure. The jobs are
:mod:`flowspark.pipelines.ipranges` and :mod:`flowspark.pipelines.classify`.

AWS ip-ranges.json -> ``aws_ip_ranges``; flow addresses -> ``ip_classes`` through a range join.

Tables (under the lake)

``aws_ip_ranges``
    One row per published (prefix, region, service, network_border_group) of one file version, keyed
    by ``sync_token`` (the file's publication time, epoch seconds). Every loaded version is kept, so
    the history of AWS's ranges is queryable; jobs use the newest ``sync_token``. A file older than
    the newest loaded is refused, a malformed one too; the same ``sync_token`` again changes nothing.
    Columns: sync_token, create_date, ip_version, prefix, prefix_length, first_ip, last_ip,
    first_hi, first_lo, last_hi, last_lo (the first and last address as 128-bit numbers in two longs,
    see flowspark.core.addresses), region, network_border_group (null in files before 2019), service.

``ip_classes``
    One row per distinct address text seen in ``flows`` (srcaddr, dstaddr, pkt_srcaddr, pkt_dstaddr):
    ip, ip_version, address_class, and the AWS columns (null outside AWS):
    aws_prefix          the longest published prefix containing the address (an AMAZON-only prefix
                        nested in an EC2 one stays AMAZON's: it is not EC2's)
    aws_service         among the rows of that prefix, AWS's rule for overlapping ranges ("when
                        service A uses resources of service B, the range is listed under both and
                        used exclusively by A"): a service other than EC2 and AMAZON (S3,
                        ROUTE53_HEALTHCHECKS, ...) before EC2, EC2 before AMAZON (AMAZON lists every
                        range); ties by service name, then region, then network_border_group
    aws_region, aws_network_border_group   of that same row
    aws_matches         every match, as in seed 004: ``region_SERVICE_prefix`` joined with ",",
                        longest prefix first, then region, service, network_border_group
    aws_sync_token      the aws_ip_ranges version used
    Writes: ``classify`` without --from/--to rebuilds the table from all of ``flows`` (overwrite);
    with a date range it MERGEs the addresses of those dates on ``ip`` (insert new addresses,
    re-classify known ones with the newest ranges), so a rerun leaves the table as after one run.

The join (classify_addresses) never compares every address with every prefix: both sides get an
equality key ``(ip_version, bucket)``, the top 16 bits of an IPv4 address or the top 32 bits of an
IPv6 address; a prefix wider than its bucket is exploded into all the buckets it covers (a /12 into
16 rows). The few thousand bucket rows are broadcast, the join is a BroadcastHashJoin on the key,
and the range test ``first <= address <= last`` is the join's extra condition.

IPv4-mapped and NAT64 IPv6 addresses (::ffff:a.b.c.d, 64:ff9b::a.b.c.d) take the address class of
their IPv4 address but are matched against IPv6 prefixes only. ``prefix`` is the network in Python's
normal form (``ipaddress``), which is how AWS writes it.

For reports: ``classified_flows(flows, ip_classes)`` adds src_/dst_ address_class, aws_service and
aws_region to flows; it is a function, not a table.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from dataclasses import dataclass
from typing import Any

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from flowspark.core import addresses as A

DEFAULT_SOURCE = "https://ip-ranges.amazonaws.com/ip-ranges.json"
AMAZON = "AMAZON"
EC2 = "EC2"

# Shortest prefix lengths (widest networks) accepted from a file: a wider one would explode into too
# many join buckets (2^(bucket bits - length) rows), and AWS has never published anything close.
MIN_PREFIX_LENGTH = {A.IPV4: 8, A.IPV6: 16}
V4_BUCKET_BITS = 16
V6_BUCKET_BITS = 32

RANGES_SCHEMA = (
    "sync_token long, create_date timestamp, ip_version int, prefix string, prefix_length int, "
    "first_ip string, last_ip string, first_hi long, first_lo long, last_hi long, last_lo long, "
    "region string, network_border_group string, service string"
)
ADDRESS_COLUMNS = ("srcaddr", "dstaddr", "pkt_srcaddr", "pkt_dstaddr")
_CREATE_DATE = re.compile(r"^\d{4}-\d\d-\d\d-\d\d-\d\d-\d\d$")


class IpRangesError(ValueError):
    """An ip-ranges file that cannot be loaded (malformed, or older than the newest loaded)."""


# ---------------------------------------------------------------- ip-ranges.json (driver side)


@dataclass(frozen=True)
class IpRangesFile:
    sync_token: int
    create_date: dt.datetime  # UTC, timezone-aware
    rows: list[tuple[Any, ...]]  # in RANGES_SCHEMA order
    ipv4_rows: int
    ipv6_rows: int
    duplicates: int  # identical rows listed more than once in the file (kept once)


def parse_ip_ranges(text: str, source: str = "ip-ranges.json") -> IpRangesFile:
    """Validate and flatten AWS's ip-ranges.json. Raises IpRangesError naming what is wrong.

    The file is small (a few MB at most, ~20k prefixes): it is parsed here in plain Python on the
    driver and handed to Spark with createDataFrame; it never grows with the flow data.
    """
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise IpRangesError(f"{source} is not JSON ({exc}); expected AWS's ip-ranges.json") from None
    if not isinstance(data, dict):
        raise IpRangesError(f"{source}: expected a JSON object with syncToken, createDate and prefixes")
    problems: list[str] = []
    token_text = data.get("syncToken")
    sync_token = 0
    if isinstance(token_text, (str, int)) and not isinstance(token_text, bool) and str(token_text).isdigit():
        sync_token = int(token_text)
    else:
        problems.append(f"syncToken {token_text!r} is not a number of seconds")
    created = data.get("createDate")
    create_date = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)
    try:
        if not (isinstance(created, str) and _CREATE_DATE.match(created)):
            raise ValueError
        create_date = dt.datetime.strptime(created, "%Y-%m-%d-%H-%M-%S").replace(tzinfo=dt.timezone.utc)
    except ValueError:
        problems.append(f"createDate {created!r} is not YYYY-MM-DD-hh-mm-ss")

    rows: list[tuple[Any, ...]] = []
    seen: set[tuple[Any, ...]] = set()
    duplicates = 0
    counts = {A.IPV4: 0, A.IPV6: 0}
    for list_key, prefix_key, version in (
        ("prefixes", "ip_prefix", A.IPV4),
        ("ipv6_prefixes", "ipv6_prefix", A.IPV6),
    ):
        entries = data.get(list_key, [] if list_key == "ipv6_prefixes" else None)
        if not isinstance(entries, list):
            problems.append(f"{list_key} is missing or not a list")
            continue
        for i, entry in enumerate(entries):
            where = f"{list_key}[{i}]"
            if not isinstance(entry, dict):
                problems.append(f"{where} is not an object")
                continue
            prefix = entry.get(prefix_key)
            try:
                if not isinstance(prefix, str):
                    raise ValueError
                bounds = A.network_bounds(prefix)
            except ValueError:
                problems.append(f"{where}.{prefix_key} {prefix!r} is not an IPv{version} network")
                continue
            if bounds[0] != version:
                problems.append(f"{where}.{prefix_key} {prefix!r} is not an IPv{version} network")
                continue
            if bounds[1] < MIN_PREFIX_LENGTH[version]:
                problems.append(
                    f"{where}.{prefix_key} {prefix!r} is wider than /{MIN_PREFIX_LENGTH[version]}, implausible for AWS"
                )
                continue
            region, service = entry.get("region"), entry.get("service")
            nbg = entry.get("network_border_group")
            bad = [k for k, v in (("region", region), ("service", service)) if not (isinstance(v, str) and v.strip())]
            if nbg is not None and not isinstance(nbg, str):
                bad.append("network_border_group")
            if bad:
                problems.append(f"{where} ({prefix}) has no valid {' or '.join(bad)}")
                continue
            version_, length, fh, fl, lh, ll, first, last = bounds
            row = (
                sync_token,
                create_date,
                version_,
                f"{first}/{length}",
                length,
                first,
                last,
                fh,
                fl,
                lh,
                ll,
                region,
                nbg,
                service,
            )
            if row in seen:
                duplicates += 1
                continue
            seen.add(row)
            rows.append(row)
            counts[version] += 1
    if not problems and not rows:
        problems.append("it lists no prefixes at all")
    if problems:
        more = f" (and {len(problems) - 5} more)" if len(problems) > 5 else ""
        raise IpRangesError(f"{source} is not a valid ip-ranges.json, refusing it: " + "; ".join(problems[:5]) + more)
    return IpRangesFile(sync_token, create_date, rows, counts[A.IPV4], counts[A.IPV6], duplicates)


def decode_ip_ranges(raw: bytes, source: str) -> str:
    """The text of an ip-ranges.json object (gzip or not, BOM or not); IpRangesError if it is not UTF-8."""
    import gzip

    if raw[:2] == b"\x1f\x8b":
        raw = gzip.decompress(raw)
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise IpRangesError(f"{source} is not UTF-8 text ({exc}); expected AWS's ip-ranges.json") from None


def range_buckets(ranges: DataFrame, v4_bits: int = V4_BUCKET_BITS, v6_bits: int = V6_BUCKET_BITS) -> DataFrame:
    """The join side of aws_ip_ranges: one row per (range, bucket it covers), columns prefixed _r_."""
    v, fh, fl, lh, ll = (F.col(c) for c in ("ip_version", "first_hi", "first_lo", "last_hi", "last_lo"))
    first_bucket = A.bucket(v, fh, fl, v4_bits, v6_bits)
    last_bucket = A.bucket(v, lh, ll, v4_bits, v6_bits)
    return ranges.select(
        v.alias("_r_version"),
        F.explode(F.sequence(first_bucket, last_bucket)).alias("_r_bucket"),
        fh.alias("_r_first_hi"),
        fl.alias("_r_first_lo"),
        lh.alias("_r_last_hi"),
        ll.alias("_r_last_lo"),
        F.col("prefix").alias("_r_prefix"),
        F.col("prefix_length").alias("_r_length"),
        F.col("region").alias("_r_region"),
        F.col("network_border_group").alias("_r_nbg"),
        F.col("service").alias("_r_service"),
    )


def flow_addresses(flows: DataFrame) -> DataFrame:
    """Distinct address texts (column ``ip``) of flows: srcaddr, dstaddr and, when present,
    pkt_srcaddr and pkt_dstaddr."""
    cols = [F.col(c) for c in ADDRESS_COLUMNS if c in flows.columns]
    if not cols:
        raise ValueError(f"flows has none of the address columns {', '.join(ADDRESS_COLUMNS)}")
    ip = F.col("ip")
    return flows.select(F.explode(F.array(*cols)).alias("ip")).where(ip.isNotNull()).distinct()


def classify_addresses(
    addresses: DataFrame, ranges: DataFrame, v4_bits: int = V4_BUCKET_BITS, v6_bits: int = V6_BUCKET_BITS
) -> DataFrame:
    """ip_classes rows for distinct address texts (column ``ip``) against ranges of ONE sync_token
    (see read_latest_ranges). Columns: ip, ip_version, address_class, aws_prefix, aws_service, aws_region,
    aws_network_border_group, aws_matches."""
    parsed = addresses.select("ip", A.parse_ip("ip").alias("_a"))
    a = F.col("_a")
    left = parsed.withColumn(
        "_bucket", A.bucket(a.getField("ip_version"), a.getField("hi"), a.getField("lo"), v4_bits, v6_bits)
    )
    right = range_buckets(ranges, v4_bits, v6_bits)
    r = {c: F.col(f"_r_{c}") for c in ("first_hi", "first_lo", "last_hi", "last_lo")}
    condition = (
        (a.getField("ip_version") == F.col("_r_version"))
        & (F.col("_bucket") == F.col("_r_bucket"))
        & A.u128_between(a.getField("hi"), a.getField("lo"), r["first_hi"], r["first_lo"], r["last_hi"], r["last_lo"])
    )
    joined = left.join(F.broadcast(right), condition, "left")

    matched = F.col("_r_prefix").isNotNull()
    length, region, service, nbg, prefix = (F.col(f"_r_{c}") for c in ("length", "region", "service", "nbg", "prefix"))
    # min() of a struct orders field by field: longest prefix; at it, a service that uses EC2's (or
    # AMAZON's) ranges before EC2, EC2 before AMAZON; then service, region, border group: a total,
    # deterministic order.
    service_rank = F.when(service == AMAZON, 2).when(service == EC2, 1).otherwise(0)
    best = F.min(
        F.when(
            matched,
            F.struct(
                (-length).alias("neg_length"),
                service_rank.alias("service_rank"),
                service.alias("service"),
                region.alias("region"),
                F.coalesce(nbg, F.lit("")).alias("nbg_key"),
                nbg.alias("nbg"),
                prefix.alias("prefix"),
            ),
        )
    )
    text = F.concat_ws("_", region, service, prefix)
    every = F.sort_array(
        F.collect_list(
            F.when(
                matched,
                F.struct(
                    (-length).alias("neg_length"),
                    region.alias("region"),
                    service.alias("service"),
                    F.coalesce(nbg, F.lit("")).alias("nbg_key"),
                    text.alias("text"),
                ),
            )
        )
    )
    # The left side is distinct on ip (hash-partitioned by it) and the broadcast join keeps that
    # partitioning, so this groupBy needs no second shuffle.
    agg = joined.groupBy("ip", "_a").agg(best.alias("_best"), every.alias("_every"))
    b = F.col("_best")
    return agg.select(
        F.col("ip"),
        a.getField("ip_version").alias("ip_version"),
        A.class_of("_a").alias("address_class"),
        b.getField("prefix").alias("aws_prefix"),
        b.getField("service").alias("aws_service"),
        b.getField("region").alias("aws_region"),
        b.getField("nbg").alias("aws_network_border_group"),
        F.when(F.size("_every") > 0, F.array_join(F.transform("_every", lambda m: m.getField("text")), ",")).alias(
            "aws_matches"
        ),
    )


def classified_flows(flows: DataFrame, ip_classes: DataFrame, pkt: bool = False) -> DataFrame:
    """flows with src_/dst_ address_class, aws_service, aws_region joined on (and pkt_src_/pkt_dst_
    ones with pkt=True). address_class falls back to the address itself when ip_classes has no row
    for it (it needs no table); the AWS columns are null then."""
    sides = [("src", "srcaddr"), ("dst", "dstaddr")]
    if pkt:
        sides += [("pkt_src", "pkt_srcaddr"), ("pkt_dst", "pkt_dstaddr")]
    out = flows
    for side, col in sides:
        key = f"_{side}_ip"
        right = ip_classes.select(
            F.col("ip").alias(key),
            F.col("address_class").alias(f"_{side}_class"),
            F.col("aws_service").alias(f"{side}_aws_service"),
            F.col("aws_region").alias(f"{side}_aws_region"),
        )
        out = (
            out.join(right, F.col(col) == F.col(key), "left")
            .withColumn(
                f"{side}_address_class",
                F.when(F.col(col).isNotNull(), F.coalesce(F.col(f"_{side}_class"), A.address_class(col))),
            )
            .drop(key, f"_{side}_class")
        )
    return out
