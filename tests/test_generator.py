"""Tests for flowspark/generator.py (scripts/generate_flow_logs.py; no Spark): layout, exact ground truth, determinism."""

from __future__ import annotations

import datetime as dt
import gzip
import json
import os
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "generate_flow_logs.py"


from flowspark import generator as gen  # noqa: E402

SMALL = dict(records=5000, accounts=1, regions=1, days=1, seed=7, workers=1)

DEFAULT_RE = re.compile(
    r"^AWSLogs/(?P<acct>\d{12})/vpcflowlogs/(?P<region>[a-z]{2}-[a-z]+-\d)/"
    r"(?P<y>\d{4})/(?P<m>\d{2})/(?P<d>\d{2})/(?:(?P<h>\d{2})/)?"
    r"(?P=acct)_vpcflowlogs_(?P=region)_(?P<fl>fl-[0-9a-f]{17})_(?P<ts>\d{8}T\d{4}Z)_[0-9a-f]{8}"
    r"\.log\.(?P<ext>gz|parquet)$"
)
HIVE_RE = re.compile(
    r"^AWSLogs/aws-account-id=(?P<acct>\d{12})/aws-service=vpcflowlogs/"
    r"aws-region=(?P<region>[a-z]{2}-[a-z]+-\d)/"
    r"year=(?P<y>\d{4})/month=(?P<m>\d{2})/day=(?P<d>\d{2})/(?:hour=(?P<h>\d{2})/)?"
    r"(?P=acct)_vpcflowlogs_(?P=region)_(?P<fl>fl-[0-9a-f]{17})_(?P<ts>\d{8}T\d{4}Z)_[0-9a-f]{8}"
    r"\.log\.(?P<ext>gz|parquet)$"
)
META = {
    "version", "account-id", "interface-id", "vpc-id", "subnet-id", "instance-id",
    "start", "end", "log-status",
}


def _data_files(out: Path) -> list[str]:
    files = []
    for dirpath, _, names in os.walk(out):
        for n in names:
            rel = os.path.relpath(os.path.join(dirpath, n), out)
            if not os.path.basename(rel).startswith("_"):
                files.append(rel.replace(os.sep, "/"))
    return sorted(files)


def _check_layout(out: Path, layout: str, hourly: bool) -> list[re.Match]:
    rx = HIVE_RE if layout == "hive" else DEFAULT_RE
    matches = []
    for rel in _data_files(out):
        m = rx.match(rel)
        assert m, rel
        assert (m.group("h") is not None) == hourly, rel
        ts = dt.datetime.strptime(m.group("ts"), "%Y%m%dT%H%MZ")
        assert ts.minute % 5 == 0, rel
        assert (m.group("y"), m.group("m"), m.group("d")) == (f"{ts:%Y}", f"{ts:%m}", f"{ts:%d}"), rel
        if hourly:
            assert m.group("h") == f"{ts:%H}", rel
        matches.append(m)
    return matches


def _read_text(out: Path) -> tuple[list[dict], dict[str, str]]:
    """Parse every .log.gz with plain Python; returns rows (dicts by header name) and headers."""
    rows, headers = [], {}
    for rel in _data_files(out):
        with gzip.open(out / rel, "rt", newline="") as fh:
            text = fh.read()
        assert text.endswith("\n") and "\r" not in text
        lines = text.split("\n")[:-1]
        header = lines[0].split(" ")
        assert header[0] == "version" and "log-status" in header, rel
        headers[rel] = lines[0]
        slot = dt.datetime.strptime(rel.split("_")[-2], "%Y%m%dT%H%MZ").replace(tzinfo=dt.timezone.utc)
        slot_ts = int(slot.timestamp())
        for line in lines[1:]:
            vals = line.split(" ")
            assert len(vals) == len(header) and all(vals), line
            r = dict(zip(header, vals))
            r["_file"] = rel
            start, end = int(r["start"]), int(r["end"])
            assert 0 <= end - start <= 60, line
            assert slot_ts <= end < slot_ts + 300, (rel, line)  # file slot = 5-minute slot of `end`
            rows.append(r)
    return rows, headers


