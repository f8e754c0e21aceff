"""Reading raw VPC flow logs into typed rows: text (any format, by header) and Parquet deliveries.

How a text file is read:
- its first line decides its format: a header of field names in any order and any field set of
  versions 2 to 10, or, without a header (CloudWatch exports), the default v2 format or `--format`.
  Formats are read from each file's first line before the Spark job (cheap: one small read per file),
  so each distinct format gets a plan with its field positions as constants;
- the objects are streamed line by line (flowspark.edges.sources.read_lines: memory does not grow with
  the object) and every line comes with its exact line number, so a reject can say "file X, line 1234";
  an object that cannot be read to its end (truncated or corrupt gzip, empty, binary) comes as one
  BROKEN row after its good lines;
- every field is a Column expression over the line split on spaces: no Python per row.

A line ends up as exactly one of: header, blank, record (valid), or reject (with a reason).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from flowspark.core.dates import utc_date
from flowspark.core.schema import (
    ACTIONS,
    BY_AWS,
    BY_COLUMN,
    DATA_STATUS,
    DEFAULT_FORMAT,
    EVENT_DATE,
    EXTRA_FIELDS_COLUMN,
    FIELDS,
    LOG_STATUSES,
    SOURCE_FILE,
    SOURCE_LINE,
    Field,
    is_data_status,
    record_schema,
)

HEADER, BLANK, RECORD = "header", "blank", "record"
# A row standing for an object that cannot be read (to its end): not a line. Its raw_line is the reason,
# its source_line the last complete line before the break (0: none).
BROKEN = "broken object"

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

    tokens = split_tokens(first_line)  # the tokens the Spark parse sees, so it knows this line as the header
    if tokens and all(re.match(_NAME, t) for t in tokens) and any(t.replace("_", "-") in BY_AWS for t in tokens):
        return TextFormat(tuple(t.replace("_", "-") for t in tokens), True)
    return TextFormat(tuple(default), False)


def header_text(fmt: TextFormat) -> str:
    """The header line of `fmt` as `_is_header` compares it: names joined by one space (underscores as '-')."""
    return " ".join(fmt.names)


def _is_header(clean: Column, fmt: TextFormat) -> Column:
    """Line 1 is the header only when it IS this format's header (its tokens are the format's names, '_' read
    as '-', as detect_format reads them): an object grouped with others of its flow log whose line 1 is not
    (no header, another header, a record) has that line parsed like any other, a record or a reject."""
    if not fmt.has_header:
        return F.lit(False)
    return (F.col(SOURCE_LINE) == 1) & (
        F.translate(F.regexp_replace(clean, " +", " "), "_", "-") == F.lit(header_text(fmt))
    )


def _clean(line: Column) -> Column:
    """BOM, CR, tab and no-break space become spaces; then trim."""
    return F.trim(F.translate(line, "\ufeff\r\t\u00a0", "    "))


def _split(clean: Column, n_fields: int) -> Column:
    """Split on runs of spaces. The usual line (single spaces) takes one split on " " (Java's fast path,
    no regex); only a line whose split does not give `n_fields` non-empty tokens is split again on " +"."""
    single = F.split(clean, " ")
    return F.when((F.size(single) == n_fields) & ~F.array_contains(single, ""), single).otherwise(F.split(clean, " +"))


# ------------------------------------------------------------------ the line rules, declared once
#
# Every reason a record line is rejected for is one rule object below. A rule gives its Spark Column
# (ingest's parse, through `_finish`) and its Python check (`LineRules`: tag's single-file mode, no JVM)
# from the same constants and the same reason text (a `Reason`), so a new rule or a changed text is
# written once. `rules_for(names)` is the table of one format, in the order its reasons are reported:
# numeric fields in catalogue order (not a number / does not fit / range), then action, log-status,
# the version of the format, undecodable bytes; joined with "; ". A wrong field count (FIELD_COUNT)
# replaces all of them: nothing else is checked on such a line.
#
# Timestamps (start, end): an integer of epoch seconds, or of milliseconds when above MS_THRESHOLD
# (flowlogs-reader saw them "contra the docs"), from 0 to EPOCH_MAX (9999-12-31T23:59:59.999Z). So
# seconds cover 1970-01-01 .. 5138-11-16 and milliseconds 1973-03-03 .. 9999-12-31; anything else
# (negative, or beyond 9999) does not fit the type and the line is a reject, never an overflow.

MS_THRESHOLD = 100_000_000_000
EPOCH_MAX = 253_402_300_799_999
# What Spark's try_cast of a string to an integer accepts (checked against Spark by tests/test_line_rules.py):
# ASCII digits with an optional sign, trimmed of ASCII control characters and spaces.
NUMBER_PATTERN = r"[\x00-\x20\x7f]*([+-]?[0-9]+)[\x00-\x20\x7f]*"
TYPE_BOUNDS: dict[str, tuple[int, int]] = {
    "int": (-(2**31), 2**31 - 1),
    "long": (-(2**63), 2**63 - 1),
    "epoch": (0, EPOCH_MAX),
}
# Ranges checked on data rows (log-status OK or '-') only.
RANGES: dict[str, tuple[int, int]] = {
    "srcport": (0, 65535),
    "dstport": (0, 65535),
    "protocol": (0, 255),
    "tcp-flags": (0, 65535),
    "traffic-path": (0, 255),
    "packets": (0, 2**62),
    "bytes": (0, 2**62),
}
ENUMS: dict[str, tuple[str, ...]] = {"action": ACTIONS, "log-status": LOG_STATUSES}
UNDECODABLE_MARK = "\ufffd"  # what a byte that is not UTF-8 decodes to
# Transit Gateway flow logs write 6 in `version` whatever fields their format has; these are the fields
# a TGW flow log can have (AWS: "Transit Gateway Flow Log records"). A format made only of them may be
# a TGW log's, so its lines may also say 6.
TGW_VERSION = 6
TGW_FIELDS = frozenset(
    [
        "version", "resource-type", "account-id", "tgw-id", "tgw-attachment-id", "tgw-src-vpc-account-id",
        "tgw-dst-vpc-account-id", "tgw-src-vpc-id", "tgw-dst-vpc-id", "tgw-src-subnet-id", "tgw-dst-subnet-id",
        "tgw-src-eni", "tgw-dst-eni", "tgw-src-az-id", "tgw-dst-az-id", "tgw-pair-attachment-id", "srcaddr",
        "dstaddr", "srcport", "dstport", "protocol", "packets", "bytes", "start", "end", "log-status", "type",
        "packets-lost-no-route", "packets-lost-blackhole", "packets-lost-mtu-exceeded",
        "packets-lost-ttl-expired", "tcp-flags", "region", "flow-direction", "pkt-src-aws-service",
        "pkt-dst-aws-service",
    ]
)  # fmt: skip
_SQL_TYPE = {"int": "int", "long": "bigint", "epoch": "bigint"}
_NUMBER = re.compile(NUMBER_PATTERN)
_NUMBER_SPARK = f"^(?:{NUMBER_PATTERN})\\z"  # Java regex; \z: `$` would also match before a final U+2028


@dataclass(frozen=True)
class Reason:
    """A reason text with at most one slot, ``{}``, for the offending value: rendered in Python and in Spark."""

    template: str

    def text(self, value: object = "") -> str:
        return self.template.replace("{}", str(value))

    def column(self, value: Column | None = None) -> Column:
        before, slot, after = self.template.partition("{}")
        if not slot or value is None:
            return F.lit(self.template)
        return F.concat(F.lit(before), value.cast("string"), F.lit(after))


@dataclass(frozen=True)
class SparkLine:
    """What a rule sees of a line in Spark: the column holding each field's raw text (null for '-'),
    typed values, and flags."""

    raw_name: Callable[[Field], str]
    typed: Mapping[str, Column]  # by AWS name
    data_row: Column
    undecodable: Column


# A rule's Python check, bound to a format's token positions:
# (line, tokens, data row?, numbers parsed so far by position) -> reason or None.
PyCheck = Callable[[str, list[str], bool, dict[int, int]], "str | None"]


def parse_integer(raw: str) -> int | None:
    """The integer Spark's try_cast reads from `raw` (any size), or None when `raw` is not a number."""
    if len(raw) < 19 and raw.isdigit() and raw.isascii():  # the usual case, without the regex
        return int(raw)
    m = _NUMBER.fullmatch(raw)
    if not m:
        return None
    digits = m.group(1)
    # Far beyond any type (and int() of thousands of digits raises in Python >= 3.11): a stand-in that is too big.
    if len(digits.lstrip("+-").lstrip("0")) > 25:
        return -(10**25) if digits.startswith("-") else 10**25
    return int(digits)


