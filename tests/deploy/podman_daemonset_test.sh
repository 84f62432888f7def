#!/bin/bash
# The agent image (deploy/image/build.sh) run by podman under the DaemonSet's own pod spec, read from
# deploy/kubernetes/daemonset.yaml: hostPID, hostNetwork, the container's securityContext (privileged,
# capabilities drop/add, readOnlyRootFilesystem, allowPrivilegeEscalation, seccompProfile), its
# resource limits, its volume mounts (hostPath, readOnly) and its args. Checks that the agent becomes
# ready (the readiness and liveness paths of the manifest answer 200), serves /metrics with every
# probe attached that `hvtel status` on this host says can attach (sched_switch at least), dropped
# its capabilities as docs/security.md says, ran with a read-only root filesystem and wrote nothing
# (`podman diff` empty), and stops cleanly on SIGTERM.
#
# Where the test deviates from the manifest (each one is printed as "deviation:"):
#   - --web.listen-address becomes 127.0.0.1:<free port> and --events-listen 127.0.0.1:<free port>
#     (host network: the manifest's :9477 and the default 127.0.0.1:9478 may be taken on a shared host);
#   - a hostPath that does not exist on this host is not mounted (podman would fail, Kubernetes'
#     runtime would create an empty directory on the node: this test changes nothing on the host);
#     then --nova-conf is dropped when its file is under it, --libvirt-uri becomes "" without
#     /run/libvirt; /var/run/openvswitch missing only leaves the agent's OVS side idle;
#   - the image is the one just built (localhost/hvtel:<version>); the manifest's image line must
#     name that same tag;
#   - Kubernetes' default seccomp profile for a pod that names none is Unconfined, so is podman's
#     here; resource requests have no podman equivalent (limits are applied).
#
# Usage: podman_daemonset_test.sh --binary BUILD/hvtel [--image-out DIR] [--without CAP]...
#                                 [--with CAP]... [--seccomp-default] [--manifest FILE]
#   --without CAP      leave CAP out of the manifest's capabilities.add (the experiments behind the
#                      securityContext comment; the test is then expected to fail for a needed CAP)
#   --with CAP         add CAP as well (e.g. --with NET_ADMIN --without SETPCAP: the agent cannot
#                      drop NET_ADMIN from its bounding set without SETPCAP, and the test fails)
#   --seccomp-default  podman's default seccomp profile instead of the manifest's
# Exit: 0 pass, 1 fail, 77 skip (not root or no podman/buildah/mmdebstrap; in CI (CI=true) a failure).
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
binary=
image_out=
manifest=$root/deploy/kubernetes/daemonset.yaml
without=()
with=()
seccomp_default=0
while [ $# -gt 0 ]; do
  case $1 in
    --binary) binary=${2:?}; shift 2 ;;
    --image-out) image_out=${2:?}; shift 2 ;;
    --manifest) manifest=${2:?}; shift 2 ;;
    --without) without+=("${2:?}"); shift 2 ;;
    --with) with+=("${2:?}"); shift 2 ;;
    --seccomp-default) seccomp_default=1; shift ;;
    *) echo "usage: $0 --binary BUILD/hvtel [--image-out DIR] [--without CAP]... [--seccomp-default]" >&2; exit 2 ;;
  esac
done
[ -n "$binary" ] || { echo "usage: $0 --binary BUILD/hvtel ..." >&2; exit 2; }
binary=$(realpath "$binary")
[ -n "$image_out" ] || image_out=$(dirname "$binary")/image

fail() {
  echo "FAIL: $*" >&2
  exit 1
}
skip() {
  if [ "${CI:-}" = "true" ]; then fail "$* (required in CI)"; fi
  echo "SKIP: $*" >&2
  exit 77
}
note() { echo "-- $*"; }

[ "$(id -u)" = 0 ] || skip "needs root"
for tool in podman buildah mmdebstrap runc curl python3; do
  command -v "$tool" >/dev/null || skip "$tool is not installed (scripts/install-deps.sh)"
