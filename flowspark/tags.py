"""Tagging flow records by (dstport, protocol) from a lookup table, and counting tags and ports.

Two ways in, one set of rules:

* ``flowspark tag --flow-log FILE ...``: single-file mode, for a person with a log file. Pure Python,
  streaming line by line, no JVM: the lines are read and validated by the same rules as ``ingest``
  (:class:`_LineRules`), tagged with a dict lookup, and counted.
* ``flowspark tag --lake URI``: lake mode. ``flow_records`` (and ``flows`` when it exists) are tagged
  through a broadcast hash join on (dstport, protocol) (:func:`tag_records`) and counted per
  event_date into the Delta tables ``tag_counts`` and ``port_protocol_counts``.

Both modes parse the lookup with :func:`parse_lookup` (written once: header optional, CSV/TSV/';',
BOM, CRLF, blank lines, ``#`` comments, protocol by IANA keyword in any case or by number via
:mod:`flowspark.protocols`), match on the same integer key (port, protocol number), and write the
same CSV report (:func:`write_report`). ``tests/test_tags_spark.py`` proves that both modes give the
same report on every sample.

Decisions (also in ``flowspark tag --help``):

* The same (port, protocol) on two lookup rows with different tags: **the first row wins**; the
  later row is reported as a conflict with both line numbers (``--strict`` makes it an error). An
  exact repeat (same tag) is reported as a duplicate and ignored. So a record gets at most one tag
  and tag counts always add up to the records counted.
* Tag names are kept exactly as written (case-preserving): ``sv_P2`` and ``SV_P2`` are two tags (a
  note says so). Protocol names match in any case. ``Untagged`` is reserved for unmatched records.
* Report order: tags by count descending, then tag name (code-point order), ``Untagged`` last;
  port/protocol rows by count descending, then port, then protocol number. Protocols are shown as
  the lowercase IANA keyword (``tcp``), or the number when IANA gives none (``253``).
* Only data records are tagged: log-status ``OK`` or absent. NODATA/SKIPDATA records are counted
  apart; data records with ``-`` for dstport or protocol are skipped and reported.
* Record validation is ingest's (field count, numbers where numbers belong, ports 0-65535, protocol
  0-255, action, log-status, undecodable bytes; same reason texts), plus one rule ingest lacks:
  ``version`` must fit the file's format (AWS: the highest version among the format's fields, so 2
  for the default format). Lake mode can only count what ingest accepted, so a line whose only fault
  is its version is skipped by single-file mode and counted by lake mode.
"""

from __future__ import annotations

import codecs
import csv
import datetime as dt
import gzip
import io
import os
import re
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from pyspark.sql import Column, DataFrame, Observation, SparkSession
from pyspark.sql import functions as F

from flowspark import protocols
from flowspark import tables as _tables
from flowspark.ingest import RANGES, TextFormat, detect_format
from flowspark.schema import ACTIONS, BY_AWS, DEFAULT_FORMAT, EVENT_DATE, FIELDS, LOG_STATUSES

UNTAGGED = "Untagged"
MEASURES = ("records", "flows", "bytes")
TAG_COUNTS = "tag_counts"
PORT_PROTOCOL_COUNTS = "port_protocol_counts"
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


def _decode(data: bytes) -> tuple[str, str | None]:
    """(text, note): UTF-8 (BOM optional), UTF-16 with a BOM, else Windows-1252 with a note."""
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return data.decode("utf-16"), None
    try:
        return data.decode("utf-8-sig"), None
    except UnicodeDecodeError:
        return data.decode("cp1252", errors="replace"), "the lookup is not UTF-8: read as Windows-1252"


def default_lookup_path() -> Path:
    from flowspark.config import default_conf_dir

    return default_conf_dir() / "lookup_default.csv"


