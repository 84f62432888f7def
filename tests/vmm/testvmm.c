// hvtel-testvmm: a tiny KVM VMM whose guests make an exactly known number of exits.
//
// Used by hvtel's integration tests, VM-lab tests and benchmarks as a ground truth: one VM,
// N vCPU threads named "CPU <i>/KVM" (as QEMU names them with debug-threads=on), each running a
// few bytes of real-mode code that exits to the VMM K times. See README.md and --help.
//
// Plain C11 + POSIX; nothing beyond libc, pthreads and <linux/kvm.h>.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <linux/kvm.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

enum { kExitUsage = 2, kExitRuntime = 1 };

enum {
  kGuestMemSize = 64 * 1024,
  kIoPort = 0x10,
  // Guest programs; all real mode, CS base 0, so these are both physical addresses and IPs.
  kCodeCounted = 0x1000,  // out 0x10,al ; dec ecx ; jnz <out> ; hlt ; jmp <hlt>
  kCodeCountedHlt = 0x1006,
  kCodeHltLoop = 0x1100,   // hlt ; jmp <hlt>
  kCodeStormOut = 0x1200,  // out 0x10,al ; jmp <out>
};

// 0x66 is needed on "dec ecx": in 16-bit code plain 0x49 is "dec cx", which would cap K at 65535.
static const uint8_t kProgCounted[] = {0xE6, kIoPort, 0x66, 0x49, 0x75, 0xFA, 0xF4, 0xEB, 0xFD};
static const uint8_t kProgHltLoop[] = {0xF4, 0xEB, 0xFD};
static const uint8_t kProgStormOut[] = {0xE6, kIoPort, 0xEB, 0xFC};

enum Mode { kModeOut, kModeHlt };

struct Options {
  int vcpus;
  uint64_t k;
  long delay_us;
  enum Mode mode;
  double storm_s;  // > 0: storm mode
  double hold_s;
  bool hold_until_eof;
  long start_delay_ms;
  const char* tap;      // --tap: a tap device the VMM holds, as QEMU holds a guest NIC's
  uint64_t tap_frames;  // --tap-frames: frames written into it on each SIGUSR2
  int vcpu_cpus[CPU_SETSIZE];  // per-vCPU pin target, -1 = not pinned
  int n_vcpu_cpus;
  cpu_set_t main_cpus;
  bool pin_main;
  cpu_set_t float_cpus;  // --float: every vCPU thread widens its own affinity to this
  bool float_vcpus;
  bool stay;  // --stay: a floating vCPU the scheduler moved off its -a cpu goes back there
};

struct Vcpu {
  int index;
  int fd;
  struct kvm_run* run;
  pthread_t thread;
  pid_t tid;
  int cpu;  // -1 if not pinned

  // Written only by the vCPU thread; read by main after `done` (acquire) is observed.
  uint64_t io_exits;
  uint64_t hlt_exits;
  uint64_t mmio_exits;
  uint64_t intr_exits;   // KVM_RUN gave EINTR/EAGAIN (signal, immediate_exit): not a guest exit
  uint64_t other_exits;  // unexpected exit reasons (including I/O to other ports); an error
  uint32_t last_other_reason;
  uint64_t ran_on;   // bit c: KVM_RUN returned on cpu c (c < 64), sampled at every return
  uint64_t rehomed;  // --stay: times it found itself off its -a cpu and went back
  int run_errno;  // KVM_RUN failed with something other than EINTR/EAGAIN
  bool completed;  // reached its defined end (final HLT, K-th HLT, or storm stop)
  struct timespec t_start, t_end;
  atomic_bool done;
};

static struct Options g_opt;
static struct Vcpu* g_vcpus;

// Set by SIGINT/SIGTERM or by the storm deadline; checked once per exit in the hot loop.
static atomic_bool g_stop;
// Set only by SIGTERM/SIGINT: ends a hold, unlike the storm deadline.
static atomic_bool g_signalled;
// Wakes the main thread: written by the signal handler and by each vCPU thread when it finishes.
static int g_wake_fd = -1;

static pthread_barrier_t g_ready_barrier;  // vCPU threads named + tids known
static pthread_barrier_t g_go_barrier;     // released after READY and --start-delay
static pthread_mutex_t g_release_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t g_release_cv = PTHREAD_COND_INITIALIZER;
static bool g_release;  // vCPU threads may exit (end of hold)

static void die(const char* fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fputs("hvtel-testvmm: ", stderr);
  vfprintf(stderr, fmt, ap);
  fputc('\n', stderr);
  va_end(ap);
  exit(kExitRuntime);
}

static void usage_error(const char* fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fputs("hvtel-testvmm: ", stderr);
  vfprintf(stderr, fmt, ap);
  fputs("\n(try --help)\n", stderr);
  va_end(ap);
  exit(kExitUsage);
}

