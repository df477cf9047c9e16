# shellcheck shell=bash
# Sourced by the bench scripts: a scratch directory, the background processes they start (all
# stopped on exit), and loopback ports.
#   source bench/processes.sh NAME      makes $work (/tmp/NAME.XXXXXX) and the exit trap
work=$(mktemp -d "/tmp/${1:?name}.XXXXXX")
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

# wait_port PORT [SECONDS]: until something accepts connections on 127.0.0.1:PORT (default 10 s).
wait_port() {
  local tenths=$((${2:-10} * 10))
  for _ in $(seq "$tenths"); do
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    sleep 0.1
  done
  return 1
}

# start_redis: a throwaway redis-server on a free loopback port, in $redis_port.
start_redis() {
  redis_port=$(free_port)
  redis-server --port "$redis_port" --bind 127.0.0.1 --save "" --appendonly no --dir "$work" \
    >"$work/redis.log" 2>&1 &
  pids+=($!)
  wait_port "$redis_port"
}