def read_lookup(path: str | os.PathLike[str] | None = None, strict: bool = False, limit: int = 20) -> Lookup:
    """Read and parse a lookup file (default: conf/lookup_default.csv).

    With ``strict``, invalid or conflicting rows raise LookupFileError listing them (the CLI exits 2).
    """
    p = Path(path) if path is not None else default_lookup_path()
    if not p.is_file():
        raise FileNotFoundError(f"lookup file not found: {p}")
    text, note = _decode(p.read_bytes())
    lookup = parse_lookup(text, source=str(p))
    if note:
        lookup.problems.insert(0, Problem(0, "note", note))
    bad = lookup.of_kind("invalid", "conflict")
    if strict and bad:
        shown = "\n  ".join(b.text() for b in bad[:limit])
        more = f"\n  ... and {len(bad) - limit:,} more" if len(bad) > limit else ""
        raise LookupFileError(f"{p}: {len(bad):,} invalid or conflicting row(s) (--strict):\n  {shown}{more}")
    return lookup


# ------------------------------------------------------------------------ single-file mode (Python)


_ODD = str.maketrans({"\ufeff": " ", "\r": " ", "\t": " ", "\u00a0": " "})  # as ingest._clean
_NUMBER = re.compile(r"[\x00-\x20]*([+-]?[0-9]+)[\x00-\x20]*")  # what Spark's try_cast accepts
_BITS = {"int": 2**31, "long": 2**63, "epoch": 2**63}


def _number(raw: str, kind: str) -> int | None:
    if raw.isdigit() and raw.isascii():  # the usual case, without the regex
        n = int(raw)
    else:
        m = _NUMBER.fullmatch(raw)
        if not m:
            return None
        n = int(m.group(1))
    return n if -_BITS[kind] <= n < _BITS[kind] else None


class _LineRules:
    """ingest's validation of one text line, in Python, for one file format.

    Mirrors ingest.parse_text/_finish: the field count first; then per field in catalogue order
    "not a number" and, on data rows (log-status OK or '-'), the ranges of ingest.RANGES; then
    action, log-status and undecodable bytes; reasons joined with "; ". Plus the version rule.
    """

    def __init__(self, fmt: TextFormat, check_version: bool = True) -> None:
        pos = {name: i for i, name in enumerate(fmt.names)}
        self.n_fields = len(fmt.names)
        self.numeric = [
            (pos[f.aws], f.aws, f.kind, RANGES.get(f.column)) for f in FIELDS if f.aws in pos and f.kind != "string"
        ]
        self.i_action = pos.get("action")
        self.i_status = pos.get("log-status")
        self.i_dstport = pos.get("dstport")
        self.i_protocol = pos.get("protocol")
        self.i_bytes = pos.get("bytes")
        self.i_version = pos.get("version") if check_version else None
        known = [BY_AWS[n].version for n in fmt.names if n in BY_AWS]
        self.format_version = max(known, default=2)
        self.exact_version = len(known) == len(fmt.names)  # no names this catalogue does not know

    def check(self, line: str, tokens: list[str]) -> tuple[str | None, dict[int, int]]:
        """(reason or None, {token position: number}) for a record line."""
        if len(tokens) != self.n_fields:
            return f"expected {self.n_fields} fields, found {len(tokens)}", {}
        status = tokens[self.i_status] if self.i_status is not None else "-"
        data_row = status in ("-", "OK")
        reasons: list[str] = []
        values: dict[int, int] = {}
        for i, aws, kind, bounds in self.numeric:
            raw = tokens[i]
            if raw == "-":
                continue
            num = _number(raw, kind)
            if num is None:
                reasons.append(f"{aws}: not a number '{raw}'")
                continue
            values[i] = num
            if bounds and data_row and not bounds[0] <= num <= bounds[1]:
                reasons.append(f"{aws}: {raw} outside {bounds[0]}-{bounds[1]}")
        if self.i_action is not None and tokens[self.i_action] != "-" and tokens[self.i_action] not in ACTIONS:
            reasons.append(f"action: unknown value '{tokens[self.i_action]}'")
        if status != "-" and status not in LOG_STATUSES:
            reasons.append(f"log-status: unknown value '{status}'")
        if "\ufffd" in line:
            reasons.append("undecodable bytes (not UTF-8)")
        if self.i_version is not None and self.i_version in values:
            v = values[self.i_version]
            if v != self.format_version if self.exact_version else v < self.format_version:
                reasons.append(f"version: {v} does not fit the file's format (version {self.format_version})")
        return ("; ".join(reasons) or None), values