@dataclass(frozen=True)
class FieldCount:
    """The line must have exactly as many tokens as the format has fields."""

    n_fields: int

    @property
    def reason(self) -> Reason:
        return Reason(f"expected {self.n_fields} fields, found {{}}")

    def column(self, n_tokens: Column) -> Column:
        return F.when(n_tokens != self.n_fields, self.reason.column(n_tokens))

    def check(self, tokens: Sequence[str]) -> str | None:
        return None if len(tokens) == self.n_fields else self.reason.text(len(tokens))


@dataclass(frozen=True)
class Number:
    """A numeric field: a number; that fits its type (int, long, or a timestamp in 1970-9999); within
    its range on data rows."""

    field: Field
    bounds: tuple[int, int] | None  # RANGES, data rows only

    @property
    def not_a_number(self) -> Reason:
        return Reason(f"{self.field.aws}: not a number '{{}}'")

    @property
    def does_not_fit(self) -> Reason:
        if self.field.kind == "epoch":
            return Reason(
                f"{self.field.aws}: {{}} is not a time in 1970-9999 "
                f"(epoch seconds, or milliseconds above {MS_THRESHOLD})"
            )
        return Reason(f"{self.field.aws}: {{}} does not fit a {32 if self.field.kind == 'int' else 64}-bit integer")

    @property
    def outside(self) -> Reason:
        assert self.bounds is not None
        return Reason(f"{self.field.aws}: {{}} outside {self.bounds[0]}-{self.bounds[1]}")

    # Spark
    def number(self, raw_name: str) -> Column:
        return F.expr(f"try_cast(`{raw_name}` as {_SQL_TYPE[self.field.kind]})")

    def _fits(self, num: Column) -> Column:
        if self.field.kind == "epoch":
            return F.coalesce(num.between(*TYPE_BOUNDS["epoch"]), F.lit(False))
        return num.isNotNull()  # try_cast gives null for a number beyond the type

    def typed(self, raw_name: str) -> Column:
        """The field's value: the number, or a timestamp (null when it does not fit: never an overflow)."""
        num = self.number(raw_name)
        if self.field.kind != "epoch":
            return num
        fits = self._fits(num)
        return F.when(fits & (num > MS_THRESHOLD), F.timestamp_millis(num)).when(fits, F.timestamp_seconds(num))

    def column(self, line: SparkLine) -> Column:
        name = line.raw_name(self.field)
        raw, num = F.col(name), self.number(name)
        out = (
            F.when(raw.isNull(), F.lit(None))
            .when(num.isNull() & ~raw.rlike(_NUMBER_SPARK), self.not_a_number.column(raw))
            .when(~self._fits(num), self.does_not_fit.column(raw))
        )
        if self.bounds is not None:
            lo, hi = self.bounds
            out = out.when(line.data_row & ((num < lo) | (num > hi)), self.outside.column(raw))
        return out

    # Python
    def bind(self, pos: Mapping[str, int]) -> PyCheck:
        i = pos[self.field.aws]
        lo, hi = TYPE_BOUNDS[self.field.kind]
        bounds = self.bounds
        not_a_number, does_not_fit = self.not_a_number, self.does_not_fit
        outside = self.outside if bounds else None

        def check(line: str, tokens: list[str], data_row: bool, values: dict[int, int]) -> str | None:
            raw = tokens[i]
            if raw == "-":
                return None
            if len(raw) < 10 and raw.isdigit() and raw.isascii():  # the usual case, inline
                num: int | None = int(raw)
            else:
                num = parse_integer(raw)
            if num is None:
                return not_a_number.text(raw)
            if not lo <= num <= hi:
                return does_not_fit.text(raw)
            values[i] = num
            if bounds and outside and data_row and not bounds[0] <= num <= bounds[1]:
                return outside.text(raw)
            return None

        return check


