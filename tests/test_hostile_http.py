"""The one HTTP client (`ftbench.net.http`) against hostile servers on 127.0.0.1 (tests/hostile.py), through the
real `ftbench predict --engine openai`: a redirect to another origin never gets the key, stalls and floods end
within the deadline and the size cap, Retry-After is capped and announced, replies of the wrong shape are
refused, server text reaches the terminal masked and clean, and Ctrl-C ends a run waiting on a silent server.
Every case ends with exit 0, 1 or 2 (130 for Ctrl-C), one error line, and no character run of the key shown."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest
from helpers import REPO, run_cli
from hostile import HostileServer, completion, drip, response

KEY = "sk-" + "9f3Kq7Zx2Lm4Wv8Rt6Yb1Nc5"  # 27 characters, none of its 6-character runs is an English word


def leaked(text: str, n: int = 6) -> list[str]:
    """Runs of ``n`` characters of the key found in ``text``."""
    return [KEY[i : i + n] for i in range(len(KEY) - n + 1) if KEY[i : i + n] in text]


@pytest.fixture
def servers():
    started = []

    def start(behave) -> HostileServer:
        started.append(HostileServer(behave))
        return started[-1]

    yield start
    for s in started:
        s.close()


@pytest.fixture
def data(tmp_path) -> str:
    path = tmp_path / "d.jsonl"
    path.write_text(json.dumps({"instruction": "say hi", "output": "hi"}) + "\n", encoding="utf-8")
    return str(path)


def predict(server_url: str, data: str, out, *extra: str, key: bool = True):
    """`ftbench predict --engine openai` in-process, the key in $HOSTILE_KEY; returns click's result."""
    os.environ["HOSTILE_KEY"] = KEY
    try:
        return run_cli(
            "predict",
            "--model",
            "tiny",
            "--data",
            data,
            "-o",
            str(out),
            "--engine",
            "openai",
            "--base-url",
            server_url,
            *(["--api-key-env", "HOSTILE_KEY"] if key else []),
            "--max-new-tokens",
            "8",
            *extra,
        )
    finally:
        os.environ.pop("HOSTILE_KEY", None)


def one_error_line(result, code: int, *needles: str) -> str:
    assert result.exit_code == code, result.output
    errors = [line for line in result.stderr.splitlines() if "error" in line]
    assert len(errors) == 1 and "Traceback" not in result.output, result.output
    for needle in needles:
        assert needle in errors[0], result.output
    assert leaked(result.output) == [], result.output
    return errors[0]


def test_redirect_to_another_origin_never_carries_the_key(tiny_model, servers, data, tmp_path):
    other = servers(lambda req, conn: other.send(conn, response(200, completion("stolen"))))
    moved = servers(
        lambda req, conn: moved.send(
            conn, response(301, "", {"Location": f"http://127.0.0.1:{other.port}/v1/completions"})
        )
    )
    out = tmp_path / "o.jsonl"
    result = predict(moved.url, data, out)
    one_error_line(result, 2, "redirects to http://127.0.0.1:", "another origin", "--base-url")
    assert other.requests == []  # nothing, let alone the Authorization header, reached the other port
    assert not out.exists() or out.read_text() == ""  # the other origin's answer is not a prediction


def test_redirect_to_the_same_origin_is_resent_as_post(tiny_model, servers, data, tmp_path):
    def behave(req, conn):
        if req.path == "/v1/completions":
            return server.send(conn, response(307, "", {"Location": "/v2/completions"}))
        server.send(conn, response(200, completion("moved answer")))

    server = servers(behave)
    out = tmp_path / "o.jsonl"
    result = predict(server.url, data, out, "-q")
    assert result.exit_code == 0, result.output
    assert [(r.method, r.path) for r in server.requests] == [("POST", "/v1/completions"), ("POST", "/v2/completions")]
    assert all(r.headers["authorization"] == f"Bearer {KEY}" for r in server.requests)
    assert json.loads(out.read_text())["predict"] == "moved answer"


@pytest.mark.parametrize("where", ["body", "headers"])
def test_a_dripping_reply_ends_at_the_deadline(tiny_model, servers, data, tmp_path, where):
    def behave(req, conn):
        whole = response(200, completion("x" * 200))
        head_end = whole.index(b"\r\n\r\n") + 4
        if where == "body":
            server.send(conn, whole[:head_end])
            drip(server, conn, whole[head_end:], 0.2)
        else:
            drip(server, conn, whole, 0.2)

    server = servers(behave)
    started = time.monotonic()
    result = predict(server.url, data, tmp_path / "o.jsonl", "--request-timeout", "2", "--max-retries", "0")
    assert time.monotonic() - started < 12  # tokenizer load + 2 s deadline, not the server's pace
    one_error_line(result, 2, "no complete reply within 2 s")


