"""The Python guest agent's logic, independent of how it is connected: the same
newline-delimited JSON protocol and semantics as the Node agent
(src/runtimes/agent-protocol.ts, guest/agent/core.ts).

Threads: a reader thread reads requests and answers at once what needs no user
code (ping, resync, malformed requests, a run while another runs); init and run
go to the main thread, where the function's code runs (so signal handlers and
libraries that insist on the main thread work). Replies are written whole,
under a lock."""

import binascii
import json
import math
import os
import posixpath
import queue
import sys
import threading
import time

import faascell

from .loader import LoadError, load_entry
from .randomness import reseed

AGENT_VERSION = "1.0.0"

RESYNC_HELP = "needs epochMs (number), seed (base64) and optionally kernel ('now' or 'deferred')"


class AgentError(Exception):
    """An error the agent itself states (reported without a traceback)."""

    def __init__(self, kind, message):
        super().__init__(message)
        self.kind = kind


def _describe(err):
    text = str(err)
    name = type(err).__name__
    return f"{name}: {text}" if text else name


_AGENT_DIR = os.path.dirname(os.path.abspath(__file__))


def _user_traceback(err):
    """The traceback from the first frame of the function's own code (the agent's and the import machinery's frames left out)."""
    import traceback  # on the first error only: every module the agent imports costs a cold start seconds under TCG

    tb = err.__traceback__
    while tb is not None and (tb.tb_frame.f_code.co_filename.startswith(_AGENT_DIR) or tb.tb_frame.f_code.co_filename.startswith("<frozen importlib")):
        tb = tb.tb_next
    return "".join(traceback.format_exception(type(err), err, tb)).rstrip("\n")


def error_of(kind, err):
    if isinstance(err, (AgentError, LoadError)):
        return {"kind": kind, "message": str(err)}
    return {"kind": kind, "message": _describe(err), "stack": _user_traceback(err)}


def exit_status(err):
    """The status sys.exit(code) ends the process with (None: 0; an int; anything else: 1)."""
    if err.code is None:
        return 0
    if isinstance(err.code, int) and not isinstance(err.code, bool):
        return err.code & 0xFF
    return 1


def safe_relative(p):
    if not isinstance(p, str) or p == "" or p.startswith("/") or "\0" in p:
        return None
    n = posixpath.normpath(p)
    if n == ".." or n.startswith("../") or n.startswith("/"):
        return None
    return n


def _is_string_map(v):
    return isinstance(v, dict) and all(isinstance(k, str) and isinstance(x, str) for k, x in v.items())


def _is_number(v):
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def resync_fields(req):
    """A resync's fields, from a resync request or a run's resync member; None if malformed."""
    if not isinstance(req, dict):
        return None
    epoch_ms, seed, kernel = req.get("epochMs"), req.get("seed"), req.get("kernel")
    if not _is_number(epoch_ms) or not isinstance(seed, str) or kernel not in (None, "now", "deferred"):
        return None
    return {"epochMs": epoch_ms, "seed": seed, "kernel": kernel}


