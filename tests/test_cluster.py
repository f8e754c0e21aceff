"""The packaged pipeline on a real Spark standalone cluster: a master and two workers on 127.0.0.1.

spark-submit runs the job entry points from the artifacts `scripts/package.sh` builds (the venv-pack
archive shipped with --archives, whose Python the driver and the executors both use), never from the
source tree. Ingest reads the flow logs from S3 (moto's server on loopback; the workers and the driver get
credentials from the environment, the standard AWS chain, as an instance profile gives them on EMR) and
writes the lake to a local folder the workers share; dedup reads and writes that lake. The event logs and
the workers' work folders show that every task ran on an executor one of the two workers launched, and
that both workers ran tasks.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tarfile
import time
import urllib.request
from pathlib import Path

import pytest

from flowspark.generator import generate

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]

REPO = Path(__file__).resolve().parents[1]
# What the standard AWS chain finds in the environment of the workers (their executors' Python) and driver.
AWS_ENV = {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test", "AWS_DEFAULT_REGION": "us-east-1"}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _spark_home() -> Path:
    import pyspark

    return Path(pyspark.__file__).parent


@pytest.fixture(scope="module")
def artifacts(tmp_path_factory) -> dict[str, Path]:
    """dist/ built afresh by scripts/package.sh, and the venv archive unpacked for the driver's Python.
    It builds in a copy of the sources: the other Spark lane runs this test at the same time, and the
    build writes build/, dist/ and the egg-info next to the sources."""
    src = tmp_path_factory.mktemp("package-src")
    junk = shutil.ignore_patterns("__pycache__", "*.pyc")
    for name in ("flowspark", "conf", "scripts"):
        shutil.copytree(REPO / name, src / name, symlinks=True, ignore=junk)
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, src / name)
    subprocess.run(["bash", "scripts/package.sh", sys.executable], cwd=src, check=True, capture_output=True)
    dist = src / "dist"
    venv = tmp_path_factory.mktemp("driver-env")
    with tarfile.open(dist / "flowspark-venv.tar.gz") as tar:
        tar.extractall(venv)
    return {"archive": dist / "flowspark-venv.tar.gz", "zip": next(dist.glob("flowspark-*.zip")), "env": venv}


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """A standalone master and two workers (1 core, 1 GB each) started from the pyspark install."""
    home = _spark_home()
    work = tmp_path_factory.mktemp("cluster")
    port, ui = _free_port(), _free_port()
    env = {
        **os.environ,
        **AWS_ENV,
        "SPARK_HOME": str(home),
        "SPARK_LOCAL_IP": "127.0.0.1",  # every process of the cluster on loopback only
        "SPARK_LOG_DIR": str(work / "logs"),
        "SPARK_WORKER_DIR": str(work),
    }
    cls = [str(home / "bin" / "spark-class")]
    master = subprocess.Popen(
        [*cls, "org.apache.spark.deploy.master.Master", "--host", "127.0.0.1", "--port", str(port),
         "--webui-port", str(ui)],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    url = f"spark://127.0.0.1:{port}"
    workers = [
        subprocess.Popen(
            [*cls, "org.apache.spark.deploy.worker.Worker", "--host", "127.0.0.1", "--cores", "1", "--memory",
             "1g", "--webui-port", str(_free_port()), "--work-dir", str(work / f"w{i}"), url],
            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        for i in range(2)
    ]
    deadline = time.time() + 120
    alive = 0
    while time.time() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{ui}/json/", timeout=5) as r:
                alive = sum(1 for w in json.load(r).get("workers", []) if w.get("state") == "ALIVE")
        except OSError:
            alive = 0
        if alive == 2:
            break
        time.sleep(1)
    try:
        assert alive == 2, f"{alive} of 2 workers registered with the master (logs: {work / 'logs'})"
        yield {"url": url, "work": work}
    finally:
        for p in [*workers, master]:
            p.terminate()
        for p in [*workers, master]:
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                p.kill()


def _deps_only(artifacts, dest: Path) -> Path:
    """The archive's environment without flowspark in it: a Python with flowspark's dependencies only, as a
    cluster whose bootstrap installed them has, for the jobs shipped as the --py-files zip."""
    shutil.copytree(artifacts["env"], dest, symlinks=True)
    for site in dest.glob("lib/python*/site-packages"):
        for p in site.glob("flowspark*"):
            shutil.rmtree(p) if p.is_dir() else p.unlink()
    assert not list(dest.glob("lib/python*/site-packages/flowspark*"))
    return dest / "bin" / "python"


def _submit(
    cluster, artifacts, script: str, *args: str, events: Path, py_files: Path | None = None
) -> subprocess.CompletedProcess:
    """spark-submit of jobs/<script> to the cluster. Shipped as the venv-pack archive (--archives; its Python
    runs the driver and the executors), or with py_files: as the zip (--py-files), with a Python that has the
    dependencies but not flowspark (_deps_only)."""
    home = _spark_home()
    packages = subprocess.run(
        [sys.executable, "-m", "flowspark.cli", "packages"], capture_output=True, text=True, check=True
    ).stdout.strip()
    from flowspark.edges.session import cache_dir

    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYSPARK", "VIRTUAL_ENV"))}
    env.update(SPARK_HOME=str(home), SPARK_LOCAL_IP="127.0.0.1", **AWS_ENV)
    cmd = [
        str(home / "bin" / "spark-submit"),
        "--master", cluster["url"],
        "--packages", packages,
        "--conf", f"spark.jars.ivy={cache_dir() / 'ivy'}",
    ]
    if py_files is None:
        cmd += [
            "--archives", f"{artifacts['archive']}#env",
            "--conf", "spark.pyspark.python=./env/bin/python",  # executors: the archive, unpacked in their work dir
            "--conf", f"spark.pyspark.driver.python={artifacts['env'] / 'bin' / 'python'}",
        ]
    else:
        python = _deps_only(artifacts, cluster["work"] / f"deps-{len(list(cluster['work'].glob('deps-*')))}")
        cmd += [
            "--py-files", str(artifacts["zip"]),
            "--conf", f"spark.pyspark.python={python}",
            "--conf", f"spark.pyspark.driver.python={python}",
        ]
    cmd += [
        "--conf", "spark.executor.memory=768m",
        # jobs wait until both workers' executors are there (up to 60 s), so both can be seen running tasks
        "--conf", "spark.scheduler.minRegisteredResourcesRatio=1.0",
        "--conf", "spark.scheduler.maxRegisteredResourcesWaitingTime=60s",
        "--conf", "spark.driver.host=127.0.0.1",
        "--conf", "spark.driver.bindAddress=127.0.0.1",
        "--conf", "spark.eventLog.enabled=true",
        "--conf", "spark.eventLog.compress=false",
        "--conf", "spark.eventLog.rolling.enabled=false",
        "--conf", f"spark.eventLog.dir={events}",
        str(REPO / "jobs" / script), *args,
    ]
    # cwd outside the repository: nothing may come from the source tree
    r = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=cluster["work"], timeout=600)
    (cluster["work"] / f"submit-{script}.log").write_text(r.stdout + "\n----- stderr\n" + r.stderr)
    return r


def _regroup(generated: Path, out: Path, objects: int) -> None:
    """The generated day's 288 five-minute objects as a few larger ones (header once each): the test is
    about where tasks run, and hundreds of tiny tasks on two 1-core workers only make it slow."""
    import gzip

    files = sorted(generated.rglob("*.log.gz"))
    out.mkdir(parents=True)
    per = -(-len(files) // objects)
    for i in range(objects):
        part = files[i * per : (i + 1) * per]
        if not part:
            break
        with gzip.open(out / f"part-{i}.log.gz", "wt") as dst:
            for j, f in enumerate(part):
                lines = gzip.decompress(f.read_bytes()).decode().splitlines(keepends=True)
                dst.writelines(lines if j == 0 else lines[1:])


def _executors_of_workers(work: Path) -> dict[tuple[str, str], str]:
    """(application id, executor id) -> the worker that launched it: a standalone worker runs each executor
    in <its work folder>/<app id>/<executor id>/ (both workers bind 127.0.0.1, so hosts cannot tell them
    apart; their work folders can)."""
    out = {}
    for worker in sorted(work.glob("w[0-9]")):
        for app in worker.iterdir():
            if app.is_dir() and app.name.startswith("app-"):
                for ex in app.iterdir():
                    if ex.is_dir():
                        out[(app.name, ex.name)] = worker.name
    return out


def _tasks_by_worker(events: Path, launched: dict[tuple[str, str], str]) -> dict[str, dict[str, int]]:
    """Per application (its event log), the tasks finished on each worker's executors; an executor no
    worker launched (the driver, or a stranger) counts under its own id."""
    out: dict[str, dict[str, int]] = {}
    for log in sorted(p for p in events.iterdir() if p.is_file()):
        app, tasks = None, {}
        for line in log.read_text().splitlines():
            e = json.loads(line)
            if e["Event"] == "SparkListenerApplicationStart":
                app = e["App ID"]
            elif e["Event"] == "SparkListenerTaskEnd":
                ex = e["Task Info"]["Executor ID"]
                where = launched.get((app, ex), f"executor {ex} of no worker")
                tasks[where] = tasks.get(where, 0) + 1
        out[log.name] = tasks
    return out


def test_ingest_and_dedup_run_on_the_cluster_from_the_packaged_artifacts(spark, moto_s3, cluster, artifacts, tmp_path):
    src, lake, events = tmp_path / "src", tmp_path / "lake", tmp_path / "events"
    events.mkdir()
    truth = generate(str(tmp_path / "gen"), records=20_000, seed=17, accounts=1, regions=1, days=1, workers=1)
    _regroup(tmp_path / "gen", src, objects=6)
    moto_s3.client.create_bucket(Bucket="cluster-logs")
    for f in sorted(src.iterdir()):
        moto_s3.client.upload_file(str(f), "cluster-logs", f"vpc/{f.name}")
    config = tmp_path / "cluster.toml"  # the local defaults, with S3 at moto's endpoint
    config.write_text(
        (REPO / "conf" / "local.toml").read_text().replace('endpoint = ""', f'endpoint = "{moto_s3.endpoint}"')
        .replace("path_style = false", "path_style = true")
    )
    r = _submit(cluster, artifacts, "ingest_flow_logs.py", "--source", "s3://cluster-logs/vpc", "--lake", str(lake),
                "--config", str(config), events=events)  # fmt: skip
    assert r.returncode == 0, [line for line in r.stderr.splitlines() if "flowspark" in line or "Error" in line][:20]
    assert "check          records" in r.stdout and ": OK" in r.stdout
    r = _submit(cluster, artifacts, "dedup_flows.py", "--lake", str(lake), events=events)
    assert r.returncode == 0, r.stderr[-3000:]

    from flowspark.edges import tables

    records = tables.read(spark, str(lake), tables.FLOW_RECORDS)
    assert records.count() == truth["records"]
    assert records.where(~records.source_file.startswith("s3://cluster-logs/vpc/part-")).count() == 0
    flows = tables.read(spark, str(lake), tables.FLOWS)
    got = flows.selectExpr("sum(records) r", "sum(packets) p", "sum(bytes) b").first()
    assert (got["r"], got["p"], got["b"]) == (truth["data_records"], truth["packets"], truth["bytes"])

    # Every task of both applications ran on an executor one of the two workers launched, and in the ingest
    # (4 read tasks and more) both workers ran some: the submit waits for both executors to register.
    by_app = _tasks_by_worker(events, _executors_of_workers(cluster["work"]))
    assert len(by_app) == 2, by_app
    for app, tasks in by_app.items():
        assert set(tasks) <= {"w0", "w1"} and sum(tasks.values()) > 0, (app, tasks)
    assert any(set(tasks) == {"w0", "w1"} for tasks in by_app.values()), by_app


def test_the_zip_runs_an_ingest_on_the_cluster_with_its_own_defaults(spark, cluster, artifacts, tmp_path):
    """spark-submit --py-files flowspark-<v>.zip, with a Python that has flowspark's dependencies but not
    flowspark, and no --config: the job reads the defaults packed in the zip (it used to stop at "config file
    .../flowspark-0.1.0.zip/conf/local.toml not found") and its tasks run on both workers."""
    src, lake, events = tmp_path / "src", tmp_path / "lake", tmp_path / "events"
    events.mkdir()
    truth = generate(str(tmp_path / "gen"), records=5_000, seed=23, accounts=1, regions=1, days=1, workers=1)
    _regroup(tmp_path / "gen", src, objects=4)
    r = _submit(cluster, artifacts, "ingest_flow_logs.py", "--source", str(src), "--lake", str(lake),
                events=events, py_files=artifacts["zip"])  # fmt: skip
    assert r.returncode == 0, [line for line in r.stderr.splitlines() if "flowspark" in line or "Error" in line][:20]
    assert "check          records" in r.stdout and ": OK" in r.stdout
    from flowspark.edges import tables

    assert tables.read(spark, str(lake), tables.FLOW_RECORDS).count() == truth["records"]
    by_app = _tasks_by_worker(events, _executors_of_workers(cluster["work"]))
    assert len(by_app) == 1 and all(set(t) <= {"w0", "w1"} for t in by_app.values()), by_app