@pytest.mark.parametrize("length", [True, False])
def test_a_huge_reply_is_refused_unread(tiny_model, servers, data, tmp_path, length):
    big = 100 << 20

    def behave(req, conn):
        head = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
        head += f"Content-Length: {big}\r\n\r\n" if length else "Connection: close\r\n\r\n"
        server.send(conn, head.encode() + b'{"choices": [{"text": "')
        block = b"a" * (1 << 16)
        for _ in range(big // len(block)):
            server.send(conn, block)

    server = servers(behave)
    out = tmp_path / "o.jsonl"
    result = predict(server.url, data, out, "--max-retries", "0")
    one_error_line(result, 2, "the reply is larger than", "MB")
    assert server.sent < 8 << 20  # stopped reading near the cap (1 MB + 64 B per token), not at 100 MB
    assert not out.exists() or out.read_text() == ""


def test_retry_after_is_capped_and_announced(tiny_model, servers, data, tmp_path):
    server = servers(
        lambda req, conn: server.send(
            conn, response(429, {"error": {"message": "slow down"}}, {"Retry-After": "999999"})
        )
    )
    started = time.monotonic()
    result = predict(server.url, data, tmp_path / "o.jsonl", "--request-timeout", "1", "--max-retries", "1")
    assert time.monotonic() - started < 15  # not 999999 s, nor the old 600 s cap
    one_error_line(result, 2, "HTTP 429: slow down", "gave up after 1 retries")
    announced = [line for line in result.stderr.splitlines() if "Retry-After" in line]
    assert announced and "asks to wait 999999 s" in announced[0] and "capped at 1 s" in announced[0]
    assert len(server.requests) == 2


@pytest.mark.parametrize("text, kind", [(None, "null"), (7, "a number"), (["a"], "a list"), ({"a": 1}, "an object")])
def test_a_reply_whose_text_is_not_a_string_is_refused(tiny_model, servers, data, tmp_path, text, kind):
    server = servers(lambda req, conn: server.send(conn, response(200, completion(text))))
    out = tmp_path / "o.jsonl"
    result = predict(server.url, data, out, "--max-retries", "0")
    one_error_line(result, 2, f"choices[0].text is {kind}, not a string")
    assert not out.exists() or out.read_text() == ""


def test_a_lone_surrogate_is_repaired(tiny_model, servers, data, tmp_path):
    raw = b'{"choices": [{"index": 0, "text": "ok \\ud800 end", "finish_reason": "stop"}]}'
    server = servers(lambda req, conn: server.send(conn, response(200, raw)))
    out = tmp_path / "o.jsonl"
    for _ in range(2):  # the rerun resumes the file the first run wrote
        result = predict(server.url, data, out, "-q")
        assert result.exit_code == 0, result.output
    assert json.loads(out.read_text(encoding="utf-8"))["predict"] == "ok \ufffd end"


def test_server_text_is_masked_before_it_is_cut_and_cleaned(tiny_model, servers, data, tmp_path):
    def behave(req, conn):
        key = req.headers.get("authorization", "")[len("Bearer ") :]
        message = "\x1b]0;pwned\x07\x1b[2J" + "x" * 270 + key + "\x00tail " + key[:12] + "\u202e"
        server.send(conn, response(400, {"error": {"message": message}}))

    server = servers(behave)
    result = predict(server.url, data, tmp_path / "o.jsonl", "--max-retries", "0")
    line = one_error_line(result, 2, "HTTP 400")
    for bad in ("\x1b", "\x07", "\x00", "\u202e"):
        assert bad not in result.output, repr(bad)
    assert "pwned" in line and "***" in line  # the text is shown, only made harmless


def test_ctrl_c_ends_a_run_waiting_on_a_silent_server(tiny_model, servers, data, tmp_path):
    silent = servers(lambda req, conn: time.sleep(3600))
    env = {**os.environ, "PYTHONPATH": REPO, "HOSTILE_KEY": KEY}
    cmd = [
        sys.executable,
        "-m",
        "ftbench",
        "predict",
        "--model",
        "tiny",
        "--data",
        data,
        "-o",
        str(tmp_path / "o.jsonl"),
        "--engine",
        "openai",
        "--base-url",
        silent.url,
        "--api-key-env",
        "HOSTILE_KEY",
        "--concurrency",
        "2",
    ]
    proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert silent.accepted.wait(120), "the request never arrived"
        time.sleep(0.3)
        proc.send_signal(signal.SIGINT)
        started = time.monotonic()
        _, stderr = proc.communicate(timeout=15)  # not the 600 s request timeout
    finally:
        if proc.poll() is None:
            proc.kill()
    assert time.monotonic() - started < 5
    assert proc.returncode == 1 and stderr.strip().splitlines()[-1].startswith("ftbench: interrupted"), stderr
    assert leaked(stderr) == []


def test_a_bad_base_url_is_one_line(tiny_model, data, tmp_path):
    result = predict("http://127.0.0.1:notaport/v1", data, tmp_path / "o.jsonl")
    one_error_line(result, 2, "--base-url http://127.0.0.1:notaport/v1")


def test_augment_writes_no_part_of_an_echoed_key(servers, tmp_path):
    """A chat server that echoes the key in its answers, once past the 4000 characters the rejected file keeps:
    the key is masked before the reply is cut, so no run of it reaches a file (augment goes through the same
    client)."""

    def behave(req, conn):
        key = req.headers.get("authorization", "")[len("Bearer ") :]
        content = "no JSON here " + "x" * 3980 + key + " and again " + key
        server.send(
            conn, response(200, {"choices": [{"index": 0, "message": {"role": "assistant", "content": content}}]})
        )

    server = servers(behave)
    data = tmp_path / "seeds.json"
    data.write_text(json.dumps([{"instruction": "What is 2+2?", "input": "", "output": "4"}]), encoding="utf-8")
    os.environ["HOSTILE_KEY"] = KEY
    try:
        result = run_cli(
            "augment",
            "llm",
            str(data),
            "-o",
            str(tmp_path / "out.jsonl"),
            "--base-url",
            server.url,
            "--model",
            "m",
            "--api-key-env",
            "HOSTILE_KEY",
            "--n",
            "1",
            "--max-retries",
            "0",
        )
    finally:
        os.environ.pop("HOSTILE_KEY", None)
    assert result.exit_code == 1, result.output  # the record did not get its variant
    assert server.requests and server.requests[0].headers["authorization"] == f"Bearer {KEY}"
    written = "".join(p.read_text(encoding="utf-8") for p in tmp_path.iterdir() if p.name.startswith("out"))
    assert "no JSON here" in written and leaked(written) == [] and leaked(result.output) == []
