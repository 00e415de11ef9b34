#!/usr/bin/env bash
# `make demo-containers`: Runway's main job on target docker. Starts a
# private podman (internal/tools/podmanenv: the tests' configuration, its own
# socket and storage, removed at the end), `runway up` on it, then deploys
# examples/containers' web service — built from its Dockerfile by the
# engine — and ships two new versions under steady traffic (rolling, then
# blue_green), printing how many requests failed (must be 0). Needs podman
# and runc (apt-get install -y podman runc).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
runway=$root/bin/runway
work=$(mktemp -d -t runway-containers.XXXXXX)
up_pid=""
load_pid=""
engine_pid=""

cleanup() {
  [ -n "$load_pid" ] && kill -INT "$load_pid" 2>/dev/null && wait "$load_pid" 2>/dev/null || true
  if [ -n "$up_pid" ]; then
    kill -INT "$up_pid" 2>/dev/null || true
    wait "$up_pid" 2>/dev/null || true
  fi
  if [ -n "$engine_pid" ]; then
    kill -TERM "$engine_pid" 2>/dev/null || true
    wait "$engine_pid" 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT

# shellcheck source=scripts/demo-lib.sh
. "$root/scripts/demo-lib.sh"
for bin in podman runc; do
  command -v "$bin" >/dev/null || { echo "$bin is not installed: apt-get install -y podman runc"; exit 1; }
done

# The project: a copy of examples/containers with the static hello binary
# its Dockerfile copies.
cp -r examples/containers/. "$work/project/" 2>/dev/null || { mkdir -p "$work/project" && cp -r examples/containers/. "$work/project/"; }
mkdir -p "$work/project/bin"
CGO_ENABLED=0 go build -o "$work/project/bin/hello" ./examples/hello
go build -o "$work/demoload" ./internal/tools/demoload
go build -o "$work/podmanenv" ./internal/tools/podmanenv

step "a private podman serving the Docker Engine API"
"$work/podmanenv" -out "$work/docker-host" >"$work/engine.log" 2>&1 &
engine_pid=$!
for _ in $(seq 1 300); do
  [ -s "$work/docker-host" ] && break
  if ! kill -0 "$engine_pid" 2>/dev/null; then cat "$work/engine.log"; echo "podman did not start"; exit 1; fi
  sleep 0.2
done
[ -s "$work/docker-host" ] || { cat "$work/engine.log"; echo "podman did not start"; exit 1; }
DOCKER_HOST=$(cat "$work/docker-host")
export DOCKER_HOST
echo "DOCKER_HOST=$DOCKER_HOST"

step "runway up (server + agent, on that engine)"
cd "$work/project"
start_up

step "runway deploy web --env development --version 1.0.0 --yes --wait (builds the image first)"
"$runway" deploy web --env development --version 1.0.0 --yes --wait
echo "\$ curl -H 'Host: web.development.localhost' http://127.0.0.1:8080/"
curl -fsS -H 'Host: web.development.localhost' http://127.0.0.1:8080/

step "steady traffic: 4 clients through the proxy, from now until the end"
start_load web.development.localhost

step "runway deploy web --env development --version 1.1.0 (rolling)"
"$runway" deploy web --env development --version 1.1.0 --yes --wait

step "switch the service to blue_green and deploy 1.2.0"
sed -i 's/strategy         = "rolling"/strategy         = "blue_green"/' web.service.hcl
"$runway" deploy web --env development --version 1.2.0 --yes --wait

step "runway status web --env development"
"$runway" status web --env development
"$runway" images web --env development

report_load
step "stopping Runway and the engine"
kill -INT "$up_pid"
wait "$up_pid" || true
up_pid=""
[ "$failed" = "0" ] || { echo "FAILED: $failed requests failed"; exit 1; }
