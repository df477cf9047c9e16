# shellcheck shell=bash
# Shared by the deploy tests: counts checks and prints the closing "N passed, M failed" line.
# Source it; it defines PASSED, FAILED and check().

PASSED=0
FAILED=0

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
  return 0
}
