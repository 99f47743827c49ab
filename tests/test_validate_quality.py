"""Quality warnings: each one at its record and field, and no false alarms on legitimate text."""

from __future__ import annotations

import json

from helpers import located, validate_json

QUALITY = "datasets/broken/quality-warnings.jsonl"


def test_quality_warnings_are_located():
    code, report = validate_json(QUALITY)
    assert code == 0 and report["ok"]  # warnings only: exit 0
    assert located(report["warnings"]) == {
        ("exact-duplicate", 2, "[1]"),
        ("conflicting-outputs", 3, "[2]"),
        ("near-duplicate", 5, "[4]"),
        ("placeholder", 6, "[5].output"),
        ("empty-output", 7, "[6].output"),
        ("output-equals-prompt", 8, "[7].output"),
        ("mojibake", 9, "[8].output"),
        ("control-character", 10, "[9].output"),
        ("invalid-unicode", 11, "[10].output"),
        ("mojibake", 12, "[11].output"),
        ("placeholder", 13, "[12].output"),
    }
    by_code = {f["code"]: f for f in report["warnings"]}
    assert "quality-warnings.jsonl:1 [0]" in by_code["exact-duplicate"]["message"]
    assert "'é'" in next(f for f in report["warnings"] if f["line"] == 9)["message"]
    assert report["stats"]["exact_duplicates"] == 1 and report["stats"]["near_duplicates"] == 1


def test_no_near_dup_turns_the_check_off():
    _, report = validate_json(QUALITY, "--no-near-dup")
    assert "near-duplicate" not in {f["code"] for f in report["warnings"]}
    assert "near_dup_method" not in report["stats"]


def test_near_dup_threshold_option(tmp_path):
    _, strict = validate_json(QUALITY, "--near-dup-threshold", "0.99")
    assert "near-duplicate" not in {f["code"] for f in strict["warnings"]}


def test_code_and_markup_are_not_placeholders():
    _, report = validate_json(QUALITY)
    assert not [f for f in report["warnings"] if f["line"] == 14]  # f-string {user}, <div>, {x}


def test_label_skew():
    _, report = validate_json("datasets/broken/label-skew.jsonl")
    skew = [f for f in report["warnings"] if f["code"] == "label-skew"]
    assert len(skew) == 1 and "'positive': 26" in skew[0]["message"] and skew[0]["record"] is None


def test_gsm8k_answer_format():
    _, report = validate_json("datasets/broken/gsm8k-format.jsonl", "--task", "gsm8k", "--no-near-dup")
    assert located([f for f in report["warnings"] if f["code"] == "gsm8k-answer-format"]) == {
        ("gsm8k-answer-format", 2, "[1].answer"),
        ("gsm8k-answer-format", 3, "[2].answer"),
        ("gsm8k-answer-format", 4, "[3].answer"),
    }


def test_train_test_overlap():
    _, report = validate_json("datasets/broken/overlap-train.jsonl", "--against", "datasets/broken/overlap-test.jsonl")
    assert located([f for f in report["warnings"] if f["code"].startswith("test-overlap")]) == {
        ("test-overlap-exact", 1, "[0]"),
        ("test-overlap-near", 2, "[1]"),
    }
    assert report["stats"]["test_overlap"] == {"exact": 1, "near": 1, "test_records": 2}


def test_cutoff_len_estimate_says_it_is_an_estimate():
    _, report = validate_json(QUALITY, "--cutoff-len", "60", "--no-near-dup")
    long = [f for f in report["warnings"] if f["code"] == "too-long"]
    assert {f["line"] for f in long} == {4, 5}  # the two long Chinese answers
    assert all("estimated" in f["message"] for f in long)
    assert report["stats"]["tokens"]["estimated"] is True


def test_nondefault_sharegpt_tags_are_read_but_flagged(tmp_path):
    path = tmp_path / "user_assistant.json"
    path.write_text(
        json.dumps([{"conversations": [{"from": "user", "value": "hi"}, {"from": "assistant", "value": "hello"}]}])
    )
    code, report = validate_json(str(path))
    assert code == 0 and report["records"] == 1 and report["stats"]["valid_records"] == 1
    assert [f["code"] for f in report["warnings"]] == ["nondefault-role-tags"]
    assert "'user'/'assistant'" in report["stats"]["files"][0]["reason"]


def test_cutoff_len_counts_real_tokens_with_a_tokenizer(tiny_model):
    from ftbench.data.formats import replace_surrogates
    from ftbench.data.loader import DatasetSpec, iter_samples
    from ftbench.inference.chat import render_conversation
    from ftbench.inference.models import load_tokenizer

    _, report = validate_json(QUALITY, "--tokenizer", tiny_model, "--cutoff-len", "60", "--no-near-dup")
    long = {f["record"]: f for f in report["warnings"] if f["code"] == "too-long"}
    assert report["stats"]["tokens"]["estimated"] is False
    tokenizer = load_tokenizer(tiny_model)
    for sample in iter_samples(DatasetSpec(QUALITY), []):  # the lone-surrogate record is counted too
        count = len(
            tokenizer(render_conversation(tokenizer, replace_surrogates(sample)), add_special_tokens=False)["input_ids"]
        )
        if count > 60:
            assert long.pop(sample.record)["message"].startswith(f"{count} tokens > cutoff_len 60")
    assert not long
