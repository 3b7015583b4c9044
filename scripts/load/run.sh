#!/usr/bin/env bash
# Load run of a local Gatehouse with wrk: password grant, refresh grant,
# userinfo and JWKS, plus JWKS latency while the password grant is loaded.
#
#   scripts/load/run.sh [sqlite|postgres] [DURATION] [CONNECTIONS]
#
# DURATION: of every wrk run (default 10s; a bare number means seconds).
# CONNECTIONS: of the main wrk runs (default 32).
# Environment: GATEHOUSE_BIN (default target/release/gatehouse), THREADS (wrk
# threads, default 2), USERS (seeded users, default 200), COLLECTORS (users
# that only feed the refresh run, default 64), COLLECT_TIME (how long refresh
# tokens are collected, with cheap hashing, before the measured start;
# default 30s), PG_ADMIN_URL
# (default postgres://postgres@127.0.0.1:5432/postgres), PORT (default 18080),
# PERF_RUN (a run's name, e.g. refresh: perf samples the server during it and
# the top of its profile goes to scripts/load/profile-<db>-<name>.txt; with
# PERF_DATA=FILE, perf's data file is kept there for `perf report -i FILE`),
# SIGNING_ALG (ES256 or EdDSA: the server runs with one configured client,
# `gatehouse`, whose tokens are signed with that algorithm; unset: first-party
# mode, RS256), SMAPS_OUT (a file: /proc/<server>/smaps is copied there when
# the RSS after load is read).
#
# Prints a Markdown table and writes it to scripts/load/results-<db>.md
# (results-<db>-<alg>.md with SIGNING_ALG).
# Everything targets 127.0.0.1; the server and the database are removed at
# the end, whatever happens.
set -euo pipefail

LOAD_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$LOAD_DIR/../.." && pwd)
export LOAD_DIR

DB=${1:-sqlite}
DURATION=${2:-10s}
CONNS=${3:-32}
[[ $DURATION =~ ^[0-9]+$ ]] && DURATION="${DURATION}s"
THREADS=${THREADS:-2}
USERS=${USERS:-200}
COLLECTORS=${COLLECTORS:-64}
COLLECT_TIME=${COLLECT_TIME:-30s}
PORT=${PORT:-18080}
PG_ADMIN_URL=${PG_ADMIN_URL:-postgres://postgres@127.0.0.1:5432/postgres}
SIGNING_ALG=${SIGNING_ALG:-}
case $SIGNING_ALG in '' | RS256 | ES256 | EdDSA) ;; *) echo "SIGNING_ALG: RS256, ES256 or EdDSA" >&2; exit 2 ;; esac
RESULTS_NAME=$DB${SIGNING_ALG:+-$SIGNING_ALG}
PASSWORD='vivid-Meadow-lantern-42'
BASE="http://127.0.0.1:$PORT"
JWKS_CONNS=4

case $DB in sqlite | postgres) ;; *) echo "usage: $0 [sqlite|postgres] [DURATION] [CONNECTIONS]" >&2; exit 2 ;; esac
(( THREADS <= CONNS )) || THREADS=$CONNS