static void print_help(void) {
  fputs(
      "Usage: hvtel-testvmm [options]\n"
      "\n"
      "A tiny KVM VMM for hvtel's tests: one VM, N vCPU threads named \"CPU <i>/KVM\",\n"
      "no in-kernel irqchip, each vCPU running real-mode code that makes an exact number\n"
      "of exits to the VMM.\n"
      "\n"
      "  -n N                 vCPUs (default 1)\n"
      "  -k K                 exits per vCPU (default 1000, 0..4294967295)\n"
      "  -m out|hlt           out (default): K x KVM_EXIT_IO (out 0x10,al, size 1) then exactly\n"
      "                       1 KVM_EXIT_HLT; the vCPU stops after that HLT (K+1 exits).\n"
      "                       hlt: the guest loops on hlt; the VMM stops the vCPU after the\n"
      "                       K-th KVM_EXIT_HLT (K exits; K=0 never enters KVM_RUN).\n"
      "  -d USEC              sleep USEC in the VMM before every re-entry of KVM_RUN after an\n"
      "                       expected exit (out mode: K sleeps; hlt mode: K-1)\n"
      "  -a CPULIST           pin vCPU threads: \"0,1\" pins vCPU0 to cpu0, vCPU1 to cpu1;\n"
      "                       a single cpu pins all vCPUs there\n"
      "  -A CPULIST           pin the main (emulator) thread, e.g. \"0\" or \"0-1,3\"\n"
      "  --float CPULIST      each vCPU thread widens its own affinity to CPULIST once it\n"
      "                       runs (where -a put it), e.g. -a 1 --float 0-1\n"
      "  --stay               with --float: a vCPU thread that finds itself off its -a cpu\n"
      "                       after an exit goes back there (its own two calls; counted)\n"
      "  --storm SECONDS      benchmark: the guest loops on out (or hlt with -m hlt) forever;\n"
      "                       the VMM stops after SECONDS and reports exits/s (-k ignored)\n"
      "  --start-delay MS     wait MS after READY before the first KVM_RUN\n"
      "  --hold SECONDS       after the summary, keep the process and its (blocked) vCPU\n"
      "                       threads alive for SECONDS\n"
      "  --hold-until-stdin-eof  hold until stdin reaches EOF (with --hold: whichever is first)\n"
      "  --tap NAME           open the tap device NAME (created if absent) and hold it, as\n"
      "                       QEMU holds a guest NIC's tap\n"
      "  --tap-frames N       on each SIGUSR2, write N Ethernet frames into the tap (the\n"
      "                       guest sending): from 52:54:00:00:00:01 to ff:ff:ff:ff:ff:ff,\n"
      "                       ethertype 0x88b5, 60 bytes; then \"TAP <name> <N>\" on stderr\n"
      "  -uuid UUID, -name guest=NAME,debug-threads=on, -name NAME\n"
      "                       accepted and ignored, as in QEMU's command line\n"
      "  -h, --help           this text\n"
      "\n"
      "Protocol:\n"
      "  stderr: \"READY <pid>\" once all vCPU threads exist and are named, before\n"
      "          --start-delay and before the first KVM_RUN.\n"
      "  stdout: one line of JSON as soon as every vCPU has stopped (before --hold):\n"
      "          {\"pid\":P,\"mode\":\"out\",\"storm\":false,\"k\":K,\"delay_us\":D,\"vcpus\":[\n"
      "           {\"index\":0,\"tid\":T,\"cpu\":-1,\"io_exits\":K,\"hlt_exits\":1,\n"
      "            \"mmio_exits\":0,\"other_exits\":0,\"intr_exits\":0,\"completed\":true,\n"
      "            \"seconds\":S,\"exits_per_second\":R}],\n"
      "           \"total_exits\":X,\"seconds\":S,\"exits_per_second\":R,\"ok\":true}\n"
      "          total_exits counts guest exits (io+hlt+mmio+other), not intr_exits.\n"
      "  SIGINT/SIGTERM stop running vCPUs and end --hold early.\n"
      "\n"
      "Exit status: 0 ok, 1 runtime error or unexpected exits or interrupted run, 2 usage.\n",
      stdout);
}

// ---- argument parsing -------------------------------------------------------------------------

static uint64_t parse_u64(const char* opt, const char* s, uint64_t max) {
  char* end;
  errno = 0;
  unsigned long long v = strtoull(s, &end, 10);
  if (errno != 0 || end == s || *end != '\0' || s[0] == '-' || v > max) {
    usage_error("%s: expected an integer in 0..%llu, got \"%s\"", opt, (unsigned long long)max, s);
  }
  return (uint64_t)v;
}

