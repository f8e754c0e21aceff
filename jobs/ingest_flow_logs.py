"""spark-submit / Glue entry point: `spark-submit jobs/ingest_flow_logs.py --source ... --lake ...`.

Thin on purpose: the same code as `flowspark ingest` (see flowspark/cli.py).
"""

import sys

from flowspark.cli import main

if __name__ == "__main__":
    sys.exit(main(["ingest", *sys.argv[1:]]))