def _read_parquet(out: Path) -> tuple[list[dict], list]:
    import pyarrow.parquet as pq

    rows, schemas = [], []
    for rel in _data_files(out):
        t = pq.read_table(out / rel)
        schemas.append(t.schema)
        for r in t.to_pylist():
            d = {k.replace("_", "-"): ("-" if v is None else str(v)) for k, v in r.items()}
            d["_file"] = rel
            rows.append(d)
    return rows, schemas


def _truth_from_rows(rows: list[dict]) -> dict:
    """Recompute the truth from parsed rows (independent of the generator's numpy code)."""
    ok = [r for r in rows if r["log-status"] == "OK"]
    status = Counter(r["log-status"] for r in rows)
    for r in rows:
        if r["log-status"] != "OK":
            # AWS shape: interface fields set, the rest "-"
            assert all(v == "-" for k, v in r.items() if k not in META and k != "_file"), r
    keys = Counter(
        (r["account-id"], r["interface-id"], r["srcaddr"], r["dstaddr"], r["srcport"], r["dstport"],
         r["protocol"], r["action"])
        for r in ok
    )
    wkeys = Counter(
        (int(r["start"]) // 3600, r["account-id"], r["interface-id"], r["srcaddr"], r["dstaddr"],
         r["srcport"], r["dstport"], r["protocol"], r["action"])
        for r in ok
    )

    def runts(c: Counter) -> dict:
        return {a: sum(1 for k, n in c.items() if n == 1 and k[-1] == a) for a in ("ACCEPT", "REJECT")}

    by_date = Counter(
        dt.datetime.fromtimestamp(int(r["start"]), tz=dt.timezone.utc).date().isoformat() for r in rows
    )
    return {
        "records": len(rows),
        "data_records": len(ok),
        "nodata": status["NODATA"],
        "skipdata": status["SKIPDATA"],
        "by_action": dict(Counter(r["action"] for r in ok)),
        "packets": sum(int(r["packets"]) for r in ok),
        "bytes": sum(int(r["bytes"]) for r in ok),
        "flow_keys": len(keys),
        "runt_keys_by_action": runts(keys),
        "records_in_multi_record_keys": sum(n for n in keys.values() if n > 1),
        "multi_record_keys": sum(1 for n in keys.values() if n > 1),
        "window_1h": {
            "flow_keys": len(wkeys),
            "runt_keys_by_action": runts(wkeys),
            "records_in_multi_record_keys": sum(n for n in wkeys.values() if n > 1),
            "multi_record_keys": sum(1 for n in wkeys.values() if n > 1),
        },
        "by_date": dict(by_date),
    }


def _assert_reconciles(rows: list[dict], truth: dict) -> None:
    got = _truth_from_rows(rows)
    for k, v in got.items():
        assert truth[k] == v, (k, truth[k], v)


def _all_bytes(out: Path) -> dict[str, bytes]:
    return {rel: (out / rel).read_bytes() for rel in _data_files(out)}


# ------------------------------------------------------------------------------------------------


def test_default_layout_files_and_exact_truth(tmp_path):
    truth = gen.generate(tmp_path, **SMALL)
    assert json.loads((tmp_path / "_truth.json").read_text()) == truth
    matches = _check_layout(tmp_path, "default", hourly=False)
    assert len(matches) == truth["files"] == 288  # one file per 5 minutes for one flow log-day
    assert {m.group("ext") for m in matches} == {"gz"}
    assert len({m.group("fl") for m in matches}) == 1
    rows, headers = _read_text(tmp_path)
    assert set(headers.values()) == {" ".join(gen.DEFAULT_FIELDS)}
    assert truth["records"] == 5000 == len(rows)
    assert truth["nodata"] > 0 and truth["skipdata"] > 0
    assert truth["by_action"]["ACCEPT"] > 0 and truth["by_action"]["REJECT"] > 0
    _assert_reconciles(rows, truth)
    assert truth["data_records"] + truth["nodata"] + truth["skipdata"] == truth["records"]
    assert sum(truth["by_date"].values()) == truth["records"]
    # window_1h can only split keys
    assert truth["window_1h"]["flow_keys"] >= truth["flow_keys"]
    # every row's version is 2 and the gzip header has mtime 0
    assert {r["version"] for r in rows} == {"2"}
    first = next(iter(_all_bytes(tmp_path).values()))
    assert first[:2] == b"\x1f\x8b" and first[4:8] == b"\x00\x00\x00\x00"


