#!/usr/bin/env bash
# The suite on each Spark line, one after the other (the same code on both), with each lane's time:
# Spark 4.0 + Delta 4.0 runs every test; Spark 3.5 + Delta 3.3 (Glue 5, EMR 7) runs the tests not marked slow
# (every rule, transform and job on small data), which keeps CI within its time on a 2-core machine; the
# slow ones (real-size objects, crashes, concurrent runs, the cluster) run there with LANE35_ALL=1.
# Usage: scripts/test_lanes.sh [pytest args...]   (make test calls it; CI calls make test)
set -uo pipefail
cd "$(dirname "$0")/.."
status=0
summary=()
for lane in ".venv:Spark 4.0 + Delta 4.0" ".venv-35:Spark 3.5 + Delta 3.3"; do
  venv=${lane%%:*}; name=${lane#*:}
  echo "== lane: $name ($venv)"
  start=$(date +%s)
  lane_args=()
  if [ "$venv" = ".venv-35" ] && [ -z "${LANE35_ALL:-}" ]; then lane_args=(-m "not slow"); fi
  "$venv/bin/python" -m pytest -q -p no:cacheprovider --durations=25 "${lane_args[@]}" "$@"
  rc=$?
  took=$(( $(date +%s) - start ))
  summary+=("lane $name: exit $rc in ${took} s")
  [ $rc -eq 0 ] || status=1
done
printf '%s\n' "${summary[@]}"
exit $status
