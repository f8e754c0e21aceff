#!/usr/bin/env bash
# The suite on each Spark line, with each lane's time and its 25 slowest tests. CI (make test): on Spark 4.0 +
# Delta 4.0 every test not marked slow (tests/slow.txt and tests/conftest.py say which are) and one slice of
# the slow ones, in turn by commit count (SLOW_ROTATION=N picks slice N; tests/slow_seconds.txt), on Spark 3.5 +
# Delta 3.3 (Glue 5, EMR 7) the fixed list tests/lane35.txt (the behaviours that differ between the lines).
# FULL=1 (make test-all): every test on both lines. The two lanes run at the same time, each in its own
# pytest process, temp folder and output lines (prefixed with the lane).
# Usage: scripts/test_lanes.sh [pytest args...]   (make test calls it; CI calls make test)
#        LANES=35 scripts/test_lanes.sh ...       (one lane only: 4 or 35)
#        FULL=1 scripts/test_lanes.sh             (every test on both lines: make test-all, long)
#        LANES_SERIAL=1 scripts/test_lanes.sh     (one lane after the other)
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
work=$(mktemp -d "${TMPDIR:-/tmp}/flowspark_lanes_XXXXXX")

run_lane() {  # id venv name: one lane, its exit code and seconds into $work/<id>.result
  local id=$1 venv=$2 name=$3 start rc
  start=$(date +%s)
  echo "== lane $id: $name ($venv) started"
  local select=()
  if [ -z "${FULL:-}" ] && [ $# -le 3 ]; then
    if [ "$id" = 35 ]; then
      mapfile -t select < <(grep -v '^#' tests/lane35.txt | sed '/^$/d')
    else
      # every test not slow, and the slice of the slow ones this commit's turn (tests/conftest.py): over any
      # run of consecutive commits as long as the slices are many, every slow test runs once
      select=(--slow-rotation="${SLOW_ROTATION:-$(git rev-list --count HEAD 2>/dev/null || echo 0)}")
    fi
  fi
  PYTHONUNBUFFERED=1 "$venv/bin/python" -m pytest -q -p no:cacheprovider --durations=25 --basetemp="$work/tmp$id" \
    "${select[@]}" "${@:4}" 2>&1 | sed -u "s/^/[$id] /"
  rc=${PIPESTATUS[0]}
  echo "$rc $(( $(date +%s) - start ))" > "$work/$id.result"
  echo "== lane $id: $name: exit $rc in $(( $(date +%s) - start )) s"
}

pids=()
for lane in "${lanes[@]}"; do
  IFS=: read -r id venv name <<< "$lane"
  if [ -z "${LANES_SERIAL:-}" ]; then
    run_lane "$id" "$venv" "$name" "$@" &
    pids+=($!)
  else
    run_lane "$id" "$venv" "$name" "$@"
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
