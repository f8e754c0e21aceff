"""The network report's sections on hand-made flows whose answers are worked out by hand below: rejects by
cause, the network-ACL pairs (an ACCEPT whose response is REJECTed on the same interface), cleartext by
encryption-status, Transit Gateway drops, cross-AZ bytes and their cost, top conversations, breakdowns with
the interfaces snapshot's fallback, the protocol mix, and data quality from the ledger."""

from __future__ import annotations

import datetime as dt

import pytest
from chispa import assert_df_equality
from pyspark.sql import functions as F

from flowspark.core import network as N

T = dt.datetime(2024, 6, 1, 8, 0, 0)
DAY = T.date()
COLUMNS = (
    "window_start timestamp, account_id string, interface_id string, srcaddr string, dstaddr string, "
    "srcport int, dstport int, protocol int, action string, resource_type string, tgw_id string, "
    "tgw_attachment_id string, records bigint, packets bigint, bytes bigint, start timestamp, `end` timestamp, "
    "packets_lost_no_route bigint, packets_lost_blackhole bigint, packets_lost_mtu_exceeded bigint, "
    "packets_lost_ttl_expired bigint, vpc_id string, subnet_id string, az_id string, flow_direction string, "
    "reject_reason string, encryption_status_code int, next_hop_az_id string, next_hop_interface_type string, "
    "event_date date"
)
WEB, DB = "eni-web", "eni-db"
WEB_IP, DB_IP, WEB2_IP = "10.0.0.5", "10.0.1.9", "10.0.0.6"
SCANNER, CLIENT, ADMIN, PINGER, OTHER = "45.33.32.156", "93.184.216.34", "81.2.69.160", "203.0.113.12", "198.51.100.7"


def at(minutes: int) -> dt.datetime:
    return T + dt.timedelta(minutes=minutes)


def vpc(eni, src, dst, sport, dport, proto, action, records, packets, nbytes, start, secs=30, **kw):
    """A VPC flow row (an interface, no Transit Gateway fields)."""
    window = start.replace(minute=0, second=0)
    return (
        window, "111", eni, src, dst, sport, dport, proto, action, None, None, None, records, packets, nbytes,
        start, start + dt.timedelta(seconds=secs), None, None, None, None,
        kw.get("vpc", "vpc-1" if eni == WEB else None), None, kw.get("az"), kw.get("direction"),
        kw.get("reason"), kw.get("enc"), kw.get("hop_az"), kw.get("hop_type"), start.date(),
    )  # fmt: skip


def tgw(attachment, start, no_route=0, blackhole=0, mtu=0, ttl=0, nbytes=1000):
    """A Transit Gateway flow row (no interface, no action)."""
    window = start.replace(minute=0, second=0)
    return (
        window, "111", None, "10.1.0.1", "10.2.0.1", 40000, 443, 6, None, "TransitGateway", "tgw-1", attachment,
        1, 10, nbytes, start, start + dt.timedelta(seconds=60), no_route, blackhole, mtu, ttl,
        None, None, None, None, None, None, None, None, start.date(),
    )  # fmt: skip


