"""The line rules (flowspark.core.lines: one rule table, two derivations): any line becomes exactly one of
header / blank / record / reject and never raises, in Python (tag's single-file mode) and in Spark
(ingest's parse), and both give the same verdict, line for line. Plus the rules the table holds:
timestamps and numbers that do not fit their type, and the version of Transit Gateway formats."""

from __future__ import annotations

import datetime as dt
import gzip
from pathlib import Path

import pytest
from chispa import assert_df_equality
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from pyspark.sql import functions as F

from flowspark.core.lines import HEADER, RECORD, LineRules, TextFormat, parse_text, split_tokens
from flowspark.core.schema import DEFAULT_FORMAT
from flowspark.core.tags import FileScan, scan_lines

# Formats the generated lines are checked in: the default one (without a header: line 1 is a record),
# a v5 header, a format a Transit Gateway log may have (no tgw-* field), and one with a field name the
# catalogue does not know (a newer version).
V5_HEADER = (
    "version account-id interface-id srcaddr dstaddr srcport dstport protocol packets bytes start end "
    "action log-status tcp-flags traffic-path flow-direction"
)
TGW_HEADER = "version srcaddr dstaddr srcport dstport protocol packets bytes start end log-status"
NEWER_HEADER = "version srcport dstport protocol start end action future-field"
FORMATS = {
    "default": TextFormat(tuple(DEFAULT_FORMAT), False),
    "v5": TextFormat(tuple(V5_HEADER.split(" ")), True),
    "tgw": TextFormat(tuple(TGW_HEADER.split(" ")), True),
    "newer": TextFormat(tuple(NEWER_HEADER.split(" ")), True),
}
GOOD = {
    "version": "2",
    "account-id": "123456789012",
    "interface-id": "eni-a",
    "srcaddr": "10.0.0.1",
    "dstaddr": "10.0.0.2",
    "srcport": "49152",
    "dstport": "443",
    "protocol": "6",
    "packets": "10",
    "bytes": "840",
    "start": "1620140761",
    "end": "1620140821",
    "action": "ACCEPT",
    "log-status": "OK",
    "tcp-flags": "19",
    "traffic-path": "1",
    "flow-direction": "ingress",
    "future-field": "x",
}
# Tokens near the edges of the rules: types, ranges, timestamps, enumerations, what try_cast trims.
EDGE_TOKENS = [
    "-", "0", "+5", "-1", "-0", "0012", "65535", "65536", "255", "256", "2147483647", "2147483648",
    "9223372036854775807", "9223372036854775808", "-9223372036854775809", "1" * 40, "1.5", "1e3", "0x1F",
    "\uff11\uff12", "\u0661\u0662", "\x0b12", "12\x7f", "\x0012", "\x1f7\x1f", "12\x85", "12\u2028",
    "100000000000", "100000000001", "253402300799", "253402300799999", "253402300800000",
    "10000000000000000", "4611686018427387904", "4611686018427387905",
    "ACCEPT", "REJECT", "accept", "OK", "NODATA", "SKIPDATA", "ok", "\ufffd", "2", "3", "5", "6", "7",
    "version", "srcport",
]  # fmt: skip
SEPARATORS = [" ", "  ", "\t", "\u00a0", "\r", " \ufeff"]


def verdict_python(fmt: TextFormat, line: bytes) -> tuple[str, str | None]:
    """(kind, reason) of `line` as line 2 of a file of `fmt`, through tag's single-file scan."""
    first = (" ".join(fmt.names) if fmt.has_header else " ".join(GOOD[n] for n in fmt.names)).encode()
    scan = FileScan()
    scan_lines("f", [first + b"\n", line], scan, default_format=fmt.names)
    assert scan.lines == 2 and scan.reconciled()
    first_is_record = 0 if fmt.has_header else 1
    kinds = {
        "header": scan.headers - (1 - first_is_record),
        "blank": scan.blank,
        "record": scan.records - first_is_record,
        "reject": scan.malformed,
    }
    assert sorted(kinds.values()) == [0, 0, 0, 1], kinds  # exactly one verdict
    kind = next(k for k, n in kinds.items() if n)
    if kind == "reject":
        return RECORD, scan.malformed_lines[0].reason
    return kind, None


