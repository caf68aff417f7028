#!/usr/bin/env bash
# The cluster example as separate processes on a throwaway etcd: three
# nodes, a gate and a load client (16 connections x 8 calls, 10 s); at
# second 3 node-1 gets SIGTERM (or SIGKILL), at second 5 a fourth node
# starts. Prints the client's lines, then checks them: after SIGTERM no call
# failed and all four nodes answered; after SIGKILL at most 128 calls (all
# that were in flight) failed, none in the last 4 seconds. Exits 1 if not.
#
#   scripts/cluster-faults.sh sigterm|sigkill
#
# Needs etcd on PATH (Debian: apt-get install etcd-server) and builds the
# example with `cargo build --release --example cluster --features etcd`.
set -euo pipefail
mode=${1:-sigterm}
case $mode in sigterm) sig=TERM ;; sigkill) sig=KILL ;; *) echo "usage: $0 sigterm|sigkill" >&2; exit 2 ;; esac
command -v etcd >/dev/null || { echo "etcd not found; install it (Debian: apt-get install etcd-server)" >&2; exit 2; }
cd "$(dirname "$0")/.."
cargo build --quiet --release --example cluster --features etcd
bin=target/release/examples/cluster
work=$(mktemp -d)
pids=()
cleanup() { kill "${pids[@]}" 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
client_port=$(free_port); peer_port=$(free_port)
etcd --data-dir "$work/etcd" --listen-client-urls "http://127.0.0.1:$client_port" \
    --advertise-client-urls "http://127.0.0.1:$client_port" \
    --listen-peer-urls "http://127.0.0.1:$peer_port" \
    --initial-advertise-peer-urls "http://127.0.0.1:$peer_port" \
    --initial-cluster "default=http://127.0.0.1:$peer_port" >"$work/etcd.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do
    (exec 3<>"/dev/tcp/127.0.0.1/$client_port") 2>/dev/null && break
    sleep 0.1
done
target="etcd://127.0.0.1:$client_port/cluster/nodes"

start_node() { # name
    "$bin" node --target "$target" --addr 127.0.0.1:0 --name "$1" >"$work/$1.out" 2>"$work/$1.err" &
    pids+=($!)
    eval "pid_${1//-/_}=$!"
    for _ in $(seq 100); do grep -q listening "$work/$1.out" 2>/dev/null && break; sleep 0.05; done
    cat "$work/$1.out"
}
start_node node-1; start_node node-2; start_node node-3
gate_port=$(free_port)
"$bin" gate --target "$target" --listen "127.0.0.1:$gate_port" >"$work/gate.out" 2>"$work/gate.err" &
pids+=($!)
for _ in $(seq 100); do grep -q listening "$work/gate.out" 2>/dev/null && break; sleep 0.05; done
cat "$work/gate.out"

"$bin" client --gate "127.0.0.1:$gate_port" --conns 16 --depth 8 --secs 10 | tee "$work/client.out" &
client=$!
sleep 3
echo "-- SIG$sig node-1"
kill -s "$sig" "$pid_node_1"
sleep 2
echo "-- start node-4"
start_node node-4
wait "$client" || true
echo "-- node-1 said:"; cat "$work/node-1.out"

summary=$(grep '^calls=' "$work/client.out")
failed=$(sed -n 's/.* failed=\([0-9]*\) .*/\1/p' <<<"$summary")
nodes=$(sed -n 's/.* nodes=//p' <<<"$summary")
late=$(grep '^t=' "$work/client.out" | tail -n 4 | sed -n 's/.* failed=//p' | awk '{s+=$1} END {print s+0}')
if [ "$mode" = sigterm ]; then
    [ "$failed" -eq 0 ] && [ "$nodes" = node-1,node-2,node-3,node-4 ] && ok=yes || ok=no
    echo "check: failed=$failed (want 0), nodes=$nodes (want all four): $ok"
else
    [ "$failed" -le 128 ] && [ "$late" -eq 0 ] && ok=yes || ok=no
    echo "check: failed=$failed (want <= 128), failed in the last 4 s=$late (want 0): $ok"
fi
[ "$ok" = yes ]
