"""The tag jobs: single-file mode (files -> CSV report, no Spark) and lake mode (flow_records/flows ->
port_protocol_counts, tag_counts and the CSV report). The rules are in :mod:`flowspark.core.tags`."""

from __future__ import annotations

import datetime as dt
import os
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import TextIO

from pyspark.sql import DataFrame, Observation, SparkSession

from flowspark.core.dates import in_dates
from flowspark.core.schema import DEFAULT_FORMAT, EVENT_DATE
from flowspark.core.tags import (
    LOOKUP_SCHEMA,
    MEASURES,
    UNTAGGED,
    FileScan,
    FileTagResult,
    Lookup,
    Problem,
    check_lookup,
    decode_lookup,
    input_counts,
    parse_lookup,
    port_protocol_counts,
    port_protocol_totals,
    scan_batches,
    sorted_port_rows,
    sorted_tag_rows,
    tag_counts,
    tag_records,
    tag_totals,
    tag_totals_from,
    taggable,
    write_report,
)
from flowspark.edges import sources, tables
from flowspark.edges.config import default_conf_dir


def default_lookup_path() -> Traversable:
    """conf/lookup_default.csv of the configuration defaults (inside the package unless FLOWSPARK_CONF_DIR)."""
    return default_conf_dir() / "lookup_default.csv"


def read_lookup(path: str | os.PathLike[str] | None = None, strict: bool = False, limit: int = 20) -> Lookup:
    """Read and check a lookup file (default: conf/lookup_default.csv); LookupFileError if unusable."""
    p: Traversable = Path(path) if path is not None else default_lookup_path()
    if not p.is_file():
        raise FileNotFoundError(f"lookup file not found: {p}")
    text, note = decode_lookup(p.read_bytes())
    lookup = parse_lookup(text, source=str(p))
    if note:
        lookup.problems.insert(0, Problem(0, "note", note))
    return check_lookup(lookup, strict, limit)


def scan_file(
    path: str, scan: FileScan, default_format: Sequence[str] = DEFAULT_FORMAT, max_issues: int = 1000
) -> None:
    """Read one text flow log (plain or .gz) into `scan`; lines end at "\\n" only, as in ingest."""
    if os.path.isdir(path):
        raise FileNotFoundError(f"{path} is a folder: give log files (or ingest the folder and use --lake)")
    if path.endswith(".parquet"):
        raise ValueError(f"{path}: single-file mode reads text logs; ingest Parquet deliveries and use --lake")
    scan.files.append(path)
    scan_batches(os.path.basename(path), sources.local_rows(path, default_format), scan, max_issues)


def scan_files(
    paths: Sequence[str], default_format: Sequence[str] = DEFAULT_FORMAT, max_issues: int = 1000
) -> FileScan:
    """Scan flow log files (each with its own header, or `default_format`) into one FileScan."""
    t0 = time.time()
    scan = FileScan()
    for path in paths:
        if not os.path.exists(path):
            raise FileNotFoundError(f"flow log not found: {path}")
        scan_file(path, scan, default_format, max_issues)
    scan.seconds = time.time() - t0
    return scan


def tag_files(
    paths: Sequence[str],
    lookup: Lookup,
    measure: str = "records",
    default_format: Sequence[str] | None = None,
    max_issues: int = 1000,
) -> FileTagResult:
    """Single-file mode: scan the files, tag, count. `measure` is records or bytes."""
    if measure not in ("records", "bytes"):
        raise ValueError(f"single-file mode counts records or bytes, not {measure!r} (flows need --lake)")
    scan = scan_files(paths, default_format or DEFAULT_FORMAT, max_issues)
    counts = scan.counts if measure == "records" else scan.bytes
    return FileTagResult(
        scan, lookup, measure, sorted_tag_rows(tag_totals_from(counts, lookup)), sorted_port_rows(counts)
    )


def write_output(output: str, write: Callable[[TextIO], None]) -> None:
    """Write the report to a file (atomically: temp file, then rename) or to stdout for '-'."""
    if output == "-":
        write(sys.stdout)
        sys.stdout.flush()
        return
    target = Path(output)
    if target.parent and not target.parent.exists():
        raise FileNotFoundError(f"output folder does not exist: {target.parent}")
    tmp = target.with_name(f".{target.name}.tmp")
    with open(tmp, "w", encoding="utf-8", newline="") as fh:
        write(fh)
    os.replace(tmp, target)


