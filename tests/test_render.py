"""The report files from hand-built rows (no Spark): the HTML's units, alignment, containers, glossary and
script; the XLSX's number formats. Expected values are worked out by hand in the test."""

from __future__ import annotations

import datetime as dt
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest

from flowspark.core import reports as R
from flowspark.edges import render

T0 = dt.datetime(2024, 6, 1, 0, 0)


# ---------------------------------------------------------------- units, worked by hand


@pytest.mark.parametrize(
    "n, text",
    [
        (0, "0 B"),
        (76, "76 B"),
        (999, "999 B"),
        (1000, "1.0 kB"),  # decimal: 1 kB = 1,000 B, not 1,024
        (1024, "1.0 kB"),
        (1499, "1.5 kB"),
        (12_345, "12.3 kB"),
        (99_940, "99.9 kB"),
        (99_960, "100 kB"),  # 99.96 kB rounds to 100: no decimal from three digits on
        (123_456_789, "123 MB"),
        (999_999, "1.0 MB"),  # 999.999 kB would read "1000 kB": the next unit
        (2_395_650_000, "2.4 GB"),  # the example
        (1_000_000_000, "1.0 GB"),
        (5_600_000_000_000, "5.6 TB"),
        (3_000_000_000_000_000, "3.0 PB"),
        (-1500, "-1.5 kB"),
        (76.4, "76.4 B"),  # an average (bytes per record) keeps its decimal
        (99.96, "100 B"),
    ],
)
def test_human_bytes(n, text):
    assert render.human_bytes(n) == text


@pytest.mark.parametrize(
    "seconds, text",
    [
        (0, "0 s"),
        (2.5, "2.5 s"),
        (45, "45 s"),
        (59.4, "59 s"),
        (59.6, "1 min"),  # rounds to 60 s
        (90, "1 min 30 s"),
        (300, "5 min"),
        (3599, "59 min 59 s"),
        (3599.7, "1 h"),  # rounds to 3,600 s = 60 min
        (3660, "1 h 1 min"),
        (74_360, "20 h 39 min"),  # the "over 74360 s": 20 h 39 min 20 s, to the minute
        (86_400, "1 d"),
        (90_061, "1 d 1 h"),  # 25 h 1 min 1 s, to the hour
        (200_000, "2 d 8 h"),  # 55.56 h -> 56 h
    ],
)
def test_human_duration(seconds, text):
    assert render.human_duration(seconds) == text


def test_human_counts_money_and_shares():
    assert render.human_count(0) == "0"
    assert render.human_count(1234567) == "1,234,567"
    assert render.human_count(1234.5) == "1,234.50"
    assert render.human_count(2.0) == "2"
    assert render.human_usd(0.279) == "$0.28" and render.human_usd(1234.5) == "$1,234.50"
    assert render.human_usd(0.0004) == "$0.0004" and render.human_usd(0) == "$0.00"
    assert render.human_percent(0.1234) == "12.3 %" and render.human_percent(0.0042) == "0.42 %"
    for none in (render.human_bytes, render.human_duration, render.human_count, render.human_usd):
        assert none(None) == ""


def test_columns_take_their_unit_from_their_name():
    unit = render.column_unit
    assert [unit(c) for c in ("bytes", "bytes_out", "peak_hour_bytes_out", "inbound_bytes", "bytes_per_record")] == [
        "bytes"
    ] * 5
    assert unit("duration_s") == unit("beacon_median_interval_s") == "duration"
    assert unit("cost_usd") == "usd" and unit("share_of_records") == "percent"
    assert unit("port") == unit("asn") == unit("rank") == "id"
    assert unit("flows") == unit("records") == "number"
    # fractions: two decimals, a small one two significant figures; the exact value in the tooltip
    assert [render.cell(v, "size_cv").text for v in (0.8988, 1.11, 0.0, 0.0042, 12345.678)] == [
        "0.90",
        "1.11",
        "0.00",
        "0.0042",
        "12,345.68",
    ]
    assert render.cell(0.8988, "size_cv").title == "0.8988"
    c = render.cell(2_395_650_000, "bytes")
    assert (c.text, c.align, c.sort, c.title) == ("2.4 GB", "n", 2_395_650_000, "2,395,650,000 bytes")
    assert render.cell(443, "port").text == "443" and render.cell(12345, "flows").text == "12,345"
    assert render.cell(6, "protocol").text == "tcp"  # a protocol is a name: text, left
    assert render.cell(74_360, "duration_s").text == "20 h 39 min"


