"""What a resync changes in the guest kernel: the clock (CLOCK_REALTIME) and
the CRNG. Through faascell-helper when /init started it (two pipes, fds in
FAASCELL_HELPER_FDS: one round trip sets the clock with the pipe delay
compensated through CLOCK_MONOTONIC and forces a CRNG reseed, as for the Node
agent), else directly: clock_settime through ctypes, the seed written to
/dev/urandom and credited with RNDADDENTROPY (the agent is root in the guest)."""

import os
import time

RNDADDENTROPY = 0x40085203
CLOCK_REALTIME = 0


class HelperOps:
    def __init__(self, write_fd, read_fd):
        self._w = write_fd
        self._r = read_fd

    def _call(self, command):
        os.write(self._w, (command + "\n").encode())
        answer = b""
        while b"\n" not in answer:
            chunk = os.read(self._r, 256)
            if not chunk:
                raise RuntimeError("faascell-helper is gone")
            answer += chunk
        text = answer.decode().strip()
        if text != "ok":
            raise RuntimeError(f"faascell-helper: {text}")

    def set_clock_and_seed(self, epoch_ms, seed, dry=False):
        self._call(f"{'D' if dry else 'R'} {round(epoch_ms)} {time.monotonic_ns()} {seed.hex()}")


class DirectOps:
    """No helper (an image built without a C compiler): the same two steps from Python."""

    def set_clock_and_seed(self, epoch_ms, seed, dry=False):
        if dry:
            return
        import ctypes  # only without the helper
        import fcntl
        import struct

        class Timespec(ctypes.Structure):
            _fields_ = [("tv_sec", ctypes.c_long), ("tv_nsec", ctypes.c_long)]

        libc = ctypes.CDLL(None, use_errno=True)
        ts = Timespec(int(epoch_ms // 1000), int((epoch_ms % 1000) * 1_000_000))
        if libc.clock_settime(CLOCK_REALTIME, ctypes.byref(ts)) != 0:
            raise OSError(ctypes.get_errno(), "clock_settime failed")
        with open("/dev/urandom", "wb", buffering=0) as f:
            f.write(seed)
            try:
                fcntl.ioctl(f, RNDADDENTROPY, struct.pack("ii", len(seed) * 8, len(seed)) + seed)
            except OSError:
                pass  # not permitted: the seed is mixed in, not credited


def guest_ops(env):
    fds = env.get("FAASCELL_HELPER_FDS", "")
    parts = fds.split(",")
    if len(parts) == 2 and all(p.isdigit() for p in parts):
        return HelperOps(int(parts[0]), int(parts[1]))
    return DirectOps()
