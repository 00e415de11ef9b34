#!/usr/bin/env bash
# Compares Runway's proxy with nginx, HAProxy and Caddy on this machine.
#
# One fixed-response Go backend (bench/proxy/backend) sits behind each load
# balancer on loopback; the same load drives each in one run:
#   1. saturation: wrk, closed loop (CONNS connections, DURATION)  -> req/s, p50, p99
#   2. half of Runway's saturation rate, open loop (bench/proxy/load, which
#      measures from the time each request was due)               -> p50, p99
# plus the proxy's CPU time per request (from /proc), the fairest figure on a
# 2-core machine where the load generator competes for the same CPUs.
#
# Pinning (2 cores): the proxy under test alone on PROXY_CPU (default 0);
# wrk/load and the backend on LOAD_CPU (default 1). Every proxy gets one
# worker: nginx worker_processes 1, HAProxy nbthread 1, Caddy and Runway
# GOMAXPROCS=1 (Go reads the CPU affinity).
#
# TLS (TLS=1, the default; TLS=0 skips it): Runway's HTTPS listener and nginx
# with the same certificate (issued by Runway's local CA, written out by
# bench/proxy/runway -leaf), wrk over https (HTTP/1.1, as wrk speaks), the
# rows runway_tls and nginx_tls.
#
# More peers, each given by path (nothing is downloaded for them):
#   KAMAL_PROXY=/path/to/kamal-proxy   a built kamal-proxy (row "kamal"): run
#       with its own --state-path, then `deploy bench --target <backend>`;
#   PEERS='name=command;name2=command2' any other proxy: each command is run
#       (through bash) with {PORT} replaced by the port it must listen on and
#       {BACKEND} by the backend's address, e.g.
#       PEERS='fasthttp=/tmp/fhproxy -listen 127.0.0.1:{PORT} -upstream {BACKEND}'
#       (bench/proxy/fasthttp, built with go build -C bench/proxy/fasthttp -o /tmp/fhproxy .)
#
# Usage: bench/proxy/run.sh            (DURATION=5s CONNS=64 ROUNDS=3 to change;
#        WAIT_IDLE=120: seconds to wait for an idle machine before each measurement;
#        RUNWAY_CPUPROFILE=/tmp/cpu.out also profiles Runway's proxy)
set -euo pipefail

cd "$(dirname "$0")/../.."
DURATION=${DURATION:-5s}
CONNS=${CONNS:-64}
ROUNDS=${ROUNDS:-3}
PROXY_CPU=${PROXY_CPU:-0}
LOAD_CPU=${LOAD_CPU:-1}
TLS=${TLS:-1}
BACKEND=127.0.0.1:19000
declare -A PORT=([direct]=19000 [runway]=19001 [nginx]=19002 [haproxy]=19003 [caddy]=19004 [kamal]=19005 [runway_tls]=19011 [nginx_tls]=19012)
ORDER=(direct runway nginx haproxy caddy)
declare -A PEER_CMD
if [ -n "${KAMAL_PROXY:-}" ]; then
  [ -x "$KAMAL_PROXY" ] || { echo "KAMAL_PROXY=$KAMAL_PROXY is not an executable" >&2; exit 2; }
  ORDER+=(kamal)
fi
if [ -n "${PEERS:-}" ]; then
  port=19020
  IFS=';' read -r -a peer_specs <<<"$PEERS"
  for spec in "${peer_specs[@]}"; do
    name=${spec%%=*}; cmd=${spec#*=}
    [[ "$name" =~ ^[a-z][a-z0-9_]*$ && "$cmd" != "$spec" ]] || { echo "PEERS: \"$spec\" is not name=command (name: lower case, digits, _)" >&2; exit 2; }
    PORT[$name]=$port; port=$((port + 1))
    cmd=${cmd//\{PORT\}/${PORT[$name]}}; cmd=${cmd//\{BACKEND\}/$BACKEND}
    PEER_CMD[$name]=$cmd
    ORDER+=("$name")
  done
fi
[ "$TLS" = 1 ] && ORDER+=(runway_tls nginx_tls)
# url NAME: what the load generators request.
url() {
  case $1 in
    *_tls) echo "https://localhost:${PORT[$1]}/" ;;
    *) echo "http://127.0.0.1:${PORT[$1]}/" ;;
  esac
}

# --- install what is missing (Debian packages) -------------------------------
missing=()
for pair in nginx:nginx haproxy:haproxy caddy:caddy wrk:wrk; do
  command -v "${pair%%:*}" >/dev/null 2>&1 || [ -x "/usr/sbin/${pair%%:*}" ] || missing+=("${pair##*:}")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing ${missing[*]}" >&2
  SUDO=; [ "$(id -u)" -eq 0 ] || SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi
