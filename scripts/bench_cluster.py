"""Scaling benchmark: ingest + dedup of the same generated records on a Spark standalone cluster of 1 and of
2 workers (1 core, --worker-memory each) on 127.0.0.1, spark-submitted from the packaged artifacts (dist/,
`make package`), as tests/test_cluster.py does. Prints seconds per job, records per second per core and the
speed-up, and checks that the flows' sums equal the generator's truth.

    .venv/bin/python scripts/bench_cluster.py --records 1000000,10000000 --data /work/bench

The driver runs on the same machine as the workers: with 2 one-core workers on a 2-core machine it competes
with them, so the 2-worker figure is a lower bound of what two separate machines would give. What does carry
to a larger cluster is measured too: the CPU seconds of the workers' process trees (executor JVMs and their
Python workers, from /proc) and of the driver's, and, from the event log, the seconds in which no task ran
(the driver's serial part: planning, Delta commits, reconciliation). The sizing model printed at the end is
T(cores) = serial + worker CPU / cores, with its inputs measured here.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tarfile
import threading
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "scripts"))
from bench_dedup import tree_cpu  # noqa: E402  (the same /proc CPU sampler as the engine benchmark)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _spark_home() -> Path:
    import pyspark

    return Path(pyspark.__file__).parent


def start_cluster(n: int, work: Path, memory: str) -> tuple[str, list[subprocess.Popen]]:
    home = _spark_home()
    env = {**os.environ, "SPARK_HOME": str(home), "SPARK_LOCAL_IP": "127.0.0.1", "SPARK_LOG_DIR": str(work / "logs"),
           "SPARK_WORKER_DIR": str(work)}
    cls = [str(home / "bin" / "spark-class")]
    port, ui = _free_port(), _free_port()
    procs = [subprocess.Popen([*cls, "org.apache.spark.deploy.master.Master", "--host", "127.0.0.1", "--port",
                               str(port), "--webui-port", str(ui)], env=env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)]
    url = f"spark://127.0.0.1:{port}"
    for i in range(n):
        procs.append(subprocess.Popen(
            [*cls, "org.apache.spark.deploy.worker.Worker", "--host", "127.0.0.1", "--cores", "1", "--memory", memory,
             "--webui-port", str(_free_port()), "--work-dir", str(work / f"w{i}"), url],
            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
    deadline = time.time() + 120
    while time.time() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{ui}/json/", timeout=5) as r:
                if sum(1 for w in json.load(r).get("workers", []) if w.get("state") == "ALIVE") == n:
                    return url, procs
        except OSError:
            pass
        time.sleep(1)
    stop(procs)
    raise SystemExit(f"{n} workers did not register in 120 s (logs: {work / 'logs'})")


def stop(procs: list[subprocess.Popen]) -> None:
    for p in procs:
        p.terminate()
    for p in procs:
        try:
            p.wait(timeout=30)
        except subprocess.TimeoutExpired:
            p.kill()


def serial_seconds(events: Path) -> tuple[float, float, float]:
    """(application wall s, s in which no task ran, summed executor CPU s of the tasks) from an event log."""
    start = end = 0.0
    spans: list[tuple[float, float]] = []
    task_cpu = 0.0
    for log in events.iterdir():
        for line in log.read_text().splitlines():
            e = json.loads(line)
            kind = e["Event"]
            if kind == "SparkListenerApplicationStart":
                start = e["Timestamp"] / 1e3
            elif kind == "SparkListenerApplicationEnd":
                end = e["Timestamp"] / 1e3
            elif kind == "SparkListenerTaskEnd":
                info = e["Task Info"]
                spans.append((info["Launch Time"] / 1e3, info["Finish Time"] / 1e3))
                task_cpu += (e.get("Task Metrics") or {}).get("Executor CPU Time", 0) / 1e9
    busy, cur_s, cur_e = 0.0, None, None
    for a, b in sorted(spans):
        if cur_e is None or a > cur_e:
            busy += (cur_e - cur_s) if cur_e is not None else 0.0
            cur_s, cur_e = a, b
        else:
            cur_e = max(cur_e, b)
    busy += (cur_e - cur_s) if cur_e is not None else 0.0
    return end - start, (end - start) - busy, task_cpu


def submit(url: str, driver_python: Path, work: Path, script: str, *args: str, executor_memory: str,
           workers: list[subprocess.Popen]) -> dict:
    """Run one job; its wall s, the driver's and the workers' CPU s, and the event log's serial s."""
    home = _spark_home()
    packages = subprocess.run([sys.executable, "-m", "flowspark.cli", "packages"], capture_output=True, text=True,
                              check=True).stdout.strip()
    from flowspark.edges.session import cache_dir

    events = work / f"events-{script}"
    events.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYSPARK", "VIRTUAL_ENV"))}
    env.update(SPARK_HOME=str(home), SPARK_LOCAL_IP="127.0.0.1")
    cmd = [str(home / "bin" / "spark-submit"), "--master", url, "--packages", packages,
           "--conf", f"spark.jars.ivy={cache_dir() / 'ivy'}",
           "--archives", f"{REPO / 'dist' / 'flowspark-venv.tar.gz'}#env",
           "--conf", "spark.pyspark.python=./env/bin/python",
           "--conf", f"spark.pyspark.driver.python={driver_python}",
           "--conf", f"spark.executor.memory={executor_memory}",
           "--conf", "spark.driver.host=127.0.0.1", "--conf", "spark.driver.bindAddress=127.0.0.1",
           "--conf", "spark.eventLog.enabled=true", "--conf", "spark.eventLog.compress=false",
           "--conf", "spark.eventLog.rolling.enabled=false", "--conf", f"spark.eventLog.dir={events}",
           str(REPO / "jobs" / script), *args]
    log = work / f"submit-{script}.log"
    # worker trees: CPU already spent before this job (registration, an earlier job) is subtracted
    before: dict[int, float] = {}
    for w in workers:
        tree_cpu(w.pid, before)
    driver_cpu: dict[int, float] = {}
    worker_cpu: dict[int, float] = dict(before)
    t0 = time.time()
    with open(log, "w") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, text=True, env=env, cwd=work)

        def sample() -> None:
            while proc.poll() is None:
                tree_cpu(proc.pid, driver_cpu)
                for w in workers:
                    tree_cpu(w.pid, worker_cpu)
                time.sleep(0.2)

        th = threading.Thread(target=sample, daemon=True)
        th.start()
        proc.wait()
        th.join()
    wall = time.time() - t0
    if proc.returncode != 0:
        raise SystemExit(f"{script} failed ({proc.returncode}); see {log}")
    for w in workers:  # executors that outlive the driver by a moment
        tree_cpu(w.pid, worker_cpu)
    app_wall, serial, task_cpu = serial_seconds(events)
    return {"wall": wall, "driver_cpu": sum(driver_cpu.values()),
            "worker_cpu": sum(worker_cpu.values()) - sum(before.values()), "serial": serial, "app_wall": app_wall,
            "task_cpu": task_cpu}


