"""Generation on a real OpenAI-compatible server: `transformers serve` processes on 127.0.0.1 started here.

`predict`, `eval` (ftbench's engine and lm-eval's local-completions model) and `train-and-compare` with
`--engine openai` give what the local engine gives on the same prompts; a server killed with SIGKILL mid-run and
restarted lets the same command resume with nothing lost or duplicated; the API key is never shown or written.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest
from helpers import REPO, SHARED_GSM8K, run_cli
from serving import Server

pytest.importorskip("fastapi", reason="needs the transformers[serving] extra (pip install -e .[dev])")

DATA = ["identity.json", "alpaca_demo.json", "sharegpt_demo.json", "openai_demo.jsonl", "arithmetic_demo.jsonl"]
FAST = ["--max-new-tokens", "24", "-q"]
pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def server(tiny_model, tmp_path_factory):
    """An unpinned server (models loaded by the path in each request, as train-and-compare's merged model needs)."""
    srv = Server(log_path=str(tmp_path_factory.mktemp("serve") / "serve.log")).start()
    yield srv
    srv.kill()


@pytest.fixture(scope="module")
def mixed_data(tmp_path_factory) -> str:
    """60 varied prompts (zh/en, system prompts, multi-turn, GSM8K) as OpenAI messages JSONL."""
    from ftbench.data.loader import load_samples
    from ftbench.inference.chat import to_messages

    per_file = [load_samples(os.path.join(REPO, "datasets", name))[:12] for name in DATA]
    path = tmp_path_factory.mktemp("data") / "mixed.jsonl"
    with open(path, "w", encoding="utf-8") as fh:
        for group in zip(*per_file):
            for s in group:
                fh.write(json.dumps({"messages": to_messages(s)}, ensure_ascii=False) + "\n")
    return str(path)


def rows(path) -> list[dict]:
    with open(path, encoding="utf-8") as fh:
        return [json.loads(line) for line in fh]


def same_rate(a: list[dict], b: list[dict], key: str = "predict") -> float:
    assert len(a) == len(b)
    return sum(x[key] == y[key] for x, y in zip(a, b)) / len(a)


@pytest.fixture(scope="module")
def local_rows(tiny_model, mixed_data, tmp_path_factory) -> list[dict]:
    out = tmp_path_factory.mktemp("local") / "local.jsonl"
    result = run_cli("predict", "--model", "tiny", "--data", mixed_data, "-o", str(out), "--threads", "1", *FAST)
    assert result.exit_code == 0, result.output
    return rows(out)


@pytest.fixture(scope="module")
def served_rows(server, mixed_data, tmp_path_factory) -> tuple[list[dict], str]:
    out = tmp_path_factory.mktemp("served") / "served.jsonl"
    result = run_cli(
        "predict",
        "--model",
        "tiny",
        "--data",
        mixed_data,
        "-o",
        str(out),
        "--engine",
        "openai",
        "--base-url",
        server.url,
        "--json",
        *FAST[:2],
    )
    assert result.exit_code == 0, result.output
    return rows(out), result.stdout


def test_server_answers_as_the_local_engine(local_rows, served_rows):
    served, stdout = served_rows
    assert [r["prompt"] for r in served] == [r["prompt"] for r in local_rows]  # byte-identical prompts
    assert [r["index"] for r in served] == list(range(60))
    assert same_rate(local_rows, served) >= 0.95
    summary = json.loads(stdout)
    assert summary["engine"] == "openai" and summary["tokens"]["prompt"] > 0 and summary["tokens"]["completion"] > 0


def test_chat_endpoint_with_the_servers_template(server, local_rows, mixed_data, tmp_path):
    out = tmp_path / "chat.jsonl"
    result = run_cli(
        "predict",
        "--model",
        "tiny",
        "--data",
        mixed_data,
        "-o",
        str(out),
        "--engine",
        "openai",
        "--api",
        "chat",
        "--base-url",
        server.url,
        "--limit",
        "20",
        *FAST,
    )
    assert result.exit_code == 0, result.output
    # the same tokens; `transformers serve`'s chat endpoint trims the message's leading space (" free" -> "free")
    chat = [{**r, "predict": r["predict"].lstrip()} for r in rows(out)]
    assert same_rate([{**r, "predict": r["predict"].lstrip()} for r in local_rows[:20]], chat) >= 0.95
    assert json.loads((tmp_path / "chat.jsonl.meta.json").read_text())["engine"] == "openai:chat"


def test_killed_server_then_restart_resumes_without_loss_or_duplicates(server, served_rows, mixed_data, tmp_path):
    out = tmp_path / "killed.jsonl"
    cmd = [
        sys.executable,
        "-m",
        "ftbench",
        "predict",
        "--model",
        "tiny",
        "--data",
        mixed_data,
        "-o",
        str(out),
        "--engine",
        "openai",
        "--base-url",
        server.url,
        "--concurrency",
        "2",
        "--max-retries",
        "1",
        *FAST,
    ]
    env = {**os.environ, "PYTHONPATH": REPO}
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env)
    deadline, lines = time.monotonic() + 180, 0
    while time.monotonic() < deadline and proc.poll() is None:
        lines = out.read_bytes().count(b"\n") if out.exists() else 0
        if lines >= 5:
            break
        time.sleep(0.01)
    server.kill()
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 2, stderr
    kept = rows(out)
    assert 5 <= len(kept) < 60, f"the server was not killed mid-run ({len(kept)} rows)"
    last = stderr.strip().splitlines()[-1]
    assert "run the same command again to resume" in last and "Traceback" not in stderr
    server.restart()
    result = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=300, env=env)
    assert result.returncode == 0, result.stderr
    resumed = rows(out)
    assert [r["index"] for r in resumed] == list(range(60))
    assert resumed[: len(kept)] == kept  # append-only
    assert resumed == served_rows[0]  # nothing lost, nothing duplicated, the same answers


