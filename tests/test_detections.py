"""Detections on hand-made flows with answers worked out by hand: each pattern once, beside a look-alike
just short of its threshold (or benign in the way the rule's reason says), all in one set of flows, so
that every rule is checked for what it finds and for what it must not find."""

from __future__ import annotations

import datetime as dt
import random

import pytest
from pyspark.sql import functions as F

from flowspark.core.detections import base as B
from flowspark.core.detections.engine import detect, detection_flows
from flowspark.core.detections.findings import evidence_flows, findings
from flowspark.core.detections.lists import listed_peers
from flowspark.core.intel import INTEL_SCHEMA, entry_rows, parse_list
from flowspark.core.ipranges import classified_flows
from tests.test_reports import classes, flow, frame

D = dt.datetime(2024, 6, 10, 8, 0, 0)  # the day the rules look at; the days before are history
DAY = D.date()


def cf_of(spark, rows):
    """Classified flows (the pkt- addresses are no rule's business: not classified, a cheaper plan)."""
    return classified_flows(frame(spark, rows), classes(spark))


def at(minutes=0.0, days=0):
    return D + dt.timedelta(days=days, minutes=minutes)


# Internet peers (public, not in AWS's prefixes in these tests)
PROBERS = [f"45.{i + 1}.7.9" for i in range(40)]
VSCAN, VSCAN_SHORT, SWEEP, SWEEP_SHORT, SWEEP_VARIED = "80.10.0.1", "80.10.0.2", "80.10.0.3", "80.10.0.4", "80.10.0.5"
BRUTE, BRUTE_WON, ADMIN, BRUTE_SHORT, DEPLOY = "81.20.0.1", "81.20.0.2", "81.20.0.3", "81.20.0.4", "81.20.0.5"
VICTIM, BULK, DNS_PEER, BURST = "82.30.0.1", "82.30.0.2", "82.30.0.3", "82.30.0.4"
MX = [f"83.40.{i}.25" for i in range(30)]
USUAL, IRC, ALT = "84.50.0.1", "84.50.0.2", "84.50.0.3"
DROP, BACKUP = "85.60.0.1", "85.60.0.2"
C2, MONITOR, WEB = "86.70.0.1", "86.70.0.2", "86.70.0.3"
C2_NINE, C2_TWO, METRICS = "86.70.0.4", "86.70.0.5", "86.70.0.6"
DNS_RESOLVER = "1.0.0.1"


