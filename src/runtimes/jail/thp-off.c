/*
 * faascell-thp-off COMMAND [ARG...]: turns transparent huge pages off for this
 * process (prctl PR_SET_THP_DISABLE), then execs COMMAND in its place (same pid).
 *
 * Why (issue 24): with THP in "madvise" mode QEMU asks for huge pages on its
 * anonymous RAM blocks and its TCG code cache, so a restored clone that touches
 * a few KiB of a 2 MiB block holds the whole 2 MiB. The flag is inherited by
 * children and kept across execve (prctl(2)), so it reaches the VMM through the
 * other launch layers. No Debian tool sets it (util-linux 2.38's setpriv and
 * setarch do not); a general interpreter (perl's syscall) would need the
 * syscall's number per architecture. Built by the set-up with the host's C
 * compiler, cached by this file's hash (src/runtimes/jail/thp.ts).
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

#ifndef PR_SET_THP_DISABLE
#define PR_SET_THP_DISABLE 41
#endif

int main(int argc, char **argv) {
  if (argc < 2) {
    fputs("usage: faascell-thp-off COMMAND [ARG...]\n", stderr);
    return 125;
  }
  if (prctl(PR_SET_THP_DISABLE, 1, 0, 0, 0) != 0) {
    fprintf(stderr, "faascell-thp-off: prctl(PR_SET_THP_DISABLE): %s\n", strerror(errno));
    return 125;
  }
  execvp(argv[1], argv + 1);
  fprintf(stderr, "faascell-thp-off: %s: %s\n", argv[1], strerror(errno));
  return 127;
}
