"""The findings job on a lake of hand-made flows (tests/test_detections.py's): detection_activity replaced per
range (a rerun never doubles), findings with stable ids, JSON lines with evidence flows, ASFF checked against
AWS's documented rules and sent to moto's Security Hub server on 127.0.0.1 and read back, a finding marked
benign left out; and the ASFF checker itself, shown to refuse what AWS refuses."""

from __future__ import annotations

import copy
import datetime as dt
import json

import boto3
import pytest

from flowspark.edges import securityhub, tables
from flowspark.pipelines.findings import read_findings, run_findings, run_mark
from tests.moto_server import moto_server
from tests.test_detections import C2, DAY, EXPECTED, _rows
from tests.test_reports import classes, frame

ACCOUNT, REGION = "123456789012", "us-east-1"


@pytest.fixture(scope="module")
def lake(spark, tmp_path_factory):
    lake = str(tmp_path_factory.mktemp("findings_lake"))
    rows = _rows()
    frame(spark, rows).write.format("delta").partitionBy("event_date").save(f"{lake}/flows")
    addrs = sorted({r[3] for r in rows} | {r[4] for r in rows})
    classes(spark, [(a, "private" if a.startswith("10.") else "public", None, None) for a in addrs]).write.format(
        "delta"
    ).save(f"{lake}/ip_classes")
    return lake


def country_db(path):
    """A MaxMind-format country database (GeoLite2-Country's shape) holding C2's network only."""
    from mmdb_writer import MMDBWriter
    from netaddr import IPSet

    w = MMDBWriter(ip_version=6, database_type="GeoLite2-Country", ipv4_compatible=True)
    w.insert_network(IPSet(["86.70.0.0/16"]), {"country": {"iso_code": "NL", "names": {"en": "Netherlands"}}})
    w.to_db_file(str(path))
    return str(path)


def _ids(spark, lake):
    return sorted(
        (r.detection, r.local, r.peer, r.finding_id) for r in tables.read(spark, lake, tables.FINDINGS).collect()
    )


@pytest.mark.slow  # two runs of every detection: ~2.5 min
def test_findings_job_jsonl_rerun_asff_security_hub_and_benign(spark, cfg, lake, tmp_path, monkeypatch):
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(key, "testing")  # moto's server takes any
    out = tmp_path / "findings.jsonl"
    first = run_findings(spark, cfg, lake, DAY, DAY, fmt="jsonl", out=str(out), geo_db=country_db(tmp_path / "c.mmdb"))
    assert first.activity_rows == len(EXPECTED) and first.exported == len(EXPECTED)
    assert sum(sum(v.values()) for v in first.by_detection.values()) == len(EXPECTED)
    docs = [json.loads(line) for line in out.read_text().splitlines()]
    # --geo-db: the peer's country on each finding that names a peer (only C2's network is in the database)
    assert {(d["peer"], d["country"], d["country_name"]) for d in docs if d["peer"]} == {
        (d["peer"], "NL" if d["peer"] == C2 else None, "Netherlands" if d["peer"] == C2 else None)
        for d in docs
        if d["peer"]
    } and any(d["peer"] == C2 for d in docs)
    got = sorted((d["detection"], d["local"], d["peer"], d["protocol"], d["port"], d["severity"]) for d in docs)
    assert sorted(got, key=str) == sorted(EXPECTED, key=str)
    dos = next(d for d in docs if d["detection"] == "outbound_dos")
    assert dos["technique"] == "T1498" and dos["first_seen"] == "2024-06-10T08:05:00Z"
    assert [(f["srcaddr"], f["dstport"], f["packets"]) for f in dos["evidence_flows"]] == [("10.0.5.1", 53, 900_000)]
    ids = _ids(spark, lake)

    # a rerun of the same day, ASFF this time and sent to Security Hub: the same findings, ids and activity
    asff = tmp_path / "findings.asff.jsonl"
    with moto_server(tmp_path / "moto") as endpoint:
        second = run_findings(
            spark,
            cfg,
            lake,
            DAY,
            DAY,
            fmt="asff",
            out=str(asff),
            to_securityhub=True,
            account_id=ACCOUNT,
            region=REGION,
            endpoint_url=endpoint,
        )
        client = boto3.client("securityhub", region_name=REGION, endpoint_url=endpoint)
        back = client.get_findings(MaxResults=100)["Findings"]
    assert _ids(spark, lake) == ids
    assert tables.read(spark, lake, tables.DETECTION_ACTIVITY).count() == len(EXPECTED)
    assert (second.sent, second.failed) == (len(EXPECTED), [])
    written = [json.loads(line) for line in asff.read_text().splitlines()]
    assert all(securityhub.problems(f) == [] for f in written)
    assert sorted(f["Id"] for f in back) == sorted(f["Id"] for f in written) == sorted(f"flowspark/{i[3]}" for i in ids)
    probe = next(f for f in back if f["GeneratorId"] == "flowspark-port_probe" and f["Severity"]["Label"] == "HIGH")
    assert probe["ProductArn"] == f"arn:aws:securityhub:{REGION}:{ACCOUNT}:product/{ACCOUNT}/default"
    assert probe["Types"] == ["TTPs/Discovery/flowspark-port_probe"]
    assert probe["Resources"] == [{"Type": "AwsEc2NetworkInterface", "Id": "eni-a", "Region": REGION}]

    # marked benign: kept in the table, status benign, out of the next files
    beacon = next(i for i in ids if i[0] == "beaconing")[3]
    assert "marked benign" in run_mark(spark, lake, beacon, "the backup agent's heartbeat")
    status = {r.finding_id: r.status for r in read_findings(spark, lake).collect()}
    assert status[beacon] == "benign" and sum(s == "open" for s in status.values()) == len(EXPECTED) - 1
    with pytest.raises(ValueError, match="no finding nope"):
        run_mark(spark, lake, "nope", "typo")