def test_traffic_mix_is_realistic(tmp_path):
    truth = gen.generate(tmp_path, records=60000, accounts=1, regions=1, seed=3, workers=2)
    rows, _ = _read_text(tmp_path)
    ok = [r for r in rows if r["log-status"] == "OK"]
    # ~80 % of the records are single-record keys, the rest in keys of ~5 records
    runt_frac = (truth["data_records"] - truth["records_in_multi_record_keys"]) / truth["data_records"]
    assert 0.72 < runt_frac < 0.88, runt_frac
    avg = truth["records_in_multi_record_keys"] / truth["multi_record_keys"]
    assert 3.0 < avg < 8.0, avg
    assert truth["runt_keys_by_action"]["REJECT"] > truth["runt_keys_by_action"]["ACCEPT"]
    # window_1h splits some long sessions
    assert truth["window_1h"]["flow_keys"] > truth["flow_keys"]
    # realistic fields
    v6 = [r for r in ok if ":" in r["srcaddr"]]
    assert 0.01 < len(v6) / len(ok) < 0.15
    assert all(":" in r["dstaddr"] for r in v6)
    icmp = [r for r in ok if r["protocol"] == "1"]
    assert icmp and all(r["srcport"] == "0" and r["dstport"] == "0" for r in icmp)
    ntp_servers = set(gen._NTP_SERVERS)
    ntp = [r for r in ok if r["protocol"] == "17" and {r["srcaddr"], r["dstaddr"]} & ntp_servers]
    assert all("123" in (r["srcport"], r["dstport"]) for r in ntp)
    assert ntp and all(r["packets"] == "1" and r["bytes"] == "76" for r in ntp)
    assert any(r["protocol"] == "17" and "53" in (r["srcport"], r["dstport"]) for r in ok)
    for r in ok:
        p, b = int(r["packets"]), int(r["bytes"])
        assert p >= 1
        if r["protocol"] == "6":
            assert b >= 40 * p, r
    assert max(int(r["packets"]) for r in ok) > 1000
    scans = Counter(r["dstport"] for r in ok if r["action"] == "REJECT")
    assert {"22", "23", "3389", "445"} <= set(scans)
    assert all(re.match(r"^(10|172)\.", r["dstaddr"]) or ":" in r["dstaddr"] or r["dstaddr"] in ("-",)
               or re.match(r"^(10|172)\.", r["srcaddr"]) for r in ok)
    enis = {r["interface-id"] for r in rows}
    assert 8 <= len(enis) <= 20
    assert all(re.match(r"^eni-[0-9a-f]{17}$", e) for e in enis)


@pytest.mark.parametrize("layout,hourly", [("default", True), ("hive", False), ("hive", True)])
def test_layouts(tmp_path, layout, hourly):
    truth = gen.generate(tmp_path, layout=layout, hourly=hourly, **SMALL)
    matches = _check_layout(tmp_path, layout, hourly)
    assert len(matches) == truth["files"] == 288
    if hourly:
        assert len({m.group("h") for m in matches}) == 24
    rows, _ = _read_text(tmp_path)
    _assert_reconciles(rows, truth)


def test_two_days_and_several_flow_logs(tmp_path):
    truth = gen.generate(tmp_path, records=8000, accounts=2, regions=2, days=2, start="2024-02-28",
                         seed=11, workers=2)
    matches = _check_layout(tmp_path, "default", hourly=False)
    assert len(matches) == truth["files"] == 2 * 2 * 2 * 288
    assert len({(m.group("acct"), m.group("region")) for m in matches}) == 4
    assert len({m.group("fl") for m in matches}) == 4
    assert {f"{m.group('y')}-{m.group('m')}-{m.group('d')}" for m in matches} == {"2024-02-28", "2024-02-29"}
    rows, _ = _read_text(tmp_path)
    _assert_reconciles(rows, truth)
    assert set(truth["by_date"]) == {"2024-02-28", "2024-02-29"}
    # interface ids never collide across flow logs
    owner = {}
    for r in rows:
        assert owner.setdefault(r["interface-id"], r["account-id"]) == r["account-id"]