@st.composite
def flow_lines(draw) -> tuple[str, bytes]:
    """(format name, one line of bytes without "\\n"): near-valid records with some tokens replaced,
    or any bytes at all."""
    name = draw(st.sampled_from(sorted(FORMATS)))
    fmt = FORMATS[name]
    if draw(st.integers(0, 4)) == 0:
        return name, draw(st.binary(max_size=120)).replace(b"\n", b"")
    tokens = [GOOD[n] for n in fmt.names]
    for _ in range(draw(st.integers(0, 3))):
        i = draw(st.integers(0, len(tokens) - 1))
        tokens[i] = draw(
            st.one_of(
                st.sampled_from(EDGE_TOKENS),
                st.integers(-(2**70), 2**70).map(str),
                st.text(max_size=8).map(lambda t: t.replace("\n", "")),
            )
        )
    if draw(st.booleans()):
        del tokens[draw(st.integers(0, len(tokens) - 1))]
    sep = draw(st.sampled_from(SEPARATORS))
    text = sep.join(tokens)
    data = text.encode("utf-8", errors="surrogatepass")
    if draw(st.integers(0, 9)) == 0:
        data += b"\xff"  # not UTF-8
    return name, data


@settings(max_examples=2000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(flow_lines())
def test_python_rules_give_one_verdict_and_never_raise(example):
    name, line = example
    kind, reason = verdict_python(FORMATS[name], line)
    assert kind in (HEADER, "blank", RECORD)
    assert reason is None or (reason and "\n" not in reason)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=400))
def test_python_scan_of_any_bytes_reconciles(data):
    """Whole files of any bytes (several lines, maybe a header): every line counted once, no exception."""
    scan = FileScan()
    scan_lines("f", data.split(b"\n"), scan)
    assert scan.lines == data.count(b"\n") + 1
    assert scan.reconciled()


def spark_verdicts(spark, batch: list[tuple[str, bytes]]):
    """Spark's verdicts for the batch (every line as line 2 of its own object), in one job, every
    output column computed (a timestamp overflow would raise here)."""
    parts = []
    for name, fmt in FORMATS.items():
        rows = [(f"{i}", 2, line.decode("utf-8", errors="replace")) for i, (n, line) in enumerate(batch) if n == name]
        if not rows:
            continue
        lines = spark.createDataFrame(rows, "source_file string, source_line long, line string")
        parts.append(lines.transform(parse_text(fmt)))
    parsed = parts[0]
    for p in parts[1:]:
        parsed = parsed.unionByName(p)
    parsed = parsed.localCheckpoint(eager=True)  # every column evaluated once, here
    return parsed


# One batch of 600 lines in one Spark job; no shrinking (each step would be a Spark job): a failure
# shows the differing rows whole.
@pytest.mark.slow
@settings(
    max_examples=1,
    deadline=None,
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.large_base_example],
)
@given(st.lists(flow_lines(), min_size=600, max_size=600))
def test_spark_parse_agrees_with_python_line_by_line(spark, batch):
    parsed = spark_verdicts(spark, batch)
    # A valid record with a start token has it as a timestamp (a reject's typed values do not matter).
    valid = (F.col("kind") == RECORD) & F.col("reason").isNull()
    got = parsed.select(
        "source_file", "source_line", "kind", "reason", (valid & F.col("start").isNotNull()).alias("has_start")
    )
    expected_rows = []
    for i, (name, line) in enumerate(batch):
        kind, reason = verdict_python(FORMATS[name], line)
        tokens = split_tokens(line.decode("utf-8", errors="replace"))
        has_start = kind == RECORD and reason is None and tokens[FORMATS[name].names.index("start")] != "-"
        expected_rows.append((f"{i}", 2, kind, reason, has_start))
    expected = spark.createDataFrame(
        expected_rows, "source_file string, source_line long, kind string, reason string, has_start boolean"
    )
    assert_df_equality(got, expected, ignore_row_order=True, ignore_nullable=True)


# ------------------------------------------------------------------ rules of the table, by example


