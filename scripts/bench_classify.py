#!/usr/bin/env python
"""Benchmark `classify`: N and scale x N distinct addresses against a full ip-ranges.json.

    python scripts/bench_classify.py                      # 100k and 1M, local[2]
    python scripts/bench_classify.py --n 20000 --scale 5  # a quick check

Addresses are realistic: ~40% inside AWS IPv4 prefixes, 25% other public IPv4, 25% RFC 1918, 5% inside
AWS IPv6 prefixes, 5% other IPv6 (global and link-local). They are generated with numpy, written to
Parquet once (outside the timings) and read by Spark.

Measured:
  spark    flowspark.ipranges.classify_addresses (bucket equi-join + range filter), distinct addresses
           read from Parquet, result written to Spark's no-op sink; after one warm-up run.
  seed004  the per-IP pandas approach of seeds/004 (map every prefix's mask over the address, compare
           network addresses), IPv4 only, on a sample; extrapolated linearly.
  ipaddress  a plain Python loop: `ip in network` for every network of the address's version, on a
           sample; extrapolated.
  ipaddress+buckets  the same loop, but looking only at networks of the address's first-octet/first-byte
           bucket (what a careful single-threaded Python script would do); on a larger sample.
The sample results of all four are checked against each other (as sets of matched prefixes).
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import os
import random
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
DEFAULT_RANGES = REPO.parent / "shared" / "samples" / "aws-ip-ranges" / "ip-ranges-2020-04-01.json"


# ---------------------------------------------------------------- data


def generate(n: int, ranges: dict, seed: int) -> list[str]:
    import numpy as np

    rng = np.random.default_rng(seed)
    rnd = random.Random(seed)
    v4 = [ipaddress.ip_network(p["ip_prefix"]) for p in ranges["prefixes"]]
    v6 = [ipaddress.ip_network(p["ipv6_prefix"]) for p in ranges["ipv6_prefixes"]]
    v4_first = np.array([int(x.network_address) for x in v4], dtype=np.int64)
    v4_size = np.array([x.num_addresses for x in v4], dtype=np.int64)
    out: dict[str, None] = {}
    while len(out) < n:
        m = int((n - len(out)) * 1.05) + 16
        kind = rng.choice(5, size=m, p=[0.40, 0.25, 0.25, 0.05, 0.05])
        idx = rng.integers(0, len(v4), size=m)
        aws4 = v4_first[idx] + (rng.random(m) * v4_size[idx]).astype(np.int64)
        pub4 = rng.integers(1 << 24, 224 << 24, size=m, dtype=np.int64)
        block = rng.choice(3, size=m)
        base = np.array([10 << 24, (172 << 24) | (16 << 16), (192 << 24) | (168 << 16)], dtype=np.int64)
        span = np.array([1 << 24, 1 << 20, 1 << 16], dtype=np.int64)
        priv4 = base[block] + rng.integers(0, 1 << 62, size=m) % span[block]
        value4 = np.where(kind == 0, aws4, np.where(kind == 1, pub4, priv4))
        octets = [(value4 >> s) & 255 for s in (24, 16, 8, 0)]
        for i in range(m):
            k = kind[i]
            if k <= 2:
                text = f"{octets[0][i]}.{octets[1][i]}.{octets[2][i]}.{octets[3][i]}"
            elif k == 3:
                net = v6[rnd.randrange(len(v6))]
                text = str(ipaddress.IPv6Address(int(net.network_address) + rnd.getrandbits(128 - net.prefixlen)))
            elif rnd.random() < 0.7:
                text = str(ipaddress.IPv6Address((1 << 125) | rnd.getrandbits(125)))
            else:
                text = str(ipaddress.IPv6Address((0xFE80 << 112) | rnd.getrandbits(64)))
            out[text] = None
            if len(out) == n:
                break
    return list(out)


def write_parquet(addresses: list[str], path: str) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.table({"ip": addresses}), path, row_group_size=256_000)


# ---------------------------------------------------------------- baselines


def seed004_classifier(ranges: dict):
    """Seed 004's functions, verbatim in substance (pandas, one pass over every prefix per IP)."""
    import pandas as pd

    def subnetMaskOctects(subnetMaskLength):  # noqa: N802, N803
        octects = []
        tmp = subnetMaskLength
        while tmp > 0:
            if tmp >= 8:
                octects.append((255 << 0) & 255)
            else:
                octects.append((255 << 8 - tmp) & 255)
            tmp -= 8
        while len(octects) < 4:
            octects.append(0)
        return octects

    def map2NetworkAddress(subnetMaskLength, ipAddress):  # noqa: N802, N803
        ipAddressOctects = [int(octect) for octect in ipAddress.split(".")]  # noqa: N806
        maskOctects = subnetMaskOctects(subnetMaskLength)  # noqa: N806
        networkAddressOctects = []  # noqa: N806
        for i in range(4):
            networkAddressOctects.append(str(ipAddressOctects[i] & maskOctects[i]))
        return ".".join(networkAddressOctects)

    df = pd.DataFrame(ranges["prefixes"])  # the seed: pd.DataFrame.from_dict (deprecated for lists)
    parts = df["ip_prefix"].str.split("/").str
    df["networkAddress"] = parts.get(0)
    df["subnetMaskLength"] = parts.get(1).astype(int)

    def classifyIpAddress(ipAddress):  # noqa: N802, N803
        m = df[df["networkAddress"] == df["subnetMaskLength"].apply(map2NetworkAddress, args=[ipAddress])]
        return ",".join(m["region"] + "_" + m["service"] + "_" + m["ip_prefix"])

    return classifyIpAddress


