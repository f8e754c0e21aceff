"""IP address helpers as native Spark Column expressions (no Python UDFs), plus the few pure-Python
helpers the driver uses on small inputs (the prefixes of ip-ranges.json).

Numbers
    Every address is a 128-bit unsigned number held in two longs, ``hi`` (bits 127..64) and ``lo``
    (bits 63..0), each the two's-complement bit pattern of its unsigned half (so ``ffff::`` has a
    negative ``hi``). IPv4 addresses use ``hi = 0`` and ``lo`` = the 32-bit address, and always travel
    with ``ip_version`` so that ``1.2.3.4`` and ``::102:304`` never meet. Ordering is unsigned: compare
    with :func:`u128_le` / :func:`u128_between`, never with ``<`` on the raw halves.

Parsing
    :func:`ipv4_to_long` accepts exactly what Python's ``ipaddress.IPv4Address`` accepts (dotted quad,
    no leading zeros). :func:`ipv6_to_hi_lo` accepts what ``ipaddress.IPv6Address`` accepts (any case,
    ``::`` compression, an embedded dotted-quad tail such as ``::ffff:10.0.0.1``) except zone ids
    (``fe80::1%eth0``), which flow logs never carry and which parse to null here. Anything else is
    null, never an error, whether or not ANSI mode is on (every cast is guarded by a regex).

Classes
    :func:`address_class` names the special-purpose block an address is in (RFC 6890 and friends):
    see :data:`IPV4_CLASSES` and :data:`IPV6_CLASSES` for the exact table, first match wins.
    IPv4-mapped (``::ffff:0:0/96``) and NAT64 (``64:ff9b::/96``) IPv6 addresses take the class of
    the IPv4 address they carry.

Cost
    IPv6 parsing and the class table bind intermediate values once with a one-element ``transform``
    (see ``_let``): a native higher-order function, evaluated without code generation but with no
    Python in the loop (``parse_ip`` + ``class_of``: 1M mixed addresses in ~7 s on two busy cores).
    Pass a column *name* to ``class_of`` to skip the binding.
"""

from __future__ import annotations

import ipaddress
from typing import Callable, Union

from pyspark.sql import Column
from pyspark.sql import functions as F

ColumnOrName = Union[Column, str]

IPV4 = 4
IPV6 = 6

# Address classes (the values of address_class).
PUBLIC = "public"
PRIVATE = "private"  # RFC 1918
SHARED = "shared"  # RFC 6598 carrier-grade NAT, 100.64.0.0/10
LOOPBACK = "loopback"
LINK_LOCAL = "link_local"
MULTICAST = "multicast"
UNIQUE_LOCAL = "unique_local"  # IPv6 ULA, fc00::/7
DOCUMENTATION = "documentation"
BENCHMARKING = "benchmarking"
UNSPECIFIED = "unspecified"
BROADCAST = "broadcast"
RESERVED = "reserved"  # everything else IANA does not hand out for public unicast
INVALID = "invalid"  # not an IPv4 or IPv6 address at all

ADDRESS_CLASSES = (
    PUBLIC,
    PRIVATE,
    SHARED,
    LOOPBACK,
    LINK_LOCAL,
    MULTICAST,
    UNIQUE_LOCAL,
    DOCUMENTATION,
    BENCHMARKING,
    UNSPECIFIED,
    BROADCAST,
    RESERVED,
    INVALID,
)

# First match wins; an IPv4 address in none of them is PUBLIC.
IPV4_CLASSES: tuple[tuple[str, str], ...] = (
    ("0.0.0.0/32", UNSPECIFIED),
    ("255.255.255.255/32", BROADCAST),
    ("0.0.0.0/8", RESERVED),  # "this network"
    ("10.0.0.0/8", PRIVATE),
    ("100.64.0.0/10", SHARED),
    ("127.0.0.0/8", LOOPBACK),
    ("169.254.0.0/16", LINK_LOCAL),
    ("172.16.0.0/12", PRIVATE),
    ("192.0.0.0/24", RESERVED),  # IETF protocol assignments
    ("192.0.2.0/24", DOCUMENTATION),  # TEST-NET-1
    ("192.168.0.0/16", PRIVATE),
    ("198.18.0.0/15", BENCHMARKING),
    ("198.51.100.0/24", DOCUMENTATION),  # TEST-NET-2
    ("203.0.113.0/24", DOCUMENTATION),  # TEST-NET-3
    ("224.0.0.0/4", MULTICAST),
    ("240.0.0.0/4", RESERVED),  # former class E
)