def test_another_engine_does_not_extend_the_file(server, mixed_data, tmp_path):
    out = tmp_path / "mixed.jsonl"
    assert (
        run_cli(
            "predict", "--model", "tiny", "--data", mixed_data, "-o", str(out), "--limit", "2", "--threads", "1", *FAST
        ).exit_code
        == 0
    )
    result = run_cli(
        "predict",
        "--model",
        "tiny",
        "--data",
        mixed_data,
        "-o",
        str(out),
        "--limit",
        "4",
        "--engine",
        "openai",
        "--base-url",
        server.url,
        *FAST,
    )
    assert result.exit_code == 2 and "another --engine" in result.output


def test_api_key_is_sent_but_never_shown_or_written(server, mixed_data, tmp_path, monkeypatch):
    secret = "sk-test-" + "x7" * 12
    monkeypatch.setenv("MY_SERVER_KEY", secret)
    out = tmp_path / "keyed.jsonl"
    result = run_cli(
        "predict",
        "--model",
        "tiny",
        "--data",
        mixed_data,
        "-o",
        str(out),
        "--limit",
        "3",
        "--engine",
        "openai",
        "--base-url",
        server.url,
        "--api-key-env",
        "MY_SERVER_KEY",
        "--json",
        *FAST[:2],
    )
    assert result.exit_code == 0, result.output
    written = out.read_text() + (tmp_path / "keyed.jsonl.meta.json").read_text()
    assert secret not in result.output and secret not in written


