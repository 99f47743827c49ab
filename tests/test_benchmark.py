"""`--benchmark TASK[,TASK]` (issue 20): lm-eval tasks as a before/after evaluation of train-and-compare, run by
lm-eval's own engine. Offline, on the tiny model: a multiple-choice task YAML, a generate_until one and a group of
two subtasks over local JSONL files; the run's figures equal `lm_eval.simple_evaluate` computed here on the same model (and, after, with
the run's chosen adapter through ``peft=``); McNemar's test and a signature beside them; the report shows them;
a resumed run does not run lm-eval again; an unknown task or a broken YAML is one line, no traceback."""

from __future__ import annotations

import json
import os

import pytest
from helpers import REPO, run_cli

QUESTIONS = [
    ("What color is the sky on a clear day?", ["blue", "green", "red"], 0),
    ("How many legs does a cat have?", ["two", "four", "six"], 1),
    ("Which one is a fruit?", ["carrot", "potato", "apple"], 2),
    ("What is 2 + 2?", ["3", "4", "5"], 1),
    ("Which animal barks?", ["dog", "fish", "bird"], 0),
    ("What do bees make?", ["milk", "honey", "silk"], 1),
    ("Which is the largest?", ["mouse", "cat", "elephant"], 2),
    ("What is frozen water called?", ["ice", "steam", "sand"], 0),
]
LIMIT = 6  # --benchmark-limit: the first 6 documents of each task


def _write_tasks(folder) -> tuple[str, str]:
    """A multiple-choice task and a generate_until task, as lm-eval reads them, over local JSONL files."""
    data = folder / "qa.jsonl"
    data.write_text(
        "".join(json.dumps({"question": q, "choices": c, "label": i, "answer": c[i]}) + "\n" for q, c, i in QUESTIONS)
    )
    common = f"dataset_path: json\ndataset_kwargs:\n  data_files:\n    test: {data}\ntest_split: test\n"
    mc = folder / "qa_mc.yaml"
    mc.write_text(
        "task: qa_mc\n" + common + "output_type: multiple_choice\n"
        'doc_to_text: "Question: {{question}}\\nAnswer:"\n'
        'doc_to_choice: "{{choices}}"\ndoc_to_target: label\n'
        "metric_list:\n  - metric: acc\n    aggregation: mean\n    higher_is_better: true\n"
        "  - metric: acc_norm\n    aggregation: mean\n    higher_is_better: true\n"
        "metadata:\n  version: 2.0\n"
    )
    gen = folder / "qa_gen.yaml"
    gen.write_text(
        "task: qa_gen\n" + common + "output_type: generate_until\n"
        'doc_to_text: "Question: {{question}}\\nAnswer:"\ndoc_to_target: "{{answer}}"\n'
        'generation_kwargs:\n  until: ["\\n"]\n  max_gen_toks: 4\n  do_sample: false\n'
        "metric_list:\n  - metric: exact_match\n    aggregation: mean\n    higher_is_better: true\n"
        "metadata:\n  version: 1.0\n"
    )
    for name, text in (("qa_sub_a", "Q: {{question}}\\nA:"), ("qa_sub_b", "{{question}}")):  # a group's subtasks
        (folder / f"{name}.yaml").write_text(f'task: {name}\ninclude: qa_mc.yaml\ndoc_to_text: "{text}"\n')
    group = folder / "qa_group.yaml"
    group.write_text(
        "group: qa_group\ntask: [qa_sub_a, qa_sub_b]\n"
        "aggregate_metric_list:\n  - metric: acc\n    aggregation: mean\n    weight_by_size: true\n"
        "metadata:\n  version: 1.0\n"
    )
    return str(mc), str(gen), str(group)


def _command(tmp_path, benchmark: str, out) -> list[str]:
    config = tmp_path / "c.yaml"
    config.write_text(
        f"model_name_or_path: tiny\ndataset: {os.path.join(REPO, 'datasets', 'identity.json')}\nmax_samples: 12\n"
        "val_size: 4\nnum_train_epochs: 1\nper_device_train_batch_size: 4\nlearning_rate: 0.01\n"
    )
    return [
        "train-and-compare",
        "--config",
        str(config),
        "--gsm8k",
        "none",
        "--retention",
        "none",
        "--max-new-tokens",
        "4",
        "--benchmark",
        benchmark,
        "--benchmark-limit",
        str(LIMIT),
        "--output-dir",
        str(out),
        "--quiet",
    ]