def _rows():
    r = []
    # port_probe: 20 peers knock once on 10.0.1.1:3306 (one accepted: the database answers the Internet,
    # HIGH); 20 peers on 10.0.1.4:5432, all rejected (LOW); 19 on 10.0.1.2:8080 (one short); 25 real
    # clients of 10.0.1.3:443, 10 packets a record (not probes)
    for i in range(20):
        r.append(flow(PROBERS[i], "10.0.1.1", 40000 + i, 3306, action="ACCEPT" if i == 0 else "REJECT", start=at(i)))
        r.append(flow(PROBERS[i], "10.0.1.4", 41000 + i, 5432, action="REJECT", start=at(i)))
    for i in range(19):
        r.append(flow(PROBERS[20 + i], "10.0.1.2", 42000 + i, 8080, action="REJECT", start=at(i)))
    for i in range(25):
        r.append(flow(PROBERS[i], "10.0.1.3", 43000 + i, 443, packets=10, nbytes=5_000, start=at(i)))
    # vertical_scan: VSCAN probes 15 ports (1-15) of 10.0.2.1, port 7 accepted (MEDIUM); VSCAN_SHORT 14
    for p in range(1, 16):
        r.append(flow(VSCAN, "10.0.2.1", 50000, p, action="ACCEPT" if p == 7 else "REJECT", start=at(p / 10)))
    for p in range(1, 15):
        r.append(flow(VSCAN_SHORT, "10.0.2.2", 50000, p, action="REJECT", start=at(p / 10)))
    # horizontal_sweep: SWEEP knocks on 23 of ten addresses (LOW); SWEEP_SHORT on nine
    for i in range(10):
        r.append(flow(SWEEP, f"10.0.3.{i + 1}", 51000 + i, 23, action="REJECT", start=at(i)))
    for i in range(9):
        r.append(flow(SWEEP_SHORT, f"10.0.3.{i + 1}", 52000 + i, 23, action="REJECT", start=at(i)))
    # SWEEP_VARIED reaches port 80 of the same ten, records of 1 packet (60 bytes) and 3 (3,000) in turn:
    # sizes this unlike (coefficient of variation ~0.96, over sweep_max_size_cv 0.5) are no scanner's probes
    for i in range(10):
        packets, nbytes = (1, 60) if i % 2 else (3, 3_000)
        r.append(flow(SWEEP_VARIED, f"10.0.3.{i + 1}", 53000 + i, 80, packets=packets, nbytes=nbytes, start=at(i)))
    # brute_force: BRUTE makes 20 accepted 3 kB SSH connections to 10.0.4.1 (MEDIUM); BRUTE_WON 25 to RDP
    # of 10.0.4.2, one of them a 2 MB session (HIGH: the median stays 2 kB); ADMIN 5 big SSH sessions
    # (not attempts); BRUTE_SHORT 19
    for i in range(20):
        r.append(flow(BRUTE, "10.0.4.1", 30000 + i, 22, packets=12, nbytes=3_000, start=at(i)))
    for i in range(25):
        r.append(flow(BRUTE_WON, "10.0.4.2", 31000 + i, 3389, packets=12, nbytes=2_000, start=at(i)))
    r.append(flow(BRUTE_WON, "10.0.4.2", 31100, 3389, packets=3000, nbytes=2_000_000, start=at(30), secs=600))
    for i in range(5):
        r.append(flow(ADMIN, "10.0.4.3", 32000 + i, 22, packets=4000, nbytes=5_000_000, start=at(60 * i), secs=1200))
    for i in range(19):
        r.append(flow(BRUTE_SHORT, "10.0.4.4", 33000 + i, 22, packets=12, nbytes=3_000, start=at(i)))
    # DEPLOY makes 25 accepted SSH connections to 10.0.4.5 of 50 kB each (a deploy job copying files): as
    # many as a brute force, but each far over brute_max_bytes (20 kB): logins that did work, not attempts
    for i in range(25):
        r.append(flow(DEPLOY, "10.0.4.5", 34000 + i, 22, packets=80, nbytes=50_000, start=at(2 * i), secs=20))
    # outbound_dos: 10.0.5.1 sends VICTIM:53 900,000 80-byte datagrams in 60 s (15,000/s: HIGH);
    # 10.0.5.2 sends BULK 900,000 1,400-byte packets in 60 s, every hour for 6 hours (a bulk upload, and at
    # its own baseline); 10.0.5.3 sends DNS_PEER:53 480,000 in 60 s (8,000/s: under 10,000)
    r.append(flow("10.0.5.1", VICTIM, 40001, 53, proto=17, packets=900_000, nbytes=72_000_000, start=at(5), secs=60))
    for h in range(6):
        r.append(
            flow("10.0.5.2", BULK, 40002 + h, 443, packets=900_000, nbytes=1_260_000_000, start=at(60 * h), secs=60)
        )
    r.append(flow("10.0.5.3", DNS_PEER, 40003, 53, proto=17, packets=480_000, nbytes=38_400_000, start=at(5), secs=60))
    # 10.0.5.4 sends BURST:53 300,000 80-byte datagrams in 10 s (30,000/s, but for 10 s: under
    # dos_min_seconds' 60, a burst and not a flood)
    r.append(flow("10.0.5.4", BURST, 40004, 53, proto=17, packets=300_000, nbytes=24_000_000, start=at(5), secs=10))
    # spam_bot: 10.0.6.1 sends SMTP to 25 mail servers (HIGH); 10.0.6.2 to 24
    for i in range(25):
        r.append(flow("10.0.6.1", MX[i], 45000 + i, 25, packets=20, nbytes=8_000, start=at(i)))
    for i in range(24):
        r.append(flow("10.0.6.2", MX[i], 46000 + i, 25, packets=20, nbytes=8_000, start=at(i)))
    # unusual_port: 10.0.7.1 used 443 on each of the 5 days before, today IRC:6667 with 200 kB (MEDIUM)
    # and ALT:8443 with 50 kB (under 100 kB); 10.0.7.2 is new (seen yesterday only) and uses 6667 too
    for d in range(-5, 1):
        r.append(flow("10.0.7.1", USUAL, 47000, 443, packets=20, nbytes=20_000, start=at(0, d)))
    r.append(flow("10.0.7.1", IRC, 47001, 6667, packets=200, nbytes=200_000, start=at(10)))
    r.append(flow("10.0.7.1", ALT, 47002, 8443, packets=50, nbytes=50_000, start=at(10)))
    r.append(flow("10.0.7.2", USUAL, 47003, 443, packets=20, nbytes=20_000, start=at(0, -1)))
    r.append(flow("10.0.7.2", IRC, 47004, 6667, packets=200, nbytes=200_000, start=at(10)))
    # traffic_volume: 10.0.8.1 uploads 1 MB an hour to DROP for 5 hours, then 500 MB in one (MEDIUM)
    for h in range(5):
        r.append(flow("10.0.8.1", DROP, 48000 + h, 443, packets=900, nbytes=1_000_000, start=at(60 * h)))
    r.append(
        flow("10.0.8.1", DROP, 48010, 443, records=30, packets=400_000, nbytes=500_000_000, start=at(303), secs=1500)
    )
    # 10.0.8.2 uploads 200 MB to BACKUP in each of two hours, and nothing else: two active hours are fewer
    # than volume_min_baseline_hours (3), too few to be its own baseline, so each hour is measured against
    # every host's median hour and both are spikes: one finding (MEDIUM)
    for h in (1, 2):
        r.append(
            flow("10.0.8.2", BACKUP, 48100 + h, 443, packets=150_000, nbytes=200_000_000, start=at(60 * h), secs=1800)
        )
    # beaconing: 10.0.9.1 calls C2:443 every 60 s +-15 %, one call missed (HIGH); four hosts call
    # MONITOR:443 every 30 s exactly (a fleet-wide agent); 10.0.9.1 browses WEB at Poisson times
    rnd = random.Random(12)
    for i in range(40):
        if i == 17:
            continue
        t = (at() + dt.timedelta(seconds=60 * i + rnd.uniform(-9, 9))).replace(microsecond=0)
        r.append(flow("10.0.9.1", C2, 30000 + i, 443, packets=6, nbytes=1500, start=t, secs=1))
        r.append(flow(C2, "10.0.9.1", 443, 30000 + i, packets=5, nbytes=2500, start=t, secs=1))
    for h in range(2, 6):
        for i in range(40):
            r.append(
                flow(
                    f"10.0.9.{h}",
                    MONITOR,
                    31000 + i,
                    443,
                    packets=6,
                    nbytes=2000,
                    start=at() + dt.timedelta(seconds=30 * i),
                )
            )
    # 10.0.9.9 sends METRICS 100 kB every 60 s exactly (a telemetry agent): regular, but far over
    # beacon_max_mean_bytes (20 kB a flow): not a beacon
    for i in range(40):
        r.append(flow("10.0.9.9", METRICS, 34000 + i, 443, packets=90, nbytes=100_000, start=at(i), secs=1))
    # too few to call regular (beacon_min_flows is 10 calls): 10.0.9.6 calls C2_NINE 9 times exactly 60 s
    # apart (8 intervals, dispersion 0), 10.0.9.7 calls C2_TWO twice (one interval): small, as regular as
    # can be, and neither is a beacon
    for n, host, peer in ((9, "10.0.9.6", C2_NINE), (2, "10.0.9.7", C2_TWO)):
        for i in range(n):
            r.append(flow(host, peer, 33000 + i, 443, packets=6, nbytes=1500, start=at(i), secs=1))
    t = at()
    for i in range(40):
        t = t + dt.timedelta(seconds=int(rnd.expovariate(1 / 60)) + 1)
        r.append(flow("10.0.9.1", WEB, 20000 + i, 443, packets=6, nbytes=1500, start=t, secs=1))
    # look-alikes of the real world: 10.0.11.1 asks a public resolver every hour, as a record's TTL makes it
    # (regular, small: not a beacon), and the resolver's answers reach 16 of its ephemeral ports, one datagram
    # each (replies, not a vertical scan)
    for i in range(16):
        q = at(60 * i / 2)
        r.append(flow("10.0.11.1", DNS_RESOLVER, 50000 + i * 7, 53, proto=17, packets=1, nbytes=70, start=q))
        r.append(flow(DNS_RESOLVER, "10.0.11.1", 53, 50000 + i * 7, proto=17, packets=1, nbytes=120, start=q))
    return r


