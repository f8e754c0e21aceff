"""flowspark tag, single-file mode and lookup parsing: pure Python, no SparkSession.

The verified answers come from the sample folders' READMEs (tests/data/samples/tagmapper-*/README.md):
the dstport reading, protocol > 255 invalid, '-' in dstport/protocol skipped, malformed lines skipped.
"""

from __future__ import annotations

import gzip
import time
from pathlib import Path

import pytest
from tagmapper_cases import CASES, case_paths  # noqa: E402

from flowspark.core import protocols
from flowspark.core.schema import DEFAULT_FORMAT_STRING
from flowspark.core.tags import (
    UNTAGGED,
    LookupFileError,
    parse_lookup,
    report_text,
    sorted_tag_rows,
)
from flowspark.pipelines.tag import (
    read_lookup,
    scan_files,
    tag_files,
)


@pytest.mark.parametrize("case", sorted(CASES))
def test_every_tagmapper_sample_gives_its_verified_answer(samples, case):
    logs, lookup_file = case_paths(samples, case)
    _, _, _, tag_rows, port_rows, malformed, skipped = CASES[case]
    result = tag_files(logs, read_lookup(lookup_file))
    assert result.report() == report_text(tag_rows, port_rows)
    assert [i.line for i in result.scan.malformed_lines] == malformed
    assert [i.line for i in result.scan.skipped_lines] == skipped
    assert result.scan.reconciled()
    assert result.scan.tagged == sum(n for _, n in tag_rows)


def test_every_tagmapper_folder_is_covered(samples):
    folders = {p.name for p in samples.glob("tagmapper-*")}
    assert folders == {c[0] for c in CASES.values()}


def test_report_format_is_the_exercises(samples):
    logs, lookup_file = case_paths(samples, "exercise")
    text = tag_files(logs, read_lookup(lookup_file)).report()
    assert text.startswith("Tag Counts:\nTag,Count\nemail,3\nsv_P1,2\nsv_P2,1\nUntagged,8\n\n")
    assert "\nPort/Protocol Combination Counts:\nPort,Protocol,Count\n23,tcp,1\n25,tcp,1\n" in text
    assert text.endswith("49158,tcp,1\n")


def test_malformed_lines_are_reported_with_line_numbers_and_reasons(samples):
    logs, lookup_file = case_paths(samples, "el-michael")
    scan = tag_files(logs, read_lookup(lookup_file)).scan
    assert [(i.line, i.reason) for i in scan.malformed_lines] == [
        (16, "version: 5 does not fit the format (version 2)"),
        (19, "expected 14 fields, found 13"),
    ]
    assert [(i.line, i.reason) for i in scan.skipped_lines] == [
        (17, "no dstport ('-' or not in the format)"),
        (18, "no protocol ('-' or not in the format)"),
    ]
    logs, _ = case_paths(samples, "raghu-megh-faulty")
    reasons = [i.reason for i in scan_files(logs).malformed_lines]
    assert reasons == [
        "action: unknown value 'SUCCESS'",
        "version: 3 does not fit the format (version 2)",
        "log-status: unknown value 'GO_AWAY'",
    ]
    logs, _ = case_paths(samples, "harshamupparaju97")
    assert [i.reason for i in scan_files(logs).malformed_lines] == ["protocol: 1024 outside 0-255"]


def test_header_in_any_field_order_and_gzip(samples, tmp_path):
    logs, lookup_file = case_paths(samples, "exercise")
    lookup = read_lookup(lookup_file)
    lines = Path(logs[0]).read_text().splitlines()
    names = DEFAULT_FORMAT_STRING
    order = list(reversed(range(14)))
    header = " ".join(names.split()[i] for i in order)
    body = [" ".join(line.split()[i] for i in order) for line in lines]
    reordered = tmp_path / "reordered.log.gz"
    with gzip.open(reordered, "wt") as fh:
        fh.write("\n".join([header, *body]) + "\n")
    result = tag_files([str(reordered)], lookup)
    assert result.report() == tag_files(logs, lookup).report()
    assert result.scan.headers == 1


