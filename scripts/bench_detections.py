#!/usr/bin/env python3
"""Precision and recall of every detection on generated days where the truth is known (`make bench-detections`).

For each seed: flowspark.scenario writes nine days of flow logs with every detection's pattern planted among
benign look-alikes (monitoring agents, NTP and DNS, health checks, S3 backups, CI runners, an admin's SSH)
and the truth of both, before any rule runs; then, in one local Spark session, the real pipeline: intel lists
loaded, `flowspark run --steps ingest,classify,findings` (the bundled ip-ranges.json, the scenario's IPv6 block
as [detections] local_prefixes, every other setting from conf/local.toml), and the findings table is read
back and scored against the truth (flowspark.scenario.score: a finding is true when its addresses all belong
to a pattern planted as that detection, or one the generator declared it also is).

Prints per detection over all seeds: planted, found, findings, false positives, precision, recall; then
each miss and each false positive with the look-alike it came from. --json writes the same as JSON.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    p.add_argument("--days", type=int, default=9, help="days per seed (default 9; patterns on the last three)")
    p.add_argument("--out", default="/tmp/flowspark_bench_detections", help="work folder (emptied first)")
    p.add_argument("--json", help="also write the results here")
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="SECTION.KEY=VALUE",
        help="a config override, e.g. detections.beacon_max_hosts=1000 (a rule without its guard) or "
        "reports.exclude_aws_peers=false; a JSON value, or a string",
    )
    args = p.parse_args(argv)

    from flowspark.edges.config import with_overrides
    from flowspark.pipelines.common import create_session, load_config
    from flowspark.pipelines.quality import run_scenario
    from flowspark.scenario import DETECTIONS, LOCAL_PREFIXES, generate, score

    out = Path(args.out)
    shutil.rmtree(out, ignore_errors=True)
    cfg = with_overrides(load_config("local"), detections={"local_prefixes": tuple(LOCAL_PREFIXES)})
    for item in args.set:
        key, _, value = item.partition("=")
        section, _, name = key.partition(".")
        try:
            parsed = json.loads(value)
        except ValueError:
            parsed = value
        cfg = with_overrides(cfg, **{section: {name: tuple(parsed) if isinstance(parsed, list) else parsed}})
    spark = create_session(cfg, quiet=True)
    totals: dict[str, dict] = {}
    missed, false = [], []
    try:
        for seed in args.seeds:
            t0 = time.time()
            work = out / f"seed{seed}"
            truth = generate(str(work), seed=seed, days=args.days)
            rows = run_scenario(spark, cfg, str(work), truth)
            s = score(rows, truth)
            for d, r in s["detections"].items():
                t = totals.setdefault(d, {"planted": 0, "found": 0, "findings": 0, "true": 0})
                for k in t:
                    t[k] += r[k]
            missed += [{"seed": seed, **m} for m in s["missed"]]
            false += [{"seed": seed, **f} for f in s["false_positives"]]
            print(
                f"seed {seed}: {truth['records']:,} records in {truth['files']:,} objects over {args.days} days, "
                f"{len(truth['patterns'])} patterns, {len(rows)} findings ({time.time() - t0:.0f} s)",
                flush=True,
            )
    finally:
        spark.stop()

    print()
    print(
        f"{'detection':<18} {'planted':>7} {'found':>5} {'findings':>8} {'false +':>7} {'precision':>9} {'recall':>6}"
    )
    for d in [*DETECTIONS, *sorted(set(totals) - set(DETECTIONS))]:
        t = totals.get(d, {"planted": 0, "found": 0, "findings": 0, "true": 0})
        t["false_positives"] = t["findings"] - t["true"]
        t["precision"] = t["true"] / t["findings"] if t["findings"] else None
        t["recall"] = t["found"] / t["planted"] if t["planted"] else None

        def fmt(x):
            return "-" if x is None else f"{x:.2f}"

        print(
            f"{d:<18} {t['planted']:>7} {t['found']:>5} {t['findings']:>8} {t['false_positives']:>7} "
            f"{fmt(t['precision']):>9} {fmt(t['recall']):>6}"
        )
    for m in missed:
        print(f"missed (seed {m['seed']}): {m['detection']}: {m['what']}")
    for f in false:
        print(
            f"false positive (seed {f['seed']}): {f['detection']} local={f['local']} peer={f['peer']} "
            f"port={f['port']} ({f['look_alike']})"
        )
    if args.json:
        Path(args.json).write_text(
            json.dumps({"detections": totals, "missed": missed, "false_positives": false}, indent=1, default=str)
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
