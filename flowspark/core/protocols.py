"""IANA "Assigned Internet Protocol Numbers" (0-255): keyword <-> number, once for all of flowspark.

Source: https://www.iana.org/assignments/protocol-numbers (protocol-numbers-1.csv), including the
2020-2024 additions 143 Ethernet, 144 AGGFRAG, 145 NSH and 146 Homa. Numbers IANA gives no keyword
(61, 63, 68, 99, 114 "any ..." entries, 147-252 unassigned, 253-254 experimentation, 255 reserved)
have no name: they are shown as the number itself.

Names are matched case-insensitively (``TCP``, ``tcp``, ``Tcp``); keywords with spaces also match
with ``-`` or ``_`` (``isis-over-ipv4``). Deprecated keywords (``ARGUS (deprecated)``) match
without the suffix. A few common aliases from /etc/protocols and everyday use are accepted too
(``icmpv6``, ``ospf``, ``isis``, ...). Pure Python: no Spark import, usable from the CLI's fast path.
"""

from __future__ import annotations

import re

# (number, IANA keyword or None). The keyword is as IANA spells it; display names are lowercase.
_IANA: tuple[tuple[int, str | None], ...] = (
    (0, "HOPOPT"),
    (1, "ICMP"),
    (2, "IGMP"),
    (3, "GGP"),
    (4, "IPv4"),
    (5, "ST"),
    (6, "TCP"),
    (7, "CBT"),
    (8, "EGP"),
    (9, "IGP"),
    (10, "BBN-RCC-MON"),
    (11, "NVP-II"),
    (12, "PUP"),
    (13, "ARGUS (deprecated)"),
    (14, "EMCON"),
    (15, "XNET"),
    (16, "CHAOS"),
    (17, "UDP"),
    (18, "MUX"),
    (19, "DCN-MEAS"),
    (20, "HMP"),
    (21, "PRM"),
    (22, "XNS-IDP"),
    (23, "TRUNK-1"),
    (24, "TRUNK-2"),
    (25, "LEAF-1"),
    (26, "LEAF-2"),
    (27, "RDP"),
    (28, "IRTP"),
    (29, "ISO-TP4"),
    (30, "NETBLT"),
    (31, "MFE-NSP"),
    (32, "MERIT-INP"),
    (33, "DCCP"),
    (34, "3PC"),
    (35, "IDPR"),
    (36, "XTP"),
    (37, "DDP"),
    (38, "IDPR-CMTP"),
    (39, "TP++"),
    (40, "IL"),
    (41, "IPv6"),
    (42, "SDRP"),
    (43, "IPv6-Route"),
    (44, "IPv6-Frag"),
    (45, "IDRP"),
    (46, "RSVP"),
    (47, "GRE"),
    (48, "DSR"),
    (49, "BNA"),
    (50, "ESP"),
    (51, "AH"),
    (52, "I-NLSP"),
    (53, "SWIPE (deprecated)"),
    (54, "NARP"),
    (55, "Min-IPv4"),
    (56, "TLSP"),
    (57, "SKIP"),
    (58, "IPv6-ICMP"),
    (59, "IPv6-NoNxt"),
    (60, "IPv6-Opts"),
    (61, None),  # any host internal protocol
    (62, "CFTP"),
    (63, None),  # any local network
    (64, "SAT-EXPAK"),
    (65, "KRYPTOLAN"),
    (66, "RVD"),
    (67, "IPPC"),
    (68, None),  # any distributed file system
    (69, "SAT-MON"),
    (70, "VISA"),
    (71, "IPCV"),
    (72, "CPNX"),
    (73, "CPHB"),
    (74, "WSN"),
    (75, "PVP"),
    (76, "BR-SAT-MON"),
    (77, "SUN-ND"),
    (78, "WB-MON"),
    (79, "WB-EXPAK"),
    (80, "ISO-IP"),
    (81, "VMTP"),
    (82, "SECURE-VMTP"),
    (83, "VINES"),
    (84, "TTP"),  # IANA lists 84 twice: TTP and IPTM (alias below)
    (85, "NSFNET-IGP"),
    (86, "DGP"),
    (87, "TCF"),
    (88, "EIGRP"),
    (89, "OSPFIGP"),
    (90, "Sprite-RPC"),
    (91, "LARP"),
    (92, "MTP"),
    (93, "AX.25"),
    (94, "IPIP"),
    (95, "MICP (deprecated)"),
    (96, "SCC-SP"),
    (97, "ETHERIP"),
    (98, "ENCAP"),
    (99, None),  # any private encryption scheme
    (100, "GMTP"),
    (101, "IFMP"),
    (102, "PNNI"),
    (103, "PIM"),
    (104, "ARIS"),
    (105, "SCPS"),
    (106, "QNX"),
    (107, "A/N"),
    (108, "IPComp"),
    (109, "SNP"),
    (110, "Compaq-Peer"),
    (111, "IPX-in-IP"),
    (112, "VRRP"),
    (113, "PGM"),
    (114, None),  # any 0-hop protocol
    (115, "L2TP"),
    (116, "DDX"),
    (117, "IATP"),
    (118, "STP"),
    (119, "SRP"),
    (120, "UTI"),
    (121, "SMP"),
    (122, "SM (deprecated)"),
    (123, "PTP"),
    (124, "ISIS over IPv4"),
    (125, "FIRE"),
    (126, "CRTP"),
    (127, "CRUDP"),
    (128, "SSCOPMCE"),
    (129, "IPLT"),
    (130, "SPS"),
    (131, "PIPE"),
    (132, "SCTP"),
    (133, "FC"),
    (134, "RSVP-E2E-IGNORE"),
    (135, "Mobility Header"),
    (136, "UDPLite"),
    (137, "MPLS-in-IP"),
    (138, "manet"),
    (139, "HIP"),
    (140, "Shim6"),
    (141, "WESP"),
    (142, "ROHC"),
    (143, "Ethernet"),
    (144, "AGGFRAG"),
    (145, "NSH"),
    (146, "Homa"),
    *((n, None) for n in range(147, 253)),  # unassigned
    (253, None),  # use for experimentation and testing (RFC 3692)
    (254, None),  # use for experimentation and testing (RFC 3692)
    (255, None),  # "Reserved": not a protocol name
)

