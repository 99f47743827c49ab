"""ftbench's metrics as Hugging Face `evaluate` modules: loaded offline by path (in a process with the hub switched
off), they give exactly `ftbench score`'s figures, so a user's `Trainer(compute_metrics=...)` reports what ftbench
reports."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from helpers import REPO

SCRIPT = r"""
import json, sys
import evaluate
from ftbench.metrics.hf_evaluate import module_path

pairs = json.load(open(sys.argv[1], encoding="utf-8"))
out = {}
for name in ("similarity", "gsm8k"):
    metric = evaluate.load(module_path(name))
    for p, r in zip(pairs["predictions"], pairs["references"]):
        metric.add(predictions=p, references=r)  # the Trainer's eval loop adds batch by batch
    out[name] = metric.compute()
print(json.dumps(out))
"""


def _pairs() -> dict:
    with open(os.path.join(REPO, "datasets", "gsm8k", "test.jsonl"), encoding="utf-8") as fh:
        rows = [json.loads(line) for _, line in zip(range(12), fh)]
    references = [r["answer"] for r in rows]
    # a mix of right, wrong, unformatted and Chinese answers
    predictions = [
        a if i % 3 == 0 else a.replace("####", "answer:") if i % 3 == 1 else f"我觉得是 {i} #### {i}"
        for i, a in enumerate(references)
    ]
    return {"predictions": predictions, "references": references}


def test_evaluate_modules_give_ftbench_scores_offline(tmp_path):
    from ftbench.metrics.scoring import score_pairs

    pairs = _pairs()
    path = tmp_path / "pairs.json"
    path.write_text(json.dumps(pairs, ensure_ascii=False), encoding="utf-8")
    env = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "HF_EVALUATE_OFFLINE": "1",
        "HF_DATASETS_OFFLINE": "1",
        "HF_HOME": str(tmp_path / "hf"),
        "PYTHONPATH": REPO,
    }
    proc = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(path)],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        cwd=str(tmp_path),
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    got = json.loads(proc.stdout.strip().splitlines()[-1])
    for name in ("similarity", "gsm8k"):
        expected = score_pairs(pairs["predictions"], pairs["references"], scorer=name).metrics
        assert got[name] == expected  # identical figures, not approximately
    assert 0 < got["gsm8k"]["exact_match,strict-match"] < 1 and 0 < got["similarity"]["rouge-l"] < 100


def test_module_path_names_only_shipped_modules():
    from ftbench.metrics.hf_evaluate import MODULES, module_path

    for name, folder in MODULES.items():
        assert os.path.isfile(os.path.join(module_path(name), folder + ".py"))
    with pytest.raises(ValueError):
        module_path("accuracy")
