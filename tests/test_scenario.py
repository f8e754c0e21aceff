"""The detections measured on generated days (flowspark.scenario): the truth is written before any rule runs,
the real pipeline (intel load, ingest, classify, findings) finds every planted pattern and nothing else, and
the same days with a rule's guard removed show the look-alikes are real (a test that could not fail would not
tell us the guards work). The scoring itself on hand-made findings."""

from __future__ import annotations

import gzip
import hashlib
import json

import pytest

from flowspark.edges import tables
from flowspark.edges.config import with_overrides
from flowspark.pipelines.findings import run_findings
from flowspark.pipelines.quality import run_scenario
from flowspark.scenario import DETECTIONS, LOCAL_PREFIXES, generate, score

TRUTH = {
    "patterns": [
        {"detection": "beaconing", "addresses": ["10.0.0.1", "1.2.3.4"], "also": [], "what": "b"},
        {"detection": "outbound_dos", "addresses": ["10.0.0.2", "5.6.7.8"], "also": ["unusual_port"], "what": "d"},
        {"detection": "port_probe", "addresses": ["10.0.0.3", "9.9.9.1", "9.9.9.2"], "also": [], "what": "p"},
    ],
    "look_alikes": [
        {"name": "agent", "addresses": ["10.0.0.9", "4.4.4.4"]},
        {"name": "other", "addresses": ["10.0.0.9"]},  # shares the host: the agent names both addresses
    ],
}


def f(detection, local=None, peer=None, **kw):
    return {"detection": detection, "local": local, "peer": peer, "port": 443, "first_seen": None, **kw}


def test_score_counts_found_true_and_false_by_hand():
    findings = [
        f("beaconing", "10.0.0.1", "1.2.3.4"),  # the planted beacon
        f("beaconing", "10.0.0.9", "4.4.4.4"),  # the agent: a false positive from a look-alike
        f("unusual_port", "10.0.0.2"),  # what the flood also is: true, not required
        f("outbound_dos", "10.0.0.2", "5.6.7.9"),  # a peer outside the pattern: false, background
        f("port_probe", "10.0.0.3", None),  # the probe's subject: its host, no peer
        f("vertical_scan", "10.0.0.1", "1.2.3.4", suppressed="our scanner"),  # suppressed: not counted
    ]
    s = score(findings, TRUTH)
    d = s["detections"]
    assert d["beaconing"] == {
        "planted": 1,
        "found": 1,
        "findings": 2,
        "true": 1,
        "false_positives": 1,
        "precision": 0.5,
        "recall": 1.0,
    }
    assert d["outbound_dos"] == {
        "planted": 1,
        "found": 0,
        "findings": 1,
        "true": 0,
        "false_positives": 1,
        "precision": 0.0,
        "recall": 0.0,
    }
    assert d["unusual_port"]["true"] == 1 and d["unusual_port"]["recall"] is None
    assert d["port_probe"]["found"] == 1 and d["vertical_scan"]["findings"] == 0
    assert [m["what"] for m in s["missed"]] == ["d"]
    assert sorted((x["detection"], x["look_alike"]) for x in s["false_positives"]) == [
        ("beaconing", "agent"),
        ("outbound_dos", "background"),
    ]


def test_the_scenario_is_deterministic_and_its_truth_names_every_detection(tmp_path):
    a, b = generate(str(tmp_path / "a"), seed=5, days=6), generate(str(tmp_path / "b"), seed=5, days=6)
    assert a == b

    def digest(root):
        h = hashlib.sha256()
        for p in sorted((root / "raw").rglob("*.log.gz")):
            h.update(p.name.encode() + gzip.decompress(p.read_bytes()))
        return h.hexdigest()

    assert digest(tmp_path / "a") == digest(tmp_path / "b")
    assert sorted({p["detection"] for p in a["patterns"]}) == sorted(DETECTIONS)
    assert json.loads((tmp_path / "a" / "truth.json").read_text()) == a
    lines = sum(len(gzip.decompress(p.read_bytes()).splitlines()) - 1 for p in (tmp_path / "a" / "raw").rglob("*.gz"))
    assert lines == a["records"]
    # the planted days are the last three; every listed entry of a pattern is in its list file
    assert {d for p in a["patterns"] for d in p["days"]} <= set(a["days"][-3:])
    for p in a["patterns"]:
        if p["detection"] in ("malicious_ip", "tor", "mining_pool", "blackhole"):
            entry = p["what"].rsplit(":", 1)[1] if p["detection"] != "blackhole" else p["what"].split(":", 1)[1]
            listed = (tmp_path / "a" / "lists").glob("*.netset")
            assert any(entry in x.read_text().split() for x in listed), p


@pytest.mark.slow  # the whole pipeline on six generated days (~130k records), then the findings again: ~4 min
def test_every_planted_pattern_is_found_and_no_look_alike(spark, cfg, tmp_path):
    truth = generate(str(tmp_path), seed=11, days=6)
    lake = str(tmp_path / "lake")
    cfg = with_overrides(cfg, detections={"local_prefixes": tuple(LOCAL_PREFIXES)})
    s = score(run_scenario(spark, cfg, str(tmp_path), truth), truth)
    assert s["missed"] == [] and s["false_positives"] == []
    assert all(r["recall"] == 1.0 for r in s["detections"].values() if r["planted"])

    # the same days with the beacon rule's guards removed: the monitoring agent, the NTP polls and the hourly
    # DNS are beacons to a rule without them (the look-alikes fool what they were made to fool)
    naive = with_overrides(cfg, detections={"beacon_max_hosts": 1000, "beacon_exclude_ports": ()})
    run_findings(spark, naive, lake)
    s = score([r.asDict() for r in tables.read(spark, lake, tables.FINDINGS).collect()], truth)
    fooled = {x["look_alike"] for x in s["false_positives"] if x["detection"] == "beaconing"}
    assert {"monitoring_agent", "ntp_polls", "dns_resolver"} <= fooled, s["false_positives"]
