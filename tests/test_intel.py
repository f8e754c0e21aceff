"""Threat-intelligence lists: real excerpts of FireHOL's level1 netset and Spamhaus DROP (tests/data/intel, their
source named there), a CSV and Tor's exit-list format, parsed with the line of every entry and every line
rejected; `flowspark intel load` keeps one version per content; the network report lists the local addresses
that talked with a listed one (which list, version, bytes each way), never a private address that a list's
bogon range (10.0.0.0/8) covers. Answers worked out by hand below."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import pytest
from chispa import assert_df_equality

from flowspark.cli import main
from flowspark.core import intel as I
from flowspark.edges import tables
from flowspark.pipelines.intel import run_intel_load, stale_lists

DATA = Path(__file__).parent / "data" / "intel"
FIREHOL, DROP = DATA / "firehol_level1-excerpt.netset", DATA / "spamhaus_drop-excerpt.txt"


def test_a_netset_with_its_header_comments_and_bare_addresses():
    p = I.parse_list(FIREHOL.read_text())
    assert p.fmt == "netset" and not p.rejected and p.duplicates == 0
    # 34 header lines, then the 18 entries, each with its line; a bare address is its /32
    assert len(p.entries) == 18 and p.entries[0] == (35, "0.0.0.0/8", None)
    assert (38, "1.93.0.224/32", None) in p.entries and (48, "8.5.1.38/31", None) in p.entries


def test_spamhaus_drop_keeps_the_sbl_id_as_label():
    p = I.parse_list(DROP.read_text())
    assert p.fmt == "drop" and not p.rejected
    assert p.entries[:2] == [(5, "1.4.0.0/17", "SBL256893"), (6, "1.10.16.0/20", "SBL256894")]
    assert len(p.entries) == 9


def test_csv_and_tor_exit_lists_and_the_lines_they_reject():
    text = (
        "# my own list\n"
        "ip,label,first_seen\n"
        "198.51.100.7,scanner,2024-05-30\n"
        "2001:db8:1::/48,c2 range,\n"
        "not-an-ip,x,y\n"
        "10.0.0.0/4,too wide,\n"  # wider than /8
        "198.51.100.7,scanner,2024-05-30\n"  # the same entry again: once
        "203.0.113.9,short\n"  # two columns of three
    )
    p = I.parse_list(text)
    assert p.fmt == "csv" and p.duplicates == 1
    assert p.entries == [
        (3, "198.51.100.7/32", "label=scanner; first_seen=2024-05-30"),
        (4, "2001:db8:1::/48", "label=c2 range"),
    ]
    assert [(n, why.split(":")[0]) for n, _, why in p.rejected] == [
        (5, "not an IP address or CIDR"),
        (6, "wider than /8 (IPv4)"),
        (8, "2 columns, the header has 3"),
    ]
    tor = "ExitNode 0011BD2485AD45D984EC4159C88FC066E5E3300E\nPublished 2024-06-01 00:00:00\n"
    tor += "LastStatus 2024-06-01 01:00:00\nExitAddress 171.25.193.25 2024-06-01 01:12:00\n"
    assert I.parse_list(tor).entries == [(4, "171.25.193.25/32", None)]


FLOWS = (
    "interface_id string, srcaddr string, dstaddr string, srcport int, dstport int, protocol int, action string, "
    "records bigint, packets bigint, bytes bigint, start timestamp, `end` timestamp, event_date date"
)
T = dt.datetime(2024, 6, 1, 8, 0)
LOCAL, OTHER_LOCAL, LISTED, CLEAN = "10.0.0.5", "10.0.1.9", "1.10.16.5", "45.9.9.9"


def _flow(src, dst, sport, dport, action, nbytes, minute):
    start = T + dt.timedelta(minutes=minute)
    return ("eni-a", src, dst, sport, dport, 6, action, 1, 1, nbytes, start, start + dt.timedelta(seconds=20), T.date())


ROWS = [
    _flow(LOCAL, LISTED, 50000, 443, "ACCEPT", 1000, 1),  # out to an address on both lists
    _flow(LISTED, LOCAL, 443, 50000, "ACCEPT", 500, 1),  # its response
    _flow(LISTED, LOCAL, 40000, 22, "REJECT", 60, 30),  # a later knock, rejected
    _flow(LOCAL, OTHER_LOCAL, 41000, 5432, "ACCEPT", 700, 2),  # inside the VPC: FireHOL's 10/8, never a match
    _flow(CLEAN, LOCAL, 42000, 443, "ACCEPT", 300, 3),  # on no list
]


@pytest.fixture(scope="module")
def intel_lake(spark, tmp_path_factory):
    lake = str(tmp_path_factory.mktemp("intel_lake"))
    spark.createDataFrame(ROWS, FLOWS).write.format("delta").partitionBy("event_date").save(f"{lake}/flows")
    return lake


def test_loads_keep_one_version_per_content_and_each_contact_is_named(spark, intel_lake, tmp_path):
    s = run_intel_load(spark, intel_lake, "firehol_level1", str(FIREHOL))
    assert (s.status, s.version, s.entries, s.ipv4) == ("loaded", 1, 18, 18), s.text()
    again = run_intel_load(spark, intel_lake, "firehol_level1", str(FIREHOL))
    assert (again.status, again.version) == ("unchanged", 1)
    # a new copy of the list (one entry less): version 2, which the report reads
    newer = tmp_path / "level1.netset"
    newer.write_text(FIREHOL.read_text().replace("31.3.24.130\n", ""))
    assert run_intel_load(spark, intel_lake, "firehol_level1", str(newer)).version == 2
    assert run_intel_load(spark, intel_lake, "spamhaus_drop", str(DROP)).version == 1
    stored = tables.read(spark, intel_lake, tables.INTEL_LISTS)
    assert stored.groupBy("list_name", "version").count().orderBy("list_name", "version").collect() == [
        ("firehol_level1", 1, 18),
        ("firehol_level1", 2, 17),
        ("spamhaus_drop", 1, 9),
    ]
    # the report's section is this transform over each list's newest version (the HTML report's test in
    # tests/test_reports.py runs it through the report job)
    flows = tables.read(spark, intel_lake, tables.FLOWS)
    got = I.intel_contacts(flows, I.latest_versions(stored)).drop("loaded_at")
    # 1.10.16.5 is in 1.10.16.0/20 on both lists: three flows with the local address (two accepted, one
    # rejected), 1000 bytes to it, 500 + 60 from it; 10.0.1.9 (in FireHOL's 10.0.0.0/8) and 45.9.9.9: none
    first, last = T + dt.timedelta(minutes=1), T + dt.timedelta(minutes=30, seconds=20)
    expected = spark.createDataFrame(
        [
            ("firehol_level1", 2, LISTED, "1.10.16.0/20", None, LOCAL, 3, 2, 1, 1000, 560, first, last),
            ("spamhaus_drop", 1, LISTED, "1.10.16.0/20", "SBL256894", LOCAL, 3, 2, 1, 1000, 560, first, last),
        ],
        "list_name string, version bigint, listed string, cidr string, label string, local string, flows bigint, "
        "accepted_flows bigint, rejected_flows bigint, bytes_to_listed bigint, bytes_from_listed bigint, "
        "first_seen timestamp, last_seen timestamp",
    )
    assert_df_equality(got.select(*expected.columns), expected, ignore_row_order=True, ignore_nullable=True)
    # a list older than intel_max_age_days is named, with its version and load date
    now = dt.datetime.now(dt.timezone.utc)
    assert stale_lists(I.latest_versions(stored), 7, now) == []
    later = stale_lists(I.latest_versions(stored), 7, now + dt.timedelta(days=8))
    assert [x.split(" (")[0] for x in later] == ["firehol_level1", "spamhaus_drop"] and "version 2" in later[0]


def test_cli_load_errors_are_one_line(tmp_path, capsys):
    lake = tmp_path / "lake"
    assert main(["intel", "load", "--lake", str(lake), "--name", "bad name", "--file", str(FIREHOL)]) == 2
    assert "--name 'bad name'" in capsys.readouterr().err
    assert main(["intel", "load", "--lake", str(lake), "--name", "x", "--file", str(tmp_path / "none.txt")]) == 2
    err = capsys.readouterr().err.strip()
    assert err == f"flowspark intel: error: list file not found: {tmp_path / 'none.txt'}"
    empty = tmp_path / "empty.netset"
    shutil.copy(DATA / "README.md", empty)  # prose: no line is an address
    assert main(["intel", "load", "--lake", str(lake), "--name", "x", "--file", str(empty)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no line is an address or CIDR" in err[0]
