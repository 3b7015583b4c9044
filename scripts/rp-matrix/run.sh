#!/usr/bin/env bash
# Relying-party compatibility matrix ("Works with"): starts the real
# Gatehouse server and drives it over HTTP with unmodified third-party client
# libraries, pinned to exact versions, then prints a Markdown table.
#
#   bash scripts/rp-matrix/run.sh
#
# Backends: SQLite always; PostgreSQL too when GATEHOUSE_TEST_DATABASE_URL is
# set (a fresh database rp_matrix_<random> is created on that server with
# psql and dropped at the end).
# For each backend: a config file in a temp dir, `gatehouse serve` on a free
# 127.0.0.1 port, then the Python suite (python/: authlib, PyJWT; pytest)
# and the Node suite (node/: openid-client, jose, a browser SPA and browser
# login on the hosted pages, in Debian's chromium through playwright-core;
# node --test), then the server is stopped.
#
# Installs what it needs, once (later runs reuse it while the pins are
# unchanged): a venv with python/requirements.txt, `npm ci` in node/, and
# Debian's chromium (apt-get, as root) when /usr/bin/chromium is missing.
#
# Environment:
#   GATEHOUSE_BIN       server binary; unset: `cargo build --release --locked
#                       --bin gatehouse` and $CARGO_TARGET_DIR/release/gatehouse
#   GATEHOUSE_TEST_DATABASE_URL   postgres://… : run the PostgreSQL backend too
#   RP_MATRIX_DIR       venv and outputs            [target/rp-matrix]
#   RP_MATRIX_EXTRA     more results to show in the table, produced elsewhere
#                       (e.g. the Rust openidconnect check in the cargo test
#                       suite), not counted           [$RP_MATRIX_DIR/extra.jsonl]
#   RP_MATRIX_SUITE_TIMEOUT  seconds per suite run   [150]
#   RP_MATRIX_KEEP=1    keep the temp dir (configs, server logs) after a pass
#   CHROMIUM            browser binary               [/usr/bin/chromium]
#
# Outputs in $RP_MATRIX_DIR: results.jsonl (one line per library × check ×
# backend: library, version, check, backend, result pass|fail, detail),
# works-with.md (the table; scripts/rp-matrix/readme-table.sh puts it into
# README.md) and screenshots/ (the hosted pages at 1280x800 and 375x740,
# <backend>-<page>-<width>x<height>.png; not committed). Stdout: the table, the failures, and a last line
# `N passed, M failed`. Exit status 0 only when every check passed.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
cd "$ROOT"

OUT=${RP_MATRIX_DIR:-$ROOT/target/rp-matrix}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
EXTRA=${RP_MATRIX_EXTRA:-$OUT/extra.jsonl}
CHROMIUM=${CHROMIUM:-/usr/bin/chromium}
SUITE_TIMEOUT=${RP_MATRIX_SUITE_TIMEOUT:-150}
PG_ADMIN_URL=${GATEHOUSE_TEST_DATABASE_URL:-}
VENV=$OUT/venv
START=$SECONDS

log() { printf '=== rp-matrix: %s\n' "$*" >&2; }
die() { # the run could not happen at all
  echo "rp-matrix: $*" >&2
  REPORTED=1
  echo "0 passed, 1 failed"
  exit 1
}

# --- dependencies ------------------------------------------------------------

stamp_of() { cat "$@" | sha256sum | cut -c1-64; }

ensure_python() {
  local want
  want=$(stamp_of "$HERE/python/requirements.txt")
  if [[ -x $VENV/bin/python && $(cat "$VENV/.rp-matrix-stamp" 2>/dev/null) == "$want" ]]; then
    return
  fi
  command -v python3 >/dev/null || die "python3 is missing"
  log "installing the Python suite's pinned packages into $VENV"
  python3 -m venv --clear "$VENV" || die "python3 -m venv failed"
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --no-input \
    -r "$HERE/python/requirements.txt" </dev/null || die "pip install -r python/requirements.txt failed"
  echo "$want" >"$VENV/.rp-matrix-stamp"
}

