"""The whole pipeline on generated sample data, local Spark, local folders (`make demo`).

A local EC2 (moto's server on 127.0.0.1) gets the generated VPCs' network interfaces (a NAT gateway's, the load
balancer's, the database's, instances), the generator writes flow logs that use the ids EC2 gave them, then in one
Spark session: `flowspark interfaces` (the snapshot of those interfaces), and `flowspark run`: ingest (records and
flows) -> tag -> ip-ranges (the bundled file) + classify -> every report: the HTML, and beside it in <out>/reports
the CSV (one per section) and XLSX files it refers to for the rows it does not show. One line per step with its
time; the last line is the path of the HTML report. Each run starts afresh in <out>/raw and <out>/lake (EC2 gives new ids every time).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import logging
import os
import shutil
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
AMI = "ami-12c6146b"  # any id: moto's EC2 runs it


def start_ec2() -> tuple[object, str]:
    """moto's server on 127.0.0.1 (a free port), quiet; boto3 in this process pointed at it."""
    import moto.server as server_mod

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one access-log line per request otherwise
    with contextlib.redirect_stdout(io.StringIO()):
        server = server_mod.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    # boto3's own endpoint override; made-up credentials that only moto sees
    os.environ.update(
        AWS_ENDPOINT_URL_EC2=endpoint, AWS_ACCESS_KEY_ID="demo", AWS_SECRET_ACCESS_KEY="demo", AWS_DEFAULT_REGION="us-east-1"
    )
    return server, endpoint


