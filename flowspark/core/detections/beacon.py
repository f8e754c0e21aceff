"""beaconing: small calls at a regular interval from few of our hosts to one Internet peer.

interval_measures is also what the hunt report's beacon columns are (flowspark.core.reports imports it),
so this module imports nothing of flowspark but base.
"""

from __future__ import annotations

from collections.abc import Sequence

from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

from flowspark.core.detections.base import HIGH, Thresholds, activity, counts, num


def interval_measures(req: DataFrame, key: Sequence[str]) -> DataFrame:
    """Per key, the intervals between consecutive starts of req's rows: intervals (how many), median_gap
    (seconds), mad (median absolute deviation from it) and dispersion = mad / median_gap (null for a
    median of 0). Keys with one row have none."""
    key = list(key)
    w = Window.partitionBy(*key).orderBy("start")
    gaps = req.select(*key, (F.unix_seconds("start") - F.lag(F.unix_seconds("start")).over(w)).alias("gap")).where(
        F.col("gap").isNotNull()
    )
    med = gaps.groupBy(*key).agg(
        F.count(F.lit(1)).alias("intervals"), F.percentile_approx("gap", 0.5, 10000).alias("median_gap")
    )
    return (
        gaps.join(med, key)
        .groupBy(*key, "intervals", "median_gap")
        .agg(F.percentile_approx(F.abs(F.col("gap") - F.col("median_gap")), 0.5, 10000).alias("mad"))
        .withColumn("dispersion", F.when(F.col("median_gap") > 0, F.col("mad") / F.col("median_gap")))
    )


def beaconing(df: DataFrame, t: Thresholds) -> DataFrame:
    """Our host's requests to one Internet peer (protocol, server port) in a day: at least
    beacon_min_flows of them (beacon_min_flows - 1 intervals), regular (dispersion at most
    beacon_max_dispersion), small (the key's bytes / flows, both directions, at most
    beacon_max_mean_bytes), and at most beacon_max_hosts of our hosts calling that peer and port that
    regularly that day (a fleet-wide agent is regular too); never to beacon_exclude_ports (DNS, NTP). HIGH."""
    key = ["day", "local", "peer", "protocol", "port"]
    out = df.where(F.col("direction") == "outbound")
    if t.beacon_exclude_ports:
        out = out.where(~F.col("port").isin(*t.beacon_exclude_ports))
    m = interval_measures(out.where(F.col("request")), key)
    regular = m.where((F.col("intervals") >= t.beacon_min_flows - 1) & (F.col("dispersion") <= t.beacon_max_dispersion))
    hosts = regular.groupBy("day", "peer", "protocol", "port").agg(F.count_distinct("local").alias("hosts"))
    g = (
        out.groupBy(*key)
        .agg(*counts())
        .join(regular, key)
        .join(hosts, ["day", "peer", "protocol", "port"])
        .where((F.col("bytes") / F.col("flows") <= t.beacon_max_mean_bytes) & (F.col("hosts") <= t.beacon_max_hosts))
    )
    evidence = F.format_string(
        "%s called %s port %d every %.0f s (%s intervals, dispersion %.2f), %s bytes/flow; %d of our host(s) "
        "call it so",
        F.col("local"),
        F.col("peer"),
        F.col("port"),
        F.col("median_gap").cast("double"),
        num(F.col("intervals")),
        F.col("dispersion"),
        num(F.col("bytes") / F.col("flows")),
        F.col("hosts"),
    )
    return activity(
        g,
        "beaconing",
        F.lit(HIGH),
        evidence,
        direction="outbound",
        local=F.col("local"),
        peer=F.col("peer"),
        protocol=F.col("protocol"),
        port=F.col("port"),
    )
