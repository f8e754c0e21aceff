"""The line rules (flowspark.core.lines, one rule table in Arrow): any line becomes exactly one of header /
blank / record / reject, never raises, and gets the verdict of an independent oracle written here, line
by line, from the rules as the README states them (not from flowspark's rule table). Plus the rules by
example: timestamps and numbers that do not fit their type, and the version of Transit Gateway formats;
and the same verdicts through Spark (the reader runs in mapInArrow), every column converted."""

from __future__ import annotations

import datetime as dt
import gzip
import re
from pathlib import Path

import pytest
from chispa import assert_df_equality
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from flowspark.core.lines import OBJECT, RECORD, REJECT
from flowspark.core.schema import DEFAULT_FORMAT
from flowspark.core.tags import FileScan, scan_batches
from flowspark.edges.sources import text_rows

# Formats the generated lines are checked in: the default one (without a header: line 1 is a record),
# a v5 header, a format a Transit Gateway log may have (no tgw-* field), and one with a field name the
# catalogue does not know (a newer version).
V5_HEADER = (
    "version account-id interface-id srcaddr dstaddr srcport dstport protocol packets bytes start end "
    "action log-status tcp-flags traffic-path flow-direction"
)
TGW_HEADER = "version srcaddr dstaddr srcport dstport protocol packets bytes start end log-status"
NEWER_HEADER = "version srcport dstport protocol start end action future-field"
# a header with a field of the flow key misspelt (srcadr for srcaddr): its data lines are rejects
MISSPELT_HEADER = V5_HEADER.replace(" srcaddr ", " srcadr ")
FORMATS = {
    "default": (tuple(DEFAULT_FORMAT), False),
    "v5": (tuple(V5_HEADER.split(" ")), True),
    "tgw": (tuple(TGW_HEADER.split(" ")), True),
    "newer": (tuple(NEWER_HEADER.split(" ")), True),
    "misspelt": (tuple(MISSPELT_HEADER.split(" ")), True),
}
GOOD = {
    "srcadr": "10.0.0.1",
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
# Tokens near the edges of the rules: types, ranges, timestamps, enumerations, what a number may carry (no
# NUL: an object with one in its first 64 KB is binary, not lines; tests/test_objects.py).
EDGE_TOKENS = [
    "-", "0", "+5", "-1", "-0", "0012", "65535", "65536", "255", "256", "2147483647", "2147483648",
    "9223372036854775807", "9223372036854775808", "-9223372036854775809", "1" * 40, "1.5", "1e3", "0x1F",
    "0X1f", "\uff11\uff12", "\u0661\u0662", "\x0b12", "12\x7f", "\x0112", "\x1f7\x1f", "12\x85", "12\u2028",
    "100000000000", "100000000001", "253402300799", "253402300799999", "253402300800000",
    "10000000000000000", "4611686018427387904", "4611686018427387905",
    "ACCEPT", "REJECT", "accept", "OK", "NODATA", "SKIPDATA", "ok", "\ufffd", "2", "3", "5", "6", "7",
    "version", "srcport", "",
]  # fmt: skip
SEPARATORS = [" ", "  ", "\t", "\u00a0", "\r", " \ufeff"]


# ------------------------------------------------------------------ the oracle (the README's rules, in Python)

# Numeric fields, in the catalogue's order, with their kind and their range on data rows (README, ingest).
NUMBERS = {
    "version": ("int", None), "srcport": ("int", (0, 65535)), "dstport": ("int", (0, 65535)),
    "protocol": ("int", (0, 255)), "packets": ("long", (0, 2**62)), "bytes": ("long", (0, 2**62)),
    "start": ("epoch", None), "end": ("epoch", None), "tcp-flags": ("int", (0, 65535)),
    "traffic-path": ("int", (0, 255)),
}  # fmt: skip
MISSPELT = {"srcadr": "srcaddr"}  # the README's example of a misspelt field of the flow key
VERSION_OF = {"tcp-flags": 3, "traffic-path": 5, "flow-direction": 5}  # the fields the formats above use
TGW_ONLY_OK = set(TGW_HEADER.split(" ")) | {"tcp-flags", "type", "resource-type", "tgw-id"}
FITS = {"int": (-(2**31), 2**31 - 1), "long": (-(2**63), 2**63 - 1), "epoch": (0, 253_402_300_799_999)}
UNFIT = {
    "int": "does not fit a 32-bit integer",
    "long": "does not fit a 64-bit integer",
    "epoch": "is not a time in 1970-9999 (epoch seconds, or milliseconds above 100000000000)",
}


def oracle(names: tuple[str, ...], text: str) -> tuple[str, str | None]:
    """(blank | record | reject, reason) of one decoded line of a format."""
    for odd in ("\ufeff", "\r", "\t", "\u00a0"):
        text = text.replace(odd, " ")
    tokens = [t for t in text.strip(" ").split(" ") if t]
    if not tokens:
        return "blank", None
    if len(tokens) != len(names):
        return REJECT, f"expected {len(names)} fields, found {len(tokens)}"
    value = dict(zip(names, tokens))
    data_row = value.get("log-status", "-") in ("-", "OK")
    reasons, numbers = [], {}
    misspelt = [(n, MISSPELT[n]) for n in names if n in MISSPELT and MISSPELT[n] not in names]
    if misspelt and data_row:  # first: a field of the flow key misspelt in the header
        pairs = ", ".join(f"{n} (not a flow log field) for {key}" for n, key in misspelt)
        reasons.append(f"the format has {pairs}: a field of the flow key would be empty; fix the header or --input-format")
    for field, (kind, bounds) in NUMBERS.items():
        raw = value.get(field)
        if raw is None or raw == "-":
            continue
        m = re.fullmatch(r"[\x00-\x20\x7f]*([+-]?[0-9]+)[\x00-\x20\x7f]*", raw)
        if not m:
            reasons.append(f"{field}: not a number '{raw}'")
            continue
        num = int(m.group(1))
        if not FITS[kind][0] <= num <= FITS[kind][1]:
            reasons.append(f"{field}: {raw} {UNFIT[kind]}")
            continue
        numbers[field] = num
        if bounds and data_row and not bounds[0] <= num <= bounds[1]:
            reasons.append(f"{field}: {raw} outside {bounds[0]}-{bounds[1]}")
    for field, allowed in (("action", ("ACCEPT", "REJECT")), ("log-status", ("OK", "NODATA", "SKIPDATA"))):
        if field in value and value[field] != "-" and value[field] not in allowed:
            reasons.append(f"{field}: unknown value '{value[field]}'")
    if "version" in numbers:
        known = [n for n in names if n in GOOD and n not in ("future-field", "srcadr")]
        expected = max([2] + [VERSION_OF.get(n, 2) for n in known])
        if len(known) < len(names):  # a field this version does not know: a newer version
            ok, text_ = numbers["version"] >= expected, f"version {expected}"
        elif set(names) <= TGW_ONLY_OK and "action" not in names and "interface-id" not in names:
            ok, text_ = numbers["version"] in (expected, 6), f"version {expected}, or 6 for a Transit Gateway log"
        else:
            ok, text_ = numbers["version"] == expected, f"version {expected}"
        if not ok:
            reasons.append(f"version: {numbers['version']} does not fit the format ({text_})")
    if "\ufffd" in text:
        reasons.append("undecodable bytes (not UTF-8)")
    return (REJECT, "; ".join(reasons)) if reasons else (RECORD, None)


def first_line(name: str) -> bytes:
    names, header = FORMATS[name]
    return (" ".join(names) if header else " ".join(GOOD[n] for n in names)).encode()


def reader_verdicts(name: str, lines: list[bytes]) -> dict[int, tuple[str, str | None]]:
    """flowspark's verdicts of these lines, as lines 2.. of one object of the format (the reader ingest and
    tag use): line number -> (kind, reason); blank lines are the ones the object row counts, not listed."""
    data = first_line(name) + b"\n" + b"\n".join(lines) + b"\n"
    out: dict[int, tuple[str, str | None]] = {}
    objects = []
    for batch in text_rows("s3://b/k.log", iter([data]), DEFAULT_FORMAT):
        for row in batch.select(["kind", "reason", "source_line", "_blank"]).to_pylist():
            if row["kind"] == OBJECT:
                objects.append(row)
            else:
                out[row["source_line"]] = (row["kind"], row["reason"])
    assert len(objects) == 1 and objects[0]["reason"] is None
    return out


@st.composite
def flow_lines(draw) -> tuple[str, bytes]:
    """(format name, one line of bytes without "\\n"): near-valid records with some tokens replaced,
    or any bytes at all."""
    name = draw(st.sampled_from(sorted(FORMATS)))
    names = FORMATS[name][0]
    if draw(st.integers(0, 4)) == 0:
        # (no NUL byte: an object with one in its first 64 KB is binary, not flow log lines: test_objects)
        return name, draw(st.binary(max_size=120)).replace(b"\n", b"").replace(b"\x00", b"\x01")
    tokens = [GOOD[n] for n in names]
    for _ in range(draw(st.integers(0, 3))):
        i = draw(st.integers(0, len(tokens) - 1))
        tokens[i] = draw(
            st.one_of(
                st.sampled_from(EDGE_TOKENS),
                st.integers(-(2**70), 2**70).map(str),
                st.text(max_size=8).map(lambda t: t.replace("\n", "").replace("\x00", "\x01")),
            )
        )
    if draw(st.booleans()):
        del tokens[draw(st.integers(0, len(tokens) - 1))]
    sep = draw(st.sampled_from(SEPARATORS))
    data = sep.join(tokens).encode("utf-8", errors="surrogatepass")
    if draw(st.integers(0, 9)) == 0:
        data += b"\xff"  # not UTF-8
    return name, data


# A batch of lines per example: the reader batches lines (the CSV path and the general one meet in one
# parse), so a verdict must not depend on a line's neighbours.
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(st.lists(flow_lines(), min_size=1, max_size=60))
def test_the_reader_gives_the_oracles_verdict_line_by_line(batch):
    for name in FORMATS:
        lines = [line for n, line in batch if n == name]
        if not lines:
            continue
        got = reader_verdicts(name, lines)
        for i, line in enumerate(lines, 2):
            kind, reason = oracle(FORMATS[name][0], line.decode("utf-8", errors="replace"))
            if kind == "blank":
                assert i not in got, (line, got.get(i))
            else:
                assert got.get(i) == (kind, reason), (name, line)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=400))
