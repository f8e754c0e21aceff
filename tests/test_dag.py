"""The Airflow DAG (dags/flowspark_daily.py) loads in a real Airflow with the Amazon provider: DagBag in a
virtual environment of its own (Airflow's dependencies do not belong in flowspark's), no import errors, the
steps in order with retries on.

The environment is made once per machine and kept under ~/.cache/flowspark/airflow-venv/<versions>/ (the
first install takes minutes); later runs only start its Python.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
AIRFLOW = "2.10.5"
AMAZON = "9.2.0"


def airflow_python() -> Path:
    """The Python of the cached Airflow environment, made if missing (keyed by the versions)."""
    py = f"{sys.version_info.major}.{sys.version_info.minor}"
    home = Path(os.environ.get("FLOWSPARK_CACHE", Path.home() / ".cache" / "flowspark"))
    venv = home / "airflow-venv" / f"airflow-{AIRFLOW}-amazon-{AMAZON}-py{py}"
    python = venv / "bin" / "python"
    done = venv / ".complete"
    if done.exists():
        return python
    import fcntl
    import shutil

    venv.parent.mkdir(parents=True, exist_ok=True)
    # both Spark lanes run this test at the same time (scripts/test_lanes.sh): one makes it, the other waits
    with open(venv.parent / f"{venv.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if done.exists():
            return python
        t0 = time.time()
        if venv.exists():
            shutil.rmtree(venv)  # a half-made environment (an install that was stopped)
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run(
            [str(python), "-m", "pip", "install", "--quiet", f"apache-airflow=={AIRFLOW}",
             f"apache-airflow-providers-amazon=={AMAZON}"],
            check=True, timeout=3000,
        )  # fmt: skip
        done.write_text(f"{time.time() - t0:.0f} s\n")
        print(f"\nAirflow environment made in {time.time() - t0:.0f} s: {venv}")
    return python


LOAD = r"""
import json, sys
from airflow.models.dagbag import DagBag
bag = DagBag(dag_folder=sys.argv[1], include_examples=False)
out = {"errors": {k: v.splitlines()[-1] for k, v in bag.import_errors.items()}, "dags": {}}
for dag_id, dag in bag.dags.items():
    out["dags"][dag_id] = {
        "tasks": {t.task_id: {"upstream": sorted(t.upstream_task_ids), "retries": t.retries,
                              "type": type(t).__name__, "steps": getattr(t, "steps", None)} for t in dag.tasks},
        "schedule": str(dag.schedule_interval), "catchup": dag.catchup,
    }
print(json.dumps(out))
"""


@pytest.mark.slow
def test_the_daily_dag_loads_in_airflow_with_its_steps_in_order(tmp_path):
    python = airflow_python()
    env = {**os.environ, "AIRFLOW_HOME": str(tmp_path / "airflow"), "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
           "AIRFLOW__CORE__UNIT_TEST_MODE": "True", "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN":
           f"sqlite:///{tmp_path / 'airflow.db'}"}  # fmt: skip
    env.pop("PYTHONPATH", None)
    r = subprocess.run(
        [str(python), "-c", LOAD, str(REPO / "dags")], capture_output=True, text=True, env=env, timeout=600
    )
    assert r.returncode == 0, r.stderr[-3000:]
    got = json.loads(r.stdout.strip().splitlines()[-1])
    assert got["errors"] == {}
    assert list(got["dags"]) == ["flowspark_daily"]
    dag = got["dags"]["flowspark_daily"]
    assert dag["schedule"] == "@daily" and dag["catchup"] is False
    tasks = dag["tasks"]
    # each step is a submit then a wait; each step's submit waits for the previous step's wait
    order = ["ingest", "tag", "ip_ranges", "classify", "reports"]
    expected = {}
    for i, step in enumerate(order):
        upstream = [f"{order[i - 1]}_wait"] if i else []
        expected[f"{step}_submit"] = {"upstream": upstream, "type": "EmrAddStepsOperator"}
        expected[f"{step}_wait"] = {"upstream": [f"{step}_submit"], "type": "EmrStepSensor"}
    assert {k: {"upstream": v["upstream"], "type": v["type"]} for k, v in tasks.items()} == expected
    assert all(t["retries"] >= 1 for t in tasks.values()), tasks
    # each step spark-submits a job script of jobs/ whose arguments the CLI parses as that step's command
    from flowspark.cli import build_parser

    commands = {"ingest": "ingest", "tag": "tag", "ip_ranges": "ip-ranges", "classify": "classify", "reports": "report"}
    for step in order:
        (emr_step,) = tasks[f"{step}_submit"]["steps"]
        args = emr_step["HadoopJarStep"]["Args"]
        script = next(a for a in args if a.endswith(".py"))
        assert (REPO / "jobs" / script.rsplit("/", 1)[-1]).is_file(), script
        argv = [a.replace("{{ ds }}", "2024-06-01") for a in args[args.index(script) + 1 :]]
        parsed = build_parser().parse_args([commands[step], *argv])
        assert parsed.command == commands[step] and parsed.env == "emr" and parsed.lake, (step, argv)