static double parse_seconds(const char* opt, const char* s) {
  char* end;
  errno = 0;
  double v = strtod(s, &end);
  if (errno != 0 || end == s || *end != '\0' || !(v >= 0) || v > 1e7) {
    usage_error("%s: expected a non-negative number of seconds, got \"%s\"", opt, s);
  }
  return v;
}

// "0,1,3": one cpu per entry, no ranges (positions map to vCPUs).
static void parse_vcpu_cpus(const char* s, struct Options* o) {
  char* copy = strdup(s);
  if (copy == NULL) die("out of memory");
  o->n_vcpu_cpus = 0;
  char* save = NULL;
  for (char* tok = strtok_r(copy, ",", &save); tok != NULL; tok = strtok_r(NULL, ",", &save)) {
    if (o->n_vcpu_cpus == CPU_SETSIZE) usage_error("-a: too many entries");
    o->vcpu_cpus[o->n_vcpu_cpus++] = (int)parse_u64("-a", tok, CPU_SETSIZE - 1);
  }
  free(copy);
  if (o->n_vcpu_cpus == 0) usage_error("-a: empty cpu list");
}

// "0-1,3": a cpu set.
static void parse_cpu_set(const char* opt, const char* s, cpu_set_t* set) {
  char* copy = strdup(s);
  if (copy == NULL) die("out of memory");
  CPU_ZERO(set);
  char* save = NULL;
  for (char* tok = strtok_r(copy, ",", &save); tok != NULL; tok = strtok_r(NULL, ",", &save)) {
    char* dash = strchr(tok, '-');
    uint64_t lo, hi;
    if (dash != NULL) {
      *dash = '\0';
      lo = parse_u64(opt, tok, CPU_SETSIZE - 1);
      hi = parse_u64(opt, dash + 1, CPU_SETSIZE - 1);
      if (hi < lo) usage_error("%s: bad range %s-%s", opt, tok, dash + 1);
    } else {
      lo = hi = parse_u64(opt, tok, CPU_SETSIZE - 1);
    }
    for (uint64_t c = lo; c <= hi; c++) CPU_SET((int)c, set);
  }
  free(copy);
  if (CPU_COUNT(set) == 0) usage_error("%s: empty cpu list", opt);
}

static void parse_args(int argc, char** argv, struct Options* o) {
  memset(o, 0, sizeof(*o));
  o->vcpus = 1;
  o->k = 1000;
  o->mode = kModeOut;
  for (int i = 1; i < argc; i++) {
    const char* a = argv[i];
    if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
      print_help();
      exit(0);
    }
    if (strcmp(a, "--hold-until-stdin-eof") == 0) {
      o->hold_until_eof = true;
      continue;
    }
    if (strcmp(a, "--stay") == 0) {
      o->stay = true;
      continue;
    }
    // Everything else takes exactly one value.
    static const char* const kWithValue[] = {
        "-n", "-k", "-d", "-a", "-A", "--float", "-m", "--storm", "--hold", "--start-delay", "-uuid", "-name",
        "--tap", "--tap-frames"};
    bool known = false;
    for (size_t j = 0; j < sizeof(kWithValue) / sizeof(kWithValue[0]); j++) {
      if (strcmp(a, kWithValue[j]) == 0) known = true;
    }
    if (!known) usage_error("unknown option \"%s\"", a);
    if (i + 1 >= argc) usage_error("%s needs a value", a);
    const char* v = argv[++i];
    if (strcmp(a, "-n") == 0) {
      o->vcpus = (int)parse_u64(a, v, 1024);
      if (o->vcpus == 0) usage_error("-n must be at least 1");
    } else if (strcmp(a, "-k") == 0) {
      o->k = parse_u64(a, v, UINT32_MAX);  // ECX is the guest's loop counter
    } else if (strcmp(a, "-d") == 0) {
      o->delay_us = (long)parse_u64(a, v, 60L * 1000 * 1000);
    } else if (strcmp(a, "-a") == 0) {
      parse_vcpu_cpus(v, o);
    } else if (strcmp(a, "-A") == 0) {
      parse_cpu_set(a, v, &o->main_cpus);
      o->pin_main = true;
    } else if (strcmp(a, "--float") == 0) {
      parse_cpu_set(a, v, &o->float_cpus);
      o->float_vcpus = true;
    } else if (strcmp(a, "-m") == 0) {
      if (strcmp(v, "out") == 0) {
        o->mode = kModeOut;
      } else if (strcmp(v, "hlt") == 0) {
        o->mode = kModeHlt;
      } else {
        usage_error("-m: expected out or hlt, got \"%s\"", v);
      }
    } else if (strcmp(a, "--storm") == 0) {
      o->storm_s = parse_seconds(a, v);
      if (o->storm_s <= 0) usage_error("--storm must be > 0");
    } else if (strcmp(a, "--hold") == 0) {
      o->hold_s = parse_seconds(a, v);
    } else if (strcmp(a, "--start-delay") == 0) {
      o->start_delay_ms = (long)parse_u64(a, v, 3600L * 1000);
    } else if (strcmp(a, "--tap") == 0) {
      if (strlen(v) == 0 || strlen(v) >= IFNAMSIZ) usage_error("--tap: bad interface name \"%s\"", v);
      o->tap = v;
    } else if (strcmp(a, "--tap-frames") == 0) {
      o->tap_frames = parse_u64(a, v, 1000000);
    }
    // -uuid and -name: identity for discovery; their value is ignored.
  }
  if (o->n_vcpu_cpus > 1 && o->n_vcpu_cpus != o->vcpus) {
    usage_error("-a lists %d cpus for %d vCPUs (give one cpu, or one per vCPU)", o->n_vcpu_cpus,
                o->vcpus);
  }
}