def lookup_frame(spark: SparkSession, lookup: Lookup) -> DataFrame:
    """The parsed lookup as a small DataFrame (dstport int, protocol int, tag string), unique keys."""
    return spark.createDataFrame([(p, proto, tag) for (p, proto), tag in lookup.tags.items()], LOOKUP_SCHEMA)


@dataclass
class LakeTagSummary:
    lake: str
    lookup: str
    lookup_info: str
    measure: str
    date_from: dt.date | None
    date_to: dt.date | None
    flows_table: bool = False
    records: int = 0  # flow_records rows in the date range
    nodata: int = 0
    skipped: int = 0
    matched: int = 0  # records with a tag
    untagged: int = 0  # records without
    tags: int = 0  # distinct tags seen
    counted: dict[str, int] = field(default_factory=dict)  # tag -> the measure (records, bytes or flows)
    output: str | None = None
    seconds: float = 0.0
    lookup_problems: list[Problem] = field(default_factory=list)
    nothing_to_do: str = ""  # why the job had nothing to do (an empty selection)

    @property
    def tagged(self) -> int:
        return self.records - self.nodata - self.skipped

    def reconciled(self) -> bool:
        return self.tagged == self.matched + self.untagged

    def text(self, limit: int = 20) -> str:
        rng = f"{self.date_from or 'start'} .. {self.date_to or 'end'}"
        if self.nothing_to_do:
            report = f"; empty report -> {self.output}" if self.output else ""
            return f"tag {self.lake} {rng}: nothing to do: {self.nothing_to_do}; tables left as they were{report}"
        rate = self.records / self.seconds if self.seconds else 0.0
        problems = [f"    {p.kind}: {p.text()}" for p in self.lookup_problems[:limit]]
        if len(self.lookup_problems) > limit:
            problems.append(f"    ... and {len(self.lookup_problems) - limit:,} more")
        return "\n".join(
            [
                f"tag {self.lake}",
                f"  lookup       {self.lookup}: {self.lookup_info}",
                *problems,
                f"  dates        {rng}",
                f"  records      {self.records:,} in flow_records: {self.tagged:,} tagged, "
                f"{self.nodata:,} NODATA/SKIPDATA, {self.skipped:,} skipped (no dstport/protocol)",
                f"  tagged       {self.matched:,} matched ({self.tags:,} tags), {self.untagged:,} untagged",
                f"  report       {self.measure}: {sum(self.counted.values()):,} in total, "
                f"{self.counted.get(UNTAGGED, 0):,} untagged"
                + (" (rows of the flows table)" if self.measure == "flows" else ""),
                f"  tables       {tables.PORT_PROTOCOL_COUNTS}, {tables.TAG_COUNTS} (dates replaced)"
                + (", flows counted" if self.flows_table else ""),
                f"  output       {self.output or '(none)'}",
                f"  check        tagged {self.tagged:,} = matched {self.matched:,} + untagged "
                f"{self.untagged:,}: " + ("OK" if self.reconciled() else "MISMATCH"),
                f"  seconds      {self.seconds:.1f} ({rate:,.0f} records/s)",
            ]
        )