def create_interfaces(flow_logs: list[dict]) -> tuple[dict[int, list[str]], dict[int, list[str]]]:
    """Each flow log's interfaces in EC2 (a VPC per flow log): the NAT gateway's interface with AWS's
    description, an Elastic IP on it, the load balancer's and the database's interfaces, an instance per
    bastion/app interface. Returns the ids EC2 gave: interface ids and instance ids per flow log."""
    import boto3

    eni_ids: dict[int, list[str]] = {}
    inst_ids: dict[int, list[str]] = {}
    for fl in flow_logs:
        ec2 = boto3.client("ec2", region_name=fl["region"])
        first = fl["interfaces"][0]["address"].split(".")
        vpc = ec2.create_vpc(CidrBlock=f"{first[0]}.{first[1]}.0.0/16")["Vpc"]["VpcId"]
        subnets: dict[int, str] = {}
        enis, insts = [], []
        for eni in fl["interfaces"]:
            s = eni["subnet"]
            if s not in subnets:
                cidr = f"{first[0]}.{first[1]}.{s}.0/24"
                subnets[s] = ec2.create_subnet(VpcId=vpc, CidrBlock=cidr)["Subnet"]["SubnetId"]
            kind, addr, sub = eni["kind"], eni["address"], subnets[s]
            if kind in ("bastion", "app"):
                inst = ec2.run_instances(ImageId=AMI, MinCount=1, MaxCount=1, SubnetId=sub, PrivateIpAddress=addr)
                i = inst["Instances"][0]
                enis.append(i["NetworkInterfaces"][0]["NetworkInterfaceId"])
                insts.append(i["InstanceId"])
                continue
            tail = eni["generated_id"][4:]
            description = {
                "nat": f"Interface for NAT Gateway nat-{tail}",
                "load_balancer": f"ELB app/demo-web/{tail[:16]}",
                "database": "RDSNetworkInterface",
            }[kind]
            made = ec2.create_network_interface(SubnetId=sub, PrivateIpAddress=addr, Description=description)
            eni_id = made["NetworkInterface"]["NetworkInterfaceId"]
            if kind == "nat":
                eip = ec2.allocate_address(Domain="vpc")
                ec2.associate_address(AllocationId=eip["AllocationId"], NetworkInterfaceId=eni_id)
            enis.append(eni_id)
            insts.append("-")
        eni_ids[fl["flow_log"]], inst_ids[fl["flow_log"]] = enis, insts
    return eni_ids, inst_ids


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default="demo", help="demo folder: raw logs in <out>/raw, the lake in <out>/lake")
    p.add_argument("--records", type=int, default=200_000, help="records to generate (default 200 000)")
    p.add_argument("--seed", type=int, default=7)
    args = p.parse_args(argv)

    from flowspark.generator import generate, interfaces

    out = Path(args.out).resolve()
    raw, lake, reports = out / "raw", out / "lake", out / "reports"
    for folder in (raw, lake):
        shutil.rmtree(folder, ignore_errors=True)
    t0 = time.time()

    def line(step: str, seconds: float, text: str) -> None:
        print(f"{step:<12} {seconds:6.1f} s  {text}".rstrip(), flush=True)

    t = time.time()
    server, endpoint = start_ec2()
    flow_logs = interfaces(seed=args.seed)
    eni_ids, inst_ids = create_interfaces(flow_logs)
    regions = sorted({fl["region"] for fl in flow_logs})
    n = sum(len(v) for v in eni_ids.values())
    line("ec2", time.time() - t, f"{n} interfaces in {len(flow_logs)} VPCs on a local EC2 (moto, {endpoint})")

    t = time.time()
    truth = generate(
        str(raw), records=args.records, seed=args.seed, overwrite=True, quiet=True, log_format="v11",
        interface_ids=eni_ids, instance_ids=inst_ids, tgw=True,
    )
    line("generate", time.time() - t, f"{truth['records']:,} records (flow log version 11: next hops, reject "
         f"reasons, encryption status, tags; and a Transit Gateway's flow log), {truth['files']:,} objects -> {raw}")

    from flowspark.pipelines.common import create_session, load_config
    from flowspark.pipelines.export import run_export_ocsf
    from flowspark.pipelines.intel import run_intel_load
    from flowspark.pipelines.interfaces import run_interfaces
    from flowspark.pipelines.report import ReportOptions
    from flowspark.pipelines.run import run_daily

    cfg = load_config("local")
    t = time.time()
    spark = create_session(cfg, quiet=True)
    line("spark", time.time() - t, f"session {cfg.spark.master}")
    try:
        t = time.time()
        snap = run_interfaces(spark, str(lake), regions)
        line("interfaces", time.time() - t, f"{sum(snap.per_region.values())} interfaces, {snap.nat_gateways} NAT "
             f"gateways ({', '.join(regions)}) -> {lake}/interfaces")
        # The generator plants a beacon, a scan, an exfiltration burst and NAT traffic to S3 in its first flow
        # log; the NAT cost section is for that flow log's NAT gateway.
        planted = truth.get("hunt_patterns") or {}
        # A watch list in FireHOL's netset format naming the planted C2 peer and scanner, loaded as a
        # threat-intelligence list: the report's "What to look at" starts with who talked with them.
        t = time.time()
        watchlist = out / "demo_watchlist.netset"
        peers = [planted.get("beacon", {}).get("peer"), planted.get("scan", {}).get("source")]
        watchlist.write_text(
            "# demo watch list: the generator's planted C2 peer and scanner (not a real list)\n"
            + "".join(f"{p}\n" for p in peers if p)
        )
        loaded = run_intel_load(spark, str(lake), "demo_watchlist", str(watchlist))
        line("intel", time.time() - t, f"{loaded.entries} addresses -> {lake}/intel_lists (version {loaded.version})")
        nat = planted.get("nat", {}).get("interface_id")
        options = ReportOptions(top_n=cfg.reports.top_n, nat=nat, nat_region=planted.get("region") or None)

        def progress(text: str) -> None:  # "== ingest (84.5 s)" + its summary -> one line with what it did
            lines = text.splitlines()
            head = lines[0].strip("= ").rstrip(")")
            step, _, secs = head.partition(" (")
            line(step, float(secs.split()[0]), _digest(step, lines[1:]))

        summary = run_daily(
            spark, cfg, str(lake), str(raw),
            ip_ranges=str(REPO / "data" / "ip-ranges-2020-04-01.json"),  # the bundled copy: no network needed
            report_formats=("csv", "xlsx", "html"), report_dir=str(reports), report_options=options, progress=progress,
            steps=("ingest", "tag", "classify", "findings", "reports"),
        )
        # The flows as OCSF Network Activity events, laid out as Amazon Security Lake takes a custom source
        t = time.time()
        exported = run_export_ocsf(spark, str(lake), str(out / "ocsf"))
        line("export", time.time() - t, f"{exported.events:,} OCSF events ({exported.records:,} records, "
             f"{exported.partitions} partitions, checked) -> {out / 'ocsf'}")
    finally:
        spark.stop()
        server.stop()
    html = [f for f in summary.report_files if f.endswith(".html")]
    print(f"done         {time.time() - t0:6.1f} s  HTML report:")
    print(html[0] if html else "(no HTML report)")
    return 0


# The summary lines worth one line in the demo, per step (the words each summary starts them with).
_KEEP = {
    "ingest": ("records", "rejected", "flows", "check"),
    "tag": ("tagged", "check"),
    "ip-ranges": ("sync_token", "prefixes", "written"),
    "classify": ("addresses",),
    "findings": ("open", "hidden"),
    "reports": ("note",),
}


def _digest(step: str, summary: list[str]) -> str:
    """A step's summary in one line: its key lines, spaces squeezed ('records 200,000 (NODATA 3...); ...')."""
    keep = _KEEP.get(step, ())
    picked = [" ".join(s.split()) for s in summary if s.strip().split(" ", 1)[0] in keep]
    return "; ".join(picked)[:200]


if __name__ == "__main__":
    sys.exit(main())