def one_size(records: int, base: Path, env_dir: Path, args: argparse.Namespace) -> list[tuple]:
    """Ingest + dedup of `records` generated records on each cluster size; one row per size."""
    data = base / f"gen{records}"
    if not (data / "_truth.json").exists():
        subprocess.run([sys.executable, str(REPO / "scripts/generate_flow_logs.py"), "--out", str(data), "--records",
                        str(records), "--overwrite", "--quiet"], check=True)
    rows = []
    for n in [int(w) for w in args.workers.split(",")]:
        work = base / f"cluster-{n}w"
        subprocess.run(["rm", "-rf", str(work)], check=True)
        work.mkdir(parents=True)
        url, procs = start_cluster(n, work, args.worker_memory)
        try:
            lake = work / "lake"
            py = env_dir / "bin" / "python"
            ing = submit(url, py, work, "ingest_flow_logs.py", "--source", str(data), "--lake", str(lake),
                         executor_memory=args.executor_memory, workers=procs[1:])
            ded = submit(url, py, work, "dedup_flows.py", "--lake", str(lake), executor_memory=args.executor_memory,
                         workers=procs[1:])
        finally:
            stop(procs)
        out = (work / "submit-dedup_flows.py.log").read_text()
        ok = "conservation" in out and ": OK" in out.split("conservation", 1)[1].splitlines()[0]
        rows.append((records, n, ing, ded, ok))
        print(f"{records:,} records, {n} worker(s): ingest {ing['wall']:.1f} s, dedup {ded['wall']:.1f} s, "
              f"conservation {'OK' if ok else 'FAILED'}", flush=True)
    return rows


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--records", default="1000000,10000000",
                    help="sizes, comma-separated; with two or more, the sizing model uses the marginal CPU "
                         "between the smallest and the largest (start-up and JIT warm-up cancel out)")
    ap.add_argument("--data", default="bench-out", help="where the datasets (gen<records>) and the runs go")
    ap.add_argument("--workers", default="1,2")
    ap.add_argument("--worker-memory", default="3g")
    ap.add_argument("--executor-memory", default="2g")
    args = ap.parse_args()
    base = Path(args.data).resolve()
    sizes = sorted(int(r) for r in args.records.split(","))
    subprocess.run(["bash", "scripts/package.sh", sys.executable], cwd=REPO, check=True, capture_output=True)
    env_dir = base / "cluster-driver-env"  # the driver's Python: the archive just built, unpacked afresh
    subprocess.run(["rm", "-rf", str(env_dir)], check=True)
    with tarfile.open(REPO / "dist" / "flowspark-venv.tar.gz") as tar:
        tar.extractall(env_dir)
    rows = [row for size in sizes for row in one_size(size, base, env_dir, args)]
    print(f"\nworkers of 1 core / {args.worker_memory}, driver on the same {os.cpu_count()}-core machine")
    print("| records | workers | ingest s | dedup s | ingest + dedup s | speed-up | worker CPU s | driver CPU s "
          "| serial s (no task running) | task CPU s | conservation |")
    print("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |")
    first = {}
    for records, n, ing, ded, ok in rows:
        total = ing["wall"] + ded["wall"]
        first.setdefault(records, total)
        print(f"| {records:,} | {n} | {ing['wall']:.1f} | {ded['wall']:.1f} | {total:.1f} | "
              f"{first[records] / total:.2f} | {ing['worker_cpu'] + ded['worker_cpu']:.1f} | "
              f"{ing['driver_cpu'] + ded['driver_cpu']:.1f} | {ing['serial'] + ded['serial']:.1f} | "
              f"{ing['task_cpu'] + ded['task_cpu']:.1f} | {'OK' if ok else 'FAILED'} |")
    # The sizing model, from the 1-worker runs (the least contended): the workers' CPU per record divides
    # over cores; the serial seconds (no task running) are the largest run's, taken as fixed per day-run
    # (planning is one listing + one GET per flow log, the commits are per run).
    one = {records: (ing, ded) for records, n, ing, ded, _ in rows if n == min(r[1] for r in rows)}
    lo, hi = min(one), max(one)

    def cpu(r: int) -> float:
        return one[r][0]["worker_cpu"] + one[r][1]["worker_cpu"]

    if hi > lo:
        per_m = (cpu(hi) - cpu(lo)) / ((hi - lo) / 1e6)
        how = f"marginal between {lo:,} and {hi:,} records"
    else:
        per_m = cpu(hi) / (hi / 1e6)
        how = f"average of {hi:,} records (start-up included)"
    serial = one[hi][0]["serial"] + one[hi][1]["serial"]
    data = base / f"gen{hi}"
    b_per_rec = sum(f.stat().st_size for f in data.rglob("*.log.gz")) / hi
    print(f"\nsizing model: T = {serial:.0f} s serial + {per_m:.1f} worker CPU s per M records ({how}) / cores; "
          f"{b_per_rec:.1f} B of gzip per record")
    print("| gzip a day | records | worker core-hours | 16 cores | 64 cores | 256 cores |")
    print("| ---: | ---: | ---: | ---: | ---: | ---: |")
    for label, size in (("100 GB", 100e9), ("1 TB", 1e12)):
        recs = size / b_per_rec
        core_s = recs / 1e6 * per_m
        cells = " | ".join(f"{(serial + core_s / c) / 3600:.1f} h" for c in (16, 64, 256))
        print(f"| {label} | {recs / 1e9:.2f} B | {core_s / 3600:,.0f} | {cells} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
