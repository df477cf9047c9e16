#!/usr/bin/env bash
# Installs the client library from the build tree into a temporary prefix, builds the example
# consumer against the installed package alone, and runs it against a live ratelimit-server.
# Usage: client_package_test.sh <build dir> <ratelimit-server binary>
set -euo pipefail
build_dir=$1
server=$2
source_dir=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d /tmp/client-package.XXXXXX)
cleanup() {
  if [[ -n "${server_pid:-}" ]]; then kill "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

cmake --install "$build_dir" --prefix "$work/prefix" --component Unspecified >/dev/null
cmake -S "$source_dir/client/examples" -B "$work/example" -G Ninja \
  -DCMAKE_PREFIX_PATH="$work/prefix" >/dev/null
cmake --build "$work/example" >/dev/null

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
"$server" --grpc-address="127.0.0.1:$port" --admin-address= >"$work/server.log" 2>&1 &
server_pid=$!
for _ in $(seq 100); do
  if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then break; fi
  sleep 0.05
done

out=$("$work/example/check_once" "127.0.0.1:$port")
echo "example said: $out"
[[ "$out" == "allowed, 9 remaining" ]]
