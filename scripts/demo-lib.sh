# Shared by scripts/demo.sh and scripts/demo-containers.sh (sourced, not run):
# the step banner, `runway up` in the demo's work dir, and the traffic report.
# The caller sets runway (the binary), work (the demo's directory) and
# up_pid="" / load_pid="" (its cleanup trap stops them).

if [ -t 1 ] && [ -z "${NO_COLOR:-}" ]; then
  step() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }
else
  step() { printf '\n==> %s\n' "$*"; }
fi

# start_up runs `runway up` with its data in $work/.runway, waits until it is
# up, and exports RUNWAY_SERVER and RUNWAY_TOKEN for the commands that follow.
start_up() {
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
  export RUNWAY_SERVER=http://127.0.0.1:7040
  RUNWAY_TOKEN=$(cat "$work/.runway/server/admin.token")
  export RUNWAY_TOKEN
}

# start_load sends steady traffic for host through the proxy until
# report_load.
start_load() {
  "$work/demoload" -host "$1" -c 4 -interval 5ms -out "$work/load.json" >"$work/load.txt" 2>&1 &
  load_pid=$!
}

# report_load stops the traffic and prints what it counted; it sets failed.
report_load() {
  kill -INT "$load_pid"
  wait "$load_pid" || true
  load_pid=""
  step "traffic during the releases"
  cat "$work/load.txt"
  failed=$(sed -n 's/.*"failed":\([0-9]*\).*/\1/p' "$work/load.json")
  sent=$(sed -n 's/.*"sent":\([0-9]*\).*/\1/p' "$work/load.json")
  echo "requests sent: $sent"
  echo "failed: $failed"
}