@dataclass(frozen=True)
class Issue:
    file: str
    line: int
    reason: str

    def text(self) -> str:
        return f"{self.file}:{self.line}: {self.reason}"


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


def _open_lines(path: str) -> Iterator[bytes]:
    opener: Callable[..., Any] = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as fh:
        yield from fh


def scan_file(
    path: str,
    scan: FileScan,
    default_format: Sequence[str] = DEFAULT_FORMAT,
    check_version: bool = True,
    max_issues: int = 1000,
) -> None:
    """Read one text flow log (plain or .gz) into `scan`; lines end at "\\n" only, as in ingest."""
    if os.path.isdir(path):
        raise FileNotFoundError(f"{path} is a folder: give log files (or ingest the folder and use --lake)")
    if path.endswith(".parquet"):
        raise ValueError(f"{path}: single-file mode reads text logs; ingest Parquet deliveries and use --lake")
    name = os.path.basename(path)
    scan.files.append(path)
    rules: _LineRules | None = None
    for lineno, raw in enumerate(_open_lines(path), 1):
        line = raw[:-1] if raw.endswith(b"\n") else raw
        text = line.decode("utf-8", errors="replace")
        scan.lines += 1
        if rules is None:  # line 1 decides the format, as in ingest
            fmt = detect_format(text, default_format)
            rules = _LineRules(fmt, check_version)
            if fmt.has_header:
                scan.headers += 1
                continue
        if "\t" in text or "\r" in text or "\u00a0" in text or "\ufeff" in text:
            text = text.translate(_ODD)
        clean = text.strip(" ")
        if not clean:
            scan.blank += 1
            continue
        tokens = [t for t in clean.split(" ") if t] if "  " in clean else clean.split(" ")
        reason, values = rules.check(text, tokens)
        if reason:
            scan.malformed += 1
            if len(scan.malformed_lines) < max_issues:
                scan.malformed_lines.append(Issue(name, lineno, reason))
            continue
        scan.records += 1
        if rules.i_status is not None and tokens[rules.i_status] not in ("-", "OK"):
            scan.nodata += 1
            continue
        port = values.get(rules.i_dstport) if rules.i_dstport is not None else None
        proto = values.get(rules.i_protocol) if rules.i_protocol is not None else None
        if port is None or proto is None:
            scan.skipped += 1
            if len(scan.skipped_lines) < max_issues:
                missing = " and ".join(n for n, v in (("dstport", port), ("protocol", proto)) if v is None)
                scan.skipped_lines.append(Issue(name, lineno, f"no {missing} ('-' or not in the format)"))
            continue
        key = (port, proto)
        scan.counts[key] += 1
        if rules.i_bytes is not None:
            scan.bytes[key] += values.get(rules.i_bytes, 0)


def scan_files(
    paths: Sequence[str],
    default_format: Sequence[str] = DEFAULT_FORMAT,
    check_version: bool = True,
    max_issues: int = 1000,
) -> FileScan:
    """Scan flow log files (each with its own header, or `default_format`) into one FileScan."""
    t0 = time.time()
    scan = FileScan()
    for path in paths:
        if not os.path.exists(path):
            raise FileNotFoundError(f"flow log not found: {path}")
        scan_file(path, scan, default_format, check_version, max_issues)
    scan.seconds = time.time() - t0
    return scan


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


def _write_output(output: str, write: Callable[[TextIO], None]) -> None:
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


