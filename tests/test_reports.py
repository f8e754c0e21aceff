"""Reports on hand-made flows with known answers: north/south with the NTP filter and AWS peers left out,
runts and their shares, a scan, a beacon with jitter, an exfiltration burst, credential access, NAT-to-S3
cost with its arithmetic written out; the job writes Delta per range, CSV, XLSX and an offline HTML file."""

from __future__ import annotations

import datetime as dt
import ipaddress
import random
import shutil
import subprocess
from pathlib import Path

import pytest
from chispa import assert_approx_df_equality, assert_df_equality
from pyspark.sql import functions as F

from flowspark.core import network as N
from flowspark.core import reports as R
from flowspark.core.ipranges import classified_flows
from flowspark.edges import tables
from flowspark.edges.config import ConfigError, ReportsConfig
from flowspark.pipelines.findings import run_findings
from flowspark.pipelines.intel import run_intel_load
from flowspark.pipelines.report import ReportOptions, read_section, run_report

T0 = dt.datetime(2024, 6, 1, 8, 0, 0)
FLOW_DDL = (
    "window_start timestamp, account_id string, interface_id string, srcaddr string, dstaddr string, srcport int, "
    "dstport int, protocol int, action string, records bigint, packets bigint, bytes bigint, start timestamp, "
    "`end` timestamp, tcp_flags int, pkt_srcaddr string, pkt_dstaddr string, event_date date"
)
CLASSES_DDL = "ip string, address_class string, aws_service string, aws_region string"

# Public addresses that are nobody's documentation range; the AWS ones are given AWS classes below.
SCANNER, CLIENT, C2, DROP, ADMIN, DNS, PAIR, TRIO = (
    "45.33.32.156",
    "93.184.216.34",
    "185.220.101.5",
    "151.101.1.69",
    "81.2.69.160",
    "8.8.8.8",
    "198.41.0.4",
    "199.7.83.42",
)
S3_EAST, S3_WEST, DDB_EAST, EC2_PEER = "52.216.1.1", "52.218.1.1", "54.239.1.1", "3.5.140.9"
AWS = [
    (S3_EAST, "public", "S3", "us-east-1"),
    (S3_WEST, "public", "S3", "us-west-2"),
    (DDB_EAST, "public", "DYNAMODB", "us-east-1"),
    (EC2_PEER, "public", "EC2", "us-east-1"),
]


def flow(
    src,
    dst,
    sport,
    dport,
    *,
    proto=6,
    action="ACCEPT",
    records=1,
    packets=1,
    nbytes=40,
    start=T0,
    secs=0,
    eni="eni-a",
    pkt_dst=None,
):
    end = start + dt.timedelta(seconds=secs)
    window = start.replace(minute=0, second=0, microsecond=0)
    return (
        window,
        "111",
        eni,
        src,
        dst,
        sport,
        dport,
        proto,
        action,
        records,
        packets,
        nbytes,
        start,
        end,
        None,
        None,
        pkt_dst,
        start.date(),
    )


def frame(spark, rows):
    return spark.createDataFrame(rows, FLOW_DDL)


def classes(spark, rows=AWS):
    return spark.createDataFrame(rows, CLASSES_DDL)


def cf_of(spark, rows):
    return classified_flows(frame(spark, rows), classes(spark), pkt=True)


# ---------------------------------------------------------------- north/south


def test_north_south_keeps_accepted_one_public_side_without_ntp_and_ranks_peers(spark):
    rows = [
        flow("10.0.0.5", CLIENT, 40000, 443, nbytes=5000, packets=10),  # outbound
        flow(CLIENT, "10.0.0.5", 443, 40000, nbytes=90000, packets=70),  # its response: inbound
        flow(ADMIN, "10.0.0.7", 50000, 22, nbytes=3000, packets=20),  # inbound
        flow(ADMIN, "10.0.0.8", 50001, 22, nbytes=100, packets=2, action="REJECT"),  # REJECT: not north/south
        flow("10.0.0.5", "10.0.0.6", 40000, 5432, nbytes=1_000_000),  # east/west
        flow("10.0.0.5", S3_EAST, 40001, 443, nbytes=7_000_000),  # north/south, but an AWS peer
        # NTP sync: one record (1 packet, 76 bytes) and a compacted flow of 3 such records: both filtered
        flow("10.0.0.5", DNS, 123, 123, proto=17, nbytes=76, packets=1),
        flow("10.0.0.6", DNS, 123, 123, proto=17, nbytes=228, packets=3, records=3),
        # udp/123 with 2 packets is not the sync pattern: kept
        flow("10.0.0.7", DNS, 123, 123, proto=17, nbytes=152, packets=2),
    ]
    cf = cf_of(spark, rows)
    ns = R.north_south(cf)
    got = sorted(
        (r.peer, r.local, r.direction, r.bytes) for r in ns.select("peer", "local", "direction", "bytes").collect()
    )
    assert got == sorted(
        [
            (CLIENT, "10.0.0.5", "outbound", 5000),
            (CLIENT, "10.0.0.5", "inbound", 90000),
            (ADMIN, "10.0.0.7", "inbound", 3000),
            (S3_EAST, "10.0.0.5", "outbound", 7_000_000),
            (DNS, "10.0.0.7", "outbound", 152),
        ]
    )
    # the filter is configurable: disabled, both sync flows come back
    assert R.north_south(cf, R.NtpFilter(enabled=False)).count() == 7

    top = R.top_peers(ns, n=2).select("rank_by", "rank", "peer", "flows", "bytes", "inbound_bytes", "outbound_bytes")
    expected = spark.createDataFrame(
        [
            ("flows", 1, CLIENT, 2, 95000, 90000, 5000),
            # ties on flows (1) broken by the peer's text: "8.8.8.8" < "81.2.69.160"
            ("flows", 2, DNS, 1, 152, 0, 152),
            ("bytes", 1, CLIENT, 2, 95000, 90000, 5000),
            ("bytes", 2, ADMIN, 1, 3000, 3000, 0),
        ],
        "rank_by string, rank int, peer string, flows bigint, bytes bigint, inbound_bytes bigint, outbound_bytes bigint",
    )
    assert_df_equality(top, expected, ignore_row_order=True, ignore_nullable=True)
    # with AWS peers kept, S3 tops the bytes ranking
    top_aws = R.top_peers(ns, n=1, exclude_aws=False).where("rank_by = 'bytes'").first()
    assert top_aws.peer == S3_EAST

    split = {(r.direction, r.action): (r.flows, r.ntp_flows) for r in R.traffic_split(cf).collect()}
    assert split == {
        ("outbound", "ACCEPT"): (5, 2),
        ("inbound", "ACCEPT"): (2, 0),
        ("inbound", "REJECT"): (1, 0),
        ("east_west", "ACCEPT"): (1, 0),
    }


NTP_SERVER = "162.159.200.1"


def test_ntp_sync_is_left_out_in_both_directions(spark):
    """The request (to port 123) and the reply (from port 123 to the client's ephemeral port) of an NTP
    exchange are both sync: out of north/south and hunt, counted in the split. Flows to or from port 123
    that are not NTP-sized (more packets or bytes per record, or TCP) are kept."""
    rows = [
        flow("10.0.0.5", CLIENT, 40000, 443, nbytes=5000, packets=10),  # ordinary: kept
        # our client's sync: request and reply, one record each (1 packet, 76 bytes); out
        flow("10.0.0.5", NTP_SERVER, 40123, 123, proto=17, nbytes=76),
        flow(NTP_SERVER, "10.0.0.5", 123, 40123, proto=17, nbytes=76),
        # a compacted reply flow of 3 such records (3 packets, 228 bytes): out
        flow(NTP_SERVER, "10.0.0.5", 123, 40124, proto=17, records=3, packets=3, nbytes=228),
        # a public client syncing with our server 10.0.0.9: its request (inbound) and our reply (outbound): out
        flow(CLIENT, "10.0.0.9", 40000, 123, proto=17, nbytes=76),
        flow("10.0.0.9", CLIENT, 123, 40000, proto=17, nbytes=76),
        # to port 123 but not NTP-sized: 4 packets / 400 bytes, its 2-packet reply, 1 packet of 90 bytes: kept
        flow("10.0.0.6", NTP_SERVER, 40200, 123, proto=17, packets=4, nbytes=400),
        flow(NTP_SERVER, "10.0.0.6", 123, 40200, proto=17, packets=2, nbytes=152),
        flow("10.0.0.7", NTP_SERVER, 40300, 123, proto=17, packets=1, nbytes=90),
        # TCP to 123, 1 packet of 76 bytes: not udp, kept
        flow("10.0.0.8", NTP_SERVER, 40400, 123, proto=6, packets=1, nbytes=76),
    ]
    cf = cf_of(spark, rows)
    cols = "peer string, peer_port int, local string, local_port int, direction string, protocol int, packets bigint, bytes bigint"
    got = R.north_south(cf).select(*[c.split()[0] for c in cols.split(", ")])
    kept = [
        (CLIENT, 443, "10.0.0.5", 40000, "outbound", 6, 10, 5000),
        (NTP_SERVER, 123, "10.0.0.6", 40200, "outbound", 17, 4, 400),
        (NTP_SERVER, 123, "10.0.0.6", 40200, "inbound", 17, 2, 152),
        (NTP_SERVER, 123, "10.0.0.7", 40300, "outbound", 17, 1, 90),
        (NTP_SERVER, 123, "10.0.0.8", 40400, "outbound", 6, 1, 76),
    ]
    assert_df_equality(got, spark.createDataFrame(kept, cols), ignore_row_order=True, ignore_nullable=True)

    # hunt leaves out the same flows (oriented client -> server: the 152-byte reply is the response row)
    hcols = "peer string, local string, direction string, protocol int, port int, request boolean, bytes bigint"
    hunt_rows = R.hunt_flows(cf).select(*[c.split()[0] for c in hcols.split(", ")])
    hunt_kept = [
        (CLIENT, "10.0.0.5", "outbound", 6, 443, True, 5000),
        (NTP_SERVER, "10.0.0.6", "outbound", 17, 123, True, 400),
        (NTP_SERVER, "10.0.0.6", "outbound", 17, 123, False, 152),
        (NTP_SERVER, "10.0.0.7", "outbound", 17, 123, True, 90),
        (NTP_SERVER, "10.0.0.8", "outbound", 6, 123, True, 76),
    ]
    assert_df_equality(hunt_rows, spark.createDataFrame(hunt_kept, hcols), ignore_row_order=True, ignore_nullable=True)

    # the split counts them: outbound 6 flows (2 sync: our request, our server's reply), records 6,
    # packets 10+1+1+4+1+1 = 18, bytes 5000+76+76+400+90+76 = 5718; inbound 4 flows (3 sync: the two
    # replies to us, the public client's request), records 1+3+1+1 = 6, packets 1+3+1+2 = 7,
    # bytes 76+228+76+152 = 532
    scols = "direction string, action string, flows bigint, records bigint, packets bigint, bytes bigint, ntp_flows bigint"
    split = [("inbound", "ACCEPT", 4, 6, 7, 532, 3), ("outbound", "ACCEPT", 6, 6, 18, 5718, 2)]
    assert_df_equality(R.traffic_split(cf), spark.createDataFrame(split, scols), ignore_nullable=True)
    # with the filter off nothing is counted: ntp_flows is null (unknown), not 0
    off = [r[:-1] + (None,) for r in split]
    assert_df_equality(
        R.traffic_split(cf, R.NtpFilter(enabled=False)), spark.createDataFrame(off, scols), ignore_nullable=True
    )


