"""Generate synthetic VPC flow logs as AWS writes them, with a ground-truth summary (see flowspark/generator.py)."""

import sys

from flowspark.generator import main

if __name__ == "__main__":
    sys.exit(main())
