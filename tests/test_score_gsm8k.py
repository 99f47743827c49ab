"""GSM8K scoring must be lm-eval's gsm8k task, and its strict/flexible disagreements must be explained."""

from __future__ import annotations

import os
import random

import pytest

lm_eval = pytest.importorskip("lm_eval")

from lm_eval.api.metrics import exact_match_hf_evaluate  # noqa: E402
from lm_eval.filters.extraction import RegexFilter  # noqa: E402
from lm_eval.filters.selection import TakeFirstFilter  # noqa: E402

from ftbench.metrics import gsm8k  # noqa: E402
from ftbench.metrics.gsm8k_diagnosis import classify  # noqa: E402
from ftbench.metrics.scoring import score_pairs  # noqa: E402


def lm_eval_gsm8k_config() -> dict:
    from lm_eval.tasks._yaml_loader import load_yaml

    return load_yaml(os.path.join(os.path.dirname(lm_eval.__file__), "tasks", "gsm8k", "gsm8k.yaml"))


def reference(predictions: list[str], targets: list[str]) -> dict[str, list]:
    """lm-eval's filter pipelines (regex then take_first) and exact_match, configured from its gsm8k.yaml."""
    cfg = lm_eval_gsm8k_config()
    kwargs = {k: v for k, v in cfg["metric_list"][0].items() if k not in ("metric", "aggregation", "higher_is_better")}
    out = {}
    for flt in cfg["filter_list"]:
        regex_args = {k: v for k, v in flt["filter"][0].items() if k != "function"}
        resps = RegexFilter(**regex_args).apply([[p] for p in predictions], None)
        extracted = list(TakeFirstFilter().apply(resps, None))
        out[flt["name"]] = extracted
        out[flt["name"] + "/em"] = [
            float(exact_match_hf_evaluate(predictions=[e], references=[t], **kwargs)["exact_match"])
            for e, t in zip(extracted, targets)
        ]
    return out


EDGE = [  # (prediction, target)
    ("Janet sells 9 eggs at $2 each, so she makes 9 * 2 = $18.\n#### 18", "She makes 9 * 2 = $<<9*2=18>>18\n#### 18"),
    ("#### 1,000", "#### 1000"),
    ("#### $1,000", "#### 1000"),
    ("#### $1,000.00", "#### 1000"),
    ("#### 1000.00", "#### 1000"),
    ("#### -5", "#### -5"),
    ("#### 72.", "#### 72"),
    ("#### 72.\n", "#### 72"),
    ("#### 72\n\nQuestion: Tom has 5 apples and eats 2. How many are left?\nAnswer: 3", "#### 72"),
    ("#### 17\nWait, that is wrong.\n#### 18", "#### 18"),
    ("#### 18 #### 17", "#### 18"),
    ("The answer is 42", "#### 42"),
    ("The answer is 42.", "#### 42"),
    ("####42", "#### 42"),
    ("#### **42**", "#### 42"),
    ("So x = 3.5", "#### 3.5"),
    ("#### 0.5", "#### .5"),
    ("...", "#### 5"),
    ("", "#### 5"),
    ("   ", "#### 5"),
    ("#### 5,000,000 dollars", "#### 5000000"),
    ("It costs $5", "#### 5"),
    ("#### 42\nThat is 42 apples in 2 baskets.", "#### 42"),
    ("Total: 1,234.5 m", "#### 1234.5"),
    ("#### 7\nDone...", "#### 7"),
    ("-3 degrees", "#### -3"),
    ("#### 2\n\n", "#### 2"),
    ("#### 12ab", "#### 12"),
    ("答案是 12 个。\n#### 12", "#### 12"),
    ("#### 12\n所以一共 12 元，每人 3 元。", "#### 12"),
    ("$.", "#### 1"),
]