def test_determinism_and_workers(tmp_path):
    a = gen.generate(tmp_path / "a", **SMALL)
    b = gen.generate(tmp_path / "b", **SMALL)
    c = gen.generate(tmp_path / "c", **{**SMALL, "workers": 2})
    d = gen.generate(tmp_path / "d", **{**SMALL, "seed": 8})
    ba, bb, bc, bd = (_all_bytes(tmp_path / x) for x in "abcd")
    assert ba == bb == bc
    assert a == b == c
    assert (tmp_path / "a" / "_truth.json").read_bytes() == (tmp_path / "c" / "_truth.json").read_bytes()
    assert set(bd) != set(ba)
    assert d != a


def test_refuses_to_mix_with_existing_output(tmp_path):
    gen.generate(tmp_path, **SMALL)
    with pytest.raises(FileExistsError):
        gen.generate(tmp_path, **SMALL)
    truth = gen.generate(tmp_path, **{**SMALL, "seed": 9}, overwrite=True)
    assert len(_data_files(tmp_path)) == truth["files"]


def test_parquet_output(tmp_path):
    pa = pytest.importorskip("pyarrow")
    truth = gen.generate(tmp_path, output="parquet", log_format="custom", **SMALL)
    matches = _check_layout(tmp_path, "default", hourly=False)
    assert {m.group("ext") for m in matches} == {"parquet"} and len(matches) == truth["files"]
    rows, schemas = _read_parquet(tmp_path)
    int32 = {"version", "srcport", "dstport", "protocol", "tcp_flags", "traffic_path"}
    int64 = {"packets", "bytes", "start", "end"}
    for s in schemas:
        assert s.names == [f.replace("-", "_") for f in gen.CUSTOM_FIELDS]
        for f in s:
            if f.name in int32:
                assert f.type == pa.int32(), f
            elif f.name in int64:
                assert f.type == pa.int64(), f
            else:
                assert f.type == pa.string(), f
    _assert_reconciles(rows, truth)
    # nulls where the text format has "-"
    nodata = [r for r in rows if r["log-status"] == "NODATA"]
    assert nodata and all(r["srcaddr"] == "-" and r["packets"] == "-" for r in nodata)
    ingress = [r for r in rows if r["flow-direction"] == "ingress"]
    assert ingress and all(r["traffic-path"] == "-" for r in ingress)


def test_parquet_default_format_totals(tmp_path):
    pytest.importorskip("pyarrow")
    truth = gen.generate(tmp_path, output="parquet", **SMALL)
    rows, schemas = _read_parquet(tmp_path)
    assert schemas[0].names == [f.replace("-", "_") for f in gen.DEFAULT_FIELDS]
    _assert_reconciles(rows, truth)
    assert truth["records"] == 5000


def test_custom_format(tmp_path):
    truth = gen.generate(tmp_path, log_format="custom", **SMALL)
    rows, headers = _read_text(tmp_path)
    custom = " ".join(gen.CUSTOM_FIELDS)
    assert set(headers.values()) == {custom}
    assert custom != " ".join(gen.DEFAULT_FIELDS)
    assert {r["version"] for r in rows} == {"5"}
    _assert_reconciles(rows, truth)
    ok = [r for r in rows if r["log-status"] == "OK"]
    assert {r["type"] for r in ok} == {"IPv4", "IPv6"}
    assert {r["flow-direction"] for r in ok} == {"ingress", "egress"}
    assert all(r["traffic-path"] == "-" for r in ok if r["flow-direction"] == "ingress")
    assert all(r["traffic-path"] != "-" for r in ok if r["flow-direction"] == "egress")
    assert all(r["vpc-id"].startswith("vpc-") and r["subnet-id"].startswith("subnet-") for r in rows)
    assert any(r["pkt-dstaddr"] != r["dstaddr"] for r in ok)  # NAT gateway legs
    assert {r["tcp-flags"] for r in ok if r["protocol"] == "6"} >= {"2", "18", "19"}


