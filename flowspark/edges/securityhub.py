"""Findings as Security Hub takes them: the AWS Security Finding Format (ASFF), checked against AWS's documented
rules before sending, and BatchImportFindings through boto3.

The rules checked (cited from AWS's documentation, read 2026-12-03):
- the required top-level attributes: AwsAccountId, CreatedAt, Description, GeneratorId, Id, ProductArn,
  Resources, SchemaVersion, Severity, Title, Types, UpdatedAt
  (https://docs.aws.amazon.com/securityhub/latest/userguide/asff-required-attributes.html);
- SchemaVersion "2018-10-08"; Types "namespace/category/classifier", namespace one of Software and Configuration
  Checks, TTPs, Effects, Unusual Behaviors, Sensitive Data Identifications
  (https://docs.aws.amazon.com/securityhub/latest/userguide/securityhub-findings-format-type-taxonomy.html);
- a custom integration's ProductArn: arn:aws:securityhub:<region>:<account>:product/<account>/default;
- Title at most 256 characters, Description at most 1,024; timestamps RFC 3339 (e.g. 2024-06-10T08:00:00.000Z);
- at most 100 findings per BatchImportFindings call, 240 KB per finding, 6 MB per call
  (https://docs.aws.amazon.com/securityhub/latest/partnerguide/guidelines-batchimportfindings.html).
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import re
from collections.abc import Iterable, Iterator
from typing import Any

SCHEMA_VERSION = "2018-10-08"
NAMESPACES = (
    "Software and Configuration Checks",
    "TTPs",
    "Effects",
    "Unusual Behaviors",
    "Sensitive Data Identifications",
)
REQUIRED = (
    "AwsAccountId",
    "CreatedAt",
    "Description",
    "GeneratorId",
    "Id",
    "ProductArn",
    "Resources",
    "SchemaVersion",
    "Severity",
    "Title",
    "Types",
    "UpdatedAt",
)
MAX_PER_CALL, MAX_FINDING_BYTES, MAX_CALL_BYTES = 100, 240 * 1024, 6 * 1024 * 1024
MAX_TITLE, MAX_DESCRIPTION = 256, 1024
LABELS = ("INFORMATIONAL", "LOW", "MEDIUM", "HIGH", "CRITICAL")
# detection -> "namespace/category" of ASFF's type taxonomy
TYPE_OF = {
    "port_probe": "TTPs/Discovery",
    "vertical_scan": "TTPs/Discovery",
    "horizontal_sweep": "TTPs/Discovery",
    "brute_force": "TTPs/Credential Access",
    "outbound_dos": "Effects/Denial of Service",
    "spam_bot": "Effects/Resource Consumption",
    "unusual_port": "Unusual Behaviors/Network Flow",
    "traffic_volume": "Effects/Data Exfiltration",
    "beaconing": "TTPs/Command and Control",
    "malicious_ip": "TTPs/Command and Control",
    "tor": "TTPs/Command and Control",
    "mining_pool": "Effects/Resource Consumption",
    "blackhole": "TTPs/Command and Control",
}
_ACCOUNT = re.compile(r"^\d{12}$")
_TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")
_ARN = re.compile(r"^arn:aws[a-z-]*:securityhub:[a-z0-9-]+:(\d{12}):product/(\d{12})/default$")


def product_arn(region: str, account: str) -> str:
    return f"arn:aws:securityhub:{region}:{account}:product/{account}/default"


def _time(value: dt.datetime) -> str:
    return value.replace(tzinfo=None).strftime("%Y-%m-%dT%H:%M:%S.000Z")


def to_asff(f: dict[str, Any], account: str, region: str, updated_at: dt.datetime) -> dict[str, Any]:
    """One finding (a row of the findings table, as a dict) in ASFF."""
    local, peer = f.get("local"), f.get("peer")
    title = f"flowspark {f['detection']}: " + " / ".join(x for x in (local, peer) if x)
    resource = (
        {"Type": "AwsEc2NetworkInterface", "Id": f["interface_id"], "Region": region}
        if f.get("interface_id")
        else {"Type": "Other", "Id": local or peer or f["finding_id"], "Region": region}
    )
    network: dict[str, Any] = {"Direction": "OUT" if f.get("direction") == "outbound" else "IN"}
    src, dst = (local, peer) if f.get("direction") == "outbound" else (peer, local)
    for key, addr in (("Source", src), ("Destination", dst)):
        if addr:
            network[f"{key}IpV{ipaddress.ip_address(addr).version}"] = addr
    if f.get("port") is not None:
        network["DestinationPort"] = int(f["port"])
    if f.get("protocol") is not None:
        network["Protocol"] = {6: "TCP", 17: "UDP", 1: "ICMP"}.get(int(f["protocol"]), str(f["protocol"]))
    return {
        "SchemaVersion": SCHEMA_VERSION,
        "Id": f"flowspark/{f['finding_id']}",
        "ProductArn": product_arn(region, account),
        "GeneratorId": f"flowspark-{f['detection']}",
        "AwsAccountId": account,
        "Types": [f"{TYPE_OF[f['detection']]}/flowspark-{f['detection']}"],
        "FirstObservedAt": _time(f["first_seen"]),
        "LastObservedAt": _time(f["last_seen"]),
        "CreatedAt": _time(f["first_seen"]),
        "UpdatedAt": _time(updated_at),
        "Severity": {"Label": f["severity"], "Original": f["severity"]},
        "Title": title[:MAX_TITLE],
        "Description": (f.get("evidence") or f["title"])[:MAX_DESCRIPTION],
        "Resources": [resource],
        "Network": network,
        "ProductFields": {
            "flowspark/finding_id": f["finding_id"],
            "flowspark/detection": f["detection"],
            "flowspark/technique": f"{f['technique']} {f.get('technique_name') or ''}".strip(),
            "flowspark/days": str(f.get("days")),
            "flowspark/flows": str(f.get("flows")),
            "flowspark/bytes": str(f.get("bytes")),
        },
    }


def problems(finding: dict[str, Any]) -> list[str]:
    """What in one ASFF finding breaks AWS's documented rules (empty: none)."""
    out = [f"missing {k}" for k in REQUIRED if k not in finding]
    if out:
        return out
    if finding["SchemaVersion"] != SCHEMA_VERSION:
        out.append(f"SchemaVersion {finding['SchemaVersion']!r}, not {SCHEMA_VERSION}")
    if not _ACCOUNT.match(str(finding["AwsAccountId"])):
        out.append(f"AwsAccountId {finding['AwsAccountId']!r} is not 12 digits")
    arn = _ARN.match(str(finding["ProductArn"]))
    if not arn or arn.group(1) != finding["AwsAccountId"] or arn.group(2) != finding["AwsAccountId"]:
        out.append(f"ProductArn {finding['ProductArn']!r} is not the account's default (custom integration) product")
    for key in ("CreatedAt", "UpdatedAt", "FirstObservedAt", "LastObservedAt"):
        if key in finding and not _TIME.match(str(finding[key])):
            out.append(f"{key} {finding[key]!r} is not an RFC 3339 UTC time")
    types = finding["Types"]
    if not isinstance(types, list) or not types:
        out.append("Types must be a non-empty list")
    else:
        for t in types:
            parts = str(t).split("/")
            if len(parts) > 3 or parts[0] not in NAMESPACES:
                out.append(f"Type {t!r} is not namespace/category/classifier of ASFF's taxonomy")
    if not isinstance(finding["Severity"], dict) or finding["Severity"].get("Label") not in LABELS:
        out.append(f"Severity.Label must be one of {', '.join(LABELS)}")
    if not isinstance(finding["Title"], str) or not 0 < len(finding["Title"]) <= MAX_TITLE:
        out.append(f"Title must be 1-{MAX_TITLE} characters")
    if not isinstance(finding["Description"], str) or not 0 < len(finding["Description"]) <= MAX_DESCRIPTION:
        out.append(f"Description must be 1-{MAX_DESCRIPTION} characters")
    res = finding["Resources"]
    if (
        not isinstance(res, list)
        or not res
        or not all(isinstance(r, dict) and r.get("Type") and r.get("Id") for r in res)
    ):
        out.append("Resources must be a non-empty list of {Type, Id}")
    size = len(json.dumps(finding).encode())
    if size > MAX_FINDING_BYTES:
        out.append(f"{size:,} bytes, more than {MAX_FINDING_BYTES:,}")
    return out


