#!/usr/bin/env bash
# The whole suite on each Spark line (the same code and the same tests on both): Spark 4.0 + Delta 4.0 and
# Spark 3.5 + Delta 3.3 (Glue 5, EMR 7), with each lane's time and its 25 slowest tests.
# The two lanes run at the same time, each in its own pytest process, temp folder and log (lines prefixed
# with the lane): one lane alone keeps this 2-core machine about 77% busy (JVM start-ups, subprocess jobs,
# Delta commits on the driver), two fill it, and CI stays within its time. LANES_SERIAL=1 runs them one
# after the other (a lane's timings then are its own).
# Usage: scripts/test_lanes.sh [pytest args...]   (make test calls it; CI calls make test)
#        LANES=35 scripts/test_lanes.sh ...       (one lane only: 4 or 35)
set -uo pipefail
cd "$(dirname "$0")/.."
lanes=()
for l in ${LANES:-4 35}; do
  case $l in
    4) lanes+=("4:.venv:Spark 4.0 + Delta 4.0") ;;
    35) lanes+=("35:.venv-35:Spark 3.5 + Delta 3.3") ;;
    *) echo "LANES: 4 and/or 35, not $l" >&2; exit 2 ;;
  esac
done
work=$(mktemp -d "${TMPDIR:-/tmp}/flowspark-lanes.XXXXXX")

run_lane() {  # id venv name: one lane, its exit code and seconds into $work/<id>.result
  local id=$1 venv=$2 name=$3 start rc
  start=$(date +%s)
  echo "== lane $id: $name ($venv) started"
  "$venv/bin/python" -m pytest -q -p no:cacheprovider --durations=25 --basetemp="$work/tmp-$id" "${@:4}" 2>&1 \
    | sed -u "s/^/[$id] /"
  rc=${PIPESTATUS[0]}
  echo "$rc $(( $(date +%s) - start ))" > "$work/$id.result"
  echo "== lane $id: $name: exit $rc in $(( $(date +%s) - start )) s"
}

pids=()
for lane in "${lanes[@]}"; do
  IFS=: read -r id venv name <<< "$lane"
  if [ -n "${LANES_SERIAL:-}" ]; then
    run_lane "$id" "$venv" "$name" "$@"
  else
    run_lane "$id" "$venv" "$name" "$@" &
    pids+=($!)
  fi
done
for p in "${pids[@]}"; do wait "$p"; done

status=0
for lane in "${lanes[@]}"; do
  IFS=: read -r id venv name <<< "$lane"
  if [ -f "$work/$id.result" ]; then
    read -r rc took < "$work/$id.result"
  else
    rc=1; took="?"
  fi
  echo "lane $name: exit $rc in ${took} s"
  [ "$rc" = 0 ] || status=1
done
rm -rf "$work"
exit $status