@dataclass(frozen=True)
class OneOf:
    """A field with a fixed set of values (action, log-status); '-' is allowed."""

    aws: str
    allowed: tuple[str, ...]

    @property
    def reason(self) -> Reason:
        return Reason(f"{self.aws}: unknown value '{{}}'")

    def column(self, line: SparkLine) -> Column:
        v = line.typed[self.aws]
        return F.when(v.isNotNull() & ~v.isin(*self.allowed), self.reason.column(v))

    def bind(self, pos: Mapping[str, int]) -> PyCheck:
        i, allowed, reason = pos[self.aws], frozenset(self.allowed), self.reason

        def check(line: str, tokens: list[str], data_row: bool, values: dict[int, int]) -> str | None:
            v = tokens[i]
            return None if v == "-" or v in allowed else reason.text(v)

        return check


@dataclass(frozen=True)
class Version:
    """`version` must be the version of the format: AWS writes the highest version among the format's
    fields (2 for the default format), and 6 in Transit Gateway logs (a format made only of TGW fields
    may be one). With field names the catalogue does not know (a newer version), only a lower value
    is wrong."""

    expected: int
    also: int | None  # TGW_VERSION when the format may be a Transit Gateway log's
    open_ended: bool  # unknown field names: any version >= expected

    @classmethod
    def of_format(cls, names: Sequence[str]) -> Version:
        known = [BY_AWS[n] for n in names if n in BY_AWS]
        expected = max((f.version for f in known), default=2)
        open_ended = len(known) < len(names)
        tgw = not open_ended and set(names) <= TGW_FIELDS and expected != TGW_VERSION
        return cls(expected, TGW_VERSION if tgw else None, open_ended)

    @property
    def reason(self) -> Reason:
        also = f", or {self.also} for a Transit Gateway log" if self.also is not None else ""
        return Reason(f"version: {{}} does not fit the format (version {self.expected}{also})")

    def column(self, line: SparkLine) -> Column:
        v = line.typed["version"]
        if self.open_ended:
            bad = v < self.expected
        else:
            bad = ~v.isin(self.expected, *([self.also] if self.also is not None else []))
        return F.when(v.isNotNull() & bad, self.reason.column(v))

    def bind(self, pos: Mapping[str, int]) -> PyCheck:
        i, reason, expected, open_ended = pos["version"], self.reason, self.expected, self.open_ended
        accepted = {expected} | ({self.also} if self.also is not None else set())

        def check(line: str, tokens: list[str], data_row: bool, values: dict[int, int]) -> str | None:
            v = values.get(i)  # only a number that fits: the Number rule has reported the others
            if v is None or (v >= expected if open_ended else v in accepted):
                return None
            return reason.text(v)

        return check


