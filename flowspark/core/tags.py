"""Tagging flow records by (dstport, protocol) from a lookup table, and counting tags and ports: the rules.

Pure: lookup parsing, the single-file scan over lines already read, the report format, and the Spark
transforms of lake mode. The jobs that read files and tables are in :mod:`flowspark.pipelines.tag`.

Two ways in, one set of rules:

* single-file mode (``flowspark tag --flow-log FILE ...``), for a person with a log file: pure Python,
  streaming line by line, no JVM. Lines are checked by ingest's line rules
  (:class:`flowspark.core.lines.LineRules`, derived from the same rule table as the Spark parse),
  tagged with a dict lookup, and counted (:func:`scan_lines`).
* lake mode (``flowspark tag --lake URI``): ``flow_records`` (and ``flows`` when it exists) are tagged
  through a broadcast hash join on (dstport, protocol) (:func:`tag_records`) and counted per
  event_date (:func:`port_protocol_counts`).

Both modes parse the lookup with :func:`parse_lookup` (header optional, CSV/TSV/';', BOM, CRLF, blank
lines, ``#`` comments, protocol by IANA keyword in any case or by number via
:mod:`flowspark.core.protocols`), match on the same integer key (port, protocol number), and write the
same CSV report (:func:`write_report`).

Decisions (also in ``flowspark tag --help``):

* The same (port, protocol) on two lookup rows with different tags: **the first row wins**; the
  later row is reported as a conflict with both line numbers (``--strict`` makes it an error). An
  exact repeat (same tag) is reported as a duplicate and ignored. So a record gets at most one tag
  and tag counts always add up to the records counted. A lookup with no valid row is an error.
* Tag names are kept exactly as written (case-preserving): ``sv_P2`` and ``SV_P2`` are two tags (a
  note says so). Protocol names match in any case. ``Untagged`` is reserved for unmatched records.
* Report order: tags by count descending, then tag name (code-point order), ``Untagged`` last;
  port/protocol rows by count descending, then port, then protocol number. Protocols are shown as
  the lowercase IANA keyword (``tcp``), or the number when IANA gives none (``253``).
* Only data records are tagged: log-status ``OK`` or absent. NODATA/SKIPDATA records are counted
  apart; data records with ``-`` for dstport or protocol are skipped and reported.
* Record validation is ingest's rule table (:func:`flowspark.core.lines.rules_for`: field count,
  numbers that fit their type, ranges, action, log-status, the version of the format, undecodable
  bytes), with the same reason texts. A file cut short (truncated gzip) counts its lines before the
  break; the break is one malformed line naming the file and line.
"""

from __future__ import annotations

import codecs
import csv
import io
import re
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TextIO

from pyarrow import array as pa_array
from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from flowspark.core import protocols
from flowspark.core.lines import OBJECT, OBJECT_BLANK, OBJECT_HEADERS, OBJECT_LINES, RECORD, REJECT
from flowspark.core.schema import EVENT_DATE, SOURCE_LINE, is_data_record

UNTAGGED = "Untagged"
MEASURES = ("records", "flows", "bytes")
LOOKUP_SCHEMA = "dstport int, protocol int, tag string"

TAG_SECTION = "Tag Counts:"
PORT_SECTION = "Port/Protocol Combination Counts:"
_MEASURE_HEADER = {"records": "Count", "flows": "Flows", "bytes": "Bytes"}


class LookupFileError(ValueError):
    """A lookup that cannot be used (or, with --strict, has invalid or conflicting rows)."""


# ------------------------------------------------------------------------------------------ lookup


@dataclass(frozen=True)
class Problem:
    """One remark about a lookup row. kind: invalid | conflict | duplicate | note."""

    line: int
    kind: str
    reason: str

    def text(self) -> str:
        return f"line {self.line}: {self.reason}" if self.line else self.reason