ROWS = [
    # rejects: the scanner on 22 in two windows (no reason: a security group), a BPA and an EC reject
    vpc(WEB, SCANNER, WEB_IP, 51000, 22, 6, "REJECT", 3, 3, 180, at(5)),
    vpc(WEB, SCANNER, WEB_IP, 51000, 22, 6, "REJECT", 2, 2, 120, at(65)),
    vpc(WEB, CLIENT, WEB_IP, 52000, 443, 6, "REJECT", 4, 4, 240, at(10), reason="BPA"),
    vpc(DB, ADMIN, DB_IP, 53000, 5432, 6, "REJECT", 1, 1, 60, at(20), reason="EC"),
    # a ping let in, its reply dropped on the way out: a network ACL (outbound rule)
    vpc(WEB, PINGER, WEB_IP, 0, 0, 1, "ACCEPT", 2, 8, 672, at(10), direction="ingress"),
    vpc(WEB, WEB_IP, PINGER, 0, 0, 1, "REJECT", 2, 8, 672, at(10), direction="egress"),
    # not pairs: the same reply rejected on another interface, and one 20 minutes after the ping ended
    vpc(DB, WEB_IP, PINGER, 0, 0, 1, "REJECT", 1, 4, 336, at(11)),
    vpc(WEB, OTHER, WEB_IP, 0, 0, 1, "ACCEPT", 1, 4, 336, at(30), direction="ingress"),
    vpc(WEB, WEB_IP, OTHER, 0, 0, 1, "REJECT", 1, 4, 336, at(51), direction="egress"),
    # encryption-status: TLS on 443, cleartext on 80 both ways, Nitro from the database (which crosses AZs),
    # both inside the VPC to a neighbour in the same AZ
    vpc(WEB, CLIENT, WEB_IP, 50000, 443, 6, "ACCEPT", 1, 10, 1000, at(15), enc=2),
    vpc(WEB, CLIENT, WEB_IP, 50001, 80, 6, "ACCEPT", 1, 5, 500, at(16), enc=0),
    vpc(WEB, WEB_IP, CLIENT, 80, 50001, 6, "ACCEPT", 1, 5, 3000, at(16), enc=0),
    vpc(WEB, WEB2_IP, WEB_IP, 42000, 80, 6, "ACCEPT", 1, 7, 700, at(16), enc=1),  # port 80 from inside: Nitro
    vpc(DB, DB_IP, WEB_IP, 40000, 80, 6, "ACCEPT", 2, 2000, 2_500_000_000, at(17), enc=1,
        az="use1-az2", hop_az="use1-az1", hop_type="interface", direction="egress"),
    vpc(WEB, WEB_IP, WEB2_IP, 41000, 443, 6, "ACCEPT", 1, 1, 100, at(18), enc=3,
        az="use1-az1", hop_az="use1-az1", hop_type="interface", direction="egress"),
    # Transit Gateway drops
    tgw("tgw-attach-1", at(5), no_route=5, mtu=2),
    tgw("tgw-attach-1", at(40), no_route=1),
    tgw("tgw-attach-2", at(70), blackhole=7),
    tgw("tgw-attach-2", at(75)),  # no loss: no row
]  # fmt: skip


@pytest.fixture(scope="module")
def flows(spark):
    return spark.createDataFrame(ROWS, COLUMNS)


def same(got, expected_rows, ddl, spark, order=False):
    expected = spark.createDataFrame(expected_rows, ddl)
    assert_df_equality(got.select(*expected.columns), expected, ignore_row_order=not order, ignore_nullable=True)


def test_rejects_by_cause(spark, flows):
    # no reason: the scanner's 3 + 2 records (180 + 120 bytes), the ping's rejected reply on both interfaces
    # (2 records, 8 packets, 672 bytes on eni-web; 1, 4, 336 on eni-db) and the late reply (1, 4, 336):
    # flows 5, records 3+2+2+1+1 = 9, packets 3+2+8+4+4 = 21, bytes 180+120+672+336+336 = 1644; peers: the
    # scanner and 10.0.0.5 (the replies' source): 2; interfaces eni-web and eni-db: 2
    same(
        N.reject_causes(flows),
        [
            (None, N.NO_REASON, 5, 9, 21, 1644, 2, 2),
            ("BPA", "VPC Block Public Access", 1, 4, 4, 240, 1, 1),
            ("EC", "VPC Encryption Controls", 1, 1, 1, 60, 1, 1),
        ],
        "reject_reason string, cause string, flows bigint, records bigint, packets bigint, bytes bigint, "
        "peers bigint, interfaces bigint",
        spark,
    )