BIN=${GATEHOUSE_BIN:-target/release/gatehouse}
[[ $BIN = /* ]] || BIN="$ROOT/$BIN"
[[ -x $BIN ]] || { echo "error: no server binary at $BIN (set GATEHOUSE_BIN)" >&2; exit 1; }
command -v wrk >/dev/null || { echo "error: wrk missing (apt-get install -y wrk)" >&2; exit 1; }
command -v curl >/dev/null || { echo "error: curl missing" >&2; exit 1; }

WORK=$(mktemp -d /tmp/gatehouse-load.XXXXXX)
SERVER_PID=
PG_DB=
cleanup() {
  local rc=$?
  if [[ -n $SERVER_PID ]] && kill -0 "$SERVER_PID" 2>/dev/null; then
    kill "$SERVER_PID" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$SERVER_PID" 2>/dev/null || true
  fi
  if [[ -n $PG_DB ]]; then
    psql "$PG_ADMIN_URL" -qAt -c "DROP DATABASE IF EXISTS $PG_DB WITH (FORCE)" >/dev/null 2>&1 ||
      echo "warning: could not drop database $PG_DB" >&2
  fi
  if (( rc != 0 )) && [[ -f $WORK/server.log ]]; then
    echo "--- last server log lines ($WORK/server.log) ---" >&2
    tail -n 20 "$WORK/server.log" >&2
  else
    rm -rf "$WORK"
  fi
  exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

log() { echo "[load] $*" >&2; }

if pgrep -x rustc >/dev/null || pgrep -x cargo >/dev/null; then
  log "warning: a cargo/rustc build is running; numbers will be low and noisy"
fi

# --- database ------------------------------------------------------------------
if [[ $DB = sqlite ]]; then
  DB_URL="sqlite://$WORK/gh.db?mode=rwc"
else
  command -v psql >/dev/null || { echo "error: psql missing" >&2; exit 1; }
  PG_DB="gatehouse_load_$$"
  psql "$PG_ADMIN_URL" -qAt -c "CREATE DATABASE $PG_DB" >/dev/null
  DB_URL="${PG_ADMIN_URL%/*}/$PG_DB"
fi

# --- server ------------------------------------------------------------------------
# Configured through the environment (server-env.sh): it runs in $WORK,
# where there is no config/gatehouse.toml.
# shellcheck source=scripts/load/server-env.sh
source "$LOAD_DIR/server-env.sh"
start_server() {
  (
    server_env "$PORT" "$DB_URL" "$WORK"
    cd "$WORK"
    # Extra settings for this start (the seeding start's cheap hashing).
    for kv in "$@"; do export "${kv?}"; done
    exec "$BIN" serve
  ) >>"$WORK/server.log" 2>&1 &
  SERVER_PID=$!
}

if curl -s -o /dev/null "$BASE/healthz"; then
  echo "error: something already listens on 127.0.0.1:$PORT" >&2; exit 1
fi
wait_ready() {
  for i in $(seq 1 120); do
    curl -fs -o /dev/null "$BASE/healthz" && return 0
    kill -0 "$SERVER_PID" 2>/dev/null || { echo "error: server exited" >&2; cat "$WORK/server.log" >&2; exit 1; }
    (( i == 120 )) && { echo "error: /healthz not ready after 60 s" >&2; exit 1; }
    sleep 0.5
  done
}
stop_server() {
  kill "$SERVER_PID" 2>/dev/null || true
  for _ in $(seq 100); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.1; done
  SERVER_PID=
}

# --- seeding refresh tokens, not bound by Argon2 -----------------------------------
# A first start with cheap password hashing registers COLLECTORS users of its
# own and collects refresh tokens from password grants for COLLECT_TIME; the
# server is then restarted on the same database with the real hashing for
# every measured run. The collectors' cheap hashes are never used again.
log "server: $BIN ($DB) in $WORK; seeding refresh tokens with cheap hashing"
mkdir -p "$WORK/reg" "$WORK/rt" "$WORK/seed"
start_server GATEHOUSE_PASSWORD_HASH__MEMORY_KIB=8 GATEHOUSE_PASSWORD_HASH__ITERATIONS=1
wait_ready
seq 1 "$COLLECTORS" | sed 's/.*/collect&@example.com/' >"$WORK/collectors.txt"
# shellcheck disable=SC2016
xargs -P 4 -I{} curl -sS -o /dev/null -w '%{http_code}\n' \
  -H 'Content-Type: application/json' \
  -d "{\"email\":\"{}\",\"password\":\"$PASSWORD\"}" \
  "$BASE/account/register" <"$WORK/collectors.txt" >"$WORK/seed/codes.txt"
(( $(grep -c '^201$' "$WORK/seed/codes.txt" || true) == COLLECTORS )) ||
  { echo "error: collector registrations failed:" >&2; sort "$WORK/seed/codes.txt" | uniq -c >&2; exit 1; }
COLLECT=1 RESULT_NAME=collect wrk -t"$THREADS" -c"$CONNS" -d"$COLLECT_TIME" --timeout 10s \
  -s "$LOAD_DIR/password.lua" "$BASE/oauth/token" -- "$WORK/collectors.txt" "$PASSWORD" "$WORK/rt" \
  >"$WORK/wrk-collect.txt" 2>&1 || { cat "$WORK/wrk-collect.txt" >&2; exit 1; }
cat "$WORK"/rt/rt.*.txt >"$WORK/refresh.txt"
TOKENS=$(wc -l <"$WORK/refresh.txt")
log "$TOKENS refresh tokens in $COLLECT_TIME"
(( TOKENS > 0 )) || { echo "error: no refresh tokens collected" >&2; cat "$WORK/wrk-collect.txt" >&2; exit 1; }
stop_server

log "server: restarted with the configured hashing"
start_server
wait_ready

rss_kib() { awk -v k="$1:" '$1 == k { print $2 }' "/proc/$SERVER_PID/status"; }
RSS_START=$(rss_kib VmRSS)

# --- seeding: users (their registration access tokens feed userinfo) -----------
log "registering $USERS users"
seq 1 "$USERS" | sed 's/.*/load&@example.com/' >"$WORK/emails.txt"
# shellcheck disable=SC2016
xargs -P 4 -I{} curl -sS -o "$WORK/reg/{}.json" -w '%{http_code}\n' \
  -H 'Content-Type: application/json' \
  -d "{\"email\":\"{}\",\"password\":\"$PASSWORD\"}" \
  "$BASE/account/register" <"$WORK/emails.txt" >"$WORK/reg-codes.txt"
REG_OK=$(grep -c '^201$' "$WORK/reg-codes.txt" || true)
if (( REG_OK != USERS )); then
  echo "error: $REG_OK of $USERS registrations answered 201; codes:" >&2
  sort "$WORK/reg-codes.txt" | uniq -c >&2
  first_bad=$(grep -L '"access_token"' "$WORK"/reg/*.json | head -n 1)
  [[ -n $first_bad ]] && { echo "first failing body ($first_bad):" >&2; cat "$first_bad" >&2; echo >&2; }
  exit 1
fi
cat "$WORK"/reg/*.json | grep -o '"access_token" *: *"[^"]*"' | sed 's/.*"\([^"]*\)"$/\1/' >"$WORK/access.txt"
(( $(wc -l <"$WORK/access.txt") == USERS )) || { echo "error: registration bodies carry no tokens.access_token" >&2; exit 1; }
# The hash workers give their Argon2 memory back after 10 s without work.
sleep 12
RSS_IDLE=$(rss_kib VmRSS)

# --- runs ------------------------------------------------------------------------
RESULTS="$WORK/results.txt"
: >"$RESULTS"
# Server CPU (user + system, clock ticks) of the Gatehouse process only.
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$SERVER_PID/stat"; }
TICKS=$(getconf CLK_TCK)

wrk_run() { # <name> <conns> <threads> <script> <path> [-- args...]
  local name=$1 c=$2 t=$3 script=$4 path=$5
  shift 5
  log "wrk $name: -t$t -c$c -d$DURATION $path"
  local cpu_before perf_pid=
  if [[ ${PERF_RUN:-} == "$name" ]]; then
    # A CPU profile of the server during this run (perf report -i FILE).
    perf record -F 499 -g -p "$SERVER_PID" -o "$WORK/perf-$name.data" >"$WORK/perf-$name.log" 2>&1 &
    perf_pid=$!
    sleep 0.5
  fi
  cpu_before=$(cpu_ticks)
  RESULT_NAME=$name TARGET_PATH=$path wrk -t"$t" -c"$c" -d"$DURATION" --timeout 10s --latency \
    -s "$LOAD_DIR/$script" "$BASE$path" "$@" >"$WORK/wrk-$name.txt" 2>&1 || {
    echo "error: wrk $name failed:" >&2; cat "$WORK/wrk-$name.txt" >&2; exit 1; }
  echo "$name $(( $(cpu_ticks) - cpu_before ))" >>"$WORK/cpu.txt"
  if [[ -n $perf_pid ]]; then
    kill -INT "$perf_pid" 2>/dev/null || true
    wait "$perf_pid" 2>/dev/null || true
    perf report -i "$WORK/perf-$name.data" --no-children -g none --percent-limit 0.7 --sort dso,symbol --stdio 2>/dev/null |
      grep -v '^#' | grep -v '^$' | head -40 >"$LOAD_DIR/profile-$RESULTS_NAME-$name.txt" || true
    log "profile of $name: scripts/load/profile-$RESULTS_NAME-$name.txt"
    if [[ -n ${PERF_DATA:-} ]]; then cp "$WORK/perf-$name.data" "$PERF_DATA"; fi
  fi
  grep '^RESULT ' "$WORK/wrk-$name.txt" >>"$RESULTS" || {
    echo "error: wrk $name printed no RESULT line:" >&2; cat "$WORK/wrk-$name.txt" >&2; exit 1; }
}

wrk_run jwks "$CONNS" "$THREADS" jwks.lua /.well-known/jwks.json
wrk_run account_me "$CONNS" "$THREADS" userinfo.lua /account/me -- "$WORK/access.txt"

# Password grant, with a paced JWKS probe alongside it (jwks_paced.lua: ~100
# req/s per connection, so the probe measures latency without eating the CPU
# the password grants need).
log "wrk jwks_during_password: -t1 -c$JWKS_CONNS -d$DURATION (concurrent)"
RESULT_NAME=jwks_during_password wrk -t1 -c"$JWKS_CONNS" -d"$DURATION" --timeout 10s --latency \
  -s "$LOAD_DIR/jwks_paced.lua" "$BASE/.well-known/jwks.json" >"$WORK/wrk-jwks_during_password.txt" 2>&1 &
JWKS_BG=$!
wrk_run password "$CONNS" "$THREADS" password.lua /oauth/token -- "$WORK/emails.txt" "$PASSWORD"
wait "$JWKS_BG" || { echo "error: concurrent jwks wrk failed" >&2; cat "$WORK/wrk-jwks_during_password.txt" >&2; exit 1; }
grep '^RESULT ' "$WORK/wrk-jwks_during_password.txt" >>"$RESULTS"

wrk_run refresh "$CONNS" "$THREADS" refresh.lua /oauth/token -- "$WORK/refresh.txt" "$THREADS"

sleep 1
RSS_END=$(rss_kib VmRSS)
RSS_PEAK=$(rss_kib VmHWM)
sleep 14
RSS_AFTER=$(rss_kib VmRSS)
# What the resident memory is: heap and stacks (anonymous) or mapped files.
RSS_ANON=$(rss_kib RssAnon)
RSS_FILE=$(rss_kib RssFile)
THREADS_AFTER=$(rss_kib Threads)
[[ -z ${SMAPS_OUT:-} ]] || cp "/proc/$SERVER_PID/smaps" "$SMAPS_OUT"
kill -0 "$SERVER_PID" 2>/dev/null || { echo "error: server died during the run" >&2; exit 1; }
SERVER_ERRORS=$(grep -ciE '\b(ERROR|panicked)\b' "$WORK/server.log" || true)

# --- report ----------------------------------------------------------------------
field() { # <name> <key>
  awk -v n="name=$1" -v k="$2" '$2 == n { for (i = 3; i <= NF; i++) { split($i, kv, "="); if (kv[1] == k) print kv[2] } }' "$RESULTS"
}
mib() { awk -v k="$1" 'BEGIN { printf "%.1f MiB", k / 1024 }'; }
# Server CPU per answer, ms: the process's CPU over the run / requests.
cpu_per() { # <name>
  local ticks req
  ticks=$(awk -v n="$1" '$1 == n { print $2 }' "$WORK/cpu.txt")
  req=$(field "$1" requests)
  if [[ -n $ticks && -n $req && $req -gt 0 ]]; then
    awk -v t="$ticks" -v r="$req" -v hz="$TICKS" 'BEGIN { printf "%.3f", t * 1000 / hz / r }'
  else
    echo "—"
  fi
}
row() { # <label> <name> <conns> <note>
  printf '| %s | %s | %s | %s | %s | %s | %s | %s | %s |\n' "$1" "$3" "$(field "$2" requests)" \
    "$(field "$2" ok_rps)" "$(field "$2" p50_ms)" "$(field "$2" p99_ms)" \
    "$(cpu_per "$2")" "$(( $(field "$2" non2xx) + $(field "$2" sockerr) ))" "$4"
}
build=release
[[ $BIN == */debug/* ]] && build=debug
busy=""
pgrep -x rustc >/dev/null && busy=" A cargo build was running at the end: numbers are depressed."
{
  echo "# Gatehouse load run: $DB${SIGNING_ALG:+, tokens signed $SIGNING_ALG}"
  echo
  echo "$(date -u +%Y-%m-%dT%H:%MZ), $(nproc) CPUs shared by server and wrk, $build build ($BIN)," \
    "wrk -t$THREADS -c$CONNS -d$DURATION, $USERS users, 127.0.0.1.$busy"
  echo
  echo "| scenario | conns | requests | req/s (2xx) | p50 ms | p99 ms | server CPU ms/answer | non-2xx + socket errors | notes |"
  echo "|---|---|---|---|---|---|---|---|---|"
  row "password grant" password "$CONNS" "Argon2id verify per request"
  row "refresh grant" refresh "$CONNS" "$(field refresh used)/$(field refresh tokens) fresh tokens used$( [[ $(field refresh ran_out) == true ]] && echo ', ran out: run ended early') in $(field refresh duration_s) s"
  row "GET /account/me" account_me "$CONNS" "Bearer JWT verify + deny-list check + DB read"
  row "jwks" jwks "$CONNS" "static document"
  row "jwks during password run" jwks_during_password "$JWKS_CONNS" "paced probe (10 ms between requests per connection) during the password-grant run"
  echo
  echo "- JWKS p99 while the password grant is loaded: **$(field jwks_during_password p99_ms) ms** ($JWKS_CONNS connections)"
  echo "- Server RSS: $(mib "$RSS_START") after start, $(mib "$RSS_IDLE") idle after seeding (before load)," \
    "$(mib "$RSS_END") at the end, $(mib "$RSS_AFTER") idle 15 s later ($(mib "$RSS_ANON") anonymous," \
    "$(mib "$RSS_FILE") file-backed, $THREADS_AFTER threads); peak (VmHWM) **$(mib "$RSS_PEAK")**"
  echo "- Error/panic lines in the server log (level warn): $SERVER_ERRORS"
} | tee "$LOAD_DIR/results-$RESULTS_NAME.md"
