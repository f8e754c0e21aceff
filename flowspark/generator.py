#!/usr/bin/env python3
"""Generate realistic synthetic AWS VPC Flow Logs, laid out exactly as AWS delivers them to S3.

One flow log per (account, region); one file per flow log per 5-minute delivery slot, so
``accounts x regions x days x 288`` files regardless of ``--records``.  Next to the data the
script writes ``DIR/_truth.json``: exact aggregates computed from the generated arrays
(record counts, packets/bytes sums, distinct flow keys, single-record "runt" keys, ...), which a
reader of the files must reproduce.

Output is byte-for-byte deterministic for a given set of arguments: every file is generated from
its own random stream derived from ``(seed, flow log, 5-minute slot)`` and gzip is written with
``mtime=0``, so the number of ``--workers`` does not change a single byte.

Only the standard library and numpy are needed (pyarrow only for ``--format parquet``).

Traffic model (per flow log; an Internet-facing VPC with a NAT gateway, a load balancer with two
ENIs, a bastion, a database and app instances; 8-20 ENIs, some with IPv6):

* long-lived TCP sessions (clients -> LB, LB -> instances, instances -> DB, bastion SSH, NAT <->
  internet), one record per 60 s aggregation interval in each direction on the server-side ENI,
  for 2 minutes to several hours; ~20 % of the records, ~5 records per flow key on average;
* Internet scanning (mostly REJECT, one record per attempt), short HTTPS/HTTP connections (one
  record per direction), DNS and NTP (udp), ICMP -- the single-record ("runt") keys, ~80 %;
* ~0.08 % NODATA and ~0.02 % SKIPDATA rows, a few percent of IPv6 records.

Importable: ``generate(out_dir, records=..., seed=..., ...) -> dict`` returns the truth dict.
"""

from __future__ import annotations

import argparse
import datetime as dt
import gzip
import hashlib
import ipaddress
import json
import multiprocessing as mp
import os
import shutil
import sys
import time
from typing import Any

import numpy as np

SLOT_SECONDS = 300  # AWS publishes a file per flow log every 5 minutes
INTERVAL = 60  # maximum aggregation interval (1 minute)
SLOTS_PER_DAY = 86400 // SLOT_SECONDS
SLOTS_PER_TASK = 3600 // SLOT_SECONDS  # one worker task = one flow log x one hour (12 files)

DEFAULT_FIELDS = [
    "version", "account-id", "interface-id", "srcaddr", "dstaddr", "srcport", "dstport", "protocol",
    "packets", "bytes", "start", "end", "action", "log-status",
]
CUSTOM_FIELDS = [
    "version", "account-id", "interface-id", "vpc-id", "subnet-id", "instance-id", "srcaddr", "dstaddr",
    "srcport", "dstport", "protocol", "packets", "bytes", "start", "end", "action", "log-status",
    "tcp-flags", "type", "pkt-srcaddr", "pkt-dstaddr", "flow-direction", "traffic-path",
]
# Version 11: the custom fields, the location, why a REJECT was rejected, encryption, the next hop and the
# EC2 tag values (the flow log's TagFieldSpecifications: instance Name and team, interface Name and team,
# the auto-scaling group's name; values percent-encoded as AWS writes them)
V11_FIELDS = CUSTOM_FIELDS + [
    "region", "az-id", "reject-reason", "encryption-status", "interface-type", "next-hop-interface-id",
    "next-hop-subnet-id", "next-hop-az-id", "next-hop-vpc-id", "next-hop-interface-type", "instance-tag",
    "instance-tag-2", "interface-tag", "interface-tag-2", "asg-tag", "asg-tag-2",
]
FORMATS = {"default": (2, DEFAULT_FIELDS), "custom": (5, CUSTOM_FIELDS), "v11": (11, V11_FIELDS)}
# the log formats by the field version they are (generate --field-version)
FIELD_VERSIONS = {2: "default", 5: "custom", 11: "v11"}
# The version 11 fields that are constant per interface (blank, '-', on NODATA/SKIPDATA rows)
V11_ENI_FIELDS = (
    "region", "az-id", "interface-type", "instance-tag", "instance-tag-2", "interface-tag", "interface-tag-2",
    "asg-tag", "asg-tag-2",
)
# ports whose traffic is TLS/SSH-encrypted by the application (encryption-status 2, or 3 inside the VPC)
_APP_ENCRYPTED_PORTS = np.array([22, 443, 8443], dtype=np.int64)
_REGION_WORDS = {"east": "e", "west": "w", "central": "c", "north": "n", "south": "s", "southeast": "se",
                 "northeast": "ne"}

# Fields that are constant per ENI (set on NODATA/SKIPDATA rows too, like AWS does).
ENI_CONST_FIELDS = {"version", "account-id", "interface-id", "vpc-id", "subnet-id", "instance-id"}
# Fields that are present on NODATA/SKIPDATA rows; every other field is "-" there.
META_FIELDS = ENI_CONST_FIELDS | {"start", "end", "log-status"}

# AWS Parquet schema (column names use underscores); everything not listed is a string.
PARQUET_INT32 = {"version", "srcport", "dstport", "protocol", "tcp-flags", "traffic-path"}
PARQUET_INT64 = {"packets", "bytes", "start", "end"}

REGIONS = [
    "us-east-1", "eu-west-1", "us-west-2", "eu-central-1", "ap-southeast-2", "ap-northeast-1",
    "us-east-2", "eu-west-2", "ap-south-1", "ca-central-1", "sa-east-1", "eu-north-1",
    "ap-southeast-1", "us-west-1", "eu-west-3", "ap-northeast-2",
]

# ENI kinds
K_NAT, K_LB, K_DB, K_BASTION, K_APP = 0, 1, 2, 3, 4
ACTIONS = np.array(["ACCEPT", "REJECT"], dtype=object)
STATUSES = np.array(["OK", "NODATA", "SKIPDATA"], dtype=object)
DIRECTIONS = np.array(["ingress", "egress"], dtype=object)

# First octets used for random "public" IPv4 addresses (no private/loopback/link-local/CGNAT/
# documentation/multicast blocks).
_PUB_FIRST = np.array(
    [o for o in range(1, 224) if o not in (10, 100, 127, 169, 172, 192, 198, 203)], dtype=np.uint64
)
# First 16 bits of random "public" IPv6 addresses.
_PUB6_PREFIX = np.array(
    [0x2001, 0x2003, 0x2400, 0x2403, 0x2600, 0x2601, 0x2607, 0x2620, 0x2800, 0x2A00, 0x2A01,
     0x2A02, 0x2A03, 0x2C0F],
    dtype=np.uint64,
)
_DNS_SERVERS = ["8.8.8.8", "8.8.4.4", "1.1.1.1", "1.0.0.1", "9.9.9.9", "208.67.222.222"]
_NTP_SERVERS = [
    "162.159.200.1", "162.159.200.123", "129.6.15.28", "132.163.96.1", "216.239.35.0",
    "216.239.35.4", "185.125.190.56", "91.189.91.157", "51.145.123.29", "45.79.111.114",
]
_DNS_IPS = np.array([int(ipaddress.IPv4Address(x)) for x in _DNS_SERVERS], dtype=np.uint64)
_NTP_IPS = np.array([int(ipaddress.IPv4Address(x)) for x in _NTP_SERVERS], dtype=np.uint64)
# Ports scanners knock on: (port, protocol, weight)
_SCAN_PORTS = [
    (22, 6, 18), (23, 6, 10), (3389, 6, 9), (445, 6, 8), (80, 6, 6), (443, 6, 5), (1433, 6, 4),
    (3306, 6, 4), (5900, 6, 4), (8080, 6, 4), (25, 6, 2), (21, 6, 2), (6379, 6, 2), (5432, 6, 2),
    (9200, 6, 1), (27017, 6, 1), (2375, 6, 1), (8443, 6, 2), (135, 6, 1), (139, 6, 1), (111, 6, 1),
    (8888, 6, 1), (5060, 17, 2), (1900, 17, 1), (161, 17, 1), (53, 17, 1), (123, 17, 1),
    (11211, 17, 1), (137, 17, 1),
]
_SCAN_PORT = np.array([p for p, _, _ in _SCAN_PORTS], dtype=np.int64)
_SCAN_PROTO = np.array([pr for _, pr, _ in _SCAN_PORTS], dtype=np.int64)
_SCAN_W = np.array([w for _, _, w in _SCAN_PORTS], dtype=np.float64)
_SCAN_W /= _SCAN_W.sum()

# Session types: (name, share of sessions)
S_LB_CLIENT, S_LB_BACKEND, S_NAT_OUT, S_NAT_LEG, S_SSH, S_DB = range(6)
_SESSION_SHARE = np.array([0.40, 0.20, 0.15, 0.10, 0.05, 0.10])

MULTI_SHARE = 0.20  # share of OK records that belong to long-lived sessions
NODATA_SHARE = 0.0008
SKIPDATA_SHARE = 0.0002


# --------------------------------------------------------------------------------------------
# small helpers
# --------------------------------------------------------------------------------------------

def _hexid(*parts: Any, n: int = 17) -> str:
    return hashlib.sha256(":".join(map(str, parts)).encode()).hexdigest()[:n]


def _rng(seed: int, *key: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=tuple(key)))


_TABLES: dict[str, np.ndarray] = {}


def _tables() -> dict[str, np.ndarray]:
    """String lookup tables (built lazily, once per process)."""
    if not _TABLES:
        _TABLES["num"] = np.array([str(i) for i in range(65536)], dtype=object)
        _TABLES["hi16"] = np.array([f"{i >> 8}.{i & 255}." for i in range(65536)], dtype=object)
        _TABLES["lo16"] = np.array([f"{i >> 8}.{i & 255}" for i in range(65536)], dtype=object)
        _TABLES["hex"] = np.array([f"{i:x}" for i in range(65536)], dtype=object)
        _TABLES["tpath"] = np.array(["-"] + [str(i) for i in range(255)], dtype=object)
    return _TABLES


def _addr_str(hi: np.ndarray, lo: np.ndarray) -> np.ndarray:
    """Format (hi, lo) uint64 address pairs: hi == 0 -> IPv4 ``lo``; else IPv6 ``hi<<64 | lo``."""
    t = _tables()
    lo_i = lo.astype(np.int64)  # IPv4 values are < 2**32, the IPv6 rows are overwritten below
    out = t["hi16"][(lo_i >> 16) & 0xFFFF] + t["lo16"][lo_i & 0xFFFF]
    v6 = np.flatnonzero(hi)
    if len(v6):
        out[v6] = _v6_str(hi[v6], lo[v6])
    return out


