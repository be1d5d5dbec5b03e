#!/usr/bin/env bash
# Fuzzes a natter binary against the OpenAPI document it serves, with
# schemathesis: no answer may be a 5xx, and every answer must conform to the
# document (status documented, content type, body schema, headers).
#
# Usage: scripts/schemathesis.sh PATH_TO_NATTER_BINARY
#
# Five runs, each bounded in cases (SCHEMATHESIS_MAX_EXAMPLES per operation)
# and in time (SCHEMATHESIS_TIMEOUT seconds): without credentials, as a
# logged-in user (Authorization: Bearer), twice as a throwaway user for the
# operations that change the password or end the caller's session, and
# with the admin key (X-Natter-Admin-Key). Each run ends with a summary line (cases, failures,
# errors), all of them are repeated at the end, and the script exits
# non-zero when any run failed. It may be run from any folder. Everything stays on 127.0.0.1; the server gets a
# fresh data folder in a temporary directory and is killed on exit.
#
# Environment (all optional):
#   SCHEMATHESIS_MAX_EXAMPLES  cases per operation and phase [default: 30]
#   SCHEMATHESIS_TIMEOUT       seconds allowed per run [default: 300]
#   SCHEMATHESIS_SEED          hypothesis seed [default: 1, reproducible]
#   SCHEMATHESIS_SPEC          a document to test instead of the served one
#                              (a file path or URL; for editing the document)
set -euo pipefail

SCHEMATHESIS_VERSION=4.32.5

