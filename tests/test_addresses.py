"""flowspark.addresses Column helpers against Python's ipaddress module, on a few thousand random
addresses in every notation plus hand-picked edge cases and invalid strings."""

from __future__ import annotations

import ipaddress
import random

import pytest
from chispa import assert_column_equality
from pyspark.sql import functions as F

from flowspark.core import addresses as A

EDGE = [
    # IPv4
    "0.0.0.0",
    "0.255.255.255",
    "1.0.0.0",
    "9.255.255.255",
    "10.0.0.0",
    "10.255.255.255",
    "11.0.0.0",
    "100.63.255.255",
    "100.64.0.0",
    "100.127.255.255",
    "100.128.0.0",
    "127.0.0.1",
    "169.254.169.254",
    "172.15.255.255",
    "172.16.0.0",
    "172.31.255.255",
    "172.32.0.0",
    "192.0.0.8",
    "192.0.2.1",
    "192.0.3.0",
    "192.168.1.1",
    "198.18.0.1",
    "198.51.100.7",
    "203.0.113.255",
    "224.0.0.1",
    "239.255.255.255",
    "240.0.0.1",
    "255.255.255.254",
    "255.255.255.255",
    "52.95.128.179",
    # IPv6, every notation
    "::",
    "::1",
    "::2",
    "1::",
    "0::0",
    "0:0:0:0:0:0:0:0",
    "::ffff:1.2.3.4",
    "::FFFF:10.0.0.1",
    "::ffff:0a00:0001",
    "::ffff:c000:0201",
    "64:ff9b::192.168.0.1",
    "64:ff9b::8.8.8.8",
    "::1.2.3.4",
    "1:2:3:4:5:6:1.2.3.4",
    "1:2:3:4:5:6:7::",
    "::2:3:4:5:6:7:8",
    "1:2:3:4:5:6:7:8",
    "1:0:0:4::8",
    "2001:db8::1",
    "2001:DB8:0:0:8:800:200C:417A",
    "2001:2::1",
    "3fff::1",
    "2600:1f14::1",
    "2600:1f14:0fff:f800::",
    "fc00::1",
    "fdff:ffff::1",
    "fe80::1",
    "febf:ffff::1",
    "fec0::1",
    "ff02::1",
    "100::1",
    "4000::1",
    "7fff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
    "8000::",
    "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
    "0000:0000:0000:0000:0000:0000:0000:0001",
    # invalid: both parsers must refuse them
    "",
    " ",
    "-",
    "abc",
    "1.2.3",
    "1.2.3.4.5",
    "01.2.3.4",
    "1.2.3.04",
    "256.0.0.1",
    "1.2.3.4 ",
    " 1.2.3.4",
    "1.2.3.-1",
    "1..3.4",
    ":::",
    "::::",
    "1:::2",
    ":1::2",
    "::1:",
    "1::2::3",
    "1:2:3:4:5:6:7:8::",
    "::1:2:3:4:5:6:7:8",
    "1:2:3:4:5:6:7:8:9",
    "1:2:3:4:5:6:7",
    "12345::",
    "g::",
    "1:2:3:4:5:6:7:1.2.3.4",
    "::1.2.3.04",
    "::ffff:1.2.3",
    "::ffff:1.2.3.4.5",
    "::ffff:256.2.3.4",
    "1.2.3.4::",
    "::1.2.3.4:5",
    "fe80::1%eth0",
    "[::1]",
]


