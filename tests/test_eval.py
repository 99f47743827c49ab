"""`ftbench eval`: the ftbench engine and lm-eval's engine give the same prompts, responses, filtered answers and
figures on the same model, task and documents (tiny random model, local GSM8K)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from helpers import REPO, SHARED_GSM8K, run_cli

HAVE_GSM8K = os.path.exists(os.path.join(SHARED_GSM8K, "test.jsonl"))
needs_gsm8k = pytest.mark.skipif(
    not HAVE_GSM8K,
    reason=f"GSM8K not found in {SHARED_GSM8K} (the repository is expected next to shared/datasets/gsm8k)",
)
# seed 3 of the tiny model writes a few numbers, so flexible-extract finds something; seed 0 writes none
MODEL = "tiny:3"
COMMON = dict(model=MODEL, limit=20, batch_size=8, max_gen_toks=24, threads=1)
INVALID = "[invalid]"


@pytest.fixture(autouse=True)
def _repo_cwd(monkeypatch):
    monkeypatch.chdir(REPO)  # the task's relative data_files resolve against the current directory, as in lm-eval


@pytest.fixture(scope="module")
def model_dir(tiny_model):
    from ftbench.inference.models import resolve_model

    return resolve_model(MODEL)  # built into the test run's cache (tiny_model set FTBENCH_CACHE)


def both_engines(**kwargs):
    from ftbench.evaluation.evaluate import evaluate_task

    return [evaluate_task(engine=engine, **{**COMMON, **kwargs}) for engine in ("ftbench", "lm-eval")]


def assert_same(ours, theirs):
    assert ours.n == theirs.n > 0
    for field in ("prompt", "response", "filtered", "metrics", "target"):
        assert [r[field] for r in ours.rows] == [r[field] for r in theirs.rows], field
    assert ours.metrics == theirs.metrics
    assert ours.stderr == theirs.stderr
    assert ours.ci95 == theirs.ci95 and ours.signatures == theirs.signatures
    responses = [r["response"] for r in ours.rows]
    assert len(set(responses)) == len(responses) and all(r.strip() for r in responses)  # a real comparison


@pytest.fixture(scope="module")
def zero_shot(model_dir):
    return both_engines(task="gsm8k_local", num_fewshot=0)


@needs_gsm8k
def test_engines_agree_zero_shot(zero_shot):
    ours, theirs = zero_shot
    assert_same(ours, theirs)
    assert list(ours.metrics) == ["exact_match,strict-match", "exact_match,flexible-extract"]
    flexible = [r["filtered"]["flexible-extract"] for r in ours.rows]
    assert sum(f != INVALID for f in flexible) >= 2  # the extraction has something to agree on
    assert ours.rows[0]["prompt"] == "Question: " + ours.rows[0]["doc"]["question"] + "\nAnswer:"
    assert ours.score.details["disagreement"]["disagreements"] == sum(
        (r["metrics"]["exact_match,strict-match"] != r["metrics"]["exact_match,flexible-extract"]) for r in ours.rows
    )


@needs_gsm8k
def test_engines_agree_few_shot_with_chat_template(model_dir):
    ours, theirs = both_engines(task="gsm8k_local", num_fewshot=2, apply_chat_template=True)
    assert_same(ours, theirs)
    prompts = [r["prompt"] for r in ours.rows]
    assert all(p.count("<|im_start|>user") == 3 and p.endswith("<|im_start|>assistant\n") for p in prompts)
    assert len({p.split("<|im_start|>assistant")[1] for p in prompts}) > 1  # each document draws its own shots


@needs_gsm8k
def test_prompts_and_fewshot_examples_are_lm_evals(model_dir, tmp_path):
    """Prompts checked against lm-eval's own ConfigurableTask.fewshot_context (no model): seeded sampler in
    document order, description, system instruction, plain text and chat template (multi- and single-turn)."""
    from lm_eval.tasks import TaskManager

    from ftbench.evaluation.lm_eval_conventions import build_prompt, fewshot_examples
    from ftbench.evaluation.tasks import load_task
    from ftbench.inference.models import load_tokenizer

    (tmp_path / "described.yaml").write_text(
        f"include: {REPO}/tasks/gsm8k/gsm8k_local.yaml\ntask: gsm8k_described\ndescription: 'Solve:'\n"
    )
    spec = load_task("gsm8k_described", tmp_path)
    theirs = TaskManager(include_path=str(tmp_path), include_defaults=False).load(["gsm8k_described"])
    task = theirs["tasks"]["gsm8k_described"]
    tokenizer = load_tokenizer(MODEL)

    def chat(history, add_generation_prompt=True):  # HFLM.apply_chat_template
        return tokenizer.apply_chat_template(
            history,
            tokenize=False,
            add_generation_prompt=add_generation_prompt,
            continue_final_message=not add_generation_prompt,
        )

    docs = spec.docs()[:12]
    shots = fewshot_examples(spec, docs, 3)
    assert len({tuple(ex["question"] for ex in s) for s in shots}) == len(docs)
    for system, chat_on, multiturn in [
        (None, False, False),
        ("Be brief.", False, False),
        (None, True, True),
        ("Be brief.", True, False),
    ]:
        task.set_fewshot_seed(1234)
        for doc, examples in zip(docs, shots):
            expected = task.fewshot_context(
                doc,
                num_fewshot=3,
                system_instruction=system,
                apply_chat_template=chat_on,
                fewshot_as_multiturn=multiturn,
                chat_template=chat if chat_on else None,
            )
            got = build_prompt(spec, doc, examples, tokenizer if chat_on else None, system, multiturn)
            assert got == expected
    assert build_prompt(spec, docs[0], []).startswith("Solve:Question: ")  # lm-eval 0.4.13 adds no delimiter


@needs_gsm8k
def test_stop_strings_cut_the_same_way(zero_shot, tmp_path):
    (tmp_path / "stops.yaml").write_text(
        f"include: {REPO}/tasks/gsm8k/gsm8k_local.yaml\ntask: gsm8k_stops\n"
        "generation_kwargs:\n  until: ['e', '，']\n  do_sample: false\n"
    )
    ours, theirs = both_engines(task="gsm8k_stops", num_fewshot=0, include_path=str(tmp_path))
    assert_same(ours, theirs)
    uncut = [r["response"] for r in zero_shot[0].rows]
    cut = [r["response"] for r in ours.rows]
    assert all(u.startswith(c) for u, c in zip(uncut, cut)) and sum(len(c) < len(u) for u, c in zip(uncut, cut)) > 5


def test_engines_agree_with_a_lora_adapter_on_a_process_results_task(model_dir, tmp_path):
    """sft_similarity: 8 local records scored by a `!function` hook; a random LoRA adapter through peft."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(0)
    base = AutoModelForCausalLM.from_pretrained(model_dir)
    lora = get_peft_model(
        base, LoraConfig(r=4, lora_alpha=16, target_modules=["q_proj", "v_proj"], init_lora_weights=False)
    )
    lora.save_pretrained(tmp_path / "adapter")
    ours, theirs = both_engines(task="sft_similarity", adapter=str(tmp_path / "adapter"), limit=None, max_gen_toks=16)
    assert_same(ours, theirs)
    assert list(ours.metrics) == ["bleu-4,none", "rouge-1,none", "rouge-2,none", "rouge-l,none"]
    plain, _ = both_engines(task="sft_similarity", limit=None, max_gen_toks=16)
    assert [r["response"] for r in plain.rows] != [r["response"] for r in ours.rows]  # the adapter was applied


