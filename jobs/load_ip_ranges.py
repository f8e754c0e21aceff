"""spark-submit / Glue entry point for `flowspark ip-ranges` (same arguments; see `flowspark ip-ranges --help`)."""

import sys

from flowspark.cli import main

if __name__ == "__main__":
    sys.exit(main(["ip-ranges", *sys.argv[1:]]))