def test_evidence_sentences_in_human_units():
    text = (
        "3 accepted connection(s) to port 22, 2,395,650,000 bytes accepted over 74360 s; "
        "10.0.2.9 called every 300 s (40 intervals, dispersion 0.05), 1200 bytes/flow"
    )
    assert render.human_evidence(text) == (
        "3 accepted connection(s) to port 22, 2.4 GB accepted over 20 h 39 min; "
        "10.0.2.9 called every 5 min (40 intervals, dispersion 0.05), 1.2 kB/flow"
    )
    # an address, a port or a count is left as it is
    assert render.human_evidence("probed 12 of our addresses on port 23, 1.0 packets/record") == (
        "probed 12 of our addresses on port 23, 1.0 packets/record"
    )


# ---------------------------------------------------------------- the HTML from hand-built rows


def _hunt_row(i: int, flags: str = "", evidence: str = "") -> dict:
    return {
        "peer": f"203.0.113.{i}",
        "direction": "inbound" if i % 2 else "outbound",
        "protocol": 6,
        "port": 22 if i % 2 else 443,
        "peer_aws_service": None,
        "flows": 1000 + i,
        "records": 2000 + i,
        "packets": 5000 + i,
        "bytes": 2_395_650_000 + i,
        "bytes_out": 1_000_000 * i,
        "local_addresses": 3,
        "accepted_flows": 1000,
        "rejected_flows": i,
        "accepted_bytes": 2_000_000,
        "first_seen": T0,
        "last_seen": T0 + dt.timedelta(seconds=74_360),
        "packets_per_record": 2.5,
        "mean_bytes_per_record": 1500.0,
        "size_cv": 0.1234,
        "beacon_local": None,
        "beacon_intervals": None,
        "beacon_median_interval_s": 300,
        "beacon_dispersion": None,
        "peak_hour": None,
        "peak_hour_bytes_out": 150_000_000,
        "active_hours": 5,
        "baseline_hour_bytes_out": 1_000_000,
        "duration_s": 74_360,
        "flags": flags,
        "evidence": evidence,
        "computed_at": T0,
    }


def _results(hunt_rows: int = 60) -> tuple[dict, dict, dict]:
    split = [
        {"direction": d, "action": a, "flows": f, "records": f, "packets": f * 3, "bytes": b, "ntp_flows": 0}
        for d, a, f, b in (
            ("east_west", "ACCEPT", 7000, 9_000_000_000),
            ("inbound", "ACCEPT", 5000, 8_000_000_000),
            ("inbound", "REJECT", 12, 700),
            ("outbound", "ACCEPT", 4000, 1_500_000_000),
            ("public_both", "ACCEPT", 3, 400),
        )
    ]
    over_time = [
        {"time": T0 + dt.timedelta(hours=h), "direction": d, "action": a, "flows": 10, "records": 10, "bytes": b}
        for h in range(6)
        for d, a, b in (("east_west", "ACCEPT", 1.5e9), ("inbound", "ACCEPT", 1.5e9), ("inbound", "REJECT", 100))
    ]
    peers = [
        {
            "rank_by": by,
            "rank": k,
            "peer": f"198.51.100.{k}",
            "flows": 100 - k,
            "records": 200,
            "packets": 300,
            "bytes": 10**9 // k,
            "inbound_bytes": 10**8,
            "outbound_bytes": 10**7,
            "local_addresses": 2,
            "first_seen": T0,
            "last_seen": T0,
        }
        for by in ("flows", "bytes")
        for k in range(1, 4)
    ]
    evidence = "3 accepted connection(s) to port 22, 2,000,000 bytes accepted over 74360 s"
    hunt = [_hunt_row(i, "brute_force" if i < 2 else "", evidence if i < 2 else "") for i in range(hunt_rows)]
    results = {
        "north_south": {"split": split, "over_time": over_time, "top_peers": peers},
        "runts": {"by_action": [{"action": "REJECT", "runts": 40, "all_records": 4000, "share_of_records": 0.01}]},
        "hunt": {"peers": hunt},
    }
    extras = {"storage": [{"table": "flows", "rows": 17006, "files": 24, "bytes": 1_234_567, "bytes_per_record": 61.7}]}
    meta = {"lake": "/lake", "range": "all dates", "computed_at": "2024-06-02 00:00:00 UTC", "notes": [], "top_n": 20}
    return results, extras, meta