# ---------------------------------------------------------------- ASN labels (--asn-db)

V6_GOOGLE, V6_HETZNER = "2a00:1450:4001:81c::200e", "2a01:4f8:1c1c::1"
# the tiny offline database: (network, ASN, organisation); DROP (151.101.1.69) is in none of them
ASN_NETS = [
    ("93.184.216.0/24", 15133, "EDGECAST"),
    ("81.2.69.0/24", 20712, "Andrews & Arnold Ltd"),
    ("8.8.8.0/24", 15169, "Google LLC"),
    ("185.220.101.0/24", 208294, "Example Relays"),
    ("2a00:1450::/32", 15169, "Google LLC"),
    ("2a01:4f8::/32", 24940, "Hetzner Online GmbH"),
]


def make_mmdb(path):
    """A MaxMind-format ASN database with ASN_NETS, IPv4 and IPv6, written by mmdb-writer."""
    from mmdb_writer import MMDBWriter
    from netaddr import IPSet

    w = MMDBWriter(ip_version=6, database_type="GeoLite2-ASN", ipv4_compatible=True)
    for net, num, org in ASN_NETS:
        w.insert_network(IPSet([net]), {"autonomous_system_number": num, "autonomous_system_organization": org})
    w.to_db_file(str(path))
    return str(path)


def test_asn_labels_every_peer_and_excludes_organisations(spark, tmp_path):
    from flowspark.edges import asn

    db = make_mmdb(tmp_path / "asn.mmdb")
    rows = [
        flow("10.0.0.5", CLIENT, 40000, 443, nbytes=5000, packets=10),
        flow(CLIENT, "10.0.0.5", 443, 40000, nbytes=90000, packets=70),
        flow(ADMIN, "10.0.0.7", 50000, 22, nbytes=3000, packets=20),
        flow("10.0.0.5", DNS, 40001, 53, proto=17, nbytes=300, packets=2),
        flow("10.0.0.5", V6_GOOGLE, 40002, 443, nbytes=8000, packets=9),
        flow(V6_HETZNER, "10.0.0.9", 50500, 443, nbytes=1200, packets=5),
        flow("10.0.0.5", DROP, 40003, 443, nbytes=500, packets=4),
    ]
    ns = R.north_south(cf_of(spark, rows))
    labels = asn.peer_asn(ns, db)
    # the oracle for the labels: the same file read with maxminddb here, on the driver
    import maxminddb

    with maxminddb.open_database(db) as reader:
        want = {}
        for peer in {r[3] for r in rows} | {r[4] for r in rows}:
            if not peer.startswith("10."):
                rec = reader.get(peer) or {}
                want[peer] = (rec.get("autonomous_system_number"), rec.get("autonomous_system_organization"))
    assert {r.peer: (r.asn, r.asn_org) for r in labels.collect()} == want
    assert want[DROP] == (None, None) and want[V6_HETZNER] == (24940, "Hetzner Online GmbH")

    cols = ("rank_by", "rank", "peer", "asn", "asn_org", "flows", "bytes")
    top = R.top_peers(ns, 10, True, labels, ("GOOGLE LLC",)).select(*cols)  # case-insensitive: "Google LLC"
    expected = spark.createDataFrame(
        [
            ("flows", 1, CLIENT, 15133, "EDGECAST", 2, 95000),
            ("flows", 2, DROP, None, None, 1, 500),
            ("flows", 3, V6_HETZNER, 24940, "Hetzner Online GmbH", 1, 1200),
            ("flows", 4, ADMIN, 20712, "Andrews & Arnold Ltd", 1, 3000),
            ("bytes", 1, CLIENT, 15133, "EDGECAST", 2, 95000),
            ("bytes", 2, ADMIN, 20712, "Andrews & Arnold Ltd", 1, 3000),
            ("bytes", 3, V6_HETZNER, 24940, "Hetzner Online GmbH", 1, 1200),
            ("bytes", 4, DROP, None, None, 1, 500),
        ],
        "rank_by string, rank int, peer string, asn bigint, asn_org string, flows bigint, bytes bigint",
    )
    assert_df_equality(top, expected, ignore_row_order=True, ignore_nullable=True)
    # without the exclusion Google's two peers are ranked too; without a database no ASN columns at all
    assert R.top_peers(ns, 10, True, labels).where("asn = 15169").count() == 4
    assert "asn" not in R.top_peers(ns, 10).columns


