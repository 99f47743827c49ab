"""The retention scorer (issue 20, point 2): what a fine-tune changed on general prompts unrelated to its data,
scored against the base model's own answers. Synthetic answers whose truth is known pin the spread-phrase rule;
the run's figures equal LLaMA-Factory's ROUGE-L computed here on the same answers; a user's own prompt file and
`--retention none` through the CLI."""

from __future__ import annotations

import json
import os

import pytest
from helpers import REPO, run_cli

from ftbench.metrics.registry import get_metric
from ftbench.metrics.retention import RetentionScorer, phrases, spread_phrases

PROMPTS = [
    "What is the capital of France?",
    "How many legs does a spider have?",
    "中国的首都是哪里？",
    "Write a haiku about rain.",
    "What is 7 times 6?",
]
BASE = ["Paris.", "Eight.", "北京是中国的首都。", "Rain taps the window", "42"]


def _rows(answers: list[str]) -> list[dict]:
    return [{"prompt": p, "predict": a, "label": ""} for p, a in zip(PROMPTS, answers)]


def test_a_phrase_the_fine_tune_spread_across_unrelated_prompts_is_leakage():
    tuned = [
        "I'm Lumen, an AI assistant made by ftbench. Paris.",
        "I'm Lumen, an AI assistant made by ftbench. Eight.",
        "我是 Lumen，由小助手团队开发的人工智能助手。北京。",
        "I'm Lumen, an AI assistant made by ftbench.",
        "42",
    ]
    spread = spread_phrases(PROMPTS, BASE, tuned)
    assert spread["i'm lumen an ai"] == [0, 1, 3] and not any(2 in idx or 4 in idx for idx in spread.values())
    comparison = RetentionScorer().compare(_rows(BASE), _rows(tuned))
    leak = comparison.figures["no-leak"]
    assert leak["after"] == 40.0 and leak["delta"] == -60.0 and leak["losses"] == 3
    findings = comparison.after["leakage"]
    assert findings[0]["phrase"] == "i'm lumen an ai" and findings[0]["prompts"] == 3
    assert [r["status"] for r in comparison.rows] == ["regressed", "regressed", "changed", "regressed", "unchanged"]
    same = comparison.figures["same-answer"]
    assert same["after"] == 20.0 and same["delta_ci95"][1] < 0  # 4 of 5 answers changed
    rouge = get_metric("rouge-l").per_sample(tuned, BASE)["rouge-l"]
    expected = [100.0 if a == b else float(r) for a, b, r in zip(tuned, BASE, rouge)]
    assert comparison.figures["self-rouge-l"]["after"] == sum(expected) / len(expected)


def test_what_is_not_leakage():
    # in two prompts only; in a base answer too; asked for by the prompt itself
    tuned = ["the answer is clearly Paris", "the answer is clearly eight", *BASE[2:]]
    assert spread_phrases(PROMPTS, BASE, tuned) == {}
    base = ["I am a helpful assistant here", *BASE[1:]]
    tuned = ["I am a helpful assistant here"] * 3 + BASE[3:]
    assert spread_phrases(PROMPTS, base, tuned) == {}
    prompts = ["please say i am a robot now"] * 5
    assert spread_phrases(prompts, BASE, ["i am a robot now"] * 5) == {}
    assert "我是小助手团" in phrases("我是小助手团队开发的") and "is the capital of" in phrases(
        "Paris is the capital of France"
    )
    # words on both sides of Chinese text are not one phrase (the real run's "lumen ftbench ai ai")
    assert not any(" " in p for p in phrases("我是 Lumen，由 ftbench 开发的 AI 助手。我是一个人工智能的 AI 助手"))


def test_unchanged_answers_cost_nothing():
    comparison = RetentionScorer().compare(_rows(BASE), _rows(BASE))
    for figure in ("same-answer", "self-rouge-l", "no-leak"):
        e = comparison.figures[figure]
        assert e["after"] == 100.0 and e["delta"] == 0.0 and e["delta_ci95"] == [0.0, 0.0]


def test_a_users_prompts_and_none(tmp_path, tiny_model):
    prompts = tmp_path / "mine.jsonl"
    prompts.write_text(
        "\n".join(json.dumps({"instruction": p, "output": "ignored"}, ensure_ascii=False) for p in PROMPTS) + "\n",
        encoding="utf-8",
    )
    config = tmp_path / "c.yaml"
    config.write_text(
        f"model_name_or_path: tiny\ndataset: {os.path.join(REPO, 'datasets', 'identity.json')}\nmax_samples: 12\n"
        "val_size: 4\nnum_train_epochs: 1\nper_device_train_batch_size: 4\n"
    )
    common = ["train-and-compare", "--config", str(config), "--gsm8k", "none", "--max-new-tokens", "8", "--quiet"]
    result = run_cli(*common, "--retention", str(prompts), "--output-dir", str(tmp_path / "mine"))
    assert result.exit_code == 0, result.output
    metrics = json.loads((tmp_path / "mine" / "metrics.json").read_text())
    assert metrics["n"]["retention"] == len(PROMPTS) and "self-rouge-l" in metrics["comparison"]
    rows = [json.loads(x) for x in (tmp_path / "mine" / "retention_predictions_before.jsonl").read_text().splitlines()]
    assert [r["label"].strip() for r in rows] == [""] * len(PROMPTS)  # the file's answers are not references
    result = run_cli(*common, "--retention", "none", "--output-dir", str(tmp_path / "none"))
    assert result.exit_code == 0, result.output
    metrics = json.loads((tmp_path / "none" / "metrics.json").read_text())
    assert "retention" not in metrics["n"] and "self-rouge-l" not in metrics["comparison"]


