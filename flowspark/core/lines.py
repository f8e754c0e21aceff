"""Flow log lines to typed rows, in Arrow: the line rules, written once.

A text object is read by `flowspark.edges.sources` (streamed, decompressed in chunks, cut into batches
of lines with exact line numbers) on the executors; this module turns each batch into rows of the
canonical parsed schema (`PARSED`) with pyarrow's compute kernels and numpy, never Python per line:

- line 1 of an object decides its format (`detect_format`): a header of field names in any order and any
  field set of the catalogue (flowspark.core.schema), else the default format (or `--input-format`);
- every other line is blank, or a record: split on runs of spaces (after BOM, CR, tab and no-break space
  become spaces), checked against the rule table below and cast to its type, or rejected with the reasons
  it breaks, joined by "; ";
- the reader adds one OBJECT row per object: its lines, headers, blank lines, unknown field names, and
  the reason it could not be read to its end (a broken object), if any.

Parquet deliveries (`parse_parquet`) take the same rules after their columns are matched by name.
Tag's single-file mode (`flowspark tag --flow-log`, no Spark) counts the same batches, so ingest and tag
can never disagree on a line.

The rule table, in the order reasons are reported (`rules_for`): the fields of the flow key (a format
whose header misspells one, `srcadr` for `srcaddr`, has its data lines rejected naming both, never rows
with a NULL in the key; account-id and region come from the object's AWS name when the format lacks
them); each numeric field of the format in catalogue order (not a number / does not fit its type /
outside its range on data rows), then action and log-status (a known value), then the version of the
format, then undecodable bytes. A wrong field count replaces all of them: nothing else is checked on such
a line.

Numbers: ASCII digits with an optional sign, leading and trailing ASCII control characters ignored (as
Spark's casts read them); int fields must fit 32 bits, long fields 64. Timestamps (start, end): epoch
seconds, or milliseconds when above MS_THRESHOLD (flowlogs-reader saw them "contra the docs"), from 0 to
EPOCH_MAX (9999-12-31T23:59:59.999Z): anything else does not fit the type, never an overflow.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from flowspark.core.schema import (
    ACTIONS,
    BY_AWS,
    DATA_STATUS,
    DEFAULT_FORMAT,
    EVENT_DATE,
    EXTRA_FIELDS_COLUMN,
    FIELDS,
    LOG_STATUSES,
    PERCENT_ENCODED,
    SOURCE_FILE,
    SOURCE_LINE,
    WEIGHT,
    Field,
)

# Row kinds of the parsed stream: a valid record, a rejected line, the summary of one object.
RECORD, REJECT, OBJECT = "record", "reject", "object"

_NAME = r"^[a-z][a-z0-9_-]*$"

MS_THRESHOLD = 100_000_000_000
EPOCH_MAX = 253_402_300_799_999
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
# What a number may be wrapped in (Spark's casts trim these): ASCII control characters and the space.
_TRIMMED = "".join(chr(c) for c in range(0x21)) + "\x7f"
_ODD = ("\ufeff", "\r", "\t", "\u00a0")  # become spaces before a line is split
_FILE_DAY = re.compile(r"_(\d{8})T\d{4}Z_|/eventDay=(\d{8})/")  # AWS's object name; Security Lake's folder
# An AWS object's name: {account}_vpcflowlogs_{region}_{flow log id}_{YYYYMMDDTHHmmZ}_{hash}.log.gz (or
# .log.parquet), in the plain and the Hive-compatible layouts alike.
_FILE_ORIGIN = re.compile(r"(?:^|/)(\d{12})_vpcflowlogs_([a-z]{2}(?:-[a-z]+)+-\d+)_[^/]*$")
# The fields of the flow key (flowspark.core.dedup.DEFAULT_KEY; account-id comes from the object's name when
# the format lacks it). A format may leave them out (AWS's own NAT examples have no ports and no start), but a
# header whose unknown name is one of them misspelt would give rows with a NULL in the key, merged with each
# other in flows: the data lines of such an object are rejects instead, naming both.
KEY_FIELDS = ("interface-id", "tgw-attachment-id", "srcaddr", "dstaddr", "srcport", "dstport", "protocol", "start")


# ------------------------------------------------------------------ the parsed schema

_ARROW_TYPES = {"int": pa.int32(), "long": pa.int64(), "string": pa.string(), "epoch": pa.timestamp("us", tz="UTC")}
# Object rows (kind OBJECT) only: lines, header lines and blank lines read; field names of the object's
# header the catalogue does not know (space-separated). The other columns of an object row: reason (why
# it could not be read to its end, or null), source_line (the last complete line).
OBJECT_LINES, OBJECT_HEADERS, OBJECT_BLANK, OBJECT_UNKNOWN = "_lines", "_headers", "_blank", "_unknown_fields"

PARSED = pa.schema(
    [
        ("kind", pa.string()),
        ("reason", pa.string()),
        ("raw_line", pa.string()),
        *[(f.column, _ARROW_TYPES[f.kind]) for f in FIELDS],
        (EXTRA_FIELDS_COLUMN, pa.map_(pa.string(), pa.string())),
        (SOURCE_FILE, pa.string()),
        (SOURCE_LINE, pa.int64()),
        (EVENT_DATE, pa.date32()),
        (OBJECT_LINES, pa.int64()),
        (OBJECT_HEADERS, pa.int64()),
        (OBJECT_BLANK, pa.int64()),
        (OBJECT_UNKNOWN, pa.string()),
        (WEIGHT, pa.int64()),
    ]
)
RECORD_COLUMNS = [f.column for f in FIELDS] + [EXTRA_FIELDS_COLUMN, SOURCE_FILE, SOURCE_LINE, EVENT_DATE]


def parsed_ddl() -> str:
    """PARSED as a Spark DDL string (the schema mapInArrow declares)."""
    spark_types = {"int": "int", "long": "bigint", "string": "string", "epoch": "timestamp"}
    cols = ["kind string", "reason string", "raw_line string"]
    cols += [f"`{f.column}` {spark_types[f.kind]}" for f in FIELDS]
    cols += [
        f"{EXTRA_FIELDS_COLUMN} map<string,string>",
        f"{SOURCE_FILE} string",
        f"{SOURCE_LINE} bigint",
        f"{EVENT_DATE} date",
        f"{OBJECT_LINES} bigint",
        f"{OBJECT_HEADERS} bigint",
        f"{OBJECT_BLANK} bigint",
        f"{OBJECT_UNKNOWN} string",
        f"{WEIGHT} bigint",
    ]
    return ", ".join(cols)


# ------------------------------------------------------------------ formats


@dataclass(frozen=True)
class TextFormat:
    """The layout of an object: field names in file order, and whether line 1 is a header."""

    names: tuple[str, ...]
    has_header: bool

    @property
    def unknown(self) -> tuple[str, ...]:
        """Field names the catalogue does not know (their values go to extra_fields)."""
        return tuple(n for n in self.names if n not in BY_AWS)


def split_tokens(text: str) -> list[str]:
    """A decoded line's tokens as the parse sees them: [] for a blank line."""
    for odd in _ODD:
        if odd in text:
            text = text.replace(odd, " ")
    clean = text.strip(" ")
    if not clean:
        return []
    return [t for t in clean.split(" ") if t] if "  " in clean else clean.split(" ")


