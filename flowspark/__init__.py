"""flowspark: AWS VPC Flow Logs into Delta Lake on PySpark: ingest, dedup, tag, classify, reports.

Three layers and a front door; imports only point down (an import-linter contract in pyproject.toml,
checked by `make lint`):

    cli.py        every `flowspark <command>`: arguments -> config -> session -> a pipeline -> summary
    pipelines/    one module per job, `run_*(spark, ...) -> Summary`: read -> transforms -> write ->
                  reconcile -> summary; the only place that runs Spark actions
    edges/        I/O: tables (the only Delta toucher), sources (listing and reading objects),
                  session (the only SparkSession factory), config (conf/*.toml)
    core/         pure rules and DataFrame -> DataFrame transforms: schema, protocols, addresses,
                  dates, lines (parsing flow-log lines), dedup, tags, ipranges; imports only core
"""

__version__ = "0.1.0"