done
python3 -c 'import yaml' 2>/dev/null || skip "python3-yaml is not installed"
[ -x "$binary" ] || fail "no executable $binary"

# Global podman options: no systemd (cgroups by path) and no journald on these machines; runc, the
# runtime of most Kubernetes nodes (crun 1.8 refuses this host's hybrid cgroup v1/v2 layout).
pm() { podman --cgroup-manager=cgroupfs --events-backend=file --runtime=runc "$@"; }

ctr=hvtel-daemonset-test-$$
tmp=$(mktemp -d)
cleanup() {
  pm rm -f -t 5 "$ctr" >/dev/null 2>&1
  rm -rf "$tmp"
}
trap cleanup EXIT

# --- the image: built from this binary, or reused when it already is --------------------------------
version=$("$binary" --version | awk '{ print $2 }')
tag=localhost/hvtel:$version
start=$(date +%s)
"$root/deploy/image/build.sh" --binary "$binary" --out "$image_out" --reuse >"$tmp/build.log" 2>&1 ||
  fail "deploy/image/build.sh failed: $(tail -30 "$tmp/build.log")"
note "image $tag ($(($(date +%s) - start)) s): $(tail -2 "$tmp/build.log" | head -1)"
size=$(pm image inspect --format '{{.Size}}' "$tag") || fail "$tag is not in podman storage"
echo "FIGURE image_mib=$(awk -v b="$size" 'BEGIN { printf "%.1f", b / 1048576 }')"

# --- the pod spec, translated to podman options ------------------------------------------------------
free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
port=$(free_port)
events_port=$(free_port)
while [ "$events_port" = "$port" ]; do events_port=$(free_port); done

python3 - "$manifest" "$port" "$events_port" "$seccomp_default" "${with[*]}" "${without[@]}" >"$tmp/spec.sh" <<'PY' ||
import os, re, shlex, sys

import yaml

path, port, events_port, seccomp_default, extra = sys.argv[1:6]
without = {c.upper().removeprefix("CAP_") for c in sys.argv[6:]}
extra = [c.upper().removeprefix("CAP_") for c in extra.split()]
doc = yaml.safe_load(open(path))
assert doc["kind"] == "DaemonSet", "not a DaemonSet"
pod = doc["spec"]["template"]["spec"]
c = pod["containers"][0]
sc = c.get("securityContext", {})
opts, deviations = [], []
q = shlex.quote


def quantity(v, cpu=False):
    v = str(v)
    if cpu:
        return str(int(v[:-1]) / 1000) if v.endswith("m") else v
    units = {"Ki": "k", "Mi": "m", "Gi": "g"}
    for k, u in units.items():
        if v.endswith(k):
            return v[: -len(k)] + u
    return v + "b"


if pod.get("hostPID"):
    opts.append("--pid=host")
if pod.get("hostNetwork"):
    opts.append("--network=host")
if pod.get("hostIPC"):
    opts.append("--ipc=host")
if sc.get("privileged"):
    opts.append("--privileged")
if "runAsUser" in sc:
    opts.append(f"--user={sc['runAsUser']}")
if sc.get("readOnlyRootFilesystem"):
    # Kubernetes mounts no tmpfs anywhere; podman's --read-only would add /tmp, /var/tmp and /run.
    opts += ["--read-only", "--read-only-tmpfs=false"]
if sc.get("allowPrivilegeEscalation") is False:
    opts += ["--security-opt", "no-new-privileges"]
caps = sc.get("capabilities", {})
for cap in caps.get("drop", []):
    opts.append(f"--cap-drop={cap.lower()}")
added = []
for cap in caps.get("add", []) + extra:
    if cap in extra:
        deviations.append(f"capability {cap} added (--with)")
    if cap.upper() in without:
        deviations.append(f"capability {cap} left out (--without)")
        continue
    added.append(cap)
    opts.append(f"--cap-add=CAP_{cap.upper()}")
seccomp = (sc.get("seccompProfile") or pod.get("securityContext", {}).get("seccompProfile") or {}).get("type", "Unconfined")
if seccomp_default == "1":
    deviations.append(f"podman's default seccomp profile instead of {seccomp} (--seccomp-default)")