def test_top_rejected_triples_and_their_trend(spark, flows):
    # the scanner's two windows are one triple: 5 records from 08:05 to 09:05:30
    same(
        N.top_rejected(flows, 3),
        [
            (1, SCANNER, WEB_IP, 6, 22, None, 5, 5, 1, at(5), at(65) + dt.timedelta(seconds=30)),
            (2, CLIENT, WEB_IP, 6, 443, "BPA", 4, 4, 1, at(10), at(10) + dt.timedelta(seconds=30)),
            # 3 records from 10.0.0.5 to the pinger on two interfaces beat 2 to the other peer and 1 (EC)
            (3, WEB_IP, PINGER, 1, 0, None, 3, 12, 2, at(10), at(11) + dt.timedelta(seconds=30)),
        ],
        "rank int, srcaddr string, dstaddr string, protocol int, dstport int, reject_reason string, records bigint, "
        "packets bigint, interfaces bigint, first_seen timestamp, last_seen timestamp",
        spark,
        order=True,
    )
    # per hour: 08:00 without reason 3 + 2 + 1 + 1 = 7 records from the scanner and 10.0.0.5; 09:00 the
    # scanner's 2
    same(
        N.rejected_over_time(flows),
        [
            (T, N.NO_REASON, 7, 3 + 8 + 4 + 4, 2),
            (T, "VPC Block Public Access", 4, 4, 1),
            (T, "VPC Encryption Controls", 1, 1, 1),
            (at(60), N.NO_REASON, 2, 2, 1),
        ],
        "time timestamp, cause string, records bigint, packets bigint, sources bigint",
        spark,
    )


def test_an_accepted_ping_whose_reply_is_rejected_is_a_network_acl(spark, flows):
    # only the ping at 08:10 on eni-web: the reply on eni-db is another interface, the other peer's reply (one
    # record) started 20.5 minutes after its request ended (more than the 10 minutes' slack)
    same(
        N.nacl_drops(flows),
        [(WEB, PINGER, WEB_IP, 1, 0, 2, 2, 8, at(10), at(10) + dt.timedelta(seconds=30),
          "outbound rule (the request came in)")],
        "interface_id string, initiator string, responder string, protocol int, port int, requests bigint, "
        "rejected_responses bigint, rejected_packets bigint, first_seen timestamp, last_seen timestamp, "
        "nacl_rule string",
        spark,
    )  # fmt: skip
    # with 30 minutes' slack the other peer's pair counts too; a long session's windows never multiply
    wide = N.nacl_drops(flows, slack_s=1800)
    assert sorted((r.initiator, r.requests, r.rejected_responses) for r in wide.collect()) == [
        (OTHER, 1, 1),
        (PINGER, 2, 2),
    ]


def test_encryption_status_and_the_cleartext_ports(spark, flows):
    # ACCEPT flows with a status: 0: the two port-80 flows (500 + 3000 bytes); 1: the database's 2.5 GB and
    # the neighbour's 700 bytes to port 80 (two interfaces); 2: TLS 1000; 3: the neighbour 100. The pings
    # carry no status: not counted.
    same(
        N.encryption(flows),
        [
            (0, N.ENCRYPTION[0], 2, 2, 10, 3500, 1),
            (1, N.ENCRYPTION[1], 2, 3, 2007, 2_500_000_700, 2),
            (2, N.ENCRYPTION[2], 1, 1, 10, 1000, 1),
            (3, N.ENCRYPTION[3], 1, 1, 1, 100, 1),
        ],
        "encryption_status int, meaning string, flows bigint, records bigint, packets bigint, bytes bigint, "
        "interfaces bigint",
        spark,
    )
    # eni-web port 80: cleartext 3500 of 3500 + 700 bytes (the neighbour's is Nitro-encrypted), one cleartext
    # peer; the database's Nitro flow to port 80 is on eni-db (no cleartext there: no row)
    same(
        N.cleartext(flows),
        [(WEB, 6, 80, 2, 3500, 1, round(3500 / 4200, 4))],
        "interface_id string, protocol int, port int, flows bigint, bytes bigint, peers bigint, cleartext_share double",
        spark,
    )


def test_transit_gateway_drops_per_hour_attachment_and_cause(spark, flows):
    same(
        N.tgw_drops(flows),
        [
            (T, "tgw-1", "tgw-attach-1", "no route", 6, 2),
            (T, "tgw-1", "tgw-attach-1", "MTU exceeded", 2, 1),
            (at(60), "tgw-1", "tgw-attach-2", "blackhole route", 7, 1),
        ],
        "time timestamp, tgw_id string, tgw_attachment_id string, cause string, packets_lost bigint, flows bigint",
        spark,
    )


