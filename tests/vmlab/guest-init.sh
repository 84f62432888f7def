#!/bbin/busybox sh
# PID 1 of a VM-lab guest (packed as /init by mkimage.sh).
#
# Contract with run.sh:
#   9p tag "run"   -> /lab/run: guest.env (sourced), cmd.sh (run), out/ (files handed back to the host)
#   9p tag "build" -> $HVLAB_BUILD_DIR (read-only; the project binaries, same absolute path as on the host)
#   /dev/ttyS1     <- the command's stdout+stderr, then one line "HVLAB-RC=<exit code>"
#   /dev/ttyS0     <- kernel console and "HVLAB:" progress lines (console.log on the host)
/bbin/busybox --install -s /bbin
export PATH=/usr/sbin:/usr/bin:/bbin HOME=/root
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null
mkdir -p /dev/pts /dev/shm && mount -t devpts devpts /dev/pts && mount -t tmpfs shm /dev/shm
mount -t tmpfs tmpfs /tmp
mount -t tmpfs tmpfs /run
mount -t tracefs tracefs /sys/kernel/tracing
mount -t debugfs debugfs /sys/kernel/debug
mount -t bpf bpf /sys/fs/bpf
mount -t cgroup2 cgroup2 /sys/fs/cgroup
ip link set lo up

log() { echo "HVLAB: $*" > /dev/console; }
T_UP=$(cut -d' ' -f1 /proc/uptime)
while read -r ko; do
  insmod "$ko" 2>/tmp/insmod.err || log "insmod $ko failed: $(cat /tmp/insmod.err)"
done < /etc/modules.order
T_MOD=$(cut -d' ' -f1 /proc/uptime)

OUT=/dev/ttyS1
[ -c $OUT ] || OUT=/dev/console
stty -F $OUT raw -echo 2>/dev/null
rc=125
if mount -t 9p -o trans=virtio,version=9p2000.L,msize=262144 run /lab/run; then
  . /lab/run/guest.env
  if [ -n "${HVLAB_BUILD_DIR:-}" ]; then
    mkdir -p "$HVLAB_BUILD_DIR"
    mount -t 9p -o trans=virtio,version=9p2000.L,msize=262144,ro build "$HVLAB_BUILD_DIR" ||
      log "cannot mount the build dir at $HVLAB_BUILD_DIR"
  fi
  log "up at ${T_UP}s, modules loaded at ${T_MOD}s, running the command"
  (cd /tmp && sh /lab/run/cmd.sh) > $OUT 2>&1 < /dev/null
  rc=$?
else
  log "cannot mount the 9p run share"
fi
echo "HVLAB-RC=$rc uptime=$(cut -d' ' -f1 /proc/uptime)" > $OUT
log "done rc=$rc at $(cut -d' ' -f1 /proc/uptime)s"
sync
umount /lab/run 2>/dev/null
poweroff -f