# First match wins. "ipv4" means: the class of the IPv4 address in the low 32 bits.
# An IPv6 address in none of them is RESERVED (outside 2000::/3, IANA's global unicast space).
IPV6_CLASSES: tuple[tuple[str, str], ...] = (
    ("::/128", UNSPECIFIED),
    ("::1/128", LOOPBACK),
    ("::ffff:0:0/96", "ipv4"),  # IPv4-mapped
    ("64:ff9b::/96", "ipv4"),  # NAT64 well-known prefix (AWS NAT gateways' DNS64)
    ("2001:2::/48", BENCHMARKING),
    ("2001:db8::/32", DOCUMENTATION),
    ("3fff::/20", DOCUMENTATION),  # RFC 9637
    ("2000::/3", PUBLIC),
    ("fc00::/7", UNIQUE_LOCAL),
    ("fe80::/10", LINK_LOCAL),
    ("ff00::/8", MULTICAST),
)

_LONG_MIN = -(1 << 63)
_MASK64 = (1 << 64) - 1
_OCTET = r"(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9][0-9]|[0-9])"
_IPV4_RE = rf"^{_OCTET}\.{_OCTET}\.{_OCTET}\.{_OCTET}$"
_IPV6_FULL_RE = r"^([0-9a-f]{1,4}:){7}[0-9a-f]{1,4}$"
_IPV6_V4_TAIL_RE = r"^(.*:)([0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3})$"


def _col(c: ColumnOrName) -> Column:
    return F.col(c) if isinstance(c, str) else c


def _long(value: int) -> Column:
    return F.lit(value).cast("long")


# ---------------------------------------------------------------- pure Python (driver, small inputs)


def signed64(value: int) -> int:
    """The two's-complement long holding an unsigned 64-bit value."""
    value &= _MASK64
    return value - (1 << 64) if value >= 1 << 63 else value


def split128(value: int) -> tuple[int, int]:
    """(hi, lo) longs of an unsigned 128-bit number, as stored in Spark."""
    return signed64(value >> 64), signed64(value)


def network_bounds(prefix: str) -> tuple[int, int, int, int, int, int, str, str]:
    """For a CIDR string: (ip_version, prefix_length, first_hi, first_lo, last_hi, last_lo, first, last).

    Used on the driver for the few thousand prefixes of ip-ranges.json, never per flow row.
    Raises ValueError for anything but a strict network (no host bits set).
    """
    net = ipaddress.ip_network(prefix, strict=True)
    first, last = int(net.network_address), int(net.broadcast_address)
    fh, fl = split128(first)
    lh, ll = split128(last)
    return (
        net.version,
        net.prefixlen,
        fh,
        fl,
        lh,
        ll,
        str(net.network_address),
        str(net.broadcast_address),
    )


# ---------------------------------------------------------------- parsing


def _ipv4_value(c: Column) -> Column:
    # Only meaningful (and only evaluated) where c matches _IPV4_RE.
    parts = F.split(c, r"\.")
    return (
        parts.getItem(0).cast("long") * 16777216
        + parts.getItem(1).cast("long") * 65536
        + parts.getItem(2).cast("long") * 256
        + parts.getItem(3).cast("long")
    )


def ipv4_to_long(c: ColumnOrName) -> Column:
    """Dotted-quad IPv4 text -> its 32-bit value as a long; null if not a valid IPv4 address."""
    c = _col(c)
    return F.when(c.rlike(_IPV4_RE), _ipv4_value(c))


def _let(value: Column, body: Callable[[Column], Column]) -> Column:
    """body(value) with value computed once: a native "let" through a one-element higher-order
    transform. Without it, Catalyst copies a sub-expression at every use and the parse trees below
    grow exponentially (the class table refers to the parsed address dozens of times)."""
    return F.transform(F.array(value), body).getItem(0)


