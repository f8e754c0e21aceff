"""`flowspark interfaces` against moto's EC2 in server mode on 127.0.0.1: two regions, a NAT gateway's
interface (by its description), an instance's, a plain one with an Elastic IP; the whole table compared,
then a second snapshot (history kept, the latest per interface read)."""

from __future__ import annotations

import pytest
from chispa import assert_df_equality
from pyspark.sql import functions as F

import flowspark.cli
from flowspark.core import reports as R
from flowspark.edges import ec2, tables
from flowspark.pipelines.interfaces import SCHEMA


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

    lake = str(tmp_path / "lake")
    monkeypatch.setattr(flowspark.cli, "spark_for", lambda c: spark)
    assert flowspark.cli.main(["interfaces", "--lake", lake, "--regions", "us-east-1,eu-west-1"]) == 0
    out = capsys.readouterr().out
    assert "interfaces     3 (us-east-1 2, eu-west-1 1)" in out and "nat gateways   1" in out
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