def test_cross_az_bytes_and_their_cost(spark, flows):
    # only the database's flow crosses (use1-az2 -> use1-az1): 2.5 GB x $0.02 = $0.05; the neighbour's stays
    price = N.CrossAzPrice(per_gb=0.02)
    same(
        N.cross_az(flows, price),
        [(DB, "use1-az2", "use1-az1", "interface", 1, 2_500_000_000, 0.05)],
        "interface_id string, az_id string, next_hop_az_id string, next_hop_interface_type string, flows bigint, "
        "bytes bigint, cost_usd double",
        spark,
    )
    same(
        N.cross_az_pairs(flows, price),
        [("use1-az2", "use1-az1", 1, 2_500_000_000, 1, 0.05)],
        "az_id string, next_hop_az_id string, flows bigint, bytes bigint, interfaces bigint, cost_usd double",
        spark,
    )


SMALL = [
    vpc(WEB, CLIENT, WEB_IP, 50000, 443, 6, "ACCEPT", 2, 4, 400, at(1)),
    vpc(WEB, WEB_IP, CLIENT, 443, 50000, 6, "ACCEPT", 2, 6, 9000, at(1)),
    vpc(DB, DB_IP, WEB_IP, 5432, 41000, 6, "ACCEPT", 1, 3, 300, at(2), vpc=None, az="use1-az2"),
    vpc(DB, DB_IP, WEB_IP, 5432, 41000, 17, "REJECT", 1, 1, 50, at(3), vpc=None, az="use1-az2"),
    tgw("tgw-attach-1", at(4), nbytes=70),
]


def test_top_conversations_hold_both_directions(spark):
    flows = spark.createDataFrame(SMALL, COLUMNS)
    # "10.0.0.5" < "93.184.216.34" as strings: a = the web server; 9000 bytes a -> b, 400 b -> a
    same(
        N.top_conversations(flows, 2),
        [
            (1, WEB_IP, CLIENT, 9000, 400, 9400, 2, 4, 1, at(1), at(1) + dt.timedelta(seconds=30)),
            # "10.0.0.5" < "10.0.1.9": a = the web server again, every byte from the database (b)
            (2, WEB_IP, DB_IP, 0, 350, 350, 2, 2, 1, at(2), at(3) + dt.timedelta(seconds=30)),
        ],
        "rank int, address_a string, address_b string, bytes_a_to_b bigint, bytes_b_to_a bigint, bytes bigint, "
        "flows bigint, records bigint, interfaces bigint, first_seen timestamp, last_seen timestamp",
        spark,
        order=True,
    )


def test_breakdown_takes_what_records_lack_from_the_snapshot(spark):
    flows = spark.createDataFrame(SMALL, COLUMNS)
    snapshot = spark.createDataFrame(
        [(WEB, "vpc-1", "subnet-a"), (DB, "vpc-2", "subnet-b")], "interface_id string, vpc_id string, subnet_id string"
    )
    got = N.breakdown(flows, snapshot).where("dimension in ('vpc_id', 'az_id')")
    # vpc_id: eni-web's rows carry vpc-1 (400 + 9000); eni-db's do not, the snapshot says vpc-2 (300 + 50, one
    # REJECT); the Transit Gateway row has no interface: unknown. az_id: records only (eni-db's use1-az2)
    same(
        got,
        [
            ("vpc_id", 1, "vpc-1", "records", 2, 4, 9400, 9400, 0),
            ("vpc_id", 2, "vpc-2", "interfaces snapshot", 2, 2, 350, 300, 1),
            ("vpc_id", 3, None, "unknown", 1, 1, 70, 0, 0),
            ("az_id", 1, None, "unknown", 3, 5, 9470, 9400, 0),
            ("az_id", 2, "use1-az2", "records", 2, 2, 350, 300, 1),
        ],
        "dimension string, rank int, value string, source string, flows bigint, records bigint, bytes bigint, "
        "accepted_bytes bigint, rejected_flows bigint",
        spark,
    )
    # without a snapshot eni-db's VPC is unknown, with the TGW row's
    no_snap = N.breakdown(flows).where("dimension = 'vpc_id'")
    assert sorted((r.value or "", r.source, r.bytes) for r in no_snap.collect()) == [
        ("", "unknown", 420),
        ("vpc-1", "records", 9400),
    ]