@pytest.fixture(scope="module")
def run(tmp_path_factory, tiny_model):
    tmp = tmp_path_factory.mktemp("bench")
    mc, gen, group = _write_tasks(tmp)
    out = tmp / "run"
    command = _command(tmp, f"{mc},{gen},{group}", out)
    result = run_cli(*command)
    assert result.exit_code == 0, result.output
    return out, command, json.loads((out / "metrics.json").read_text())


def _lm_eval(tiny_model, tasks_dir, adapter=None) -> dict:
    """lm-eval's own figures on the same model and tasks: its HF model as ftbench loads the tiny model on a CPU
    (float32, eager attention), with the adapter through peft=."""
    import lm_eval
    from lm_eval.tasks import TaskManager

    args = {"pretrained": tiny_model, "dtype": "float32", "attn_implementation": "eager"}
    if adapter:
        args["peft"] = adapter
    res = lm_eval.simple_evaluate(
        model="hf",
        model_args=args,
        tasks=["qa_mc", "qa_gen", "qa_group"],
        device="cpu",
        limit=LIMIT,
        task_manager=TaskManager(include_path=str(tasks_dir), include_defaults=False),
    )
    return res["results"]


def test_the_figures_equal_lm_evals_own(run, tiny_model):
    out, _, metrics = run
    tasks_dir = out.parent
    adapter = metrics["checkpoint"]["path"]
    assert os.path.isfile(os.path.join(adapter, "adapter_config.json"))
    for side, results in (
        ("before", _lm_eval(tiny_model, tasks_dir)),
        ("after", _lm_eval(tiny_model, tasks_dir, adapter)),
    ):
        assert metrics[side]["qa_mc/acc"] == results["qa_mc"]["acc,none"]
        assert metrics[side]["qa_mc/acc_norm"] == results["qa_mc"]["acc_norm,none"]
        assert metrics[side]["qa_gen/exact_match"] == results["qa_gen"]["exact_match,none"]
        # a group: the mean over its subtasks' documents, lm-eval's size-weighted group figure
        assert metrics[side]["qa_group/acc"] == pytest.approx(results["qa_group"]["acc,none"], abs=1e-12)
    assert metrics["n"]["benchmark"] == 4 * LIMIT
    assert "subtasks:2" in metrics["signatures"]["qa_group/acc"]


def test_each_figure_is_compared_like_gsm8ks(run):
    out, _, metrics = run
    acc = metrics["comparison"]["qa_mc/acc"]
    assert acc["wins"] + acc["losses"] + acc["ties"] == LIMIT and acc["delta_ci95"] is not None
    assert acc["mcnemar"]["wrong_to_right"] == acc["wins"] and acc["mcnemar"]["right_to_wrong"] == acc["losses"]
    assert "mcnemar" in metrics["comparison"]["qa_gen/exact_match"]
    assert f"{LIMIT} benchmark documents" in acc["verdict"]["words"]  # its task's documents, not every task's
    signature = metrics["signatures"]["qa_mc/acc"]
    assert signature.startswith("lm-eval-benchmark|task:qa_mc|version:2.0|num-fewshot:0|metric:acc|")
    assert f"limit:{LIMIT}" in signature and "lm-eval:0.4" in signature
    assert metrics["benchmark"]["after"]["qa_mc"]["documents"] == LIMIT
    rows = [json.loads(x) for x in (out / "benchmark_predictions_before.jsonl").read_text().splitlines()]
    first = rows[0]
    assert (first["task"], first["doc_id"], first["label"]) == ("qa_mc", 0, "blue")
    assert first["predict"] in QUESTIONS[0][1] and "What color is the sky" in first["prompt"]
    page = (out / "report.html").read_text()
    for figure in ("qa_mc/acc", "qa_mc/acc_norm", "qa_gen/exact_match"):
        assert figure in page
    assert "What color is the sky" in page  # the per-document table


