"""Connections a restored clone inherits from its snapshot are dead: each
clone's host side (namespace, address translation, connection tracking) is new,
and the peer never heard of the clone. The agent tracks the network sockets
user code connects (socket.socket.connect / connect_ex: urllib, http.client,
requests and database drivers all go through them) and, when a resync says the
VM was restored, shuts the ones connected before down (both directions): a read
then sees end-of-file and a write fails, so connection pools drop them and
reconnect instead of waiting on a half-open socket. Unix sockets are local and
left alone. The Node agent does the same (guest/agent/connections.ts)."""

import socket
import threading
import weakref


class ConnectionTracker:
    def __init__(self):
        self._live = weakref.WeakSet()
        self._lock = threading.Lock()

    def install(self):
        tracker = self
        cls = socket.socket
        connect, connect_ex = cls.connect, cls.connect_ex

        def tracked_connect(self, address):
            tracker._track(self)
            return connect(self, address)

        def tracked_connect_ex(self, address):
            tracker._track(self)
            return connect_ex(self, address)

        cls.connect = tracked_connect
        cls.connect_ex = tracked_connect_ex
        return self

    def _track(self, sock):
        if getattr(socket, "AF_UNIX", None) is not None and sock.family == socket.AF_UNIX:
            return
        with self._lock:
            self._live.add(sock)

    def close_all(self):
        """Shuts every tracked socket still open down; returns how many."""
        with self._lock:
            socks = list(self._live)
            self._live = weakref.WeakSet()
        n = 0
        for s in socks:
            if s.fileno() == -1:
                continue
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                continue  # never connected, or already shut down: nothing to cut
            n += 1
        return n

    @property
    def size(self):
        return len(self._live)
