"""Days of flow logs with the detections' patterns planted among benign look-alikes, and the truth of both.

The measured-quality oracle of the detections (scripts/bench_detections.py, tests/test_scenario.py). One VPC
(10.20.0.0/16 and 2600:1f18:aa::/48), one flow log in the v2 default format, AWS's S3 layout (a .log.gz per
5 minutes with records), several days so that the rules reading history (unusual_port, traffic_volume) have
it. Every pattern and look-alike is written to the truth before a rule runs: which addresses and flows
belong to it, which detection it plants (or, for a look-alike, which naive rule it would fool), and which
other detections the same traffic is by definition (``also``: a flood of a new port IS an unusual port).

Background, every day: Internet clients of the load balancers; app hosts calling ~150 API peers at Poisson
times; Internet scanners knocking 1-3 times each on random ports of the public-facing hosts (below every
scan threshold by construction: one peer touches at most 3 ports and 3 hosts).

Look-alikes (benign traffic that fools a naive rule, GuardDuty's usual false positives):
  monitoring_agent   8 app hosts call one SaaS peer every 300 s exactly: regular and small (beaconing)
  ntp_polls          4 hosts poll public NTP servers every 1024 s with 4-packet bursts (beaconing)
  dns_resolver       3 hosts ask a public resolver hourly (beaconing), one batch job resolves names at
                     3,000-8,000 datagrams/s for a minute a day (outbound DoS)
  health_checks      Route 53 health checkers (AWS's prefixes) open a 3-packet TCP check to the load
                     balancers every 5 minutes from 16 addresses (port probe); an uptime service outside AWS
                     does the same from 24 addresses with 5-packet checks
  s3_backup          the database uploads ~100 GB to S3 (us-east-1, through a gateway endpoint) at 02:00 every
                     day at ~20,000 packets/s of 1,400 bytes (traffic volume, outbound DoS)
  ci_fanout          3 CI runners download from ~80 package mirrors on 443, 80 and 9418 during builds
                     (sweeps, volume); a 4th runner appears on the second-to-last day (unusual port without
                     history)
  admin_ssh          an office address opens 2-4 long SSH sessions a day to the bastion (brute force)
  near_listed        a host talks to the address just outside a listed CIDR (the lists' range join)

Planted patterns (on the last three days, hosts, peers and sizes drawn from the seed): port_probe (two: one
exposed port, one with a probe accepted), vertical_scan (over IPv6), horizontal_sweep, brute_force,
outbound_dos, spam_bot, unusual_port, traffic_volume, beaconing, malicious_ip, tor, mining_pool, blackhole.
The intel lists (lists/*.netset) name the planted peers among decoys no host contacts.

Importable: ``generate(out_dir, seed=1, days=9) -> dict`` (the truth, also in ``out_dir/truth.json``);
``score(findings, truth) -> dict`` counts planted, found, false positives per detection.
"""

from __future__ import annotations

import datetime as dt
import gzip
import hashlib
import ipaddress
import json
import os
import random
from collections import defaultdict
from collections.abc import Iterable
from typing import Any

ACCOUNT, REGION, FLOW_LOG = "111122223333", "us-east-1", "fl-0a1b2c3d4e5f60718"
HEADER = (
    "version account-id interface-id srcaddr dstaddr srcport dstport protocol packets bytes start end action log-status"
)
LOCAL_PREFIXES = ["2600:1f18:aa::/48"]  # the VPC's IPv6 block: [detections] local_prefixes
FIRST_DAY = dt.date(2026, 11, 1)
SLOT = 300  # AWS delivers a file per 5 minutes
PLANT_DAYS = 3  # patterns on the last three days

