"""`ftbench augment llm` against a real HTTP server on 127.0.0.1 that answers deterministically and injects
failures (429 + Retry-After, 500, timeouts, prose without JSON, truncated JSON, duplicates, invalid records):
every record gets its N variants, none duplicated, retries bounded, the key never leaks, and a run killed with
SIGKILL resumes without losing or repeating a record. Also: reply parsing, Retry-After, backoff, the local
provider on the tiny model."""

from __future__ import annotations

import json
import os
import random
import re
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from helpers import REPO, run_cli

KEY = "sk-ftbench-TEST-7c1e9a53d2b84f60"  # distinctive, so a leak anywhere is found by grep
WORDS = (
    "apple river stone cloud paper window garden yellow silent quick bridge candle forest ocean pencil "
    "market winter summer silver engine rocket violin marble castle desert harbor island jungle ladder "
    "mirror needle orange planet quartz saddle tunnel velvet wagon anchor basket cactus dragon falcon "
    "glacier hammer igloo jacket kettle lantern magnet nectar oyster pepper quiver ribbon shovel temple "
    "umbrella valley walnut zipper 苹果 河流 石头 云朵 纸张 窗户 花园 黄色 安静 快速 桥梁 蜡烛 森林 海洋"
).split()


# ---------------------------------------------------------------------------------------------------- server


def variant_record(original: dict, seed: int) -> dict:
    """A record in the original's format whose texts are random words: unrelated to every other variant."""
    rng = random.Random(seed)

    def text(k: int) -> str:
        return " ".join(rng.choice(WORDS) for _ in range(k))

    out = json.loads(json.dumps(original))
    if "instruction" in out:
        out.update(instruction=text(8) + "?", input="", output=text(20) + ".")
    else:
        key = "messages" if "messages" in out else "conversations"
        for turn in out[key]:
            field = "content" if "content" in turn else "value"
            if turn.get("role", turn.get("from")) != "system":
                turn[field] = text(10)
    return out


class Script:
    """What the server does with the k-th request (1-based) about one source record: a list of actions
    per source key, default "ok". Actions: ok, 429, 500, timeout, prose, truncated, dup-and-bad, echo-key-500."""

    def __init__(self, faults: dict[str, list[str]] | None = None, delay: float = 0.0, timeout_sleep: float = 1.0):
        self.faults = faults or {}
        self.delay, self.timeout_sleep = delay, timeout_sleep
        self.lock = threading.Lock()
        self.per_source: Counter = Counter()
        self.made: Counter = Counter()  # variants produced per source (new text every time)
        self.log: list[dict] = []  # {"source", "k", "action", "t", "auth", "prompt"}

    def next_action(self, source: str) -> tuple[int, str]:
        with self.lock:
            self.per_source[source] += 1
            k = self.per_source[source]
            plan = self.faults.get(source, [])
            return k, plan[k - 1] if k <= len(plan) else "ok"

    def new_variants(self, source: str, original: dict, n: int) -> list[dict]:
        with self.lock:
            start = self.made[source]
            self.made[source] += n
        return [variant_record(original, hash((source, start + i)) & 0xFFFFFFF) for i in range(n)]


def extract(prompt: str) -> tuple[dict, int]:
    """The original record and the count asked for, from the default prompt (either language)."""
    record, _ = json.JSONDecoder().raw_decode(prompt, prompt.index("{"))
    m = re.search(r"Write (\d+) new records|请写出 (\d+) 条新数据", prompt)
    return record, int(m.group(1) or m.group(2))


def source_key(record: dict) -> str:
    if "instruction" in record:
        return record["instruction"]
    turns = record.get("messages") or record.get("conversations")
    return next(t.get("content", t.get("value")) for t in turns if t.get("role", t.get("from")) != "system")