def _v6_str(hi: np.ndarray, lo: np.ndarray) -> list:
    """RFC 5952 text of IPv6 addresses; fast path for the (usual) case without a zero group."""
    hexs = _tables()["hex"]
    sh = np.array([48, 32, 16, 0], dtype=np.uint64)
    groups = np.concatenate(
        [(hi[:, None] >> sh) & np.uint64(0xFFFF), (lo[:, None] >> sh) & np.uint64(0xFFFF)], axis=1
    ).astype(np.int64)
    parts = hexs[groups].tolist()
    out = [":".join(p) for p in parts]
    for i in np.flatnonzero((groups == 0).any(axis=1)).tolist():
        out[i] = ipaddress.IPv6Address((int(hi[i]) << 64) | int(lo[i])).compressed
    return out


def _int_str(a: np.ndarray) -> np.ndarray:
    """Format non-negative ints (small ones from a lookup table)."""
    t = _tables()["num"]
    if len(a) == 0:
        return np.empty(0, dtype=object)
    if int(a.max()) < 65536 and int(a.min()) >= 0:
        return t[a]
    return np.array(list(map(str, a.tolist())), dtype=object)


def _range_str(a: np.ndarray) -> np.ndarray:
    """Format ints that span a small range (epoch seconds inside one file)."""
    if len(a) == 0:
        return np.empty(0, dtype=object)
    lo, hi = int(a.min()), int(a.max())
    if hi - lo > 100000:
        return np.array(list(map(str, a.tolist())), dtype=object)
    tbl = np.array([str(v) for v in range(lo, hi + 1)], dtype=object)
    return tbl[a - lo]


def _pub_v4(rng: np.random.Generator, n: int) -> np.ndarray:
    first = _PUB_FIRST[rng.integers(0, len(_PUB_FIRST), n)]
    return (first << np.uint64(24)) | rng.integers(1, 1 << 24, n, dtype=np.uint64)