EXPECTED = {
    # (detection, local, peer, protocol, port, severity)
    ("port_probe", "10.0.1.1", None, 6, 3306, "HIGH"),
    ("port_probe", "10.0.1.4", None, 6, 5432, "LOW"),
    ("vertical_scan", "10.0.2.1", VSCAN, 6, None, "MEDIUM"),
    ("horizontal_sweep", None, SWEEP, 6, 23, "LOW"),
    ("brute_force", "10.0.4.1", BRUTE, 6, 22, "MEDIUM"),
    ("brute_force", "10.0.4.2", BRUTE_WON, 6, 3389, "HIGH"),
    ("outbound_dos", "10.0.5.1", VICTIM, 17, 53, "HIGH"),
    ("spam_bot", "10.0.6.1", None, 6, None, "HIGH"),
    ("unusual_port", "10.0.7.1", None, 6, 6667, "MEDIUM"),
    ("traffic_volume", "10.0.8.1", DROP, 6, 443, "MEDIUM"),
    ("traffic_volume", "10.0.8.2", BACKUP, 6, 443, "MEDIUM"),
    ("beaconing", "10.0.9.1", C2, 6, 443, "HIGH"),
}


@pytest.fixture(scope="module")
def rows(spark):
    df = detection_flows(cf_of(spark, _rows())).cache()
    yield df
    # a cached DataFrame stays in Spark's cache manager for the session: every later query of every test is
    # compared with its (large) plan. Left cached, it slowed the rest of CI's suite by minutes (2026-12-03)
    df.unpersist()