def reason_of(fmt: TextFormat, line: str) -> str | None:
    return LineRules(fmt).check(line, split_tokens(line))[0]


def default_line(**tokens: str) -> str:
    return " ".join(tokens.get(n.replace("-", "_"), GOOD[n]) for n in DEFAULT_FORMAT)


@pytest.mark.parametrize(
    ("tokens", "reason"),
    [
        ({"start": "10000000000000000"}, "start: 10000000000000000 is not a time in 1970-9999"),
        ({"end": "-1"}, "end: -1 is not a time in 1970-9999"),
        ({"start": "253402300800000"}, "start: 253402300800000 is not a time in 1970-9999"),
        ({"start": "9223372036854775808"}, "start: 9223372036854775808 is not a time in 1970-9999"),
        ({"srcport": "99999999999"}, "srcport: 99999999999 does not fit a 32-bit integer"),
        ({"bytes": "9223372036854775808"}, "bytes: 9223372036854775808 does not fit a 64-bit integer"),
        ({"bytes": "4611686018427387905"}, "bytes: 4611686018427387905 outside 0-4611686018427387904"),
        ({"protocol": "tcp"}, "protocol: not a number 'tcp'"),
        ({"srcport": "12\x7f"}, None),  # try_cast trims ASCII control characters
    ],
)
def test_values_that_do_not_fit_their_type_are_rejects(tokens, reason):
    got = reason_of(FORMATS["default"], default_line(**tokens))
    assert (got or "").startswith(reason or "") and (got is None) == (reason is None), got


def test_timestamps_in_range_seconds_and_milliseconds(spark):
    fmt = FORMATS["default"]
    cases = {
        "0": dt.datetime(1970, 1, 1),
        "1620140761": dt.datetime(2021, 5, 4, 15, 6, 1),
        "100000000000": dt.datetime(5138, 11, 16, 9, 46, 40),  # the largest value read as seconds
        "100000000001": dt.datetime(1973, 3, 3, 9, 46, 40, 1000),  # the smallest read as milliseconds
        "253402300799999": dt.datetime(9999, 12, 31, 23, 59, 59, 999000),
    }
    rows = [(str(i), 1, default_line(start=v)) for i, v in enumerate(cases)]
    lines = spark.createDataFrame(rows, "source_file string, source_line long, line string")
    got = lines.transform(parse_text(fmt)).select(
        "source_file", "reason", F.date_format("start", "yyyy-MM-dd HH:mm:ss.SSS").alias("start")
    )
    expected = spark.createDataFrame(
        [
            (str(i), None, t.strftime("%Y-%m-%d %H:%M:%S.") + f"{t.microsecond // 1000:03d}")
            for i, t in enumerate(cases.values())
        ],
        "source_file string, reason string, start string",
    )
    assert_df_equality(got, expected, ignore_row_order=True, ignore_nullable=True)


@pytest.mark.slow
def test_ingest_of_a_start_beyond_the_type_rejects_the_line_and_keeps_the_others(spark, tmp_path, capsys):
    """One record with start=10000000000000000 used to abort ingest (ArithmeticException: long overflow
    from timestamp_millis), and every rerun the same way."""
    from flowspark.cli import main
    from flowspark.edges import tables

    src = tmp_path / "src"
    src.mkdir()
    lines = [
        " ".join(DEFAULT_FORMAT),
        default_line(),
        default_line(start="10000000000000000"),
        default_line(srcport="1"),
    ]
    (src / "one.log.gz").write_bytes(gzip.compress(("\n".join(lines) + "\n").encode()))
    lake = tmp_path / "lake"
    assert main(["ingest", "--source", str(src), "--lake", str(lake)]) == 0, capsys.readouterr().err
    records = tables.read(spark, str(lake), tables.FLOW_RECORDS).select("source_line", "srcport")
    assert_df_equality(
        records,
        spark.createDataFrame([(2, 49152), (4, 1)], "source_line long, srcport int"),
        ignore_row_order=True,
        ignore_nullable=True,
    )
    rejects = tables.read(spark, str(lake), tables.FLOW_REJECTS).select("line_number", "reason")
    expected = "start: 10000000000000000 is not a time in 1970-9999 (epoch seconds, or milliseconds above 100000000000)"
    assert_df_equality(
        rejects, spark.createDataFrame([(3, expected)], "line_number long, reason string"), ignore_nullable=True
    )


