"""The example engine of docs/architecture.md, installed as a real plug-in (a distribution with an entry point in
the `ftbench.engines` group on the path), answers `ftbench predict` and `ftbench eval`: the `GenerationEngine`
interface is the whole contract between a generator and the rest of ftbench."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from helpers import REPO

PLUGINS = os.path.join(REPO, "tests", "plugins")


@pytest.fixture(scope="module")
def plugin_env(tmp_path_factory, tiny_model):
    """An environment in which the example engine is an installed distribution (dist-info + entry point)."""
    site = tmp_path_factory.mktemp("site")
    info = site / "ftbench_example_engine-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: ftbench-example-engine\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[ftbench.engines]\nexample = ftbench_example_engine:ExampleEngine\n")
    return dict(
        os.environ,
        PYTHONPATH=os.pathsep.join([str(site), PLUGINS, os.environ.get("PYTHONPATH", "")]),
        FTBENCH_CACHE=os.environ["FTBENCH_CACHE"],
        HF_HUB_OFFLINE="1",
        HF_DATASETS_OFFLINE="1",
    )


def ftbench(env, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "ftbench", *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=300
    )


def echo(prompt: str, n: int) -> str:
    return " ".join(prompt.split()[-n:])


def test_predict_with_the_example_engine(plugin_env, tmp_path):
    data = tmp_path / "d.jsonl"
    data.write_text(
        "".join(json.dumps({"instruction": f"say the number {i} please", "output": str(i)}) + "\n" for i in range(4)),
        encoding="utf-8",
    )
    out = tmp_path / "o.jsonl"
    proc = ftbench(
        plugin_env,
        "predict",
        "--engine",
        "example",
        "--model",
        "tiny",
        "--data",
        str(data),
        "-o",
        str(out),
        "--max-new-tokens",
        "2",
        "--json",
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["predict"] for r in rows] == [echo(r["prompt"], 2) for r in rows] and len(rows) == 4
    assert "please" in rows[0]["predict"]  # the prompt ftbench rendered reached the engine
    meta = json.loads((tmp_path / "o.jsonl.meta.json").read_text())
    assert meta["engine"] == "example" and meta["effective_generation"]["max_new_tokens"] == 2
    assert json.loads(proc.stdout)["engine"] == "example"


def test_eval_with_the_example_engine(plugin_env, tmp_path):
    samples = tmp_path / "rows.jsonl"
    proc = ftbench(
        plugin_env,
        "eval",
        "--engine",
        "example",
        "--task",
        "sft_similarity",
        "--model",
        "tiny",
        "--limit",
        "3",
        "--max-gen-toks",
        "4",
        "--samples",
        str(samples),
        "--json",
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = json.loads(proc.stdout)
    assert (out["harness"], out["generation_engine"], out["n"]) == ("ftbench", "example", 3)
    rows = [json.loads(line) for line in samples.read_text().splitlines()]
    assert [r["response"] for r in rows] == [echo(r["prompt"], 4) for r in rows]
    assert out["config"]["generation"]["engine"] == {
        "engine": "example",
        "max_new_tokens": 4,
        "stop": ["</s>", "<|im_end|>", "<|endoftext|>"],
    }


def test_an_option_of_another_engine_is_refused_in_one_line(plugin_env, tmp_path):
    proc = ftbench(
        plugin_env,
        "predict",
        "--engine",
        "example",
        "--model",
        "tiny",
        "--data",
        "x.jsonl",
        "-o",
        str(tmp_path / "o.jsonl"),
        "--base-url",
        "http://127.0.0.1:1/v1",
    )
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "--base-url is for --engine openai" in lines[0], proc.stderr