ensure_node() {
  command -v node >/dev/null || die "node is missing (Node 20 or later)"
  node -e 'process.exit(Number(process.versions.node.split(".")[0]) >= 20 ? 0 : 1)' ||
    die "Node $(node --version) is too old: 20 or later"
  local want
  want=$(stamp_of "$HERE/node/package.json" "$HERE/node/package-lock.json")
  if [[ $(cat "$HERE/node/node_modules/.rp-matrix-stamp" 2>/dev/null) == "$want" ]]; then
    return
  fi
  log "npm ci in scripts/rp-matrix/node"
  (cd "$HERE/node" && npm ci --no-audit --no-fund --loglevel=error </dev/null >&2) || die "npm ci failed"
  echo "$want" >"$HERE/node/node_modules/.rp-matrix-stamp"
}

ensure_chromium() {
  [[ -x $CHROMIUM ]] && return
  [[ $CHROMIUM == /usr/bin/chromium ]] || die "no browser at CHROMIUM=$CHROMIUM"
  [[ $(id -u) == 0 ]] || die "chromium is missing: apt-get install -y chromium (as root)"
  log "installing Debian's chromium"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq </dev/null >&2 || die "apt-get update failed"
  apt-get install -y -qq chromium </dev/null >/dev/null || die "apt-get install chromium failed"
  [[ -x $CHROMIUM ]] || die "chromium installed but $CHROMIUM is missing"
}

ensure_python
ensure_node
ensure_chromium
command -v curl >/dev/null || die "curl is missing"
if [[ -n $PG_ADMIN_URL ]]; then command -v psql >/dev/null || die "psql is missing (needed for PostgreSQL)"; fi

# --- the server binary ---------------------------------------------------------

