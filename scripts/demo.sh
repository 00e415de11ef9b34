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

if [ -t 1 ] && [ -z "${NO_COLOR:-}" ]; then
  step() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }
else
  step() { printf '\n==> %s\n' "$*"; }
fi

# The project: a copy of examples/hello, so the demo never edits the repository.
cp examples/hello/runway.hcl examples/hello/hello.service.hcl "$work/"
mkdir -p "$work/bin" && cp examples/hello/bin/hello "$work/bin/hello"
go build -o "$work/demoload" ./internal/tools/demoload

step "runway up (server + agent in $work/.runway)"
cd "$work"
# runway up records its context in the user's config dir: the demo's own.
export XDG_CONFIG_HOME="$work/config"
"$runway" up --data-dir "$work/.runway" >"$work/up.log" 2>&1 &
up_pid=$!
for _ in $(seq 1 100); do
  grep -q "Runway is up" "$work/up.log" 2>/dev/null && break
  if ! kill -0 "$up_pid" 2>/dev/null; then cat "$work/up.log"; echo "runway up failed"; exit 1; fi
  sleep 0.2
done
grep -q "Runway is up" "$work/up.log" || { cat "$work/up.log"; echo "runway up did not start"; exit 1; }
sed -n '/Runway is up/,$p' "$work/up.log"
export RUNWAY_SERVER=http://127.0.0.1:7040
RUNWAY_TOKEN=$(cat "$work/.runway/server/admin.token")
export RUNWAY_TOKEN

step "runway deploy hello --env staging --version 1.0.0 --yes --wait"
"$runway" deploy hello --env staging --version 1.0.0 --yes --wait | tail -n 2
echo "\$ curl -H 'Host: hello.staging.localhost' http://127.0.0.1:8080/"
curl -fsS -H 'Host: hello.staging.localhost' http://127.0.0.1:8080/

step "steady traffic: 4 clients through the proxy, from now until the end"
"$work/demoload" -host hello.staging.localhost -c 4 -interval 5ms -out "$work/load.json" >"$work/load.txt" 2>&1 &
load_pid=$!

step "runway deploy hello --env staging --version 2.0.0 (blue_green)"
"$runway" deploy hello --env staging --version 2.0.0 --yes --wait

step "switch the service to canary and deploy 3.0.0"
sed -i 's/strategy         = "blue_green"/strategy         = "canary"/' hello.service.hcl
"$runway" deploy hello --env staging --version 3.0.0 --yes --wait

step "runway status hello --env staging"
"$runway" status hello --env staging
"$runway" releases hello --env staging

kill -INT "$load_pid"
wait "$load_pid" || true
load_pid=""
step "traffic during the releases"
cat "$work/load.txt"
failed=$(sed -n 's/.*"failed":\([0-9]*\).*/\1/p' "$work/load.json")
sent=$(sed -n 's/.*"sent":\([0-9]*\).*/\1/p' "$work/load.json")
echo "requests sent: $sent"
echo "failed: $failed"
step "stopping Runway (Ctrl-C of runway up)"
kill -INT "$up_pid"
wait "$up_pid" || true
up_pid=""
tail -n 1 "$work/up.log"
[ "$failed" = "0" ] || { echo "FAILED: $failed requests failed"; exit 1; }
