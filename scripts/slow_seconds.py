"""tests/slow_seconds.txt from a pytest log of the slow tests run with --durations=0 (CI's rotation packs the
slow tests into slices by these figures: tests/conftest.py).

Usage: .venv/bin/python -m pytest -q -p no:cacheprovider -m slow --durations=0 > slow.log
       python scripts/slow_seconds.py slow.log "2026-12-05, Spark 4, 2 cores" > tests/slow_seconds.txt
"""

from __future__ import annotations

import re
import sys
from collections import defaultdict


def main() -> None:
    log, when = sys.argv[1], sys.argv[2] if len(sys.argv) > 2 else ""
    seconds: dict[str, float] = defaultdict(float)
    with open(log, encoding="utf-8") as fh:
        lines = fh.readlines()
    for line in lines:
        m = re.match(r"^(?:\[\w+\] )?([0-9.]+)s (setup|call|teardown)\s+(\S.*)$", line.rstrip("\n"))
        if m:
            seconds[m.group(3)] += float(m.group(1))
    print("# Seconds of each slow test (setup + call + teardown; a module fixture's setup counts on the test that")
    print("# ran first) in one run of the slow tests. CI's rotation packs the slow tests into slices by these")
    print("# figures (tests/conftest.py); a slow test not listed counts as 30 s.")
    if when:
        print(f"# Measured: {when}.")
    print("# Regenerate: scripts/slow_seconds.py LOG (a run with -m slow --durations=0).")
    for node in sorted(seconds):
        print(f"{max(1, round(seconds[node]))} {node}")


if __name__ == "__main__":
    main()
