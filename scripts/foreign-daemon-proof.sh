#!/usr/bin/env bash
# Proof that a test run touches only what it started (issue 17 §2, docs/testing.md "Ownership"):
# a "foreign" daemon with its own state directory (outside any test run's root) keeps a warm VM,
# then COMMAND runs (by default the whole `npm test`), then the same VMM process must still be alive
# and the next call must be served warm by it. Prints a report; exits non-zero when the VM was touched.
#   scripts/foreign-daemon-proof.sh [COMMAND...]
set -uo pipefail
cd "$(dirname "$0")/.."
state=$(mktemp -d /var/tmp/fc-foreign-XXXXXX)
# the command's output outlives the state directory (removed at the end)
cmdlog=${FOREIGN_PROOF_LOG:-$(mktemp /var/tmp/fc-foreign-command-XXXXXX.log)}
port=$(node -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})')
url="http://127.0.0.1:$port"
cfg="$state/config.yaml"
# a keep-alive longer than any test run, so only a kill could take the VM away
printf 'policies:\n  keepAlive: { policy: fixed, ttlSeconds: 7200 }\n' >"$cfg"
daemon_pid=
cleanup() {
  [ -n "$daemon_pid" ] && kill -TERM "$daemon_pid" 2>/dev/null && wait "$daemon_pid" 2>/dev/null
  node bin/faascell.js gc --state-dir "$state" >/dev/null 2>&1
  rm -rf "$state"
}
trap cleanup EXIT
fc() { node bin/faascell.js --url "$url" "$@"; }
vmm_pids() { cat "$state"/run/*/qemu.pid 2>/dev/null | sort; }

echo "foreign daemon: state $state, $url (started $(date -u +%FT%TZ))"
node bin/faascell.js serve --state-dir "$state" --port "$port" --config "$cfg" --log-level warn >"$state/daemon.log" 2>&1 &
daemon_pid=$!
for _ in $(seq 1 120); do curl -sf "$url/healthz" >/dev/null && break; sleep 1; done
curl -sf "$url/healthz" >/dev/null || { echo "the foreign daemon did not come up"; cat "$state/daemon.log"; exit 1; }
fc deploy hello examples/functions/hello.js >/dev/null || exit 1
fc invoke hello '{"name":"before"}' 2>&1 | tail -1
before=$(vmm_pids)
echo "foreign VMM pids before: ${before:-none}"
[ -n "$before" ] || { echo "no warm VM to protect"; exit 1; }

cmd=("$@")
[ "${#cmd[@]}" -gt 0 ] || cmd=(npm test)
echo "=== running: ${cmd[*]}"
"${cmd[@]}" >"$cmdlog" 2>&1
rc=$?
echo "=== command exit $rc; its output: $cmdlog; its last lines:"
tail -3 "$cmdlog"

after=$(vmm_pids)
echo "foreign VMM pids after:  ${after:-none}"
alive=0
for p in $before; do kill -0 "$p" 2>/dev/null && alive=$((alive + 1)); done
out=$(fc invoke hello '{"name":"after"}' 2>&1 | tail -1)
echo "next call: $out"
if [ "$before" = "$after" ] && [ "$alive" -gt 0 ] && [[ "$out" == *warm* ]]; then
  echo "RESULT: the foreign daemon's VM survived the command and served warm"
  exit 0
fi
echo "RESULT: the foreign daemon's VM was touched"
exit 1
