#!/usr/bin/env bash
# Instructions per Redis-mode check, counted by callgrind (stable on a noisy machine, unlike
# seconds). Starts redis-server on loopback, then ratelimit-server in Redis mode under
# `valgrind --tool=callgrind` twice:
#   base:  start, answer one health call, stop (SIGTERM);
#   load:  start, answer `ratelimit-cli bench --requests=$REQUESTS --concurrency=16
#          --keys=1000`, stop;
# and prints (load - base) / REQUESTS. The callgrind.out files stay in $OUT for
# callgrind_annotate.
#   bench/profile.sh [build dir]      (REQUESTS=5000 OUT=/tmp/ratelimit-profile to change)
set -euo pipefail
build=${1:-build}
requests=${REQUESTS:-5000}
out=${OUT:-/tmp/ratelimit-profile}
cli="$build/client/ratelimit-cli"
mkdir -p "$out"
# shellcheck source=bench/processes.sh
source "$(dirname "$0")/processes.sh" ratelimit-prof

start_redis

# One profiled server run; $2 is the command that loads it. Prints the instruction total.
profile() {
  local name=$1 port
  shift
  port=$(free_port)
  valgrind --tool=callgrind --callgrind-out-file="$out/callgrind.out.$name" \
    "$build/ratelimit-server" --grpc-address="127.0.0.1:$port" --admin-address= \
    --redis="redis://127.0.0.1:$redis_port" --log-level=warn >"$out/$name.log" 2>&1 &
  local pid=$!
  pids+=("$pid")
  wait_port "$port" 60  # valgrind starts slowly
  # Wait until Redis is connected, so that every check goes to Redis.
  for _ in $(seq 300); do
    "$cli" health --target="127.0.0.1:$port" --json | grep -q '"backend":"redis"' && break
    sleep 0.1
  done
  "$@" --target="127.0.0.1:$port" >"$out/$name.client" 2>&1
  kill -TERM "$pid"
  wait "$pid" || true
  grep -o 'Collected : [0-9]*' "$out/$name.log" | grep -o '[0-9]*'
}

base=$(profile base "$cli" health)
load=$(profile load "$cli" bench --requests="$requests" --concurrency=16 --keys=1000 \
  --progress=false --json)
echo "bench: $(cat "$out/load.client")"
echo "base $base, load $load instructions"
python3 -c "print(f'{($load - $base) / $requests / 1000:.1f} k instructions per check')"