def test_extraction_and_exact_match_equal_lm_eval():
    rng = random.Random(11)
    pieces = [
        "#### ",
        "####",
        "$",
        ",",
        ".",
        "-",
        "1",
        "2",
        "3",
        "0",
        "42",
        "1,000",
        " ",
        "\n",
        "Question:",
        "The answer is ",
        "dollars",
        "**",
        "...",
        "x",
        "答案",
    ]
    generated = [
        (
            "".join(rng.choice(pieces) for _ in range(rng.randint(0, 14))),
            "#### " + rng.choice(["42", "1000", "-3", "3.5", "0", "12"]),
        )
        for _ in range(1500)
    ]
    cases = EDGE + generated
    preds, targets = [p for p, _ in cases], [t for _, t in cases]
    ref = reference(preds, targets)
    result = score_pairs(preds, targets, scorer="gsm8k")
    assert result.samples["strict"] == ref["strict-match"]
    assert result.samples["flexible"] == ref["flexible-extract"]
    assert result.samples["exact_match,strict-match"] == ref["strict-match/em"]
    assert result.samples["exact_match,flexible-extract"] == ref["flexible-extract/em"]
    # lm-eval's `mean` aggregation and `mean_stderr`
    from lm_eval.api.metrics import mean, mean_stderr

    assert result.metrics["exact_match,strict-match"] == mean(ref["strict-match/em"])
    assert result.stderr["exact_match,flexible-extract"] == mean_stderr(ref["flexible-extract/em"])


def test_replica_equals_lm_eval_code():
    """The fallback used when lm-eval cannot be imported behaves exactly like lm-eval's code."""
    preds = [p for p, _ in EDGE] + ["#### 1.5.5", "(-12)", "$$", "12,,"]
    targets = [t for _, t in EDGE] + ["#### 1.55", "#### -12", "#### 1", "#### 12"]
    for name, (pattern, group) in gsm8k.FILTERS.items():
        ours = gsm8k._RegexFilterReplica(pattern, group).apply([[p] for p in preds], None)
        theirs = RegexFilter(regex_pattern=pattern, group_select=group).apply([[p] for p in preds], None)
        assert ours == theirs, name
        extracted = [r[0] for r in ours]
        for e, t in zip(extracted, targets):
            assert gsm8k._exact_match_replica([e], [t], **gsm8k.EXACT_MATCH_KWARGS) == exact_match_hf_evaluate(
                predictions=[e], references=[t], **gsm8k.EXACT_MATCH_KWARGS
            )


def test_definitions_are_lm_evals_gsm8k_yaml():
    cfg = lm_eval_gsm8k_config()
    filters = {f["name"]: f["filter"][0] for f in cfg["filter_list"]}
    assert filters["strict-match"]["regex_pattern"] == gsm8k.STRICT_PATTERN
    assert filters["flexible-extract"]["regex_pattern"] == gsm8k.FLEXIBLE_PATTERN
    assert filters["flexible-extract"]["group_select"] == -1 and "group_select" not in filters["strict-match"]
    metric = cfg["metric_list"][0]
    assert {k: metric[k] for k in gsm8k.EXACT_MATCH_KWARGS} == gsm8k.EXACT_MATCH_KWARGS
    assert str(cfg["metadata"]["version"]) == gsm8k.TASK_VERSION


