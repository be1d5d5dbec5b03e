#!/usr/bin/env bash
# Starts, stops or restarts this machine's PostgreSQL and Redis, the way
# the machine itself starts them. .ci/run starts them when they are down;
# the cluster fault tests (crates/natter/tests/cluster_faults/) restart
# them mid-run.
#   scripts/services.sh start|restart|crash postgres|redis
# `crash` stops at once (PostgreSQL `-m immediate`, Redis `SHUTDOWN
# NOSAVE`) and starts again; `restart` is the same for Redis, which keeps
# nothing on disk here.
set -euo pipefail
action=${1:?start, restart or crash}
# A daemon started from here must not keep what the caller had open (a
# test runner's pipes, a lock file): close every descriptor past stderr.
for fd in /proc/$$/fd/*; do
  fd=${fd##*/}
  [ "$fd" -gt 2 ] && eval "exec $fd>&-" 2>/dev/null || true
done
service=${2:?postgres or redis}

redis_up() { redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1; }
start_redis() {
  redis_up && return 0
  redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
    --dir /var/lib/redis --logfile /var/log/redis/ci.log
}
wait_for() {
  for _ in $(seq 1 150); do
    "$@" && return 0
    sleep 0.1
  done
  echo "services.sh: $service did not come up" >&2
  return 1
}
postgres_up() { pg_isready -q -h 127.0.0.1 -p 5432; }
cluster() { ls /etc/postgresql; }

case "$service:$action" in
  postgres:start)
    postgres_up || pg_ctlcluster --skip-systemctl-redirect "$(cluster)" main start
    wait_for postgres_up ;;
  postgres:restart)
    pg_ctlcluster --skip-systemctl-redirect "$(cluster)" main restart -m fast
    wait_for postgres_up ;;
  postgres:crash)
    pg_ctlcluster --skip-systemctl-redirect "$(cluster)" main restart -m immediate
    wait_for postgres_up ;;
  redis:start)
    start_redis
    wait_for redis_up ;;
  redis:restart | redis:crash)
    redis-cli -h 127.0.0.1 -p 6379 shutdown nosave >/dev/null 2>&1 || true
    for _ in $(seq 1 50); do redis_up || break; sleep 0.1; done
    start_redis
    wait_for redis_up ;;
  *) echo "services.sh: unknown $action $service" >&2; exit 2 ;;
esac
