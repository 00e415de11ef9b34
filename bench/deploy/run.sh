#!/usr/bin/env bash
# Measures Runway's releases on this machine (issue 5's benchmarks):
#   - app start of examples/hello (exec → /healthz 200);
#   - deploy latency of a blue_green release of 3 hello instances, from exec of
#     `runway deploy` to 100 % of requests answered by the new version (probes
#     keep requests flowing through the proxy), against the goal
#     "app start + 2 health intervals + 0.5 s";
#   - engine throughput: SERVICES services (desired 1) released concurrently
#     through a real server and agent (`runway up`), then updated.
# Builds runway, examples/hello and bench/deploy, then prints a Markdown table.
#
# Usage: bench/deploy/run.sh     (RUNS=5 SERVICES=100 STARTS=20 to change;
#        SKIP=throughput or SKIP=latency to run one part;
#        TARGET=docker for containers on a private podman: app start and
#        deploy latency of the same manifest, needs podman and runc;
#        PG=1 to put the store on a throwaway PostgreSQL (Debian's server
#        binaries), REPLICAS=2 to run that many servers on it)
set -euo pipefail
cd "$(dirname "$0")/../.."
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
go build -o "$TMP/runway" ./cmd/runway
go build -o "$TMP/hello" ./examples/hello
go build -o "$TMP/bench" ./bench/deploy
store=()
if [ -n "${PG:-}" ]; then
  PGBIN=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
  mkdir "$TMP/pg"
  as=()
  # initdb refuses root: the postgres user runs it, and must reach $TMP/pg.
  if [ "$(id -u)" = 0 ]; then chmod 0711 "$TMP"; chown postgres "$TMP/pg"; as=(runuser -u postgres --); fi
  "${as[@]}" "$PGBIN/initdb" -D "$TMP/pg/data" -U postgres --auth=trust --no-sync >/dev/null
  PGPORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  "${as[@]}" "$PGBIN/pg_ctl" -D "$TMP/pg/data" -l "$TMP/pg/log" -w \
    -o "-c listen_addresses=127.0.0.1 -p $PGPORT -c unix_socket_directories=$TMP/pg" start >/dev/null
  trap '"${as[@]}" "$PGBIN/pg_ctl" -D "$TMP/pg/data" -m fast -w stop >/dev/null; rm -rf "$TMP"' EXIT
  "${as[@]}" "$PGBIN/createdb" -h 127.0.0.1 -p "$PGPORT" -U postgres bench
  store=(-store "postgres://postgres@127.0.0.1:$PGPORT/bench?sslmode=disable" -replicas "${REPLICAS:-1}")
fi
"$TMP/bench" -runway "$TMP/runway" -hello "$TMP/hello" -manifest examples/hello \
  -runs "${RUNS:-5}" -services "${SERVICES:-100}" -starts "${STARTS:-20}" -skip "${SKIP:-}" \
  -target "${TARGET:-local}" "${store[@]}"
