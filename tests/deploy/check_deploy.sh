#!/usr/bin/env bash
# Checks the deployment files without Docker and without running the service:
# docker-compose.yml, both Prometheus configs (compose and scripts/local-stack),
# the alert rules and their unit tests, the Grafana dashboard and its queries,
# the runbook links, the metric names against docs/metrics.md, and the
# Dockerfile's runtime packages.
#
# Installs promtool (package prometheus) and docker-compose with apt when they
# are missing. Ends with the line "N passed, M failed"; exits 1 on any failure.
#
# Running each dashboard query against live data is left to the end-to-end
# test; here each query is only parsed, by promtool, as a recording rule.

set -uo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$ROOT" || exit 1

PASSED=0
FAILED=0
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

# check NAME COMMAND...: runs COMMAND, counts the outcome, shows its output
# only on failure.
check() {
  local name=$1 out
  shift
  if out=$("$@" 2>&1); then
    PASSED=$((PASSED + 1))
    echo "PASS  $name"
  else
    FAILED=$((FAILED + 1))
    echo "FAIL  $name"
    local line
    [[ -n $out ]] && while IFS= read -r line; do echo "      $line"; done <<<"$out"
  fi
}

as_root() {
  if ((EUID == 0)); then
    "$@"
  elif command -v sudo >/dev/null; then
    sudo "$@"
  else
    echo "need root to run: $*" >&2
    return 1
  fi
}

APT_UPDATED=0
apt_update_once() {
  ((APT_UPDATED)) && return 0
  APT_UPDATED=1
  as_root apt-get update -o DPkg::Lock::Timeout=600
}

# install_if_missing COMMAND PACKAGE
install_if_missing() {
  command -v "$1" >/dev/null && return 0
  echo "installing $2 for $1" >&2
  apt_update_once &&
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      -o DPkg::Lock::Timeout=600 "$2" &&
    command -v "$1" >/dev/null
}

# --- tools ------------------------------------------------------------------

check "promtool available (apt package prometheus)" install_if_missing promtool prometheus
check "docker-compose available (apt package docker-compose)" install_if_missing docker-compose docker-compose

# --- docker-compose and Dockerfile ------------------------------------------

check "docker-compose.yml: docker-compose config -q" docker-compose -f docker-compose.yml config -q

compose_services() {
  local services
  services=$(docker-compose -f docker-compose.yml config --services) || return 1
  local want
  for want in redis ratelimit prometheus grafana; do
    grep -qx "$want" <<<"$services" || { echo "no service '$want'"; return 1; }
  done
}
check "docker-compose.yml: services redis, ratelimit, prometheus, grafana" compose_services

dockerfile_shape() {
  local ok=0
  grep -q '^FROM debian:bookworm AS build' Dockerfile || { echo "no debian:bookworm build stage"; ok=1; }
  grep -q 'bash scripts/install-deps' Dockerfile || { echo "build stage does not run scripts/install-deps"; ok=1; }
  grep -q 'bash scripts/build' Dockerfile || { echo "build stage does not run scripts/build"; ok=1; }
  grep -q '^EXPOSE 50051 9464$' Dockerfile || { echo "EXPOSE 50051 9464 missing"; ok=1; }
  grep -q 'CMD \["ratelimit-cli", "health"\]' Dockerfile || { echo "no HEALTHCHECK with ratelimit-cli health"; ok=1; }
  local user
  user=$(grep '^USER ' Dockerfile | tail -n 1 | awk '{print $2}')
  [[ -n $user && $user != root && $user != 0 && $user != 0:* ]] || { echo "last USER is not a non-root user"; ok=1; }
  return $ok
}
check "Dockerfile: stages, scripts, ports, health check, non-root user" dockerfile_shape

# The runtime stage's packages: one a line between its "apt-get install" line
# and the "rm -rf" line that ends the command.
runtime_packages() {
  sed -n '/^FROM .* AS runtime/,$p' Dockerfile |
    sed -n '/apt-get install/,/rm -rf/p' | sed '1d;$d' | awk '{print $1}'
}