@pytest.mark.skipif(
    not os.path.exists(os.path.join(SHARED_GSM8K, "train.jsonl")),
    reason=f"gsm8k_local reads GSM8K from {SHARED_GSM8K} (the repository next to shared/), as the other eval tests do",
)
def test_eval_through_the_server_and_lm_eval_local_completions(server, tmp_path):
    pytest.importorskip("tenacity", reason="lm-eval's API models need lm-eval[api]")
    common = ["eval", "--task", "gsm8k_local", "--model", "tiny", "--limit", "6", "--max-gen-toks", "32", "-q"]
    results = {}
    for name, extra in {
        "local": ["--threads", "1"],
        "openai": ["--engine", "openai", "--base-url", server.url],
        "lm-eval": ["--engine", "lm-eval", "--base-url", server.url],
    }.items():
        samples = tmp_path / f"{name}.jsonl"
        result = run_cli(*common, "--samples", str(samples), *extra)
        assert result.exit_code == 0, (name, result.output)
        results[name] = rows(samples)
    for name in ("openai", "lm-eval"):
        assert [r["prompt"] for r in results[name]] == [r["prompt"] for r in results["local"]]
        assert same_rate(results["local"], results[name], "response") >= 0.95, name


def test_train_and_compare_evaluates_on_the_server(server, tiny_model, tmp_path):
    out = tmp_path / "run"
    cmd = [
        "train-and-compare",
        "--model",
        "tiny",
        "--output-dir",
        str(out),
        "--engine",
        "openai",
        "--base-url",
        server.url,
        "--gsm8k-limit",
        "6",
        "--max-new-tokens",
        "24",
        "num_train_epochs=1",
        "-q",
    ]
    result = run_cli(*cmd)
    assert result.exit_code == 0, result.output
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["run"]["compare"]["engine"] == "openai"
    assert os.path.isfile(out / "merged" / "ftbench_export.json")
    after = rows(out / "predictions_after.jsonl")
    # the same held-out prompts, generated locally with the chosen checkpoint, give the same answers
    eval_file = json.loads((out / "run_config.json").read_text())["train"]["eval_dataset"][0]
    local = tmp_path / "local_after.jsonl"
    result = run_cli(
        "predict",
        "--model",
        "tiny",
        "--adapter",
        metrics["checkpoint"]["path"],
        "--data",
        eval_file,
        "-o",
        str(local),
        "--max-new-tokens",
        "24",
        "--threads",
        "1",
        "-q",
    )
    assert result.exit_code == 0, result.output
    assert same_rate(rows(local), after) >= 0.95
    assert run_cli(*cmd).exit_code == 0  # a finished run folder resumes as a no-op


@pytest.mark.parametrize(
    "args, message",
    [
        (["--engine", "openai"], "--engine openai needs --base-url"),
        (["--engine", "local", "--base-url", "http://127.0.0.1:1/v1"], "--base-url is for --engine openai"),
        (["--engine", "opneai"], "did you mean"),
        (["--engine", "vllm"], "--engine vllm needs the vllm package"),
        (["--engine", "openai", "--base-url", "127.0.0.1:8000"], "expected an http:// or https:// URL"),
    ],
)
def test_engine_usage_errors_are_one_line(tiny_model, mixed_data, tmp_path, args, message):
    pytest.importorskip("torch")
    if "vllm" in args:
        try:
            import vllm  # noqa: F401

            pytest.skip("vllm is installed here")
        except ImportError:
            pass
    result = run_cli("predict", "--model", "tiny", "--data", mixed_data, "-o", str(tmp_path / "o.jsonl"), *args)
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], result.output


def test_real_default_model_on_the_server_matches_local(tiny_model, tmp_path):
    """SmolLM2-135M-Instruct (the real default model), pinned in its own server: greedy answers as local."""
    pytest.importorskip("gguf")
    from ftbench.inference.models import resolve_model

    path = resolve_model("smollm2")
    data = os.path.join(REPO, "datasets", "identity.json")
    common = ["predict", "--model", "smollm2", "--data", data, "--limit", "8", "--max-new-tokens", "24", "-q"]
    local = tmp_path / "local.jsonl"
    assert run_cli(*common, "-o", str(local), "--threads", "1").exit_code == 0
    srv = Server(path, log_path=str(tmp_path / "serve.log")).start()
    try:
        served = tmp_path / "served.jsonl"
        result = run_cli(*common, "-o", str(served), "--engine", "openai", "--base-url", srv.url)
        assert result.exit_code == 0, result.output
    finally:
        srv.kill()
    assert same_rate(rows(local), rows(served)) >= 0.95