elif seccomp == "Unconfined":
    opts += ["--security-opt", "seccomp=unconfined"]
elif seccomp != "RuntimeDefault":
    raise SystemExit(f"seccompProfile {seccomp} is not handled")
limits = c.get("resources", {}).get("limits", {})
if "memory" in limits:
    opts.append(f"--memory={quantity(limits['memory'])}")
if "cpu" in limits:
    opts.append(f"--cpus={quantity(limits['cpu'], cpu=True)}")
for e in c.get("env", []):
    opts += ["-e", f"{e['name']}={e['value']}"]

volumes = {v["name"]: v for v in pod.get("volumes", [])}
missing = []
for m in c.get("volumeMounts", []):
    host = volumes[m["name"]]["hostPath"]["path"]
    if not os.path.exists(host):
        missing.append(m["mountPath"])
        deviations.append(f"{host} does not exist here: not mounted at {m['mountPath']}")
        continue
    ro = ",ro=true" if m.get("readOnly") else ""
    opts += ["--mount", f"type=bind,source={host},destination={m['mountPath']}{ro}"]

args, saw_events = [], False
items = list(c.get("args", []))
while items:
    a = items.pop(0)
    name, eq, value = a.partition("=")
    if not eq and name.startswith("--") and items and not items[0].startswith("--") and name != "--per-vcpu":
        value = items.pop(0)
    if name in ("--web.listen-address", "--listen"):
        deviations.append(f"{name}={value} -> 127.0.0.1:{port}")
        args.append(f"{name}=127.0.0.1:{port}")
    elif name == "--events-listen":
        saw_events = True
        deviations.append(f"{name}={value} -> 127.0.0.1:{events_port}")
        args.append(f"{name}=127.0.0.1:{events_port}")
    elif name == "--nova-conf" and any(value.startswith(p.rstrip("/") + "/") for p in missing):
        deviations.append(f"{name}={value} dropped: not mounted")
    elif name == "--libvirt-uri" and "/run/libvirt" in missing and value.startswith("qemu:///system"):
        deviations.append(f'{name}={value} -> "" (no /run/libvirt here)')
        args.append(f"{name}=")
    else:
        args.append(a if eq or not value else f"{name}={value}")
if not saw_events:
    deviations.append(f"--events-listen=127.0.0.1:{events_port} added (default 127.0.0.1:9478)")
    args.append(f"--events-listen=127.0.0.1:{events_port}")

print("run_opts=(" + " ".join(q(o) for o in opts) + ")")
print("app_args=(" + " ".join(q(a) for a in args) + ")")
print("added_caps=(" + " ".join(q(a.upper()) for a in added) + ")")
print("deviations=(" + " ".join(q(d) for d in deviations) + ")")
print(f"manifest_image={q(c['image'])}")
print(f"ready_path={q(c['readinessProbe']['httpGet']['path'])}")
print(f"live_path={q(c['livenessProbe']['httpGet']['path'])}")
print(f"memory_limit={q(str(limits.get('memory', '')))}")
PY
  fail "cannot read $manifest"
run_opts=() app_args=() added_caps=() deviations=() manifest_image='' ready_path='' live_path='' memory_limit=''
# shellcheck disable=SC1091 # generated above
. "$tmp/spec.sh"
[ "$manifest_image" = "$tag" ] ||
  fail "the manifest's image is $manifest_image, the binary is version $version: expected $tag"
for d in "${deviations[@]}"; do echo "deviation: $d"; done
note "capabilities added: ${added_caps[*]}"
note "podman run ${run_opts[*]} $tag ${app_args[*]}"

# What this host offers, as root on the host: every probe that can attach here must attach in the
# container too (`hvtel status --json`, "probes": [{"probe", "available", ...}]).
"$binary" status --json >"$tmp/status.json" 2>"$tmp/status.err" || fail "hvtel status failed: $(cat "$tmp/status.err")"
mapfile -t expect_probes < <(python3 - "$tmp/status.json" <<'PY'
import json, sys
doc = json.load(open(sys.argv[1]))
for p in doc["probes"]:
    if p.get("available"):
        print(p["probe"])
PY
)
note "probes that attach on this host (hvtel status): ${expect_probes[*]}"
printf '%s\n' "${expect_probes[@]}" | grep -qx sched_switch || fail "hvtel status: sched_switch cannot attach here"