def detect_format(first_line: str, default: Sequence[str] = DEFAULT_FORMAT) -> TextFormat:
    """An object's format from its first line: a header of field names, or `default` when there is none.

    A header is a line whose tokens all look like field names and at least one is a known field; a data
    line always has numbers, addresses or '-' in it. Underscored names (Parquet style) are accepted.
    Unknown names are kept: their values land in `extra_fields`.
    """
    tokens = split_tokens(first_line)
    if tokens and all(re.match(_NAME, t) for t in tokens) and any(t.replace("_", "-") in BY_AWS for t in tokens):
        return TextFormat(tuple(t.replace("_", "-") for t in tokens), True)
    return TextFormat(tuple(default), False)


def foreign_reason(first_line: str, fmt: TextFormat) -> str | None:
    """Why an object is not a flow log of its format, judged by its first line (None: it may be one).

    A first line that is neither a header nor a record of the format (another field count) means another
    kind of object (another service's log, a CSV, JSON): its every line would be a reject. A blank first
    line is left to the line rules."""
    if fmt.has_header or not first_line.strip():
        return None
    found = len(split_tokens(first_line))
    if found == len(fmt.names):
        return None
    return (
        f"not a flow log of this format: line 1 is not a header and has {found} fields, the format "
        f"{len(fmt.names)} (another kind of object; a header-less export needs --format)"
    )


# ------------------------------------------------------------------ the rule table


@dataclass(frozen=True)
class Number:
    """A numeric field: a number; that fits its type (int, long, or a timestamp in 1970-9999); within its
    range on data rows (RANGES)."""

    field: Field
    bounds: tuple[int, int] | None

    def reasons(self, raw: pa.Array, num: Any, data_row: pa.Array) -> pa.Array | None:
        aws = self.field.aws
        if self.field.kind == "epoch":
            unfit = f" is not a time in 1970-9999 (epoch seconds, or milliseconds above {MS_THRESHOLD})"
        else:
            unfit = f" does not fit a {32 if self.field.kind == 'int' else 64}-bit integer"
        out = _where(num.not_a_number, lambda: _concat(f"{aws}: not a number '", raw, "'"))
        out = _where(num.does_not_fit, lambda: _concat(f"{aws}: ", raw, unfit), out)
        if self.bounds is not None:
            lo, hi = self.bounds
            outside = pc.and_(data_row, pc.or_(pc.less(num.value, lo), pc.greater(num.value, hi)))
            out = _where(pc.fill_null(outside, False), lambda: _concat(f"{aws}: ", raw, f" outside {lo}-{hi}"), out)
        return out