def test_mixed_format(tmp_path):
    truth = gen.generate(tmp_path, log_format="mixed", **{**SMALL, "regions": 2})
    rows, headers = _read_text(tmp_path)
    by_fl: dict[str, set] = {}
    for rel, h in headers.items():
        fl = DEFAULT_RE.match(rel).group("fl")
        by_fl.setdefault(fl, set()).add(h)
    assert len(by_fl) == 2 and all(len(v) == 1 for v in by_fl.values())  # one format per flow log
    expected = {" ".join(gen.DEFAULT_FIELDS), " ".join(gen.CUSTOM_FIELDS)}
    assert {next(iter(v)) for v in by_fl.values()} == expected
    assert [f["format"] for f in truth["flow_logs"]] == ["default", "custom"]
    _assert_reconciles(rows, truth)


def test_cli(tmp_path):
    py = sys.executable
    h = subprocess.run([py, str(SCRIPT), "--help"], capture_output=True, text=True, check=True)
    opts = ("--out", "--records", "--seed", "--layout", "--hourly", "--format", "--log-format", "--workers")
    for opt in opts:
        assert opt in h.stdout
    r = subprocess.run(
        [py, str(SCRIPT), "--out", str(tmp_path), "--records", "3000", "--accounts", "1", "--regions", "1"],
        capture_output=True, text=True, check=True,
    )
    lines = r.stdout.strip().splitlines()
    assert "100%" in lines[-2] and lines[-1].startswith("wrote 288 files, 3,000 records")
    truth = json.loads((tmp_path / "_truth.json").read_text())
    assert truth["records"] == 3000 and truth["args"]["log_format"] == "default"
    bad = subprocess.run(
        [py, str(SCRIPT), "--out", str(tmp_path), "--records", "10"], capture_output=True, text=True
    )
    assert bad.returncode == 2 and "not empty" in bad.stderr


def test_v11_format_and_its_truth(tmp_path):
    """--field-version 11: the header, version 11, and the truth's v11 figures recounted from the text."""
    truth = gen.generate(tmp_path, log_format="v11", **{**SMALL, "regions": 2})
    rows, headers = _read_text(tmp_path)
    assert set(headers.values()) == {" ".join(gen.V11_FIELDS)}
    assert {r["version"] for r in rows} == {"11"}
    _assert_reconciles(rows, truth)
    ok = [r for r in rows if r["log-status"] == "OK"]
    accepted = [r for r in ok if r["action"] == "ACCEPT"]
    cross = sum(
        int(r["bytes"]) for r in accepted if r["next-hop-az-id"] not in ("-", r["az-id"])
    )
    assert truth["v11"]["cross_az_bytes"] == cross > 0
    reasons = Counter(r["reject-reason"] for r in ok if r["action"] == "REJECT")
    assert truth["v11"]["rejected_records_BPA"] == reasons["BPA"] > 0
    assert truth["v11"]["rejected_records_no_reason"] == reasons["-"] > 0
    for status in "0123":
        assert truth["v11"][f"accepted_bytes_encryption_{status}"] == sum(
            int(r["bytes"]) for r in accepted if r["encryption-status"] == status
        ) > 0
    # BPA on one of the two flow logs only; a next hop only on outgoing records; tags percent-encoded
    by_log = {r["_file"].split("_")[3] for r in ok if r["reject-reason"] == "BPA"}
    assert len(by_log) == 1
    assert all(r["flow-direction"] == "egress" for r in ok if r["next-hop-interface-id"] != "-")
    assert {r["next-hop-interface-type"] for r in ok} >= {"nat_gateway", "interface", "network_load_balancer"}
    assert "web%20team" in {r["instance-tag-2"] for r in rows}
    assert all(r[f] == "-" for r in rows if r["log-status"] != "OK" for f in ("reject-reason", "next-hop-az-id"))
