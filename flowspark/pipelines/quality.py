"""The detections' measured quality: the real pipeline over a generated scenario's folder (flowspark.scenario),
its findings read back for scoring. Used by scripts/bench_detections.py and tests/test_scenario.py."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pyspark.sql import SparkSession

from flowspark.edges import tables
from flowspark.edges.config import Config
from flowspark.pipelines.intel import run_intel_load
from flowspark.pipelines.run import run_daily

# the ip-ranges.json bundled with the project (no network needed)
IP_RANGES = Path(__file__).resolve().parents[2] / "data" / "ip-ranges-2020-04-01.json"


def run_scenario(spark: SparkSession, cfg: Config, work: str, truth: dict[str, Any]) -> list[dict[str, Any]]:
    """Load the scenario's intel lists into <work>/lake, run ingest, classify and findings over <work>/raw,
    and return every row of the findings table."""
    lake = str(Path(work) / "lake")
    for name, rel in truth["lists"].items():
        run_intel_load(spark, lake, name, str(Path(work) / rel))
    run_daily(
        spark,
        cfg,
        lake,
        str(Path(work) / "raw"),
        steps=("ingest", "classify", "findings"),
        ip_ranges=str(IP_RANGES),
        progress=lambda _text: None,
    )
    return [r.asDict() for r in tables.read(spark, lake, tables.FINDINGS).collect()]
