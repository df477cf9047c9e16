#!/usr/bin/env bash
# Checks the deployment files without Docker and without running the service:
# docker-compose.yml, both Prometheus configs (compose and scripts/local-stack),
# the alert rules and their unit tests, the Grafana dashboard and its queries,
# the runbook links, the metric names against docs/metrics.md, and the
# Dockerfile's runtime packages.
#
# Usage: tests/deploy/check_deploy.sh [BUILD_DIR]
#
# With BUILD_DIR (ctest passes it), also checks the built binaries against the
# deployment: the Dockerfile's runtime packages provide every shared library
# they load, and every ratelimit-cli command and flag that the Dockerfile, the
# docs and the scripts use is one the built ratelimit-cli knows.
#
# Installs nothing: a missing tool is a failure that names its package
# (bash scripts/install-deps test installs them all). Ends with the line
# "N passed, M failed"; exits 1 on any failure.
#
# Running each dashboard query against live data is left to
# tests/deploy/stack_e2e_test.sh; here each query is only parsed, by promtool,
# as a recording rule.

set -uo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BUILD_DIR=${1:-}
if [[ -n $BUILD_DIR ]]; then
  BUILD_DIR=$(cd "$BUILD_DIR" && pwd) || { echo "no build directory $1" >&2; exit 1; }
fi
cd "$ROOT" || exit 1

# shellcheck source=tests/deploy/checks.sh
source "$ROOT/tests/deploy/checks.sh"
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

# --- tools ------------------------------------------------------------------

# Each tool with the Debian package that has it.
TOOLS=(promtool:prometheus docker-compose:docker-compose python3:python3
  apt-cache:apt dpkg-query:dpkg)