@needs_gsm8k
def test_cli_text_samples_and_json(zero_shot, tmp_path):
    samples = tmp_path / "rows.jsonl"
    args = [
        "eval",
        "--task",
        "gsm8k_local",
        "--model",
        MODEL,
        "--limit",
        "20",
        "--num-fewshot",
        "0",
        "--batch-size",
        "8",
        "--max-gen-toks",
        "24",
        "--threads",
        "1",
    ]
    result = run_cli(*args, "--samples", str(samples))
    assert result.exit_code == 0, result.output
    assert "exact_match,flexible-extract" in result.output and "engine ftbench, 0-shot" in result.output
    rows = [json.loads(line) for line in samples.read_text().splitlines()]
    assert [r["response"] for r in rows] == [r["response"] for r in zero_shot[0].rows]

    env = dict(os.environ, HF_DATASETS_OFFLINE="1", HF_HUB_OFFLINE="1", TOKENIZERS_PARALLELISM="false")
    proc = subprocess.run(
        [sys.executable, "-m", "ftbench", *args, "--json"],
        capture_output=True,
        text=True,
        cwd=REPO,
        env=env,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = json.loads(proc.stdout)
    assert {"task", "engine", "n", "metrics", "stderr", "ci95", "signatures", "config", "timings"} <= set(out)
    assert out["engine"] == "ftbench" and out["n"] == 20 and out["config"]["num_fewshot"] == 0
    assert out["metrics"] == zero_shot[1].metrics  # a fresh process reproduces the lm-eval engine's figures


def test_unknown_task_is_one_line_listing_the_tasks():
    result = run_cli("eval", "--task", "nope", "--model", "tiny")
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "no task 'nope'" in lines[0] and "gsm8k_local" in lines[0]


def test_generation_settings_follow_lm_eval():
    from ftbench.evaluation.lm_eval_conventions import generation_settings
    from ftbench.evaluation.tasks import load_task

    tasks = os.path.join(REPO, "tasks")
    assert generation_settings(load_task("gsm8k", tasks)) == (["Question:", "</s>", "<|im_end|>"], 256, {})
    assert generation_settings(load_task("sft_similarity", tasks))[1] == 512
    assert generation_settings(load_task("sft_similarity", tasks), 7)[1] == 7


@needs_gsm8k
def test_the_models_generation_config_applies_as_in_lm_eval(zero_shot, model_dir, tmp_path):
    """lm-eval's generate() call inherits generation_config.json: a repetition_penalty applies and only its eos
    ids end an answer (here not <|im_end|>, whose text is then dropped as a special token and decoding goes on)."""
    import shutil

    copy = tmp_path / "model"
    shutil.copytree(model_dir, copy)
    gen = json.loads((copy / "generation_config.json").read_text())
    gen.update(repetition_penalty=1.3, eos_token_id=0)
    (copy / "generation_config.json").write_text(json.dumps(gen))
    ours, theirs = both_engines(task="gsm8k_local", num_fewshot=0, model=str(copy))
    assert_same(ours, theirs)
    assert ours.config["generation"]["from_model_generation_config"] == {"repetition_penalty": 1.3}
    before = [r["response"] for r in zero_shot[0].rows]
    assert sum(a != b for a, b in zip(before, (r["response"] for r in ours.rows))) > 10


def test_what_the_ftbench_engine_does_not_reproduce_is_refused_in_one_line(tmp_path):
    (tmp_path / "sampled.yaml").write_text(
        f"include: {REPO}/tasks/sft_similarity/sft_similarity.yaml\ntask: sampled\n"
        "generation_kwargs:\n  until: ['</s>']\n  do_sample: true\n  temperature: 0.7\n"
    )
    result = run_cli("eval", "--task", str(tmp_path / "sampled.yaml"), "--model", "tiny")
    assert result.exit_code == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "sampling" in lines[0] and "use --engine lm-eval" in lines[0]


@needs_gsm8k
def test_a_named_template_renders_the_chat_prompt(model_dir, tmp_path):
    """--template qwen with --apply-chat-template: the prompt is LLaMA-Factory's qwen rendering (its default system
    prompt, here replaced by --default-system), the same text `predict --template` gives; lm-eval's engine,
    which knows only the tokenizer's template, refuses it in one line."""
    from ftbench.data.formats import ASSISTANT, USER, Sample
    from ftbench.inference.chat import render_prompt
    from ftbench.inference.models import load_tokenizer
    from ftbench.inference.templates import get_template

    samples = tmp_path / "rows.jsonl"
    result = run_cli(
        "eval",
        "--task",
        "gsm8k_local",
        "--model",
        MODEL,
        "--limit",
        "2",
        "--num-fewshot",
        "0",
        "--max-gen-toks",
        "8",
        "--threads",
        "1",
        "--apply-chat-template",
        "--template",
        "qwen",
        "--default-system",
        "Solve it.",
        "--samples",
        str(samples),
    )
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in samples.read_text().splitlines()]
    tokenizer, template = load_tokenizer(model_dir), get_template("qwen", "Solve it.")
    question = rows[0]["prompt"].split("<|im_start|>user\n")[1].split("<|im_end|>")[0]
    expected = render_prompt(tokenizer, Sample([(USER, question), (ASSISTANT, "")], "", "", "x", 0, None), template)
    assert rows[0]["prompt"] == expected and expected.startswith("<|im_start|>system\nSolve it.<|im_end|>\n")
    refused = run_cli(
        "eval",
        "--task",
        "gsm8k_local",
        "--model",
        MODEL,
        "--engine",
        "lm-eval",
        "--template",
        "qwen",
        "--apply-chat-template",
        "--limit",
        "1",
    )
    assert refused.exit_code == 2 and "--template" in refused.output and "Traceback" not in refused.output