// ---- time and waiting -------------------------------------------------------------------------

static double ts_diff(const struct timespec* a, const struct timespec* b) {
  return (double)(b->tv_sec - a->tv_sec) + (double)(b->tv_nsec - a->tv_nsec) / 1e9;
}

static struct timespec now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t;
}

static void sleep_us(long us) {
  struct timespec d = {.tv_sec = us / 1000000, .tv_nsec = (us % 1000000) * 1000};
  // Restart with the remainder: a kick signal must not shorten the injected delay.
  while (clock_nanosleep(CLOCK_MONOTONIC, 0, &d, &d) == EINTR) {
  }
}

static void wake_main(void) {
  uint64_t one = 1;
  // Only fails if the counter would overflow, which cannot happen here.
  ssize_t r = write(g_wake_fd, &one, sizeof(one));
  (void)r;
}

static void on_stop_signal(int sig) {
  (void)sig;
  atomic_store(&g_stop, true);
  atomic_store(&g_signalled, true);
  int saved = errno;
  wake_main();
  errno = saved;
}

// Only there to make KVM_RUN return EINTR in the thread it is sent to.
static void on_kick_signal(int sig) { (void)sig; }

// Waits until the wake eventfd fires, stdin hits EOF (if watch_stdin), or the timeout passes
// (timeout_ms < 0: none). Returns true if stdin reached EOF.
static bool wait_wake(int timeout_ms, bool watch_stdin) {
  struct pollfd pfd[2] = {{.fd = g_wake_fd, .events = POLLIN},
                          {.fd = STDIN_FILENO, .events = POLLIN}};
  int r = poll(pfd, watch_stdin ? 2 : 1, timeout_ms);
  if (r <= 0) return false;  // timeout or EINTR: callers re-check their conditions
  if (pfd[0].revents & POLLIN) {
    uint64_t v;
    ssize_t n = read(g_wake_fd, &v, sizeof(v));
    (void)n;
  }
  if (watch_stdin && (pfd[1].revents & (POLLIN | POLLHUP | POLLERR))) {
    char buf[4096];
    ssize_t n = read(STDIN_FILENO, buf, sizeof(buf));
    if (n <= 0 && !(n < 0 && errno == EINTR)) return true;
  }
  return false;
}

static int ms_until(const struct timespec* deadline) {
  struct timespec t = now();
  double left = ts_diff(&t, deadline);
  if (left <= 0) return 0;
  double ms = left * 1000.0 + 1.0;  // round up so we never wake just before the deadline
  return ms > INT_MAX ? INT_MAX : (int)ms;
}

static struct timespec deadline_after(double seconds) {
  struct timespec t = now();
  double whole = (double)(long)seconds;
  t.tv_sec += (time_t)whole;
  t.tv_nsec += (long)((seconds - whole) * 1e9);
  if (t.tv_nsec >= 1000000000L) {
    t.tv_sec++;
    t.tv_nsec -= 1000000000L;
  }
  return t;
}

// Gets every vCPU out of KVM_RUN the way QEMU does: immediate_exit catches a thread that is about
// to enter, the signal one that is already inside. Cheap enough to repeat.
static void kick_all(void) {
  for (int i = 0; i < g_opt.vcpus; i++) {
    struct Vcpu* v = &g_vcpus[i];
    if (atomic_load(&v->done)) continue;
    v->run->immediate_exit = 1;
    pthread_kill(v->thread, SIGUSR1);
  }
}

// ---- the vCPU thread --------------------------------------------------------------------------

