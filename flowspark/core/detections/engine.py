"""Run every detection over classified flows: the daily ACTIVITY rows of a range of days."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from flowspark.core import addresses as A
from flowspark.core.detections import access, anomaly, beacon, lists, outbound, scans
from flowspark.core.detections.base import ACTIVITY_COLUMNS, AllowEntry, Thresholds, in_cidr, suppress
from flowspark.core.reports import NtpFilter, hunt_flows

Rule = Callable[[DataFrame, Thresholds], DataFrame]
# the behavioural rules, in the order the report lists them; the list rules need the intel table
RULES: dict[str, Rule] = {
    "port_probe": scans.port_probe,
    "vertical_scan": scans.vertical_scan,
    "horizontal_sweep": scans.horizontal_sweep,
    "brute_force": access.brute_force,
    "outbound_dos": outbound.outbound_dos,
    "spam_bot": outbound.spam_bot,
    "unusual_port": anomaly.unusual_port,
    "traffic_volume": anomaly.traffic_volume,
    "beaconing": beacon.beaconing,
}


def history_start(date_from: dt.date | None, t: Thresholds) -> dt.date | None:
    """The first day the rules read for [date_from, ...]: baseline_days before it (None: every day)."""
    return date_from - dt.timedelta(days=t.baseline_days) if date_from else None


OWN = "own_public"  # the address class of a public address in local_prefixes: ours, not the Internet's


def detection_flows(
    cf: DataFrame,
    ntp: NtpFilter = NtpFilter(),  # noqa: B008 (frozen dataclass)
    local_prefixes: tuple[str, ...] = (),
) -> DataFrame:
    """Classified flows -> the rows every rule reads: hunt_flows' oriented north/south rows (AWS peers
    kept: peer_aws_service says which), NTP sync removed, with `day` (the flow's event_date).

    local_prefixes (CIDRs) are your own public ranges: a VPC's IPv6 addresses are global unicast, and
    without them a flow between your IPv6 host and the Internet has two public ends and no rule sees it."""
    if local_prefixes:
        for side in ("src", "dst"):
            cf = cf.withColumn("_parsed", A.parse_ip(f"{side}addr"))  # once per side: a large expression
            mine = F.lit(False)
            for cidr in local_prefixes:
                mine = mine | in_cidr(F.col("_parsed"), cidr)
            c = f"{side}_address_class"
            cf = cf.withColumn(c, F.when(mine, F.lit(OWN)).otherwise(F.col(c))).drop("_parsed")
    hf = hunt_flows(cf, ntp, exclude_aws=False)
    day = F.col("event_date") if "event_date" in hf.columns else F.to_date("start")
    return hf.withColumn("day", day.cast("date"))


def detect(
    rows: DataFrame,
    t: Thresholds = Thresholds(),  # noqa: B008 (frozen dataclass)
    listed: DataFrame | None = None,
    allow: tuple[AllowEntry, ...] = (),
    date_from: dt.date | None = None,
    date_to: dt.date | None = None,
    exclude_aws: bool = True,
    only: tuple[str, ...] = (),
) -> DataFrame:
    """ACTIVITY rows of every detection (or those named in `only`) over detection_flows rows, for the days
    in [date_from, date_to] (the rows may hold earlier days: history). The behavioural rules leave out
    peers in AWS's prefixes when exclude_aws (cloud traffic needs other analytics); the list rules see
    every peer; they need `listed` (lists.listed_peers of the same rows, persisted). Allowlisted rows are
    kept with `suppressed` set."""
    behaviour = rows.where(F.col("peer_aws_service").isNull()) if exclude_aws else rows
    parts = [rule(behaviour, t) for name, rule in RULES.items() if not only or name in only]
    if listed is not None and (not only or set(only) & {"malicious_ip", "tor", "mining_pool", "blackhole"}):
        found = lists.listed_contacts(rows, listed, t)
        parts.append(found.where(F.col("detection").isin(*only)) if only else found)
    # the range filter on each rule's rows before the union: one filter over the union of nine aggregations
    # sent Spark 4's optimizer into minutes of constraint inference (2026-12-03)
    days = F.lit(True)
    if date_from is not None:
        days = days & (F.col("day") >= F.lit(date_from))
    if date_to is not None:
        days = days & (F.col("day") <= F.lit(date_to))
    out = parts[0].where(days)
    for p in parts[1:]:
        out = out.unionByName(p.where(days))
    return suppress(out, allow).select(*ACTIVITY_COLUMNS)
