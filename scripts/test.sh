#!/usr/bin/env bash
# The test command (npm test). Runs, in order: set-up (idempotent), lint, type check, build, the unit,
# integration and end-to-end suites, then the sweep of the run's leftovers; ends with one plain line
# "N passed, N failed, N skipped" that CI reads ("0 failed" is green) and exits non-zero unless green.
#   scripts/test.sh               everything
#   scripts/test.sh unit          lint, type check and the unit suite (plain Node: no VM, no root, no server)
#   scripts/test.sh integration   the integration suite (real QEMU without a guest, nats-server, jails, tmpfs)
#   scripts/test.sh e2e           the end-to-end suite (the real daemon and real microVMs)
# Counting (test/runner/): node:test's structured events, not its text; a cancelled test, a failed hook,
# a timeout, a file or suite without tests, an unexplained skip and a non-zero exit of node are failures.
# Ownership: the run has an id and a root directory (the tests' TMPDIR); at the end only the processes and
# files of this run are killed and removed, whatever else runs on the machine (docs/testing.md).
set -uo pipefail
cd "$(dirname "$0")/.."
what=${1:-all}
case "$what" in all | unit | integration | e2e) ;; *) echo "usage: scripts/test.sh [all|unit|integration|e2e]" >&2; exit 2 ;; esac

run_id=$(od -An -N4 -tx1 /dev/urandom | tr -d ' \n')
base_tmp=${TMPDIR:-/tmp}
run_root="$base_tmp/fc-test-$run_id"
log_dir="$base_tmp/fc-test-$run_id.log"
mkdir -p "$run_root" "$log_dir"
# tsx keeps its compile cache in $TMPDIR/tsx-<uid>: the run shares the usual one instead of compiling afresh
tsx_cache="tsx-$(id -u)"
mkdir -p "$base_tmp/$tsx_cache" && ln -s "$base_tmp/$tsx_cache" "$run_root/$tsx_cache"
results="$log_dir/results.jsonl"
echo "=== test run $run_id (temporary files under $run_root)"

judge() { node --import tsx test/runner/main.ts "$@"; }
step() { # name, command...: one counted step
  local name=$1; shift
  echo "=== $name"
  local t0=$SECONDS rc=0
  "$@" || rc=$?
  echo "--- $name took $((SECONDS - t0)) s"
  if [ "$rc" = 0 ]; then judge step "$name" ok "$results"; else judge step "$name" failed "$results"; return 1; fi
}
swept=0
sweep() { # label, [--final]: kill and remove what this run left, and only that
  judge sweep "$run_id" "$run_root" "$results" "$1" "${2:-}"
}
finish() {
  rm -f "$run_root/$tsx_cache"
  [ "$swept" = 1 ] || sweep "at exit" --final
  swept=1
  judge close "$results"
  local rc=$?
  rm -rf "$log_dir"
  exit "$rc"
}
trap 'echo "interrupted"; judge step interrupted failed "$results"; finish' INT TERM

run_suite() { # name, concurrency, time limit, files...
  local name=$1 conc=$2 limit=$3; shift 3
  if [ "$#" -eq 0 ]; then judge step "$name suite (no files)" failed "$results"; return; fi
  local reporter=spec
  [ "$name" = unit ] && reporter=dot
  echo "=== $name tests ($# files)"
  local t0=$SECONDS
  # the run's id and root go to the tests (and everything they start) through the environment only
  FAASCELL_TEST_RUN="$run_id" TMPDIR="$run_root" timeout --kill-after=30 "$limit" \
    node --import tsx --test --test-concurrency="$conc" \
    --test-reporter="$reporter" --test-reporter-destination=stdout \
    --test-reporter=./scripts/test-reporter.mjs --test-reporter-destination="$log_dir/$name.jsonl" \
    "$@"
  local rc=$?
  echo "--- $name suite took $((SECONDS - t0)) s"
  [ "$rc" = 124 ] && echo "!!! $name suite stopped at its time limit ($limit)"
  judge suite "$name" "$log_dir/$name.jsonl" "$rc" "$results" "$@"
  sweep "after the $name suite"
}

if [ "$what" != unit ]; then
  step "set-up" bash scripts/setup.sh || finish
fi
if [ "$what" = all ] || [ "$what" = unit ]; then
  # static checks of the sources, before any build output exists
  step lint npx eslint .
  step typecheck npx tsc -p tsconfig.json --noEmit
fi
if [ "$what" != unit ]; then
  # ---- build: the one place a build step runs before the suites (the unit suite runs from the sources).
  # A failed build is counted; the suites still run (they run the TypeScript sources through tsx).
  if node -e 'process.exit(require("./package.json").scripts?.build ? 0 : 1)'; then step build npm run build --silent; fi
fi
if [ "$what" = all ] || [ "$what" = unit ]; then
  run_suite unit 2 15m test/unit/*.test.ts
fi
if [ "$what" = all ] || [ "$what" = integration ]; then
  run_suite integration 1 15m test/integration/*.test.ts
fi
if [ "$what" = all ] || [ "$what" = e2e ]; then
  # one VM test file at a time: the machine has 2 cores and TCG boots are CPU-bound (two at a time was tried:
  # 17 instead of 21 min, and three tests that assume the node's capacity for themselves were refused work)
  run_suite e2e 1 40m test/e2e/*.test.ts
fi
finish
