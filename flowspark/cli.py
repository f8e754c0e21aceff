"""`flowspark <command>`: the same functions the spark-submit and Glue jobs call.

Every command: parse arguments -> load config (fail fast on a bad one) -> create the SparkSession
(only when the command needs Spark) -> run -> print a summary. Exit codes: 0 done, 1 the job failed
(for example it did not reconcile), 2 bad arguments or configuration.
"""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import os
import re
import signal
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any, TextIO

from flowspark.pipelines import classify, ipranges, tag
from flowspark.pipelines.common import (
    Config,
    ConfigError,
    check_flow_format,
    check_lake,
    is_local,
    load_config,
    require_local,
    require_source,
    spark_log,
    to_local_path,
    with_overrides,
)
from flowspark.progress import Progress
from flowspark.stopper import Stopper

log = logging.getLogger("flowspark")

Handler = Callable[[argparse.Namespace, Config], int]


EXIT_CODES = """\
exit codes (every command):
  0    done, or nothing new to do
  1    the job failed a check (reconciliation, conservation) or an unexpected error (-v for the trace)
  2    bad arguments, configuration or environment (the cause named; fix it, then rerun)
  3    objects were found and no record could be read from any of them
  4    the share of rejected lines or objects is above --max-reject-ratio (the rows are written)
  130  interrupted (Ctrl-C), 143 stopped (SIGTERM): rerun to complete the run"""

EXIT_LINE = (
    "exit codes: 0 done, 1 a check failed, 2 bad arguments or environment, 3 no record readable, 4 rejects above "
    "--max-reject-ratio, 130/143 interrupted (the table: flowspark --help)"
)

OPTIONS = """\
options mean the same in every command: --input-format the field order of headerless flow logs;
--format the output format(s) (csv, xlsx, html); --out where outputs go; --ip-ranges the ip-ranges.json
input; --lake the lake root; --from/--to days (UTC)."""


class Parser(argparse.ArgumentParser):
    """Argument errors in one line with the command and where to look, exit 2 (not the whole usage)."""

    def error(self, message: str) -> Any:  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


class _Deprecated(argparse.Action):
    """An old spelling of an option: sets the new option's value and records a warning for after parsing."""

    def __init__(self, option_strings: list[str], dest: str, new: str = "", **kw: Any) -> None:
        self.new = new
        super().__init__(option_strings, dest, **kw)

    def __call__(self, parser: Any, namespace: argparse.Namespace, values: Any, option: str | None = None) -> None:
        setattr(namespace, self.dest, values)
        notes = list(getattr(namespace, "deprecated", None) or [])
        notes.append(f"{option} is deprecated here: use {self.new} (it will go in the next release)")
        namespace.deprecated = notes


def _alias(p: Any, old: str, new: str, dest: str, deprecated: bool = True) -> None:
    """`old` as another spelling of `new` (same dest), hidden from --help; a deprecated one warns."""
    if deprecated:
        p.add_argument(old, dest=dest, action=_Deprecated, new=new, help=argparse.SUPPRESS)
    else:
        p.add_argument(old, dest=dest, help=argparse.SUPPRESS)


def _input_format_option(p: Any, alias: bool = True) -> None:
    p.add_argument(
        "--input-format",
        metavar="FIELDS",
        help="field order of headerless flow logs, as in AWS: 'version account-id interface-id ...' or "
        "'${version} ...' (default: the v2 default format). Objects with a header line use their header.",
    )
    if alias:  # ingest and tag took --format for this before; in run --format is the reports' formats
        _alias(p, "--format", "--input-format", "input_format")


def _max_reject_ratio_option(p: Any) -> None:
    p.add_argument(
        "--max-reject-ratio",
        type=_ratio,
        metavar="R",
        help="exit 4 when more than this share (0-1) of the record lines, or of the objects read, was rejected "
        "(the rows are written and the rejects kept either way; default: no limit)",
    )


def _ratio(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"not a share between 0 and 1: {text!r}")
    return value