def _where(mask: pa.Array, text: Any, otherwise: pa.Array | None = None) -> pa.Array | None:
    """text() where mask is true, else `otherwise` (None: no reason in any row). The reason texts are only
    made for a batch in which some row fails (the usual batch has none)."""
    if not pc.any(mask).as_py():
        return otherwise
    made = pc.if_else(mask, text(), None)
    return made if otherwise is None else pc.if_else(mask, made, otherwise)


@dataclass(frozen=True)
class OneOf:
    """A field with a fixed set of values (action, log-status); '-' is allowed."""

    aws: str
    allowed: tuple[str, ...]

    def reasons(self, raw: pa.Array) -> pa.Array | None:
        bad = pc.and_(pc.is_valid(raw), pc.invert(pc.is_in(raw, value_set=pa.array(self.allowed))))
        return _where(bad, lambda: _concat(f"{self.aws}: unknown value '", raw, "'"))


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

    def reasons(self, version: pa.Array) -> pa.Array | None:
        if self.open_ended:
            bad = pc.less(version, self.expected)
        else:
            accepted = [self.expected, *([self.also] if self.also is not None else [])]
            bad = pc.invert(pc.is_in(version, value_set=pa.array(accepted, pa.int64())))
        also = f", or {self.also} for a Transit Gateway log" if self.also is not None else ""
        text = f" does not fit the format (version {self.expected}{also})"
        return _where(pc.fill_null(bad, False), lambda: _concat("version: ", version, text))


def nearest_field(name: str) -> str | None:
    """The known field name closest to an unknown one ('srcadr' -> 'srcaddr'), or None."""
    import difflib

    near = difflib.get_close_matches(name, [f.aws for f in FIELDS], n=1, cutoff=0.75)
    return near[0] if near else None


@dataclass(frozen=True)
class KeyFields:
    """No field of the flow key (KEY_FIELDS) may be missing because the header misspelt it: an unknown name
    whose nearest known name is a missing key field rejects every data row, naming both."""

    text: str

    @classmethod
    def of_format(cls, names: Sequence[str]) -> KeyFields | None:
        present = set(names)
        misspelt = [(n, near) for n in names if n not in BY_AWS and (near := nearest_field(n)) in KEY_FIELDS]
        misspelt = [(n, near) for n, near in misspelt if near not in present]
        if not misspelt:
            return None
        pairs = ", ".join(f"{n} (not a flow log field) for {near}" for n, near in misspelt)
        return cls(f"the format has {pairs}: a field of the flow key would be empty; fix the header or --input-format")

    def reasons(self, data_row: pa.Array) -> pa.Array | None:
        return _where(data_row, lambda: pa.scalar(self.text))


Rule = KeyFields | Number | OneOf | Version


def rules_for(names: Sequence[str], version: bool = True) -> list[Rule]:
    """The rule table of one format (field names in any order; unknown names allowed), in report order
    (undecodable bytes come last, after these). version=False leaves out the format's version rule (OCSF
    events: their fields are not a flow log's format, each record keeps its own version)."""
    present = set(names)
    key = KeyFields.of_format(names)
    rules: list[Rule] = [key] if key is not None else []
    rules += [Number(f, RANGES.get(f.aws)) for f in FIELDS if f.aws in present and f.kind != "string"]
    rules += [OneOf(aws, allowed) for aws, allowed in ENUMS.items() if aws in present]
    if "version" in present and version:
        rules.append(Version.of_format(names))
    return rules


# ------------------------------------------------------------------ numbers in Arrow


@dataclass
class _Numbers:
    value: pa.Array  # int64, null where the token is '-', not a number or does not fit
    not_a_number: pa.Array  # bool, no nulls
    does_not_fit: pa.Array  # bool, no nulls


