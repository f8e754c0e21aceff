#!/usr/bin/env python3
"""Benchmark `flowspark tag`: lake mode (broadcast join) and, optionally, single-file mode.

    # on an existing lake (flow_records written by `flowspark ingest`)
    .venv/bin/python scripts/bench_tag.py --lake /data/lake10m --lookup-rows 10000
    # or build one first: generate N records (scripts/generate_flow_logs.py) and ingest them
    .venv/bin/python scripts/bench_tag.py --work /tmp/bench_tag --records 10000000 --file-mode

Prints the physical plan line(s) that show the BroadcastHashJoin, then the wall time and
records/s of `run_tag_lake` (the job behind `flowspark tag --lake`), a cold and a warm run. With
--file-mode and generated sources, also times single-file mode (pure Python) over the raw files.
The lookup is generated: the default lookup's well-known services plus random (port, protocol)
keys up to --lookup-rows rows.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from flowspark import generator as gen  # noqa: E402
from flowspark.core.tags import UNTAGGED, port_protocol_counts, tag_records, taggable  # noqa: E402
from flowspark.edges import tables  # noqa: E402
from flowspark.edges.config import load_config, with_overrides  # noqa: E402
from flowspark.edges.session import create_session  # noqa: E402
from flowspark.pipelines.tag import lookup_frame, read_lookup, run_tag_lake, tag_files  # noqa: E402


def write_lookup(path: Path, rows: int, seed: int) -> None:
    """The default lookup's rows, then random unique (port, tcp|udp) keys, `rows` in total."""
    base = read_lookup()
    keys = dict(base.tags)
    rng = random.Random(seed)
    while len(keys) < rows:
        keys.setdefault((rng.randrange(0, 65536), rng.choice((6, 17))), f"svc_{len(keys) % 500}")
    with open(path, "w", encoding="utf-8") as fh:
        fh.write("dstport,protocol,tag\n")
        for (port, proto), tag in list(keys.items())[:rows]:
            fh.write(f"{port},{proto},{tag}\n")


def generate_and_ingest(spark, cfg, work: Path, records: int, seed: int) -> str:
    from flowspark.pipelines.ingest import run_ingest

    src, lake = work / "src", work / "lake"
    if not (src / "_truth.json").exists():
        t0 = time.time()
        gen.generate(str(src), records=records, seed=seed, overwrite=True)
        print(f"generated {records:,} records in {time.time() - t0:.1f}s -> {src}")
    if not tables.exists(spark, str(lake), tables.FLOW_RECORDS):
        summary = run_ingest(spark, cfg, source=str(src), lake=str(lake))
        print(f"ingested {summary.rows_written:,} records in {summary.seconds:.1f}s -> {lake}")
    return str(lake)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--lake", help="existing lake with flow_records (default: generate one under --work)")
    p.add_argument("--work", default="/tmp/flowspark_bench_tag", help="work folder (generated data, lookup, CSV)")
    p.add_argument("--records", type=int, default=1_000_000, help="records to generate when --lake is not given")
    p.add_argument("--lookup-rows", type=int, default=10_000)
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--master", default="local[2]")
    p.add_argument("--driver-memory", default="2g")
    p.add_argument("--file-mode", action="store_true", help="also time single-file mode over the generated raw files")
    a = p.parse_args(argv)

    work = Path(a.work)
    work.mkdir(parents=True, exist_ok=True)
    cfg = with_overrides(load_config("local"), spark={"master": a.master, "driver_memory": a.driver_memory})
    spark = create_session(cfg)
    lake = a.lake or generate_and_ingest(spark, cfg, work, a.records, a.seed)

    lookup_path = work / f"lookup_{a.lookup_rows}.csv"
    write_lookup(lookup_path, a.lookup_rows, a.seed)
    t0 = time.time()
    lookup = read_lookup(lookup_path)
    print(f"lookup: {lookup_path} ({lookup.describe()}), parsed in {time.time() - t0:.2f}s")

    records = tables.read(spark, lake, tables.FLOW_RECORDS)
    plan_df = port_protocol_counts(taggable(records).transform(tag_records(lookup_frame(spark, lookup))))
    plan = plan_df._jdf.queryExecution().executedPlan().toString()
    joins = [line.strip() for line in plan.splitlines() if "BroadcastHashJoin" in line]
    print("physical plan join:", *(joins or ["NO BroadcastHashJoin FOUND"]), sep="\n  ")

    for run in ("cold", "warm"):
        s = run_tag_lake(spark, lake, lookup, output=str(work / "tag_counts.csv"))
        check = "OK" if s.reconciled() else "MISMATCH"
        print(
            f"lake mode ({run}): {s.records:,} records in {s.seconds:.1f}s = {s.records / s.seconds:,.0f} "
            f"records/s (matched {s.matched:,}, untagged {s.untagged:,}, {s.tags:,} tags; check {check})"
        )

    if a.file_mode:
        src = work / "src"
        files = sorted(str(f) for f in src.rglob("*.log.gz")) if src.exists() else []
        if not files:
            print("file mode: no generated raw files under --work (use it without --lake)")
        else:
            t0 = time.time()
            r = tag_files(files, lookup)
            dt_ = time.time() - t0
            untagged = dict(r.tag_rows).get(UNTAGGED, 0)
            print(
                f"file mode: {len(files):,} files, {r.scan.lines:,} lines in {dt_:.1f}s = "
                f"{r.scan.lines / dt_:,.0f} lines/s (tagged {r.scan.tagged:,}, untagged {untagged:,})"
            )
            lake_csv = (work / "tag_counts.csv").read_text()
            print(f"file mode report == lake mode report: {r.report() == lake_csv}")
    spark.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
