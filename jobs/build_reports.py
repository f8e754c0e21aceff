"""spark-submit / Glue entry point: `spark-submit jobs/build_reports.py all --lake ... [--from ... --to ...]`."""

import sys

from flowspark.cli import main

if __name__ == "__main__":
    sys.exit(main(["report", *sys.argv[1:]]))