def test_a_resumed_run_does_not_run_lm_eval_again(run):
    out, command, metrics = run
    files = [out / f"benchmark_predictions_{side}.jsonl" for side in ("before", "after")]
    stamps = [os.stat(f).st_mtime_ns for f in files]
    result = run_cli(*command)
    assert result.exit_code == 0, result.output
    assert [os.stat(f).st_mtime_ns for f in files] == stamps
    assert json.loads((out / "metrics.json").read_text())["comparison"] == metrics["comparison"]
    # another limit is another run: refused in the same folder, one line
    changed = run_cli(*[("3" if x == str(LIMIT) else x) for x in command])
    assert changed.exit_code == 2 and "benchmark_limit" in changed.output and "Traceback" not in changed.output


def test_an_unknown_task_or_a_broken_yaml_is_one_line(tmp_path, tiny_model):
    result = run_cli(*_command(tmp_path, "no_such_task_xyz", tmp_path / "a"))
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert len(result.stderr.strip().splitlines()) == 1 and "no_such_task_xyz" in result.stderr
    broken = tmp_path / "broken.yaml"
    broken.write_text("task: [unclosed\n")
    result = run_cli(*_command(tmp_path, str(broken), tmp_path / "b"))
    assert result.exit_code in (1, 2) and "Traceback" not in result.output
    assert len(result.stderr.strip().splitlines()) == 1 and "broken.yaml" in result.stderr


def test_a_sweep_evaluates_the_benchmark_in_every_run(tmp_path):
    """The sweep writes each run's YAML with the compare keys: the benchmark and its limit go with them (retention
    is left out of a sweep; a benchmark asked for is not), and the run reads them back as given."""
    import yaml

    from ftbench.recipes.run_settings import prepare_run
    from ftbench.recipes.sweep import PlannedRun, _run_yaml

    mc, gen, _ = _write_tasks(tmp_path)
    data = os.path.join(REPO, "datasets", "identity.json")
    cfg, rs, _ = prepare_run(
        None, [f"dataset={data}", "model_name_or_path=tiny"], output_dir=str(tmp_path / "s"), benchmark=f"{mc},{gen}"
    )
    values = _run_yaml(cfg, rs, PlannedRun("baseline", "baseline", {}, {}))
    assert values["benchmark"] == [mc, gen] and values["retention"] == "none"
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump({**values, "benchmark_limit": 3}))
    _, again, _ = prepare_run(str(path), output_dir=str(tmp_path / "r"))
    assert (again.benchmark, again.benchmark_limit) == ([mc, gen], 3)
    assert "--benchmark" in run_cli("sweep", "--help").output


def test_documents_are_paired_by_task_and_doc_id():
    from ftbench.api.errors import InputError
    from ftbench.evaluation.benchmark import split_entries
    from ftbench.evaluation.benchmark_scorer import BenchmarkScorer

    def row(task, doc, acc):
        setting = {"version": 1, "num_fewshot": 0, "lm_eval": "0.4.13", "limit": None}
        values = {"acc,none": acc, "exact_match,strict-match": acc}
        return dict(
            benchmark=task, task=task, doc_id=doc, prompt="q", label="a", predict="b", values=values, setting=setting
        )

    before = [row("a", 0, 0.0), row("a", 1, 1.0), row("b", 0, 0.0)]
    after = [row("b", 0, 1.0), row("a", 1, 1.0), row("a", 0, 1.0)]  # another order: paired by (task, doc_id)
    c = BenchmarkScorer().compare(before, after)
    assert (c.figures["a/acc"]["wins"], c.figures["a/acc"]["ties"], c.figures["b/acc"]["after"]) == (1, 1, 1.0)
    assert "a/exact_match,strict-match" in c.figures and c.figures["a/acc"]["mcnemar"]["wrong_to_right"] == 1
    with pytest.raises(InputError, match="not over the same documents"):
        BenchmarkScorer().compare(before, after[:2] + [row("a", 2, 1.0)])
    assert split_entries("arc_easy, none") == ["arc_easy", "none"] and split_entries("none") is None
    assert split_entries(["x.yaml"]) == [os.path.abspath("x.yaml")]