def test_any_bytes_are_read_and_reconcile(data):
    """Whole files of any bytes (several lines, maybe a header): every line counted once, no exception."""
    scan = FileScan()
    scan_batches("f", text_rows("f", iter([data]), DEFAULT_FORMAT, foreign=False), scan)
    if b"\x00" in data:  # binary content: not read, one malformed line says why
        assert (scan.lines, scan.malformed, len(scan.broken)) == (1, 1, 1)
    else:
        assert scan.lines == data.count(b"\n") + (0 if data.endswith(b"\n") or not data else 1)
    assert scan.reconciled()


# The same verdicts through Spark: one batch of 600 lines in one ingest (the reader in mapInArrow, every
# column converted to Spark's types); no shrinking (each step would be a Spark job).
@pytest.mark.slow
@settings(
    max_examples=1,
    deadline=None,
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.large_base_example],
)
@given(st.lists(flow_lines(), min_size=600, max_size=600))
def test_ingest_through_spark_gives_the_oracles_verdicts(spark, cfg, tmp_path_factory, batch):
    from flowspark.edges import tables
    from flowspark.pipelines.ingest import run_ingest

    root = tmp_path_factory.mktemp("verdicts")
    expected = []
    for name in FORMATS:
        lines = [line for n, line in batch if n == name]
        (root / "src").mkdir(exist_ok=True)
        path = root / "src" / f"{name}.log"
        path.write_bytes(first_line(name) + b"\n" + b"\n".join(lines) + b"\n")
        if not FORMATS[name][1]:
            expected.append((f"{name}.log", 1, RECORD, None))
        for i, line in enumerate(lines, 2):
            kind, reason = oracle(FORMATS[name][0], line.decode("utf-8", errors="replace"))
            if kind != "blank":
                expected.append((f"{name}.log", i, kind, reason))
    lake = str(root / "lake")
    run_ingest(spark, cfg, str(root / "src"), lake)
    from pyspark.sql import functions as F

    name = F.regexp_extract("source_file", r"([^/]+)$", 1).alias("f")
    records = tables.read(spark, lake, tables.FLOW_RECORDS).select(
        name, "source_line", F.lit(RECORD).alias("kind"), F.lit(None).cast("string").alias("reason")
    )
    rejects = tables.read(spark, lake, tables.FLOW_REJECTS).select(
        name, F.col("line_number").alias("source_line"), F.lit(REJECT).alias("kind"), "reason"
    )
    want = spark.createDataFrame(expected, "f string, source_line long, kind string, reason string")
    assert_df_equality(records.unionByName(rejects), want, ignore_row_order=True, ignore_nullable=True)


