"""`flowspark interfaces` against moto's EC2 in server mode on 127.0.0.1: two regions, a NAT gateway's
interface (by its description), an instance's, a plain one with an Elastic IP, and a flow log in each region;
the whole tables compared, then a second snapshot (history kept, the latest per interface read). The tag keys
of a flow log's TagFieldSpecifications (which moto does not keep) are read from a DescribeFlowLogs response
in EC2's wire format, parsed by botocore itself."""

from __future__ import annotations

import pytest
from chispa import assert_df_equality
from pyspark.sql import functions as F

import flowspark.cli
from flowspark.core import reports as R
from flowspark.edges import ec2, tables
from flowspark.pipelines.interfaces import FLOW_LOGS_SCHEMA, SCHEMA


@pytest.fixture(scope="module")
def moto_ec2():
    import moto.server as server_mod

    server = server_mod.ThreadedMotoServer(ip_address="127.0.0.1", port=0)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def aws_env(moto_ec2, monkeypatch):
    """boto3's own endpoint override (AWS_ENDPOINT_URL_EC2) and fake credentials; nothing else set."""
    monkeypatch.setenv("AWS_ENDPOINT_URL_EC2", moto_ec2)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAFLOWSPARKKEYID")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "flowspark-secret-value")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    return moto_ec2


def _client(region):
    import boto3

    return boto3.client("ec2", region_name=region)


def test_nat_gateway_id_from_the_description_or_the_requester():
    assert ec2.nat_gateway_id({"Description": "Interface for NAT Gateway nat-0abc123def4567890"}) == (
        "nat-0abc123def4567890"
    )
    assert ec2.nat_gateway_id({"Description": "", "RequesterId": "nat-0f00"}) == "nat-0f00"
    assert ec2.nat_gateway_id({"Description": "Primary network interface", "RequesterId": "AIDA..."}) is None
    assert ec2.nat_gateway_id({"Description": "ELB app/natural-web/50dc6c495c0c9188"}) is None