MISSING_TOOLS=()
tools_present() {
  local entry
  for entry in "${TOOLS[@]}"; do
    command -v "${entry%%:*}" >/dev/null || MISSING_TOOLS+=("${entry%%:*} (apt-get install ${entry#*:})")
  done
  ((${#MISSING_TOOLS[@]} == 0)) && return 0
  printf 'missing: %s\n' "${MISSING_TOOLS[@]}"
  echo "install them with: bash scripts/install-deps test"
  return 1
}
check "tools present: promtool, docker-compose, python3, apt-cache" tools_present
if ((${#MISSING_TOOLS[@]} > 0)); then
  # Every later check would fail for the same reason; say it once.
  echo "$PASSED passed, $FAILED failed"
  exit 1
fi

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
  grep -q 'install .*build/ratelimit-server ' Dockerfile || { echo "build stage does not install build/ratelimit-server"; ok=1; }
  grep -q 'install .*build/client/ratelimit-cli ' Dockerfile || { echo "build stage does not install build/client/ratelimit-cli"; ok=1; }
  grep -q '^  CMD ratelimit-cli health --target=127.0.0.1:50051 .*|| exit 1$' Dockerfile ||
    { echo "no HEALTHCHECK running ratelimit-cli health --target=127.0.0.1:50051 ... || exit 1"; ok=1; }
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

no_candidate() {
  [[ $(apt-cache policy "$1" | awk '/Candidate:/ {print $2}') =~ ^(|\(none\))$ ]]
}

runtime_packages_exist() {
  local pkgs pkg missing=()
  pkgs=$(runtime_packages)
  [[ -n $pkgs ]] || { echo "found no packages in the runtime stage"; return 1; }
  if no_candidate libc6; then
    echo "the apt cache is empty, so no package can be judged; run apt-get update"
    return 1
  fi
  for pkg in $pkgs; do
    no_candidate "$pkg" && missing+=("$pkg")
  done
  ((${#missing[@]} == 0)) || { echo "not in the apt archive: ${missing[*]}"; return 1; }
  echo "$pkgs" | tr '\n' ' '
}
check "Dockerfile: runtime packages exist in Debian's archive" runtime_packages_exist

# --- the built binaries ---------------------------------------------------------

SERVER_BIN=${BUILD_DIR:+$BUILD_DIR/ratelimit-server}
CLI_BIN=${BUILD_DIR:+$BUILD_DIR/client/ratelimit-cli}

# The Debian packages that own the shared libraries FILE... load, one a line;
# a library no package owns is printed as "unpackaged:PATH".
loaded_packages() {
  local lib owner
  ldd "$@" | awk '$2 == "=>" && $3 ~ /^\// {print $3}' | sort -u | while read -r lib; do
    # With merged /usr, dpkg knows a library under only one of its two paths.
    owner=$(dpkg-query -S "$lib" 2>/dev/null || dpkg-query -S "$(readlink -f "$lib")" 2>/dev/null) ||
      { echo "unpackaged:$lib"; continue; }
    # "pkg:arch[, pkg:arch]: path"
    echo "${owner%%: /*}" | tr ',' '\n' | sed 's/^ *//; s/:.*$//'
  done | sort -u
}

# The runtime stage's packages and everything apt installs with them.
runtime_closure() {
  # shellcheck disable=SC2046 # one word per package
  apt-cache depends --recurse --no-recommends --no-suggests --no-conflicts --no-breaks \
    --no-replaces --no-enhances $(runtime_packages) | grep -v '^ ' | sort -u
}

runtime_stage_has_libraries() {
  local needed closure pkg missing=()
  needed=$(loaded_packages "$SERVER_BIN" "$CLI_BIN") || return 1
  closure=$(runtime_closure) || return 1
  for pkg in $needed; do
    [[ $pkg == unpackaged:* ]] && { missing+=("${pkg#unpackaged:} (owned by no package)"); continue; }
    grep -qx "$pkg" <<<"$closure" && continue
    # Every Debian image, the slim one too, has the packages of priority required.
    apt-cache show --no-all-versions "$pkg" 2>/dev/null | grep -q '^Priority: required$' && continue
    missing+=("$pkg")
  done
  ((${#missing[@]} == 0)) || { echo "loaded by the binaries but not in the runtime stage: ${missing[*]}"; return 1; }
  echo "$needed" | tr '\n' ' '
}

# Every "ratelimit-cli COMMAND --flag" written in the Dockerfile, compose file,
# docs, README and scripts/local-stack: in Markdown only inside code,
# elsewhere anywhere.
cli_usage_matches_cli() {
  local help
  help=$("$CLI_BIN" --help) || { echo "$CLI_BIN --help failed"; return 1; }
  python3 - "$help" Dockerfile docker-compose.yml README.md docs/*.md scripts/local-stack <<'PY'
import re
import sys

help_text, files = sys.argv[1], sys.argv[2:]
commands_part = help_text.split("Commands:", 1)[1].split("Exit codes", 1)[0]
commands = set(re.findall(r"^  ([a-z]+) ", commands_part, re.M))
flags = set(re.findall(r"^  --([a-z][a-z0-9_-]*) ", help_text, re.M)) | {"help"}
flags = {f.replace("_", "-") for f in flags}
if not commands or not flags:
    sys.exit("could not read the commands and flags from ratelimit-cli --help")

bad, seen = [], 0
for path in files:
    text = open(path, encoding="utf-8").read()
    if path.endswith(".md"):
        code = re.findall(r"^```.*?^```", text, re.M | re.S) + re.findall(r"`[^`\n]+`", text)
        text = "\n".join(code)
    for m in re.finditer(r"\bratelimit-cli[ \t]+([a-z]+)([^\n;|&`\"]*)", text):
        seen += 1
        if m.group(1) not in commands:
            bad.append(f"{path}: unknown command in '{m.group(0).strip()}'")
        for flag in re.findall(r"(?:^|\s)--([a-z][a-z0-9_-]*)", m.group(2)):
            if flag.replace("_", "-") not in flags:
                bad.append(f"{path}: unknown flag --{flag} in '{m.group(0).strip()}'")
print(f"{seen} uses checked against commands {sorted(commands)}")
if bad:
    sys.exit("\n".join(bad))
PY
}

if [[ -z $BUILD_DIR ]]; then
  echo "note: no build directory given; the built binaries were not checked"
elif [[ ! -x $SERVER_BIN || ! -x $CLI_BIN ]]; then
  check "built binaries present in $BUILD_DIR" false
else
  check "Dockerfile: runtime stage provides every library the built binaries load" \
    runtime_stage_has_libraries
  check "ratelimit-cli commands and flags in Dockerfile, docs and scripts exist" \
    cli_usage_matches_cli
fi

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
  check "shellcheck scripts/local-stack tests/deploy/*.sh bench/*.sh" \
    shellcheck -x scripts/local-stack tests/deploy/*.sh bench/*.sh
else
  echo "note: shellcheck is not installed; the shell scripts were not linted"
fi

echo "$PASSED passed, $FAILED failed"
((FAILED == 0))