# detections a list contact is (the list names of conf/local.toml's [detections])
LISTS = {"malicious_ip": "threat_list", "tor": "tor", "mining_pool": "mining_pools", "blackhole": "blackhole"}
DETECTIONS = (
    "port_probe",
    "vertical_scan",
    "horizontal_sweep",
    "brute_force",
    "outbound_dos",
    "spam_bot",
    "unusual_port",
    "traffic_volume",
    "beaconing",
    "malicious_ip",
    "tor",
    "mining_pool",
    "blackhole",
)
_NOISE_PORTS = [
    21,
    22,
    23,
    25,
    53,
    80,
    81,
    110,
    135,
    139,
    143,
    443,
    445,
    1433,
    1521,
    2375,
    3306,
    3389,
    5060,
    5432,
    5900,
    6379,
    8000,
    8080,
    8081,
    8443,
    8888,
    9200,
    10000,
    11211,
    27017,
    37215,
    49152,
    52869,
]


class _Host:
    def __init__(self, name: str, v4: str, v6: str | None, eni: str):
        self.name, self.v4, self.v6, self.eni = name, v4, v6, eni


class Scenario:
    """The VPC, its records and the truth, built in the order of the module docstring."""

    def __init__(self, seed: int, days: int):
        if days < 5:
            raise ValueError("days: at least 5 (three of history before the planted days)")
        self.seed, self.days = seed, days
        self.rng = random.Random(seed)
        self.t0 = int(dt.datetime(FIRST_DAY.year, FIRST_DAY.month, FIRST_DAY.day, tzinfo=dt.timezone.utc).timestamp())
        self.records: list[tuple] = []
        self.patterns: list[dict] = []
        self.look_alikes: list[dict] = []
        self.lists: dict[str, list[str]] = {name: [] for name in LISTS.values()}
        self.used_public: set[str] = set()
        self.hosts: dict[str, _Host] = {}
        self.eni_of: dict[str, str] = {}

        def host(name: str, v4: str, v6: bool) -> _Host:
            eni = "eni-" + hashlib.sha256(f"{seed}/{name}".encode()).hexdigest()[:17]
            h = _Host(name, v4, f"2600:1f18:aa:1::{len(self.hosts) + 1:x}" if v6 else None, eni)
            self.hosts[name] = h
            self.eni_of[v4] = eni
            if h.v6:
                self.eni_of[h.v6] = eni
            return h

        self.lbs = [
            host(
                f"lb{i}",
                f"10.20.1.{10 + i}",
                True,
            )
            for i in range(2)
        ]
        self.bastion = host("bastion", "10.20.0.5", False)
        self.apps = [host(f"app{i}", f"10.20.2.{11 + i}", True) for i in range(20)]
        self.db = host("db", "10.20.3.5", False)
        self.ci = [host(f"ci{i}", f"10.20.4.{11 + i}", False) for i in range(4)]
        self.public_facing = [*self.lbs, self.bastion, *self.apps]

    # ------------------------------------------------------------------ primitives
    def day_start(self, day: int) -> int:
        return self.t0 + day * 86400

    def public(self, first: int | None = None) -> str:
        """A fresh Internet address outside AWS's prefixes in the bundled ip-ranges (first octets chosen
        among ranges no cloud provider of that file holds), never used before in this scenario."""
        while True:
            a = first or self.rng.choice([45, 77, 81, 85, 89, 91, 93, 94, 95, 109, 146, 193, 194, 195, 212, 213, 217])
            ip = f"{a}.{self.rng.randrange(1, 255)}.{self.rng.randrange(0, 256)}.{self.rng.randrange(1, 255)}"
            if ip not in self.used_public:
                self.used_public.add(ip)
                return ip

    def record(
        self,
        local: str,
        src: str,
        dst: str,
        sport: int,
        dport: int,
        proto: int,
        packets: int,
        nbytes: int,
        start: int,
        secs: int = 1,
        action: str = "ACCEPT",
    ) -> None:
        """Records on local's ENI for one direction of one connection, one per minute of its span (as a
        flow log's 1-minute aggregation interval writes them), packets and bytes split exactly."""
        eni = self.eni_of[local]
        minutes = max(1, (secs + 59) // 60)
        for m in range(minutes):
            pk = packets // minutes + (1 if m < packets % minutes else 0)
            by = nbytes // minutes + (1 if m < nbytes % minutes else 0)
            if pk == 0:
                continue
            s = start + 60 * m
            e = min(start + secs, s + 59) if secs > 1 else s + 1
            self.records.append((eni, src, dst, sport, dport, proto, pk, by, s, max(e, s), action))

    def conn(
        self,
        local: str,
        peer: str,
        port: int,
        start: int,
        out_pk: int,
        out_b: int,
        in_pk: int = 0,
        in_b: int = 0,
        proto: int = 6,
        secs: int = 1,
        inbound: bool = False,
        action: str = "ACCEPT",
        eph: int | None = None,
    ) -> None:
        """One connection between our address and a peer, both directions on our ENI. inbound: the peer
        opened it to our port; else we opened it to the peer's port. out_* is what our side sent."""
        eph = eph or self.rng.randrange(32768, 61000)
        if inbound:
            if in_pk:
                self.record(local, peer, local, eph, port, proto, in_pk, in_b, start, secs, action)
            if out_pk and action == "ACCEPT":
                self.record(local, local, peer, port, eph, proto, out_pk, out_b, start, secs, action)
        else:
            if out_pk:
                self.record(local, local, peer, eph, port, proto, out_pk, out_b, start, secs, action)
            if in_pk and action == "ACCEPT":
                self.record(local, peer, local, port, eph, proto, in_pk, in_b, start, secs, action)

    def when(self, day: int, hour_from: float = 0, hour_to: float = 24) -> int:
        return self.day_start(day) + int(self.rng.uniform(hour_from * 3600, hour_to * 3600 - 120))

    def poisson(self, day: int, n: int) -> list[int]:
        return sorted(self.when(day) for _ in range(n))

    def note(self, kind: str, name: str, addresses: Iterable[str], days: Iterable[int], what: str, **extra) -> dict:
        entry = {
            "name": name,
            "addresses": sorted(set(addresses)),
            "days": sorted({(FIRST_DAY + dt.timedelta(days=d)).isoformat() for d in days}),
            "what": what,
            **extra,
        }
        (self.patterns if kind == "pattern" else self.look_alikes).append(entry)
        return entry

    def plant(
        self, detection: str, addresses: Iterable[str], days: Iterable[int], what: str, also: Iterable[str] = ()
    ) -> None:
        self.note("pattern", detection, addresses, days, what, detection=detection, also=sorted(also))

    # ------------------------------------------------------------------ background
    def background(self) -> None:
        rng = self.rng
        api = [self.public() for _ in range(150)]
        for day in range(self.days):
            for _ in range(250):  # clients of the load balancers
                client, lb = self.public(), rng.choice(self.lbs)
                for t in self.poisson(day, rng.randint(1, 4)):
                    self.conn(
                        lb.v4,
                        client,
                        443,
                        t,
                        rng.randint(10, 60),
                        rng.randint(5_000, 500_000),
                        rng.randint(8, 40),
                        rng.randint(1_000, 20_000),
                        inbound=True,
                        secs=rng.randint(1, 30),
                    )
            for h in self.apps:  # API calls: Poisson, sizes spread
                for t in self.poisson(day, rng.randint(15, 40)):
                    up = int(rng.lognormvariate(8.5, 1.2))
                    self.conn(
                        h.v4,
                        rng.choice(api),
                        443,
                        t,
                        max(3, up // 1200),
                        up,
                        rng.randint(5, 80),
                        int(rng.lognormvariate(9.5, 1.2)),
                        secs=rng.randint(1, 20),
                    )
            for _ in range(200):  # the Internet's scanners: 1-3 knocks each, below every scan threshold
                scanner = self.public()
                targets = rng.sample(self.public_facing, rng.randint(1, 3))
                for target in targets:
                    port = rng.choice(_NOISE_PORTS)
                    self.conn(
                        target.v4,
                        scanner,
                        port,
                        self.when(day),
                        0,
                        0,
                        rng.randint(1, 2),
                        44 * rng.randint(1, 2),
                        inbound=True,
                        action="REJECT",
                    )

    # ------------------------------------------------------------------ look-alikes
    def look_alike_traffic(self) -> None:
        rng, all_days = self.rng, range(self.days)
        # monitoring agent: 8 app hosts, every 300 s exactly
        saas = self.public()
        agents = self.apps[:8]
        for day in all_days:
            for h in agents:
                off = rng.randrange(0, 300)
                for i in range(288):
                    t = self.day_start(day) + off + 300 * i
                    if t + 2 < self.day_start(day + 1):
                        self.conn(h.v4, saas, 443, t, 8, 1_800, 6, 2_400)
        self.note(
            "look_alike",
            "monitoring_agent",
            [saas, *[h.v4 for h in agents]],
            all_days,
            "8 app hosts call one monitoring SaaS every 300 s exactly",
            fools="beaconing",
        )
        # NTP polls: 4 hosts, every 1024 s, bursts of 4 packets
        ntp = ["162.159.200.1", "162.159.200.123"]
        pollers = self.apps[8:12]
        for day in all_days:
            for h in pollers:
                srv, off = rng.choice(ntp), rng.randrange(0, 1024)
                for i in range(84):
                    t = self.day_start(day) + off + 1024 * i
                    if t + 2 < self.day_start(day + 1):
                        self.conn(h.v4, srv, 123, t, 4, 304, 4, 304, proto=17, eph=123)
        self.note(
            "look_alike",
            "ntp_polls",
            [*ntp, *[h.v4 for h in pollers]],
            all_days,
            "4 hosts poll public NTP servers every 1024 s in 4-packet bursts",
            fools="beaconing",
        )
        # DNS: hourly questions to a public resolver; a batch job's burst once a day
        resolver = "1.1.1.1"
        askers = self.apps[12:15]
        for day in all_days:
            for h in askers:
                off = rng.randrange(0, 3600)
                for i in range(24):
                    t = self.day_start(day) + off + 3600 * i + rng.randint(-20, 20)
                    if self.day_start(day) <= t < self.day_start(day + 1) - 2:
                        self.conn(h.v4, resolver, 53, t, 1, 70, 1, 130, proto=17)
            pps = rng.randint(3_000, 8_000)
            self.conn(
                askers[0].v4,
                resolver,
                53,
                self.when(day, 1, 5),
                pps * 60,
                pps * 60 * 75,
                pps * 60,
                pps * 60 * 120,
                proto=17,
                secs=60,
            )
        self.note(
            "look_alike",
            "dns_resolver",
            [resolver, *[h.v4 for h in askers]],
            all_days,
            "3 hosts ask a public resolver hourly; a batch job resolves names at 3,000-8,000 datagrams/s for a "
            "minute a day",
            fools="beaconing, outbound_dos",
        )
        # health checks: Route 53's checkers (in AWS's prefixes) and an uptime service outside AWS
        r53 = [f"54.243.31.{193 + i}" for i in range(8)] + [f"107.23.255.{i + 1}" for i in range(8)]
        uptime = [self.public() for _ in range(24)]
        for day in all_days:
            for checkers, packets, every in ((r53, 3, 2), (uptime, 5, 3)):
                for k, c in enumerate(checkers):
                    lb, off = self.lbs[k % 2], rng.randrange(0, 300)
                    for i in range(0, 288, every):
                        t = self.day_start(day) + off + 300 * i
                        if t + 2 < self.day_start(day + 1):
                            self.conn(
                                lb.v4, c, 443, t, packets - 1, 60 * (packets - 1), packets, 60 * packets, inbound=True
                            )
        self.note(
            "look_alike",
            "health_checks",
            [*r53, *uptime, *[lb.v4 for lb in self.lbs]],
            all_days,
            "Route 53 health checkers (16, in AWS's prefixes, 3-packet checks) and an uptime service (24 "
            "addresses, 5-packet checks) check the load balancers every 10-15 minutes",
            fools="port_probe",
        )
        # backups to S3 through a gateway endpoint, 02:00 every night
        s3 = [f"52.216.{rng.randrange(0, 256)}.{rng.randrange(1, 255)}" for _ in range(6)]
        for day in all_days:
            start, endpoint = self.day_start(day) + 2 * 3600, rng.choice(s3)  # one S3 address a night
            for m in range(60):
                pk = rng.randint(1_150_000, 1_250_000)
                self.conn(self.db.v4, endpoint, 443, start + 60 * m, pk, pk * 1_400, pk // 2, pk // 2 * 60, secs=60)
        self.note(
            "look_alike",
            "s3_backup",
            [*s3, self.db.v4],
            all_days,
            "the database uploads ~100 GB to S3 at ~20,000 packets/s of 1,400 bytes every night at 02:00",
            fools="traffic_volume, outbound_dos",
        )
        # CI runners fanning out to package mirrors; a fourth runner from the second-to-last day
        mirrors = [self.public(151) for _ in range(80)]
        for day in all_days:
            for k, runner in enumerate(self.ci):
                if k == 3 and day < self.days - 2:
                    continue
                for _ in range(rng.randint(4, 8)):  # builds
                    t = self.when(day, 7, 20)
                    for m in rng.sample(mirrors, rng.randint(20, 60)):
                        port = rng.choice([443, 443, 443, 80, 9418])
                        dl = int(rng.lognormvariate(13, 1.3))
                        self.conn(
                            runner.v4,
                            m,
                            port,
                            t + rng.randrange(0, 300),
                            max(3, dl // 20_000),
                            dl // 30,
                            max(3, dl // 1_400),
                            dl,
                            secs=rng.randint(1, 60),
                        )
        self.note(
            "look_alike",
            "ci_fanout",
            [*mirrors, *[h.v4 for h in self.ci]],
            all_days,
            "4 CI runners download from ~80 package mirrors on 443, 80 and 9418; the 4th has no history",
            fools="horizontal_sweep, unusual_port, traffic_volume",
        )
        # an administrator's SSH sessions to the bastion
        office = self.public()
        for day in all_days:
            for t in self.poisson(day, rng.randint(2, 4)):
                self.conn(
                    self.bastion.v4,
                    office,
                    22,
                    t,
                    3_000,
                    900_000,
                    2_500,
                    300_000,
                    inbound=True,
                    secs=rng.randint(600, 3600),
                )
        self.note(
            "look_alike",
            "admin_ssh",
            [office, self.bastion.v4],
            all_days,
            "an office address opens 2-4 long SSH sessions a day to the bastion",
            fools="brute_force",
        )

    # ------------------------------------------------------------------ planted patterns
    def planted(self) -> None:
        rng = self.rng
        days = list(range(self.days - PLANT_DAYS, self.days))
        pick = rng.choice

        # port_probe: 25-60 peers probe an exposed port (all rejected); 22-40 peers probe another host, one
        # probe accepted
        for accepted in (False, True):
            target = pick(self.apps[15:])
            port = pick([3306, 5432, 6379, 9200, 27017, 11211])
            day = pick(days)
            peers = [self.public() for _ in range(rng.randint(25, 60) if not accepted else rng.randint(22, 40))]
            for i, p in enumerate(peers):
                act = "ACCEPT" if accepted and i == 0 else "REJECT"
                self.conn(
                    target.v4,
                    p,
                    port,
                    self.when(day),
                    1 if act == "ACCEPT" else 0,
                    44,
                    rng.randint(1, 2),
                    60,
                    inbound=True,
                    action=act,
                )
            self.plant(
                "port_probe",
                [target.v4, *peers],
                [day],
                f"{len(peers)} peers probe {target.v4}:{port}" + (" (one accepted)" if accepted else ""),
            )
        # vertical_scan over IPv6: one peer, 20-300 ports of one host
        target, day = pick([h for h in self.apps if h.v6]), pick(days)
        scanner = f"2a0e:97c0:{rng.randrange(1, 0xFFFF):x}::{rng.randrange(1, 0xFFFF):x}"
        ports = rng.sample(range(1, 10_000), rng.randint(20, 300))
        start = self.when(day, 0, 20)
        for i, port in enumerate(ports):
            self.conn(target.v6, scanner, port, start + i, 0, 0, 1, 80, inbound=True, action="REJECT")
        self.plant("vertical_scan", [target.v6, scanner], [day], f"{scanner} probes {len(ports)} ports of {target.v6}")
        # horizontal_sweep: one peer, one port, 12-22 hosts
        sweeper, port, day = self.public(), pick([23, 445, 5900, 8080, 2375]), pick(days)
        targets = rng.sample(self.public_facing, rng.randint(12, 22))
        start = self.when(day, 0, 20)
        for i, h in enumerate(targets):
            self.conn(h.v4, sweeper, port, start + 3 * i, 0, 0, 1, 44, inbound=True, action="REJECT")
        self.plant(
            "horizontal_sweep",
            [sweeper, *[h.v4 for h in targets]],
            [day],
            f"{sweeper} sweeps port {port} of {len(targets)} hosts",
        )
        # brute_force: 40-300 small SSH connections to the bastion or an app host
        target, attacker, day = pick([self.bastion, *self.apps[15:]]), self.public(), pick(days)
        start = self.when(day, 0, 18)
        n = rng.randint(40, 300)
        for i in range(n):
            self.conn(
                target.v4,
                attacker,
                22,
                start + 7 * i + rng.randint(0, 5),
                rng.randint(8, 14),
                rng.randint(2_000, 3_500),
                rng.randint(10, 16),
                rng.randint(2_000, 3_000),
                inbound=True,
                secs=3,
            )
        self.plant("brute_force", [target.v4, attacker], [day], f"{n} SSH attempts on {target.v4} from {attacker}")
        # outbound_dos: 12,000-40,000 small packets/s for 2-6 minutes (UDP or a SYN flood)
        src, victim, day = pick(self.apps[:15]), self.public(), pick(days)
        pps, minutes = rng.randint(12_000, 40_000), rng.randint(2, 6)
        proto, port, size = pick([(17, 53, 80), (17, 123, 90), (6, 443, 60), (17, 19_132, 120)])
        self.conn(
            src.v4,
            victim,
            port,
            self.when(day, 0, 20),
            pps * 60 * minutes,
            pps * 60 * minutes * size,
            proto=proto,
            secs=60 * minutes,
        )
        self.plant(
            "outbound_dos",
            [src.v4, victim],
            [day],
            f"{src.v4} floods {victim}:{port}/{proto} at {pps:,} packets/s for {minutes} min",
            also=["traffic_volume", "unusual_port"],
        )
        # spam_bot: SMTP to 30-150 mail servers
        src, day = pick(self.apps[:15]), pick(days)
        mx = [self.public() for _ in range(rng.randint(30, 150))]
        for m in mx:
            self.conn(src.v4, m, 25, self.when(day), rng.randint(15, 40), rng.randint(5_000, 40_000), 12, 1_500)
        self.plant(
            "spam_bot", [src.v4, *mx], [day], f"{src.v4} sends SMTP to {len(mx)} mail servers", also=["unusual_port"]
        )
        # unusual_port: a host with history opens a port it never used, 0.2-5 MB
        src, peer, day = pick(self.apps[:15]), self.public(), pick(days)
        port = pick([4444, 6667, 8333, 1337, 31337])
        for t in sorted(self.when(day) for _ in range(rng.randint(1, 5))):
            up = rng.randint(200_000, 1_000_000)
            self.conn(src.v4, peer, port, t, up // 1_200, up, 50, 20_000, secs=30)
        self.plant("unusual_port", [src.v4, peer], [day], f"{src.v4} opens port {port} to {peer} for the first time")
        # traffic_volume: 200 MB - 2 GB to one peer in an hour
        src, drop, day = pick(self.apps[:15]), self.public(), pick(days)
        total, start = rng.randint(200, 2_000) * 1_000_000, self.when(day, 0, 22)
        self.conn(src.v4, drop, 443, start, total // 1_400, total, total // 2_800, total // 50, secs=3000)
        self.plant("traffic_volume", [src.v4, drop], [day], f"{src.v4} uploads {total:,} bytes to {drop} in an hour")
        # beaconing: one host calls its C2 every 30-600 s +- up to 20 % for 6-24 hours
        src, c2, day = pick(self.apps[:15]), self.public(), pick(days)
        period, jitter, hours = rng.randint(30, 600), rng.uniform(0, 0.2), rng.randint(6, 24)
        t = self.day_start(day) + rng.randrange(0, 3600)
        end = min(t + hours * 3600, self.day_start(day + 1) - 60)
        calls = 0
        while t < end:
            self.conn(
                src.v4,
                c2,
                443,
                t,
                rng.randint(5, 8),
                rng.randint(600, 1_500),
                rng.randint(4, 7),
                rng.randint(900, 3_000),
            )
            calls += 1
            t += max(1, int(period * (1 + rng.uniform(-jitter, jitter))))
        self.plant(
            "beaconing", [src.v4, c2], [day], f"{src.v4} calls {c2} every {period} s +-{jitter:.0%}, {calls} calls"
        )
        # listed peers: a threat list's address, a Tor relay, a mining pool, a blackholed network
        for detection, port, listed in (
            ("malicious_ip", 443, "addr"),
            ("tor", 9001, "addr"),
            ("mining_pool", 3333, "addr"),
            ("blackhole", 80, "cidr"),
        ):
            src, day = pick(self.apps[:15]), pick(days)
            peer = self.public()
            entry = peer if listed == "addr" else str(ipaddress.ip_network(f"{peer}/24", strict=False))
            self.lists[LISTS[detection]].append(entry)
            for t in sorted(self.when(day) for _ in range(rng.randint(1, 4))):
                if detection == "blackhole":  # the sinkhole never answers
                    self.conn(src.v4, peer, port, t, 2, 120, 0, 0, action="ACCEPT")
                else:
                    self.conn(
                        src.v4, peer, port, t, rng.randint(20, 400), rng.randint(20_000, 400_000), 50, 30_000, secs=60
                    )
            self.plant(
                detection,
                [src.v4, peer],
                [day],
                f"{src.v4} contacts {peer} on {LISTS[detection]}:{entry}",
                also=[] if port == 443 or detection == "blackhole" else ["unusual_port"],
            )
        # a look-alike of the lists: an address one past a listed /24
        net = ipaddress.ip_network(self.lists["blackhole"][0])
        near = str(net.broadcast_address + 1)
        self.used_public.add(near)
        src = pick(self.apps[:15])
        for day in range(self.days):
            self.conn(src.v4, near, 443, self.when(day), 10, 3_000, 10, 9_000)
        self.note(
            "look_alike",
            "near_listed",
            [near, src.v4],
            range(self.days),
            f"{src.v4} talks to {near}, the address after the blackholed {net}",
            fools="blackhole",
        )
        # decoys: listed entries no host contacts
        for name in self.lists:
            self.lists[name] += [self.public() for _ in range(40)]
            self.rng.shuffle(self.lists[name])

    # ------------------------------------------------------------------ output
    def write(self, out_dir: str) -> dict:
        raw = os.path.join(out_dir, "raw")
        by_slot: dict[int, list[tuple]] = defaultdict(list)
        for r in self.records:
            by_slot[(r[9] - self.t0) // SLOT].append(r)
        files = 0
        for slot, rows in sorted(by_slot.items()):
            ts = dt.datetime.fromtimestamp(self.t0 + (slot + 1) * SLOT, tz=dt.timezone.utc)
            folder = os.path.join(raw, "AWSLogs", ACCOUNT, "vpcflowlogs", REGION, ts.strftime("%Y/%m/%d"))
            os.makedirs(folder, exist_ok=True)
            stamp = ts.strftime("%Y%m%dT%H%MZ")
            h8 = hashlib.sha256(f"{self.seed}/{stamp}".encode()).hexdigest()[:8]
            lines = [HEADER] + [
                f"2 {ACCOUNT} {eni} {src} {dst} {sp} {dp} {pr} {pk} {by} {s} {e} {act} OK"
                for eni, src, dst, sp, dp, pr, pk, by, s, e, act in sorted(rows, key=lambda r: (r[8], r[0]))
            ]
            path = os.path.join(folder, f"{ACCOUNT}_vpcflowlogs_{REGION}_{FLOW_LOG}_{stamp}_{h8}.log.gz")
            with open(path, "wb") as fh, gzip.GzipFile(fileobj=fh, mode="wb", mtime=0) as gz:
                gz.write(("\n".join(lines) + "\n").encode())
            files += 1
        lists_dir = os.path.join(out_dir, "lists")
        os.makedirs(lists_dir, exist_ok=True)
        for name, entries in self.lists.items():
            with open(os.path.join(lists_dir, f"{name}.netset"), "w") as fh:
                fh.write(f"# flowspark scenario seed {self.seed}: planted entries among decoys (not a real list)\n")
                fh.write("".join(f"{e}\n" for e in entries))
        truth = {
            "seed": self.seed,
            "days": [(FIRST_DAY + dt.timedelta(days=d)).isoformat() for d in range(self.days)],
            "records": len(self.records),
            "files": files,
            "local_prefixes": LOCAL_PREFIXES,
            "lists": {name: os.path.join("lists", f"{name}.netset") for name in self.lists},
            "patterns": self.patterns,
            "look_alikes": self.look_alikes,
        }
        with open(os.path.join(out_dir, "truth.json"), "w") as fh:
            json.dump(truth, fh, indent=1)
        return truth


def generate(out_dir: str, seed: int = 1, days: int = 9) -> dict:
    """Write out_dir/raw (the flow logs), out_dir/lists (the intel lists) and out_dir/truth.json; return the
    truth. Deterministic for (seed, days)."""
    s = Scenario(seed, days)
    s.background()
    s.look_alike_traffic()
    s.planted()
    return s.write(out_dir)


def _addresses(f: dict) -> set[str]:
    return {a for a in (f.get("local"), f.get("peer")) if a}


def score(findings: Iterable[dict], truth: dict) -> dict[str, Any]:
    """Per detection: planted, found (planted patterns with at least one finding of their detection whose
    addresses are all the pattern's), findings, true (findings whose addresses all belong to a pattern
    planted as that detection or naming it in ``also``), false positives, precision, recall; and the
    false positives, each with the look-alike naming most of its addresses (or 'background')."""
    findings = [f for f in findings if not f.get("suppressed")]
    rows: dict[str, dict[str, Any]] = {d: {"planted": 0, "found": 0, "findings": 0, "true": 0} for d in DETECTIONS}
    missed, false = [], []
    for p in truth["patterns"]:
        rows[p["detection"]]["planted"] += 1
        hit = any(f["detection"] == p["detection"] and _addresses(f) <= set(p["addresses"]) for f in findings)
        rows[p["detection"]]["found"] += hit
        if not hit:
            missed.append(p)
    for f in findings:
        r = rows.setdefault(f["detection"], {"planted": 0, "found": 0, "findings": 0, "true": 0})
        r["findings"] += 1
        addr = _addresses(f)
        if any(
            f["detection"] in (p["detection"], *p["also"]) and addr <= set(p["addresses"]) for p in truth["patterns"]
        ):
            r["true"] += 1
            continue
        overlap = {la["name"]: len(addr & set(la["addresses"])) for la in truth["look_alikes"]}
        best = max(overlap.values(), default=0)
        why = [name for name, n in overlap.items() if n and n == best]  # the look-alike naming most of its addresses
        false.append(
            {
                **{k: f.get(k) for k in ("detection", "local", "peer", "port", "first_seen")},
                "look_alike": ", ".join(why) or "background",
            }
        )
    for r in rows.values():
        r["false_positives"] = r["findings"] - r["true"]
        r["precision"] = r["true"] / r["findings"] if r["findings"] else None
        r["recall"] = r["found"] / r["planted"] if r["planted"] else None
    return {"detections": rows, "missed": missed, "false_positives": false}