def test_a_run_judged_by_smollm2_on_transformers_serve(tiny_model, tmp_path):
    """Issue 20's end-to-end judge: a train-and-compare run whose judge is SmolLM2-135M-Instruct served by
    `transformers serve` (a real, if weak, judge). Every prompt is asked in both orders, the replies are the
    server's, and the figures are what the judgments file says (verdicts read again here)."""
    pytest.importorskip("gguf")
    import re

    from ftbench.inference.models import resolve_model

    judge = resolve_model("smollm2")
    prompts = tmp_path / "general.jsonl"
    prompts.write_text(
        "".join(json.dumps({"instruction": p, "output": ""}, ensure_ascii=False) + "\n" for p in ("2+2?", "你好吗？")),
        encoding="utf-8",
    )
    config = tmp_path / "c.yaml"
    config.write_text(
        f"model_name_or_path: tiny\ndataset: {os.path.join(REPO, 'datasets', 'identity.json')}\nmax_samples: 12\n"
        f"val_size: 2\nnum_train_epochs: 1\nper_device_train_batch_size: 4\nretention: {prompts}\n"
        "judge:\n  max_new_tokens: 24\n  retries: 0\n  concurrency: 2\n"
    )
    srv = Server(judge, log_path=str(tmp_path / "serve.log")).start()
    try:
        run = tmp_path / "run"
        result = run_cli(
            "train-and-compare", "--config", str(config), "--gsm8k", "none", "--max-new-tokens", "16",
            "--judge-url", srv.url, "--judge-model", judge, "--output-dir", str(run), "--quiet",
        )  # fmt: skip
        assert result.exit_code == 0, result.output
    finally:
        srv.kill()
    metrics = json.loads((run / "metrics.json").read_text())
    page = (run / "report.html").read_text()
    for scorer, figure, n in (("judge", "judge-win-rate", 2), ("retention-judge", "retention-win-rate", 2)):
        rows = [json.loads(x) for x in (run / f"{scorer}_judgments.jsonl").read_text().splitlines()[1:]]
        assert sorted((r["index"], r["order"]) for r in rows) == [(i, o) for i in range(n) for o in ("ab", "ba")]
        assert all(isinstance(r["reply"], str) and r["reply"].strip() for r in rows)  # SmolLM2's own words
        outcome = {}
        for r in rows:  # the candidate's outcome per order, from the reply text
            found = set(re.findall(r"\[\[([ABC])\]\]", r["reply"]))
            verdict = found.pop() if len(found) == 1 else None
            fine_tuned = "B" if r["order"] == "ab" else "A"
            outcome[r["index"], r["order"]] = (
                None if verdict is None else "tie" if verdict == "C" else "win" if verdict == fine_tuned else "loss"
            )
        judged = [
            (outcome[i, "ab"] if outcome[i, "ab"] == outcome[i, "ba"] else "tie")
            for i in range(n)
            if outcome[i, "ab"] is not None and outcome[i, "ba"] is not None
        ]
        detail = metrics[scorer]["after"]
        assert (detail["wins"], detail["losses"], detail["ties"]) == tuple(
            judged.count(k) for k in ("win", "loss", "tie")
        )
        assert detail["unparseable"] == n - len(judged)
        assert detail["tokens"]["completion_tokens"] > 0
        if judged:
            wins, ties = judged.count("win"), judged.count("tie")
            assert metrics["comparison"][figure]["after"] == pytest.approx(100 * (wins + ties / 2) / len(judged))
        else:  # a 135M judge rarely says [[A]]/[[B]]/[[C]]: the report says so instead of a figure
            assert metrics["comparison"][figure]["delta_ci95"] is None
            assert f"gave no readable verdict ([[A]], [[B]] or [[C]]) on any of {n}" in page