if [ $# -ne 1 ]; then
  echo "usage: $0 PATH_TO_NATTER_BINARY" >&2
  exit 2
fi
bin=$(realpath "$1")
if [ ! -x "$bin" ]; then
  echo "$0: $1 is not an executable file" >&2
  exit 2
fi
max_examples=${SCHEMATHESIS_MAX_EXAMPLES:-30}
run_timeout=${SCHEMATHESIS_TIMEOUT:-300}
seed=${SCHEMATHESIS_SEED:-1}
spec_override=${SCHEMATHESIS_SPEC:-}
if [ -n "$spec_override" ] && [ -e "$spec_override" ]; then
  spec_override=$(realpath "$spec_override")
fi

# schemathesis itself: the one on PATH, else the pinned version from PyPI.
st=()
if command -v schemathesis >/dev/null; then
  st=(schemathesis)
elif command -v st >/dev/null && st --version 2>/dev/null | grep -qi schemathesis; then
  st=(st)
else
  echo "== installing schemathesis $SCHEMATHESIS_VERSION"
  python3 -m pip install -q "schemathesis==$SCHEMATHESIS_VERSION"
  if command -v schemathesis >/dev/null; then
    st=(schemathesis)
  else
    st=(python3 -m schemathesis.cli)
  fi
fi
echo "== $("${st[@]}" --version)"

tmp=$(mktemp -d)
server=
cleanup() {
  if [ -n "$server" ]; then
    kill "$server" 2>/dev/null || true
    wait "$server" 2>/dev/null || true
  fi
  rm -rf "$tmp"
}
trap cleanup EXIT

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
base="http://127.0.0.1:$port"
# 40 characters, for the admin API (keys need at least 32).
admin_key=$(python3 -c 'import secrets; print(secrets.token_hex(20))')
# An empty configuration file, so that no natter.toml in the current
# folder (or NATTER_CONFIG) changes what is tested.
printf '# schemathesis run: defaults only\n' >"$tmp/natter.toml"

extra=()
# Fuzzing sends far more registrations, logins and messages than the
# default rate limits allow; binaries that have limits can turn them off.
help_text=$("$bin" --help)
if grep -q -- --rate-limits <<<"$help_text"; then
  extra+=(--rate-limits off)
fi

echo "== starting $bin on $base"
(
  cd "$tmp"
  exec "$bin" --config "$tmp/natter.toml" --listen "127.0.0.1:$port" \
    --data-dir "$tmp/data" --admin-keys "$admin_key" --log warn "${extra[@]}"
) >"$tmp/server.log" 2>&1 &
server=$!
up=
for _ in $(seq 1 100); do
  if curl -fsS -o /dev/null "$base/healthz" 2>/dev/null; then
    up=1
    break
  fi
  kill -0 "$server" 2>/dev/null || break
  sleep 0.1
done
if [ -z "$up" ]; then
  echo "natter did not come up on $base; its log:" >&2
  cat "$tmp/server.log" >&2
  exit 1
fi

# Data for the fuzzer to find: two users (ids 1 and 2), a public room
# (id 1) with a message in it, and a session for user 1. And two throwaway
# users for the operations that change the password or end the session
# they are called with: user 3 with two sessions, whose password is the
# one in the document's example for POST /me/password (so that the
# examples phase changes it once), and user 4.
post() { # path, JSON body, [extra curl arguments...]
  local path=$1 body=$2
  shift 2
  curl -fsS -X POST "$base$path" -H 'Content-Type: application/json' --data-binary "$body" "$@"
}
json_field() { python3 -c 'import json, sys; print(json.load(sys.stdin)[sys.argv[1]])' "$1"; }
user_session() { # username, password: registers the user if new, prints a new session's token
  local login="{\"username\":\"$1\",\"password\":\"$2\"}"
  post /api/v1/users "$login" >/dev/null 2>&1 || true
  post /api/v1/sessions "$login" | json_field token
}
password=fuzzer-password-1
token=$(user_session fuzzer "$password")
post /api/v1/users "{\"username\":\"fuzzer2\",\"password\":\"$password\"}" >/dev/null
auth=(-H "Authorization: Bearer $token")
throwaway_token=$(user_session throwaway password-1)
user_session throwaway password-1 >/dev/null # another session, for the run to end
ender_token=$(user_session throwaway2 "$password")
post /api/v1/rooms '{"title":"lobby","visibility":"public"}' "${auth[@]}" >/dev/null
post /api/v1/rooms/1/messages '{"client_msg_id":"seed-1","text":"hello"}' "${auth[@]}" >/dev/null

spec=${spec_override:-$base/api/v1/openapi.json}
checks=not_a_server_error,status_code_conformance,content_type_conformance
checks+=,response_schema_conformance,response_headers_conformance

failed=()
summaries=()
runs=0
run() { # name, extra schemathesis arguments...
  local name=$1
  shift
  runs=$((runs + 1))
  local log="$tmp/run-$runs.log"
  echo
  echo "== schemathesis: $name (at most $max_examples cases per operation and phase, ${run_timeout}s)"
  local rc=0
  # Run from the temporary folder: schemathesis and hypothesis write their
  # files (.hypothesis, reports) to the current folder.
  (
    cd "$tmp"
    exec timeout --kill-after=10 "$run_timeout" "${st[@]}" run "$spec" \
      --url "$base" \
      --checks "$checks" \
      --max-examples "$max_examples" \
      --seed "$seed" \
      --generation-database none \
      --request-timeout 75 \
      --no-color \
      "$@"
  ) 2>&1 | tee "$log" || rc=$?
  if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then
    echo "!! $name: did not finish within ${run_timeout}s" >&2
  fi
  # One line per run from schemathesis' own summary: cases generated,
  # unique failures, errors.
  local figures
  figures=$(python3 - "$log" <<'PY'
import re, sys
text = open(sys.argv[1], encoding="utf-8", errors="replace").read()
cases = failures = errors = "?"
m = re.search(r"Test cases:\s*\n\s*(\d+) generated([^\n]*)", text)
if m:
    cases = m.group(1)
    f = re.search(r"(\d+) unique failures?", m.group(2))
    failures = f.group(1) if f else "0"
    e = re.search(r"(\d+) errors?", m.group(2))
    errors = e.group(1) if e else "0"
last = [l for l in text.splitlines() if l.startswith("=") and " in " in l]
if last:
    e = re.search(r"(\d+) errors?", last[-1])
    if e:
        errors = e.group(1)
if "No test cases were generated" in text:
    cases = failures = errors = "0"
note = ""
if "No operations matched the filters" in text:
    note = " (no operations matched the filters: is the document current?)"
print(f"{cases} cases, {failures} failures, {errors} errors{note}")
PY
  ) || figures="no figures"
  local verdict=passed
  if [ "$rc" -ne 0 ]; then
    verdict="FAILED (exit $rc)"
    failed+=("$name (exit $rc)")
  fi
  summaries+=("$name: $figures: $verdict")
  echo "== schemathesis $name: $figures: $verdict"
}

# Every operation, without credentials: 401s must be documented too.
run "no credentials"
# As a user. Excluded here, because they would end or break the session
# the run uses: logging out (DELETE /sessions/current), ending one's own
# sessions (DELETE /me/sessions/{id}, which may name the current one;
# DELETE /me/sessions), changing the password (POST /me/password) and
# deactivating the account (POST /me/deactivate). The two throwaway runs
# below have them. The admin operations only answer 401 without the admin
# key (run 1 has those).
session_enders=(logout endMySession endOtherSessions changePassword deactivateMe)
exclude_enders=()
for op in "${session_enders[@]}"; do
  exclude_enders+=(--exclude-operation-id "$op")
done
run "bearer token" "${auth[@]}" \
  "${exclude_enders[@]}" \
  --exclude-path-regex '^/api/v1/admin/'
# As throwaway user 3: changing the password (the example succeeds once
# and ends the user's second session; afterwards the current password is
# another) and ending the user's sessions. DELETE /me/sessions/{id} may
# name the run's own session; the cases after that answer 401
# session_ended, which is documented too.
run "throwaway user" -H "Authorization: Bearer $throwaway_token" \
  --include-operation-id changePassword \
  --include-operation-id endOtherSessions \
  --include-operation-id endMySession
# As throwaway user 4: deactivating the account (schemathesis does not
# know the password, so this checks the refusals) and logging out, which
# ends the session; the cases after that answer 401 session_ended.
run "throwaway user, session ending" -H "Authorization: Bearer $ender_token" \
  --include-operation-id deactivateMe \
  --include-operation-id logout
# The admin API, last: it may deactivate users and end their sessions.
run "admin key" -H "X-Natter-Admin-Key: $admin_key" \
  --include-path-regex '^/api/v1/admin/'

echo
echo "== schemathesis summary ($runs runs, spec $spec):"
for line in "${summaries[@]}"; do
  echo "==   $line"
done
if ! kill -0 "$server" 2>/dev/null; then
  failed+=("the server exited during the runs")
  server=
fi
if [ ${#failed[@]} -gt 0 ]; then
  echo
  echo "== schemathesis FAILED: ${failed[*]}" >&2
  if [ -s "$tmp/server.log" ]; then
    echo "== server log (warnings and errors):" >&2
    tail -n 100 "$tmp/server.log" >&2
  fi
  exit 1
fi
echo
echo "== schemathesis: all $runs runs passed"