def test_asn_db_errors_are_one_line_before_spark(tmp_path, capsys):
    from flowspark.cli import main

    assert main(["report", "all", "--lake", str(tmp_path), "--asn-db", str(tmp_path / "none.mmdb")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "none.mmdb: no such file (give a MaxMind-format .mmdb" in err
    bad = tmp_path / "bad.mmdb"
    bad.write_bytes(b"not a database")
    assert main(["run", "--steps", "reports", "--lake", str(tmp_path), "--asn-db", str(bad)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "bad.mmdb is not a MaxMind DB file" in err


GEO_NETS = [
    ("93.184.216.0/24", "US", "United States"),
    ("81.2.69.0/24", "GB", "United Kingdom"),
    ("2a01:4f8::/32", "DE", "Germany"),
]


def make_country_mmdb(path):
    """A MaxMind-format country database shaped as GeoLite2-Country (country.iso_code, country.names.en), IPv4
    and IPv6; one network with registered_country only (as GeoLite2 has for some anycast ranges)."""
    from mmdb_writer import MMDBWriter
    from netaddr import IPSet

    w = MMDBWriter(ip_version=6, database_type="GeoLite2-Country", ipv4_compatible=True)
    for net, code, name in GEO_NETS:
        w.insert_network(IPSet([net]), {"country": {"iso_code": code, "names": {"en": name}}})
    w.insert_network(IPSet(["8.8.8.0/24"]), {"registered_country": {"iso_code": "US", "names": {"en": "United States"}}})
    w.to_db_file(str(path))
    return str(path)


def test_country_labels_peers_and_ranks_nothing_away(spark, tmp_path, capsys):
    from flowspark.edges import asn

    db = make_country_mmdb(tmp_path / "country.mmdb")
    rows = [
        flow("10.0.0.5", CLIENT, 40000, 443, nbytes=5000, packets=10),
        flow(ADMIN, "10.0.0.7", 50000, 22, nbytes=3000, packets=20),
        flow("10.0.0.5", DNS, 40001, 53, proto=17, nbytes=300, packets=2),
        flow(V6_HETZNER, "10.0.0.9", 50500, 443, nbytes=1200, packets=5),
        flow("10.0.0.5", DROP, 40003, 443, nbytes=500, packets=4),
    ]
    ns = R.north_south(cf_of(spark, rows))
    countries = asn.peer_country(ns, db)
    # by hand from GEO_NETS: DROP (151.101.1.69) is in no network; 8.8.8.8 has a registered country only
    assert {r.peer: (r.country, r.country_name) for r in countries.collect()} == {
        CLIENT: ("US", "United States"),
        ADMIN: ("GB", "United Kingdom"),
        DNS: ("US", "United States"),
        V6_HETZNER: ("DE", "Germany"),
        DROP: (None, None),
    }
    top = R.top_peers(ns, 10, True, country=countries).where("rank_by = 'bytes'")
    got = {r.peer: (r.rank, r.country) for r in top.collect()}
    assert got == {CLIENT: (1, "US"), ADMIN: (2, "GB"), V6_HETZNER: (3, "DE"), DROP: (4, None), DNS: (5, "US")}
    assert top.columns[:6] == ["rank_by", "rank", "peer", "country", "country_name", "flows"]
    # the CLI refuses a missing database in one line, before Spark
    from flowspark.cli import main

    capsys.readouterr()
    assert main(["report", "all", "--lake", str(tmp_path), "--geo-db", str(tmp_path / "none.mmdb")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--geo-db" in err and "none.mmdb: no such file" in err


# ---------------------------------------------------------------- runts


def test_runts_by_action_port_network_with_shares(spark):
    rows = [
        flow(SCANNER, "10.0.0.1", 1000, 23, action="REJECT"),
        flow(SCANNER, "10.0.0.2", 1001, 23, action="REJECT"),
        flow("45.33.32.157", "10.0.0.3", 1002, 23, action="REJECT"),  # same /24 as SCANNER
        flow("2001:db8:0:7::1", "10.0.0.1", 1003, 3389, action="ACCEPT"),
        flow("2600:1f18:0:0:5::9", "10.0.0.1", 1004, 22, action="REJECT"),
        flow("10.0.0.5", CLIENT, 40000, 443, records=5, packets=50, nbytes=9000),  # not a runt: 5 records
    ]
    flows = frame(spark, rows)
    # all records: 5 runts + 5 = 10
    by_action = {r.action: (r.runts, r.all_records, r.share_of_records) for r in R.runts_by_action(flows).collect()}
    assert by_action == {"REJECT": (4, 10, 0.4), "ACCEPT": (1, 10, 0.1)}

    by_port = [(r.protocol, r.dstport, r.runts, r.rejected, r.sources) for r in R.runts_by_port(flows, 2).collect()]
    assert by_port == [(6, 23, 3, 3, 2), (6, 22, 1, 1, 1)]  # 22 before 3389 on the tie: protocol, then port

    # by source network and top scanners: public sources only (classified flows)
    cf = classified_flows(flows, classes(spark))
    nets = {r.source_network: r.runts for r in R.runts_by_source_network(cf, 10).collect()}
    # the oracle: Python's ipaddress, global addresses only, the network in its normal (short) form
    want: dict[str, int] = {}
    for r in rows[:5]:
        ip = ipaddress.ip_address(r[3])
        if ip.is_global:
            net = str(ipaddress.ip_network(f"{ip}/{24 if ip.version == 4 else 64}", strict=False))
            want[net] = want.get(net, 0) + 1
    assert nets == want == {"45.33.32.0/24": 3, "2600:1f18::/64": 1}  # 2001:db8::/32 is documentation
    # the network of every source (documentation and private ones too) in Python's normal form
    for src, net in flows.select("srcaddr", R.source_network().alias("net")).collect():
        assert net == str(ipaddress.ip_network(f"{src}/{64 if ':' in src else 24}", strict=False)), src

    top = R.top_scanners(cf, 1).first()
    assert (top.srcaddr, top.runts, top.targets, top.ports, top.rejected) == (SCANNER, 2, 2, 1, 2)
    # answers to our own queries (a public DNS server's port 53 to our ephemeral port) are not knocks
    answers = [flow(DNS, "10.0.0.1", 53, 40000 + i, proto=17, nbytes=120) for i in range(5)]
    cf2 = classified_flows(frame(spark, rows + answers), classes(spark))
    assert [r.srcaddr for r in R.top_scanners(cf2, 3).collect()] == [SCANNER, "2600:1f18:0:0:5::9", "45.33.32.157"]


# ---------------------------------------------------------------- hunt


def _hunt_rows():
    rows = []
    # a scan: SCANNER probes port 23 on 20 of our addresses, one 40-byte SYN each, mostly rejected
    for i in range(20):
        rows.append(
            flow(
                SCANNER,
                f"10.0.1.{i + 1}",
                40000 + i,
                23,
                action="REJECT" if i % 5 else "ACCEPT",
                start=T0 + dt.timedelta(seconds=i),
            )
        )
    # an ordinary client of our web server: 3 connections, very different sizes: nothing to flag
    for i, size in enumerate((500, 90_000, 4_000)):
        rows.append(
            flow(CLIENT, "10.0.1.5", 50000 + i, 443, packets=10, nbytes=size, start=T0 + dt.timedelta(minutes=7 * i))
        )
    # a beacon: 10.0.2.9 calls C2:443 every 60 s with +-15 % uniform jitter, one beacon missed, each
    # connection a small request row and its response row starting in the same second
    rnd = random.Random(12)
    t = T0
    for i in range(40):
        t = T0 + dt.timedelta(seconds=60 * i + rnd.uniform(-9, 9))
        if i == 17:
            continue  # a missed beacon: one interval of ~120 s
        t = t.replace(microsecond=0)
        rows.append(flow("10.0.2.9", C2, 30000 + i, 443, packets=6, nbytes=1500, start=t, secs=1))
        rows.append(flow(C2, "10.0.2.9", 443, 30000 + i, packets=5, nbytes=2500, start=t, secs=1))
    # the same host also talks to CLIENT at Poisson times (human browsing): regular it is not
    t = T0
    for i in range(40):
        t = t + dt.timedelta(seconds=int(rnd.expovariate(1 / 60)) + 1)
        rows.append(flow("10.0.2.9", CLIENT, 20000 + i, 443, packets=6, nbytes=1500, start=t, secs=1))
    # exfiltration: 10.0.3.3 uploads ~1 MB per hour to DROP:443 for 5 hours, then 500 MB in one hour
    for h in range(5):
        rows.append(
            flow("10.0.3.3", DROP, 41000 + h, 443, packets=900, nbytes=1_000_000, start=T0 + dt.timedelta(hours=h))
        )
    rows.append(
        flow(
            "10.0.3.3",
            DROP,
            41010,
            443,
            records=30,
            packets=400_000,
            nbytes=500_000_000,
            start=T0 + dt.timedelta(hours=5, minutes=3),
            secs=1500,
        )
    )
    # steady large uploads to a backup peer, 200 MB every hour: large but at its baseline, not flagged
    for h in range(6):
        rows.append(
            flow(
                "10.0.3.4", ADMIN, 42000 + h, 873, packets=150_000, nbytes=200_000_000, start=T0 + dt.timedelta(hours=h)
            )
        )
    # credential access: ADMIN logs in to 10.0.4.4:22 and stays 20 minutes, 5 MB
    rows.append(flow(ADMIN, "10.0.4.4", 51000, 22, records=20, packets=6000, nbytes=5_000_000, secs=1200))
    # a single failed SSH attempt from another peer: not flagged
    rows.append(flow(DNS, "10.0.4.4", 51001, 22, packets=3, nbytes=180, action="REJECT"))
    # too few to call regular: two small calls to PAIR exactly 60 s apart (one interval, dispersion 0), and
    # nine to TRIO (8 intervals, one short of beacon_min_flows' 10 calls): neither is a beacon
    for i in range(2):
        rows.append(flow("10.0.2.7", PAIR, 31000 + i, 443, packets=6, nbytes=1500, start=T0 + dt.timedelta(seconds=60 * i)))
    for i in range(9):
        rows.append(flow("10.0.2.8", TRIO, 32000 + i, 443, packets=6, nbytes=1500, start=T0 + dt.timedelta(seconds=60 * i)))
    return rows


# What the findings table says of the hunt rows' peers (the detections themselves are tested in
# tests/test_detections.py): the hunt's flags are these findings, joined by peer, protocol and port.
HUNT_FINDINGS = [
    ("horizontal_sweep", SCANNER, 6, 23, "swept port 23"),
    ("beaconing", C2, 6, 443, "calls every 60 s"),
    ("traffic_volume", DROP, 6, 443, "sent 500 MB"),
    ("malicious_ip", DROP, None, None, "on a list"),  # no protocol or port: every row of the peer
    ("brute_force", ADMIN, 6, 22, "logged in"),
    ("port_probe", None, 6, 443, "probed"),  # no peer (many probers): no hunt row
    ("beaconing", CLIENT, 6, 8443, "another port"),  # CLIENT's rows are on 443: not flagged
]


def hand_findings(spark, rows=HUNT_FINDINGS):
    """The findings table's rows (flowspark.core.detections.findings) of one day of hand-made activity:
    (detection, peer, protocol, port, evidence)."""
    from flowspark.core.detections.base import ACTIVITY_SCHEMA, TECHNIQUES
    from flowspark.core.detections.findings import findings

    act = [
        (T0.date(), d, TECHNIQUES[d][0], "MEDIUM", None, None, peer, proto, port, None, T0, T0, 1, 1, 1, ev, None)
        for d, peer, proto, port, ev in rows
    ]
    return findings(spark.createDataFrame(act, ACTIVITY_SCHEMA))


@pytest.fixture(scope="module")
def hunted(spark):
    h = R.hunt(R.hunt_flows(cf_of(spark, _hunt_rows())), hand_findings(spark))
    return {(r.peer, r.direction, r.port): r for r in h.collect()}


def test_hunt_flags_are_the_findings_naming_the_peer(spark, hunted):
    flagged = {k: (r.flags, r.evidence) for k, r in hunted.items() if r.flags}
    assert flagged == {
        (SCANNER, "inbound", 23): ("horizontal_sweep", "swept port 23"),
        (C2, "outbound", 443): ("beaconing", "calls every 60 s"),
        (DROP, "outbound", 443): ("malicious_ip,traffic_volume", "on a list; sent 500 MB"),
        (ADMIN, "inbound", 22): ("brute_force", "logged in"),
    }
    assert all(r.evidence == "" for r in hunted.values() if not r.flags)
    # without findings (the detections not run) no row is flagged, and the rows are the same
    bare = R.hunt(R.hunt_flows(cf_of(spark, _hunt_rows()))).collect()
    assert {(r.peer, r.direction, r.port) for r in bare} == set(hunted) and {(r.flags, r.evidence) for r in bare} == {("", "")}


def test_hunt_measures_of_the_scan_the_upload_and_the_sessions(hunted):
    scan = hunted[(SCANNER, "inbound", 23)]
    assert (scan.local_addresses, scan.flows, scan.rejected_flows, scan.packets_per_record, scan.size_cv) == (
        20,
        20,
        16,
        1.0,
        0.0,
    )
    ex = hunted[(DROP, "outbound", 443)]
    # the peak hour is 13:00 with 500 MB; the baseline is the median of its 6 active hours = 1 MB
    assert (ex.peak_hour, ex.peak_hour_bytes_out, ex.baseline_hour_bytes_out, ex.active_hours) == (
        dt.datetime(2024, 6, 1, 13),
        500_000_000,
        1_000_000,
        6,
    )
    cred = hunted[(ADMIN, "inbound", 22)]
    assert (cred.accepted_bytes, cred.longest_session_s) == (5_000_000, 1200)


@pytest.fixture(scope="module")
def beacon_measured(spark):
    """beacon_measures of the hunt rows: every outbound peer/port's raw measures (hunt keeps them on
    beaconing rows only)."""
    m = R.beacon_measures(R.hunt_flows(cf_of(spark, _hunt_rows())))
    return {(r.peer, r.direction, r.port): r for r in m.collect()}


def test_beacon_regularity_is_measured_robustly(hunted, beacon_measured):
    b = hunted[(C2, "outbound", 443)]
    # the oracle: the request starts of the rows above, exact medians with numpy's convention
    import numpy as np

    starts = sorted(r[12] for r in _hunt_rows() if r[3] == "10.0.2.9" and r[4] == C2)
    gaps = np.diff([s.timestamp() for s in starts])
    med = float(np.median(gaps))
    mad = float(np.median(np.abs(gaps - med)))
    assert b.beacon_local == "10.0.2.9" and b.beacon_intervals == 38 == len(gaps)
    assert abs(b.beacon_median_interval_s - med) <= 1  # percentile_approx picks a sample, numpy averages two
    assert abs(b.beacon_dispersion - mad / med) < 0.03 and b.beacon_dispersion < 0.2
    # the Poisson host's dispersion is far above the threshold; TRIO's is 0 (as regular as can be), yet
    # its 8 intervals are too few: neither is a beacon, and hunt shows neither measure
    assert beacon_measured[(CLIENT, "outbound", 443)].beacon_dispersion > 0.4
    assert (beacon_measured[(TRIO, "outbound", 443)].beacon_intervals, beacon_measured[(TRIO, "outbound", 443)].beacon_dispersion) == (8, 0.0)
    assert hunted[(CLIENT, "outbound", 443)].beacon_dispersion is None


def test_long_sessions_are_measured_per_connection_not_first_to_last_seen(spark):
    """The hunt's longest_session_s is the longest accepted connection: two 1-minute logins 5 hours apart
    (even on the same client port) are two 60 s sessions; one 3-hour flow is a 3-hour session; a
    connection whose rows follow each other across hour windows is one session."""
    h5, m1 = dt.timedelta(hours=5), 60
    rows = [
        # ADMIN: 1-minute logins at 08:00 and 13:00 to 10.0.4.4:22, request and response rows, 2 kB each
        flow(ADMIN, "10.0.4.4", 51000, 22, packets=20, nbytes=2000, secs=m1),
        flow("10.0.4.4", ADMIN, 22, 51000, packets=20, nbytes=2000, secs=m1),
        flow(ADMIN, "10.0.4.4", 51000, 22, packets=20, nbytes=2000, start=T0 + h5, secs=m1),
        flow("10.0.4.4", ADMIN, 22, 51000, packets=20, nbytes=2000, start=T0 + h5, secs=m1),
        # PAIR: one flow of 3 hours (10 800 s) to 10.0.4.5:22, 30 kB
        flow(PAIR, "10.0.4.5", 52000, 22, packets=300, nbytes=30_000, secs=3 * 3600),
        # TRIO: one RDP connection (client port 53000) in three hour windows, its rows 30 s and 15 s apart:
        # one session 08:00:00 -> 10:20:00 = 8 400 s; the same ports again at 15:00 for a minute: another
        flow(TRIO, "10.0.4.6", 53000, 3389, packets=100, nbytes=100_000, secs=3570),  # 08:00:00-08:59:30
        flow("10.0.4.6", TRIO, 3389, 53000, packets=50, nbytes=50_000, secs=3580),  # 08:00:00-08:59:40
        flow(TRIO, "10.0.4.6", 53000, 3389, packets=100, nbytes=100_000, start=T0 + dt.timedelta(seconds=3610), secs=3580),
        flow(TRIO, "10.0.4.6", 53000, 3389, packets=100, nbytes=100_000, start=T0 + dt.timedelta(seconds=7205), secs=1195),
        flow(TRIO, "10.0.4.6", 53000, 3389, packets=10, nbytes=1000, start=T0 + dt.timedelta(hours=7), secs=m1),
        # DNS: one rejected attempt: no accepted flow, no session
        flow(DNS, "10.0.4.4", 51001, 22, packets=3, nbytes=180, action="REJECT"),
    ]
    h = R.hunt(R.hunt_flows(cf_of(spark, rows)))
    cols = (
        "peer string, port int, accepted_flows bigint, accepted_bytes bigint, first_seen timestamp, "
        "last_seen timestamp, longest_session_s bigint"
    )
    got = h.select(*[c.split()[0] for c in cols.split(", ")])
    at = lambda seconds: T0 + dt.timedelta(seconds=seconds)  # noqa: E731
    expected = [
        # seen from 08:00:00 to 13:01:00 (18 060 s), but its longest session is 60 s
        (ADMIN, 22, 4, 8000, T0, at(5 * 3600 + 60), 60),
        (PAIR, 22, 1, 30_000, T0, at(10_800), 10_800),
        # 3 x 100 000 + 50 000 + 1 000 = 351 000 bytes; one session of 8 400 s
        (TRIO, 3389, 5, 351_000, T0, at(7 * 3600 + 60), 8400),
        (DNS, 22, 0, 0, T0, T0, None),
    ]
    assert_df_equality(got, spark.createDataFrame(expected, cols), ignore_row_order=True, ignore_nullable=True)


def test_beacon_columns_only_on_beaconing_rows(hunted):
    """The exfiltration row, the Poisson host, the too-few callers and every inbound row have no beacon
    measures: null, not numbers that describe no finding."""
    got = sorted(
        (k[0], k[1], k[2], r.flags, r.beacon_local, r.beacon_intervals,
         r.beacon_median_interval_s is not None, r.beacon_dispersion is not None)
        for k, r in hunted.items()
    )
    none = (None, None, False, False)
    assert got == sorted(
        [
            (C2, "outbound", 443, "beaconing", "10.0.2.9", 38, True, True),
            (DROP, "outbound", 443, "malicious_ip,traffic_volume", *none),
            (CLIENT, "outbound", 443, "", *none),
            (ADMIN, "outbound", 873, "", *none),
            (PAIR, "outbound", 443, "", *none),
            (TRIO, "outbound", 443, "", *none),
            (SCANNER, "inbound", 23, "horizontal_sweep", *none),
            (ADMIN, "inbound", 22, "brute_force", *none),
            (CLIENT, "inbound", 443, "", *none),
            (DNS, "inbound", 22, "", *none),
        ]
    )


@pytest.mark.slow
def test_hunt_for_one_address_and_the_top_n(spark):
    cf = cf_of(spark, _hunt_rows())
    only = R.hunt(R.hunt_flows(cf, ip=SCANNER), hand_findings(spark)).collect()
    assert [(r.peer, r.port, r.flags) for r in only] == [(SCANNER, 23, "horizontal_sweep")]
    top = R.hunt_top(R.hunt(R.hunt_flows(cf), hand_findings(spark)), n=1).collect()
    # the 4 flagged rows first, then the top 1 by bytes (the backups, 1.2 GB)
    assert [r.flags != "" for r in top] == [True, True, True, True, False]
    assert (top[-1].peer, top[-1].port) == (ADMIN, 873)


# ---------------------------------------------------------------- NAT cost


NAT_ENI, NAT_IP, APP = "eni-nat", "10.0.0.10", "10.0.5.5"


def _nat_rows():
    g = 1_000_000_000
    return [
        # the NAT's Internet legs (on its interface): these are what it processes
        flow(NAT_IP, S3_EAST, 40000, 443, nbytes=3 * g, eni=NAT_ENI),
        flow(S3_EAST, NAT_IP, 443, 40000, nbytes=2 * g, eni=NAT_ENI),
        flow(NAT_IP, DDB_EAST, 40001, 443, nbytes=1 * g, eni=NAT_ENI),
        flow(NAT_IP, DNS, 40002, 443, nbytes=g // 2, eni=NAT_ENI),
        flow(NAT_IP, S3_WEST, 40003, 443, nbytes=g // 5, eni=NAT_ENI),
        # the instance legs (instance <-> NAT's address), east/west: not counted twice
        flow(APP, NAT_IP, 50000, 443, nbytes=3 * g, eni=NAT_ENI, pkt_dst=S3_EAST),
        flow(NAT_IP, APP, 443, 50000, nbytes=2 * g, eni=NAT_ENI),
        flow("10.0.5.6", NAT_IP, 50001, 443, nbytes=g // 2, eni=NAT_ENI, pkt_dst=DNS),
        # another interface's traffic is not the NAT's
        flow("10.0.9.9", S3_EAST, 40000, 443, nbytes=9 * g, eni="eni-other"),
    ]


def test_nat_cost_to_s3_with_its_arithmetic(spark):
    cf = cf_of(spark, _nat_rows())
    sel = R.through(cf, interface_id=NAT_ENI)
    price = R.NatPrice(per_gb=0.045, bytes_per_gb=1_000_000_000)
    got = R.nat_services(sel, price, region="us-east-1").select(
        "aws_service", "aws_region", "bytes", "cost_usd", "gateway_endpoint", "saving_usd"
    )
    # S3 us-east-1: 3 GB out + 2 GB back = 5 GB x $0.045 = $0.225, all saved by an S3 gateway endpoint
    # DynamoDB us-east-1: 1 GB x $0.045 = $0.045, saved too
    # Internet (8.8.8.8): 0.5 GB x $0.045 = $0.0225, no endpoint
    # S3 us-west-2: 0.2 GB x $0.045 = $0.009, another region: a gateway endpoint cannot carry it
    # total $0.3015, saving $0.27
    expected = spark.createDataFrame(
        [
            ("S3", "us-east-1", 5_000_000_000, 0.225, True, 0.225),
            ("DYNAMODB", "us-east-1", 1_000_000_000, 0.045, True, 0.045),
            ("INTERNET", None, 500_000_000, 0.0225, False, 0.0),
            ("S3", "us-west-2", 200_000_000, 0.009, False, 0.0),
        ],
        "aws_service string, aws_region string, bytes bigint, cost_usd double, gateway_endpoint boolean, "
        "saving_usd double",
    )
    assert_approx_df_equality(got, expected, 1e-12, ignore_nullable=True, ignore_row_order=True)
    totals = got.agg(F.sum("cost_usd"), F.sum("saving_usd")).first()
    assert totals[0] == pytest.approx(0.3015) and totals[1] == pytest.approx(0.27)
    # the same NAT selected by its address gives the same cost
    by_ip = R.nat_services(R.through(cf, address=NAT_IP), price, region="us-east-1")
    assert by_ip.agg(F.sum("cost_usd")).first()[0] == pytest.approx(0.3015)

    src = {r.source: (r.bytes_to_nat, r.bytes_from_nat, r.aws_bytes) for r in R.nat_sources(sel).collect()}
    assert src == {APP: (3_000_000_000, 2_000_000_000, 3_000_000_000), "10.0.5.6": (500_000_000, 0, 0)}


def test_nat_aws_bytes_is_null_without_pkt_addresses(spark):
    """Without pkt-dstaddr/pkt-srcaddr in the NAT's flow log, which AWS service the instance legs reached is
    unknown: aws_bytes is null (the report says why), not 0."""
    rows = [r[:16] + (None,) + r[17:] for r in _nat_rows()]  # pkt_dstaddr (field 16) gone
    sel = R.through(cf_of(spark, rows), interface_id=NAT_ENI)
    cols = (
        "rank int, source string, flows bigint, bytes_to_nat bigint, bytes_from_nat bigint, aws_bytes bigint, "
        "bytes bigint"
    )
    g = 1_000_000_000
    # APP: 3 GB to the NAT + 2 GB back = 5 GB in 2 legs; 10.0.5.6: 0.5 GB to the NAT
    expected = [(1, APP, 2, 3 * g, 2 * g, None, 5 * g), (2, "10.0.5.6", 1, g // 2, 0, None, g // 2)]
    assert_df_equality(
        R.nat_sources(sel), spark.createDataFrame(expected, cols), ignore_row_order=True, ignore_nullable=True
    )


# ---------------------------------------------------------------- why a column is blank


NO_SNAPSHOT = "no interfaces snapshot in the lake: run 'flowspark interfaces' to name the resources"
NOT_IN_SNAPSHOT = "the address is on no interface of the latest 'flowspark interfaces' snapshot"
NO_ASN_DB = "no --asn-db given (a MaxMind-format ASN .mmdb adds asn and asn_org)"
NO_GEO_DB = "no --geo-db given (a MaxMind-format country .mmdb adds country and country_name)"
GEO = {"columns": ["country", "country_name"], "why": NO_GEO_DB}
AWS_LEFT_OUT = "peers in AWS's prefixes are left out of hunt ([reports] exclude_aws_peers; --ip keeps them)"
BEACON_ONLY = "only on beaconing rows"
NOT_OWN = (
    "none in the records where the address is the interface's own (an egress source, an ingress destination: "
    "needs flow-direction); ECS fields are version 7, tag values version 11"
)
OWN = {"columns": ["ecs_service", "tags"], "why": NOT_OWN}  # the hand-made flows have no flow-direction
OUTBOUND_ONLY = "outbound rows only: what our side sent"
# the network report's period section without a previous window's flows, and without a previous window
NO_PREVIOUS_FLOWS = {
    "columns": ["previous", "change", "change_share"],
    "why": "the lake's flows have no row in the previous period (the same number of days just before the range), "
    "or the measure is unknown there (cleartext bytes need encryption-status, v10); change_share also when the "
    "previous figure is 0",
}
NO_PREVIOUS_PERIOD = {
    "columns": ["previous", "change", "change_share", "previous_from", "previous_to"],
    "why": "no previous period: the range is open (give --from and --to)",
}
PEAK = ["peak_hour", "peak_hour_bytes_out", "active_hours", "baseline_hour_bytes_out"]
BEACON = ["beacon_local", "beacon_intervals", "beacon_median_interval_s", "beacon_dispersion"]


def test_column_notes_name_the_blank_columns_and_why():
    """A reason is kept for the columns of it that are absent from the section or null in a row written;
    a column with a value on every row gets none."""
    reasons = R.blank_reasons()  # the defaults: NTP filter on, no --asn-db, no snapshot, AWS peers left out
    assert "north_south/split" not in reasons  # ntp_flows is counted
    hunt_cols = ["flags", "peer", "peer_aws_service", *BEACON, *PEAK, "longest_session_s", "evidence"]
    beacon_row = dict.fromkeys(hunt_cols, 1) | {"peer_aws_service": None}
    inbound_row = dict.fromkeys(hunt_cols, 1) | {"peer_aws_service": None, "beacon_local": None, "peak_hour": None}
    assert R.column_notes(reasons["hunt/peers"], hunt_cols, [beacon_row, inbound_row]) == [
        {"columns": ["asn", "asn_org"], "why": NO_ASN_DB},  # absent
        {"columns": ["country", "country_name"], "why": NO_GEO_DB},  # absent
        {"columns": ["peer_aws_service"], "why": AWS_LEFT_OUT},
        {"columns": ["beacon_local"], "why": BEACON_ONLY},  # the other beacon columns have values
        {"columns": ["beacon_local_resource"], "why": NO_SNAPSHOT},  # absent
        {"columns": ["peak_hour"], "why": OUTBOUND_ONLY},
    ]
    assert R.column_notes(reasons["talkers/top_sources"], ["rank", "address", "bytes"], []) == [
        {"columns": ["resource"], "why": NO_SNAPSHOT},
        {"columns": ["country", "country_name"], "why": NO_GEO_DB},
        {"columns": ["ecs_service", "tags"], "why": NOT_OWN},  # absent
    ]
    # with a snapshot: nothing to say when every address has its resource, the reason when one has none
    snap = R.blank_reasons(interfaces=True)["talkers/top_sources"][:1]  # the resource's reason only
    assert R.column_notes(snap, ["address", "resource"], [{"address": "10.0.0.1", "resource": "i-1 (instance)"}]) == []
    assert R.column_notes(snap, ["address", "resource"], [{"address": "8.8.8.8", "resource": None}]) == [
        {"columns": ["resource"], "why": NOT_IN_SNAPSHOT}
    ]
    # the NTP filter off: ntp_flows is null, and says why; --asn-db and --ip change the hunt reasons
    off = R.blank_reasons(ntp=R.NtpFilter(enabled=False))["north_south/split"]
    assert R.column_notes(off, ["direction", "ntp_flows"], [{"direction": "inbound", "ntp_flows": None}]) == [
        {"columns": ["ntp_flows"], "why": "NTP sync not counted: [reports] ntp_filter = false"}
    ]
    labelled = R.blank_reasons(asn_db=True, geo_db=True, ip=CLIENT)["hunt/peers"]
    assert labelled[:3] == [
        (("asn", "asn_org"), "not in the ASN database given with --asn-db"),
        (("country", "country_name"), "not in the country database given with --geo-db"),
        (("peer_aws_service",), "the peer is not in AWS's published prefixes"),
    ]


# ---------------------------------------------------------------- config


def test_reports_config_validates():
    assert ReportsConfig(top_n=5).top_n == 5
    with pytest.raises(ConfigError, match="nat_price_per_gb must be a number"):
        ReportsConfig(nat_price_per_gb="cheap")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="top_n must be at least 1"):
        ReportsConfig(top_n=0)
    assert ReportsConfig().late_after_minutes == 60.0
    assert ReportsConfig(late_after_minutes=90).late_after_minutes == 90.0
    with pytest.raises(ConfigError, match="late_after_minutes must be a number >= 0"):
        ReportsConfig(late_after_minutes=-1)


def test_old_hunt_thresholds_are_aliases_of_the_detections_with_a_warning(tmp_path, caplog):
    from flowspark.edges.config import load_config

    conf = tmp_path / "old.toml"
    conf.write_text(
        "[reports]\nexfil_factor = 5\ncred_ports = [22]\ncred_min_seconds = 900\nbeacon_max_dispersion = 0.3\n"
        "[detections]\nbeacon_max_dispersion = 0.1\n"
    )
    with caplog.at_level("WARNING", logger="flowspark.config"):
        cfg = load_config(path=conf)
    d = cfg.detections
    assert (d.volume_factor, d.brute_ports, d.beacon_max_dispersion) == (5.0, (22,), 0.1)  # [detections] wins
    said = "\n".join(r.getMessage() for r in caplog.records)
    assert "[reports] exfil_factor is now [detections] volume_factor" in said
    assert "[reports] cred_ports is now [detections] brute_ports" in said
    assert "[reports] cred_min_seconds is ignored" in said
    assert "[reports] beacon_max_dispersion is ignored: [detections] beacon_max_dispersion is set" in said
    assert not hasattr(cfg.reports, "exfil_factor")


# ---------------------------------------------------------------- the job and its files


@pytest.fixture(scope="module")
def report_lake(spark, tmp_path_factory):
    lake = str(tmp_path_factory.mktemp("report_lake"))
    # the NAT's legs but its 8.8.8.8 one (a single 0.5 GB upload hour: exfiltration by the rules), so the
    # planted hunt patterns are the only flags
    nat = [r for r in _nat_rows() if DNS not in (r[3], r[4])]
    rows = _hunt_rows() + nat + [flow("10.0.0.5", DNS, 123, 123, proto=17, nbytes=76, start=T0 + dt.timedelta(days=1))]
    frame(spark, rows).write.format("delta").partitionBy("event_date").save(f"{lake}/flows")
    addrs = {r[3] for r in rows} | {r[4] for r in rows}
    known = {a[0] for a in AWS}
    cls = AWS + [(a, "private" if a.startswith("10.") else "public", None, None) for a in sorted(addrs - known)]
    classes(spark, cls).write.format("delta").save(f"{lake}/ip_classes")
    # a threat-intelligence list naming the beacon's peer: the network report's intel_contacts, first under
    # "What to look at" in the HTML
    listed = tmp_path_factory.mktemp("intel") / "watch.netset"
    listed.write_text("# a watch list\n185.220.101.0/24\n")
    run_intel_load(spark, lake, "watch", str(listed))
    # the findings of the hunt rows' peers (what the findings step would have written): the hunt's flags
    hand_findings(spark).write.format("delta").save(f"{lake}/findings")
    return lake


@pytest.mark.slow
def test_report_job_writes_each_range_once_and_the_files(spark, cfg, report_lake, tmp_path):
    day = dt.date(2024, 6, 1)
    opts = ReportOptions(top_n=5, nat=NAT_ENI, nat_region="us-east-1")
    s = run_report(spark, cfg, report_lake, "all", day, day, opts, ("csv", "xlsx", "html"), str(tmp_path))
    # hunt: AWS peers left out; the 4 flagged peer/ports and the top 5 by bytes (backups 1.2 GB, the exfil,
    # the SSH session, the beacon, the web client: 3 of them flagged) = 6 rows
    assert s.rows["hunt/peers"] == 6 and s.rows["talkers/nat_services"] == 3
    # other tests of this module write other ranges into the same lake, before or after this one (random
    # order): this range's rows only
    def this_range(df):
        return df.where(F.col("date_from") == day)

    peers = tables.read(spark, report_lake, "reports/hunt/peers").drop("computed_at")
    first = spark.createDataFrame(this_range(peers).collect(), peers.schema)  # a snapshot, not a lazy re-read
    assert first.count() == 6 and first.where(F.col("date_to") != day).count() == 0
    # no interfaces snapshot and no --asn-db: the sections as they were, no label columns
    assert "resource" not in tables.read(spark, report_lake, "reports/talkers/top_sources").columns
    assert "asn" not in tables.read(spark, report_lake, "reports/north_south/top_peers").columns
    # ...and the notes say why, with what is blank: hunt's 6 rows have no AWS peer, 5 are not beacons, 3
    # are inbound (the scan, the SSH session, the web client), every one has an accepted flow; the NAT's
    # sources have pkt-dstaddr and its services no INTERNET row
    assert s.column_notes == {
        "north_south/top_peers": [{"columns": ["asn", "asn_org"], "why": NO_ASN_DB}, GEO],
        "talkers/top_sources": [{"columns": ["resource"], "why": NO_SNAPSHOT}, GEO, OWN],
        "talkers/top_destinations": [{"columns": ["resource"], "why": NO_SNAPSHOT}, GEO, OWN],
        "talkers/nat_services": [{"columns": ["nat_resource"], "why": NO_SNAPSHOT}],
        "talkers/nat_sources": [{"columns": ["resource"], "why": NO_SNAPSHOT}],
        "network/intel_contacts": [GEO],
        "network/period": [NO_PREVIOUS_FLOWS],  # the lake has no flow on May 31
        "hunt/peers": [
            {"columns": ["asn", "asn_org"], "why": NO_ASN_DB},
            GEO,
            {"columns": ["peer_aws_service"], "why": AWS_LEFT_OUT},
            {"columns": BEACON, "why": BEACON_ONLY},
            {"columns": ["beacon_local_resource"], "why": NO_SNAPSHOT},
            {"columns": PEAK, "why": OUTBOUND_ONLY},
        ],
    }

    def same(a, b):  # floats summed in another order may differ in the last bit
        assert_approx_df_equality(a, b, 1e-9, ignore_row_order=True)

    # the network report's period: June 1 has no previous day in the lake (NULL, not 0); June 2 (the NTP flow:
    # 1 record, 1 packet, 76 bytes) compares with June 1, read from the lake, not from the report's range
    def period(on):
        got = read_section(spark, report_lake, "network", "period", on, on).drop("computed_at").orderBy("position")
        return {r.measure: (r.current, r.previous, r.previous_from, r.previous_to) for r in got.collect()}

    june1 = period(day)
    assert list(june1) == list(N.PERIOD_MEASURES) and june1["flows"][0] > 0
    may31 = dt.date(2024, 5, 31)
    assert {v[1:] for v in june1.values()} == {(None, may31, may31)}
    run_report(spark, cfg, report_lake, "network", day + dt.timedelta(days=1), day + dt.timedelta(days=1))
    june2 = period(day + dt.timedelta(days=1))
    assert {m: v[0] for m, v in june2.items() if m != "cleartext_bytes"} == {
        "flows": 1,
        "records": 1,
        "packets": 1,
        "bytes": 76,
        "rejected_records": 0,
        "rejected_bytes": 0,
        "source_addresses": 1,
        "destination_addresses": 1,
    }
    assert {m: v[1:] for m, v in june2.items()} == {m: (v[0], day, day) for m, v in june1.items()}

    # the same range again replaces its rows: the table is as after one run
    run_report(spark, cfg, report_lake, "hunt", day, day, opts)
    same(this_range(tables.read(spark, report_lake, "reports/hunt/peers").drop("computed_at")), first)
    # another range adds its own rows and leaves these
    run_report(spark, cfg, report_lake, "hunt", None, None, opts)
    again = tables.read(spark, report_lake, "reports/hunt/peers").drop("computed_at")
    assert again.where(F.col("date_from").isNull()).count() > 0
    same(this_range(again), first)

    files = {Path(f).name for f in s.files}
    assert {"north_south_top_peers.csv", "hunt_peers.csv", "flowspark_all.xlsx", "flowspark_all.html"} <= files
    from openpyxl import load_workbook

    wb = load_workbook(tmp_path / "flowspark_all.xlsx", read_only=True)
    assert "talkers.nat_services" in wb.sheetnames and "runts.by_action" in wb.sheetnames
    sheet = list(wb["talkers.nat_services"].iter_rows(values_only=True))
    head = list(sheet[0])
    cost = {(r[head.index("aws_service")], r[head.index("aws_region")]): r[head.index("cost_usd")] for r in sheet[1:]}
    assert cost[("S3", "us-east-1")] == pytest.approx(0.225)

    html = (tmp_path / "flowspark_all.html").read_text(encoding="utf-8")
    for heading in (
        "What to look at",
        "Traffic over time",
        "North / south",
        "Top Internet peers by bytes",
        "Runts (single-record flows)",
        "NAT cost by AWS service",
        "Hunt: peer/port summaries",
        "Tag counts",
        "Compaction ratio",
        "Rejected lines per day",
        "Storage (from the Delta logs)",
    ):
        assert heading in html, heading
    assert html.count("<svg") >= 5
    # self-contained: no script, no stylesheet or image fetched from anywhere
    assert "<script src" not in html and "<link" not in html and 'src="http' not in html and "url(http" not in html
    # the cost: S3 us-east-1 $0.225 + DynamoDB $0.045 + S3 us-west-2 $0.009 = $0.279, saving $0.27
    assert "beaconing" in html and C2 in html and "$0.28" in html and "$0.27" in html


@pytest.mark.slow
def test_reports_name_the_resource_of_interfaces_and_the_asn_of_peers(spark, cfg, report_lake, tmp_path):
    """With an interfaces snapshot in the lake (the latest per interface) and --asn-db, the NAT sections say
    which NAT gateway and instances they are about, the talkers which resource an address is, and peers
    carry their ASN; the HTML shows them."""
    import datetime as _dt

    from flowspark.pipelines.interfaces import SCHEMA

    lake = str(tmp_path / "lake")
    # the module's lake without the report tables other tests wrote into it (other ranges, no snapshot)
    shutil.copytree(report_lake, lake, ignore=lambda folder, names: ["reports"] if folder == str(report_lake) else [])
    old, new = _dt.datetime(2024, 5, 1), _dt.datetime(2024, 6, 2)
    snap = [
        # an older snapshot said another NAT gateway: the latest one wins
        (NAT_ENI, "nat_gateway", "Interface for NAT Gateway nat-0old", None, "nat-0old", "vpc-1", "subnet-old",
         [NAT_IP], [], "amazon", "us-east-1", old),
        (NAT_ENI, "nat_gateway", "Interface for NAT Gateway nat-0abc", None, "nat-0abc", "vpc-1", "subnet-x",
         [NAT_IP], ["3.3.3.3"], "amazon", "us-east-1", new),
        ("eni-app", "interface", "Primary network interface", "i-0app", None, "vpc-1", "subnet-y",
         [APP], [], "AIDA", "us-east-1", new),
        ("eni-beacon", "interface", "", "i-0beacon", None, "vpc-1", "subnet-y",
         ["10.0.2.9"], [], "AIDA", "us-east-1", new),
    ]
    tables.append_snapshot(spark.createDataFrame(snap, SCHEMA), lake, tables.INTERFACES)
    db = make_mmdb(tmp_path / "asn.mmdb")
    opts = ReportOptions(top_n=5, nat=NAT_ENI, nat_region="us-east-1", asn_db=db)
    s = run_report(spark, cfg, lake, "all", None, None, opts, ("html",), str(tmp_path / "out"))
    # blank for a known reason: DROP and SCANNER are in no ASN network; 10.0.3.4 (backups, talkers) and
    # 10.0.5.6 (a NAT source) are on no interface of the snapshot; hunt's resource of the beacon's host
    # only on the beacon's row
    in_db = "not in the ASN database given with --asn-db"
    assert {k: v for k, v in s.column_notes.items() if k != "hunt/peers"} == {
        "north_south/top_peers": [{"columns": ["asn", "asn_org"], "why": in_db}, GEO],
        "talkers/top_sources": [{"columns": ["resource"], "why": NOT_IN_SNAPSHOT}, GEO, OWN],
        "talkers/top_destinations": [{"columns": ["resource"], "why": NOT_IN_SNAPSHOT}, GEO, OWN],
        "talkers/nat_sources": [{"columns": ["resource"], "why": NOT_IN_SNAPSHOT}],
        "network/intel_contacts": [GEO],
        "network/period": [NO_PREVIOUS_PERIOD],  # all dates
    }
    assert s.column_notes["hunt/peers"][0] == {"columns": ["asn", "asn_org"], "why": in_db}
    assert {"columns": ["beacon_local_resource"], "why": f"{BEACON_ONLY}; there, {NOT_IN_SNAPSHOT}"} in s.column_notes[
        "hunt/peers"
    ]

    def section(name):
        return tables.read(spark, lake, f"reports/{name}").drop("computed_at", "date_from", "date_to")

    svc = section("talkers/nat_services")
    assert {"nat", "nat_resource"} <= set(svc.columns)  # (mergeSchema puts new columns last in the table)
    assert {tuple(r) for r in svc.select("nat", "nat_resource").distinct().collect()} == {
        (NAT_ENI, "nat-0abc (NAT gateway, subnet-x)")
    }
    src = {r.source: r.resource for r in section("talkers/nat_sources").collect()}
    assert src == {APP: "i-0app (instance)", "10.0.5.6": None}
    talkers = {r.address: r.resource for r in section("talkers/top_sources").collect()}
    assert talkers[NAT_IP] == "nat-0abc (NAT gateway, subnet-x)" and talkers[APP] == "i-0app (instance)"
    assert talkers["10.0.3.4"] is None  # in no snapshot
    peers = {r.peer: (r.asn, r.asn_org) for r in section("north_south/top_peers").collect()}
    assert peers[CLIENT] == (15133, "EDGECAST") and peers[DROP] == (None, None)
    hunt = {(r.peer, r.port): r for r in section("hunt/peers").collect()}
    beacon = hunt[(C2, 443)]
    assert (beacon.asn, beacon.asn_org, beacon.beacon_local_resource) == (208294, "Example Relays", "i-0beacon (instance)")
    html = (tmp_path / "out" / "flowspark_all.html").read_text(encoding="utf-8")
    assert "NAT cost of eni-nat (nat-0abc (NAT gateway, subnet-x))" in html
    assert "i-0app (instance)" in html and "i-0beacon (instance)" in html
    # the hunt table's row of the beacon's peer: its ASN, then the organisation
    assert '<td class="n" data-v="208294">208294</td><td class="t">Example Relays</td>' in html


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("chromium") is None, reason="needs Debian's chromium for the screenshot")
def test_html_report_renders_in_headless_chromium(spark, cfg, report_lake, tmp_path):
    # with a country database: the peers of every report carry their country (GEO_NETS)
    geo = make_country_mmdb(tmp_path / "country.mmdb")
    opts = ReportOptions(top_n=5, nat=NAT_ENI, nat_region="us-east-1", geo_db=geo)
    run_report(spark, cfg, report_lake, "all", None, None, opts, ("html",), str(tmp_path))
    page = tmp_path / "flowspark_all.html"
    html = page.read_text()
    # the beacon's peer is on the watch list: named first under What to look at, with the list's version
    look = html[html.index('<h2 id="look">') : html.index("</ul>", html.index('<h2 id="look">'))]
    said = " ".join(look.split())
    assert "on the watch list</span>: 10.0.2.9" in said and "list version 1" in said, look[:600]
    assert '<h2 id="network">' in html and "Cross-AZ transfer" in html
    # the findings lead, with their peer's country: the brute force from 81.2.69.160 is in GB; the top
    # peers' table has the country column
    assert f"{ADMIN} [United Kingdom] &mdash; logged in" in said, said[:2000]
    from flowspark.pipelines.report import read_section

    top = read_section(spark, report_lake, "north_south", "top_peers", None, None)
    assert {r.peer: r.country for r in top.where(f"peer in ('{ADMIN}', '{CLIENT}')").collect()} == {
        ADMIN: "GB",
        CLIENT: "US",
    }
    shot = tmp_path / "report.png"
    subprocess.run(
        [
            "chromium",
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--hide-scrollbars",
            f"--screenshot={shot}",
            "--window-size=1280,4000",
            page.as_uri(),
        ],
        check=True,
        capture_output=True,
        timeout=120,
    )
    import matplotlib.image as mpimg

    img = mpimg.imread(shot)
    assert img.shape[0] == 4000 and img.shape[1] == 1280
    # not a blank page: a good part of the pixels are not white (text, tables, charts)
    non_white = (img[:, :, :3].mean(axis=2) < 0.9).mean()
    assert non_white > 0.02
    keep = Path("/tmp/flowspark_report_test.png")
    shutil.copy(shot, keep)


# ---------------------------------------------------------------- generated data: the planted patterns


@pytest.mark.slow
def test_generated_traffic_holds_each_hunt_pattern(spark, cfg, tmp_path):
    """The generator plants a beacon, a scan, an exfiltration burst and NAT traffic to S3 (its truth file
    says where); the whole pipeline, then the reports, find each of them."""
    from flowspark.generator import generate
    from flowspark.pipelines.classify import run_classify
    from flowspark.pipelines.dedup import run_dedup
    from flowspark.pipelines.ingest import run_ingest
    from flowspark.pipelines.ipranges import load_ip_ranges

    raw, lake = tmp_path / "raw", str(tmp_path / "lake")
    truth = generate(str(raw), records=60_000, accounts=1, regions=1, seed=5, workers=1)
    assert truth["hunt_patterns"]["scan"]["targets"] >= 10  # enough ENIs for the scan threshold
    p = truth["hunt_patterns"]
    run_ingest(spark, cfg, str(raw), lake)
    run_dedup(spark, cfg, lake)
    load_ip_ranges(spark, str(Path(__file__).resolve().parents[1] / "data" / "ip-ranges-2020-04-01.json"), lake)
    run_classify(spark, lake)
    run_findings(spark, cfg, lake)
    nat = p["nat"]["interface_id"]
    opts = ReportOptions(top_n=5, nat=nat, nat_region=p["region"])
    run_report(spark, cfg, lake, "all", options=opts)
    peers = tables.read(spark, lake, "reports/hunt/peers")
    flags = {(r.peer, r.port): r.flags for r in peers.where("flags != ''").collect()}
    beacon, exfil, scan = p["beacon"], p["exfiltration"], p["scan"]
    # the planted beacon, upload and sweep are flagged by their findings, and no other beacon or upload in
    # 60 000 records
    planted = {
        (beacon["peer"], beacon["port"]): "beaconing",
        (exfil["peer"], exfil["port"]): "traffic_volume",
        (scan["source"], scan["port"]): "horizontal_sweep",
    }
    kinds = {k: set(f.split(",")) for k, f in flags.items()}
    assert {k: f for k, f in flags.items() if k in planted} == planted
    assert {k for k, f in kinds.items() if "beaconing" in f} == {(beacon["peer"], beacon["port"])}
    assert {k for k, f in kinds.items() if "traffic_volume" in f} == {(exfil["peer"], exfil["port"])}
    # the rest is the generator's Internet noise (as on any public address): scanners of one port on many
    # interfaces (its noise probes 22, 23, 3389, 445, ...), or of many ports of one, and login attempts
    others = {k: f for k, f in kinds.items() if k not in planted}
    assert all(f <= {"brute_force", "horizontal_sweep", "vertical_scan"} for f in others.values()), others
    b = peers.where(F.col("peer") == beacon["peer"]).first()
    assert b.beacon_local == beacon["host"] and abs(b.beacon_median_interval_s - 60) <= 2
    e = peers.where(F.col("peer") == exfil["peer"]).first()
    assert e.peak_hour.hour == exfil["hour_utc"]
    # NAT to S3: S3 in the flow log's region, all of it savable through a gateway endpoint
    svc = tables.read(spark, lake, "reports/talkers/nat_services").where("aws_service = 'S3'").collect()
    assert svc and all(r.aws_region == "us-east-1" and r.gateway_endpoint and r.saving_usd > 0 for r in svc)
    src = tables.read(spark, lake, "reports/talkers/nat_sources").collect()
    assert p["nat"]["host"] in {r.source for r in src}


def test_cli_report_errors_before_spark(capsys):
    from flowspark.cli import main

    assert main(["report", "bogus", "--lake", "/nowhere"]) == 2
    assert "unknown report 'bogus'" in capsys.readouterr().err
    assert main(["report", "all", "--lake", "/nowhere", "--format", "html"]) == 2
    assert "--format needs --out DIR" in capsys.readouterr().err
    assert main(["report", "hunt", "--lake", "/nowhere", "--format", "pdf", "--out", "/tmp/x"]) == 2
    assert "unknown --format pdf" in capsys.readouterr().err


def test_nat_section_of_a_regional_nat_gateway_by_resource_id(spark):
    """A regional NAT gateway's flow log names it in resource-id (its records have no interface of ours):
    --nat nat-... selects those flows, and the cost is the one worked out above for the same legs."""
    regional = "nat-0regional"
    rows = [r for r in _nat_rows()]
    cf = cf_of(spark, rows)
    on_nat = F.col("interface_id") == NAT_ENI
    cf = cf.withColumn("resource_id", F.when(on_nat, F.lit(regional))).withColumn(
        "interface_id", F.when(~on_nat, F.col("interface_id"))
    )
    assert R.nat_target(regional) == {"resource_id": regional}
    price = R.NatPrice(per_gb=0.045, bytes_per_gb=1_000_000_000)
    sel = R.through(cf, **R.nat_target(regional))
    got = R.nat_services(sel, price, region="us-east-1").agg(F.sum("cost_usd"), F.sum("saving_usd")).first()
    assert got[0] == pytest.approx(0.3015) and got[1] == pytest.approx(0.27)
    src = {r.source: (r.bytes_to_nat, r.bytes_from_nat) for r in R.nat_sources(sel).collect()}
    assert src == {APP: (3_000_000_000, 2_000_000_000), "10.0.5.6": (500_000_000, 0)}
    # a lake whose records have no resource-id: nothing is that NAT's
    assert R.through(cf.drop("resource_id"), resource_id=regional).count() == 0


def test_talkers_name_tag_values_by_the_keys_of_their_interfaces_flow_log(spark):
    """With a flow_logs snapshot, a tag value is named by the key its flow log's TagFieldSpecifications give
    its field; the flow log of a record is the one of its interface, subnet or VPC (flows do not keep the
    object), and where two flow logs with other keys cover the interface the field names stay."""
    t0, t1 = dt.datetime(2026, 12, 1), dt.datetime(2026, 12, 2)
    cols = (
        "interface_id string, srcaddr string, dstaddr string, flow_direction string, records bigint, "
        "packets bigint, bytes bigint, instance_tag string, instance_tag_2 string, vpc_id string, subnet_id string"
    )
    flows = spark.createDataFrame(
        [
            # eni-web in vpc-1 (the record says so): vpc-1's flow log names both fields
            ("eni-web", "10.0.0.5", "93.184.216.34", "egress", 1, 10, 5000, "web", "api", "vpc-1", None),
            # eni-db: no VPC or subnet in its records, the interfaces snapshot puts it in subnet-db, whose flow log
            # names the first instance field only: the second keeps its field's name
            ("eni-db", "10.0.1.9", "93.184.216.34", "egress", 1, 10, 3000, "db-1", "data", None, None),
            # eni-both: its VPC's flow log and its own disagree on the key: the field names stay
            ("eni-both", "10.0.2.7", "93.184.216.34", "egress", 1, 10, 1000, "x", None, "vpc-2", None),
        ],
        cols,
    )
    logs = spark.createDataFrame(
        [
            ("fl-1", "vpc-1", {"instance-tag": "Old"}, t0),  # fl-1's older snapshot: the newer one counts
            ("fl-1", "vpc-1", {"instance-tag": "Name", "instance-tag-2": "team"}, t1),
            ("fl-5", "eni-web", {}, t1),  # no tag fields in its format: its records carry no values
            ("fl-2", "subnet-db", {"instance-tag": "Name"}, t1),
            ("fl-3", "vpc-2", {"instance-tag": "Name"}, t1),
            ("fl-4", "eni-both", {"instance-tag": "role"}, t1),
            ("fl-6", "vpc-9", {"instance-tag": "Name"}, t1),  # covers no interface of the flows
        ],
        "flow_log_id string, resource_id string, tag_keys map<string,string>, snapshot_time timestamp",
    )
    snapshot = spark.createDataFrame(
        [("eni-db", "vpc-3", "subnet-db"), ("eni-web", "vpc-1", "subnet-web")],  # vpc-3 has no flow log
        "interface_id string, vpc_id string, subnet_id string",
    )
    keys = {r.interface_id: r.tag_keys for r in R.interface_tag_keys(flows, logs, snapshot).collect()}
    assert keys == {"eni-web": {"instance-tag": "Name", "instance-tag-2": "team"}, "eni-db": {"instance-tag": "Name"}}
    by_key = R.interface_tag_keys(flows, logs, snapshot)
    named = {r.address: r.tags for r in R.top_talkers(flows, "srcaddr", tag_keys=by_key).collect()}
    assert named == {
        "10.0.0.5": "Name=web, team=api",
        "10.0.1.9": "Name=db-1, instance-tag-2=data",
        "10.0.2.7": "instance-tag=x",
    }
    # without the interfaces snapshot eni-db's subnet is unknown: its values keep the field names
    bare = R.interface_tag_keys(flows, logs)
    assert {r.interface_id for r in bare.collect()} == {"eni-web"}
    # without a flow_logs snapshot: as before, the field names
    plain = {r.address: r.tags for r in R.top_talkers(flows, "srcaddr").collect()}
    assert plain["10.0.0.5"] == "instance-tag=web, instance-tag-2=api"


@pytest.mark.slow  # a report run (Delta writes of two sections)
def test_the_talkers_report_names_tag_values_by_the_flow_logs_snapshot(spark, cfg, tmp_path):
    """The report job: the talkers read the records' own fields (flow-direction, the tag values), which the
    other reports' columns leave out, and name the values by the keys of the lake's flow_logs snapshot."""
    from flowspark.pipelines.interfaces import FLOW_LOGS_SCHEMA

    lake = str(tmp_path / "lake")
    rows = [flow("10.0.0.5", CLIENT, 40000, 443, nbytes=5000, eni="eni-web"), flow(CLIENT, "10.0.0.5", 443, 40000)]
    own = F.when(F.col("srcaddr") == "10.0.0.5", F.lit("egress")).otherwise(F.lit("ingress"))
    frame(spark, rows).withColumn("flow_direction", own).withColumn("vpc_id", F.lit("vpc-1")).withColumn(
        "instance_tag", F.lit("web")
    ).withColumn("instance_tag_2", F.lit("api")).write.format("delta").save(f"{lake}/flows")
    classes(spark, [("10.0.0.5", "private", None, None), (CLIENT, "public", None, None)]).write.format("delta").save(
        f"{lake}/ip_classes"
    )
    keys = {"instance-tag": "Name", "instance-tag-2": "team"}
    at = dt.datetime(2026, 12, 1)
    log = [("fl-1", "vpc-1", "${version} ...", "s3", "arn:aws:s3:::b", "ALL", keys, "us-east-1", at)]
    tables.append_snapshot(spark.createDataFrame(log, FLOW_LOGS_SCHEMA), lake, tables.FLOW_LOGS)
    run_report(spark, cfg, lake, "talkers", None, None, ReportOptions(top_n=5))
    got = read_section(spark, lake, "talkers", "top_sources", None, None)
    # the web server's own egress record: its tags by key; the client's (ingress on the web interface) none
    assert {r.address: r.tags for r in got.collect()} == {"10.0.0.5": "Name=web, team=api", CLIENT: None}
    # --nat nat-...: a regional NAT gateway's flows by resource-id, which the other reports' columns left out
    # of the report job (it costed nothing): both records here are its, 5 000 + 40 bytes, both with one public
    # side, at $0.045/GB
    flows = tables.read(spark, lake, tables.FLOWS).withColumn("resource_id", F.lit("nat-0regional"))
    flows.write.format("delta").mode("overwrite").option("overwriteSchema", "true").save(f"{lake}/flows")
    run_report(spark, cfg, lake, "talkers", None, None, ReportOptions(top_n=5, nat="nat-0regional"))
    nat = read_section(spark, lake, "talkers", "nat_services", None, None).collect()
    assert [(r.aws_service, r.bytes) for r in nat] == [("INTERNET", 5040)]
    assert nat[0].cost_usd == pytest.approx(5040 / 1e9 * 0.045)


def test_talkers_name_the_ecs_service_and_tag_values_of_their_own_interface(spark):
    """ECS service and tag values describe the record's interface: they label an address only where it is
    the interface's own (egress source, ingress destination), those of its most bytes."""
    cols = (
        "srcaddr string, dstaddr string, flow_direction string, records bigint, packets bigint, bytes bigint, "
        "ecs_service_name string, instance_tag string, asg_tag string"
    )
    rows = [
        # the web task sends (egress on its interface): its service and tags
        ("10.0.0.5", "93.184.216.34", "egress", 1, 10, 5000, "web", "web-1", "web-asg"),
        ("10.0.0.5", "93.184.216.35", "egress", 1, 10, 1000, "web-old", None, None),  # fewer bytes
        # the client's reply seen on the web interface (ingress): the fields are the web task's, not the client's
        ("93.184.216.34", "10.0.0.5", "ingress", 1, 10, 90000, "web", "web-1", "web-asg"),
        # a source without direction: not known whose fields they are
        ("10.0.0.9", "93.184.216.34", None, 1, 1, 100, "batch", None, None),
    ]
    flows = spark.createDataFrame(rows, cols)
    src = {r.address: (r.ecs_service, r.tags) for r in R.top_talkers(flows, "srcaddr").collect()}
    assert src == {
        "10.0.0.5": ("web", "instance-tag=web-1, asg-tag=web-asg"),
        "93.184.216.34": (None, None),
        "10.0.0.9": (None, None),
    }
    dst = {r.address: (r.ecs_service, r.tags) for r in R.top_talkers(flows, "dstaddr").collect()}
    assert dst["10.0.0.5"] == ("web", "instance-tag=web-1, asg-tag=web-asg")
    assert dst["93.184.216.34"] == (None, None) and dst["93.184.216.35"] == (None, None)
    # a lake without these fields: the columns are there, empty
    plain = R.top_talkers(flows.select("srcaddr", "dstaddr", "records", "packets", "bytes"), "srcaddr")
    assert {"ecs_service", "tags"} <= set(plain.columns) and plain.where("ecs_service IS NOT NULL").count() == 0
