"""Console capture: writes to sys.stdout / sys.stderr (print, logging's stream
handlers, tracebacks printed by user code) become lines. During an operation
(init or run) lines go to that operation's buffer; outside one (a thread the
function started printing after its run returned) they are kept, capped, and
handed to the next run, so nothing the function prints reaches the serial
console. The same rules as the Node agent's guest/agent/capture.ts."""

import io
import sys
import threading

PENDING_CAP = 1000


class Capture:
    def __init__(self):
        self._lock = threading.Lock()
        self._active = None
        self._pending = []
        self._dropped = 0
        # partial lines per stream, so interleaved stdout/stderr writes do not glue together
        self._partial = {"stdout": "", "stderr": ""}
        self._originals = None

    def _push(self, line):
        if self._active is not None:
            self._active.append(line)
        elif len(self._pending) < PENDING_CAP:
            self._pending.append(line)
        else:
            self._dropped += 1

    def feed(self, key, text):
        with self._lock:
            buf = self._partial[key] + text
            while True:
                nl = buf.find("\n")
                if nl == -1:
                    break
                line = buf[:nl]
                if line.endswith("\r"):
                    line = line[:-1]
                self._push(line)
                buf = buf[nl + 1 :]
            self._partial[key] = buf

    def _flush_partials(self):
        for key, rest in self._partial.items():
            if rest:
                self._push(rest)
            self._partial[key] = ""

    def begin(self):
        """Start collecting into a fresh buffer; lines collected between operations move into it."""
        with self._lock:
            self._flush_partials()
            self._active = self._pending
            if self._dropped:
                self._active.append(f"[faascell] {self._dropped} log lines printed between runs were dropped")
            self._pending = []
            self._dropped = 0

    def end(self):
        """Stop collecting; the operation's lines (a trailing partial line included)."""
        with self._lock:
            self._flush_partials()
            out = self._active if self._active is not None else []
            self._active = None
            return out

    def note(self, line):
        """A line from the agent itself (a traceback, an exception in a thread)."""
        with self._lock:
            for part in line.split("\n"):
                self._push(part)

    def install(self):
        self._originals = (sys.stdout, sys.stderr)
        sys.stdout = _CaptureStream(self, "stdout")
        sys.stderr = _CaptureStream(self, "stderr")
        return self

    def uninstall(self):
        if self._originals:
            sys.stdout, sys.stderr = self._originals


class _CaptureStream(io.TextIOBase):
    """A text stream whose writes go to the capture (what sys.stdout / sys.stderr become)."""

    def __init__(self, capture, key):
        super().__init__()
        self._capture = capture
        self._key = key
        self.buffer = _CaptureBuffer(self)

    @property
    def encoding(self):
        return "utf-8"

    @property
    def errors(self):
        return "replace"

    def writable(self):
        return True

    def isatty(self):
        return False

    def write(self, s):
        if not isinstance(s, str):
            raise TypeError(f"write() argument must be str, not {type(s).__name__}")
        self._capture.feed(self._key, s)
        return len(s)

    def flush(self):
        pass


class _CaptureBuffer(io.RawIOBase):
    """sys.stdout.buffer: bytes written by user code are decoded as UTF-8."""

    def __init__(self, text):
        super().__init__()
        self._text = text

    def writable(self):
        return True

    def write(self, b):
        self._text.write(bytes(b).decode("utf-8", "replace"))
        return len(b)
