"""spark-submit / Glue entry point for `flowspark classify` (same arguments; see `flowspark classify --help`)."""

import sys

from flowspark.cli import main

if __name__ == "__main__":
    sys.exit(main(["classify", *sys.argv[1:]]))