def _ipv6_text_without_v4_tail(s: Column) -> Column:
    """Lower-case IPv6 text with an embedded IPv4 tail (::ffff:1.2.3.4) turned into two hex groups;
    null if it has a dot but no valid IPv4 tail."""

    def with_tail(v4: Column) -> Column:
        groups = F.concat(F.lower(F.hex(F.shiftright(v4, 16))), F.lit(":"), F.lower(F.hex(v4.bitwiseAND(0xFFFF))))
        return F.when(v4.isNotNull(), F.concat(F.regexp_extract(s, _IPV6_V4_TAIL_RE, 1), groups))

    return F.when(~s.contains("."), s).otherwise(
        _let(ipv4_to_long(F.regexp_extract(s, _IPV6_V4_TAIL_RE, 2)), with_tail)
    )


def _expand_double_colon(text: Column) -> Column:
    """Eight colon-separated groups: "::" (at most one) becomes the missing zero groups; null if
    there are two "::" or no group is missing."""

    def expand(halves: Column) -> Column:
        left, right = halves.getItem(0), halves.getItem(1)
        n_left = F.when(left == "", 0).otherwise(F.size(F.split(left, ":", -1)))
        n_right = F.when(right == "", 0).otherwise(F.size(F.split(right, ":", -1)))

        def fill(n_zeros: Column) -> Column:
            zeros = F.array_join(F.array_repeat(F.lit("0"), F.greatest(n_zeros, F.lit(0))), ":")
            expanded = F.concat_ws(":", F.when(left != "", left), zeros, F.when(right != "", right))
            return F.when(n_zeros >= 1, expanded)

        n = F.size(halves)
        return F.when(n == 1, left).when(n == 2, _let(F.lit(8) - n_left - n_right, fill))

    return _let(F.split(text, "::", -1), expand)


def _ipv6_hi_lo_of_groups(full: Column) -> Column:
    """struct<hi, lo> from eight groups of 1-4 hex digits; null if full is not exactly that."""

    def halves(groups: Column) -> Column:
        def half(first: int) -> Column:
            hex16 = F.concat(*[F.lpad(groups.getItem(i), 4, "0") for i in range(first, first + 4)])
            # conv to base -10 reads the 64 bits as a signed number: the long's bit pattern.
            return F.conv(hex16, 16, -10).cast("long")

        return F.struct(half(0).alias("hi"), half(4).alias("lo"))

    return F.when(full.rlike(_IPV6_FULL_RE), _let(F.split(full, ":"), halves))


def ipv6_to_hi_lo(c: ColumnOrName) -> Column:
    """IPv6 text -> struct<hi: long, lo: long> (the 128-bit value's halves); null if not IPv6."""
    text = _let(F.lower(_col(c)), _ipv6_text_without_v4_tail)
    return _let(_let(text, _expand_double_colon), _ipv6_hi_lo_of_groups)


def parse_ip(c: ColumnOrName) -> Column:
    """IPv4 or IPv6 text -> struct<ip_version: int, hi: long, lo: long>; null if neither.

    IPv4 has hi = 0. Compute it once into a column (``df.withColumn("a", parse_ip("ip"))``) and use
    its fields, or class_of() on it, rather than parsing the same text again.
    """
    c = _col(c)

    def v6(hl: Column) -> Column:
        return F.when(
            hl.isNotNull(),
            F.struct(F.lit(IPV6).alias("ip_version"), hl.getField("hi").alias("hi"), hl.getField("lo").alias("lo")),
        )

    v4 = F.struct(F.lit(IPV4).alias("ip_version"), _long(0).alias("hi"), _ipv4_value(c).alias("lo"))
    return F.when(c.contains(":"), _let(ipv6_to_hi_lo(c), v6)).when(c.rlike(_IPV4_RE), v4)


def ip_version(c: ColumnOrName) -> Column:
    """4, 6, or null for text that is not an IP address."""
    return parse_ip(c).getField("ip_version")


def long_to_ipv4(c: ColumnOrName) -> Column:
    """A 32-bit value (long) -> dotted-quad text."""
    c = _col(c)
    return F.concat_ws(".", *[F.shiftright(c, s).bitwiseAND(255).cast("string") for s in (24, 16, 8, 0)])


# ---------------------------------------------------------------- ordering and prefixes


