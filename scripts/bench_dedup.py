"""Benchmark: flow compaction by the seed notebook's pandas, DuckDB, a plain PySpark job and flowspark,
on the same generated data, in one run.

For each size it (re)uses a dataset from scripts/generate_flow_logs.py (default layout, .log.gz, ~1 728
files) and runs each engine in its own process, sampling the resident memory of the whole process tree
(the JVM included) every 0.1 s:

  pandas    the notebook as written: pd.read_csv per file, duplicated(keep=False), groupby (its own key,
            no time window, runts dropped: so its sums are NOT the input's)
  duckdb    read_csv over the .log.gz files, GROUP BY 1-hour window + flow key, write Parquet
  pyspark   spark.read.csv(glob, explicit schema), groupBy(1-hour window + key), write Parquet
  flowspark `flowspark ingest` (flow_records and flows, as a user runs it)
  run       `flowspark run --steps ingest`: the daily run's ingest, flow_records kept (the default)
  nokeep    `flowspark run --steps ingest --no-keep-records`: flows, rejects and the ledger only
  floor     what Spark + Delta cost here before any compaction work (run after flowspark, on its lake):
            "session" starts flowspark's SparkSession and runs one trivial job; "copy" reads the columns
            compaction needs from flow_records and writes them unchanged as Parquet: a dedup that did no
            grouping at all could not be faster than that

Every engine runs --repeat times (default 3) in turn, on the same data, in one invocation; the table gives
min / median / max of wall seconds, of CPU seconds (user + sys of the whole process tree, sampled from
/proc) per million records, and of peak resident memory.

The flowspark engines' flows are summed from the Delta table's live Parquet files (read from its _delta_log
with plain JSON and pyarrow, not through flowspark) and compared with the generator's truth.

--small adds the fixed cost of a small run: one generated object of 3 000 records, every engine (the size
hourly runs and every test pay for).

Usage: python scripts/bench_dedup.py [--sizes 1000000,10000000] [--small] [--data /tmp/bench] [--engines ...] [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PY = sys.executable
KEY = ["account_id", "interface_id", "srcaddr", "dstaddr", "srcport", "dstport", "protocol", "action"]


def tree_rss_kb(root: int) -> int:
    """Resident memory of a process and all its descendants, from /proc."""
    children: dict[int, list[int]] = {}
    rss: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as fh:
                ppid = int(fh.read().rsplit(")", 1)[1].split()[1])
            with open(f"/proc/{entry}/status") as fh:
                kb = next((int(line.split()[1]) for line in fh if line.startswith("VmRSS:")), 0)
        except (OSError, ValueError, IndexError):
            continue
        children.setdefault(ppid, []).append(int(entry))
        rss[int(entry)] = kb
    total, stack = 0, [root]
    while stack:
        pid = stack.pop()
        total += rss.get(pid, 0)
        stack.extend(children.get(pid, []))
    return total


CLOCK = os.sysconf("SC_CLK_TCK")


def tree_cpu(root: int, seen: dict[int, float]) -> None:
    """Record the CPU seconds (user + sys, cumulative) of a process and its descendants into `seen`."""
    children: dict[int, list[int]] = {}
    cpu: dict[int, float] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as fh:
                fields = fh.read().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        children.setdefault(int(fields[1]), []).append(int(entry))
        cpu[int(entry)] = (int(fields[11]) + int(fields[12])) / CLOCK
    stack = [root]
    while stack:
        pid = stack.pop()
        if pid in cpu:
            seen[pid] = max(seen.get(pid, 0.0), cpu[pid])
        stack.extend(children.get(pid, []))


LAST_CPU = [0.0]


def run(cmd: list[str], env: dict | None = None) -> tuple[float, int, str]:
    """(wall seconds, peak tree RSS in MB, stdout) of a command; its tree's CPU seconds go to LAST_CPU."""
    t0 = time.time()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    peak = [0]
    seen: dict[int, float] = {}

    def sample() -> None:
        while proc.poll() is None:
            peak[0] = max(peak[0], tree_rss_kb(proc.pid))
            tree_cpu(proc.pid, seen)
            time.sleep(0.1)

    th = threading.Thread(target=sample, daemon=True)
    th.start()
    out, err = proc.communicate()
    th.join()
    wall = time.time() - t0
    LAST_CPU[0] = sum(seen.values())
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd[:3])}... failed ({proc.returncode}):\n{err[-3000:]}")
    return wall, peak[0] // 1024, out


