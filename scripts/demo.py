"""The whole pipeline on generated sample data, local Spark, local folders (`make demo`).

generate flow logs, then `flowspark run`: ingest -> dedup -> tag -> ip-ranges + classify -> reports (HTML), in one
Spark session, printing each step's summary and time. Re-running it is safe: ingest skips objects it has loaded, the
other steps replace what they wrote.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default="demo", help="demo folder: raw logs in <out>/raw, the lake in <out>/lake")
    p.add_argument("--records", type=int, default=200_000, help="records to generate (default 200 000)")
    p.add_argument("--seed", type=int, default=7)
    args = p.parse_args(argv)

    from flowspark.generator import generate

    out = Path(args.out).resolve()
    raw, lake = out / "raw", out / "lake"
    t0 = time.time()
    truth_file = raw / "_truth.json"
    if truth_file.exists() and json.loads(truth_file.read_text()).get("records") == args.records:
        truth = json.loads(truth_file.read_text())
        print(f"generate       reusing {truth['records']:,} records in {raw}")
    else:
        truth = generate(str(raw), records=args.records, seed=args.seed, overwrite=True, quiet=True)
        print(f"generate       {truth['records']:,} records, {truth['files']:,} objects -> {raw} ({time.time() - t0:.1f} s)")

    # The generator plants a beacon, a scan, an exfiltration burst and NAT traffic to S3 in its first flow
    # log; the NAT cost section is for that flow log's NAT gateway.
    planted = truth.get("hunt_patterns") or {}
    nat = planted.get("nat", {}).get("interface_id")
    argv = [
        "run", "--source", str(raw), "--lake", str(lake),
        "--ip-ranges", str(REPO / "data" / "ip-ranges-2020-04-01.json"),  # the bundled copy: no network needed
        "--report-format", "html", "--out", str(out / "reports"),
    ]
    if nat:
        argv += ["--nat", nat, "--nat-region", planted.get("region", "")]
    print("$ flowspark " + " ".join(argv))
    from flowspark import cli

    code = cli.main(argv)
    if code == 0:
        print(f"\nDemo done in {time.time() - t0:.0f} s. Lake: {lake}")
    return code


if __name__ == "__main__":
    sys.exit(main())
