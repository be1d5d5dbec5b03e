#!/usr/bin/env bash
# S3 across a cluster: waiting polls ramped to 100,000 over six natter
# nodes on one fresh PostgreSQL schema and Redis, driven by six natter-bench
# processes at once (one process holds at most ~19,000 clients: the
# open-files limit is 20,000 here, and cannot be raised).
#
# Each generator spreads its clients over every node (client i on node
# i % 6), signs its users in as the `bench` site's (site tokens: no
# password hashes, which would take hours for 100,000 users), uses its own
# loopback source addresses, and meets the others at each step once its
# clients are connected, so the memory each reads is the whole cluster's
# at that step; `natter-bench merge` adds their reports up.
#   flock -o /tmp/natter-cargo.lock scripts/s3-cluster.sh
#   NODES=6 STEPS=6000,30000,60000,100000 SECONDS_EACH=10 scripts/s3-cluster.sh
#   POLL_TIMEOUT=30 scripts/s3-cluster.sh   # polls wait as the SDK's do (S3's own: 5 s)
# Needs PostgreSQL with trust auth at $PG (psql) and Redis at $REDIS.
set -euo pipefail
cd "$(dirname "$0")/.."
nodes=${NODES:-6}
steps=${STEPS:-6000,30000,60000,100000}
seconds=${SECONDS_EACH:-10}
poll_timeout=${POLL_TIMEOUT:-5}
pg=${PG:-postgres://postgres@127.0.0.1:5432/test}
redis=${REDIS:-redis://127.0.0.1:6379}
secret="natter-bench-site-secret-$(date +%s%N)"
# Six nodes at the default 16 connections would take 96 of a default
# PostgreSQL's 100.
pool=${POOL:-12}

cargo build --release --locked -p natter -p natter-bench
bin=${CARGO_TARGET_DIR:-target}/release
bench=$bin/natter-bench
. scripts/ports.sh

work=$(mktemp -d)
schema="natter_s3_$(date +%s)_$$"
servers=()
cleanup() {
  for pid in "${servers[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${servers[@]}"; do wait "$pid" 2>/dev/null || true; done
  psql "$pg" -qX -c "DROP SCHEMA IF EXISTS $schema CASCADE" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Each generator's share of every step.
per=$(python3 -c "import sys; print(','.join(str(-(-int(s) // $nodes)) for s in sys.argv[1].split(',')))" "$steps")

cat > "$work/natter.toml" <<EOF
[[sites]]
id = "bench"
issuer = "natter-bench"
algorithm = "HS256"
secret = "$secret"
EOF

echo "### $(date -u +%Y-%m-%dT%H:%M:%SZ), $(nproc) cores, $(git rev-parse --short HEAD): s3 over $nodes nodes, steps $steps ($per per generator)"
psql "$pg" -qX -v ON_ERROR_STOP=1 -c "CREATE SCHEMA $schema" >/dev/null
store="$pg?options=-c%20search_path%3D$schema"
ports=()
for n in $(seq 1 "$nodes"); do
  p=$(free_port)
  ports+=("127.0.0.1:$p")
  "$bin/natter" --config "$work/natter.toml" --listen "127.0.0.1:$p" --data-dir "$work/node$n" \
    --log warn --rate-limits off --store "$store" --bus "$redis" --postgres-max-connections "$pool" &
  servers+=($!)
  # One at a time: the first creates the schema.
  wait_port "$p"
done
cluster=(--server "$(IFS=,; echo "${ports[*]}")" --server-pid "$(IFS=,; echo "${servers[*]}")")

generators=()
for g in $(seq 0 $((nodes - 1))); do
  NATTER_BENCH_SITE_SECRET=$secret $bench "${cluster[@]}" --json \
    --first-source $((g * 8)) --barrier "$work/barrier" --parties "$nodes" \
    s3 --steps "$per" --seconds "$seconds" --poll-timeout "$poll_timeout" > "$work/gen$g.json" 2> "$work/gen$g.err" &
  generators+=($!)
done
failed=0
for g in "${!generators[@]}"; do
  wait "${generators[$g]}" || { failed=1; echo "generator $g failed:" >&2; tail -5 "$work/gen$g.err" >&2; }
done
echo "### each node's RSS at the end (KiB): $(for pid in "${servers[@]}"; do awk '/VmRSS/ {printf "%s ", $2}' "/proc/$pid/status"; done)"
$bench merge "$work"/gen*.json
exit $failed