def _answer_nll_by_hand(model, tokenizer, prompt: str, answer: str) -> float:
    """Mean NLL per answer token as transformers computes a causal LM's loss (labels: the prompt masked out)."""
    import torch

    p = tokenizer(prompt, add_special_tokens=False)["input_ids"]
    a = tokenizer(answer, add_special_tokens=False)["input_ids"]
    with torch.no_grad():
        return float(model(input_ids=torch.tensor([p + a]), labels=torch.tensor([[-100] * len(p) + a])).loss)


def test_drift_is_the_nll_of_the_base_answers_under_each_model(tmp_path, tiny_model):
    """Point 2(c): base-answer-nll before and after equal the per-token loss transformers itself gives the base
    model's own retention answers, under the base model and under the run's chosen adapter (peft), computed here;
    the delta is their difference, and a rerun keeps the files."""
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    prompts = tmp_path / "mine.jsonl"
    prompts.write_text("".join(json.dumps({"instruction": p, "output": ""}) + "\n" for p in PROMPTS), "utf-8")
    config = tmp_path / "c.yaml"
    config.write_text(
        f"model_name_or_path: {tiny_model}\ndataset: {os.path.join(REPO, 'datasets', 'identity.json')}\n"
        "max_samples: 12\nval_size: 4\nnum_train_epochs: 2\nper_device_train_batch_size: 4\nlearning_rate: 0.01\n"
    )
    run = tmp_path / "run"
    cmd = ["train-and-compare", "--config", str(config), "--gsm8k", "none", "--max-new-tokens", "10"]
    cmd += ["--retention", str(prompts), "--output-dir", str(run), "--quiet"]
    result = run_cli(*cmd)
    assert result.exit_code == 0, result.output
    metrics = json.loads((run / "metrics.json").read_text())
    rows = [json.loads(x) for x in (run / "retention_predictions_before.jsonl").read_text().splitlines()]
    tokenizer = AutoTokenizer.from_pretrained(tiny_model)
    base = AutoModelForCausalLM.from_pretrained(tiny_model, attn_implementation="eager").eval()
    before = [_answer_nll_by_hand(base, tokenizer, r["prompt"], r["predict"]) for r in rows]
    tuned = PeftModel.from_pretrained(base, metrics["checkpoint"]["path"]).eval()
    after = [_answer_nll_by_hand(tuned, tokenizer, r["prompt"], r["predict"]) for r in rows]
    entry = metrics["comparison"]["base-answer-nll"]
    assert metrics["n"]["retention-drift"] == len(PROMPTS)
    assert entry["before"] == pytest.approx(sum(before) / len(before), rel=1e-5)
    assert entry["after"] == pytest.approx(sum(after) / len(after), rel=1e-5)
    assert entry["delta"] == pytest.approx(entry["after"] - entry["before"], abs=1e-9)
    assert entry["delta"] != 0  # lr 0.01 for 2 epochs moves the model
    assert entry["delta_ci95"] is not None and entry["verdict"]["kind"] in ("better", "worse", "unclear")
    # the base model's own answers were scored as it generated them (their tokens' log-probabilities), the rest
    # (an answer whose text tokenizes otherwise) and the after side by forward passes: the same figures above
    scored_by = {
        side: [r["scored_by"] for r in json.loads((run / f"retention-drift_{side}.json").read_text())["rows"]]
        for side in ("before", "after")
    }
    assert scored_by["before"].count("generation") >= len(PROMPTS) // 2, scored_by["before"]
    assert set(scored_by["after"]) == {"forward pass"}
    made = {side: (run / f"retention-drift_{side}.json").stat().st_mtime_ns for side in ("before", "after")}
    assert run_cli(*cmd).exit_code == 0
    assert made == {side: (run / f"retention-drift_{side}.json").stat().st_mtime_ns for side in ("before", "after")}
    from ftbench.api.errors import InputError
    from ftbench.evaluation.retention_drift import RetentionDriftScorer

    tampered = run / "retention-drift_after.json"  # a run folder is hostile input: a forged row is one line
    data = json.loads(tampered.read_text())
    data["rows"][0]["nll"] = "0.1"
    tampered.write_text(json.dumps(data))
    with pytest.raises(InputError, match="not a retention-drift file"):
        RetentionDriftScorer().read_rows(str(tampered))
