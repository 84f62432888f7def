#!/bin/bash
# Sets up a fresh Debian 12 machine, builds hvtel and runs the whole test
# suite: unit, privileged (real KVM, libvirtd, OVS, Prometheus) and the VM lab.
#   sudo ./scripts/test.sh [ctest options, e.g. -L unit]
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install-deps.sh
./scripts/build.sh
# Classic tracepoints and the lab's tracefs checks need tracefs; BPF needs bpffs.
mountpoint -q /sys/kernel/tracing || mount -t tracefs tracefs /sys/kernel/tracing 2>/dev/null || true
mountpoint -q /sys/fs/bpf || mount -t bpf bpf /sys/fs/bpf 2>/dev/null || true
cd build
exec ctest --output-on-failure --timeout 900 "$@"