def _parse_numbers(raw: pa.Array, kind: str) -> _Numbers:
    """Tokens (null for '-') as integers of a field kind, with why each one that is not one fails."""
    n = len(raw)
    lo, hi = TYPE_BOUNDS[kind]
    whole_int64 = kind == "long"
    # The usual column: every token a plain integer. Arrow's cast reads decimal digits with an optional '-'
    # (a subset of what the rule accepts, with the same value) and also hex ('0x1F'), which the rule does not.
    hexed = pc.any(pc.match_substring(raw, "x", ignore_case=True)).as_py()
    try:
        value = None if hexed else pc.cast(raw, pa.int64())
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        value = None
    if value is not None:
        no = pa.array(np.zeros(n, dtype=bool))
        if whole_int64:
            return _Numbers(value, no, no)
        in_type = pc.fill_null(pc.and_(pc.greater_equal(value, lo), pc.less_equal(value, hi)), True)
        if pc.all(in_type).as_py():
            return _Numbers(value, no, no)
        return _Numbers(pc.if_else(in_type, value, pa.nulls(n, pa.int64())), no, pc.invert(in_type))
    trimmed = pc.utf8_trim(raw, _TRIMMED)
    is_num = pc.fill_null(pc.match_substring_regex(trimmed, r"^[+-]?[0-9]+$"), False)
    present = pc.is_valid(raw)
    not_a_number = pc.and_(present, pc.invert(is_num))
    neg = pc.fill_null(pc.starts_with(trimmed, "-"), False)
    digits = pc.utf8_ltrim(pc.utf8_ltrim(trimmed, "+-"), "0")
    ndig = pc.fill_null(pc.utf8_length(digits), 0)
    limit = pc.if_else(neg, "9223372036854775808", "9223372036854775807")
    too_long = pc.or_(pc.greater(ndig, 19), pc.and_(pc.equal(ndig, 19), pc.greater(digits, limit)))
    fits64 = pc.and_(is_num, pc.invert(pc.fill_null(too_long, False)))
    text = pc.if_else(pc.equal(ndig, 0), "0", digits)
    text = pc.if_else(neg, pc.binary_join_element_wise("-", text, ""), text)
    value = pc.cast(pc.if_else(fits64, text, "0"), pa.int64())
    in_type = pc.and_(fits64, pc.and_(pc.greater_equal(value, lo), pc.less_equal(value, hi)))
    does_not_fit = pc.and_(is_num, pc.invert(in_type))
    value = pc.if_else(in_type, value, pa.nulls(n, pa.int64()))
    return _Numbers(value, not_a_number, does_not_fit)


def _typed(value: pa.Array, kind: str) -> pa.Array:
    """An int64 array (null where there is no value) in its catalogue type: int32, int64, or a UTC
    timestamp (epoch seconds, or milliseconds above MS_THRESHOLD)."""
    if kind == "int":
        return pc.cast(value, pa.int32())
    if kind == "long":
        return value
    micros = pc.if_else(
        pc.greater(value, MS_THRESHOLD), pc.multiply(value, 1_000), pc.multiply(value, 1_000_000)
    )
    return pc.cast(micros, pa.timestamp("us", tz="UTC"))


def _concat(before: str, value: pa.Array, after: str) -> pa.Array:
    return pc.binary_join_element_wise(before, pc.cast(value, pa.string()), after, "")


# ------------------------------------------------------------------ lines to rows


@dataclass
class Lines:
    """Complete lines of one or more objects of one format, in one buffer: what one parse takes. Batching
    the small objects of a task together (AWS writes one object per flow log and 5 or 10 minutes, often a
    few hundred lines) keeps the per-call cost of the kernels off each object."""

    buf: bytes  # the lines, each ending with "\n" (a header line is never in it)
    line_numbers: np.ndarray  # int64: each line's number in its object
    file_ids: np.ndarray  # int32: each line's object, an index into `files`
    files: list[str]  # the objects' canonical names (source_file)

    def blank_per_file(self, blank_lines: np.ndarray) -> np.ndarray:
        return np.bincount(self.file_ids[blank_lines], minlength=len(self.files))


def _clean(lines: pa.Array) -> pa.Array:
    """BOM, CR, tab and no-break space become spaces; then leading and trailing spaces go."""
    out = lines
    for odd in _ODD:
        if pc.any(pc.match_substring(out, odd)).as_py():
            out = pc.replace_substring(out, odd, " ")
    return pc.utf8_trim(out, " ")


def file_day(source_file: str) -> int | None:
    """The delivery day in an AWS object name (or the eventDay=YYYYMMDD folder of Security Lake's layout), as
    days since 1970-01-01 (None without one)."""
    import datetime as dt

    m = _FILE_DAY.search(source_file)
    if not m:
        return None
    ymd = m.group(1) or m.group(2)
    try:
        day = dt.date(int(ymd[:4]), int(ymd[4:6]), int(ymd[6:]))
    except ValueError:
        return None
    return (day - dt.date(1970, 1, 1)).days


def file_origin(source_file: str) -> tuple[str | None, str | None]:
    """(account-id, region) in an AWS object's name, or (None, None)."""
    m = _FILE_ORIGIN.search(source_file)
    return (m.group(1), m.group(2)) if m else (None, None)


