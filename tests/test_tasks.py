"""tasks/: lm-eval-format task files that load in ftbench (`ftbench.evaluation.tasks.load_task`) and in lm-eval itself,
and give the same figures in both."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from helpers import REPO, SHARED_GSM8K

from ftbench.api.errors import InputError, UsageError
from ftbench.evaluation.tasks import list_tasks, load_task, render_template

TASKS_DIR = os.path.join(REPO, "tasks")
HAVE_GSM8K = os.path.exists(os.path.join(SHARED_GSM8K, "test.jsonl"))
needs_gsm8k = pytest.mark.skipif(
    not HAVE_GSM8K, reason=f"GSM8K not found in {SHARED_GSM8K} (CI clones the repo next to shared/)"
)


@pytest.fixture(autouse=True)
def _repo_cwd(monkeypatch):
    monkeypatch.chdir(REPO)  # relative data_files resolve against the current directory, as in lm-eval


def test_tasks_are_found_by_name():
    assert {"gsm8k", "gsm8k_local", "sft_similarity"} <= set(list_tasks(TASKS_DIR))


def test_gsm8k_is_lm_evals_definition():
    import lm_eval
    from lm_eval.tasks._yaml_loader import load_yaml

    theirs = load_yaml(os.path.join(os.path.dirname(lm_eval.__file__), "tasks", "gsm8k", "gsm8k.yaml"))
    ours = load_task("gsm8k", TASKS_DIR).config
    theirs.pop("tag")  # ours carries none, so it cannot replace lm-eval's math_word_problems tag
    assert ours == theirs
    local = load_task("gsm8k_local", TASKS_DIR).config
    differing = {k for k in set(local) | set(ours) if local.get(k) != ours.get(k)}
    assert differing == {"task", "dataset_path", "dataset_name", "dataset_kwargs"}


def test_task_fields_an_engine_needs():
    task = load_task("gsm8k_local", TASKS_DIR)
    assert task.num_fewshot == 5 and task.fewshot_split == "train" and task.test_split == "test"
    assert task.until == ["Question:", "</s>", "<|im_end|>"]
    assert [f["name"] for f in task.filters] == ["strict-match", "flexible-extract"]
    assert task.metrics[0]["metric"] == "exact_match"
    sim = load_task(os.path.join(TASKS_DIR, "sft_similarity", "sft_similarity.yaml"))
    assert sim.name == "sft_similarity" and sim.num_fewshot == 0
    assert [m["metric"] for m in sim.metrics] == ["bleu-4", "rouge-1", "rouge-2", "rouge-l"]


def test_templates_render_as_lm_eval_renders_them():
    from lm_eval.utils import apply_template

    docs = [
        {"question": "How many?", "instruction": "翻译", "input": "", "output": "x"},
        {"question": "Q2\n", "instruction": "Summarize", "input": "long text\n", "output": "y"},
    ]
    templates = [
        "Question: {{question}}\nAnswer:",
        "{{instruction}}{% if input %}\n{{input}}{% endif %}",
        "{{question | regex_replace('[0-9]', '#')}}\n",
        "{{ output }}",
    ]
    for template in templates:
        for doc in docs:
            assert render_template(template, doc) == apply_template(template, doc)


def test_sft_similarity_docs_prompts_and_scores():
    task = load_task("sft_similarity", TASKS_DIR)
    docs = task.docs()
    assert len(docs) == 8
    assert task.doc_to_text(docs[1]) == docs[1]["instruction"] + "\n" + docs[1]["input"]
    assert task.doc_to_text(docs[0]) == docs[0]["instruction"]
    scores = task.process_results(docs[1], docs[1]["output"])
    assert scores == {"bleu-4,none": 100.0, "rouge-1,none": 100.0, "rouge-2,none": 100.0, "rouge-l,none": 100.0}


@needs_gsm8k
def test_gsm8k_local_docs_prompt_and_filters():
    task = load_task("gsm8k_local", TASKS_DIR)
    docs = task.docs()
    assert len(docs) == 1319 and len(task.docs("train")) == 7473
    shots = task.docs(task.fewshot_split)[:2]
    prompt = task.fewshot_context(docs[0], shots)
    assert prompt.startswith("Question: " + shots[0]["question"] + "\nAnswer: " + shots[0]["answer"] + "\n\n")
    assert prompt.endswith("Question: " + docs[0]["question"] + "\nAnswer:")
    got = task.process_results(docs[0], "She makes $18.\n#### 18\n\nQuestion: 5 apples")
    assert got == {"exact_match,strict-match": 1.0, "exact_match,flexible-extract": 0.0}


def test_relative_data_files_resolve_against_the_current_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    task = load_task("sft_similarity", TASKS_DIR)
    with pytest.raises(UsageError, match="relative paths resolve against the current directory"):
        task.docs()


def test_unknown_and_unsupported_tasks(tmp_path):
    with pytest.raises(UsageError, match="no task 'nope'"):
        load_task("nope", TASKS_DIR)
    group = tmp_path / "group.yaml"
    group.write_text("group: g\ntask: [gsm8k]\n")
    with pytest.raises(InputError, match="not a single task"):
        load_task(str(group))
    bad = tmp_path / "bad.yaml"
    bad.write_text("task: x\n  bad: [\n")
    with pytest.raises(InputError, match=r"bad.yaml:\d+:\d+: YAML syntax error"):
        load_task(str(bad))


# Runs inside lm-eval, in a subprocess (offline): its TaskManager must index and build our tasks, and a
# scripted model's outputs must get the same figures from lm-eval as from `ftbench score`.
LM_EVAL_SCRIPT = textwrap.dedent("""
    import json, sys
    from lm_eval import simple_evaluate
    from lm_eval.api.model import LM
    from lm_eval.tasks import TaskManager

    VARIANTS = [
        lambda d: d["answer"],
        lambda d: d["answer"] + "\\n\\nQuestion: Tom has 3 apples and buys 4 more.\\nAnswer: 3 + 4 = 7",
        lambda d: d["answer"].split("####")[0] + "The answer is " + d["answer"].split("#### ")[-1] + ".",
        lambda d: d["answer"].split("####")[0] + "#### $" + d["answer"].split("#### ")[-1] + ".00",
        lambda d: "I think it is 12.",
    ]

    class Scripted(LM):
        def loglikelihood(self, requests): raise NotImplementedError
        def loglikelihood_rolling(self, requests): raise NotImplementedError
        def generate_until(self, requests):
            out = []
            for i, req in enumerate(requests):
                doc = req.doc
                if "answer" in doc:
                    out.append(VARIANTS[req.doc_id % len(VARIANTS)](doc))
                else:
                    out.append(doc["output"][: len(doc["output"]) // 2] + "，还有别的 words。" if i % 2 else doc["output"])
            return out

    tasks = sys.argv[1].split(",")
    tm = TaskManager(include_path="tasks")
    found = [t for t in ("gsm8k", "gsm8k_local", "sft_similarity") if t in tm.all_tasks]
    res = simple_evaluate(model=Scripted(), tasks=tasks, task_manager=tm, limit=int(sys.argv[2]),
                          bootstrap_iters=10, log_samples=True)
    samples = {t: [{"predict": s["resps"][0][0], "label": s["target"], "doc_id": s["doc_id"],
                    "metrics": {m: s[m] for m in s["metrics"] if m in s}}
                   for s in sorted(res["samples"][t], key=lambda s: s["doc_id"])
                   if s["filter"] == (res["samples"][t][0]["filter"])] for t in tasks}
    print(json.dumps({"found": found, "results": res["results"], "samples": samples}))
""")


@pytest.fixture(scope="module")
def lm_eval_run(tmp_path_factory):
    tasks = "sft_similarity,gsm8k_local" if HAVE_GSM8K else "sft_similarity"
    env = dict(os.environ, HF_DATASETS_OFFLINE="1", HF_HUB_OFFLINE="1", TOKENIZERS_PARALLELISM="false")
    proc = subprocess.run(
        [sys.executable, "-c", LM_EVAL_SCRIPT, tasks, "60"],
        capture_output=True,
        text=True,
        cwd=REPO,
        env=env,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_lm_eval_task_manager_finds_and_builds_our_tasks(lm_eval_run):
    assert lm_eval_run["found"] == ["gsm8k", "gsm8k_local", "sft_similarity"]
    assert "sft_similarity" in lm_eval_run["results"]


def _ftbench_figures(rows, task):
    from ftbench.metrics.scoring import score_pairs

    return score_pairs([r["predict"] for r in rows], [r["label"] for r in rows], scorer=task, jobs=1)


def test_sft_similarity_figures_equal_in_lm_eval_and_ftbench(lm_eval_run):
    theirs = lm_eval_run["results"]["sft_similarity"]
    rows = lm_eval_run["samples"]["sft_similarity"]
    ours = _ftbench_figures(rows, "similarity")
    assert ours.n == 8
    for figure in ("bleu-4", "rouge-1", "rouge-2", "rouge-l"):
        assert [r["metrics"][figure] for r in rows] == ours.samples[figure]  # per sample: the same floats
        # lm-eval averages with sum()/n, LLaMA-Factory's do_predict with np.mean: the same numbers, but the
        # two floats may differ in the last bit, which shows when the mean sits on a rounding boundary
        plain = sum(ours.samples[figure]) / ours.n
        assert theirs[f"{figure},none"] == plain
        assert ours.metrics[figure] == float(np.mean(ours.samples[figure]))
        if f"{plain:.4f}" != f"{ours.metrics[figure]:.4f}":
            assert ours.details["sum_len_means"][figure] == plain
        assert theirs[f"{figure}_stderr,none"] == ours.stderr[figure]


@needs_gsm8k
def test_gsm8k_figures_equal_in_lm_eval_and_ftbench(lm_eval_run):
    theirs = lm_eval_run["results"]["gsm8k_local"]
    rows = lm_eval_run["samples"]["gsm8k_local"]
    assert len(rows) == 60
    ours = _ftbench_figures(rows, "gsm8k")
    for figure in ("exact_match,strict-match", "exact_match,flexible-extract"):
        assert ours.metrics[figure] == theirs[figure]
        assert ours.stderr[figure] == theirs[figure.replace(",", "_stderr,")]
    assert ours.details["disagreement"]["disagreements"] >= 20
    assert set(ours.details["disagreement"]["causes"]) >= {"text-after-answer", "no-marker"}