# ------------------------------------------------------------------ rules of the table, by example


def reason_of(name: str, line: str) -> str | None:
    got = reader_verdicts(name, [line.encode()])
    return got[2][1]


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
        ({"srcport": "0x1F"}, "srcport: not a number '0x1F'"),  # hex is not a number (Arrow's cast reads it)
        ({"srcport": "12\x7f"}, None),  # a number may carry ASCII control characters at its ends
    ],
)
def test_values_that_do_not_fit_their_type_are_rejects(tokens, reason):
    got = reason_of("default", default_line(**tokens))
    assert (got or "").startswith(reason or "") and (got is None) == (reason is None), got


def test_timestamps_in_range_seconds_and_milliseconds():
    cases = {
        "0": dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc),
        "1620140761": dt.datetime(2021, 5, 4, 15, 6, 1, tzinfo=dt.timezone.utc),
        "100000000000": dt.datetime(5138, 11, 16, 9, 46, 40, tzinfo=dt.timezone.utc),  # the largest as seconds
        "100000000001": dt.datetime(1973, 3, 3, 9, 46, 40, 1000, tzinfo=dt.timezone.utc),  # the smallest as ms
        "253402300799999": dt.datetime(9999, 12, 31, 23, 59, 59, 999000, tzinfo=dt.timezone.utc),
    }
    data = "\n".join(default_line(start=v) for v in cases).encode() + b"\n"
    got = []
    for batch in text_rows("f", iter([data]), DEFAULT_FORMAT):
        got += [(r["reason"], r["start"]) for r in batch.select(["kind", "reason", "start"]).to_pylist() if r["kind"] != OBJECT]
    assert got == [(None, t) for t in cases.values()]


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
def test_version_rule_accepts_6_for_a_format_a_transit_gateway_log_may_have(header, version, reason):
    names = tuple(header.split(" "))
    extra = {"tcp-flags": "19", "type": "IPv4", "resource-type": "TransitGateway", "tgw-id": "tgw-1",
             "action": "ACCEPT", "interface-id": "eni-a"}  # fmt: skip
    line = " ".join([tgw_line(version), *[extra[n] for n in names[11:]]])
    data = (header + "\n" + line + "\n").encode()
    rows = [r for b in text_rows("f", iter([data]), DEFAULT_FORMAT) for r in b.select(["kind", "reason", "version"]).to_pylist()]
    assert [(r["reason"], r["version"]) for r in rows if r["kind"] != OBJECT] == [(reason, int(version))]


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
    """'Versions 2-N' wherever it is claimed (README, docs/, the code) is the catalogue's highest version."""
    from flowspark.core.schema import FIELDS

    top = max(f.version for f in FIELDS)
    repo = Path(__file__).resolve().parents[1]
    docs = sorted((repo / "docs").glob("*.md"))
    assert docs, "docs/*.md not found"
    texts = {p: p.read_text() for p in [repo / "README.md", *docs, *(repo / "flowspark").rglob("*.py")]}
    claims = [
        (p.name, m.group(0))
        for p, t in texts.items()
        for m in re.finditer(r"versions? 2 ?(?:-|to) ?(\d+)", t)
        if int(m.group(1)) != top
    ]
    assert claims == []