def _random_cases(n: int, seed: int = 20240601) -> list[str]:
    rnd = random.Random(seed)
    out: list[str] = []
    for _ in range(n):
        k = rnd.random()
        if k < 0.35:
            out.append(str(ipaddress.IPv4Address(rnd.getrandbits(32))))
            continue
        value = rnd.getrandbits(128)
        # Zero runs of many lengths so that '::' lands everywhere.
        for _ in range(rnd.randint(0, 3)):
            start = rnd.randrange(8)
            for g in range(start, min(8, start + rnd.randint(1, 6))):
                value &= ~(0xFFFF << (16 * (7 - g)))
        a = ipaddress.IPv6Address(value)
        groups = [f"{(value >> (16 * (7 - i))) & 0xFFFF:x}" for i in range(8)]
        style = rnd.randrange(7)
        if style == 0:
            text = str(a)
        elif style == 1:
            text = a.exploded
        elif style == 2:
            text = str(a).upper()
        elif style == 3:
            text = ":".join(groups)  # no compression, no padding
        elif style == 4:  # '::' on a zero run that is not the longest (still valid)
            zeros = [i for i, g in enumerate(groups) if g == "0"]
            if zeros:
                i = rnd.choice(zeros)
                text = ":".join(groups[:i]) + "::" + ":".join(groups[i + 1 :])
            else:
                text = str(a)
        elif style == 5:  # dotted IPv4 tail
            v4 = ipaddress.IPv4Address(value & 0xFFFFFFFF)
            text = ":".join(groups[:6]) + ":" + str(v4)
        else:  # a mutation: usually invalid, sometimes not; ipaddress decides
            s = list(str(a))
            i = rnd.randrange(len(s))
            s[i : i + 1] = rnd.choice([[], [":"], ["g"], ["::"], [s[i], s[i]], ["."]])
            text = "".join(s)
        out.append(text)
    return out


CASES = list(dict.fromkeys(EDGE + _random_cases(2500)))


def ref_parse(text: str) -> tuple[int, int, int] | None:
    if "%" in text:  # zone ids are out of scope (see flowspark.addresses)
        return None
    try:
        a = ipaddress.ip_address(text)
    except ValueError:
        return None
    hi, lo = A.split128(int(a))
    return a.version, hi, lo


