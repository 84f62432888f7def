#!/bin/bash
# Builds the hvtel agent image with Debian's own tools, from a clean clone, as root:
#   1. the agent, with the project's CMake build (build/hvtel, BPF objects embedded as skeletons);
#   2. a Debian 12 root filesystem of only the shared libraries the binary links (mmdebstrap
#      --variant=extract: packages unpacked, no maintainer script run, so no shell, dpkg or apt);
#      libraries outside the binary's ld.so closure are then removed;
#   3. an OCI image of it (buildah): entrypoint /usr/bin/hvtel, cmd serve, user root, nothing
#      written at run time (readOnlyRootFilesystem).
# Output: <out>/hvtel-oci.tar (OCI archive) and the image in local podman/buildah storage as
# localhost/hvtel:<version>. See deploy/image/README.md.
#
#   sudo deploy/image/build.sh [--binary PATH] [--out DIR] [--reuse]
#     --binary PATH  package this hvtel binary instead of building build/hvtel (the ctest uses it)
#     --out DIR      output directory (default build/image)
#     --reuse        keep the stored image and archive when they were built from the same binary
#                    by the same recipe (this file); otherwise always rebuilt, with current packages
# Environment: HVTEL_IMAGE_SOURCES=FILE  apt sources (one-line or deb822) instead of deb.debian.org
#              (bookworm, bookworm-updates, bookworm-security, main).
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"

binary=
out=$root/build/image
reuse=0
while [ $# -gt 0 ]; do
  case $1 in
    --binary) binary=$(realpath "${2:?--binary needs a path}"); shift 2 ;;
    --out) out=$(realpath -m "${2:?--out needs a directory}"); shift 2 ;;
    --reuse) reuse=1; shift ;;
    -h | --help) sed -n '2,18p' "$0"; exit 0 ;;
    *) echo "build.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done

die() { echo "image: $*" >&2; exit 1; }
say() { echo "image: $*"; }
[ "$(id -u)" = 0 ] || die "run as root (mmdebstrap root mode, buildah and podman storage of root)"

# --- 1. the agent ---------------------------------------------------------------------------------
if [ -z "$binary" ]; then
  ./scripts/install-deps.sh
  # scripts/build.sh's configuration, but only the agent target (the tests are not in the image).
  cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
  cmake --build build --target hvtel -j"$(nproc)"
  binary=$root/build/hvtel
fi
[ -x "$binary" ] || die "no executable $binary"
for tool in mmdebstrap buildah podman dpkg-deb objcopy readelf; do
  command -v "$tool" >/dev/null || die "$tool is missing: run scripts/install-deps.sh"
done

version=$("$binary" --version | awk '$1 == "hvtel" { print $2 }')
[ -n "$version" ] || die "$binary --version printed no version"
tag=localhost/hvtel:$version
archive=$out/hvtel-oci.tar
stamp="$(sha256sum <"$binary" | cut -c1-64)-$(sha256sum <"$0" | cut -c1-64)"
if [ "$reuse" = 1 ] && [ -s "$archive" ] && [ "$(cat "$archive.stamp" 2>/dev/null)" = "$stamp" ] &&
  [ "$(podman image inspect --format '{{index .Labels "org.hvtel.image.stamp"}}' "$tag" 2>/dev/null)" = "$stamp" ]; then
  say "$tag and $archive are up to date (same binary, same recipe)"
  exit 0
fi

# The BPF programs are compiled into the binary (bpftool skeletons): count the embedded BPF ELF
# objects (e_machine 247). The agent opens no .bpf.o file at run time.
nbpf=$(python3 - "$binary" <<'PY'
import sys
data = open(sys.argv[1], "rb").read()
n, i = 0, data.find(b"\x7fELF", 1)
while i >= 0:
    if data[i + 4] == 2 and data[i + 5] == 1 and int.from_bytes(data[i + 18:i + 20], "little") == 247:
        n += 1
    i = data.find(b"\x7fELF", i + 1)
print(n)
PY
)
[ "$nbpf" -gt 0 ] || die "$binary embeds no BPF object"
say "hvtel $version from $binary, $nbpf embedded BPF objects"