# Extra names people write in lookups; each maps to the IANA number.
ALIASES: dict[str, int] = {
    "iptm": 84,  # IANA's second keyword for 84
    "icmpv6": 58,
    "icmp6": 58,
    "ipencap": 4,  # /etc/protocols
    "ip-in-ip": 4,
    "ospf": 89,
    "isis": 124,
    "mobility-header": 135,
    "udp-lite": 136,
    "swipe": 53,
    "mobile": 55,  # 55's keyword before IANA renamed it Min-IPv4
}

_DEPRECATED = re.compile(r"\s*\(deprecated\)$", re.IGNORECASE)


def _norm(text: str) -> str:
    """Lowercase, no '(deprecated)' suffix, runs of spaces/underscores as '-'."""
    return re.sub(r"[\s_]+", "-", _DEPRECATED.sub("", text.strip()).lower())


def _display(keyword: str | None, number: int) -> str:
    return _DEPRECATED.sub("", keyword).lower() if keyword else str(number)


assert [n for n, _ in _IANA] == list(range(256)), "the IANA table must list 0..255 once, in order"

#: Display name of every protocol number 0-255: the lowercase keyword, or the number as text.
NAMES: tuple[str, ...] = tuple(_display(k, n) for n, k in _IANA)

#: IANA keywords as IANA spells them (None where there is none), indexed by number.
KEYWORDS: tuple[str | None, ...] = tuple(k for _, k in _IANA)

_BY_NAME: dict[str, int] = {
    **{_norm(k): n for n, k in _IANA if k},
    **{_norm(a): n for a, n in ALIASES.items()},
}


def name(number: int) -> str:
    """Display name (lowercase IANA keyword) of a protocol number, or the number as text."""
    if 0 <= number <= 255:
        return NAMES[number]
    return str(number)


def number(text: str) -> int | None:
    """The protocol number for a keyword (any case) or a decimal number 0-255; None if neither."""
    t = text.strip()
    if t.isascii() and t.isdigit():
        n = int(t)
        return n if n <= 255 else None
    return _BY_NAME.get(_norm(t)) if t else None


def known_names() -> list[str]:
    """Every name number() accepts (normalised), for error messages and docs."""
    return sorted(_BY_NAME)