def _valid():
    f = {
        "finding_id": "ab" * 16,
        "detection": "vertical_scan",
        "technique": "T1046",
        "technique_name": "Network Service Discovery",
        "severity": "LOW",
        "title": "t",
        "direction": "inbound",
        "local": "10.0.2.1",
        "peer": "2a02:c7f::5",
        "protocol": 6,
        "port": None,
        "interface_id": "eni-a",
        "first_seen": dt.datetime(2024, 6, 10, 8),
        "last_seen": dt.datetime(2024, 6, 10, 9),
        "days": 1,
        "flows": 15,
        "bytes": 600,
        "evidence": "x probed 15 ports",
    }
    return securityhub.to_asff(f, ACCOUNT, REGION, dt.datetime(2024, 6, 11))


@pytest.mark.parametrize(
    "change, why",
    [
        (lambda f: f.pop("Resources"), "missing Resources"),
        (lambda f: f.update(AwsAccountId="1234"), "not 12 digits"),
        (lambda f: f.update(ProductArn="arn:aws:securityhub:us-east-1::product/aws/guardduty"), "default (custom"),
        (lambda f: f.update(Types=["Recon/Portscan"]), "taxonomy"),
        (lambda f: f.update(Title="x" * 257), "Title must be"),
        (lambda f: f.update(Description="x" * 1025), "Description must be"),
        (lambda f: f.update(CreatedAt="2024-06-10 08:00:00"), "RFC 3339"),
        (lambda f: f["Severity"].update(Label="SEVERE"), "Severity.Label"),
        (lambda f: f.update(Note={"Text": "x" * 250_000}), "more than 245,760"),
    ],
)
def test_asff_checker_refuses_what_aws_refuses(change, why):
    f = _valid()
    assert securityhub.problems(f) == []
    assert f["Network"] == {
        "Direction": "IN",
        "SourceIpV6": "2a02:c7f::5",
        "DestinationIpV4": "10.0.2.1",
        "Protocol": "TCP",
    }
    bad = copy.deepcopy(f)
    change(bad)
    assert any(why in p for p in securityhub.problems(bad))


def test_batches_keep_to_100_findings_and_6_mb():
    small = [{"Id": str(i)} for i in range(250)]
    assert [len(b) for b in securityhub.batches(small)] == [100, 100, 50]
    big = [{"Id": str(i), "Note": "x" * 200_000} for i in range(70)]  # ~200 kB each: 31 fit in 6 MB
    sizes = [len(b) for b in securityhub.batches(big)]
    assert sum(sizes) == 70 and max(sizes) == 31
