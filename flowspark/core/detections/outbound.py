"""Outbound abuse from our hosts: outbound_dos, spam_bot."""

from __future__ import annotations

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from flowspark.core.detections.base import HIGH, MEDIUM, Thresholds, activity, counts, num, proto_name


def _sent(df: DataFrame) -> DataFrame:
    """The rows our host sent (source = local)."""
    return df.where(F.col("srcaddr") == F.col("local"))


def outbound_dos(df: DataFrame, t: Thresholds) -> DataFrame:
    """One local source sending one target (address, protocol, port) at least dos_min_pps packets a
    second, measured over an hour's rows spanning dos_min_seconds or more, of at most dos_max_packet_bytes
    bytes a packet. The kind is DNS (udp/53), UDP, TCP or an unusual protocol. Always HIGH."""
    key = ["day", "local", "peer", "protocol", "dstport"]
    hourly = (
        _sent(df)
        .groupBy(*key, F.date_trunc("hour", "start").alias("hour"))
        .agg(
            F.sum("packets").alias("_p"),
            F.sum("bytes").alias("_b"),
            (F.max(F.unix_seconds("end")) - F.min(F.unix_seconds("start"))).alias("_span"),
        )
        .withColumn("_pps", F.col("_p") / F.greatest(F.col("_span"), F.lit(1)))
    )
    flood = hourly.where(
        (F.col("_span") >= t.dos_min_seconds)
        & (F.col("_pps") >= t.dos_min_pps)
        & (F.col("_b") <= F.col("_p") * F.lit(t.dos_max_packet_bytes))
    )
    peak = flood.groupBy(*key).agg(F.max("_pps").alias("peak_pps"), F.count(F.lit(1)).alias("hours"))
    rows = (
        _sent(df)
        .withColumn("hour", F.date_trunc("hour", "start"))
        .join(flood.select(*key, "hour"), [*key, "hour"], "left_semi")
    )
    g = rows.groupBy(*key).agg(*counts()).join(peak, key)
    kind = (
        F.when((F.col("protocol") == 17) & (F.col("dstport") == 53), F.lit("DNS"))
        .when(F.col("protocol") == 17, F.lit("UDP"))
        .when(F.col("protocol") == 6, F.lit("TCP"))
        .otherwise(F.concat(F.lit("unusual protocol "), F.col("protocol").cast("string")))
    )
    evidence = F.format_string(
        "%s flood: %s sent %s packets (%s bytes, %.0f bytes/packet) to %s port %d/%s, peak %s packets/s, in %d hour(s)",
        kind,
        F.col("local"),
        num(F.col("packets")),
        num(F.col("bytes")),
        F.col("bytes") / F.greatest(F.col("packets"), F.lit(1)),
        F.col("peer"),
        F.coalesce(F.col("dstport"), F.lit(0)),
        proto_name(),
        num(F.col("peak_pps")),
        F.col("hours"),
    )
    return activity(
        g,
        "outbound_dos",
        F.lit(HIGH),
        evidence,
        direction="outbound",
        local=F.col("local"),
        peer=F.col("peer"),
        protocol=F.col("protocol"),
        port=F.col("dstport"),
    )


def spam_bot(df: DataFrame, t: Thresholds) -> DataFrame:
    """One local host sending TCP to spam_ports of at least spam_min_peers distinct Internet peers in a
    day. HIGH when that many were accepted (the mail left), MEDIUM when the security group or NACL
    stopped some."""
    rows = _sent(df).where((F.col("protocol") == 6) & F.col("dstport").isin(*t.spam_ports))
    g = rows.groupBy("day", "local").agg(
        F.count_distinct("peer").alias("peers"),
        F.count_distinct(F.when(F.col("action") == "ACCEPT", F.col("peer"))).alias("accepted_peers"),
        F.min("dstport").alias("port"),
        *counts(),
    )
    g = g.where(F.col("peers") >= t.spam_min_peers)
    severity = F.when(F.col("accepted_peers") >= t.spam_min_peers, F.lit(HIGH)).otherwise(F.lit(MEDIUM))
    evidence = F.format_string(
        "%s sent SMTP to %s Internet mail servers (%s accepted), %s records, %s bytes",
        F.col("local"),
        num(F.col("peers")),
        num(F.col("accepted_peers")),
        num(F.col("records")),
        num(F.col("bytes")),
    )
    return activity(
        g,
        "spam_bot",
        severity,
        evidence,
        direction="outbound",
        local=F.col("local"),
        peer=None,
        protocol=F.lit(6),
        port=None,
    )