@dataclass
class Lookup:
    """A parsed lookup: (port, protocol number) -> tag, first row wins, plus what was wrong with it."""

    source: str
    tags: dict[tuple[int, int], str]
    problems: list[Problem]
    rows: int  # content rows (not header, comment or blank)
    delimiter: str
    header: bool

    def tag_for(self, port: int, protocol: int) -> str:
        return self.tags.get((port, protocol), UNTAGGED)

    def of_kind(self, *kinds: str) -> list[Problem]:
        return [p for p in self.problems if p.kind in kinds]

    def describe(self) -> str:
        n = Counter(p.kind for p in self.problems)
        parts = [f"{self.rows:,} rows", f"{len(self.tags):,} keys"]
        parts += [f"{n[k]:,} {k}" for k in ("invalid", "conflict", "duplicate", "note") if n[k]]
        return ", ".join(parts)


_PORT_HEADERS = {"dstport", "dst_port", "destination_port", "destinationport", "destport", "dport", "port"}
_PROTO_HEADERS = {"protocol", "proto", "ip_protocol", "protocol_name"}
_TAG_HEADERS = {"tag", "tags", "tag_name", "label"}
_NEWLINES = re.compile(r"\r\n|\r|\n")


def _header_key(name: str) -> str:
    return re.sub(r"[\s\-]+", "_", name.strip().lower())


def _is_port(text: str) -> bool:
    return text.isascii() and text.isdigit() and int(text) <= 65535


def _sniff_delimiter(first_row: str) -> str:
    """TSV if the first content row has tabs and fewer than two commas; ';' likewise; else CSV."""
    if "\t" in first_row and first_row.count(",") < 2:
        return "\t"
    if first_row.count(";") >= 2 and first_row.count(",") < 2:
        return ";"
    return ","


def _split_row(line: str, delimiter: str) -> list[str]:
    if '"' in line:
        fields = next(csv.reader([line], delimiter=delimiter), [])
    else:
        fields = line.split(delimiter)
    fields = [f.strip() for f in fields]
    while fields and not fields[-1]:
        fields.pop()  # "25,tcp,sv_P1," and trailing tabs
    return fields


