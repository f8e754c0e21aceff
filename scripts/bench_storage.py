"""Storage benchmark: bytes per record and query times, old layout against the new.

    .venv/bin/python scripts/bench_storage.py --records 10000000 --days 7 --work /tmp/bench_storage

Generates N records over --days days (scripts/generate_flow_logs.py), then for each layout ([storage]
layout = plain: the older layout; compact: the current one) runs `flowspark run --steps
ingest,dedup` into a lake of its own (the compact run includes its OPTIMIZE step) and measures: the
seconds of ingest, dedup and optimize; bytes and bytes per record of flow_records and flows (from the
Delta logs, as `flowspark stats`); and two typical queries, each 3 times (min/median/max seconds): top 10
talkers (srcaddr by bytes) of one day, and one interface's flows over the whole range (count, bytes). Also
the gzip input and AWS-style Parquet (the v2 default fields, Spark's default codec) for reference.
Prints a Markdown table (docs/storage.md).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _gzip_bytes(root: Path) -> int:
    return sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(root) for f in fs if f.endswith(".gz"))


def _timed(fn, n: int = 3) -> tuple[float, float, float]:
    times = []
    for _ in range(n):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times), statistics.median(times), max(times)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--records", type=int, default=10_000_000)
    ap.add_argument("--days", type=int, default=7)
    ap.add_argument("--work", default="/tmp/bench_storage", help="folder for the generated logs and the lakes")
    ap.add_argument("--master", default="local[2]")
    ap.add_argument("--driver-memory", default="4g")
    ap.add_argument("--layouts", default="plain,compact")
    args = ap.parse_args(argv)

    from pyspark.sql import functions as F

    from flowspark.edges import tables
    from flowspark.edges.config import load_config, with_overrides
    from flowspark.edges.session import create_session
    from flowspark.pipelines.run import run_daily
    from flowspark.pipelines.stats import run_stats

    work = Path(args.work)
    src = work / f"gen{args.records}_{args.days}d"
    if not (src / "_truth.json").exists():
        subprocess.run(
            [sys.executable, str(REPO / "scripts/generate_flow_logs.py"), "--out", str(src), "--records",
             str(args.records), "--days", str(args.days), "--quiet", "--overwrite"],
            check=True,
        )  # fmt: skip
    gz = _gzip_bytes(src)
    base = with_overrides(load_config("local"), spark={"master": args.master, "driver_memory": args.driver_memory})
    spark = create_session(base)
    rows: list[tuple[str, int, str, str, str]] = []
    per = args.records

    def add(what: str, size: int, write: str = "", q1: str = "", q2: str = "") -> None:
        rows.append((what, size, write, q1, q2))

    add("gzip text (input)", gz)
    for layout in args.layouts.split(","):
        cfg = with_overrides(base, storage={"layout": layout, "optimize_after_run": layout == "compact"})
        lake = work / f"lake_{layout}"
        shutil.rmtree(lake, ignore_errors=True)
        seconds: dict[str, float] = {}
        run = run_daily(spark, cfg, str(lake), str(src), steps=["ingest", "dedup"], progress=lambda _: None)
        seconds.update(run.seconds)
        stats = run_stats(spark, cfg, str(lake))
        size = {t.table: t.bytes for t in stats.totals()}
        day = min(t.date for t in stats.tables if t.table == tables.FLOWS and t.date)
        flows = tables.read(spark, str(lake), tables.FLOWS)
        iface = flows.groupBy("interface_id").count().orderBy(F.desc("count")).first()[0]
        for name in (tables.FLOW_RECORDS, tables.FLOWS):
            df = tables.read(spark, str(lake), name)

            def top(df=df, day=day) -> None:
                df.where(F.col("event_date") == F.lit(day)).groupBy("srcaddr").agg(F.sum("bytes").alias("b")).orderBy(
                    F.desc("b")
                ).limit(10).collect()

            def one(df=df, iface=iface) -> None:
                df.where(F.col("interface_id") == iface).agg(F.count(F.lit(1)), F.sum("bytes")).collect()

            q1, q2 = _timed(top), _timed(one)
            step = "ingest" if name == tables.FLOW_RECORDS else "dedup"
            write = f"{seconds.get(step, 0):.1f}" + (
                f" (+{seconds['optimize']:.1f} optimize)" if "optimize" in seconds and name == tables.FLOWS else ""
            )
            add(
                f"{name}, {layout}",
                size.get(name, 0),
                write,
                "/".join(f"{t:.2f}" for t in q1),
                "/".join(f"{t:.2f}" for t in q2),
            )
    # AWS-style Parquet: the default format's fields as Spark writes them by default (snappy).
    aws = work / "aws_parquet"
    shutil.rmtree(aws, ignore_errors=True)
    lake0 = work / f"lake_{args.layouts.split(',')[0]}"
    default_fields = ["version", "account_id", "interface_id", "srcaddr", "dstaddr", "srcport", "dstport",
                      "protocol", "packets", "bytes", "start", "end", "action", "log_status"]  # fmt: skip
    with tables.session_conf(spark, {"spark.sql.parquet.compression.codec": "snappy"}):
        t = time.perf_counter()
        tables.read(spark, str(lake0), tables.FLOW_RECORDS).select(*default_fields).write.parquet(str(aws))
        aws_s = time.perf_counter() - t
    aws_bytes = sum(p.stat().st_size for p in aws.rglob("*.parquet"))
    rows.insert(1, ("AWS-style Parquet (snappy, v2 fields)", aws_bytes, f"{aws_s:.1f}", "", ""))

    print(f"\n{args.records:,} records over {args.days} day(s), master {args.master}\n")
    print("| data | bytes | B/record | x gzip | write s | top talkers of a day s (min/med/max) | one interface s |")
    print("|---|---:|---:|---:|---:|---|---|")
    for what, size, write, q1, q2 in rows:
        print(f"| {what} | {size:,} | {size / per:.2f} | {size / gz:.2f} | {write} | {q1} | {q2} |")
    spark.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
