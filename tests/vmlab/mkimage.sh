#!/bin/bash
# Build (or reuse) the VM-lab guest image for one stock Debian kernel.
#
#   mkimage.sh [-k KERNEL] [-b PROJECT_BIN]... [-r] [-q]
#
#   -k KERNEL  6.1 (Debian 12), 6.12 (Debian 13, trixie) or an exact ABI name like 6.1.0-56-amd64
#   -b BIN     a project binary the guest will run from the 9p-shared build dir: its shared libraries go
#              into the image (the binary itself does not, so rebuilding it never re-packs the image);
#              a BIN that does not exist yet is left out with a note
#   -r         re-resolve the kernel ABI name through apt even if one is cached (picks up a newer kernel)
#   -q         quiet: only print the image directory
#
# Output: $CACHE/img/$KERNEL/{vmlinux,initrd,kver,hash,manifest}. The image is rebuilt only when the hash of
# its inputs changes: this script, guest-init.sh, the kernel, and path+size+mtime of every file packed.
#
# Cache (outside the source tree): HVTEL_LAB_CACHE, default /var/cache/hvtel-lab. Downloaded .debs, the
# unpacked kernels and the private trixie apt state live there. The machine's apt configuration is never
# modified: Debian 13 packages come through a private sources.list/lists/cache under $CACHE/apt.
#
# Exit codes: 0 ok, 1 error, 77 cannot build here (no download possible) and CI is not "true".
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
CACHE=${HVTEL_LAB_CACHE:-/var/cache/hvtel-lab}
KERNEL=6.1
PROJECT_BINS=()
REFRESH=0
QUIET=0
while getopts "k:b:rq" o; do
  case $o in
    k) KERNEL=$OPTARG ;;
    b) PROJECT_BINS+=("$OPTARG") ;;
    r) REFRESH=1 ;;
    q) QUIET=1 ;;
    *) echo "usage: $0 [-k 6.1|6.12|KVER] [-b BIN]... [-r] [-q]" >&2; exit 2 ;;
  esac
done

say() { [ "$QUIET" = 1 ] || echo "mkimage[$KERNEL]: $*" >&2; }
# A missing prerequisite is a skip on a developer machine and a failure in CI.
cannot() {
  echo "mkimage[$KERNEL]: cannot build the lab image: $*" >&2
  if [ "${CI:-}" = "true" ]; then exit 1; fi
  exit 77
}

# Guest contents besides kernel modules. Tools are copied with every library ldd reports.
TOOLS=(
  /usr/bin/qemu-system-x86_64
  /usr/lib/openvswitch-switch/ovs-vswitchd
  /usr/sbin/ovsdb-server /usr/bin/ovsdb-tool /usr/bin/ovs-vsctl /usr/bin/ovs-ofctl /usr/bin/ovs-dpctl
  /usr/bin/ovs-appctl
  /usr/bin/ip /usr/bin/curl /usr/sbin/bpftool /usr/bin/jq /usr/bin/unshare
)
DATA=(
  /usr/share/openvswitch/vswitch.ovsschema
  /usr/share/seabios
  /usr/share/qemu/kvmvapic.bin /usr/share/qemu/linuxboot.bin /usr/share/qemu/linuxboot_dma.bin
  /usr/share/qemu/pvh.bin /usr/share/qemu/multiboot.bin /usr/share/qemu/multiboot_dma.bin
)
MODULES=(kvm_amd openvswitch veth tun 9p 9pnet_virtio virtio_pci)

for c in dpkg-deb apt-get objcopy xz zstd bc; do
  command -v $c >/dev/null || cannot "$c not found (see docs/testing.md for the packages the lab needs)"
done
command -v depmod >/dev/null && command -v modprobe >/dev/null || cannot "kmod (depmod/modprobe) not found"
for t in "${TOOLS[@]}"; do [ -x "$t" ] || cannot "$t not found (see docs/testing.md for the packages the lab needs)"; done
# Project binaries not built yet are left out: the cases that need them skip (or fail in CI) by themselves.
BINS_PRESENT=()
for b in "${PROJECT_BINS[@]}"; do
  if [ -x "$b" ]; then BINS_PRESENT+=("$b"); else say "note: $b is not built, its libraries are not packed"; fi