@pytest.mark.parametrize(
    "prediction,target,cause",
    [
        ("The answer is 42.", "#### 42", "no-marker"),
        ("####42", "#### 42", "unreadable-marker"),
        ("#### **42**", "#### 42", "unreadable-marker"),
        ("#### 7\nDone...", "#### 7", "punctuation-as-number"),
        ("#### 1000\nSo she pays $1,000.00 in total", "#### 1000", "number-format"),
        ("#### 18.00\nShe makes $18", "#### 18", "number-format"),
        ("#### 72\n\nQuestion: Tom has 5 apples and eats 2.\nAnswer: #### 3", "#### 72", "text-after-answer"),
        ("#### 42\nThat is 42 apples in 2 baskets.", "#### 42", "text-after-answer"),
        ("#### 17\nWait, that is wrong.\n#### 18", "#### 18", "several-markers"),
        ("#### 18\nNo wait.\n#### 17", "#### 18", "several-markers"),
        ("#### 42", "#### 42", None),
        ("#### 5", "#### 6", None),
    ],
)
def test_disagreement_causes(prediction, target, cause):
    result = score_pairs([prediction], [target], scorer="gsm8k")
    assert result.samples["cause"] == [cause]
    s_ok, f_ok = result.samples["strict_correct"][0], result.samples["flexible_correct"][0]
    assert (s_ok != f_ok) == (cause is not None)
    summary = result.details["disagreement"]
    assert summary["disagreements"] == (1 if cause else 0)
    if cause:
        assert summary["causes"][cause]["count"] == 1
        assert summary["causes"][cause]["examples"][0]["index"] == 0


def test_wrong_number_is_the_fallback():
    assert classify("#### 5", "5", "6", True, False, "#### 5") == "wrong-number"


def test_summary_counts_and_format_failures_under_both():
    preds = [
        "#### 72\n\nQuestion: 3 apples",
        "#### 72\n\nQuestion: 4 pears",
        "The answer is 72",
        "#### $1,000.00",
        "#### 72",
    ]
    targets = ["#### 72", "#### 72", "#### 72", "#### 1000", "#### 72"]
    result = score_pairs(preds, targets, scorer="gsm8k")
    summary = result.details["disagreement"]
    assert summary["strict_only_correct"] == 2 and summary["flexible_only_correct"] == 1
    assert list(summary["causes"]) == ["text-after-answer", "no-marker"]  # by count
    assert summary["invalid"] == {"strict-match": 2, "flexible-extract": 0}
    assert summary["both_wrong_number_format"]["count"] == 1
    assert any("--until 'Question:'" in note for note in result.details["notes"])


def test_until_cuts_like_lm_eval_generation():
    from lm_eval.models.utils import postprocess_generated_text

    text = "#### 72\n\nQuestion: Tom has 5 apples</s> more"
    until = ["Question:", "</s>", "<|im_end|>"]
    assert gsm8k.truncate_at(text, until) == postprocess_generated_text(text, until, None)
    result = score_pairs([text], ["#### 72"], scorer="gsm8k", until=until)
    assert result.samples["flexible"] == ["72"] and result.samples["flexible_correct"] == [True]
    assert "until:'Question:'" in result.signatures["exact_match,strict-match"]


def test_numeric_labels_are_cast_like_lm_eval():
    result = score_pairs(["#### 42"], [42], scorer="gsm8k")
    assert result.metrics["exact_match,strict-match"] == 1.0


def test_llamafactory_labels_end_in_the_chat_templates_newline(tmp_path):
    """LLaMA-Factory writes a label as the answer's decoded ids: "... #### 3\\n", the "\\n" after qwen's <|im_end|>.
    lm-eval's target is the dataset's answer, without it; compared with "3\\n", no answer was ever right (the tiny
    demo's strict-match read 0.000 -> 0.000)."""
    labels = ["She has 3.\n#### 3\n", "x\n#### 5\n", "y\n#### 7\n"]
    result = score_pairs(["#### 3", "The answer is 5", "#### 8"], labels, scorer="gsm8k")
    assert result.samples["exact_match,strict-match"] == [1.0, 0.0, 0.0]
    assert result.samples["exact_match,flexible-extract"] == [1.0, 1.0, 0.0]
    before = [{"prompt": f"q{i}", "predict": "no idea", "label": label} for i, label in enumerate(labels)]
    after = [{**row, "predict": p} for row, p in zip(before, ["#### 3", "#### 5", "#### 7"])]
    from ftbench.evaluation.comparison import compare_scorer

    strict = compare_scorer("gsm8k", before, after).figures["strict-match"]
    assert (strict["before"], strict["after"], strict["mcnemar"]["wrong_to_right"]) == (0.0, 1.0, 3)
