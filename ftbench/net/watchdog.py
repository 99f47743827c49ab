"""Deadlines a server cannot stretch: one daemon thread that shuts down the socket of every request past its
deadline, and of every request in flight once the run is stopping (Ctrl-C).

A socket timeout bounds one `recv`; a server that sends a byte every second (in its headers or its body) never
trips it. Shutting the socket down from another thread wakes the blocked `recv` at once, wherever it is
(connect, headers, body), so a worker thread returns within ``TICK`` of its deadline or of the stop, and a pool
being joined at exit never waits for a server.
"""

from __future__ import annotations

import socket
import threading
import time

TICK = 0.05  # seconds between checks of the stop event and the deadlines


class Watchdog:
    """Shuts down each registered socket at its deadline, or all of them when ``stop`` is set."""

    def __init__(self, stop: threading.Event):
        self.stop = stop
        self._lock = threading.Lock()
        self._watched: dict[int, tuple[socket.socket, float]] = {}  # id(sock) -> (sock, deadline)
        self._thread: threading.Thread | None = None

    def watch(self, sock: socket.socket, deadline: float) -> None:
        with self._lock:
            self._watched[id(sock)] = (sock, deadline)
            if self._thread is None or not self._thread.is_alive():
                # daemon: it never keeps the process alive; it exits when nothing is watched
                self._thread = threading.Thread(target=self._run, name="ftbench-http-watchdog", daemon=True)
                self._thread.start()

    def forget(self, sock: socket.socket) -> None:
        with self._lock:
            self._watched.pop(id(sock), None)

    def _run(self) -> None:
        while True:
            stopping = self.stop.wait(TICK)
            now = time.monotonic()
            with self._lock:
                if not self._watched:
                    self._thread = None
                    return
                due = [sock for sock, deadline in self._watched.values() if stopping or now >= deadline]
            for sock in due:
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass  # already shut or closed
