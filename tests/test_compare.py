"""Before/after statistics and `ftbench compare` on real prediction files."""

from __future__ import annotations

import json
import math

import pytest
from helpers import run_cli

from ftbench.api.backends import CheckpointInfo
from ftbench.evaluation.comparison import compare_scorer
from ftbench.inference.chat import user_text
from ftbench.metrics.uncertainty import mcnemar
from ftbench.report.html import json_for_script
from ftbench.training.checkpoints import choose_by_metric, choose_checkpoint, distinct_checkpoints


def test_mcnemar_exact_against_the_binomial_definition():
    before = [False] * 10 + [True] * 5
    after = [True] * 8 + [False] * 2 + [False] * 1 + [True] * 4  # 8 wrong->right, 1 right->wrong
    m = mcnemar(before, after)
    assert (m["wrong_to_right"], m["right_to_wrong"]) == (8, 1)
    expected = 2 * sum(math.comb(9, k) for k in range(2)) / 2**9
    assert m["p_value"] == pytest.approx(expected)
    assert mcnemar([True, False], [True, False])["p_value"] == 1.0


def test_user_text_finds_the_last_user_message():
    chatml = (
        "<|im_start|>system\nYou are helpful.<|im_end|>\n<|im_start|>user\n第一个<|im_end|>\n"
        "<|im_start|>assistant\nok<|im_end|>\n<|im_start|>user\nWhat is 2+2?\n<|im_end|>\n<|im_start|>assistant\n"
    )
    assert user_text(chatml) == "What is 2+2?"
    llama3 = "<|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n"
    assert user_text(llama3) == "Hi"
    assert user_text("Question: x\nAnswer:") == "Question: x\nAnswer:"


def test_choose_checkpoint_takes_the_lowest_eval_loss_and_says_why():
    cks = [
        {"path": "o/checkpoint-20", "step": 20, "eval_loss": 2.0},
        {"path": "o/checkpoint-40", "step": 40, "eval_loss": 1.5},
        {"path": "o/checkpoint-60", "step": 60, "eval_loss": 1.7},
        {"path": "o", "step": 60, "eval_loss": 1.7},
    ]
    chosen = choose_checkpoint([CheckpointInfo(**c) for c in cks]).to_json()
    assert (
        chosen["name"] == "checkpoint-40" and "1.5000" in chosen["reason"] and "step 60 had 1.7000" in chosen["reason"]
    )


def test_choose_by_metric_takes_the_best_score_of_distinct_checkpoints():
    cks = [
        CheckpointInfo("o/checkpoint-20", 20, 2.0),
        CheckpointInfo("o/checkpoint-40", 40, 1.5),
        CheckpointInfo("o/checkpoint-60", 60, 1.4),
        CheckpointInfo("o", 60, 1.4),
    ]
    distinct = distinct_checkpoints(cks)
    assert [c.path for c in distinct] == ["o/checkpoint-20", "o/checkpoint-40", "o/checkpoint-60"]
    chosen = choose_by_metric(distinct, [30.0, 41.5, 39.0], "rouge-l")
    assert chosen.name == "checkpoint-40" and "highest rouge-l 41.5000" in chosen.reason
    assert choose_checkpoint(cks).name == "checkpoint-60"  # eval loss would have taken the later one
    assert choose_by_metric(distinct, [41.5, 41.5, 41.5], "rouge-l").name == "checkpoint-20"  # ties: earlier
    with pytest.raises(ValueError):
        choose_by_metric(distinct, [1.0], "rouge-l")
    lowest = choose_by_metric(distinct, [30.0, 41.5, 29.0], "wer", higher_is_better=False)  # a scorer's declaration
    assert lowest.name == "checkpoint-60" and "lowest wer 29.0000" in lowest.reason


def test_json_for_script_cannot_close_the_script_element():
    text = json_for_script({"x": "</script><script>alert(1)</script><!-- & \u2028"})
    assert "<" not in text and ">" not in text and "&" not in text
    assert json.loads(text)["x"].startswith("</script>")


def _write(path, rows):
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")


def test_compare_gsm8k_files(tmp_path):
    labels = [f"reasoning\n#### {n}" for n in (3, 10, 7, 12)]
    before = [
        {"prompt": f"q{i}", "predict": p, "label": l}
        for i, (p, l) in enumerate(zip(["#### 3", "no idea", "#### 5", "#### 12"], labels))
    ]
    after = [
        {"prompt": f"q{i}", "predict": p, "label": l}
        for i, (p, l) in enumerate(zip(["#### 3", "#### 10", "#### 7", "I think 12"], labels))
    ]
    result = compare_scorer("gsm8k", before, after)
    strict = result.figures["strict-match"]
    assert (strict["before"], strict["after"]) == (0.5, 0.75)
    assert strict["mcnemar"]["wrong_to_right"] == 2 and strict["mcnemar"]["right_to_wrong"] == 1
    assert [r["status"] for r in result.rows] == ["unchanged", "improved", "improved", "regressed"]
    a, b = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    _write(a, before)
    _write(b, after)
    cli = run_cli("compare", str(a), str(b), "--json")
    assert cli.exit_code == 0
    out = json.loads(cli.stdout)
    assert out["comparison"]["strict-match"]["delta"] == pytest.approx(0.25)


def test_compare_refuses_different_samples(tmp_path):
    a, b = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    _write(a, [{"prompt": "p", "predict": "x", "label": "y"}])
    _write(b, [{"prompt": "other", "predict": "x", "label": "y"}])
    result = run_cli("compare", str(a), str(b))
    assert result.exit_code == 1 and "not over the same samples" in result.stderr
    assert run_cli("compare", str(a), str(tmp_path)).exit_code == 2


def test_comparing_metrics_files_warns_when_signatures_differ(tmp_path):
    """Two metrics.json whose figures were computed differently (here: another jieba) are not comparable, and
    `compare` says so for exactly those figures."""
    rows = [
        {"prompt": f"q{i}", "predict": p, "label": "the answer is 42"}
        for i, p in enumerate(["the answer is 41", "42", "the answer is 42"])
    ]
    result = compare_scorer("similarity", rows, rows)
    base = {"after": {f: e["after"] for f, e in result.figures.items()}, "signatures": dict(result.signatures)}
    other = json.loads(json.dumps(base))
    other["signatures"]["rouge-l"] = other["signatures"]["rouge-l"].replace("jieba-", "jieba-0.0.1-")
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    a.write_text(json.dumps(base))
    b.write_text(json.dumps(other))
    same = run_cli("compare", str(a), str(a), "--json")
    assert same.exit_code == 0 and json.loads(same.stdout)["warnings"] == []
    out = run_cli("compare", str(a), str(b), "--json")
    assert out.exit_code == 0
    warnings = json.loads(out.stdout)["warnings"]
    assert len(warnings) == 1 and warnings[0].startswith("rouge-l: the signatures differ")
    assert "rouge-l: the signatures differ" in out.stderr