def batches(findings: Iterable[dict[str, Any]]) -> Iterator[list[dict[str, Any]]]:
    """Findings in calls of at most MAX_PER_CALL findings and MAX_CALL_BYTES bytes."""
    batch: list[dict[str, Any]] = []
    size = 0
    for f in findings:
        n = len(json.dumps(f).encode())
        if batch and (len(batch) == MAX_PER_CALL or size + n > MAX_CALL_BYTES):
            yield batch
            batch, size = [], 0
        batch.append(f)
        size += n
    if batch:
        yield batch


def send(findings: list[dict[str, Any]], region: str, endpoint_url: str | None = None) -> tuple[int, list[str]]:
    """BatchImportFindings in batches; (imported, failure lines). Every finding is checked first: one that
    breaks the rules is not sent (ValueError naming it and why)."""
    import boto3

    for f in findings:
        why = problems(f)
        if why:
            raise ValueError(f"finding {f.get('Id')} is not valid ASFF: {'; '.join(why)}")
    client = boto3.client("securityhub", region_name=region, endpoint_url=endpoint_url)
    imported, failed = 0, []
    for batch in batches(findings):
        resp = client.batch_import_findings(Findings=batch)
        imported += int(resp.get("SuccessCount", 0))
        failed += [
            f"{x.get('Id')}: {x.get('ErrorCode')} {x.get('ErrorMessage')}" for x in resp.get("FailedFindings", [])
        ]
    return imported, failed
