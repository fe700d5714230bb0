#!/usr/bin/env bash
# Build the upstream control-plane binaries (and a static pause) for the real test node.
#
# Versions come from this directory's go.mod; the binaries go to a cache directory outside the
# checkout, keyed by those versions:
#   ${KAUDIT_REALNODE_CACHE:-$HOME/.cache/kaudit-realnode}/k8s-<v>-etcd-<v>/bin/
# Only what is missing is built; each binary is written under a temporary name, then renamed.
# Prints the bin directory on its last line. Downloads go only through the Go module proxy.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cd "$here"

if ! command -v go >/dev/null 2>&1; then
    echo "build.sh: go not found" >&2
    exit 3
fi

k8s_version=$(go list -m -f '{{.Version}}' k8s.io/kubernetes)
etcd_version=$(go list -m -f '{{.Version}}' go.etcd.io/etcd/server/v3)
cache=${KAUDIT_REALNODE_CACHE:-$HOME/.cache/kaudit-realnode}
bin="$cache/k8s-$k8s_version-etcd-$etcd_version/bin"
mkdir -p "$bin"

major=${k8s_version#v}
major=${major%%.*}
minor=${k8s_version#v*.}
minor=${minor%%.*}
vpkgs=(k8s.io/component-base/version k8s.io/client-go/pkg/version)
ldflags="-s -w"
for p in "${vpkgs[@]}"; do
    ldflags+=" -X $p.gitVersion=$k8s_version -X $p.gitMajor=$major -X $p.gitMinor=$minor"
    ldflags+=" -X $p.gitTreeState=clean -X $p.buildDate=1970-01-01T00:00:00Z"
done

declare -A pkgs=(
    [kube-apiserver]=k8s.io/kubernetes/cmd/kube-apiserver
    [kube-controller-manager]=k8s.io/kubernetes/cmd/kube-controller-manager
    [kube-scheduler]=k8s.io/kubernetes/cmd/kube-scheduler
    [kubelet]=k8s.io/kubernetes/cmd/kubelet
    [kubeadm]=k8s.io/kubernetes/cmd/kubeadm
    [etcd]=./cmd/etcd
)
order=(etcd kube-apiserver kube-controller-manager kube-scheduler kubelet kubeadm)

total_start=$(date +%s)
export CGO_ENABLED=0
for name in "${order[@]}"; do
    if [ -x "$bin/$name" ]; then
        continue
    fi
    start=$(date +%s)
    tmp="$bin/.$name.tmp.$$"
    trap 'rm -f "$tmp"' EXIT
    go build -p "${KAUDIT_REALNODE_BUILD_JOBS:-2}" -trimpath -buildvcs=false -ldflags "$ldflags" -o "$tmp" "${pkgs[$name]}"
    mv -f "$tmp" "$bin/$name"
    echo "build.sh: $name built in $(( $(date +%s) - start ))s" >&2
done

if [ ! -x "$bin/pause" ] && command -v gcc >/dev/null 2>&1; then
    tmp="$bin/.pause.tmp.$$"
    trap 'rm -f "$tmp"' EXIT
    gcc -static -O2 -o "$tmp" -x c "$here/pause.c"
    mv -f "$tmp" "$bin/pause"
    echo "build.sh: pause built" >&2
fi

echo "build.sh: done in $(( $(date +%s) - total_start ))s" >&2
echo "$bin"
