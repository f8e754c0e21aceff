"""The findings job: flows of a range of days (and baseline_days of history before it) -> every detection
(flowspark.core.detections) -> <lake>/detection_activity (one row per detection, subject and day; the range's
days replaced, so a rerun never doubles) -> <lake>/findings (recomputed from every stored day: episodes with
stable ids) -> JSON lines or ASFF, and on request Security Hub.

A finding marked benign (flowspark findings --benign ID --reason TEXT, <lake>/finding_marks) stays in the
table with status 'benign' and is left out of the files, Security Hub and the report; an allowlisted one
(suppressed) likewise.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.storagelevel import StorageLevel

from flowspark.core import intel as I
from flowspark.core import reports as R
from flowspark.core.dates import in_dates
from flowspark.core.detections import base as B
from flowspark.core.detections.engine import detect, detection_flows, history_start
from flowspark.core.detections.findings import FINDING_COLUMNS, evidence_flows, findings
from flowspark.core.detections.lists import listed_peers
from flowspark.core.ipranges import classified_flows
from flowspark.edges import asn, securityhub, tables
from flowspark.edges.config import Config
from flowspark.pipelines.common import utc_now
from flowspark.pipelines.report import FLOW_COLUMNS, thresholds

log = logging.getLogger("flowspark")

FORMATS = ("jsonl", "asff")
MARKS_SCHEMA = "finding_id string, status string, reason string, marked_at timestamp"


@dataclass
class FindingsSummary:
    lake: str
    date_from: Optional[dt.date] = None
    date_to: Optional[dt.date] = None
    activity_rows: int = 0
    by_detection: dict[str, dict[str, int]] = field(default_factory=dict)  # detection -> severity -> findings
    suppressed: int = 0
    benign: int = 0
    exported: int = 0
    files: list[str] = field(default_factory=list)
    sent: int = 0
    failed: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def text(self) -> str:
        span = f"{self.date_from or 'the first day'} to {self.date_to or 'the last day'}"
        lines = [f"findings ({span})", f"  lake           {self.lake}", f"  activity rows  {self.activity_rows:,}"]
        total = sum(sum(v.values()) for v in self.by_detection.values())
        per = ", ".join(f"{k} {sum(v.values())}" for k, v in sorted(self.by_detection.items()))
        lines.append(f"  open           {total}" + (f" ({per})" if per else ""))
        for name, sev in sorted(self.by_detection.items()):
            parts = ", ".join(f"{n} {s}" for s, n in sorted(sev.items(), key=lambda kv: -B.SEVERITY_RANK[kv[0]]))
            lines.append(f"  {name:<14} {sum(sev.values())} ({parts})")
        lines.append(f"  hidden         {self.suppressed} allowlisted, {self.benign} marked benign")
        lines += [f"  file           {f}" for f in self.files]
        if self.sent or self.failed:
            lines.append(f"  security hub   {self.sent} imported, {len(self.failed)} failed")
            lines += [f"    {x}" for x in self.failed[:10]]
        lines.append(f"  seconds        {self.seconds:.1f}")
        return "\n".join(lines)


def check_format(fmt: Optional[str], out: Optional[str]) -> None:
    """--format and --out together, before Spark starts."""
    if fmt and fmt not in FORMATS:
        raise ValueError(f"unknown --format {fmt!r}; choose jsonl or asff")
    if bool(fmt) != bool(out):
        raise ValueError("--format and --out go together: --format jsonl|asff --out FILE")


def _marks(spark: SparkSession, lake: str) -> DataFrame:
    if tables.exists(spark, lake, tables.FINDING_MARKS):
        m = tables.read(spark, lake, tables.FINDING_MARKS)
        newest = m.groupBy("finding_id").agg(F.max(F.struct("marked_at", "status", "reason")).alias("_m"))
        return newest.select("finding_id", F.col("_m.status").alias("status"), F.col("_m.reason").alias("mark_reason"))
    return spark.createDataFrame([], "finding_id string, status string, mark_reason string")


def read_findings(spark: SparkSession, lake: str) -> DataFrame:
    """<lake>/findings with each one's status: open, benign (marked) or suppressed (allowlisted)."""
    found = tables.read(spark, lake, tables.FINDINGS)
    return found.join(F.broadcast(_marks(spark, lake)), "finding_id", "left").withColumn(
        "status",
        F.when(F.col("status").isNotNull(), F.col("status"))
        .when(F.col("suppressed").isNotNull(), F.lit("suppressed"))
        .otherwise(F.lit("open")),
    )


