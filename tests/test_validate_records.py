"""Record errors: every code is reported at its exact record, line and field path."""

from __future__ import annotations

import pytest
from helpers import located, validate_json

CASES = [
    ("missing-field.jsonl", {("missing-field", 2, "[1].output"), ("missing-field", 3, "[2].instruction")}),
    (
        "wrong-type.jsonl",
        {
            ("wrong-type", 1, "[0].output"),
            ("wrong-type", 2, "[1].history"),
            ("wrong-type", 3, "[2]"),
            ("wrong-type", 4, "[3].instruction"),
        },
    ),
    ("empty-field.jsonl", {("empty-field", 2, "[1].instruction")}),
    ("wrong-turn-key.json", {("wrong-turn-key", 2, "[0].conversations[1].content")}),
    ("unknown-role.json", {("unknown-role", 8, "[1].conversations[1].from")}),
    ("role-order.json", {("role-order", 2, "[0].conversations[1].from")}),
    ("last-turn-not-assistant.json", {("last-turn-not-assistant", 2, "[0].conversations[2].from")}),
    ("empty-conversation.jsonl", {("empty-conversation", 2, "[1].conversations")}),
    ("unknown-format.jsonl", {("unknown-format", 1, None)}),
]


@pytest.mark.parametrize("name,expected", CASES, ids=[c[0] for c in CASES])
def test_record_error_locations(name, expected):
    code, report = validate_json(f"datasets/broken/{name}", "--no-near-dup")
    assert code == 1
    assert report["ok"] is False
    assert located(report["errors"]) == expected
    for f in report["errors"]:
        assert f["file"] == f"datasets/broken/{name}"
        assert f["message"]


def test_hints_name_the_fix():
    _, report = validate_json("datasets/broken/missing-field.jsonl", "--no-near-dup")
    typo = next(f for f in report["errors"] if f["path"] == "[2].instruction")
    assert "instrution" in typo["hint"]
    _, report = validate_json("datasets/broken/wrong-turn-key.json", "--no-near-dup")
    assert "'value'" in report["errors"][0]["message"] and "'content'" in report["errors"][0]["message"]
    _, report = validate_json("datasets/broken/unknown-role.json", "--no-near-dup")
    assert "'bot'" in report["errors"][0]["message"] and "'gpt'" in report["errors"][0]["message"]


def test_one_missing_turn_is_one_error_not_one_per_later_turn(tmp_path):
    path = tmp_path / "shifted.jsonl"
    turns = [
        {"from": "human", "value": "a"},
        {"from": "human", "value": "b"},
        {"from": "gpt", "value": "c"},
        {"from": "human", "value": "d"},
        {"from": "gpt", "value": "e"},
    ]
    import json

    path.write_text(json.dumps({"conversations": turns}) + "\n")
    code, report = validate_json(str(path), "--no-near-dup")
    assert code == 1
    assert [f["path"] for f in report["errors"]] == ["[0].conversations[1].from"]


def test_dataset_info_entries(tmp_path):
    code, report = validate_json("--dataset-info", "datasets/broken/info/dataset_info.json", "--no-near-dup")
    assert code == 1
    info = "datasets/broken/info/dataset_info.json"
    got = {(f["code"], f["file"], f["line"], f["path"]) for f in report["errors"]}
    assert ("dataset-file-missing", info, 5, "missing_file.file_name") in got
    assert ("dataset-column-missing", info, 8, "wrong_columns.columns") in got
    assert ("dataset-info-invalid", info, 12, "bad_formatting.formatting") in got
    assert len(got) == 3  # the good entry is clean, and a missing column is said once, not once per record


def test_dataset_names_select_entries():
    code, report = validate_json("--dataset-info", "datasets/broken/info/dataset_info.json", "--dataset", "good")
    assert code == 0 and report["ok"] and report["records"] == 2


def test_unknown_dataset_name_is_a_usage_error():
    from helpers import run_cli

    result = run_cli("validate", "--dataset-info", "datasets/broken/info/dataset_info.json", "--dataset", "nope")
    assert result.exit_code == 2
    assert "no dataset named 'nope'" in result.stderr
    assert "Traceback" not in result.output


def test_bundled_data_is_clean():
    code, report = validate_json("datasets/")
    assert code == 0 and report["ok"]
    assert report["records"] > 500
    assert {f["code"] for f in report["warnings"]} == {"placeholder"}  # identity.json ships with {{name}}
    assert {f["format"] for f in report["stats"]["files"]} == {"alpaca", "sharegpt"}


def test_json_array_records_carry_their_lines():
    _, report = validate_json("datasets/identity.json", "--no-near-dup")
    lines = [f["line"] for f in report["warnings"] if f["code"] == "placeholder"][:3]
    assert lines == [2, 7, 12]  # each record of the indent=2 array spans 5 lines


def test_every_code_the_fixtures_produce_is_documented():
    import glob
    import os

    from helpers import REPO

    docs = open(os.path.join(REPO, "docs", "validate.md"), encoding="utf-8").read()
    seen = set()
    for path in sorted(glob.glob(os.path.join(REPO, "datasets", "broken", "*.json*"))):
        _, report = validate_json(os.path.relpath(path, REPO), "--task", "gsm8k")
        seen |= {f["code"] for f in report["errors"] + report["warnings"]}
    assert len(seen) > 30
    assert not {code for code in seen if f"`{code}`" not in docs}


def test_a_llamafactory_data_folder():
    """A LLaMA-Factory data/ folder: local alpaca, tool-calling sharegpt (function_call/observation turns),
    role/content tags, a hub entry and a preference set, as its dataset_info.json declares them."""
    code, report = validate_json("tests/data/llamafactory/")
    assert code == 1
    assert located(report["errors"]) == {("role-order", 23, "[1].conversations[2].from")}
    codes = sorted(f["code"] for f in report["warnings"])
    # issue 11: the hub entry is a note (not checked offline), the preference set is checked as preference data
    assert codes == ["placeholder", "placeholder"]
    assert [f["code"] for f in report["notes"]] == ["remote-dataset-skipped"]
    assert "not checked: hub dataset not available offline" in report["notes"][0]["message"]
    assert [f["format"] for f in report["stats"]["files"]] == ["alpaca", "sharegpt", "sharegpt", "sharegpt"]
    assert [f["kind"] for f in report["stats"]["files"]] == ["sft", "sft", "sft", "ranking"]
    assert report["stats"]["valid_records"] == 5
