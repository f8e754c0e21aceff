"""EC2's network interfaces (DescribeNetworkInterfaces), one snapshot per call: what each ENI of the flow
logs is (a NAT gateway, an instance, a load balancer, ...); and the flow logs themselves (DescribeFlowLogs):
what each covers, its format, and the tag keys of its EC2 tag fields (TagFieldSpecifications).

Credentials and region come from the standard AWS chain (environment, profile, instance/task role) and
are never printed. A local EC2 (moto's server in the tests and the demo) is reached the way boto3 itself
supports: AWS_ENDPOINT_URL_EC2 (or AWS_ENDPOINT_URL) in the environment, or `endpoint_url` here.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from typing import Any, Optional

from flowspark.core.reports import tag_field_keys

# "Interface for NAT Gateway nat-0123456789abcdef0": the description AWS gives a NAT gateway's ENI
_NAT_ID = re.compile(r"\bnat-[0-9a-f]+\b")

FIELDS = (
    "interface_id",
    "interface_type",
    "description",
    "instance_id",
    "nat_gateway_id",
    "vpc_id",
    "subnet_id",
    "private_ips",
    "public_ips",
    "requester_id",
    "region",
)


def default_region() -> Optional[str]:
    """The region of the standard chain (AWS_REGION, AWS_DEFAULT_REGION, the profile), or None."""
    import boto3

    return boto3.session.Session().region_name


def nat_gateway_id(eni: dict[str, Any]) -> Optional[str]:
    """The NAT gateway an interface belongs to: from its description ("Interface for NAT Gateway nat-...")
    or, failing that, its attachment or requester when they name one."""
    for text in (
        eni.get("Description"),
        (eni.get("Attachment") or {}).get("InstanceId"),
        eni.get("RequesterId"),
    ):
        m = _NAT_ID.search(text or "")
        if m:
            return m.group(0)
    return None


def _unique(values: Iterable[Optional[str]]) -> list[str]:
    return list(dict.fromkeys(v for v in values if v))


def interface_row(eni: dict[str, Any], region: str) -> dict[str, Any]:
    """One DescribeNetworkInterfaces item -> one row of <lake>/interfaces (without snapshot_time).
    private_ips: the interface's IPv4 private addresses (primary first) and its IPv6 addresses, i.e. the
    addresses flow logs show as the interface's own; public_ips: the public/Elastic IPs associated."""
    privates = eni.get("PrivateIpAddresses") or []
    private = _unique(
        [eni.get("PrivateIpAddress")]
        + [p.get("PrivateIpAddress") for p in privates]
        + [a.get("Ipv6Address") for a in eni.get("Ipv6Addresses") or []]
    )
    public = _unique(
        [(eni.get("Association") or {}).get("PublicIp")]
        + [(p.get("Association") or {}).get("PublicIp") for p in privates]
    )
    return {
        "interface_id": eni.get("NetworkInterfaceId"),
        "interface_type": eni.get("InterfaceType"),
        "description": eni.get("Description") or None,
        "instance_id": (eni.get("Attachment") or {}).get("InstanceId"),
        "nat_gateway_id": nat_gateway_id(eni),
        "vpc_id": eni.get("VpcId"),
        "subnet_id": eni.get("SubnetId"),
        "private_ips": private,
        "public_ips": public,
        "requester_id": eni.get("RequesterId"),
        "region": region,
    }


def describe_interfaces(region: str, endpoint_url: Optional[str] = None) -> Iterator[dict[str, Any]]:
    """Every network interface of one region (paginated), as interface_row rows."""
    import boto3

    client = boto3.client("ec2", region_name=region, endpoint_url=endpoint_url)
    for page in client.get_paginator("describe_network_interfaces").paginate(PaginationConfig={"PageSize": 1000}):
        for eni in page.get("NetworkInterfaces", []):
            yield interface_row(eni, region)


FLOW_LOG_FIELDS = (
    "flow_log_id",
    "resource_id",
    "log_format",
    "log_destination_type",
    "log_destination",
    "traffic_type",
    "tag_keys",
    "region",
)


def flow_log_row(flow_log: dict[str, Any], region: str) -> dict[str, Any]:
    """One DescribeFlowLogs item -> one row of <lake>/flow_logs (without snapshot_time); tag_keys: the
    record field each of its TagFieldSpecifications' keys fills ({"instance-tag": "Name", ...}; {} without
    any)."""
    return {
        "flow_log_id": flow_log.get("FlowLogId"),
        "resource_id": flow_log.get("ResourceId"),
        "log_format": flow_log.get("LogFormat"),
        "log_destination_type": flow_log.get("LogDestinationType"),
        "log_destination": flow_log.get("LogDestination") or flow_log.get("LogGroupName"),
        "traffic_type": flow_log.get("TrafficType"),
        "tag_keys": tag_field_keys(flow_log.get("TagFieldSpecifications")),
        "region": region,
    }


class NotAllowed(Exception):
    """The credentials may not make this call (UnauthorizedOperation / AccessDenied): the message says which."""


def describe_flow_logs(region: str, endpoint_url: Optional[str] = None) -> Iterator[dict[str, Any]]:
    """Every flow log of one region (paginated), as flow_log_row rows. NotAllowed when the credentials lack
    ec2:DescribeFlowLogs."""
    import boto3
    from botocore.exceptions import ClientError

    client = boto3.client("ec2", region_name=region, endpoint_url=endpoint_url)
    try:
        for page in client.get_paginator("describe_flow_logs").paginate(PaginationConfig={"PageSize": 1000}):
            for flow_log in page.get("FlowLogs", []):
                yield flow_log_row(flow_log, region)
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "")
        if code in ("UnauthorizedOperation", "AccessDenied", "AccessDeniedException"):
            raise NotAllowed(f"ec2:DescribeFlowLogs in {region} is not allowed ({code})") from None
        raise