def _from_names(lines: Lines, ids: np.ndarray, fmt: TextFormat) -> dict[str, pa.Array]:
    """account_id and region from each object's name, for a format without them (AWS's names carry both)."""
    out: dict[str, pa.Array] = {}
    for i, (aws, column) in enumerate((("account-id", "account_id"), ("region", "region"))):
        if aws in fmt.names:
            continue
        per_file = pa.array([file_origin(f)[i] for f in lines.files], pa.string())
        if per_file.null_count < len(per_file):
            out[column] = per_file.take(pa.array(ids))
    return out


def _event_date(start: pa.Array | None, fallback: np.ndarray | None, n: int) -> pa.Array:
    """The UTC date of `start`; records without one take their object's delivery day (`fallback`: days
    since 1970 per row, -1 where the object's name has none)."""
    if start is None:
        known = np.zeros(n, dtype=bool)
        days = np.zeros(n, dtype=np.int64)
    else:
        micros = pc.cast(pc.cast(start, pa.timestamp("us")), pa.int64())
        known = pc.is_valid(micros).to_numpy(zero_copy_only=False)
        days = pc.fill_null(micros, 0).to_numpy(zero_copy_only=False) // 86_400_000_000  # exact, integer
    if fallback is not None and not known.all():
        use = ~known & (fallback >= 0)
        days = np.where(use, fallback, days)
        known = known | use
    return pa.array(days.astype(np.int32), pa.date32(), mask=~known if not known.all() else None)


def _columns(
    raw: dict[str, pa.Array],
    names: Sequence[str],
    n: int,
    undecodable: pa.Array | None,
    fallback_day: np.ndarray | None,
    count_reason: pa.Array | None = None,
    version: bool = True,
) -> tuple[dict[str, pa.Array], pa.Array]:
    """Typed columns and the reason of each row from the raw strings of the format's fields (null for
    '-'; rows whose field count is wrong hold nulls and their `count_reason`)."""
    if "log-status" in raw:
        data_row = pc.equal(pc.fill_null(raw["log-status"], DATA_STATUS), DATA_STATUS)
    else:
        data_row = pa.array(np.ones(n, dtype=bool))
    typed: dict[str, pa.Array] = {}
    reasons: list[pa.Array | None] = []
    numbers: dict[str, _Numbers] = {}
    for rule in rules_for(names, version):
        if isinstance(rule, Number):
            num = _parse_numbers(raw[rule.field.aws], rule.field.kind)
            numbers[rule.field.aws] = num
            reasons.append(rule.reasons(raw[rule.field.aws], num, data_row))
        elif isinstance(rule, OneOf):
            reasons.append(rule.reasons(raw[rule.aws]))
        elif isinstance(rule, KeyFields):
            reasons.append(rule.reasons(data_row))
        else:
            reasons.append(rule.reasons(numbers["version"].value))
    if undecodable is not None:
        reasons.append(_where(undecodable, lambda: pa.scalar("undecodable bytes (not UTF-8)")))
    reason = pa.nulls(n, pa.string())
    for r in (r for r in reasons if r is not None):  # each row's reasons in table order, joined by "; " (not
        # binary_join's null_handling "skip": pyarrow 22-26 drops the rows whose values are all null)
        both = pc.binary_join_element_wise(reason, r, "; ")
        reason = pc.if_else(pc.is_null(reason), r, pc.if_else(pc.is_null(r), reason, both))
    if count_reason is not None:
        reason = pc.coalesce(count_reason, reason)
    for f in FIELDS:
        if f.aws not in raw:
            continue
        typed[f.column] = _typed(numbers[f.aws].value, f.kind) if f.aws in numbers else raw[f.aws]
        if f.aws in PERCENT_ENCODED:
            typed[f.column] = _percent_decoded(typed[f.column])
    typed[EVENT_DATE] = _event_date(typed.get("start"), fallback_day, n)
    return typed, reason


def _percent_decoded(values: pa.Array) -> pa.Array:
    """Percent-encoded UTF-8 (the tag values of version 11) decoded, each distinct value once (a column of tag
    values has few); bytes that are not UTF-8 once decoded become U+FFFD. Values without '%' are as written."""
    from urllib.parse import unquote

    if not pc.any(pc.fill_null(pc.match_substring(values, "%"), False)).as_py():
        return values
    coded = pc.dictionary_encode(values)
    plain = pa.array([unquote(v, errors="replace") for v in coded.dictionary.to_pylist()], pa.string())
    return pc.take(plain, coded.indices)


