#!/usr/bin/env bash
# make test-fresh: what a new machine does with racklift, here. It clones
# the repository's committed HEAD into a temporary folder (with ../shared
# beside it when this checkout has one, as CI provides it), then runs the
# README's test command there (.ci/run = make test) with CI=true, a bare
# environment, and an empty Go build and module cache, so nothing built
# or downloaded before is reused. Debian packages already installed on
# this machine stay installed: a truly fresh machine also spends a few
# minutes in `make deps` (apt-get install).
#
# It prints each package's test time (unit and integration runs) and flags
# any over 5 minutes, and exits with make test's status. The log and the
# summary are kept in $FRESH_OUT (default /tmp/racklift-fresh-<time>).
#
#   FRESH_RUNS=3 hack/test-fresh.sh    three fresh runs in a row
#   FRESH_WARM=1                       keep this machine's Go caches (faster)
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
runs=${FRESH_RUNS:-1}
out=${FRESH_OUT:-/tmp/racklift-fresh-$(date -u +%Y%m%dT%H%M%SZ)}
mkdir -p "$out"
head=$(git -C "$repo" rev-parse --short HEAD)
if [ -n "$(git -C "$repo" status --porcelain --untracked-files=no)" ]; then
  echo "test-fresh: note: uncommitted changes are NOT tested (a clone has only HEAD $head)" >&2
fi

summary() { # LOG: per-package times of `go test` result lines, slowest first
  awk '($1 == "ok" || $1 == "FAIL") && NF >= 3 && $3 ~ /^[0-9.]+s$/ {
    t = $3; sub(/s$/, "", t); printf "%8.1f s  %-4s %s\n", t, $1, $2
  }' "$1" | sort -rn
}

rc_all=0
for i in $(seq 1 "$runs"); do
  work=$(mktemp -d /tmp/racklift-fresh.XXXXXX)
  git clone -q --no-local "$repo" "$work/main"
  if [ -d "$repo/../shared" ]; then cp -r "$repo/../shared" "$work/shared"; fi
  caches=()
  if [ "${FRESH_WARM:-0}" != 1 ]; then
    mkdir -p "$work/gocache" "$work/gomodcache"
    caches=(GOCACHE="$work/gocache" GOMODCACHE="$work/gomodcache")
  fi
  log="$out/run$i.log"
  echo "test-fresh: run $i/$runs of $head in $work (log $log)"
  start=$(date +%s)
  set +e
  (cd "$work/main" && env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME="${HOME:-/root}" CI=true "${caches[@]}" \
    bash .ci/run) >"$log" 2>&1
  rc=$?
  set -e
  secs=$(( $(date +%s) - start ))
  {
    echo "run $i of $head: exit $rc after $((secs / 60)) min $((secs % 60)) s"
    echo "package test times (slowest first; unit and integration runs):"
    summary "$log"
    slow=$(summary "$log" | awk '$1 > 300 { print "  " $0 }')
    if [ -n "$slow" ]; then echo "over 5 minutes:"; echo "$slow"; fi
  } | tee "$out/run$i.summary"
  if [ "$rc" -ne 0 ]; then
    rc_all=$rc
    echo "test-fresh: run $i FAILED; last lines of its log:" >&2
    tail -40 "$log" >&2
  fi
  # The clone's Go caches are read-only module files; make them removable.
  chmod -R u+w "$work" 2>/dev/null || true
  rm -rf "$work"
  [ "$rc" -eq 0 ] || break
done
echo "test-fresh: results in $out"
exit "$rc_all"
