"""`ftbench judge` against a deterministic judge server on 127.0.0.1 (fixed preferences, one prompt on which it
always picks the first position, one it cannot decide): the win rate is exactly what the preferences imply, swap
inconsistencies count as ties, unparseable replies are retried then recorded, and a run killed in the middle
resumes with nothing judged twice."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from helpers import REPO, run_cli

N = 10  # 0-5: B's answer is better, 6-7: A's, 8: the judge always says [[A]], 9: it never gives a verdict


class JudgeServer:
    """Prefers the answer containing GOOD; a fixed position on 'biased' prompts; no verdict on 'garbled' ones."""

    def __init__(self, delay: float = 0.0):
        self.asked: list[tuple[str, str]] = []  # (question, assistant A's answer) per request
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                user = body["messages"][-1]["content"]
                question = re.search(r"\[User Question\]\n(.*?)\n", user).group(1)
                a = re.search(r"Assistant A's Answer\]\n(.*?)\n\[The End", user, re.S).group(1)
                server.asked.append((question, a))
                time.sleep(delay)
                if "biased" in question:
                    reply = "The first one reads better. [[A]]"
                elif "garbled" in question:
                    reply = "Both have merits; I cannot decide."
                else:
                    reply = "A is right. [[A]]" if "GOOD" in a else "B is right. [[B]]"
                data = json.dumps(
                    {
                        "choices": [
                            {"index": 0, "message": {"role": "assistant", "content": reply}, "finish_reason": "stop"}
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


def _files(tmp_path):
    questions = [f"question {i}" for i in range(8)] + ["biased question", "garbled question"]
    good_b = [True] * 6 + [False] * 2 + [True, True]
    a = [
        {
            "prompt": f"<|im_start|>user\n{q}<|im_end|>\n<|im_start|>assistant\n",
            "predict": "bad answer" if g else "GOOD answer",
            "label": "",
        }
        for q, g in zip(questions, good_b)
    ]
    b = [{**r, "predict": "GOOD answer, longer" if g else "bad answer, longer"} for r, g in zip(a, good_b)]
    paths = []
    for name, rows in (("a.jsonl", a), ("b.jsonl", b)):
        (tmp_path / name).write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
        paths.append(str(tmp_path / name))
    return paths


@pytest.fixture
def server():
    s = JudgeServer()
    yield s
    s.close()


def test_the_win_rate_is_what_the_judges_preferences_imply(server, tmp_path):
    a, b = _files(tmp_path)
    out = tmp_path / "judgments.jsonl"
    result = run_cli(
        "judge", a, b, "--judge-url", server.url, "--judge-model", "judge", "-o", str(out), "--retries", "1", "--json"
    )
    assert result.exit_code == 0, result.output
    r = json.loads(result.stdout)
    assert (r["n"], r["judged"], r["wins"], r["losses"], r["ties"], r["unparseable"], r["inconsistent"]) == (
        N,
        9,
        6,
        2,
        1,
        1,
        1,
    )
    assert r["win_rate"] == pytest.approx((6 + 0.5) / 9)
    assert r["pairs"][8]["verdicts"] == {"ab": "A", "ba": "A"} and r["pairs"][8]["outcome"] == "tie"
    assert r["pairs"][0]["reasons"]["ab"] == "B is right. [[B]]"
    # every prompt twice, swapped; the garbled one asked again once per order (--retries 1)
    assert len(server.asked) == 2 * N + 2
    assert {(q, x) for q, x in server.asked if q == "question 0"} == {
        ("question 0", "bad answer"),
        ("question 0", "GOOD answer, longer"),
    }
    assert r["length_bias"]["candidate_longer"]["n"] == 9  # B's answers are the longer ones here
    assert r["tokens"] == {"prompt_tokens": 10 * len(server.asked), "completion_tokens": 5 * len(server.asked)}
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert "header" in rows[0] and len(rows) == 1 + 2 * N
    assert [row["attempts"] for row in rows[1:] if row["index"] == 9] == [2, 2]


def test_a_killed_judge_resumes_with_nothing_judged_twice(tmp_path):
    slow = JudgeServer(delay=0.15)
    try:
        a, b = _files(tmp_path)
        out = tmp_path / "judgments.jsonl"
        cmd = [
            sys.executable,
            "-m",
            "ftbench",
            "judge",
            a,
            b,
            "--judge-url",
            slow.url,
            "--judge-model",
            "judge",
            "-o",
            str(out),
            "--concurrency",
            "1",
            "--quiet",
        ]
        proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.time() + 120
        while time.time() < deadline and (not out.exists() or len(out.read_text().splitlines()) < 6):
            time.sleep(0.05)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        before = len(out.read_text().splitlines()) - 1
        assert 5 <= before < 2 * N
        again = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=300)
        assert again.returncode == 0, again.stderr
        rows = [json.loads(line) for line in out.read_text().splitlines()[1:]]
        keys = [(row["index"], row["order"]) for row in rows]
        assert len(keys) == len(set(keys)) == 2 * N  # each prompt and order judged exactly once
        asked = [x for x in slow.asked if x[0] != "garbled question"]
        assert len(asked) - len(set(asked)) <= 1  # at most the reply in flight when killed was asked again
    finally:
        slow.close()


def test_judging_other_prompts_into_the_same_file_is_refused(server, tmp_path):
    a, b = _files(tmp_path)
    out = tmp_path / "j.jsonl"
    assert run_cli("judge", a, b, "--judge-url", server.url, "--judge-model", "j", "-o", str(out)).exit_code == 0
    result = run_cli("judge", b, a, "--judge-url", server.url, "--judge-model", "j", "-o", str(out))
    assert result.exit_code == 2 and "another judge" in result.output