@pytest.fixture(scope="module")
def found(rows):
    df = detect(rows, date_from=DAY, date_to=DAY).cache()
    yield df
    df.unpersist()


def _key(r):
    return (r.detection, r.local, r.peer, r.protocol, r.port, r.severity)


def test_each_pattern_is_found_once_and_no_look_alike(found):
    got = sorted((_key(r) for r in found.collect()), key=str)
    assert got == sorted(EXPECTED, key=str)  # a list: a finding made twice would show twice


def test_activity_rows_carry_the_day_technique_and_counts(found):
    by = {r.detection + (r.local or ""): r for r in found.collect()}
    assert {r.day for r in by.values()} == {DAY}
    assert {r.technique for r in by.values()} >= {"T1595", "T1046", "T1110", "T1498", "T1071"}
    probe = by["port_probe10.0.1.1"]
    assert (probe.flows, probe.packets, probe.bytes) == (20, 20, 800)
    assert probe.first_seen == at(0) and probe.last_seen == at(19)
    assert probe.interface_id == "eni-a" and probe.direction == "inbound"


def test_evidence_sentences_carry_the_numbers(found):
    ev = {r.detection + (r.local or r.peer): r.evidence for r in found.collect()}
    assert ev["port_probe10.0.1.1"] == (
        "port 3306/tcp of 10.0.1.1 probed by 20 Internet peers (20 records, 1.0 packets each); 1 peer(s) "
        "accepted: the port answers the Internet and should not"
    )
    assert ev["vertical_scan10.0.2.1"] == f"{VSCAN} probed 15 ports (1-15/tcp) of 10.0.2.1; 1 accepted"
    assert ev["brute_force10.0.4.2"] == (
        f"{BRUTE_WON} made 26 accepted connections to port 3389 of 10.0.4.2, 2,000 bytes each (median); the "
        "largest moved 2,000,000 bytes (a login that may have worked)"
    )
    assert ev["outbound_dos10.0.5.1"] == (
        f"DNS flood: 10.0.5.1 sent 900,000 packets (72,000,000 bytes, 80 bytes/packet) to {VICTIM} port 53/udp, "
        "peak 15,000 packets/s, in 1 hour(s)"
    )
    assert (
        ev["spam_bot10.0.6.1"]
        == "10.0.6.1 sent SMTP to 25 Internet mail servers (25 accepted), 25 records, 200,000 bytes"
    )
    assert ev["unusual_port10.0.7.1"] == (
        f"10.0.7.1 used port 6667/tcp for the first time in 5 days of history: 200,000 bytes with 1 peer(s) (e.g. {IRC})"
    )
    # baseline: the median of 10.0.8.1's six active hours (1 MB x5, 500 MB) is 1 MB; 500 MB is 500 times it
    assert ev["traffic_volume10.0.8.1"] == (
        f"10.0.8.1 sent 500,000,000 bytes to {DROP} port 443/tcp in the hour of 2024-06-10 13:00 UTC, 500 times "
        "its baseline of 1,000,000 bytes/hour"
    )
    assert ev["beaconing10.0.9.1"].startswith(f"10.0.9.1 called {C2} port 443 every 60 s (38 intervals")


