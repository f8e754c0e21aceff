"""The platform entry points: Glue's job arguments become the same command line as the CLI's."""

from __future__ import annotations

import importlib.util
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _glue_job():
    spec = importlib.util.spec_from_file_location("glue_job", REPO / "jobs" / "glue_job.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_glue_arguments_become_the_cli_command_line():
    glue = _glue_job()
    argv = [
        "glue_job.py",
        "--JOB_NAME",
        "daily",
        "--command",
        "dedup",
        "--lake",
        "s3://lake/vpc",
        "--from",
        "2024-06-01",
        "--to",
        "2024-06-01",
        "--job-bookmark-option",
        "job-bookmark-disable",
        "--bidirectional",
        "true",
    ]
    assert glue.flowspark_argv(argv) == [
        "dedup",
        "--env",
        "glue",
        "--lake",
        "s3://lake/vpc",
        "--from",
        "2024-06-01",
        "--to",
        "2024-06-01",
        "--bidirectional",
    ]


def test_the_glue_command_line_parses_with_the_cli_parser():
    from flowspark.cli import build_parser

    glue = _glue_job()
    argv = glue.flowspark_argv(["x", "--command", "ingest", "--source", "s3://logs/AWSLogs/", "--lake", "s3://l/v"])
    args = build_parser().parse_args(argv)
    assert (args.command, args.source, args.lake, args.env) == ("ingest", "s3://logs/AWSLogs/", "s3://l/v", "glue")
