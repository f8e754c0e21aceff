"""Addresses on the loaded intel lists (flowspark intel load): malicious_ip, tor, mining_pool, blackhole.

A list's category comes from its name (Thresholds.tor_lists, mining_lists, blackhole_lists); every other
list is a threat list. Matched with flowspark.core.intel.list_matches (public addresses only, the most
specific entry of each list)."""

from __future__ import annotations

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from flowspark.core.detections.base import HIGH, LOW, MEDIUM, Thresholds, activity, counts, num
from flowspark.core.intel import list_matches


def category(t: Thresholds) -> Column:
    """The detection of a list_name."""
    c: Column = F.lit("malicious_ip")
    for names, detection in ((t.blackhole_lists, "blackhole"), (t.mining_lists, "mining_pool"), (t.tor_lists, "tor")):
        if names:
            c = F.when(F.col("list_name").isin(*names), F.lit(detection)).otherwise(c)
    return c


def listed_peers(df: DataFrame, intel: DataFrame) -> DataFrame:
    """The peers of df on the intel lists: list_matches rows (ip, list_name, version, loaded_at, cidr,
    label). Persist it before listed_contacts reads it: its plan holds the address parser several times
    over, and joined back into the flows' plan it sent Spark's optimizer out of memory (2026-12-03)."""
    return list_matches(df.select(F.col("peer").alias("ip")).distinct(), intel)


def listed_contacts(df: DataFrame, matches: DataFrame, t: Thresholds) -> DataFrame:
    """Per day, local, listed peer and detection: the flows between them. Severity HIGH when a connection
    our host opened was accepted, MEDIUM when only the peer's were, LOW when every flow was rejected."""
    hits = (
        matches.withColumn("_detection", category(t))
        .withColumn(
            "_entry",
            F.format_string(
                "%s v%d loaded %s: %s%s",
                F.col("list_name"),
                F.col("version"),
                F.date_format("loaded_at", "yyyy-MM-dd"),
                F.col("cidr"),
                F.when(F.col("label").isNotNull(), F.concat(F.lit(" "), F.col("label"))).otherwise(F.lit("")),
            ),
        )
        .groupBy("ip", "_detection")
        .agg(F.concat_ws("; ", F.sort_array(F.collect_set("_entry"))).alias("_lists"))
    )
    joined = df.join(F.broadcast(hits), F.col("peer") == F.col("ip"))
    accepted = F.col("action") == "ACCEPT"
    key = ["day", "_detection", "local", "peer"]
    g = joined.groupBy(*key, "_lists").agg(
        *counts(),
        F.count(F.when(accepted & (F.col("direction") == "outbound"), 1)).alias("_out_ok"),
        F.count(F.when(accepted, 1)).alias("_ok"),
        F.sum(F.when(F.col("dstaddr") == F.col("peer"), F.col("bytes")).otherwise(0)).alias("_to"),
        F.sum(F.when(F.col("srcaddr") == F.col("peer"), F.col("bytes")).otherwise(0)).alias("_from"),
    )
    severity = F.when(F.col("_out_ok") > 0, F.lit(HIGH)).when(F.col("_ok") > 0, F.lit(MEDIUM)).otherwise(F.lit(LOW))
    evidence = F.format_string(
        "%s and listed %s (%s): %s flows, %s accepted, %s bytes to it, %s bytes from it",
        F.col("local"),
        F.col("peer"),
        F.col("_lists"),
        num(F.col("flows")),
        num(F.col("_ok")),
        num(F.col("_to")),
        num(F.col("_from")),
    )
    return activity(
        g,
        F.col("_detection"),
        severity,
        evidence,
        direction=F.when(F.col("_out_ok") > 0, F.lit("outbound")).otherwise(F.lit("inbound")),
        local=F.col("local"),
        peer=F.col("peer"),
        protocol=None,
        port=None,
    )
