#!/usr/bin/env bash
# Load benchmark: ratelimit-server against the floors set by gRPC and Redis, in one run.
# Needs redis-server and redis-benchmark (redis-tools); h2load (nghttp2-client) when present.
# Starts redis-server, the do-nothing gRPC server (bench/noop_server) and ratelimit-server in
# memory mode and in Redis mode, all on loopback, drives each with `ratelimit-cli bench`, runs
# redis-benchmark on the project's own Lua script with EVALSHA, and prints a table of
# throughput and latency with the ratios to the floors.
#   bench/run_load.sh [build dir]      (DURATION=10s CONCURRENCY=64 to change the load)
set -euo pipefail
build=${1:-build}
duration=${DURATION:-10s}
concurrency=${CONCURRENCY:-64}
cli="$build/client/ratelimit-cli"
# shellcheck source=bench/processes.sh
source "$(dirname "$0")/processes.sh" ratelimit-load

start_redis
noop_port=$(free_port); mem_port=$(free_port); redis_mode_port=$(free_port)
"$build/bench/noop_server" "127.0.0.1:$noop_port" >"$work/noop.log" 2>&1 & pids+=($!)
"$build/ratelimit-server" --grpc-address="127.0.0.1:$mem_port" --admin-address= \
  --log-level=warn >"$work/mem.log" 2>&1 & pids+=($!)
"$build/ratelimit-server" --grpc-address="127.0.0.1:$redis_mode_port" --admin-address= \
  --redis="redis://127.0.0.1:$redis_port" --log-level=warn >"$work/redis-mode.log" 2>&1 & pids+=($!)
for p in "$noop_port" "$mem_port" "$redis_mode_port"; do wait_port "$p"; done
sleep 0.5

# One bench run: prints "throughput p50_ms p99_ms".
run() {
  local port=$1 keys=$2
  "$cli" bench --target="127.0.0.1:$port" --duration="$duration" --concurrency="$concurrency" \
    --keys="$keys" --limit=1000000000 --window=1h --progress=false --json \
    | python3 -c '
import json, sys
r = json.load(sys.stdin)
l = r["latency_ms"]
print("%.0f %.3f %.3f %d %d %d" % (r["throughput_per_second"], l["p50"], l["p99"], r["errors"],
                                   r["source"]["redis"], r["source"]["memory"]))'
}

# Redis's floor: the fixed-window script itself (the shared prelude, then its own part, as
# RedisStore registers it), with EVALSHA, at the same concurrency.
lua() { sed -n "/$1\\[\\] = R\"lua(/,/)lua\";/p" lib/redis_scripts.h | sed '1d;$d'; }
script="$(lua kScriptPrelude)
$(lua kFixedWindowScript)"
sha=$(redis-cli -p "$redis_port" SCRIPT LOAD "$script")
redis_floor() {
  local pipeline=$1
  redis-benchmark -p "$redis_port" -c "$concurrency" -n 200000 -P "$pipeline" -q \
    EVALSHA "$sha" 1 'ratelimit:{fw:3600000:bench:__rand_int__}' 1000000000 3600000 1 1 '' \
    | tr '\r' '\n' | grep -o '[0-9.]* requests per second, p50=[0-9.]* msec' | tail -1
}

echo "machine: $(nproc) cores, $(uname -r); duration $duration, $concurrency calls in flight"
printf "%-34s %12s %9s %9s %8s\n" "server / keys" "checks/s" "p50 ms" "p99 ms" "vs noop"
declare -A rate
for keys in 1 10000; do
  for target in noop:$noop_port memory:$mem_port redis:$redis_mode_port; do
    name=${target%%:*}; port=${target##*:}
    read -r tput p50 p99 errors _ from_memory < <(run "$port" "$keys")
    rate[$name]=$tput
    ratio=$(python3 -c "print(f'{$tput / ${rate[noop]}:.2f}')")
    printf "%-34s %12s %9s %9s %8s" "$name ($keys key$([[ $keys == 1 ]] || echo s))" "$tput" "$p50" "$p99" "$ratio"
    [[ $errors == 0 ]] || printf "  errors %s" "$errors"
    [[ $name != redis || $from_memory == 0 ]] || printf "  (memory answered %s)" "$from_memory"
    echo
  done
done
# The same comparison with an independent load generator: h2load sends a fixed gRPC frame
# (one Check of key bench:1) on one HTTP/2 connection with $concurrency streams in flight.
if command -v h2load >/dev/null; then
  python3 - "$work/check.bin" <<'PY'
import sys
def varint(n):
    out = b""
    while True:
        b, n = n & 0x7F, n >> 7
        out += bytes([b | 0x80]) if n else bytes([b])
        if not n:
            return out
key = b"bench:1"
window = b"\x08" + varint(3600)
msg = b"\x0a" + varint(len(key)) + key + b"\x10" + varint(10**9) + b"\x1a" + varint(len(window)) + window
open(sys.argv[1], "wb").write(b"\x00" + len(msg).to_bytes(4, "big") + msg)
PY
  echo
  echo "h2load, 1 connection, $concurrency streams, ${duration}:"
  printf "%-34s %12s %12s %8s\n" "server" "checks/s" "mean ms" "vs noop"
  for target in noop:$noop_port memory:$mem_port redis:$redis_mode_port; do
    name=${target%%:*}; port=${target##*:}
    out=$(h2load -D "${duration%s}" -c 1 -m "$concurrency" -H 'content-type: application/grpc' \
      -H 'te: trailers' -d "$work/check.bin" \
      "http://127.0.0.1:$port/ratelimit.v1.RateLimitService/Check" 2>&1)
    tput=$(echo "$out" | awk '/^finished in/ {print int($4)}')
    mean=$(echo "$out" | awk '/^time for request:/ {print $6}')
    [[ $name == noop ]] && h2_noop=$tput
    printf "%-34s %12s %12s %8s\n" "$name (1 key)" "$tput" "$mean" \
      "$(python3 -c "print(f'{$tput / $h2_noop:.2f}')")"
  done
fi

echo
echo "redis-benchmark EVALSHA of the fixed-window script, $concurrency connections:"
echo "  no pipelining:  $(redis_floor 1)"
echo "  -P 16:          $(redis_floor 16)"
