#!/usr/bin/env bash
# Instructions per MemoryStore::Check, counted by callgrind: core_bench's single-thread runs
# with one key (every check finds the entry, already the newest) and with 100,000 keys (in the
# few tens of thousands of checks callgrind has time for, nearly every check inserts).
#   bench/profile_memory_store.sh [build dir]      (OUT=/tmp/ratelimit-profile to change)
set -eu
build=${1:-build}
out=${OUT:-/tmp/ratelimit-profile}
mkdir -p "$out"
for keys in 1 100000; do
  file="$out/callgrind.out.memory.$keys"
  valgrind --tool=callgrind --callgrind-out-file="$file" "$build/bench/core_bench" \
    --benchmark_filter="BM_MemoryStoreCheck/$keys/real_time/threads:1\$" \
    --benchmark_min_time=0.2 >"$out/memory.$keys.log" 2>&1
  # The calling line gives the inclusive count and the number of calls.
  callgrind_annotate --inclusive=yes --tree=calling --threshold=100 "$file" 2>/dev/null \
    | grep '>  .*MemoryStore::Check(ratelimit::LimitRequest const&, bool) (' \
    | awk -v keys="$keys" '{
        ir = $1; gsub(",", "", ir)
        match($0, /\([0-9,]+x\)/); n = substr($0, RSTART + 1, RLENGTH - 3); gsub(",", "", n)
        printf "%s key(s): %d checks, %.0f instructions per check\n", keys, n, ir / n }'
done
