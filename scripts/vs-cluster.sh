#!/usr/bin/env bash
# One node on SQLite against three nodes on PostgreSQL + Redis, in one run
# on this machine, with the same natter-bench client:
#   1. one natter on SQLite: S1 and S2 (with their no-op references), the
#      wake-up run's shape and S4, as references;
#   2. three natter nodes on one fresh PostgreSQL schema and Redis: S1 and
#      S2 with reader/sender i on node i % 3 (so two thirds of the wake-ups
#      cross nodes), S1 again with every request to the next node (a
#      round-robin balancer, no sticky sessions), the cross-node wake-up
#      (1,000 waiting over the three nodes, every send on the first node,
#      a slow rate so each message's wake-up is measured alone; then 30
#      waiting at 20 msg/s, the bus hop without a fan-out burst), and S4
#      (durable sends on PostgreSQL, then with one sender per room), with
#      the CPU of postgres and Redis beside natter's, PostgreSQL's commits
#      and WAL syncs, and what its sessions were waiting on.
# Everything is created under a run prefix (users) or a schema of its own
# (dropped at the end) and stops by itself. Run it alone on the machine:
#   flock -o /tmp/natter-cargo.lock scripts/vs-cluster.sh
#   CLIENTS=1000 WAKE_RATE=2 WAKE_SECONDS=20 scripts/vs-cluster.sh
#   ONLY=s4 NATTER=/tmp/natter-before scripts/vs-cluster.sh
# ONLY=s1, s2 or s4 runs that scenario alone (the single node's, then the
# cluster's: S1 sticky, S2, or S4's two runs);
# NATTER names another natter binary to measure (an older build, for a
# before-and-after in one sitting), natter-bench is still this tree's;
# PG_PARAMS adds parameters to the nodes' store URL (sslmode=disable
# measures them without TLS, where the server offers it).
# Needs PostgreSQL with trust auth at $PG (psql) and Redis at $REDIS.
set -euo pipefail
cd "$(dirname "$0")/.."
clients=${CLIENTS:-1000}
wake_rate=${WAKE_RATE:-2} wake_seconds=${WAKE_SECONDS:-20}
only=${ONLY:-all}
case "$only" in all | s1 | s2 | s4) ;; *) echo "ONLY is all, s1, s2 or s4, not $only" >&2; exit 2 ;; esac
# want NAME: whether this run includes NAME (a scenario, or "rest" for
# the runs only the whole script makes).
want() { [ "$only" = all ] || [ "$only" = "$1" ]; }
pg=${PG:-postgres://postgres@127.0.0.1:5432/test}
redis=${REDIS:-redis://127.0.0.1:6379}
json=()
[ -n "${BENCH_JSON:-}" ] && json=(--json)

cargo build --release --locked -p natter -p natter-bench
bin=${CARGO_TARGET_DIR:-target}/release
bench=$bin/natter-bench
natter=${NATTER:-$bin/natter}
. scripts/ports.sh

work=$(mktemp -d)
schema="natter_bench_$(date +%s)_$$"
servers=()
cleanup() {
  for pid in "${servers[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${servers[@]}"; do wait "$pid" 2>/dev/null || true; done
  servers=()
  psql "$pg" -qX -c "DROP SCHEMA IF EXISTS $schema CASCADE" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# start_node PORT DIR [natter flags…]: a node in the background; its pid is
# appended to $servers.
start_node() {
  local port=$1 dir=$2
  shift 2
  "$natter" --listen "127.0.0.1:$port" --data-dir "$dir" --log warn --rate-limits off "$@" &
  servers+=($!)
}
stop_nodes() {
  for pid in "${servers[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${servers[@]}"; do wait "$pid" 2>/dev/null || true; done
  servers=()
}

# CPU seconds (user + system) used so far by the processes named $1 (the
# machine's PostgreSQL, one process per connection, or Redis).
hz=$(getconf CLK_TCK)
cpu_of() {
  local ticks=0 pid t
  for pid in $(pgrep -x "$1" || true); do
    t=$(awk '{print $14 + $15}' "/proc/$pid/stat" 2>/dev/null) || continue
    ticks=$((ticks + ${t:-0}))
  done
  echo "$ticks"
}
# with_services_cpu CMD…: runs CMD and prints what postgres and Redis
# spent beside it (natter-bench reports natter's own CPU and its own).
with_services_cpu() {
  local pg0 rd0 t0 pg1 rd1 t1
  pg0=$(cpu_of postgres) rd0=$(cpu_of redis-server) t0=$(date +%s.%N)
  "$@" || true
  pg1=$(cpu_of postgres) rd1=$(cpu_of redis-server) t1=$(date +%s.%N)
  python3 - "$pg0" "$pg1" "$rd0" "$rd1" "$t0" "$t1" "$hz" <<'EOF'
import sys
pg0, pg1, rd0, rd1, t0, t1, hz = map(float, sys.argv[1:])
wall = t1 - t0
print(f"  services beside it, over {wall:.1f} s (setup included): "
      f"postgres {(pg1 - pg0) / hz:.2f} s CPU ({(pg1 - pg0) / hz / wall * 100:.1f}% of a core), "
      f"redis {(rd1 - rd0) / hz:.2f} s ({(rd1 - rd0) / hz / wall * 100:.1f}%)")
EOF
}

echo "### $(date -u +%Y-%m-%dT%H:%M:%SZ), $(nproc) cores, $(git rev-parse --short HEAD), $natter"

# 1. One node on SQLite.
port=$(free_port)
start_node "$port" "$work/single"
wait_port "$port"
if want s1; then
  echo "### single node on SQLite: s1"
  $bench --server "127.0.0.1:$port" --server-pid "${servers[0]}" "${json[@]}" s1 --clients "$clients" || true
fi
if want s2; then
  echo "### single node on SQLite: s2"
  $bench --server "127.0.0.1:$port" --server-pid "${servers[0]}" "${json[@]}" s2 --clients "$clients" || true
fi
if want rest; then
  echo "### single node on SQLite: the wake-up run's shape, $clients waiting, $wake_rate msg/s (the reference for the cross-node one)"
  $bench --server "127.0.0.1:$port" --server-pid "${servers[0]}" "${json[@]}" s1 --clients "$clients" --no-ceiling \
    --rate "$wake_rate" --seconds "$wake_seconds" || true
fi
if want s4; then
  echo "### single node on SQLite: s4"
  $bench --server "127.0.0.1:$port" --server-pid "${servers[0]}" "${json[@]}" s4 || true
fi
stop_nodes

# 2. Three nodes on one PostgreSQL schema and Redis.
psql "$pg" -qX -v ON_ERROR_STOP=1 -c "CREATE SCHEMA $schema" >/dev/null
psql "$pg" -qXAt -c "SELECT 'postgres ' || current_setting('server_version') || ', synchronous_commit=' || current_setting('synchronous_commit') || ', fsync=' || current_setting('fsync') || ', wal_sync_method=' || current_setting('wal_sync_method') || ', commit_delay=' || current_setting('commit_delay')"
store="$pg?${PG_PARAMS:+$PG_PARAMS&}options=-c%20search_path%3D$schema"
ports=()
for n in 1 2 3; do
  p=$(free_port)
  ports+=("127.0.0.1:$p")
  start_node "$p" "$work/node$n" --store "$store" --bus "$redis"
done
for p in "${ports[@]}"; do wait_port "${p#*:}"; done
cluster=(--server "$(IFS=,; echo "${ports[*]}")" --server-pid "$(IFS=,; echo "${servers[*]}")")
if want s1; then
  echo "### 3 nodes on PostgreSQL + Redis (pids ${servers[*]}): s1, client i on node i % 3"
  with_services_cpu $bench "${cluster[@]}" "${json[@]}" s1 --clients "$clients" --no-ceiling
fi
if want s2; then
  echo "### 3 nodes: s2, client i on node i % 3"
  with_services_cpu $bench "${cluster[@]}" "${json[@]}" s2 --clients "$clients" --no-ceiling
fi
if want rest; then
  echo "### 3 nodes: s1, every request to the next node (round-robin, no sticky sessions)"
  with_services_cpu $bench "${cluster[@]}" --spread round-robin "${json[@]}" s1 --clients "$clients" --no-ceiling
  echo "### 3 nodes: cross-node wake-up, $clients waiting over the nodes, every send on the first node, $wake_rate msg/s"
  with_services_cpu $bench "${cluster[@]}" "${json[@]}" s1 --clients "$clients" --no-ceiling \
    --rate "$wake_rate" --seconds "$wake_seconds"
fi

wal() { psql "$pg" -qXAt -F' ' -c "SELECT wal_records, wal_write, wal_sync, (SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()) FROM pg_stat_wal"; }
# s4_on_postgres [s4 flags…]: S4 on the cluster, with PostgreSQL's commits
# and WAL syncs over it and what its active sessions waited on.
s4_on_postgres() {
  local rec0 write0 sync0 commit0 rec1 write1 sync1 commit1 sampler
  read -r rec0 write0 sync0 commit0 < <(wal)
  (
    end=$((SECONDS + 120))
    while [ $SECONDS -lt $end ]; do
      psql "$pg" -qXAt -c "SELECT coalesce(wait_event_type || ':' || wait_event, 'CPU') FROM pg_stat_activity WHERE datname = current_database() AND state = 'active' AND pid <> pg_backend_pid()" 2>/dev/null || true
      sleep 0.2
    done
  ) > "$work/waits" &
  sampler=$!
  # CPU ticks of postgres and of the three nodes, every second, to find
  # postgres's busiest seconds, which are the sends', not the setup's.
  (
    end=$((SECONDS + 120))
    while [ $SECONDS -lt $end ]; do
      n=0
      for pid in "${servers[@]}"; do n=$((n + $(awk '{print $14 + $15}' "/proc/$pid/stat"))); done
      echo "$(date +%s.%N) $(cpu_of postgres) $n"
      sleep 1
    done
  ) > "$work/ticks" &
  ticker=$!
  with_services_cpu $bench "${cluster[@]}" "${json[@]}" s4 "$@"
  kill "$sampler" "$ticker" 2>/dev/null || true
  wait "$sampler" "$ticker" 2>/dev/null || true
  python3 - "$work/ticks" "$hz" <<'EOF2'
import sys
rows = [tuple(map(float, l.split())) for l in open(sys.argv[1]) if len(l.split()) == 3]
hz = float(sys.argv[2])
best = None
for i in range(len(rows)):
    for j in range(i + 1, len(rows)):
        if rows[j][0] - rows[i][0] >= 5:
            wall = rows[j][0] - rows[i][0]
            pg, nat = (rows[j][1] - rows[i][1]) / hz / wall, (rows[j][2] - rows[i][2]) / hz / wall
            # The setup is natter's (argon2 per user), the sends postgres's.
            if best is None or pg > best[1]:
                best = (wall, pg, nat)
            break
if best:
    print(f"  the {best[0]:.1f} s of s4 where postgres was busiest: postgres {best[1] * 100:.0f}% of a core, the three nodes {best[2] * 100:.0f}%, together {(best[1] + best[2]) * 100:.0f}% of the machine's 200%")
EOF2
  read -r rec1 write1 sync1 commit1 < <(wal)
  echo "  postgres over s4 and its setup (whole server): $((commit1 - commit0)) commits, $((rec1 - rec0)) WAL records, $((write1 - write0)) WAL writes, $((sync1 - sync0)) WAL syncs"
  echo "  what the active sessions waited on (samples every 0.2 s over s4 and its setup; CPU = running):"
  sort "$work/waits" | uniq -c | sort -rn | head -8 | sed 's/^/    /'
}
if want rest; then
  echo "### 3 nodes: the bus hop alone, 30 waiting over the nodes, every send on the first node, 20 msg/s (no fan-out burst to queue behind)"
  with_services_cpu $bench "${cluster[@]}" "${json[@]}" s1 --clients 30 --no-ceiling
fi

if want s4; then
  echo "### 3 nodes: s4 (durable sends on PostgreSQL: 200 senders, 100 rooms)"
  s4_on_postgres
  # With more senders than rooms natter-bench keeps sender i to room i % rooms:
  # 101 senders over 100 rooms put one sender in every room but the first.
  echo "### 3 nodes: s4 with one sender per room (101 senders, 100 rooms: only room 0 has two, so sends hardly ever wait on a room's row)"
  s4_on_postgres --senders 101 --rooms 100
fi
stop_nodes
echo "### done $(date -u +%Y-%m-%dT%H:%M:%SZ)"
