"""Scaling benchmark: ingest + dedup of the same generated records on a Spark standalone cluster of 1 and of
2 workers (1 core, --worker-memory each) on 127.0.0.1, spark-submitted from the packaged artifacts (dist/,
`make package`), as tests/test_cluster.py does. Prints seconds per job, records per second per core and the
speed-up, and checks that the flows' sums equal the generator's truth.

    .venv/bin/python scripts/bench_cluster.py --records 10000000 --data /work/bench

The driver runs on the same machine as the workers: with 2 one-core workers on a 2-core machine it competes
with them, so the 2-worker figure is a lower bound of what two separate machines would give.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tarfile
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


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


def submit(url: str, driver_python: Path, work: Path, script: str, *args: str, executor_memory: str) -> float:
    home = _spark_home()
    packages = subprocess.run([sys.executable, "-m", "flowspark.cli", "packages"], capture_output=True, text=True,
                              check=True).stdout.strip()
    from flowspark.edges.session import cache_dir

    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYSPARK", "VIRTUAL_ENV"))}
    env.update(SPARK_HOME=str(home), SPARK_LOCAL_IP="127.0.0.1")
    cmd = [str(home / "bin" / "spark-submit"), "--master", url, "--packages", packages,
           "--conf", f"spark.jars.ivy={cache_dir() / 'ivy'}",
           "--archives", f"{REPO / 'dist' / 'flowspark-venv.tar.gz'}#env",
           "--conf", "spark.pyspark.python=./env/bin/python",
           "--conf", f"spark.pyspark.driver.python={driver_python}",
           "--conf", f"spark.executor.memory={executor_memory}",
           "--conf", "spark.driver.host=127.0.0.1", "--conf", "spark.driver.bindAddress=127.0.0.1",
           str(REPO / "jobs" / script), *args]
    t0 = time.time()
    r = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=work)
    wall = time.time() - t0
    (work / f"submit-{script}.log").write_text(r.stdout + "\n----- stderr\n" + r.stderr)
    if r.returncode != 0:
        raise SystemExit(f"{script} failed ({r.returncode}); see {work / f'submit-{script}.log'}")
    return wall


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--records", type=int, default=10_000_000)
    ap.add_argument("--data", default="bench-out", help="where the dataset (gen<records>) and the runs go")
    ap.add_argument("--workers", default="1,2")
    ap.add_argument("--worker-memory", default="3g")
    ap.add_argument("--executor-memory", default="2g")
    args = ap.parse_args()
    base = Path(args.data).resolve()
    data = base / f"gen{args.records}"
    if not (data / "_truth.json").exists():
        subprocess.run([sys.executable, str(REPO / "scripts/generate_flow_logs.py"), "--out", str(data), "--records",
                        str(args.records), "--overwrite", "--quiet"], check=True)
    truth = json.loads((data / "_truth.json").read_text())
    subprocess.run(["bash", "scripts/package.sh", sys.executable], cwd=REPO, check=True, capture_output=True)
    env_dir = base / "cluster-driver-env"
    if not env_dir.exists():
        with tarfile.open(REPO / "dist" / "flowspark-venv.tar.gz") as tar:
            tar.extractall(env_dir)
    rows = []
    for n in [int(w) for w in args.workers.split(",")]:
        work = base / f"cluster-{n}w"
        subprocess.run(["rm", "-rf", str(work)], check=True)
        work.mkdir(parents=True)
        url, procs = start_cluster(n, work, args.worker_memory)
        try:
            lake = work / "lake"
            py = env_dir / "bin" / "python"
            t_in = submit(url, py, work, "ingest_flow_logs.py", "--source", str(data), "--lake", str(lake),
                          executor_memory=args.executor_memory)
            t_dd = submit(url, py, work, "dedup_flows.py", "--lake", str(lake), executor_memory=args.executor_memory)
        finally:
            stop(procs)
        out = (work / "submit-dedup_flows.py.log").read_text()
        ok = "conservation" in out and ": OK" in out.split("conservation", 1)[1].splitlines()[0]
        rows.append((n, t_in, t_dd, ok))
        print(f"{n} worker(s): ingest {t_in:.1f} s, dedup {t_dd:.1f} s, conservation {'OK' if ok else 'FAILED'}",
              flush=True)
    one = rows[0][1] + rows[0][2]
    print(f"\n{args.records:,} records ({truth['files']:,} objects), workers of 1 core / {args.worker_memory}, "
          "driver on the same 2-core machine")
    print("| workers | ingest s | dedup s | ingest + dedup s | records/s per core | speed-up | conservation |")
    print("| ---: | ---: | ---: | ---: | ---: | ---: | --- |")
    for n, t_in, t_dd, ok in rows:
        total = t_in + t_dd
        print(f"| {n} | {t_in:.1f} | {t_dd:.1f} | {total:.1f} | {args.records / total / n:,.0f} | {one / total:.2f} | "
              f"{'OK' if ok else 'FAILED'} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