def parse_lookup(text: str, source: str = "<lookup>") -> Lookup:
    """Parse lookup text: rows of ``port, protocol, tag``. Never raises for bad rows: they become Problems.

    Header optional (recognised when the first row's port is not a number and its protocol is not
    a protocol; if its names say which column is which, e.g. ``protocol,dstport,tag``, that order is
    used, otherwise the order is port, protocol, tag). Delimiter: tab, ';' or ',' (from the first
    row). A BOM, CR/CRLF line ends, blank lines, ``#`` comment lines, spaces around fields and
    trailing empty fields are ignored. Line numbers are 1-based physical lines.
    """
    lines = _NEWLINES.split(text.removeprefix("\ufeff"))
    tags: dict[tuple[int, int], str] = {}
    first_line: dict[tuple[int, int], int] = {}
    problems: list[Problem] = []
    spellings: dict[str, tuple[str, int]] = {}
    delimiter: str | None = None
    header = False
    cols = (0, 1, 2)
    width = 3  # fields a row may have: 3, or the header's column count when its names place the columns
    rows = 0
    for lineno, line in enumerate(lines, 1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if delimiter is None:
            delimiter = _sniff_delimiter(stripped)
            fields = _split_row(line, delimiter)
            if fields and not _is_port(fields[0]) and (len(fields) < 2 or protocols.number(fields[1]) is None):
                header = True
                names = [_header_key(f) for f in fields]
                found = [
                    next((i for i, n in enumerate(names) if n in s), None)
                    for s in (_PORT_HEADERS, _PROTO_HEADERS, _TAG_HEADERS)
                ]
                if all(i is not None for i in found) and len(set(found)) == 3:
                    cols = tuple(i for i in found if i is not None)  # type: ignore[assignment]
                    width = len(fields)
                continue
        else:
            fields = _split_row(line, delimiter)
        if not fields:
            continue
        rows += 1
        if "\ufffd" in line:
            problems.append(Problem(lineno, "invalid", "undecodable bytes (save the lookup as UTF-8)"))
            continue
        if len(fields) > width or len(fields) <= max(cols):
            expected = "3 fields (port, protocol, tag)" if width == 3 else f"{width} fields as in the header"
            problems.append(Problem(lineno, "invalid", f"expected {expected}, found {len(fields)}: {line.strip()!r}"))
            continue
        port_text, proto_text, tag = (fields[i] for i in cols)
        if not _is_port(port_text):
            problems.append(Problem(lineno, "invalid", f"port {port_text!r} is not a whole number 0-65535"))
            continue
        proto = protocols.number(proto_text)
        if proto is None:
            problems.append(
                Problem(
                    lineno,
                    "invalid",
                    f"unknown protocol {proto_text!r}: use an IANA keyword (tcp, udp, icmp, ...) or a number 0-255",
                )
            )
            continue
        if not tag:
            problems.append(Problem(lineno, "invalid", "empty tag"))
            continue
        if tag.casefold() == UNTAGGED.casefold():
            problems.append(Problem(lineno, "invalid", f"{tag!r} is reserved for records no row matches"))
            continue
        key = (int(port_text), proto)
        if key in tags:
            where = f"({key[0]}, {protocols.name(proto)})"
            if tags[key] == tag:
                problems.append(
                    Problem(lineno, "duplicate", f"{where} {tag!r} repeats line {first_line[key]}; ignored")
                )
            else:
                problems.append(
                    Problem(
                        lineno,
                        "conflict",
                        f"{where} is already tagged {tags[key]!r} on line {first_line[key]}; "
                        f"{tag!r} ignored (the first row wins)",
                    )
                )
            continue
        tags[key] = tag
        first_line[key] = lineno
        seen = spellings.setdefault(tag.casefold(), (tag, lineno))
        if seen[0] != tag:
            problems.append(
                Problem(
                    lineno,
                    "note",
                    f"tag {tag!r} differs from {seen[0]!r} (line {seen[1]}) only in case: they are counted as two tags",
                )
            )
    return Lookup(source, tags, problems, rows, delimiter or ",", header)


def decode_lookup(data: bytes) -> tuple[str, str | None]:
    """(text, note): UTF-8 (BOM optional), UTF-16 with a BOM, else Windows-1252 with a note."""
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return data.decode("utf-16"), None
    try:
        return data.decode("utf-8-sig"), None
    except UnicodeDecodeError:
        return data.decode("cp1252", errors="replace"), "the lookup is not UTF-8: read as Windows-1252"


def check_lookup(lookup: Lookup, strict: bool = False, limit: int = 20) -> Lookup:
    """The lookup, or LookupFileError: always when it has no valid row (it would tag nothing and report
    every record Untagged), and with ``strict`` when any row is invalid or conflicting."""
    bad = lookup.of_kind("invalid", "conflict")
    if not lookup.tags:  # one line: the cause (with the first bad row, cut short) and what to do
        first = bad[0].text() if bad else "no rows at all"
        first = first if len(first) <= 100 else first[:97] + "..."
        raise LookupFileError(
            f"{lookup.source}: no valid 'port,protocol,tag' row in {lookup.rows:,} row(s) ({first}): "
            "give a CSV of port,protocol,tag rows such as 443,tcp,https, saved as UTF-8"
        )
    if strict and bad:
        shown = "\n  ".join(b.text() for b in bad[:limit])
        more = f"\n  ... and {len(bad) - limit:,} more" if len(bad) > limit else ""
        raise LookupFileError(
            f"{lookup.source}: {len(bad):,} invalid or conflicting row(s) (--strict):\n  {shown}{more}"
        )
    return lookup


# ------------------------------------------------------------------------ single-file mode (Python)


@dataclass(frozen=True)
class Issue:
    file: str
    line: int
    reason: str

    def text(self) -> str:
        return f"{self.file}:{self.line}: {self.reason}"


OBJECT_COUNTS = (OBJECT_LINES, OBJECT_HEADERS, OBJECT_BLANK)


@dataclass
class FileScan:
    """What single-file mode read: line accounting, issues, and the per-(port, protocol) counters."""

    files: list[str] = field(default_factory=list)
    lines: int = 0
    headers: int = 0
    blank: int = 0
    records: int = 0  # valid record lines (tagged + nodata + skipped)
    nodata: int = 0  # NODATA / SKIPDATA: not traffic, not tagged
    skipped: int = 0  # data records without a dstport or protocol ('-')
    malformed: int = 0  # lines ingest would reject (plus the version rule)
    malformed_lines: list[Issue] = field(default_factory=list)  # the first max_issues of them
    broken: list[Issue] = field(default_factory=list)  # files cut short: where, and why (also malformed)
    skipped_lines: list[Issue] = field(default_factory=list)
    counts: Counter[tuple[int, int]] = field(default_factory=Counter)  # (port, protocol) -> records
    bytes: Counter[tuple[int, int]] = field(default_factory=Counter)
    seconds: float = 0.0

    @property
    def tagged(self) -> int:
        return sum(self.counts.values())

    def reconciled(self) -> bool:
        return self.lines == self.headers + self.blank + self.records + self.malformed and self.records == (
            self.tagged + self.nodata + self.skipped
        )


def scan_batches(name: str, batches: Iterable[Any], scan: FileScan, max_issues: int = 1000) -> None:
    """Count one file's parsed batches (core.lines.PARSED: ingest's reader and rules) into `scan`.

    A file that cannot be read to its end counts its lines before the break and one malformed line at the
    break, naming the reason."""
    import pyarrow.compute as pc

    first, first_skipped = len(scan.malformed_lines), len(scan.skipped_lines)
    for batch in batches:
        _scan_batch(name, batch, scan, max_issues, pc)
    # a file's lines, in order (the reader's batches need not be: the usual lines and the odd ones go apart)
    scan.malformed_lines[first:] = sorted(scan.malformed_lines[first:], key=lambda i: i.line)
    scan.skipped_lines[first_skipped:] = sorted(scan.skipped_lines[first_skipped:], key=lambda i: i.line)


def _scan_batch(name: str, batch: Any, scan: FileScan, max_issues: int, pc: Any) -> None:
    kind = batch.column("kind")
    obj = pc.equal(kind, OBJECT).to_numpy(zero_copy_only=False)
    if obj.any():
        for row in batch.filter(pa_array(obj)).select(["reason", SOURCE_LINE, *OBJECT_COUNTS]).to_pylist():
            scan.lines += row[OBJECT_COUNTS[0]]
            scan.headers += row[OBJECT_COUNTS[1]]
            scan.blank += row[OBJECT_COUNTS[2]]
            if row["reason"]:
                at = row[SOURCE_LINE] + 1
                why = f"{row['reason']}: the file ends here; the {at - 1:,} line(s) before it count"
                issue = Issue(name, at, why)
                scan.lines += 1
                scan.malformed += 1
                scan.broken.append(issue)
                if len(scan.malformed_lines) < max_issues:
                    scan.malformed_lines.append(issue)
    rejects = pc.equal(kind, REJECT)
    n_rejects = pc.sum(rejects).as_py() or 0
    if n_rejects:
        scan.malformed += n_rejects
        room = max_issues - len(scan.malformed_lines)
        if room > 0:
            for row in batch.filter(rejects).slice(0, room).select([SOURCE_LINE, "reason"]).to_pylist():
                scan.malformed_lines.append(Issue(name, row[SOURCE_LINE], row["reason"]))
    records = batch.filter(pc.equal(kind, RECORD))
    if not records.num_rows:
        return
    scan.records += records.num_rows
    status = records.column("log_status")
    data = pc.fill_null(pc.equal(pc.fill_null(status, "OK"), "OK"), True)
    scan.nodata += records.num_rows - (pc.sum(data).as_py() or 0)
    traffic = records.filter(data)
    port, proto = traffic.column("dstport"), traffic.column("protocol")
    missing = pc.or_(pc.is_null(port), pc.is_null(proto)).to_numpy(zero_copy_only=False)
    if missing.any():
        scan.skipped += int(missing.sum())
        for row in traffic.filter(pa_array(missing)).select([SOURCE_LINE, "dstport", "protocol"]).to_pylist():
            if len(scan.skipped_lines) < max_issues:
                gone = " and ".join(c for c in ("dstport", "protocol") if row[c] is None)
                scan.skipped_lines.append(Issue(name, row[SOURCE_LINE], f"no {gone} ('-' or not in the format)"))
    tagged = traffic.filter(pa_array(~missing)).select(["dstport", "protocol", "bytes"]).to_pydict()
    for port_, proto_, size in zip(tagged["dstport"], tagged["protocol"], tagged["bytes"]):
        scan.counts[(port_, proto_)] += 1
        scan.bytes[(port_, proto_)] += size or 0


def tag_totals_from(counts: Mapping[tuple[int, int], int], lookup: Lookup) -> Counter[str]:
    """Tag -> total over (port, protocol) counters; unmatched keys count as Untagged."""
    out: Counter[str] = Counter()
    for key, n in counts.items():
        out[lookup.tags.get(key, UNTAGGED)] += n
    return out


def tag_sort_key(row: tuple[str, int]) -> tuple[bool, int, str]:
    """Count descending, then tag name, Untagged last (the same order lake mode sorts in Spark)."""
    return (row[0] == UNTAGGED, -row[1], row[0])


def sorted_tag_rows(totals: Mapping[str, int]) -> list[tuple[str, int]]:
    return sorted(totals.items(), key=tag_sort_key)


def sorted_port_rows(counts: Mapping[tuple[int, int], int]) -> list[tuple[int, str, int]]:
    """(port, protocol name, count): count descending, then port, then protocol number."""
    ordered = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0][0], kv[0][1]))
    return [(port, protocols.name(proto), n) for (port, proto), n in ordered]


