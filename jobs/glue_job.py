"""AWS Glue 5 (Spark 3.5) entry point: one script for every flowspark command.

Glue job parameters (Job details -> Advanced -> Job parameters):
    --additional-python-modules  s3://<bucket>/flowspark-<version>-py3-none-any.whl
    --datalake-formats           delta
    --conf                       spark.sql.extensions=io.delta.sql.DeltaSparkSessionExtension
                                 --conf spark.sql.catalog.spark_catalog=org.apache.spark.sql.delta.catalog.DeltaCatalog
    --command                    ingest | dedup | tag | ip-ranges | classify | run
    --lake                       s3://<lake-bucket>/vpc
    --source, --from, --to, --window, ...   as `flowspark <command> --help` lists them
Glue passes them as `--name value` arguments (plus its own, such as --JOB_NAME, which are ignored here);
`getResolvedOptions` reads them when awsglue is importable, argparse otherwise (a local run). The
SparkSession is Glue's own: flowspark uses the active one with conf/glue.toml (`--env glue`).
"""

from __future__ import annotations

import sys

from flowspark.cli import main

# flowspark options a Glue job may pass (each `--name value`), and the flags (`--name true`).
OPTIONS = ("source", "lake", "from", "to", "window", "key", "format", "lookup", "output", "count", "steps", "config")
FLAGS = ("force", "bidirectional", "strict", "verbose")


def flowspark_argv(argv: list[str]) -> list[str]:
    """The `flowspark` command line for Glue's job arguments."""
    wanted = ["command", *[o for o in (*OPTIONS, *FLAGS) if f"--{o}" in argv]]
    try:
        from awsglue.utils import getResolvedOptions  # type: ignore[import-not-found]

        opts = getResolvedOptions(argv, wanted)
    except ImportError:
        import argparse

        p = argparse.ArgumentParser(add_help=False)
        for name in wanted:
            p.add_argument(f"--{name}", dest=name)
        opts = vars(p.parse_known_args(argv[1:])[0])
    out = [opts["command"], "--env", "glue"]
    for name in OPTIONS:
        if opts.get(name):
            out += [f"--{name}", opts[name]]
    for name in FLAGS:
        if str(opts.get(name, "")).lower() in ("true", "1", "yes"):
            out.append(f"--{name}")
    return out


if __name__ == "__main__":
    sys.exit(main(flowspark_argv(sys.argv)))
