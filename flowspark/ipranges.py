"""AWS ip-ranges.json -> ``aws_ip_ranges``; flow addresses -> ``ip_classes`` through a range join.

Tables (under the lake)

``aws_ip_ranges``
    One row per published (prefix, region, service, network_border_group) of one file version, keyed
    by ``sync_token`` (the file's publication time, epoch seconds). Every loaded version is kept, so
    the history of AWS's ranges is queryable; jobs use the newest ``sync_token``. A file older than
    the newest loaded is refused, a malformed one too; the same ``sync_token`` again changes nothing.
    Columns: sync_token, create_date, ip_version, prefix, prefix_length, first_ip, last_ip,
    first_hi, first_lo, last_hi, last_lo (the first and last address as 128-bit numbers in two longs,
    see flowspark.addresses), region, network_border_group (null in files before 2019), service.

``ip_classes``
    One row per distinct address text seen in ``flows`` (srcaddr, dstaddr, pkt_srcaddr, pkt_dstaddr):
    ip, ip_version, address_class, and the AWS columns (null outside AWS):
    aws_prefix          the longest published prefix containing the address
    aws_service         among the rows of that prefix: a specific service (EC2, S3, ...) before
                        AMAZON; ties by service name, then region, then network_border_group
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

For reports: ``classified_flows(flows, ip_classes)`` (or ``read_classified_flows(spark, lake, ...)``)
adds src_/dst_ address_class, aws_service and aws_region to flows; it is a function, not a table.
"""

from __future__ import annotations

import argparse
import datetime as dt
import gzip
import json
import logging
import re
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from typing import Any, Optional

from pyspark.sql import DataFrame, Observation, SparkSession
from pyspark.sql import functions as F

from flowspark import addresses as A
from flowspark import tables
from flowspark.config import Config
from flowspark.sources import is_local, normalise_uri, to_local_path

log = logging.getLogger("flowspark")

AWS_IP_RANGES = "aws_ip_ranges"
IP_CLASSES = "ip_classes"
DEFAULT_SOURCE = "https://ip-ranges.amazonaws.com/ip-ranges.json"
AMAZON = "AMAZON"

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


def read_source(spark: Optional[SparkSession], source: str, timeout: float = 60.0) -> str:
    """The text of ip-ranges.json from an https URL, a local file, or any Hadoop URI (s3://, s3a://).

    URLs and local files are read in Python (no Spark needed); other URIs through Spark's own file
    systems, so S3 endpoint and credential settings are the session's.
    """
    if source.startswith(("http://", "https://")):
        try:
            with urllib.request.urlopen(source, timeout=timeout) as resp:
                raw = resp.read()
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise RuntimeError(
                f"cannot download {source}: {reason}; offline, pass --source FILE or s3://bucket/key "
                "with a copy of ip-ranges.json"
            ) from exc
        return _decode(raw, source)
    if is_local(source):
        path = to_local_path(source)
        try:
            with open(path, "rb") as fh:
                raw = fh.read()
        except FileNotFoundError:
            raise FileNotFoundError(f"ip-ranges file not found: {path}") from None
        return _decode(gzip.decompress(raw) if raw[:2] == b"\x1f\x8b" else raw, source)
    if spark is None:
        raise ValueError(f"reading {source} needs a SparkSession")
    from pyspark.errors import AnalysisException

    try:
        # wholetext: one row holding the whole (small) object; collecting it is bounded by its size.
        rows = spark.read.text(normalise_uri(source), wholetext=True).collect()
    except AnalysisException as exc:
        raise FileNotFoundError(f"ip-ranges object not found: {source} ({exc})") from None
    if len(rows) != 1:
        raise IpRangesError(f"{source}: expected one ip-ranges.json object, found {len(rows)}")
    return str(rows[0][0]).lstrip("\ufeff")


def _decode(raw: bytes, source: str) -> str:
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise IpRangesError(f"{source} is not UTF-8 text ({exc}); expected AWS's ip-ranges.json") from None


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
        parsed = parse_ip_ranges(read_source(spark, source), source)
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


# ---------------------------------------------------------------- transformations


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
    # min() of a struct orders field by field: longest prefix, specific service before AMAZON,
    # then service, region, border group: a total, deterministic order.
    best = F.min(
        F.when(
            matched,
            F.struct(
                (-length).alias("neg_length"),
                (service == AMAZON).alias("is_amazon"),
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


# ---------------------------------------------------------------- jobs


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

    def text(self) -> str:
        days = (
            f"{self.date_from or 'start'} .. {self.date_to or 'end'}" if self.date_from or self.date_to else "all dates"
        )
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
    flows = tables.read(spark, lake, tables.FLOWS)
    if date_from is not None:
        flows = flows.where(F.col("event_date") >= F.lit(date_from))
    if date_to is not None:
        flows = flows.where(F.col("event_date") <= F.lit(date_to))

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
    flows = tables.read(spark, lake, tables.FLOWS)
    if date_from is not None:
        flows = flows.where(F.col("event_date") >= F.lit(date_from))
    if date_to is not None:
        flows = flows.where(F.col("event_date") <= F.lit(date_to))
    return classified_flows(flows, tables.read(spark, lake, IP_CLASSES), pkt=pkt)


# ---------------------------------------------------------------- CLI


def _cmd_ip_ranges(args: argparse.Namespace, cfg: Config) -> int:
    from flowspark.cli import spark_for

    parsed = None
    if args.source.startswith(("http://", "https://")) or is_local(args.source):
        parsed = parse_ip_ranges(read_source(None, args.source), args.source)  # fail before Spark starts
    spark = spark_for(cfg)
    print(load_ip_ranges(spark, args.source, args.lake, parsed).text())
    return 0


def _cmd_classify(args: argparse.Namespace, cfg: Config) -> int:
    from flowspark.cli import spark_for

    spark = spark_for(cfg)
    print(run_classify(spark, args.lake, args.date_from, args.date_to).text())
    return 0


def register_cli(sub: Any) -> None:
    """Subcommands ip-ranges and classify (called by flowspark.cli)."""
    from flowspark.cli import add_common

    p = sub.add_parser(
        "ip-ranges",
        help="AWS ip-ranges.json (URL, file or S3) -> <lake>/aws_ip_ranges (Delta), history by syncToken",
        description=(
            "Load AWS's published IP ranges (ip-ranges.json) into <lake>/aws_ip_ranges: one row per "
            "prefix and service with its numeric first/last address, region, network border group and "
            "the file's syncToken. Every version loaded is kept. The same syncToken again changes "
            "nothing; a file older than the newest loaded, or malformed, is refused (exit 2)."
        ),
    )
    p.add_argument(
        "--source",
        default=DEFAULT_SOURCE,
        help=f"URL, local file or s3://bucket/key of ip-ranges.json (default: {DEFAULT_SOURCE})",
    )
    add_common(p, dates=False)
    p.set_defaults(handler=_cmd_ip_ranges)

    p = sub.add_parser(
        "classify",
        help="distinct addresses of <lake>/flows -> <lake>/ip_classes (address class, AWS service/region)",
        description=(
            "Classify every distinct address of <lake>/flows (srcaddr, dstaddr, pkt_srcaddr, pkt_dstaddr) "
            "as private/shared/public/... and against the newest AWS ip ranges (longest prefix, service, "
            "region, every match), into <lake>/ip_classes. Without --from/--to the table is rebuilt from "
            "all flows; with them the addresses of those days are merged in (new ones inserted, known "
            "ones re-classified), so reruns are idempotent."
        ),
    )
    add_common(p)
    p.set_defaults(handler=_cmd_classify)
