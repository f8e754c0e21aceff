"""Reading raw VPC flow logs into typed rows: text (any format, by header) and Parquet deliveries.

How a text file is read:
- its first line decides its format: a header of field names in any order and any field set of
  versions 2 to 11, or, without a header (CloudWatch exports), the default v2 format or `--format`.
  Formats are read from each file's first line before the Spark job (cheap: one small read per file),
  so each distinct format gets a plan with its field positions as constants;
- the file is read whole (`wholetext`) and `posexplode` of its lines gives every line its exact
  line number, so a reject can say "file X, line 1234";
- every field is a Column expression over the line split on spaces: no Python per row.

A line ends up as exactly one of: header, blank, record (valid), or reject (with a reason).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from flowspark.core.dates import utc_date
from flowspark.core.schema import (
    ACTIONS,
    BY_AWS,
    BY_COLUMN,
    DEFAULT_FORMAT,
    EVENT_DATE,
    EXTRA_FIELDS_COLUMN,
    FIELDS,
    LOG_STATUSES,
    SOURCE_FILE,
    SOURCE_LINE,
    Field,
    record_schema,
)

HEADER, BLANK, RECORD = "header", "blank", "record"

# Epoch values above this are milliseconds (flowlogs-reader saw them "contra the docs").
MS_THRESHOLD = 100_000_000_000

RANGES: dict[str, tuple[int, int]] = {
    "srcport": (0, 65535),
    "dstport": (0, 65535),
    "protocol": (0, 255),
    "tcp_flags": (0, 65535),
    "traffic_path": (0, 255),
    "packets": (0, 2**62),
    "bytes": (0, 2**62),
}
_SQL_TYPE = {"int": "int", "long": "bigint", "epoch": "bigint"}
_NAME = r"^[a-z][a-z0-9_-]*$"

RECORD_COLUMNS = [f.name for f in record_schema().fields]


@dataclass(frozen=True)
class TextFormat:
    """The layout of a group of text files: field names in file order, and whether line 1 is a header."""

    names: tuple[str, ...]
    has_header: bool


def detect_format(first_line: str, default: Sequence[str] = DEFAULT_FORMAT) -> TextFormat:
    """A file's format from its first line: a header of field names, or `default` when there is none.

    A header is a line whose tokens all look like field names and at least one is a known field; a
    data line always has numbers, addresses or '-' in it. Underscored names (Parquet style) are
    accepted. Unknown names are kept: their values land in `extra_fields`.
    """

    clean = first_line.replace("\ufeff", " ").replace("\r", " ").replace("\t", " ").replace("\u00a0", " ").strip()
    tokens = clean.split()
    if tokens and all(re.match(_NAME, t) for t in tokens) and any(t.replace("_", "-") in BY_AWS for t in tokens):
        return TextFormat(tuple(t.replace("_", "-") for t in tokens), True)
    return TextFormat(tuple(default), False)


def _clean(line: Column) -> Column:
    """BOM, CR, tab and no-break space become spaces; then trim."""
    return F.trim(F.translate(line, "\ufeff\r\t\u00a0", "    "))


def _split(clean: Column, n_fields: int) -> Column:
    """Split on runs of spaces. The usual line (single spaces) takes one split on " " (Java's fast path,
    no regex); only a line whose split does not give `n_fields` non-empty tokens is split again on " +"."""
    single = F.split(clean, " ")
    return F.when((F.size(single) == n_fields) & ~F.array_contains(single, ""), single).otherwise(F.split(clean, " +"))


def _numeric(f: Field, raw_name: str) -> Column:
    return F.expr(f"try_cast(`{raw_name}` as {_SQL_TYPE[f.kind]})")


def _typed(f: Field, raw: Column, raw_name: str, data_row: Column) -> tuple[Column, list[Column]]:
    """(typed value, [reason or null, ...]) for one field whose raw text (null for '-') is `raw`."""
    if f.kind == "string":
        return raw, []
    num = _numeric(f, raw_name)
    reasons = [F.when(raw.isNotNull() & num.isNull(), F.concat(F.lit(f"{f.aws}: not a number '"), raw, F.lit("'")))]
    if f.column in RANGES:
        lo, hi = RANGES[f.column]
        reasons.append(
            F.when(
                data_row & ((num < lo) | (num > hi)), F.concat(F.lit(f"{f.aws}: "), raw, F.lit(f" outside {lo}-{hi}"))
            )
        )
    if f.kind == "epoch":
        return F.when(num > MS_THRESHOLD, F.timestamp_millis(num)).otherwise(F.timestamp_seconds(num)), reasons
    return num, reasons


def _finish(
    staged: DataFrame, present: Sequence[Field], extras: Sequence[str], count_reason: Column | None
) -> DataFrame:
    """Typed columns, validation and event_date from a frame with `__raw_<column>` strings."""
    status = F.col("__raw_log_status") if any(f.column == "log_status" for f in present) else F.lit(None)
    data_row = F.coalesce(status, F.lit("OK")) == "OK"
    typed: dict[str, Column] = {}
    reasons: list[Column] = []
    for f in present:
        value, why = _typed(f, F.col(f"__raw_{f.column}"), f"__raw_{f.column}", data_row)
        typed[f.column] = value
        reasons.extend(why)
    if "action" in typed:
        a = typed["action"]
        reasons.append(
            F.when(a.isNotNull() & ~a.isin(*ACTIONS), F.concat(F.lit("action: unknown value '"), a, F.lit("'")))
        )
    if "log_status" in typed:
        s = typed["log_status"]
        reasons.append(
            F.when(
                s.isNotNull() & ~s.isin(*LOG_STATUSES), F.concat(F.lit("log-status: unknown value '"), s, F.lit("'"))
            )
        )
    if "version" in typed:
        # AWS writes the highest version among the format's fields (2 for the default format); another
        # value means the line does not belong to this format. With fields the catalogue does not know
        # (a newer version), only a lower value is wrong.
        expected = max(f.version for f in present)
        v = typed["version"]
        bad = (v < expected) if extras else (v != expected)
        reasons.append(
            F.when(
                v.isNotNull() & bad,
                F.concat(F.lit("version: "), v.cast("string"), F.lit(f" does not fit the format (version {expected})")),
            )
        )
    undecodable = F.col("__raw").contains("\ufffd")
    if "__dirty" in staged.columns:  # text: only lines of non-ASCII files can hold U+FFFD
        undecodable = F.col("__dirty") & undecodable
    reasons.append(F.when(undecodable, F.lit("undecodable bytes (not UTF-8)")))
    reason = F.concat_ws("; ", *reasons)
    if count_reason is not None:
        reason = F.coalesce(count_reason, reason)
    reason = F.when(F.col("__kind") == RECORD, F.when(reason != "", reason))

    out_cols = [F.col("__kind").alias("kind"), reason.alias("reason"), F.col("__raw").alias("raw_line")]
    for f in FIELDS:
        out_cols.append((typed[f.column] if f.column in typed else F.lit(None)).cast(f.spark_type).alias(f.column))
    if extras:
        extra = F.create_map(*[x for name in extras for x in (F.lit(name), F.col(f"__x_{name}"))])
    else:
        extra = F.lit(None)
    out_cols += [
        extra.cast("map<string,string>").alias(EXTRA_FIELDS_COLUMN),
        F.col(SOURCE_FILE),
        F.col(SOURCE_LINE),
    ]
    out = staged.select(*out_cols)
    # UTC date of `start`, whatever the session time zone; a format without `start` falls back to
    # the delivery date in the AWS object name.
    file_day = F.regexp_extract(F.col(SOURCE_FILE), r"_(\d{8})T\d{4}Z_", 1)
    return out.withColumn(
        EVENT_DATE,
        F.coalesce(
            utc_date(F.col("start")),
            F.when(file_day != "", F.to_date(file_day, "yyyyMMdd")),
        ),
    )


def parse_text(fmt: TextFormat) -> Callable[[DataFrame], DataFrame]:
    """Transform: whole files (`source_file`, `content`) of one format -> one row per line.

    Output columns: kind, reason (null unless the line is rejected), raw_line, every flow_records column.
    """
    positions = {name: i for i, name in enumerate(fmt.names)}
    present = [f for f in FIELDS if f.aws in positions]
    extras = [n for n in fmt.names if n not in BY_AWS]
    n_fields = len(fmt.names)

    def transform(files: DataFrame) -> DataFrame:
        # Split once per file; the line count is taken before the explode (an expression next to
        # a generator is evaluated once per output row, which would split the file again per line).
        # A file with CR, tabs or any non-ASCII character (BOM, no-break space, U+FFFD) is "dirty": only
        # its lines pay for translate() and the U+FFFD check. Three byte scans per file (length() walks
        # the bytes once; octet_length() is free); contains(), not instr(): instr counts characters and
        # compares at every position (it was 60% of all parse time on 10 M records).
        dirty = (
            (F.length("content") != F.octet_length("content"))
            | F.col("content").contains("\r")
            | F.col("content").contains("\t")
        )
        exploded = (
            files.select(F.col(SOURCE_FILE), dirty.alias("__dirty"), F.split(F.col("content"), "\n").alias("__lines"))
            .select(F.col(SOURCE_FILE), F.col("__dirty"), F.size("__lines").alias("__n"), F.col("__lines"))
            # _outer: Spark adds no size(...) > 0 filter, which would split every file twice more.
            .select(
                F.col(SOURCE_FILE),
                F.col("__dirty"),
                F.col("__n"),
                F.posexplode_outer("__lines").alias("__pos", "__raw"),
            )
        )
        # The empty string after a file's final newline is not a line.
        exploded = exploded.where((F.col("__pos") < F.col("__n") - 1) | (F.col("__raw") != ""))
        clean = F.when(F.col("__dirty"), _clean(F.col("__raw"))).otherwise(F.trim(F.col("__raw")))
        kind = (
            F.when(F.lit(fmt.has_header) & (F.col("__pos") == 0), F.lit(HEADER))
            .when(clean == "", F.lit(BLANK))
            .otherwise(F.lit(RECORD))
        )
        tokenised = exploded.select(
            F.col(SOURCE_FILE),
            (F.col("__pos") + 1).cast("long").alias(SOURCE_LINE),
            F.col("__raw"),
            F.col("__dirty"),
            kind.alias("__kind"),
            _split(clean, n_fields).alias("__tokens"),
        )

        def raw(i: int) -> Column:
            tok = F.get(F.col("__tokens"), i)
            return F.when(tok != "-", tok)

        staged = tokenised.select(
            "*",
            *[raw(positions[f.aws]).alias(f"__raw_{f.column}") for f in present],
            *[raw(positions[n]).alias(f"__x_{n}") for n in extras],
        )
        n_tokens = F.size("__tokens")
        count_reason = F.when(
            n_tokens != n_fields,
            F.concat(F.lit(f"expected {n_fields} fields, found "), n_tokens.cast("string")),
        )
        return _finish(staged, present, extras, count_reason)

    return transform


def parse_parquet(raw: DataFrame) -> DataFrame:
    """Transform: AWS Parquet deliveries (underscore column names) -> the same shape as parse_text.

    Columns are matched by name; a value that does not fit its type is a reject with a reason, as
    for text. A row's position in its file is its line number; its raw line is the row as JSON.
    """
    present = [BY_COLUMN[c.lower()] for c in raw.columns if c.lower() in BY_COLUMN]
    extras = [c for c in raw.columns if c.lower() not in BY_COLUMN]
    cols = [
        F.col("_metadata.file_path").alias(SOURCE_FILE),
        (F.col("_metadata.row_index") + 1).cast("long").alias(SOURCE_LINE),
        F.to_json(F.struct(*[F.col(f"`{c}`") for c in raw.columns])).alias("__raw"),
        F.lit(RECORD).alias("__kind"),
    ]
    for c in raw.columns:
        s = F.trim(F.col(f"`{c}`").cast("string"))
        # pandas-written files hold the strings 'None' and '-' for missing values.
        value = F.when(~s.isin("-", "", "None"), s)
        if c.lower() in BY_COLUMN:
            cols.append(value.alias(f"__raw_{c.lower()}"))
        else:
            cols.append(value.alias(f"__x_{c}"))
    return _finish(raw.select(*cols), present, extras, None)


def records(parsed: DataFrame) -> DataFrame:
    """The valid record rows of a parsed DataFrame, in the flow_records schema."""
    return parsed.where((F.col("kind") == RECORD) & F.col("reason").isNull()).select(*RECORD_COLUMNS)


def rejects(parsed: DataFrame, ingest_id: str) -> DataFrame:
    """The rejected lines, in the flow_rejects schema."""
    return parsed.where(F.col("reason").isNotNull()).select(
        F.col(SOURCE_FILE),
        F.col(SOURCE_LINE).alias("line_number"),
        F.col("raw_line"),
        F.col("reason"),
        F.lit(ingest_id).alias("ingest_id"),
    )


# ------------------------------------------------ the same rules in plain Python (tag's single-file mode)

_ODD = str.maketrans({"\ufeff": " ", "\r": " ", "\t": " ", "\u00a0": " "})  # as _clean
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


class LineRules:
    """ingest's validation of one text line, in Python, for one file format.

    Mirrors ingest.parse_text/_finish: the field count first; then per field in catalogue order
    "not a number" and, on data rows (log-status OK or '-'), the ranges of ingest.RANGES; then
    action, log-status and undecodable bytes; reasons joined with "; ". Plus the version rule.
    """

    def __init__(self, fmt: TextFormat) -> None:
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
        self.i_version = pos.get("version")
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
                reasons.append(f"version: {v} does not fit the format (version {self.format_version})")
        return ("; ".join(reasons) or None), values




def split_tokens(text: str) -> list[str]:
    """A decoded line's tokens as the Spark parse sees them (_clean then _split): [] for a blank line."""
    if "\t" in text or "\r" in text or "\u00a0" in text or "\ufeff" in text:
        text = text.translate(_ODD)
    clean = text.strip(" ")
    if not clean:
        return []
    return [t for t in clean.split(" ") if t] if "  " in clean else clean.split(" ")
