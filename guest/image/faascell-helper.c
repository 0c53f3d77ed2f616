/*
 * faascell-helper: the privileged syscalls the guest agent needs after a
 * snapshot restore and Node cannot make. Started once by /init (before any
 * snapshot), it reads one command per line on stdin and answers "ok" or
 * "err <errno>" per line:
 *
 *   T <epoch_ms> <monotonic_ns>  set CLOCK_REALTIME so that it read <epoch_ms>
 *                                at CLOCK_MONOTONIC <monotonic_ns> (the agent's
 *                                process.hrtime), i.e. compensating for the time
 *                                the command spent in the pipe
 *   S <hex bytes>                credit the bytes to the kernel pool
 *                                (RNDADDENTROPY) and force the CRNG to reseed
 *                                (RNDRESEEDCRNG): clones of one snapshot would
 *                                otherwise share the kernel CRNG state until its
 *                                next scheduled reseed
 *   R <epoch_ms> <monotonic_ns> <hex bytes>
 *                                both in one round trip (clock first)
 *   D <epoch_ms> <monotonic_ns> <hex bytes>
 *                                R's dry run: parsed and answered, nothing changed (the agent
 *                                runs its resync code once before any snapshot, see core.ts)
 *
 * Raw read/write and hand-written parsing instead of stdio: in a freshly
 * restored clone every code path is translated anew by TCG, so the helper
 * touches as little code as it can.
 *
 * At start it also stops the PIT's channel 0 (x86): the 6.1 kernel neither uses nor stops
 * it, and QEMU then wakes ~36 times a second to toggle its masked IRQ0 line (under TCG
 * that is most of an idle VM's host CPU; later kernels stop it themselves). --keep-pit
 * leaves it running (the benchmarks' baseline).
 *
 * `faascell-helper --dry-run` parses and answers but changes nothing (tests run it
 * on the host, where setting the clock would be a disaster).
 *
 * Built statically by the image builder when a C compiler is present; without
 * it the agent falls back to `busybox date -s` (whole seconds) and a plain
 * write to /dev/urandom.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/random.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#if defined(__x86_64__) || defined(__i386__)
#include <sys/io.h>
#endif
#include <time.h>
#include <unistd.h>

/* Parses a decimal (optionally negative) integer, advancing *p past it and one space. */
static int parse_ll(const char **p, long long *out) {
  const char *s = *p;
  int neg = 0;
  long long v = 0;
  if (*s == '-') {
    neg = 1;
    s++;
  }
  if (*s < '0' || *s > '9') return EINVAL;
  while (*s >= '0' && *s <= '9') v = v * 10 + (*s++ - '0');
  if (*s == ' ') s++;
  else if (*s != 0) return EINVAL;
  *out = neg ? -v : v;
  *p = s;
  return 0;
}

static int dry_run;

static int set_clock(const char **p) {
  long long epoch_ms, mono_ns;
  if (parse_ll(p, &epoch_ms) || parse_ll(p, &mono_ns)) return EINVAL;
  if (dry_run) return 0;
  struct timespec now;
  if (clock_gettime(CLOCK_MONOTONIC, &now) != 0) return errno;
  long long elapsed_ns = (long long)now.tv_sec * 1000000000LL + now.tv_nsec - mono_ns;
  if (elapsed_ns < 0) elapsed_ns = 0;
  long long target_ns = epoch_ms * 1000000LL + elapsed_ns;
  struct timespec ts = { .tv_sec = target_ns / 1000000000LL, .tv_nsec = target_ns % 1000000000LL };
  return clock_settime(CLOCK_REALTIME, &ts) == 0 ? 0 : errno;
}

static int hexval(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

static int reseed(const char *hex) {
  static struct {
    struct rand_pool_info info;
    unsigned char buf[512];
  } req;
  size_t len = 0;
  while (hex[2 * len] && hex[2 * len + 1]) {
    if (len >= sizeof req.buf) return EINVAL;
    int hi = hexval(hex[2 * len]), lo = hexval(hex[2 * len + 1]);
    if (hi < 0 || lo < 0) return EINVAL;
    req.buf[len++] = (unsigned char)(hi << 4 | lo);
  }
  if (len == 0 || hex[2 * len]) return EINVAL;
  if (dry_run) return 0;
  req.info.entropy_count = (int)(len * 8);
  req.info.buf_size = (int)len;
  int fd = open("/dev/urandom", O_RDWR | O_CLOEXEC);
  if (fd < 0) return errno;
  int err = 0;
  if (ioctl(fd, RNDADDENTROPY, &req.info) != 0) err = errno;
  else if (ioctl(fd, RNDRESEEDCRNG) != 0) err = errno;
  close(fd);
  return err;
}

static int command(const char *line) {
  const char *p = line + 2;
  if (line[0] == 0 || line[1] != ' ') return EINVAL;
  switch (line[0]) {
    case 'T': {
      int err = set_clock(&p);
      return err ? err : (*p ? EINVAL : 0);
    }
    case 'S':
      return reseed(p);
    case 'R': {
      int err = set_clock(&p);
      return err ? err : reseed(p);
    }
    case 'D': {
      int saved = dry_run;
      dry_run = 1;
      int err = set_clock(&p);
      if (!err) err = reseed(p);
      dry_run = saved;
      return err;
    }
    default:
      return EINVAL;
  }
}

static void answer(int err) {
  char out[32];
  int n = 0;
  if (!err) {
    out[n++] = 'o';
    out[n++] = 'k';
  } else {
    const char *e = "err ";
    while (*e) out[n++] = *e++;
    char digits[12];
    int d = 0;
    do digits[d++] = (char)('0' + err % 10);
    while ((err /= 10) > 0 && d < 11);
    while (d > 0) out[n++] = digits[--d];
  }
  out[n++] = '\n';
  (void)!write(1, out, (size_t)n);
}

/* PIT channel 0 to mode 0 (interrupt on terminal count) with count 0: it fires once, then stays quiet. */
static void stop_pit(void) {
#if defined(__x86_64__) || defined(__i386__)
  if (ioperm(0x40, 4, 1) != 0) return;
  outb(0x30, 0x43);
  outb(0, 0x40);
  outb(0, 0x40);
  ioperm(0x40, 4, 0);
#endif
}

int main(int argc, char **argv) {
  static char buf[4096];
  int keep_pit = 0;
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--dry-run") == 0) dry_run = 1;
    else if (strcmp(argv[i], "--keep-pit") == 0) keep_pit = 1;
  }
  if (!dry_run && !keep_pit) stop_pit();
  size_t have = 0;
  int skipping = 0; /* inside an overlong line, already answered */
  for (;;) {
    ssize_t r = read(0, buf + have, sizeof buf - 1 - have);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return 0;
    have += (size_t)r;
    for (;;) {
      char *nl = NULL;
      for (size_t i = 0; i < have; i++)
        if (buf[i] == '\n') {
          nl = buf + i;
          break;
        }
      if (!nl) {
        if (have == sizeof buf - 1) {
          /* an overlong line: answer once, drop it up to its newline */
          if (!skipping) answer(EINVAL);
          skipping = 1;
          have = 0;
        }
        break;
      }
      *nl = 0;
      if (nl > buf && nl[-1] == '\r') nl[-1] = 0;
      if (skipping) skipping = 0;
      else answer(command(buf));
      size_t used = (size_t)(nl + 1 - buf);
      for (size_t i = used; i < have; i++) buf[i - used] = buf[i];
      have -= used;
    }
  }
}