@pytest.mark.slow  # a moto server and Delta writes
def test_interfaces_command_snapshots_every_region(spark, aws_env, tmp_path, monkeypatch, capsys):
    east, west = _client("us-east-1"), _client("eu-west-1")
    vpc = east.create_vpc(CidrBlock="10.1.0.0/16")["Vpc"]["VpcId"]
    sub = east.create_subnet(VpcId=vpc, CidrBlock="10.1.1.0/24")["Subnet"]["SubnetId"]
    nat = east.create_network_interface(
        SubnetId=sub,
        Description="Interface for NAT Gateway nat-0abc1234567890def",
        PrivateIpAddresses=[
            {"PrivateIpAddress": "10.1.1.10", "Primary": True},
            {"PrivateIpAddress": "10.1.1.11", "Primary": False},
        ],
    )["NetworkInterface"]["NetworkInterfaceId"]
    eip = east.allocate_address(Domain="vpc")
    east.associate_address(AllocationId=eip["AllocationId"], NetworkInterfaceId=nat)
    inst = east.run_instances(
        ImageId="ami-12c6146b", MinCount=1, MaxCount=1, SubnetId=sub, PrivateIpAddress="10.1.1.20"
    )["Instances"][0]
    inst_eni = inst["NetworkInterfaces"][0]["NetworkInterfaceId"]
    vpc_w = west.create_vpc(CidrBlock="10.2.0.0/16")["Vpc"]["VpcId"]
    sub_w = west.create_subnet(VpcId=vpc_w, CidrBlock="10.2.1.0/24")["Subnet"]["SubnetId"]
    lb = west.create_network_interface(
        SubnetId=sub_w, Description="ELB app/web/50dc6c495c0c9188", PrivateIpAddress="10.2.1.5"
    )["NetworkInterface"]["NetworkInterfaceId"]
    # a flow log of the VPC to S3 (v11 fields with the instance's tags) and one of the load balancer's
    # interface to CloudWatch Logs; moto 5 keeps no TagFieldSpecifications, so both have no tag keys here
    import boto3

    boto3.client("s3", region_name="us-east-1", endpoint_url=aws_env).create_bucket(Bucket="flow-bucket")
    v11 = "${version} ${interface-id} ${srcaddr} ${dstaddr} ${bytes} ${instance-tag} ${instance-tag-2}"
    (vpc_log,) = east.create_flow_logs(
        ResourceIds=[vpc],
        ResourceType="VPC",
        TrafficType="ALL",
        LogDestinationType="s3",
        LogDestination="arn:aws:s3:::flow-bucket",
        LogFormat=v11,
        TagFieldSpecifications=[{"ResourceType": "instance", "TagKeys": ["Name", "team"]}],
    )["FlowLogIds"]
    (lb_log,) = west.create_flow_logs(
        ResourceIds=[lb],
        ResourceType="NetworkInterface",
        TrafficType="REJECT",
        LogDestinationType="cloud-watch-logs",
        LogGroupName="lb-flows",
        DeliverLogsPermissionArn="arn:aws:iam::123456789012:role/flow-logs",
    )["FlowLogIds"]

    lake = str(tmp_path / "lake")
    monkeypatch.setattr(flowspark.cli, "spark_for", lambda c: spark)
    assert flowspark.cli.main(["interfaces", "--lake", lake, "--regions", "us-east-1,eu-west-1"]) == 0
    out = capsys.readouterr().out
    assert "interfaces     3 (us-east-1 2, eu-west-1 1)" in out and "nat gateways   1" in out
    assert "flow logs      2 (0 with tag keys)" in out
    assert "AKIAFLOWSPARKKEYID" not in out and "flowspark-secret-value" not in out  # no credential printed

    got = tables.read(spark, lake, tables.INTERFACES)
    requester = [r["RequesterId"] for r in east.describe_network_interfaces()["NetworkInterfaces"]][0]
    expected = spark.createDataFrame(
        [
            (nat, "interface", "Interface for NAT Gateway nat-0abc1234567890def", None, "nat-0abc1234567890def",
             vpc, sub, ["10.1.1.10", "10.1.1.11"], [eip["PublicIp"]], requester, "us-east-1"),
            (inst_eni, "interface", "Primary network interface", inst["InstanceId"], None,
             vpc, sub, ["10.1.1.20"], [], requester, "us-east-1"),
            (lb, "interface", "ELB app/web/50dc6c495c0c9188", None, None,
             vpc_w, sub_w, ["10.2.1.5"], [], requester, "eu-west-1"),
        ],
        SCHEMA.fieldNames()[:-1],
    )
    assert_df_equality(
        got.drop("snapshot_time"), expected, ignore_row_order=True, ignore_nullable=True, ignore_column_order=False
    )
    times = {r[0] for r in got.select("snapshot_time").collect()}
    assert len(times) == 1
    (t1,) = times
    # the flow logs, in the same snapshot
    logs = tables.read(spark, lake, tables.FLOW_LOGS)
    lb_format = west.describe_flow_logs(FlowLogIds=[lb_log])["FlowLogs"][0].get("LogFormat")  # moto's default
    expected_logs = [
        (vpc_log, vpc, v11, "s3", "arn:aws:s3:::flow-bucket", "ALL", {}, "us-east-1"),
        (lb_log, lb, lb_format, "cloud-watch-logs", "lb-flows", "REJECT", {}, "eu-west-1"),
    ]
    # a map column: the rows compared on the driver (chispa sorts rows by every column, and maps do not sort)
    assert logs.schema.simpleString() == FLOW_LOGS_SCHEMA.simpleString()
    assert sorted(tuple(r) for r in logs.drop("snapshot_time").collect()) == sorted(expected_logs)
    assert {r[0] for r in logs.select("snapshot_time").distinct().collect()} == {t1}

    # the resource each interface is, as reports name it
    labels = {r.interface_id: r.resource for r in R.interface_resources(R.latest_interfaces(got)).collect()}
    assert labels == {
        nat: f"nat-0abc1234567890def (NAT gateway, {sub})",
        inst_eni: f"{inst['InstanceId']} (instance)",
        lb: "ELB app/web/50dc6c495c0c9188",
    }
    by_addr = {r.address: r.resource for r in R.address_resources(R.latest_interfaces(got)).collect()}
    assert by_addr[eip["PublicIp"]] == by_addr["10.1.1.11"] == labels[nat]

    # a second snapshot after the load balancer's interface is gone: history kept, the latest per interface
    west.delete_network_interface(NetworkInterfaceId=lb)
    east.modify_network_interface_attribute(
        NetworkInterfaceId=nat, Description={"Value": "Interface for NAT Gateway nat-0ffff"}
    )
    assert flowspark.cli.main(["interfaces", "--lake", lake, "--regions", "us-east-1,eu-west-1"]) == 0
    all_rows = tables.read(spark, lake, tables.INTERFACES)
    assert all_rows.count() == 5 and all_rows.select("snapshot_time").distinct().count() == 2
    assert tables.read(spark, lake, tables.FLOW_LOGS).count() == 4  # the two flow logs again: history kept
    latest = R.latest_interfaces(all_rows)
    got_latest = {r.interface_id: (r.nat_gateway_id, r.snapshot_time == t1) for r in latest.collect()}
    assert got_latest == {nat: ("nat-0ffff", False), inst_eni: (None, False), lb: (None, True)}