def write_report(
    out: TextIO,
    tag_rows: Iterable[tuple[str, int]],
    port_rows: Iterable[tuple[int, str, int]],
    measure: str = "records",
) -> None:
    """The exercise's two-section CSV: tag counts, a blank line, port/protocol counts."""
    w = csv.writer(out, lineterminator="\n")
    header = _MEASURE_HEADER[measure]
    w.writerow([TAG_SECTION])
    w.writerow(["Tag", header])
    w.writerows(tag_rows)
    out.write("\n")
    w.writerow([PORT_SECTION])
    w.writerow(["Port", "Protocol", header])
    w.writerows(port_rows)


def report_text(
    tag_rows: Iterable[tuple[str, int]], port_rows: Iterable[tuple[int, str, int]], measure: str = "records"
) -> str:
    buf = io.StringIO()
    write_report(buf, tag_rows, port_rows, measure)
    return buf.getvalue()


@dataclass
class FileTagResult:
    scan: FileScan
    lookup: Lookup
    measure: str
    tag_rows: list[tuple[str, int]]
    port_rows: list[tuple[int, str, int]]

    @property
    def matched(self) -> int:
        return sum(n for key, n in self.scan.counts.items() if key in self.lookup.tags)

    def report(self) -> str:
        return report_text(self.tag_rows, self.port_rows, self.measure)


