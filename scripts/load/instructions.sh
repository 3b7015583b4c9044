#!/usr/bin/env bash
# Instructions per answer under callgrind: a measure that, unlike CPU time,
# does not move with the host's speed. Starts the server under valgrind on a
# temp SQLite file (or DATABASE_URL), sends N requests of each scenario one
# at a time, and prints a Markdown table. See README.md here.
#
#   apt-get install -y valgrind      # once
#   scripts/load/instructions.sh [N]  # default 300 per scenario
#
# Environment: GATEHOUSE_BIN (default target/release/gatehouse), PORT (18095),
# DATABASE_URL (default: a temp SQLite file), SIGNING_ALG (ES256 or EdDSA:
# a config file with one client signing with it; default RS256), DUMPS (a
# directory to keep the callgrind dumps in, one per scenario, for
# callgrind_annotate).
set -euo pipefail
cd "$(dirname "$0")/../.."
N=${1:-300}
BIN=${GATEHOUSE_BIN:-target/release/gatehouse}
PORT=${PORT:-18095}
command -v valgrind >/dev/null || { echo "error: valgrind not found (apt-get install -y valgrind)" >&2; exit 1; }
[[ -x $BIN ]] || { echo "error: no server binary at $BIN" >&2; exit 1; }
WORK=$(mktemp -d)
VPID=
cleanup() { [[ -z $VPID ]] || kill "$VPID" 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$WORK"; }
trap cleanup EXIT
# shellcheck source=scripts/load/server-env.sh
source scripts/load/server-env.sh
server_env "$PORT" "${DATABASE_URL:-sqlite://$WORK/count.db?mode=rwc}" "$WORK"
export GATEHOUSE_PASSWORD_HASH__MEMORY_KIB=8 GATEHOUSE_PASSWORD_HASH__ITERATIONS=1
valgrind --tool=callgrind --callgrind-out-file="$WORK/callgrind.out.%p" "$BIN" serve > "$WORK/server.log" 2>&1 &
VPID=$!
for _ in $(seq 120); do
  curl -sf "http://127.0.0.1:$PORT/healthz" >/dev/null && break
  kill -0 "$VPID" 2>/dev/null || { cat "$WORK/server.log" >&2; exit 1; }
  sleep 1
done
echo "# Instructions per answer: $("$BIN" --version), $(date -u +%Y-%m-%dT%H:%MZ)"
echo
python3 scripts/load/instructions.py "http://127.0.0.1:$PORT" "$VPID" "$N" "$WORK"
[[ -z ${DUMPS:-} ]] || { mkdir -p "$DUMPS" && cp "$WORK"/*.callgrind "$DUMPS"/; }