@pytest.mark.slow
def test_default_region_and_errors(spark, aws_env, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(flowspark.cli, "spark_for", lambda c: spark)
    lake = str(tmp_path / "lake")
    # no --regions: the chain's region (AWS_DEFAULT_REGION here)
    assert flowspark.cli.main(["interfaces", "--lake", lake]) == 0
    assert "(us-east-1 " in capsys.readouterr().out
    assert tables.read(spark, lake, tables.INTERFACES).where(F.col("region") != "us-east-1").count() == 0
    # no region anywhere: one line saying what to do
    monkeypatch.delenv("AWS_DEFAULT_REGION")
    monkeypatch.delenv("AWS_REGION", raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    assert flowspark.cli.main(["interfaces", "--lake", lake]) == 2
    err = capsys.readouterr().err.strip()
    assert err == "flowspark interfaces: error: no AWS region: pass --regions r1,r2 or set AWS_REGION (or a profile's region)"


def test_generator_uses_the_interface_ids_an_ec2_gave(tmp_path):
    """The demo creates the generated interfaces in EC2 first and generates with the ids EC2 gave back."""
    import gzip

    from flowspark.generator import generate, interfaces

    args = dict(records=30_000, seed=3, accounts=1, regions=1)
    (fl,) = interfaces(seed=3, accounts=1, regions=1)
    kinds = [e["kind"] for e in fl["interfaces"]]
    assert kinds[:5] == ["nat", "load_balancer", "load_balancer", "database", "bastion"] and set(kinds[5:]) == {"app"}
    plain = generate(str(tmp_path / "a"), workers=1, **args)
    assert plain["hunt_patterns"]["nat"]["interface_id"] == fl["interfaces"][0]["generated_id"]
    assert plain["hunt_patterns"]["nat"]["address"] == fl["interfaces"][0]["address"]
    ids = [f"eni-{j:017x}" for j in range(len(kinds))]
    given = generate(str(tmp_path / "b"), workers=1, interface_ids={0: ids}, **args)
    assert given["hunt_patterns"]["nat"]["interface_id"] == ids[0]
    same = {k: v for k, v in given.items() if k != "hunt_patterns"}
    assert same == {k: v for k, v in plain.items() if k != "hunt_patterns"}  # only the ids differ
    seen = set()
    for f in (tmp_path / "b").rglob("*.log.gz"):
        with gzip.open(f, "rt") as fh:
            seen |= {line.split()[2] for line in fh.read().splitlines()[1:]}
    assert seen <= set(ids) and ids[0] in seen
    with pytest.raises(ValueError, match="2 interface ids given for"):
        generate(str(tmp_path / "c"), workers=1, interface_ids={0: ids[:2]}, **args)


# A DescribeFlowLogs response as EC2 sends it (the query protocol's XML; element names from botocore's ec2
# model: FlowLog's tagFieldSpecificationSet, TagFieldSpecificationResponse's resourceType and tagKeySet).
DESCRIBE_FLOW_LOGS_XML = b"""<?xml version="1.0" encoding="UTF-8"?>
<DescribeFlowLogsResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/">
    <requestId>2d96dae3-504b-4fc4-bf50-266EXAMPLE</requestId>
    <flowLogSet>
        <item>
            <creationTime>2026-12-01T10:00:00.000Z</creationTime>
            <deliverLogsStatus>SUCCESS</deliverLogsStatus>
            <flowLogId>fl-0123456789abcdef0</flowLogId>
            <flowLogStatus>ACTIVE</flowLogStatus>
            <resourceId>vpc-0aaa</resourceId>
            <trafficType>ALL</trafficType>
            <logDestinationType>s3</logDestinationType>
            <logDestination>arn:aws:s3:::flow-bucket</logDestination>
            <logFormat>${version} ${srcaddr} ${instance-tag} ${instance-tag-2} ${asg-tag}</logFormat>
            <maxAggregationInterval>60</maxAggregationInterval>
            <tagFieldSpecificationSet>
                <item>
                    <resourceType>instance</resourceType>
                    <tagKeySet>
                        <item>Name</item>
                        <item>team</item>
                    </tagKeySet>
                </item>
                <item>
                    <resourceType>auto-scaling-group</resourceType>
                    <tagKeySet>
                        <item>service</item>
                    </tagKeySet>
                </item>
            </tagFieldSpecificationSet>
        </item>
        <item>
            <flowLogId>fl-0fedcba9876543210</flowLogId>
            <resourceId>eni-0bbb</resourceId>
            <trafficType>REJECT</trafficType>
            <logDestinationType>cloud-watch-logs</logDestinationType>
            <logGroupName>lb-flows</logGroupName>
        </item>
    </flowLogSet>
</DescribeFlowLogsResponse>
"""


def test_tag_keys_from_a_describe_flow_logs_response_parsed_by_botocore():
    """moto keeps no TagFieldSpecifications: the wire format AWS documents, parsed by botocore's own parser
    against the operation's output shape, then flowspark's mapping (the first key of a resource type fills
    its field, the second the field's -2)."""
    import botocore.session
    from botocore.parsers import create_parser

    model = botocore.session.get_session().get_service_model("ec2")
    output = model.operation_model("DescribeFlowLogs").output_shape
    parsed = create_parser("ec2").parse({"body": DESCRIBE_FLOW_LOGS_XML, "headers": {}, "status_code": 200}, output)
    first, second = parsed["FlowLogs"]
    assert first["TagFieldSpecifications"] == [
        {"ResourceType": "instance", "TagKeys": ["Name", "team"]},
        {"ResourceType": "auto-scaling-group", "TagKeys": ["service"]},
    ]
    assert ec2.flow_log_row(first, "us-east-1") == {
        "flow_log_id": "fl-0123456789abcdef0",
        "resource_id": "vpc-0aaa",
        "log_format": "${version} ${srcaddr} ${instance-tag} ${instance-tag-2} ${asg-tag}",
        "log_destination_type": "s3",
        "log_destination": "arn:aws:s3:::flow-bucket",
        "traffic_type": "ALL",
        "tag_keys": {"instance-tag": "Name", "instance-tag-2": "team", "asg-tag": "service"},
        "region": "us-east-1",
    }
    # no TagFieldSpecifications: no keys; a CloudWatch Logs flow log's destination is its log group
    row = ec2.flow_log_row(second, "us-east-1")
    assert (row["tag_keys"], row["log_destination"], row["log_format"]) == ({}, "lb-flows", None)


def test_tag_field_keys_by_resource_type_and_position():
    specs = [
        {"ResourceType": "network-interface", "TagKeys": ["Name"]},
        {"ResourceType": "auto-scaling-group", "TagKeys": ["app", "env"]},
        {"ResourceType": "instance", "TagKeys": ["owner"]},
        {"ResourceType": "transit-gateway", "TagKeys": ["x"]},  # a type AWS might add: no field of ours
    ]
    assert R.tag_field_keys(specs) == {
        "interface-tag": "Name",
        "asg-tag": "app",
        "asg-tag-2": "env",
        "instance-tag": "owner",
    }
    assert R.tag_field_keys(None) == {} and R.tag_field_keys([]) == {}
