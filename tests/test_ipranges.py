"""ip-ranges.json loading (history by syncToken, refusals, idempotency) and the classify range join,
checked against a brute-force ipaddress reference on both real AWS files and on a tiny synthetic one."""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import random
from pathlib import Path

import pytest
from chispa import assert_df_equality
from pyspark.sql import functions as F

from flowspark.cli import main
from flowspark.core import addresses as A
from flowspark.core import ipranges as R
from flowspark.edges import tables
from flowspark.pipelines import classify as C
from flowspark.pipelines import ipranges as P

FILES = {"2017": "ip-ranges-2017-07-20.json", "2020": "ip-ranges-2020-04-01.json"}
OUT_SCHEMA = (
    "ip string, ip_version int, aws_prefix string, aws_service string, aws_region string, "
    "aws_network_border_group string, aws_matches string"
)
AWS_COLS = [c.split()[0] for c in OUT_SCHEMA.split(", ")]
FLOWS_SCHEMA = (
    "window_start timestamp, account_id string, interface_id string, srcaddr string, dstaddr string, "
    "srcport int, dstport int, protocol int, action string, records long, packets long, bytes long, "
    "start timestamp, end timestamp, tcp_flags int, pkt_srcaddr string, pkt_dstaddr string, event_date date"
)


def ip_file(samples: Path, year: str) -> Path:
    return samples / "aws-ip-ranges" / FILES[year]


def plan_of(df) -> str:
    return str(df._jdf.queryExecution().executedPlan().toString())


# ---------------------------------------------------------------- the brute-force reference


def service_order(parsed: R.IpRangesFile) -> dict[str, int]:
    """Which service a range listed under several belongs to, derived from the file itself rather than from
    flowspark's rank: AWS says ("Range overlaps") that when service A uses resources of service B the range
    is listed under both and is A's; a service that uses another's resources lists a subset of its ranges,
    so the service listing fewer prefixes is the more specific one (AMAZON lists every range, EC2 most of
    the rest). Order: by the number of prefixes each service lists, fewest first."""
    count: dict[str, int] = {}
    for r in parsed.rows:
        count[r[13]] = count.get(r[13], 0) + 1
    return count


def reference(addresses: list[str], parsed: R.IpRangesFile) -> list[tuple]:
    """Expected classify_addresses rows, from the rule with ipaddress: every network of every length that
    contains the address is looked up among the file's prefixes; the longest prefix found decides, and
    at it the most specific service (service_order; ties: service name, region, border group). No buckets,
    no Spark."""
    order = service_order(parsed)
    rows_of: dict[ipaddress.IPv4Network | ipaddress.IPv6Network, list[tuple]] = {}
    for r in parsed.rows:  # (net, region, nbg, service)
        net = ipaddress.ip_network(r[3])
        rows_of.setdefault(net, []).append((net, r[11], r[12], r[13]))
    out = []
    for text in addresses:
        try:
            a = ipaddress.ip_address(text)
        except ValueError:
            out.append((text, None, None, None, None, None, None))
            continue
        containing = [ipaddress.ip_network((a, n), strict=False) for n in range(a.max_prefixlen, -1, -1)]
        matches = [m for net in containing for m in rows_of.get(net, [])]  # longest prefix first
        if not matches:
            out.append((text, a.version, None, None, None, None, None))
            continue
        longest = [m for m in matches if m[0] == matches[0][0]]
        net, region, nbg, service = min(longest, key=lambda m: (order[m[3]], m[3], m[1], m[2] or ""))
        every = sorted(matches, key=lambda m: (-m[0].prefixlen, m[1], m[3], m[2] or ""))
        text_all = ",".join(f"{m[1]}_{m[3]}_{m[0]}" for m in every)
        out.append((text, a.version, str(net), service, region, nbg, text_all))
    return out