# --- run it -------------------------------------------------------------------------------------------
# A Kubernetes container inherits the runtime's resource limits. podman as root would set
# RLIMIT_NOFILE to 1048576 and RLIMIT_NPROC to its maximum, above what this session may raise to
# (no CAP_SYS_RESOURCE here): pass this shell's open-file limits and conmon's process limit
# (the smaller of ours and kernel.pid_max).
nproc=$(ulimit -Hu)
pid_max=$(cat /proc/sys/kernel/pid_max)
if [ "$nproc" = unlimited ] || [ "$nproc" -gt "$pid_max" ]; then nproc=$pid_max; fi
limits=(--ulimit "nofile=$(ulimit -Sn):$(ulimit -Hn)" --ulimit "nproc=$nproc:$nproc")
pm run -d --name "$ctr" --pull=never --log-driver=k8s-file "${limits[@]}" "${run_opts[@]}" "$tag" "${app_args[@]}" \
  >"$tmp/run.out" 2>&1 || fail "podman run failed: $(cat "$tmp/run.out")"
logs() { pm logs "$ctr" 2>&1 | tail -40; }
code() { curl -s -o "$tmp/body" -w '%{http_code}' --max-time 5 "http://127.0.0.1:$port$1"; }

start=$(date +%s)
until [ "$(code "$ready_path")" = 200 ]; do
  [ "$(pm inspect --format '{{.State.Running}}' "$ctr")" = true ] ||
    fail "the agent exited ($(pm inspect --format '{{.State.ExitCode}}' "$ctr")) before it was ready:
$(logs)"
  [ $(($(date +%s) - start)) -lt 60 ] || fail "$ready_path not 200 after 60 s:
$(logs)"
  sleep 0.2
done
echo "FIGURE ready_s=$(($(date +%s) - start))"
[ "$(code "$live_path")" = 200 ] || fail "$live_path answers $(code "$live_path")"

[ "$(code /metrics)" = 200 ] || fail "/metrics answers $(code /metrics)"
cp "$tmp/body" "$tmp/metrics"
grep -Eq '^hvtel_probe_attached\{([^}]*,)?probe="sched_switch"(,[^}]*)?\} 1$' "$tmp/metrics" ||
  fail "no hvtel_probe_attached{probe=\"sched_switch\"} 1 in /metrics: $(grep '^hvtel_probe_attached' "$tmp/metrics")"
for p in "${expect_probes[@]}"; do
  grep -Eq "^hvtel_probe_attached\{([^}]*,)?probe=\"$p\"(,[^}]*)?\} 1\$" "$tmp/metrics" ||
    fail "probe $p attaches on this host but not in the container: $(grep '^hvtel_probe_attached' "$tmp/metrics")"
done
note "attached in the container: $(grep -c '^hvtel_probe_attached{.*} 1$' "$tmp/metrics") probes, ${expect_probes[*]} included"

# The agent's own process (host pid namespace): root filesystem read-only, no_new_privs, and the
# capabilities it keeps while serving (docs/security.md): BPF, PERFMON, SYS_PTRACE, DAC_READ_SEARCH,
# plus SYS_ADMIN and SETPCAP while openvswitch.ko's programs are not attached. Nothing else, in any set.
pid=$(pm inspect --format '{{.State.Pid}}' "$ctr")
[ "$(pm inspect --format '{{.HostConfig.ReadonlyRootfs}}' "$ctr")" = true ] || fail "ReadonlyRootfs is not set"
rootopts=$(awk '$5 == "/" { print $6 }' "/proc/$pid/mountinfo")
case ",$rootopts," in *,ro,*) ;; *) fail "the container's / is mounted '$rootopts', not ro" ;; esac
grep -q '^NoNewPrivs:[[:space:]]*1$' "/proc/$pid/status" || fail "no_new_privs is not set"
if pm logs "$ctr" 2>&1 | grep -q "keeping the capabilities it has"; then
  fail "the agent could not drop its capabilities: $(pm logs "$ctr" 2>&1 | grep 'keeping the capabilities')"