def test_days_outside_the_range_are_history_only(rows):
    # the day before holds 10.0.7.x's traffic only: asking for it finds nothing there
    day_before = DAY - dt.timedelta(days=1)
    assert detect(rows, date_from=day_before, date_to=day_before, only=("unusual_port", "port_probe")).count() == 0
    # without the history days, 10.0.7.1 has no past: its new port is not unusual
    assert detect(rows.where(F.col("day") == F.lit(DAY)), only=("unusual_port",)).count() == 0


def test_the_allowlist_suppresses_named_sources_and_keeps_the_reason(found):
    allow = (
        B.parse_allow(f"{SWEEP}/32 horizontal_sweep,vertical_scan: our vulnerability scanner"),
        B.parse_allow("10.0.6.0/24 beaconing: names another detection only"),
        B.parse_allow("10.0.5.1 *: the load-test box"),
        B.parse_allow("10.0.5.0/24 *: a wider entry after it: the first entry that matches wins"),
    )
    got = {(r.detection, r.local or r.peer): r.suppressed for r in B.suppress(found, allow).collect()}
    assert got[("horizontal_sweep", SWEEP)] == f"allowlist {SWEEP}/32: our vulnerability scanner"
    assert got[("outbound_dos", "10.0.5.1")] == "allowlist 10.0.5.1/32: the load-test box"
    assert got[("spam_bot", "10.0.6.1")] is None
    assert sum(v is not None for v in got.values()) == 2
    with pytest.raises(ValueError, match="not 'CIDR DETECTIONS: REASON'"):
        B.parse_allow("10.0.0.1 scan")
    with pytest.raises(ValueError, match="unknown detection"):
        B.parse_allow("10.0.0.1 portscan: typo")


TOR_EXIT, LISTED = "171.25.193.9", "91.240.118.7"


def _intel(spark):
    out = []
    for name, text in (("tor", f"{TOR_EXIT}\n"), ("firehol_level1", "# a list\n91.240.118.0/24\n10.0.0.0/8\n")):
        for row in entry_rows(parse_list(text)):
            line, version, cidr, fh, fl, lh, ll, label = row
            out.append((name, 1, dt.datetime(2024, 6, 9), "test", "x", line, version, cidr, fh, fl, lh, ll, label))
    return spark.createDataFrame(out, INTEL_SCHEMA)


def test_listed_peers_by_category_with_severity(spark):
    r = [
        flow("10.0.10.1", TOR_EXIT, 40000, 9001, packets=30, nbytes=9_000, start=at(1)),
        flow(TOR_EXIT, "10.0.10.1", 9001, 40000, packets=25, nbytes=30_000, start=at(1)),
        flow(LISTED, "10.0.10.2", 40001, 22, action="REJECT", start=at(2)),
        flow(LISTED, "10.0.10.2", 40002, 22, action="REJECT", start=at(3)),
        flow("10.0.10.3", "10.0.0.9", 40003, 443, start=at(3)),  # 10.0.0.0/8 is on the list: ours, never matched
    ]
    rows = detection_flows(cf_of(spark, r)).cache()
    listed = listed_peers(rows, _intel(spark)).cache()  # as the findings job persists it
    try:
        got = {_key(x): x.evidence for x in detect(rows, listed=listed, only=("tor", "malicious_ip")).collect()}
    finally:
        listed.unpersist()
        rows.unpersist()
    assert got == {
        ("tor", "10.0.10.1", TOR_EXIT, None, None, "HIGH"): (
            f"10.0.10.1 and listed {TOR_EXIT} (tor v1 loaded 2024-06-09: {TOR_EXIT}/32): 2 flows, 2 accepted, "
            "9,000 bytes to it, 30,000 bytes from it"
        ),
        ("malicious_ip", "10.0.10.2", LISTED, None, None, "LOW"): (
            f"10.0.10.2 and listed {LISTED} (firehol_level1 v1 loaded 2024-06-09: 91.240.118.0/24): 2 flows, "
            "0 accepted, 0 bytes to it, 80 bytes from it"  # rejected, but sent: 2 x 40 bytes
        ),
    }