def tag_files(
    paths: Sequence[str],
    lookup: Lookup,
    measure: str = "records",
    default_format: Sequence[str] = DEFAULT_FORMAT,
    check_version: bool = True,
    max_issues: int = 1000,
) -> FileTagResult:
    """Single-file mode: scan the files, tag, count. `measure` is records or bytes."""
    if measure not in ("records", "bytes"):
        raise ValueError(f"single-file mode counts records or bytes, not {measure!r} (flows need --lake)")
    scan = scan_files(paths, default_format, check_version, max_issues)
    counts = scan.counts if measure == "records" else scan.bytes
    return FileTagResult(
        scan, lookup, measure, sorted_tag_rows(tag_totals_from(counts, lookup)), sorted_port_rows(counts)
    )


# ------------------------------------------------------------------------- lake mode (Spark)


def lookup_frame(spark: SparkSession, lookup: Lookup) -> DataFrame:
    """The parsed lookup as a small DataFrame (dstport int, protocol int, tag string), unique keys."""
    return spark.createDataFrame([(p, proto, tag) for (p, proto), tag in lookup.tags.items()], LOOKUP_SCHEMA)


def _data_status(df: DataFrame) -> Column:
    """True for data records: log-status OK, or no log-status (as dedup.data_records)."""
    if "log_status" not in df.columns:
        return F.lit(True)
    return F.coalesce(F.col("log_status"), F.lit("OK")) == "OK"


def _has_key() -> Column:
    return F.col("dstport").isNotNull() & F.col("protocol").isNotNull()


def input_counts(df: DataFrame) -> list[Column]:
    """Aggregate columns: records, nodata (NODATA/SKIPDATA), skipped (data records without dstport/protocol).

    records - nodata - skipped = the records `taggable` keeps. For observe() or agg().
    """
    data = _data_status(df)
    return [
        F.count(F.lit(1)).alias("records"),
        F.count(F.when(~data, 1)).alias("nodata"),
        F.count(F.when(data & ~_has_key(), 1)).alias("skipped"),
    ]


def taggable(df: DataFrame) -> DataFrame:
    """Records (or flows) that can be tagged: data records with a dstport and a protocol."""
    return df.where(_data_status(df) & _has_key())


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


in_dates = _tables.in_dates  # one date-range filter for every job


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

    @property
    def tagged(self) -> int:
        return self.records - self.nodata - self.skipped

    def reconciled(self) -> bool:
        return self.tagged == self.matched + self.untagged

    def text(self, limit: int = 20) -> str:
        rng = f"{self.date_from or 'start'} .. {self.date_to or 'end'}"
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
                f"  tables       {PORT_PROTOCOL_COUNTS}, {TAG_COUNTS} (dates replaced)"
                + (", flows counted" if self.flows_table else ""),
                f"  output       {self.output or '(none)'}",
                f"  check        tagged {self.tagged:,} = matched {self.matched:,} + untagged "
                f"{self.untagged:,}: " + ("OK" if self.reconciled() else "MISMATCH"),
                f"  seconds      {self.seconds:.1f} ({rate:,.0f} records/s)",
            ]
        )


