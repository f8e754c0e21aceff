"""spark-submit / Glue entry point: `spark-submit jobs/dedup_flows.py --lake ... [--from ... --to ...]`."""

import sys

from flowspark.cli import main

if __name__ == "__main__":
    sys.exit(main(["dedup", *sys.argv[1:]]))
