/*
 * faascell-helper: the two privileged syscalls the guest agent needs after a
 * snapshot restore and Node cannot make. Started once by the agent (before any
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
 *
 * Built statically by the image builder when a C compiler is present; without
 * it the agent falls back to `busybox date -s` (whole seconds) and a plain
 * write to /dev/urandom.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/random.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

static int set_clock(const char *args) {
  long long epoch_ms, mono_ns;
  if (sscanf(args, "%lld %lld", &epoch_ms, &mono_ns) != 2) return EINVAL;
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
  size_t len = strlen(hex) / 2;
  if (len == 0 || len > 512) return EINVAL;
  struct rand_pool_info *info = calloc(1, sizeof(*info) + len + 4);
  if (!info) return ENOMEM;
  unsigned char *buf = (unsigned char *)info->buf;
  for (size_t i = 0; i < len; i++) {
    int hi = hexval(hex[2 * i]), lo = hexval(hex[2 * i + 1]);
    if (hi < 0 || lo < 0) { free(info); return EINVAL; }
    buf[i] = (unsigned char)(hi << 4 | lo);
  }
  info->entropy_count = (int)(len * 8);
  info->buf_size = (int)len;
  int fd = open("/dev/urandom", O_RDWR | O_CLOEXEC);
  int err = 0;
  if (fd < 0) err = errno;
  else {
    if (ioctl(fd, RNDADDENTROPY, info) != 0) err = errno;
    else if (ioctl(fd, RNDRESEEDCRNG) != 0) err = errno;
    close(fd);
  }
  free(info);
  return err;
}

int main(void) {
  char line[2048];
  setvbuf(stdout, NULL, _IOLBF, 0);
  while (fgets(line, sizeof line, stdin)) {
    line[strcspn(line, "\r\n")] = 0;
    int err = EINVAL;
    if (line[0] == 'T' && line[1] == ' ') err = set_clock(line + 2);
    else if (line[0] == 'S' && line[1] == ' ') err = reseed(line + 2);
    if (err) printf("err %d\n", err);
    else printf("ok\n");
  }
  return 0;
}