def run_tag_lake(
    spark: SparkSession,
    cfg: Any,
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
    from flowspark import tables

    t0 = time.time()
    if count not in MEASURES:
        raise ValueError(f"--count must be one of {', '.join(MEASURES)}, got {count!r}")
    if date_from and date_to and date_from > date_to:
        raise ValueError(f"--from {date_from} is after --to {date_to}")
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
    lookup_df = lookup_frame(spark, lookup)
    obs = Observation("tag")
    observed = records.observe(obs, *input_counts(records))
    tagged = taggable(observed).transform(tag_records(lookup_df))
    tagged_flows = None
    if summary.flows_table and flows is not None:
        tagged_flows = taggable(in_dates(flows, date_from, date_to)).transform(tag_records(lookup_df))
    counts = port_protocol_counts(tagged, tagged_flows)
    tables.replace_dates(counts, lake, PORT_PROTOCOL_COUNTS, EVENT_DATE, date_from, date_to, partition_by=[EVENT_DATE])
    m = obs.get
    summary.records, summary.nodata, summary.skipped = int(m["records"]), int(m["nodata"]), int(m["skipped"])

    written = in_dates(tables.read(spark, lake, PORT_PROTOCOL_COUNTS), date_from, date_to)
    tables.replace_dates(
        tag_counts(written), lake, TAG_COUNTS, EVENT_DATE, date_from, date_to, partition_by=[EVENT_DATE]
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

        _write_output(output, write)
    summary.seconds = time.time() - t0
    return summary


# --------------------------------------------------------------------------------------- CLI

_DESCRIPTION = """\
Tag VPC flow log records by (dstport, protocol) from a lookup table and count them.

Single-file mode (--flow-log; no Spark, no JVM) reads text flow logs (plain or .gz; a header line
gives the field order, otherwise the default v2 format or --format) and writes the report.
Lake mode (--lake) tags <lake>/flow_records through a broadcast join and replaces the date range
in the Delta tables <lake>/port_protocol_counts and <lake>/tag_counts (per event_date: records,
bytes, and flows when <lake>/flows exists), then writes the same report.

The report (--output, '-' for stdout) is a CSV file in two sections:
  Tag Counts:                          tags by count descending, then tag name; Untagged last
  Tag,Count
  ...
  (blank line)
  Port/Protocol Combination Counts:    by count descending, then port, then protocol number
  Port,Protocol,Count                  protocol as the lowercase IANA keyword (tcp), or its number
With --count bytes or flows the column is named Bytes or Flows. A summary goes to stderr.
"""

_EPILOG = """\
lookup rules:
  rows 'port,protocol,tag'; header optional; comma, tab or ';' separated (detected); BOM, CRLF,
  blank lines, '#' comment lines and spaces around fields are ignored. Port 0-65535; protocol an
  IANA keyword in any case (tcp, UDP, ipv6-icmp, gre, esp, ...) or a number 0-255. Tags are kept
  exactly as written (case-preserving); 'Untagged' is reserved. An invalid row is reported with
  its line number and skipped (--strict: exit 2). The same (port, protocol) with two different tags: the FIRST row
  wins and the later one is reported as a conflict (--strict: exit 2); an exact repeat is ignored.

record rules (the same as 'flowspark ingest'):
  expected field count, numbers where numbers belong, ports 0-65535, protocol 0-255, action
  ACCEPT/REJECT/-, log-status OK/NODATA/SKIPDATA/-; malformed lines are reported with their line
  numbers and counted, never fatal. Only data records (log-status OK or absent) are tagged;
  records with '-' for dstport or protocol are skipped and reported. Single-file mode also rejects
  a version that does not fit the file's format (2 for the default format); ingest does not yet.

lake mode: --from/--to select event_date days (default: all) and only those days are replaced in
  the tables, so reruns are idempotent. --count flows needs <lake>/flows (run dedup first).

exit codes: 0 done, 1 the job failed, 2 bad arguments, missing files, or --strict lookup errors.
"""


def _print_summary_file(result: FileTagResult, output: str, limit: int, err: TextIO) -> None:
    s, lk = result.scan, result.lookup
    rate = s.lines / s.seconds if s.seconds else 0.0
    p = [f"tag {len(s.files)} file(s) -> {output}"]
    p.append(f"  lookup       {lk.source}: {lk.describe()}")
    for prob in lk.problems[:limit]:
        p.append(f"    {prob.kind}: {prob.text()}")
    if len(lk.problems) > limit:
        p.append(f"    ... and {len(lk.problems) - limit:,} more")
    p.append(
        f"  lines        {s.lines:,} = {s.headers:,} headers + {s.blank:,} blank + {s.records:,} records "
        f"+ {s.malformed:,} malformed"
    )
    p.append(
        f"  records      {s.records:,}: {s.tagged:,} tagged ({result.matched:,} matched, "
        f"{s.tagged - result.matched:,} untagged), {s.nodata:,} NODATA/SKIPDATA, {s.skipped:,} skipped"
    )
    p.append(f"  malformed    {s.malformed:,} line(s), not counted")
    for issue in s.malformed_lines[:limit]:
        p.append(f"    {issue.text()}")
    if s.malformed > min(limit, len(s.malformed_lines)):
        p.append(f"    ... and {s.malformed - min(limit, len(s.malformed_lines)):,} more")
    if s.skipped:
        p.append(f"  skipped      {s.skipped:,} data record(s) without dstport or protocol")
        for issue in s.skipped_lines[:limit]:
            p.append(f"    {issue.text()}")
        if s.skipped > min(limit, len(s.skipped_lines)):
            p.append(f"    ... and {s.skipped - min(limit, len(s.skipped_lines)):,} more")
    p.append(f"  check        {'OK' if s.reconciled() else 'MISMATCH'}")
    p.append(f"  seconds      {s.seconds:.2f} ({rate:,.0f} lines/s)")
    print("\n".join(p), file=err)


def cmd_tag(args: Any, cfg: Any) -> int:
    from flowspark.config import ConfigError

    if args.max_report < 0:
        raise ConfigError("--max-report must be 0 or more")
    if args.flow_log:
        if args.date_from or args.date_to:
            raise ConfigError("--from/--to apply to --lake only")
        if args.count == "flows":
            raise ConfigError("--count flows needs --lake (the flows table); single-file mode counts records or bytes")
        from flowspark.schema import parse_format

        fmt = parse_format(args.format) if args.format else list(DEFAULT_FORMAT)
        lookup = read_lookup(args.lookup, strict=args.strict, limit=args.max_report)
        result = tag_files(args.flow_log, lookup, args.count, fmt, max_issues=max(args.max_report, 1000))
        _write_output(args.output, lambda fh: write_report(fh, result.tag_rows, result.port_rows, result.measure))
        _print_summary_file(result, args.output, args.max_report, sys.stderr)
        return 0
    if args.format:
        raise ConfigError("--format applies to --flow-log only (the lake is already parsed)")
    from flowspark.cli import spark_for

    lookup = read_lookup(args.lookup, strict=args.strict, limit=args.max_report)  # fail before Spark starts
    spark = spark_for(cfg)
    summary = run_tag_lake(spark, cfg, args.lake, lookup, args.date_from, args.date_to, args.count, args.output)
    print(summary.text(args.max_report), file=sys.stderr)
    return 0


def register_cli(sub: Any) -> None:
    """The `flowspark tag` subcommand (called by flowspark.cli)."""
    import argparse

    from flowspark.cli import add_common

    p = sub.add_parser(
        "tag",
        help="tag records by (dstport, protocol) from a lookup; tag and port/protocol counts (file or lake)",
        description=_DESCRIPTION,
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument(
        "--flow-log", action="extend", nargs="+", metavar="FILE", help="flow log file(s) to tag (repeatable)"
    )
    src.add_argument("--lake", help="lake root holding flow_records (a folder or s3://bucket/prefix)")
    p.add_argument(
        "--lookup",
        metavar="FILE",
        help="lookup CSV/TSV: port,protocol,tag (default: conf/lookup_default.csv)",
    )
    p.add_argument("--output", required=True, metavar="FILE", help="report CSV to write ('-' for stdout)")
    p.add_argument(
        "--count",
        choices=MEASURES,
        default="records",
        help="what the report counts: records (default), bytes, or flows (lake mode, needs <lake>/flows)",
    )
    p.add_argument("--format", help="field order of headerless files (default: the v2 default format)")
    p.add_argument("--strict", action="store_true", help="exit 2 if the lookup has invalid or conflicting rows")
    p.add_argument(
        "--max-report",
        type=int,
        default=20,
        metavar="N",
        help="list at most N problems of each kind (default 20)",
    )
    add_common(p, lake=False, dates=True)
    p.set_defaults(handler=cmd_tag)