def in_range(found: DataFrame, date_from: Optional[dt.date], date_to: Optional[dt.date]) -> DataFrame:
    """Findings active on a day of [date_from, date_to]."""
    if date_from is not None:
        found = found.where(F.to_date("last_seen") >= F.lit(date_from))
    if date_to is not None:
        found = found.where(F.to_date("first_seen") <= F.lit(date_to))
    return found


def run_findings(
    spark: SparkSession,
    cfg: Config,
    lake: str,
    date_from: Optional[dt.date] = None,
    date_to: Optional[dt.date] = None,
    fmt: Optional[str] = None,
    out: Optional[str] = None,
    to_securityhub: bool = False,
    account_id: Optional[str] = None,
    region: Optional[str] = None,
    endpoint_url: Optional[str] = None,
    evidence_per_finding: int = 20,
    progress: Optional[Callable[[str], None]] = None,
    geo_db: Optional[str] = None,
) -> FindingsSummary:
    """Every detection over [date_from, date_to] (and baseline_days before it for history): detection_activity's
    days replaced, findings derived again from every stored day; with fmt and out the open findings of the
    range written (jsonl with evidence flows and, given geo_db, the peer's country; or asff), sent to Security
    Hub with to_securityhub."""
    t0 = time.time()
    check_format(fmt, out)
    asff = fmt == "asff" or to_securityhub
    if asff and not (account_id and region):
        raise ValueError("ASFF and --to-securityhub need --account-id (12 digits) and --region")
    det = cfg.detections
    t = det.thresholds()
    summary = FindingsSummary(lake=lake, date_from=date_from, date_to=date_to)
    if not tables.exists(spark, lake, tables.IP_CLASSES):
        raise FileNotFoundError(f"no {tables.IP_CLASSES} table in {lake}: run 'flowspark classify' first")
    flows = in_dates(tables.read(spark, lake, tables.FLOWS), history_start(date_from, t), date_to)
    flows = flows.select(*[c for c in FLOW_COLUMNS if c in flows.columns])
    cf = classified_flows(flows, tables.read(spark, lake, tables.IP_CLASSES))
    # every rule reads these rows: computed once, on disk for the run
    rows = detection_flows(cf, thresholds(cfg.reports)[0], det.local_prefixes).persist(StorageLevel.DISK_ONLY)
    keep: list[DataFrame] = [rows]
    try:
        listed = None
        if tables.exists(spark, lake, tables.INTEL_LISTS):
            intel = I.latest_versions(tables.read(spark, lake, tables.INTEL_LISTS))
            listed = listed_peers(rows, intel).persist(StorageLevel.MEMORY_AND_DISK)
            keep.append(listed)
        act = detect(rows, t, listed, det.allow_entries(), date_from, date_to, cfg.reports.exclude_aws_peers)
        act = act.persist(StorageLevel.MEMORY_AND_DISK)
        keep.append(act)
        summary.activity_rows = act.count()
        if progress:
            progress(f"findings: detections {time.time() - t0:.1f} s, {summary.activity_rows:,} activity rows")
        tables.retry_on_conflict(
            lambda: tables.replace_dates(act, lake, tables.DETECTION_ACTIVITY, "day", date_from, date_to),
            "write detection_activity",
        )
        every_day = tables.read(spark, lake, tables.DETECTION_ACTIVITY)
        derived = findings(every_day, t.finding_gap_hours).select(*FINDING_COLUMNS)
        if tables.exists(spark, lake, tables.INTERFACES):
            res = R.interface_resources(R.latest_interfaces(tables.read(spark, lake, tables.INTERFACES)))
            derived = R.with_resource(derived, res, "interface_id")
        else:
            derived = derived.withColumn("resource", F.lit(None).cast("string"))
        derived = derived.withColumn("computed_at", F.lit(utc_now()))
        # derived from every stored day: the whole table is replaced (a rerun of the same days gives the same)
        derived = derived.persist(StorageLevel.MEMORY_AND_DISK)
        keep.append(derived)
        derived.count()
        tables.retry_on_conflict(
            lambda: tables.replace_dates(derived, lake, tables.FINDINGS, "first_seen", None, None), "write findings"
        )
        found = in_range(read_findings(spark, lake), date_from, date_to)
        counts = found.groupBy("detection", "severity", "status").count().collect()
        for r in counts:
            if r["status"] == "open":
                summary.by_detection.setdefault(r["detection"], {})[r["severity"]] = int(r["count"])
            elif r["status"] == "suppressed":
                summary.suppressed += int(r["count"])
            else:
                summary.benign += int(r["count"])
        if fmt or to_securityhub:
            chosen = found.where(F.col("status") == "open")
            labelled = chosen
            if geo_db and fmt == "jsonl":
                labelled = R.with_country(chosen, asn.peer_country(chosen, geo_db), "peer")
            items = [r.asDict() for r in labelled.orderBy("first_seen", "finding_id").collect()]
            evidence: dict[str, list[dict[str, Any]]] = {}
            if fmt == "jsonl" and items:
                for r in evidence_flows(chosen, rows, evidence_per_finding).collect():
                    evidence.setdefault(r["finding_id"], []).append(_plain(r.asDict()))
            at = utc_now()
            if fmt and out:
                path = Path(out)
                path.parent.mkdir(parents=True, exist_ok=True)
                with open(path, "w", encoding="utf-8") as fh:
                    for f in items:
                        doc = (
                            securityhub.to_asff(f, account_id or "", region or "", at)
                            if fmt == "asff"
                            else {**_plain(f), "evidence_flows": evidence.get(f["finding_id"], [])}
                        )
                        fh.write(json.dumps(doc, sort_keys=True) + "\n")
                summary.files.append(str(path))
                summary.exported = len(items)
            if to_securityhub:
                docs = [securityhub.to_asff(f, account_id or "", region or "", at) for f in items]
                summary.sent, summary.failed = securityhub.send(docs, region or "", endpoint_url)
    finally:
        for df in keep:
            df.unpersist()
    summary.seconds = time.time() - t0
    return summary


