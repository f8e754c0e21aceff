"""flowspark catalog (issue 24, item 4): the lake's tables registered by name.

- spark: a real Hive metastore (Derby, in a folder of the test) in processes of their own (the suite's
  shared session has none): `flowspark catalog` registers, then a new session started on the same metastore
  reads spark.table("flowlogs.flows"); a rerun leaves the tables as they are.
- glue: the Glue API of moto's server on 127.0.0.1, the lake on its S3: what Glue stores is checked (names,
  columns and types against the Delta log read with plain json, location, parameters, partition keys), a
  rerun updates and never duplicates, and a table Spark registered there is never replaced.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from flowspark.edges import tables
from flowspark.pipelines.catalog import CatalogError, run_catalog

REPO = Path(__file__).resolve().parents[1]


def _delta_log_schema(folder: Path) -> tuple[list[tuple[str, str]], list[str]]:
    """(column, type) and partition columns of a local Delta table's newest metaData action, plain json."""
    meta = None
    for log in sorted((folder / "_delta_log").glob("*.json")):
        for line in log.read_text().splitlines():
            action = json.loads(line)
            if "metaData" in action:
                meta = action["metaData"]
    assert meta is not None
    fields = json.loads(meta["schemaString"])["fields"]

    def hive(t) -> str:  # noqa: ANN001 - Delta's JSON type -> Hive's name for it
        if isinstance(t, str):
            return {"long": "bigint", "integer": "int", "short": "smallint", "byte": "tinyint"}.get(t, t)
        if t["type"] == "map":
            return f"map<{hive(t['keyType'])},{hive(t['valueType'])}>"
        if t["type"] == "array":
            return f"array<{hive(t['elementType'])}>"
        return "struct<" + ",".join(f"{f['name']}:{hive(f['type'])}" for f in t["fields"]) + ">"

    return [(f["name"], hive(f["type"])) for f in fields], list(meta["partitionColumns"])