# ------------------------------------------------------------------ the version rule and Transit Gateway logs


def tgw_line(version: str) -> str:
    return f"{version} 10.0.0.1 10.0.0.2 49152 443 6 10 840 1620140761 1620140821 OK"


@pytest.mark.parametrize(
    ("header", "version", "reason"),
    [
        (TGW_HEADER, "6", None),  # a Transit Gateway log writes 6 whatever its format
        (TGW_HEADER, "2", None),  # the same fields in a VPC log: version 2
        (TGW_HEADER, "5", "version: 5 does not fit the format (version 2, or 6 for a Transit Gateway log)"),
        (TGW_HEADER + " tcp-flags type", "6", None),
        (TGW_HEADER + " tcp-flags type", "3", None),
        (TGW_HEADER + " resource-type tgw-id", "6", None),
        (TGW_HEADER + " resource-type tgw-id", "2", "version: 2 does not fit the format (version 6)"),
        (TGW_HEADER + " action", "6", "version: 6 does not fit the format (version 2)"),  # action: VPC only
        (TGW_HEADER + " interface-id", "6", "version: 6 does not fit the format (version 2)"),
    ],
)
def test_version_rule_accepts_6_for_a_format_a_transit_gateway_log_may_have(spark, header, version, reason):
    names = tuple(header.split(" "))
    extra = {"tcp-flags": "19", "type": "IPv4", "resource-type": "TransitGateway", "tgw-id": "tgw-1",
             "action": "ACCEPT", "interface-id": "eni-a"}  # fmt: skip
    line = " ".join([tgw_line(version), *[extra[n] for n in names[11:]]])
    fmt = TextFormat(names, True)
    assert reason_of(fmt, line) == reason
    rows = [("f", 1, header), ("f", 2, line)]
    parsed = spark.createDataFrame(rows, "source_file string, source_line long, line string").transform(parse_text(fmt))
    got = parsed.where(F.col("kind") == RECORD).select("reason", "version")
    assert_df_equality(
        got, spark.createDataFrame([(reason, int(version))], "reason string, version int"), ignore_nullable=True
    )


@pytest.mark.slow
def test_tgw_custom_format_ingests(spark, tmp_path, capsys):
    """A TGW custom format without a tgw-* field: every line used to be rejected by the version rule."""
    from flowspark.cli import main
    from flowspark.edges import tables

    src = tmp_path / "src"
    src.mkdir()
    (src / "tgw.log").write_text("\n".join([TGW_HEADER, tgw_line("6"), tgw_line("6"), tgw_line("4")]) + "\n")
    lake = tmp_path / "lake"
    assert main(["ingest", "--source", str(src), "--lake", str(lake)]) == 0, capsys.readouterr().err
    got = tables.read(spark, str(lake), tables.FLOW_RECORDS).select("source_line", "version")
    assert_df_equality(
        got,
        spark.createDataFrame([(2, 6), (3, 6)], "source_line long, version int"),
        ignore_row_order=True,
        ignore_nullable=True,
    )
    rejects = tables.read(spark, str(lake), tables.FLOW_REJECTS).select("line_number", "reason")
    expected = [(4, "version: 4 does not fit the format (version 2, or 6 for a Transit Gateway log)")]
    assert_df_equality(
        rejects, spark.createDataFrame(expected, "line_number long, reason string"), ignore_nullable=True
    )


def test_version_claims_match_the_catalogue():
    """'Versions 2-N' wherever it is claimed is the catalogue's highest version."""
    from flowspark.core.schema import FIELDS

    top = max(f.version for f in FIELDS)
    repo = Path(__file__).resolve().parents[1]
    texts = {p: p.read_text() for p in [repo / "README.md", *(repo / "flowspark").rglob("*.py")]}
    import re

    claims = [
        (p.name, m.group(0))
        for p, t in texts.items()
        for m in re.finditer(r"versions? 2 ?(?:-|to) ?(\d+)", t)
        if int(m.group(1)) != top
    ]
    assert claims == []