NGINX=$(command -v nginx || echo /usr/sbin/nginx)
HAPROXY=$(command -v haproxy || echo /usr/sbin/haproxy)

TMP=$(mktemp -d)
PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$TMP"
}
trap cleanup EXIT

go build -o "$TMP/backend" ./bench/proxy/backend
go build -o "$TMP/runway" ./bench/proxy/runway
go build -o "$TMP/load" ./bench/proxy/load
CA=$TMP/ca/ca.crt
"$TMP/runway" -ca-dir "$TMP/ca" -leaf "$TMP" # leaf.crt, leaf.key: the certificate Runway serves, for nginx

# --- configurations ------------------------------------------------------------
mkdir -p "$TMP/nginx"
# The one location both servers (plain and TLS) proxy with.
cat > "$TMP/nginx/location.conf" <<CONF
location / {
  proxy_pass http://backend;
  proxy_http_version 1.1;
  proxy_set_header Connection "";
  proxy_set_header Host \$host;
  proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for;
  proxy_set_header X-Forwarded-Proto \$scheme;
}
CONF
cat > "$TMP/nginx.conf" <<CONF
worker_processes 1;
daemon off;
pid $TMP/nginx/nginx.pid;
error_log $TMP/nginx/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path $TMP/nginx; proxy_temp_path $TMP/nginx;
  fastcgi_temp_path $TMP/nginx; uwsgi_temp_path $TMP/nginx; scgi_temp_path $TMP/nginx;
  upstream backend { server $BACKEND; keepalive 256; }
  server {
    listen 127.0.0.1:${PORT[nginx]} backlog=4096;
    keepalive_requests 1000000;
    include $TMP/nginx/location.conf;
  }
  server {
    listen 127.0.0.1:${PORT[nginx_tls]} ssl backlog=4096;
    ssl_certificate $TMP/leaf.crt;
    ssl_certificate_key $TMP/leaf.key;
    ssl_protocols TLSv1.2 TLSv1.3;
    keepalive_requests 1000000;
    include $TMP/nginx/location.conf;
  }
}
CONF
cat > "$TMP/haproxy.cfg" <<CONF
global
  nbthread 1
  maxconn 4096
defaults
  mode http
  timeout connect 5s
  timeout client 30s
  timeout server 30s
  option http-keep-alive
  option forwardfor
frontend bench
  bind 127.0.0.1:${PORT[haproxy]}
  default_backend backend
backend backend
  http-reuse always
  server b1 $BACKEND maxconn 1000
CONF
cat > "$TMP/Caddyfile" <<CONF
{
  admin off
  auto_https off
  storage file_system $TMP/caddy
}
http://127.0.0.1:${PORT[caddy]} {
  bind 127.0.0.1
  reverse_proxy $BACKEND
}
CONF

declare -A PID
start() { # name cpu cmd...
  local name=$1 cpu=$2; shift 2
  taskset -c "$cpu" "$@" >"$TMP/$name.log" 2>&1 &
  PIDS+=($!)
  PID[$name]=$!
}
start backend "$LOAD_CPU" "$TMP/backend" -addr "$BACKEND"
start runway "$PROXY_CPU" "$TMP/runway" -listen "127.0.0.1:${PORT[runway]}" -upstream "$BACKEND" -host 127.0.0.1 \
  -tls-listen "127.0.0.1:${PORT[runway_tls]}" -ca-dir "$TMP/ca" ${RUNWAY_CPUPROFILE:+-cpuprofile "$RUNWAY_CPUPROFILE"}
start nginx "$PROXY_CPU" "$NGINX" -p "$TMP/nginx" -c "$TMP/nginx.conf"
start haproxy "$PROXY_CPU" "$HAPROXY" -db -f "$TMP/haproxy.cfg"
XDG_DATA_HOME=$TMP XDG_CONFIG_HOME=$TMP start caddy "$PROXY_CPU" caddy run --config "$TMP/Caddyfile" --adapter caddyfile
if [ -n "${KAMAL_PROXY:-}" ]; then
  mkdir -p "$TMP/kamal"
  start kamal "$PROXY_CPU" "$KAMAL_PROXY" --state-path "$TMP/kamal" run --http-port "${PORT[kamal]}" --https-port 19015
  for _ in $(seq 100); do
    "$KAMAL_PROXY" --state-path "$TMP/kamal" deploy bench --target "$BACKEND" --health-check-path / >"$TMP/kamal-deploy.log" 2>&1 && break
    sleep 0.2
  done
fi
for name in "${!PEER_CMD[@]}"; do
  start "$name" "$PROXY_CPU" bash -c "exec ${PEER_CMD[$name]}"
done