done
PROJECT_BINS=("${BINS_PRESENT[@]}")

mkdir -p "$CACHE"/{debs,kernels,k,img,apt}
exec 9>"$CACHE/lock"
flock 9

# --- apt: the machine's own config for Debian 12, a private one for Debian 13 -----------------------------
TRIXIE=$CACHE/apt/trixie
trixie_apt() {
  apt-get -q -o APT::Sandbox::User=root -o Dir::State::Lists="$TRIXIE/lists" -o Dir::Cache="$TRIXIE/cache" \
    -o Dir::Etc::SourceList="$TRIXIE/sources.list" -o Dir::Etc::SourceParts="$TRIXIE/parts" "$@"
}
trixie_apt_cache() {
  apt-cache -o Dir::State::Lists="$TRIXIE/lists" -o Dir::Cache="$TRIXIE/cache" \
    -o Dir::Etc::SourceList="$TRIXIE/sources.list" -o Dir::Etc::SourceParts="$TRIXIE/parts" "$@"
}
trixie_update() {
  mkdir -p "$TRIXIE"/{lists/partial,cache/archives/partial,parts}
  echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian trixie main" \
    > "$TRIXIE/sources.list"
  trixie_apt update >/dev/null || cannot "apt-get update for trixie failed"
}

# Resolve the kernel alias to an exact Debian ABI name (cached; -r refreshes).
resolve_kver() {
  local f=$CACHE/kernels/$KERNEL.kver kver=""
  if [ "$REFRESH" = 0 ] && [ -s "$f" ] && [ -d "$CACHE/k/$(cat "$f")" ]; then cat "$f"; return; fi
  case $KERNEL in
    6.1)
      if apt-cache show linux-image-6.1.0-56-amd64 >/dev/null 2>&1 && [ "$REFRESH" = 0 ]; then
        kver=6.1.0-56-amd64
      else
        kver=$(apt-cache search --names-only '^linux-image-6\.1\.0-[0-9]+-amd64$' | awk '{print $1}' |
               sed 's/^linux-image-//' | sort -V | tail -1)
      fi ;;
    6.12)
      trixie_update
      kver=$(trixie_apt_cache search --names-only '^linux-image-6\.12\.[0-9]+\+deb13-amd64$' | awk '{print $1}' |
             sed 's/^linux-image-//' | sort -V | tail -1) ;;
    *) kver=$KERNEL ;;
  esac
  [ -n "$kver" ] || cannot "no linux-image package found for kernel $KERNEL"
  echo "$kver" > "$f.tmp" && mv "$f.tmp" "$f"
  echo "$kver"
}

download() {  # download PKG [trixie]  -> path of the .deb in $CACHE/debs
  local pkg=$1 suite=${2:-} deb
  deb=$(ls "$CACHE/debs/${pkg}_"*.deb 2>/dev/null | sort -V | tail -1 || true)
  if [ -z "$deb" ]; then
    say "downloading $pkg"
    if [ "$suite" = trixie ]; then
      [ -d "$TRIXIE/lists" ] || trixie_update
      (cd "$CACHE/debs" && trixie_apt download "$pkg" >/dev/null) || cannot "apt-get download $pkg (trixie) failed"
    else
      (cd "$CACHE/debs" && apt-get -q -o APT::Sandbox::User=root download "$pkg" >/dev/null) ||
        cannot "apt-get download $pkg failed"
    fi
    deb=$(ls "$CACHE/debs/${pkg}_"*.deb | sort -V | tail -1)
  fi
  echo "$deb"
}

KVER=$(resolve_kver)
KD=$CACHE/k/$KVER
if [ ! -f "$KD/.unpacked" ]; then
  suite=""; [ "$KERNEL" = 6.12 ] || [[ $KVER == *deb13* ]] && suite=trixie
  deb=$(download "linux-image-$KVER" $suite)
  rm -rf "$KD" && mkdir -p "$KD"
  dpkg-deb -x "$deb" "$KD"
  touch "$KD/.unpacked"
