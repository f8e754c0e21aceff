"""Scanning: port_probe, vertical_scan, horizontal_sweep.

All three read the probes: rows of connections the Internet peer opened (hunt_flows' direction inbound: the
peer is the client) whose source is the peer (the packets it sent us), with the port it probed (dstport) and
the local address (dstaddr). A probe is a row of at most ``scan_max_packets`` packets a record. The replies
to our own connections are never probes: a public resolver answering our DNS queries sends one datagram to
each of many of our ephemeral ports (seen as a 143-port "vertical scan" a day in make demo's data before
this rule; 2026-12-03).
"""

from __future__ import annotations

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from flowspark.core.detections.base import HIGH, LOW, MEDIUM, Thresholds, activity, counts, num, proto_name


def probes(df: DataFrame, t: Thresholds) -> DataFrame:
    """The rows an Internet peer sent us, on connections it opened, of at most scan_max_packets packets a
    record."""
    return df.where(
        (F.col("direction") == "inbound")
        & (F.col("srcaddr") == F.col("peer")) & (F.col("packets") <= F.col("records") * F.lit(t.scan_max_packets))
    )


def port_probe(df: DataFrame, t: Thresholds) -> DataFrame:
    """One (local, protocol, port) probed by at least probe_min_peers distinct Internet peers in a day.
    Severity: HIGH when a probe was ACCEPTed on one of exposed_ports (the port answers the Internet and
    should not), MEDIUM when ACCEPTed on another port, LOW when every probe was rejected."""
    p = probes(df, t)
    accepted = F.col("action") == "ACCEPT"
    g = p.groupBy("day", "local", "protocol", "dstport").agg(
        F.count_distinct("peer").alias("peers"),
        F.count(F.when(accepted, 1)).alias("accepted"),
        F.count_distinct(F.when(accepted, F.col("peer"))).alias("accepted_peers"),
        *counts(),
    )
    g = g.where(F.col("peers") >= t.probe_min_peers)
    exposed = F.col("dstport").isin(*t.exposed_ports) if t.exposed_ports else F.lit(False)
    severity = (
        F.when((F.col("accepted") > 0) & exposed, F.lit(HIGH))
        .when(F.col("accepted") > 0, F.lit(MEDIUM))
        .otherwise(F.lit(LOW))
    )
    evidence = F.format_string(
        "port %d/%s of %s probed by %s Internet peers (%s records, %.1f packets each); %s peer(s) accepted%s",
        F.col("dstport"),
        proto_name(),
        F.col("local"),
        num(F.col("peers")),
        num(F.col("records")),
        F.col("packets") / F.greatest(F.col("records"), F.lit(1)),
        num(F.col("accepted_peers")),
        F.when((F.col("accepted") > 0) & exposed, F.lit(": the port answers the Internet and should not")).otherwise(
            F.lit("")
        ),
    )
    return activity(
        g,
        "port_probe",
        severity,
        evidence,
        direction="inbound",
        local=F.col("local"),
        peer=None,
        protocol=F.col("protocol"),
        port=F.col("dstport"),
    )


def vertical_scan(df: DataFrame, t: Thresholds) -> DataFrame:
    """One Internet peer probing at least vscan_min_ports distinct ports of one local host in a day.
    MEDIUM when any probe was ACCEPTed (it found something open), LOW otherwise."""
    p = probes(df, t)
    accepted = F.col("action") == "ACCEPT"
    g = p.groupBy("day", "peer", "local", "protocol").agg(
        F.count_distinct("dstport").alias("ports"),
        F.count_distinct(F.when(accepted, F.col("dstport"))).alias("open_ports"),
        F.min("dstport").alias("lowest"),
        F.max("dstport").alias("highest"),
        *counts(),
    )
    g = g.where(F.col("ports") >= t.vscan_min_ports)
    severity = F.when(F.col("open_ports") > 0, F.lit(MEDIUM)).otherwise(F.lit(LOW))
    evidence = F.format_string(
        "%s probed %s ports (%d-%d/%s) of %s; %s accepted",
        F.col("peer"),
        num(F.col("ports")),
        F.col("lowest"),
        F.col("highest"),
        proto_name(),
        F.col("local"),
        num(F.col("open_ports")),
    )
    return activity(
        g,
        "vertical_scan",
        severity,
        evidence,
        direction="inbound",
        local=F.col("local"),
        peer=F.col("peer"),
        protocol=F.col("protocol"),
        port=None,
    )


def horizontal_sweep(df: DataFrame, t: Thresholds) -> DataFrame:
    """One Internet peer probing one port on at least sweep_min_targets of our addresses in a day, the
    sizes of its records alike (coefficient of variation at most sweep_max_size_cv). MEDIUM when one
    accepted, LOW otherwise."""
    p = probes(df, t)
    per_record = F.col("bytes") / F.col("records")
    g = p.groupBy("day", "peer", "protocol", "dstport").agg(
        F.count_distinct("local").alias("targets"),
        F.count(F.when(F.col("action") == "ACCEPT", 1)).alias("accepted"),
        F.coalesce(F.stddev_pop(per_record) / F.avg(per_record), F.lit(0.0)).alias("size_cv"),
        *counts(),
    )
    g = g.where((F.col("targets") >= t.sweep_min_targets) & (F.col("size_cv") <= t.sweep_max_size_cv))
    severity = F.when(F.col("accepted") > 0, F.lit(MEDIUM)).otherwise(F.lit(LOW))
    evidence = F.format_string(
        "%s probed port %d/%s on %s of our addresses, %.1f packets/record, sizes vary %.0f%%; %s accepted",
        F.col("peer"),
        F.col("dstport"),
        proto_name(),
        num(F.col("targets")),
        F.col("packets") / F.greatest(F.col("records"), F.lit(1)),
        F.col("size_cv") * 100,
        num(F.col("accepted")),
    )
    return activity(
        g,
        "horizontal_sweep",
        severity,
        evidence,
        direction="inbound",
        local=None,
        peer=F.col("peer"),
        protocol=F.col("protocol"),
        port=F.col("dstport"),
    )