class Handler(BaseHTTPRequestHandler):
    script: Script

    def log_message(self, *args):  # quiet
        pass

    def _send(self, status: int, body: dict | str, headers: dict | None = None):
        raw = (json.dumps(body, ensure_ascii=False) if isinstance(body, dict) else body).encode("utf-8")
        self.send_response(status)
        headers = {"Content-Type": "application/json", **(headers or {}), "Content-Length": str(len(raw))}
        for k, v in headers.items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(raw)

    def _reply(self, content: str, prompt_tokens: int = 100, completion_tokens: int = 50):
        self._send(
            200,
            {
                "id": "x",
                "object": "chat.completion",
                "choices": [
                    {"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}
                ],
                "usage": {
                    "prompt_tokens": prompt_tokens,
                    "completion_tokens": completion_tokens,
                    "total_tokens": prompt_tokens + completion_tokens,
                },
            },
        )

    def do_POST(self):
        s = self.script
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        prompt = body["messages"][-1]["content"]
        original, n = extract(prompt)
        source = source_key(original)
        k, action = s.next_action(source)
        with s.lock:
            s.log.append(
                {
                    "source": source,
                    "k": k,
                    "action": action,
                    "t": time.monotonic(),
                    "n": n,
                    "auth": self.headers.get("Authorization"),
                    "prompt": prompt,
                    "model": body["model"],
                }
            )
        if s.delay:
            time.sleep(s.delay)
        if action == "429":
            return self._send(429, {"error": {"message": "rate limited"}}, {"Retry-After": "0.2"})
        if action == "500":
            return self._send(500, {"error": {"message": "internal error"}})
        if action == "echo-key-500":
            return self._send(500, {"error": {"message": f"bad header {self.headers.get('Authorization')}"}})
        if action == "401":
            return self._send(401, {"error": {"message": f"invalid key {self.headers.get('Authorization')}"}})
        if action == "timeout":
            time.sleep(s.timeout_sleep)
            return self._reply("[]")  # too late: the client has given up
        if action == "html":  # a proxy's error page with status 200
            return self._send(200, "<html><body>502 Bad Gateway</body></html>", {"Content-Type": "text/html"})
        if action == "prose":
            return self._reply("I'm sorry, I can't produce more examples of that right now.")
        variants = s.new_variants(source, original, n)
        if action == "truncated":  # cut in the middle of the last record, inside a fence that never closes
            text = "```json\n" + json.dumps({"records": variants}, ensure_ascii=False)
            return self._reply(text[: text.rindex("{") + 15])
        if action == "dup-and-bad":  # a copy of the original, a record missing its answer, and n good ones
            bad = {k: v for k, v in variants[0].items() if k not in ("output", "messages", "conversations")}
            return self._reply("Here you go:\n" + json.dumps([original, bad] + variants, ensure_ascii=False))
        self._reply("```json\n" + json.dumps({"records": variants}, ensure_ascii=False) + "\n```")


class Server:
    def __init__(self, script: Script):
        handler = type("H", (Handler,), {"script": script})
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.httpd.daemon_threads = True
        self.httpd.handle_error = lambda request, address: None  # a client that timed out is not news
        self.script = script
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def serve():
    servers = []

    def start(**kw) -> Server:
        servers.append(Server(Script(**kw)))
        return servers[-1]

    yield start
    for s in servers:
        s.close()


@pytest.fixture
def key_env(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", KEY)


# ---------------------------------------------------------------------------------------------------- data


SEEDS = [
    {"instruction": "What is the boiling point of water?", "input": "", "output": "100 °C at sea level."},
    {"instruction": "一年有多少天？", "input": "", "output": "平年有 365 天，闰年有 366 天。"},
    {"instruction": "Name a primary colour.", "input": "", "output": "Red is a primary colour."},
    {"instruction": "你好", "input": "", "output": "您好，我是 {{name}}，由 {{author}} 开发的 AI 助手。"},
    {"instruction": "How many legs does a spider have?", "input": "", "output": "Eight."},
    {"instruction": "天空为什么是蓝色的？", "input": "", "output": "因为瑞利散射：短波长的蓝光被空气分子散射得更多。"},
]


def write_seeds(path, records=SEEDS) -> str:
    path.write_text(json.dumps(records, ensure_ascii=False, indent=2), encoding="utf-8")
    return str(path)


def read_jsonl(path) -> list[dict]:
    with open(path, encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def llm_args(server: Server, data: str, out: str, *extra: str) -> list[str]:
    return [
        "augment",
        "llm",
        data,
        "-o",
        out,
        "--base-url",
        server.url,
        "--model",
        "fake-model",
        "--backoff",
        "0.01",
        "--timeout",
        "0.5",
        *extra,
    ]


def variants_by_source(rows: list[dict]) -> dict[int, list[int]]:
    out: dict[int, list[int]] = {}
    for r in rows:
        prov = r["_ftbench"]
        if not prov.get("original"):
            out.setdefault(prov["source"], []).append(prov["variant"])
    return out


def texts(rows: list[dict]) -> list[str]:
    from ftbench.quality.checks import normalise

    return [normalise(json.dumps({k: v for k, v in r.items() if k != "_ftbench"}, ensure_ascii=False)) for r in rows]


def assert_no_leak(result_output: str, folder) -> None:
    assert KEY not in result_output
    for path in folder.rglob("*"):
        if path.is_file():
            assert KEY not in path.read_text(encoding="utf-8", errors="replace"), path


# ---------------------------------------------------------------------------------------------------- units


def test_parse_reply_shapes():
    from ftbench.augment.reply import parse_reply

    rec = {"instruction": "q", "output": "a"}
    two = [rec, {"instruction": "q2", "output": "a2"}]
    assert parse_reply("```json\n" + json.dumps({"records": two}) + "\n```").records == two
    assert parse_reply(json.dumps(two)).records == two
    assert parse_reply(json.dumps(rec)).records == [rec]
    assert parse_reply("Sure! See [1] below.\n" + json.dumps(two) + "\nHope this helps.").records == two
    assert parse_reply("```\n" + json.dumps(two)).records == two  # fence never closed
    cut = parse_reply(json.dumps({"records": two})[:-12])  # stopped inside the second record
    assert cut.records == [rec] and cut.truncated
    for bad in (
        "",
        "I cannot help with that.",
        "[NaN]",
        "{'instruction': 'python literal'}",
        "[1, 2, 3]",
        "__import__('os').system('echo pwned')",
    ):
        assert not parse_reply(bad).usable, bad


def test_retry_after_and_backoff():
    from email.utils import formatdate

    from ftbench.net.http import RetryPolicy, parse_retry_after

    assert parse_retry_after("0.2") == 0.2 and parse_retry_after("7") == 7.0
    now = time.time()
    assert 29 <= parse_retry_after(formatdate(now + 30, usegmt=True), now=now) <= 31
    assert parse_retry_after(formatdate(now - 30, usegmt=True), now=now) == 0.0
    assert parse_retry_after("soon") is None and parse_retry_after(None) is None and parse_retry_after("-1") is None
    policy, rng = RetryPolicy(max_retries=8, base=0.5, cap=4.0), random.Random(1)
    for retry in range(8):  # full jitter: uniform in [0, min(cap, base * 2**retry)]
        delays = [policy.delay(retry, None, rng) for _ in range(200)]
        assert 0 <= min(delays) and max(delays) <= min(4.0, 0.5 * 2**retry)
        assert max(delays) > 0.6 * min(4.0, 0.5 * 2**retry)  # really spread, not a constant
    assert all(policy.delay(r, 3.0, rng) >= 3.0 for r in range(8))  # Retry-After is a floor
    assert policy.delay(0, 10_000, rng) == policy.max_retry_after  # ... but a bogus one is capped


def test_gate_validates_and_deduplicates():
    from ftbench.augment.gate import RecordGate
    from ftbench.data.formats import AlpacaFormat

    gate = RecordGate(AlpacaFormat(), "seed.json")
    answer = (
        "I am {{name}}, an AI assistant developed by {{author}}. I can answer questions, write and edit text, "
        "and help you plan your day."
    )
    source = {"instruction": "Who are you?", "input": "", "output": answer}
    src_sample, _ = gate.to_sample(source)
    gate.add_known(src_sample, "original #0")
    good = {
        "instruction": "Please introduce yourself.",
        "input": "",
        "output": "Hello! My name is {{name}} and {{author}} built me to help with questions.",
        "id": 7,
    }
    candidates = [
        "just a string",
        {"instruction": "Tell me your name"},  # no output
        {"instruction": "What's your name?", "input": "", "output": "   "},  # empty answer
        {"instruction": "Who made you?", "input": "", "output": "I was built by {{company}}."},  # new placeholder
        {"instruction": "Who made you?", "input": "", "output": "CafÃ© de Flore made me."},  # mojibake
        {"instruction": "who are  you?", "input": "", "output": answer.replace(" ", "  ").replace("I am", "i AM")},
        {"instruction": "Who are you, really?", "input": "", "output": answer.replace("your day", "your days")},
        good,
        dict(good),  # the same again in one reply
        {"instruction": "Which assistant is this?", "input": "", "output": "This is {{name}}, from {{author}}."},
        {"instruction": "Anything else?", "input": "", "output": "Nothing else to add, thanks for asking."},
    ]
    verdicts = gate.check(candidates, source, src_sample, want=2, labels=["source 0 variant 0", "source 0 variant 1"])
    reasons = [v.reason for v in verdicts]
    assert reasons == [
        "not-an-object",
        "missing-field",
        "empty-output",
        "placeholder",
        "mojibake",
        "duplicate",
        "near-duplicate",
        None,
        "duplicate",
        None,
        "surplus",
    ], reasons
    assert verdicts[7].record == {k: v for k, v in good.items() if k != "id"}  # keys the original lacks: dropped
    # accepted records are registered: the next reply cannot repeat them
    again = gate.check([dict(good)], source, src_sample, want=1, labels=["source 0 variant 2"])
    assert again[0].reason == "duplicate" and "source 0 variant 0" in again[0].detail


# ---------------------------------------------------------------------------------------------------- HTTP runs


FAULTS = {  # per source: what the server does with its 1st, 2nd... request (then "ok")
    SEEDS[0]["instruction"]: ["429"],
    SEEDS[1]["instruction"]: ["500", "timeout"],
    SEEDS[2]["instruction"]: ["prose"],
    SEEDS[3]["instruction"]: ["truncated"],
    SEEDS[4]["instruction"]: ["dup-and-bad"],
    SEEDS[5]["instruction"]: ["html"],
}
REQUESTS = {0: 2, 1: 3, 2: 2, 3: 2, 4: 1, 5: 2}  # the requests each source needs under FAULTS


def test_every_record_gets_its_variants_despite_faults(serve, key_env, tmp_path):
    server = serve(faults=FAULTS)
    data, out = write_seeds(tmp_path / "seeds.json"), tmp_path / "out.jsonl"
    result = run_cli(
        *llm_args(server, data, str(out), "--n", "3", "--concurrency", "3", "--max-retries", "3", "--json")
    )
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    rows = read_jsonl(out)
    assert variants_by_source(rows) == {i: [0, 1, 2] for i in range(len(SEEDS))}  # written in variant order
    all_texts = texts(rows) + texts(SEEDS)
    assert len(set(all_texts)) == len(all_texts)  # no duplicates among variants, nor of an original
    for r in rows:
        assert set(r) == {"instruction", "input", "output", "_ftbench"}
        assert (
            set(r["_ftbench"]) == {"source", "variant", "model", "attempt"} and r["_ftbench"]["model"] == "fake-model"
        )

    log = server.script.log
    per_source = Counter(SEEDS.index(next(s for s in SEEDS if s["instruction"] == e["source"])) for e in log)
    assert dict(per_source) == REQUESTS  # retries bounded: exactly what each fault needs, nothing more
    assert all(e["auth"] == f"Bearer {KEY}" and e["model"] == "fake-model" for e in log)
    first, second = [e["t"] for e in log if e["source"] == SEEDS[0]["instruction"]]
    assert second - first >= 0.2  # Retry-After: 0.2 honoured
    zh = [e["prompt"] for e in log if e["source"] == SEEDS[1]["instruction"]]
    assert all("请写出 3 条新数据" in p for p in zh)  # the record's language
    assert all("Write 3 new records" in e["prompt"] for e in log if e["source"] == SEEDS[0]["instruction"])
    topup = [e for e in log if e["source"] == SEEDS[3]["instruction"]]
    assert [e["n"] for e in topup] == [3, 1]  # the truncated reply's 2 complete records kept; 1 asked again

    rejected = read_jsonl(str(out) + ".rejected.jsonl")
    assert Counter(r["_ftbench"]["reason"] for r in rejected) == {"no-json": 1, "duplicate": 1, "missing-field": 1}
    assert summary["retries"] == {"429": 1, "5xx": 1, "timeout": 1, "bad-response": 1, "no-json": 1, "top-up": 1}
    assert summary["requested"] == 18 and summary["accepted"] == 18 and summary["replies"] == 8
    assert summary["rejected"] == {"duplicate": 1, "missing-field": 1} and summary["replies_without_json"] == 1
    assert summary["tokens"] == {"prompt": 800, "completion": 400, "total": 1200}
    assert summary["incomplete_sources"] == []
    assert_no_leak(result.output, tmp_path)

    again = run_cli(*llm_args(server, data, str(out), "--n", "3", "--json"))  # all done: nothing is asked
    assert again.exit_code == 0 and json.loads(again.stdout)["accepted"] == 0 and len(server.script.log) == len(log)


def test_gives_up_after_bounded_attempts_then_resumes(serve, key_env, tmp_path):
    faults = {SEEDS[0]["instruction"]: ["prose"] * 3, SEEDS[2]["instruction"]: ["500"] * 3}
    server = serve(faults=faults)
    data, out = write_seeds(tmp_path / "seeds.json", SEEDS[:3]), tmp_path / "out.jsonl"
    result = run_cli(*llm_args(server, data, str(out), "--n", "2", "--max-retries", "2"))
    assert result.exit_code == 1, result.output
    assert "2 record(s) did not get all 2 variants" in result.stderr and "run the same command again" in result.stderr
    per_source = Counter(e["source"] for e in server.script.log)
    assert per_source == {SEEDS[0]["instruction"]: 3, SEEDS[1]["instruction"]: 1, SEEDS[2]["instruction"]: 3}
    reasons = Counter(r["_ftbench"]["reason"] for r in read_jsonl(str(out) + ".rejected.jsonl"))
    assert reasons == {"no-json": 3, "request-failed": 1, "incomplete": 2}
    assert variants_by_source(read_jsonl(out)) == {1: [0, 1]}

    result = run_cli(*llm_args(server, data, str(out), "--n", "2", "--max-retries", "2"))  # the server recovered
    assert result.exit_code == 0, result.output
    rows = read_jsonl(out)
    assert {k: sorted(v) for k, v in variants_by_source(rows).items()} == {0: [0, 1], 1: [0, 1], 2: [0, 1]}
    assert len(set(texts(rows))) == len(rows)
    assert Counter(e["source"] for e in server.script.log)[SEEDS[1]["instruction"]] == 1  # done work not redone


def test_key_never_leaks(serve, key_env, tmp_path):
    data = write_seeds(tmp_path / "seeds.json", SEEDS[:2])
    server = serve(faults={SEEDS[0]["instruction"]: ["echo-key-500"]})  # the server echoes the key back
    result = run_cli(*llm_args(server, data, str(tmp_path / "a.jsonl"), "--n", "1", "--max-retries", "0", "--debug"))
    assert result.exit_code == 1
    failed = [r for r in read_jsonl(tmp_path / "a.jsonl.rejected.jsonl") if r["_ftbench"]["reason"] == "request-failed"]
    assert "Bearer ***" in failed[0]["_ftbench"]["detail"]
    assert_no_leak(result.output, tmp_path)

    server = serve(faults={s["instruction"]: ["401"] for s in SEEDS[:2]})
    result = run_cli(*llm_args(server, data, str(tmp_path / "b.jsonl"), "--n", "1", "--concurrency", "1"))
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert (
        "refused the request (HTTP 401" in lines[-1]
        and "$OPENAI_API_KEY" in lines[-1]
        and "Traceback" not in result.stderr
    )
    assert len(server.script.log) == 1  # a refused key stops the run: no request after the first
    assert_no_leak(result.output, tmp_path)


def test_conversations_with_originals_and_custom_template(serve, key_env, tmp_path):
    from ftbench.data.loader import load_samples

    data = tmp_path / "chat.jsonl"
    chats = [
        {
            "messages": [
                {"role": "system", "content": "Be brief."},
                {"role": "user", "content": q},
                {"role": "assistant", "content": a},
            ]
        }
        for q, a in [
            ("Why is the sea salty?", "Rivers carry dissolved minerals into it."),
            ("什么是光合作用？", "植物利用光能把二氧化碳和水变成糖和氧气。"),
        ]
    ]
    data.write_text("".join(json.dumps(c, ensure_ascii=False) + "\n" for c in chats), encoding="utf-8")
    template = tmp_path / "prompt.txt"
    template.write_text(
        "Format: $format; language: $language; keys: $keys.\n$record\n"
        "Write $n new records. Keep {{name}} as is; $$5 is a price.",
        encoding="utf-8",
    )
    server = serve()
    out = tmp_path / "out.jsonl"
    result = run_cli(
        *llm_args(server, str(data), str(out), "--n", "2", "--include-original", "--prompt-template", str(template))
    )
    assert result.exit_code == 0, result.output
    rows = read_jsonl(out)
    assert sum(1 for r in rows if r["_ftbench"].get("original")) == 2 and len(rows) == 6
    prompts = [e["prompt"] for e in server.script.log]
    assert any("language: 中文" in p for p in prompts) and any("language: English" in p for p in prompts)
    assert all("OpenAI messages" in p and "keys: messages." in p and "$5 is a price" in p for p in prompts)
    clean = tmp_path / "clean.jsonl"  # the output is valid data in the input's format
    clean.write_text("".join(json.dumps({k: v for k, v in r.items() if k != "_ftbench"}) + "\n" for r in rows))
    assert len(load_samples(str(clean))) == 6
    again = run_cli(*llm_args(server, str(data), str(out), "--n", "2", "--include-original"))
    assert again.exit_code == 0 and len(read_jsonl(out)) == 6  # originals are not copied twice


def test_usage_errors_are_one_line(serve, key_env, tmp_path):
    server = serve()
    data = write_seeds(tmp_path / "seeds.json", SEEDS[:2])
    out = str(tmp_path / "out.jsonl")
    bad_template = tmp_path / "t.txt"
    bad_template.write_text("Write $count records like $record")
    os.symlink(data, tmp_path / "link.json")
    cases = [
        (llm_args(server, data, data, "--n", "1"), "is DATA itself"),
        (llm_args(server, data, str(tmp_path / "link.json"), "--n", "1"), "is DATA itself"),
        (["augment", "llm", data, "-o", out, "--n", "1", "--model", "m"], "--base-url is required"),
        (llm_args(server, data, out, "--n", "1", "--api-key-env", KEY), "NAME of an environment variable"),
        (llm_args(server, data, out, "--n", "1", "--prompt-template", str(bad_template)), "unknown variable $count"),
        (llm_args(server, str(tmp_path / "nope.json"), out, "--n", "1"), "no such file"),
    ]
    for args, message in cases:
        result = run_cli(*args)
        assert result.exit_code == 2, (args, result.output)
        assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1, result.stderr
        assert KEY not in result.output
    assert json.loads(open(data, encoding="utf-8").read()) == SEEDS[:2]  # DATA untouched
    assert run_cli(*llm_args(server, data, out, "--n", "1")).exit_code == 0
    write_seeds(tmp_path / "seeds.json", SEEDS[2:4])  # other data under the same name: refuse to extend OUT
    result = run_cli(*llm_args(server, data, out, "--n", "1"))
    assert result.exit_code == 2 and "made from different data" in result.stderr


# ---------------------------------------------------------------------------------------------------- SIGKILL


def test_sigkill_then_resume(serve, tmp_path):
    """Kill a real `python -m ftbench augment llm` mid-run, damage its last line as a crash mid-write would,
    and rerun: every source ends with exactly N variants, nothing lost, nothing repeated."""
    seeds = [
        {"instruction": f"Question number {i}: {w}?", "input": "", "output": f"Answer {i} about {w}."}
        for i, w in enumerate(WORDS[:16])
    ]
    data, out = write_seeds(tmp_path / "seeds.json", seeds), tmp_path / "out.jsonl"
    server = serve(delay=0.2)  # slow replies: the kill lands mid-run
    env = {**os.environ, "OPENAI_API_KEY": KEY, "PYTHONPATH": REPO}
    cmd = [
        sys.executable,
        "-m",
        "ftbench",
        *llm_args(server, data, str(out), "--n", "3", "--concurrency", "2", "--timeout", "5"),
    ]
    proc = subprocess.Popen(cmd, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and (not out.exists() or out.read_bytes().count(b"\n") < 9):
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=10)
    before = out.read_bytes()
    lines_before = before.count(b"\n")
    assert 9 <= lines_before < 48, lines_before  # killed mid-run
    with open(out, "ab") as fh:  # what a kill inside write() leaves: half a line
        fh.write(b'{"instruction": "half a rec')

    server.script.delay = 0.0
    done = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "cut off a half-written last line" in done.stderr
    after = out.read_bytes()
    assert after.startswith(before[: before.rfind(b"\n") + 1])  # every line written before the kill is kept
    rows = read_jsonl(out)
    assert {k: sorted(v) for k, v in variants_by_source(rows).items()} == {i: [0, 1, 2] for i in range(16)}
    assert len(rows) == 48 and len(set(texts(rows))) == 48
    assert KEY not in done.stdout + done.stderr and KEY not in after.decode("utf-8")
    assert all(e["auth"] == f"Bearer {KEY}" for e in server.script.log)


# ---------------------------------------------------------------------------------------------------- local


def test_local_provider_sets_aside_garbage(tiny_model, tmp_path):
    """The tiny random model answers garbage: every reply is counted and set aside, nothing crashes."""
    import torch

    torch.set_num_threads(1)
    data, out = write_seeds(tmp_path / "seeds.json", SEEDS[:2]), tmp_path / "out.jsonl"
    result = run_cli(
        "augment",
        "llm",
        data,
        "-o",
        str(out),
        "--n",
        "2",
        "--provider",
        "local",
        "--model",
        "tiny",
        "--max-tokens",
        "16",
        "--max-retries",
        "1",
        "--json",
    )
    assert result.exit_code == 1, result.output
    summary = json.loads(result.stdout)
    assert summary["replies"] == 4 and summary["accepted"] == 0 and summary["incomplete_sources"] == [0, 1]
    assert summary["tokens"]["completion"] > 0
    reasons = Counter(r["_ftbench"]["reason"] for r in read_jsonl(str(out) + ".rejected.jsonl"))
    assert reasons["incomplete"] == 2 and sum(reasons.values()) == 6
    assert read_jsonl(out) == []
    result = run_cli(
        "augment",
        "llm",
        data,
        "-o",
        str(out),
        "--n",
        "1",
        "--provider",
        "local",
        "--model",
        "tiny",
        "--adapter",
        str(tmp_path / "no-adapter"),
    )
    assert result.exit_code == 2 and "no such folder" in result.stderr
