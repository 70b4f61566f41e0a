#!/usr/bin/env bash
# A serve-and-fetch job on five "hosts" made of Linux network namespaces.
#
#   sudo stage-06-mapreduce/scripts/netns-job.sh
#
# Makes a switch namespace holding a bridge, and hosts c, w1, w2, w3, x,
# each with one veth interface on the bridge and an address in
# 10.213.250.0/24. Nothing is added to this machine's own network.
# Runs the coordinator in c and a worker in each of w1..w3, every worker
# with its own directory; kills w1 once the map phase is over; has x try
# to join without the secret; then compares the outputs with `sequential`.
# Everything it made is removed on exit, whatever happens.
set -euo pipefail
cd "$(dirname "$0")/../.."

[ "$(id -u)" = 0 ] || { echo "needs root (ip netns add)"; exit 1; }
command -v ip >/dev/null || { echo "needs iproute2 (apt-get install iproute2)"; exit 1; }

cargo build --release -q -p stage-06-mapreduce
BIN=$PWD/target/release/mapreduce
WORK=$(mktemp -d /tmp/mr-netns.XXXXXX)
NET=10.213.250
SW=mr-demo-sw
HOSTS=(c w1 w2 w3 x)
PIDS=()

cleanup() {
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    for h in "${HOSTS[@]}"; do ip netns del "mr-demo-$h" 2>/dev/null || true; done
    ip netns del "$SW" 2>/dev/null || true
    echo "removed the namespaces; files are in $WORK"
}
trap cleanup EXIT

# 1. The switch: a namespace with a bridge.
ip netns add "$SW"
ip -n "$SW" link add br0 type bridge
ip -n "$SW" link set br0 up
# 2. Each host: a namespace, a veth pair (one end on the bridge, the
#    other, eth0, in the host), an address, links up.
i=0
for h in "${HOSTS[@]}"; do
    i=$((i + 1))
    ip netns add "mr-demo-$h"
    ip -n "$SW" link add "v$i" type veth peer name eth0 netns "mr-demo-$h"
    ip -n "$SW" link set "v$i" master br0 up
    ip -n "mr-demo-$h" addr add "$NET.$i/24" dev eth0
    ip -n "mr-demo-$h" link set eth0 up
    ip -n "mr-demo-$h" link set lo up
done
in_host() { local h=$1; shift; ip netns exec "mr-demo-$h" "$@"; }

# 3. Inputs (read by the same path everywhere), the secret, one directory
#    per worker.
"$BIN" corpus --bytes 4M --files 6 --out "$WORK/in" 2>/dev/null
head -c 32 /dev/urandom > "$WORK/job.secret"
mkdir -p "$WORK/w1" "$WORK/w2" "$WORK/w3"

# 4. The coordinator on host c.
ip netns exec mr-demo-c "$BIN" coordinator --fetch --listen "$NET.1:6824" --reduce 3 \
    --secret-file "$WORK/job.secret" "$WORK"/in/*.txt 2> "$WORK/coordinator.log" &
PIDS+=($!)
worker() { # host app address-number
    # `ip netns exec` runs the program in its own process (no subshell in
    # between), so $! is the worker itself.
    ip netns exec "mr-demo-$1" "$BIN" worker --app "$2" --coordinator "$NET.1:6824" --dir "$WORK/$1" \
        --serve "$NET.$3:0" --secret-file "$WORK/job.secret" --connect-timeout 10 \
        2> "$WORK/$1.log" &
    PIDS+=($!)
}
# 5. w1 alone runs the map phase; it pauses before its first reduce call
#    (the reduce_pause app), and is killed there.
worker w1 reduce_pause 2
VICTIM=$!
for _ in $(seq 300); do grep -q "maps 6/6" "$WORK/coordinator.log" && break; sleep 0.1; done
kill -9 "$VICTIM"
wait "$VICTIM" 2>/dev/null || true
echo "killed w1 after the map phase"
# 6. An intruder on host x, without the secret.
in_host x "$BIN" worker --app wc --coordinator "$NET.1:6824" --dir "$WORK/x" \
    --connect-timeout 10 2> "$WORK/x.log" || true
echo "intruder: $(tail -1 "$WORK/x.log")"
# 7. w2 and w3 finish the job: w1's map output is gone, so its maps run again.
worker w2 reduce_pause 3
worker w3 reduce_pause 4
for _ in $(seq 600); do grep -q "job done" "$WORK/coordinator.log" && break; sleep 0.1; done
grep -E "gone|authentication|job done|mr-out" "$WORK/coordinator.log"

# 8. The same answer as one process gets.
"$BIN" sequential --app wc --dir "$WORK/seq" "$WORK"/in/*.txt 2>/dev/null
# (A reduce that ran twice wrote the same file twice: sort -u.)
if diff -q <(sort "$WORK/seq/mr-out-0") <(cat "$WORK"/w*/mr-out-* | sort -u) >/dev/null; then
    echo "outputs equal sequential"
else
    echo "outputs DIFFER from sequential"; exit 1
fi