def test_spark_without_a_metastore_is_refused_before_spark(tmp_path, capsys):
    import flowspark.cli

    code = flowspark.cli.main(["catalog", "--lake", str(tmp_path), "--database", "flowlogs"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "needs a session with a metastore" in err[0], err


@pytest.mark.slow
def test_spark_catalog_in_a_hive_metastore_then_a_new_session_reads_the_tables(spark, docs_lake, tmp_path):
    lake = tmp_path / "lake"
    shutil.copytree(docs_lake[0], lake)
    meta = tmp_path / "metastore"
    config = tmp_path / "hive.toml"
    config.write_text(
        (REPO / "conf" / "local.toml").read_text()
        + "\n[spark.conf]\n"
        + '"spark.sql.catalogImplementation" = "hive"\n'
        + f'"spark.sql.warehouse.dir" = "{meta / "warehouse"}"\n'
        + f'"spark.hadoop.javax.jdo.option.ConnectionURL" = "jdbc:derby:;databaseName={meta / "db"};create=true"\n'
    )
    flowspark = [sys.executable, "-m", "flowspark.cli"]
    argv = [*flowspark, "catalog", "--lake", str(lake), "--database", "flowlogs", "--config", str(config)]
    first = subprocess.run(argv, capture_output=True, text=True, cwd=tmp_path, timeout=600)
    assert first.returncode == 0, first.stderr[-3000:]
    names = tables.lake_tables(spark, str(lake))
    assert f"{len(names)} tables" in first.stdout and "flowlogs.flows" in first.stdout and "created" in first.stdout
    # the README's query (written for Athena's database), on Spark's, for a day with rejected flows
    readme = (REPO / "README.md").read_text()
    query = readme[readme.index("```sql\n", readme.index("### catalog")) + 7 :].split("```")[0]
    flows = tables.read(spark, str(lake), tables.FLOWS)
    day = flows.where("action = 'REJECT' AND event_date IS NOT NULL").agg({"event_date": "min"}).first()[0]
    query = query.replace("flowlogs_athena.", "flowlogs.").replace("DATE '2024-06-01'", f"DATE '{day}'")
    probe = f"""
import json
from flowspark.edges.config import load_config
from flowspark.edges.session import create_session
spark = create_session(load_config(path={str(config)!r}))
print(sorted(t.name for t in spark.catalog.listTables("flowlogs")))
print(spark.table("flowlogs.flows").count(), spark.sql("SELECT count(*) FROM flowlogs.flow_records").first()[0])
print(json.dumps([list(r) for r in spark.sql({query.strip().rstrip(";")!r}).collect()]))
"""
    read = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=tmp_path, timeout=600)
    assert read.returncode == 0, read.stderr[-3000:]
    listed, counts, answer = read.stdout.strip().splitlines()[-3:]
    rejected = flows.where(f"event_date = DATE'{day}' AND action = 'REJECT'").groupBy("account_id", "dstport").agg(
        {"records": "sum", "bytes": "sum"}).collect()  # fmt: skip
    want_rows = sorted([r["account_id"], r["dstport"], r["sum(records)"], r["sum(bytes)"]] for r in rejected)
    assert sorted(json.loads(answer)) == want_rows and want_rows
    assert listed == str(sorted(names))
    want = (tables.read(spark, str(lake), tables.FLOWS).count(), tables.read(spark, str(lake), tables.FLOW_RECORDS).count())
    assert counts == f"{want[0]} {want[1]}"
    again = subprocess.run(argv, capture_output=True, text=True, cwd=tmp_path, timeout=600)
    assert again.returncode == 0 and again.stdout.count("already there") == len(names), again.stdout


def test_glue_registration_as_athena_reads_delta(spark, cfg, moto_s3, docs_lake, tmp_path, monkeypatch):
    import boto3

    moto_s3.point_s3a_here()
    moto_s3.client.create_bucket(Bucket="catalog-lake")
    root = Path(docs_lake[0])
    for f in root.rglob("*"):
        if f.is_file():
            moto_s3.client.upload_file(str(f), "catalog-lake", f"vpc/{f.relative_to(root).as_posix()}")
    monkeypatch.setenv("AWS_ENDPOINT_URL_GLUE", moto_s3.endpoint)
    for k, v in {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test", "AWS_DEFAULT_REGION": "us-east-1"}.items():
        monkeypatch.setenv(k, v)
    lake = "s3a://catalog-lake/vpc"
    s = run_catalog(spark, lake, "flowlogs_athena", "glue")
    names = sorted(p.parent.relative_to(root).as_posix() for p in root.rglob("_delta_log"))
    assert sorted(s.done) == names and set(s.done.values()) == {"created"}
    glue = boto3.client("glue")
    stored = {t["Name"]: t for t in glue.get_tables(DatabaseName="flowlogs_athena")["TableList"]}
    assert sorted(stored) == names
    flows = stored["flows"]
    assert flows["Parameters"]["table_type"] == "DELTA" and flows["TableType"] == "EXTERNAL_TABLE"
    assert flows["StorageDescriptor"]["Location"] == "s3://catalog-lake/vpc/flows"
    columns, partitions = _delta_log_schema(root / "flows")
    assert [(c["Name"], c["Type"]) for c in flows["PartitionKeys"]] == [(p, dict(columns)[p]) for p in partitions]
    assert [(c["Name"], c["Type"]) for c in flows["StorageDescriptor"]["Columns"]] == [
        c for c in columns if c[0] not in partitions
    ]
    comments = {c["Name"]: c["Comment"] for c in flows["StorageDescriptor"]["Columns"]}
    assert comments["srcaddr"] == "flow log field srcaddr (version 2)"
    # a rerun updates in place: the same tables, none twice
    assert set(run_catalog(spark, lake, "flowlogs_athena", "glue").done.values()) == {"updated"}
    assert len(glue.get_tables(DatabaseName="flowlogs_athena")["TableList"]) == len(names)
    # flowspark run --database keeps it current: its last step
    from flowspark.pipelines.run import run_daily

    lines: list[str] = []
    run = run_daily(spark, cfg, lake, steps=(), database="flowlogs_athena", catalog="glue", progress=lines.append)
    assert list(run.seconds) == ["catalog"] and lines[0].startswith("== catalog") and "updated" in lines[0]
    assert len(glue.get_tables(DatabaseName="flowlogs_athena")["TableList"]) == len(names)
    # a table Spark registered (EMR, Glue as metastore) is never replaced by Athena's kind
    glue.create_database(DatabaseInput={"Name": "flowlogs"})
    glue.create_table(DatabaseName="flowlogs", TableInput={
        "Name": "flow_records", "Parameters": {"spark.sql.sources.provider": "delta"},
        "StorageDescriptor": {"Location": "s3://catalog-lake/vpc/flow_records"}})  # fmt: skip
    with pytest.raises(CatalogError, match="flowspark did not register it"):
        run_catalog(spark, lake, "flowlogs", "glue")
    after = glue.get_table(DatabaseName="flowlogs", Name="flow_records")["Table"]
    assert after["Parameters"] == {"spark.sql.sources.provider": "delta"}
