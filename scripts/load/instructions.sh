#!/usr/bin/env bash
# Instructions per answer under callgrind: a measure that, unlike CPU time,
# does not move with the host's speed. Starts the server under valgrind on a
# temp SQLite file, sends N requests of each scenario one at a time, and
# prints a Markdown table. See README.md here.
#
#   apt-get install -y valgrind      # once
#   scripts/load/instructions.sh [N]  # default 300 per scenario
#
# Environment: GATEHOUSE_BIN (default target/release/gatehouse), PORT (18095),
# SIGNING_ALG (ES256 or EdDSA: a config file with one client signing with
# it; default RS256), DUMPS (a directory to keep the callgrind dumps in, one
# per scenario, for callgrind_annotate).
set -euo pipefail
CALLER=$PWD
cd "$(dirname "$0")/../.."
N=${1:-300}
# GATEHOUSE_BIN and DUMPS as the caller named them, from where it ran.
BIN=${GATEHOUSE_BIN:+$(cd "$CALLER" && realpath -m "$GATEHOUSE_BIN")}
BIN=${BIN:-$PWD/target/release/gatehouse}
PORT=${PORT:-18095}
DUMPS=${DUMPS:+$(cd "$CALLER" && realpath -m "$DUMPS")}
SIGNING_ALG=${SIGNING_ALG:-}
case $SIGNING_ALG in '' | RS256 | ES256 | EdDSA) ;; *) echo "SIGNING_ALG: RS256, ES256 or EdDSA" >&2; exit 2 ;; esac
command -v valgrind >/dev/null || { echo "error: valgrind not found (apt-get install -y valgrind)" >&2; exit 1; }
[[ -x $BIN ]] || { echo "error: no server binary at $BIN" >&2; exit 1; }
if curl -s -o /dev/null "http://127.0.0.1:$PORT/healthz"; then
  echo "error: something already listens on 127.0.0.1:$PORT" >&2; exit 1
fi
LOAD_DIR=$PWD/scripts/load
WORK=$(mktemp -d)
VPID=
cleanup() { [[ -z $VPID ]] || kill "$VPID" 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$WORK"; }
trap cleanup EXIT
# shellcheck source=scripts/load/server-env.sh
source "$LOAD_DIR/server-env.sh"
server_env "$PORT" "sqlite://$WORK/count.db?mode=rwc" "$WORK"
export GATEHOUSE_PASSWORD_HASH__MEMORY_KIB=8 GATEHOUSE_PASSWORD_HASH__ITERATIONS=1
# From $WORK, where there is no config/gatehouse.toml to read.
cd "$WORK"
valgrind --tool=callgrind --callgrind-out-file="$WORK/callgrind.out.%p" "$BIN" serve > "$WORK/server.log" 2>&1 &
VPID=$!
for _ in $(seq 180); do
  curl -sf "http://127.0.0.1:$PORT/healthz" >/dev/null && break
  kill -0 "$VPID" 2>/dev/null || { cat "$WORK/server.log" >&2; exit 1; }
  sleep 1
done
curl -sf "http://127.0.0.1:$PORT/healthz" >/dev/null || { echo "error: not ready after 180 s" >&2; cat "$WORK/server.log" >&2; exit 1; }
echo "# Instructions per answer: $("$BIN" --version), $(date -u +%Y-%m-%dT%H:%MZ)"
echo
python3 "$LOAD_DIR/instructions.py" "http://127.0.0.1:$PORT" "$VPID" "$N" "$WORK"
[[ -z $DUMPS ]] || { mkdir -p "$DUMPS" && cp "$WORK"/*.callgrind "$DUMPS"/; }
