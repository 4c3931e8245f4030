#!/usr/bin/env bash
# Build the Kubernetes test control plane (etcd, kube-apiserver, kube-controller-manager,
# kube-scheduler and kwok) and the real test node's kubelet from Go modules into a cache outside
# the repository, then set up the rest of the real node (node-setup.sh: containerd, runc and the
# CNI plugins from Debian packages when missing, and its two container images).
#
#   bash tests/k8s/build.sh            # prints the install prefix on stdout
#
# Idempotent: when the binaries for the pinned versions (and the current tests/k8s/testenv
# go.mod/go.sum) and the images are already in the cache, it prints the prefix within seconds.
# The versions below must agree with tests/k8s/testenv/go.mod; tests/k8s/cluster.py reads them here.
#
# Environment:
#   MLC_K8S_PREFIX   install prefix (default: ${XDG_CACHE_HOME:-$HOME/.cache}/mlc-k8s/<versions>)
#   GOCACHE, GOMODCACHE are honoured; keep them warm between runs to rebuild in about a minute.
#   MLC_K8S_REAL_NODE=0 skips the real node's set-up (no Debian packages, no images).
set -euo pipefail

K8S_VERSION=v1.36.3
KWOK_VERSION=v0.8.0

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
testenv="$here/testenv"
prefix="${MLC_K8S_PREFIX:-${XDG_CACHE_HOME:-$HOME/.cache}/mlc-k8s/${K8S_VERSION}-kwok${KWOK_VERSION}}"
binaries=(etcd kube-apiserver kube-controller-manager kube-scheduler kubelet kwok)

log() { printf 'build.sh: %s\n' "$*" >&2; }

# Go builds in silence for many minutes: `go build -v` names each package it compiles, and this
# turns those lines into a progress line every 30 s (and a heartbeat when none come, during a
# long link). Module downloads are counted too; any other line (an error) is passed through.
# Usage: go build -v ... 2>&1 | progress "what is being built"
progress() {
    local what="$1" every="${MLC_K8S_PROGRESS_SECONDS:-30}" packages=0 downloads=0 line now last began
    began=$(date +%s)
    last=$began
    while true; do
        if IFS= read -r -t "$every" line; then
            case "$line" in
                "go: downloading "*) downloads=$((downloads + 1)) ;;
                *" "* | "#"*) printf '%s\n' "$line" >&2 ;;
                *) packages=$((packages + 1)) ;;
            esac
        elif [ $? -le 128 ]; then
            break # end of input: the build is over
        fi
        now=$(date +%s)
        if [ $((now - last)) -ge "$every" ]; then
            log "$what: $packages packages compiled, $downloads modules downloaded, $(((now - began) / 60)) min $(((now - began) % 60)) s"
            last=$now
        fi
    done
    log "$what: $packages packages compiled in $(($(date +%s) - began)) s"
}

# The stamp records what the binaries were built from; a different go.mod/go.sum rebuilds.
stamp_of() {
    {
        printf '%s %s\n' "$K8S_VERSION" "$KWOK_VERSION"
        cat "$testenv/go.mod" "$testenv/go.sum"
    } | sha256sum | cut -d' ' -f1
}
want_stamp="$(stamp_of)"

is_complete() {
    local b
    for b in "${binaries[@]}"; do
        [ -x "$prefix/bin/$b" ] || return 1
    done
    [ -f "$prefix/stamp" ] && [ "$(cat "$prefix/stamp")" = "$want_stamp" ]
}

# The real node's runtime and images; it logs to stderr and never prints on stdout.
set_up_real_node() {
    if [ "${MLC_K8S_REAL_NODE:-1}" != 0 ]; then
        bash "$here/node-setup.sh" "$prefix"
    fi
}

if is_complete; then
    set_up_real_node
    printf '%s\n' "$prefix"
    exit 0
fi

go_bin="$(command -v go || true)"
if [ -z "$go_bin" ] && [ -x /usr/local/go/bin/go ]; then
    go_bin=/usr/local/go/bin/go
fi
if [ -z "$go_bin" ]; then
    log "error: Go 1.26 or newer is needed to build the test control plane (no 'go' on PATH)"
    exit 1
fi

export GOTOOLCHAIN=local GOWORK=off CGO_ENABLED=0 GOFLAGS="-trimpath -buildvcs=false"

go_version="$("$go_bin" env GOVERSION)"
case "$go_version" in
    go1.2[6-9]* | go1.[3-9][0-9]*) ;;
    *)
        log "error: $go_bin is $go_version; Kubernetes $K8S_VERSION needs Go 1.26 or newer"
        exit 1
        ;;
esac

mkdir -p "$(dirname "$prefix")"
# One build at a time per prefix; a second caller waits and then finds the cache complete.
exec 9>"$prefix.lock"
if command -v flock >/dev/null 2>&1; then
    flock 9
fi
if is_complete; then
    set_up_real_node
    printf '%s\n' "$prefix"
    exit 0
fi

start=$(date +%s)
log "building Kubernetes $K8S_VERSION and kwok $KWOK_VERSION into $prefix"
log "(a cold build takes 15-25 minutes on 2 cores; later builds reuse GOCACHE)"

staging="$(mktemp -d "$prefix.tmp.XXXXXX")"
trap 'rm -rf "$staging"' EXIT
chmod 755 "$staging"
mkdir -p "$staging/bin"

minor="${K8S_VERSION#v1.}"
minor="${minor%%.*}"
k8s_ld="-s -w"
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    k8s_ld+=" -X $pkg.gitVersion=$K8S_VERSION -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor"
    k8s_ld+=" -X $pkg.gitTreeState=clean"
done

(
    cd "$testenv"
    log "go build kube-apiserver kube-controller-manager kube-scheduler kubelet"
    "$go_bin" build -v -ldflags "$k8s_ld" -o "$staging/bin/" \
        k8s.io/kubernetes/cmd/kube-apiserver \
        k8s.io/kubernetes/cmd/kube-controller-manager \
        k8s.io/kubernetes/cmd/kube-scheduler \
        k8s.io/kubernetes/cmd/kubelet 2>&1 | progress "Kubernetes"
    log "go build etcd"
    "$go_bin" build -v -ldflags "-s -w" -o "$staging/bin/etcd" go.etcd.io/etcd/server/v3 2>&1 |
        progress "etcd"
)

# kwok is built from its own module graph (its go.sum), not the wrapper's: putting it in the
# wrapper would let minimal version selection raise the control plane's dependencies.
log "go install kwok"
GOBIN="$staging/bin" "$go_bin" install -v \
    -ldflags "-s -w -X sigs.k8s.io/kwok/pkg/consts.KubeVersion=${K8S_VERSION#v}" \
    "sigs.k8s.io/kwok/cmd/kwok@$KWOK_VERSION" 2>&1 | progress "kwok"

"$staging/bin/kube-apiserver" --version >&2
printf '%s\n' "$want_stamp" >"$staging/stamp"

# Swap the finished tree into place so a half-built prefix is never taken as complete.
rm -rf "$prefix.old"
if [ -e "$prefix" ]; then
    mv "$prefix" "$prefix.old"
fi
mv "$staging" "$prefix"
trap - EXIT
rm -rf "$prefix.old"

log "done in $(($(date +%s) - start)) s"
set_up_real_node
printf '%s\n' "$prefix"
