"""The eleven tag-mapper solutions' samples (tests/data/samples/tagmapper-*) with their verified answers.

Shared by test_tags.py (single-file mode) and test_tags_spark.py (lake mode): a plain module, not a test
module. The answers come from each sample folder's README (tests/data/samples/tagmapper-*/README.md).
"""

from __future__ import annotations

from pathlib import Path

UNTAGGED = "Untagged"

# ----------------------------------------------------------------------------- verified answers

CANONICAL_TAGS = [("email", 3), ("sv_P1", 2), ("sv_P2", 1), (UNTAGGED, 8)]
CANONICAL_PORTS = [23, 25, 80, 110, 143, 443, 993, 1024, 49153, 49154, 49155, 49156, 49157, 49158]


def tcp1(ports: list[int], *, drop: tuple[int, ...] = ()) -> list[tuple[int, str, int]]:
    return [(p, "tcp", 1) for p in ports if p not in drop]


# case id -> (folder, log files, lookup, tag rows, port rows, malformed line numbers, skipped line numbers)
CASES: dict[str, tuple[str, list[str], str, list, list, list[int], list[int]]] = {
    "exercise": (
        "tagmapper-exercise",
        ["flow_logs.txt"],
        "lookup_table.csv",
        CANONICAL_TAGS,
        tcp1(CANONICAL_PORTS),
        [],
        [],
    ),
    # tab-separated lookup, trailing spaces, no final newline
    "naterate": (
        "tagmapper-naterate",
        ["flow_logs.txt"],
        "lookup_table.csv",
        CANONICAL_TAGS,
        tcp1(CANONICAL_PORTS),
        [],
        [],
    ),
    # two 13-field lines
    "zqy-nku": (
        "tagmapper-zqy-nku",
        ["flow_logs.txt"],
        "lookup_table.csv",
        CANONICAL_TAGS,
        tcp1(CANONICAL_PORTS),
        [15, 16],
        [],
    ),
    "zqy-nku-empty": ("tagmapper-zqy-nku", ["flow_logs_empty.txt"], "lookup_table.csv", [], [], [], []),
    # tc_output/ppc_output (the README's quote of the prompt, Untagged 9, is wrong for this data)
    "sunnythetrader": (
        "tagmapper-sunnythetrader",
        ["flowlogs.txt"],
        "lookup.csv",
        CANONICAL_TAGS,
        tcp1(CANONICAL_PORTS),
        [],
        [],
    ),
    # NBSP/CRLF/blank lines; the published port list is srcport, the verified one dstport
    "staryork": (
        "tagmapper-staryork",
        ["flow_logs.txt"],
        "lookup_table.csv",
        CANONICAL_TAGS,
        tcp1(CANONICAL_PORTS),
        [],
        [],
    ),
    # UTF-8 BOM before record 1; header 'dstport,name,tag'; two more records to 22/tcp
    "haozhang96": (
        "tagmapper-haozhang96",
        ["input.log"],
        "lookup_table.csv",
        [("email", 3), ("sv_P1", 2), ("sv_P4", 2), ("sv_P2", 1), (UNTAGGED, 8)],
        [(22, "tcp", 2), *tcp1(CANONICAL_PORTS)],
        [],
        [],
    ),
    # duplicate record; version 5, dstport '-', protocol '-', 13 fields; (31, udp) tagged twice
    "el-michael": (
        "tagmapper-el-michael",
        ["flow_logs.txt"],
        "lookup_table.csv",
        [("email", 3), ("sv_P1", 2), ("sv_P2", 1), (UNTAGGED, 9)],
        [(49154, "tcp", 2), *tcp1(CANONICAL_PORTS, drop=(49154,))],
        [16, 19],
        [17, 18],
    ),
    # protocol 1024 (invalid), dstport '-', protocol '-'; blank line between records; headerless lookup
    "harshamupparaju97": (
        "tagmapper-harshamupparaju97",
        ["flow_logs.txt"],
        "lookup_table.csv",
        [("email", 3), ("sv_P1", 2), ("sv_P2", 1), (UNTAGGED, 5)],
        tcp1(CANONICAL_PORTS, drop=(49156, 49157, 49158)),
        [7],
        [9, 11],
    ),
    # record 7 is udp: 80/udp
    "madura27": (
        "tagmapper-madura27",
        ["input_flow_logs.txt"],
        "lookup_table.csv",
        CANONICAL_TAGS,
        [(p, "udp" if p == 80 else "tcp", 1) for p in CANONICAL_PORTS],
        [],
        [],
    ),
    # lookup header commented out
    "raghu-megh": (
        "tagmapper-raghu-megh",
        ["V2-flow-log.log"],
        "lookup-table.csv",
        CANONICAL_TAGS,
        tcp1(CANONICAL_PORTS),
        [],
        [],
    ),
    # action SUCCESS (line 7, the only 80/tcp record), version 3, log-status GO_AWAY
    "raghu-megh-faulty": (
        "tagmapper-raghu-megh",
        ["V2-flow-log-3-faulty.log"],
        "lookup-table.csv",
        [("email", 3), ("sv_P1", 2), ("sv_P2", 1), (UNTAGGED, 7)],
        tcp1(CANONICAL_PORTS, drop=(80,)),
        [7, 15, 16],
        [],
    ),
    # last record (143/tcp) repeated
    "raghu-megh-main": (
        "tagmapper-raghu-megh",
        ["main-V2-flow-log.log"],
        "main-lookup-table.csv",
        [("email", 4), ("sv_P1", 2), ("sv_P2", 1), (UNTAGGED, 8)],
        [(143, "tcp", 2), *tcp1(CANONICAL_PORTS, drop=(143,))],
        [],
        [],
    ),
    # AWS doc records + 4 broken v3 lines; 'ICMP' upper case in the lookup; no Untagged row
    "francis-pang": (
        "tagmapper-francis-pang",
        ["flow-log-full.txt"],
        "lookup-full.csv",
        [("new_P1", 4), ("new_P2", 1)],
        [(0, "icmp", 2), (22, "tcp", 2), (3389, "tcp", 1)],
        [6, 7, 8, 9],
        [],
    ),
    "francis-pang-single": (
        "tagmapper-francis-pang",
        ["flow-log-single.txt"],
        "lookup-full.csv",
        [("new_P1", 1)],
        [(22, "tcp", 1)],
        [],
        [],
    ),
    # Policy: 253 is a valid IANA number (experimentation), so the record counts, as Untagged.
    "francis-pang-253": (
        "tagmapper-francis-pang",
        ["flow-log-invalid-protocol.txt"],
        "lookup-full.csv",
        [(UNTAGGED, 1)],
        [(22, "253", 1)],
        [],
        [],
    ),
    "brijmccsh": (
        "tagmapper-brijmccsh",
        ["flow_logs.txt"],
        "lookup_table.csv",
        [
            ("dns", 2),
            *[(t, 1) for t in ["ftp_data", "http_alt", "https", "imap", "pop3s", "postgresql", "redis", "snmptrap"]],
            (UNTAGGED, 10),
        ],
        [(53, "udp", 2)]
        + [
            (p, "udp" if p in (162, 49170) else "tcp", 1)
            for p in [20, 143, 162, 443, 995, 5432, 6379, 8080, 49152, 49154, 49156, 49158, 49160, 49163]
            + [49164, 49166, 49168, 49170]
        ],
        [],
        [],
    ),
}


def case_paths(samples: Path, case: str) -> tuple[list[str], Path]:
    folder, logs, lookup = CASES[case][:3]
    return [str(samples / folder / f) for f in logs], samples / folder / lookup