def test_several_files_add_up(samples):
    a, lookup_file = case_paths(samples, "exercise")
    b, _ = case_paths(samples, "haozhang96")
    result = tag_files(a + b, read_lookup(lookup_file))
    assert dict(result.tag_rows) == {"email": 6, "sv_P1": 4, "sv_P2": 2, "sv_P4": 2, UNTAGGED: 16}


def test_bytes_measure(samples):
    logs, lookup_file = case_paths(samples, "exercise")
    result = tag_files(logs, read_lookup(lookup_file), measure="bytes")
    assert dict(result.tag_rows)["email"] == 2500 + 3500 + 4500  # dstport 110, 993, 143 (not srcport)
    assert result.report().startswith("Tag Counts:\nTag,Bytes\n")


def test_sort_order_ties_by_tag_name_untagged_last():
    rows = sorted_tag_rows({UNTAGGED: 100, "b": 2, "a": 2, "Z": 2, "c": 5})
    assert rows == [("c", 5), ("Z", 2), ("a", 2), ("b", 2), (UNTAGGED, 100)]


# ----------------------------------------------------------------------------- lookup parsing


def test_lookup_bom_crlf_comments_blank_lines_no_header():
    lk = parse_lookup("\ufeff# my services\r\n\r\n25,tcp,mail\r\n  # indented comment\r\n68 , UDP , dhcp \r\n")
    assert lk.tags == {(25, 6): "mail", (68, 17): "dhcp"}
    assert not lk.header and lk.problems == [] and lk.rows == 2


def test_lookup_tsv_with_header():
    lk = parse_lookup("dstport\tprotocol\ttag\n443\ttcp\thttps, web\n")
    assert lk.delimiter == "\t" and lk.header
    assert lk.tags == {(443, 6): "https, web"}


def test_lookup_header_names_give_the_column_order():
    lk = parse_lookup("Tag;Protocol;Port;Comment\nmail;tcp;25;outbound relay\n")
    assert lk.delimiter == ";"
    assert lk.tags == {(25, 6): "mail"}


def test_lookup_protocol_by_name_in_any_case_or_number():
    lk = parse_lookup("0,ICMP,ping\n0,IPv6-ICMP,ping6\n0,47,gre\n0,Esp,esp\n500,udp,ike\n1,253,lab\n")
    assert lk.tags == {
        (0, 1): "ping",
        (0, 58): "ping6",
        (0, 47): "gre",
        (0, 50): "esp",
        (500, 17): "ike",
        (1, 253): "lab",
    }


def test_lookup_invalid_rows_are_reported_with_line_numbers_and_skipped():
    text = "\n".join(
        [
            "dstport,protocol,tag",  # 1
            "25,tcp,mail",  # 2
            "70000,tcp,big",  # 3
            "abc,tcp,x",  # 4
            "25,tcpp,typo",  # 5
            "25,256,num",  # 6
            "80,tcp",  # 7
            "81,tcp,",  # 8 (trailing empty field dropped: 2 fields)
            "82,tcp,a,b",  # 9
            "83,tcp,untagged",  # 10
            "-1,tcp,neg",  # 11
            "1024-2048,tcp,range",  # 12
            "443,tcp,https",  # 13
        ]
    )
    lk = parse_lookup(text)
    assert lk.tags == {(25, 6): "mail", (443, 6): "https"}
    assert [(p.line, p.kind) for p in lk.problems] == [(n, "invalid") for n in (3, 4, 5, 6, 7, 8, 9, 10, 11, 12)]
    reasons = {p.line: p.reason for p in lk.problems}
    assert reasons[3] == "port '70000' is not a whole number 0-65535"
    assert reasons[5].startswith("unknown protocol 'tcpp'")
    assert reasons[7].startswith("expected 3 fields (port, protocol, tag), found 2")
    assert "reserved" in reasons[10]
    assert lk.rows == 12


def test_lookup_duplicate_key_first_row_wins_and_is_reported():
    lk = parse_lookup("dstport,protocol,tag\n31,udp,SV_P3\n31,UDP,SV_P2\n31,17,SV_P3\n")
    assert lk.tags == {(31, 17): "SV_P3"}
    assert [(p.line, p.kind) for p in lk.problems] == [(3, "conflict"), (4, "duplicate")]
    assert "already tagged 'SV_P3' on line 2; 'SV_P2' ignored (the first row wins)" in lk.problems[0].reason


