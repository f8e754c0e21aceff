"""Daily activity -> findings: one per episode of a subject, with a stable id.

A subject is (detection, local, peer, protocol, port). Its daily rows are one finding while each starts
within `gap_hours` of the latest end before it; a longer quiet gap ends the finding and the next activity
opens a new one. The id is a hash of the subject and the episode's first day: a rerun over the same days
gives the same ids, later days extend the same finding.
"""

from __future__ import annotations

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

from flowspark.core.detections.base import SEVERITY_RANK, SUBJECT, TECHNIQUES, lookup

FINDING_COLUMNS = (
    "finding_id",
    "detection",
    "technique",
    "technique_name",
    "severity",
    "title",
    "direction",
    "local",
    "peer",
    "protocol",
    "port",
    "interface_id",
    "first_seen",
    "last_seen",
    "days",
    "flows",
    "packets",
    "bytes",
    "evidence",
    "suppressed",
)


def finding_id(subject_start: Column) -> Column:
    """32 hex digits of SHA-256 over the subject and its episode's first day."""
    parts = [F.coalesce(F.col(c).cast("string"), F.lit("")) for c in SUBJECT]
    return F.substring(F.sha2(F.concat_ws("|", *parts, F.date_format(subject_start, "yyyy-MM-dd")), 256), 1, 32)


def findings(activity: DataFrame, gap_hours: int = 24) -> DataFrame:
    """ACTIVITY rows (every day stored) -> one row per finding (FINDING_COLUMNS): severity the highest of
    its days, evidence the latest day's, counts summed, `days` how many days it was active."""
    subject = list(SUBJECT)
    w = Window.partitionBy(*subject).orderBy("first_seen", "day")
    prev_end = F.max(F.unix_seconds("last_seen")).over(w.rowsBetween(Window.unboundedPreceding, -1))
    new = F.when(prev_end.isNull() | (F.unix_seconds("first_seen") > prev_end + F.lit(gap_hours * 3600)), 1).otherwise(
        0
    )
    marked = activity.withColumn("_new", new)
    numbered = marked.withColumn("_episode", F.sum("_new").over(w.rowsBetween(Window.unboundedPreceding, 0)))
    rank = lookup({k: str(v) for k, v in SEVERITY_RANK.items()}, F.col("severity")).cast("int")
    ep = numbered.groupBy(*subject, "_episode").agg(
        F.min("first_seen").alias("first_seen"),
        F.max("last_seen").alias("last_seen"),
        F.count_distinct("day").alias("days"),
        F.sum("flows").cast("long").alias("flows"),
        F.sum("packets").cast("long").alias("packets"),
        F.sum("bytes").cast("long").alias("bytes"),
        F.max(F.struct(rank.alias("r"), F.col("severity").alias("s"))).getField("s").alias("severity"),
        F.max(F.struct(F.col("day"), F.col("evidence"), F.col("direction"), F.col("interface_id"))).alias("_last"),
        F.first("technique").alias("technique"),
        F.max("suppressed").alias("suppressed"),
    )
    names = {k: v[1] for k, v in TECHNIQUES.items()}
    titles = {k: v[2] for k, v in TECHNIQUES.items()}
    return ep.select(
        finding_id(F.col("first_seen")).alias("finding_id"),
        "detection",
        "technique",
        lookup(names, F.col("detection")).alias("technique_name"),
        "severity",
        lookup(titles, F.col("detection")).alias("title"),
        F.col("_last.direction").alias("direction"),
        "local",
        "peer",
        "protocol",
        "port",
        F.col("_last.interface_id").alias("interface_id"),
        "first_seen",
        "last_seen",
        "days",
        "flows",
        "packets",
        "bytes",
        F.col("_last.evidence").alias("evidence"),
        "suppressed",
    )


def evidence_flows(found: DataFrame, rows: DataFrame, per_finding: int = 20) -> DataFrame:
    """The flows that made each finding (detection_flows rows between its first and last seen whose local
    and peer match the finding's where it names them), at most per_finding per finding, the largest first:
    finding_id, interface_id, srcaddr, srcport, dstaddr, dstport, protocol, action, start, end, packets,
    bytes."""
    f = found.select(
        "finding_id",
        F.col("local").alias("_l"),
        F.col("peer").alias("_p"),
        F.col("protocol").alias("_proto"),
        F.col("port").alias("_port"),
        F.col("first_seen").alias("_f"),
        F.col("last_seen").alias("_t"),
    )
    cond = (
        (F.col("_l").isNull() | (F.col("_l") == F.col("local")))
        & (F.col("_p").isNull() | (F.col("_p") == F.col("peer")))
        & (F.col("_proto").isNull() | (F.col("_proto") == F.col("protocol")))
        & (F.col("_port").isNull() | (F.col("_port") == F.col("srcport")) | (F.col("_port") == F.col("dstport")))
        & (F.col("start") >= F.col("_f"))
        & (F.col("end") <= F.col("_t"))
    )
    cols = [
        "interface_id",
        "srcaddr",
        "srcport",
        "dstaddr",
        "dstport",
        "protocol",
        "action",
        "start",
        "end",
        "packets",
        "bytes",
    ]
    joined = rows.join(F.broadcast(f), cond).select("finding_id", *cols)
    w = Window.partitionBy("finding_id").orderBy(F.col("bytes").desc(), "start", "srcaddr", "dstaddr")
    return joined.withColumn("_n", F.row_number().over(w)).where(F.col("_n") <= per_finding).drop("_n")