def ipaddress_classifier(ranges: dict, bucketed: bool):
    nets = [
        (ipaddress.ip_network(p.get("ip_prefix") or p.get("ipv6_prefix")), p["region"], p["service"])
        for p in ranges["prefixes"] + ranges["ipv6_prefixes"]
    ]
    by_version = {4: [n for n in nets if n[0].version == 4], 6: [n for n in nets if n[0].version == 6]}
    buckets: dict[tuple[int, int], list] = {}
    for n in nets:
        shift = 24 if n[0].version == 4 else 120
        for b in range(int(n[0].network_address) >> shift, (int(n[0].broadcast_address) >> shift) + 1):
            buckets.setdefault((n[0].version, b), []).append(n)

    def classify(text: str) -> str:
        a = ipaddress.ip_address(text)
        if bucketed:
            shift = 24 if a.version == 4 else 120
            cands = buckets.get((a.version, int(a) >> shift), [])
        else:
            cands = by_version[a.version]
        return ",".join(f"{r}_{s}_{n}" for n, r, s in cands if a in n)

    return classify


def timed(fn, items):
    t0 = time.perf_counter()
    out = [fn(x) for x in items]
    return out, time.perf_counter() - t0


# ---------------------------------------------------------------- Spark


def spark_session(master: str, driver_memory: str, partitions: int):
    from flowspark.edges.config import load_config, with_overrides
    from flowspark.edges.session import create_session

    cfg = with_overrides(
        load_config("local"),
        spark={"master": master, "driver_memory": driver_memory, "shuffle_partitions": partitions},
    )
    return create_session(cfg)