PANDAS = """
import os, sys, json, pandas as pd
root = sys.argv[1]
dataframes = []
for subdir, dirs, files in os.walk(root):
    for file in files:
        if file.endswith(".log.gz"):   # the notebook globs .log; these are gzipped as AWS delivers them
            dataframes.append(pd.read_csv(os.path.join(subdir, file), delimiter=' '))
vflows = pd.concat(dataframes, ignore_index=True)
key = ['account-id', 'interface-id', 'srcaddr', 'dstaddr', 'srcport', 'dstport', 'protocol', 'action']
duplicate_rows = vflows.duplicated(subset=key, keep=False)
duplicates = vflows[duplicate_rows]
duplicate_counts = duplicates.groupby(
    ['account-id', 'interface-id', 'srcaddr', 'dstaddr', 'dstport', 'srcport', 'protocol', 'action']
).agg(count=('account-id', 'size'), total_bytes=('bytes', 'sum'), total_packets=('packets', 'sum')).reset_index()
def total(col):
    try:
        return int(pd.to_numeric(duplicate_counts[col]).sum())
    except Exception:
        return None   # bytes read as strings (NODATA '-' rows) were "summed" by concatenation
print(json.dumps({"rows": int(len(duplicate_counts)), "records": int(duplicate_counts['count'].sum()),
                  "packets": total('total_packets'), "bytes": total('total_bytes')}))
"""

DUCKDB = """
import sys, json, duckdb
root, out = sys.argv[1], sys.argv[2]
con = duckdb.connect()
con.execute("SET threads TO 2")
cols = {"version": "INTEGER", "account-id": "VARCHAR", "interface-id": "VARCHAR", "srcaddr": "VARCHAR",
        "dstaddr": "VARCHAR", "srcport": "INTEGER", "dstport": "INTEGER", "protocol": "INTEGER",
        "packets": "BIGINT", "bytes": "BIGINT", "start": "BIGINT", "end": "BIGINT", "action": "VARCHAR",
        "log-status": "VARCHAR"}
con.execute(f'''
COPY (
  SELECT start - start % 3600 AS window_start, "account-id", "interface-id", srcaddr, dstaddr, srcport, dstport,
         protocol, action, count(*) AS records, sum(packets) AS packets, sum(bytes) AS bytes,
         min(start) AS first_start, max("end") AS last_end
  FROM read_csv('{root}/**/*.log.gz', delim=' ', header=true, nullstr='-', columns={cols})
  WHERE "log-status" = 'OK'
  GROUP BY ALL
) TO '{out}' (FORMAT parquet)''')
r = con.execute(f"SELECT count(*), sum(records), sum(packets), sum(bytes) FROM '{out}'").fetchone()
print(json.dumps({"rows": r[0], "records": int(r[1]), "packets": int(r[2]), "bytes": int(r[3])}))
"""

PYSPARK = """
import sys, json
from pyspark.sql import SparkSession, functions as F
root, out = sys.argv[1], sys.argv[2]
spark = SparkSession.builder.master("local[*]").config("spark.driver.memory", "2g").getOrCreate()
spark.sparkContext.setLogLevel("ERROR")
schema = ("version int, account_id string, interface_id string, srcaddr string, dstaddr string, srcport int, "
          "dstport int, protocol int, packets bigint, bytes bigint, start bigint, `end` bigint, action string, "
          "log_status string")
df = spark.read.csv(root + "/AWSLogs/*/vpcflowlogs/*/*/*/*/*.log.gz", sep=" ", header=True, schema=schema, nullValue="-")
key = ["account_id", "interface_id", "srcaddr", "dstaddr", "srcport", "dstport", "protocol", "action"]
agg = (df.where("log_status = 'OK'").withColumn("window_start", F.col("start") - F.col("start") % 3600)
       .groupBy("window_start", *key)
       .agg(F.count("*").alias("records"), F.sum("packets").alias("packets"), F.sum("bytes").alias("bytes"),
            F.min("start").alias("start"), F.max("end").alias("end")))
agg.write.mode("overwrite").parquet(out)
r = spark.read.parquet(out).agg(F.count("*"), F.sum("records"), F.sum("packets"), F.sum("bytes")).first()
print(json.dumps({"rows": r[0], "records": int(r[1]), "packets": int(r[2]), "bytes": int(r[3])}))
"""


FLOOR_SESSION = """
from flowspark.edges.config import load_config
from flowspark.edges.session import create_session
spark = create_session(load_config("local"))
print(spark.range(1).count())
"""

