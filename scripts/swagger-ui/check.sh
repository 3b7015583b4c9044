#!/usr/bin/env bash
# Swagger UI check: starts a local Gatehouse (port 18081, sqlite in a temp
# dir, configured by environment only), registers a user through the API,
# then drives /docs in headless Chromium: Authorize (OAuth2 password flow) →
# GET /account/me "Try it out" → Execute must show 200 and the email.
#
#   scripts/swagger-ui/check.sh
#
# Needs: chromium (apt-get install -y chromium), node + npm; installs
# playwright-core from package-lock.json when node_modules is missing.
# Environment: GATEHOUSE_BIN (default target/release/gatehouse), PORT (18081).
# Screenshot: scripts/swagger-ui/last-run.png.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
PORT=${PORT:-18081}
BASE="http://127.0.0.1:$PORT"
EMAIL="swagger.check@example.com"
PASSWORD='vivid-Meadow-lantern-42'

BIN=${GATEHOUSE_BIN:-target/release/gatehouse}
[[ $BIN = /* ]] || BIN="$ROOT/$BIN"
[[ -x $BIN ]] || { echo "error: no server binary at $BIN (set GATEHOUSE_BIN)" >&2; exit 1; }
[[ -x ${CHROMIUM:-/usr/bin/chromium} ]] || { echo "error: no chromium (apt-get install -y chromium)" >&2; exit 1; }
if [[ ! -d $HERE/node_modules/playwright-core ]]; then
  (cd "$HERE" && npm ci --no-audit --no-fund --silent)
fi

WORK=$(mktemp -d /tmp/gatehouse-swagger.XXXXXX)
SERVER_PID=
cleanup() {
  local rc=$?
  if [[ -n $SERVER_PID ]] && kill -0 "$SERVER_PID" 2>/dev/null; then
    kill "$SERVER_PID" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$SERVER_PID" 2>/dev/null || true
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

if curl -s -o /dev/null "$BASE/healthz"; then
  echo "error: something already listens on 127.0.0.1:$PORT" >&2; exit 1
fi
(
  unset GATEHOUSE_CONFIG
  cd "$WORK" # no config/gatehouse.toml here: environment only
  export GATEHOUSE_SERVER__BIND="127.0.0.1:$PORT" \
    GATEHOUSE_SERVER__PUBLIC_URL="$BASE" \
    GATEHOUSE_DATABASE__URL="sqlite://$WORK/gh.db?mode=rwc" \
    GATEHOUSE_ACCOUNTS__REQUIRE_ACTIVATION=false \
    GATEHOUSE_LOG__LEVEL=warn
  exec "$BIN" serve
) >"$WORK/server.log" 2>&1 &
SERVER_PID=$!
for i in $(seq 1 120); do
  curl -fs -o /dev/null "$BASE/healthz" && break
  kill -0 "$SERVER_PID" 2>/dev/null || { echo "error: server exited" >&2; exit 1; }
  (( i == 120 )) && { echo "error: /healthz not ready after 60 s" >&2; exit 1; }
  sleep 0.5
done

code=$(curl -sS -o "$WORK/register.json" -w '%{http_code}' -H 'Content-Type: application/json' \
  -d "{\"email\":\"$EMAIL\",\"password\":\"$PASSWORD\"}" "$BASE/account/register")
if [[ $code != 201 ]]; then
  echo "error: POST /account/register answered $code: $(cat "$WORK/register.json")" >&2
  exit 1
fi

node "$HERE/check.mjs" "$BASE" "$EMAIL" "$PASSWORD"
