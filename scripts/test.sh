#!/usr/bin/env bash
# The test command (npm test): set-up (idempotent), lint, type check, unit tests,
# then end-to-end tests against real microVMs. Ends with one plain line
# "N passed, N failed, N skipped" summed over every suite.
#   scripts/test.sh            everything
#   scripts/test.sh unit       unit tests only (no VM)
#   scripts/test.sh e2e        end-to-end tests only
set -uo pipefail
cd "$(dirname "$0")/.."
what=${1:-all}

if [ "$what" != "unit" ]; then
  bash scripts/setup.sh || { echo "setup failed"; echo "0 passed, 1 failed"; exit 1; }
fi

# the compiled command (dist/) that bin/faascell.js, the e2e tests' daemons and the doc examples run
node scripts/build.mjs >/dev/null || { echo "build failed"; echo "0 passed, 1 failed"; exit 1; }

failed_steps=()
passed=0; failed=0; skipped=0
log_dir=$(mktemp -d)
trap 'rm -rf "$log_dir"' EXIT

run_suite() { # name, concurrency, files...
  local name=$1 conc=$2; shift 2
  [ "$#" -gt 0 ] || return 0
  echo "=== $name tests ($# files)"
  node --import tsx --test --test-reporter=tap --test-concurrency="$conc" "$@" 2>&1 | tee "$log_dir/$name.tap" | grep -E '^(not ok|ok|# (Subtest|pass|fail|skip|todo|duration))' | grep -vE '^ok .* # SKIP$' || true
  local p f s
  p=$(grep -E '^# pass ' "$log_dir/$name.tap" | tail -1 | awk '{print $3}')
  f=$(grep -E '^# fail ' "$log_dir/$name.tap" | tail -1 | awk '{print $3}')
  s=$(grep -E '^# skipped ' "$log_dir/$name.tap" | tail -1 | awk '{print $3}')
  if [ -z "$p" ]; then echo "!!! $name suite produced no summary"; failed=$((failed+1)); failed_steps+=("$name"); return; fi
  passed=$((passed+p)); failed=$((failed+${f:-0})); skipped=$((skipped+${s:-0}))
  if [ "${f:-0}" != 0 ]; then
    failed_steps+=("$name")
    echo "--- failures in $name:"; grep -B2 -A30 -E '^ *not ok' "$log_dir/$name.tap" | grep -vE '^ +(at |async )' | head -300
  fi
}

if [ "$what" != "e2e" ]; then
  echo "=== lint"
  if npx eslint . ; then passed=$((passed+1)); else failed=$((failed+1)); failed_steps+=(lint); fi
  echo "=== typecheck"
  if npx tsc -p tsconfig.json --noEmit; then passed=$((passed+1)); else failed=$((failed+1)); failed_steps+=(typecheck); fi
  run_suite unit 2 test/unit/*.test.ts
fi
if [ "$what" != "unit" ]; then
  # one VM test file at a time: the machine has 2 cores and TCG boots are CPU-bound
  run_suite e2e 1 test/e2e/*.test.ts
  left=$(pgrep -a -f 'qemu-system' | grep -v pgrep || true)
  if [ -n "$left" ]; then echo "!!! QEMU processes left behind:"; echo "$left"; failed=$((failed+1)); failed_steps+=(orphans); pkill -9 -f qemu-system || true
  else passed=$((passed+1)); fi
fi

[ "${#failed_steps[@]}" -gt 0 ] && echo "failed: ${failed_steps[*]}"
echo "$passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ]
