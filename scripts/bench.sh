#!/usr/bin/env bash
# Builds release, then runs each natter-bench scenario against a natter on a
# fresh data folder, and prints the reports. Usage:
#   scripts/bench.sh                 # S1..S5 (S3 and S5 take several minutes each)
#   scripts/bench.sh s1 s2           # only these
#   BENCH_JSON=1 scripts/bench.sh    # JSON reports
# Everything runs on 127.0.0.1; every scenario stops by itself.
set -euo pipefail
cd "$(dirname "$0")/.."

scenarios=("$@")
[ ${#scenarios[@]} -gt 0 ] || scenarios=(s1 s2 s3 s4 s5)

cargo build --release --locked -p natter -p natter-bench
json=()
[ -n "${BENCH_JSON:-}" ] && json=(--json)

for scenario in "${scenarios[@]}"; do
  data=$(mktemp -d)
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  # Rate limits off: the generator signs thousands of users up from one
  # address and sends as fast as it can, which is what the limits stop.
  target/release/natter --listen "127.0.0.1:$port" --data-dir "$data/data" --log warn --rate-limits off &
  server=$!
  for _ in $(seq 1 100); do
    (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
    sleep 0.1
  done
  echo "### $scenario ($(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores)"
  target/release/natter-bench --server "127.0.0.1:$port" --server-pid "$server" "${json[@]}" "$scenario" || true
  kill "$server"; wait "$server" 2>/dev/null || true
  rm -rf "$data"
done
