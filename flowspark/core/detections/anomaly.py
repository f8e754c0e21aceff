"""Against a host's own history: unusual_port, traffic_volume.

The rules read the days asked for and baseline_days before them (the engine passes both; activity is
kept for the days asked for only). Only connections our host opened to the Internet count.
"""

from __future__ import annotations

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from flowspark.core.detections.base import MEDIUM, Thresholds, activity, counts, num, proto_name


def _opened(df: DataFrame) -> DataFrame:
    return df.where(F.col("direction") == "outbound")


def unusual_port(df: DataFrame, t: Thresholds) -> DataFrame:
    """A (protocol, server port) our host opened Internet connections to, accepted, on a day when it
    carried at least unusual_min_bytes, that the host never used on an earlier day of the rows read, on
    a host seen at least unusual_min_history_days before that day. MEDIUM."""
    rows = _opened(df).where(F.col("action") == "ACCEPT")
    host_first = rows.groupBy("local").agg(F.min("day").alias("_host_first"))
    pair_first = rows.groupBy("local", "protocol", "port").agg(F.min("day").alias("_pair_first"))
    key = ["day", "local", "protocol", "port"]
    g = (
        rows.groupBy(*key)
        .agg(F.count_distinct("peer").alias("peers"), F.min("peer").alias("a_peer"), *counts())
        .join(pair_first, ["local", "protocol", "port"])
        .join(host_first, "local")
    )
    g = g.where(
        (F.col("day") == F.col("_pair_first"))
        & (F.datediff(F.col("day"), F.col("_host_first")) >= t.unusual_min_history_days)
        & (F.col("bytes") >= t.unusual_min_bytes)
    )
    evidence = F.format_string(
        "%s used port %d/%s for the first time in %d days of history: %s bytes with %s peer(s) (e.g. %s)",
        F.col("local"),
        F.col("port"),
        proto_name(),
        F.datediff(F.col("day"), F.col("_host_first")),
        num(F.col("bytes")),
        num(F.col("peers")),
        F.col("a_peer"),
    )
    return activity(
        g,
        "unusual_port",
        F.lit(MEDIUM),
        evidence,
        direction="outbound",
        local=F.col("local"),
        peer=None,
        protocol=F.col("protocol"),
        port=F.col("port"),
    )


def traffic_volume(df: DataFrame, t: Thresholds) -> DataFrame:
    """An hour in which our host sent one Internet peer (protocol, port) at least volume_min_bytes and
    volume_factor times the host's baseline: the median of its active hours' upload to the Internet (all
    peers) over the rows read; with fewer than volume_min_baseline_hours active hours, the median hour of
    every host. MEDIUM."""
    rows = _opened(df).withColumn("hour", F.date_trunc("hour", "start"))
    host_hours = rows.groupBy("local", "hour").agg(F.sum("bytes_out").alias("_hb"))
    overall = host_hours.agg(F.percentile_approx("_hb", 0.5, 10000).alias("_all"))
    base = (
        host_hours.groupBy("local")
        .agg(F.count(F.lit(1)).alias("_n"), F.percentile_approx("_hb", 0.5, 10000).alias("_own"))
        .crossJoin(F.broadcast(overall))
        .select(
            "local",
            F.when(F.col("_n") >= t.volume_min_baseline_hours, F.col("_own"))
            .otherwise(F.col("_all"))
            .alias("baseline"),
        )
    )
    key = ["day", "local", "peer", "protocol", "port"]
    hourly = rows.groupBy(*key, "hour").agg(F.sum("bytes_out").alias("_sent")).join(base, "local")
    spikes = hourly.where(
        (F.col("_sent") >= t.volume_min_bytes)
        & (F.col("_sent") >= F.lit(t.volume_factor) * F.greatest(F.col("baseline"), F.lit(1)))
    )
    peak = spikes.groupBy(*key).agg(
        F.max(F.struct("_sent", "hour")).alias("_p"),
        F.first("baseline").alias("baseline"),
        F.sum("_sent").alias("sent"),
    )
    g = rows.join(spikes.select(*key, "hour"), [*key, "hour"], "left_semi").groupBy(*key).agg(*counts()).join(peak, key)
    evidence = F.format_string(
        "%s sent %s bytes to %s port %d/%s in the hour of %s UTC, %s times its baseline of %s bytes/hour",
        F.col("local"),
        num(F.col("_p._sent")),
        F.col("peer"),
        F.col("port"),
        proto_name(),
        F.date_format("_p.hour", "yyyy-MM-dd HH:mm"),
        num(F.col("_p._sent") / F.greatest(F.col("baseline"), F.lit(1))),
        num(F.col("baseline")),
    )
    return activity(
        g,
        "traffic_volume",
        F.lit(MEDIUM),
        evidence,
        direction="outbound",
        local=F.col("local"),
        peer=F.col("peer"),
        protocol=F.col("protocol"),
        port=F.col("port"),
    )
