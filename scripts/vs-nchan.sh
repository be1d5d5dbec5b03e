#!/usr/bin/env bash
# S1's shape on natter and on nginx + nchan, back to back, the same
# natter-bench client for both, so a delivery's cost is compared in one run
# on this machine. Needs nginx and libnginx-mod-nchan (Debian packages).
# Usage:
#   scripts/vs-nchan.sh              # 3 rounds: nchan, then natter's S1 (with its no-op floor)
#   ROUNDS=1 CLIENTS=1000 RATE=20 SECONDS_EACH=10 scripts/vs-nchan.sh
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${ROUNDS:-3} clients=${CLIENTS:-1000} rate=${RATE:-20} seconds=${SECONDS_EACH:-10}
json=()
[ -n "${BENCH_JSON:-}" ] && json=(--json)

cargo build --release --locked -p natter -p natter-bench
. scripts/ports.sh

for round in $(seq 1 "$rounds"); do
  work=$(mktemp -d)
  port=$(free_port)
  sed "s/@PORT@/$port/" scripts/nchan.conf > "$work/nginx.conf"
  nginx -p "$work" -c "$work/nginx.conf" -g 'daemon off;' &
  nginx_pid=$!
  wait_port "$port"
  echo "### round $round: nchan ($(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores)"
  target/release/natter-bench --server "127.0.0.1:$port" --server-pid "$nginx_pid" "${json[@]}" \
    nchan --clients "$clients" --rate "$rate" --seconds "$seconds" || true
  kill "$nginx_pid"; wait "$nginx_pid" 2>/dev/null || true

  port=$(free_port)
  target/release/natter --listen "127.0.0.1:$port" --data-dir "$work/data" --log warn --rate-limits off &
  natter_pid=$!
  wait_port "$port"
  echo "### round $round: natter s1 ($(date -u +%Y-%m-%dT%H:%MZ))"
  target/release/natter-bench --server "127.0.0.1:$port" --server-pid "$natter_pid" "${json[@]}" \
    s1 --clients "$clients" --rate "$rate" --seconds "$seconds" || true
  kill "$natter_pid"; wait "$natter_pid" 2>/dev/null || true
  rm -rf "$work"
done
