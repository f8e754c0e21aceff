"""The report jobs: flows + ip_classes of a date range -> <lake>/reports/<report>/<section> (Delta) and,
on request, CSV / XLSX / one offline HTML file.

Reports (rules in :mod:`flowspark.core.reports`):

    north_south  split (every flow by direction and action), over_time (per hour), top_peers (the top N
                 Internet peers of ACCEPTed north/south flows by flows and by bytes, AWS prefixes left out)
    runts        by_action, by_port, by_source_network, top_scanners (single-record flows)
    talkers      top_sources, top_destinations; with a NAT (--nat eni-... or an address):
                 nat_services (cost and gateway-endpoint saving per AWS service/region), nat_sources
    hunt         peers: every peer/port a finding names (its flags: the detections), and the top by bytes
                 and the top N peer/ports by bytes, with the evidence columns

Every section row carries the range it covers (date_from, date_to; null = open) and computed_at; a
rerun of the same range replaces that range's rows only. A column that is blank (or absent) for a known
reason (no --asn-db, no interfaces snapshot, beacon measures on beaconing rows only, ...) is explained in
ReportSummary.column_notes and the writers' meta["column_notes"] (flowspark.core.reports.blank_reasons).
Only aggregated, bounded rows (top N, a few per direction/action/hour) are brought to the driver, for the
files.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from pyspark.sql import DataFrame, SparkSession, Window
from pyspark.sql import functions as F
from pyspark.storagelevel import StorageLevel

from flowspark.core import intel as I
from flowspark.core import network as N
from flowspark.core import reports as R
from flowspark.core.dates import in_dates
from flowspark.core.ipranges import classified_flows
from flowspark.edges import asn, render, tables
from flowspark.edges.config import Config, ReportsConfig
from flowspark.pipelines.common import utc_now
from flowspark.pipelines.intel import stale_lists
from flowspark.pipelines.stats import run_stats

log = logging.getLogger("flowspark")

REPORTS = ("north_south", "runts", "talkers", "hunt", "network")
FORMATS = ("csv", "xlsx", "html")
# Rows of one section written to a file at most (the Delta table has them all); every section but
# hunt's is bounded by --top or by the number of directions/actions/hours already.
MAX_FILE_ROWS = 10_000


def report_names(name: str) -> list[str]:
    """'all' or one report name (hyphens allowed: north-south) -> report names; ValueError if unknown."""
    key = name.replace("-", "_")
    if key == "all":
        return list(REPORTS)
    if key not in REPORTS:
        names = ", ".join(r.replace("_", "-") for r in REPORTS)
        raise ValueError(f"unknown report {name!r}; choose one of {names} or all")
    return [key]


def check_asn_db(path: str) -> None:
    """--asn-db: an existing MaxMind-format file, checked before Spark starts (one-line error otherwise)."""
    asn.check_database(path)


def check_geo_db(path: str) -> None:
    """--geo-db: an existing MaxMind-format country file, checked before Spark starts."""
    asn.check_geo_database(path)


def thresholds(rc: ReportsConfig) -> tuple[R.NtpFilter, R.NatPrice]:
    """The core parameters from [reports]."""
    ntp = R.NtpFilter(rc.ntp_filter, rc.ntp_protocol, rc.ntp_port, rc.ntp_packets, rc.ntp_bytes)
    price = R.NatPrice(
        rc.nat_price_per_gb, rc.nat_price_region, rc.nat_price_read_on, rc.bytes_per_gb, rc.endpoint_services
    )
    return ntp, price


@dataclass
class ReportOptions:
    top_n: int = 20
    ip: Optional[str] = None
    nat: Optional[str] = None  # eni-... or an address
    nat_region: Optional[str] = None
    asn_db: Optional[str] = None  # a MaxMind-format ASN .mmdb: label Internet peers with ASN and org
    geo_db: Optional[str] = None  # a MaxMind-format country .mmdb: label Internet peers with their country


@dataclass
class _Inputs:
    """What the sections read: classified flows, flows, ip_classes, and when the lake has an interfaces
    snapshot the resource of each interface and address (latest snapshot)."""

    cf: Optional[DataFrame]  # None when only the network report runs (it needs no address classes)
    flows: DataFrame
    ip_classes: Optional[DataFrame]
    interfaces: Optional[DataFrame] = None  # interface_id -> resource
    addresses: Optional[DataFrame] = None  # address -> interface_id, resource
    all_records: Optional[int] = None  # every record of the range: the runts' shares (computed once)
    every_column: Optional[DataFrame] = None  # flows of the range with every column (the network report's fields)
    lake_flows: Optional[DataFrame] = None  # every flow of the lake (the network report's previous period)
    tag_keys: Optional[DataFrame] = None  # interface_id -> its flow log's tag keys (the talkers' tags)
    latest: Optional[DataFrame] = None  # the latest interfaces snapshot row per interface
    ledger: Optional[DataFrame] = None  # ingested_files (the network report's data quality)
    intel: Optional[DataFrame] = None  # intel_lists, each list's newest version
    findings: Optional[DataFrame] = None  # the open findings of the range (the hunt's flags); None: not computed
    date_from: Optional[dt.date] = None
    date_to: Optional[dt.date] = None


@dataclass
class ReportSummary:
    lake: str
    reports: list[str]
    date_from: Optional[dt.date] = None
    date_to: Optional[dt.date] = None
    rows: dict[str, int] = field(default_factory=dict)  # "<report>/<section>" -> rows written
    seconds: dict[str, float] = field(default_factory=dict)  # report -> seconds
    files: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    # why a column is blank or absent, per section written: "<report>/<section>" -> [{"columns": [...],
    # "why": "..."}] (flowspark.core.reports.column_notes); only sections with a blank column
    column_notes: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    total_seconds: float = 0.0

    def range_text(self) -> str:
        if not self.date_from and not self.date_to:
            return "all dates"
        return f"from {self.date_from or 'the first day'} to {self.date_to or 'the last day'}"

    def text(self) -> str:
        lines = [f"report {', '.join(self.reports)} ({self.range_text()})", f"  lake           {self.lake}"]
        for name in self.reports:
            parts = [f"{k.split('/', 1)[1]} {v:,}" for k, v in self.rows.items() if k.startswith(name + "/")]
            lines.append(f"  {name:<14} {', '.join(parts)} rows ({self.seconds.get(name, 0.0):.1f} s)")
        lines += [f"  note           {n}" for n in self.notes]
        lines += [f"  file           {f}" for f in self.files]
        lines.append(f"  seconds        {self.total_seconds:.1f}")
        return "\n".join(lines)


# The flow columns the reports read (classified_flows adds the address classes).
FLOW_COLUMNS = (
    "interface_id",
    "srcaddr",
    "dstaddr",
    "srcport",
    "dstport",
    "protocol",
    "action",
    "records",
    "packets",
    "bytes",
    "start",
    "end",
    "pkt_srcaddr",
    "pkt_dstaddr",
    "resource_id",  # v9: a regional NAT gateway's flows (--nat nat-...)
    "event_date",
)


def _labelled(df: DataFrame, inp: _Inputs, key: str, label: str = "resource") -> DataFrame:
    """df with the resource of its address column `key`, when the lake has an interfaces snapshot."""
    return R.with_resource(df, inp.addresses, key, label) if inp.addresses is not None else df


def _sections(
    name: str,
    inp: _Inputs,
    cfg: Config,
    opts: ReportOptions,
    notes: list[str],
    keep: list[DataFrame],
) -> dict[str, DataFrame]:
    rc = cfg.reports
    if name == "network":
        return _network(inp, rc, opts.top_n, notes, opts.geo_db)
    cf, flows, ip_classes = inp.cf, inp.flows, inp.ip_classes
    assert cf is not None and ip_classes is not None, "run_report classifies the flows for this report"
    ntp, price = thresholds(rc)
    n = opts.top_n
    if name == "north_south":
        ns = R.north_south(cf, ntp)
        labels = asn.peer_asn(ns, opts.asn_db) if opts.asn_db else None
        countries = asn.peer_country(ns, opts.geo_db) if opts.geo_db else None
        return {
            "split": R.traffic_split(cf, ntp),
            "over_time": R.traffic_over_time(cf),
            "top_peers": R.top_peers(ns, n, rc.exclude_aws_peers, labels, rc.asn_exclude_orgs, countries),
        }
    if name == "runts":
        if inp.all_records is None:  # one number, for the four sections' shares (each scanned flows for it)
            row = cf.agg(F.sum("records")).first()
            inp.all_records = int(row[0] or 0) if row else 0
        total = inp.all_records
        return {
            "by_action": R.runts_by_action(cf, total),
            "by_port": R.runts_by_port(cf, n, total),
            "by_source_network": R.runts_by_source_network(cf, n, total),
            "top_scanners": R.top_scanners(cf, n, total),
        }
    if name == "talkers":
        # every column: the ECS and tag fields and flow-direction (whose the fields are) are not FLOW_COLUMNS
        wide = inp.every_column if inp.every_column is not None else flows
        out = {
            "top_sources": _labelled(R.top_talkers(wide, "srcaddr", n, inp.tag_keys), inp, "address"),
            "top_destinations": _labelled(R.top_talkers(wide, "dstaddr", n, inp.tag_keys), inp, "address"),
        }
        if opts.geo_db:  # the (bounded) top rows' addresses only
            out = {k: R.with_country(v, asn.peer_country(v, opts.geo_db, "address"), "address") for k, v in out.items()}
        nat = opts.nat or rc.nat
        if nat:
            target = R.nat_target(nat)
            eni = target.get("interface_id")
            # the NAT's flows only, classified with their pkt- addresses too (where the packets really went),
            # against the classes of the NAT's own addresses only (ip_classes has every address of the lake)
            mine = flows.where(R.nat_condition(flows.columns, **target))
            pkt = "pkt_srcaddr" in flows.columns
            cols = ["srcaddr", "dstaddr"] + (["pkt_srcaddr", "pkt_dstaddr"] if pkt else [])
            used = mine.select(F.explode(F.array(*cols)).alias("ip")).where(F.col("ip").isNotNull()).distinct()
            narrow = ip_classes.join(used, "ip", "left_semi")
            sel = R.through(classified_flows(mine, narrow, pkt=pkt), **target)
            # two sections read it, and classifying its pkt- addresses joins ip_classes twice more: once
            sel = sel.persist(StorageLevel.MEMORY_AND_DISK)
            keep.append(sel)
            services = R.nat_services(sel, price, opts.nat_region or rc.nat_region or None)
            what = nat
            if inp.interfaces is not None and inp.addresses is not None and "resource_id" not in target:
                # which resource the NAT is: one row of the snapshot, on the driver for the note
                res = inp.interfaces if eni else inp.addresses
                services = R.with_resource(services.select(F.lit(nat).alias("nat"), "*"), res, "nat", "nat_resource")
                hit = res.where(F.col("interface_id" if eni else "address") == nat).select("resource").first()
                what = f"{nat} ({hit['resource']})" if hit else nat
            out["nat_services"] = services
            out["nat_sources"] = _labelled(R.nat_sources(sel, n), inp, "source")
            notes.append(
                f"NAT cost of {what}: ${price.per_gb}/GB ({price.region} price read {price.read_on}, "
                f"{rc.nat_price_source}), 1 GB = {price.bytes_per_gb:,} bytes"
            )
        else:
            notes.append("no NAT cost: give --nat eni-... (or the NAT's address), or [reports] nat in the config")
        return out
    if name == "hunt":
        # hunt_top reads the summary twice (the top keys, then the rows): compute it once
        if inp.findings is None:
            notes.append(
                "hunt: no flags, the detections have not run on this lake (flowspark findings, or the findings "
                "step of flowspark run, which is a default step)"
            )
        hf = R.hunt_flows(cf, ntp, opts.ip, rc.exclude_aws_peers)
        h = R.hunt(hf, inp.findings, cfg.detections.volume_min_baseline_hours).persist(StorageLevel.MEMORY_AND_DISK)
        keep.append(h)
        peers = h if opts.ip else R.hunt_top(h, n)
        if opts.asn_db:  # the labels of the (bounded) rows kept only
            peers = R.with_asn(peers, asn.peer_asn(peers, opts.asn_db), "peer")
        if opts.geo_db:
            peers = R.with_country(peers, asn.peer_country(peers, opts.geo_db), "peer")
        return {"peers": _labelled(peers, inp, "beacon_local", "beacon_local_resource")}
    raise ValueError(f"unknown report {name!r}")


def _network(
    inp: _Inputs, rc: ReportsConfig, n: int, notes: list[str], geo_db: Optional[str] = None
) -> dict[str, DataFrame]:
    """The network report: sections from the fields flows store (flowspark.core.network)."""
    flows = inp.every_column if inp.every_column is not None else inp.flows
    price = N.CrossAzPrice(rc.cross_az_price_per_gb, rc.cross_az_price_read_on, rc.bytes_per_gb)
    snapshot = inp.latest.select("interface_id", "vpc_id", "subnet_id") if inp.latest is not None else None
    # the same number of days just before the range, read from the lake (none for an open range)
    window = N.previous_period(inp.date_from, inp.date_to)
    previous = in_dates(inp.lake_flows, *window) if window and inp.lake_flows is not None else None
    if window:
        days = (window[1] - window[0]).days + 1
        notes.append(f"previous period: {window[0]} to {window[1]}, the {days} day(s) just before the range")
    else:
        notes.append(
            "previous period: none, the range is open (give --from and --to to compare with the same number of "
            "days just before)"
        )
    out = {
        "period": N.period_comparison(flows, previous, *(window or (None, None))),
        "reject_causes": N.reject_causes(flows),
        "top_rejected": N.top_rejected(flows, n),
        "rejected_over_time": N.rejected_over_time(flows),
        "nacl_drops": _labelled_interface(N.nacl_drops(flows, n), inp),
        "encryption": N.encryption(flows),
        "cleartext": _labelled_interface(N.cleartext(flows, n), inp),
        "tgw_drops": N.tgw_drops(flows),
        "cross_az": _labelled_interface(N.cross_az(flows, price, n), inp),
        "cross_az_pairs": N.cross_az_pairs(flows, price),
        "conversations": N.top_conversations(flows, n),
        "breakdown": N.breakdown(flows, snapshot, n),
        "protocols": N.protocol_mix(flows),
    }
    if inp.intel is not None:
        contacts = I.intel_contacts(flows, inp.intel)
        if geo_db:
            contacts = R.with_country(contacts, asn.peer_country(contacts, geo_db, "listed"), "listed")
        out["intel_contacts"] = contacts if inp.addresses is None else R.with_resource(contacts, inp.addresses, "local")
    if inp.ledger is not None:
        quality = N.data_quality(inp.ledger, rc.late_after_minutes)
        out["data_quality"] = in_dates(quality, inp.date_from, inp.date_to, "day")
        notes.append(
            f"late objects: delivered more than {rc.late_after_minutes:g} minutes after the end of the last UTC day "
            "of their records ([reports] late_after_minutes)"
        )
    notes.append(
        f"cross-AZ cost: ${price.per_gb}/GB that crosses AZs (read {price.read_on}, {rc.cross_az_price_source}), "
        f"1 GB = {price.bytes_per_gb:,} bytes"
    )
    return out


def _labelled_interface(df: DataFrame, inp: _Inputs) -> DataFrame:
    """df with the resource of its interface_id, when the lake has an interfaces snapshot."""
    return R.with_resource(df, inp.interfaces, "interface_id") if inp.interfaces is not None else df


def _stamp(df: DataFrame, date_from: Optional[dt.date], date_to: Optional[dt.date], at: dt.datetime) -> DataFrame:
    return df.select(
        F.lit(date_from).cast("date").alias("date_from"),
        F.lit(date_to).cast("date").alias("date_to"),
        F.lit(at).alias("computed_at"),
        *df.columns,
    )


def read_section(
    spark: SparkSession, lake: str, report: str, section: str, date_from: Optional[dt.date], date_to: Optional[dt.date]
) -> DataFrame:
    """One section of a written report for exactly this range (without the range columns)."""
    df = tables.read(spark, lake, tables.report_table(report, section))
    for col, day in (("date_from", date_from), ("date_to", date_to)):
        df = df.where(F.col(col) == F.lit(day)) if day else df.where(F.col(col).isNull())
    return df.drop("date_from", "date_to")


def _rows(df: DataFrame, limit: int = MAX_FILE_ROWS) -> list[dict[str, Any]]:
    """Bounded rows to the driver (sections are aggregates; the limit is a guard)."""
    return [r.asDict() for r in df.limit(limit).collect()]


# Sort order of each section in files (Delta does not keep row order): "-col" is descending, "!col" puts
# non-empty values first.
_ORDER: dict[str, tuple[str, ...]] = {
    "north_south/split": ("direction", "action"),
    "north_south/over_time": ("time", "direction", "action"),
    "north_south/top_peers": ("rank_by", "rank"),
    "runts/by_action": ("-runts", "action"),
    "runts/by_port": ("-runts", "protocol", "dstport"),
    "runts/by_source_network": ("-runts", "source_network"),
    "runts/top_scanners": ("-runts", "srcaddr"),
    "talkers/top_sources": ("rank",),
    "talkers/top_destinations": ("rank",),
    "talkers/nat_services": ("-bytes", "aws_service", "aws_region"),
    "talkers/nat_sources": ("rank",),
    "hunt/peers": ("!flags", "-bytes", "peer", "port"),
    "network/period": ("position",),
    "network/reject_causes": ("-records", "reject_reason"),
    "network/top_rejected": ("rank",),
    "network/rejected_over_time": ("time", "cause"),
    "network/nacl_drops": ("-rejected_responses", "interface_id", "initiator", "responder", "port"),
    "network/encryption": ("encryption_status",),
    "network/cleartext": ("-bytes", "interface_id", "port"),
    "network/tgw_drops": ("time", "tgw_attachment_id", "cause"),
    "network/cross_az": ("-bytes", "interface_id"),
    "network/cross_az_pairs": ("-bytes", "az_id", "next_hop_az_id"),
    "network/conversations": ("rank",),
    "network/breakdown": ("dimension", "rank"),
    "network/protocols": ("-bytes", "protocol"),
    "network/data_quality": ("day",),
    "network/intel_contacts": ("list_name", "-flows", "listed", "local"),
}


def _order(key: str) -> list[Any]:
    cols: list[Any] = []
    for c in _ORDER.get(key, ()):
        if c.startswith("-"):
            cols.append(F.col(c[1:]).desc())
        elif c.startswith("!"):
            cols.append((F.col(c[1:]) == "").asc())
        else:
            cols.append(F.col(c).asc())
    return cols


def _extras(
    spark: SparkSession,
    lake: str,
    date_from: Optional[dt.date],
    date_to: Optional[dt.date],
    geo_db: Optional[str] = None,
) -> dict[str, list[dict[str, Any]]]:
    """The other tables the HTML report shows, when they exist: tag counts, compaction ratio, rejects
    per day (of ingest), the open findings (with their peer's country, given geo_db). All small."""
    out: dict[str, list[dict[str, Any]]] = {}
    if tables.exists(spark, lake, tables.TAG_COUNTS):
        tc = in_dates(tables.read(spark, lake, tables.TAG_COUNTS), date_from, date_to)
        out["tag_counts"] = _rows(
            tc.groupBy("tag")
            .agg(F.sum("records").cast("long").alias("records"), F.sum("bytes").cast("long").alias("bytes"))
            .orderBy(F.col("records").desc(), "tag"),
            200,
        )
    if tables.exists(spark, lake, tables.DEDUP_STATS):
        ds = tables.read(spark, lake, tables.DEDUP_STATS)
        cols = [
            c
            for c in ("computed_at", "date_from", "date_to", "window", "input_records", "output_rows", "ratio")
            if c in ds.columns
        ]
        out["dedup_stats"] = _rows(ds.orderBy(F.col("computed_at").desc()).select(*cols), 20)
    if tables.exists(spark, lake, tables.FINDINGS):
        from flowspark.core.detections.base import PRIORITY, SCANS, SEVERITY_RANK
        from flowspark.pipelines.findings import in_range, read_findings  # it imports this module

        rank = F.create_map(*[F.lit(x) for kv in SEVERITY_RANK.items() for x in kv])[F.col("severity")]
        found = in_range(read_findings(spark, lake), date_from, date_to).where(F.col("status") == "open")
        first = F.create_map(*[F.lit(x) for i, d in enumerate(PRIORITY) for x in (d, i)])[F.col("detection")]
        order = [rank.desc(), first, F.col("last_seen").desc(), "finding_id"]
        # the scans are the Internet's constant background: counted, three examples each; the rest one by one
        scans = F.col("detection").isin(*SCANS)
        each = found.where(~scans).orderBy(*order).limit(40)
        w = Window.partitionBy("detection").orderBy(*order)
        examples = found.where(scans).withColumn("_n", F.row_number().over(w)).where(F.col("_n") <= 3).drop("_n")
        shown = each.unionByName(examples)
        if geo_db:
            shown = R.with_country(shown, asn.peer_country(shown, geo_db), "peer")
        out["findings"] = _rows(shown.orderBy(*order), 100)
        out["finding_counts"] = _rows(found.groupBy("detection", "severity").count(), 100)
    if tables.exists(spark, lake, tables.FLOW_REJECTS) and tables.exists(spark, lake, tables.INGESTED_FILES):
        rej = tables.read(spark, lake, tables.FLOW_REJECTS)
        led = tables.read(spark, lake, tables.INGESTED_FILES).select("source_file", "ingest_id", "ingested_at")
        per_day = (
            rej.join(led, ["source_file", "ingest_id"], "left")
            .groupBy(F.to_date("ingested_at").alias("day"))
            .agg(F.count(F.lit(1)).alias("rejects"))
            .orderBy("day")
        )
        out["rejects_per_day"] = _rows(per_day, 400)
    return out


def run_report(
    spark: SparkSession,
    cfg: Config,
    lake: str,
    name: str = "all",
    date_from: Optional[dt.date] = None,
    date_to: Optional[dt.date] = None,
    options: Optional[ReportOptions] = None,
    formats: tuple[str, ...] = (),
    out_dir: Optional[str] = None,
    progress: Optional[Callable[[str], None]] = None,
) -> ReportSummary:
    """Compute the report(s) `name` ('all' or one of REPORTS) over flows of [date_from, date_to], replace
    that range in <lake>/reports/<report>/<section>, and write the requested files into out_dir."""
    t0 = time.time()
    names = report_names(name)
    bad = [f for f in formats if f not in FORMATS]
    if bad:
        raise ValueError(f"unknown --format {', '.join(bad)}; choose from {', '.join(FORMATS)}")
    if formats and not out_dir:
        raise ValueError("--format needs --out DIR (the folder the files go to)")
    opts = options or ReportOptions(top_n=cfg.reports.top_n)
    if opts.top_n < 1:
        raise ValueError("--top must be at least 1")
    if opts.asn_db:
        asn.check_database(opts.asn_db)
    if opts.geo_db:
        asn.check_geo_database(opts.geo_db)
    summary = ReportSummary(lake=lake, reports=names, date_from=date_from, date_to=date_to)
    lake_flows = tables.read(spark, lake, tables.FLOWS)
    every_column = in_dates(lake_flows, date_from, date_to)
    flows = every_column.select(*[c for c in FLOW_COLUMNS if c in every_column.columns])
    keep: list[DataFrame] = []
    cf = ip_classes = None
    if any(r != "network" for r in names):  # the network report reads flows' own fields only
        if not tables.exists(spark, lake, tables.IP_CLASSES):
            raise FileNotFoundError(f"no {tables.IP_CLASSES} table in {lake}: run 'flowspark classify' first")
        ip_classes = tables.read(spark, lake, tables.IP_CLASSES)
        # Every other report reads the classified flows (two joins with ip_classes, sort-merge joins once
        # ip_classes outgrows a broadcast): computed once, kept on disk for the run.
        cf = classified_flows(flows, ip_classes).persist(StorageLevel.DISK_ONLY)
        keep.append(cf)
    inp = _Inputs(cf, flows, ip_classes, every_column=every_column, date_from=date_from, date_to=date_to)
    inp.lake_flows = lake_flows
    if tables.exists(spark, lake, tables.INTERFACES):
        latest = R.latest_interfaces(tables.read(spark, lake, tables.INTERFACES)).persist(StorageLevel.MEMORY_AND_DISK)
        keep.append(latest)
        inp.latest = latest
        inp.interfaces, inp.addresses = R.interface_resources(latest), R.address_resources(latest)
    if "talkers" in names and tables.exists(spark, lake, tables.FLOW_LOGS):
        # the tag keys of each interface's flow log (a few rows; both talkers sections read them)
        logs = tables.read(spark, lake, tables.FLOW_LOGS)
        inp.tag_keys = R.interface_tag_keys(every_column, logs, inp.latest).persist(StorageLevel.MEMORY_AND_DISK)
        keep.append(inp.tag_keys)
    if "hunt" in names and tables.exists(spark, lake, tables.FINDINGS):
        from flowspark.pipelines.findings import in_range, read_findings  # it imports this module

        found = in_range(read_findings(spark, lake), date_from, date_to).where(F.col("status") == "open")
        inp.findings = found.select("detection", "peer", "protocol", "port", "evidence")
    if "network" in names and tables.exists(spark, lake, tables.INGESTED_FILES):
        inp.ledger = tables.read(spark, lake, tables.INGESTED_FILES)
    if "network" in names and tables.exists(spark, lake, tables.INTEL_LISTS):
        inp.intel = I.latest_versions(tables.read(spark, lake, tables.INTEL_LISTS))
        for stale in stale_lists(inp.intel, cfg.reports.intel_max_age_days, utc_now()):
            note = f"intel list {stale} is older than [reports] intel_max_age_days: load a fresh copy"
            log.warning(note)
            summary.notes.append(note)
    at = utc_now()
    results: dict[str, dict[str, list[dict[str, Any]]]] = {}
    reasons = R.blank_reasons(
        ntp=thresholds(cfg.reports)[0],
        asn_db=bool(opts.asn_db),
        geo_db=bool(opts.geo_db),
        interfaces=inp.addresses is not None,
        exclude_aws=cfg.reports.exclude_aws_peers,
        ip=opts.ip,
        previous_period=N.previous_period(date_from, date_to) is not None,
    )
    try:
        for report in names:
            t = time.time()
            sections = _sections(report, inp, cfg, opts, summary.notes, keep)
            results[report] = {}
            for section, df in sections.items():
                table = tables.report_table(report, section)
                # computed once: the Delta write and the rows for the files read the same (small) result
                stamped = _stamp(df, date_from, date_to, at).persist(StorageLevel.MEMORY_AND_DISK)
                try:
                    tables.replace_report(stamped, lake, table, date_from, date_to)
                    order = _order(f"{report}/{section}")
                    written = stamped.drop("date_from", "date_to")
                    rows = _rows(written.orderBy(*order) if order else written, MAX_FILE_ROWS + 1)
                finally:
                    stamped.unpersist()
                if len(rows) > MAX_FILE_ROWS:  # more than the files take: Delta's count of what it wrote
                    rows = rows[:MAX_FILE_ROWS]
                    count = int(tables.last_operation_metrics(spark, lake, table).get("numOutputRows", len(rows)))
                else:
                    count = len(rows)
                results[report][section] = rows
                summary.rows[f"{report}/{section}"] = count
                why = R.column_notes(reasons.get(f"{report}/{section}", ()), df.columns, rows)
                if why:
                    summary.column_notes[f"{report}/{section}"] = why
            summary.seconds[report] = time.time() - t
            if progress:
                progress(f"report {report}: {time.time() - t:.1f} s")
    finally:
        for df in keep:
            df.unpersist()
    if formats and out_dir:
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        stem = name.replace("-", "_")
        meta = {
            "lake": lake,
            "range": summary.range_text(),
            "computed_at": at.strftime("%Y-%m-%d %H:%M:%S UTC"),
            "notes": summary.notes,
            # {"<report>/<section>": [{"columns": [...], "why": "..."}]}: why a column is blank or absent
            "column_notes": summary.column_notes,
            "formats": formats,  # the HTML's "N more rows in ..." names only the files written
            "top_n": opts.top_n,
            "nat_price": thresholds(cfg.reports)[1],
            "price_source": cfg.reports.nat_price_source,
        }
        if "csv" in formats:
            summary.files += [str(p) for p in render.write_csv(out, results)]
        if "xlsx" in formats:
            summary.files.append(str(render.write_xlsx(out / f"flowspark_{stem}.xlsx", results)))
        if "html" in formats:
            extras = _extras(spark, lake, date_from, date_to, opts.geo_db)
            # what the lake costs to store, from the Delta logs (no data file is read)
            storage = run_stats(spark, cfg, lake)
            extras["storage"], extras["storage_days"] = storage.report_rows(
                date_from.isoformat() if date_from else None, date_to.isoformat() if date_to else None
            )
            summary.files.append(str(render.write_html(out / f"flowspark_{stem}.html", results, extras, meta)))
    summary.total_seconds = time.time() - t0
    return summary