// Back onto its -a cpu and floating again from there: two calls of its own, microseconds apart, so the
// thread's allowed set stays CPULIST as far as anyone watching the vCPU's affinity can tell.
static void go_home(const struct Vcpu* v) {
  cpu_set_t home;
  CPU_ZERO(&home);
  CPU_SET(v->cpu, &home);
  if (sched_setaffinity(0, sizeof(home), &home) != 0 ||
      sched_setaffinity(0, sizeof(g_opt.float_cpus), &g_opt.float_cpus) != 0)
    die("vCPU %d: --float failed: %s", v->index, strerror(errno));
}

static void run_vcpu(struct Vcpu* v) {
  const bool storm = g_opt.storm_s > 0;
  const uint64_t k = g_opt.k;
  const long delay_us = g_opt.delay_us;
  const enum Mode mode = g_opt.mode;
  struct kvm_run* run = v->run;
  const bool stay = g_opt.stay && g_opt.float_vcpus && v->cpu >= 0;

  if (mode == kModeHlt && !storm && k == 0) {
    v->completed = true;
    return;
  }
  for (;;) {
    if (atomic_load_explicit(&g_stop, memory_order_relaxed)) {
      v->completed = storm;  // a storm ends by being stopped; a counted run must not
      return;
    }
    if (ioctl(v->fd, KVM_RUN, 0) < 0) {
      if (errno == EINTR || errno == EAGAIN) {
        v->intr_exits++;
        continue;
      }
      v->run_errno = errno;
      return;
    }
    // Where the thread runs, as the scenario's precondition: reported in the summary.
    const int cpu = sched_getcpu();
    if (cpu >= 0 && cpu < 64) v->ran_on |= 1ULL << cpu;
    if (stay && cpu != v->cpu) {
      go_home(v);
      v->rehomed++;
    }
    bool expected = false;
    switch (run->exit_reason) {
      case KVM_EXIT_IO:
        expected = mode == kModeOut && run->io.direction == KVM_EXIT_IO_OUT &&
                   run->io.port == kIoPort && run->io.size == 1 && run->io.count == 1;
        if (expected) v->io_exits++;
        break;
      case KVM_EXIT_HLT:
        expected = mode == kModeHlt || !storm;  // the storm out-loop never halts
        if (!expected) break;
        v->hlt_exits++;
        if (!storm && (mode == kModeOut || v->hlt_exits == k)) {
          // The defined end: no re-entry, so no delay either. In out mode a HLT before the K-th
          // OUT would mean the guest program is broken, so it does not count as completion.
          v->completed = mode == kModeHlt || v->io_exits == k;
          return;
        }
        break;
      case KVM_EXIT_MMIO:
        v->mmio_exits++;
        v->last_other_reason = KVM_EXIT_MMIO;
        return;  // the guest code never touches MMIO: stop this vCPU and report it
      default:
        break;
    }
    if (!expected) {
      // Stop rather than re-enter: SHUTDOWN, INTERNAL_ERROR etc. would just repeat.
      v->other_exits++;
      v->last_other_reason = run->exit_reason;
      return;
    }
    if (delay_us > 0) sleep_us(delay_us);
  }
}

static void* vcpu_thread(void* arg) {
  struct Vcpu* v = arg;
  char name[16];
  snprintf(name, sizeof(name), "CPU %d/KVM", v->index);
  prctl(PR_SET_NAME, name, 0, 0, 0);
  v->tid = gettid();
  // --float: widen its own affinity from where -a started it (as libvirt floats vCPUs over a
  // cpuset); the thread stays on that cpu until the scheduler moves it. Its own call, so no
  // other process changed a vCPU's affinity.
  if (g_opt.float_vcpus && sched_setaffinity(0, sizeof(g_opt.float_cpus), &g_opt.float_cpus) != 0)
    die("vCPU %d: --float failed: %s", v->index, strerror(errno));
  pthread_barrier_wait(&g_ready_barrier);
  pthread_barrier_wait(&g_go_barrier);
  // A wake-up may have placed the thread elsewhere in CPULIST: back onto its -a cpu, so that it enters
  // the guest where -a put it.
  if (g_opt.float_vcpus && v->cpu >= 0) go_home(v);

  v->t_start = now();
  run_vcpu(v);
  v->t_end = now();
  atomic_store_explicit(&v->done, true, memory_order_release);
  wake_main();

  // Stay alive (same tid, same comm) until the hold period is over.
  pthread_mutex_lock(&g_release_mu);
  while (!g_release) pthread_cond_wait(&g_release_cv, &g_release_mu);
  pthread_mutex_unlock(&g_release_mu);
  return NULL;
}

// ---- VM setup ---------------------------------------------------------------------------------

static int kvm_ioctl_or_die(int fd, unsigned long req, void* arg, const char* what) {
  int r = ioctl(fd, req, arg);
  if (r < 0) die("%s failed: %s", what, strerror(errno));
  return r;
}