if [[ -n ${GATEHOUSE_BIN:-} ]]; then
  BIN=$GATEHOUSE_BIN
  [[ $BIN == /* ]] || BIN=$ROOT/$BIN
else
  log "cargo build --release --locked --bin gatehouse"
  cargo build --release --locked --bin gatehouse >&2 || die "cargo build failed"
  target_dir=${CARGO_TARGET_DIR:-target}
  [[ $target_dir == /* ]] || target_dir=$ROOT/$target_dir
  BIN=$target_dir/release/gatehouse
fi
[[ -x $BIN ]] || die "no server binary at $BIN (set GATEHOUSE_BIN)"
log "server: $BIN ($("$BIN" --version 2>/dev/null || echo 'version unknown'))"
DEPS_DONE=$SECONDS

# --- run state and cleanup ---------------------------------------------------------

WORK=$(mktemp -d "${TMPDIR:-/tmp}/rp-matrix.XXXXXX")
SCREENSHOTS=$OUT/screenshots # this run's only: older ones are removed
rm -rf "$SCREENSHOTS"
mkdir -p "$SCREENSHOTS"
SERVER_PID=
PG_DB=
KEEP_WORK=${RP_MATRIX_KEEP:-}
REPORTED= # set once the summary line is printed: nothing may follow it

# The server and the suites see none of the caller's GATEHOUSE_* variables:
# the config file written below is the whole configuration.
CLEAN_ENV=(env)
while IFS= read -r name; do CLEAN_ENV+=(-u "$name"); done < <(compgen -e | grep '^GATEHOUSE_' || true)

stop_server() {
  if [[ -n $SERVER_PID ]] && kill -0 "$SERVER_PID" 2>/dev/null; then
    kill "$SERVER_PID" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
  fi
  SERVER_PID=
}

drop_database() {
  [[ -n $PG_DB ]] || return 0
  psql "$PG_ADMIN_URL" -v ON_ERROR_STOP=1 -qAtc "DROP DATABASE IF EXISTS \"$PG_DB\" WITH (FORCE)" >/dev/null 2>&1 ||
    echo "rp-matrix: could not drop database $PG_DB" >&2
  PG_DB=
}

cleanup() {
  local rc=$?
  stop_server
  drop_database
  if [[ $rc == 0 && -z $KEEP_WORK ]]; then
    rm -rf "$WORK"
  elif [[ -z $REPORTED ]]; then
    echo "rp-matrix: configs and server logs kept in $WORK" >&2
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}
toml_str() { python3 -c 'import json, sys; print(json.dumps(sys.argv[1]))' "$1"; }

# A result line written by the harness itself (server or suite broke).
harness_fail() { # <file> <backend> <check> <detail>
  python3 -c 'import json, sys
print(json.dumps({"library": "harness", "version": "-", "check": sys.argv[2], "backend": sys.argv[1],
                  "result": "fail", "detail": sys.argv[3]}))' "$2" "$3" "$4" >>"$1"
  KEEP_WORK=1
}
count_results() { # <file> <pass|fail|any>
  [[ -f $1 ]] || { echo 0; return; }
  if [[ $2 == any ]]; then grep -c . "$1" || true; else grep -c "\"result\": *\"$2\"" "$1" || true; fi
}

# After a suite: a non-zero exit with no failure recorded, or no result at
# all, is a failure of its own (a crash, a timeout, an import error).
judge_suite() { # <results file> <backend> <suite name> <exit code>
  local file=$1 backend=$2 suite=$3 rc=$4
  local n_any n_fail
  n_any=$(count_results "$file" any)
  n_fail=$(count_results "$file" fail)
  if [[ $rc == 124 || $rc == 137 ]]; then
    harness_fail "$file" "$backend" "$suite" "timed out after ${SUITE_TIMEOUT}s ($n_any results recorded)"
  elif [[ $rc != 0 && $n_fail == 0 ]]; then
    harness_fail "$file" "$backend" "$suite" "exited $rc without recording a failure (see its output)"
  elif [[ $n_any == 0 ]]; then
    harness_fail "$file" "$backend" "$suite" "recorded no results"
  fi
}

plain_log() { sed 's/\x1b\[[0-9;]*m//g' "$1"; } # the text log has colours

server_log_tail() {
  echo "--- $1 server log (last 30 lines) ---" >&2
  plain_log "$2" | tail -n 30 >&2 || true
}

# --- one backend -------------------------------------------------------------------

run_backend() { # <backend label> <database url>
  local backend=$1 db_url=$2
  local dir=$WORK/$backend
  mkdir -p "$dir/run"
  local port spa_port
  port=$(free_port)
  spa_port=$(free_port)
  while [[ $spa_port == "$port" ]]; do spa_port=$(free_port); done
  local issuer=http://127.0.0.1:$port
  local config=$dir/gatehouse.toml
  local results_py=$dir/python.jsonl results_node=$dir/node.jsonl

  cat >"$config" <<EOF
# Relying-party matrix: generated by scripts/rp-matrix/run.sh
[server]
bind = $(toml_str "127.0.0.1:$port")
public_url = $(toml_str "$issuer")
cors_origins = [$(toml_str "http://127.0.0.1:$spa_port")]

[database]
url = $(toml_str "$db_url")

[accounts]
require_activation = false

[password_hash]
memory_kib = 8192
iterations = 1
parallelism = 1

[rate_limits]
login_per_ip = "1000/1m"
register_per_ip = "1000/1m"
unauthenticated_per_ip = "100000/1m"

# A public client: the SPA, the password-grant RPs, and browser login
# (openid-client, Chromium). A loopback redirect URI matches on any port.
[[clients]]
id = "spa"
grant_types = ["password", "refresh_token", "authorization_code"]
redirect_uris = ["http://127.0.0.1/callback"]
post_logout_redirect_uris = ["http://127.0.0.1/logged-out"]

# A confidential client: the resource server that introspects tokens.
[[clients]]
id = "rs"
secret = "rs-secret-123456"
grant_types = ["password", "refresh_token"]

# Access tokens with typ "JWT", for resource servers that refuse at+jwt;
# also the second application of the browser's single sign-on.
[[clients]]
id = "spring"
grant_types = ["password", "refresh_token", "authorization_code"]
redirect_uris = ["http://127.0.0.1/callback"]
access_token_typ = "JWT"

# A confidential web app that logs users in through the browser (authlib):
# no grant_types, so the default (authorization_code, refresh_token).
[[clients]]
id = "webapp"
secret = "webapp-secret-123456"
redirect_uris = ["http://127.0.0.1/callback"]

# Public clients whose access and ID tokens are signed with ES256 (P-256)
# and EdDSA (Ed25519) instead of RS256, verified from the same JWKS.
[[clients]]
id = "es"
grant_types = ["password", "refresh_token"]
signing_alg = "ES256"

[[clients]]
id = "ed"
grant_types = ["password", "refresh_token"]
signing_alg = "EdDSA"
EOF

  log "$backend: starting the server on $issuer"
  (cd "$dir/run" && exec "${CLEAN_ENV[@]}" "$BIN" serve --config "$config") >"$dir/server.log" 2>&1 </dev/null &
  SERVER_PID=$!
  local ready=
  for _ in $(seq 300); do # up to 60 s: migrations and the first signing keys
    if curl -fs -o /dev/null --max-time 2 "$issuer/readyz"; then ready=1; break; fi
    kill -0 "$SERVER_PID" 2>/dev/null || break
    sleep 0.2
  done
  if [[ -z $ready ]]; then
    server_log_tail "$backend" "$dir/server.log"
    harness_fail "$results_py" "$backend" "server" "the server did not become ready on $issuer/readyz"
    stop_server
    return
  fi

  local suite_env=(
    "${CLEAN_ENV[@]}"
    RP_ISSUER="$issuer" RP_BACKEND="$backend" RP_SPA_PORT="$spa_port"
    RP_GATEHOUSE_BIN="$BIN" RP_GATEHOUSE_CONFIG="$config" CHROMIUM="$CHROMIUM"
    RP_SCREENSHOTS="$SCREENSHOTS" PYTHONDONTWRITEBYTECODE=1
  )
  local rc=0
  log "$backend: Python suite (authlib, PyJWT)"
  (cd "$HERE/python" && exec "${suite_env[@]}" RP_RESULTS="$results_py" \
    timeout --kill-after=10 "$SUITE_TIMEOUT" "$VENV/bin/python" -m pytest "$HERE/python" </dev/null) >&2 || rc=$?
  judge_suite "$results_py" "$backend" "Python suite" "$rc"

  rc=0
  log "$backend: Node suite (openid-client, jose, Chromium SPA, Chromium login)"
  (cd "$HERE/node" && exec "${suite_env[@]}" RP_RESULTS="$results_node" \
    timeout --kill-after=10 "$SUITE_TIMEOUT" node --test --test-reporter=spec test/*.test.mjs </dev/null) >&2 || rc=$?
  judge_suite "$results_node" "$backend" "Node suite" "$rc"

  if ! kill -0 "$SERVER_PID" 2>/dev/null; then
    harness_fail "$results_node" "$backend" "server" "the server exited during the run"
    server_log_tail "$backend" "$dir/server.log"
  else
    # Warnings and errors are worth a look even when every check passed
    # (the one about mail going to the log is expected here).
    local noted
    noted=$(plain_log "$dir/server.log" | grep -E ' (ERROR|WARN) |panicked' | grep -v 'mail.transport = "log"' | tail -n 20 || true)
    if [[ -n $noted ]]; then
      echo "--- $backend server log: warnings and errors ---" >&2
      echo "$noted" >&2
    fi
  fi
  stop_server
}

run_backend sqlite "sqlite://$WORK/sqlite/gatehouse.db?mode=rwc"

if [[ -n $PG_ADMIN_URL ]]; then
  PG_DB=rp_matrix_$(python3 -c 'import secrets; print(secrets.token_hex(6))')
  if psql "$PG_ADMIN_URL" -v ON_ERROR_STOP=1 -qAtc "CREATE DATABASE \"$PG_DB\"" >/dev/null; then
    pg_url=$(python3 -c 'import sys, urllib.parse as u
p = u.urlsplit(sys.argv[1]); print(u.urlunsplit(p._replace(path="/" + sys.argv[2])))' "$PG_ADMIN_URL" "$PG_DB")
    run_backend postgres "$pg_url"
  else
    PG_DB=
    mkdir -p "$WORK/postgres"
    harness_fail "$WORK/postgres/python.jsonl" postgres "server" "could not create a database with psql"
  fi
  drop_database
else
  log "GATEHOUSE_TEST_DATABASE_URL is not set: SQLite only"
fi

# --- the table ------------------------------------------------------------------------

cat "$WORK"/*/*.jsonl >"$OUT/results.jsonl" 2>/dev/null || : >"$OUT/results.jsonl"
log "checks took $((SECONDS - DEPS_DONE)) s (whole run $((SECONDS - START)) s); results in $OUT/results.jsonl"
if [[ -n $KEEP_WORK || $(count_results "$OUT/results.jsonl" fail) != 0 ]]; then
  KEEP_WORK=1
  log "configs and server logs kept in $WORK"
fi
REPORTED=1
python3 "$HERE/report.py" --out "$OUT/works-with.md" --extra "$EXTRA" "$OUT/results.jsonl"