FLOOR_COPY = """
import sys, json
from flowspark.edges.config import load_config
from flowspark.edges.session import create_session
from flowspark.edges import tables
from pyspark.sql import functions as F
spark = create_session(load_config("local"))
cols = ["start", "account_id", "interface_id", "srcaddr", "dstaddr", "srcport", "dstport", "protocol", "action",
        "packets", "bytes", "end", "event_date"]
df = tables.read(spark, sys.argv[1], tables.FLOW_RECORDS).where("coalesce(log_status, 'OK') = 'OK'").select(*cols)
df.write.mode("overwrite").parquet(sys.argv[2])
r = spark.read.parquet(sys.argv[2]).agg(F.count("*"), F.sum("packets"), F.sum("bytes")).first()
print(json.dumps({"rows": r[0], "records": int(r[0]), "packets": int(r[1]), "bytes": int(r[2])}))
"""


def delta_totals(table: Path) -> tuple[int, int, int, int]:
    """(rows, sum records, sum packets, sum bytes) of a Delta table's live files, from its log (JSON commits;
    the tables here are young enough to have no checkpoint) with pyarrow: no Spark, no flowspark."""
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    live: set[str] = set()
    log = table / "_delta_log"
    for commit in sorted(log.glob("*.json")):
        for line in commit.read_text().splitlines():
            action = json.loads(line)
            if "add" in action:
                live.add(action["add"]["path"])
            elif "remove" in action:
                live.discard(action["remove"]["path"])
    if list(log.glob("*.checkpoint*.parquet")):
        raise RuntimeError(f"{table} has a checkpoint: sum it another way")
    totals = [0, 0, 0, 0]
    from urllib.parse import unquote

    for path in live:
        t = pq.read_table(table / unquote(path), columns=["records", "packets", "bytes"])
        totals[0] += t.num_rows
        for i, c in enumerate(("records", "packets", "bytes"), 1):
            totals[i] += int(pc.sum(t[c]).as_py() or 0)
    return tuple(totals)  # type: ignore[return-value]


def small_dataset(base: Path) -> tuple[Path, dict]:
    """One object of 3 000 generated records (the day's 5-minute objects of one flow log, concatenated)."""
    import gzip

    out = base / "small3000"
    truth_file = out / "_truth.json"
    if truth_file.exists():
        return out, json.loads(truth_file.read_text())
    gen = base / "small3000-gen"
    shutil.rmtree(gen, ignore_errors=True)
    subprocess.run([PY, str(REPO / "scripts/generate_flow_logs.py"), "--out", str(gen), "--records", "3000",
                    "--accounts", "1", "--regions", "1", "--overwrite", "--quiet"], check=True)
    truth = json.loads((gen / "_truth.json").read_text())
    parts = sorted(gen.rglob("*.log.gz"))
    folder = out / parts[0].parent.relative_to(gen)
    folder.mkdir(parents=True, exist_ok=True)
    with gzip.open(folder / parts[0].name, "wt") as dst:
        for i, part in enumerate(parts):
            lines = gzip.decompress(part.read_bytes()).decode().splitlines(keepends=True)
            dst.writelines(lines if i == 0 else lines[1:])
    truth["files"] = 1
    truth_file.write_text(json.dumps(truth))
    return out, truth


def dataset(base: Path, records: int) -> tuple[Path, dict]:
    out = base / f"gen{records}"
    truth_file = out / "_truth.json"
    if truth_file.exists():
        truth = json.loads(truth_file.read_text())
        if truth["records"] == records:
            return out, truth
    print(f"generating {records:,} records into {out} ...", flush=True)
    subprocess.run([PY, str(REPO / "scripts/generate_flow_logs.py"), "--out", str(out), "--records", str(records),
                    "--overwrite", "--quiet"], check=True)
    return out, json.loads(truth_file.read_text())