for name in "${ORDER[@]}"; do
  for _ in $(seq 100); do
    curl -fsS --cacert "$CA" -o /dev/null "$(url "$name")" 2>/dev/null && break
    sleep 0.1
  done
  log=$name; case $name in *_tls) log=${name%_tls} ;; esac
  curl -fsS --cacert "$CA" -o /dev/null "$(url "$name")" || { echo "$name did not come up:"; cat "$TMP/$log.log" "$TMP/kamal-deploy.log" 2>/dev/null; exit 1; }
done

# CPU seconds used so far by a process and its children (nginx's worker).
cpu_of() {
  local pid=$1 total=0 p
  for p in $pid $(pgrep -P "$pid" || true); do
    read -r -a f < "/proc/$p/stat"
    total=$((total + f[13] + f[14]))
  done
  echo "$total"
}
to_ms() { # wrk latency such as 512.00us, 1.20ms, 1.01s
  awk -v v="$1" 'BEGIN { n = v + 0; if (v ~ /us$/) n /= 1000; else if (v ~ /ms$/) n *= 1; else if (v ~ /s$/) n *= 1000; printf "%.3f", n }'
}
pid_of() { case $1 in direct) echo "${PID[backend]}" ;; *_tls) echo "${PID[${1%_tls}]}" ;; *) echo "${PID[$1]}" ;; esac; }

LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
declare -A RPS P50 P99 CPU HP50 HP99 OTHER
TCK=$(getconf CLK_TCK)
NCPU=$(nproc)

# busy jiffies of the whole machine (all CPUs)
busy() { awk '/^cpu / { print $2 + $3 + $4 + $7 + $8 + $9 }' /proc/stat; }
# jiffies used by this benchmark's own long-lived processes
ours() {
  local total=0 p
  for p in "${PID[@]}" $(pgrep -P "${PID[nginx]}" || true); do
    [ -r "/proc/$p/stat" ] || continue
    read -r -a f < "/proc/$p/stat"
    total=$((total + f[13] + f[14]))
  done
  echo "$total"
}
# This machine may be shared: wait (up to 2 minutes) until it is idle
# before each measurement, and report how much CPU other processes took
# during it (the "other" column; above a few % the row is disturbed).
wait_idle() {
  local b0 b1 i
  for i in $(seq "${WAIT_IDLE:-120}"); do
    b0=$(busy); sleep 1; b1=$(busy)
    [ $(( (b1 - b0) * 100 / (TCK * NCPU) )) -lt 5 ] && return
  done
  echo "warning: the machine is busy; figures will be disturbed" >&2
}
# run_load OUTFILE CMD... : runs the load generator and prints the
# percentage of the machine other processes used meanwhile.
run_load() {
  local out=$1; shift
  local b0 o0 t0 b1 o1 t1 gen
  b0=$(busy); o0=$(ours); t0=$(date +%s%N)
  bash -c '"$@" > "'"$out"'"; read -r -a f < /proc/$$/stat; echo $((f[15] + f[16])) > "'"$out"'.cpu"' _ "$@"
  b1=$(busy); o1=$(ours); t1=$(date +%s%N)
  gen=$(cat "$out.cpu")
  awk -v b=$((b1 - b0)) -v o=$((o1 - o0)) -v g="$gen" -v ns=$((t1 - t0)) -v t="$TCK" -v n="$NCPU" \
    'BEGIN { v = (b - o - g) / (ns / 1e9 * t * n) * 100; if (v < 0) v = 0; printf "%.0f", v }'
}

for name in "${ORDER[@]}"; do
  url=$(url "$name")
  taskset -c "$LOAD_CPU" wrk -t1 -c"$CONNS" -d2s "$url" >/dev/null # warm-up
  wait_idle
  pid=$(pid_of "$name")
  c0=$(cpu_of "$pid")
  OTHER[$name]=$(run_load "$TMP/wrk.out" taskset -c "$LOAD_CPU" wrk -t1 -c"$CONNS" -d"$DURATION" --latency "$url")
  c1=$(cpu_of "$pid")
  out=$(cat "$TMP/wrk.out")
  RPS[$name]=$(awk '/^Requests\/sec/ { printf "%.0f", $2 }' <<<"$out")
  P50[$name]=$(to_ms "$(awk '$1 == "50%" { print $2 }' <<<"$out")")
  P99[$name]=$(to_ms "$(awk '$1 == "99%" { print $2 }' <<<"$out")")
  reqs=$(awk '/requests in/ { print $1 }' <<<"$out")
  CPU[$name]=$(awk -v c=$((c1 - c0)) -v t="$TCK" -v n="$reqs" 'BEGIN { printf "%.1f", c / t * 1e6 / n }')
  echo "saturation  $name: ${RPS[$name]} req/s, p50 ${P50[$name]} ms, p99 ${P99[$name]} ms, ${CPU[$name]} µs CPU/request, other processes ${OTHER[$name]}%" >&2
