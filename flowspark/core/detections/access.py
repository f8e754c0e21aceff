"""Access: brute_force on the remote-login ports (SSH, RDP, WinRM)."""

from __future__ import annotations

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from flowspark.core.detections.base import HIGH, MEDIUM, Thresholds, activity, counts, num


def brute_force(df: DataFrame, t: Thresholds) -> DataFrame:
    """Connections an Internet peer opened to one of brute_ports of one local host: at least
    brute_min_attempts accepted connections (distinct client ports) in a day, their median size (bytes both
    ways) at most brute_max_bytes. HIGH when one connection of them moved brute_success_bytes or more (a
    login that may have worked), MEDIUM otherwise."""
    rows = df.where((F.col("direction") == "inbound") & F.col("port").isin(*t.brute_ports))
    key = ["day", "peer", "local", "protocol", "port"]
    per_conn = (
        rows.where(F.col("action") == "ACCEPT")
        .groupBy(*key, "client_port")
        .agg(F.sum("bytes").alias("_conn_bytes"))
        .groupBy(*key)
        .agg(
            F.count(F.lit(1)).alias("attempts"),
            F.percentile_approx("_conn_bytes", 0.5, 10000).alias("median_bytes"),
            F.max("_conn_bytes").alias("largest"),
        )
    )
    g = rows.groupBy(*key).agg(*counts()).join(per_conn, key)
    g = g.where((F.col("attempts") >= t.brute_min_attempts) & (F.col("median_bytes") <= t.brute_max_bytes))
    severity = F.when(F.col("largest") >= t.brute_success_bytes, F.lit(HIGH)).otherwise(F.lit(MEDIUM))
    evidence = F.format_string(
        "%s made %s accepted connections to port %d of %s, %s bytes each (median); the largest moved %s bytes%s",
        F.col("peer"),
        num(F.col("attempts")),
        F.col("port"),
        F.col("local"),
        num(F.col("median_bytes")),
        num(F.col("largest")),
        F.when(F.col("largest") >= t.brute_success_bytes, F.lit(" (a login that may have worked)")).otherwise(
            F.lit("")
        ),
    )
    return activity(
        g,
        "brute_force",
        severity,
        evidence,
        direction="inbound",
        local=F.col("local"),
        peer=F.col("peer"),
        protocol=F.col("protocol"),
        port=F.col("port"),
    )