class _Page(HTMLParser):
    """The tags of a page with their attributes, and the text outside <script>."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.stack: list[str] = []
        self.text: list[str] = []
        self.cells: list[tuple[str, str, str]] = []  # (td/th class, table's header text of it, text)
        self._cell: list[str] | None = None
        self._cls = ""

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))
        if tag not in ("wbr", "meta", "input", "br"):
            self.stack.append(tag)
        if tag in ("td", "th"):
            self._cell, self._cls = [], dict(attrs).get("class") or ""

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._cell is not None:
            self.cells.append((tag, self._cls, "".join(self._cell)))
            self._cell = None
        while self.stack and self.stack.pop() != tag:
            pass

    def handle_data(self, data):
        if "script" in self.stack or "style" in self.stack:
            return
        self.text.append(data)
        if self._cell is not None:
            self._cell.append(data)


@pytest.fixture(scope="module")
def page(tmp_path_factory) -> tuple[str, _Page]:
    results, extras, meta = _results()
    path = render.write_html(tmp_path_factory.mktemp("html") / "flowspark_all.html", results, extras, meta)
    html = Path(path).read_text(encoding="utf-8")
    p = _Page()
    p.feed(html)
    return html, p


def test_html_loads_nothing_from_outside(page):
    html, p = page
    for tag, attrs in p.tags:
        for name in ("src", "href"):
            value = attrs.get(name) or ""
            assert not re.match(r"\s*(https?:)?//", value), (tag, name, value)
        assert tag != "link", attrs  # no stylesheet, no icon
        if tag == "script":
            assert "src" not in attrs  # the script is inline
    assert not re.search(r"url\(\s*['\"]?(https?:)?//", html)
    assert not re.search(r"@import", html)
    # the one script: inline, after the content
    assert html.count("<script") == 1 and html.index("<script") > html.index('id="lake"')


def test_wide_tables_sit_in_a_container_that_scrolls_and_the_evidence_wraps(page):
    html, _ = page
    # every table is inside a <div class="tbl">, and .tbl scrolls sideways within its section
    assert html.count("<table") == html.count('<div class="tbl"><table')
    assert re.search(r"\.tbl\s*\{[^}]*overflow-x:\s*auto", html)
    # the hunt's evidence sentence wraps (white-space: normal) instead of widening the table
    assert re.search(r"td\.wrap\s*\{[^}]*white-space:\s*normal", html)
    hunt = html[html.index('id="hunt"') :]
    assert re.search(r'<td class="t wrap"[^>]*>3 accepted connection\(s\) to port 22, 2\.0 MB accepted', hunt)
    # the summary: the evidence among its first dozen columns; the details table holds every column
    first, details = hunt.split("<h3>Hunt: all evidence columns</h3>")
    heads = re.findall(r"<th [^>]*>(.*?)</th>", first.split("</thead>")[0])
    assert len(heads) <= 12 and heads[-1] == "evidence"
    assert "baseline_<wbr>hour_<wbr>bytes_<wbr>out" in details.split("</thead>")[0]


def test_numbers_right_and_text_left(page):
    html, p = page
    assert re.search(r"\.t\s*\{\s*text-align:\s*left", html) and re.search(r"\.n\s*\{\s*text-align:\s*right", html)
    cells = {text: cls for tag, cls, text in p.cells if tag == "td"}
    assert cells["2.4 GB"] == "n"  # bytes
    assert cells["1,000"] == "n"  # a count
    assert cells["5 min"] == "n"  # a duration (300 s)
    assert cells["203.0.113.1"] == "t" and cells["brute_force"] == "t" and cells["inbound"] == "t"
    assert cells["2024-06-01 00:00"] == "t" and cells["tcp"] == "t"
    heads = {text: cls for tag, cls, text in p.cells if tag == "th"}
    assert heads["bytes"] == "n" and heads["peer"] == "t"


def test_glossary_names_every_direction_label(page):
    html, p = page
    glossary = html[html.index('<div class="glossary"') : html.index('id="look"')]
    terms = re.findall(r"<dt>(.*?)</dt>", glossary)
    assert set(R.DIRECTIONS) <= set(terms)  # the labels reports.direction() can write
    assert "north/south" in terms
    assert "1 kB = 1,000 B" in glossary  # which kilo


def test_tables_read_without_script(page):
    """Every row shown is in the markup: the script only sorts and filters what is there."""
    html, p = page
    text = "".join(p.text)
    for value in ("203.0.113.0", "203.0.113.49", "198.51.100.3", "public_both", "17,006", "1.2 MB", "61.7 B"):
        assert value in text, value
    # 60 hunt rows, 50 shown: the note says where the other 10 are
    assert "10 more rows in hunt_peers.csv, flowspark_all.xlsx (sheet hunt.peers) and the Delta table" in text
    assert "203.0.113.50" not in text
    # the sort/filter hint shows only when the script runs (it marks <html> "js")
    assert re.search(r"\.jsonly\s*\{\s*display:\s*none", html) and '<span class="jsonly">Click a column' in html
    # nothing the page needs is made by the script: no document.write, no innerHTML of rows
    script = html[html.index("<script>") : html.index("</script>")]
    assert "document.write" not in script and "innerHTML" not in script and "fetch(" not in script


def test_the_more_rows_note_follows_the_formats_written(tmp_path):
    results, extras, meta = _results()
    html = render.write_html(tmp_path / "r.html", results, extras, dict(meta, formats=("html",))).read_text()
    assert "10 more rows in the Delta table reports/hunt/peers of the lake (--format csv,xlsx writes them" in html
    assert "hunt_peers.csv" not in html


def test_charts_have_human_axes_and_no_offset(page):
    html, _ = page
    svgs = re.findall(r"<svg.*?</svg>", html, re.S)
    assert len(svgs) >= 4
    # matplotlib writes tick labels as comments in its SVG ("<!-- 1.0 GB -->"); no 1e9 offset text
    comments = " ".join(re.findall(r"<!-- (.*?) -->", " ".join(svgs)))
    assert re.search(r"\d(\.\d)? GB", comments) and "log scale" in comments
    assert not re.search(r"1e\d|\\times 10|×10", comments)
    # the time chart: one panel per direction (its title), so east_west and inbound are apart
    assert "east_west" in comments and "inbound" in comments


def test_xlsx_keeps_exact_numbers_with_separators(tmp_path):
    from openpyxl import load_workbook

    results, _, _ = _results(hunt_rows=3)
    path = render.write_xlsx(tmp_path / "r.xlsx", results)
    ws = load_workbook(path)["hunt.peers"]
    head = [c.value for c in ws[1]]
    row = {h: c for h, c in zip(head, ws[2])}
    assert row["bytes"].value == 2_395_650_000 and row["bytes"].number_format == "#,##0"
    assert row["port"].number_format == "0"  # a port is a name
    assert row["size_cv"].number_format == "#,##0.0000"
    assert row["first_seen"].number_format == "yyyy-mm-dd hh:mm:ss"


def test_blank_column_notes_are_shown_once_under_their_section(tmp_path):
    """meta['column_notes'] (the report job's: why a column is blank) goes under the section's last table."""
    results, extras, meta = _results()
    why = "no --asn-db given (a MaxMind-format ASN .mmdb adds asn and asn_org)"
    notes = {"north_south/top_peers": [{"columns": ["asn", "asn_org"], "why": why}]}
    html = render.write_html(tmp_path / "r.html", results, extras, dict(meta, column_notes=notes)).read_text()
    assert html.count(f"Blank or left out: asn, asn_org: {why}.") == 1
    assert html.index(why) > html.index("Top Internet peers by flows")


def test_intel_contacts_are_one_line_per_listed_address():
    """What to look at: a listed scanner that touched three of ours is one line ("3 of our addresses") with
    the sums, after a listed address one of ours talked with and was accepted."""
    import datetime as dt

    from flowspark.edges.render import _intel_look

    t = dt.datetime(2024, 6, 1, 8)
    base = {"list_name": "l", "cidr": None, "label": None, "version": 1, "loaded_at": t, "bytes_to_listed": 0}
    rows = [
        {**base, "listed": "1.1.1.1", "local": f"10.0.0.{i}", "resource": None, "flows": 2, "accepted_flows": 0,
         "bytes_from_listed": 10, "first_seen": t + dt.timedelta(minutes=i), "last_seen": t + dt.timedelta(hours=i)}
        for i in range(3)
    ]  # fmt: skip
    rows.append(
        {**base, "listed": "2.2.2.2", "local": "10.0.0.9", "resource": "i-1 (instance)", "flows": 5,
         "accepted_flows": 5, "bytes_to_listed": 100, "bytes_from_listed": 10, "first_seen": t, "last_seen": t}
    )  # fmt: skip
    got = [
        (r["listed"], r["local"], r["resource"], r["flows"], r["accepted_flows"], r["bytes_from_listed"],
         r["first_seen"], r["last_seen"])
        for r in _intel_look(rows)
    ]  # fmt: skip
    assert got == [
        ("2.2.2.2", "10.0.0.9", "i-1 (instance)", 5, 5, 10, t, t),
        ("1.1.1.1", "3 of our addresses", None, 6, 0, 30, t, t + dt.timedelta(hours=2)),
    ]


def test_findings_lead_what_to_look_at_and_scans_are_summed(tmp_path):
    results, extras, meta = _results()
    t = dt.datetime(2024, 6, 1, 8)

    def finding(detection, severity, local, peer, evidence, fid):
        return {"finding_id": fid, "detection": detection, "technique": "T1071", "technique_name": "Application Layer "
                "Protocol", "severity": severity, "local": local, "peer": peer, "resource": "i-0abc (instance)",
                "evidence": evidence, "first_seen": t, "last_seen": t + dt.timedelta(days=1), "days": 2}

    extras = dict(extras, findings=[
        finding("beaconing", "HIGH", "10.0.9.1", "86.70.0.1", "10.0.9.1 called 86.70.0.1 port 443 every 60 s", "b1"),
        finding("port_probe", "HIGH", "10.0.1.1", None, "port 3306/tcp of 10.0.1.1 probed by 20 Internet peers", "p1"),
        finding("port_probe", "LOW", "10.0.1.4", None, "port 5432/tcp of 10.0.1.4 probed by 20 Internet peers", "p2"),
    ], finding_counts=[
        {"detection": "port_probe", "severity": "HIGH", "count": 451},
        {"detection": "port_probe", "severity": "LOW", "count": 1253},
        {"detection": "beaconing", "severity": "HIGH", "count": 1},
    ])
    html = render.write_html(tmp_path / "r.html", results, extras, meta).read_text()
    p = _Page()
    p.feed(html)
    text = " ".join(" ".join(p.text).split())
    look = text[text.index("What to look at") :]
    beacon = look.index("HIGH beaconing (T1071 Application Layer Protocol): 10.0.9.1 (i-0abc (instance)) and 86.70.0.1")
    assert "2024-06-01 08:00 UTC to 2024-06-02 08:00 UTC (2 days) finding b1" in look
    probes = look.index("port probe: 1,704 finding(s) (451 HIGH, 1,253 LOW; the Internet's background scanning")
    assert beacon < probes  # the findings one by one, then the scans in a line each
    assert "e.g. HIGH: port 3306/tcp of 10.0.1.1 probed by 20 Internet peers; LOW: port 5432/tcp" in look
    assert "HIGH port probe" not in look  # scans are one line, not a line each


def test_the_network_sections_period_and_late_objects(tmp_path):
    """The period table sits first in the network section, each figure in its measure's unit and the change
    share signed; the data-quality panel shows late objects with the grace in a note."""
    results, extras, meta = _results()
    first, last = dt.date(2024, 6, 1), dt.date(2024, 6, 2)
    results["network"] = {
        "period": [
            {"position": 1, "measure": "flows", "current": 3000, "previous": 2000, "change": 1000,
             "change_share": 0.5, "previous_from": first, "previous_to": last},
            {"position": 4, "measure": "bytes", "current": 1_680_000, "previous": 1_200_000, "change": 480_000,
             "change_share": 0.4, "previous_from": first, "previous_to": last},
            {"position": 5, "measure": "rejected_bytes", "current": 180, "previous": 0, "change": 180,
             "change_share": None, "previous_from": first, "previous_to": last},
            {"position": 8, "measure": "source_addresses", "current": 2, "previous": 4, "change": -2,
             "change_share": -0.5, "previous_from": first, "previous_to": last},
        ],
        "data_quality": [
            {"day": first, "objects": 4, "broken_objects": 0, "records": 150, "rejected_lines": 2, "nodata": 0,
             "skipdata": 0, "late_objects": 1, "max_delay_minutes": 60.5, "rejected_share": 0.013333},
        ],
    }  # fmt: skip
    notes = [
        "previous period: 2024-06-01 to 2024-06-02, the 2 day(s) just before the range",
        "late objects: delivered more than 60 minutes after the end of the last UTC day of their records "
        "([reports] late_after_minutes)",
    ]
    html = render.write_html(tmp_path / "r.html", results, extras, dict(meta, notes=notes)).read_text()
    p = _Page()
    p.feed(html)
    network = html[html.index('<h2 id="network">') :]
    assert network.index("This range beside the previous period") < network.index("Rejected traffic by cause")
    cells = [c[2] for c in p.cells]
    i = cells.index("bytes", cells.index("measure"))  # its row: current, previous, change in bytes, share signed
    assert cells[i + 1 : i + 5] == ["1.7 MB", "1.2 MB", "480 kB", "+40.0 %"]
    i = cells.index("rejected_bytes", cells.index("measure"))
    assert cells[i + 1 : i + 5] == ["180 B", "0 B", "180 B", ""]  # no share of a previous 0
    i = cells.index("source_addresses")
    assert cells[i + 1 : i + 5] == ["2", "4", "-2", "-50.0 %"]
    assert "the 2 day(s) just before the range" in network and "late_<wbr>objects" in network
    assert "([reports] late_after_minutes)" in network
    i = cells.index("2024-06-01", cells.index("late_objects"))  # the data-quality row: its delay as a duration
    assert cells[i + 7 : i + 9] == ["1", "1 h"]  # late_objects, max_delay_minutes 60.5 (not "60.50")
    # the network's notes are not repeated among the talkers'
    assert html.count("late objects: delivered more than 60 minutes") == 1