def probe_addresses(parsed: R.IpRangesFile, seed: int = 7) -> list[str]:
    """Documented addresses, first/last/just-outside of sampled prefixes, random ones in and out."""
    rnd = random.Random(seed)
    out = [
        "52.95.128.179",
        "52.213.180.42",
        "52.26.198.183",
        "192.0.2.1",
        "198.51.100.2",
        "203.0.113.12",
        "10.0.0.1",
        "172.31.16.139",
        "100.64.1.1",
        "2001:db8::1",
        "fe80::1",
        "not-an-ip",
    ]
    rows = parsed.rows
    v4 = [r for r in rows if r[2] == 4]
    v6 = [r for r in rows if r[2] == 6]
    for r in rnd.sample(v4, 150) + rnd.sample(v6, 60):
        net = ipaddress.ip_network(r[3])
        first, last = int(net.network_address), int(net.broadcast_address)
        top = (1 << net.max_prefixlen) - 1
        for v in (first, last, first - 1, last + 1, rnd.randint(first, last)):
            if 0 <= v <= top:
                out.append(str(ipaddress.ip_address(v) if net.version == 4 else ipaddress.IPv6Address(v)))
    for _ in range(100):
        out.append(str(ipaddress.IPv4Address(rnd.randint(1 << 24, 223 << 24))))
    for _ in range(30):
        out.append(str(ipaddress.IPv6Address((0x2 << 125) | rnd.getrandbits(125))))
    return list(dict.fromkeys(out))


# ---------------------------------------------------------------- parsing the file (no Spark)


@pytest.mark.parametrize(
    ("year", "token", "created", "v4", "v6", "nbg"),
    [
        ("2017", 1500590532, dt.datetime(2017, 7, 20, 22, 42, 12), 883, 329, None),
        ("2020", 1585759391, dt.datetime(2020, 4, 1, 16, 43, 11), 2077, 561, "ap-southeast-2"),
    ],
)
def test_parse_real_files(samples, year, token, created, v4, v6, nbg):
    p = R.parse_ip_ranges(ip_file(samples, year).read_text(), FILES[year])
    assert (p.sync_token, p.create_date.replace(tzinfo=None), p.ipv4_rows, p.ipv6_rows) == (
        token,
        created,
        v4,
        v6,
    )
    assert p.duplicates == 0
    s3 = [r for r in p.rows if r[3] == "52.95.128.0/21"]
    assert sorted(r[13] for r in s3) == ["AMAZON", "S3"]
    assert {(r[11], r[12]) for r in s3} == {("ap-southeast-2", nbg)}
    assert any(r[11] == "GLOBAL" for r in p.rows)


def _synthetic(**over) -> dict:
    doc = {
        "syncToken": "1700000000",
        "createDate": "2023-11-14-22-13-20",
        "prefixes": [],
        "ipv6_prefixes": [],
    }
    doc["prefixes"] = [{"ip_prefix": "44.0.0.0/8", "region": "us-east-1", "service": "AMAZON"}]
    doc.update(over)
    return doc


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{not json", "is not JSON"),
        ("[1, 2]", "expected a JSON object"),
        (json.dumps(_synthetic(syncToken="soon")), "syncToken 'soon'"),
        (json.dumps(_synthetic(syncToken=None)), "syncToken None"),
        (json.dumps(_synthetic(createDate="2023-11-14")), "createDate"),
        (json.dumps(_synthetic(prefixes=None)), "prefixes is missing"),
        (json.dumps(_synthetic(prefixes=[])), "no prefixes"),
        (json.dumps(_synthetic(ipv6_prefixes={"a": 1})), "ipv6_prefixes is missing or not a list"),
        (
            json.dumps(_synthetic(prefixes=[{"ip_prefix": "1.2.3.0/33", "region": "r", "service": "S"}])),
            "1.2.3.0/33",
        ),
        (
            json.dumps(_synthetic(prefixes=[{"ip_prefix": "1.2.3.4/24", "region": "r", "service": "S"}])),
            "1.2.3.4/24",
        ),
        (
            json.dumps(_synthetic(prefixes=[{"ip_prefix": "2600::/24", "region": "r", "service": "S"}])),
            "IPv4 network",
        ),
        (
            json.dumps(_synthetic(prefixes=[{"ip_prefix": "0.0.0.0/0", "region": "r", "service": "S"}])),
            "wider than /8",
        ),
        (json.dumps(_synthetic(prefixes=[{"ip_prefix": "1.2.3.0/24", "region": "r"}])), "no valid service"),
        (
            json.dumps(_synthetic(prefixes=[{"ip_prefix": "1.2.3.0/24", "region": "", "service": "S"}])),
            "region",
        ),
        (json.dumps(_synthetic(prefixes=["1.2.3.0/24"])), "is not an object"),
        (
            json.dumps(_synthetic(ipv6_prefixes=[{"ipv6_prefix": "::/0", "region": "r", "service": "S"}])),
            "/16",
        ),
    ],
)
def test_malformed_files_are_refused(text, message):
    with pytest.raises(R.IpRangesError, match="refusing|not JSON|expected a JSON object") as exc:
        R.parse_ip_ranges(text, "bad.json")
    assert message in str(exc.value)
    assert "bad.json" in str(exc.value)


