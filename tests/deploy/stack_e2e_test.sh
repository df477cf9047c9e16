#!/usr/bin/env bash
# End-to-end test of the non-Docker stack: scripts/local-stack starts a real
# redis-server, the built ratelimit-server backed by it and Debian's prometheus,
# all on free loopback ports with their state in a temporary directory.
# ratelimit-cli bench then drives traffic (most of it denied), Redis is stopped
# for a few seconds and started again so that the breaker opens and closes, and
# once Prometheus has scraped the result the test asks its HTTP API for every
# expression of the Grafana dashboard (each must parse and return data), for
# the alert rules and for the scrape target. On the way it compares /metrics
# and /health of the running server with docs/metrics.md.
#
# Usage: tests/deploy/stack_e2e_test.sh BUILD_DIR
#   BUILD_DIR holds ratelimit-server and client/ratelimit-cli.
#
# Whatever happens, everything it started is stopped before it exits, and it
# gives up after STACK_E2E_TIMEOUT seconds (default 150). The state directory
# (logs of all three processes) is removed on success and kept on failure.
# Ends with the line "N passed, M failed"; exits 1 on any failure.

set -uo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
HOST=127.0.0.1
TIMEOUT=${STACK_E2E_TIMEOUT:-150}

if [[ $# -ne 1 ]]; then
  echo "usage: $0 BUILD_DIR" >&2
  exit 2
fi
BUILD_DIR=$(cd "$1" && pwd) || { echo "no build directory $1" >&2; exit 2; }
SERVER_BIN=$BUILD_DIR/ratelimit-server
CLI_BIN=$BUILD_DIR/client/ratelimit-cli

# shellcheck source=tests/deploy/checks.sh
source "$ROOT/tests/deploy/checks.sh"

finish() {
  echo "$PASSED passed, $FAILED failed"
  ((FAILED == 0))
}

# --- prerequisites ----------------------------------------------------------

prerequisites() {
  local missing=() tool
  for tool in redis-server redis-cli prometheus curl python3; do
    command -v "$tool" >/dev/null || missing+=("$tool")
  done
  [[ -x $SERVER_BIN ]] || missing+=("$SERVER_BIN")
  [[ -x $CLI_BIN ]] || missing+=("$CLI_BIN")
  ((${#missing[@]} == 0)) && return 0
  echo "missing: ${missing[*]}"
  echo "install the tools with: bash scripts/install-deps test; build with: bash scripts/build"
  return 1
}
check "prerequisites: redis-server, prometheus, curl, python3, the built binaries" prerequisites
((FAILED == 0)) || { finish; exit 1; }

# --- the stack's environment ------------------------------------------------

# Settings from the caller's shell must not change what is tested.
while read -r name; do unset "$name"; done < <(compgen -e | grep '^RATELIMIT_')

WORK=$(mktemp -d "${TMPDIR:-/tmp}/ratelimit-stack-e2e.XXXXXX")
export RATELIMIT_STACK_DIR=$WORK/stack
export RATELIMIT_STACK_SERVER_BIN=$SERVER_BIN
export RATELIMIT_STACK_START_TIMEOUT=20
# A short open spell lets the breaker probe and close within the test.
export RATELIMIT_BREAKER_OPEN_DURATION=1s

# Four distinct ports the kernel has just handed out; local-stack refuses any
# that was taken in between.
read -r REDIS_PORT GRPC_PORT ADMIN_PORT PROMETHEUS_PORT < <(python3 -c '
import socket
socks = [socket.socket() for _ in range(4)]
for s in socks:
    s.bind(("127.0.0.1", 0))
print(*(s.getsockname()[1] for s in socks))')
export RATELIMIT_STACK_REDIS_PORT=$REDIS_PORT RATELIMIT_STACK_GRPC_PORT=$GRPC_PORT
export RATELIMIT_STACK_ADMIN_PORT=$ADMIN_PORT RATELIMIT_STACK_PROMETHEUS_PORT=$PROMETHEUS_PORT
TARGET=$HOST:$GRPC_PORT
ADMIN=http://$HOST:$ADMIN_PORT
PROMETHEUS=http://$HOST:$PROMETHEUS_PORT

# --- cleanup on every exit path ---------------------------------------------

WATCHDOG_PID=
WATCHDOG_SLEEP_PID=
cleanup() {
  local status=$?
  trap - EXIT TERM INT
  [[ -n $WATCHDOG_SLEEP_PID ]] && kill "$WATCHDOG_SLEEP_PID" 2>/dev/null
  [[ -n $WATCHDOG_PID ]] && kill "$WATCHDOG_PID" 2>/dev/null
  bash "$ROOT/scripts/local-stack" down >/dev/null 2>&1 ||
    echo "stack_e2e_test: 'local-stack down' failed; check $RATELIMIT_STACK_DIR/pids" >&2
  if ((status == 0 && FAILED == 0)); then
    rm -rf "$WORK"
  else
    echo "logs kept in $RATELIMIT_STACK_DIR/logs" >&2
  fi
  exit "$status"
}
trap cleanup EXIT
trap 'echo "stack_e2e_test: interrupted" >&2; FAILED=$((FAILED + 1)); finish; exit 1' TERM INT

# The watchdog: after TIMEOUT seconds, TERM this shell, whose trap then stops
# the stack. Its sleep's pid is kept so that cleanup can end it too.
(
  sleep "$TIMEOUT" &
  echo $! >"$WORK/watchdog-sleep.pid"
  wait $! && echo "stack_e2e_test: gave up after ${TIMEOUT}s" >&2 && kill -TERM $$
) &
WATCHDOG_PID=$!
for _ in 1 2 3 4 5 6 7 8 9 10; do
  [[ -s $WORK/watchdog-sleep.pid ]] && break
  sleep 0.1
done
WATCHDOG_SLEEP_PID=$(cat "$WORK/watchdog-sleep.pid" 2>/dev/null)

# --- helpers ----------------------------------------------------------------

# json_get FIELD.PATH: reads one JSON document on stdin and prints the value at
# a dotted path (numbers and strings as they are, anything else as JSON).
json_get() {
  python3 -c '
import json, sys
value = json.load(sys.stdin)
for part in sys.argv[1].split("."):
    value = value[part]
print(value if isinstance(value, (str, int, float)) and not isinstance(value, bool)
      else json.dumps(value))' "$1"
}

bench() {
  "$CLI_BIN" bench --target="$TARGET" --key=e2e: --keys=50 --limit=20 --window=10s \
    --concurrency=4 --json --progress=false "$@"
}

health() { curl -fsS --max-time 2 "$ADMIN/health"; }

# prom_query EXPR: the API's answer to an instant query, as JSON.
prom_query() {
  curl -sS --max-time 5 "$PROMETHEUS/api/v1/query" --data-urlencode "query=$1"
}

# prom_value EXPR: the value of a query with exactly one series; fails otherwise.
prom_value() {
  prom_query "$1" | python3 -c '
import json, sys
answer = json.load(sys.stdin)
result = answer.get("data", {}).get("result", [])
if answer.get("status") != "success" or len(result) != 1:
    sys.exit(f"{sys.argv[1]}: {json.dumps(answer)[:400]}")
print(result[0]["value"][1])' "$1"
}

# expect_json_number JSON FIELD OP VALUE: e.g. expect_json_number "$out" denied -gt 0
expect_json_number() {
  local got
  got=$(json_get "$2" <<<"$1") || { echo "no field $2 in: $1"; return 1; }
  [[ $got =~ ^[0-9]+$ ]] || { echo "$2 is '$got', not a count, in: $1"; return 1; }
  test "$got" "$3" "$4" || { echo "$2 = $got, expected $3 $4, in: $1"; return 1; }
}

# --- start ------------------------------------------------------------------

stack_up() { bash "$ROOT/scripts/local-stack" up; }
check "scripts/local-stack up on free loopback ports" stack_up
if ((FAILED > 0)); then
  for log in "$RATELIMIT_STACK_DIR"/logs/*.log; do
    [[ -f $log ]] && { echo "--- last lines of $log"; tail -n 15 "$log"; }
  done
  finish
  exit 1
fi

healthy_with_redis() {
  local body
  body=$(health) || return 1
  [[ $(json_get status <<<"$body") == ok && $(json_get redis.connected <<<"$body") == true ]] ||
    { echo "$body"; return 1; }
  "$CLI_BIN" health --target="$TARGET"
}
check "/health ok with Redis connected; ratelimit-cli health exits 0" healthy_with_redis

# --- traffic through Redis --------------------------------------------------

bench_redis() {
  local out
  out=$(bench --duration=4s) || { echo "bench exited $?: $out"; return 1; }
  expect_json_number "$out" errors -eq 0 &&
    expect_json_number "$out" allowed -gt 0 &&
    expect_json_number "$out" denied -gt 0 &&
    expect_json_number "$out" source.redis -gt 0
}
check "bench through Redis: no errors, some checks allowed, some denied" bench_redis

# --- a Redis outage ---------------------------------------------------------

stop_redis() { bash "$ROOT/scripts/local-stack" stop redis; }
check "scripts/local-stack stop redis" stop_redis

# Longer than a scrape interval (5s), so that Prometheus sees the breaker open.
bench_outage() {
  local out
  out=$(bench --duration=7s) || { echo "bench exited $?: $out"; return 1; }
  expect_json_number "$out" errors -eq 0 &&
    expect_json_number "$out" source.memory -gt 0 &&
    expect_json_number "$out" denied -gt 0
}
check "bench while Redis is down: answered from memory, no errors" bench_outage

degraded() {
  local body
  body=$(health) || return 1
  [[ $(json_get status <<<"$body") == degraded && $(json_get redis.connected <<<"$body") == false &&
    $(json_get circuitBreaker.state <<<"$body") != CLOSED ]] || { echo "$body"; return 1; }
  # Degraded is still serving: a container health check must not restart it.
  "$CLI_BIN" health --target="$TARGET"
}
check "/health degraded with the breaker not CLOSED; ratelimit-cli health still exits 0" degraded

start_redis() { bash "$ROOT/scripts/local-stack" start redis; }
check "scripts/local-stack start redis" start_redis

# The breaker half-opens on a check after its open spell, so keep traffic
# flowing until a probe has closed it.
recovers() {
  local deadline=$((SECONDS + 20)) body
  while ((SECONDS < deadline)); do
    bench --duration=1s --concurrency=2 >/dev/null || true
    body=$(health) || true
    [[ $body == *'"status":"ok"'* && $body == *'"state":"CLOSED"'* ]] && return 0
  done
  echo "still not recovered after 20s: $body"
  return 1
}
check "service goes back to Redis once it is up again" recovers

# --- the server against docs/metrics.md -------------------------------------

metrics_match_docs() {
  local metrics
  metrics=$(curl -fsS --max-time 2 "$ADMIN/metrics") || return 1
  python3 - "$ROOT/docs/metrics.md" "$metrics" <<'PY'
import re
import sys

doc = open(sys.argv[1], encoding="utf-8").read()
documented = dict(re.findall(r"^\| `([a-z_:]+)` \| ([a-z]+) \|", doc, re.M))
exported = dict(re.findall(r"^# TYPE (\S+) (\S+)$", sys.argv[2], re.M))
problems = [f"exported but not documented: {n} ({t})"
            for n, t in sorted(exported.items()) if n not in documented]
problems += [f"documented but not exported: {n}"
             for n in sorted(documented) if n not in exported]
problems += [f"{n}: documented as {documented[n]}, exported as {t}"
             for n, t in sorted(exported.items()) if n in documented and documented[n] != t]
if problems:
    sys.exit("\n".join(problems))
PY
}
check "every family of /metrics is in docs/metrics.md with its type, and nothing more" \
  metrics_match_docs

health_fields_match_docs() {
  local body
  body=$(health) || return 1
  python3 - "$ROOT/docs/metrics.md" "$body" <<'PY'
import json
import re
import sys

doc = open(sys.argv[1], encoding="utf-8").read()
table = doc.split("| field | meaning |", 1)[1].split("\n\n", 1)[0]
documented = set()
for row in table.splitlines()[2:]:
    first_cell = row.split("|")[1]
    documented.update(re.findall(r"`([A-Za-z.]+)`", first_cell))

def leaves(value, prefix=""):
    if isinstance(value, dict):
        for key, child in value.items():
            yield from leaves(child, f"{prefix}{key}.")
    else:
        yield prefix[:-1]

exported = set(leaves(json.loads(sys.argv[2])))
problems = [f"/health has {f}, docs/metrics.md does not" for f in sorted(exported - documented)]
problems += [f"docs/metrics.md has {f}, /health does not" for f in sorted(documented - exported)]
if problems:
    sys.exit("\n".join(problems))
PY
}
check "the fields of /health are the ones docs/metrics.md describes" health_fields_match_docs

# --- Prometheus -------------------------------------------------------------

# Wait until a scrape taken after the last check has been stored: no traffic
# runs now, so Prometheus's total must reach the server's.
scraped_everything() {
  local deadline=$((SECONDS + 30)) served stored=
  served=$(curl -fsS --max-time 2 "$ADMIN/metrics" |
    awk '/^ratelimit_requests_total\{/ {sum += $2} END {printf "%d", sum}') || return 1
  while ((SECONDS < deadline)); do
    stored=$(prom_value 'sum(ratelimit_requests_total{job="ratelimit"})' 2>/dev/null) &&
      [[ ${stored%.*} == "$served" ]] && { echo "$served checks"; return 0; }
    sleep 1
  done
  echo "after 30s Prometheus holds ${stored:-no} checks, the server has answered $served"
  return 1
}
check "Prometheus has scraped all the traffic" scraped_everything

target_up() {
  curl -sS --max-time 5 "$PROMETHEUS/api/v1/targets?state=active" | python3 -c '
import json, sys
want = sys.argv[1]
targets = json.load(sys.stdin)["data"]["activeTargets"]
ours = [t for t in targets if t["labels"].get("job") == "ratelimit"]
if len(ours) != 1 or ours[0]["health"] != "up" or ours[0]["labels"].get("instance") != want:
    sys.exit(f"expected one ratelimit target {want}, up: {json.dumps(ours)[:600]}")' \
    "$HOST:$ADMIN_PORT" || return 1
  [[ $(prom_value 'up{job="ratelimit"}') == 1 ]]
}
check "scrape target job=ratelimit is up" target_up

# Every alert of alerts.yml is loaded and has been evaluated without error.
rules_loaded() {
  local deadline=$((SECONDS + 20)) out
  while :; do
    out=$(curl -sS --max-time 5 "$PROMETHEUS/api/v1/rules" | python3 -c '
import json, re, sys
want = set(re.findall(r"^ *- alert: (\S+)$", open(sys.argv[1]).read(), re.M))
groups = json.load(sys.stdin)["data"]["groups"]
rules = {r["name"]: r for g in groups for r in g["rules"]}
problems = [f"alert {n} not loaded" for n in sorted(want - set(rules))]
problems += ["rule %s: type %s, health %s %s" % (n, r["type"], r["health"], r.get("lastError", ""))
             for n, r in sorted(rules.items())
             if r["type"] != "alerting" or r["health"] != "ok"]
if not want or problems:
    sys.exit("\n".join(problems) or "no alerts found in alerts.yml")
print(f"{len(want)} alerts loaded and evaluated")' "$ROOT/deploy/prometheus/alerts.yml") && {
      echo "$out"
      return 0
    }
    ((SECONDS < deadline)) || break
    sleep 1
  done
  echo "$out"
  return 1
}
check "alert rules of alerts.yml loaded (/api/v1/rules) and evaluated" rules_loaded

# What the traffic and the outage must have left in Prometheus.
expect_prom() {
  local expr=$1 op=$2 want=$3 got
  got=$(prom_value "$expr") || return 1
  python3 -c 'import sys; a, op, b = float(sys.argv[1]), sys.argv[2], float(sys.argv[3]); sys.exit(not {">": a > b, ">=": a >= b}[op])' \
    "$got" "$op" "$want" || { echo "$expr = $got, expected $op $want"; return 1; }
}
check "Prometheus saw denials of key prefix e2e" \
  expect_prom 'sum(ratelimit_rejected_total{job="ratelimit",key_prefix="e2e"})' '>' 0
check "Prometheus saw checks answered by Redis and by memory" \
  expect_prom 'count(sum by (source) (ratelimit_requests_total{job="ratelimit"}) > 0)' '>=' 2
check "Prometheus saw the breaker out of CLOSED" \
  expect_prom 'max(max_over_time(circuit_breaker_state{job="ratelimit",name="redis"}[5m]))' '>=' 1
check "Prometheus saw the breaker open and close again" \
  expect_prom 'min(circuit_breaker_transitions_total{job="ratelimit",name="redis",to=~"OPEN|CLOSED"})' '>=' 1
check "Prometheus saw breaker failures" \
  expect_prom 'sum(circuit_breaker_failures_total{job="ratelimit",name="redis"})' '>' 0
check "Prometheus saw Redis connection errors" \
  expect_prom 'sum(ratelimit_redis_errors_total{job="ratelimit",kind="connection"})' '>' 0

# Every dashboard query parses and returns at least one series.
query_returns_data() {
  prom_query "$1" | python3 -c '
import json, sys
answer = json.load(sys.stdin)
if answer.get("status") != "success":
    sys.exit("%s: %s" % (answer.get("errorType"), answer.get("error")))
result = answer["data"]["result"]
if not result:
    sys.exit("no data")
print(len(result), "series")'
}
QUERIES=$(python3 "$ROOT/deploy/grafana/list_queries.py")
check "deploy/grafana/list_queries.py lists the dashboard's queries" test -n "$QUERIES"
while IFS= read -r expr; do
  [[ -n $expr ]] && check "dashboard query returns data: $expr" query_returns_data "$expr"
done <<<"$QUERIES"

finish
