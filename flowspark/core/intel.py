"""Threat-intelligence lists (IP addresses and CIDRs) and the flows that touch them.

A list is read in the format it is published in, detected from its lines:

- ``netset``: one address or CIDR per line, ``#`` comments and blank lines (FireHOL's netsets, Tor's exit
  address list, most blocklists);
- ``drop``: Spamhaus DROP/EDROP, ``CIDR ; SBL123456`` per line, ``;`` comments (the SBL id is the label);
- ``csv``: a header naming an ``ip`` or ``cidr`` column (or ``network``, ``address``); every other column is
  kept as the label (``name=value; ...``).

A line that is none of these is kept aside with its number and why (one bad line never stops a load). A
bare address is its /32 (/128). Entries are matched against flows' addresses with the same bucketed range
join classify uses (flowspark.core.ipranges); an address inside several entries of one list takes the most
specific (longest prefix).
"""

from __future__ import annotations

import csv
import hashlib
import io
import ipaddress
from dataclasses import dataclass, field

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from flowspark.core import addresses as A
from flowspark.core.ipranges import V4_BUCKET_BITS, V6_BUCKET_BITS

FORMATS = ("netset", "drop", "csv")
# The widest entries accepted: each spans 2^(bucket bits - length) join buckets (256 for an IPv4 /8, 4096 for
# an IPv6 /20); a wider one is rejected with its line (no published blocklist lists a wider public block).
MIN_PREFIX_LENGTH = {4: 8, 6: 20}
ADDRESS_HEADERS = ("cidr", "ip", "network", "address", "ip_address", "ipaddress", "prefix")

INTEL_SCHEMA = (
    "list_name string, version long, loaded_at timestamp, source string, sha256 string, line long, "
    "ip_version int, cidr string, first_hi long, first_lo long, last_hi long, last_lo long, label string"
)


@dataclass
class ParsedList:
    fmt: str
    sha256: str
    entries: list[tuple[int, str, str | None]] = field(default_factory=list)  # (line, cidr, label)
    rejected: list[tuple[int, str, str]] = field(default_factory=list)  # (line, text, reason)
    duplicates: int = 0


def detect_format(lines: list[str]) -> str:
    """netset, drop or csv, from the first line that is not blank or a comment."""
    for raw in lines:
        text = raw.strip()
        if not text or text.startswith(("#", ";")):
            continue
        if "," in text and any(h in [c.strip().lower() for c in text.split(",")] for h in ADDRESS_HEADERS):
            return "csv"
        if ";" in text:
            return "drop"
        return "netset"
    return "netset"


def _network(text: str) -> tuple[str | None, str]:
    """(CIDR text, '') for an address or a network (host bits cleared), else (None, why)."""
    try:
        net = ipaddress.ip_network(text.strip(), strict=False)
    except ValueError:
        return None, f"not an IP address or CIDR: {text.strip()[:60]!r}"
    if net.prefixlen < MIN_PREFIX_LENGTH[net.version]:
        return None, f"wider than /{MIN_PREFIX_LENGTH[net.version]} (IPv{net.version}): {net}"
    return str(net), ""


def parse_list(text: str, fmt: str | None = None) -> ParsedList:
    """The entries of a published list (see the module's formats; fmt None: detected). Each entry keeps its
    line number; the same CIDR and label listed twice is kept once (counted in duplicates)."""
    lines = text.lstrip("\ufeff").splitlines()
    fmt = fmt or detect_format(lines)
    if fmt not in FORMATS:
        raise ValueError(f"unknown list format {fmt!r}; choose one of {', '.join(FORMATS)}")
    out = ParsedList(fmt=fmt, sha256=hashlib.sha256(text.encode("utf-8")).hexdigest())
    seen: set[tuple[str, str | None]] = set()

    def add(number: int, raw: str, address: str, label: str | None) -> None:
        cidr, why = _network(address)
        if cidr is None:
            out.rejected.append((number, raw, why))
        elif (cidr, label) in seen:
            out.duplicates += 1
        else:
            seen.add((cidr, label))
            out.entries.append((number, cidr, label))

    if fmt == "csv":
        rows = list(csv.reader(io.StringIO("\n".join(lines))))
        header_at = next((i for i, r in enumerate(rows) if r and not r[0].lstrip().startswith("#")), None)
        if header_at is None:
            return out
        header = [c.strip().lower() for c in rows[header_at]]
        where = next((header.index(h) for h in ADDRESS_HEADERS if h in header), None)
        if where is None:
            raise ValueError(f"a CSV list needs a column named one of {', '.join(ADDRESS_HEADERS)}; got {header}")
        for number, row in enumerate(rows[header_at + 1 :], start=header_at + 2):
            if not row or not "".join(row).strip() or row[0].lstrip().startswith("#"):
                continue
            if len(row) != len(header):
                out.rejected.append((number, ",".join(row), f"{len(row)} columns, the header has {len(header)}"))
                continue
            label = "; ".join(f"{h}={v.strip()}" for h, v in zip(header, row) if h != header[where] and v.strip())
            add(number, ",".join(row), row[where], label or None)
        return out
    for number, raw in enumerate(lines, start=1):
        comment = "#" if fmt == "netset" else ";"
        text = raw.split("#", 1)[0] if fmt == "netset" else raw
        if not text.strip() or text.strip().startswith(comment):
            continue
        if fmt == "drop":
            address, _, rest = text.partition(";")
            add(number, raw, address, rest.strip() or None)
        else:
            tokens = text.split()
            # Tor's exit list: "ExitAddress 1.2.3.4 2024-..."; a netset: the address alone
            address = tokens[1] if tokens[0] == "ExitAddress" and len(tokens) > 1 else tokens[0]
            if tokens[0] in ("ExitNode", "Published", "LastStatus"):
                continue
            add(number, raw, address, None)
    return out


