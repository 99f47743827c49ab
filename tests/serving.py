"""A real `transformers serve` process on 127.0.0.1 for the tests (the `transformers[serving]` extra, which the
dev extra installs): started on a free port in its own process group (`ftbench.processes`), waited for, killed
with SIGKILL (the whole group), restarted on the same port."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from ftbench.processes.group import OwnedProcess


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def transformers_cli() -> str:
    """The venv's `transformers` script (next to this Python), else the one on PATH."""
    here = os.path.join(os.path.dirname(sys.executable), "transformers")
    return here if os.path.exists(here) else shutil.which("transformers") or here


class Server:
    """`transformers serve --host 127.0.0.1 --port PORT [MODEL]` (MODEL pinned if given, else loaded on request)."""

    def __init__(self, model: str | None = None, *extra: str, log_path: str | None = None):
        self.model, self.extra, self.port = model, extra, free_port()
        self.log_path = log_path or os.devnull
        self.proc: OwnedProcess | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def start(self, timeout: float = 240.0) -> "Server":
        env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}
        cmd = [transformers_cli(), "serve", "--host", "127.0.0.1", "--port", str(self.port), *self.extra]
        cmd += [self.model] if self.model else []
        log = open(self.log_path, "ab")
        self.proc = OwnedProcess(cmd, stdout=log, stderr=subprocess.STDOUT, env=env).start()
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"transformers serve exited with {self.proc.poll()} (log: {self.log_path})")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/health", timeout=2) as r:
                    if r.status == 200:
                        return self
            except OSError:
                time.sleep(0.3)
        self.kill()
        raise RuntimeError(f"transformers serve did not answer /health within {timeout:.0f}s")

    def kill(self) -> None:
        """SIGKILL to its whole group: the server dies mid-request, as a crash would, and nothing of it stays."""
        if self.proc is not None:
            self.proc.close(signal.SIGKILL)
        self.proc = None

    def restart(self) -> "Server":
        self.kill()
        return self.start()


class Recorder:
    """A threaded OpenAI-compatible server on 127.0.0.1 that records every request body and answers each with a
    fixed completion (``/completions`` and ``/chat/completions``): what ftbench sends, seen from the server."""

    def __init__(self, answer: str = "The answer is 42."):
        import json
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        self.bodies: list[dict] = []
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                recorder.bodies.append({"path": self.path, **body})
                choice = {"index": 0, "finish_reason": "stop"}
                choice.update(
                    {"message": {"role": "assistant", "content": answer}} if "messages" in body else {"text": answer}
                )
                data = json.dumps({"choices": [choice], "usage": {"prompt_tokens": 1, "completion_tokens": 1}})
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data.encode())

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def prefers_good(question: str, a: str, b: str) -> str:
    """Prefers the answer containing GOOD; a fixed position on 'biased' prompts; no verdict on 'garbled' ones."""
    if "biased" in question:
        return "The first one reads better. [[A]]"
    if "garbled" in question:
        return "Both have merits; I cannot decide."
    return "A is right. [[A]]" if "GOOD" in a else "B is right. [[B]]"


class JudgeServer:
    """A deterministic pairwise judge on 127.0.0.1 (an OpenAI-compatible chat endpoint): reads the two answers out
    of ftbench's judge prompt (English or Chinese) and replies ``rule(question, answer_a, answer_b)``; records (question, answer A)."""

    def __init__(self, delay: float = 0.0, rule=prefers_good):
        self.asked: list[tuple[str, str]] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                user = body["messages"][-1]["content"]
                english = "[User Question]" in user  # else the Chinese prompt
                question = re.search(r"\[(?:User Question|用户问题)\]\n(.*?)\n", user).group(1)
                a, b = (
                    re.search(
                        rf"Assistant {x}'s Answer\]\n(.*?)\n\[The End of Assistant {x}"
                        if english
                        else rf"\[助手 {x} 的回答开始\]\n(.*?)\n\[助手 {x} 的回答结束",
                        user,
                        re.S,
                    ).group(1)
                    for x in "AB"
                )
                server.asked.append((question, a))
                time.sleep(delay)
                data = json.dumps(
                    {
                        "choices": [
                            {
                                "index": 0,
                                "message": {"role": "assistant", "content": rule(question, a, b)},
                                "finish_reason": "stop",
                            }
                        ],
                        "usage": {"prompt_tokens": 10, "completion_tokens": 5},
                    }
                ).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()
