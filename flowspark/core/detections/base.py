"""What every detection shares: its thresholds (with the reason for each default), the columns of its
daily activity rows, severities, ATT&CK technique ids and the allowlist."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from flowspark.core import addresses as A

# Severity labels as Security Hub's ASFF names them (Severity.Label); rank orders them.
INFORMATIONAL, LOW, MEDIUM, HIGH, CRITICAL = "INFORMATIONAL", "LOW", "MEDIUM", "HIGH", "CRITICAL"
SEVERITY_RANK = {INFORMATIONAL: 0, LOW: 1, MEDIUM: 2, HIGH: 3, CRITICAL: 4}

# detection -> (MITRE ATT&CK technique id, its name, what the detection is). The mapping is flowspark's
# own reading of ATT&CK (https://attack.mitre.org/techniques/<id>/), the nearest technique for what a flow
# log can show; GuardDuty's own finding types are named where one matches.
TECHNIQUES: dict[str, tuple[str, str, str]] = {
    "port_probe": (
        "T1595",
        "Active Scanning",
        "one of our ports probed by many Internet peers (GuardDuty: Recon:EC2/PortProbeUnprotectedPort)",
    ),
    "vertical_scan": (
        "T1046",
        "Network Service Discovery",
        "one peer probing many ports of one of our hosts (GuardDuty: Recon:EC2/Portscan)",
    ),
    "horizontal_sweep": ("T1046", "Network Service Discovery", "one peer probing one port on many of our hosts"),
    "brute_force": (
        "T1110",
        "Brute Force",
        "many short connections from one peer to SSH, RDP or WinRM "
        "(GuardDuty: UnauthorizedAccess:EC2/SSHBruteForce, RDPBruteForce)",
    ),
    "outbound_dos": (
        "T1498",
        "Network Denial of Service",
        "one of our hosts sending a flood of small packets to one target (GuardDuty: Backdoor:EC2/DenialOfService.*)",
    ),
    "spam_bot": (
        "T1496",
        "Resource Hijacking",
        "one of our hosts sending SMTP to many peers (GuardDuty: Backdoor:EC2/Spambot)",
    ),
    "unusual_port": (
        "T1571",
        "Non-Standard Port",
        "a host talking to the Internet on a server port it never "
        "used before (GuardDuty: Behavior:EC2/NetworkPortUnusual)",
    ),
    "traffic_volume": (
        "T1048",
        "Exfiltration Over Alternative Protocol",
        "an hour's upload far above the host's baseline (GuardDuty: Behavior:EC2/TrafficVolumeUnusual)",
    ),
    "beaconing": (
        "T1071",
        "Application Layer Protocol",
        "small calls at a regular interval from few hosts to one peer (command and control)",
    ),
    "malicious_ip": (
        "T1071",
        "Application Layer Protocol",
        "traffic with an address on a threat list "
        "(GuardDuty: UnauthorizedAccess:EC2/MaliciousIPCaller.Custom, C&CActivity)",
    ),
    "tor": (
        "T1090.003",
        "Proxy: Multi-hop Proxy",
        "traffic with a Tor node (GuardDuty: UnauthorizedAccess:EC2/TorClient, TorRelay)",
    ),
    "mining_pool": (
        "T1496",
        "Resource Hijacking",
        "traffic with a cryptocurrency mining pool (GuardDuty: CryptoCurrency:EC2/BitcoinTool)",
    ),
    "blackhole": (
        "T1071",
        "Application Layer Protocol",
        "traffic to a blackholed or sinkholed address (GuardDuty: Trojan:EC2/BlackholeTraffic)",
    ),
}
DETECTIONS = tuple(TECHNIQUES)
SCANS = ("port_probe", "vertical_scan", "horizontal_sweep")  # the Internet's background: summarised in the report
# The order findings of one severity are listed in: what our hosts did before what was done to them, the
# rarer before the constant background of Internet scanning
PRIORITY = (
    "beaconing", "traffic_volume", "outbound_dos", "malicious_ip", "tor", "mining_pool", "blackhole", "spam_bot",
    "brute_force", "unusual_port", "vertical_scan", "horizontal_sweep", "port_probe",
)

# One row per detection, subject and day. The subject is (detection, local, peer, protocol, port); a part
# that is not one value for the detection is null (a sweep touches many locals, a spam bot many peers).
ACTIVITY_SCHEMA = (
    "day date, detection string, technique string, severity string, direction string, local string, "
    "peer string, protocol int, port int, interface_id string, first_seen timestamp, last_seen timestamp, "
    "flows long, packets long, bytes long, evidence string, suppressed string"
)
ACTIVITY_COLUMNS = tuple(c.strip().split(" ")[0] for c in ACTIVITY_SCHEMA.split(","))
SUBJECT = ("detection", "local", "peer", "protocol", "port")


@dataclass(frozen=True)
class Thresholds:
    """When each detection fires. The defaults and the reason for each:

    probe_min_peers = 20        port_probe: 20 distinct Internet peers probing one port of one host in a
                                day. Scanners of the whole Internet (Shodan, Censys, botnets) do this to any
                                open address; a port no one probes is one no one knows is there
    scan_max_packets = 3.0      a probe is 1-3 packets a record (SYN, SYN+RST, one datagram); a real client
                                sends more (port_probe, vertical_scan and horizontal_sweep alike)
    exposed_ports = (22, 23, 445, 1433, 3306, 3389, 5432, 5900, 5985, 5986, 6379, 9200, 11211, 27017)
                                ports that should not answer the Internet (remote shells, SMB, databases,
                                caches, search): a probe ACCEPTed on one of them is HIGH (the port is open)
    vscan_min_ports = 15        vertical_scan: 15 distinct ports of one host from one peer in a day; a
                                client uses one or two (HTTP and HTTPS, a database and its replica port)
    sweep_min_targets = 10      horizontal_sweep: 10 of our addresses on one port from one peer; more than
                                any ordinary client of one service (the hunt's scan_min_targets)
    sweep_max_size_cv = 0.5     "similar sizes": the bytes of the peer's records vary by less than half
                                their mean; a real client's vary far more
    brute_ports = (22, 3389, 5985, 5986)  SSH, RDP, WinRM (HTTP and HTTPS)
    brute_min_attempts = 20     brute_force: 20 accepted connections from one peer to one host's port in a
                                day; a person logs in a few times
    brute_max_bytes = 20000     ...mostly small (the median connection's bytes, both directions): a failed
                                login is a few kB, a working session far more; the median, so one login
                                that worked among the attempts does not hide them
    brute_success_bytes = 1000000  a connection of the same peer that moved 1 MB: the login may have worked
                                (HIGH instead of MEDIUM)
    dos_min_pps = 10000         outbound_dos: 10,000 packets a second from one host to one target over a
                                minute or more; ordinary clients of one Internet peer send far fewer
    dos_max_packet_bytes = 300  ...of small packets: floods are SYNs and short datagrams; a bulk upload at
                                that rate runs ~1,400 bytes a packet
    dos_min_seconds = 60        the rate is measured over at least a minute (a flow log record's span)
    spam_ports = (25,)          SMTP between mail servers (submission ports 465/587 go to one relay)
    spam_min_peers = 25         spam_bot: one host to 25 distinct Internet mail servers in a day; hosts
                                send mail through a relay or SES (one or a few peers). Allowlist your MTAs
    unusual_min_bytes = 100000  unusual_port: a new server port carrying at least 100 kB accepted in a day
                                (a single failed attempt is noise)
    unusual_min_history_days = 3  ...on a host the lake has seen for 3 days before: a new host has no
                                history to be unusual against
    baseline_days = 7           how many days before the first day the rules read for history (unusual
                                ports, traffic baselines)
    volume_min_bytes = 100000000  traffic_volume: an hour's upload of 100 MB to one peer worth a look at all
    volume_factor = 10.0        ...and ten times the host's usual hour (the median of its active hours of
                                upload to the Internet; with fewer than volume_min_baseline_hours, the
                                median hour of all hosts)
    volume_min_baseline_hours = 3
    beacon_min_flows = 10       beaconing: regularity needs intervals; 10 calls give 9
    beacon_max_mean_bytes = 20000  beacons are small: a TLS handshake and a short request/response
    beacon_max_dispersion = 0.2 median absolute deviation of the intervals / their median: C2 jitter of
                                +-j gives about 0.59*j (0.12 at 20 %), Poisson arrivals about 0.69
    beacon_max_hosts = 3        ...from at most 3 of our hosts to that peer in the day: an agent that
                                every host runs (monitoring, updates) is regular too, but fleet-wide
    beacon_exclude_ports = (53, 123)  DNS and NTP to public servers are regular by design (a record's TTL,
                                a clock's poll interval): make demo's data had three hosts querying a
                                public resolver about hourly with dispersion 0.13-0.17. DNS tunnelling is
                                another detection's business
    tor_lists, mining_lists, blackhole_lists  intel list names (flowspark intel load --name) whose entries
                                are Tor nodes, mining pools, blackholed/sinkholed addresses; every other
                                list is a threat list (malicious_ip)
    finding_gap_hours = 24      a finding spans days until a quiet gap this long ends it
    """

    probe_min_peers: int = 20
    exposed_ports: tuple[int, ...] = (22, 23, 445, 1433, 3306, 3389, 5432, 5900, 5985, 5986, 6379, 9200, 11211, 27017)
    vscan_min_ports: int = 15
    sweep_min_targets: int = 10
    sweep_max_size_cv: float = 0.5
    brute_ports: tuple[int, ...] = (22, 3389, 5985, 5986)
    brute_min_attempts: int = 20
    brute_max_bytes: int = 20_000
    brute_success_bytes: int = 1_000_000
    dos_min_pps: int = 10_000
    dos_max_packet_bytes: int = 300
    dos_min_seconds: int = 60
    spam_ports: tuple[int, ...] = (25,)
    spam_min_peers: int = 25
    unusual_min_bytes: int = 100_000
    unusual_min_history_days: int = 3
    baseline_days: int = 7
    volume_min_bytes: int = 100_000_000
    volume_factor: float = 10.0
    volume_min_baseline_hours: int = 3
    beacon_min_flows: int = 10
    beacon_max_mean_bytes: int = 20_000
    beacon_max_dispersion: float = 0.2
    beacon_max_hosts: int = 3
    beacon_exclude_ports: tuple[int, ...] = (53, 123)
    tor_lists: tuple[str, ...] = ("tor", "tor_exits")
    mining_lists: tuple[str, ...] = ("mining_pools",)
    blackhole_lists: tuple[str, ...] = ("blackhole", "sinkhole")
    finding_gap_hours: int = 24
    scan_max_packets: float = 3.0


# ---------------------------------------------------------------- activity rows


def activity(
    df: DataFrame,
    detection: str | Column,
    severity: Column,
    evidence: Column,
    *,
    direction: str | Column,
    local: Column | None,
    peer: Column | None,
    protocol: Column | None,
    port: Column | None,
) -> DataFrame:
    """df's rows (one per subject and day, with first_seen, last_seen, flows, packets, bytes and
    interface_id already aggregated) as ACTIVITY rows of `detection` (a name, or a column of names)."""
    if isinstance(detection, str):
        name, technique = F.lit(detection), F.lit(TECHNIQUES[detection][0])
    else:
        name, technique = detection, lookup({k: v[0] for k, v in TECHNIQUES.items()}, detection)

    def typed(c: Column | None, kind: str) -> Column:
        return (c if c is not None else F.lit(None)).cast(kind)

    return df.select(
        F.col("day").cast("date").alias("day"),
        name.alias("detection"),
        technique.alias("technique"),
        severity.alias("severity"),
        (F.lit(direction) if isinstance(direction, str) else direction).alias("direction"),
        typed(local, "string").alias("local"),
        typed(peer, "string").alias("peer"),
        typed(protocol, "int").alias("protocol"),
        typed(port, "int").alias("port"),
        F.col("interface_id").cast("string").alias("interface_id"),
        F.col("first_seen").cast("timestamp").alias("first_seen"),
        F.col("last_seen").cast("timestamp").alias("last_seen"),
        F.col("flows").cast("long").alias("flows"),
        F.col("packets").cast("long").alias("packets"),
        F.col("bytes").cast("long").alias("bytes"),
        evidence.alias("evidence"),
        F.lit(None).cast("string").alias("suppressed"),
    )


def lookup(mapping: dict[str, str], key: Column) -> Column:
    """mapping[key] as a column (null for a key it lacks)."""
    return F.create_map(*[F.lit(x) for kv in mapping.items() for x in kv])[key]


def counts() -> list[Column]:
    """The aggregates every activity row carries: first/last seen, flows, records, packets, bytes, one
    interface (the lowest id: a local address has one interface at a time)."""
    return [
        F.min("start").alias("first_seen"),
        F.max("end").alias("last_seen"),
        F.count(F.lit(1)).alias("flows"),
        F.sum("records").cast("long").alias("records"),
        F.sum("packets").cast("long").alias("packets"),
        F.sum("bytes").cast("long").alias("bytes"),
        F.min("interface_id").alias("interface_id"),
    ]


def num(c: Column) -> Column:
    """A count with thousands separators, as the evidence sentences write them."""
    return F.format_number(c.cast("double"), 0)


# ---------------------------------------------------------------- the allowlist


@dataclass(frozen=True)
class AllowEntry:
    """One allowlist line: `CIDR DETECTIONS: REASON`, DETECTIONS a comma list or * (every detection), e.g.
    ``198.51.100.7/32 vertical_scan,horizontal_sweep: our vulnerability scanner``."""

    cidr: str
    detections: tuple[str, ...]  # () = every detection
    reason: str


def parse_allow(line: str) -> AllowEntry:
    """An allowlist line -> AllowEntry; ValueError with the cause when it is not one."""
    head, sep, reason = line.partition(":")
    parts = head.split()
    if not sep or len(parts) != 2 or not reason.strip():
        raise ValueError(f"allowlist entry {line!r} is not 'CIDR DETECTIONS: REASON' (DETECTIONS: a,b or *)")
    try:
        cidr = str(ipaddress.ip_network(parts[0], strict=False))
    except ValueError:
        raise ValueError(f"allowlist entry {line!r}: {parts[0]!r} is not an address or CIDR") from None
    names = () if parts[1] == "*" else tuple(n.strip() for n in parts[1].split(",") if n.strip())
    unknown = [n for n in names if n not in TECHNIQUES]
    if unknown:
        raise ValueError(
            f"allowlist entry {line!r}: unknown detection(s) {', '.join(unknown)}; known: {', '.join(DETECTIONS)}"
        )
    return AllowEntry(cidr, names, reason.strip())


def in_cidr(parsed: Column, cidr: str) -> Column:
    """A parsed address (addresses.parse_ip) inside cidr; False for null."""
    version, _, fh, fl, lh, ll, _, _ = A.network_bounds(cidr)
    lit = F.lit
    return F.coalesce(
        (parsed.getField("ip_version") == version)
        & A.u128_between(parsed.getField("hi"), parsed.getField("lo"), lit(fh), lit(fl), lit(lh), lit(ll)),
        F.lit(False),
    )


def suppress(rows: DataFrame, allow: tuple[AllowEntry, ...]) -> DataFrame:
    """ACTIVITY rows with `suppressed` set to the reason of the first allowlist entry that names the row's
    detection and contains its local or its peer address (rows are kept: the report hides them)."""
    if not allow:
        return rows
    # each side parsed once into a column: parse_ip is a large expression, repeated per entry it is not
    parsed = rows.withColumn("_al", A.parse_ip("local")).withColumn("_ap", A.parse_ip("peer"))
    reason: Column = F.lit(None).cast("string")
    for entry in reversed(allow):  # the first entry wins: built last in the chain
        hit = in_cidr(F.col("_al"), entry.cidr) | in_cidr(F.col("_ap"), entry.cidr)
        if entry.detections:
            hit = hit & F.col("detection").isin(*entry.detections)
        reason = F.when(hit, F.lit(f"allowlist {entry.cidr}: {entry.reason}")).otherwise(reason)
    return parsed.withColumn("suppressed", reason).drop("_al", "_ap")


def proto_name(c: str = "protocol") -> Column:
    """tcp / udp / icmp / icmpv6 / the number, for evidence sentences."""
    p = F.col(c)
    out: Column = p.cast("string")
    for number, name in {6: "tcp", 17: "udp", 1: "icmp", 58: "icmpv6"}.items():
        out = F.when(p == number, F.lit(name)).otherwise(out)
    return out