done

# Tail latency on a shared 2-core machine is noisy: ROUNDS rounds, the
# targets interleaved, and the median of each figure is kept.
# The TLS rows run at half of Runway's TLS saturation rate.
HALF=$((RPS[runway] / 2))
HALF_TLS=$(( ${RPS[runway_tls]:-0} / 2 ))
declare -A H50S H99S HOTHER
for round in $(seq "$ROUNDS"); do
  for name in "${ORDER[@]}"; do
    wait_idle
    rate=$HALF; case $name in *_tls) rate=$HALF_TLS ;; esac
    other=$(run_load "$TMP/load.out" taskset -c "$LOAD_CPU" "$TMP/load" -url "$(url "$name")" -cacert "$CA" -rate "$rate" -duration "$DURATION" -conns 32)
    out=$(cat "$TMP/load.out")
    H50S[$name]+="$(sed -E 's/.*p50_ms=([0-9.]+).*/\1/' <<<"$out") "
    H99S[$name]+="$(sed -E 's/.*p99_ms=([0-9.]+).*/\1/' <<<"$out") "
    HOTHER[$name]+="$other "
    echo "half rate   $name (round $round): $out other=$other%" >&2
  done
done
median() { tr ' ' '\n' <<<"$1" | grep . | sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
for name in "${ORDER[@]}"; do
  HP50[$name]=$(median "${H50S[$name]}")
  HP99[$name]=$(median "${H99S[$name]}")
done

LOAD_END=$(cut -d' ' -f1-3 /proc/loadavg)
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
echo
echo "## Proxy benchmark — $(date -u '+%Y-%m-%d %H:%M') UTC — $(nproc) cores, $(uname -r), load average $LOAD_START at start, $LOAD_END at end"
echo
echo "Saturation: wrk -t1 -c$CONNS -d$DURATION (closed loop). Half rate: $HALF req/s (half of Runway's saturation) open loop (bench/proxy/load, 32 connections, median of $ROUNDS rounds of $DURATION)."
[ "$TLS" = 1 ] && echo "TLS rows (HTTP/1.1 over TLS, the same certificate): half rate $HALF_TLS req/s, half of Runway's TLS saturation; the half-rate columns of those rows are at that rate."
echo
echo "| target | req/s | p50 ms | p99 ms | proxy CPU µs/req | other % | p50 ms @ $HALF/s | p99 ms @ $HALF/s | other % (rounds) |"
echo "|---|---:|---:|---:|---:|---:|---:|---:|---|"
for name in "${ORDER[@]}"; do
  cpu=${CPU[$name]}; [ "$name" = direct ] && cpu="(backend ${CPU[$name]})"
  echo "| $name | ${RPS[$name]} | ${P50[$name]} | ${P99[$name]} | $cpu | ${OTHER[$name]} | ${HP50[$name]} | ${HP99[$name]} | ${HOTHER[$name]% } |"
done
echo
echo "\"other %\": share of the machine's CPU used by processes outside the benchmark during the measurement."
echo
echo "runway/nginx $(ratio "${RPS[runway]}" "${RPS[nginx]}") · runway/HAProxy $(ratio "${RPS[runway]}" "${RPS[haproxy]}") · runway/Caddy $(ratio "${RPS[runway]}" "${RPS[caddy]}") (throughput)"
for name in "${ORDER[@]}"; do
  case $name in direct | runway | nginx | haproxy | caddy | runway_tls | nginx_tls) ;; *) echo "runway/$name $(ratio "${RPS[runway]}" "${RPS[$name]}") (throughput)" ;; esac
done
[ "$TLS" = 1 ] && echo "TLS: runway_tls/nginx_tls $(ratio "${RPS[runway_tls]}" "${RPS[nginx_tls]}") (throughput), CPU µs/req runway ${CPU[runway_tls]}, nginx ${CPU[nginx_tls]}; p99 at $HALF_TLS/s runway ${HP99[runway_tls]} ms, nginx ${HP99[nginx_tls]} ms"
echo "p99 added over direct at half rate: runway $(awk -v a="${HP99[runway]}" -v b="${HP99[direct]}" 'BEGIN { printf "%.3f", a - b }') ms, nginx $(awk -v a="${HP99[nginx]}" -v b="${HP99[direct]}" 'BEGIN { printf "%.3f", a - b }') ms, HAProxy $(awk -v a="${HP99[haproxy]}" -v b="${HP99[direct]}" 'BEGIN { printf "%.3f", a - b }') ms, Caddy $(awk -v a="${HP99[caddy]}" -v b="${HP99[direct]}" 'BEGIN { printf "%.3f", a - b }') ms"