fi
# Capability numbers (linux/capability.h) of the allowed set: DAC_READ_SEARCH 2, SETPCAP 8,
# SYS_PTRACE 19, SYS_ADMIN 21, PERFMON 38, BPF 39.
declare -A capname=([2]=DAC_READ_SEARCH [8]=SETPCAP [19]=SYS_PTRACE [21]=SYS_ADMIN [38]=PERFMON [39]=BPF)
allowed=$(((1 << 2) | (1 << 8) | (1 << 19) | (1 << 21) | (1 << 38) | (1 << 39)))
for set in CapEff CapPrm CapBnd; do
  mask=$((16#$(awk -v s="$set:" '$1 == s { print $2 }' "/proc/$pid/status")))
  names=
  for bit in $(seq 0 63); do
    [ $(((mask >> bit) & 1)) = 1 ] && names+=" ${capname[$bit]:-cap$bit}"
  done
  [ $((mask & ~allowed)) = 0 ] || fail "$set of the serving agent has more than docs/security.md keeps:$names"
  note "$set of the serving agent:$names"
done
for set in CapInh CapAmb; do
  [ "$(awk -v s="$set:" '$1 == s { print $2 }' "/proc/$pid/status")" = 0000000000000000 ] || fail "$set is not empty"
done

# Memory, for the manifest's requests and limits (VmHWM: the agent's peak RSS; the cgroup also counts
# page cache and the kernel memory charged to it, BPF maps included).
kib() { awk -v f="$1:" '$1 == f { print $2 }' "/proc/$pid/status"; }
echo "FIGURE rss_mib=$(($(kib VmRSS) / 1024)) rss_anon_mib=$(($(kib RssAnon) / 1024)) hwm_mib=$(($(kib VmHWM) / 1024))"
memcg=$(awk -F: '$2 == "memory" { print $3 }' "/proc/$pid/cgroup")
if [ -n "$memcg" ] && [ -r "/sys/fs/cgroup/memory$memcg/memory.max_usage_in_bytes" ]; then
  echo "FIGURE cgroup_mem_mib=$(($(cat "/sys/fs/cgroup/memory$memcg/memory.usage_in_bytes") / 1048576))" \
    "cgroup_peak_mib=$(($(cat "/sys/fs/cgroup/memory$memcg/memory.max_usage_in_bytes") / 1048576))" \
    "limit=$memory_limit"
elif [ -r "/sys/fs/cgroup${memcg:-/nonexistent}/memory.current" ]; then
  echo "FIGURE cgroup_mem_mib=$(($(cat "/sys/fs/cgroup$memcg/memory.current") / 1048576)) limit=$memory_limit"
fi

# A few scrapes later, still nothing written anywhere in the container.
for _ in 1 2 3; do code /metrics >/dev/null; sleep 0.5; done
pm diff "$ctr" >"$tmp/diff" 2>&1 || fail "podman diff failed: $(cat "$tmp/diff")"
[ ! -s "$tmp/diff" ] || fail "the container changed its filesystem: $(cat "$tmp/diff")"

# --- stop: SIGTERM, as the kubelet does --------------------------------------------------------------
pm stop -t 20 "$ctr" >/dev/null || fail "podman stop failed"
rc=$(pm inspect --format '{{.State.ExitCode}}' "$ctr")
[ "$rc" = 0 ] || fail "the agent exited $rc on SIGTERM: $(logs)"
pm diff "$ctr" >"$tmp/diff" 2>&1 || fail "podman diff failed after the stop: $(cat "$tmp/diff")"
[ ! -s "$tmp/diff" ] || fail "after the stop, podman diff: $(cat "$tmp/diff")"
note "the agent's log:"
pm logs "$ctr" 2>&1 | tail -n 30 | sed 's/^/   /'
echo "PASS"