def test_protocol_mix(spark):
    flows = spark.createDataFrame(SMALL, COLUMNS)
    # tcp: 400 + 9000 + 300 + 70 = 9770 of 9820 bytes; udp 50
    same(
        N.protocol_mix(flows),
        [(6, "tcp", 4, 6, 23, 9770, round(9770 / 9820, 4)), (17, "udp", 1, 1, 1, 50, round(50 / 9820, 4))],
        "protocol int, name string, flows bigint, records bigint, packets bigint, bytes bigint, byte_share double",
        spark,
    )


def test_a_reject_reason_aws_adds_later_is_its_own_cause_and_odd_encryption_values_are_skipped(spark):
    from flowspark.core.schema import with_legacy_columns

    rows = [
        vpc(WEB, SCANNER, WEB_IP, 51000, 22, 6, "REJECT", 3, 3, 180, at(5), reason="XY"),
        vpc(WEB, CLIENT, WEB_IP, 52000, 22, 6, "REJECT", 1, 1, 60, at(5)),
        vpc(WEB, CLIENT, WEB_IP, 52001, 443, 6, "ACCEPT", 1, 2, 900, at(6), enc="x"),  # not a number: skipped
        vpc(WEB, CLIENT, WEB_IP, 52002, 443, 6, "ACCEPT", 1, 2, 800, at(7), enc="2"),
    ]
    # a lake written before 2026-12 holds encryption-status as text (`encryption_status`): read as today's
    legacy = COLUMNS.replace("encryption_status_code int", "encryption_status string")
    flows = with_legacy_columns(spark.createDataFrame(rows, legacy))
    assert sorted((r.reject_reason or "", r.cause, r.records) for r in N.reject_causes(flows).collect()) == [
        ("", N.NO_REASON, 1),
        ("XY", "other reason XY", 3),
    ]
    assert [(r.encryption_status, r.bytes) for r in N.encryption(flows).collect()] == [(2, 800)]


def test_data_quality_from_the_ledger(spark):
    d1, d2 = dt.date(2024, 6, 1), dt.date(2024, 6, 2)
    ledger = spark.createDataFrame(
        [
            ("a", [d1], 100, 2, 1, 0, None, "done", dt.datetime(2024, 6, 3, 9)),
            # records on two days: counted once, on its first
            ("b", [d1, d2], 50, 0, 0, 1, "truncated gzip after line 51", "done", dt.datetime(2024, 6, 3, 9)),
            # not gzip: no record, on the day of its claim; ledger rows of older lakes have NULL state
            ("c", [], None, None, None, None, "not gzip", None, dt.datetime(2024, 6, 3, 10)),
            ("d", [d2], 9, 9, 0, 0, None, "claimed", dt.datetime(2024, 6, 3, 11)),  # not done: left out
            # an older version of "a", replaced by the row above (rewritten or --force'd): left out
            ("a", [d2], 70, 7, 7, 7, None, "done", dt.datetime(2024, 6, 2, 9)),
        ],
        "source_file string, days array<date>, records bigint, rejected bigint, nodata bigint, skipdata bigint, "
        "problem string, state string, ingested_at timestamp",
    ).withColumn("done_at", F.col("ingested_at"))
    same(
        N.data_quality(ledger),
        [(d1, 2, 1, 150, 2, 1, 1, round(2 / 150, 6)), (dt.date(2024, 6, 3), 1, 1, 0, 0, 0, 0, None)],
        "day date, objects bigint, broken_objects bigint, records bigint, rejected_lines bigint, nodata bigint, "
        "skipdata bigint, rejected_share double",
        spark,
    )
    # a ledger of a flowspark before the ledger kept outcomes (no done_at, no counts): no rows, no error
    old = ledger.select("source_file", "state", "ingested_at")
    assert N.data_quality(old).count() == 0
    # done rows of such claims in an upgraded ledger (done_at NULL) are left out too
    assert N.data_quality(ledger.withColumn("done_at", F.lit(None).cast("timestamp"))).count() == 0