def parse_date(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date: {text!r} (use YYYY-MM-DD)") from None


def add_common(p: argparse.ArgumentParser, lake: bool = True, dates: bool = True) -> None:
    """Options every Spark command shares."""
    g = p.add_argument_group("environment")
    g.add_argument("--env", default="local", help="config environment: conf/<env>.toml (local, emr, glue)")
    g.add_argument("--config", help="explicit config file (overrides --env)")
    g.add_argument("--master", help="Spark master, e.g. local[2] (overrides the config)")
    g.add_argument("--s3-endpoint", help="S3 endpoint URL for a local S3 (moto, MinIO)")
    g.add_argument("-v", "--verbose", action="store_true", help="log progress at INFO level")
    if lake:
        p.add_argument(
            "--lake", required=True, help="lake root: a folder or s3://bucket/prefix holding the Delta tables"
        )
    if dates:
        p.add_argument("--from", dest="date_from", type=parse_date, help="first day (UTC, YYYY-MM-DD), inclusive")
        p.add_argument("--to", dest="date_to", type=parse_date, help="last day (UTC, YYYY-MM-DD), inclusive")


def config_from_args(args: argparse.Namespace) -> Config:
    cfg = load_config(args.env, args.config)
    spark: dict[str, Any] = {"master": getattr(args, "master", None)}
    s3: dict[str, Any] = {}
    if getattr(args, "s3_endpoint", None):
        s3 = {"endpoint": args.s3_endpoint, "path_style": True}
    return with_overrides(cfg, spark=spark, s3=s3)


_VERBOSE = [False]  # set by main(): -v shows the JVM's own output and Python traces


def spark_for(cfg: Config) -> Any:
    from flowspark.pipelines.common import create_session

    spark = create_session(cfg, quiet=not _VERBOSE[0])
    _STOP.install()  # again: PySpark's SparkContext puts its own SIGINT handler in place
    if not _VERBOSE[0] and _PROGRESS[0] is None:  # tasks done of total, on a terminal only
        _PROGRESS[0] = Progress.on_terminal(_COMMAND[0], spark.sparkContext)
    return spark


_PROGRESS: list[Progress | None] = [None]
_COMMAND = ["?"]


_STOP = Stopper()


# ---------------------------------------------------------------- commands


def cmd_setup(args: argparse.Namespace, cfg: Config) -> int:
    from flowspark.pipelines.common import resolve_jars

    print("flowspark setup: the JVM jars (Delta, hadoop-aws) from Maven Central, cached once", flush=True)
    jars = resolve_jars(cfg, quiet=not _VERBOSE[0])
    for j in jars:
        print(f"  {os.path.basename(j)}")
    folder = os.path.dirname(jars[0]) if jars else "?"
    log_file = spark_log()
    print(f"{len(jars)} jars ready in {folder}" + (f" (Ivy's log: {log_file})" if log_file else ""))
    return 0


def cmd_packages(args: argparse.Namespace, cfg: Config) -> int:
    from flowspark.pipelines.common import packages

    print(packages())
    return 0


def cmd_ingest(args: argparse.Namespace, cfg: Config) -> int:
    from flowspark.pipelines.common import local_table_exists
    from flowspark.pipelines.ingest import as_flows_refusal, run_ingest

    if args.input_format:
        check_flow_format(args.input_format)  # fail before Spark starts
    require_source(args.source)
    if args.as_flows:
        why = as_flows_refusal(args.lake, args.keep_records, local_table_exists(args.lake, "flow_records"))
        if why:
            raise ConfigError(why)
    spark = spark_for(cfg)
    summary = run_ingest(
        spark, cfg, args.source, args.lake, args.date_from, args.date_to, fmt=args.input_format, force=args.force,
        keep_records=args.keep_records, as_flows=args.as_flows,
    )
    print(summary.text())
    return ingest_exit(args.command, summary, args.max_reject_ratio)


def ingest_exit(command: str, summary: Any, max_ratio: float | None) -> int:
    """The exit code of a run's ingest, with one line saying why when it is not 0: 3 when the objects read
    gave no record at all; 4 when the share of rejected record lines or objects is above max_ratio."""
    if summary is None:
        return 0
    why = summary.unusable()
    if why:
        print(f"flowspark {command}: error: {why}", file=sys.stderr)
        return 3
    if max_ratio is None or not summary.files_read:
        return 0
    lines = summary.rejected / summary.records if summary.records else 0.0
    objects = summary.objects_rejected / summary.files_read
    if lines > max_ratio or objects > max_ratio:
        print(
            f"flowspark {command}: error: rejected {summary.rejected:,} of {summary.records:,} record lines "
            f"({lines:.1%}) and {summary.objects_rejected:,} of {summary.files_read:,} objects ({objects:.1%}), "
            f"above --max-reject-ratio {max_ratio:g}: the rows are written; flow_rejects and ingested_files "
            "(problem) say why",
            file=sys.stderr,
        )
        return 4
    return 0


def _ingest_parser(sub: Any) -> None:
    p = sub.add_parser(
        "ingest",
        help="raw flow logs (folder or S3) -> <lake>/flows (merged per 1 h window), flow_records, flow_rejects",
        description=(
            "Read VPC flow logs (text .log/.log.gz with or without a header, any format of versions 2-11; "
            ".log.parquet; or OCSF Network Activity Parquet as Amazon Security Lake or 'flowspark export ocsf' "
            "writes it) from a folder or S3 prefix, in the default or Hive-style key layout; merge "
            "their records into <lake>/flows (one row per 1 h window and flow key) and keep them in "
            "<lake>/flow_records (unless --no-keep-records). Lines that do not parse go to <lake>/flow_rejects with "
            "file, line and reason. Objects already ingested (same path, size and modification time) are "
            "skipped and an object rewritten since is read again with its old rows replaced; a run stopped "
            "at any point is completed by the next, and concurrent runs never write an object twice. "
            "Ends with a summary; fails if records read != rows written + rejected."
        ),
    )
    p.add_argument("--source", required=True, help="folder, file, or s3://bucket/prefix (s3a:// works too)")
    _input_format_option(p)
    _max_reject_ratio_option(p)
    p.add_argument(
        "--force",
        action="store_true",
        help="read the objects again even if already ingested and replace their rows (never appends them twice)",
    )
    _keep_records_option(p)
    p.add_argument(
        "--as-flows",
        action="store_true",
        help="OCSF events that aggregate records (count > 1, as 'export ocsf' writes flows) go into <lake>/flows "
        "with their counts (refused otherwise, with a reason); such a lake keeps no flow_records",
    )
    add_common(p)
    p.set_defaults(handler=cmd_ingest)


def _keep_records_option(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--keep-records",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="keep every record in <lake>/flow_records (default: [storage] keep_records, true); with "
        "--no-keep-records only flows, flow_rejects and the ledger are written, and the objects stay the "
        "record of truth (dedup with another window, tag's lake mode, stats and maintain need flow_records)",
    )


def cmd_dedup(args: argparse.Namespace, cfg: Config) -> int:
    from flowspark.pipelines.dedup import check_key, check_window, run_dedup

    key = check_key(args.key.split(",")) if args.key else None
    if args.window:
        check_window(args.window)
    require_local(args.lake, ["flow_records"])
    spark = spark_for(cfg)
    summary = run_dedup(
        spark, cfg, args.lake, args.date_from, args.date_to, args.window, key, args.bidirectional, table=args.table
    )
    print(summary.text())
    return 0


def cmd_run(args: argparse.Namespace, cfg: Config) -> int:
    from flowspark.pipelines.run import parse_steps, run_daily

    steps = parse_steps(args.steps)
    if "ingest" in steps and not args.source:
        raise ConfigError("--source is needed for the ingest step (or leave ingest out of --steps)")
    if "ingest" in steps:
        require_source(args.source)
    if args.input_format:
        check_flow_format(args.input_format)
    if args.window:
        from flowspark.pipelines.dedup import check_window

        check_window(args.window)
    from flowspark.pipelines.report import FORMATS, ReportOptions

    formats = _formats(args.format, FORMATS, args.out)
    if args.database:
        from flowspark.pipelines.catalog import check_metastore

        check_metastore(cfg, args.catalog)  # before Spark starts
    options = ReportOptions(
        top_n=cfg.reports.top_n, nat=args.nat, nat_region=args.nat_region, asn_db=args.asn_db, geo_db=args.geo_db
    )
    if args.asn_db:
        from flowspark.pipelines.report import check_asn_db

        check_asn_db(args.asn_db)  # before Spark starts
    if args.geo_db:
        from flowspark.pipelines.report import check_geo_db

        check_geo_db(args.geo_db)
    spark = spark_for(cfg)
    summary = run_daily(
        spark,
        cfg,
        args.lake,
        args.source,
        args.date_from,
        args.date_to,
        steps,
        args.window,
        args.ip_ranges,
        formats,
        args.out,
        options,
        progress=lambda text: print(text, flush=True),
        keep_records=args.keep_records,
        fmt=args.input_format,
        database=args.database,
        catalog=args.catalog,
    )
    print(summary.text())
    return ingest_exit(args.command, summary.ingest, args.max_reject_ratio)


def _formats(text: str | None, known: tuple[str, ...], out: str | None) -> tuple[str, ...]:
    """--format a,b -> the output formats, each known, with --out given (ConfigError otherwise)."""
    formats = tuple(dict.fromkeys(f.strip().lower() for f in (text or "").split(",") if f.strip()))
    bad = [f for f in formats if f not in known]
    if bad:
        raise ConfigError(f"unknown --format {', '.join(bad)}; choose from {', '.join(known)}")
    if formats and not out:
        raise ConfigError("--format needs --out DIR (the folder the files go to)")
    return formats


def _run_parser(sub: Any) -> None:
    p = sub.add_parser(
        "run",
        help="the daily run: ingest (records and flows), tag, classify, reports in one Spark session",
        description=(
            "Run the pipeline's steps in one Spark session, printing each step's summary and time as it ends: "
            "ingest (objects of --source, exactly once, into flow_records and flows) -> tag -> classify -> "
            "reports (dedup: compact days again from flow_records, when asked for). tag, classify and the "
            "reports work on the days this run's ingest wrote (without new objects: on --from/--to, or every "
            "day). Each step keeps the checks of its own command; a failed step stops the run, and a rerun is "
            "safe (every step is idempotent)."
        ),
    )
    p.add_argument("--source", help="folder or s3://bucket/prefix of the flow logs (needed by the ingest step)")
    p.add_argument(
        "--steps",
        default="ingest,tag,classify,findings,reports",
        help="comma-separated steps to run, in pipeline order: ingest, dedup, tag, classify, findings, reports "
        "(default: ingest,tag,classify,findings,reports; ingest keeps flows, dedup compacts days again from "
        "flow_records; findings runs the detections, see 'flowspark findings --help', and the reports read them)",
    )
    p.add_argument("--window", help="the flows window of a new lake: 10m, 1h (default, from config), 1d, or none")
    _keep_records_option(p)
    p.add_argument(
        "--ip-ranges",
        metavar="URL|FILE|S3",
        help="load this ip-ranges.json before classify (default: use the aws_ip_ranges already in the lake)",
    )
    _input_format_option(p, alias=False)
    _max_reject_ratio_option(p)
    p.add_argument("--format", metavar="csv,xlsx,html", help="also write the reports as these files into --out")
    _alias(p, "--report-format", "--format", "format")
    p.add_argument("--out", metavar="DIR", help="folder for the report files (with --format)")
    p.add_argument(
        "--nat",
        metavar="ENI|IP|NAT",
        help="the NAT gateway for the NAT cost: its interface (eni-...), address, or a regional NAT gateway (nat-...)",
    )
    p.add_argument("--nat-region", metavar="REGION", help="the NAT gateway's region (for the endpoint saving)")
    p.add_argument("--asn-db", metavar="FILE", help="offline MaxMind-format ASN database (.mmdb): label Internet peers")
    p.add_argument(
        "--geo-db", metavar="FILE", help="offline MaxMind-format country database (.mmdb): the country of each peer"
    )
    p.add_argument(
        "--database",
        metavar="NAME",
        help="last, register the lake's tables in this database (as 'flowspark catalog'), keeping it current",
    )
    p.add_argument(
        "--catalog", choices=["spark", "glue"], default="spark", help="with --database: where (default: spark)"
    )
    add_common(p)
    p.set_defaults(handler=cmd_run)


def _dedup_parser(sub: Any) -> None:
    p = sub.add_parser(
        "dedup",
        help="rebuild <lake>/flows from flow_records (a repair; other windows or keys with --table)",
        description=(
            "Group the data records (log_status OK) of flow_records by a tumbling window on start (UTC) "
            "and the flow key; sum packets and bytes, count records, keep the first start and last end, "
            "OR the tcp flags. Replaces exactly the --from/--to range of <lake>/flows (all of it without a "
            "range), so reruns are idempotent. Checks that records, packets and bytes are conserved and "
            "fails if not; appends its figures to <lake>/dedup_stats. NODATA/SKIPDATA rows are counted per "
            "interface and window in <lake>/dedup_status_counts."
        ),
    )
    p.add_argument("--window", help="window on start: 10m, 1h (default, from config), 1d, or none")
    p.add_argument(
        "--key",
        help="flow key columns, comma-separated (default: [dedup] key of the config, else the default "
        "flow key: see README, dedup)",
    )
    p.add_argument(
        "--bidirectional",
        action="store_true",
        help="merge both directions of a conversation into one row of <lake>/conversations with request/response "
        "packets and bytes; the server is the endpoint with the lower port, ties go by address order",
    )
    p.add_argument(
        "--table",
        help="the table to write (default: flows, whose window and key are fixed when ingest makes it; another "
        "window or key needs a table of its own, e.g. flows_10m)",
    )
    add_common(p)
    p.set_defaults(handler=cmd_dedup)


# ---------------------------------------------------------------- tag

_DESCRIPTION = """\
Tag VPC flow log records by (dstport, protocol) from a lookup table and count them.

Single-file mode (--flow-log; no Spark, no JVM) reads text flow logs (plain or .gz; a header line
gives the field order, otherwise the default v2 format or --input-format) and writes the report.
Lake mode (--lake) tags <lake>/flow_records through a broadcast join and replaces the date range
in the Delta tables <lake>/port_protocol_counts and <lake>/tag_counts (per event_date: records,
bytes, and flows when <lake>/flows exists), then writes the same report.

The report (--out, '-' for stdout) is a CSV file in two sections:
  Tag Counts:                          tags by count descending, then tag name; Untagged last
  Tag,Count
  ...
  (blank line)
  Port/Protocol Combination Counts:    by count descending, then port, then protocol number
  Port,Protocol,Count                  protocol as the lowercase IANA keyword (tcp), or its number
With --count bytes or flows the column is named Bytes or Flows. A summary goes to stderr.
"""

_EPILOG = """\
lookup rules:
  rows 'port,protocol,tag'; header optional; comma, tab or ';' separated (detected); BOM, CRLF,
  blank lines, '#' comment lines and spaces around fields are ignored. Port 0-65535; protocol an
  IANA keyword in any case (tcp, UDP, ipv6-icmp, gre, esp, ...) or a number 0-255. Tags are kept
  exactly as written (case-preserving); 'Untagged' is reserved. An invalid row is reported with
  its line number and skipped (--strict: exit 2). The same (port, protocol) with two different tags: the FIRST row
  wins and the later one is reported as a conflict (--strict: exit 2); an exact repeat is ignored.

record rules (the same rule table as 'flowspark ingest'):
  expected field count, numbers where numbers belong and that fit their type (start/end: epoch
  seconds or milliseconds in 1970-9999), ports 0-65535, protocol 0-255, action ACCEPT/REJECT/-,
  log-status OK/NODATA/SKIPDATA/-; malformed lines are reported with their line numbers and
  counted, never fatal; a version that does not fit the file's format (2 for the default format;
  6 too for a format a Transit Gateway log may have) is malformed too. A .gz cut short counts the
  lines before the break and reports the break. Only data records (log-status OK or absent) are
  tagged; records with '-' for dstport or protocol are skipped and reported.

lake mode: --from/--to select event_date days (default: all) and only those days are replaced in
  the tables, so reruns are idempotent. --count flows needs <lake>/flows (run dedup first).

exit codes: 0 done, 1 the job failed, 2 bad arguments, missing files, or --strict lookup errors
  (the table of every command: flowspark --help).
"""


def _print_summary_file(result: tag.FileTagResult, output: str, limit: int, err: TextIO) -> None:
    s, lk = result.scan, result.lookup
    rate = s.lines / s.seconds if s.seconds else 0.0
    p = [f"tag {len(s.files)} file(s) -> {output}"]
    p.append(f"  lookup       {lk.source}: {lk.describe()}")
    for prob in lk.problems[:limit]:
        p.append(f"    {prob.kind}: {prob.text()}")
    if len(lk.problems) > limit:
        p.append(f"    ... and {len(lk.problems) - limit:,} more")
    p.append(
        f"  lines        {s.lines:,} = {s.headers:,} headers + {s.blank:,} blank + {s.records:,} records "
        f"+ {s.malformed:,} malformed"
    )
    p.append(
        f"  records      {s.records:,}: {s.tagged:,} tagged ({result.matched:,} matched, "
        f"{s.tagged - result.matched:,} untagged), {s.nodata:,} NODATA/SKIPDATA, {s.skipped:,} skipped"
    )
    p.append(f"  malformed    {s.malformed:,} line(s), not counted")
    for issue in s.broken:  # files cut short: always said, whatever the limit
        p.append(f"  cut short    {issue.text()}")
    for issue in s.malformed_lines[:limit]:
        p.append(f"    {issue.text()}")
    if s.malformed > min(limit, len(s.malformed_lines)):
        p.append(f"    ... and {s.malformed - min(limit, len(s.malformed_lines)):,} more")
    if s.skipped:
        p.append(f"  skipped      {s.skipped:,} data record(s) without dstport or protocol")
        for issue in s.skipped_lines[:limit]:
            p.append(f"    {issue.text()}")
        if s.skipped > min(limit, len(s.skipped_lines)):
            p.append(f"    ... and {s.skipped - min(limit, len(s.skipped_lines)):,} more")
    p.append(f"  check        {'OK' if s.reconciled() else 'MISMATCH'}")
    p.append(f"  seconds      {s.seconds:.2f} ({rate:,.0f} lines/s)")
    print("\n".join(p), file=err)


def cmd_tag(args: argparse.Namespace, cfg: Config) -> int:
    if args.max_report < 0:
        raise ConfigError("--max-report must be 0 or more")
    if not args.out:
        raise ConfigError("--out FILE is required: the report CSV to write ('-' for stdout)")
    if args.flow_log:
        if args.date_from or args.date_to:
            raise ConfigError("--from/--to apply to --lake only")
        if args.count == "flows":
            raise ConfigError("--count flows needs --lake (the flows table); single-file mode counts records or bytes")
        fmt = check_flow_format(args.input_format) if args.input_format else None
        lookup = tag.read_lookup(args.lookup, strict=args.strict, limit=args.max_report)
        result = tag.tag_files(args.flow_log, lookup, args.count, fmt, max_issues=max(args.max_report, 1000))
        tag.write_output(
            args.out, lambda fh: tag.write_report(fh, result.tag_rows, result.port_rows, result.measure)
        )
        _print_summary_file(result, args.out, args.max_report, sys.stderr)
        return 0
    if args.input_format:
        raise ConfigError("--input-format applies to --flow-log only (the lake is already parsed)")
    lookup = tag.read_lookup(args.lookup, strict=args.strict, limit=args.max_report)  # fail before Spark starts
    require_local(args.lake, ["flow_records"])
    spark = spark_for(cfg)
    summary = tag.run_tag_lake(spark, args.lake, lookup, args.date_from, args.date_to, args.count, args.out)
    print(summary.text(args.max_report), file=sys.stderr)
    return 0


def _tag_parser(sub: Any) -> None:
    p = sub.add_parser(
        "tag",
        help="tag records by (dstport, protocol) from a lookup; tag and port/protocol counts (file or lake)",
        description=_DESCRIPTION,
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument(
        "--flow-log", action="extend", nargs="+", metavar="FILE", help="flow log file(s) to tag (repeatable)"
    )
    src.add_argument("--lake", help="lake root holding flow_records (a folder or s3://bucket/prefix)")
    p.add_argument(
        "--lookup",
        metavar="FILE",
        help="lookup CSV/TSV: port,protocol,tag (default: conf/lookup_default.csv)",
    )
    p.add_argument("--out", metavar="FILE", help="report CSV to write ('-' for stdout); required")
    _alias(p, "--output", "--out", "out", deprecated=False)
    p.add_argument(
        "--count",
        choices=tag.MEASURES,
        default="records",
        help="what the report counts: records (default), bytes, or flows (lake mode, needs <lake>/flows)",
    )
    _input_format_option(p)
    p.add_argument("--strict", action="store_true", help="exit 2 if the lookup has invalid or conflicting rows")
    p.add_argument(
        "--max-report",
        type=int,
        default=20,
        metavar="N",
        help="list at most N problems of each kind (default 20)",
    )
    add_common(p, lake=False, dates=True)
    p.set_defaults(handler=cmd_tag)


# ---------------------------------------------------------------- ip-ranges, classify


def _cmd_ip_ranges(args: argparse.Namespace, cfg: Config) -> int:
    parsed = None
    if ipranges.readable_without_spark(args.ip_ranges):
        parsed = ipranges.read_ip_ranges(None, args.ip_ranges)  # fail before Spark starts
    spark = spark_for(cfg)
    print(ipranges.load_ip_ranges(spark, args.ip_ranges, args.lake, parsed).text())
    return 0


def _cmd_classify(args: argparse.Namespace, cfg: Config) -> int:
    require_local(args.lake, ["aws_ip_ranges", "flows"])
    spark = spark_for(cfg)
    print(classify.run_classify(spark, args.lake, args.date_from, args.date_to).text())
    return 0


def _ipranges_parsers(sub: Any) -> None:
    p = sub.add_parser(
        "ip-ranges",
        help="AWS ip-ranges.json (URL, file or S3) -> <lake>/aws_ip_ranges (Delta), history by syncToken",
        description=(
            "Load AWS's published IP ranges (ip-ranges.json) into <lake>/aws_ip_ranges: one row per "
            "prefix and service with its numeric first/last address, region, network border group and "
            "the file's syncToken. Every version loaded is kept. The same syncToken again changes "
            "nothing; a file older than the newest loaded, or malformed, is refused (exit 2)."
        ),
    )
    p.add_argument(
        "--ip-ranges",
        default=ipranges.DEFAULT_SOURCE,
        metavar="URL|FILE|S3",
        help=f"URL, local file or s3://bucket/key of ip-ranges.json (default: {ipranges.DEFAULT_SOURCE})",
    )
    _alias(p, "--source", "--ip-ranges", "ip_ranges")
    add_common(p, dates=False)
    p.set_defaults(handler=_cmd_ip_ranges)

    p = sub.add_parser(
        "classify",
        help="distinct addresses of <lake>/flows -> <lake>/ip_classes (address class, AWS service/region)",
        description=(
            "Classify every distinct address of <lake>/flows (srcaddr, dstaddr, pkt_srcaddr, pkt_dstaddr) "
            "as private/shared/public/... and against the newest AWS ip ranges (longest prefix, service, "
            "region, every match), into <lake>/ip_classes. Without --from/--to the table is rebuilt from "
            "all flows; with them the addresses of those days are merged in (new ones inserted, known "
            "ones re-classified), so reruns are idempotent."
        ),
    )
    add_common(p)
    p.set_defaults(handler=_cmd_classify)


# ---------------------------------------------------------------- export


def cmd_export(args: argparse.Namespace, cfg: Config) -> int:
    from flowspark.pipelines.export import run_export_ocsf

    require_local(args.lake, [args.table])
    spark = spark_for(cfg)
    print(run_export_ocsf(spark, args.lake, args.out, args.table, args.date_from, args.date_to).text())
    return 0


def _export_parser(sub: Any) -> None:
    p = sub.add_parser(
        "export",
        help="flows or flow_records -> OCSF 1.1.0 Network Activity Parquet, laid out for Security Lake",
        description=(
            "Write the lake's flows (or flow_records) as OCSF 1.1.0 Network Activity events (class_uid 4001, "
            "the version Amazon Security Lake keeps its own VPC flow data in) to Parquet under --out, in the "
            "layout Security Lake takes from a custom source: region=<region>/accountId=<account>/"
            "eventDay=<YYYYMMDD>/, zstd, each file ordered by time. A flows row is one event with its record "
            "count in `count`. A rerun replaces the partitions it writes and no other; the written partitions "
            "are read back and must hold the events, records, packets and bytes read. Events of data Security "
            "Lake already collects natively would be duplicates there: export flows, or lakes fed from "
            "elsewhere."
        ),
    )
    p.add_argument("format", choices=["ocsf"], help="the output schema (ocsf: OCSF 1.1.0 Network Activity)")
    p.add_argument("--out", required=True, metavar="URI", help="folder or s3://bucket/prefix for the Parquet events")
    p.add_argument(
        "--table", choices=["flows", "flow_records"], default="flows", help="what to export (default: flows)"
    )
    add_common(p)
    p.set_defaults(handler=cmd_export)


# ---------------------------------------------------------------- catalog


def cmd_catalog(args: argparse.Namespace, cfg: Config) -> int:
    from flowspark.pipelines.catalog import check_metastore, run_catalog

    check_metastore(cfg, args.catalog)  # before Spark starts
    spark = spark_for(cfg)
    print(run_catalog(spark, args.lake, args.database, args.catalog).text())
    return 0


def _catalog_parser(sub: Any) -> None:
    p = sub.add_parser(
        "catalog",
        help="register the lake's tables by name: Spark's catalog (metastore, Glue on EMR) or Glue for Athena",
        description=(
            "Register every Delta table of the lake in --database. --catalog spark (default): the session's "
            "catalog (CREATE TABLE ... USING DELTA LOCATION), so spark.table('<db>.flows') works; on EMR with "
            "the Glue Data Catalog as metastore the tables land in Glue. --catalog glue: through the Glue API, "
            "as Athena reads Delta tables (table_type=DELTA, the columns and their comments). Keep the two in "
            "different databases (e.g. flowlogs and flowlogs_athena): a table of one kind is never replaced by "
            "the other. A rerun leaves or updates what it registered, never duplicates."
        ),
    )
    p.add_argument("--database", required=True, metavar="NAME", help="the database to register the tables in")
    p.add_argument("--catalog", choices=["spark", "glue"], default="spark", help="where (default: spark)")
    add_common(p, dates=False)
    p.set_defaults(handler=cmd_catalog)


# ---------------------------------------------------------------- stats, maintain (storage)


def cmd_stats(args: argparse.Namespace, cfg: Config) -> int:
    from flowspark.pipelines.stats import run_stats

    spark = spark_for(cfg)
    print(run_stats(spark, cfg, args.lake, args.source).text())
    return 0


def cmd_maintain(args: argparse.Namespace, cfg: Config) -> int:
    from flowspark.pipelines.maintain import run_maintain

    if args.keep_records_days < 1:
        raise ConfigError("--keep-records-days must be at least 1 (the newest N days of flow_records are kept)")
    spark = spark_for(cfg)
    print(run_maintain(spark, cfg, args.lake, args.keep_records_days, args.dry_run).text())
    return 0


def _storage_parsers(sub: Any) -> None:
    p = sub.add_parser(
        "stats",
        help="rows, files and bytes of every table per day, from the Delta logs (with --source: the raw gzip too)",
        description=(
            "Per table of the lake and per event_date (flow_records, flows; other tables as one line): rows, "
            "files, bytes on storage and bytes per input record (the day's flow_records rows), read from the "
            "Delta logs' current snapshots (no data file is read). With --source, the raw objects' bytes per "
            "delivery day and per record."
        ),
    )
    p.add_argument("--source", help="folder or s3://bucket/prefix of the raw flow logs, to compare sizes with")
    add_common(p, dates=False)
    p.set_defaults(handler=cmd_stats)

    p = sub.add_parser(
        "maintain",
        help="drop flow_records days older than N days once their flows exist, then OPTIMIZE and VACUUM",
        description=(
            "Keep the newest --keep-records-days days of flow_records (counted back from the newest day in it) "
            "and delete the older days whose flows exist and account for every data record; refuse, one line "
            "per day, the days without them. flows, reports, rejects and the ingest ledger stay. Then OPTIMIZE "
            "flow_records and flows (small files of a day -> a few large ones) and VACUUM them with [storage] "
            "vacuum_retention_hours. --dry-run says what it would do and changes nothing."
        ),
    )
    p.add_argument("--keep-records-days", type=int, required=True, metavar="N", help="days of raw records to keep")
    p.add_argument(
        "--dry-run", action="store_true", help="say what would be dropped, optimized, vacuumed; change nothing"
    )
    add_common(p, dates=False)
    p.set_defaults(handler=cmd_maintain)


# ---------------------------------------------------------------- report


def cmd_report(args: argparse.Namespace, cfg: Config) -> int:
    from flowspark.pipelines import report

    report.report_names(args.name)  # fail before Spark starts
    formats = _formats(args.format, report.FORMATS, args.out)
    if args.top is not None and args.top < 1:
        raise ConfigError("--top must be at least 1")
    opts = report.ReportOptions(
        top_n=args.top or cfg.reports.top_n,
        ip=args.ip,
        nat=args.nat,
        nat_region=args.nat_region,
        asn_db=args.asn_db,
        geo_db=args.geo_db,
    )
    if args.asn_db:
        report.check_asn_db(args.asn_db)  # before Spark starts
    if args.geo_db:
        report.check_geo_db(args.geo_db)
    require_local(args.lake, ["flows"])
    spark = spark_for(cfg)
    summary = report.run_report(spark, cfg, args.lake, args.name, args.date_from, args.date_to, opts, formats, args.out)
    print(summary.text())
    return 0


def _report_parser(sub: Any) -> None:
    p = sub.add_parser(
        "report",
        help="reports people read: north-south, runts, talkers (NAT cost), hunt, network, or all -> Delta, CSV, "
        "XLSX, HTML",
        description=(
            "Compute a report over <lake>/flows and <lake>/ip_classes for --from/--to (default: all dates) "
            "and replace that range in <lake>/reports/<report>/<section> (Delta). north-south: every flow by "
            "direction and action, per hour, and the top Internet peers of ACCEPTed flows with one public side "
            "(NTP sync and AWS prefixes left out). runts: single-record flows by action, port, source /24 "
            "(IPv6 /64), top scanners. talkers: largest sources and destinations; with --nat the NAT gateway's "
            "data-processing cost per AWS service and the saving of S3/DynamoDB gateway endpoints. hunt: per "
            "peer/port measures (regularity, longest session, peak hour against the usual one) flagged with the "
            "detections of the findings naming the peer (run flowspark findings first). network "
            "(from the records' own fields; needs no classify): rejects by cause (reject-reason) and the top "
            "rejected (source, destination, port), accepted traffic whose response a network ACL rejected, bytes "
            "by encryption-status and the cleartext ports, Transit Gateway drops by cause, cross-AZ bytes and "
            "their cost, top conversations, breakdowns by account/VPC/subnet/AZ/interface, protocol mix, data "
            "quality per day. Thresholds, the NTP filter and the NAT and cross-AZ prices are in [reports] of "
            "conf/<env>.toml. With --format and --out the files are written too; html is one self-contained file "
            "that opens offline."
        ),
    )
    p.add_argument("name", metavar="NAME", help="north-south | runts | talkers | hunt | network | all")
    p.add_argument("--format", help="files to write: csv, xlsx, html (comma-separated), into --out")
    p.add_argument("--out", metavar="DIR", help="folder for the --format files")
    p.add_argument("--top", type=int, metavar="N", help="top N rows of each ranking (default: [reports] top_n)")
    p.add_argument("--ip", help="hunt: summarise this address's flows only (default: flagged + top N peers)")
    p.add_argument(
        "--nat",
        metavar="ENI|IP|NAT",
        help="talkers: the NAT gateway's interface (eni-...), address, or a regional NAT gateway (nat-...: the "
        "flows whose resource-id names it), for its cost",
    )
    p.add_argument(
        "--nat-region", help="the NAT's region: only S3/DynamoDB traffic in it counts as gateway-endpoint saving"
    )
    p.add_argument(
        "--asn-db",
        metavar="FILE",
        help="offline MaxMind-format ASN database (.mmdb, e.g. GeoLite2-ASN): label every Internet peer of "
        "north-south and hunt with its ASN and organisation; [reports] asn_exclude_orgs leaves organisations out "
        "of the top peers. Never looked up online.",
    )
    p.add_argument(
        "--geo-db",
        metavar="FILE",
        help="offline MaxMind-format country database (.mmdb: GeoLite2-Country, or DB-IP's free "
        "dbip-country-lite): the country of every Internet peer of north-south, hunt, the talkers and the "
        "intel contacts. Never looked up online.",
    )
    add_common(p)
    p.set_defaults(handler=cmd_report)


# ---------------------------------------------------------------- interfaces


def cmd_interfaces(args: argparse.Namespace, cfg: Config) -> int:
    from flowspark.pipelines.interfaces import parse_regions, run_interfaces

    regions = parse_regions(args.regions)
    spark = spark_for(cfg)
    print(run_interfaces(spark, args.lake, regions).text())
    return 0


def _interfaces_parser(sub: Any) -> None:
    p = sub.add_parser(
        "interfaces",
        help="snapshot EC2 network interfaces (what each eni- is) and flow logs -> <lake>/interfaces, "
        "<lake>/flow_logs, history kept",
        description=(
            "Call EC2 DescribeNetworkInterfaces in every --regions region (default: the region of the standard "
            "AWS chain) and append one snapshot to <lake>/interfaces: interface id, type, description, instance, "
            "NAT gateway id, VPC, subnet, private and public IPs, requester, region, snapshot time. Reports name "
            "the resource next to an eni- id from each interface's latest snapshot. Also DescribeFlowLogs into "
            "<lake>/flow_logs (flow log id, resource, format, destination, traffic type, and the tag keys of its "
            "TagFieldSpecifications): the talkers name EC2 tag values by their keys. Credentials come from the "
            "standard AWS chain; a local EC2 (moto) is reached with AWS_ENDPOINT_URL_EC2."
        ),
    )
    p.add_argument("--regions", metavar="r1,r2", help="regions to snapshot (default: the session's region)")
    add_common(p, dates=False)
    p.set_defaults(handler=cmd_interfaces)


# ---------------------------------------------------------------- intel (threat-intelligence lists)


def cmd_intel(args: argparse.Namespace, cfg: Config) -> int:
    from flowspark.pipelines import intel

    intel.check_name(args.name)  # before Spark starts
    if is_local(args.file) and not os.path.isfile(to_local_path(args.file)):
        raise FileNotFoundError(f"list file not found: {args.file}")
    spark = spark_for(cfg)
    print(intel.run_intel_load(spark, args.lake, args.name, args.file, args.list_format).text())
    return 0


def _intel_parser(sub: Any) -> None:
    p = sub.add_parser(
        "intel",
        help="load a threat-intelligence IP/CIDR list (FireHOL, Spamhaus DROP, Tor exits, CSV) into the lake",
        description=(
            "intel load: read a published list of addresses and CIDRs (IPv4 and IPv6) into <lake>/intel_lists as "
            "the list's next version (the same content as its newest version adds none). Formats, detected from "
            "the lines or given with --list-format: netset (one address or CIDR per line, # comments: FireHOL, "
            "Tor's exit list), drop (Spamhaus DROP: 'CIDR ; SBL id'), csv (a header with an ip or cidr column; the "
            "other columns become the label). A line that is none of these is listed with its number and "
            "skipped. The network report then lists every local address that talked with a listed one (which "
            "list, its version and load date, first/last seen, bytes each way), and the HTML report puts them "
            "first under What to look at; a list older than [reports] intel_max_age_days makes it warn."
        ),
    )
    p.add_argument("action", choices=["load"], help="load: add a version of a list")
    p.add_argument("--name", required=True, help="the list's name in the lake, e.g. firehol_level1, spamhaus_drop")
    p.add_argument("--file", required=True, metavar="FILE|URI", help="the list: a file, an https URL or s3://...")
    p.add_argument("--list-format", choices=["netset", "drop", "csv"], help="the list's format (default: detected)")
    add_common(p, dates=False)
    p.set_defaults(handler=cmd_intel)


# ---------------------------------------------------------------- findings (detections)


def cmd_findings(args: argparse.Namespace, cfg: Config) -> int:
    from flowspark.pipelines import findings

    if args.benign:
        if not args.reason:
            raise ValueError("--benign needs --reason TEXT: say why the finding is benign")
        spark = spark_for(cfg)
        print(findings.run_mark(spark, args.lake, args.benign, args.reason))
        return 0
    findings.check_format(args.findings_format, args.out)  # before Spark starts
    if (args.findings_format == "asff" or args.to_securityhub) and not (args.account_id and args.region):
        raise ValueError("--format asff and --to-securityhub need --account-id (12 digits) and --region")
    if args.geo_db:
        from flowspark.pipelines.report import check_geo_db

        check_geo_db(args.geo_db)
    spark = spark_for(cfg)
    summary = findings.run_findings(
        spark,
        cfg,
        args.lake,
        args.date_from,
        args.date_to,
        fmt=args.findings_format,
        out=args.out,
        to_securityhub=args.to_securityhub,
        account_id=args.account_id,
        region=args.region,
        endpoint_url=args.securityhub_endpoint,
        evidence_per_finding=args.evidence,
        progress=_progress_line,
        geo_db=args.geo_db,
    )
    print(summary.text())
    return 1 if summary.failed else 0


def _progress_line(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def _findings_parser(sub: Any) -> None:
    p = sub.add_parser(
        "findings",
        help="run the detections (scans, brute force, DoS, spam, unusual ports and volume, beacons, listed "
        "addresses) into <lake>/findings; write JSON lines or ASFF; send to Security Hub",
        description=(
            "findings: every detection over the flows of --from..--to (and [detections] baseline_days of history "
            "before it), each a rule with its thresholds in [detections] (the reason for each default: "
            "flowspark/core/detections/base.py), an ATT&CK technique, a severity and an evidence sentence. Daily "
            "activity goes to <lake>/detection_activity (a rerun of the same days replaces them); <lake>/findings "
            "holds one row per finding: a subject's activity until a quiet gap of [detections] finding_gap_hours, "
            "with a stable id. --format jsonl writes one finding per line with its evidence flows; --format asff "
            "writes AWS Security Finding Format; --to-securityhub sends them (BatchImportFindings, 100 a call). "
            "--benign ID --reason TEXT marks a finding benign: kept, left out of files, Security Hub and the report."
        ),
    )
    p.add_argument("--format", dest="findings_format", choices=["jsonl", "asff"], help="the file's format")
    p.add_argument("--out", metavar="FILE", help="the file to write (with --format)")
    p.add_argument("--evidence", type=int, default=20, metavar="N", help="evidence flows per finding in jsonl (20)")
    p.add_argument(
        "--geo-db",
        metavar="FILE",
        help="offline MaxMind-format country database (.mmdb): each jsonl finding's peer gets country and "
        "country_name",
    )
    p.add_argument("--to-securityhub", action="store_true", help="send the open findings to Security Hub")
    p.add_argument("--account-id", help="the AWS account the findings belong to (ASFF's AwsAccountId)")
    p.add_argument("--region", help="the Security Hub region (ASFF's ProductArn)")
    p.add_argument("--securityhub-endpoint", metavar="URL", help="a Security Hub endpoint (tests: moto's server)")
    p.add_argument("--benign", metavar="FINDING_ID", help="mark this finding benign (with --reason) and stop")
    p.add_argument("--reason", help="why the finding is benign")
    add_common(p)
    p.set_defaults(handler=cmd_findings)


# ---------------------------------------------------------------- generate (sample data, no Spark)


def cmd_generate(args: argparse.Namespace, cfg: Config) -> int:
    from flowspark.generator import FIELD_VERSIONS, generate

    if args.records < 0 or args.days < 1 or args.accounts < 1 or args.regions < 1:
        raise ConfigError("--records must be 0 or more; --days, --accounts and --regions at least 1")
    started = time.time()
    truth = generate(
        args.out,
        records=args.records,
        seed=args.seed,
        start=args.start,
        days=args.days,
        accounts=args.accounts,
        regions=args.regions,
        layout=args.key_layout,
        hourly=args.hourly,
        output=args.file_format,
        log_format=FIELD_VERSIONS[args.field_version],
        workers=args.workers,
        quiet=not _VERBOSE[0],
        overwrite=args.overwrite,
        tgw=args.tgw,
    )
    print(
        f"flowspark generate: {truth['records']:,} records in {truth['files']:,} objects (flow log version "
        f"{args.field_version}, {args.file_format}, {args.key_layout} key layout) -> {args.out}, "
        f"{time.time() - started:.1f} s; the truth of what was written: {args.out}/_truth.json"
    )
    return 0


def _generate_parser(sub: Any) -> None:
    p = sub.add_parser(
        "generate",
        help="write realistic synthetic flow logs as AWS delivers them to S3 (sample data; no Spark)",
        description=(
            "Write synthetic VPC flow logs under --out exactly as AWS delivers them (AWSLogs/<account>/"
            "vpcflowlogs/<region>/YYYY/MM/DD/..._<YYYYMMDDTHHmmZ>_<hash>.log.gz, one object per flow log per 5 "
            "minutes), with an exact truth of what was written in OUT/_truth.json: an Internet-facing VPC per "
            "flow log (NAT gateway, load balancer, bastion, database, app instances), sessions, scanners, DNS, "
            "NTP, NODATA/SKIPDATA rows, planted hunt patterns. --field-version 11 writes every field of the "
            "custom format plus the v8-v11 ones (reject-reason, encryption-status, next hops, tag values). The "
            "same arguments give the same bytes."
        ),
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--out", required=True, metavar="DIR", help="output folder (the bucket's root)")
    p.add_argument("--records", type=int, default=100_000, metavar="N", help="records to write (exact)")
    p.add_argument("--days", type=int, default=1, metavar="D", help="UTC days, from --start")
    p.add_argument("--start", default="2024-06-01", metavar="YYYY-MM-DD", help="the first day")
    p.add_argument(
        "--field-version",
        type=int,
        choices=(2, 5, 11),
        default=2,
        metavar="V",
        help="the records' fields: 2 (AWS's default format), 5 (a custom format with v3-v5 fields) or 11 "
        "(that, plus region, az-id, reject-reason, encryption-status and the v11 fields)",
    )
    p.add_argument("--key-layout", choices=("default", "hive"), default="default", help="S3 key layout")
    p.add_argument("--hourly", action="store_true", help="hourly partitions (HH/ or hour=HH/)")
    p.add_argument("--file-format", choices=("text", "parquet"), default="text", help="gzip text or Parquet")
    p.add_argument("--accounts", type=int, default=3, help="AWS accounts")
    p.add_argument("--regions", type=int, default=2, help="regions per account (a flow log each)")
    p.add_argument("--seed", type=int, default=7, help="random seed")
    p.add_argument("--workers", type=int, default=2, help="processes (the output does not depend on it)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing OUT/AWSLogs")
    p.add_argument(
        "--tgw",
        action="store_true",
        help="a Transit Gateway's flow log too (version 6 default format, two VPC attachments, packets lost by "
        "cause), in the first account and region",
    )
    p.add_argument("-v", "--verbose", action="store_true", help="progress lines")
    p.set_defaults(handler=cmd_generate)


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="flowspark",
        description="AWS VPC Flow Logs -> Delta Lake on PySpark. 'flowspark run' is the daily job (ingest, tag,\n"
        "classify, reports in one session); each step is a command of its own too. Commands:",
        epilog=f"{OPTIONS}\n\n{EXIT_CODES}\n\nRun 'flowspark <command> --help' for a command's options. "
        "Config: conf/<env>.toml (or --config FILE).",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    from flowspark import __version__

    parser.add_argument("--version", action="version", version=f"flowspark {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="<command>")
    p = sub.add_parser("setup", help="resolve and cache the JVM jars (Delta, hadoop-aws) from Maven Central")
    add_common(p, lake=False, dates=False)
    p.set_defaults(handler=cmd_setup)
    p = sub.add_parser(
        "packages",
        help="print the JVM packages for spark-submit --packages (Delta, hadoop-aws of this Spark line)",
        description="Print the Maven coordinates of the JVM packages flowspark needs on this Spark line, for "
        'spark-submit: spark-submit --packages "$(flowspark packages)" ...',
    )
    p.set_defaults(handler=cmd_packages)
    _ingest_parser(sub)
    _dedup_parser(sub)
    _run_parser(sub)
    _tag_parser(sub)
    _ipranges_parsers(sub)
    _report_parser(sub)
    _storage_parsers(sub)
    _export_parser(sub)
    _catalog_parser(sub)
    _interfaces_parser(sub)
    _intel_parser(sub)
    _findings_parser(sub)
    _generate_parser(sub)
    for command in sub.choices.values():
        command.epilog = command.epilog or EXIT_LINE
    return parser


def _first_line(exc: BaseException, limit: int = 400) -> str:
    """The cause in one line: the first line of the message (Spark's carry a JVM trace after it)."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."


# Causes a person can fix, recognised in a failure's message (the exception's, Java's included): (words, what
# to say, exit code), first match wins. 2: the environment (credentials, permissions, disk, a table this
# flowspark cannot read): fix it, nothing to resume; 1: the run failed and a rerun resumes it.
_KNOWN_CAUSES = (
    (
        ("NoCredentialsError", "No AWS Credentials", "NoAuthWithAWSException", "Unable to load AWS credentials"),
        "no AWS credentials found: provide them the standard way (AWS_PROFILE, AWS_ACCESS_KEY_ID/"
        "AWS_SECRET_ACCESS_KEY, or an instance/task role)",
        2,
    ),
    (
        ("AccessDenied", "Access Denied", "403 Forbidden"),
        "access denied by S3: the job needs read on the source prefix and read/write on the lake (README, IAM)",
        2,
    ),
    (("NoSuchBucket", "bucket does not exist"), "the S3 bucket does not exist: check the URI", 2),
    (
        ("SlowDown", "Slow Down", "reduce your request rate"),
        "S3 throttled the job (503 SlowDown) beyond its retries: rerun it later (it resumes where it stopped), or "
        "raise fs.s3a.retry.limit / fs.s3a.attempts.maximum",
        1,
    ),
    (
        ("No space left on device", "ENOSPC"),
        "the disk is full: free space where the lake or Spark's scratch space (spark.local.dir, /tmp by default) "
        "lives, then rerun (it resumes; files of the cancelled write go at the next 'flowspark maintain')",
        2,
    ),
    (("Read-only file system", "EROFS"), "a read-only file system: give a --lake on one that can be written", 2),
    (
        ("Permission denied", "AccessDeniedException", "EACCES"),
        "permission denied on a file of the lake or the source: fix its permissions, or give another --lake",
        2,
    ),
    (
        ("OutOfMemoryError", "Java heap space", "GC overhead limit exceeded", "MemoryError"),
        "out of memory: raise [spark] driver_memory in the config (executors: spark.executor.memory and "
        "memoryOverhead, docs/operations.md), or give the run fewer days (--from/--to); rerun resumes",
        1,
    ),
    (
        (
            "DELTA_INVALID_PROTOCOL_VERSION", "DELTA_UNSUPPORTED_FEATURES_FOR_READ",
            "DELTA_UNSUPPORTED_FEATURES_FOR_WRITE", "DELTA_UNSUPPORTED_READER_TABLE_FEATURES",
            "DELTA_UNSUPPORTED_WRITER_TABLE_FEATURES", "InvalidProtocolVersionException",
        ),
        "a table of the lake was written by a newer Delta Lake (a newer flowspark, or another writer): upgrade "
        "flowspark, or give another --lake",
        2,
    ),
    (
        ("DELTA_CONCURRENT", "ConcurrentAppendException", "ConcurrentDeleteReadException", "ProtocolChangedException"),
        "another run changed the same table at the same time and the retries ran out: rerun (it resumes)",
        1,
    ),
    (
        ("DELTA_MISSING_DELTA_TABLE", "DELTA_TABLE_NOT_FOUND", "is not a Delta table", "DELTA_EMPTY_DIRECTORY"),
        "a folder of the lake is not a Delta table (files put there by hand, or a table half deleted): move it "
        "away, or give another --lake",
        2,
    ),
    (
        (
            "DELTA_LOG_FILE_NOT_FOUND", "DELTA_VERSIONS_NOT_CONTIGUOUS", "DELTA_STATE_RECOVER_ERROR",
            "FAILED_READ_FILE.FILE_NOT_EXIST", "underlying files have been updated",
        ),
        "a table of the lake has files missing (deleted or vacuumed by hand?): restore them from a backup, or "
        "give another --lake",
        2,
    ),
)
_DELTA_CLASS = re.compile(r"\[(DELTA_[A-Z_]+)\]")


def explain(exc: BaseException) -> tuple[str, int] | None:
    """A failure as (one line: the cause and what to do, exit code), when its message says a known cause; a
    Delta error class not in the table is named with Delta's own first sentence."""
    message = f"{type(exc).__name__}: {exc}"
    cause = exc.__cause__ or exc.__context__
    if cause is not None:
        message += f" {type(cause).__name__}: {cause}"
    for words, say, code in _KNOWN_CAUSES:
        if any(w in message for w in words):
            return f"{say} ({_first_line(exc, 200)})", code
    m = _DELTA_CLASS.search(message)
    if m:
        said = message[m.end() :].strip().split("\n")[0][:300]
        return f"Delta Lake refused the operation ({m.group(1)}): {said}", 1
    return None


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    verbose = bool(getattr(args, "verbose", False))
    _VERBOSE[0] = verbose
    plain = "flowspark: %(levelname)s: %(message)s"  # warnings as plain lines; progress logs with times under -v
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s" if verbose else plain,
    )
    for note in getattr(args, "deprecated", None) or []:
        log.warning(note)
    global _STOP
    _COMMAND[0] = args.command
    _STOP = Stopper()
    _STOP.install()
    try:
        code = _main(args, verbose)
    except KeyboardInterrupt:
        code = 130
    finally:
        _STOP.restore()
        if _PROGRESS[0] is not None:
            _PROGRESS[0].stop()
            _PROGRESS[0] = None
    if _STOP.signum is not None:
        print(
            f"flowspark {args.command}: interrupted ({signal.Signals(_STOP.signum).name}); rerun to complete it",
            file=sys.stderr,
        )
        return 128 + _STOP.signum
    return code


def _main(args: argparse.Namespace, verbose: bool) -> int:
    try:
        date_from, date_to = getattr(args, "date_from", None), getattr(args, "date_to", None)
        if date_from and date_to and date_from > date_to:  # every command with --from/--to, before Spark
            raise ConfigError(f"--from {date_from} is after --to {date_to}")
        if getattr(args, "lake", None):
            check_lake(args.lake, writes=args.command not in ("stats", "export", "catalog"))
        cfg = config_from_args(args) if hasattr(args, "env") else load_config("local")
        return int(args.handler(args, cfg))
    except (ConfigError, FileNotFoundError, FileExistsError, ValueError) as exc:
        if verbose:
            raise
        print(f"flowspark {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"flowspark {args.command}: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # the job failed: one line with the cause; the trace with -v
        if _STOP.signum is not None:  # a job cancelled because we were asked to stop: not a failure
            return 128 + _STOP.signum
        if verbose:
            raise
        known = explain(exc)
        if known is not None:
            print(f"flowspark {args.command}: error: {known[0]}", file=sys.stderr)
            return known[1]
        where = f"; Spark's log: {spark_log()}" if spark_log() else ""
        print(
            f"flowspark {args.command}: failed: {type(exc).__name__}: {_first_line(exc)} "
            f"(run with -v for the trace{where})",
            file=sys.stderr,
        )
        return 1


if __name__ == "__main__":
    sys.exit(main())
