"""Where a Spark application's time goes, from its event log (spark.eventLog.enabled, uncompressed).

Prints one row per job (its description / call site), with wall seconds, the executors' run time and
CPU time summed over its tasks, task count, and the bytes read/written/shuffled, then the totals.

Usage: python scripts/stage_profile.py EVENT_LOG_FILE [--top N]
"""

from __future__ import annotations

import argparse
import json
from collections import defaultdict


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("event_log")
    ap.add_argument("--top", type=int, default=40)
    args = ap.parse_args()
    jobs: dict[int, dict] = {}
    stage_job: dict[int, int] = {}
    agg: dict[int, dict] = defaultdict(lambda: defaultdict(float))
    with open(args.event_log) as fh:
        for line in fh:
            e = json.loads(line)
            kind = e.get("Event")
            if kind == "SparkListenerJobStart":
                props = e.get("Properties") or {}
                what = props.get("spark.job.description") or props.get("callSite.short") or ""
                jobs[e["Job ID"]] = {"start": e["Submission Time"], "what": what[:90], "end": None}
                for sid in e.get("Stage IDs", []):
                    stage_job[sid] = e["Job ID"]
            elif kind == "SparkListenerJobEnd":
                jobs[e["Job ID"]]["end"] = e["Completion Time"]
            elif kind == "SparkListenerTaskEnd":
                job = stage_job.get(e["Stage ID"])
                m = e.get("Task Metrics") or {}
                a = agg[job]
                a["tasks"] += 1
                a["run_s"] += m.get("Executor Run Time", 0) / 1e3
                a["cpu_s"] += m.get("Executor CPU Time", 0) / 1e9
                a["gc_s"] += m.get("JVM GC Time", 0) / 1e3
                a["in_mb"] += (m.get("Input Metrics") or {}).get("Bytes Read", 0) / 1e6
                a["out_mb"] += (m.get("Output Metrics") or {}).get("Bytes Written", 0) / 1e6
                a["shuf_mb"] += (m.get("Shuffle Write Metrics") or {}).get("Shuffle Bytes Written", 0) / 1e6
    rows = []
    for jid, j in jobs.items():
        a = agg.get(jid, {})
        wall = ((j["end"] or j["start"]) - j["start"]) / 1e3
        rows.append((jid, wall, a.get("run_s", 0), a.get("cpu_s", 0), a.get("gc_s", 0), int(a.get("tasks", 0)),
                     a.get("in_mb", 0), a.get("out_mb", 0), a.get("shuf_mb", 0), j["what"]))
    print(f"{'job':>4} {'wall s':>7} {'task s':>7} {'cpu s':>7} {'gc s':>6} {'tasks':>5} {'in MB':>7} {'out MB':>7} "
          f"{'shuf MB':>7}  what")
    for r in sorted(rows, key=lambda r: -r[1])[: args.top]:
        print(f"{r[0]:>4} {r[1]:7.1f} {r[2]:7.1f} {r[3]:7.1f} {r[4]:6.1f} {r[5]:5d} {r[6]:7.1f} {r[7]:7.1f} {r[8]:7.1f}  {r[9]}")
    tot = [sum(r[i] for r in rows) for i in range(1, 9)]
    print(f"{'all':>4} {tot[0]:7.1f} {tot[1]:7.1f} {tot[2]:7.1f} {tot[3]:6.1f} {int(tot[4]):5d} {tot[5]:7.1f} "
          f"{tot[6]:7.1f} {tot[7]:7.1f}  ({len(rows)} jobs)")


if __name__ == "__main__":
    main()
