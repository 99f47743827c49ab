"""`ftbench augment fill`: placeholders filled in every text field with any spacing, the file's type and layout
kept, everything left unfilled reported with its record and field path, and DATA never overwritten."""

from __future__ import annotations

import json
import os
import shutil

import pytest
from helpers import REPO, run_cli

IDENTITY = os.path.join(REPO, "datasets", "identity.json")
SHAREGPT = os.path.join(REPO, "tests", "data", "augment", "identity_sharegpt.json")


def fill(*args: str):
    return run_cli("augment", "fill", *args)


def test_identity_dataset_filled_in_place_of_every_slot(tmp_path):
    out = tmp_path / "identity.json"
    result = fill(IDENTITY, "-o", str(out), "--set", "name=Archer", "--set", "author=意琦行", "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    original = json.load(open(IDENTITY, encoding="utf-8"))
    text = out.read_text(encoding="utf-8")
    assert "{{" not in text and "意琦行" in text  # ensure_ascii=False: Chinese stays readable
    expected = json.loads(
        json.dumps(original, ensure_ascii=False).replace("{{name}}", "Archer").replace("{{author}}", "意琦行")
    )
    assert json.loads(text) == expected
    assert text == json.dumps(expected, ensure_ascii=False, indent=2) + "\n"  # laid out like the input
    raw = json.dumps(original, ensure_ascii=False)
    assert report["filled"] == {"name": raw.count("{{name}}"), "author": raw.count("{{author}}")}
    assert report["records"] == len(original) and report["unfilled"] == [] and report["ok"]
    validate = run_cli("validate", "--json", str(out))  # nothing left for validate to warn about
    assert not [w for w in json.loads(validate.stdout)["warnings"] if w["code"] == "placeholder"]


def test_spacing_variants_nested_fields_and_unfilled_paths(tmp_path):
    out = tmp_path / "out.json"
    result = fill(SHAREGPT, "-o", str(out), "--set", "name=Archer", "--set", "author=ACME", "--set", "team=x", "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(out.read_text(encoding="utf-8"))
    assert data[0]["conversations"][1]["value"] == "我是 Archer，由 ACME 开发的 AI 助手。"
    assert data[0]["system"] == "You are Archer."
    assert data[1]["conversations"][1]["value"] == "ACME built me. I am Archer, running on {{model}}."
    report = json.loads(result.stdout)
    assert report["filled"] == {"name": 4, "author": 2, "team": 0} and report["unused_keys"] == ["team"]
    assert [(u["record"], u["path"], u["placeholder"]) for u in report["unfilled"]] == [
        (1, "[1].conversations[1].value", "{{model}}"),
        (1, "[1].conversations[3].value", "【名字】"),
    ]
    assert out.read_text(encoding="utf-8").startswith('[\n    {\n        "conversations"')  # 4-space indent kept

    text = fill(
        SHAREGPT, "-o", str(tmp_path / "t.json"), "--set", "name=Archer", "--set", "author=ACME", "--set", "team=x"
    )
    assert text.exit_code == 0
    assert "[1].conversations[1].value: {{model}}" in text.stderr and "【名字】" in text.stderr
    assert "--set team: DATA has no {{team}} placeholder" in text.stderr
    assert "filled 6 placeholder(s)" in text.stdout


def test_strict_refuses_to_write_when_slots_remain(tmp_path):
    out = tmp_path / "out.json"
    result = fill(SHAREGPT, "-o", str(out), "--set", "name=Archer", "--set", "author=ACME", "--strict")
    assert result.exit_code == 1 and not out.exists()
    assert (
        result.stderr.strip().splitlines()[-1] == "ftbench: error: 2 placeholder(s) left unfilled (--strict): "
        f"{out} not written"
    )
    ok = fill(SHAREGPT, "-o", str(out), "--set", "name=A", "--set", "author=B", "--set", "model=M", "--strict")
    assert ok.exit_code == 1  # 【名字】 is not a {{ }} slot: it still needs editing
    assert "【名字】" in ok.stderr


def test_jsonl_stays_jsonl(tmp_path):
    data = tmp_path / "chat.jsonl"
    rows = [
        {"messages": [{"role": "user", "content": "name?"}, {"role": "assistant", "content": "I'm {{ name }}."}]},
        {"messages": [{"role": "user", "content": "作者？"}, {"role": "assistant", "content": "{{author}} 写的"}]},
    ]
    data.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    out = tmp_path / "filled.jsonl"
    result = fill(str(data), "-o", str(out), "--set", "name=Archer", "--set", "author=意琦行", "-q")
    assert result.exit_code == 0 and result.stdout == ""
    lines = out.read_text(encoding="utf-8").splitlines()
    assert [json.loads(line)["messages"][1]["content"] for line in lines] == ["I'm Archer.", "意琦行 写的"]
    assert "意琦行" in lines[1]
    result = fill(IDENTITY, "-o", str(tmp_path / "x.jsonl"), "--set", "name=a")
    assert result.exit_code == 2 and "keeps the file type" in result.stderr


@pytest.mark.parametrize("how", ["same", "relative", "symlink", "hardlink"])
def test_never_overwrites_data(tmp_path, how):
    data = tmp_path / "identity.json"
    shutil.copy(IDENTITY, data)
    before = data.read_bytes()
    out = {
        "same": str(data),
        "relative": os.path.relpath(data, REPO),
        "symlink": str(tmp_path / "link.json"),
        "hardlink": str(tmp_path / "hard.json"),
    }[how]
    if how == "symlink":
        os.symlink(data, out)
    if how == "hardlink":
        os.link(data, out)
    result = fill(str(data), "-o", out, "--set", "name=Archer")
    assert result.exit_code == 2, result.output
    assert "is DATA itself" in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert data.read_bytes() == before


@pytest.mark.parametrize(
    "args, message",
    [
        (["--set", "name"], "expected KEY=VALUE"),
        (["--set", "=Archer"], "the key must be"),
        (["--set", "my name=Archer"], "the key must be"),
        (["--set", "name=a", "--set", "name=b"], "given twice"),
        ([], "give at least one --set"),
    ],
)
def test_bad_assignments(tmp_path, args, message):
    result = fill(IDENTITY, "-o", str(tmp_path / "o.json"), *args)
    assert result.exit_code == 2 and message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and not (tmp_path / "o.json").exists()


def test_values_are_literal_and_data_errors_are_one_line(tmp_path):
    out = tmp_path / "o.json"
    result = fill(IDENTITY, "-o", str(out), "--set", r"name=\1 {{author}} $0", "--set", "author=B")
    assert result.exit_code == 0
    assert json.loads(out.read_text(encoding="utf-8"))[1]["output"].startswith(r"Hello! I am \1 {{author}} $0,")
    broken = os.path.join(REPO, "datasets", "broken", "missing-comma.json")
    result = fill(broken, "-o", str(tmp_path / "b.json"), "--set", "name=x")
    assert result.exit_code == 1 and "fix the file first" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and not (tmp_path / "b.json").exists()
    result = fill(str(tmp_path / "missing.json"), "-o", str(tmp_path / "c.json"), "--set", "name=x")
    assert result.exit_code == 2 and "no such file" in result.stderr
