#!/usr/bin/env bash
# Builds the real Kubernetes control plane the kubernetes target's tests run
# against -- kube-apiserver, kube-controller-manager, kube-scheduler, etcd and
# kwok -- from Go modules, once, into a cache keyed by version:
#
#   $HOME/.cache/runway/k8s-<k8s version>-<go version>/
#
# A second run finds every binary reporting the expected version and returns
# at once. A cold build takes about 700 CPU-seconds and 3-4 GB of build cache.
# internal/k8stest looks in the same directory (or $RUNWAY_K8S_BIN).
#
# Usage: scripts/k8s-build.sh          build what is missing, print the dir
#        scripts/k8s-build.sh --dir    print the dir only
#        scripts/k8s-build.sh --node   also the kubelet and kube-proxy (a real node, for the
#                                      opt-in scripts/e2e-kubernetes-node.sh;
#                                      CI's default build does not build it)
set -euo pipefail

K8S_VERSION=${K8S_VERSION:-1.37.2}
ETCD_VERSION=${ETCD_VERSION:-3.6.16}
KWOK_VERSION=${KWOK_VERSION:-0.8.0}
GO=${GO:-go}
gov=$($GO env GOVERSION)
dir=${RUNWAY_K8S_BIN:-${XDG_CACHE_HOME:-$HOME/.cache}/runway/k8s-$K8S_VERSION-$gov}
if [ "${1:-}" = "--dir" ]; then echo "$dir"; exit 0; fi
node=0
if [ "${1:-}" = "--node" ]; then node=1; fi
mkdir -p "$dir"
minor=${K8S_VERSION#*.}; minor=${minor%%.*}

ok() { # binary, expected substring of its --version output
  [ -x "$dir/$1" ] && "$dir/$1" --version 2>/dev/null | grep -qF -- "$2"
}

scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT

# Control plane: a scratch module requiring k8s.io/kubernetes with every
# staging module (k8s.io/kubernetes replaces them with ./staging paths, which
# do not apply to a dependency) replaced by its published v0.<minor> version.
cmds="k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager k8s.io/kubernetes/cmd/kube-scheduler"
want_node() { [ "$node" = 1 ] && { ! ok kubelet "v$K8S_VERSION" || ! ok kube-proxy "v$K8S_VERSION"; }; }
if want_node; then cmds="$cmds k8s.io/kubernetes/cmd/kubelet k8s.io/kubernetes/cmd/kube-proxy"; fi
if ! ok kube-apiserver "v$K8S_VERSION" || ! ok kube-controller-manager "v$K8S_VERSION" || ! ok kube-scheduler "v$K8S_VERSION" || want_node; then
  echo "k8s-build: building Kubernetes v$K8S_VERSION control plane into $dir (cold: ~700 CPU-s)" >&2
  mod=$($GO mod download -json "k8s.io/kubernetes@v$K8S_VERSION" | sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",$/\1/p')
  staging=$(sed -n 's#^[[:space:]]*\(k8s\.io/[a-z0-9./-]*\) => \./staging/.*#\1#p' "$mod" | sort -u)
  [ -n "$staging" ] || { echo "k8s-build: no staging replaces found in $mod" >&2; exit 1; }
  mkdir -p "$scratch/k8s"
  {
    echo "module runway.local/k8sbuild"
    echo "go 1.26.0"
    echo "require k8s.io/kubernetes v$K8S_VERSION"
    for m in $staging; do echo "replace $m => $m v0.${K8S_VERSION#*.}"; done
  } > "$scratch/k8s/go.mod"
  pkg=k8s.io/component-base/version
  ld="-s -w -X $pkg.gitVersion=v$K8S_VERSION -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor -X $pkg.gitTreeState=clean -X $pkg.buildDate=1970-01-01T00:00:00Z"
  ld="$ld -X k8s.io/client-go/pkg/version.gitVersion=v$K8S_VERSION -X k8s.io/client-go/pkg/version.gitMajor=1 -X k8s.io/client-go/pkg/version.gitMinor=$minor"
  (cd "$scratch/k8s" && CGO_ENABLED=0 $GO build -mod=mod -trimpath -ldflags "$ld" -o "$dir/" \
      $cmds)
fi

if ! ok etcd "$ETCD_VERSION"; then
  echo "k8s-build: building etcd v$ETCD_VERSION into $dir" >&2
  mkdir -p "$scratch/etcd"
  printf 'module runway.local/etcdbuild\ngo 1.26.0\nrequire go.etcd.io/etcd/server/v3 v%s\n' "$ETCD_VERSION" > "$scratch/etcd/go.mod"
  (cd "$scratch/etcd" && CGO_ENABLED=0 $GO build -mod=mod -trimpath -ldflags "-s -w" -o "$dir/etcd" go.etcd.io/etcd/server/v3)
fi

if ! ok kwok "$KWOK_VERSION"; then
  echo "k8s-build: building kwok v$KWOK_VERSION into $dir" >&2
  mkdir -p "$scratch/kwok"
  printf 'module runway.local/kwokbuild\ngo 1.26.0\nrequire sigs.k8s.io/kwok v%s\n' "$KWOK_VERSION" > "$scratch/kwok/go.mod"
  (cd "$scratch/kwok" && CGO_ENABLED=0 $GO build -mod=mod -trimpath \
      -ldflags "-s -w -X sigs.k8s.io/kwok/pkg/consts.Version=v$KWOK_VERSION" -o "$dir/kwok" sigs.k8s.io/kwok/cmd/kwok)
fi

echo "$dir"
