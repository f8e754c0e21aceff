"""spark-submit / Glue entry point for `flowspark tag` (same arguments; see `flowspark tag --help`)."""

import sys

from flowspark.cli import main

if __name__ == "__main__":
    sys.exit(main(["tag", *sys.argv[1:]]))
