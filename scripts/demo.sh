#!/usr/bin/env bash
# The README's first command (`make demo`): start Runway on this machine
# (`runway up` in a temporary directory), deploy the bundled example service,
# then ship two new versions under steady traffic — v2 with blue_green, v3
# with canary — and print how many requests were sent, how many failed (must
# be 0) and which versions answered. Everything is stopped at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
runway=$root/bin/runway
work=$(mktemp -d -t runway-demo.XXXXXX)
up_pid=""
load_pid=""

cleanup() {
  [ -n "$load_pid" ] && kill -INT "$load_pid" 2>/dev/null && wait "$load_pid" 2>/dev/null || true
  if [ -n "$up_pid" ]; then
    kill -INT "$up_pid" 2>/dev/null || true
    wait "$up_pid" 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT

# shellcheck source=scripts/demo-lib.sh
. "$root/scripts/demo-lib.sh"

# The project: a copy of examples/hello, so the demo never edits the repository.
cp examples/hello/runway.hcl examples/hello/hello.service.hcl "$work/"
mkdir -p "$work/bin" && cp examples/hello/bin/hello "$work/bin/hello"
go build -o "$work/demoload" ./internal/tools/demoload

step "runway up (server + agent in $work/.runway)"
cd "$work"
start_up
sed -n '/Runway is up/,$p' "$work/up.log"

step "runway deploy hello --env staging --version 1.0.0 --yes --wait"
"$runway" deploy hello --env staging --version 1.0.0 --yes --wait | tail -n 2
echo "\$ curl -H 'Host: hello.staging.localhost' http://127.0.0.1:8080/"
curl -fsS -H 'Host: hello.staging.localhost' http://127.0.0.1:8080/

step "steady traffic: 4 clients through the proxy, from now until the end"
start_load hello.staging.localhost

step "runway deploy hello --env staging --version 2.0.0 (blue_green)"
"$runway" deploy hello --env staging --version 2.0.0 --yes --wait

step "switch the service to canary and deploy 3.0.0"
sed -i 's/strategy         = "blue_green"/strategy         = "canary"/' hello.service.hcl
"$runway" deploy hello --env staging --version 3.0.0 --yes --wait

step "runway status hello --env staging"
"$runway" status hello --env staging
"$runway" releases hello --env staging

report_load
step "stopping Runway (Ctrl-C of runway up)"
kill -INT "$up_pid"
wait "$up_pid" || true
up_pid=""
tail -n 1 "$work/up.log"
[ "$failed" = "0" ] || { echo "FAILED: $failed requests failed"; exit 1; }
