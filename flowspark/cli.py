"""`flowspark <command>`: the same functions the spark-submit and Glue jobs call.

Every command: parse arguments -> load config (fail fast on a bad one) -> create the SparkSession
(only when the command needs Spark) -> run -> print a summary. Exit codes: 0 done, 1 the job failed
(for example it did not reconcile), 2 bad arguments or configuration.
"""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import sys
from collections.abc import Callable, Sequence
from typing import Any

from flowspark.config import Config, ConfigError, load_config, with_overrides

log = logging.getLogger("flowspark")

Handler = Callable[[argparse.Namespace, Config], int]


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


def spark_for(cfg: Config) -> Any:
    from flowspark.session import create_session

    return create_session(cfg)


# ---------------------------------------------------------------- commands


def cmd_setup(args: argparse.Namespace, cfg: Config) -> int:
    from flowspark.session import resolve_jars

    jars = resolve_jars(cfg)
    print(f"JVM dependencies ready ({len(jars)} jars, cached):")
    for j in jars:
        print(f"  {j}")
    return 0


def cmd_ingest(args: argparse.Namespace, cfg: Config) -> int:
    from flowspark.runs import run_ingest
    from flowspark.schema import parse_format

    if args.format:
        parse_format(args.format)  # fail before Spark starts
    spark = spark_for(cfg)
    summary = run_ingest(
        spark, cfg, args.source, args.lake, args.date_from, args.date_to, fmt=args.format, force=args.force
    )
    print(summary.text())
    return 0


def _ingest_parser(sub: Any) -> None:
    p = sub.add_parser(
        "ingest",
        help="raw flow logs (folder or S3) -> <lake>/flow_records (Delta), bad lines -> flow_rejects",
        description=(
            "Read VPC flow logs (text .log/.log.gz with or without a header, any format of versions 2-11; "
            "or .log.parquet) from a folder or S3 prefix, in the default or Hive-style key layout, and "
            "append them to <lake>/flow_records. Lines that do not parse go to <lake>/flow_rejects with "
            "file, line and reason. Files already ingested (same path and size) are skipped, so a rerun "
            "changes nothing. Ends with a summary; fails if records read != rows written + rejected."
        ),
    )
    p.add_argument("--source", required=True, help="folder, file, or s3://bucket/prefix (s3a:// works too)")
    p.add_argument(
        "--format",
        help="format of headerless files, as in AWS: 'version account-id interface-id ...' or '${version} ...' "
        "(default: the v2 default format). Files with a header line always use their header.",
    )
    p.add_argument("--force", action="store_true", help="re-read files even if already ingested (appends again)")
    add_common(p)
    p.set_defaults(handler=cmd_ingest)


def cmd_dedup(args: argparse.Namespace, cfg: Config) -> int:
    from flowspark import dedup
    from flowspark.runs import run_dedup

    key = [k.strip() for k in args.key.split(",")] if args.key else None
    if key:
        dedup.validate_key(key)
    if args.window:
        dedup.window_seconds(args.window)
    spark = spark_for(cfg)
    summary = run_dedup(spark, cfg, args.lake, args.date_from, args.date_to, args.window, key, args.bidirectional)
    print(summary.text())
    return 0


def _dedup_parser(sub: Any) -> None:
    p = sub.add_parser(
        "dedup",
        help="compact flow_records into <lake>/flows: one row per window and flow key, nothing lost",
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
        help="flow key columns, comma-separated (default: account_id,interface_id,srcaddr,"
        "dstaddr,srcport,dstport,protocol,action)",
    )
    p.add_argument(
        "--bidirectional",
        action="store_true",
        help="merge both directions of a conversation into one row of <lake>/conversations with request/response "
        "packets and bytes; the server is the endpoint with the lower port, ties go by address order",
    )
    add_common(p)
    p.set_defaults(handler=cmd_dedup)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="flowspark",
        description="AWS VPC Flow Logs -> Delta Lake on PySpark: ingest, dedup, tag, ip-ranges, classify.",
        epilog="Run 'flowspark <command> --help' for a command's options. Config: conf/<env>.toml.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="<command>")
    p = sub.add_parser("setup", help="resolve and cache the JVM jars (Delta, hadoop-aws) from Maven Central")
    add_common(p, lake=False, dates=False)
    p.set_defaults(handler=cmd_setup)
    _ingest_parser(sub)
    _dedup_parser(sub)
    for register in _plugins():
        register(sub)
    return parser


def _plugins() -> list[Callable[[Any], None]]:
    """Subcommands defined next to their transformations (dedup, tags, ipranges, reports)."""
    regs: list[Callable[[Any], None]] = []
    import importlib

    for mod in ("flowspark.tags", "flowspark.ipranges", "flowspark.reports"):
        try:
            m = importlib.import_module(mod)
        except ModuleNotFoundError as exc:
            if exc.name == mod:
                continue
            raise
        if hasattr(m, "register_cli"):
            regs.append(m.register_cli)
    return regs


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if getattr(args, "verbose", False) else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        date_from, date_to = getattr(args, "date_from", None), getattr(args, "date_to", None)
        if date_from and date_to and date_from > date_to:  # every command with --from/--to, before Spark
            raise ConfigError(f"--from {date_from} is after --to {date_to}")
        cfg = config_from_args(args) if hasattr(args, "env") else load_config("local")
        return int(args.handler(args, cfg))
    except (ConfigError, FileNotFoundError, ValueError) as exc:
        print(f"flowspark {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:  # the job failed: say so plainly, keep the traceback for -v
        if getattr(args, "verbose", False):
            raise
        print(f"flowspark {args.command}: failed: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