@dataclass(frozen=True)
class Undecodable:
    """A line with bytes that are not UTF-8 (decoded as U+FFFD)."""

    reason: Reason = Reason("undecodable bytes (not UTF-8)")

    def column(self, line: SparkLine) -> Column:
        return F.when(line.undecodable, self.reason.column())

    def bind(self, pos: Mapping[str, int]) -> PyCheck:
        text = self.reason.text()

        def check(line: str, tokens: list[str], data_row: bool, values: dict[int, int]) -> str | None:
            return text if UNDECODABLE_MARK in line else None

        return check


Rule = Number | OneOf | Version | Undecodable


def rules_for(names: Sequence[str]) -> list[Rule]:
    """The rule table of one format (field names in any order; unknown names allowed), in report order."""
    present = set(names)
    rules: list[Rule] = [Number(f, RANGES.get(f.aws)) for f in FIELDS if f.aws in present and f.kind != "string"]
    rules += [OneOf(aws, allowed) for aws, allowed in ENUMS.items() if aws in present]
    if "version" in present:
        rules.append(Version.of_format(names))
    rules.append(Undecodable())
    return rules


def field_count_reason(n_tokens: Column, n_fields: int) -> Column:
    """Spark: the field-count reason of a text line with `n_tokens` tokens, or null."""
    return FieldCount(n_fields).column(n_tokens)