def run_tag_lake(
    spark: SparkSession,
    lake: str,
    lookup: Lookup | str | os.PathLike[str] | None = None,
    date_from: dt.date | None = None,
    date_to: dt.date | None = None,
    count: str = "records",
    output: str | None = None,
    strict: bool = False,
) -> LakeTagSummary:
    """Job: tag flow_records (and flows, if that table exists) -> port_protocol_counts, tag_counts; CSV.

    Replaces [date_from, date_to] (every date when both are None) in both tables, so a rerun leaves
    them as after one run. `count` picks the CSV's measure: records, bytes (both from flow_records)
    or flows (rows of the `flows` table, which must exist). `output` None: no CSV. `lookup` is a
    parsed Lookup or a lookup file (None: conf/lookup_default.csv).
    """
    t0 = time.time()
    if count not in MEASURES:
        raise ValueError(f"--count must be one of {', '.join(MEASURES)}, got {count!r}")
    if not isinstance(lookup, Lookup):
        lookup = read_lookup(lookup, strict=strict)
    summary = LakeTagSummary(lake, lookup.source, lookup.describe(), count, date_from, date_to, output=output)
    summary.lookup_problems = lookup.problems
    records = in_dates(tables.read(spark, lake, tables.FLOW_RECORDS), date_from, date_to)
    flows = tables.read(spark, lake, tables.FLOWS) if tables.exists(spark, lake, tables.FLOWS) else None
    # A flows table compacted on a key without dstport/protocol cannot be tagged.
    summary.flows_table = flows is not None and {"dstport", "protocol", EVENT_DATE} <= set(flows.columns)
    if count == "flows" and not summary.flows_table:
        raise FileNotFoundError(
            f"--count flows needs the '{tables.FLOWS}' table in {lake}, with dstport and protocol in its key: "
            "run the dedup job first, or count records"
        )
    if taggable(records).isEmpty():
        # Nothing to tag. (Observation.get would wait forever: Spark prunes an empty input, and the
        # observing node with it.) A small count says why; the tables are left as they were.
        found = records.agg(*input_counts(records)).first()
        summary.records, summary.nodata, summary.skipped = (
            int(found[k]) if found else 0 for k in ("records", "nodata", "skipped")
        )
        rng = f"{date_from or 'start'} .. {date_to or 'end'}"
        none = f"no records in {tables.FLOW_RECORDS} dated {rng}" if date_from or date_to else "flow_records is empty"
        summary.nothing_to_do = (
            none
            if not summary.records
            else f"no taggable records dated {rng} ({summary.records:,} records: {summary.nodata:,} NODATA/SKIPDATA, "
            f"{summary.skipped:,} without dstport/protocol)"
        )
        if output is not None:
            write_output(output, lambda fh: write_report(fh, [], [], count))
        summary.seconds = time.time() - t0
        return summary
    lookup_df = lookup_frame(spark, lookup)
    obs = Observation("tag")
    observed = records.observe(obs, *input_counts(records))
    tagged = taggable(observed).transform(tag_records(lookup_df))
    tagged_flows = None
    if summary.flows_table and flows is not None:
        tagged_flows = taggable(in_dates(flows, date_from, date_to)).transform(tag_records(lookup_df))
    counts = port_protocol_counts(tagged, tagged_flows)
    tables.replace_dates(
        counts, lake, tables.PORT_PROTOCOL_COUNTS, EVENT_DATE, date_from, date_to, partition_by=[EVENT_DATE]
    )
    m = obs.get
    summary.records, summary.nodata, summary.skipped = int(m["records"]), int(m["nodata"]), int(m["skipped"])

    written = in_dates(tables.read(spark, lake, tables.PORT_PROTOCOL_COUNTS), date_from, date_to)
    tables.replace_dates(
        tag_counts(written), lake, tables.TAG_COUNTS, EVENT_DATE, date_from, date_to, partition_by=[EVENT_DATE]
    )

    # One row per tag (bounded by the lookup), streamed in report order.
    totals = [
        (r["tag"], int(r["count"] or 0), int(r["records"] or 0)) for r in tag_totals(written, count).toLocalIterator()
    ]
    tag_rows = [(tag, n) for tag, n, _ in totals]
    summary.counted = dict(tag_rows)
    summary.untagged = sum(recs for tag, _, recs in totals if tag == UNTAGGED)
    summary.matched = sum(recs for tag, _, recs in totals if tag != UNTAGGED)
    summary.tags = sum(1 for tag, _, recs in totals if tag != UNTAGGED and recs)
    if output is not None:
        ports = port_protocol_totals(written, count)

        def write(fh: TextIO) -> None:
            port_rows = ((int(r["dstport"]), r["protocol_name"], int(r["count"] or 0)) for r in ports.toLocalIterator())
            write_report(fh, tag_rows, port_rows, count)

        write_output(output, write)
    summary.seconds = time.time() - t0
    return summary