fi
MB=$KD; [ -d "$KD/usr/lib/modules/$KVER" ] && MB=$KD/usr   # Debian 13: merged /usr inside the package
[ -f "$MB/lib/modules/$KVER/modules.dep" ] || depmod -b "$MB" "$KVER"
VMLINUZ=$KD/boot/vmlinuz-$KVER
[ -f "$VMLINUZ" ] || cannot "no $VMLINUZ in the package"

# The uncompressed ELF vmlinux boots through PVH (Debian has CONFIG_PVH=y), skipping SeaBIOS's bzImage loader
# and the in-guest decompression: 3.9 s instead of 8.4 s per boot under TCG. Its .BTF section also serves the
# host-side BTF checks (vmx_btf_check.sh).
extract_vmlinux() {  # bzImage -> ELF: find the payload by its compression magic and decompress from there
  local z=$1 out=$2 magic dec off
  for pair in 'fd377a585a00:xz -dcq --single-stream' '28b52ffd:zstd -dcq' '1f8b08:gzip -dcq'; do
    magic=${pair%%:*}; dec=${pair#*:}
    for off in $(LC_ALL=C grep -obUaP "$(sed 's/../\\x&/g' <<<"$magic")" "$z" | cut -d: -f1 | head -5); do
      tail -c +$((off + 1)) "$z" | $dec > "$out.tmp" 2>/dev/null
      if [ "$(head -c 4 "$out.tmp" | od -An -tx1 | tr -d ' ')" = 7f454c46 ]; then mv "$out.tmp" "$out"; return 0; fi
    done
  done
  rm -f "$out.tmp"; return 1
}
if [ ! -f "$KD/vmlinux" ]; then
  extract_vmlinux "$VMLINUZ" "$KD/vmlinux" || cannot "cannot extract vmlinux from $VMLINUZ"
fi
if [ ! -f "$KD/vmlinux.btf" ]; then
  objcopy -O binary --only-section=.BTF "$KD/vmlinux" "$KD/vmlinux.btf.tmp" && mv "$KD/vmlinux.btf.tmp" "$KD/vmlinux.btf"
fi

BB=$CACHE/k/busybox
if [ ! -x "$BB/bin/busybox" ]; then
  deb=$(download busybox-static)
  rm -rf "$BB" && mkdir -p "$BB" && dpkg-deb -x "$deb" "$BB"
fi

# --- what goes into the image -------------------------------------------------------------------------------
# Module objects in load order (the host's kmod resolves dependencies against the guest kernel's modules.dep).
MODLIST=$(for m in "${MODULES[@]}"; do
  modprobe -D -d "$MB" -S "$KVER" "$m" || cannot "module $m not in $KVER"
done | awk '$1 == "insmod" { print $2 }' | awk '!seen[$0]++')

libs_of() { ldd "$1" 2>/dev/null | awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }'; }
# Project binaries themselves are not packed (they come over 9p); only their libraries are. Those accumulate in
# $CACHE/project-libs: a run without -b (or with other binaries) must not drop them and re-pack the image under
# a concurrent run that needs them. A library that disappeared from the host is dropped.
PLIBS=$CACHE/project-libs
{ cat "$PLIBS" 2>/dev/null; for b in "${PROJECT_BINS[@]}"; do libs_of "$b"; done; } |
  sort -u | while read -r l; do [ -e "$l" ] && echo "$l"; done > "$PLIBS.tmp" && mv "$PLIBS.tmp" "$PLIBS"
FILES=$( { for t in "${TOOLS[@]}"; do libs_of "$t"; done; cat "$PLIBS"
           printf '%s\n' "${TOOLS[@]}"; find "${DATA[@]}" \( -type f -o -type l \) ; } | sort -u)

HASH=$( { echo "kver $KVER"; stat -c "%s %Y" "$KD/vmlinux"; sha256sum "$HERE/mkimage.sh" "$HERE/guest-init.sh" "$BB/bin/busybox"
          echo "$MODLIST"; while read -r f; do stat -L -c '%n %s %Y' "$f"; done <<<"$FILES"; } |
        sha256sum | cut -c1-16)
OUT=$CACHE/img/$KERNEL
if [ -f "$OUT/hash" ] && [ "$(cat "$OUT/hash")" = "$HASH" ] && [ -f "$OUT/initrd" ]; then
  say "image up to date ($KVER, $HASH)"
  [ "$QUIET" = 1 ] && echo "$OUT"
  exit 0
fi

say "building image for $KVER ($HASH)"
T0=$(date +%s.%N)
R=$(mktemp -d "$CACHE/img/.root.XXXXXX")
trap 'rm -rf "$R"' EXIT
# Merged /usr like the host, so every path ldd reports resolves in the guest as well.
mkdir -p "$R"/usr/{bin,sbin,lib,lib64} "$R"/{proc,sys,dev,tmp,run,root,etc,lab/run,bbin}
ln -s usr/bin "$R/bin"; ln -s usr/sbin "$R/sbin"; ln -s usr/lib "$R/lib"; ln -s usr/lib64 "$R/lib64"
cp "$BB/bin/busybox" "$R/bbin/busybox"
ln -s /bbin/busybox "$R/usr/bin/sh"   # /bin/sh: popen(3) and system(3) in the test binaries
while read -r f; do
  d=$(realpath "$(dirname "$f")")         # canonical directory (host has merged /usr, /lib -> usr/lib)
  mkdir -p "$R$d"
  cp -L "$f" "$R$d/$(basename "$f")"
done <<<"$FILES"
: > "$R/etc/modules.order"
while read -r ko; do
  [ -n "$ko" ] || continue
  rel=/usr${ko#"$MB"}                     # $MB/lib/modules/... -> /usr/lib/modules/... in the guest
  mkdir -p "$R$(dirname "$rel")"
  case $ko in   # busybox insmod wants plain ELF objects
    *.ko.xz)  rel=${rel%.xz};  xz -dc "$ko" > "$R$rel" ;;
    *.ko.zst) rel=${rel%.zst}; zstd -qdc "$ko" > "$R$rel" ;;
    *.ko.gz)  rel=${rel%.gz};  gzip -dc "$ko" > "$R$rel" ;;
    *)        cp "$ko" "$R$rel" ;;
  esac
  echo "$rel" >> "$R/etc/modules.order"