static void setup_vcpu(int vm_fd, int mmap_size, struct Vcpu* v) {
  v->fd = ioctl(vm_fd, KVM_CREATE_VCPU, (unsigned long)v->index);
  if (v->fd < 0) die("KVM_CREATE_VCPU %d failed: %s", v->index, strerror(errno));
  v->run = mmap(NULL, (size_t)mmap_size, PROT_READ | PROT_WRITE, MAP_SHARED, v->fd, 0);
  if (v->run == MAP_FAILED) die("mmap of vCPU %d kvm_run failed: %s", v->index, strerror(errno));

  struct kvm_sregs sregs;
  kvm_ioctl_or_die(v->fd, KVM_GET_SREGS, &sregs, "KVM_GET_SREGS");
  // Reset state has CS base 0xffff0000; flatten it so IP == physical address.
  sregs.cs.base = 0;
  sregs.cs.selector = 0;
  kvm_ioctl_or_die(v->fd, KVM_SET_SREGS, &sregs, "KVM_SET_SREGS");

  struct kvm_regs regs;
  memset(&regs, 0, sizeof(regs));
  regs.rflags = 2;  // bit 1 is reserved-as-one
  if (g_opt.storm_s > 0) {
    regs.rip = g_opt.mode == kModeOut ? kCodeStormOut : kCodeHltLoop;
  } else if (g_opt.mode == kModeHlt) {
    regs.rip = kCodeHltLoop;
  } else {
    // The loop body runs before the ECX test, so K == 0 must start at the HLT.
    regs.rip = g_opt.k == 0 ? kCodeCountedHlt : kCodeCounted;
    regs.rcx = g_opt.k;
  }
  kvm_ioctl_or_die(v->fd, KVM_SET_REGS, &regs, "KVM_SET_REGS");
}

// ---- output -----------------------------------------------------------------------------------

static bool print_summary(double wall_s) {
  bool ok = true;
  uint64_t total = 0;
  const bool storm = g_opt.storm_s > 0;
  printf("{\"pid\":%d,\"mode\":\"%s\",\"storm\":%s,\"k\":%llu,\"delay_us\":%ld,\"vcpus\":[",
         (int)getpid(), g_opt.mode == kModeOut ? "out" : "hlt", storm ? "true" : "false",
         (unsigned long long)g_opt.k, g_opt.delay_us);
  for (int i = 0; i < g_opt.vcpus; i++) {
    const struct Vcpu* v = &g_vcpus[i];
    uint64_t exits = v->io_exits + v->hlt_exits + v->mmio_exits + v->other_exits;
    double s = ts_diff(&v->t_start, &v->t_end);
    total += exits;
    printf(
        "%s{\"index\":%d,\"tid\":%d,\"cpu\":%d,\"io_exits\":%llu,\"hlt_exits\":%llu,"
        "\"mmio_exits\":%llu,\"other_exits\":%llu,\"intr_exits\":%llu,\"completed\":%s,"
        "\"seconds\":%.6f,\"exits_per_second\":%.1f,\"rehomed\":%llu,\"ran_on\":[",
        i ? "," : "", v->index, (int)v->tid, v->cpu, (unsigned long long)v->io_exits,
        (unsigned long long)v->hlt_exits, (unsigned long long)v->mmio_exits,
        (unsigned long long)v->other_exits, (unsigned long long)v->intr_exits,
        v->completed ? "true" : "false", s, s > 0 ? (double)exits / s : 0.0, (unsigned long long)v->rehomed);
    const char* sep = "";
    for (int c = 0; c < 64; c++) {
      if (v->ran_on & (1ULL << c)) {
        printf("%s%d", sep, c);
        sep = ",";
      }
    }
    printf("]}");

    if (v->run_errno != 0) {
      fprintf(stderr, "hvtel-testvmm: vCPU %d: KVM_RUN failed: %s\n", v->index,
              strerror(v->run_errno));
      ok = false;
    }
    if (v->mmio_exits != 0 || v->other_exits != 0) {
      fprintf(stderr, "hvtel-testvmm: vCPU %d: stopped on unexpected exit reason %u\n", v->index,
              v->last_other_reason);
      ok = false;
    }
    if (!v->completed) ok = false;
  }
  printf("],\"total_exits\":%llu,\"seconds\":%.6f,\"exits_per_second\":%.1f,\"ok\":%s}\n",
         (unsigned long long)total, wall_s, wall_s > 0 ? (double)total / wall_s : 0.0,
         ok ? "true" : "false");
  fflush(stdout);
  return ok;
}

// ---- main -------------------------------------------------------------------------------------

