"""Airflow DAG: the daily flowspark pipeline on an existing EMR 7 cluster, one EMR step per job.

ingest (flow_records and flows) -> tag -> ip-ranges -> classify -> reports (every report), for the run's day
(`{{ ds }}`). Every job is idempotent (a day is replaced, an object is read once), so retries are safe and on.

Set the Airflow Variables (or edit the defaults below):
    flowspark_emr_cluster_id   j-XXXXXXXXXXXXX
    flowspark_source           s3://<log-bucket>/AWSLogs/
    flowspark_lake             s3://<lake-bucket>/vpc
    flowspark_artifacts        s3://<artifact-bucket>/flowspark   (holds flowspark-venv.tar.gz and jobs/*.py
                               from `make package`)
Needs apache-airflow-providers-amazon; the connection `aws_default` with rights to add EMR steps.
"""

from __future__ import annotations

import datetime as dt

from airflow import DAG
from airflow.providers.amazon.aws.operators.emr import EmrAddStepsOperator
from airflow.providers.amazon.aws.sensors.emr import EmrStepSensor

CLUSTER = "{{ var.value.get('flowspark_emr_cluster_id', 'j-XXXXXXXXXXXXX') }}"
SOURCE = "{{ var.value.get('flowspark_source', 's3://my-log-bucket/AWSLogs/') }}"
LAKE = "{{ var.value.get('flowspark_lake', 's3://my-lake-bucket/vpc') }}"
ARTIFACTS = "{{ var.value.get('flowspark_artifacts', 's3://my-artifact-bucket/flowspark') }}"
DAY = ["--from", "{{ ds }}", "--to", "{{ ds }}"]

# (task id, job script, its arguments)
STEPS = [
    ("ingest", "ingest_flow_logs.py", ["--source", SOURCE, "--lake", LAKE, *DAY]),
    ("tag", "tag_flows.py", ["--lake", LAKE, "--out", "/tmp/tag_counts.csv", *DAY]),
    ("ip_ranges", "load_ip_ranges.py", ["--lake", LAKE]),
    ("classify", "classify_addresses.py", ["--lake", LAKE, *DAY]),
    ("reports", "build_reports.py", ["all", "--lake", LAKE, *DAY]),
]


def emr_step(name: str, script: str, args: list[str]) -> dict:
    """An EMR step that spark-submits one flowspark job with the packaged virtual environment."""
    return {
        "Name": f"flowspark {name} {{{{ ds }}}}",
        "ActionOnFailure": "CONTINUE",
        "HadoopJarStep": {
            "Jar": "command-runner.jar",
            "Args": [
                "spark-submit",
                "--deploy-mode", "cluster",
                "--archives", f"{ARTIFACTS}/flowspark-venv.tar.gz#environment",
                "--conf", "spark.pyspark.python=./environment/bin/python",
                "--conf", "spark.yarn.appMasterEnv.PYSPARK_PYTHON=./environment/bin/python",
                f"{ARTIFACTS}/jobs/{script}",
                "--env", "emr",
                *args,
            ],
        },
    }


with DAG(
    dag_id="flowspark_daily",
    description="VPC flow logs: ingest, tag, classify, reports (flowspark on EMR)",
    schedule="@daily",
    start_date=dt.datetime(2024, 1, 1),
    catchup=False,
    max_active_runs=1,
    default_args={"retries": 3, "retry_delay": dt.timedelta(minutes=10)},
    tags=["flowspark"],
) as dag:
    previous = None
    for name, script, args in STEPS:
        add = EmrAddStepsOperator(
            task_id=f"{name}_submit", job_flow_id=CLUSTER, steps=[emr_step(name, script, args)]
        )
        wait = EmrStepSensor(
            task_id=f"{name}_wait",
            job_flow_id=CLUSTER,
            step_id=f"{{{{ task_instance.xcom_pull(task_ids='{name}_submit')[0] }}}}",
        )
        add >> wait
        if previous is not None:
            previous >> add
        previous = wait

