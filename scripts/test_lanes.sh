#!/usr/bin/env bash
# The whole suite on each Spark line, one after the other (the same code on both), with each lane's time.
# Usage: scripts/test_lanes.sh [pytest args...]   (make test calls it; CI calls make test)
set -uo pipefail
cd "$(dirname "$0")/.."
status=0
summary=()
for lane in ".venv:Spark 4.0 + Delta 4.0" ".venv-35:Spark 3.5 + Delta 3.3"; do
  venv=${lane%%:*}; name=${lane#*:}
  echo "== lane: $name ($venv)"
  start=$(date +%s)
  "$venv/bin/python" -m pytest -q -p no:cacheprovider "$@"
  rc=$?
  took=$(( $(date +%s) - start ))
  summary+=("lane $name: exit $rc in ${took} s")
  [ $rc -eq 0 ] || status=1
done
printf '%s\n' "${summary[@]}"
exit $status
