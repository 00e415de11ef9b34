#!/usr/bin/env bash
# Opt-in: target kubernetes on a REAL node of this machine. It changes the
# host, so it is not part of `make test` or CI:
#
#   - installs containerd, runc and containernetworking-plugins (Debian);
#   - builds the kubelet beside the control plane (scripts/k8s-build.sh --node);
#   - runs the tests with RUNWAY_K8S_NODE=1: internal/k8snode joins a kubelet
#     and containerd (state in /var/lib/runway-k8snode and /run/runway-k8snode)
#     to an internal/k8stest control plane, pods on the bridge runway0
#     (10.244.0.0/24), a DNAT chain RUNWAY-K8SNODE in the nat table sending
#     the pods' 10.96.0.1:443 to the API server on loopback; the e2e test
#     drives releases through the real server and engine with traffic
#     through the in-cluster proxy's pods;
#   - cleans up, also what a killed run left: every container (the kubepods
#     cgroups' processes, containerd's shims), mounts, the cni-* network
#     namespaces, the bridge, the chain, the cgroups and the state dirs.
#
# Usage: scripts/e2e-kubernetes-node.sh            install, build, test, clean up
#        scripts/e2e-kubernetes-node.sh --cleanup  clean up only
#        RUN='TestKubernetesNode/rolling' scripts/e2e-kubernetes-node.sh
set -euo pipefail
cd "$(dirname "$0")/.."

STATE=/var/lib/runway-k8snode
RUNDIR=/run/runway-k8snode
BRIDGE=runway0
CHAIN=RUNWAY-K8SNODE

[ "$(id -u)" = 0 ] || { echo "e2e-kubernetes-node: needs root (containerd, kubelet, iptables)" >&2; exit 1; }

cleanup() {
  # Best effort, every step: nothing here may stop the rest.
  set +e +o pipefail
  # Every container process of the node lives in the kubepods cgroups.
  for cg in /sys/fs/cgroup/pids/kubepods /sys/fs/cgroup/memory/kubepods /sys/fs/cgroup/cpu/kubepods; do
    [ -d "$cg" ] || continue
    find "$cg" -name cgroup.procs -exec cat {} + 2>/dev/null | xargs -r kill -9 2>/dev/null || true
  done
  # containerd, its shims and the kubelet of this node (their command lines
  # name the node's own socket and directories, nothing else does).
  for p in /proc/[0-9]*; do
    cmd=$( (tr "\0" " " < "$p/cmdline") 2>/dev/null) || continue
    case "$cmd" in
      *"$RUNDIR/containerd.sock"*|*"$STATE/run/containerd.toml"*|*"$STATE/run/kubelet.yaml"*) kill -9 "${p#/proc/}" 2>/dev/null || true ;;
    esac
  done
  sleep 0.5
  awk -v a="$STATE" -v b="$RUNDIR" '$2 ~ "^"a || $2 ~ "^"b {print $2}' /proc/mounts | sort -r | while read -r m; do
    umount -l "$m" 2>/dev/null || true
  done
  for ns in $(ip netns list 2>/dev/null | awk '/^cni-/{print $1}'); do ip netns delete "$ns" 2>/dev/null || true; done
  ip link show "$BRIDGE" >/dev/null 2>&1 && ip link delete "$BRIDGE"
  while iptables -t nat -D PREROUTING -i "$BRIDGE" -j "$CHAIN" 2>/dev/null; do :; done
  iptables -t nat -F "$CHAIN" 2>/dev/null && iptables -t nat -X "$CHAIN" 2>/dev/null || true
  # The KUBE-* chains of the kubelet (KUBE-FIREWALL, KUBE-KUBELET-CANARY)
  # and of kube-proxy: the jumps to them, then the chains. No other
  # software here names its chains KUBE-.
  for ipt in iptables ip6tables; do
    for table in filter nat mangle; do
      $ipt -t "$table" -S 2>/dev/null | grep -E '^-A [A-Z]+ .*-j KUBE-' | grep -vE '^-A KUBE-' | while read -r rule; do
        eval "$ipt -t $table ${rule/-A/-D}" 2>/dev/null
      done
      for c in $($ipt -t "$table" -S 2>/dev/null | awk '$1=="-N" && $2 ~ /^KUBE-/ {print $2}'); do $ipt -t "$table" -F "$c" 2>/dev/null || true; done
      for c in $($ipt -t "$table" -S 2>/dev/null | awk '$1=="-N" && $2 ~ /^KUBE-/ {print $2}'); do $ipt -t "$table" -X "$c" 2>/dev/null || true; done
    done
  done
  for cg in /sys/fs/cgroup/*/kubepods; do
    [ -d "$cg" ] && find "$cg" -depth -type d -exec rmdir {} \; 2>/dev/null || true
  done
  rm -rf "$STATE" "$RUNDIR" /var/lib/kubelet/device-plugins
  rmdir /var/lib/kubelet 2>/dev/null
  set -e -o pipefail
}

if [ "${1:-}" = "--cleanup" ]; then cleanup; echo "e2e-kubernetes-node: cleaned up"; exit 0; fi

need=""
for p in containerd:/usr/bin/containerd runc:/usr/sbin/runc containernetworking-plugins:/usr/lib/cni/bridge; do
  [ -e "${p#*:}" ] || need="$need ${p%%:*}"
done
if [ -n "$need" ]; then
  echo "e2e-kubernetes-node: apt-get install$need" >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y $need >/dev/null
fi
# Debian's package starts containerd only under systemd; this node runs its
# own (its own config, socket and state), so a system one may stay.
scripts/k8s-build.sh --node >/dev/null

cleanup
trap cleanup EXIT
log=${LOG:-${TMPDIR:-/tmp}/runway-e2e-kubernetes-node.log}
mkdir -p "$(dirname "$log")"
RUN=${RUN:-TestNodeRunsHello|TestKubernetesNode} # also TestKubernetesNodeService
set +e
RUNWAY_K8S_NODE=1 RUNWAY_K8S_REQUIRED=1 go test -p 1 -count=1 -v -timeout 40m -run "$RUN" ./internal/k8snode/ ./internal/server/ 2>&1 | tee "$log" |
  grep -E '^ *(=== RUN|--- |PASS|FAIL|ok|panic)|k8snode:|figures:|images built|node Ready'
rc=${PIPESTATUS[0]}
set -e
echo "e2e-kubernetes-node: the whole log is in $log"
exit "$rc"
