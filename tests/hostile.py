"""A hostile HTTP server on 127.0.0.1 for the tests: a raw socket server whose every reply is a function of the
request, so it can drip bytes, flood, stall, redirect or lie about its schema as a broken or malicious server
would. Every request is recorded (headers included), so a test can tell whether the key reached it."""

from __future__ import annotations

import json
import socket
import threading
import time


class Request:
    """What the server received: method, path, headers (lower-case names) and body."""

    def __init__(self, method: str, path: str, headers: dict, body: bytes):
        self.method, self.path, self.headers, self.body = method, path, headers, body


class HostileServer:
    """Calls ``behave(request, conn)`` on a thread per connection; ``behave`` writes whatever it likes to the
    socket. Helpers below write the common replies."""

    def __init__(self, behave):
        self.behave = behave
        self.requests: list[Request] = []
        self.sent = 0  # bytes written by `send`
        self.accepted = threading.Event()
        self._sock = socket.socket()
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(16)
        self.port = self._sock.getsockname()[1]
        self._closed = False
        threading.Thread(target=self._serve, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def _serve(self) -> None:
        while not self._closed:
            try:
                conn, _ = self._sock.accept()
            except OSError:
                return
            self.accepted.set()
            threading.Thread(target=self._handle, args=(conn,), daemon=True).start()

    def _handle(self, conn: socket.socket) -> None:
        try:
            request = _read_request(conn)
            if request is None:
                return
            self.requests.append(request)
            self.behave(request, conn)
        except OSError:
            pass  # the client hung up: that is what the tests want it to do
        finally:
            try:
                conn.close()
            except OSError:
                pass

    def send(self, conn: socket.socket, data: bytes) -> None:
        conn.sendall(data)
        self.sent += len(data)

    def close(self) -> None:
        self._closed = True
        self._sock.close()


def _read_request(conn: socket.socket) -> Request | None:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        if not chunk:
            return None
        data += chunk
    head, body = data.split(b"\r\n\r\n", 1)
    lines = head.decode("latin-1").split("\r\n")
    method, path, _ = lines[0].split(" ", 2)
    headers = {k.strip().lower(): v.strip() for k, v in (line.split(":", 1) for line in lines[1:] if ":" in line)}
    length = int(headers.get("content-length", "0"))
    while len(body) < length:
        chunk = conn.recv(65536)
        if not chunk:
            break
        body += chunk
    return Request(method, path, headers, body)


def response(status: int, body: bytes | str | dict, headers: dict | None = None) -> bytes:
    """A whole HTTP/1.1 response with Content-Length."""
    if isinstance(body, dict):
        body = json.dumps(body)
    if isinstance(body, str):
        body = body.encode("utf-8")
    head = {
        "Content-Type": "application/json",
        "Content-Length": str(len(body)),
        "Connection": "close",
        **(headers or {}),
    }
    lines = [f"HTTP/1.1 {status} X"] + [f"{k}: {v}" for k, v in head.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def completion(text, **extra) -> dict:
    """A `/completions` reply whose text is ``text`` (any JSON value)."""
    return {
        "choices": [{"index": 0, "text": text, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 1, "completion_tokens": 1},
        **extra,
    }


def drip(server: HostileServer, conn: socket.socket, data: bytes, every: float) -> None:
    """Send ``data`` one byte at a time, ``every`` seconds apart (until the client hangs up)."""
    for i in range(len(data)):
        server.send(conn, data[i : i + 1])
        time.sleep(every)