# ---------------------------------------------------------------- the join, on both real files


@pytest.fixture(scope="module", params=["2017", "2020"])
def real_file_classes(request, spark, samples):
    parsed = R.parse_ip_ranges(ip_file(samples, request.param).read_text())
    ranges = P.ranges_dataframe(spark, parsed)
    probes = probe_addresses(parsed)
    addresses = spark.createDataFrame([(a,) for a in probes], "ip string")
    got = R.classify_addresses(addresses, ranges)
    return request.param, parsed, probes, got


def test_classify_matches_brute_force_on_real_files(spark, real_file_classes):
    year, parsed, probes, got = real_file_classes
    expected = spark.createDataFrame(reference(probes, parsed), OUT_SCHEMA)
    rows = got.select(*AWS_COLS).collect()
    assert len(rows) == len(probes) > 1000
    assert_df_equality(spark.createDataFrame(rows, OUT_SCHEMA), expected, ignore_row_order=True, ignore_nullable=True)
    by_ip = {r["ip"]: r for r in rows}
    doc = by_ip["52.95.128.179"]  # the AWS doc's pkt-srcaddr, documented as S3 in ap-southeast-2
    assert (doc.aws_prefix, doc.aws_service, doc.aws_region) == ("52.95.128.0/21", "S3", "ap-southeast-2")
    assert doc.aws_matches == "ap-southeast-2_AMAZON_52.95.128.0/21,ap-southeast-2_S3_52.95.128.0/21"
    assert doc.aws_network_border_group == (None if year == "2017" else "ap-southeast-2")
    assert (by_ip["52.213.180.42"].aws_service, by_ip["52.213.180.42"].aws_region) == ("EC2", "eu-west-1")
    assert (by_ip["52.26.198.183"].aws_prefix, by_ip["52.26.198.183"].aws_service) == ("52.24.0.0/14", "EC2")
    for ip in ("192.0.2.1", "198.51.100.2", "203.0.113.12", "10.0.0.1", "2001:db8::1", "not-an-ip"):
        assert by_ip[ip].aws_prefix is None and by_ip[ip].aws_matches is None
    assert sum(r.ip_version == 6 and r.aws_prefix is not None for r in rows) > 100
    assert sum(r.aws_service == "AMAZON" for r in rows) > 20  # addresses in AMAZON-only prefixes


def test_join_is_a_hash_join_on_the_bucket(real_file_classes):
    plan = plan_of(real_file_classes[3])
    assert "NestedLoop" not in plan and "Cartesian" not in plan
    join = [line for line in plan.splitlines() if "Join" in line]
    assert len(join) == 1 and "BroadcastHashJoin" in join[0] and "_bucket" in join[0], join
    assert plan.count("Exchange hashpartitioning") == 1  # the distinct; the join and groupBy add none


