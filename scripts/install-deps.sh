#!/bin/bash
# Installs every Debian package hvtel needs to build, run and test.
# Idempotent; starts no daemons (tests start their own).
set -euo pipefail

PACKAGES=(
  # build
  cmake make g++ pkg-config clang llvm libbpf-dev bpftool libelf-dev zlib1g-dev
  prometheus-cpp-dev libcivetweb-dev libmicrohttpd-dev libgnutls28-dev libcrypt-dev libcap-dev libvirt-dev libxml2-dev libfmt-dev nlohmann-json3-dev
  libcli11-dev libyaml-cpp-dev libgtest-dev libgmock-dev
  # lint: scripts/tidy.sh (clang-tidy 14 cannot read libstdc++ 12's <expected>)
  clang-tidy-19
  # tests: real components
  qemu-system-x86 libvirt-daemon-system libvirt-clients openvswitch-switch prometheus
  prometheus-libvirt-exporter prometheus-alertmanager yamllint curl iproute2 linux-perf
  # VM lab: guest images from Debian packages
  busybox-static kmod cpio xz-utils zstd jq binutils bc util-linux python3-yaml
  # benchmarks: the peers hvtel is compared with
  bpftrace libbpf-tools
  # image: deploy/image/build.sh (Debian rootfs, OCI image) and its podman test
  mmdebstrap buildah podman runc
)

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "install-deps: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# npm: the Kubernetes schemas deploy/ is validated against (tests/deploy/schema),
# at the versions package-lock.json pins; reinstalled when the lock changes.
schema=$(cd "$(dirname "$0")/.." && pwd)/tests/deploy/schema
if ! cmp -s "$schema/package-lock.json" "$schema/node_modules/.installed-lock.json" 2>/dev/null; then
  echo "install-deps: npm ci in tests/deploy/schema"
  npm ci --prefix "$schema" --no-audit --no-fund --loglevel=error >/dev/null
  cp "$schema/package-lock.json" "$schema/node_modules/.installed-lock.json"
fi