def one_engine(engine: str, data: Path, scratch: Path, size: int, want: tuple) -> dict[str, dict]:
    """One run of one engine: {row name: {wall, cpu, peak_mb, rows, sums_match}}."""
    row: dict[str, dict] = {}

    def result(wall: float, peak: int, rows: int, ok: bool) -> dict:
        return {"wall": wall, "cpu": LAST_CPU[0], "peak_mb": peak, "rows": rows, "sums_match": ok}

    if engine == "floor":
        lake = scratch / "lake"
        if not (lake / "flow_records").exists():
            print("floor needs the flowspark engine's lake: run it with --engines ...,flowspark,floor")
            return row
        wall, peak, _ = run([PY, "-c", FLOOR_SESSION])
        row["floor: Spark session"] = result(wall, peak, 1, True)
        wall, peak, out = run([PY, "-c", FLOOR_COPY, str(lake), str(scratch / "copy")])
        res = json.loads(out.strip().splitlines()[-1])
        ok = (res["records"], res["packets"], res["bytes"]) == want
        row["floor: copy, no grouping"] = result(wall, peak, res["rows"], ok)
        return row
    shutil.rmtree(scratch, ignore_errors=True)
    scratch.mkdir(parents=True)
    fs = str(Path(PY).with_name("flowspark"))
    lake = scratch / "lake"
    if engine in ("pandas", "duckdb", "pyspark"):
        script = {"pandas": PANDAS, "duckdb": DUCKDB, "pyspark": PYSPARK}[engine]
        target = scratch / ("out.parquet" if engine == "duckdb" else "out")
        wall, peak, out = run([PY, "-c", script, str(data), str(target)])
        res = json.loads(out.strip().splitlines()[-1])
        ok = (res["records"], res["packets"], res["bytes"]) == want
        row[engine] = result(wall, peak, res["rows"], ok)
    else:  # flowspark's engines: ingest (flow_records and flows), from the command a user runs
        cmd = {
            "flowspark": [fs, "ingest", "--source", str(data), "--lake", str(lake)],
            "run": [fs, "run", "--source", str(data), "--lake", str(lake), "--steps", "ingest"],
            "nokeep": [fs, "run", "--source", str(data), "--lake", str(lake), "--steps", "ingest", "--no-keep-records"],
        }[engine]
        wall, peak, out = run(cmd)
        rows, records, packets, size = delta_totals(lake / "flows")
        ok = (records, packets, size) == want and ": OK" in out.split("check", 1)[1].splitlines()[0]
        name = {"flowspark": "flowspark ingest", "run": "flowspark run (records kept)", "nokeep": "flowspark run --no-keep-records"}[engine]
        row[name] = result(wall, peak, rows, ok)
    return row


def main() -> int:
    ap = argparse.ArgumentParser(
        description=textwrap.dedent(__doc__ or ""), formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--sizes", default="1000000,10000000")
    ap.add_argument("--data", default="bench-out", help="where datasets and outputs go")
    ap.add_argument("--engines", default="duckdb,pyspark,run,nokeep")
    ap.add_argument("--small", action="store_true", help="also the fixed cost: one object of 3 000 records")
    ap.add_argument("--repeat", type=int, default=3, help="runs of each engine (the table shows min/median/max)")
    args = ap.parse_args()
    base = Path(args.data).resolve()
    base.mkdir(parents=True, exist_ok=True)
    engines = args.engines.split(",")
    results = []
    sizes = [int(s) for s in args.sizes.split(",") if s]
    for size in ([3000] if args.small else []) + sizes:
        data, truth = small_dataset(base) if size == 3000 and args.small else dataset(base, size)
        want = (truth["data_records"], truth["packets"], truth["bytes"])
        runs: dict[str, list[dict]] = {}
        for i in range(args.repeat):
            for engine in engines:  # engines take turns, so a slow spell of the machine hits them all
                print(f"[{size:,}] {engine} run {i + 1}/{args.repeat} ...", flush=True)
                for name, r in one_engine(engine, data, base / "out", size, want).items():
                    runs.setdefault(name, []).append(r)
        results.append((size, truth, runs))
        print_table(size, truth, runs)
    (base / "results.json").write_text(json.dumps([{"size": s, "runs": r} for s, _, r in results], indent=1))
    return 0


def _mmm(values: list[float], fmt: str) -> str:
    v = sorted(values)
    return "/".join(format(x, fmt) for x in (v[0], statistics.median(v), v[-1]))


def print_table(size: int, truth: dict, runs: dict[str, list[dict]]) -> None:
    """A Markdown table: min/median/max over the runs of each engine."""
    duck = statistics.median(r["wall"] for r in runs["duckdb"]) if "duckdb" in runs else None
    print(f"\n{size:,} records ({truth['files']:,} files; truth: {truth['window_1h']['flow_keys']:,} window/key rows); "
          f"min/median/max of {len(next(iter(runs.values())))} runs")
    print("| engine | wall s | x DuckDB (median) | CPU s per M records | peak MB | rows out | sums = truth |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | --- |")
    for name, rs in runs.items():
        wall = statistics.median(r["wall"] for r in rs)
        ratio = f"{wall / duck:.1f}" if duck else "-"
        cpu = _mmm([r["cpu"] / (size / 1e6) for r in rs], ".1f")
        print(f"| {name} | {_mmm([r['wall'] for r in rs], '.1f')} | {ratio} | {cpu} | "
              f"{_mmm([r['peak_mb'] for r in rs], ',.0f')} | {rs[0]['rows']:,} | "
              f"{'yes' if all(r['sums_match'] for r in rs) else 'NO'} |")
    print(flush=True)


if __name__ == "__main__":
    sys.exit(main())