runtime_packages_exist() {
  local pkgs pkg missing=()
  pkgs=$(runtime_packages)
  [[ -n $pkgs ]] || { echo "found no packages in the runtime stage"; return 1; }
  # An empty apt cache knows no package; fill it once before judging.
  [[ $(apt-cache policy libc6 | awk '/Candidate:/ {print $2}') =~ ^(|\(none\))$ ]] && apt_update_once >/dev/null
  for pkg in $pkgs; do
    [[ $(apt-cache policy "$pkg" | awk '/Candidate:/ {print $2}') =~ ^(|\(none\))$ ]] && missing+=("$pkg")
  done
  ((${#missing[@]} == 0)) || { echo "not in the apt archive: ${missing[*]}"; return 1; }
  echo "$pkgs" | tr '\n' ' '
}
check "Dockerfile: runtime packages exist in Debian's archive" runtime_packages_exist

# --- Prometheus ---------------------------------------------------------------

check "promtool check config deploy/prometheus/prometheus.yml" \
  promtool check config deploy/prometheus/prometheus.yml

local_config() {
  local config
  config=$(RATELIMIT_STACK_DIR="$TMP/stack" RATELIMIT_STACK_ADMIN_PORT=19464 \
    bash scripts/local-stack prometheus-config "$TMP/local-prometheus") || return 1
  grep -q -- '- 127.0.0.1:19464$' "$config" || { echo "loopback target missing in $config"; return 1; }
  promtool check config "$config"
}
check "promtool check config on the scripts/local-stack config" local_config

check "promtool check rules deploy/prometheus/alerts.yml" \
  promtool check rules deploy/prometheus/alerts.yml
check "promtool test rules deploy/prometheus/alerts_test.yml" \
  promtool test rules deploy/prometheus/alerts_test.yml

alerts_complete() {
  local want=(RateLimitBreakerOpen RateLimitBreakerFlapping RateLimitMemoryStoreNearBound
    RateLimitRedisErrors RateLimitDown)
  local name ok=0 n
  for name in "${want[@]}"; do
    grep -q "^ *- alert: $name\$" deploy/prometheus/alerts.yml || { echo "alert $name missing"; ok=1; }
    grep -q "alertname: $name\$" deploy/prometheus/alerts_test.yml || { echo "alert $name has no unit test"; ok=1; }
  done
  n=$(grep -c '^ *- alert:' deploy/prometheus/alerts.yml)
  local field
  for field in severity summary description runbook_url; do
    [[ $(grep -c "^ *$field:" deploy/prometheus/alerts.yml) == "$n" ]] ||
      { echo "not every one of the $n alerts has $field"; ok=1; }
  done
  return $ok
}
check "alerts.yml: the five alerts, each with severity, summary, description, runbook_url and a test" \
  alerts_complete

# GitHub's anchor for a heading: lower case, punctuation dropped, spaces to dashes.
runbook_anchors() {
  sed -n 's/^#\{1,6\} \(.*\)$/\1/p' docs/runbook.md |
    tr '[:upper:]' '[:lower:]' | sed 's/[^a-z0-9 _-]//g; s/ /-/g'
}

runbook_links() {
  local anchors url ok=0
  anchors=$(runbook_anchors)
  while read -r url; do
    [[ $url == docs/runbook.md#* ]] || { echo "runbook_url $url does not point into docs/runbook.md"; ok=1; continue; }
    grep -qx "${url#*#}" <<<"$anchors" || { echo "no heading for $url in docs/runbook.md"; ok=1; }
  done < <(sed -n 's/^ *runbook_url: *"\{0,1\}\([^"]*\)"\{0,1\}$/\1/p' deploy/prometheus/alerts.yml)
  return $ok
}
check "every runbook_url names a section of docs/runbook.md" runbook_links

# --- Grafana --------------------------------------------------------------------

check "dashboard JSON parses (python3 -m json.tool)" \
  python3 -m json.tool deploy/grafana/dashboards/ratelimit.json /dev/null

check "provisioning: data source uid matches the dashboard's" \
  grep -q '^ *uid: prometheus$' deploy/grafana/provisioning/datasources/prometheus.yml

list_queries() {
  python3 deploy/grafana/list_queries.py >"$TMP/queries.txt" && [[ -s $TMP/queries.txt ]]
}
check "deploy/grafana/list_queries.py lists the dashboard's queries" list_queries

# promtool has no offline query parser, but it parses and type-checks the
# expression of every recording rule it loads.
query_parses() {
  local expr=$1 rules=$TMP/query-rule.yml
  {
    printf 'groups:\n  - name: dashboard\n    rules:\n      - record: dashboard_query\n        expr: '
    python3 -c 'import json, sys; print(json.dumps(sys.argv[1]))' "$expr"
  } >"$rules"
  promtool check rules "$rules"
}
if [[ -s $TMP/queries.txt ]]; then
  while IFS= read -r expr; do
    check "query parses: $expr" query_parses "$expr"
  done <"$TMP/queries.txt"
fi

# --- metric names -----------------------------------------------------------------

# The service's fixed metric contract; docs/metrics.md must describe each.
CONTRACT_METRICS=(
  ratelimit_requests_total ratelimit_rejected_total circuit_breaker_state
  circuit_breaker_failures_total circuit_breaker_transitions_total
  ratelimit_memory_store_entries ratelimit_memory_store_max_size
  ratelimit_check_duration_seconds ratelimit_redis_command_duration_seconds
  ratelimit_redis_errors_total process_cpu_seconds_total process_resident_memory_bytes
  process_virtual_memory_bytes process_open_fds process_max_fds process_start_time_seconds
)

documented_metrics() {
  # shellcheck disable=SC2016 # the backquotes are Markdown, not a command
  sed -n 's/^| `\([a-z_:]*\)` | \([a-z]*\) |.*/\1 \2/p' docs/metrics.md
}

metrics_documented() {
  local documented name ok=0
  documented=$(documented_metrics | awk '{print $1}')
  for name in "${CONTRACT_METRICS[@]}"; do
    grep -qx "$name" <<<"$documented" || { echo "docs/metrics.md lacks $name"; ok=1; }
  done
  return $ok
}
check "docs/metrics.md documents every metric of the service" metrics_documented

# Every service metric an alert or a panel reads must be a documented one; a
# histogram's _bucket, _sum and _count series count as the histogram.
metrics_used_are_known() {
  local documented used name base ok=0
  documented=$(documented_metrics)
  used=$( {
    cat "$TMP/queries.txt" 2>/dev/null
    sed -n 's/^ *expr: *//p' deploy/prometheus/alerts.yml
  } | grep -oE '\b(ratelimit|circuit_breaker|process)_[a-z0-9_]+' | sort -u)
  for name in $used; do
    grep -q "^$name " <<<"$documented" && continue
    base=${name%_bucket}
    base=${base%_sum}
    base=${base%_count}
    grep -qx "$base histogram" <<<"$documented" && continue
    echo "$name is used but not documented in docs/metrics.md"
    ok=1
  done
  return $ok
}
check "alerts and dashboard use only documented metrics" metrics_used_are_known

# --- scripts ------------------------------------------------------------------------

check "bash -n scripts/local-stack" bash -n scripts/local-stack
if command -v shellcheck >/dev/null; then
  check "shellcheck scripts/local-stack tests/deploy/check_deploy.sh" \
    shellcheck scripts/local-stack tests/deploy/check_deploy.sh
else
  echo "note: shellcheck is not installed; the shell scripts were not linted"
fi

echo "$PASSED passed, $FAILED failed"
((FAILED == 0))
