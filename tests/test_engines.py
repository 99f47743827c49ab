"""Engine plumbing that needs no GPU or model server: the vLLM argument mapping, the OpenAI request body, and
the openai engine's retries (429 + Retry-After, 503) against a scripted HTTP server on 127.0.0.1."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from ftbench.api.generation import EngineOptions, Prompt
from ftbench.inference.generate import GenerationParams
from ftbench.inference.openai_engine import cut_at_stop
from ftbench.inference.vllm_engine import llm_kwargs, lora_rank, sampling_kwargs
from helpers import run_cli


def test_vllm_greedy_sampling_params_stop_where_the_local_engine_stops():
    params = GenerationParams(max_new_tokens=64, stop=("\n\n",))
    assert sampling_kwargs(params, [2, 151645]) == {
        "n": 1, "max_tokens": 64, "stop_token_ids": [2, 151645], "skip_special_tokens": True, "stop": ["\n\n"],
        "temperature": 0.0}
    sampled = sampling_kwargs(GenerationParams(temperature=0.7, top_p=0.9, top_k=20, seed=3), [2])
    assert (sampled["temperature"], sampled["top_p"], sampled["top_k"], sampled["seed"]) == (0.7, 0.9, 20, 3)


def test_vllm_llm_arguments(tmp_path):
    (tmp_path / "adapter_config.json").write_text(json.dumps({"r": 12}), encoding="utf-8")
    assert lora_rank(str(tmp_path)) == 16  # rounded up to a rank vLLM accepts
    options = EngineOptions(tensor_parallel_size=2, data_parallel_size=2, dtype="bfloat16")
    kwargs = llm_kwargs("/m", str(tmp_path), GenerationParams(seed=5), options)
    assert kwargs == {"model": "/m", "tokenizer": "/m", "tensor_parallel_size": 2, "dtype": "bfloat16", "seed": 5,
                      "data_parallel_size": 2, "enable_lora": True, "max_lora_rank": 16, "max_loras": 1}
    assert "data_parallel_size" not in llm_kwargs("/m", None, GenerationParams(), EngineOptions())


def test_openai_request_body(tiny_model):
    from ftbench.inference.engines import open_engine

    options = EngineOptions(base_url="http://127.0.0.1:9/v1")  # nothing is sent when the engine is made
    engine = open_engine("openai", "tiny", None, GenerationParams(max_new_tokens=7, stop=("</s>",)), options)
    assert engine.served == tiny_model and engine.client.url == "http://127.0.0.1:9/v1/completions"
    assert engine.payload(Prompt("hi", [1])) == {"prompt": "hi", "max_tokens": 7, "temperature": 0, "stop": ["</s>"]}
    assert cut_at_stop("a.</s>b</s>", ["</s>"]) == "a."  # servers that keep the stop string


class _Flaky(BaseHTTPRequestHandler):
    replies: list = []  # what the next requests get, then completions
    seen: list = []

    def log_message(self, *args):
        pass

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        _Flaky.seen.append((time.monotonic(), self.path, body))
        status, headers = _Flaky.replies.pop(0) if _Flaky.replies else (200, {})
        payload = {"choices": [{"index": 0, "text": "echo: " + body["prompt"][-12:], "finish_reason": "stop"}],
                   "usage": {"prompt_tokens": 3, "completion_tokens": 2}} if status == 200 else {"error": "busy"}
        data = json.dumps(payload).encode()
        self.send_response(status)
        for k, v in {"Content-Type": "application/json", "Content-Length": str(len(data)), **headers}.items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)


@pytest.fixture
def flaky():
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Flaky)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    _Flaky.replies, _Flaky.seen = [(429, {"Retry-After": "0.5"}), (503, {})], []
    yield f"http://127.0.0.1:{httpd.server_address[1]}/v1"
    httpd.shutdown()


def test_retries_honour_retry_after(tiny_model, flaky, tmp_path):
    data = tmp_path / "d.jsonl"
    data.write_text("".join(json.dumps({"instruction": f"q{i}", "output": "a"}) + "\n" for i in range(3)),
                    encoding="utf-8")
    out = tmp_path / "o.jsonl"
    result = run_cli("predict", "--model", "tiny", "--data", str(data), "-o", str(out), "--engine", "openai",
                     "--base-url", flaky, "--concurrency", "1", "--json")
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["index"] for r in rows] == [0, 1, 2] and all(r["predict"].startswith("echo: ") for r in rows)
    times = [t for t, _, _ in _Flaky.seen]
    assert len(times) == 5 and times[1] - times[0] >= 0.5  # two retries, the first after Retry-After
    assert {path for _, path, _ in _Flaky.seen} == {"/v1/completions"}
    assert json.loads(result.stdout)["tokens"] == {"prompt": 9, "completion": 6}
