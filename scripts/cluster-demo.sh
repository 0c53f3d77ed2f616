#!/usr/bin/env bash
# The one-machine cluster demo (issue 13, docs/cluster.md): nats-server with
# JetStream and three daemons on separate ports and state directories; deploy once
# through node 1, invoke through each node, show where each ran and the cluster's
# status. The daemons then keep running until Ctrl-C.
#   DEMO_EXIT=1 npm run demo:cluster     stop everything after the demo and remove what it made
#                                        (state directories, logs, the nodes' snapshot tiers in /dev/shm)
#   NATS_PORT=4222 FAASCELL_PORT=8081 (node 1; nodes 2 and 3 take the next ports)
#   DEMO_STATE_DIR=/tmp/my-cluster (default ${TMPDIR:-/tmp}/faascell-cluster-demo)
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh

nats_port=${NATS_PORT:-4222}
base=${FAASCELL_PORT:-8081}
dir=${DEMO_STATE_DIR:-${TMPDIR:-/tmp}/faascell-cluster-demo}
rm -rf "$dir"; mkdir -p "$dir"
pids=()
stop() {
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  if [ "${DEMO_EXIT:-0}" = 1 ]; then
    for i in 1 2 3; do node bin/faascell.js gc --state-dir "$dir/node$i" >/dev/null || true; done
    rm -rf "$dir"
  fi
}
trap stop EXIT INT TERM
wait_http() { # url pid log
  for _ in $(seq 1 600); do
    curl -fsS "$1/healthz" >/dev/null 2>&1 && return 0
    kill -0 "$2" 2>/dev/null || { echo "exited; its log:" >&2; tail -30 "$3" >&2; exit 1; }
    sleep 0.2
  done
  echo "$1 did not answer" >&2; exit 1
}

echo "=== nats-server with JetStream on 127.0.0.1:$nats_port (store: $dir/nats)"
nats-server -js -a 127.0.0.1 -p "$nats_port" -sd "$dir/nats" > "$dir/nats.log" 2>&1 &
pids+=($!)
for _ in $(seq 1 50); do (exec 3<>"/dev/tcp/127.0.0.1/$nats_port") 2>/dev/null && break; sleep 0.2; done

f=bin/faascell.js
for i in 1 2 3; do
  port=$((base + i - 1))
  echo "=== node$i: faascell serve --port $port --state-dir $dir/node$i --cluster nats://127.0.0.1:$nats_port --node node$i"
  node $f serve --port "$port" --state-dir "$dir/node$i" --cluster "nats://127.0.0.1:$nats_port" --node "node$i" > "$dir/node$i.log" 2>&1 &
  pids+=($!)
  wait_http "http://127.0.0.1:$port" "$!" "$dir/node$i.log"
done
url() { echo "http://127.0.0.1:$((base + $1 - 1))"; }

echo; echo "=== deploy once, through node1"
node $f --url "$(url 1)" deploy hello examples/functions/hello.js --max-instances 1
echo "=== node3 has it too"
node $f --url "$(url 3)" ls
for i in 1 2 3 1 2 3; do
  echo; echo "=== invoke through node$i"
  node $f --url "$(url "$i")" invoke hello "{\"name\":\"node$i\"}" --json | node -e '
    let s = ""; process.stdin.on("data", (d) => (s += d)).on("end", () => {
      const b = JSON.parse(s); const a = b.activation;
      console.log(JSON.stringify(b.result), "ran on", a.node, "start", a.startPath, "in", a.totalMs, "ms, activation", a.id);
    });'
done
echo; echo "=== faascell cluster status (through node2)"
node $f --url "$(url 2)" cluster status
last=$(node $f --url "$(url 1)" activations --limit 1 --json | node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>console.log(JSON.parse(s)[0]?.id ?? ""))')
if [ -n "$last" ]; then echo; echo "=== one activation looked up through node3"; node $f --url "$(url 3)" activation "$last"; fi

if [ "${DEMO_EXIT:-0}" = 1 ]; then exit 0; fi
echo; echo "three nodes running (logs in $dir); Ctrl-C stops them"
wait