def test_ipv6_alike_once_our_prefixes_are_named(spark):
    ours = "2600:1f18:a:b::10"  # a VPC's IPv6 address: global unicast, public like the Internet's
    r = [flow(f"2a01:4f8:{i:x}::1", ours, 40000 + i, 3389, action="REJECT", start=at(i)) for i in range(20)]
    r += [flow("2a02:c7f::5", ours, 50000, p, action="REJECT", start=at(p / 10)) for p in range(1, 16)]
    cf = cf_of(spark, r).cache()
    rows = detection_flows(cf, local_prefixes=("2600:1f18:a::/48",)).cache()
    try:
        # two public ends: nobody's local side, no north/south row for any rule to read
        assert detection_flows(cf).count() == 0
        got = sorted(_key(x) for x in detect(rows, only=("port_probe", "vertical_scan", "horizontal_sweep")).collect())
    finally:
        rows.unpersist()
        cf.unpersist()
    assert got == [("port_probe", ours, None, 6, 3389, "LOW"), ("vertical_scan", ours, "2a02:c7f::5", 6, None, "LOW")]


# ---------------------------------------------------------------- findings: episodes and stable ids


def _act(spark, days):
    """ACTIVITY rows of one subject (beaconing 10.0.9.1 -> C2:443) on the given day numbers, active 08:00 to
    20:00 each day, and one row of another subject on day 1."""
    rows = []
    for d in days:
        day = dt.date(2024, 6, d)
        first, last = dt.datetime(2024, 6, d, 8), dt.datetime(2024, 6, d, 20)
        sev = "HIGH" if d == 2 else "MEDIUM"
        rows.append(
            (
                day,
                "beaconing",
                "T1071",
                sev,
                "outbound",
                "10.0.9.1",
                C2,
                6,
                443,
                "eni-a",
                first,
                last,
                10,
                100,
                1000 * d,
                f"evidence of day {d}",
                None,
            )
        )
    rows.append(
        (
            dt.date(2024, 6, 1),
            "port_probe",
            "T1595",
            "LOW",
            "inbound",
            "10.0.1.1",
            None,
            6,
            3306,
            "eni-b",
            dt.datetime(2024, 6, 1, 8),
            dt.datetime(2024, 6, 1, 9),
            20,
            20,
            800,
            "probe",
            None,
        )
    )
    return spark.createDataFrame(rows, B.ACTIVITY_SCHEMA)


def test_a_quiet_gap_ends_a_finding_and_ids_are_stable(spark):
    # days 1, 2, 3 are one finding (each day starts 12 h after the last ended); day 6 starts 60 h after day 3
    # ended: a new finding
    f = {(r.detection, r.first_seen.day): r for r in findings(_act(spark, [1, 2, 3, 6])).collect()}
    assert sorted(f) == [("beaconing", 1), ("beaconing", 6), ("port_probe", 1)]
    first = f[("beaconing", 1)]
    assert (first.days, first.flows, first.bytes, first.last_seen) == (3, 30, 6000, dt.datetime(2024, 6, 3, 20))
    assert first.severity == "HIGH" and first.evidence == "evidence of day 3"  # the highest; the latest day's
    assert first.technique_name == "Application Layer Protocol"
    assert len({r.finding_id for r in f.values()}) == 3
    # a rerun gives the same ids; a later day extends the finding under its id; without days 2-3 day 1
    # alone is the same finding still (its first day names it)
    again = {(r.detection, r.first_seen.day): r.finding_id for r in findings(_act(spark, [1, 2, 3, 6, 7])).collect()}
    assert again == {k: r.finding_id for k, r in f.items()}
    alone = {(r.detection, r.first_seen.day): r.finding_id for r in findings(_act(spark, [1])).collect()}
    assert alone[("beaconing", 1)] == first.finding_id
    # a gap of exactly the limit keeps one finding; a second longer splits it
    assert findings(_act(spark, [1, 2]), gap_hours=12).count() == 2  # 12 h gap: not more than 12 h
    assert findings(_act(spark, [1, 2]), gap_hours=11).count() == 3


def test_evidence_flows_are_the_findings_own(found, rows):
    ev = evidence_flows(findings(found), rows, per_finding=3)
    by = {}
    for r in ev.collect():
        by.setdefault(r.finding_id, []).append(r)
    ids = {r.detection + (r.local or r.peer): r.finding_id for r in findings(found).collect()}
    scan = by[ids["vertical_scan10.0.2.1"]]
    assert len(scan) == 3 and {(r.srcaddr, r.dstaddr) for r in scan} == {(VSCAN, "10.0.2.1")}
    dos = by[ids["outbound_dos10.0.5.1"]]
    assert [(r.srcaddr, r.dstaddr, r.dstport, r.packets) for r in dos] == [("10.0.5.1", VICTIM, 53, 900_000)]
    assert set(by) == set(ids.values())  # every finding has its flows