def _plain(d: dict[str, Any]) -> dict[str, Any]:
    """JSON-ready: timestamps as ISO UTC text."""
    return {k: (v.strftime("%Y-%m-%dT%H:%M:%SZ") if isinstance(v, dt.datetime) else v) for k, v in d.items()}


def run_mark(spark: SparkSession, lake: str, finding_id: str, reason: str, status: str = "benign") -> str:
    """Mark a finding benign (or 'open' again): a row in <lake>/finding_marks; the newest mark counts."""
    if not reason.strip():
        raise ValueError("--reason is needed: say why the finding is benign")
    if not tables.exists(spark, lake, tables.FINDINGS):
        raise FileNotFoundError(f"no {tables.FINDINGS} table in {lake}: run 'flowspark findings' first")
    hit = tables.read(spark, lake, tables.FINDINGS).where(F.col("finding_id") == finding_id).select("detection").first()
    if hit is None:
        raise ValueError(
            f"no finding {finding_id} in {lake}: 'flowspark findings --lake {lake} --format jsonl' lists them"
        )
    row = spark.createDataFrame([(finding_id, status, reason.strip(), utc_now())], MARKS_SCHEMA)
    tables.append(row, lake, tables.FINDING_MARKS)
    return f"finding {finding_id} ({hit['detection']}) marked {status}: {reason.strip()}"
