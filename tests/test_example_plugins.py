"""A scorer and a generation engine, each installed as a real plug-in (distributions with entry points in the
`ftbench.scorers`/`ftbench.metrics` and `ftbench.engines` groups on the path), run through `train-and-compare`
together: the registries are the whole contract, with no name of either written anywhere in ftbench."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from helpers import REPO

PLUGINS = os.path.join(REPO, "tests", "plugins")
ENTRY_POINTS = {
    "ftbench_example_engine": "[ftbench.engines]\nexample = ftbench_example_engine:ExampleEngine\n",
    "ftbench_example_scorer": "[ftbench.metrics]\nexact-text = ftbench_example_scorer:ExactText\n"
    "[ftbench.scorers]\nexact = ftbench_example_scorer:ExactScorer\n",
}


def test_train_and_compare_with_a_plugin_scorer_and_a_plugin_engine(tmp_path, tiny_model):
    site = tmp_path / "site"
    for package, entry_points in ENTRY_POINTS.items():
        info = site / f"{package}-0.1.dist-info"
        info.mkdir(parents=True)
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {package.replace('_', '-')}\nVersion: 0.1\n")
        (info / "entry_points.txt").write_text(entry_points)
    env = dict(
        os.environ,
        PYTHONPATH=os.pathsep.join([str(site), PLUGINS, os.environ.get("PYTHONPATH", "")]),
        HF_HUB_OFFLINE="1",
        HF_DATASETS_OFFLINE="1",
    )
    out = tmp_path / "run"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "ftbench",
            "train-and-compare",
            "--model",
            "tiny",
            "--engine",
            "example",
            "--output-dir",
            str(out),
            "num_train_epochs=1",
            "--gsm8k",
            "none",
            "--max-new-tokens",
            "6",
            "--json",
        ],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    metrics = json.loads((out / "metrics.json").read_text(encoding="utf-8"))
    assert "exact" in metrics["after"] and metrics["signatures"]["exact"] == "exact|strip:yes|example-plugin"
    assert "mcnemar" in metrics["comparison"]["exact"]  # declared an accuracy
    rows = [json.loads(line) for line in (out / "exact_predictions_after.jsonl").read_text().splitlines()]
    assert rows and all(r["predict"] == " ".join(r["prompt"].split()[-6:]) for r in rows)  # the echo engine's
    assert "exact" in (out / "report.html").read_text(encoding="utf-8")
