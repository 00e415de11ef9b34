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
#        deploy latency of the same manifest, needs podman and runc)
set -euo pipefail
cd "$(dirname "$0")/../.."
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
go build -o "$TMP/runway" ./cmd/runway
go build -o "$TMP/hello" ./examples/hello
go build -o "$TMP/bench" ./bench/deploy
"$TMP/bench" -runway "$TMP/runway" -hello "$TMP/hello" -manifest examples/hello \
  -runs "${RUNS:-5}" -services "${SERVICES:-100}" -starts "${STARTS:-20}" -skip "${SKIP:-}" \
  -target "${TARGET:-local}"
