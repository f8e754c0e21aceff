"""The daily run: every step in one Spark session, each step's summary and time as it ends.

    ingest (flow_records and flows) -> [dedup] -> tag -> [ip-ranges] -> classify -> reports

The steps are the separate jobs (the same functions the single commands call), so they keep their own
reconciliation and exactly-once rules; the run only wires them: one session for all (no second JVM, no
second start-up), and dedup, tag, classify and the reports work on the dates this run's ingest touched,
not on the whole lake. A step that has nothing to do says so and the run goes on; a step that fails
stops the run (the steps after it would work on incomplete data), and a rerun resumes safely because
every step is idempotent.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Optional

from pyspark.sql import SparkSession

from flowspark.core.schema import EVENT_DATE
from flowspark.edges import tables
from flowspark.edges.config import Config, with_overrides
from flowspark.pipelines.classify import run_classify
from flowspark.pipelines.dedup import run_dedup
from flowspark.pipelines.ingest import run_ingest
from flowspark.pipelines.ipranges import load_ip_ranges
from flowspark.pipelines.report import ReportOptions, run_report
from flowspark.pipelines.tag import run_tag_lake

STEPS = ("ingest", "dedup", "tag", "classify", "findings", "reports")
# ingest keeps flows itself; dedup compacts days again from flow_records (another window: `flowspark dedup`)
# findings: every detection over the days and their baseline days; the reports' hunt flags and "What to look
# at" read the findings it writes
DEFAULT_STEPS = ("ingest", "tag", "classify", "findings", "reports")


def parse_steps(text: str) -> list[str]:
    """'ingest,dedup' -> ['ingest', 'dedup'] in pipeline order; ValueError naming an unknown step."""
    wanted = [s.strip() for s in text.split(",") if s.strip()]
    unknown = [s for s in wanted if s not in STEPS]
    if unknown or not wanted:
        raise ValueError(f"--steps: unknown step(s) {', '.join(unknown) or '(none)'}; choose from {', '.join(STEPS)}")
    return [s for s in STEPS if s in wanted]


def date_spans(dates: Sequence[dt.date]) -> list[tuple[dt.date, dt.date]]:
    """Consecutive days as (first, last) spans: [1, 2, 3, 5] -> [(1, 3), (5, 5)]."""
    spans: list[tuple[dt.date, dt.date]] = []
    for d in sorted(set(dates)):
        if spans and d - spans[-1][1] == dt.timedelta(days=1):
            spans[-1] = (spans[-1][0], d)
        else:
            spans.append((d, d))
    return spans


@dataclass
class RunSummary:
    lake: str
    steps: list[str]
    spans: list[tuple[Optional[dt.date], Optional[dt.date]]] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    report_files: list[str] = field(default_factory=list)
    total_seconds: float = 0.0
    ingest: Any = None  # the ingest step's IngestSummary

    def text(self) -> str:
        days = ", ".join(f"{a}..{b}" if a != b else f"{a}" for a, b in self.spans if a) or "all dates"
        lines = ["run", f"  lake           {self.lake}", f"  days           {days}"]
        lines += [f"  {step:<14} {secs:.1f} s" for step, secs in self.seconds.items()]  # in the order they ran
        lines += [f"  note           {n}" for n in self.notes]
        lines += [f"  report         {f}" for f in self.report_files]
        lines.append(f"  seconds        {self.total_seconds:.1f}")
        return "\n".join(lines)


def run_daily(
    spark: SparkSession,
    cfg: Config,
    lake: str,
    source: Optional[str] = None,
    date_from: Optional[dt.date] = None,
    date_to: Optional[dt.date] = None,
    steps: Sequence[str] = DEFAULT_STEPS,
    window: Optional[str] = None,
    ip_ranges: Optional[str] = None,
    report_formats: tuple[str, ...] = (),
    report_dir: Optional[str] = None,
    report_options: Optional[ReportOptions] = None,
    progress: Callable[[str], None] = print,
    keep_records: Optional[bool] = None,
    fmt: Optional[str] = None,
    database: Optional[str] = None,
    catalog: str = "spark",
) -> RunSummary:
    """Run `steps` in order in this session; `progress` gets each step's summary as it ends. fmt: the field
    order of headerless objects (ingest's --input-format). database: register the lake's tables there last
    (`flowspark catalog`, in `catalog`), so a new table (a report's first run) is queryable by name."""
    t0 = time.time()
    if window:  # the window of a flows table this run makes (an existing one keeps its own)
        cfg = with_overrides(cfg, dedup={"window": window})
    summary = RunSummary(lake=lake, steps=list(steps))
    spans: list[tuple[Optional[dt.date], Optional[dt.date]]] = [(date_from, date_to)]

    def step(name: str, work: Callable[[], str]) -> None:
        start = time.time()
        text = work()
        summary.seconds[name] = time.time() - start
        progress(f"== {name} ({summary.seconds[name]:.1f} s)\n{text}\n")

    if "ingest" in steps:
        if not source:
            raise ValueError("the ingest step needs --source (or leave ingest out of --steps)")

        def ingest() -> str:
            nonlocal spans
            s = run_ingest(spark, cfg, source, lake, date_from, date_to, fmt=fmt, keep_records=keep_records)
            summary.ingest = s
            touched = [dt.date.fromisoformat(d) for d in s.dates]
            # Later steps work on the days this ingest wrote; with nothing new, on the range asked for.
            if touched:
                spans = list(date_spans(touched))
            return s.text()

        step("ingest", ingest)
    summary.spans = spans

    if "dedup" in steps:
        step("dedup", lambda: "\n".join(run_dedup(spark, cfg, lake, a, b, window).text() for a, b in spans))
    if "ingest" in steps and cfg.storage.optimize_after_run:

        def optimize() -> str:
            # After the day's appends and merges: the days this run wrote become a few files each.
            out = []
            for name in (tables.FLOW_RECORDS, tables.FLOWS):
                if tables.exists(spark, lake, name):
                    for a, b in spans:
                        removed, added = tables.optimize(spark, lake, name, cfg.storage, EVENT_DATE, a, b)
                        out.append(f"optimize {name} {a or 'start'}..{b or 'end'}: {removed:,} files -> {added:,}")
            return "\n".join(out)

        step("optimize", optimize)
    if "tag" in steps:
        step("tag", lambda: "\n".join(run_tag_lake(spark, lake, None, a, b).text() for a, b in spans))
    if "classify" in steps and ip_ranges:  # its own step line: what was loaded (or already there)
        step("ip-ranges", lambda: load_ip_ranges(spark, ip_ranges, lake).text())
    if "classify" in steps:

        def classify() -> str:
            out = []
            if not tables.exists(spark, lake, tables.AWS_IP_RANGES):
                summary.notes.append("classify skipped: no aws_ip_ranges in the lake (pass --ip-ranges)")
                return "classify: nothing to do: no aws_ip_ranges in the lake (pass --ip-ranges FILE|URL)"
            out += [run_classify(spark, lake, a, b).text() for a, b in spans]
            return "\n".join(out)

        step("classify", classify)
    if "findings" in steps:

        def findings() -> str:
            from flowspark.pipelines.findings import run_findings

            if not tables.exists(spark, lake, tables.IP_CLASSES):
                summary.notes.append("findings skipped: no ip_classes in the lake (the classify step makes it)")
                return "findings: nothing to do: no ip_classes in the lake (run classify with --ip-ranges)"
            return "\n".join(run_findings(spark, cfg, lake, a, b).text() for a, b in spans)

        step("findings", findings)
    if "reports" in steps:

        def reports() -> str:
            lo = min((a for a, _ in spans if a), default=None)
            hi = max((b for _, b in spans if b), default=None)
            r = run_report(
                spark, cfg, lake, "all", lo, hi, options=report_options, formats=report_formats, out_dir=report_dir
            )
            summary.report_files = list(r.files)
            return r.text()

        step("reports", reports)
    if database:
        from flowspark.pipelines.catalog import run_catalog

        step("catalog", lambda: run_catalog(spark, lake, database, catalog).text())
    summary.total_seconds = time.time() - t0
    return summary