def _flip(c: Column) -> Column:
    # x ^ 0x8000_0000_0000_0000: signed order of the result = unsigned order of x.
    return c.bitwiseXOR(_long(_LONG_MIN))


def u128_le(a_hi: Column, a_lo: Column, b_hi: Column, b_lo: Column) -> Column:
    """a <= b for unsigned 128-bit numbers held as (hi, lo) longs."""
    return (_flip(a_hi) < _flip(b_hi)) | ((a_hi == b_hi) & (_flip(a_lo) <= _flip(b_lo)))


def u128_between(
    hi: Column, lo: Column, first_hi: Column, first_lo: Column, last_hi: Column, last_lo: Column
) -> Column:
    """first <= (hi, lo) <= last, unsigned: the range filter of the prefix join."""
    return u128_le(first_hi, first_lo, hi, lo) & u128_le(hi, lo, last_hi, last_lo)


def bucket(version: Column, hi: Column, lo: Column, v4_bits: int = 16, v6_bits: int = 32) -> Column:
    """The equi-join key of the prefix join: the top v4_bits of an IPv4 address, the top v6_bits of
    an IPv6 address (as a non-negative long). Pair it with ip_version in the join."""
    if not (1 <= v4_bits <= 32 and 1 <= v6_bits <= 63):
        raise ValueError(f"bucket widths out of range: v4_bits={v4_bits}, v6_bits={v6_bits}")
    return F.when(version == IPV4, F.shiftright(lo, 32 - v4_bits)).otherwise(F.shiftrightunsigned(hi, 64 - v6_bits))


def _in_network(version: Column, hi: Column, lo: Column, cidr: str) -> Column:
    """Membership in a constant network, as a prefix comparison on the numbers."""
    net = ipaddress.ip_network(cidr)
    n = net.prefixlen
    if net.version == 4:
        first = int(net.network_address)
        return (version == IPV4) & lo.between(first, first + net.num_addresses - 1)
    fh, fl = split128(int(net.network_address))
    if n == 0:
        cond = F.lit(True)
    elif n <= 64:
        cond = F.shiftrightunsigned(hi, 64 - n) == _long(signed64((fh & _MASK64) >> (64 - n)))
    else:
        top = signed64((fl & _MASK64) >> (128 - n))
        cond = (hi == _long(fh)) & (F.shiftrightunsigned(lo, 128 - n) == _long(top))
    return (version == IPV6) & cond


def _ipv4_class(n: Column) -> Column:
    """Class of a 32-bit value; n is referenced once per table row, so keep it a small expression."""
    out = F.when(F.lit(False), F.lit(None).cast("string"))
    for cidr, name in IPV4_CLASSES:
        out = out.when(_in_network(F.lit(IPV4), _long(0), n, cidr), F.lit(name))
    return out.otherwise(F.lit(PUBLIC))


def class_of(parsed: ColumnOrName) -> Column:
    """address_class from a parse_ip struct column (cheaper than address_class if you have it)."""

    def table(p: Column) -> Column:
        version, hi, lo = p.getField("ip_version"), p.getField("hi"), p.getField("lo")
        v6 = F.when(F.lit(False), F.lit(None).cast("string"))
        for cidr, name in IPV6_CLASSES:
            value = _ipv4_class(lo.bitwiseAND(0xFFFFFFFF)) if name == "ipv4" else F.lit(name)
            v6 = v6.when(_in_network(F.lit(IPV6), hi, lo, cidr), value)
        return (
            F.when(p.isNull(), F.lit(INVALID))
            .when(version == IPV4, _ipv4_class(lo))
            .otherwise(v6.otherwise(F.lit(RESERVED)))
        )

    # A column name is cheap to refer to many times; an expression is bound once (see _let).
    return table(F.col(parsed)) if isinstance(parsed, str) else _let(parsed, table)


def address_class(c: ColumnOrName) -> Column:
    """The special-purpose class of an address text: one of ADDRESS_CLASSES (INVALID if unparseable)."""
    return class_of(parse_ip(c))


def is_public(c: ColumnOrName) -> Column:
    """True for globally routable unicast addresses (address_class == 'public')."""
    return address_class(c) == PUBLIC