def entry_rows(parsed: ParsedList) -> list[tuple[int, int, str, int, int, int, int, str | None]]:
    """(line, ip_version, cidr, first_hi, first_lo, last_hi, last_lo, label) per entry, for the table."""
    rows = []
    for line, cidr, label in parsed.entries:
        version, _, fh, fl, lh, ll, _, _ = A.network_bounds(cidr)
        rows.append((line, version, cidr, fh, fl, lh, ll, label))
    return rows


def list_matches(addresses: DataFrame, intel: DataFrame) -> DataFrame:
    """Distinct address texts (column ``ip``) against the entries of intel (rows of INTEL_SCHEMA, one version
    per list): one row per (public ip, list) it is in, the most specific entry: ip, list_name, version,
    loaded_at, cidr, label. Private, shared and other non-public addresses never match (lists include
    bogon ranges such as 10.0.0.0/8 that are your own networks)."""
    # only public addresses: lists carry bogons (FireHOL's level1 has 10.0.0.0/8), which are your own
    parsed = addresses.select("ip", A.parse_ip("ip").alias("_a")).where(A.class_of("_a") == A.PUBLIC)
    a = F.col("_a")
    v, fh, fl, lh, ll = (F.col(c) for c in ("ip_version", "first_hi", "first_lo", "last_hi", "last_lo"))
    right = intel.select(
        v.alias("_v"),
        F.explode(
            F.sequence(
                A.bucket(v, fh, fl, V4_BUCKET_BITS, V6_BUCKET_BITS), A.bucket(v, lh, ll, V4_BUCKET_BITS, V6_BUCKET_BITS)
            )
        ).alias("_bucket"),
        fh.alias("_fh"),
        fl.alias("_fl"),
        lh.alias("_lh"),
        ll.alias("_ll"),
        "list_name",
        "version",
        "loaded_at",
        "cidr",
        "label",
        F.split("cidr", "/").getItem(1).cast("int").alias("_len"),
    )
    left = parsed.withColumn(
        "_b", A.bucket(a.getField("ip_version"), a.getField("hi"), a.getField("lo"), V4_BUCKET_BITS, V6_BUCKET_BITS)
    )
    cond = (
        (a.getField("ip_version") == F.col("_v"))
        & (F.col("_b") == F.col("_bucket"))
        & A.u128_between(a.getField("hi"), a.getField("lo"), F.col("_fh"), F.col("_fl"), F.col("_lh"), F.col("_ll"))
    )
    hits = left.join(F.broadcast(right), cond, "inner")
    best = F.max(F.struct(F.col("_len"), F.col("cidr"), F.col("label"), F.col("version"), F.col("loaded_at")))
    return (
        hits.groupBy("ip", "list_name")
        .agg(best.alias("_m"))
        .select(
            "ip",
            "list_name",
            F.col("_m.version").alias("version"),
            F.col("_m.loaded_at").alias("loaded_at"),
            F.col("_m.cidr").alias("cidr"),
            F.col("_m.label").alias("label"),
        )
    )


def intel_contacts(flows: DataFrame, intel: DataFrame) -> DataFrame:
    """Flows between a local address and an address on a list: one row per (list, local address, listed
    address): list_name, version, loaded_at, listed, cidr, label, local, flows, accepted_flows,
    rejected_flows, bytes_to_listed, bytes_from_listed, first_seen, last_seen. A flow whose both ends are
    listed counts once for each."""
    addrs = flows.select(F.explode(F.array("srcaddr", "dstaddr")).alias("ip")).where(F.col("ip").isNotNull()).distinct()
    hits = list_matches(addrs, intel)
    sides = []
    for listed, local, toward in (("dstaddr", "srcaddr", True), ("srcaddr", "dstaddr", False)):
        h = hits.select(*[F.col(c).alias(f"_h_{c}") for c in hits.columns])
        joined = flows.join(F.broadcast(h), F.col(listed) == F.col("_h_ip"), "inner")
        sides.append(
            joined.select(
                F.col("_h_list_name").alias("list_name"),
                F.col("_h_version").alias("version"),
                F.col("_h_loaded_at").alias("loaded_at"),
                F.col(listed).alias("listed"),
                F.col("_h_cidr").alias("cidr"),
                F.col("_h_label").alias("label"),
                F.col(local).alias("local"),
                "action",
                F.when(F.lit(toward), F.col("bytes")).otherwise(F.lit(0)).cast("long").alias("_to"),
                F.when(F.lit(toward), F.lit(0)).otherwise(F.col("bytes")).cast("long").alias("_from"),
                "start",
                "end",
            )
        )
    both = sides[0].unionByName(sides[1])
    key = ["list_name", "version", "loaded_at", "listed", "cidr", "label", "local"]
    return both.groupBy(*key).agg(
        F.count(F.lit(1)).alias("flows"),
        F.count(F.when(F.col("action") == "ACCEPT", 1)).alias("accepted_flows"),
        F.count(F.when(F.col("action") == "REJECT", 1)).alias("rejected_flows"),
        F.sum("_to").cast("long").alias("bytes_to_listed"),
        F.sum("_from").cast("long").alias("bytes_from_listed"),
        F.min("start").alias("first_seen"),
        F.max("end").alias("last_seen"),
    )


def latest_versions(intel: DataFrame) -> DataFrame:
    """The rows of each list's newest version."""
    newest = intel.groupBy("list_name").agg(F.max("version").alias("_newest"))
    return intel.join(F.broadcast(newest), "list_name").where(F.col("version") == F.col("_newest")).drop("_newest")