def _extra(raw: dict[str, pa.Array], unknown: Sequence[str], n: int) -> pa.Array:
    """extra_fields: a map of the unknown field names to their values (null for '-') on every row."""
    if not unknown:
        return pa.nulls(n, PARSED.field(EXTRA_FIELDS_COLUMN).type)
    k = len(unknown)
    offsets = pa.array(np.arange(0, (n + 1) * k, k, dtype=np.int32))
    keys = pa.array(np.tile(np.array(unknown, dtype=object), n), pa.string())
    # row-major items: (row r, name c) is value c of row r, at c * n + r of the names' arrays concatenated
    p = np.arange(n * k, dtype=np.int64)
    items = pc.take(pa.concat_arrays([raw[u].cast(pa.string()) for u in unknown]), pa.array((p % k) * n + p // k))
    return pa.MapArray.from_arrays(offsets, keys, items)


_NULLS: dict[tuple[int, str], pa.Array] = {}


def _null_column(n: int, f: pa.Field) -> pa.Array:
    """An all-null column, kept while batches come in one size (most columns of a format are absent, and
    a string column's null array still has n offsets): only the last size's, never a growing cache."""
    key = (n, f.name)
    col = _NULLS.get(key)
    if col is None:
        if _NULLS and next(iter(_NULLS))[0] != n:
            _NULLS.clear()
        col = _NULLS[key] = pa.nulls(n, f.type)
    return col


def _assemble(n: int, columns: dict[str, pa.Array]) -> pa.RecordBatch:
    cols = []
    for f in PARSED:
        col = columns.get(f.name)
        cols.append(_null_column(n, f) if col is None else col if col.type == f.type else col.cast(f.type))
    return pa.RecordBatch.from_arrays(cols, schema=PARSED)


def _rows(
    lines: Lines,
    at: np.ndarray,
    fmt: TextFormat,
    raw: dict[str, pa.Array],
    raw_text: Any,
    undecodable: pa.Array | None = None,
    count_reason: pa.Array | None = None,
    version: bool = True,
) -> pa.RecordBatch:
    """PARSED rows for the lines `at` (indexes into `lines`) from their fields' raw strings; raw_text(i) gives
    the text of the i-th of them (asked for rejected lines only)."""
    n = len(at)
    files = pa.array(lines.files, pa.string())
    ids = lines.file_ids[at]
    days = np.array([d if (d := file_day(f)) is not None else -1 for f in lines.files], dtype=np.int64)[ids]
    typed, reason = _columns(raw, fmt.names, n, undecodable, days, count_reason, version)
    valid = pc.is_null(reason)
    bad = np.flatnonzero(~valid.to_numpy(zero_copy_only=False))
    raw_line = None
    if len(bad):
        texts = np.full(n, None, dtype=object)
        texts[bad] = [raw_text(i) for i in bad]
        raw_line = pa.array(texts, pa.string())
    return _assemble(
        n,
        {
            **_from_names(lines, ids, fmt),
            **typed,
            "kind": pc.if_else(valid, RECORD, REJECT),
            "reason": reason,
            "raw_line": raw_line,
            EXTRA_FIELDS_COLUMN: _extra(raw, fmt.unknown, n),
            SOURCE_FILE: files.take(pa.array(ids)),
            SOURCE_LINE: pa.array(lines.line_numbers[at]),
        },
    )


def _general(
    lines: Lines, at: np.ndarray, starts: np.ndarray, ends: np.ndarray, fmt: TextFormat
) -> tuple[pa.RecordBatch, np.ndarray]:
    """The general path: lines `at` of any bytes at all (decoded with U+FFFD for what is not UTF-8), split
    on runs of spaces after BOM, CR, tab and no-break space become spaces. Returns the rows of the record
    lines and which of `at` are blank."""
    buf = lines.buf
    text = pa.array([buf[starts[i] : ends[i]].decode("utf-8", "replace") for i in at], pa.string())
    clean = _clean(text)
    blank = pc.equal(clean, "").to_numpy(zero_copy_only=False)
    keep = np.flatnonzero(~blank)
    text, clean = pc.take(text, pa.array(keep)), pc.take(clean, pa.array(keep))
    n = len(keep)
    multi = pc.match_substring(clean, "  ")
    if pc.any(multi).as_py():
        clean = pc.if_else(multi, pc.replace_substring_regex(clean, " +", " "), clean)
    tokens = pc.split_pattern(clean, " ")
    n_tokens = pc.list_value_length(tokens)
    n_fields = len(fmt.names)
    ok = pc.equal(n_tokens, n_fields)
    ok_idx = np.flatnonzero(ok.to_numpy(zero_copy_only=False))
    flat = pc.list_flatten(pc.take(tokens, pa.array(ok_idx)))
    raw: dict[str, pa.Array] = {}
    for i, name in enumerate(fmt.names):
        tok = pc.take(flat, pa.array(np.arange(i, len(flat), n_fields, dtype=np.int64)))
        tok = pc.if_else(pc.equal(tok, "-"), pa.nulls(len(tok), pa.string()), tok)
        raw[name] = _scatter(tok, ok_idx, n)  # rows with the wrong field count hold nulls
    count_reason = _where(pc.invert(ok), lambda: _concat(f"expected {n_fields} fields, found ", n_tokens, ""))
    undecodable = pc.fill_null(pc.match_substring(text, UNDECODABLE_MARK), False)
    rows = _rows(lines, at[keep], fmt, raw, lambda i: text[i].as_py(), undecodable, count_reason)
    return rows, at[blank]


def _odd_lines(arr: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """Indexes of the lines holding a byte other than printable ASCII and space (tab, CR, another control
    character, DEL, any byte of a non-ASCII character): those take the general path. Cheap when there
    are none (a few whole-buffer comparisons, no per-byte table)."""
    control = np.count_nonzero(arr < 32) != len(ends)  # newlines are the only control bytes of a clean chunk
    if not control and arr.max(initial=0) < 127:
        return np.empty(0, dtype=np.int64)
    odd = np.flatnonzero((arr >= 127) | ((arr < 32) & (arr != 10)))
    return np.unique(np.searchsorted(ends, odd))


def parse(lines: Lines, fmt: TextFormat) -> tuple[list[pa.RecordBatch], np.ndarray]:
    """Lines of objects of one format as PARSED batches (a RECORD row per valid record, a REJECT row per
    other record line; blank lines give no row) and the blank lines per object (counts by file id).

    The usual line (printable ASCII, the format's field count, single spaces) goes through Arrow's CSV
    reader and its fields are checked and cast column by column; every other line (odd bytes, blank, runs
    of spaces or a space at an end, another field count) through the general path. Both apply the same
    rules, so a line's verdict does not depend on its path."""
    import io

    import pyarrow.csv as pcsv

    buf = lines.buf
    arr = np.frombuffer(buf, dtype=np.uint8)
    ends = np.flatnonzero(arr == 10)
    n_lines = len(ends)
    if not n_lines:
        return [], np.zeros(len(lines.files), dtype=np.int64)
    starts = np.concatenate(([0], ends[:-1] + 1))
    general = np.zeros(n_lines, dtype=bool)
    general[_odd_lines(arr, ends)] = True
    csv_lines = np.flatnonzero(~general)
    if len(csv_lines) == n_lines:
        data = buf
    elif not len(csv_lines):
        data = b""
    else:  # the bytes of those lines, each with its newline, in runs of consecutive lines
        breaks = np.flatnonzero(np.diff(csv_lines) != 1)
        first, last = np.concatenate(([0], breaks + 1)), np.concatenate((breaks, [len(csv_lines) - 1]))
        data = b"".join(buf[starts[csv_lines[a]] : ends[csv_lines[b]] + 1] for a, b in zip(first, last))
    invalid: list[int] = []  # 1-based rows of `data` with another field count

    def wrong_count(row: Any) -> str:
        invalid.append(row.number)
        return "skip"

    names = [f"c{i}" for i in range(len(fmt.names))]
    out = []
    blank = np.empty(0, dtype=np.int64)
    if data:
        table = pcsv.read_csv(
            io.BytesIO(data),
            read_options=pcsv.ReadOptions(column_names=names, use_threads=False, block_size=len(data) + 1),
            parse_options=pcsv.ParseOptions(
                delimiter=" ", quote_char=False, escape_char=False, double_quote=False, newlines_in_values=False,
                ignore_empty_lines=False, invalid_row_handler=wrong_count,
            ),
            convert_options=pcsv.ConvertOptions(
                column_types={c: pa.string() for c in names}, null_values=["-"], strings_can_be_null=True,
                quoted_strings_can_be_null=False, check_utf8=False,
            ),
        )  # fmt: skip
        rows = csv_lines
        if invalid:
            wrong = np.asarray(invalid, dtype=np.int64) - 1
            general[csv_lines[wrong]] = True
            rows = np.delete(csv_lines, wrong)
        raw = {name: table.column(i).combine_chunks() for i, name in enumerate(fmt.names)}
        # an empty field (a blank line, a run of spaces, a space at an end) is no token: the general path
        empty = np.zeros(len(rows), dtype=bool)
        for col in raw.values():
            hit = pc.equal(col, "")
            if pc.any(hit).as_py():
                empty |= pc.fill_null(hit, False).to_numpy(zero_copy_only=False)
        if empty.any():
            general[rows[empty]] = True
            keep = pa.array(np.flatnonzero(~empty))
            raw = {k: v.take(keep) for k, v in raw.items()}
            rows = rows[~empty]
        if len(rows):
            out.append(_rows(lines, rows, fmt, raw, lambda i: buf[starts[rows[i]] : ends[rows[i]]].decode("ascii")))
    other = np.flatnonzero(general)
    if len(other):
        rows_other, blank = _general(lines, other, starts, ends, fmt)
        out.append(rows_other)
    return [b for b in out if b.num_rows], lines.blank_per_file(blank)


def _scatter(values: pa.Array, at: np.ndarray, n: int) -> pa.Array:
    """An array of n rows holding `values` at the positions `at`, null elsewhere."""
    if len(at) == n:
        return values
    where = np.full(n, -1, dtype=np.int64)
    where[at] = np.arange(len(at))
    return pc.take(values, pa.array(where, mask=where < 0))


@dataclass(frozen=True)
class ObjectSummary:
    """What the OBJECT row of one object says (see PARSED)."""

    source_file: str
    lines: int
    headers: int
    blank: int
    unknown: tuple[str, ...] = ()
    problem: str | None = None
    last_line: int = 0


def object_rows(objects: Sequence[ObjectSummary]) -> pa.RecordBatch:
    """One OBJECT row per object."""
    n = len(objects)
    return _assemble(
        n,
        {
            "kind": pa.array([OBJECT] * n, pa.string()),
            "reason": pa.array([o.problem for o in objects], pa.string()),
            SOURCE_FILE: pa.array([o.source_file for o in objects], pa.string()),
            SOURCE_LINE: pa.array([o.last_line for o in objects], pa.int64()),
            OBJECT_LINES: pa.array([o.lines for o in objects], pa.int64()),
            OBJECT_HEADERS: pa.array([o.headers for o in objects], pa.int64()),
            OBJECT_BLANK: pa.array([o.blank for o in objects], pa.int64()),
            OBJECT_UNKNOWN: pa.array([" ".join(o.unknown) or None for o in objects], pa.string()),
        },
    )


def in_zone(batch: pa.RecordBatch, zone: str) -> pa.RecordBatch:
    """The batch with its timestamps declared in `zone` (Spark's session time zone, which mapInArrow's
    declared schema carries): the same instants, other metadata."""
    if zone == "UTC":
        return batch
    target = pa.schema(
        [pa.field(f.name, pa.timestamp("us", tz=zone)) if pa.types.is_timestamp(f.type) else f for f in batch.schema]
    )
    return batch.cast(target)


# ------------------------------------------------------------------ Parquet deliveries


def _json(row: dict) -> str:
    return json.dumps(row, separators=(",", ":"), default=str)


def parquet_format(column_names: Sequence[str]) -> TextFormat:
    """The format of a Parquet delivery: its columns (AWS writes underscores), matched by name."""
    names = [c.lower().replace("_", "-") for c in column_names]
    return TextFormat(tuple(n if n in BY_AWS else c for n, c in zip(names, column_names)), True)


def parse_parquet_batch(
    batch: pa.RecordBatch,
    first_row: int,
    source_file: str,
    reject: pa.Array | None = None,
    weight: pa.Array | None = None,
    extra: pa.Array | None = None,
) -> pa.RecordBatch:
    """Rows of a Parquet delivery (columns matched by name, in any order) as PARSED rows, by the same rules
    as text: each value is read as the text it would be in a text delivery. A row's line number is its
    position in the file; the raw line of a rejected row is the row as JSON (null fields left out).
    OCSF events (core.ocsf_in) come with `reject` (a reason that rejects the row before any rule, null for
    none), `weight` (WEIGHT) and `extra` (extra_fields); their fields have no format version to check."""
    fmt = parquet_format(batch.schema.names)
    n = batch.num_rows
    raw: dict[str, pa.Array] = {}
    for name, col in zip(fmt.names, batch.columns):
        text = pc.utf8_trim(col if pa.types.is_string(col.type) else pc.cast(col, pa.string()), " ")
        # pandas-written files hold the strings 'None' and '-' for missing values
        missing = pc.fill_null(pc.is_in(text, value_set=pa.array(["-", "", "None"])), True)
        raw[name] = pc.if_else(missing, pa.nulls(n, pa.string()), text)
    lines = Lines(b"", np.arange(first_row, first_row + n, dtype=np.int64), np.zeros(n, dtype=np.int32), [source_file])

    def row_json(i: int) -> str:
        return _json({k: v for k, v in batch.slice(i, 1).to_pylist()[0].items() if v is not None})

    ocsf = weight is not None
    rows = _rows(lines, np.arange(n), fmt, raw, row_json, count_reason=reject, version=not ocsf)
    if not ocsf:
        return rows
    rows = rows.set_column(rows.schema.get_field_index(WEIGHT), WEIGHT, weight)
    return rows.set_column(rows.schema.get_field_index(EXTRA_FIELDS_COLUMN), EXTRA_FIELDS_COLUMN, extra)