def _finish(
    staged: DataFrame, present: Sequence[Field], extras: Sequence[str], count_reason: Column | None
) -> DataFrame:
    """Typed columns, validation (the rule table, `rules_for`) and event_date from a frame with
    `__raw_<column>` strings."""
    status = F.col("__raw_log_status") if any(f.column == "log_status" for f in present) else F.lit(None)
    data_row = F.coalesce(status, F.lit(DATA_STATUS)) == DATA_STATUS
    table = rules_for([f.aws for f in present] + list(extras))
    numbers = {r.field.aws: r for r in table if isinstance(r, Number)}
    typed: dict[str, Column] = {}
    for f in present:
        raw_name = f"__raw_{f.column}"
        typed[f.column] = numbers[f.aws].typed(raw_name) if f.aws in numbers else F.col(raw_name)
    undecodable = F.col("__raw").contains(UNDECODABLE_MARK)
    if "__dirty" in staged.columns:  # text: only lines of non-ASCII files can hold U+FFFD
        undecodable = F.col("__dirty") & undecodable
    line = SparkLine(
        raw_name=lambda f: f"__raw_{f.column}",
        typed={f.aws: typed[f.column] for f in present},
        data_row=data_row,
        undecodable=undecodable,
    )
    reason = F.concat_ws("; ", *[rule.column(line) for rule in table])
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
    """Transform: line rows of objects of one format -> the same rows, parsed.

    Input columns: `source_file`, `source_line` (1-based), `line` (the line without its newline), and
    optionally `dirty` (the line holds a CR, a tab or a non-ASCII character; computed here when absent)
    and `problem` (non-null on the one row standing for a broken object: the reason, with the last
    good line as `source_line`; such a row becomes kind BROKEN with the reason in raw_line).
    Output columns: kind, reason (null unless the line is rejected), raw_line, every flow_records column.
    """
    positions = {name: i for i, name in enumerate(fmt.names)}
    present = [f for f in FIELDS if f.aws in positions]
    extras = [n for n in fmt.names if n not in BY_AWS]
    n_fields = len(fmt.names)

    def transform(lines: DataFrame) -> DataFrame:
        line = F.col("line")
        # Only "dirty" lines (CR, tab or any non-ASCII character: BOM, no-break space, U+FFFD) pay for
        # translate() and the U+FFFD check; the reader knows which they are from its byte scan. Without it:
        # contains(), not instr() (instr counts characters and compares at every position).
        if "dirty" in lines.columns:
            dirty = F.col("dirty")
        else:
            dirty = (F.length(line) != F.octet_length(line)) | line.contains("\r") | line.contains("\t")
        problem = F.col("problem") if "problem" in lines.columns else F.lit(None).cast("string")
        clean = F.when(dirty, _clean(line)).otherwise(F.trim(line))
        kind = (
            F.when(problem.isNotNull(), F.lit(BROKEN))
            .when(_is_header(clean, fmt), F.lit(HEADER))
            .when(clean == "", F.lit(BLANK))
            .otherwise(F.lit(RECORD))
        )
        tokenised = lines.select(
            F.col(SOURCE_FILE),
            F.col(SOURCE_LINE).cast("long").alias(SOURCE_LINE),
            F.coalesce(problem, line).alias("__raw"),
            F.coalesce(dirty, F.lit(False)).alias("__dirty"),
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
        count_reason = field_count_reason(n_tokens, n_fields)
        return _finish(staged, present, extras, count_reason)

    return transform


def parse_parquet(raw: DataFrame, source_file: Column | None = None) -> DataFrame:
    """Transform: AWS Parquet deliveries (underscore column names) -> the same shape as parse_text.

    Columns are matched by name; a value that does not fit its type is a reject with a reason, as
    for text. A row's position in its file is its line number; its raw line is the row as JSON.
    `source_file`: the object's name as a Column over `_metadata.file_path` (which is a URI: a space is
    %20), by default that URI as it is.
    """
    present = [BY_COLUMN[c.lower()] for c in raw.columns if c.lower() in BY_COLUMN]
    extras = [c for c in raw.columns if c.lower() not in BY_COLUMN]
    cols = [
        (F.col("_metadata.file_path") if source_file is None else source_file).alias(SOURCE_FILE),
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


class LineRules:
    """ingest's validation of one text line, in Python, for one file format: the rule table of the
    format (`rules_for`, the same one `_finish` turns into Spark Columns), bound to token positions."""

    def __init__(self, fmt: TextFormat) -> None:
        pos = {name: i for i, name in enumerate(fmt.names)}
        self.n_fields = len(fmt.names)
        self.field_count = FieldCount(self.n_fields)
        self.checks = [rule.bind(pos) for rule in rules_for(fmt.names)]
        self.i_status = pos.get("log-status")  # positions tag's counting reads
        self.i_dstport = pos.get("dstport")
        self.i_protocol = pos.get("protocol")
        self.i_bytes = pos.get("bytes")

    def check(self, line: str, tokens: list[str]) -> tuple[str | None, dict[int, int]]:
        """(reason or None, {token position: number}) for a record line."""
        if len(tokens) != self.n_fields:
            return self.field_count.check(tokens), {}
        data_row = is_data_status(tokens[self.i_status] if self.i_status is not None else None)
        values: dict[int, int] = {}
        reasons = []
        for check in self.checks:
            why = check(line, tokens, data_row, values)
            if why is not None:
                reasons.append(why)
        return ("; ".join(reasons) if reasons else None), values


def split_tokens(text: str) -> list[str]:
    """A decoded line's tokens as the Spark parse sees them (_clean then _split): [] for a blank line."""
    if "\t" in text or "\r" in text or "\u00a0" in text or "\ufeff" in text:
        text = text.translate(_ODD)
    clean = text.strip(" ")
    if not clean:
        return []
    return [t for t in clean.split(" ") if t] if "  " in clean else clean.split(" ")
