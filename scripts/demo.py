"""The whole pipeline on generated sample data, local Spark, local folders (`make demo`).

generate flow logs -> ingest -> dedup -> tag -> ip-ranges + classify -> report all (HTML), in one Spark session,
printing each job's summary. Re-running it is safe: ingest skips files it has loaded, the other jobs
replace what they wrote.
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

    from flowspark.edges.config import load_config
    from flowspark.edges.session import create_session
    from flowspark.generator import generate
    from flowspark.pipelines.dedup import run_dedup
    from flowspark.pipelines.ingest import run_ingest

    out = Path(args.out).resolve()
    raw, lake = out / "raw", out / "lake"
    t0 = time.time()
    truth_file = raw / "_truth.json"
    if truth_file.exists() and json.loads(truth_file.read_text()).get("records") == args.records:
        truth = json.loads(truth_file.read_text())
        print(f"== generate: reusing {truth['records']:,} records in {raw}")
    else:
        print(f"== generate: {args.records:,} records -> {raw}")
        truth = generate(str(raw), records=args.records, seed=args.seed, overwrite=True, quiet=True)
        print(f"   {truth['files']:,} files, {truth['records']:,} records")

    cfg = load_config("local")
    spark = create_session(cfg)
    print("\n== ingest")
    s = run_ingest(spark, cfg, str(raw), str(lake))
    print(s.text())
    print("\n== dedup")
    d = run_dedup(spark, cfg, str(lake))
    print(d.text())
    if d.input_records and s.files_read:
        assert d.input_records == truth["data_records"], "dedup input differs from the generator's truth"

    from flowspark.pipelines.classify import run_classify
    from flowspark.pipelines.ipranges import load_ip_ranges
    from flowspark.pipelines.tag import run_tag_lake

    print("\n== tag (conf/lookup_default.csv)")
    t = run_tag_lake(spark, str(lake), None, output=str(out / "tag_counts.csv"))
    print(t.text())
    print(f"   report: {out / 'tag_counts.csv'}")
    print("\n== ip-ranges (data/ip-ranges-2020-04-01.json, offline copy)")
    print(load_ip_ranges(spark, str(REPO / "data" / "ip-ranges-2020-04-01.json"), str(lake)).text())
    print("\n== classify")
    print(run_classify(spark, str(lake)).text())

    from flowspark.pipelines.report import ReportOptions, run_report

    # The generator plants a beacon, a scan, an exfiltration burst and NAT traffic to S3 in its first flow
    # log; the NAT cost section is for that flow log's NAT gateway.
    planted = truth.get("hunt_patterns") or {}
    nat = planted.get("nat", {}).get("interface_id")
    opts = ReportOptions(top_n=cfg.reports.top_n, nat=nat, nat_region=planted.get("region"))
    print("\n== report all" + (f" (NAT cost of {nat})" if nat else ""))
    r = run_report(spark, cfg, str(lake), "all", options=opts, formats=("html",), out_dir=str(out / "reports"))
    print(r.text())
    html = next(f for f in r.files if f.endswith(".html"))
    print(f"\nDemo done in {time.time() - t0:.0f}s. Lake: {lake}")
    print(f"HTML report: {html}")
    spark.stop()
    return 0


if __name__ == "__main__":

    sys.exit(main())