def test_classify_follows_aws_overlap_rule_over_the_whole_2020_file(spark, samples):
    """Every prefix of the 2020 file (first, middle and last address) against the rule's oracle; and the
    34 prefixes listed under EC2 and another service are that other service's (3.5.0.0/20: AMAZON, S3
    and EC2 -> S3), which is the traffic a gateway endpoint takes off a NAT gateway."""
    parsed = R.parse_ip_ranges(ip_file(samples, "2020").read_text())
    probes: list[str] = []
    for r in parsed.rows:
        net = ipaddress.ip_network(r[3])
        first, last = int(net.network_address), int(net.broadcast_address)
        probes += [str(ipaddress.ip_address(v) if net.version == 4 else ipaddress.IPv6Address(v))
                   for v in (first, (first + last) // 2, last)]  # fmt: skip
    probes = list(dict.fromkeys(probes))
    addresses = spark.createDataFrame([(a,) for a in probes], "ip string")
    got = R.classify_addresses(addresses, P.ranges_dataframe(spark, parsed)).select(*AWS_COLS)
    expected = spark.createDataFrame(reference(probes, parsed), OUT_SCHEMA)
    assert len(probes) > 4000
    assert_df_equality(got, expected, ignore_row_order=True, ignore_nullable=True)

    services: dict[str, set[str]] = {}
    for r in parsed.rows:
        services.setdefault(r[3], set()).add(r[13])
    shared = {p: s - {"EC2", "AMAZON"} for p, s in services.items() if "EC2" in s and s - {"EC2", "AMAZON"}}
    assert len(shared) == 34 and all(len(s) == 1 for s in shared.values())
    assert shared["3.5.0.0/20"] == {"S3"}
    named = got.where(F.col("aws_prefix").isin(*shared)).select("aws_prefix", "aws_service").distinct()
    assert_df_equality(
        named,
        spark.createDataFrame([(p, s.pop()) for p, s in shared.items()], "aws_prefix string, aws_service string"),
        ignore_row_order=True,
        ignore_nullable=True,
    )


# ---------------------------------------------------------------- the join, on a tiny synthetic file

SYNTHETIC = {
    "syncToken": "1700000000",
    "createDate": "2023-11-14-22-13-20",
    "prefixes": [
        {
            "ip_prefix": "44.0.0.0/8",
            "region": "us-east-1",
            "service": "AMAZON",
            "network_border_group": "us-east-1",
        },
        {
            "ip_prefix": "44.1.0.0/16",
            "region": "us-east-1",
            "service": "EC2",
            "network_border_group": "us-east-1",
        },
        {
            "ip_prefix": "44.1.2.0/24",
            "region": "us-east-1",
            "service": "AMAZON",
            "network_border_group": "use1-z",
        },
        {
            "ip_prefix": "44.1.2.0/24",
            "region": "us-east-1",
            "service": "S3",
            "network_border_group": "use1-z",
        },
        {"ip_prefix": "44.1.2.3/32", "region": "us-east-1", "service": "ROUTE53_HEALTHCHECKS"},
        {"ip_prefix": "44.1.3.0/24", "region": "eu-west-1", "service": "AMAZON"},
        {"ip_prefix": "44.1.4.0/24", "region": "eu-west-1", "service": "EC2"},
        {"ip_prefix": "44.1.4.0/24", "region": "eu-west-1", "service": "CLOUDFRONT"},
        {
            "ip_prefix": "45.0.0.0/24",
            "region": "GLOBAL",
            "service": "CLOUDFRONT",
            "network_border_group": "GLOBAL",
        },
        {
            "ip_prefix": "45.0.0.0/24",
            "region": "GLOBAL",
            "service": "CLOUDFRONT",
            "network_border_group": "GLOBAL",
        },
    ],
    "ipv6_prefixes": [
        {"ipv6_prefix": "2600:1f00::/24", "region": "us-east-1", "service": "AMAZON"},
        {"ipv6_prefix": "2600:1f14::/35", "region": "us-west-2", "service": "EC2"},
        {"ipv6_prefix": "2600:1f14::1/128", "region": "us-west-2", "service": "S3"},
        {"ipv6_prefix": "2a05:d07c:2000:0:8000::/65", "region": "eu-west-3", "service": "AMAZON"},
    ],
}
E1, W1 = "us-east-1", "eu-west-1"
EXPECTED_SYNTHETIC = [
    # the /32, and every prefix it sits in, longest first
    (
        "44.1.2.3",
        4,
        "44.1.2.3/32",
        "ROUTE53_HEALTHCHECKS",
        E1,
        None,
        "us-east-1_ROUTE53_HEALTHCHECKS_44.1.2.3/32,us-east-1_AMAZON_44.1.2.0/24,us-east-1_S3_44.1.2.0/24,"
        "us-east-1_EC2_44.1.0.0/16,us-east-1_AMAZON_44.0.0.0/8",
    ),
    # first / last of the /24 listed as AMAZON and S3: S3 wins
    ("44.1.2.0", 4, "44.1.2.0/24", "S3", E1, "use1-z", None),
    ("44.1.2.255", 4, "44.1.2.0/24", "S3", E1, "use1-z", None),
    ("44.1.3.7", 4, "44.1.3.0/24", "AMAZON", W1, None, None),  # AMAZON only, though inside the EC2 /16
    ("44.1.4.1", 4, "44.1.4.0/24", "CLOUDFRONT", W1, None, None),  # two specific services: by name
    ("44.1.5.1", 4, "44.1.0.0/16", "EC2", E1, E1, None),
    ("44.2.0.0", 4, "44.0.0.0/8", "AMAZON", E1, E1, None),
    ("44.0.0.0", 4, "44.0.0.0/8", "AMAZON", E1, E1, None),
    ("44.255.255.255", 4, "44.0.0.0/8", "AMAZON", E1, E1, None),
    ("43.255.255.255", 4, None, None, None, None, None),
    ("45.0.0.255", 4, "45.0.0.0/24", "CLOUDFRONT", "GLOBAL", "GLOBAL", "GLOBAL_CLOUDFRONT_45.0.0.0/24"),
    ("45.0.1.0", 4, None, None, None, None, None),
    # IPv6: the /128, its /35, the /24 wider than a bucket, and their edges
    ("2600:1f14::1", 6, "2600:1f14::1/128", "S3", "us-west-2", None, None),
    ("2600:1f14::2", 6, "2600:1f14::/35", "EC2", "us-west-2", None, None),
    ("2600:1f14::", 6, "2600:1f14::/35", "EC2", "us-west-2", None, None),
    ("2600:1f14:1fff:ffff:ffff:ffff:ffff:ffff", 6, "2600:1f14::/35", "EC2", "us-west-2", None, None),
    ("2600:1f14:2000::", 6, "2600:1f00::/24", "AMAZON", E1, None, None),
    ("2600:1f00::", 6, "2600:1f00::/24", "AMAZON", E1, None, None),
    ("2600:1fff:ffff:ffff:ffff:ffff:ffff:ffff", 6, "2600:1f00::/24", "AMAZON", E1, None, None),
    ("2600:1eff:ffff:ffff:ffff:ffff:ffff:ffff", 6, None, None, None, None, None),
    ("2600:2000::", 6, None, None, None, None, None),
    # a /65: the range test on the low half, whose top bit is set
    ("2a05:d07c:2000:0:8000::", 6, "2a05:d07c:2000:0:8000::/65", "AMAZON", "eu-west-3", None, None),
    (
        "2a05:d07c:2000::ffff:ffff:ffff:ffff",
        6,
        "2a05:d07c:2000:0:8000::/65",
        "AMAZON",
        "eu-west-3",
        None,
        None,
    ),
    ("2a05:d07c:2000:0:7fff:ffff:ffff:ffff", 6, None, None, None, None, None),
    ("2a05:d07c:2000:1::", 6, None, None, None, None, None),
    # IPv4-mapped IPv6 is IPv6 here: it does not match IPv4 prefixes
    ("::ffff:44.1.2.3", 6, None, None, None, None, None),
    ("10.0.0.1", 4, None, None, None, None, None),
    ("junk", None, None, None, None, None, None),
]


@pytest.fixture(scope="module")
def synthetic(spark):
    parsed = R.parse_ip_ranges(json.dumps(SYNTHETIC), "synthetic.json")
    return parsed, P.ranges_dataframe(spark, parsed)


def test_synthetic_file(spark, synthetic):
    parsed, ranges = synthetic
    assert (parsed.ipv4_rows, parsed.ipv6_rows, parsed.duplicates) == (9, 4, 1)
    addresses = spark.createDataFrame([(r[0],) for r in EXPECTED_SYNTHETIC], "ip string")
    got = R.classify_addresses(addresses, ranges)
    ref = {r[0]: r for r in reference([r[0] for r in EXPECTED_SYNTHETIC], parsed)}
    # the hand-written rows (aws_matches given only where it says something) agree with the reference
    expected = [r if r[6] is not None else r[:6] + (ref[r[0]][6],) for r in EXPECTED_SYNTHETIC]
    assert expected == [ref[r[0]] for r in EXPECTED_SYNTHETIC]
    assert_df_equality(
        got.select(*AWS_COLS),
        spark.createDataFrame(expected, OUT_SCHEMA),
        ignore_row_order=True,
        ignore_nullable=True,
    )
    classes = {r["ip"]: r["address_class"] for r in got.select("ip", "address_class").collect()}
    assert classes["44.1.2.3"] == A.PUBLIC and classes["10.0.0.1"] == A.PRIVATE and classes["junk"] == A.INVALID


# ---------------------------------------------------------------- the jobs, on a Delta lake

T0 = dt.datetime(2024, 3, 1, 10, 0)


def flows_rows(day: dt.date, pairs: list[tuple]) -> list[tuple]:
    start = dt.datetime.combine(day, T0.time())
    return [
        (
            start,
            "123456789012",
            "eni-1",
            s,
            d,
            443,
            50000,
            6,
            "ACCEPT",
            1,
            10,
            1000,
            start,
            start,
            2,
            ps,
            pd,
            day,
        )
        for s, d, ps, pd in pairs
    ]


D1, D2, D3 = dt.date(2024, 3, 1), dt.date(2024, 3, 2), dt.date(2024, 3, 3)


@pytest.fixture(scope="module")
def lake(spark, samples, tmp_path_factory):
    lake = str(tmp_path_factory.mktemp("ipranges_lake"))
    log = {"old": P.load_ip_ranges(spark, str(ip_file(samples, "2017")), lake)}
    log["first"] = P.load_ip_ranges(spark, str(ip_file(samples, "2020")), lake)
    log["version"] = tables.version(spark, lake, tables.AWS_IP_RANGES)
    log["again"] = P.load_ip_ranges(spark, str(ip_file(samples, "2020")), lake)
    log["version_again"] = tables.version(spark, lake, tables.AWS_IP_RANGES)
    rows = flows_rows(D1, [("10.0.0.5", "52.95.128.179", "10.0.0.5", "52.95.128.179")]) + flows_rows(
        D2,
        [
            ("52.213.180.42", "10.0.0.6", None, None),
            ("2600:1f14::1", "192.0.2.1", None, None),
            ("10.0.0.5", "52.95.128.179", None, None),
        ],
    )
    tables.append(spark.createDataFrame(rows, FLOWS_SCHEMA), lake, tables.FLOWS, partition_by=["event_date"])
    log["full"] = C.run_classify(spark, lake)
    log["after_full"] = sorted(tables.read(spark, lake, tables.IP_CLASSES).collect())
    log["merge_d2"] = C.run_classify(spark, lake, D2, D2)
    log["after_merge_d2"] = sorted(tables.read(spark, lake, tables.IP_CLASSES).collect())
    return lake, log


def test_loading_is_idempotent_and_keeps_history(spark, lake, samples, tmp_path):
    path, log = lake
    assert (log["old"].status, log["old"].rows_written, log["old"].previous_token) == ("loaded", 1212, None)
    first = log["first"]
    assert (first.status, first.rows_written, first.sync_token, first.previous_token) == (
        "loaded",
        2638,
        1585759391,
        1500590532,
    )
    assert log["again"].status == "already loaded" and log["version_again"] == log["version"]
    assert "already loaded" in log["again"].text()
    # an older file that was loaded before is a no-op too; one never loaded is refused
    assert P.load_ip_ranges(spark, str(ip_file(samples, "2017")), path).status == "already loaded"
    older = tmp_path / "older.json"
    older.write_text(json.dumps(_synthetic(syncToken="1550000000", createDate="2019-02-12-19-33-20")))
    with pytest.raises(R.IpRangesError, match="older than the newest loaded"):
        P.load_ip_ranges(spark, str(older), path)
    assert tables.version(spark, path, tables.AWS_IP_RANGES) == log["version"]
    tokens = tables.read(spark, path, tables.AWS_IP_RANGES).groupBy("sync_token").count().collect()
    assert sorted(tuple(r) for r in tokens) == [(1500590532, 1212), (1585759391, 2638)]
    token, latest = C.read_latest_ranges(spark, path)
    assert token == 1585759391 and latest.count() == 2638


def test_classify_job_writes_ip_classes_and_reruns_change_nothing(spark, lake):
    path, log = lake
    full, merge = log["full"], log["merge_d2"]
    assert (full.mode, full.addresses, full.in_aws, full.sync_token) == ("overwrite", 6, 3, 1585759391)
    assert full.by_class[A.PRIVATE] == 2 and full.by_class[A.DOCUMENTATION] == 1 and full.by_class[A.PUBLIC] == 3
    assert (merge.mode, merge.addresses, merge.inserted, merge.updated) == ("merge", 6, 0, 0)
    assert log["after_merge_d2"] == log["after_full"]
    got = {r["ip"]: r for r in log["after_full"]}
    assert set(got) == {"10.0.0.5", "10.0.0.6", "52.95.128.179", "52.213.180.42", "2600:1f14::1", "192.0.2.1"}
    s3 = got["52.95.128.179"]
    assert (s3.address_class, s3.aws_service, s3.aws_region, s3.aws_sync_token) == (
        A.PUBLIC,
        "S3",
        "ap-southeast-2",
        1585759391,
    )
    assert (got["2600:1f14::1"].ip_version, got["2600:1f14::1"].aws_service) == (6, "EC2")
    assert got["192.0.2.1"].address_class == A.DOCUMENTATION and got["192.0.2.1"].aws_prefix is None

    # a new day: its new address is merged in, the others stay as they were
    tables.append(
        spark.createDataFrame(flows_rows(D3, [("10.0.0.5", "3.5.140.9", None, None)]), FLOWS_SCHEMA),
        path,
        tables.FLOWS,
        partition_by=["event_date"],
    )
    s = C.run_classify(spark, path, D3, None)
    assert (s.mode, s.addresses, s.inserted, s.updated) == ("merge", 2, 1, 0)
    after = {r["ip"]: r for r in tables.read(spark, path, tables.IP_CLASSES).collect()}
    assert set(after) == set(got) | {"3.5.140.9"}
    assert all(after[ip] == got[ip] for ip in got)

    flows = C.read_classified_flows(spark, path, D1, D1, pkt=True).collect()
    assert len(flows) == 1
    f = flows[0]
    assert (
        f.src_address_class,
        f.src_aws_service,
        f.dst_address_class,
        f.dst_aws_service,
        f.dst_aws_region,
    ) == (
        A.PRIVATE,
        None,
        A.PUBLIC,
        "S3",
        "ap-southeast-2",
    )
    assert (f.pkt_dst_aws_service, f.pkt_src_address_class) == ("S3", A.PRIVATE)


def test_classified_flows_without_ip_classes_rows(spark):
    flows = spark.createDataFrame(
        flows_rows(D1, [("10.0.0.5", "8.8.8.8", None, None), (None, "fe80::1", None, None)]), FLOWS_SCHEMA
    )
    empty = spark.createDataFrame([], "ip string, address_class string, aws_service string, aws_region string")
    got = R.classified_flows(flows, empty).select("src_address_class", "dst_address_class", "dst_aws_service")
    assert sorted(got.collect(), key=str) == sorted([(A.PRIVATE, A.PUBLIC, None), (None, A.LINK_LOCAL, None)], key=str)


# ---------------------------------------------------------------- the CLI


def test_cli(spark, lake, samples, tmp_path, capsys):
    path, _ = lake
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(_synthetic(prefixes=[{"ip_prefix": "44.0.0.0/33", "region": "r", "service": "S"}])))
    assert main(["ip-ranges", "--ip-ranges", str(bad), "--lake", str(tmp_path / "lake")]) == 2
    assert "44.0.0.0/33" in capsys.readouterr().err
    assert main(["ip-ranges", "--ip-ranges", str(tmp_path / "missing.json"), "--lake", path]) == 2
    assert "not found" in capsys.readouterr().err
    assert main(["ip-ranges", "--ip-ranges", str(ip_file(samples, "2020")), "--lake", path]) == 0
    assert "already loaded" in capsys.readouterr().out
    older = tmp_path / "older.json"
    older.write_text(json.dumps(_synthetic(syncToken="1550000000", createDate="2019-02-12-19-33-20")))
    assert main(["ip-ranges", "--ip-ranges", str(older), "--lake", path]) == 2
    assert "older than the newest loaded" in capsys.readouterr().err
    assert main(["classify", "--lake", path, "--from", "2024-03-02", "--to", "2024-03-01"]) == 2
    assert main(["classify", "--lake", str(tmp_path / "empty")]) == 2
    assert "run 'flowspark ip-ranges' first" in capsys.readouterr().err
    assert main(["classify", "--lake", path, "--from", "2024-03-02", "--to", "2024-03-02"]) == 0
    out = capsys.readouterr().out
    assert "merged: 0 new, 0 re-classified" in out and "sync_token 1585759391" in out
    assert tables.read(spark, path, tables.IP_CLASSES).where(F.col("aws_service") == "S3").count() == 1