def test_lookup_tags_are_case_preserving_with_a_note():
    lk = parse_lookup("68,udp,sv_P2\n31,udp,SV_P2\n")
    assert lk.tags == {(68, 17): "sv_P2", (31, 17): "SV_P2"}
    assert [(p.line, p.kind) for p in lk.problems] == [(2, "note")]


def test_lookup_strict_fails_on_invalid_or_conflicting_rows(tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("25,tcp,mail\n25,tcp,smtp\n")
    with pytest.raises(LookupFileError, match="line 2"):
        read_lookup(bad, strict=True)
    assert read_lookup(bad).tags == {(25, 6): "mail"}
    dup = tmp_path / "dup.csv"
    dup.write_text("25,tcp,mail\n25,tcp,mail\n")
    assert read_lookup(dup, strict=True).tags == {(25, 6): "mail"}  # exact repeats are not errors


def test_lookup_utf16_and_cp1252(tmp_path):
    u16 = tmp_path / "excel.txt"
    u16.write_bytes("port\tprotocol\ttag\r\n22\ttcp\tsécurité\r\n".encode("utf-16"))
    assert read_lookup(u16).tags == {(22, 6): "sécurité"}
    latin = tmp_path / "latin.csv"
    latin.write_bytes("22,tcp,s\xe9curit\xe9\n".encode("cp1252"))
    lk = read_lookup(latin)
    assert lk.tags == {(22, 6): "sécurité"} and lk.problems[0].kind == "note"


def test_lookup_samples_parse(samples):
    francis = samples / "tagmapper-francis-pang"
    assert read_lookup(francis / "lookup-1line.csv").tags == {(25, 6): "sv_P1"}
    assert read_lookup(francis / "lookup-2line.csv").tags == {(25, 6): "sv_P1", (68, 17): "sv_P2"}
    assert read_lookup(francis / "lookup-2lines-same-tag.csv").tags == {(25, 6): "sv_P1", (68, 17): "sv_P1"}
    assert read_lookup(francis / "lookup-full.csv").tags[(0, 1)] == "new_P1"  # 'ICMP'
    assert read_lookup(samples / "tagmapper-raghu-megh" / "lookup-table.csv").rows == 11  # '#dstport,...'


def test_lookup_100k_rows_parse_fast(tmp_path):
    names = ["tcp", "UDP", "17", "6"]
    rows = [f"{i % 65536},{names[(i // 65536) * 2 + (i % 2)]},tag_{i % 997}" for i in range(100_000)]
    big = tmp_path / "big.csv"
    big.write_text("dstport,protocol,tag\n" + "\n".join(rows) + "\n")
    t0 = time.perf_counter()
    lk = read_lookup(big)
    seconds = time.perf_counter() - t0
    assert lk.rows == 100_000
    assert len(lk.tags) + len(lk.of_kind("conflict", "duplicate")) == 100_000
    assert seconds < 5, f"100k-row lookup took {seconds:.2f}s"


def test_default_lookup_is_clean_and_covers_common_services():
    lk = read_lookup()
    assert lk.problems == []
    tags = set(lk.tags.values())
    for t in [
        "ssh",
        "telnet",
        "smtp",
        "dns",
        "http",
        "https",
        "ntp",
        "pop3",
        "pop3s",
        "imap",
        "imaps",
        "snmp",
    ]:
        assert t in tags
    for t in ["ldap", "ldaps", "smb", "rdp", "mysql", "postgresql", "mssql", "oracle", "redis", "mongodb"]:
        assert t in tags
    for t in ["elasticsearch", "kafka", "nfs", "syslog"]:
        assert t in tags
    assert lk.tags[(53, 6)] == lk.tags[(53, 17)] == "dns"


# ----------------------------------------------------------------------------- protocols


def test_protocol_table_is_complete():
    assert len(protocols.NAMES) == 256
    assert [protocols.number(n) for n in ["tcp", "udp", "icmp", "ipv6-icmp", "gre", "esp", "ah", "sctp"]] == [
        6,
        17,
        1,
        58,
        47,
        50,
        51,
        132,
    ]
    assert protocols.name(6) == "tcp" and protocols.name(58) == "ipv6-icmp" and protocols.name(146) == "homa"
    assert protocols.name(253) == "253" and protocols.name(61) == "61"
    assert protocols.number("TCP") == protocols.number("Tcp") == 6
    assert protocols.number("ARGUS (deprecated)") == protocols.number("argus") == 13
    assert protocols.number("ISIS over IPv4") == protocols.number("isis-over-ipv4") == 124
    assert protocols.number("icmpv6") == 58
    assert protocols.number("0") == 0 and protocols.number("255") == 255
    assert protocols.number("256") is None and protocols.number("-1") is None and protocols.number("nope") is None
    # every display name maps back to its number
    assert all(protocols.number(protocols.name(n)) == n for n in range(256))


# ----------------------------------------------------------------------------- CLI (file mode)


def _no_spark(monkeypatch):
    import flowspark.cli

    def boom(cfg):
        raise AssertionError("single-file mode must not start Spark")

    monkeypatch.setattr(flowspark.cli, "spark_for", boom)


def test_cli_file_mode_writes_report_and_summary(samples, tmp_path, capsys, monkeypatch):
    from flowspark.cli import main

    _no_spark(monkeypatch)
    logs, lookup_file = case_paths(samples, "el-michael")
    out = tmp_path / "out.csv"
    rc = main(["tag", "--flow-log", *logs, "--lookup", str(lookup_file), "--out", str(out)])
    assert rc == 0
    assert out.read_text() == report_text(*CASES["el-michael"][3:5])
    err = capsys.readouterr().err
    assert "flow_logs.txt:16: version: 5" in err
    assert "flow_logs.txt:19: expected 14 fields, found 13" in err
    assert "conflict: line 6: (31, udp) is already tagged 'SV_P3'" in err
    assert "15 tagged (6 matched, 9 untagged)" in err
    assert "check        OK" in err


def test_cli_file_mode_default_lookup_and_stdout(samples, capsys, monkeypatch):
    from flowspark.cli import main

    _no_spark(monkeypatch)
    logs, _ = case_paths(samples, "exercise")
    assert main(["tag", "--flow-log", *logs, "--out", "-"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("Tag Counts:\nTag,Count\n")
    assert "telnet,1" in out and "smtp,1" in out and "https,1" in out and "http,1" in out


def test_cli_errors_exit_2(samples, tmp_path, capsys, monkeypatch):
    from flowspark.cli import main

    _no_spark(monkeypatch)
    logs, lookup_file = case_paths(samples, "el-michael")
    out = str(tmp_path / "o.csv")
    assert main(["tag", "--flow-log", *logs, "--lookup", str(lookup_file), "--out", out, "--strict"]) == 2
    assert "invalid or conflicting" in capsys.readouterr().err
    assert main(["tag", "--flow-log", str(tmp_path / "missing.log"), "--out", out]) == 2
    assert main(["tag", "--flow-log", *logs, "--out", out, "--from", "2021-01-01"]) == 2
    assert main(["tag", "--flow-log", *logs, "--out", out, "--count", "flows"]) == 2
    assert main(["tag", "--flow-log", *logs, "--lookup", str(tmp_path / "nope.csv"), "--out", out]) == 2
    parquet = str(samples / "flowlogs-reader" / "flows.parquet")
    assert main(["tag", "--flow-log", parquet, "--out", out]) == 2
    assert "ingest Parquet deliveries and use --lake" in capsys.readouterr().err
    assert main(["tag", "--flow-log", *logs]) == 2  # --out is required
    assert "--out FILE is required" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["tag", "--flow-log", *logs, "--lake", str(tmp_path), "--out", out])  # one source only


# ------------------------------------------------------- unusable lookups and broken flow logs (file mode)


def _default_records(n: int, seed: int = 3) -> list[str]:
    import random

    rnd = random.Random(seed)
    return [
        f"2 123456789012 eni-a 10.0.{rnd.randint(0, 255)}.{rnd.randint(0, 255)} 10.1.2.3 {rnd.randint(1024, 65535)} "
        f"{rnd.choice([22, 25, 80, 443, 993, 3389])} 6 {rnd.randint(1, 99)} {rnd.randint(40, 9999)} "
        f"1620140761 1620140821 ACCEPT OK"
        for _ in range(n)
    ]


@pytest.mark.parametrize("strict", [False, True])
def test_cli_file_mode_random_bytes_as_the_lookup_is_an_error(samples, tmp_path, capsys, monkeypatch, strict):
    """A lookup with no valid row used to tag nothing and report every record Untagged, exit 0."""
    import random

    from flowspark.cli import main

    _no_spark(monkeypatch)
    logs, _ = case_paths(samples, "exercise")
    garbage = tmp_path / "garbage.csv"
    garbage.write_bytes(random.Random(11).randbytes(3000))
    out = tmp_path / "out.csv"
    argv = ["tag", "--flow-log", *logs, "--lookup", str(garbage), "--out", str(out)]
    assert main(argv + (["--strict"] if strict else [])) == 2
    first = capsys.readouterr().err.splitlines()[0]
    assert first.startswith(f"flowspark tag: error: {garbage}: no valid 'port,protocol,tag' row in ")
    assert "port,protocol,tag rows" in first  # what to do
    assert not out.exists()


def test_truncated_gzip_counts_the_lines_before_the_break(tmp_path, capsys, monkeypatch):
    """A truncated .log.gz used to fail with "EOFError: Compressed file ended" (exit 1), naming no file
    and losing the good lines before the break."""
    import zlib
    from collections import Counter

    from flowspark.cli import main

    _no_spark(monkeypatch)
    lines = [DEFAULT_FORMAT_STRING, *_default_records(20_000)]
    data = gzip.compress(("\n".join(lines) + "\n").encode())
    cut = tmp_path / "cut.log.gz"
    cut.write_bytes(data[: len(data) // 2])
    # Independently of the reader: the complete lines a plain zlib decompression of the cut bytes gives.
    complete = zlib.decompressobj(wbits=31).decompress(data[: len(data) // 2]).count(b"\n")
    assert 1000 < complete < len(lines)

    result = tag_files([str(cut)], read_lookup())
    scan = result.scan
    assert (scan.lines, scan.headers, scan.records, scan.malformed) == (complete + 1, 1, complete - 1, 1)
    assert scan.reconciled()
    expected_ports = Counter((int(x.split()[6]), 6) for x in lines[1:complete])
    assert scan.counts == expected_ports
    assert [(i.file, i.line) for i in scan.broken] == [("cut.log.gz", complete + 1)]
    assert scan.broken[0].reason.startswith("truncated gzip")

    out = tmp_path / "out.csv"
    assert main(["tag", "--flow-log", str(cut), "--out", str(out)]) == 0
    err = capsys.readouterr().err
    assert f"cut short    cut.log.gz:{complete + 1}: truncated gzip" in err
    assert f"{complete - 1:,} records" in err and "check        OK" in err
    assert out.read_text() == result.report()


def test_not_gzip_and_empty_gz_are_one_malformed_line_each(tmp_path):
    fake = tmp_path / "fake.log.gz"
    fake.write_bytes(b"2 123 eni-a 10.0.0.1 10.0.0.2 1 2 6 1 1 1620140761 1620140821 ACCEPT OK\n")
    empty = tmp_path / "empty.log.gz"
    empty.write_bytes(b"")
    good = tmp_path / "good.log"
    good.write_text("\n".join(_default_records(5)) + "\n")
    scan = scan_files([str(fake), str(empty), str(good)])
    assert [(i.file, i.line, i.reason.split(" (")[0]) for i in scan.broken] == [
        ("fake.log.gz", 1, "not gzip"),
        ("empty.log.gz", 1, "empty object"),
    ]
    assert (scan.lines, scan.records, scan.malformed) == (7, 5, 2) and scan.reconciled()
