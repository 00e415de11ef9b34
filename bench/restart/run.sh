#!/usr/bin/env bash
# Measures what an agent restart under `runway up` costs the traffic behind
# it: requests failed (refused, other transport errors, non-200) per
# graceful (SIGTERM) and per kill -9 restart of the agent, under steady load
# through the proxy. Builds runway, examples/hello and bench/restart, then
# prints a Markdown table.
#
# Usage: bench/restart/run.sh     (ROUNDS=5 CLIENTS=4 INTERVAL=5ms KEEPALIVE=true to change;
#        each round takes about 11 s: up's restart delay resets after 10 s up)
set -euo pipefail
cd "$(dirname "$0")/../.."
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
go build -o "$TMP/runway" ./cmd/runway
go build -o "$TMP/hello" ./examples/hello
go build -o "$TMP/bench" ./bench/restart
"$TMP/bench" -runway "$TMP/runway" -hello "$TMP/hello" \
  -rounds "${ROUNDS:-5}" -clients "${CLIENTS:-4}" -interval "${INTERVAL:-5ms}" -keepalive="${KEEPALIVE:-true}"
