#!/usr/bin/env bash
# One command from a fresh clone: install everything (scripts/setup.sh), start the
# daemon, deploy a demo function and invoke it cold, then warm, then (after
# evicting it) restored from its snapshot, printing each activation record.
# The daemon then keeps running in the foreground until Ctrl-C.
#   DEMO_EXIT=1 npm run demo     stop the daemon after the demo and remove what it made (state
#                                directory, log, snapshot tiers in /dev/shm: `faascell gc`)
#   FAASCELL_PORT=9090 npm run demo
#   DEMO_STATE_DIR=/tmp/my-demo npm run demo   (default ${TMPDIR:-/tmp}/faascell-demo)
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh

port=${FAASCELL_PORT:-8080}
export FAASCELL_URL="http://127.0.0.1:$port"
state=${DEMO_STATE_DIR:-${TMPDIR:-/tmp}/faascell-demo}
rm -rf "$state"      # a fresh state: the first invocation is a real cold boot
if curl -fsS "$FAASCELL_URL/healthz" >/dev/null 2>&1; then
  echo "something already answers on $FAASCELL_URL: stop it or set FAASCELL_PORT" >&2; exit 1
fi

node bin/faascell.js serve --port "$port" --state-dir "$state" > "$state.log" 2>&1 &
daemon=$!
stop() {
  kill -TERM "$daemon" 2>/dev/null && wait "$daemon" 2>/dev/null || true
  if [ "${DEMO_EXIT:-0}" = 1 ]; then
    node bin/faascell.js gc --state-dir "$state" >/dev/null || true
    rm -rf "$state" "$state.log"
  fi
}
trap stop EXIT INT TERM
for _ in $(seq 1 600); do
  curl -fsS "$FAASCELL_URL/healthz" >/dev/null 2>&1 && break
  kill -0 "$daemon" 2>/dev/null || { echo "the daemon exited; its log:" >&2; tail -30 "$state.log" >&2; exit 1; }
  sleep 0.2
done

f=bin/faascell.js
node $f doctor || true
echo
node $f deploy hello examples/functions/hello.js
for label in "cold boot" "warm" ; do
  echo; echo "=== invocation: $label"
  node $f invoke hello '{"name":"FaaSCell"}' --json
done
echo; echo "=== evict the warm VM, then invoke again: restored from the snapshot taken after the cold boot's init"
node $f evict hello >/dev/null; sleep 1
node $f invoke hello '{"name":"again"}' --json
echo; echo "=== summary"
node $f activations --limit 3

if [ "${DEMO_EXIT:-0}" = 1 ]; then exit 0; fi
echo; echo "daemon running at $FAASCELL_URL (state in $state, log in $state.log); Ctrl-C stops it and its VMs"
wait "$daemon"
