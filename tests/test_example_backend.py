"""The example backend of docs/backends.md, installed as a real plug-in (a distribution with an entry point in the
`ftbench.backends` group on the path), runs train-and-compare end to end: the backend interface is the whole
contract between a trainer and the rest of ftbench."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from helpers import REPO

PLUGINS = os.path.join(REPO, "tests", "plugins")


@pytest.fixture(scope="module")
def plugin_env(tmp_path_factory):
    """An environment in which the example backend is an installed distribution (dist-info + entry point)."""
    site = tmp_path_factory.mktemp("site")
    info = site / "ftbench_example_backend-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: ftbench-example-backend\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[ftbench.backends]\nexample = ftbench_example_backend:ExampleBackend\n")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(site), PLUGINS, os.environ.get("PYTHONPATH", "")]))
    return env


def test_the_example_backend_is_discovered_through_its_entry_point(plugin_env):
    proc = subprocess.run(
        [sys.executable, "-m", "ftbench", "backends", "--json"],
        cwd=REPO,
        env=plugin_env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    entry = {b["name"]: b for b in json.loads(proc.stdout)}["example"]
    assert entry["source"] == "entry point (package ftbench-example-backend)" and entry["error"] is None
    assert entry["target"] == "ftbench_example_backend:ExampleBackend"


def test_train_and_compare_runs_end_to_end_with_the_example_backend(plugin_env, tmp_path, tiny_model):
    out = tmp_path / "run"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "ftbench",
            "train-and-compare",
            "--backend",
            "example",
            "--model",
            "tiny",
            "--output-dir",
            str(out),
            "num_train_epochs=1",
            "--gsm8k-limit",
            "8",
            "--max-new-tokens",
            "16",
            "--json",
        ],
        cwd=REPO,
        env=dict(plugin_env, FTBENCH_CACHE=os.environ["FTBENCH_CACHE"]),
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = json.loads(proc.stdout)
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["run"]["backend"] == "example"
    trained = json.loads((out / "train_result.json").read_text())  # what the backend returned, kept by the recipe
    evaluated = [c for c in trained["checkpoints"] if c["eval_loss"] is not None]
    assert evaluated and summary["checkpoint"]["eval_loss"] == min(c["eval_loss"] for c in evaluated)
    assert summary["checkpoint"]["path"] == trained["best_checkpoint"]
    assert (out / "train" / "example_train_args.yaml").is_file()  # the example's own record
    assert (out / "report.html").is_file() and "loss curves" in (out / "report.html").read_text()
    assert [r["current_steps"] for r in trained["log"]] == [
        json.loads(line)["current_steps"] for line in (out / "trainer_log.jsonl").read_text().splitlines()
    ]
