#!/usr/bin/env bash
# Set up the real test node's runtime and images (build.sh runs this after the binaries):
#
#   bash tests/k8s/node-setup.sh PREFIX
#
# 1. Installs what the node runs on from Debian packages, when missing: containerd (1.6), runc,
#    the CNI plugins (bridge, host-local, loopback), Debian's Python 3.11 (the step image's
#    root file system is made of its files) and gcc with the static C library (the pause
#    image). Installing needs root; without it, this says what is missing and goes on: the
#    `kube_real_node` fixture then names the same missing pieces.
# 2. Builds the images mlc.test/pause:1 and mlc.test/step:py3.11 into PREFIX/node
#    (node_images.py; skipped when current).
#
# Everything goes to stderr: build.sh prints only the prefix on stdout.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
prefix="${1:?usage: node-setup.sh PREFIX}"

log() { printf 'node-setup.sh: %s\n' "$*" >&2; }

# package -> a file it installs that the real node needs
declare -A needs=(
    [containerd]=/usr/bin/containerd
    [runc]=/usr/sbin/runc
    [containernetworking-plugins]=/usr/lib/cni/bridge
    [python3.11]=/usr/bin/python3.11
    [gcc]=/usr/bin/gcc
    [libc6-dev]=/usr/lib/x86_64-linux-gnu/libc.a
    [iproute2]=/usr/sbin/ip
)
missing=()
for package in containerd runc containernetworking-plugins python3.11 gcc libc6-dev iproute2; do
    [ -e "${needs[$package]}" ] || missing+=("$package")
done

mkdir -p "$(dirname "$prefix")"
# One set-up at a time: apt-get and the image build would trip over each other.
exec 8>"$prefix.node.lock"
if command -v flock >/dev/null 2>&1; then
    flock 8
fi

if [ "${#missing[@]}" -gt 0 ]; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        start=$(date +%s)
        log "installing ${missing[*]} (Debian packages)"
        export DEBIAN_FRONTEND=noninteractive
        apt_log="$prefix.apt.log"
        if ! { apt-get update -qq && apt-get install -y -qq --no-install-recommends "${missing[@]}"; } \
            >"$apt_log" 2>&1; then
            cat "$apt_log" >&2
            log "error: apt-get could not install ${missing[*]}"
            exit 1
        fi
        log "installed in $(($(date +%s) - start)) s (apt-get's output: $apt_log)"
    else
        log "the real test node needs ${missing[*]}; as root: apt-get install ${missing[*]}"
        log "(tests marked k8s_real will be skipped, or fail under CI=true, until then)"
    fi
fi

if [ -x /usr/bin/python3.11 ] && command -v gcc >/dev/null 2>&1; then
    /usr/bin/python3.11 "$here/node_images.py" "$prefix/node"
fi