done <<<"$MODLIST"
printf 'root:x:0:0:root:/root:/bin/sh\n' > "$R/etc/passwd"
printf 'root:x:0:\n' > "$R/etc/group"
printf '127.0.0.1 localhost\n::1 localhost\n' > "$R/etc/hosts"
echo "$KVER" > "$R/etc/hvlab-kver"
install -m 0755 "$HERE/guest-init.sh" "$R/init"

mkdir -p "$OUT.new"
# Uncompressed cpio: the guest kernel unpacks it without a decompressor (faster than gzip under TCG).
(cd "$R" && find . | LC_ALL=C sort | "$BB/bin/busybox" cpio -o -H newc 2>/dev/null) > "$OUT.new/initrd"
ln "$KD/vmlinux" "$OUT.new/vmlinux" 2>/dev/null || cp "$KD/vmlinux" "$OUT.new/vmlinux"
echo "$KVER" > "$OUT.new/kver"
{ echo "# modules"; cat "$R/etc/modules.order"; echo "# files"; echo "$FILES"; } > "$OUT.new/manifest"
echo "$HASH" > "$OUT.new/hash"
rm -rf "$OUT" && mv "$OUT.new" "$OUT"
say "image $OUT: $(du -h "$OUT/initrd" | cut -f1) initrd, $(grep -c . "$R/etc/modules.order") modules," \
    "$(printf '%.1f' "$(echo "$(date +%s.%N) - $T0" | bc)") s"
[ "$QUIET" = 1 ] && echo "$OUT"
exit 0