# The Debian packages of the libraries the binary names (DT_NEEDED); apt adds their dependencies.
# The host's library paths are what the build linked against; dpkg knows them by their
# unmerged or merged-/usr name.
owner() {
  local f=$1 r p
  r=$(readlink -f "$f")
  for p in "$f" "$r" "/usr$f" "${r#/usr}"; do
    dpkg-query -S "$p" 2>/dev/null | head -n1 | cut -d: -f1 && return 0
  done
  return 1
}
mapfile -t needed < <(readelf -d "$binary" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p')
packages=()
for so in "${needed[@]}"; do
  path=$(ldd "$binary" | awk -v so="$so" '$1 == so && $2 == "=>" { print $3 }')
  [ -n "$path" ] || die "ldd does not resolve $so"
  pkg=$(owner "$path") || die "no Debian package owns $path ($so)"
  packages+=("$pkg")
done
mapfile -t packages < <(printf '%s\n' "${packages[@]}" | sort -u)
say "packages of the linked libraries: ${packages[*]}"

# --- 2. the root filesystem -----------------------------------------------------------------------
work=$out/work
rootfs=$work/rootfs
rm -rf "$work"
mkdir -p "$work" "$out"
if [ -n "${HVTEL_IMAGE_SOURCES:-}" ]; then
  sources=("$HVTEL_IMAGE_SOURCES")
else
  sources=("deb http://deb.debian.org/debian bookworm main"
    "deb http://deb.debian.org/debian bookworm-updates main"
    "deb http://deb.debian.org/debian-security bookworm-security main")
fi
# The extract hook runs while the downloaded .debs are still there: it records them in
# /var/lib/dpkg/status, for image scanners (there is no dpkg in the image to read it).
include=$(IFS=,; echo "${packages[*]}")
mmdebstrap --quiet --mode=root --variant=extract --include="$include" \
  --extract-hook="for d in \"\$1\"/var/cache/apt/archives/*.deb; do
      dpkg-deb -f \"\$d\" | sed '1a Status: install ok installed'; echo; done >'$work/status'" \
  bookworm "$rootfs" "${sources[@]}"

# What the unpacking and mmdebstrap left that nothing runs: apt and dpkg state, documentation,
# translations, the build host's resolv.conf/hostname/fstab, device nodes (the runtime mounts /dev).
(cd "$rootfs" && rm -rf etc/apt etc/dpkg var/cache var/log var/lib usr/share etc/resolv.conf etc/hostname \
  etc/fstab dev/* tmp)
grep -q '^Package: libc6$' "$work/status" || die "the extract hook recorded no packages"
install -D -m 0644 "$work/status" "$rootfs/var/lib/dpkg/status"

# The binary, stripped; its debug information stays beside the archive (build-id and debuglink).
install -d -m 0755 "$rootfs/usr/bin"
objcopy --only-keep-debug "$binary" "$out/hvtel.debug"
objcopy --strip-unneeded --add-gnu-debuglink="$out/hvtel.debug" "$binary" "$rootfs/usr/bin/hvtel"
chmod 0755 "$rootfs/usr/bin/hvtel"

# Keep only the shared objects of the binary's closure, as the rootfs's own ld.so resolves it, plus
# what their symlinks point to; drop the rest (other ICU libraries, gconv charset modules, OpenSSL,
# Kerberos and SASL plugins, libdb of the SASL db plugin, ...). Nothing here dlopen()s them: glibc
# 2.36 has nss_files/nss_dns built in; libvirt's remote driver over a unix socket loads no plugin.
closure() { chroot "$rootfs" /lib64/ld-linux-x86-64.so.2 --list /usr/bin/hvtel; }
closure >"$work/closure.txt" || die "the image's ld.so cannot load hvtel: $(cat "$work/closure.txt")"
if grep -q "not found" "$work/closure.txt"; then die "missing libraries: $(grep 'not found' "$work/closure.txt")"; fi
resolve() {  # resolve PATH: PATH and every symlink step below the rootfs, as rootfs-relative paths
  local p=$1 t n=0
  while :; do
    echo "$p"
    [ -L "$rootfs$p" ] || return 0
    t=$(readlink "$rootfs$p")
    case $t in /*) p=$t ;; *) p=$(realpath -m -s "$(dirname "$p")/$t") ;; esac
    n=$((n + 1)); [ $n -lt 20 ] || die "symlink loop at $1"
  done
}
awk '$2 == "=>" { print $3 } $1 ~ /^\// { print $1 }' "$work/closure.txt" | sort -u |
  while read -r p; do resolve "$p"; done | sort -u >"$work/keep.txt"
(cd "$rootfs" && find lib lib64 usr/lib \( -type f -o -type l \) \( -name '*.so' -o -name '*.so.*' \) | sed 's|^|/|') |
  sort >"$work/all-so.txt"
comm -23 "$work/all-so.txt" "$work/keep.txt" | sed "s|^|$rootfs|" | xargs -r rm -f
# glib's helper programs (schema compiler, GIO module cache, desktop launcher) are never run.
rm -rf "$rootfs/usr/lib/x86_64-linux-gnu/gconv" "$rootfs/usr/lib/x86_64-linux-gnu/glib-2.0"
find "$rootfs" -depth -type d -empty -delete
if ! closure >"$work/closure.txt" || grep -q "not found" "$work/closure.txt"; then
  die "pruning broke the closure: $(cat "$work/closure.txt")"
fi

# Mount points of the runtime and of the DaemonSet, so that nothing is created in the image when the
# container starts (the kubelet and podman bind-mount /etc/hosts, /etc/hostname, /etc/resolv.conf;
# podman adds /etc/mtab and /run/.containerenv, the latter left out of `podman diff` by podman),
# the Debian /var/run link, the root user and group (libvirt asks for root's home), and os-release
# for image scanners.
mkdir -p "$rootfs"/{dev,proc,sys,run/libvirt,run/openvswitch,etc/nova}
touch "$rootfs"/etc/{hosts,hostname,resolv.conf}
ln -s ../proc/self/mounts "$rootfs/etc/mtab"  # as in Debian; podman would add it
ln -s ../run "$rootfs/var/run"
echo "root:x:0:0:root:/root:/nonexistent" >"$rootfs/etc/passwd"
echo "root:x:0:" >"$rootfs/etc/group"
printf 'passwd: files\ngroup: files\nhosts: files dns\n' >"$rootfs/etc/nsswitch.conf"
cat >"$rootfs/etc/os-release" <<'EOF'
PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"
NAME="Debian GNU/Linux"
VERSION_ID="12"
VERSION="12 (bookworm)"
VERSION_CODENAME=bookworm
ID=debian
EOF

# Checks: the agent runs from the image's libraries alone, and nothing else can run there.
got=$(chroot "$rootfs" /usr/bin/hvtel --version) || die "hvtel --version fails in the rootfs"
[ "$got" = "hvtel $version" ] || die "hvtel --version in the rootfs printed '$got'"
executables=$(cd "$rootfs" && find . -type f -perm /111 ! -name '*.so' ! -name '*.so.*' | sed 's|^\.||')
[ "$executables" = /usr/bin/hvtel ] || die "executables besides /usr/bin/hvtel: $executables"
for f in bin/sh bin/bash bin/dash usr/bin/dpkg usr/bin/apt; do
  if [ -e "$rootfs/$f" ] || [ -L "$rootfs/$f" ]; then die "$f is in the rootfs"; fi
done

# --- 3. the OCI image -----------------------------------------------------------------------------
epoch=$(git -C "$root" log -1 --format=%ct 2>/dev/null || date +%s)
revision=$(git -C "$root" rev-parse HEAD 2>/dev/null || echo unknown)
tar --sort=name --mtime="@$epoch" --clamp-mtime --owner=0 --group=0 --numeric-owner \
  -C "$rootfs" -cf "$work/rootfs.tar" .
ctr=$(buildah from --quiet scratch)
trap 'buildah rm "$ctr" >/dev/null 2>&1 || true' EXIT
buildah add --quiet "$ctr" "$work/rootfs.tar" / >/dev/null
buildah config --os linux --arch amd64 --user 0:0 --workingdir / --env PATH=/usr/bin \
  --entrypoint '["/usr/bin/hvtel"]' --cmd '["serve"]' --port 9477/tcp \
  --label org.opencontainers.image.title=hvtel \
  --label org.opencontainers.image.description="hvtel eBPF hypervisor telemetry agent (Debian 12 libraries, no shell)" \
  --label org.opencontainers.image.version="$version" \
  --label org.opencontainers.image.revision="$revision" \
  --label org.hvtel.image.stamp="$stamp" \
  "$ctr"
previous=$(podman image inspect --format '{{.Id}}' "$tag" 2>/dev/null || true)
buildah commit --quiet --format oci --timestamp "$epoch" --rm "$ctr" "$tag" >/dev/null
trap - EXIT
# The image this tag named before, now untagged (kept if a container still uses it).
if [ -n "$previous" ] && [ "$previous" != "$(podman image inspect --format '{{.Id}}' "$tag")" ]; then
  podman rmi "$previous" >/dev/null 2>&1 || true
fi
rm -f "$archive" "$archive.stamp"
buildah push --quiet "$tag" "oci-archive:$archive:$tag"
echo "$stamp" >"$archive.stamp"

# The configuration as podman sees it: no shell form anywhere.
[ "$(podman image inspect --format '{{json .Config.Entrypoint}} {{json .Config.Cmd}}' "$tag")" = \
  '["/usr/bin/hvtel"] ["serve"]' ] || die "unexpected entrypoint/cmd in $tag"
rootfs_bytes=$(du -sb "$rootfs" | cut -f1)
image_bytes=$(podman image inspect --format '{{.Size}}' "$tag")
archive_bytes=$(stat -c %s "$archive")
rm -rf "$work"
mib() { awk -v b="$1" 'BEGIN { printf "%.1f MiB", b / 1048576 }'; }
say "root filesystem $(mib "$rootfs_bytes"), image $(mib "$image_bytes") (podman image inspect .Size)," \
  "archive $(mib "$archive_bytes") (gzip layer)"
say "built $tag and $archive"
