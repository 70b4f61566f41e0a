#!/usr/bin/env bash
# The timely word count as two processes on this machine, talking over TCP
# on 127.0.0.1 as two hosts would (timely's -n, -p and -h options).
#
#   two-processes.sh OUT FILES...      (from the package's directory, after
#                                       `cargo build --release`)
#
# Process 0 writes OUT; it equals `mapreduce sequential --app wc`'s mr-out-0.
# Set TIMELY_WORDCOUNT to the binary to use another build.
set -euo pipefail
if [ $# -lt 2 ]; then
    echo "usage: $0 OUT FILES..." >&2
    exit 2
fi
out=$1
shift
here=$(cd "$(dirname "$0")" && pwd)
bin=${TIMELY_WORDCOUNT:-${CARGO_TARGET_DIR:-$here/target}/release/timely-wordcount}

# Two ports the kernel says are free now, in a host file of our own.
ports=$(python3 -c 'import socket
s = [socket.socket() for _ in range(2)]
for x in s: x.bind(("127.0.0.1", 0))
print(" ".join(str(x.getsockname()[1]) for x in s))')
hosts=$(mktemp)
trap 'rm -f "$hosts"; kill $(jobs -p) 2>/dev/null || true' EXIT
for p in $ports; do echo "127.0.0.1:$p"; done > "$hosts"

# Process 0 first: process 1 connects to it, and retries only a second
# later if 0 is not listening yet.
"$bin" -n 2 -p 0 -h "$hosts" --out "$out" "$@" &
p0=$!
"$bin" -n 2 -p 1 -h "$hosts" --out "$out" "$@" 2>/dev/null &
p1=$!
status=0
wait "$p0" || status=$?
wait "$p1" || status=$?
exit "$status"