def _pub_v6(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    hi = (_PUB6_PREFIX[rng.integers(0, len(_PUB6_PREFIX), n)] << np.uint64(48)) | rng.integers(
        0, 1 << 48, n, dtype=np.uint64
    )
    lo = rng.integers(1, np.iinfo(np.uint64).max, n, dtype=np.uint64, endpoint=True)
    return hi, lo


def _lognormal_int(rng: np.random.Generator, median: float, sigma: float, n: int, lo: int, hi: int):
    return np.clip(np.rint(rng.lognormal(np.log(median), sigma, n)), lo, hi)


# --------------------------------------------------------------------------------------------
# configuration and per-flow-log plan
# --------------------------------------------------------------------------------------------

def _make_config(
    records: int, seed: int, start: str, days: int, accounts: int, regions: int, layout: str,
    hourly: bool, output: str, log_format: str, compresslevel: int,
) -> dict:
    if records < 0:
        raise ValueError("records must be >= 0")
    if seed < 0:
        raise ValueError("seed must be >= 0")
    if days < 1 or accounts < 1 or regions < 1:
        raise ValueError("days, accounts and regions must be >= 1")
    if regions > len(REGIONS):
        raise ValueError(f"at most {len(REGIONS)} regions")
    if layout not in ("default", "hive"):
        raise ValueError("layout must be 'default' or 'hive'")
    if output not in ("text", "parquet"):
        raise ValueError("output must be 'text' or 'parquet'")
    if log_format not in ("default", "custom", "mixed", "v11"):
        raise ValueError("log_format must be 'default', 'custom', 'mixed' or 'v11'")
    day0 = dt.datetime.strptime(start, "%Y-%m-%d").replace(tzinfo=dt.timezone.utc)
    t0 = int(day0.timestamp())

    arng = _rng(seed, 1 << 20)
    accts: list[str] = []
    while len(accts) < accounts:
        a = str(int(arng.integers(100_000_000_000, 1_000_000_000_000)))
        if a not in accts:
            accts.append(a)
    regs = REGIONS[:regions]
    flow_logs = []
    for a in accts:
        for r in regs:
            i = len(flow_logs)
            if log_format == "mixed":
                fmt = "custom" if i % 2 == 1 else "default"
            else:
                fmt = log_format
            flow_logs.append(
                {"account": a, "region": r, "flow_log_id": "fl-" + _hexid(seed, "fl", a, r), "format": fmt}
            )
    n_fl = len(flow_logs)
    per = [records // n_fl + (1 if i < records % n_fl else 0) for i in range(n_fl)]
    for fl, n in zip(flow_logs, per):
        fl["records"] = n
    return {
        "seed": seed, "records": records, "start": start, "t0": t0, "days": days,
        "n_slots": days * SLOTS_PER_DAY, "layout": layout, "hourly": hourly, "output": output,
        "log_format": log_format, "compresslevel": compresslevel, "flow_logs": flow_logs,
    }


class _Plan:
    """Everything about one flow log that spans files: ENIs, sessions, per-slot record budgets."""

    def __init__(self, cfg: dict, fl: int):
        seed, t0, n_slots = cfg["seed"], cfg["t0"], cfg["n_slots"]
        info = cfg["flow_logs"][fl]
        self.fl = fl
        self.account, self.region, self.flow_log_id = info["account"], info["region"], info["flow_log_id"]
        self.version, self.fields = FORMATS[info["format"]]
        self.header = " ".join(self.fields)
        rng = _rng(seed, fl, 0)
        self._make_enis(seed, rng, info.get("eni_ids"), info.get("instance_ids"))
        self.heavy_scanners = _pub_v4(rng, 48)
        self.admin_ips = _pub_v4(rng, 4)

        R = int(info["records"])
        n_nodata = int(round(R * NODATA_SHARE))
        n_skip = int(round(R * SKIPDATA_SHARE))
        budget = int(round((R - n_nodata - n_skip) * MULTI_SHARE))
        self._make_sessions(rng, budget, t0, n_slots)
        n_runt = R - n_nodata - n_skip - self.session_lines
        assert n_runt >= 0

        # runt lines per slot: a mild diurnal curve, at least one line per file when possible
        hours = (np.arange(n_slots) * SLOT_SECONDS / 3600.0) % 24
        w = 1.0 + 0.35 * np.cos(2 * np.pi * (hours - 15.0) / 24.0)
        w /= w.sum()
        if n_runt >= n_slots:
            self.runt_per_slot = 1 + rng.multinomial(n_runt - n_slots, w)
        else:
            self.runt_per_slot = rng.multinomial(n_runt, w)
        uni = np.full(n_slots, 1.0 / n_slots)
        self.nodata_per_slot = rng.multinomial(n_nodata, uni)
        self.skip_per_slot = rng.multinomial(n_skip, uni)

    # ---- ENIs -------------------------------------------------------------------------------
    def _make_enis(self, seed: int, rng: np.random.Generator, given_enis=None, given_instances=None) -> None:
        n = int(rng.integers(8, 21))
        kind = np.full(n, K_APP, dtype=np.int64)
        kind[0], kind[1], kind[2], kind[3], kind[4] = K_NAT, K_LB, K_LB, K_DB, K_BASTION
        if rng.random() < 0.7:
            base = (10 << 24) | (int(rng.integers(0, 256)) << 16)
        else:
            base = (172 << 24) | (int(rng.integers(16, 32)) << 16)
        # subnets: 0/1 public (AZ a/b), 10/11 private app, 20 database
        subnet = np.empty(n, dtype=np.int64)
        subnet[0], subnet[1], subnet[2], subnet[3], subnet[4] = 0, 0, 1, 20, 0
        subnet[5:] = 10 + (np.arange(n - 5) % 2)
        host = rng.choice(np.arange(4, 251), n, replace=False)  # unique hosts -> unique addresses
        self.n_eni = n
        self.eni_kind = kind
        self.eni_v4 = (base + (subnet << 8) + host).astype(np.uint64)
        # IPv6: LB ENIs, the bastion and one or two app instances (VPC /56 in 2600:1f18::/32)
        v6_base = (
            (0x26001F18 << 32) | (int(rng.integers(0, 1 << 16)) << 16) | (int(rng.integers(0, 256)) << 8)
        )
        has_v6 = np.zeros(n, dtype=bool)
        has_v6[[1, 2, 4]] = True
        has_v6[5 + rng.choice(n - 5, int(rng.integers(1, 3)), replace=False)] = True
        self.eni_v6_hi = np.where(has_v6, np.uint64(v6_base) + subnet.astype(np.uint64), 0).astype(np.uint64)
        self.eni_v6_lo = np.where(
            has_v6, rng.integers(1, np.iinfo(np.uint64).max, n, dtype=np.uint64, endpoint=True), 0
        ).astype(np.uint64)
        self.v6_enis = np.flatnonzero(has_v6)
        self.lb_enis = np.flatnonzero(kind == K_LB)
        self.app_enis = np.flatnonzero(kind == K_APP)
        self.host_enis = np.flatnonzero((kind == K_APP) | (kind == K_BASTION) | (kind == K_DB))
        self.bastion = int(np.flatnonzero(kind == K_BASTION)[0])
        self.db = int(np.flatnonzero(kind == K_DB)[0])
        self.nat = int(np.flatnonzero(kind == K_NAT)[0])
        sw = np.array([3.0, 3.0, 0.5, 2.0, 1.0])[kind]  # scan target weights by kind
        self.scan_w = sw / sw.sum()

        acct, reg = self.account, self.region
        vpc_id = "vpc-" + _hexid(seed, "vpc", acct, reg)
        subnet_ids = {s: "subnet-" + _hexid(seed, "subnet", acct, reg, s) for s in (0, 1, 10, 11, 20)}
        eni_ids = ["eni-" + _hexid(seed, "eni", acct, reg, j) for j in range(n)]
        inst_ids = [
            "-" if k in (K_NAT, K_LB) else "i-" + _hexid(seed, "i", acct, reg, j)
            for j, k in enumerate(kind.tolist())
        ]
        # ids an EC2 (moto in the demo) gave the interfaces/instances of interfaces(): used as they are
        for given, ids, what in ((given_enis, eni_ids, "interface"), (given_instances, inst_ids, "instance")):
            if given:
                if len(given) != n:
                    raise ValueError(f"flow log {self.fl}: {len(given)} {what} ids given for {n} interfaces")
                ids[:] = [str(g) if g else "-" for g in given]
        self.subnet = subnet
        self.eni_attr = {
            "version": [str(self.version)] * n,
            "account-id": [acct] * n,
            "interface-id": eni_ids,
            "vpc-id": [vpc_id] * n,
            "subnet-id": [subnet_ids[int(s)] for s in subnet],
            "instance-id": inst_ids,
        }
        self.eni_ids = eni_ids
        # version 11: where each interface is, what it is, its tags; the VPC's interfaces by IPv4 address
        short = reg.split("-")
        zone = f"{short[0]}{_REGION_WORDS.get(short[1], short[1][:1])}{short[2]}"
        az = [f"{zone}-az{1 if int(s) in (0, 10, 20) else 2}" for s in subnet]
        itype = {K_NAT: "nat_gateway", K_LB: "network_load_balancer"}
        app_no = {j: i for i, j in enumerate(np.flatnonzero(kind == K_APP).tolist())}
        self.eni_attr.update(
            {
                "region": [reg] * n,
                "az-id": az,
                "interface-type": [itype.get(k, "interface") for k in kind.tolist()],
                "instance-tag": [
                    "bastion" if k == K_BASTION else f"app-{app_no[j]}" if k == K_APP else "-"
                    for j, k in enumerate(kind.tolist())
                ],
                "instance-tag-2": [
                    "web%20team" if k == K_APP else "ops" if k == K_BASTION else "-" for k in kind.tolist()
                ],
                "interface-tag": [
                    "nat-egress" if k == K_NAT else "caf%C3%A9" if k == K_DB else "-" for k in kind.tolist()
                ],
                "interface-tag-2": ["-"] * n,
                "asg-tag": ["web-asg" if k == K_APP else "-" for k in kind.tolist()],
                "asg-tag-2": ["-"] * n,
            }
        )
        self.bpa = bool(self.fl % 2)  # VPC Block Public Access on every other flow log
        self.v4_order = np.argsort(self.eni_v4)
        self.v4_sorted = self.eni_v4[self.v4_order]
        self.vpc_net = int(base) >> 16

    # ---- sessions ---------------------------------------------------------------------------
    def _make_sessions(self, rng: np.random.Generator, budget: int, t0: int, n_slots: int) -> None:
        span = n_slots * SLOT_SECONDS
        max_iv = span // INTERVAL
        # interval counts: mostly 2-6 minutes, ~2 % 20-130 minutes, ~0.15 % 4-12 hours
        k = budget // 4 + 8
        u = rng.random(k)
        L = np.where(
            u < 0.0015, rng.integers(240, 721, k),
            np.where(u < 0.0215, rng.integers(20, 131, k), 1 + rng.geometric(0.5, k)),
        )
        L = np.minimum(L, max_iv).astype(np.int64)
        # keep candidates greedily while they fit the line budget (2 lines per interval)
        keep = np.zeros(k, dtype=bool)
        left = budget
        for i, li in enumerate(L.tolist()):
            if 2 * li <= left:
                keep[i] = True
                left -= 2 * li
                if left < 4:
                    break
        L = L[keep]
        k = len(L)
        self.session_lines = int(2 * L.sum())

        s0 = t0 + np.floor(rng.random(k) * (span - INTERVAL * L + 1)).astype(np.int64)
        last_dur = rng.integers(1, INTERVAL, k)
        typ = rng.choice(len(_SESSION_SHARE), k, p=_SESSION_SHARE)

        eni = np.zeros(k, dtype=np.int64)
        l_hi = np.zeros(k, dtype=np.uint64)
        l_lo = np.zeros(k, dtype=np.uint64)
        r_hi = np.zeros(k, dtype=np.uint64)
        r_lo = _pub_v4(rng, k)
        l_port = np.zeros(k, dtype=np.int64)
        r_port = rng.integers(32768, 61000, k)
        init_remote = np.ones(k, dtype=bool)
        tp = np.full(k, 8, dtype=np.int64)
        pk_lo = np.zeros(k, dtype=np.uint64)  # pkt-addr override of the local side (NAT legs)
        pk_hi = np.zeros(k, dtype=np.uint64)
        req = _lognormal_int(rng, 8, 1.0, k, 1, 5000)
        resp = np.clip(np.rint(req * rng.uniform(1.0, 3.0, k)), 1, 20000)
        req_bpp = rng.uniform(70, 500, k)
        resp_bpp = rng.uniform(300, 1400, k)

        m = typ == S_LB_CLIENT
        eni[m] = self.lb_enis[rng.integers(0, len(self.lb_enis), int(m.sum()))]
        l_port[m] = np.where(rng.random(int(m.sum())) < 0.9, 443, 80)
        r_port[m] = rng.integers(1024, 65536, int(m.sum()))
        v6 = m & (rng.random(k) < 0.10)
        r_hi[v6], r_lo[v6] = _pub_v6(rng, int(v6.sum()))

        m = typ == S_LB_BACKEND
        eni[m] = self.app_enis[rng.integers(0, len(self.app_enis), int(m.sum()))]
        r_lo[m] = self.eni_v4[self.lb_enis[rng.integers(0, len(self.lb_enis), int(m.sum()))]]
        l_port[m] = np.where(rng.random(int(m.sum())) < 0.7, 8080, 80)
        tp[m] = 1
        req[m] *= 2
        resp[m] *= 2

        m = typ == S_NAT_OUT
        eni[m] = self.nat
        l_port[m] = rng.integers(1024, 65536, int(m.sum()))
        r_port[m] = np.where(rng.random(int(m.sum())) < 0.85, 443, 80)
        init_remote[m] = False
        resp[m] = np.clip(np.rint(req[m] * rng.uniform(2.0, 40.0, int(m.sum()))), 1, 50000)
        resp_bpp[m] = rng.uniform(900, 1450, int(m.sum()))

        m = typ == S_NAT_LEG  # instance -> NAT ENI leg: pkt-dstaddr shows the internet host
        eni[m] = self.nat
        r_lo[m] = self.eni_v4[self.app_enis[rng.integers(0, len(self.app_enis), int(m.sum()))]]
        l_port[m] = 443
        pk_lo[m] = _pub_v4(rng, int(m.sum()))
        tp[m] = 1
        resp_bpp[m] = rng.uniform(900, 1450, int(m.sum()))

        m = typ == S_SSH
        eni[m] = self.bastion
        r_lo[m] = self.admin_ips[rng.integers(0, len(self.admin_ips), int(m.sum()))]
        l_port[m] = 22
        req[m] = _lognormal_int(rng, 12, 0.8, int(m.sum()), 1, 2000)
        req_bpp[m] = rng.uniform(60, 150, int(m.sum()))
        resp_bpp[m] = rng.uniform(80, 600, int(m.sum()))

        m = typ == S_DB
        eni[m] = self.db
        r_lo[m] = self.eni_v4[self.app_enis[rng.integers(0, len(self.app_enis), int(m.sum()))]]
        l_port[m] = np.where(rng.random(int(m.sum())) < 0.8, 5432, 3306)
        tp[m] = 1

        # local address: the ENI's IPv6 address for IPv6 clients, else its IPv4 address
        v6 = r_hi != 0
        l_hi[:] = np.where(v6, self.eni_v6_hi[eni], 0)
        l_lo[:] = np.where(v6, self.eni_v6_lo[eni], self.eni_v4[eni])
        no_override = pk_lo == 0
        pk_lo[no_override] = l_lo[no_override]
        pk_hi[no_override] = l_hi[no_override]

        self.s = {
            "eni": eni, "l_hi": l_hi, "l_lo": l_lo, "r_hi": r_hi, "r_lo": r_lo, "l_port": l_port,
            "r_port": r_port, "init_remote": init_remote, "tp": tp, "pk_hi": pk_hi, "pk_lo": pk_lo,
            "req": req, "resp": resp, "req_bpp": req_bpp, "resp_bpp": resp_bpp, "L": L,
        }

        # expand to one row per (session, interval), bucketed by the 5-minute slot of `end`
        n_iv = int(L.sum())
        sid = np.repeat(np.arange(k, dtype=np.int64), L)
        first = np.repeat(np.cumsum(L) - L, L)
        ivi = np.arange(n_iv, dtype=np.int64) - first
        start = s0[sid] + INTERVAL * ivi
        end = np.where(ivi == L[sid] - 1, start + last_dur[sid], start + INTERVAL - 1)
        slot = (end - t0) // SLOT_SECONDS
        order = np.argsort(slot, kind="stable")
        self.iv_sid, self.iv_i = sid[order], ivi[order]
        self.iv_start, self.iv_end = start[order], end[order]
        self.slot_ptr = np.searchsorted(slot[order], np.arange(n_slots + 1))


_PLAN_CACHE: dict[tuple, _Plan] = {}


def _get_plan(cfg: dict, fl: int) -> _Plan:
    key = (id(cfg), fl)
    p = _PLAN_CACHE.get(key)
    if p is None:
        if len(_PLAN_CACHE) >= 4:
            _PLAN_CACHE.pop(next(iter(_PLAN_CACHE)))
        p = _Plan(cfg, fl)
        _PLAN_CACHE[key] = p
    return p


# --------------------------------------------------------------------------------------------
# one file
# --------------------------------------------------------------------------------------------

_COLS = {
    "eni": np.int64, "src_hi": np.uint64, "src_lo": np.uint64, "dst_hi": np.uint64,
    "dst_lo": np.uint64, "psrc_hi": np.uint64, "psrc_lo": np.uint64, "pdst_hi": np.uint64,
    "pdst_lo": np.uint64, "sport": np.int64, "dport": np.int64, "proto": np.int64,
    "packets": np.int64, "bytes": np.int64, "start": np.int64, "end": np.int64,
    "action": np.int64, "status": np.int64, "flags": np.int64, "dir": np.int64, "tpath": np.int64,
}
_DEFAULTS = {"action": 0, "status": 0, "flags": 0, "dir": 0, "tpath": -1}


def _part(n: int, **cols) -> dict:
    out = {}
    for name, dtype in _COLS.items():
        if name in cols:
            v = cols[name]
        elif name in ("psrc_hi", "psrc_lo", "pdst_hi", "pdst_lo"):
            v = cols[name.replace("psrc", "src").replace("pdst", "dst")]
        elif name in _DEFAULTS:
            v = _DEFAULTS[name]
        else:
            v = 0
        if np.ndim(v) == 0:
            out[name] = np.full(n, v, dtype=dtype)
        else:
            out[name] = np.asarray(v).astype(dtype, copy=False)
    return out


def _session_rows(plan: _Plan, rng: np.random.Generator, slot: int) -> list[dict]:
    a, b = int(plan.slot_ptr[slot]), int(plan.slot_ptr[slot + 1])
    n = b - a
    if n == 0:
        return []
    S = plan.s
    sid, ivi = plan.iv_sid[a:b], plan.iv_i[a:b]
    start, end = plan.iv_start[a:b], plan.iv_end[a:b]
    init_remote = S["init_remote"][sid]
    v6 = S["r_hi"][sid] != 0
    minb = np.where(v6, 60, 40)
    pk_req = np.maximum(1, rng.poisson(S["req"][sid]))
    pk_resp = np.maximum(1, rng.poisson(S["resp"][sid]))
    b_req = np.maximum(minb * pk_req, np.rint(pk_req * S["req_bpp"][sid] * rng.uniform(0.85, 1.15, n)))
    b_resp = np.maximum(minb * pk_resp, np.rint(pk_resp * S["resp_bpp"][sid] * rng.uniform(0.85, 1.15, n)))
    first = ivi == 0
    last = ivi == S["L"][sid] - 1
    f_init = np.where(first, 2, 0) | np.where(last, 1, 0)  # SYN / FIN
    f_resp = np.where(first, 18, 0) | np.where(last, 1, 0)  # SYN-ACK / FIN
    eni = S["eni"][sid]
    l_hi, l_lo, r_hi, r_lo = S["l_hi"][sid], S["l_lo"][sid], S["r_hi"][sid], S["r_lo"][sid]
    pk_hi, pk_lo = S["pk_hi"][sid], S["pk_lo"][sid]
    l_port, r_port = S["l_port"][sid], S["r_port"][sid]
    inbound = _part(  # remote -> local, on the local (server-side) ENI
        n, eni=eni, src_hi=r_hi, src_lo=r_lo, dst_hi=l_hi, dst_lo=l_lo, pdst_hi=pk_hi, pdst_lo=pk_lo,
        sport=r_port, dport=l_port, proto=6, start=start, end=end, dir=0,
        packets=np.where(init_remote, pk_req, pk_resp), bytes=np.where(init_remote, b_req, b_resp),
        flags=np.where(init_remote, f_init, f_resp),
    )
    outbound = _part(
        n, eni=eni, src_hi=l_hi, src_lo=l_lo, dst_hi=r_hi, dst_lo=r_lo, psrc_hi=pk_hi, psrc_lo=pk_lo,
        sport=l_port, dport=r_port, proto=6, start=start, end=end, dir=1, tpath=S["tp"][sid],
        packets=np.where(init_remote, pk_resp, pk_req), bytes=np.where(init_remote, b_resp, b_req),
        flags=np.where(init_remote, f_resp, f_init),
    )
    return [inbound, outbound]


def _eni_addr(plan: _Plan, eni: np.ndarray, v6: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    hi = np.where(v6, plan.eni_v6_hi[eni], 0).astype(np.uint64)
    lo = np.where(v6, plan.eni_v6_lo[eni], plan.eni_v4[eni]).astype(np.uint64)
    return hi, lo


def _runt_rows(cfg: dict, plan: _Plan, rng: np.random.Generator, slot: int, n: int) -> list[dict]:
    if n == 0:
        return []
    t0 = cfg["t0"]
    t_slot = t0 + slot * SLOT_SECONDS
    n_pair = int(rng.binomial(n // 2, 0.30))
    n_single = n - 2 * n_pair
    n_icmp = int(rng.binomial(n_single, 0.08))
    n_scan = n_single - n_icmp
    parts = []
    has_v6 = len(plan.v6_enis) > 0

    # --- Internet scanning: one record per attempt, mostly REJECT --------------------------
    m = n_scan
    if m:
        v6 = (rng.random(m) < 0.04) & has_v6
        eni = rng.choice(plan.n_eni, m, p=plan.scan_w)
        if has_v6:
            eni = np.where(v6, plan.v6_enis[rng.integers(0, len(plan.v6_enis), m)], eni)
        d_hi, d_lo = _eni_addr(plan, eni, v6)
        s_lo = _pub_v4(rng, m)
        heavy = rng.random(m) < 0.25
        s_lo = np.where(heavy, plan.heavy_scanners[rng.integers(0, len(plan.heavy_scanners), m)], s_lo)
        s_hi = np.zeros(m, dtype=np.uint64)
        v6h, v6l = _pub_v6(rng, m)
        s_hi = np.where(v6, v6h, s_hi)
        s_lo = np.where(v6, v6l, s_lo)
        common = rng.random(m) < 0.7
        pi = rng.choice(len(_SCAN_PORT), m, p=_SCAN_W)
        dport = np.where(common, _SCAN_PORT[pi], rng.integers(1, 65536, m))
        proto = np.where(common, _SCAN_PROTO[pi], np.where(rng.random(m) < 0.85, 6, 17))
        kind = plan.eni_kind[eni]
        tcp = proto == 6
        accept = (
            (tcp & (kind == K_LB) & ((dport == 443) | (dport == 80)))
            | (tcp & (kind == K_BASTION) & (dport == 22))
            | (rng.random(m) < 0.03)
        )
        packets = rng.choice(np.array([1, 2, 3]), m, p=[0.75, 0.17, 0.08])
        bpp = np.where(tcp, rng.choice(np.array([40, 44, 60]), m), 28 + rng.integers(0, 400, m))
        bpp = bpp + np.where(v6, 20, 0)
        end = t_slot + rng.integers(0, SLOT_SECONDS, m)
        dur = np.where(packets == 1, 0, rng.integers(1, INTERVAL, m))
        parts.append(_part(
            m, eni=eni, src_hi=s_hi, src_lo=s_lo, dst_hi=d_hi, dst_lo=d_lo,
            sport=rng.integers(1024, 65536, m), dport=dport, proto=proto, packets=packets,
            bytes=packets * bpp, start=np.maximum(end - dur, t0), end=end,
            action=np.where(accept, 0, 1), flags=np.where(tcp, 2, 0), dir=0,
        ))

    # --- ICMP (ping sweeps) ------------------------------------------------------------------
    m = n_icmp
    if m:
        v6 = (rng.random(m) < 0.10) & has_v6
        eni = rng.choice(plan.n_eni, m, p=plan.scan_w)
        if has_v6:
            eni = np.where(v6, plan.v6_enis[rng.integers(0, len(plan.v6_enis), m)], eni)
        d_hi, d_lo = _eni_addr(plan, eni, v6)
        v6h, v6l = _pub_v6(rng, m)
        s_hi = np.where(v6, v6h, 0).astype(np.uint64)
        s_lo = np.where(v6, v6l, _pub_v4(rng, m))
        packets = rng.integers(1, 5, m)
        end = t_slot + rng.integers(0, SLOT_SECONDS, m)
        dur = np.where(packets == 1, 0, np.minimum(packets - 1, INTERVAL))
        parts.append(_part(
            m, eni=eni, src_hi=s_hi, src_lo=s_lo, dst_hi=d_hi, dst_lo=d_lo, sport=0, dport=0,
            proto=np.where(v6, 58, 1), packets=packets, bytes=packets * np.where(v6, 104, 84),
            start=np.maximum(end - dur, t0), end=end, action=np.where(rng.random(m) < 0.3, 0, 1), dir=0,
        ))

    # --- short exchanges: one record per direction (web, DNS, NTP) -------------------------
    m = n_pair
    if m:
        kind = rng.choice(3, m, p=[0.60, 0.25, 0.15])  # 0 web, 1 dns, 2 ntp
        web, dns, ntp = kind == 0, kind == 1, kind == 2
        lb = plan.lb_enis[rng.integers(0, len(plan.lb_enis), m)]
        host = plan.host_enis[rng.integers(0, len(plan.host_enis), m)]
        eni = np.where(web, lb, host)
        v6 = web & (rng.random(m) < 0.10)
        l_hi, l_lo = _eni_addr(plan, eni, v6)
        v6h, v6l = _pub_v6(rng, m)
        dns_ip, ntp_ip = _DNS_IPS, _NTP_IPS
        r_lo = np.where(
            web, _pub_v4(rng, m),
            np.where(dns, dns_ip[rng.integers(0, len(dns_ip), m)], ntp_ip[rng.integers(0, len(ntp_ip), m)]),
        )
        r_hi = np.where(v6, v6h, 0).astype(np.uint64)
        r_lo = np.where(v6, v6l, r_lo)
        eph = rng.integers(32768, 61000, m)
        l_port = np.where(
            web, np.where(rng.random(m) < 0.8, 443, 80), np.where(ntp & (rng.random(m) < 0.1), 123, eph)
        )
        r_port = np.where(web, rng.integers(1024, 65536, m), np.where(dns, 53, 123))
        proto = np.where(web, 6, 17)
        # inbound = remote -> local; for web the remote side initiates, for DNS/NTP the local side
        minb = np.where(v6, 60, 40)
        in_pk = np.where(web, rng.integers(3, 21, m), 1)
        in_b = np.where(
            web, np.maximum(minb * in_pk, np.rint(in_pk * rng.uniform(60, 400, m))),
            np.where(dns, rng.integers(80, 513, m), 76),
        )
        out_pk = np.where(web, rng.integers(2, 41, m), 1)
        out_b = np.where(
            web, np.maximum(minb * out_pk, np.rint(out_pk * rng.uniform(200, 1400, m))),
            np.where(dns, rng.integers(60, 101, m), 76),
        )
        end = t_slot + rng.integers(0, SLOT_SECONDS, m)
        start = np.maximum(end - np.where(web, rng.integers(0, 11, m), rng.integers(0, 2, m)), t0)
        parts.append(_part(
            m, eni=eni, src_hi=r_hi, src_lo=r_lo, dst_hi=l_hi, dst_lo=l_lo, sport=r_port, dport=l_port,
            proto=proto, packets=in_pk, bytes=in_b, start=start, end=end, dir=0,
            flags=np.where(web, 3, 0),
        ))
        parts.append(_part(
            m, eni=eni, src_hi=l_hi, src_lo=l_lo, dst_hi=r_hi, dst_lo=r_lo, sport=l_port, dport=r_port,
            proto=proto, packets=out_pk, bytes=out_b, start=start, end=end, dir=1, tpath=8,
            flags=np.where(web, 19, 0),
        ))
    return parts


# Hunt patterns (the reports' hunt and NAT cost find them), planted in the first flow log, inside its
# single-record budget so every count of the truth stays exact:
#   a beacon   one app host calls _HUNT_C2:443 every 60 s +-12 s (20 % jitter): request + response record
#   a scan     _HUNT_SCANNER knocks on 3389 of every ENI in turn, one 44-byte SYN, rejected
#   exfil      another app host uploads ~200 kB to _HUNT_DROP:443 every 5 minutes, ~200 MB in hour 14 of day 1
#   NAT to S3  an app host downloads ~50 MB from S3 (us-east-1, 52.216.0.0/15) through the NAT every 5
#              minutes: the instance <-> NAT legs and the NAT <-> S3 legs, on the NAT's ENI
_HUNT_C2, _HUNT_DROP, _HUNT_SCANNER = "185.220.101.47", "45.137.21.9", "45.155.205.99"
_HUNT_S3 = ["52.216.8.10", "52.216.24.66", "52.217.40.3", "52.217.97.140"]
_HUNT_EXFIL_HOUR = 14
_HUNT_MIN_RUNTS = 60  # a slot with fewer single-record lines gets no patterns
_HUNT_RECORDS = 10 + 2 + 1 + 4


def _v4(text: str) -> int:
    return int(ipaddress.IPv4Address(text))


def _hunt_roles(plan: _Plan) -> dict[str, int]:
    apps = plan.app_enis
    return {"beacon": int(apps[0]), "exfil": int(apps[1 % len(apps)]), "s3": int(apps[2 % len(apps)])}


def _pattern_rows(cfg: dict, plan: _Plan, rng: np.random.Generator, slot: int) -> list[dict]:
    t_slot = cfg["t0"] + slot * SLOT_SECONDS
    roles = _hunt_roles(plan)
    parts = []
    # beacon: 5 calls per 5-minute file
    host = roles["beacon"]
    h_lo = np.uint64(plan.eni_v4[host])
    c2 = np.uint64(_v4(_HUNT_C2))
    start = t_slot + 30 + 60 * np.arange(5) + rng.integers(-12, 13, 5)
    eph = rng.integers(32768, 61000, 5)
    req_b, resp_b = rng.integers(700, 900, 5), rng.integers(1200, 1600, 5)
    parts.append(_part(5, eni=host, src_hi=0, src_lo=h_lo, dst_hi=0, dst_lo=c2, sport=eph, dport=443, proto=6,
                       packets=5, bytes=req_b, start=start, end=start + 1, dir=1, tpath=8, flags=3))
    parts.append(_part(5, eni=host, src_hi=0, src_lo=c2, dst_hi=0, dst_lo=h_lo, sport=443, dport=eph, proto=6,
                       packets=4, bytes=resp_b, start=start, end=start + 1, dir=0, flags=19))
    # scan: two ENIs per file, in turn
    eni = (slot * 2 + np.arange(2)) % plan.n_eni
    at = t_slot + rng.integers(0, SLOT_SECONDS, 2)
    parts.append(_part(2, eni=eni, src_hi=0, src_lo=np.uint64(_v4(_HUNT_SCANNER)), dst_hi=0,
                       dst_lo=plan.eni_v4[eni], sport=rng.integers(1024, 65536, 2), dport=3389, proto=6,
                       packets=1, bytes=44, start=at, end=at, action=1, flags=2, dir=0))
    # exfiltration: a small upload every file, a large one in the burst hour of the first day
    host = roles["exfil"]
    burst = slot // SLOTS_PER_TASK == _HUNT_EXFIL_HOUR
    pk = 150_000 if burst else 150
    at = t_slot + int(rng.integers(0, 200))
    parts.append(_part(1, eni=host, src_hi=0, src_lo=np.uint64(plan.eni_v4[host]), dst_hi=0,
                       dst_lo=np.uint64(_v4(_HUNT_DROP)), sport=int(rng.integers(32768, 61000)), dport=443,
                       proto=6, packets=pk, bytes=pk * int(rng.integers(1300, 1400)), start=at, end=at + 59,
                       dir=1, tpath=8, flags=3))
    # NAT to S3: instance -> NAT -> S3 and back, all on the NAT's ENI
    nat, host = plan.nat, roles["s3"]
    n_lo, a_lo = np.uint64(plan.eni_v4[nat]), np.uint64(plan.eni_v4[host])
    s3 = np.uint64(_v4(_HUNT_S3[slot % len(_HUNT_S3)]))
    up, down = int(rng.integers(3_000, 4_000)), int(rng.integers(35_000, 40_000))  # packets
    at = t_slot + int(rng.integers(0, 200))
    a_port, n_port = int(rng.integers(32768, 61000)), int(rng.integers(1024, 65536))
    legs = [  # (src, dst, psrc, pdst, sport, dport, packets, bytes per packet, direction)
        (a_lo, n_lo, a_lo, s3, a_port, 443, up, 120, 0),  # instance -> NAT (pkt-dstaddr: S3)
        (n_lo, a_lo, s3, a_lo, 443, a_port, down, 1400, 1),  # NAT -> instance (pkt-srcaddr: S3)
        (n_lo, s3, n_lo, s3, n_port, 443, up, 120, 1),  # NAT -> S3
        (s3, n_lo, s3, n_lo, 443, n_port, down, 1400, 0),  # S3 -> NAT
    ]
    for src, dst, psrc, pdst, sp, dp, pkts, bpp, d in legs:
        parts.append(_part(1, eni=nat, src_hi=0, src_lo=src, dst_hi=0, dst_lo=dst, psrc_hi=0, psrc_lo=psrc,
                           pdst_hi=0, pdst_lo=pdst, sport=sp, dport=dp, proto=6, packets=pkts, bytes=pkts * bpp,
                           start=at, end=at + 59, dir=d, tpath=8, flags=3))
    return parts


NACL_HOURS = (3, 11, 19)  # version 11: a network ACL drops a ping's reply in the first file of these hours


def _nacl_rows(cfg: dict, plan: _Plan, rng: np.random.Generator, slot: int) -> list[dict]:
    """AWS's own example of a network ACL at work: a ping from an Internet address ACCEPTed in on an app
    interface, its reply REJECTed on the way out (security groups are stateful; only an ACL's outbound rule
    drops a reply). Two records, the peer new each time."""
    t = cfg["t0"] + slot * SLOT_SECONDS + int(rng.integers(0, 200))
    eni = int(plan.app_enis[-1])
    peer = np.uint64(_pub_v4(rng, 1)[0])
    here = np.uint64(plan.eni_v4[eni])
    ping = _part(1, eni=eni, src_hi=0, src_lo=peer, dst_hi=0, dst_lo=here, sport=0, dport=0, proto=1, packets=4,
                 bytes=336, start=t, end=t + 3, dir=0)
    reply = _part(1, eni=eni, src_hi=0, src_lo=here, dst_hi=0, dst_lo=peer, sport=0, dport=0, proto=1, packets=4,
                  bytes=336, start=t, end=t + 3, dir=1, action=1, tpath=8)
    return [ping, reply]


_KIND_NAMES = {K_NAT: "nat", K_LB: "load_balancer", K_DB: "database", K_BASTION: "bastion", K_APP: "app"}


def interfaces(seed: int = 7, accounts: int = 3, regions: int = 2, log_format: str = "default") -> list[dict]:
    """The interfaces generate() gives each flow log with these arguments (the same seed, accounts and
    regions), for creating them in an EC2 (moto) first: per flow log its account, region, and per
    interface (in order) its kind, subnet index, IPv4 address, IPv6 address or None. generate() takes the
    ids the EC2 gave back as interface_ids / instance_ids {flow log index: [id per interface]}."""
    cfg = _make_config(0, seed, "2024-06-01", 1, accounts, regions, "default", False, "text", log_format, 6)
    out = []
    for fl, info in enumerate(cfg["flow_logs"]):
        plan = _Plan.__new__(_Plan)  # the interfaces only: the same random stream _Plan.__init__ starts with
        plan.fl, plan.account, plan.region = fl, info["account"], info["region"]
        plan.version = FORMATS[info["format"]][0]
        plan._make_enis(seed, _rng(seed, fl, 0))
        enis = []
        for j in range(plan.n_eni):
            v6 = None
            if plan.eni_v6_hi[j]:
                v6 = _v6_str(plan.eni_v6_hi[j : j + 1], plan.eni_v6_lo[j : j + 1])[0]
            enis.append(
                {
                    "kind": _KIND_NAMES[int(plan.eni_kind[j])],
                    "subnet": int(plan.subnet[j]),
                    "address": str(ipaddress.IPv4Address(int(plan.eni_v4[j]))),
                    "ipv6": v6,
                    "generated_id": plan.eni_ids[j],
                }
            )
        out.append({"flow_log": fl, "account": info["account"], "region": info["region"], "interfaces": enis})
    return out


def hunt_patterns(plan: _Plan) -> dict[str, Any]:
    """What _pattern_rows plants, for the truth file and the demo."""
    roles = _hunt_roles(plan)
    ip = {k: str(ipaddress.IPv4Address(int(plan.eni_v4[v]))) for k, v in roles.items()}
    return {
        "flow_log_id": plan.flow_log_id,
        "region": plan.region,
        "beacon": {"host": ip["beacon"], "peer": _HUNT_C2, "port": 443, "interval_s": 60, "jitter_s": 12},
        "scan": {"source": _HUNT_SCANNER, "port": 3389, "targets": int(plan.n_eni)},
        "exfiltration": {"host": ip["exfil"], "peer": _HUNT_DROP, "port": 443, "hour_utc": _HUNT_EXFIL_HOUR},
        "nat": {
            "interface_id": plan.eni_ids[plan.nat],
            "address": str(ipaddress.IPv4Address(int(plan.eni_v4[plan.nat]))),
            "host": ip["s3"],
            "s3": list(_HUNT_S3),
        },
    }


def _status_rows(cfg: dict, plan: _Plan, rng: np.random.Generator, slot: int, n: int, status: int):
    if n == 0:
        return []
    t0 = cfg["t0"]
    end = t0 + slot * SLOT_SECONDS + rng.integers(0, SLOT_SECONDS, n)
    start = np.maximum(end - rng.integers(55, INTERVAL + 1, n), t0)
    eni = rng.integers(0, plan.n_eni, n)
    z = np.zeros(n, dtype=np.uint64)
    return [_part(n, eni=eni, src_hi=z, src_lo=z, dst_hi=z, dst_lo=z, start=start, end=end, status=status)]


def _build_slot(cfg: dict, plan: _Plan, slot: int) -> dict | None:
    rng = _rng(cfg["seed"], plan.fl, 1, slot)
    parts = _session_rows(plan, rng, slot)
    runts = int(plan.runt_per_slot[slot])
    if plan.fl == 0 and runts >= _HUNT_MIN_RUNTS:
        parts += _pattern_rows(cfg, plan, rng, slot)
        runts -= _HUNT_RECORDS
    hour = slot // SLOTS_PER_TASK
    if plan.version >= 11 and plan.fl == 0 and slot % SLOTS_PER_TASK == 0 and hour % 24 in NACL_HOURS and runts >= 2:
        parts += _nacl_rows(cfg, plan, _rng(cfg["seed"], plan.fl, 7, slot), slot)
        runts -= 2  # the records stay exactly the number asked for
    parts += _runt_rows(cfg, plan, rng, slot, runts)
    parts += _status_rows(cfg, plan, rng, slot, int(plan.nodata_per_slot[slot]), 1)
    parts += _status_rows(cfg, plan, rng, slot, int(plan.skip_per_slot[slot]), 2)
    if not parts:
        return None
    cols = {name: np.concatenate([p[name] for p in parts]) for name in _COLS}
    if len(cols["start"]) == 0:
        return None
    # AWS files are not sorted; we order by start (stable) with a random tie-break via shuffle
    perm = rng.permutation(len(cols["start"]))
    order = perm[np.argsort(cols["start"][perm], kind="stable")]
    return {k: v[order] for k, v in cols.items()}


def _field_strings(plan: _Plan, c: dict) -> tuple[list[str], list[np.ndarray]]:
    """Return (run names, object columns) for the plan's format; ENI-constant runs pre-joined."""
    t = _tables()
    n = len(c["start"])
    ok = c["status"] == 0
    cache: dict[str, np.ndarray] = {}

    def src():
        if "src" not in cache:
            cache["src"] = _addr_str(c["src_hi"], c["src_lo"])
        return cache["src"]

    def dst():
        if "dst" not in cache:
            cache["dst"] = _addr_str(c["dst_hi"], c["dst_lo"])
        return cache["dst"]

    def paddr(which: str):
        base = src() if which == "src" else dst()
        hi, lo = c["p" + which + "_hi"], c["p" + which + "_lo"]
        diff = np.flatnonzero((hi != c[which + "_hi"]) | (lo != c[which + "_lo"]))
        out = base.copy()
        if len(diff):
            out[diff] = _addr_str(hi[diff], lo[diff])
        return out

    makers = {
        "srcaddr": src, "dstaddr": dst,
        "pkt-srcaddr": lambda: paddr("src"), "pkt-dstaddr": lambda: paddr("dst"),
        "srcport": lambda: t["num"][c["sport"]], "dstport": lambda: t["num"][c["dport"]],
        "protocol": lambda: t["num"][c["proto"]], "packets": lambda: _int_str(c["packets"]),
        "bytes": lambda: _int_str(c["bytes"]), "start": lambda: _range_str(c["start"]),
        "end": lambda: _range_str(c["end"]), "action": lambda: ACTIONS[c["action"]],
        "log-status": lambda: STATUSES[c["status"]], "tcp-flags": lambda: t["num"][c["flags"]],
        "type": lambda: np.where(c["src_hi"] != 0, "IPv6", "IPv4").astype(object),
        "flow-direction": lambda: DIRECTIONS[c["dir"]],
        "traffic-path": lambda: t["tpath"][c["tpath"] + 1],
    }
    if plan.version >= 8:
        v11 = v11_values(plan, c)
        makers.update({f: (lambda f=f: v11[f]) for f in v11})
        for f in V11_ENI_FIELDS:
            makers[f] = lambda f=f: np.array(plan.eni_attr[f], dtype=object)[c["eni"]]
    names: list[str] = []
    cols: list[np.ndarray] = []
    fields = plan.fields
    i = 0
    bad = np.flatnonzero(~ok)
    while i < len(fields):
        f = fields[i]
        if f in ENI_CONST_FIELDS:
            j = i
            while j < len(fields) and fields[j] in ENI_CONST_FIELDS:
                j += 1
            run = fields[i:j]
            per_eni = np.array(
                [" ".join(plan.eni_attr[g][e] for g in run) for e in range(plan.n_eni)], dtype=object
            )
            names.append(" ".join(run))
            cols.append(per_eni[c["eni"]])
            i = j
            continue
        col = makers[f]()
        if f not in META_FIELDS and len(bad):
            col = col.copy()  # never patch a cached / shared column in place
            col[bad] = "-"
        names.append(f)
        cols.append(col)
        i += 1
    assert all(len(x) == n for x in cols)
    return names, cols


def _eni_of(plan: _Plan, hi: np.ndarray, lo: np.ndarray) -> np.ndarray:
    """The index of the VPC interface that holds each IPv4 address, -1 for any other address."""
    pos = np.minimum(np.searchsorted(plan.v4_sorted, lo), len(plan.v4_sorted) - 1)
    hit = (hi == 0) & (plan.v4_sorted[pos] == lo)
    return np.where(hit, plan.v4_order[pos], -1)


def v11_values(plan: _Plan, c: dict) -> dict[str, np.ndarray]:
    """The per-record version 11 (and v8/v10) values of a slot's rows, '-' where AWS writes '-':

    * reject-reason: BPA on a REJECT from an Internet address on a flow log whose VPC blocks public access
      (every other flow log), else '-';
    * encryption-status on an ACCEPT: 2 for TLS/SSH ports, 1 between two interfaces of the VPC (Nitro), 3
      both, else 0 (cleartext); '-' on a REJECT;
    * the next hop of outgoing records (flow-direction egress): the VPC interface the destination is, or the
      NAT gateway's interface for an Internet destination of an app or database interface; '-' otherwise.
    NODATA/SKIPDATA rows are '-' throughout (blanked by the caller)."""
    n = len(c["start"])
    ok, accept = c["status"] == 0, c["action"] == 0
    src_eni, dst_eni = _eni_of(plan, c["src_hi"], c["src_lo"]), _eni_of(plan, c["dst_hi"], c["dst_lo"])
    internet_src = (c["src_hi"] != 0) | ((c["src_lo"].astype(np.int64) >> 16) != plan.vpc_net)
    internet_dst = (c["dst_hi"] != 0) | ((c["dst_lo"].astype(np.int64) >> 16) != plan.vpc_net)
    reason = np.full(n, "-", dtype=object)
    if plan.bpa:
        reason[ok & ~accept & internet_src] = "BPA"
    tls = np.isin(c["sport"], _APP_ENCRYPTED_PORTS) | np.isin(c["dport"], _APP_ENCRYPTED_PORTS)
    inside = (src_eni >= 0) & (dst_eni >= 0)
    status = np.where(inside & tls, "3", np.where(tls, "2", np.where(inside, "1", "0"))).astype(object)
    status[~accept] = "-"
    egress = c["dir"] == 1
    kind = plan.eni_kind[c["eni"]]
    hop = np.where(
        egress & (dst_eni >= 0),
        dst_eni,
        np.where(egress & internet_dst & ((kind == K_APP) | (kind == K_DB)), plan.nat, -1),
    )
    out = {"reject-reason": reason, "encryption-status": status}
    has = hop >= 0
    idx = np.where(has, hop, 0)
    for field, values in (
        ("next-hop-interface-id", plan.eni_ids),
        ("next-hop-subnet-id", plan.eni_attr["subnet-id"]),
        ("next-hop-az-id", plan.eni_attr["az-id"]),
        ("next-hop-vpc-id", plan.eni_attr["vpc-id"]),
        ("next-hop-interface-type", plan.eni_attr["interface-type"]),
    ):
        out[field] = np.where(has, np.array(values, dtype=object)[idx], "-").astype(object)
    return out


def _text_bytes(plan: _Plan, c: dict) -> bytes:
    _, cols = _field_strings(plan, c)
    lists = [x.tolist() for x in cols]
    body = "\n".join(map(" ".join, zip(*lists)))
    return (plan.header + "\n" + body + "\n").encode("ascii")


def _parquet_table(plan: _Plan, c: dict):
    import pyarrow as pa

    n = len(c["start"])
    bad = c["status"] != 0
    names, cols = _field_strings(plan, c)
    by_name: dict[str, np.ndarray] = {}
    for nm, col in zip(names, cols):
        by_name[nm] = col
    raw_int = {
        "srcport": c["sport"], "dstport": c["dport"], "protocol": c["proto"], "tcp-flags": c["flags"],
        "traffic-path": c["tpath"], "packets": c["packets"], "bytes": c["bytes"], "start": c["start"],
        "end": c["end"], "version": np.full(n, plan.version),
    }
    arrays, fields = [], []
    for f in plan.fields:
        name = f.replace("-", "_")
        if f in PARQUET_INT32 or f in PARQUET_INT64:
            typ = pa.int32() if f in PARQUET_INT32 else pa.int64()
            mask = np.zeros(n, dtype=bool) if f in META_FIELDS else bad.copy()
            if f == "traffic-path":
                mask |= c["tpath"] < 0
            arr = pa.array(raw_int[f].astype(np.int32 if f in PARQUET_INT32 else np.int64), type=typ,
                           mask=mask if mask.any() else None)
        else:
            if f in ENI_CONST_FIELDS:
                vals = np.array(plan.eni_attr[f], dtype=object)[c["eni"]]
                vals = np.where(vals == "-", None, vals)
            else:
                vals = by_name[f].copy()
                if f not in META_FIELDS:
                    vals[bad] = None
                if f in V11_FIELDS[len(CUSTOM_FIELDS):]:  # '-' in text is a null in Parquet
                    vals = np.where(vals == "-", None, vals)
            arr = pa.array(vals, type=pa.string())
        arrays.append(arr)
        fields.append(pa.field(name, arr.type))
    return pa.Table.from_arrays(arrays, schema=pa.schema(fields))


# --------------------------------------------------------------------------------------------
# paths
# --------------------------------------------------------------------------------------------

def _file_path(cfg: dict, plan: _Plan, slot: int) -> str:
    ts = cfg["t0"] + slot * SLOT_SECONDS
    d = dt.datetime.fromtimestamp(ts, tz=dt.timezone.utc)
    y, mo, da, hh = f"{d.year:04d}", f"{d.month:02d}", f"{d.day:02d}", f"{d.hour:02d}"
    acct, reg = plan.account, plan.region
    if cfg["layout"] == "hive":
        parts = [
            "AWSLogs", f"aws-account-id={acct}", "aws-service=vpcflowlogs", f"aws-region={reg}",
            f"year={y}", f"month={mo}", f"day={da}",
        ]
        if cfg["hourly"]:
            parts.append(f"hour={hh}")
    else:
        parts = ["AWSLogs", acct, "vpcflowlogs", reg, y, mo, da]
        if cfg["hourly"]:
            parts.append(hh)
    stamp = d.strftime("%Y%m%dT%H%MZ")
    h8 = _hexid(cfg["seed"], plan.flow_log_id, stamp, n=8)
    ext = "log.parquet" if cfg["output"] == "parquet" else "log.gz"
    name = f"{acct}_vpcflowlogs_{reg}_{plan.flow_log_id}_{stamp}_{h8}.{ext}"
    return os.path.join(*parts, name)


# --------------------------------------------------------------------------------------------
# a Transit Gateway flow log (generate(tgw=True))
# --------------------------------------------------------------------------------------------

# AWS's default format of a Transit Gateway flow log (version 6; "Transit Gateway Flow Logs records").
TGW_FIELDS = [
    "version", "resource-type", "account-id", "tgw-id", "tgw-attachment-id", "tgw-src-vpc-account-id",
    "tgw-dst-vpc-account-id", "tgw-src-vpc-id", "tgw-dst-vpc-id", "tgw-src-subnet-id", "tgw-dst-subnet-id",
    "tgw-src-eni", "tgw-dst-eni", "tgw-src-az-id", "tgw-dst-az-id", "tgw-pair-attachment-id", "srcaddr",
    "dstaddr", "srcport", "dstport", "protocol", "packets", "bytes", "start", "end", "log-status", "type",
    "packets-lost-no-route", "packets-lost-blackhole", "packets-lost-mtu-exceeded", "packets-lost-ttl-expired",
    "tcp-flags", "region", "flow-direction", "pkt-src-aws-service", "pkt-dst-aws-service",
]  # fmt: skip
TGW_CAUSES = ("no-route", "blackhole", "mtu-exceeded", "ttl-expired")
TGW_RECORDS_PER_HOUR = 24


def _tgw_logs(cfg: dict, out_dir: str) -> dict:
    """One Transit Gateway's flow log in the first flow log's account and region: two VPC attachments, one
    object an hour of TGW_RECORDS_PER_HOUR records of traffic between the two VPCs, each seen at the
    attachment it entered by; each cause of loss on about one record in eight (at most the record's
    packets). Returns the truth: objects, records, packets and bytes, packets lost per cause and per
    attachment and cause."""
    from types import SimpleNamespace

    rng = _rng(cfg["seed"], 6006)
    first = cfg["flow_logs"][0]
    acct, reg = first["account"], first["region"]
    tgw_id = "tgw-" + _hexid(cfg["seed"], "tgw")
    att = ["tgw-attach-" + _hexid(cfg["seed"], "attach", i) for i in range(2)]
    vpc = ["vpc-" + _hexid(cfg["seed"], "tgw-vpc", i) for i in range(2)]
    subnet = ["subnet-" + _hexid(cfg["seed"], "tgw-subnet", i) for i in range(2)]
    eni = ["eni-" + _hexid(cfg["seed"], "tgw-eni", i) for i in range(2)]
    short = f"{reg.split('-')[0]}{_REGION_WORDS.get(reg.split('-')[1], 'x')}{reg.split('-')[-1]}"
    az = [f"{short}-az{i + 1}" for i in range(2)]
    plan = SimpleNamespace(account=acct, region=reg, flow_log_id="fl-" + _hexid(cfg["seed"], "tgw-log"))
    by_attachment = {a: dict.fromkeys(TGW_CAUSES, 0) for a in att}
    truth: dict = {
        "tgw_id": tgw_id, "attachments": att, "files": 0, "records": 0, "packets": 0, "bytes": 0,
        "packets_lost": dict.fromkeys(TGW_CAUSES, 0), "packets_lost_by_attachment": by_attachment,
    }  # fmt: skip
    n = TGW_RECORDS_PER_HOUR
    for hour in range(cfg["days"] * 24):
        t = cfg["t0"] + hour * 3600
        src = rng.integers(0, 2, n)
        dst = 1 - src
        packets = rng.integers(1, 200, n)
        nbytes = packets * rng.integers(60, 1500, n)
        start = t + np.sort(rng.integers(0, 3540, n))
        lost = {c: np.where(rng.random(n) < 0.125, rng.integers(1, packets + 1), 0) for c in TGW_CAUSES}
        def const(value: str) -> np.ndarray:
            return np.full(n, value, dtype=object)

        def pick(values: list[str], side: np.ndarray) -> np.ndarray:
            return np.array(values, dtype=object)[side]

        def addr(side: np.ndarray) -> np.ndarray:
            hosts = zip(side, rng.integers(0, 256, n), rng.integers(1, 255, n))
            return np.array([f"10.{20 + v}.{x}.{y}" for v, x, y in hosts], dtype=object)

        cols = {
            "version": const("6"), "resource-type": const("TransitGateway"), "account-id": const(acct),
            "tgw-id": const(tgw_id), "tgw-attachment-id": pick(att, src), "tgw-src-vpc-account-id": const(acct),
            "tgw-dst-vpc-account-id": const(acct), "tgw-src-vpc-id": pick(vpc, src), "tgw-dst-vpc-id": pick(vpc, dst),
            "tgw-src-subnet-id": pick(subnet, src), "tgw-dst-subnet-id": pick(subnet, dst),
            "tgw-src-eni": pick(eni, src), "tgw-dst-eni": pick(eni, dst), "tgw-src-az-id": pick(az, src),
            "tgw-dst-az-id": pick(az, dst), "tgw-pair-attachment-id": pick(att, dst),
            "srcaddr": addr(src), "dstaddr": addr(dst), "srcport": _int_str(rng.integers(32768, 61000, n)),
            "dstport": _int_str(rng.choice([443, 5432, 6379, 8080], n)), "protocol": const("6"),
            "packets": _int_str(packets), "bytes": _int_str(nbytes), "start": _int_str(start),
            "end": _int_str(start + rng.integers(0, 60, n)), "log-status": const("OK"), "type": const("IPv4"),
            **{f"packets-lost-{c}": _int_str(lost[c]) for c in TGW_CAUSES},
            "tcp-flags": _int_str(rng.choice([2, 18, 19, 3], n)), "region": const(reg),
            "flow-direction": const("ingress"), "pkt-src-aws-service": const("-"), "pkt-dst-aws-service": const("-"),
        }  # fmt: skip
        path = os.path.join(out_dir, _file_path(cfg, plan, hour * SLOTS_PER_TASK))
        os.makedirs(os.path.dirname(path), exist_ok=True)
        if cfg["output"] == "parquet":
            import pyarrow as pa
            import pyarrow.parquet as pq

            table = pa.table({k.replace("-", "_"): [None if v == "-" else v for v in cols[k]] for k in TGW_FIELDS})
            pq.write_table(table, path, compression="gzip")
        else:
            lines = [" ".join(TGW_FIELDS)] + [" ".join(row) for row in zip(*(cols[k] for k in TGW_FIELDS))]
            with open(path, "wb") as fh:
                text = ("\n".join(lines) + "\n").encode()
                fh.write(gzip.compress(text, compresslevel=cfg["compresslevel"], mtime=0))
        truth["files"] += 1
        truth["records"] += n
        truth["packets"] += int(packets.sum())
        truth["bytes"] += int(nbytes.sum())
        for c in TGW_CAUSES:
            truth["packets_lost"][c] += int(lost[c].sum())
            for i, a in enumerate(att):
                truth["packets_lost_by_attachment"][a][c] += int(lost[c][src == i].sum())
    return truth


# --------------------------------------------------------------------------------------------
# worker task: one flow log x one hour
# --------------------------------------------------------------------------------------------

_WORKER: dict = {}


def _init_worker(cfg: dict, out_dir: str) -> None:
    _WORKER["cfg"] = cfg
    _WORKER["out"] = out_dir


def _run_task(task: tuple[int, int, int]) -> dict:
    fl, lo, hi = task
    cfg, out_dir = _WORKER["cfg"], _WORKER["out"]
    plan = _get_plan(cfg, fl)
    t0 = cfg["t0"]
    keys: list[tuple] = []
    res = {
        "fl": fl, "files": 0, "records": 0, "disk_bytes": 0, "ok": 0, "nodata": 0, "skipdata": 0,
        "accept": 0, "reject": 0, "packets": 0, "bytes": 0,
        "by_day": np.zeros(cfg["days"] + 1, dtype=np.int64),
        "v11": {},
    }
    for slot in range(lo, hi):
        c = _build_slot(cfg, plan, slot)
        if c is None:
            continue
        rel = _file_path(cfg, plan, slot)
        path = os.path.join(out_dir, rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        if cfg["output"] == "parquet":
            import pyarrow.parquet as pq

            pq.write_table(_parquet_table(plan, c), path, compression="gzip")
        else:
            data = gzip.compress(_text_bytes(plan, c), compresslevel=cfg["compresslevel"], mtime=0)
            with open(path, "wb") as fh:
                fh.write(data)
        res["disk_bytes"] += os.path.getsize(path)
        n = len(c["start"])
        res["files"] += 1
        res["records"] += n
        st = c["status"]
        res["nodata"] += int((st == 1).sum())
        res["skipdata"] += int((st == 2).sum())
        res["by_day"] += np.bincount((c["start"] - t0) // 86400, minlength=cfg["days"] + 1)[: cfg["days"] + 1]
        ok = st == 0
        act = c["action"][ok]
        res["ok"] += int(ok.sum())
        res["reject"] += int(act.sum())
        res["accept"] += int(len(act) - act.sum())
        res["packets"] += int(c["packets"][ok].sum())
        res["bytes"] += int(c["bytes"][ok].sum())
        k0 = (
            (c["eni"][ok].astype(np.uint64) << np.uint64(41))
            | (c["proto"][ok].astype(np.uint64) << np.uint64(33))
            | (act.astype(np.uint64) << np.uint64(32))
            | (c["sport"][ok].astype(np.uint64) << np.uint64(16))
            | c["dport"][ok].astype(np.uint64)
        )
        if plan.version >= 11:
            _v11_truth(res["v11"], plan, c, ok)
        hour = ((c["start"][ok] - t0) // 3600).astype(np.uint32)
        keys.append((k0, c["src_hi"][ok], c["src_lo"][ok], c["dst_hi"][ok], c["dst_lo"][ok], hour))
    if keys:
        res["keys"] = tuple(np.concatenate([k[i] for k in keys]) for i in range(6))
    else:
        res["keys"] = tuple(np.empty(0, dtype=d) for d in (np.uint64,) * 5 + (np.uint32,))
    return res


def _v11_truth(acc: dict, plan: _Plan, c: dict, ok: np.ndarray) -> None:
    """Add a slot's version 11 figures to acc: cross-AZ bytes (accepted records whose next hop is in another
    AZ), rejected records per reject-reason, accepted bytes per encryption-status."""
    v = v11_values(plan, c)
    az = np.array(plan.eni_attr["az-id"], dtype=object)[c["eni"]]
    hop = v["next-hop-az-id"]
    accept = ok & (c["action"] == 0)
    cross = accept & (hop != "-") & (hop != az)
    acc["cross_az_bytes"] = acc.get("cross_az_bytes", 0) + int(c["bytes"][cross].sum())
    for reason in ("BPA", "-"):
        key = f"rejected_records_{'no_reason' if reason == '-' else reason}"
        acc[key] = acc.get(key, 0) + int((ok & (c["action"] == 1) & (v["reject-reason"] == reason)).sum())
    for status in ("0", "1", "2", "3"):
        key = f"accepted_bytes_encryption_{status}"
        acc[key] = acc.get(key, 0) + int(c["bytes"][accept & (v["encryption-status"] == status)].sum())
    # outgoing REJECTs: only the planted responses a network ACL dropped (_nacl_rows) are, in this generator
    dropped = ok & (c["action"] == 1) & (c["dir"] == 1)
    pairs = len(set(zip(c["eni"][dropped].tolist(), c["dst_lo"][dropped].tolist(), c["dst_hi"][dropped].tolist())))
    acc["nacl_dropped_responses"] = acc.get("nacl_dropped_responses", 0) + int(dropped.sum())
    acc["nacl_pairs"] = acc.get("nacl_pairs", 0) + pairs


def _key_stats(k0, shi, slo, dhi, dlo, hour) -> dict:
    """Exact distinct/runt counts over one flow log's OK records (keys never span flow logs)."""
    n = len(k0)
    zero = {"keys": 0, "runt_accept": 0, "runt_reject": 0, "multi_keys": 0, "multi_records": 0}
    if n == 0:
        return {"all": dict(zero), "w1h": dict(zero)}
    order = np.lexsort((hour, dlo, dhi, slo, shi, k0))
    new_key = np.zeros(n, dtype=bool)
    new_key[0] = True
    for col in (k0, shi, slo, dhi, dlo):
        s = col[order]
        new_key[1:] |= s[1:] != s[:-1]
        del s
    s = hour[order]
    new_win = new_key.copy()
    new_win[1:] |= s[1:] != s[:-1]
    del s
    reject = ((k0[order] >> np.uint64(32)) & np.uint64(1)).astype(bool)
    out = {}
    for name, flags in (("all", new_key), ("w1h", new_win)):
        starts = np.flatnonzero(flags)
        counts = np.diff(np.append(starts, n))
        runt = counts == 1
        rej = reject[starts]
        out[name] = {
            "keys": int(len(starts)),
            "runt_accept": int((runt & ~rej).sum()),
            "runt_reject": int((runt & rej).sum()),
            "multi_keys": int((~runt).sum()),
            "multi_records": int(counts[~runt].sum()),
        }
    return out


# --------------------------------------------------------------------------------------------
# driver
# --------------------------------------------------------------------------------------------

def generate(
    out_dir: str,
    records: int = 100_000,
    seed: int = 7,
    start: str = "2024-06-01",
    days: int = 1,
    accounts: int = 3,
    regions: int = 2,
    layout: str = "default",
    hourly: bool = False,
    output: str = "text",
    log_format: str = "default",
    workers: int = 2,
    quiet: bool = True,
    compresslevel: int = 6,
    overwrite: bool = False,
    interface_ids: dict[int, list[str]] | None = None,
    instance_ids: dict[int, list[str]] | None = None,
    tgw: bool = False,
) -> dict:
    """Generate the flow logs under ``out_dir`` and return (and write) the ground truth. interface_ids /
    instance_ids: {flow log index: ids, one per interface of interfaces()} to use instead of made-up ones.
    tgw: a Transit Gateway's flow log too (_tgw_logs): its objects and records are counted in the truth's
    files and records, the rest of its figures under "tgw" (data_records, packets, bytes and the key
    figures stay those of the VPC flow logs)."""
    t_begin = time.time()
    cfg = _make_config(records, seed, start, days, accounts, regions, layout, hourly, output,
                       log_format, compresslevel)
    for fl, info in enumerate(cfg["flow_logs"]):
        if interface_ids and interface_ids.get(fl):
            info["eni_ids"] = list(interface_ids[fl])
        if instance_ids and instance_ids.get(fl):
            info["instance_ids"] = list(instance_ids[fl])
    _PLAN_CACHE.clear()
    out_dir = os.path.abspath(out_dir)
    aws = os.path.join(out_dir, "AWSLogs")
    if os.path.exists(aws) and os.listdir(aws):
        if not overwrite:
            raise FileExistsError(f"{aws} is not empty (use overwrite=True / --overwrite)")
        shutil.rmtree(aws)
    os.makedirs(out_dir, exist_ok=True)
    if output == "parquet":
        import pyarrow  # noqa: F401  (fail early if missing)

    n_fl = len(cfg["flow_logs"])
    hours = cfg["n_slots"] // SLOTS_PER_TASK
    tasks = [(fl, h * SLOTS_PER_TASK, (h + 1) * SLOTS_PER_TASK) for fl in range(n_fl) for h in range(hours)]

    tot = {k: 0 for k in ("files", "records", "disk_bytes", "ok", "nodata", "skipdata", "accept",
                          "reject", "packets", "bytes")}
    by_day = np.zeros(days + 1, dtype=np.int64)
    v11_truth: dict[str, int] = {}
    agg = {w: {"keys": 0, "runt_accept": 0, "runt_reject": 0, "multi_keys": 0, "multi_records": 0}
           for w in ("all", "w1h")}
    pending: list[tuple] = []
    pending_fl = -1

    def flush():
        if not pending:
            return
        cols = [np.concatenate([p[i] for p in pending]) for i in range(6)]
        pending.clear()
        st = _key_stats(*cols)
        for w in agg:
            for k in agg[w]:
                agg[w][k] += st[w][k]

    def log(msg: str) -> None:
        if not quiet:
            print(msg, flush=True)

    next_pct = 10
    done = 0

    def consume(res: dict) -> None:
        nonlocal pending_fl, next_pct, done
        if res["fl"] != pending_fl:
            flush()
            pending_fl = res["fl"]
        pending.append(res["keys"])
        for k in tot:
            tot[k] += res[k]
        for k, x in res["v11"].items():
            v11_truth[k] = v11_truth.get(k, 0) + x
        by_day[:] += res["by_day"]
        done += 1
        pct = 100 * done // len(tasks)
        if pct >= next_pct:
            log(f"[{pct:3d}%] {tot['files']} files, {tot['records']:,} records, "
                f"{tot['disk_bytes'] / 1e6:,.1f} MB, {time.time() - t_begin:.1f} s")
            while next_pct <= pct:
                next_pct += 10

    workers = max(1, int(workers))
    if workers == 1 or len(tasks) == 1:
        _init_worker(cfg, out_dir)
        for task in tasks:
            consume(_run_task(task))
        _PLAN_CACHE.clear()
    else:
        methods = mp.get_all_start_methods()
        ctx = mp.get_context("fork" if "fork" in methods else "spawn")
        with ctx.Pool(workers, initializer=_init_worker, initargs=(cfg, out_dir)) as pool:
            for res in pool.imap(_run_task, tasks, chunksize=1):
                consume(res)
    flush()
    plan0 = _get_plan(cfg, 0)
    planted = bool(len(plan0.runt_per_slot)) and int(plan0.runt_per_slot.max()) >= _HUNT_MIN_RUNTS
    patterns = hunt_patterns(plan0) if planted else None
    _PLAN_CACHE.clear()

    day0 = dt.date.fromisoformat(start)
    by_date = {}
    for i, v in enumerate(by_day.tolist()):
        if v:
            by_date[(day0 + dt.timedelta(days=i)).isoformat()] = int(v)
    ok = tot["ok"]
    truth = {
        "seed": seed,
        "records": tot["records"],
        "files": tot["files"],
        "data_records": ok,
        "nodata": tot["nodata"],
        "skipdata": tot["skipdata"],
        "by_action": {"ACCEPT": tot["accept"], "REJECT": tot["reject"]},
        "packets": tot["packets"],
        "bytes": tot["bytes"],
        "flow_keys": agg["all"]["keys"],
        "runt_keys_by_action": {"ACCEPT": agg["all"]["runt_accept"], "REJECT": agg["all"]["runt_reject"]},
        "records_in_multi_record_keys": agg["all"]["multi_records"],
        "multi_record_keys": agg["all"]["multi_keys"],
        "runt_record_fraction": round((ok - agg["all"]["multi_records"]) / ok, 6) if ok else 0.0,
        "window_1h": {
            "flow_keys": agg["w1h"]["keys"],
            "runt_keys_by_action": {"ACCEPT": agg["w1h"]["runt_accept"], "REJECT": agg["w1h"]["runt_reject"]},
            "records_in_multi_record_keys": agg["w1h"]["multi_records"],
            "multi_record_keys": agg["w1h"]["multi_keys"],
        },
        "by_date": by_date,
        "hunt_patterns": patterns,
        "v11": v11_truth,  # empty unless log_format v11
        "log_format": log_format,
        "layout": layout,
        "hourly": hourly,
        "output": output,
        "time_range": {"start": cfg["t0"], "end": cfg["t0"] + days * 86400},
        "flow_logs": [
            {"account_id": f["account"], "region": f["region"], "flow_log_id": f["flow_log_id"],
             "format": f["format"], "version": FORMATS[f["format"]][0],
             "fields": FORMATS[f["format"]][1], "records": f["records"]}
            for f in cfg["flow_logs"]
        ],
        "args": {
            "records": records, "seed": seed, "start": start, "days": days, "accounts": accounts,
            "regions": regions, "layout": layout, "hourly": hourly, "output": output,
            "log_format": log_format, "compresslevel": compresslevel,
        },
    }
    if tgw:
        truth["tgw"] = _tgw_logs(cfg, out_dir)
        truth["files"] += truth["tgw"]["files"]
        truth["records"] += truth["tgw"]["records"]
    with open(os.path.join(out_dir, "_truth.json"), "w") as fh:
        json.dump(truth, fh, indent=1)
        fh.write("\n")
    elapsed = time.time() - t_begin
    log(f"wrote {tot['files']} files, {tot['records']:,} records, {tot['disk_bytes'] / 1e6:,.1f} MB "
        f"in {elapsed:.1f} s -> {out_dir} (truth: _truth.json, runt fraction "
        f"{truth['runt_record_fraction']:.3f})")
    return truth


def _parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="generate_flow_logs.py",
        description=(
            "Generate realistic synthetic AWS VPC Flow Logs exactly as AWS delivers them to S3 "
            "(AWSLogs/<account>/vpcflowlogs/<region>/YYYY/MM/DD/..._<YYYYMMDDTHHmmZ>_<hash>.log.gz, "
            "one file per flow log per 5 minutes), plus an exact ground truth in DIR/_truth.json. "
            "Deterministic: the same arguments give byte-identical output for any --workers."
        ),
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
        epilog=(
            "examples:\n"
            "  %(prog)s --out /tmp/gen1m --records 1000000\n"
            "  %(prog)s --out /tmp/hive --layout hive --hourly --log-format mixed\n"
            "  %(prog)s --out /tmp/pq --format parquet --accounts 1 --regions 1"
        ),
    )
    p.add_argument("--out", required=True, metavar="DIR", help="output directory (the S3 bucket root)")
    p.add_argument("--records", type=int, default=100_000,
                   help="total number of records (lines excluding headers), exact")
    p.add_argument("--seed", type=int, default=7, help="random seed (>= 0)")
    p.add_argument("--start", default="2024-06-01", help="first UTC day, YYYY-MM-DD")
    p.add_argument("--days", type=int, default=1, help="number of days")
    p.add_argument("--accounts", type=int, default=3, help="number of AWS accounts")
    p.add_argument("--regions", type=int, default=2, help=f"regions per account (max {len(REGIONS)})")
    p.add_argument("--layout", choices=["default", "hive"], default="default",
                   help="S3 key layout: AWS default prefixes or Hive-compatible prefixes")
    p.add_argument("--hourly", action="store_true", help="hourly partitions (adds HH/ or hour=HH/)")
    p.add_argument("--format", "--output", dest="output", choices=["text", "parquet"], default="text",
                   help="text (.log.gz) or AWS Parquet (.log.parquet, needs pyarrow)")
    p.add_argument("--log-format", choices=["default", "custom", "mixed", "v11"], default="default",
                   help="default v2 format, a custom v5 format (other field order + extra fields), "
                        "or half of the flow logs each")
    p.add_argument("--workers", type=int, default=2, help="worker processes (output does not depend on it)")
    p.add_argument("--compresslevel", type=int, default=6, choices=range(1, 10), metavar="1-9",
                   help="gzip level for text output")
    p.add_argument("--overwrite", action="store_true", help="delete an existing DIR/AWSLogs first")
    p.add_argument("--quiet", action="store_true", help="no progress output")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    a = _parse_args(argv)
    try:
        generate(
            a.out, records=a.records, seed=a.seed, start=a.start, days=a.days, accounts=a.accounts,
            regions=a.regions, layout=a.layout, hourly=a.hourly, output=a.output,
            log_format=a.log_format, workers=a.workers, quiet=a.quiet, compresslevel=a.compresslevel,
            overwrite=a.overwrite,
        )
    except (ValueError, FileExistsError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