# The registries the classes are named after, written here from the RFCs (not from flowspark's table); the
# rest comes from Python's ipaddress predicates (is_loopback, is_link_local, is_multicast, ...).
RFC1918 = [ipaddress.ip_network(n) for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16")]
RFC5737 = [ipaddress.ip_network(n) for n in ("192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24")]
RFC2544 = ipaddress.ip_network("198.18.0.0/15")  # benchmarking
RFC6890_THIS_NETWORK = ipaddress.ip_network("0.0.0.0/8")
IETF_PROTOCOL = ipaddress.ip_network("192.0.0.0/24")  # RFC 6890
NAT64 = ipaddress.ip_network("64:ff9b::/96")  # RFC 6052
V6_BENCHMARKING = ipaddress.ip_network("2001:2::/48")  # RFC 5180
V6_DOCUMENTATION = [ipaddress.ip_network(n) for n in ("2001:db8::/32", "3fff::/20")]  # RFC 3849, RFC 9637
V6_ULA = ipaddress.ip_network("fc00::/7")  # RFC 4193
V6_GLOBAL_UNICAST = ipaddress.ip_network("2000::/3")  # IANA's global unicast space


def ref_v4_class(a: ipaddress.IPv4Address) -> str:
    if a == ipaddress.IPv4Address("255.255.255.255"):
        return A.BROADCAST
    if a.is_unspecified:
        return A.UNSPECIFIED
    if a in RFC6890_THIS_NETWORK or a in IETF_PROTOCOL or a.is_reserved:  # is_reserved: 240.0.0.0/4
        return A.RESERVED
    if a.is_loopback:
        return A.LOOPBACK
    if a.is_link_local:
        return A.LINK_LOCAL
    if a.is_multicast:
        return A.MULTICAST
    if any(a in n for n in RFC1918):
        return A.PRIVATE
    if any(a in n for n in RFC5737):
        return A.DOCUMENTATION
    if a in RFC2544:
        return A.BENCHMARKING
    if not a.is_private and not a.is_global:  # in Python 3.11 only RFC 6598's 100.64.0.0/10 is neither
        return A.SHARED
    assert not a.is_private, f"{a}: a special block this oracle does not know"
    return A.PUBLIC


def ref_class(text: str) -> str:
    """The class of an address from ipaddress's predicates and the RFC blocks above, independent of
    flowspark's class table (the named blocks in test_address_class_of_the_named_blocks check that table)."""
    if ref_parse(text) is None:
        return A.INVALID
    a = ipaddress.ip_address(text)
    if a.version == 4:
        return ref_v4_class(a)
    if a.is_unspecified:
        return A.UNSPECIFIED
    if a.is_loopback:
        return A.LOOPBACK
    if a.ipv4_mapped is not None:
        return ref_v4_class(a.ipv4_mapped)
    if a in NAT64:
        return ref_v4_class(ipaddress.IPv4Address(int(a) & 0xFFFFFFFF))
    if a in V6_BENCHMARKING:
        return A.BENCHMARKING
    if any(a in n for n in V6_DOCUMENTATION):
        return A.DOCUMENTATION
    if a.is_multicast:
        return A.MULTICAST
    if a.is_link_local:
        return A.LINK_LOCAL
    if a in V6_ULA:
        return A.UNIQUE_LOCAL
    if a in V6_GLOBAL_UNICAST:
        return A.PUBLIC
    return A.RESERVED


@pytest.fixture(scope="module")
def checked(spark):
    rows = []
    for text in CASES:
        p = ref_parse(text)
        v4 = p[2] if p and p[0] == 4 else None
        v6 = p if p and p[0] == 6 else None
        rows.append(
            (
                text,
                p[0] if p else None,
                p[1] if p else None,
                p[2] if p else None,
                v4,
                v6[1] if v6 else None,
                v6[2] if v6 else None,
                ref_class(text),
            )
        )
    schema = (
        "ip string, exp_version int, exp_hi long, exp_lo long, exp_v4 long, exp_v6_hi long, exp_v6_lo long, "
        "exp_class string"
    )
    df = spark.createDataFrame(rows, schema).repartition(2)
    hl = A.ipv6_to_hi_lo("ip")
    parsed = A.parse_ip("ip")
    out = df.select(
        "*",
        parsed.getField("ip_version").alias("version"),
        A.ip_version("ip").alias("version2"),
        parsed.getField("hi").alias("hi"),
        parsed.getField("lo").alias("lo"),
        A.ipv4_to_long("ip").alias("v4"),
        hl.getField("hi").alias("v6_hi"),
        hl.getField("lo").alias("v6_lo"),
        A.address_class("ip").alias("class"),
    ).cache()
    yield out
    out.unpersist()


def test_cases_cover_the_interesting_ground():
    parsed = [ref_parse(t) for t in CASES]
    assert len(CASES) > 2000
    assert sum(p is not None and p[0] == 4 for p in parsed) > 500
    assert sum(p is not None and p[0] == 6 for p in parsed) > 1000
    assert sum(p is None for p in parsed) > 100
    assert sum(p is not None and p[1] < 0 for p in parsed) > 300  # hi with the top bit set
    assert sum(p is not None and p[2] < 0 for p in parsed) > 300  # lo with the top bit set
    assert sum("." in t and ":" in t and ref_parse(t) is not None for t in CASES) > 50
    assert {ref_class(t) for t in CASES} == set(A.ADDRESS_CLASSES)


def test_parsing_matches_ipaddress(checked):
    assert_column_equality(checked, "v4", "exp_v4")
    assert_column_equality(checked, "v6_hi", "exp_v6_hi")
    assert_column_equality(checked, "v6_lo", "exp_v6_lo")
    assert_column_equality(checked, "version", "exp_version")
    assert_column_equality(checked, "version2", "exp_version")
    assert_column_equality(checked, "hi", "exp_hi")
    assert_column_equality(checked, "lo", "exp_lo")


def test_address_class_matches_ipaddress_membership(checked):
    assert_column_equality(checked, "class", "exp_class")


def test_address_class_of_the_named_blocks():
    # The table itself, checked against the blocks the classes are named after.
    expected = {
        "10.1.2.3": A.PRIVATE,
        "172.16.0.1": A.PRIVATE,
        "172.32.0.1": A.PUBLIC,
        "192.168.0.1": A.PRIVATE,
        "100.64.0.1": A.SHARED,
        "100.128.0.1": A.PUBLIC,
        "127.0.0.1": A.LOOPBACK,
        "169.254.169.254": A.LINK_LOCAL,
        "224.0.0.251": A.MULTICAST,
        "192.0.2.1": A.DOCUMENTATION,
        "198.51.100.1": A.DOCUMENTATION,
        "203.0.113.1": A.DOCUMENTATION,
        "198.19.255.255": A.BENCHMARKING,
        "0.0.0.0": A.UNSPECIFIED,
        "255.255.255.255": A.BROADCAST,
        "240.0.0.1": A.RESERVED,
        "52.95.128.179": A.PUBLIC,
        "::": A.UNSPECIFIED,
        "::1": A.LOOPBACK,
        "fd12:3456::1": A.UNIQUE_LOCAL,
        "fe80::1": A.LINK_LOCAL,
        "ff02::1": A.MULTICAST,
        "2001:db8::1": A.DOCUMENTATION,
        "2600:1f14::1": A.PUBLIC,
        "::ffff:10.0.0.1": A.PRIVATE,
        "::ffff:52.95.128.179": A.PUBLIC,
        "64:ff9b::10.0.0.1": A.PRIVATE,
        "fec0::1": A.RESERVED,
        "not-an-ip": A.INVALID,
    }
    assert {t: ref_class(t) for t in expected} == expected


def test_numbers_buckets_and_unsigned_order(spark):
    a, b = "2600:1f14:fff:f800::", "ffff:ffff:ffff:ffff:8000::1"
    rows = [
        ("52.95.128.179", "52.95.128.0", "52.95.135.255", True),
        ("52.95.136.0", "52.95.128.0", "52.95.135.255", False),
        ("52.95.127.255", "52.95.128.0", "52.95.135.255", False),
        ("2600:1f14:fff:f800::1", a, "2600:1f14:fff:ffff:ffff:ffff:ffff:ffff", True),
        ("2600:1f14:fff:f7ff::", a, "2600:1f14:fff:ffff:ffff:ffff:ffff:ffff", False),
        ("ffff:ffff:ffff:ffff:8000::2", b, "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", True),  # lo < 0
        ("ffff:ffff:ffff:ffff:7fff::", b, "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", False),
        ("8000::", "::", "7fff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", False),  # hi < 0 is above, not below
        ("7fff::", "::", "7fff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", True),
    ]
    df = spark.createDataFrame(rows, "ip string, first string, last string, expected boolean")
    p, f, lst = (A.parse_ip(c) for c in ("ip", "first", "last"))
    got = df.select(
        A.u128_between(
            p.getField("hi"),
            p.getField("lo"),
            f.getField("hi"),
            f.getField("lo"),
            lst.getField("hi"),
            lst.getField("lo"),
        ).alias("got"),
        "expected",
        A.long_to_ipv4(A.ipv4_to_long("first")).alias("roundtrip"),
        F.when(p.getField("ip_version") == 4, F.col("first")).alias("first_if_v4"),
        A.bucket(p.getField("ip_version"), p.getField("hi"), p.getField("lo")).alias("bucket"),
    )
    assert_column_equality(got.where("first_if_v4 is not null"), "roundtrip", "first_if_v4")
    assert_column_equality(got, "got", "expected")
    buckets = [r["bucket"] for r in got.collect()]
    assert buckets[0] == (52 << 8) + 95
    assert buckets[3] == 0x26001F14
    assert buckets[5] == 0xFFFFFFFF  # unsigned: never negative


def test_network_bounds():
    assert A.network_bounds("52.95.128.0/21") == (
        4,
        21,
        0,
        878673920,
        0,
        878675967,
        "52.95.128.0",
        "52.95.135.255",
    )
    v, n, fh, fl, lh, ll, first, last = A.network_bounds("2600:1f14::1/128")
    assert (v, n, first, last, fh, lh, fl, ll) == (6, 128, "2600:1f14::1", "2600:1f14::1", fh, fh, 1, 1)
    assert A.network_bounds("ffff::/16")[2] < 0
    with pytest.raises(ValueError):
        A.network_bounds("52.95.128.1/21")  # host bits set
    with pytest.raises(ValueError):
        A.network_bounds("52.95.128.0/33")
