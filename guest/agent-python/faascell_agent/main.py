"""The Python guest agent's entry point: started by the Python image's /init
(guest/image/init-python) as the only user process, inside the image's root
(chroot), serving the host over the virtio-serial port.

Environment (set by /init; the tests set the first two):
  FAASCELL_AGENT_CHANNEL  device path of the channel, or fd:N (tests: one end of a socket pair)
  FAASCELL_WORK_DIR       where function code is written (default: the temp dir, a tmpfs in the guest)
  FAASCELL_INIT_UPTIME    /proc/uptime seconds when /init started
  FAASCELL_EXEC_UPTIME    /proc/uptime seconds when /init started Python
  FAASCELL_GUEST=1        really in a guest: a resync may set the clock and seed the kernel
                          (never on a host: the tests run this agent too)
  FAASCELL_HELPER_FDS     "W,R": fds of faascell-helper's stdin/stdout, if the image has it
  FAASCELL_AGENT_DEBUG=1  trace every message on stderr (the serial console)"""

import os
import sys
import threading
import time


def _uptime_ms():
    try:
        with open("/proc/uptime") as f:
            return float(f.read().split()[0]) * 1000
    except (OSError, ValueError, IndexError):
        return time.monotonic() * 1000


def _kernel_arg(name):
    """A faascell.NAME=value kernel argument (the last one wins)."""
    try:
        with open("/proc/cmdline") as f:
            args = f.read().split()
    except OSError:
        return None
    hits = [a for a in args if a.startswith(f"faascell.{name}=")]
    return hits[-1][len(f"faascell.{name}=") :] if hits else None


def _open_channel(spec):
    if spec.startswith("fd:"):
        fd = int(spec[3:])
        return fd, fd
    fd = os.open(spec, os.O_RDWR | os.O_NOCTTY)
    if os.isatty(fd):
        # a serial tty (Firecracker's ttyS0): raw, no echo, no line editing
        import tty

        tty.setraw(fd)
    return fd, fd


def _float_env(name):
    try:
        return float(os.environ[name]) * 1000
    except (KeyError, ValueError):
        return None


def main(started_monotonic):
    # before any user code: its output is captured, its connections tracked
    from .capture import Capture
    from .connections import ConnectionTracker
    from .core import Agent
    from .guest_ops import guest_ops

    env = os.environ
    in_guest = env.get("FAASCELL_GUEST") == "1"
    console = sys.__stderr__
    capture = Capture().install()
    connections = ConnectionTracker().install()
    # an exception in a thread the function started lands in the logs of the run (or the next one)
    def thread_exception(a):
        import traceback  # the first time only

        capture.note(f"[faascell] uncaught exception in thread {a.thread.name if a.thread else '?'}: " + "".join(traceback.format_exception(a.exc_type, a.exc_value, a.exc_traceback)).rstrip("\n"))

    threading.excepthook = thread_exception
    now_uptime = _uptime_ms()
    uptime_base = now_uptime - time.monotonic() * 1000
    boot = {"init": _float_env("FAASCELL_INIT_UPTIME") or 0, "agentStart": uptime_base + started_monotonic * 1000}
    exec_uptime = _float_env("FAASCELL_EXEC_UPTIME")
    if exec_uptime is not None:
        boot["exec"] = exec_uptime
    read_fd, write_fd = _open_channel(env.get("FAASCELL_AGENT_CHANNEL", "/dev/hvc0"))

    def exit_process(code):
        if in_guest:
            # /init reports the status too, but only after the VM's console has the reason
            os.write(console.fileno(), f"faascell-agent: exiting with status {code}\n".encode())
        os._exit(code)

    debug = (lambda line: os.write(console.fileno(), f"agent: {line}\n".encode())) if env.get("FAASCELL_AGENT_DEBUG") == "1" else None
    agent = Agent(
        read_fd,
        write_fd,
        env.get("FAASCELL_WORK_DIR") or "/tmp",
        capture,
        connections=connections,
        ops=guest_ops(env) if in_guest else None,
        chdir=True,
        uptime_ms=lambda: uptime_base + time.monotonic() * 1000,
        boot=boot,
        debug=debug,
        exit_process=exit_process,
    )
    agent.send_ready()
    # the resync's code path once before any snapshot (imports done, nothing changed)
    if in_guest and _kernel_arg("warmup") != "0":
        agent.warm_up()
    agent.serve()
    # the host closed the channel: the agent ends (threads the function left running do not hold it)
    exit_process(0)