def test_late_objects_arrive_past_the_grace_after_the_end_of_their_last_day(spark):
    """An object is late when S3 got it (modification_time_ms) more than the grace (60 minutes by default)
    after the end of the last UTC day of its records; max_delay_minutes is the largest delivery after that
    end, 0 for an object that came before it."""
    d1, d2 = dt.date(2024, 6, 1), dt.date(2024, 6, 2)

    def ms(*when):  # an instant in UTC, as S3's LastModified in epoch milliseconds
        return int(dt.datetime(*when, tzinfo=dt.timezone.utc).timestamp() * 1000)

    claimed = dt.datetime(2024, 6, 9, 12)
    ledger = spark.createDataFrame(
        [
            # day 1 ends 2024-06-02 00:00 UTC: 5 minutes before it (delay 0), exactly 60 minutes after it (not
            # more than the grace: on time, delay 60.0) and 60.5 minutes after it (late)
            ("on_time", [d1], ms(2024, 6, 1, 23, 55), "done", claimed),
            ("inside", [d1], ms(2024, 6, 2, 1, 0), "done", claimed),
            ("past", [d1], ms(2024, 6, 2, 1, 0, 30), "done", claimed),
            # records on days 1 and 2: counted on day 1, late only after day 2 ends (2024-06-03 00:00): 5 hours
            # after day 1's end is on time
            ("two_days", [d1, d2], ms(2024, 6, 2, 5, 0), "done", claimed),
            # day 2 ends 2024-06-03 00:00: three hours later is late (180 minutes)
            ("d2_late", [d2], ms(2024, 6, 3, 3, 0), "done", claimed),
            # no record day: counted on the day of its claim, never late, no delay
            ("empty", [], ms(2024, 6, 9, 11, 0), "done", claimed),
        ],
        "source_file string, days array<date>, modification_time_ms bigint, state string, ingested_at timestamp",
    ).withColumn("done_at", F.col("ingested_at"))
    ddl = "day date, objects bigint, late_objects bigint, max_delay_minutes double"
    same(
        N.data_quality(ledger),
        [(d1, 4, 1, 60.5), (d2, 1, 1, 180.0), (dt.date(2024, 6, 9), 1, 0, None)],
        ddl,
        spark,
    )
    # no grace: "inside" (60 minutes) is late too; two hours: only day 2's object (180 minutes)
    same(
        N.data_quality(ledger, late_after_minutes=0),
        [(d1, 4, 2, 60.5), (d2, 1, 1, 180.0), (dt.date(2024, 6, 9), 1, 0, None)],
        ddl,
        spark,
    )
    same(
        N.data_quality(ledger, late_after_minutes=120),
        [(d1, 4, 0, 60.5), (d2, 1, 1, 180.0), (dt.date(2024, 6, 9), 1, 0, None)],
        ddl,
        spark,
    )
    # a ledger without delivery times (hand-made, or not from S3): nothing late, no delay
    same(
        N.data_quality(ledger.drop("modification_time_ms")),
        [(d1, 4, 0, None), (d2, 1, 0, None), (dt.date(2024, 6, 9), 1, 0, None)],
        ddl,
        spark,
    )


PERIOD_COLUMNS = (
    "srcaddr string, dstaddr string, action string, records bigint, packets bigint, bytes bigint, "
    "encryption_status_code int, event_date date"
)
PERIOD_DDL = (
    "position int, measure string, current bigint, previous bigint, change bigint, change_share double, "
    "previous_from date, previous_to date"
)
JUN = [dt.date(2024, 6, d) for d in range(32 - 31, 31)]  # JUN[1] is 2024-06-01
JUN.insert(0, dt.date(2024, 5, 31))  # JUN[0] is 2024-05-31, JUN[d] is June d


@pytest.fixture(scope="module")
def lake_flows(spark):
    """Flows of six days: the report's range will be June 3-4, its previous period June 1-2; May 31 and June 5
    are outside both."""
    return spark.createDataFrame(
        [
            ("10.0.0.9", "10.0.0.8", "REJECT", 7, 7, 7000, 0, JUN[0]),  # May 31: before the previous period
            # the previous period, June 1-2
            ("10.0.0.1", "10.0.0.2", "ACCEPT", 1, 4, 400, 0, JUN[1]),
            ("10.0.0.4", "10.0.0.2", "ACCEPT", 1, 4, 800, 1, JUN[2]),
            # the report's range, June 3-4
            ("10.0.0.1", "10.0.0.2", "ACCEPT", 2, 10, 1000, 0, JUN[3]),
            ("10.0.0.1", "10.0.0.3", "ACCEPT", 1, 5, 500, 2, JUN[4]),
            ("45.0.0.9", "10.0.0.2", "REJECT", 3, 3, 180, None, JUN[4]),
            ("10.0.0.7", "10.0.0.6", "ACCEPT", 9, 9, 9000, 0, JUN[5]),  # June 5: after the range
        ],
        PERIOD_COLUMNS,
    )