# ------------------------------------------------------------------------- lake mode (Spark)


def _has_key() -> Column:
    return F.col("dstport").isNotNull() & F.col("protocol").isNotNull()


def input_counts(df: DataFrame) -> list[Column]:
    """Aggregate columns: records, nodata (NODATA/SKIPDATA), skipped (data records without dstport/protocol).

    records - nodata - skipped = the records `taggable` keeps. For observe() or agg().
    """
    data = is_data_record(df.columns)
    return [
        F.count(F.lit(1)).alias("records"),
        F.count(F.when(~data, 1)).alias("nodata"),
        F.count(F.when(data & ~_has_key(), 1)).alias("skipped"),
    ]


def taggable(df: DataFrame) -> DataFrame:
    """Records (or flows) that can be tagged: data records with a dstport and a protocol."""
    return df.where(is_data_record(df.columns) & _has_key())


def tag_records(lookup_df: DataFrame) -> Callable[[DataFrame], DataFrame]:
    """Transform: add `tag` (the lookup's tag, or 'Untagged') by a broadcast left join on (dstport, protocol).

    `lookup_df` has unique (dstport, protocol) keys (parse_lookup guarantees it), so the join keeps
    the row count. An existing `tag` column is replaced.
    """
    small = F.broadcast(lookup_df.select("dstport", "protocol", F.col("tag").alias("__lookup_tag")))

    def transform(df: DataFrame) -> DataFrame:
        base = df.drop("tag")
        joined = base.join(small, on=["dstport", "protocol"], how="left")
        return joined.select(*base.columns, F.coalesce(F.col("__lookup_tag"), F.lit(UNTAGGED)).alias("tag"))

    return transform


