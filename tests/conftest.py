"""One session-scoped SparkSession (local[2], UTC, Delta, small shuffles) for the whole suite."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
# Real public data with expected answers, copied into the repository (tests/data/samples/README.md
# names the source of every folder).
SAMPLES = REPO / "tests" / "data" / "samples"


@pytest.fixture(scope="session")
def cfg():
    from flowspark.edges.config import load_config, with_overrides

    # 2 GB of driver heap: the whole suite in one session on Spark 3.5 + Delta 3.3 ran out of 1 GB ("GC
    # overhead limit exceeded" in test_reports, then a stopped SparkContext for every later test, 2026-11-29)
    return with_overrides(
        load_config("local"), spark={"master": "local[2]", "shuffle_partitions": 2, "driver_memory": "2g"}
    )


@pytest.fixture(scope="session")
def spark(cfg):
    from flowspark.edges.session import create_session

    session = create_session(cfg)
    yield session
    session.stop()


@pytest.fixture(scope="session")
def samples() -> Path:
    return SAMPLES


class MotoS3:
    """A real S3 HTTP endpoint on loopback (moto's server mode), a boto3 client for it, and S3A pointed at it."""

    def __init__(self, spark, server, endpoint: str, client) -> None:
        self.spark, self.server, self.endpoint, self.client = spark, server, endpoint, client

    def point_s3a_here(self, bucket: str | None = None) -> None:
        """S3A settings for this endpoint: for every bucket, or (per-bucket keys) for one bucket only."""
        prefix = f"fs.s3a.bucket.{bucket}." if bucket else "fs.s3a."
        hconf = self.spark.sparkContext._jsc.hadoopConfiguration()
        for k, v in {
            "endpoint": self.endpoint,
            "path.style.access": "true",
            "connection.ssl.enabled": "false",
            "access.key": "test",
            "secret.key": "test",
            "endpoint.region": "us-east-1",
            "aws.credentials.provider": "org.apache.hadoop.fs.s3a.SimpleAWSCredentialsProvider",
            "change.detection.mode": "none",
        }.items():
            hconf.set(prefix + k, v)


@pytest.fixture(scope="session")
def moto_s3(spark):
    import boto3
    import moto.server as server_mod
    server = server_mod.ThreadedMotoServer(ip_address="127.0.0.1", port=0)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    client = boto3.client(
        "s3", endpoint_url=endpoint, aws_access_key_id="test", aws_secret_access_key="test", region_name="us-east-1"
    )
    yield MotoS3(spark, server, endpoint, client)
    server.stop()


# Fixtures that generate tens of thousands of records or start a server: a test that uses one is slow
# (`make test-fast` leaves it out). Tests that are slow for other reasons carry @pytest.mark.slow.
SLOW_FIXTURES = {"generated", "gen_lake", "moto_s3", "sample_lake"}


# Tests measured slow (tests/slow.txt: 15 s or more each in a whole-suite run on the CI machine).
MEASURED_SLOW = tuple(
    line.strip() for line in (REPO / "tests" / "slow.txt").read_text().splitlines() if line.strip() and not line.startswith("#")
)


# CI's rotation (scripts/test_lanes.sh): besides every test not slow, one slice of the slow tests, packed by
# their measured seconds (tests/slow_seconds.txt) into slices of about SLICE_SECONDS each; which slice is the
# commit count modulo the number of slices, so consecutive commits run every slice in turn.
SLICE_SECONDS = 200
UNMEASURED_SECONDS = 30


def pytest_addoption(parser):
    parser.addoption(
        "--slow-rotation",
        type=int,
        default=None,
        metavar="N",
        help="run the tests not marked slow and slice N (modulo the number of slices) of the slow ones "
        "(CI: N is the commit count; tests/slow_seconds.txt)",
    )


def _slow_slices(nodeids: list[str]) -> list[list[str]]:
    """The slow tests in slices of about SLICE_SECONDS of measured time each: largest first, each into the
    slice with the least time so far (ties: the first)."""
    seconds = {}
    for line in (REPO / "tests" / "slow_seconds.txt").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            value, node = line.split(" ", 1)
            seconds[node] = float(value)
    cost = {n: seconds.get(n, UNMEASURED_SECONDS) for n in nodeids}
    n = max(1, -(-int(sum(cost.values())) // SLICE_SECONDS))
    slices: list[list[str]] = [[] for _ in range(n)]
    load = [0.0] * n
    for node in sorted(nodeids, key=lambda x: (-cost[x], x)):
        i = load.index(min(load))
        slices[i].append(node)
        load[i] += cost[node]
    return slices


def pytest_collection_modifyitems(config, items):
    for item in items:
        if SLOW_FIXTURES & set(getattr(item, "fixturenames", ())) or item.nodeid.startswith(MEASURED_SLOW):
            item.add_marker(pytest.mark.slow)
    rotation = config.getoption("--slow-rotation")
    if rotation is None:
        return
    slow = [item.nodeid for item in items if item.get_closest_marker("slow")]
    slices = _slow_slices(slow)
    k = rotation % len(slices)
    chosen = set(slices[k])
    keep = [item for item in items if not item.get_closest_marker("slow") or item.nodeid in chosen]
    config.hook.pytest_deselected(items=[item for item in items if item not in keep])
    items[:] = keep
    config._slow_rotation = (k, len(slices), len(chosen), len(slow))


def pytest_report_collectionfinish(config):
    if getattr(config, "_slow_rotation", None):
        k, n, chosen, slow = config._slow_rotation
        return f"slow tests: slice {k + 1} of {n} ({chosen} of {slow}; CI's rotation, tests/slow_seconds.txt)"
    return None


@pytest.fixture(scope="session")
def docs_lake(spark, cfg, samples, tmp_path_factory):
    """AWS's documented flow log examples (tests/data/samples/aws-docs-flow-log-examples: default format,
    IPv6, NODATA/SKIPDATA, NAT, Transit Gateway, v5 service, traffic path and direction) ingested once:
    (lake, summary). Read only: test_ingest checks the ingest, test_ocsf exports it."""
    from flowspark.pipelines.ingest import run_ingest

    lake = tmp_path_factory.mktemp("docs_lake")
    summary = run_ingest(spark, cfg, str(samples / "aws-docs-flow-log-examples"), str(lake))
    return lake, summary