// ---- the tap ---------------------------------------------------------------------------------

static int open_tap(const char* name) {
  int fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC);
  if (fd < 0) die("cannot open /dev/net/tun: %s", strerror(errno));
  struct ifreq ifr;
  memset(&ifr, 0, sizeof(ifr));
  ifr.ifr_flags = IFF_TAP | IFF_NO_PI;
  strncpy(ifr.ifr_name, name, IFNAMSIZ - 1);
  if (ioctl(fd, TUNSETIFF, &ifr) != 0) die("tap %s: TUNSETIFF: %s", name, strerror(errno));
  return fd;
}

// Writes --tap-frames frames on each SIGUSR2 (blocked in every other thread).
static void* tap_thread(void* arg) {
  int fd = *(int*)arg;
  prctl(PR_SET_NAME, "tap", 0, 0, 0);
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGUSR2);
  for (;;) {
    int sig = 0;
    if (sigwait(&set, &sig) != 0) continue;
    uint64_t sent = 0;
    for (uint64_t i = 0; i < g_opt.tap_frames; i++) {
      uint8_t f[60] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x52, 0x54, 0x00, 0x00, 0x00, 0x01, 0x88, 0xb5};
      memcpy(f + 14, &i, sizeof(i));
      if (write(fd, f, sizeof(f)) == (ssize_t)sizeof(f)) {
        sent++;
      } else {
        fprintf(stderr, "tap %s: write: %s\n", g_opt.tap, strerror(errno));
        break;
      }
    }
    fprintf(stderr, "TAP %s %llu\n", g_opt.tap, (unsigned long long)sent);
    fflush(stderr);
  }
  return NULL;
}

static void install_handler(int sig, void (*fn)(int)) {
  struct sigaction sa;
  memset(&sa, 0, sizeof(sa));
  sa.sa_handler = fn;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = 0;  // no SA_RESTART: interrupting KVM_RUN and poll is the point
  if (sigaction(sig, &sa, NULL) != 0) die("sigaction: %s", strerror(errno));
}