def spark_run(spark, path: str, ranges_df) -> float:
    from flowspark.core.ipranges import classify_addresses

    t0 = time.perf_counter()
    addresses = spark.read.parquet(path).distinct()
    classify_addresses(addresses, ranges_df).write.format("noop").mode("overwrite").save()
    return time.perf_counter() - t0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=100_000, help="distinct addresses of the first run (default 100k)")
    ap.add_argument("--scale", type=int, default=10, help="the second run has scale x n addresses (default 10)")
    ap.add_argument("--ranges", default=str(DEFAULT_RANGES), help="ip-ranges.json (default: the 2020 sample)")
    ap.add_argument("--sample", type=int, default=200, help="addresses for the slow baselines (default 200)")
    ap.add_argument("--bucketed-sample", type=int, default=20_000, help="addresses for ipaddress+buckets")
    ap.add_argument("--master", default="local[2]")
    ap.add_argument("--driver-memory", default="2g")
    ap.add_argument("--partitions", type=int, default=4, help="spark.sql.shuffle.partitions")
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--json", help="also write the results to this JSON file")
    args = ap.parse_args(argv)

    from flowspark.core.ipranges import classify_addresses, parse_ip_ranges
    from flowspark.pipelines.ipranges import ranges_dataframe

    text = Path(args.ranges).read_text()
    ranges = json.loads(text)
    parsed = parse_ip_ranges(text, args.ranges)
    big = args.n * args.scale
    print(f"ranges: {args.ranges} ({parsed.ipv4_rows} IPv4 + {parsed.ipv6_rows} IPv6 prefixes)")
    t0 = time.perf_counter()
    addresses = generate(big, ranges, args.seed)
    print(f"generated {big:,} distinct addresses in {time.perf_counter() - t0:.1f}s")

    results: dict[str, dict] = {}
    with tempfile.TemporaryDirectory(prefix="bench_classify_") as tmp:
        paths = {}
        for n in (args.n, big):
            paths[n] = os.path.join(tmp, f"addresses_{n}.parquet")
            write_parquet(addresses[:n], paths[n])
        warm = os.path.join(tmp, "warm.parquet")
        write_parquet(addresses[: min(20_000, args.n)], warm)
        tiny = os.path.join(tmp, "tiny.parquet")
        write_parquet(addresses[:1000], tiny)

        spark = spark_session(args.master, args.driver_memory, args.partitions)
        ranges_df = ranges_dataframe(spark, parsed).cache()
        spark_run(spark, warm, ranges_df)  # JIT and broadcast warm-up, not timed
        fixed = spark_run(spark, tiny, ranges_df)  # per-job overhead: planning, scheduling, broadcast
        print(f"spark      {1000:>12,} addresses  {fixed:8.1f}s  (fixed cost of a job)")
        for n in (args.n, big):
            secs = spark_run(spark, paths[n], ranges_df)
            results[f"spark {n:,}"] = {"method": "spark", "n": n, "seconds": secs, "rate": n / secs}
            print(f"spark      {n:>12,} addresses  {secs:8.1f}s  {n / secs:>12,.0f} addresses/s")

        # Baselines on samples, and a cross-check of the answers.
        rnd = random.Random(args.seed)
        sample = rnd.sample(addresses[: args.n], min(args.sample, args.n))
        sample4 = [a for a in sample if ":" not in a]
        seed_out, seed_s = timed(seed004_classifier(ranges), sample4)
        loop_out, loop_s = timed(ipaddress_classifier(ranges, bucketed=False), sample)
        bsample = addresses[: min(args.bucketed_sample, args.n)]
        _, bucket_s = timed(ipaddress_classifier(ranges, bucketed=True), bsample)
        for name, secs, count in (
            ("seed004 pandas (IPv4 only)", seed_s, len(sample4)),
            ("python ipaddress loop", loop_s, len(sample)),
            ("python ipaddress + buckets", bucket_s, len(bsample)),
        ):
            rate = count / secs
            results[name] = {"method": name, "n": count, "seconds": secs, "rate": rate}
            print(
                f"{name:<28} {count:>7,} sampled {secs:7.1f}s  {rate:>10,.0f} addresses/s  "
                f"-> {args.n / rate:,.0f}s for {args.n:,}, {big / rate:,.0f}s for {big:,} (extrapolated)"
            )

        got = {
            r["ip"]: r["aws_matches"] or ""
            for r in classify_addresses(spark.createDataFrame([(a,) for a in sample], "ip string"), ranges_df)
            .select("ip", "aws_matches")
            .collect()
        }
        agree_seed = all(set(got[a].split(",")) == set(o.split(",")) for a, o in zip(sample4, seed_out))
        agree_loop = all(set(got[a].split(",")) == set(o.split(",")) for a, o in zip(sample, loop_out))
        print(f"sample answers agree: seed004 {agree_seed}, ipaddress {agree_loop}")
        ratio = results[f"spark {big:,}"]["seconds"] / results[f"spark {args.n:,}"]["seconds"]
        marginal = (big - args.n) / max(
            1e-9, results[f"spark {big:,}"]["seconds"] - results[f"spark {args.n:,}"]["seconds"]
        )
        print(
            f"scaling: {args.scale}x the addresses took {ratio:.1f}x the time; marginal rate "
            f"{marginal:,.0f} addresses/s; fixed cost per job {fixed:.1f}s"
        )
        spark.stop()
    if args.json:
        Path(args.json).write_text(
            json.dumps({"results": results, "scaling": ratio, "marginal_rate": marginal, "fixed_s": fixed}, indent=1)
        )
    return 0 if agree_seed and agree_loop else 1


if __name__ == "__main__":
    sys.exit(main())
