"""The intel job: a published IP/CIDR list (file, URL or object) -> <lake>/intel_lists, one version per load."""

from __future__ import annotations

import datetime as dt
import re
import time
from dataclasses import dataclass, field
from typing import Optional

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from flowspark.core import intel as I
from flowspark.edges import sources, tables
from flowspark.pipelines.common import utc_now

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


@dataclass
class IntelSummary:
    lake: str
    name: str
    source: str
    fmt: str = ""
    status: str = ""  # loaded | unchanged
    version: int = 0
    entries: int = 0
    ipv4: int = 0
    ipv6: int = 0
    duplicates: int = 0
    rejected: list[tuple[int, str, str]] = field(default_factory=list)
    seconds: float = 0.0

    def text(self) -> str:
        lines = [
            f"intel load {self.name}",
            f"  source         {self.source} ({self.fmt})",
            f"  lake           {self.lake}",
            f"  entries        {self.entries:,} ({self.ipv4:,} IPv4, {self.ipv6:,} IPv6; "
            f"{self.duplicates:,} listed twice, kept once)",
            f"  rejected       {len(self.rejected):,} lines",
        ]
        lines += [f"    line {n}: {why}" for n, _, why in self.rejected[:10]]
        if len(self.rejected) > 10:
            lines.append(f"    ... {len(self.rejected) - 10:,} more")
        if self.status == "unchanged":
            lines.append(f"  version        {self.version} (unchanged: the newest version has the same content)")
        else:
            lines.append(f"  version        {self.version} (loaded)")
        lines.append(f"  seconds        {self.seconds:.1f}")
        return "\n".join(lines)


def check_name(name: str) -> None:
    if not _NAME.match(name):
        raise ValueError(f"--name {name!r}: letters, digits, '.', '_' and '-' only (up to 64), e.g. firehol_level1")


def run_intel_load(spark: SparkSession, lake: str, name: str, source: str, fmt: Optional[str] = None) -> IntelSummary:
    """Load one list as the next version of `name` (the same content as the newest version: no new version).
    Raises ValueError when no line of the file is an entry."""
    t0 = time.time()
    check_name(name)
    parsed = I.parse_list(sources.read_small_text(spark, source, "list file"), fmt)
    summary = IntelSummary(lake=lake, name=name, source=source, fmt=parsed.fmt, rejected=parsed.rejected)
    rows = I.entry_rows(parsed)
    summary.entries, summary.duplicates = len(rows), parsed.duplicates
    summary.ipv4 = sum(1 for r in rows if r[1] == 4)
    summary.ipv6 = len(rows) - summary.ipv4
    if not rows:
        raise ValueError(
            f"{source}: no line is an address or CIDR ({len(parsed.rejected)} rejected, e.g. "
            f"{parsed.rejected[0][2] if parsed.rejected else 'the file is empty'})"
        )
    newest = None
    if tables.exists(spark, lake, tables.INTEL_LISTS):
        row = (
            tables.read(spark, lake, tables.INTEL_LISTS)
            .where(F.col("list_name") == name)
            .groupBy("version", "sha256")
            .count()
            .orderBy(F.col("version").desc())
            .first()
        )
        newest = row
    if newest is not None and newest["sha256"] == parsed.sha256:
        summary.status, summary.version = "unchanged", int(newest["version"])
        summary.seconds = time.time() - t0
        return summary
    summary.version = int(newest["version"]) + 1 if newest is not None else 1
    at = utc_now()
    data = [(name, summary.version, at, source, parsed.sha256, *r) for r in rows]
    tables.append(spark.createDataFrame(data, I.INTEL_SCHEMA), lake, tables.INTEL_LISTS)
    summary.status = "loaded"
    summary.seconds = time.time() - t0
    return summary


def stale_lists(intel: DataFrame, max_age_days: int, now: dt.datetime) -> list[str]:
    """'name (version V, loaded YYYY-MM-DD, N days ago)' for each list whose newest version is older than
    max_age_days (0: never stale)."""
    if max_age_days <= 0:
        return []
    rows = intel.groupBy("list_name").agg(F.max(F.struct("version", "loaded_at")).alias("v")).collect()
    out = []
    for r in rows:
        loaded = r["v"]["loaded_at"]
        # Spark hands a timestamp back as a naive datetime in this process's local zone: astimezone reads it so
        loaded = loaded.astimezone(dt.timezone.utc)
        age = (now.astimezone(dt.timezone.utc) - loaded).days
        if age > max_age_days:
            out.append(f"{r['list_name']} (version {r['v']['version']}, loaded {loaded:%Y-%m-%d}, {age} days ago)")
    return sorted(out)