int main(int argc, char** argv) {
  parse_args(argc, argv, &g_opt);

  g_wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (g_wake_fd < 0) die("eventfd: %s", strerror(errno));
  install_handler(SIGINT, on_stop_signal);
  install_handler(SIGTERM, on_stop_signal);
  install_handler(SIGUSR1, on_kick_signal);
  // Only the tap thread takes SIGUSR2: blocked here, before any thread exists.
  sigset_t usr2;
  sigemptyset(&usr2);
  sigaddset(&usr2, SIGUSR2);
  pthread_sigmask(SIG_BLOCK, &usr2, NULL);
  static int tap_fd = -1;
  if (g_opt.tap) {
    tap_fd = open_tap(g_opt.tap);
    pthread_t t;
    if (pthread_create(&t, NULL, tap_thread, &tap_fd) != 0) die("creating the tap thread failed");
    pthread_detach(t);
  }

  int kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
  if (kvm < 0) die("cannot open /dev/kvm: %s", strerror(errno));
  int api = ioctl(kvm, KVM_GET_API_VERSION, 0);
  if (api < 0) die("/dev/kvm: KVM_GET_API_VERSION failed: %s (is it really KVM?)", strerror(errno));
  if (api != KVM_API_VERSION) die("KVM API version %d, expected %d", api, KVM_API_VERSION);
  if (ioctl(kvm, KVM_CHECK_EXTENSION, KVM_CAP_IMMEDIATE_EXIT) <= 0) {
    die("KVM lacks KVM_CAP_IMMEDIATE_EXIT");
  }
  int mmap_size = ioctl(kvm, KVM_GET_VCPU_MMAP_SIZE, 0);
  if (mmap_size < (int)sizeof(struct kvm_run)) {
    die("KVM_GET_VCPU_MMAP_SIZE failed: %s", strerror(errno));
  }
  int vm = ioctl(kvm, KVM_CREATE_VM, 0UL);
  if (vm < 0) die("KVM_CREATE_VM failed: %s", strerror(errno));
  // Deliberately no KVM_CREATE_IRQCHIP: without it HLT exits to userspace as KVM_EXIT_HLT.

  uint8_t* mem = mmap(NULL, kGuestMemSize, PROT_READ | PROT_WRITE,
                      MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (mem == MAP_FAILED) die("mmap guest memory: %s", strerror(errno));
  memcpy(mem + kCodeCounted, kProgCounted, sizeof(kProgCounted));
  memcpy(mem + kCodeHltLoop, kProgHltLoop, sizeof(kProgHltLoop));
  memcpy(mem + kCodeStormOut, kProgStormOut, sizeof(kProgStormOut));
  struct kvm_userspace_memory_region region = {
      .slot = 0,
      .guest_phys_addr = 0,
      .memory_size = kGuestMemSize,
      .userspace_addr = (uintptr_t)mem,
  };
  kvm_ioctl_or_die(vm, KVM_SET_USER_MEMORY_REGION, &region, "KVM_SET_USER_MEMORY_REGION");

  g_vcpus = calloc((size_t)g_opt.vcpus, sizeof(*g_vcpus));
  if (g_vcpus == NULL) die("out of memory");
  for (int i = 0; i < g_opt.vcpus; i++) {
    g_vcpus[i].index = i;
    g_vcpus[i].cpu = g_opt.n_vcpu_cpus == 0 ? -1
                     : g_opt.n_vcpu_cpus == 1 ? g_opt.vcpu_cpus[0]
                                              : g_opt.vcpu_cpus[i];
    setup_vcpu(vm, mmap_size, &g_vcpus[i]);
  }

  pthread_barrier_init(&g_ready_barrier, NULL, (unsigned)g_opt.vcpus + 1);
  pthread_barrier_init(&g_go_barrier, NULL, (unsigned)g_opt.vcpus + 1);
  for (int i = 0; i < g_opt.vcpus; i++) {
    struct Vcpu* v = &g_vcpus[i];
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    if (v->cpu >= 0) {
      // Pinned from creation, so the thread never runs (or gets its first KVM_RUN) elsewhere.
      cpu_set_t set;
      CPU_ZERO(&set);
      CPU_SET(v->cpu, &set);
      pthread_attr_setaffinity_np(&attr, sizeof(set), &set);
    }
    int err = pthread_create(&v->thread, &attr, vcpu_thread, v);
    pthread_attr_destroy(&attr);
    if (err != 0) {
      die("creating vCPU %d thread%s failed: %s", i,
          v->cpu >= 0 ? " (pinned to a cpu that may not exist?)" : "", strerror(err));
    }
  }
  // After the vCPU threads exist, so that they do not inherit the emulator thread's pinning.
  if (g_opt.pin_main && sched_setaffinity(0, sizeof(g_opt.main_cpus), &g_opt.main_cpus) != 0) {
    die("pinning the main thread (-A) failed: %s", strerror(errno));
  }

  pthread_barrier_wait(&g_ready_barrier);
  fprintf(stderr, "READY %d\n", (int)getpid());
  fflush(stderr);
  if (g_opt.start_delay_ms > 0) {
    struct timespec until = deadline_after((double)g_opt.start_delay_ms / 1000.0);
    while (!atomic_load(&g_stop) && ms_until(&until) > 0) wait_wake(ms_until(&until), false);
  }

  struct timespec t_go = now();
  pthread_barrier_wait(&g_go_barrier);

  // Wait for every vCPU to stop; in storm mode, stop them at the deadline.
  struct timespec storm_end = deadline_after(g_opt.storm_s);
  bool kicked = false;
  for (;;) {
    int done = 0;
    for (int i = 0; i < g_opt.vcpus; i++) {
      done += atomic_load_explicit(&g_vcpus[i].done, memory_order_acquire);
    }
    if (done == g_opt.vcpus) break;
    if (g_opt.storm_s > 0 && ms_until(&storm_end) == 0) atomic_store(&g_stop, true);
    if (atomic_load(&g_stop) && !kicked) {
      kick_all();
      kicked = true;
    }
    // Re-kick periodically once stopping, in case a signal raced with a thread's KVM_RUN entry.
    int timeout = kicked ? 100 : g_opt.storm_s > 0 ? ms_until(&storm_end) : -1;
    wait_wake(timeout, false);
    if (kicked) kick_all();
  }
  struct timespec t_done = now();
  bool ok = print_summary(ts_diff(&t_go, &t_done));

  if (g_opt.hold_s > 0 || g_opt.hold_until_eof) {
    struct timespec until = deadline_after(g_opt.hold_s);
    while (!atomic_load(&g_signalled)) {
      int timeout = g_opt.hold_s > 0 ? ms_until(&until) : -1;
      if (timeout == 0) break;
      if (g_opt.hold_until_eof && wait_wake(timeout, true)) break;
      if (!g_opt.hold_until_eof) wait_wake(timeout, false);
    }
  }

  pthread_mutex_lock(&g_release_mu);
  g_release = true;
  pthread_cond_broadcast(&g_release_cv);
  pthread_mutex_unlock(&g_release_mu);
  for (int i = 0; i < g_opt.vcpus; i++) pthread_join(g_vcpus[i].thread, NULL);
  for (int i = 0; i < g_opt.vcpus; i++) close(g_vcpus[i].fd);
  close(vm);
  close(kvm);
  return ok ? 0 : kExitRuntime;
}