def protocol_name(protocol: Column) -> Column:
    """Column helper: lowercase IANA keyword of a protocol number, or the number as text."""
    names = F.array(*[F.lit(n) for n in protocols.NAMES])
    number = protocol.cast("int")
    return F.when(number.between(0, 255), F.element_at(names, number + 1)).otherwise(number.cast("string"))


def port_protocol_counts(
    tagged_records: DataFrame, tagged_flows: DataFrame | None = None, by: Sequence[str] = ()
) -> DataFrame:
    """Per event_date and (dstport, protocol, tag): records, bytes, and flows (null without a flows input).

    Inputs are tagged (tag_records) and taggable. Columns: event_date, [by...], dstport, protocol,
    protocol_name, tag, records, bytes, flows. `by`: extra grouping columns (e.g. account_id).
    """
    group = [EVENT_DATE, *by, "dstport", "protocol", "tag"]
    one, zero = F.lit(1).cast("long"), F.lit(0).cast("long")
    parts = tagged_records.select(
        *group,
        one.alias("records"),
        F.coalesce(F.col("bytes").cast("long"), zero).alias("bytes"),
        zero.alias("flows"),
    )
    if tagged_flows is not None:
        parts = parts.unionByName(
            tagged_flows.select(*group, zero.alias("records"), zero.alias("bytes"), one.alias("flows"))
        )
    flows = F.sum("flows") if tagged_flows is not None else F.lit(None).cast("long")
    counted = parts.groupBy(*group).agg(
        F.sum("records").alias("records"), F.sum("bytes").alias("bytes"), flows.alias("flows")
    )
    return counted.select(
        F.col(EVENT_DATE),
        *[F.col(c) for c in by],
        F.col("dstport").cast("int").alias("dstport"),
        F.col("protocol").cast("int").alias("protocol"),
        protocol_name(F.col("protocol")).alias("protocol_name"),
        F.col("tag"),
        F.col("records").cast("long").alias("records"),
        F.col("bytes").cast("long").alias("bytes"),
        F.col("flows").cast("long").alias("flows"),
    )


def tag_counts(port_protocol: DataFrame) -> DataFrame:
    """Per event_date and tag: records, bytes, flows (summed from port_protocol_counts rows)."""
    return port_protocol.groupBy(EVENT_DATE, "tag").agg(
        F.sum("records").cast("long").alias("records"),
        F.sum("bytes").cast("long").alias("bytes"),
        F.sum("flows").cast("long").alias("flows"),
    )


def tag_totals(port_protocol: DataFrame, measure: str = "records") -> DataFrame:
    """(tag, count, records) over all dates, sorted as the report: count desc, tag, Untagged last."""
    return (
        port_protocol.groupBy("tag")
        .agg(F.sum(measure).cast("long").alias("count"), F.sum("records").cast("long").alias("records"))
        .orderBy((F.col("tag") == UNTAGGED).asc(), F.col("count").desc(), F.col("tag").asc())
    )


def port_protocol_totals(port_protocol: DataFrame, measure: str = "records") -> DataFrame:
    """(dstport, protocol_name, count) over all dates, sorted: count desc, port, protocol number."""
    return (
        port_protocol.groupBy("dstport", "protocol", "protocol_name")
        .agg(F.sum(measure).cast("long").alias("count"))
        .orderBy(F.col("count").desc(), F.col("dstport").asc(), F.col("protocol").asc())
        .select("dstport", "protocol_name", "count")
    )