class Agent:
    def __init__(self, read_fd, write_fd, work_root, capture, connections=None, ops=None, chdir=True,
                 uptime_ms=None, boot=None, debug=None, exit_process=None):
        self._read_fd = read_fd
        self._write_fd = write_fd
        self._work_root = work_root
        self._capture = capture
        self._connections = connections
        self._ops = ops
        self._chdir = chdir
        self._uptime_ms = uptime_ms or (lambda: time.monotonic() * 1000)
        self._boot = boot or {}
        self._debug = debug
        self._exit_process = exit_process or os._exit
        self._write_lock = threading.Lock()
        self._state_lock = threading.Lock()
        self._jobs = queue.Queue()
        self._init_state = "none"  # none | loading | failed | ready
        self._entry = None
        self._running = False

    # ---- output -----------------------------------------------------------

    def _send_text(self, text):
        if self._debug:
            self._debug(f"-> {text[:200]}... ({len(text)} chars)" if len(text) > 200 else f"-> {text}")
        data = (text + "\n").encode("utf-8")
        with self._write_lock:
            view = memoryview(data)
            while view:
                n = os.write(self._write_fd, view)
                view = view[n:]

    def _send(self, obj):
        # allow_nan=False: NaN is not JSON; ASCII escapes keep every line valid UTF-8
        self._send_text(json.dumps(obj, separators=(",", ":"), allow_nan=False))

    def _send_error(self, id_, kind, message, **extra):
        self._send({"id": id_, "ok": False, "error": {"kind": kind, "message": message}, **extra})

    def send_ready(self):
        self._send({
            "type": "ready",
            "agentVersion": AGENT_VERSION,
            "python": ".".join(map(str, sys.version_info[:3])),
            "uptimeMs": {
                "init": self._boot.get("init", 0),
                **({"exec": self._boot["exec"]} if "exec" in self._boot else {}),
                "agentStart": self._boot.get("agentStart", 0),
                "ready": self._uptime_ms(),
            },
        })

    # ---- the reader thread ------------------------------------------------

    def _read_lines(self):
        buf = b""
        while True:
            try:
                chunk = os.read(self._read_fd, 65536)
            except OSError:
                chunk = b""
            if not chunk:
                break
            buf += chunk
            while True:
                nl = buf.find(b"\n")
                if nl == -1:
                    break
                line, buf = buf[:nl], buf[nl + 1 :]
                try:
                    self.handle_line(line.decode("utf-8", "replace"))
                except Exception as err:  # noqa: BLE001 - only a bug in the agent gets here: report, keep serving
                    try:
                        self._send_error(-1, "protocol", f"agent error: {_describe(err)}")
                    except OSError:
                        return self._jobs.put(None)
        self._jobs.put(None)

    def handle_line(self, line):
        if self._debug:
            self._debug(f"<- {line[:200]}... ({len(line)} chars)" if len(line) > 200 else f"<- {line}")
        if line.strip() == "":
            return
        try:
            req = json.loads(line)
        except ValueError:
            return self._send_error(-1, "protocol", "invalid JSON line")
        if not isinstance(req, dict):
            return self._send_error(-1, "protocol", "a request must be a JSON object")
        id_ = req.get("id")
        if not _is_number(id_):
            return self._send_error(-1, "protocol", "a request needs a numeric id")
        op = req.get("op")
        if op == "ping":
            return self._send({"id": id_, "ok": True})
        if op == "init":
            return self._accept_init(id_, req)
        if op == "run":
            return self._accept_run(id_, req)
        if op == "resync":
            return self._do_resync(id_, req)
        return self._send_error(id_, "protocol", f"unknown op {json.dumps(op)}")

    def _accept_init(self, id_, req):
        files, main, env = req.get("files"), req.get("main"), req.get("env")
        entry = req.get("entry", "main")
        if not _is_string_map(files) or not isinstance(main, str) or not isinstance(entry, str) or (env is not None and not _is_string_map(env)):
            return self._send_error(id_, "protocol", "init needs files (path -> base64), main (string), entry (string), env (string map)")
        with self._state_lock:
            if self._init_state != "none":
                state = self._init_state
            else:
                state = None
                self._init_state = "loading"
        if state is not None:
            return self._send_error(id_, "state", "init already failed in this VM" if state == "failed" else "already initialised")
        self._jobs.put(("init", id_, req))

    def _accept_run(self, id_, req):
        with self._state_lock:
            if self._init_state != "ready":
                refusal = "init still in progress" if self._init_state == "loading" else "run before a successful init"
            elif self._running:
                refusal = "another run is in progress"
            else:
                refusal = None
                self._running = True
        if refusal is not None:
            return self._send_error(id_, "state", refusal)
        self._jobs.put(("run", id_, req))

    # ---- the main thread --------------------------------------------------

    def serve(self):
        """Reads requests until the channel ends; runs init and run here. Returns once every reply is written."""
        reader = threading.Thread(target=self._read_lines, name="faascell-channel", daemon=True)
        reader.start()
        while True:
            job = self._jobs.get()
            if job is None:
                return
            kind, id_, req = job
            if kind == "init":
                self._do_init(id_, req)
            else:
                self._do_run(id_, req)

    def _exit_during(self, id_, what, err, logs):
        """sys.exit() in user code: the host learns the status, then the process ends (the guest's /init powers off)."""
        code = exit_status(err)
        kind = "init" if what == "init" else "exit"
        try:
            self._send({"id": id_, "ok": False, "error": {"kind": kind, "message": f"the function exited the process during {'init' if what == 'init' else 'the run'} (status {code})", "exitCode": code}, "logs": logs})
        except OSError:
            pass  # channel gone
        self._exit_process(code)

    def _do_init(self, id_, req):
        t0 = time.perf_counter()
        self._capture.begin()
        try:
            root = os.path.join(self._work_root, f"fn-{os.getpid()}-{os.urandom(4).hex()}")
            os.mkdir(root, 0o700)
            for rel, b64 in req["files"].items():
                safe = safe_relative(rel)
                if safe is None:
                    raise AgentError("init", f"invalid file path in package: {json.dumps(rel)}")
                dest = os.path.join(root, safe)
                os.makedirs(os.path.dirname(dest), exist_ok=True)
                with open(dest, "wb") as f:
                    f.write(binascii.a2b_base64(b64))
            main_rel = safe_relative(req["main"])
            if main_rel is None:
                raise AgentError("init", f"invalid main path: {json.dumps(req['main'])}")
            os.environ.update(req.get("env") or {})
            if self._chdir:
                os.chdir(root)
            self._entry = load_entry(os.path.join(root, main_rel), req.get("entry", "main"), root)
        except SystemExit as err:
            self._init_state = "failed"
            return self._exit_during(id_, "init", err, self._capture.end())
        except BaseException as err:  # noqa: BLE001 - the function's own load failure
            self._init_state = "failed"
            e = error_of("init", err)
            if "stack" in e:
                self._capture.note(e["stack"])
            return self._send({"id": id_, "ok": False, "error": e, "logs": self._capture.end(), "durationMs": (time.perf_counter() - t0) * 1000})
        self._init_state = "ready"
        self._send({"id": id_, "ok": True, "logs": self._capture.end(), "durationMs": (time.perf_counter() - t0) * 1000})

    def _do_run(self, id_, req):
        resync_steps = None
        if req.get("resync") is not None:
            received = time.perf_counter()
            fields = resync_fields(req["resync"])
            if fields is None:
                self._running = False
                return self._send_error(id_, "protocol", f"run.resync {RESYNC_HELP}")
            try:
                resync_steps = self._apply_resync(fields, received)
            except Exception as err:  # noqa: BLE001 - the resync failed: the function does not run
                self._running = False
                return self._send({"id": id_, "ok": False, "error": error_of("state", err), "durationMs": (time.perf_counter() - received) * 1000})
        params = req.get("params")
        self._capture.begin()
        t0 = time.perf_counter()
        result_json = None
        error = None
        try:
            result = self._entry({} if params is None else params)
            if type(result).__name__ == "coroutine":
                import asyncio  # an async def main: asyncio only for the functions that use it

                result = asyncio.run(result)
            if result is None:
                result_json = "{}"
            elif isinstance(result, (dict, list)):
                try:
                    result_json = json.dumps(result, separators=(",", ":"), allow_nan=False)
                except (TypeError, ValueError, RecursionError) as err:
                    error = {"kind": "application", "message": f"the result is not JSON-serialisable: {err}"}
            else:
                # OpenWhisk requires a dictionary; a bare value is almost always a bug in the function
                error = {"kind": "application", "message": f"the function must return a dict (or a list), got {type(result).__name__}"}
        except SystemExit as err:
            self._running = False
            return self._exit_during(id_, "run", err, self._capture.end())
        except BaseException as err:  # noqa: BLE001 - the function raised: an application error
            error = error_of("application", err)
            self._capture.note(error["stack"])
        duration = (time.perf_counter() - t0) * 1000
        logs = json.dumps(self._capture.end(), separators=(",", ":"))
        rs = f',"resync":{json.dumps(resync_steps, separators=(",", ":"))}' if resync_steps is not None else ""
        with self._state_lock:
            self._running = False
        if error is not None:
            self._send_text(f'{{"id":{json.dumps(id_)},"ok":false,"error":{json.dumps(error, separators=(",", ":"))},"logs":{logs},"durationMs":{duration}{rs}}}')
        else:
            self._send_text(f'{{"id":{json.dumps(id_)},"ok":true,"result":{result_json},"logs":{logs},"durationMs":{duration}{rs}}}')

    # ---- resync -----------------------------------------------------------

    def _do_resync(self, id_, req):
        received = time.perf_counter()
        fields = resync_fields(req)
        if fields is None:
            return self._send_error(id_, "protocol", f"resync {RESYNC_HELP}")
        try:
            steps = self._apply_resync(fields, received)
        except Exception as err:  # noqa: BLE001 - reported to the host as a state error
            return self._send({"id": id_, "ok": False, "error": error_of("state", err), "durationMs": (time.perf_counter() - received) * 1000})
        self._send({"id": id_, "ok": True, "result": steps, "durationMs": (time.perf_counter() - received) * 1000})

    def _apply_resync(self, fields, received, dry=False):
        """Reseeds the generators, sets the kernel clock and CRNG, closes pre-snapshot connections.
        kernel 'deferred' is applied at once too: Python code reads the kernel clock directly
        (time.time, datetime.now in C), so it cannot be corrected in the process meanwhile."""
        def since():
            return (time.perf_counter() - received) * 1000

        seed = binascii.a2b_base64(fields["seed"])
        steps = {}
        reseed(seed)
        steps["reseedMs"] = since()
        if self._ops is not None:
            self._ops.set_clock_and_seed(fields["epochMs"] + since(), seed, dry)
            steps["clockMs"] = steps["kernelSeedMs"] = since()
        if not dry:
            closed = self._connections.close_all() if self._connections is not None else 0
            steps["connectionsClosed"] = closed
            faascell._restored({"connectionsClosed": closed}, self._capture.note)
        return steps

    def warm_up(self):
        """Runs the resync path once before any snapshot, changing nothing (a dry helper call)."""
        try:
            self._apply_resync({"epochMs": time.time() * 1000, "seed": binascii.b2a_base64(os.urandom(32), newline=False).decode(), "kernel": "now"}, time.perf_counter(), dry=True)
        except Exception as err:  # noqa: BLE001 - diagnostics only
            if self._debug:
                self._debug(f"resync warm-up failed: {_describe(err)}")