def test_previous_period_is_the_same_number_of_days_just_before():
    assert N.previous_period(JUN[3], JUN[4]) == (JUN[1], JUN[2])
    assert N.previous_period(JUN[3], JUN[3]) == (JUN[2], JUN[2])
    # a week across a month end, in a leap year: February 23-29
    assert N.previous_period(dt.date(2024, 3, 1), dt.date(2024, 3, 7)) == (dt.date(2024, 2, 23), dt.date(2024, 2, 29))
    # a range open at either end has none
    assert N.previous_period(None, JUN[4]) is None and N.previous_period(JUN[3], None) is None


def test_the_range_beside_the_same_window_of_the_previous_period(spark, lake_flows):
    from flowspark.core.dates import in_dates

    first, last = N.previous_period(JUN[3], JUN[4])
    current, previous = in_dates(lake_flows, JUN[3], JUN[4]), in_dates(lake_flows, first, last)
    # June 3-4: 3 flows; records 2+1+3 = 6; packets 10+5+3 = 18; bytes 1000+500+180 = 1680; rejected: the
    # scanner's 3 records, 180 bytes; cleartext: the accepted 1000 bytes of status 0 (the REJECT has no
    # status); sources 10.0.0.1 and 45.0.0.9; destinations 10.0.0.2 and 10.0.0.3.
    # June 1-2: 2 flows, records 2, packets 8, bytes 400+800 = 1200, nothing rejected, cleartext 400,
    # sources 10.0.0.1 and 10.0.0.4, one destination (10.0.0.2).
    same(
        N.period_comparison(current, previous, first, last),
        [
            (1, "flows", 3, 2, 1, 0.5, first, last),
            (2, "records", 6, 2, 4, 2.0, first, last),
            (3, "packets", 18, 8, 10, 1.25, first, last),
            (4, "bytes", 1680, 1200, 480, 0.4, first, last),
            (5, "rejected_records", 3, 0, 3, None, first, last),  # nothing rejected before: no share
            (6, "rejected_bytes", 180, 0, 180, None, first, last),
            (7, "cleartext_bytes", 1000, 400, 600, 1.5, first, last),
            (8, "source_addresses", 2, 2, 0, 0.0, first, last),
            (9, "destination_addresses", 2, 1, 1, 1.0, first, last),
        ],
        PERIOD_DDL,
        spark,
    )


def test_a_previous_period_the_lake_does_not_hold_is_null_not_zero(spark, lake_flows):
    from flowspark.core.dates import in_dates

    # May 31 - June 1: the lake has no flow on May 29-30
    first, last = N.previous_period(JUN[0], JUN[1])
    assert (first, last) == (dt.date(2024, 5, 29), dt.date(2024, 5, 30))
    current, previous = in_dates(lake_flows, JUN[0], JUN[1]), in_dates(lake_flows, first, last)
    # May 31's reject (7 records, 7 packets, 7000 bytes; status 0 but rejected: not cleartext) and June 1's
    # accepted 400 cleartext bytes (1 record, 4 packets)
    cur = [2, 8, 11, 7400, 7, 7000, 400, 2, 2]
    expected = [(i + 1, m, c, None, None, None, first, last) for i, (m, c) in enumerate(zip(N.PERIOD_MEASURES, cur))]
    same(N.period_comparison(current, previous, first, last), expected, PERIOD_DDL, spark)
    # no previous period at all (a report of all dates): the same, without its window
    none = [r[:-2] + (None, None) for r in expected]
    same(N.period_comparison(current, None), none, PERIOD_DDL, spark)
    # flows without encryption-status (formats before v10): cleartext bytes unknown, not 0
    plain = N.period_comparison(current.drop("encryption_status_code"), previous).where("measure = 'cleartext_bytes'")
    assert plain.select("current").first()[0] is None
